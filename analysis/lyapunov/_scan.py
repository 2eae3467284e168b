"""Parameter scans: the data behind orbit (bifurcation) diagrams and exponent-vs-gain figures."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import itermap
from itermap import DivergenceError, Map, as_rng, saveable
from itermap.backends import is_sparse, namespace, to_numpy
from itermap.typing import Array, MapLike, RngLike

from .._checks import (
    check_batched_step,
    check_choice,
    check_memory,
    check_real_array,
    is_network,
    one_namespace,
    plain_array,
)
from .._checks import check_int as _check_int
from ._spectrum import _own_or_general, _window_sums, lyapunov_spectrum

__all__ = ["OrbitDiagram", "LyapunovScan", "orbit_diagram", "lyapunov_scan",
           "mean_field_exponent", "gain_family"]


@saveable
@dataclass
class OrbitDiagram(itermap.Result):
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

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import systems
    >>> from itermap.analysis import orbit_diagram
    >>> od = orbit_diagram(systems.logistic, np.array([2.5, 3.2]), np.array([0.3]), keep=4)
    >>> od.states.shape, sorted(np.round(od.states[1, :2, 0], 3).tolist())  # period 2 at r=3.2
    ((2, 4, 1), [0.513, 0.799])
    """

    _schema: ClassVar[dict[str, str]] = {
        "values": "float[P]",
        "states": "float[P, K, D]",
        "transient": "int",
        "batched": "bool",
    }
    _dims: ClassVar[dict[str, str]] = {"P": "value", "K": "sample", "D": "unit"}
    _coords: ClassVar[dict[str, str]] = {"value": "values"}

    values: object
    states: object
    transient: int
    batched: bool


@saveable
@dataclass
class LyapunovScan(itermap.Result):
    """Leading Lyapunov exponents against a parameter.

    Attributes
    ----------
    values : ndarray of shape (P,)
        The parameter values.
    exponents : ndarray of shape (P, k)
        The ``k`` largest exponents (nats per step), descending; NaN where the
        orbit diverged, ``-inf`` where a direction collapsed exactly.
    stderr : ndarray of shape (P, k)
        Standard error of each exponent from ten consecutive segments of the run
        (NaN where the exponent is NaN, 0 where it is ``-inf``).
    steps, transient : int
        Steps averaged and steps discarded first.
    batched : bool
        Whether all parameter values ran as one batch.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import systems
    >>> from itermap.analysis import lyapunov_scan
    >>> scan = lyapunov_scan(systems.logistic, np.array([4.0]), np.array([0.3]), 4000)
    >>> round(float(scan.exponents[0, 0]), 1)   # ln 2 at r = 4
    0.7
    """

    _schema: ClassVar[dict[str, str]] = {
        "values": "float[P]",
        "exponents": "float[P, K]",
        "stderr": "float[P, K]",
        "steps": "int",
        "transient": "int",
        "batched": "bool",
    }
    _table: ClassVar[tuple[str, ...]] = ("values", "exponents", "stderr")
    _dims: ClassVar[dict[str, str]] = {"P": "value", "K": "exponent"}
    _coords: ClassVar[dict[str, str]] = {"value": "values"}

    values: object
    exponents: object
    stderr: object
    steps: int
    transient: int
    batched: bool


def _states_for(map_, x0, P):
    """x0 as a (P, dim) batch on the map's backend."""
    # the parameter values are a NumPy array: the states must be NumPy's (or CuPy's)
    one_namespace(x0=plain_array("x0", x0), values=np.empty(0), movable=True)
    x0 = map_.check_start(x0)
    xp = namespace(x0)
    if x0.ndim == 1:
        x0 = xp.broadcast_to(x0, (P, map_.dim))
    elif x0.shape[0] != P:
        raise ValueError(f"x0 must have shape ({map_.dim},) or ({P}, {map_.dim}), got "
                         f"{tuple(x0.shape)}")
    return xp.asarray(x0, copy=True)


def _batched_map(make_map, values, x0, inputs, batched):
    """``make_map(values)`` when it runs all values as one batch (its first and last rows
    agree with maps of those values alone), else None."""
    if batched is False:
        return None
    try:
        m = itermap.as_map(make_map(values))
        X = _states_for(m, x0, values.size)
        with np.errstate(all="ignore"):
            Y = to_numpy(m.step(X, inputs))
            ok = Y.shape == (values.size, m.dim)
            # float32 rows agree to its rounding only (g W x against (g W) x)
            tol = max(1e-12, 100.0 * float(np.finfo(Y.dtype).eps)) \
                if np.issubdtype(Y.dtype, np.floating) else 1e-12
            for idx in (0, values.size - 1):
                single = make_map(float(values[idx]))
                y = to_numpy(single.step(X[idx], inputs))
                ok = ok and np.allclose(Y[idx], y, rtol=tol, atol=tol, equal_nan=True)
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


def orbit_diagram(make_map: Callable[[float], Any], values: Array, x0: Array, *,
                  transient: int = 500, keep: int = 100, inputs: Array | None = None,
                  batched: bool | None = None) -> OrbitDiagram:
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

    Raises
    ------
    TypeError
        A ``make_map`` that is not callable, an ``x0`` that is not a real array.
    ValueError
        Bad ``values``, ``transient`` or ``keep``; an ``x0`` with NaN, inf or the
        wrong shape.

    References
    ----------
    .. [1] May, R. M. (1976). Simple mathematical models with very complicated dynamics.
       Nature 261, 459-467.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import systems
    >>> from itermap.analysis import orbit_diagram
    >>> od = orbit_diagram(systems.logistic, [2.5, 3.2], np.array([0.3]), transient=300, keep=4)
    >>> od.batched, od.states.shape
    (True, (2, 4, 1))
    >>> np.round(od.states[0, :, 0], 6)      # the fixed point 1 - 1/r
    array([0.6, 0.6, 0.6, 0.6])
    """
    values = check_real_array("values", values, ndim=1)
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
            mi = itermap.as_map(make_map(float(v)))
            X = _states_for(mi, x0, P)[i:i + 1]
            if i == 0:
                check_batched_step(lambda row, m=mi: m.step(row, inputs), X, mi.dim)
            rows.append(_run_orbit(mi, X, transient, keep, inputs))
        out = np.concatenate(rows, axis=0)
    return OrbitDiagram(values=values, states=out, transient=transient, batched=m is not None)


def _run_orbit(m, X, transient, keep, inputs):
    xp = namespace(X)
    kept = []
    on_torus = m.periods is not None  # as iterate: each step wrapped onto [0, P)
    with np.errstate(all="ignore"):
        for t in range(transient + keep):
            X = m.step(X, inputs)
            if on_torus:
                X = m.wrap(X)
            if t >= transient:
                kept.append(np.array(to_numpy(X), dtype=float))
            if t % 50 == 49 and not bool(xp.all(xp.isfinite(X))):
                bad = ~xp.all(xp.isfinite(X), axis=-1)
                X = xp.where(bad[:, None], xp.nan, X)
    out = np.stack(kept, axis=1)
    out[~np.isfinite(out)] = np.nan
    return out


def _segment_sums(m, X, lengths, k, transient, inputs):
    """Per-segment sums of ``log|R_jj|`` (segments, B, k) from the identity frame, on the
    map's tangent stepper or the general one (which raises at a divergence)."""
    xp = namespace(X)
    Q = xp.broadcast_to(xp.eye(m.dim, k, dtype=X.dtype), (X.shape[0], m.dim, k))
    return _own_or_general(lambda s: _window_sums(s, lengths, transient), m, X, Q, inputs, None,
                           transient, transient + int(np.sum(lengths)))


def _qr_exponents(make_map, values, m, X, steps, k, transient, inputs, segments=10):
    """Batched Benettin/QR estimate: (P, k) exponents and (P, k) standard errors, NaN for
    a value whose orbit diverged."""
    # step t goes to segment min(t // seg_len, segments - 1)
    seg_len = max(steps // segments, 1)
    lengths = np.bincount(np.minimum(np.arange(steps) // seg_len, segments - 1),
                          minlength=segments)
    with np.errstate(all="ignore"):
        try:
            seg_sums = _segment_sums(m, X, lengths, k, transient, inputs)
        except DivergenceError:  # each value on its own map: NaN where its orbit diverged
            seg_sums = np.full((segments, values.size, k), np.nan)
            for i, v in enumerate(values):
                with contextlib.suppress(DivergenceError):
                    seg_sums[:, i:i + 1] = _segment_sums(itermap.as_map(make_map(float(v))),
                                                         X[i:i + 1], lengths, k, transient,
                                                         inputs)
        total = seg_sums.sum(axis=0) / steps
        used = lengths > 0
        seg_means = seg_sums[used] / lengths[used][:, None, None]
        n_seg = int(used.sum())
        stderr = (np.std(seg_means, axis=0, ddof=1) / math.sqrt(n_seg) if n_seg > 1
                  else np.full_like(total, np.nan))
    # the QR keeps the exponents in descending order only on average: sort each row,
    # and its errors with it
    order = np.argsort(-total, axis=-1, kind="stable")
    return (np.take_along_axis(total, order, axis=-1),
            np.take_along_axis(stderr, order, axis=-1))


def _segment_stderr(res, segments=10):
    """Standard error from the means over consecutive segments of one run, read off the
    running averages: the mean between checkpoints is ``(t_b h_b - t_a h_a) / (t_b - t_a)``."""
    h = np.asarray(to_numpy(res.history), dtype=float)
    t = np.asarray(to_numpy(res.history_steps), dtype=float)
    k = h.shape[1] if h.ndim == 2 else 1
    h = h.reshape(len(t), k)
    targets = np.linspace(0, t[-1], segments + 1)[1:]
    idx = np.unique(np.searchsorted(t, targets - 1e-9).clip(0, len(t) - 1))
    tt = np.concatenate([[0.0], t[idx]])
    sums = np.vstack([np.zeros((1, k)), h[idx] * t[idx][:, None]])
    dt = np.diff(tt)
    ok = dt > 0
    with np.errstate(invalid="ignore"):  # -inf - -inf where a direction collapsed
        means = np.diff(sums, axis=0)[ok] / dt[ok][:, None]
        if means.shape[0] < 2:
            return np.full(k, np.nan)
        return np.std(means, axis=0, ddof=1) / math.sqrt(means.shape[0])


def lyapunov_scan(make_map: Callable[[float], Any], values: Array, x0: Array, steps: int, *,
                  k: int = 1, transient: int = 200, inputs: Array | None = None,
                  batched: bool | None = None, rng: RngLike = None) -> LyapunovScan:
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
        Steps averaged (after ``transient``), with a QR every step; a family that
        does not batch runs value by value through :func:`lyapunov_spectrum`.
    k : int
        Number of exponents.
    transient : int
        Steps discarded before averaging.
    inputs : array, optional
        A constant input for driven maps.
    batched : bool, optional
        Force or forbid the batched path (default: when supported).
    rng : int, Generator or None
        The random initial frames of the per-value path (the batched path starts
        from the identity frame).

    Returns
    -------
    LyapunovScan
        ``exponents`` NaN where an orbit diverged, ``-inf`` where a direction
        collapsed exactly (see :class:`LyapunovScan`).

    Raises
    ------
    TypeError
        A ``make_map`` that is not callable, an ``x0`` that is not a real array.
    ValueError
        ``k`` larger than the map's dimension; bad ``values``, ``steps`` or
        ``transient``; an ``x0`` with NaN, inf or the wrong shape.

    References
    ----------
    .. [1] Benettin, G., Galgani, L., Giorgilli, A. and Strelcyn, J.-M. (1980). Lyapunov
       characteristic exponents for smooth dynamical systems and for Hamiltonian systems; a
       method for computing all of them. Part 1: Theory; Part 2: Numerical application.
       Meccanica 15, 9-20 and 21-30.
    .. [2] Shimada, I. and Nagashima, T. (1979). A numerical approach to ergodic problem of
       dissipative dynamical systems. Progress of Theoretical Physics 61(6), 1605-1616.
    .. [3] Engelken, R., Wolf, F. and Abbott, L. F. (2023). Lyapunov spectra of chaotic
       recurrent neural networks. Physical Review Research 5, 043044.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import systems
    >>> from itermap.analysis import lyapunov_scan
    >>> s = lyapunov_scan(systems.logistic, [2.5, 4.0], np.array([0.3]), 4000)
    >>> np.round(s.exponents[:, 0], 2)       # ln(0.5) at r = 2.5, ln 2 at r = 4
    array([-0.69,  0.69])
    """
    values = check_real_array("values", values, ndim=1)
    steps = _check_int("steps", steps, 1)
    k = _check_int("k", k, 1)
    transient = _check_int("transient", transient, 0)
    if not callable(make_map):
        raise TypeError("make_map must be a callable value -> Map")
    gen = as_rng(rng)
    P = values.size
    m = _batched_map(make_map, values, x0, inputs, batched)
    if m is not None:
        if k > m.dim:
            raise ValueError(f"k={k} exceeds the map's dimension {m.dim}")
        exps, err = _qr_exponents(make_map, values, m, _states_for(m, x0, P), steps, k,
                                  transient, inputs)
    else:  # one map per value, each through analysis.lyapunov_spectrum
        exps, err = np.full((P, k), np.nan), np.full((P, k), np.nan)
        for i, v in enumerate(values):
            mi = itermap.as_map(make_map(float(v)))
            if k > mi.dim:
                raise ValueError(f"k={k} exceeds the map's dimension {mi.dim}")
            X = _states_for(mi, x0, P)[i:i + 1]
            try:
                res = lyapunov_spectrum(mi, X, steps, k=k, transient=transient, inputs=inputs,
                                        rng=gen)
            except DivergenceError:
                continue  # the orbit diverged: NaN, as on the batched path
            exps[i] = np.asarray(to_numpy(res.exponents), dtype=float)
            se = None if res.stderr is None else np.asarray(to_numpy(res.stderr), dtype=float)
            if se is None or not np.all(np.isfinite(se)):  # one trajectory: no spread
                se = _segment_stderr(res)
            err[i] = se
    err[np.isneginf(exps)] = 0.0  # an exact collapse, as in LyapunovSpectrum
    return LyapunovScan(values=values, exponents=exps, stderr=err, steps=steps,
                        transient=transient, batched=m is not None)


#: the largest gain mean_field_exponent takes (a report's scan is checked against it)
MEAN_FIELD_MAX_GAIN = 1e6


def mean_field_exponent(gain: float | Array, *, activation: str = "tanh",
                        quadrature: int = 4001) -> Array:
    """Mean-field largest Lyapunov exponent of a large random network ``x -> tanh(W x)``.

    For ``W_ij ~ N(0, g^2/n)``, ``n -> infinity``: ``lambda = ln g + 1/2 ln
    E[tanh'(sqrt(q) z)^2]`` with ``z ~ N(0, 1)`` and ``q = g^2 E[tanh(sqrt(q) z)^2]``
    (``q = 0`` for ``g <= 1``, so ``lambda = ln g`` below the transition at 1).

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

    Raises
    ------
    ValueError
        A gain outside [0, 1e6] or not finite, an activation other than tanh.

    References
    ----------
    .. [1] Molgedey, L., Schuchhardt, J. and Schuster, H. G. (1992). Suppressing chaos in
       neural networks by noise. Physical Review Letters 69, 3717-3719.
    .. [2] Sompolinsky, H., Crisanti, A. and Sommers, H.-J. (1988). Chaos in random neural
       networks. Physical Review Letters 61, 259-262.

    Examples
    --------
    >>> from itermap.analysis import mean_field_exponent
    >>> round(float(mean_field_exponent(0.5)), 4)     # ln 0.5
    -0.6931
    >>> bool(mean_field_exponent(2.0) > 0)
    True
    """
    check_choice("activation", activation, ("tanh",))  # the closed form is tanh's
    quadrature = _check_int("quadrature", quadrature, 101)
    g = check_real_array("gain", gain, allow_empty=True)
    check_memory("quadrature", 8 * 4 * quadrature * max(g.size, 1), "the quadrature grid")
    if np.any(g < 0) or np.any(g > MEAN_FIELD_MAX_GAIN):
        raise ValueError("gain must be in [0, 1e6]")
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


class _GainBatch(Map):
    """``x_i -> f(g_i W x_i + b)``: one gain per batch row, all rows in one product."""

    def __init__(self, W, bias, activation, gains, sizes):
        self._W, self._bias, self._act = W, bias, activation
        # the gains in the weights' dtype: float64 gains would promote a float32 batch
        self._g = np.asarray(gains, dtype=W.dtype)
        self._sizes = tuple(sizes)

    @property
    def dim(self):
        return int(self._W.shape[0])

    @property
    def sizes(self):
        return self._sizes

    @property
    def dtype(self):
        return self._W.dtype

    def _pre(self, x):
        x = self._check_state(x)
        if x.ndim != 2 or x.shape[0] != self._g.size:
            raise ValueError(f"a family of {self._g.size} gains needs states of shape "
                             f"({self._g.size}, {self.dim}), got {tuple(x.shape)}")
        Wx = (self._W @ x.T).T if is_sparse(self._W) else x @ self._W.T
        z = np.asarray(Wx) * self._g[:, None]
        return z if self._bias is None else z + self._bias

    def step(self, x, u=None):
        self._no_input(u)
        return self._act.apply(self._pre(x), np)

    def step_with_tangent(self, x, v, u=None):
        self._no_input(u)
        z = self._pre(x)
        v = self._check_tangent(z, v)
        # one product for every row and vector: W @ [v_1 ... v_P] (a broadcast matmul
        # would run P small products)
        P, n, k = v.shape
        Wv = self._W @ np.ascontiguousarray(v.transpose(1, 0, 2)).reshape(n, P * k)
        Wv = np.asarray(Wv).reshape(n, P, k).transpose(1, 0, 2)
        d = self._act.derivative(z, np) * self._g[:, None]
        return self._act.apply(z, np), d[..., None] * Wv

    def tangent(self, x, v, u=None):  # Map.jacobian applies it to the identity
        return self.step_with_tangent(x, v, u)[1]


def gain_family(map: MapLike) -> Callable[[float], Map]:
    """The family ``g -> (x -> f(g W x + b))`` of an autonomous network map.

    Parameters
    ----------
    map : itermap.IterativeMap
        An autonomous map (no input block) with one activation for every
        block, on NumPy; its weights are the family's ``W`` (gain 1).

    Returns
    -------
    callable
        ``make_map(g)``: a float gives an :class:`itermap.IterativeMap` with
        weights ``g W``; an array of ``P`` gains gives one map whose batch row
        ``i`` runs with ``gains[i]``, so :func:`orbit_diagram` and
        :func:`lyapunov_scan` run every gain in one batched product.

    Raises
    ------
    TypeError
        A map that is not an :class:`itermap.IterativeMap`.
    ValueError
        A driven map, activations that differ between blocks, a leak or function
        blocks, a map not on NumPy (and, from the returned function, gains that are
        not finite).

    References
    ----------
    .. [1] Sompolinsky, H., Crisanti, A. and Sommers, H.-J. (1988). Chaos in random neural
       networks. Physical Review Letters 61, 259-262.
    .. [2] Engelken, R., Wolf, F. and Abbott, L. F. (2023). Lyapunov spectra of chaotic
       recurrent neural networks. Physical Review Research 5, 043044.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import gain_family, lyapunov_scan
    >>> make = gain_family(itermap.random_rnn(50, gain=1.0, rng=0))
    >>> scan = lyapunov_scan(make, [0.5, 2.0], np.full(50, 0.1), 300)
    >>> scan.batched, bool(scan.exponents[0, 0] < 0 < scan.exponents[1, 0])
    (True, True)
    """
    if not is_network(map):
        raise TypeError(f"map: gain_family needs an itermap.IterativeMap, got {type(map).__name__}")
    if map.input_block is not None:
        raise ValueError("gain_family needs an autonomous map (input_block is None)")
    if len({a.name for a in map.activations}) != 1:
        raise ValueError("gain_family needs one activation for every block")
    if map.backend != "numpy":
        raise ValueError("gain_family works on NumPy maps; move the map with .to('numpy')")
    if map.leaky:
        raise ValueError(f"map: gain_family scales W of a map without leak; this one has leak "
                         f"{list(map.leak)} (build each reservoir with IterativeMap(..., leak=))")
    if map.functions:
        raise ValueError(f"map: gain_family scales W of a map without function blocks; this one "
                         f"has {sorted(map.functions)}")
    bm = map.block_matrix
    W = bm.to_sparse().tocsr() if any(is_sparse(b) for b in bm.blocks.values()) \
        else np.asarray(bm.to_dense())
    bias = None if map.bias is None else np.asarray(map.bias)
    act = map.activations[0]

    def make_map(g):
        if np.ndim(g) == 0:
            g = float(g)
            blocks = {key: b * g for key, b in bm.blocks.items()}
            # the Activation itself: a user's own one has no name to look up
            return itermap.IterativeMap(itermap.BlockMatrix(bm.sizes, blocks), bias, act)
        g = np.asarray(g, dtype=float)
        if g.ndim != 1 or not np.all(np.isfinite(g)):
            raise ValueError("gains must be a finite float or a finite 1-D array")
        return _GainBatch(W, bias, act, g, bm.sizes)

    return make_map
