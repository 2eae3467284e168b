"""Covariant Lyapunov vector angles and finite-time exponent histograms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_bool, check_int
from ._common import (
    EXPONENT_UNIT,
    _axes,
    _field,
    _finish,
    _legend_below,
    _np,
    _readable_log_axis,
    _two_line_xlabel,
    _zero_line,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def clv_angles(result: Any, *, ax: Axes | None = None, pair: Sequence[int] = (0, 1),
               bins: int = 60, log: bool = True, label: str | None = None) -> Axes:
    """Histogram of the angle between two covariant Lyapunov vectors.

    Near-tangencies (angles near 0) of the expanding and contracting
    directions mark a non-hyperbolic attractor (Henon's, for one).

    Parameters
    ----------
    result : CovariantVectors or dict
        An object with ``angles`` of shape (n_saved, [B,] k, k).
    ax : matplotlib Axes, optional
    pair : (int, int)
        The vectors compared (0-based, most expanding first).
    bins : int
        Bins over ``[0, pi/2]``.
    log : bool
        Logarithmic density axis (the tail near 0 is what matters).
    label : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For angles not of shape ``(n_saved, [B,] k, k)``, or a ``pair`` that does
        not name two different vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> ang = np.zeros((100, 2, 2)); ang[:, 0, 1] = np.linspace(0.01, 1.5, 100)
    >>> plots.clv_angles({"angles": ang}).get_xlabel()
    'angle $\\\\theta_{12}$ (rad)'
    """
    ang = _np(_field(result, "angles", param="result")).astype(float)
    bins = check_int("bins", bins, 1)
    log = check_bool("log", log)
    if ang.ndim < 3 or ang.shape[-1] != ang.shape[-2]:
        raise ValueError(f"angles must have shape (n_saved, [B,] k, k), got {ang.shape}")
    i, j = (int(p) for p in pair)
    k = ang.shape[-1]
    if not (0 <= i < k and 0 <= j < k) or i == j:
        raise ValueError(f"pair must name two different vectors in 0..{k - 1}, got {pair}")
    a = ang[..., i, j].ravel()
    ax = _axes(ax)
    ax.hist(a, bins=int(bins), range=(0.0, np.pi / 2), density=True, histtype="stepfilled",
            alpha=0.75, label=label, log=bool(log))
    ax.set_xlim(0.0, np.pi / 2)
    if log:  # 0.2, 0.5, 2 rather than 2 x 10^-1, 5 x 10^-1, 2 x 10^0
        _readable_log_axis(ax.yaxis)
    _finish(ax, f"angle $\\theta_{{{i + 1}{j + 1}}}$ (rad)", "density")
    if label:
        ax.legend()
    return ax


def finite_time_histogram(result: Any, *, ax: Axes | None = None, max_exponents: int = 4,
                          bins: int = 50) -> Axes:
    """Histograms of the finite-time exponents, one per exponent, with their means.

    Parameters
    ----------
    result : FiniteTimeExponents or dict
        An object with ``exponents`` (n_windows, [B,] k) and optionally
        ``window``.
    ax : matplotlib Axes, optional
    max_exponents : int
        Draw at most the first this many exponents.
    bins : int

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For exponents not of shape ``(n_windows, [B,] k)``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> ex = np.random.default_rng(0).normal([0.4, -1.6], 0.1, size=(500, 2))
    >>> len(plots.finite_time_histogram({"exponents": ex, "window": 20}).patches) > 0
    True
    """
    ex = _np(_field(result, "exponents", param="result")).astype(float)
    bins = check_int("bins", bins, 1)
    max_exponents = check_int("max_exponents", max_exponents, 1)
    if ex.ndim not in (2, 3):
        raise ValueError(f"exponents must have shape (n_windows, [B,] k), got {ex.shape}")
    ex = ex.reshape(-1, ex.shape[-1])
    window = _field(result, "window", None, required=False)
    ax = _axes(ax)
    drawn = False
    for i in range(min(ex.shape[1], int(max_exponents))):
        col = ex[:, i][np.isfinite(ex[:, i])]
        if col.size == 0:
            continue
        # an exponent the same in every window (a leaky or linear direction): one narrow
        # bin around it, where numpy cannot split a zero range into `bins`
        lo, hi = float(col.min()), float(col.max())
        flat = hi - lo <= 1e-9 * max(1.0, abs(hi))
        half = 1e-3 * max(1.0, abs(hi))
        patches = ax.hist(col, bins=1 if flat else int(bins),
                          range=(lo - half, hi + half) if flat else None, density=True,
                          histtype="step", lw=1.2, label=f"$\\lambda_{{{i + 1}}}$")[2]
        ax.axvline(col.mean(), color=patches[0].get_edgecolor(),  # type: ignore[index,union-attr]
                   lw=0.8, ls=":")
        drawn = True
    _zero_line(ax, orientation="v")
    title = "" if window is None else f" over {int(window)} steps"
    _finish(ax, f"finite-time exponent{title} ({EXPONENT_UNIT})", "density")
    below = _two_line_xlabel(ax, f"finite-time exponent\n{title.strip()} ({EXPONENT_UNIT})")
    if drawn:  # under the Axes: inside, the key of many exponents covered their histograms
        n = len(ax.get_legend_handles_labels()[0])
        _legend_below(ax, ncol=min(n, 5), fit=True, handlelength=1.2, below=below)
    return ax
