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
    """Whether this process is a Jupyter (IPython) kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an IPython too old or too odd to ask: not a kernel we know
        return False


def interactive() -> bool:
    """A person is watching: a Jupyter kernel, or standard error is a terminal."""
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
