"""Continuation of a fixed point along a parameter, with its bifurcations.

Pseudo-arclength continuation of ``H(x, lam) = F_lam(x) - x = 0`` (Keller's
method): a tangent predictor, a Newton corrector on ``H = 0`` plus the
arclength condition, and step control, so that a branch passes through folds
(where ``lam`` turns back). At each point the multipliers (eigenvalues of
``D_x F``) give the stability; where a multiplier crosses the unit circle
between two points, the crossing is located by bisection on the arclength:
at ``+1`` a fold (saddle-node), at ``-1`` a period doubling, as a complex
pair a Neimark-Sacker bifurcation. Where ``lam`` turns back and no multiplier
crosses (one touches ``+1`` from one side), the branch meets another: a branch
point (the pitchfork of ``x -> tanh(w x)`` at ``w = 1``, followed from ``x > 0``
onto its mirror), located by bisection on the sign of the tangent's ``lam``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

import itermap
from itermap.backends import to_numpy
from itermap.typing import Array

from .._checks import check_batched_step, check_real, check_real_array, check_states
from .._checks import check_int as _check_int
from ._basins import _diff
from ._common import (
    ON_CIRCLE,
    _check_inputs,
    _check_reachable,
    _default_tol,
    _eigenvalues,
    _stability,
)

__all__ = ["Continuation", "continuation"]

_KINDS = ("fold", "period doubling", "Neimark-Sacker", "branch point")
# step control: grow after an easy correction, halve after a failed one
_GROW, _EASY, _MAX_NEWTON = 1.5, 3, 8
# the tangent may turn at most this much (cosine) between two points
_MIN_COS = 0.95
# and the corrector may move at most this fraction of the step
_MAX_CORRECTION = 0.3
# bisection of a crossing stops when the arclength bracket is this small
_BRACKET = 1e-11


@itermap.saveable
@dataclass
class Continuation(itermap.Result):
    """A branch of fixed points ``x(lam)`` and the bifurcations along it.

    Attributes
    ----------
    parameters : array of shape (M,)
        The parameter at each point of the branch, in arclength order (it
        turns back at folds).
    points : array of shape (M, dim)
        The fixed points, ``||F_lam(x) - x|| <= tol``.
    eigenvalues : complex array of shape (M, dim)
        The multipliers at each point, by modulus, largest first.
    stable : bool array of shape (M,)
        Every multiplier inside the unit circle (a modulus within 1e-9 of 1 is on
        it: no crossing is reported for a multiplier that stays there).
    arclength : array of shape (M,)
        Arclength along the branch in ``(x, lam)`` space.
    bifurcations : list of dict
        Each with ``kind`` ("fold", "period doubling", "Neimark-Sacker", or
        "branch point": ``lam`` turns with no multiplier crossing, where the
        branch meets another, as at a pitchfork),
        ``parameter``, ``point`` (a list), ``index`` (the branch point just
        before it) and ``multiplier`` (the crossing one, real and imaginary
        parts).
    stop_reason : str
        Why the branch ended: "end of range", "max_points", or "step too
        small" (the corrector failed with the least step).

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import continuation
    >>> make = lambda u: itermap.IterativeMap(np.array([[0.5]]), bias=np.array([u]))
    >>> c = continuation(make, np.linspace(0.0, 0.5, 6), np.array([0.0]))
    >>> c.points.shape[1], bool(c.stable.all()), c.bifurcations
    (1, True, [])
    """

    # what load checks in a file (itermap/_interop/_schema.py)
    _schema: ClassVar[dict[str, str]] = {
        "parameters": "float[N]",
        "points": "float[N, D]",
        "eigenvalues": "complex[N, *]",
        "stable": "bool[N]",
        "arclength": "float[N]",
        "bifurcations": "list[dict]",
        "stop_reason": "str",
    }
    _table: ClassVar[tuple[str, ...]] = ("parameters", "points", "stable", "arclength",
                                         "eigenvalues")
    _dims: ClassVar[dict[str, str]] = {"N": "point", "D": "unit"}
    _checks: ClassVar[tuple[itermap.Check, ...]] = (itermap.Check(
        "stop_reason", itermap.Status.STOPPED, "the branch stopped before the end of the "
        "range ({stop_reason}): lower min_step, or raise max_points",
        count=lambda r: r not in ("", "end of range")),)

    parameters: Array
    points: Array
    eigenvalues: Array
    stable: Array
    arclength: Array
    bifurcations: list = field(default_factory=list)
    stop_reason: str = ""

    def __len__(self) -> int:
        return int(np.asarray(self.parameters).shape[0])

    def __repr__(self) -> str:
        kinds = ", ".join(f"{b['kind']} at {b['parameter']:.6g}" for b in self.bifurcations)
        return f"Continuation(points={len(self)}, bifurcations=[{kinds}], {self.stop_reason})"


class _Family:
    """``H(x, lam)`` and its derivatives for a family of maps ``make_map(lam)``."""

    def __init__(self, make_map, inputs, dim):
        self.make_map, self.inputs, self.dim = make_map, inputs, dim

    def _map(self, lam):
        m = itermap.as_map(self.make_map(float(lam)))
        if m.dim != self.dim:
            raise ValueError(f"make_map({lam}) has dim {m.dim}, the branch has dim {self.dim}")
        return m

    def _u(self, m):
        if m.input_size == 0:
            return None
        if self.inputs is None:
            raise ValueError(f"inputs: make_map gives a driven map (input size "
                             f"{m.input_size}): pass the constant input")
        return np.asarray(self.inputs, dtype=float)[None, :]

    def value(self, x, lam):
        m = self._map(lam)
        y = np.asarray(to_numpy(m.step(x[None, :], self._u(m))), dtype=float)[0]
        # on a torus F(x) = x modulo the periods, as find_fixed_points solves it
        return _diff(y, x, None if m.periods is None else np.array([P or 0.0 for P in m.periods]))

    def jacobian(self, x, lam):
        m = self._map(lam)
        return np.asarray(to_numpy(m.jacobian(x[None, :], self._u(m))), dtype=float)[0]

    def d_lam(self, x, lam):
        h = 1e-6 * (1.0 + abs(lam))
        return (self.value(x, lam + h) - self.value(x, lam - h)) / (2.0 * h)

    def bordered(self, y, t):
        """``[[D_x H, D_lam H], [t]]`` at ``y = (x, lam)``."""
        x, lam = y[:-1], y[-1]
        n = x.size
        A = np.zeros((n + 1, n + 1))
        A[:n, :n] = self.jacobian(x, lam) - np.eye(n)
        A[:n, n] = self.d_lam(x, lam)
        A[n] = t
        return A


def _tangent(fam, y, t_prev):
    rhs = np.zeros(y.size)
    rhs[-1] = 1.0
    t = np.linalg.solve(fam.bordered(y, t_prev), rhs)
    return t / np.linalg.norm(t)


def _correct(fam, y_pred, t, tol):
    """Newton on ``H(y) = 0, t . (y - y_pred) = 0``; (y, iterations) or (None, _)."""
    y = y_pred.copy()
    for k in range(1, _MAX_NEWTON + 1):
        H = fam.value(y[:-1], y[-1])
        if not np.all(np.isfinite(H)):
            return None, k
        rhs = -np.concatenate([H, [t @ (y - y_pred)]])
        try:
            dy = np.linalg.solve(fam.bordered(y, t), rhs)
        except np.linalg.LinAlgError:
            return None, k
        y = y + dy
        if np.linalg.norm(fam.value(y[:-1], y[-1])) <= tol:
            return y, k
    return None, _MAX_NEWTON


def _eigs(fam, y):
    return _eigenvalues(np, fam.jacobian(y[:-1], y[-1])[None])[0]


def _counts(ev):
    """Multipliers outside the unit circle (by more than ``ON_CIRCLE``, rounding): real
    > 1, real < -1, complex."""
    real = ev.imag == 0
    out = np.abs(ev) > 1.0 + ON_CIRCLE
    return (int(np.sum(real & out & (ev.real > 0))), int(np.sum(real & out & (ev.real < 0))),
            int(np.sum(~real & out)))


def _doubled(c_a, c_b):
    """More than one crossing of one kind between two points: two real multipliers
    through +1 or -1, or two complex pairs."""
    return sum(c_b) != sum(c_a) and any(abs(b - a) > w for a, b, w in
                                        zip(c_a, c_b, (1, 1, 2), strict=True))


def _crossings(fam, y, t, ds, c_a, c_b, tol, bounds, index):
    """The bifurcations between ``y`` and the next point (multiplier counts ``c_a``,
    ``c_b``), located, inside the parameter range ``bounds``. Only a change of the
    number outside the circle is a crossing: a complex pair outside it that meets on
    the real axis (and leaves it as two reals) changes the kinds, not the number."""
    if sum(c_a) == sum(c_b):
        return []
    out = []
    for kind in range(3):
        if c_a[kind] != c_b[kind]:
            y_lo, y_hi, _ = _bisect(fam, y, t, ds, tol,
                                    lambda z, k=kind: _counts(_eigs(fam, z))[k] == c_a[k])
            out += _found(fam, kind, y_lo if y_hi is None else y_hi, bounds, index)
    return out


def _turning(fam, y_a, t_a, sigma_b, tol, bounds, index):
    """The turning point of ``lam`` in the step ``(0, sigma_b)`` from ``y_a`` where no
    multiplier crossed ``+1``, by bisection on the sign of the tangent's ``lam``: a branch
    point (the bordered system is singular there, so the bisection stops where it is)."""
    def before(y):
        try:
            t = _tangent(fam, y, t_a)
        except np.linalg.LinAlgError:
            return None
        return bool(t[-1] * t_a[-1] > 0) if np.all(np.isfinite(t)) else None

    return _found(fam, 3, _bisect(fam, y_a, t_a, sigma_b, tol, before)[2], bounds, index)


def _bisect(fam, y_a, t_a, sigma_b, tol, before):
    """Bisect the arclength ``(0, sigma_b)`` from ``y_a`` for where ``before(y)`` (True on
    ``y_a``'s side) turns False; ``before`` returning None stops there (a singular
    point). Returns (the last point on ``y_a``'s side, the first past it or None, the
    last point corrected)."""
    lo, hi = 0.0, sigma_b
    y_lo, y_hi, y_last = y_a, None, y_a
    while hi - lo > _BRACKET * (1.0 + sigma_b):
        mid = 0.5 * (lo + hi)
        y, _ = _correct(fam, y_a + mid * t_a, t_a, tol)
        if y is None:
            break
        y_last = y
        side = before(y)
        if side is None:
            break
        if side:
            lo, y_lo = mid, y
        else:
            hi, y_hi = mid, y
    return y_lo, y_hi, y_last


def _found(fam, kind, y, bounds, index):
    """The bifurcation of ``kind`` (an index of ``_KINDS``) at ``y`` with its multiplier,
    as a list of one, or none where ``y`` lies beyond the parameter range ``bounds`` (the
    last step may end there)."""
    if not bounds[0] <= y[-1] <= bounds[1]:
        return []
    ev = _eigs(fam, y)
    if kind == 2:    # Neimark-Sacker: the complex pair nearest the circle
        cpx = ev[ev.imag != 0]
        mu = cpx[np.argmin(np.abs(np.abs(cpx) - 1.0))] if cpx.size else ev[0]
    else:            # a fold or branch point at +1, a period doubling at -1
        mu = ev[np.argmin(np.abs(ev - (-1.0 if kind == 1 else 1.0)))]
    return [{"kind": _KINDS[kind], "parameter": float(y[-1]),
             "point": [float(v) for v in y[:-1]], "index": index,
             "multiplier": [float(mu.real), float(mu.imag)]}]


def continuation(make_map: Callable[[float], Any], values: Sequence[float], x_start: Array, *,
                 inputs: Array | None = None, tol: float | None = None,
                 max_points: int = 2000, max_step: float | None = None,
                 min_step: float = 1e-9) -> Continuation:
    """Follow a fixed point as a parameter changes; find its folds and other bifurcations.

    Parameters
    ----------
    make_map : callable
        ``make_map(lam)`` returns the map at parameter ``lam``: a gain
        through :func:`gain_family`, a constant input or bias, or any
        parameter of the user's.
    values : array of at least 2 parameter values
        The branch starts at ``values[0]`` heading towards ``values[1]``,
        with the first step ``|values[1] - values[0]|`` (in arclength, at most ``max_step``), and
        ends when the parameter leaves ``[min(values), max(values)]``.
    x_start : array of shape (dim,)
        A guess of the fixed point at ``values[0]`` (corrected by Newton).
    inputs : array of shape (n_in,), optional
        The constant input of a driven map.
    tol : float or None, default None
        The residual ``||F_lam(x) - x||`` every point of the branch meets.
        None: ``1e-10``, or 100 eps of a narrower dtype of the map's steps
        (``1.2e-5`` in float32), as in :func:`find_fixed_points`.
    max_points : int, default 2000
        Points of the branch at most.
    max_step : float, optional
        The largest arclength step; a tenth of the parameter range by default.
    min_step : float, default 1e-9
        The branch ends when the corrector fails with a step this small.

    Returns
    -------
    Continuation
        ``parameters``, ``points``, ``eigenvalues``, ``stable``,
        ``arclength`` and ``bifurcations``, located to an arclength bracket
        of ``1e-11`` (at a fold the parameter is quadratic in the arclength,
        elsewhere linear: within 1e-6 of the true value, and far closer).

    Raises
    ------
    ValueError
        Fewer than 2 values, equal first values, non-finite values, a start
        of the wrong shape, a start Newton cannot bring to a fixed point, inputs
        that do not fit the map (given for an autonomous one, of the wrong shape,
        NaN or inf).
    TypeError
        ``make_map`` not callable.

    Notes
    -----
    ``dlam H`` is a central difference (step ``1e-6 (1 + |lam|)``); it
    enters the tangent and the corrector's matrix only, so the points meet
    ``tol`` exactly. Each step solves one dense ``(dim + 1)`` system per
    Newton iteration: the method is meant for networks of up to a few
    hundred units. A crossing of +1 is reported as a fold; at a symmetric
    (pitchfork) branch point a multiplier crosses +1 too, and is reported
    as a fold of this branch. On a torus (``map.periods``) ``H`` is ``F(x) - x`` taken to
    the nearest image, as :func:`find_fixed_points` takes it.

    References
    ----------
    .. [1] H. B. Keller, "Numerical solution of bifurcation and nonlinear eigenvalue
       problems", in P. H. Rabinowitz (ed.), Applications of Bifurcation Theory,
       Academic Press 1977, 359-384.
    .. [2] Y. A. Kuznetsov, "Elements of Applied Bifurcation Theory", 3rd ed.,
       Springer 2004, ch. 4 (bifurcations of maps) and 10 (continuation).

    Examples
    --------
    ``x -> tanh(2 x + u)`` folds where ``2 (1 - x^2) = 1``: at ``x = +-sqrt(1/2)``,
    ``u = artanh(x) - 2 x = -+0.5328``. From the upper branch at ``u = 1`` the
    branch turns at both folds and ends on the lower branch.

    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import continuation
    >>> make = lambda u: itermap.IterativeMap(np.array([[2.0]]), bias=np.array([u]))
    >>> c = continuation(make, np.linspace(1.0, -1.0, 41), np.array([0.99]))
    >>> [(b["kind"], round(b["parameter"], 6)) for b in c.bifurcations]
    [('fold', -0.53284), ('fold', 0.53284)]
    """
    if not callable(make_map):
        raise TypeError(f"make_map must be callable, got {make_map!r}")
    vals = check_real_array("values", values, ndim=1)
    if vals.size < 2:
        raise ValueError(f"values must hold at least 2 parameter values, got {vals.size}")
    if not np.all(np.isfinite(vals)):
        raise ValueError("values contain NaN or inf")
    if vals[1] == vals[0]:
        raise ValueError("values: the first two values are equal (no direction, no step)")
    max_points = _check_int("max_points", max_points, 2)
    tol = None if tol is None else check_real("tol", tol, positive=True)
    min_step = check_real("min_step", min_step, positive=True)
    lo_v, hi_v = float(vals.min()), float(vals.max())
    ds = abs(float(vals[1] - vals[0]))
    max_step = ((hi_v - lo_v) / 10.0 if max_step is None
                else check_real("max_step", max_step, positive=True))
    ds = min(ds, max_step)  # a first step past max_step can jump over folds onto another branch
    x0 = check_states("x_start", x_start, ndim=1)
    first = itermap.as_map(make_map(float(vals[0])))
    dim = first.dim
    inputs = _check_inputs(first, inputs, np)   # find_fixed_points' rules for one input
    if x0.shape != (dim,) or not np.all(np.isfinite(x0)):
        raise ValueError(f"x_start must be a finite vector of shape ({dim},), got shape "
                         f"{x0.shape}")
    check_batched_step(lambda row: first.step(row, inputs), x0[None, :], dim)
    fam = _Family(make_map, inputs, dim)
    lam0 = float(vals[0])
    step_dtype = np.dtype(first.dtype or x0.dtype)      # a float32 map steps in float32
    if tol is None:
        tol = _default_tol(np, step_dtype)
    _check_reachable(tol, np, step_dtype)
    for _ in range(50):      # Newton at fixed lam for the first point
        G = fam.value(x0, lam0)
        if not np.linalg.norm(G) > tol:
            break
        try:
            x0 = x0 - np.linalg.solve(fam.jacobian(x0, lam0) - np.eye(dim), G)
        except np.linalg.LinAlgError:
            break
    if not np.linalg.norm(fam.value(x0, lam0)) <= tol:
        raise ValueError(f"x_start: Newton found no fixed point near it at {lam0}")

    y = np.concatenate([x0, [lam0]])
    t = np.zeros(dim + 1)
    t[-1] = np.sign(vals[1] - vals[0])
    t = _tangent(fam, y, t)
    ys, evs, arc = [y], [_eigs(fam, y)], [0.0]
    bifs = []
    reason = "max_points"
    while len(ys) < max_points:
        y_new, its = _correct(fam, y + ds * t, t, tol)
        t_new = None if y_new is None else _tangent(fam, y_new, t)
        # a corrector that moved far from the prediction, or a sharp turn, may have
        # jumped to another branch: retry with a shorter step
        if y_new is None or t_new @ t < _MIN_COS or \
                np.linalg.norm(y_new - y - ds * t) > _MAX_CORRECTION * ds:
            ds *= 0.5
            if ds < min_step:
                reason = "step too small"
                break
            continue
        ev = _eigs(fam, y_new)
        c_a, c_b = _counts(evs[-1]), _counts(ev)
        # two crossings of one kind in the step (two reals, or two pairs): shorter steps
        # part them, down to a thousandth of the largest step (a double multiplier)
        if _doubled(c_a, c_b) and ds > 1e-3 * max_step:
            ds *= 0.5
            continue
        bifs += _crossings(fam, y, t, ds, c_a, c_b, tol, (lo_v, hi_v), len(ys) - 1)
        assert t_new is not None  # computed whenever y_new is
        if t_new[-1] * t[-1] < 0 and c_a[0] == c_b[0]:
            bifs += _turning(fam, y, t, ds, tol, (lo_v, hi_v), len(ys) - 1)
        if not lo_v <= y_new[-1] <= hi_v:
            reason = "end of range"
            break
        ys.append(y_new)
        evs.append(ev)
        arc.append(arc[-1] + float(np.linalg.norm(y_new - y)))
        y, t = y_new, t_new
        if its <= _EASY:
            ds = min(_GROW * ds, max_step)
    Y = np.asarray(ys)
    E = np.asarray(evs)
    bifs.sort(key=lambda b: (b["index"], b["parameter"]))
    return Continuation(parameters=Y[:, -1].copy(), points=Y[:, :-1].copy(), eigenvalues=E,
                        stable=_stability(E)[0], arclength=np.asarray(arc),
                        bifurcations=bifs, stop_reason=reason)
