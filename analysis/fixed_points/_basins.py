"""Basins of attraction: where each start ends up, and the fraction of starts per attractor
(as Attractors.jl's ``basins_fractions``, with binomial standard errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import itermap
from itermap.backends import to_numpy
from itermap.typing import Array, MapLike

from .._checks import check_batched_step, check_real, check_states
from .._checks import check_int as _check_int
from ._common import _check_inputs

__all__ = ["Basins", "basins"]


@itermap.saveable
@dataclass
class Basins(itermap.Result):
    """The fate of every start: the attractor it settles on, and the basin fractions.

    Attributes
    ----------
    labels : int array of shape (B,)
        Per start, the index of its attractor in ``attractors``; ``-1``
        (``Basins.BOUNDED``): bounded, on no listed attractor; ``-2``
        (``Basins.ESCAPED``): escaped (overflow, NaN, or beyond the escape radius).
    attractors : array of shape (k, dim)
        One point of each attractor: the given points, or for attractors
        found here, the point of the orbit with the least first coordinate (on a
        tie, the least second, and so on).
    periods : int array of shape (k,)
        The least period of each attractor (1 for a fixed point).
    fractions : array of shape (k,)
        The fraction of starts labelled with each attractor.
    errors : array of shape (k,)
        The standard error of each fraction, ``sqrt(f (1 - f) / B)``.
    other_fraction, other_error : float
        The fraction of starts on no listed attractor (labels -1 and -2
        together), and its standard error.
    final : array of shape (B, dim)
        The states after ``steps`` steps (NaN where a start escaped).
    steps : int
        The steps iterated before the orbits were examined.
    escaped_fraction, escaped_error : float
        The fraction of starts that escaped (label -2), and its standard error.
    aperiodic_fraction, aperiodic_error : float
        The fraction of bounded starts on no periodic orbit of period ``<= max_period``
        (a strange attractor, or a transient longer than ``steps``), and its standard
        error.
    escape_radius : float
        The norm beyond which a start counted as escaped.

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

    _schema: ClassVar[dict[str, str]] = {
        "labels": "int[...]",
        "attractors": "float[A, D]",
        "periods": "int[A]",
        "fractions": "float[A]",
        "errors": "float[A]",
        "other_fraction": "float",
        "other_error": "float",
        "final": "float[..., D]",
        "steps": "int",
        "escaped_fraction": "float",
        "escaped_error": "float",
        "aperiodic_fraction": "float",
        "aperiodic_error": "float",
        "escape_radius": "float",
    }
    _table: ClassVar[tuple[str, ...]] = ("attractors", "periods", "fractions", "errors")
    _dims: ClassVar[dict[str, str]] = {"A": "attractor", "D": "unit"}

    labels: Array
    attractors: Array
    periods: Array
    fractions: Array
    errors: Array
    other_fraction: float
    other_error: float
    final: Array
    steps: int
    escaped_fraction: float = 0.0
    escaped_error: float = 0.0
    aperiodic_fraction: float = 0.0
    aperiodic_error: float = 0.0
    escape_radius: float = float("inf")

    BOUNDED: ClassVar[int] = -1
    ESCAPED: ClassVar[int] = -2

    def __repr__(self) -> str:
        parts = ", ".join(f"{f:.3f}" for f in np.asarray(self.fractions))
        # other_fraction is the sum of the two: named as such, not as a third share
        return (f"Basins(attractors={len(np.asarray(self.periods))}, fractions=[{parts}], "
                f"other={self.other_fraction:.3f} (aperiodic {self.aperiodic_fraction:.3f} "
                f"+ escaped {self.escaped_fraction:.3f}))")


def _check_starts(map_, x0):
    if x0 is None or isinstance(x0, (str, bytes)):
        raise TypeError(f"x0 must be an array of shape (B, {map_.dim}), got {x0!r}")
    x = check_states("x0", x0).copy()
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != map_.dim or x.shape[0] == 0:
        raise ValueError(f"x0 must have shape (B, {map_.dim}) with B >= 1 for a map of dim "
                         f"{map_.dim}, got shape {tuple(np.shape(x0))}")
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


def basins(map: MapLike, x0: Array, *, steps: int, inputs: Array | None = None,
           attractors: Array | None = None, max_period: int = 16,
           tol: float = 1e-6, escape_radius: float | None = None) -> Basins:
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
        Known attractor points (any point of a periodic orbit); starts settling
        elsewhere are "other". Default: the distinct orbits the starts settle on.
    max_period : int, default 16
        The longest period recognised; longer cycles count as "other".
    tol : float, default 1e-6
        A start has settled on a period-``p`` orbit when
        ``||F^p(x) - x|| <= tol (1 + ||x||)``; orbits and given points match
        within ``sqrt(tol) (1 + ||x||)`` (the states converge as the square
        root of the residual near a slowly contracting point).
    escape_radius : float, optional
        A start escapes (label -2) when its state becomes infinite or NaN, or its
        norm exceeds this, at any step. Default: ``1e6 * max(1, max ||x0||)``.

    Returns
    -------
    Basins
        ``labels``, ``attractors``, ``periods``, ``fractions`` with their
        standard ``errors``, ``escaped_fraction``, ``aperiodic_fraction``,
        ``other_fraction`` and ``final`` states.

    Raises
    ------
    ValueError
        ``steps < 1``, ``max_period < 1``, ``tol <= 0``, ``escape_radius <= 0``, starts
        or attractors of the wrong dimension or with NaN, inputs that do not fit the map.
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

    The Hénon map: starts near the origin stay on its strange attractor
    (bounded, no cycle: label -1), starts far out escape to infinity (-2).

    >>> b = basins(itermap.systems.henon(), np.array([[0.1, 0.1], [0.0, 0.0], [4.0, 4.0]]),
    ...            steps=500)
    >>> b.labels.tolist(), b.aperiodic_fraction, b.escaped_fraction
    ([-1, -1, -2], 0.6666666666666666, 0.3333333333333333)

    References
    ----------
    .. [1] M. Hénon, "A two-dimensional mapping with a strange attractor",
       Commun. Math. Phys. 50, 69-77 (1976).
    .. [2] G. Datseris and A. Wagemakers, "Effortless estimation of basins of
       attraction", Chaos 32, 023104 (2022).
    .. [3] H. E. Nusse and J. A. Yorke, "Dynamics: Numerical Explorations", 2nd ed.,
       Springer 1998 (basins of attraction and their boundaries).
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
    u = _check_inputs(map, inputs, np)      # one constant input, find_fixed_points' rules
    if u is not None:
        u = np.broadcast_to(np.asarray(u, dtype=float), (n, u.shape[0]))
    check_batched_step(lambda row: map.step(row, None if u is None else u[:1]), x[:1], map.dim)
    if map.backend not in (None, "numpy"):
        raise ValueError(f"basins runs on NumPy maps; move the map with .to('numpy') (got "
                         f"{map.backend})")
    if escape_radius is None:
        escape_radius = 1e6 * max(1.0, float(np.linalg.norm(x, axis=1).max()))
    radius = check_real("escape_radius", escape_radius, positive=True)
    orbit, escaped = _orbits(map, x, u, steps, max_period, radius)
    per = None if map.periods is None else np.array([P or 0.0 for P in map.periods])
    bounded = ~escaped
    size = 1.0 + np.linalg.norm(np.where(bounded[:, None], orbit[:, 0, :], 0.0), axis=1)
    with np.errstate(invalid="ignore"):  # escaped orbits: inf - inf, never settled
        gaps = np.linalg.norm(_diff(orbit[:, 1:, :], orbit[:, :1, :], per), axis=2)  # (B, P)
    close = gaps <= tol * size[:, None]
    settled = bounded & np.any(close, axis=1)
    period = np.where(settled, np.argmax(close, axis=1) + 1, 0)
    match = np.sqrt(tol) * size
    if given is not None:
        labels = _label_given(orbit, settled, period, match, given, per)
        att = given
        periods = np.array([_least_period(map, a, u, max_period, tol, per) for a in given],
                           dtype=np.int64)
    else:
        labels, att, periods = _label_found(orbit, settled, period, match, map.dim, per)
    labels[escaped] = Basins.ESCAPED
    counts = np.bincount(labels[labels >= 0], minlength=att.shape[0]).astype(float)
    fractions = counts / n
    other = float(np.mean(labels < 0))
    esc = float(np.mean(escaped))
    aperiodic = float(np.mean(bounded & ~settled))

    def se(f):
        return float(np.sqrt(f * (1.0 - f) / n))

    return Basins(labels=labels, attractors=att, periods=periods, fractions=fractions,
                  errors=np.sqrt(fractions * (1.0 - fractions) / n), other_fraction=other,
                  other_error=se(other), final=np.where(bounded[:, None], orbit[:, 0, :], np.nan),
                  steps=steps, escaped_fraction=esc, escaped_error=se(esc),
                  aperiodic_fraction=aperiodic, aperiodic_error=se(aperiodic),
                  escape_radius=radius)


def _orbits(map_, x, u, steps, max_period, radius):
    """``(orbit (B, P + 1, dim), escaped (B,))``: the last ``P + 1`` states of each start;
    every step is checked (an overflow can come back finite: ``tanh(inf) = 1``)."""
    escaped = np.zeros(x.shape[0], dtype=bool)
    points = []
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps + max_period):
            # a map on a torus: every state wrapped onto [0, P) (Map.wrap), so orbits compare
            x = np.asarray(map_.wrap(map_.step(x, u)), dtype=float)
            out = ~np.all(np.isfinite(x), axis=1)
            out[~out] = np.linalg.norm(x[~out], axis=1) > radius
            if out.any():
                escaped |= out
                x = np.where(escaped[:, None], np.nan, x)
            if k >= steps - 1:
                points.append(x)
    return np.stack(points, axis=1), escaped


def _diff(a, b, per):
    """``a - b``, on a torus (``per``: the periods, 0 where none) the shortest way round."""
    d = a - b
    return d if per is None else d - per * np.round(d / np.where(per > 0, per, 1.0))


def _label_given(orbit, settled, period, match, given, per):
    """Per settled start, the nearest given point to any point of its orbit within ``match``."""
    labels = np.full(orbit.shape[0], Basins.BOUNDED, dtype=np.int64)
    for i in np.flatnonzero(settled):
        pts = orbit[i, :period[i], :]
        d = np.linalg.norm(_diff(pts[:, None, :], given[None, :, :], per), axis=2).min(axis=0)
        j = int(np.argmin(d))
        if d[j] <= match[i]:
            labels[i] = j
    return labels


def _label_found(orbit, settled, period, match, dim, per):
    """Labels, attractors and periods of the distinct orbits the settled starts sit on."""
    labels = np.full(orbit.shape[0], Basins.BOUNDED, dtype=np.int64)
    idx = np.flatnonzero(settled)
    if idx.size == 0:
        return labels, np.zeros((0, dim)), np.zeros(0, dtype=np.int64)
    # one point per orbit: the one with the least first coordinate (then second, ...)
    reps = np.asarray([orbit[i, np.lexsort(orbit[i, :period[i], ::-1].T)[0], :] for i in idx])
    leaders: list[int] = []
    for pos, (k, r) in enumerate(zip(idx, reps, strict=True)):
        for j, lead in enumerate(leaders):
            # against every point of the leader's orbit: two of its points may share the
            # least first coordinate, and the starts' phases pick either as theirs
            ring = orbit[idx[lead], :period[idx[lead]], :]
            if np.linalg.norm(_diff(r, ring, per), axis=-1).min() <= match[k]:
                labels[k] = j
                break
        else:
            labels[k] = len(leaders)
            leaders.append(pos)
    att = reps[leaders]
    periods = period[idx[leaders]].astype(np.int64)
    # sort the attractors by their first coordinate, for reproducible labels
    order = np.lexsort(att.T[::-1])
    relabel = np.argsort(order)          # the inverse permutation: old label -> new
    labels = np.where(labels >= 0, relabel[np.maximum(labels, 0)], Basins.BOUNDED)
    return labels, att[order], periods[order]


def _least_period(map_, point, u, max_period, tol, per):
    """The least ``p <= max_period`` with ``F^p(a) = a`` within tol; 0 if none."""
    uu = None if u is None else u[:1]
    y = point[None, :]
    for p in range(1, max_period + 1):
        y = np.asarray(map_.wrap(map_.step(y, uu)), dtype=float)
        if np.linalg.norm(_diff(y[0], point, per)) <= tol * (1.0 + np.linalg.norm(point)):
            return p
    return 0
