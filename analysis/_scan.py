"""Parameter scans: the data behind orbit (bifurcation) diagrams and exponent-vs-gain figures."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from itermap import saveable
from itermap.backends import namespace, to_numpy

__all__ = ["OrbitDiagram", "LyapunovScan", "orbit_diagram", "lyapunov_scan",
           "mean_field_exponent"]


@saveable
@dataclass
class OrbitDiagram:
    """States visited after a transient, one row per parameter value.

    Attributes
    ----------
    values : ndarray of shape (P,)
        The parameter values.
    states : ndarray of shape (P, keep, dim)
        The ``keep`` states after the transient (NaN where the orbit diverged).
    transient : int
        Steps discarded before the first kept state.
    batched : bool
        Whether all parameter values ran as one batch.
    """

    values: object
    states: object
    transient: int
    batched: bool


@saveable
@dataclass
class LyapunovScan:
    """Leading Lyapunov exponents against a parameter.

    Attributes
    ----------
    values : ndarray of shape (P,)
        The parameter values.
    exponents : ndarray of shape (P, k)
        The ``k`` largest exponents (nats per step), descending, NaN where the
        orbit diverged.
    stderr : ndarray of shape (P, k)
        Standard error of each exponent, from ten consecutive segments of the run.
    steps, transient : int
        Steps averaged and steps discarded first.
    batched : bool
        Whether all parameter values ran as one batch.
    """

    values: object
    exponents: object
    stderr: object
    steps: int
    transient: int
    batched: bool


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _values(values):
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values contain NaN or inf")
    return v


def _states_for(map_, x0, P, xp=None):
    """x0 as a (P, dim) batch on the map's backend."""
    if not hasattr(x0, "shape"):
        x0 = np.asarray(x0, dtype=float)
    xp = namespace(x0) if xp is None else xp
    if x0.ndim == 1:
        if x0.shape[0] != map_.dim:
            raise ValueError(f"x0 has dimension {x0.shape[0]}, but the map has dim={map_.dim}")
        x0 = xp.broadcast_to(x0, (P, map_.dim))
    elif x0.ndim != 2 or x0.shape != (P, map_.dim):
        raise ValueError(f"x0 must have shape ({map_.dim},) or ({P}, {map_.dim}), got "
                         f"{tuple(x0.shape)}")
    return xp.asarray(x0, copy=True) if hasattr(xp, "asarray") else x0


def _batched_map(make_map, values, x0, inputs, batched):
    """``make_map(values)`` when it gives a map that runs all values as one batch, else None.

    The batch is trusted only if its first and last rows agree with maps
    built for the first and last value alone.
    """
    if batched is False:
        return None
    try:
        m = make_map(values)
        X = _states_for(m, x0, values.size)
        with np.errstate(all="ignore"):
            Y = to_numpy(m.step(X, inputs))
            ok = Y.shape == (values.size, m.dim)
            for idx in (0, values.size - 1):
                single = make_map(float(values[idx]))
                y = to_numpy(single.step(X[idx], inputs))
                ok = ok and np.allclose(Y[idx], y, rtol=1e-12, atol=1e-12, equal_nan=True)
    except (TypeError, ValueError):
        if batched:
            raise
        return None
    if not ok:
        if batched:
            raise ValueError("make_map(values) does not give a map that runs every value as "
                             "one batch row")
        return None
    return m


def orbit_diagram(make_map, values, x0, *, transient=500, keep=100, inputs=None, batched=None):
    """Iterate a family of maps past a transient and keep the states they visit.

    Parameters
    ----------
    make_map : callable
        ``make_map(value) -> Map``. If ``make_map`` also accepts the whole
        array of values and returns one map whose batch row ``i`` runs with
        ``values[i]`` (as :func:`itermap.systems.logistic` does), all values
        run as one batch.
    values : sequence of float, shape (P,)
        The parameter values.
    x0 : array of shape (dim,) or (P, dim)
        The start state, shared or one per value.
    transient : int
        Steps discarded first.
    keep : int
        States kept after the transient.
    inputs : array, optional
        A constant input for driven maps.
    batched : bool, optional
        Force (True) or forbid (False) the batched path; by default it is
        used when ``make_map`` supports it.

    Returns
    -------
    OrbitDiagram

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import systems
    >>> from analysis import orbit_diagram
    >>> od = orbit_diagram(systems.logistic, [2.5, 3.2], np.array([0.3]), transient=300, keep=4)
    >>> od.batched, od.states.shape
    (True, (2, 4, 1))
    >>> np.round(od.states[0, :, 0], 6)      # the fixed point 1 - 1/r
    array([0.6, 0.6, 0.6, 0.6])
    """
    values = _values(values)
    transient = _check_int("transient", transient, 0)
    keep = _check_int("keep", keep, 1)
    if not callable(make_map):
        raise TypeError("make_map must be a callable value -> Map")
    P = values.size
    m = _batched_map(make_map, values, x0, inputs, batched)
    if m is not None:
        out = _run_orbit(m, _states_for(m, x0, P), transient, keep, inputs)
    else:
        rows = []
        for i, v in enumerate(values):
            mi = make_map(float(v))
            X = _states_for(mi, x0, P)[i:i + 1]
            rows.append(_run_orbit(mi, X, transient, keep, inputs))
        out = np.concatenate(rows, axis=0)
    return OrbitDiagram(values=values, states=out, transient=transient, batched=m is not None)


def _run_orbit(m, X, transient, keep, inputs):
    xp = namespace(X)
    kept = []
    with np.errstate(all="ignore"):
        for t in range(transient + keep):
            X = m.step(X, inputs)
            if t >= transient:
                kept.append(np.array(to_numpy(X), dtype=float))
            if t % 50 == 49 and not bool(xp.all(xp.isfinite(X))):
                bad = ~xp.all(xp.isfinite(X), axis=-1)
                X = xp.where(bad[:, None], xp.nan, X)
    out = np.stack(kept, axis=1)
    out[~np.isfinite(out)] = np.nan
    return out


def _qr_exponents(m, X, steps, k, transient, inputs, segments=10):
    """Batched Benettin/QR estimate: (B, k) exponents and (B, k) standard errors."""
    xp = namespace(X)
    B, dim = X.shape
    with np.errstate(all="ignore"):
        Q = xp.broadcast_to(xp.eye(dim, k, dtype=X.dtype), (B, dim, k))
        for _ in range(transient):  # the tangent vectors align with the state meanwhile
            X, V = m.step_with_tangent(X, Q, inputs)
            Q, _ = xp.linalg.qr(V)
        seg_len = max(steps // segments, 1)
        seg_sums = np.zeros((segments, B, k))
        for t in range(steps):
            X, V = m.step_with_tangent(X, Q, inputs)
            Q, R = xp.linalg.qr(V)
            d = xp.abs(xp.linalg.diagonal(R) if hasattr(xp.linalg, "diagonal")
                       else xp.diagonal(R, axis1=-2, axis2=-1))
            seg_sums[min(t // seg_len, segments - 1)] += np.log(np.asarray(to_numpy(d)))
        counts = np.array([seg_len] * (segments - 1) + [steps - seg_len * (segments - 1)])
        total = seg_sums.sum(axis=0) / steps
        used = counts > 0
        seg_means = seg_sums[used] / counts[used][:, None, None]
        n_seg = int(used.sum())
        if n_seg > 1:
            stderr = np.std(seg_means, axis=0, ddof=1) / math.sqrt(n_seg)
        else:
            stderr = np.full_like(total, np.nan)
        bad = ~np.all(np.isfinite(np.asarray(to_numpy(X))), axis=-1)
    # the QR keeps the exponents in descending order only on average: sort each row
    total = -np.sort(-total, axis=-1)
    total[bad] = np.nan
    stderr[bad] = np.nan
    return total, stderr


def lyapunov_scan(make_map, values, x0, steps, *, k=1, transient=200, inputs=None,
                  batched=None):
    """The ``k`` largest Lyapunov exponents of a family of maps, one per parameter value.

    Parameters
    ----------
    make_map : callable
        ``make_map(value) -> Map``; when it also accepts the whole array of
        values (one batch row per value), all values run as one batch.
    values : sequence of float, shape (P,)
    x0 : array of shape (dim,) or (P, dim)
        The start state, shared or one per value.
    steps : int
        Steps averaged (after ``transient``), with a QR
        re-orthonormalisation at every step.
    k : int
        Number of exponents.
    transient : int
        Steps discarded before averaging.
    inputs : array, optional
        A constant input for driven maps.
    batched : bool, optional
        Force or forbid the batched path (default: when supported).

    Returns
    -------
    LyapunovScan

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import systems
    >>> from analysis import lyapunov_scan
    >>> s = lyapunov_scan(systems.logistic, [2.5, 4.0], np.array([0.3]), 4000)
    >>> np.round(s.exponents[:, 0], 2)       # ln(0.5) at r = 2.5, ln 2 at r = 4
    array([-0.69,  0.69])
    """
    values = _values(values)
    steps = _check_int("steps", steps, 1)
    k = _check_int("k", k, 1)
    transient = _check_int("transient", transient, 0)
    if not callable(make_map):
        raise TypeError("make_map must be a callable value -> Map")
    P = values.size
    m = _batched_map(make_map, values, x0, inputs, batched)
    if m is not None:
        if k > m.dim:
            raise ValueError(f"k={k} exceeds the map's dimension {m.dim}")
        exps, err = _qr_exponents(m, _states_for(m, x0, P), steps, k, transient, inputs)
    else:
        exps, err = np.empty((P, k)), np.empty((P, k))
        for i, v in enumerate(values):
            mi = make_map(float(v))
            if k > mi.dim:
                raise ValueError(f"k={k} exceeds the map's dimension {mi.dim}")
            X = _states_for(mi, x0, P)[i:i + 1]
            e, s = _qr_exponents(mi, X, steps, k, transient, inputs)
            exps[i], err[i] = e[0], s[0]
    return LyapunovScan(values=values, exponents=exps, stderr=err, steps=steps,
                        transient=transient, batched=m is not None)


def mean_field_exponent(gain, *, activation="tanh", quadrature=4001):
    """Mean-field largest Lyapunov exponent of a large random network ``x -> tanh(W x)``.

    For ``W_ij ~ N(0, g^2/n)`` and ``n -> infinity`` the pre-activations are
    Gaussian with a variance ``q`` that solves ``q = g^2 E[tanh(sqrt(q) z)^2]``
    (``q = 0`` for ``g <= 1``), and the largest exponent is

    ``lambda = ln g + 1/2 ln E[tanh'(sqrt(q) z)^2]``,  ``z ~ N(0, 1)``,

    so ``lambda = ln g`` below the transition at ``g = 1`` and positive
    above it (Molgedey, Schuster and Schuster, PRL 69, 3717, 1992).

    Parameters
    ----------
    gain : float or array
    activation : {"tanh"}
    quadrature : int
        Grid points of the trapezoidal rule for the Gaussian averages.

    Returns
    -------
    float or ndarray
        Exponents in nats per step (``-inf`` at gain 0).

    Examples
    --------
    >>> from analysis import mean_field_exponent
    >>> round(float(mean_field_exponent(0.5)), 4)     # ln 0.5
    -0.6931
    >>> bool(mean_field_exponent(2.0) > 0)
    True
    """
    if activation != "tanh":
        raise ValueError(f"the mean-field exponent is implemented for tanh only, got "
                         f"{activation!r}")
    quadrature = _check_int("quadrature", quadrature, 101)
    g = np.asarray(gain, dtype=float)
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ValueError("gain must be finite and non-negative")
    # the trapezoidal rule on a wide uniform grid converges geometrically for these
    # analytic, Gaussian-weighted integrands (Gauss-Hermite does not: tanh' has poles
    # close to the real axis once q is large)
    z = np.linspace(-12.0, 12.0, quadrature)
    w = np.exp(-0.5 * z * z)
    w = w / w.sum()

    def ratio(q, gi):  # g^2 E[tanh(sqrt(q) z)^2] / q - 1: decreasing in q, > 0 near 0
        return gi * gi * float(w @ np.tanh(math.sqrt(q) * z) ** 2) / q - 1.0

    def one(gi):
        if gi == 0.0:
            return -np.inf
        if gi * gi - 1.0 <= 1e-12:  # no non-zero variance: the origin is the attractor
            return math.log(gi)
        from scipy.optimize import brentq

        q = brentq(ratio, 1e-200, gi * gi, args=(gi,), xtol=1e-300, rtol=1e-14, maxiter=500)
        d2 = float(w @ (1.0 - np.tanh(math.sqrt(q) * z) ** 2) ** 2)
        return math.log(gi) + 0.5 * math.log(d2)

    out = np.array([one(float(gi)) for gi in g.reshape(-1)]).reshape(g.shape)
    return out if out.ndim else float(out)
