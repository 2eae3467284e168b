"""Basins of attraction and continuation branches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_int, is_sequence
from ._common import NEGATIVE, POSITIVE, _axes, _field, _finish, _legend_below, _np, _plt

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def basins(result: Any, shape: Sequence[int], *,
           extent: tuple[float, float, float, float] | None = None,
           ax: Axes | None = None, labels: Sequence[str] | None = None) -> Axes:
    """A 2-D slice of state space coloured by basin, with escape and non-periodic starts.

    A colour per attractor; bounded starts on no periodic orbit dark violet, escaping
    starts pale; the legend gives each share of the slice (past 7 attractors, the 6
    largest basins and the share of the others).

    Parameters
    ----------
    result : Basins
        From :func:`itermap.analysis.basins` over starts on a grid, in
        row-major order (``np.meshgrid(xs, ys)`` raveled).
    shape : (int, int)
        The grid's shape ``(len(ys), len(xs))``.
    extent : (x0, x1, y0, y1), optional
        The slice's coordinates, for the axes.
    ax : matplotlib Axes, optional
    labels : list of str, optional
        A name per attractor for the legend (default: the point's index and period).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        When ``shape`` does not hold one cell per start, or ``labels`` does
        not name every attractor.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import basins, plots
    >>> m = itermap.IterativeMap(np.array([[2.0, 0.0], [0.0, 2.0]]))
    >>> g = np.linspace(-1, 1, 21)
    >>> X, Y = np.meshgrid(g, g)
    >>> b = basins(m, np.column_stack([X.ravel(), Y.ravel()]), steps=100)
    >>> ax = plots.basins(b, X.shape, extent=(-1, 1, -1, 1))
    >>> len(ax.images)
    1

    The Hénon map's strange attractor against escape:

    >>> b = basins(itermap.systems.henon(), 2 * np.column_stack([X.ravel(), Y.ravel()]),
    ...            steps=200)
    >>> ax = plots.basins(b, X.shape, extent=(-2, 2, -2, 2))
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['bounded, no periodic orbit: 39.5%', 'escape: 60.5%']
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    lab = np.asarray(_np(_field(result, "labels", param="result")))
    periods = np.asarray(_np(_field(result, "periods", param="result")))
    if not is_sequence(shape):
        raise TypeError(f"shape must be a pair of ints (rows, columns), got {shape!r}")
    shape = tuple(check_int("shape", s, 1) for s in shape)
    if len(shape) != 2 or shape[0] * shape[1] != lab.size:
        raise ValueError(f"shape {shape} does not hold the {lab.size} starts of the result")
    k = periods.size
    if labels is not None and len(labels) != k:
        raise ValueError(f"labels: got {len(labels)} names for {k} attractors")
    base = _plt().get_cmap("tab10" if k <= 10 else "tab20")
    # image values: 0 escaped (-2), 1 bounded on no listed attractor (-1), 2 + i attractor i
    colours = [_ESCAPE_COLOUR, _APERIODIC_COLOUR] + [base(i % base.N) for i in range(k)]
    ax = _axes(ax)
    ax.imshow(np.clip(lab, -2, None).reshape(shape) + 2, origin="lower",
              cmap=ListedColormap(colours), vmin=-0.5, vmax=k + 1.5, extent=extent,
              aspect="auto", interpolation="nearest")
    share = [float(np.mean(lab == i)) for i in range(k)]
    names = list(labels) if labels is not None else [
        f"attractor {i} (period {int(p)})" for i, p in enumerate(periods)]
    present = [i for i in range(k) if share[i] > 0]
    # many attractors: the largest basins by name, the rest in one entry (a key of fifteen
    # was taller than the panel and squeezed a row of panels flat)
    named = sorted(sorted(present, key=lambda i: -share[i])[:_KEY_EACH]) \
        if len(present) > _KEY_EACH + 1 else present
    handles = [Patch(color=colours[i + 2], label=f"{names[i]}: {share[i]:.1%}") for i in named]
    if len(named) < len(present):
        rest = [i for i in present if i not in named]
        handles.append(Patch(fc="none", ec="0.4", lw=0.5, label=f"{len(rest)} more attractors: "
                             f"{sum(share[i] for i in rest):.1%}"))
    bounded = float(np.mean(lab == -1))
    if bounded > 0:
        aperiodic = _field(result, "aperiodic_fraction", None, required=False)
        what = ("bounded, no periodic orbit" if aperiodic is not None
                and abs(float(aperiodic) - bounded) < 1e-12 else "bounded, other")
        handles.append(Patch(color=colours[1], label=f"{what}: {bounded:.1%}"))
    escaped = float(np.mean(lab == -2))
    if escaped > 0:
        handles.append(Patch(fc=colours[0], ec="0.6", lw=0.5, label=f"escape: {escaped:.1%}"))
    _legend_below(ax, handles, ncol=min(len(handles), 2), handlelength=1.0,
                  title="fate of the starts in the slice")
    return _finish(ax, "slice coordinate 1", "slice coordinate 2")


_KEY_EACH = 6  # past this many attractors the key names the largest basins only
_ESCAPE_COLOUR = "#f4f1e8"     # pale: the starts that go to infinity
_APERIODIC_COLOUR = "#4b2a6e"  # dark violet: a bounded non-periodic (strange) attractor


def continuation(result: Any, *, component: int = 0, ax: Axes | None = None,
                 xlabel: str = "parameter", color: str = "k") -> Axes:
    """A branch of fixed points: stable solid, unstable dashed, bifurcations marked.

    Parameters
    ----------
    result : Continuation
        From :func:`itermap.analysis.continuation`.
    component : int, default 0
        The state coordinate drawn against the parameter.
    ax : matplotlib Axes, optional
    xlabel : str, default "parameter"
    color : colour of the branch

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``result`` is not a continuation result, or ``component`` is not an int.
    ValueError
        ``component`` names no component of the points.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import continuation, plots
    >>> make = lambda u: itermap.IterativeMap(np.array([[2.0]]), bias=np.array([u]))
    >>> c = continuation(make, np.linspace(1.0, -1.0, 41), np.array([0.99]))
    >>> ax = plots.continuation(c)
    >>> sorted({line.get_linestyle() for line in ax.lines})
    ['-', '--']
    """
    lam = np.asarray(_np(_field(result, "parameters", param="result")), dtype=float)
    pts = np.asarray(_np(_field(result, "points", param="result")), dtype=float)
    stable = np.asarray(_np(_field(result, "stable", param="result")), dtype=bool)
    component = check_int("component", component)
    if not -pts.shape[1] <= component < pts.shape[1]:
        raise ValueError(f"component {component} does not exist: the points have dim "
                         f"{pts.shape[1]}")
    bifs = _field(result, "bifurcations", [], required=False) or []
    ax = _axes(ax)
    y = pts[:, component]
    # runs of equal stability, each drawn to its neighbour point so the line is unbroken, or
    # to the bifurcation found between them: there stability changes (a coarse branch of
    # two points drew its unstable part as one invisible point, the marker off the line)
    between: dict[int, Any] = {}
    for b in bifs:
        between.setdefault(int(b.get("index", -1)), b)
    start, joint = 0, None
    for i in range(1, lam.size + 1):
        if i == lam.size or stable[i] != stable[start]:
            xs, ys = list(lam[start:i]), list(y[start:i])
            if joint is not None:
                xs.insert(0, joint[0])
                ys.insert(0, joint[1])
            joint = None
            if i < lam.size:
                b = between.get(i - 1)
                joint = None if b is None else (float(b["parameter"]),
                                                float(b["point"][component]))
                end = (lam[i], y[i]) if joint is None else joint
                xs.append(end[0])
                ys.append(end[1])
            ax.plot(xs, ys, color=color, lw=1.2, ls="-" if stable[start] else "--")
            start = i
    markers = {"fold": ("o", POSITIVE), "period doubling": ("s", NEGATIVE),
               "Neimark-Sacker": ("D", "#27ae60"), "branch point": ("^", "#8e44ad")}
    seen = set()
    for b in bifs:
        mk, col = markers.get(b["kind"], ("x", "0.3"))
        ax.scatter([b["parameter"]], [b["point"][component]], marker=mk, color=col, zorder=3,
                   s=28, label=None if b["kind"] in seen else b["kind"])
        seen.add(b["kind"])
    if seen:  # framed: an unframed marker inside the Axes reads as one more point
        ax.legend(fontsize="small", frameon=True)
    return _finish(ax, xlabel, f"fixed point $x_{{{component}}}$")
