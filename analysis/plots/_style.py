"""The paper style sheet, figure sizes for one or two columns, and saving figures."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._checks import check_int, check_real
from ._common import _plt

#: The shipped paper style sheet.
STYLE = str(Path(__file__).parent.with_name("paper.mplstyle"))
#: Figure widths in inches for one- and two-column layouts (typical two-column journals).
COLUMN_WIDTHS = {1: 3.4, 2: 7.0}


def paper_style(columns: int = 1, *,
                height: float | None = None) -> contextlib.AbstractContextManager:
    """Context manager: the shipped paper style, sized for one or two columns.

    Inside it new figures are ``COLUMN_WIDTHS[columns]`` inches wide, fonts
    are 7-8 pt, and PDFs embed TrueType fonts (``pdf.fonttype: 42``).

    Parameters
    ----------
    columns : {1, 2}
    height : float, optional
        Figure height in inches (default: 0.68 x width for one column, 2.6
        inches for two).

    Returns
    -------
    context manager
        Entering it yields ``(width, height)`` in inches.

    Raises
    ------
    ValueError
        ``columns`` other than 1 or 2, a height that is not positive.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from itermap.analysis.plots import paper_style
    >>> with paper_style(columns=1):
    ...     fig, ax = plt.subplots()
    >>> float(fig.get_figwidth())
    3.4
    >>> plt.close(fig)
    """
    if isinstance(columns, int) and not isinstance(columns, bool):  # a huge int's message
        check_int("columns", columns, 1, maximum=2)
    if isinstance(columns, bool) or not isinstance(columns, int) or columns not in COLUMN_WIDTHS:
        raise ValueError(f"columns must be 1 or 2, got {columns!r}")
    width = COLUMN_WIDTHS[columns]
    if height is None:
        height = 0.68 * width if columns == 1 else 2.6
    height = check_real("height", height, positive=True)
    # checked here, not on entering the block: a bad argument fails at the call
    return _styled(width, height)


@contextlib.contextmanager
def _styled(width, height):
    plt = _plt()
    with plt.style.context(STYLE), plt.rc_context({"figure.figsize": (width, height)}):
        yield (width, height)


def save_figure(fig: Any, path: str | os.PathLike, *, formats: Sequence[str] = ("pdf", "png"),
                dpi: float = 200) -> list[str]:
    """Save ``fig`` as ``path.pdf`` and ``path.png`` (a format suffix of ``path`` replaced).

    Parameters
    ----------
    fig : matplotlib Figure or Axes
        What to save (an Axes saves its figure).
    path : str or path-like
        The file name stem; a file format's suffix (``.pdf``, ``.png``, ...) is
        replaced by each format's, any other (``gain_1.5``) kept.
    formats : sequence of str
        File formats, ``("pdf", "png")`` by default.
    dpi : float
        Resolution of raster formats.

    Returns
    -------
    list of str
        The written files.

    Raises
    ------
    TypeError
        ``fig`` that is neither a Figure nor an Axes, a ``path`` that is not a
        non-empty path.
    ValueError
        A ``path`` that is a folder.

    Examples
    --------
    >>> import os, tempfile
    >>> import matplotlib.pyplot as plt
    >>> from itermap.analysis.plots import save_figure
    >>> fig, ax = plt.subplots()
    >>> paths = save_figure(fig, os.path.join(tempfile.mkdtemp(), "fig"))
    >>> [os.path.basename(p) for p in paths]
    ['fig.pdf', 'fig.png']
    """
    if not hasattr(fig, "savefig"):  # an Axes: save its figure
        if not hasattr(getattr(fig, "figure", None), "savefig"):
            raise TypeError(f"fig must be a matplotlib Figure or Axes, got {type(fig).__name__}")
        fig = fig.figure
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise TypeError(f"path must be a non-empty file path, got {path!r}")
    if Path(path).is_dir():
        raise ValueError(f"path {os.fspath(path)!r} is a folder: give a file name stem")
    # only a file format's suffix goes: "gain_1.5" keeps its ".5" (two gains wrote one file)
    suffix = Path(path).suffix.lower().lstrip(".")
    known = suffix in fig.canvas.get_supported_filetypes() or suffix in formats
    stem = os.fspath(Path(path).with_suffix("") if known else Path(path))
    out = []
    for fmt in formats:
        out.append(f"{stem}.{fmt}")
        fig.savefig(out[-1], format=fmt, dpi=dpi, bbox_inches="tight",
                    metadata={"CreationDate": None} if fmt == "pdf" else None)
    return out
