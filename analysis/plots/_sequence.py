"""Sequence models on the continuum, compared panel by panel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_choice
from ._common import _axes, _field, _finish, _np
from ._memory import memory_capacity

if TYPE_CHECKING:
    from matplotlib.axes import Axes


_SEQUENCE_PANELS = ("impulse", "memory", "spectrum")


def sequence_comparison(result: Any, panel: str = "impulse", *,
                        ax: Axes | None = None) -> Axes:
    """One panel of a :class:`~itermap.analysis.SequenceComparison`, one line per model.

    Parameters
    ----------
    result : SequenceComparison
        From :func:`itermap.analysis.compare_sequence_models`.
    panel : {"impulse", "memory", "spectrum"}
        The impulse responses (log scale; an exact zero is not drawn), the memory
        capacity per delay, or the top Lyapunov exponents (``-inf`` drawn at the
        bottom edge, as open markers).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        An unknown ``panel``.
    TypeError
        A result without the comparison's fields.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> r = {"names": ["a", "b"], "impulse": np.array([[1.0, 0.5], [1.0, 0.0]]),
    ...      "r2": np.ones((2, 3)), "capacity": [3.0, 3.0],
    ...      "exponents": np.array([[-0.1], [-np.inf]])}
    >>> ax = plots.sequence_comparison(r, "spectrum")
    >>> ax.get_xlabel()
    'exponent index $i$'
    """
    panel = check_choice("panel", panel, _SEQUENCE_PANELS)
    names = list(_field(result, "names", param="result"))
    ax = _axes(ax)
    if panel == "impulse":
        rows = np.asarray(_np(_field(result, "impulse", param="result")), dtype=float)
        for name, row in zip(names, rows):
            keep = np.flatnonzero(row > 0)
            ax.semilogy(keep, row[keep], marker=".", ms=3, label=name)
        return _finish(ax, "steps $k$ after the impulse", "response (relative to $k = 0$)",
                       integer_x=True, legend="small")
    if panel == "memory":  # the figure of memory_capacity, one result per model
        rows = np.asarray(_np(_field(result, "r2", param="result")), dtype=float)
        caps = list(_field(result, "capacity", param="result"))
        return memory_capacity([{"r2": row, "delays": np.arange(1, row.size + 1),
                                 "capacity": float(c)} for row, c in zip(rows, caps)],
                               ax=ax, labels=names)
    rows = np.asarray(_np(_field(result, "exponents", param="result")), dtype=float)
    finite = rows[np.isfinite(rows)]
    low = float(finite.min()) if finite.size else -1.0
    bottom = low - 0.1 * max(1.0, abs(low))
    for name, row in zip(names, rows):
        i = np.arange(1, row.size + 1)
        line, = ax.plot(i[np.isfinite(row)], row[np.isfinite(row)], marker="o", ms=4,
                        label=name)
        ninf = np.isneginf(row)
        if ninf.any():
            ax.plot(i[ninf], np.full(ninf.sum(), bottom), marker="o", ms=5, ls="none",
                    mfc="none", color=line.get_color())
    ax.axhline(0.0, color="0.6", lw=0.8)
    return _finish(ax, "exponent index $i$", r"$\lambda_i$ (open: $-\infty$)",
                   integer_x=True, legend="small")
