"""Basins of attraction: where each start ends up, and the fraction of starts per attractor.

Every start is iterated for ``steps`` steps (all starts in one batch); then the
orbit is followed ``max_period`` steps more, and a start has *settled* on a
periodic orbit of period ``p`` when ``||F^p(x) - x||`` is within a tolerance.
Settled starts are labelled by the attractor (a fixed point, or a periodic
orbit) they sit on; the others (chaotic, diverged, or not settled within
``steps``) are labelled ``-1``, "other". The fractions of starts per
attractor estimate the basins' shares of the region the starts are drawn
from, as Attractors.jl's ``basins_fractions`` does, here with the binomial
standard error of each fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import itermap
from itermap._types import Array, MapLike
from itermap.backends import to_numpy

from ._checks import check_int as _check_int
from ._checks import check_real, check_real_array
from ._fixed_points import _check_inputs as _check_constant_input

__all__ = ["Basins", "basins"]


@itermap.saveable
@dataclass
class Basins:
    """The fate of every start: the attractor it settles on, and the basin fractions.

    Attributes
    ----------
    labels : int array of shape (B,)
        Per start, the index of its attractor in ``attractors``, or -1
        ("other": chaotic, diverged, or not settled within ``steps``).
    attractors : array of shape (k, dim)
        One point of each attractor: the given points, or for attractors
        found here, the point of the orbit with the least first coordinate.
    periods : int array of shape (k,)
        The least period of each attractor (1 for a fixed point).
    fractions : array of shape (k,)
        The fraction of starts labelled with each attractor.
    errors : array of shape (k,)
        The standard error of each fraction, ``sqrt(f (1 - f) / B)``.
    other_fraction, other_error : float
        The fraction of starts labelled -1, and its standard error.
    final : array of shape (B, dim)
        The states after ``steps`` steps (NaN where a start diverged; its label is -1).
    steps : int
        The steps iterated before the orbits were examined.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import basins
    >>> b = basins(itermap.IterativeMap(np.array([[2.0]])), np.array([[-0.5], [0.5]]),
    ...            steps=100)
    >>> b.labels.shape, b.periods.tolist(), np.round(b.fractions, 3).tolist()
    ((2,), [1, 1], [0.5, 0.5])
    """

    labels: Array
    attractors: Array
    periods: Array
    fractions: Array
    errors: Array
    other_fraction: float
    other_error: float
    final: Array
    steps: int

    def __repr__(self) -> str:
        parts = ", ".join(f"{f:.3f}" for f in np.asarray(self.fractions))
        return (f"Basins(attractors={len(np.asarray(self.periods))}, fractions=[{parts}], "
                f"other={self.other_fraction:.3f})")


def _check_starts(map_, x0):
    if x0 is None or isinstance(x0, (str, bytes)):
        raise TypeError(f"x0 must be an array of shape (B, {map_.dim}), got {x0!r}")
    x = check_real_array("x0", to_numpy(x0) if hasattr(x0, "shape") else x0).copy()
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != map_.dim or x.shape[0] == 0:
        raise ValueError(f"x0 must have shape (B, {map_.dim}) with B >= 1 for a map of dim "
                         f"{map_.dim}, got shape {tuple(np.shape(x0))}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 contains NaN or inf")
    return x


def _check_attractors(map_, attractors):
    if attractors is None:
        return None
    pts = getattr(attractors, "points", attractors)   # a FixedPoints result works too
    a = np.array(to_numpy(pts) if hasattr(pts, "shape") else pts, dtype=float)
    if a.ndim == 1 and a.size == map_.dim:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != map_.dim:
        raise ValueError(f"attractors must be points of shape (k, {map_.dim}) for a map of "
                         f"dim {map_.dim}, got shape {tuple(np.shape(pts))}")
    if not np.all(np.isfinite(a)):
        raise ValueError("attractors contain NaN or inf")
    return a


def _check_inputs(map_, inputs, n):
    """The constant input, one row per start (None for an autonomous map)."""
    u = _check_constant_input(map_, inputs, np)  # find_fixed_points' rules for one input
    return None if u is None else np.broadcast_to(np.asarray(u, dtype=float), (n, u.shape[0]))


def basins(map: MapLike, x0: Array, *, steps: int, inputs: Array | None = None,
           attractors: Array | None = None, max_period: int = 16,
           tol: float = 1e-6) -> Basins:
    """Label every start by the attractor it settles on; the fraction of starts per attractor.

    Parameters
    ----------
    map : itermap.Map
        Any map of the protocol (only ``step`` is used).
    x0 : array of shape (B, dim)
        The starts (a grid over a 2-D slice for a figure, or random draws
        for the fractions).
    steps : int
        Steps iterated before a start's orbit is examined (>= 1).
    inputs : array of shape (n_in,), optional
        The constant input of a driven map.
    attractors : array of shape (k, dim) or FixedPoints, optional
        Known attractor points (one point per attractor; for a periodic
        orbit any of its points). Starts settling on an orbit through a
        given point get its index; starts settling elsewhere are "other".
        When omitted, the attractors are the distinct orbits the starts
        settle on.
    max_period : int, default 16
        The longest period recognised; longer cycles count as "other".
    tol : float, default 1e-6
        A start has settled on a period-``p`` orbit when
        ``||F^p(x) - x|| <= tol (1 + ||x||)``; orbits and given points match
        within ``sqrt(tol) (1 + ||x||)`` (the states converge as the square
        root of the residual near a slowly contracting point).

    Returns
    -------
    Basins
        ``labels``, ``attractors``, ``periods``, ``fractions`` with their
        standard ``errors``, ``other_fraction`` and ``final`` states.

    Raises
    ------
    ValueError
        ``steps < 1``, ``max_period < 1``, ``tol <= 0``, starts or attractors
        of the wrong dimension or with NaN, inputs that do not fit the map.
    TypeError
        Non-integer ``steps``, starts that are not an array.

    Examples
    --------
    ``x -> tanh(2 x)``: positive starts go to the stable point 0.9575, negative
    ones to -0.9575; the origin is fixed but unstable.

    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import basins
    >>> m = itermap.IterativeMap(np.array([[2.0]]))
    >>> b = basins(m, np.linspace(-1, 1, 201)[:, None], steps=200)
    >>> np.round(b.attractors[:, 0], 4), np.round(b.fractions, 3)
    (array([-0.9575,  0.    ,  0.9575]), array([0.498, 0.005, 0.498]))
    """
    map = itermap.as_map(map)
    steps = _check_int("steps", steps, 1)
    max_period = _check_int("max_period", max_period, 1)
    tol = check_real("tol", tol, positive=True)
    x = _check_starts(map, x0)
    given = _check_attractors(map, attractors)
    if given is not None:
        given = np.asarray(map.wrap(given), dtype=float)
    n = x.shape[0]
    u = _check_inputs(map, inputs, n)
    if map.backend not in (None, "numpy"):
        raise ValueError(f"basins runs on NumPy maps; move the map with .to('numpy') (got "
                         f"{map.backend})")
    with np.errstate(over="ignore", invalid="ignore"):
        # a map on a torus: every state wrapped onto [0, P) (Map.wrap), so orbits compare
        for _ in range(steps):
            x = np.asarray(map.wrap(map.step(x, u)), dtype=float)
        points = [x]
        for _ in range(max_period):
            points.append(np.asarray(map.wrap(map.step(points[-1], u)), dtype=float))
    orbit = np.stack(points, axis=1)                              # (B, P + 1, dim)
    finite = np.all(np.isfinite(orbit), axis=(1, 2))
    size = 1.0 + np.linalg.norm(np.where(np.isfinite(x), x, 0.0), axis=1)
    with np.errstate(invalid="ignore"):  # diverged orbits: inf - inf, labelled "other"
        gaps = np.linalg.norm(orbit[:, 1:, :] - orbit[:, :1, :], axis=2)   # (B, P)
    settled = finite & np.any(gaps <= tol * size[:, None], axis=1)
    period = np.where(settled, np.argmax(gaps <= tol * size[:, None], axis=1) + 1, 0)
    match = np.sqrt(tol) * size
    labels = np.full(n, -1, dtype=np.int64)
    if given is not None:
        # nearest given point to any point of the start's orbit, within the match radius
        for i in np.flatnonzero(settled):
            pts = orbit[i, :period[i], :]
            d = np.linalg.norm(pts[:, None, :] - given[None, :, :], axis=2).min(axis=0)
            j = int(np.argmin(d))
            if d[j] <= match[i]:
                labels[i] = j
        att = given
        periods = np.array([_least_period(map, a, u, max_period, tol) for a in given],
                           dtype=np.int64)
    else:
        found = []
        for i in np.flatnonzero(settled):
            pts = orbit[i, :period[i], :]
            found.append(pts[np.argmin(pts[:, 0])])
        att, periods = np.zeros((0, map.dim)), np.zeros(0, dtype=np.int64)
        if found:
            idx = np.flatnonzero(settled)
            reps = np.asarray(found)
            leaders: list[int] = []
            for k, r in zip(idx, reps, strict=True):
                for j, lead in enumerate(leaders):
                    if np.linalg.norm(r - reps[lead]) <= match[k]:
                        labels[k] = j
                        break
                else:
                    labels[k] = len(leaders)
                    leaders.append(int(np.flatnonzero(idx == k)[0]))
            att = reps[leaders]
            periods = period[idx[leaders]].astype(np.int64)
            # sort the attractors by their first coordinate, for reproducible labels
            order = np.lexsort(att.T[::-1])
            att, periods = att[order], periods[order]
            relabel = np.empty(order.size, dtype=np.int64)
            relabel[order] = np.arange(order.size)
            labels = np.where(labels >= 0, relabel[np.maximum(labels, 0)], -1)
    counts = np.bincount(labels[labels >= 0], minlength=att.shape[0]).astype(float)
    fractions = counts / n
    other = float(np.mean(labels < 0))
    return Basins(labels=labels, attractors=att, periods=periods, fractions=fractions,
                  errors=np.sqrt(fractions * (1.0 - fractions) / n), other_fraction=other,
                  other_error=float(np.sqrt(other * (1.0 - other) / n)),
                  final=np.where(np.isfinite(x), x, np.nan),
                  steps=steps)


def _least_period(map_, point, u, max_period, tol):
    """The least ``p <= max_period`` with ``F^p(a) = a`` within tol; 0 if none."""
    uu = None if u is None else u[:1]
    y = point[None, :]
    for p in range(1, max_period + 1):
        y = np.asarray(map_.wrap(map_.step(y, uu)), dtype=float)
        if np.linalg.norm(y[0] - point) <= tol * (1.0 + np.linalg.norm(point)):
            return p
    return 0
