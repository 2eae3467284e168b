"""Progress bars that behave in terminals, logs and Jupyter alike (tqdm, imported lazily).

``tqdm.auto`` picks the widget bar in a Jupyter kernel and, where ipywidgets is missing,
warns (``TqdmWarning: IProgress not found``) and falls back to a text bar that redraws
about ten times a second: each redraw is one more output stored in the notebook file.
:func:`progress_bar` uses the widget bar only where ipywidgets imports, and otherwise a
plain text bar that redraws at most once per ``NOTEBOOK_INTERVAL`` (2) seconds in a kernel.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["in_notebook", "interactive", "progress_bar", "NOTEBOOK_INTERVAL"]

#: seconds between redraws of a text bar in a Jupyter kernel (each one is an output)
NOTEBOOK_INTERVAL = 2.0


def in_notebook() -> bool:
    """Whether this process is a Jupyter (IPython) kernel.

    Returns
    -------
    bool
        True in a kernel (IPython imported and running an ``IPKernelApp``); False in a
        plain interpreter, a terminal IPython, or where IPython cannot be asked.

    Examples
    --------
    >>> from itermap.progress import in_notebook
    >>> in_notebook()  # a test run is no kernel
    False
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an IPython too old or too odd to ask: not a kernel we know
        return False


def interactive() -> bool:
    """Whether a person is watching: a Jupyter kernel, or standard error is a terminal.

    The analyses show a progress bar by default only then (a log file or a batch job gets
    none).

    Returns
    -------
    bool
        False also where standard error was replaced by an object without ``isatty`` or
        was closed.

    Examples
    --------
    >>> import contextlib, io
    >>> from itermap.progress import interactive
    >>> with contextlib.redirect_stderr(io.StringIO()):  # a log, not a terminal
    ...     interactive()
    False
    """
    if in_notebook():
        return True
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _widgets() -> bool:
    import importlib

    try:
        importlib.import_module("ipywidgets")
    except ImportError:
        return False
    return True


def progress_bar(*, total: int | None, desc: str, unit: str = "it", initial: int = 0,
                 leave: bool = True, delay: float = 0.0, disable: bool = False) -> Any:
    """A tqdm bar: the widget in a kernel with ipywidgets, a text bar everywhere else.

    In a kernel without ipywidgets the text bar redraws at most every
    2 seconds (``NOTEBOOK_INTERVAL``) and never warns.

    Parameters
    ----------
    total : int or None
        The count at which the bar is full; None for a bar that only counts.
    desc : str
        The label before the bar.
    unit : str, default "it"
        What one count is ("step", "start").
    initial : int, default 0
        The count to start from (a resumed run).
    leave : bool, default True
        Keep the finished bar on screen.
    delay : float, default 0.0
        Seconds before the bar first shows (a short run shows none).
    disable : bool, default False
        A bar that shows nothing and accepts every call (``update``, ``close``).

    Returns
    -------
    tqdm.tqdm
        A context manager; ``update(n)`` advances it.

    Examples
    --------
    >>> from itermap.progress import progress_bar
    >>> with progress_bar(total=3, desc="steps", delay=60) as bar:  # nothing shown before 60 s
    ...     _ = bar.update(3)
    >>> bar.n
    3
    """
    from tqdm import std

    if disable:
        return std.tqdm(total=total, disable=True)
    opts: dict[str, Any] = {"total": total, "desc": desc, "unit": unit, "initial": initial,
                            "leave": leave}
    if delay:
        opts["delay"] = delay  # only where asked: older tqdm has no delay
    notebook = in_notebook()
    if notebook and _widgets():
        from tqdm.notebook import tqdm as widget

        return widget(**opts)
    return std.tqdm(**opts, file=sys.stderr, mininterval=NOTEBOOK_INTERVAL if notebook else 0.1,
                    maxinterval=max(10.0, NOTEBOOK_INTERVAL))
