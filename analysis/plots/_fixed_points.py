"""Fixed points: Jacobian eigenvalues in the complex plane, points among states in PCA."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._common import (
    NEGATIVE,
    POSITIVE,
    _axes,
    _field,
    _finish,
    _legend_below,
    _np,
    _plt,
    _plural,
    _slot_width,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _eigen_input(fixed_points):
    """``(eigenvalues (m, dim), stable (m,), points or None, bare)``; bare: no result."""
    bare = hasattr(fixed_points, "ndim") or isinstance(fixed_points, (list, tuple))
    if bare:
        ev = np.asarray(_np(fixed_points), dtype=complex)
        stable, points = None, None
    else:
        ev = _field(fixed_points, "eigenvalues", param="fixed_points")
        ev = np.asarray(_np(ev), dtype=complex)
        stable = _field(fixed_points, "stable", None, required=False)
        points = _field(fixed_points, "points", None, required=False)
    if ev.ndim not in (1, 2):
        raise ValueError(f"fixed_points: eigenvalues must have shape (dim,) or (n_points, dim), "
                         f"got {ev.shape}")
    if not np.all(np.isfinite(ev)):  # no point to draw, and no radius for the limits
        raise ValueError("fixed_points: the eigenvalues contain NaN or inf")
    ev2 = ev.reshape(-1, ev.shape[-1]) if ev.size else ev.reshape(0, 1)
    if stable is None:
        stable = np.abs(ev2).max(axis=1, initial=0.0) < 1.0
    stable = np.asarray(_np(stable), dtype=bool).reshape(-1)
    if stable.shape[0] != ev2.shape[0]:
        raise ValueError(f"stable has {stable.shape[0]} entries for {ev2.shape[0]} fixed points")
    if points is not None:
        points = np.asarray(_np(points), dtype=float)
        if points.ndim != 2 or points.shape[0] != ev2.shape[0]:
            points = None
    return ev2, stable, points, bare


def _spectrum_groups(ev2, points):
    """Points with the same spectrum (sorted parts and moduli within 1e-6), drawn once:
    ``[(indices, is_pm_pair), ...]``; two points ``x*`` and ``-x*`` are a ± pair."""
    m = ev2.shape[0]
    tol = 1e-6 * (1.0 + float(np.abs(ev2).max(initial=0.0)))
    keys = np.concatenate([np.sort(ev2.real, axis=1), np.sort(ev2.imag, axis=1),
                           np.sort(np.abs(ev2), axis=1)], axis=1) if m else np.zeros((0, 0))
    seen = np.zeros(m, dtype=bool)
    groups = []
    for i in range(m):
        if seen[i]:
            continue
        same = np.flatnonzero(~seen & (np.abs(keys - keys[i]).max(axis=1, initial=0.0) <= tol))
        seen[same] = True
        pm = False
        if points is not None and same.size == 2:
            p, q = points[same[0]], points[same[1]]
            ptol = 1e-6 * (1.0 + float(np.abs(points).max(initial=0.0)))
            opposite = np.abs(p + q) <= ptol
            shared = np.abs(p - q) <= ptol
            pm = bool(np.all(opposite | shared) and np.any(opposite & ~shared))
        groups.append((same, pm))
    return groups


def _group_label(idx, pm, stable):
    kind = "stable" if stable else "unstable"
    if idx.size == 1:
        return f"#{int(idx[0])} {kind}"
    names = " & ".join(f"#{int(i)}" for i in idx[:3]) + (" & ..." if idx.size > 3 else "")
    return f"{names} {kind} ({'± pair' if pm else 'same spectrum'})"


def eigenvalues(fixed_points: Any, *, ax: Axes | None = None) -> Axes:
    """Jacobian eigenvalues of fixed points in the complex plane, with the unit circle.

    Up to ten spectra each have a colour (hollow circle: stable, cross:
    unstable); more share a colour per stability. Equal spectra (``x*`` and
    ``-x*`` of an odd activation: a ``± pair``) are drawn once. The legend sits
    under the Axes (keep it in a saved figure with a constrained layout or
    ``bbox_inches="tight"``), and the limits widen to fill the panel. A result of
    a period-``p`` search holds the eigenvalues of the Jacobian of ``F^p``; the
    legend's title names its points "period-p points".

    Parameters
    ----------
    fixed_points : FixedPoints or array
        An object with ``eigenvalues`` (m, dim) and optionally ``stable``
        (m,) and ``points`` (m, dim), or the complex eigenvalues themselves
        (any shape).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``fixed_points`` without ``eigenvalues``.
    ValueError
        Eigenvalues of the wrong shape or not finite, or ``stable`` that does not
        match them.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> fp = {"eigenvalues": np.array([[0.5 + 0.5j, 0.5 - 0.5j]]), "stable": [True]}
    >>> ax = plots.eigenvalues(fp)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['unit circle', '#0 stable']
    >>> ax.get_legend().get_title().get_text()
    '1 fixed point, 2 eigenvalues each'
    """
    ev2, stable, points, bare = _eigen_input(fixed_points)
    ax = _axes(ax)
    t = np.linspace(0, 2 * np.pi, 400)
    # above the markers: eigenvalues on or near the circle must not hide it
    ax.plot(np.cos(t), np.sin(t), color="0.2", lw=0.8, ls="--", label="unit circle", zorder=4)
    groups = _spectrum_groups(ev2, points)
    if len(groups) <= 10:
        cmap = _plt().get_cmap("tab10")
        for g, (idx, pm) in enumerate(groups):
            row, st = ev2[idx[0]], bool(stable[idx[0]])
            style: dict[str, Any] = (dict(marker="o", facecolors="none", edgecolors=cmap(g), s=16)
                                     if st else dict(marker="x", color=cmap(g), s=18))
            ax.scatter(row.real, row.imag, lw=0.9, zorder=3, label=_group_label(idx, pm, st),
                       **style)
    else:
        drawn = np.zeros(ev2.shape[0], dtype=bool)
        drawn[[int(idx[0]) for idx, _ in groups]] = True
        styles: list[tuple[Any, str, dict[str, Any]]] = [
            (stable, "stable", dict(marker="o", facecolors="none", edgecolors=NEGATIVE, s=14)),
            (~stable, "unstable", dict(marker="x", color=POSITIVE, s=18))]
        for mask, name, style in styles:
            pts = ev2[mask & drawn].reshape(-1)
            if pts.size:
                ax.scatter(pts.real, pts.imag, lw=0.9, zorder=3,
                           label=f"{name}: {_plural(int(mask.sum()), 'point')}", **style)
    r = max(1.1, 1.1 * float(np.abs(ev2).max(initial=0.0)))
    # the square [-r, r]^2 as data limits, widened along x or y to fill the slot: side by
    # side panels keep no gaps (fixed limits would shrink the Axes to a square)
    ax.update_datalim(np.array([[-r, -r], [r, r]]))
    ax.margins(0.0)
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    ax.axhline(0, color="0.8", lw=0.5, zorder=0)
    ax.axvline(0, color="0.8", lw=0.5, zorder=0)
    _finish(ax, r"Re $\mu$", r"Im $\mu$")
    period = 1 if bare else int(_field(fixed_points, "period", 1, required=False) or 1)
    kind = "fixed point" if period == 1 else f"period-{period} point"
    title = (_plural(ev2.shape[1], "eigenvalue") if bare and ev2.shape[0] == 1  # a spectrum
             else f"{_plural(ev2.shape[0], kind)}, {ev2.shape[1]} eigenvalues each")
    if any(idx.size > 1 for idx, _ in groups):
        title += "; equal spectra drawn once"
    n = len(ax.get_legend_handles_labels()[0])
    legend = _legend_below(ax, ncol=min(n, 2), title=title, fit=True)
    # a title wider than the panel ran under the next one of a row: a line per clause
    for sep in ("; ", ", "):
        if legend.get_window_extent().width <= _slot_width(ax) or sep not in title:
            break
        title = title.replace(sep, sep.rstrip() + "\n")
        legend = _legend_below(ax, ncol=min(n, 2), title=title, fit=True)
    return ax


def fixed_points_pca(fixed_points: Any, states: Any, *, ax: Axes | None = None,
                     components: Sequence[int] = (0, 1), max_lines: int = 50) -> Axes:
    """Fixed points in the top principal components of trajectories, by stability.

    The principal axes are those of ``states``; trajectories are drawn thin and grey
    behind, stable points as filled blue dots, points with one unstable direction
    (saddles) as red crosses, others as open red circles.

    Parameters
    ----------
    fixed_points : FixedPoints or dict
        With ``points`` (m, dim) and ``n_unstable`` (m,).
    states : array of shape (T, n, dim) or (N, dim), or Trajectory
        States along trajectories (an :class:`itermap.Trajectory`'s own); a 3-D array
        is drawn as ``n`` lines.
    ax : matplotlib Axes, optional
    components : pair of int
        The principal components on the axes.
    max_lines : int
        At most this many trajectories drawn.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For points whose dimension is not that of ``states``.
    TypeError
        For ``states`` that are no array of numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> rng = np.random.default_rng(0)
    >>> ax = plots.fixed_points_pca({"points": rng.normal(size=(3, 4)),
    ...                              "n_unstable": np.array([0, 1, 2])},
    ...                             rng.normal(size=(10, 5, 4)))
    >>> ax.get_xlabel()
    'PC 1'
    """
    pts = np.asarray(_np(_field(fixed_points, "points", param="fixed_points")), dtype=float)
    n_unstable = _field(fixed_points, "n_unstable", param="fixed_points")
    n_unstable = np.asarray(_np(n_unstable), dtype=int)
    if hasattr(states, "states"):      # a Trajectory from itermap.iterate
        states = states.states
    try:
        S = np.asarray(_np(states), dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"states must be an array of states or a Trajectory, got "
                        f"{type(states).__name__}") from None
    flat = S.reshape(-1, S.shape[-1])
    if pts.ndim != 2 or pts.shape[1] != flat.shape[1]:
        raise ValueError(f"points of shape {pts.shape} do not match states of dim "
                         f"{flat.shape[1]}")
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    axes = vt[list(components)].T
    ax = _axes(ax)
    if S.ndim == 3:
        for i in range(min(S.shape[1], max_lines)):
            p = (S[:, i] - mean) @ axes
            ax.plot(p[:, 0], p[:, 1], color="0.8", lw=0.5, zorder=1)
    else:
        p = (flat - mean) @ axes
        ax.scatter(p[:, 0], p[:, 1], s=2, color="0.8", zorder=1)
    q = (pts - mean) @ axes
    for mask, name, style in (
            (n_unstable == 0, "stable", dict(marker="o", color=NEGATIVE, s=30)),
            (n_unstable == 1, "saddle (1 unstable)", dict(marker="x", color=POSITIVE, s=30)),
            (n_unstable > 1, "unstable (>1)", dict(marker="o", facecolors="none",
                                                   edgecolors=POSITIVE, s=30))):
        if mask.any():
            ax.scatter(q[mask, 0], q[mask, 1], label=f"{name} ({int(mask.sum())})", zorder=3,
                       **style)  # type: ignore[arg-type]
    _finish(ax, f"PC {components[0] + 1}", f"PC {components[1] + 1}")
    # under the Axes: inside, "best" put it over a fixed point among the trajectories
    n = len(ax.get_legend_handles_labels()[0])
    if n:
        _legend_below(ax, ncol=min(n, 3), fit=True)
    return ax
