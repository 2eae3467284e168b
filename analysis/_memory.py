"""Memory of a map: impulse responses and Jaeger's short-term memory capacity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.linalg

import itermap
from itermap.backends import namespace, to_numpy
from itermap.typing import Array, MapLike, RngLike

from ._checks import check_choice, check_real, is_network, is_sequence, machine_eps, state_units
from ._checks import check_int as _check_int

__all__ = ["ImpulseResponse", "MemoryCapacity", "impulse_response", "memory_capacity"]


@itermap.saveable
@dataclass
class ImpulseResponse(itermap.Result):
    """How an impulse at step 0 spreads through the blocks of a map.

    Attributes
    ----------
    norms : array of shape (steps + 1, n_sources, n_blocks), or (B, steps + 1, n_sources, n_blocks)
        ``norms[k, s, t]``: Frobenius norm of the response of target block ``t`` to unit
        impulses in every unit of source block ``sources[s]``, ``k`` steps after the first
        state the impulse touches (for the input block, one step after ``u_0``). Row
        ``k = 0`` of a state block is the impulse itself (norm ``sqrt(size)``).
    length : int or None, or a list of them (one per state of a batch)
        The measured FIR length: the first ``k`` from which every response is zero for
        good; None if the response has not vanished within ``steps``.
    decay_rate : float or None, or a list of them (one per state of a batch)
        ``r`` in ``total ~ exp(-r k)`` over the second half of the steps (negative: it
        grows); None when the response vanishes.
    sources : list of int
        The source block of each row of ``norms``.
    sizes : list of int
        Block sizes of the map.
    method : str
        ``"linear"`` or ``"nonlinear"``.
    batched : bool
        True when the response is of a batch of states ``(B, dim)``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.systems import linear
    >>> from itermap.analysis import impulse_response
    >>> r = impulse_response(linear(np.array([[0.5]])), np.array([[1.0], [2.0]]), 3)
    >>> r.batched, r.norms.shape, r.row(1).norms.shape
    (True, (2, 4, 1, 1), (4, 1, 1))
    """

    _schema: ClassVar[dict[str, str]] = {
        "norms": "float[..., S, N]",
        "length": "int | None | list[int | None]",
        "decay_rate": "float | None | list[float | None]",
        "sources": "list[int]",
        "sizes": "list[int]",
        "method": "str",
        "batched": "bool",
    }
    _dims: ClassVar[dict[str, str]] = {"S": "source", "N": "step"}
    _coords: ClassVar[dict[str, str]] = {"source": "sources"}

    norms: Array
    length: int | None | list[int | None]
    decay_rate: float | None | list[float | None]
    sources: list
    sizes: list
    method: str
    batched: bool = False

    @property
    def total(self) -> np.ndarray:
        """Frobenius norm of the whole response at each step: (steps + 1,), or (B, steps + 1)."""
        return _frobenius(self.norms, (-2, -1))

    def row(self, index: int) -> ImpulseResponse:
        """The response of state ``index`` of a batch, as a single state's result.

        Parameters
        ----------
        index : int
            Which state of the batch (negative counts from the end).

        Returns
        -------
        ImpulseResponse
            With ``norms`` of shape ``(steps + 1, n_sources, n_blocks)``.

        Raises
        ------
        ValueError
            When the response is not of a batch, or ``index`` is out of range.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap.systems import linear
        >>> from itermap.analysis import impulse_response
        >>> r = impulse_response(linear(np.array([[0.5]])), np.zeros((3, 1)), 4)
        >>> r.row(-1).decay_rate == r.decay_rate[2]
        True
        """
        if not self.batched:
            raise ValueError("index: this impulse response is of one state, not a batch")
        index = _check_int("index", index)
        n = len(self.length)  # type: ignore[arg-type]
        if not -n <= index < n:
            raise ValueError(f"index {index} is out of range for a batch of {n} states")
        i = int(index) % n
        return ImpulseResponse(np.asarray(self.norms)[i], self.length[i],  # type: ignore[index]
                               self.decay_rate[i], list(self.sources),  # type: ignore[index]
                               list(self.sizes), self.method)


@itermap.saveable
@dataclass
class MemoryCapacity(itermap.Result):
    """Jaeger's short-term memory capacity and its terms.

    Attributes
    ----------
    capacity : float
        ``sum_d r2[d]``.
    r2 : array of shape (max_delay,)
        Squared correlation between ``u(t - d)`` and its best linear
        reconstruction from the state, on held-out steps.
    delays : array of int, shape (max_delay,)
        ``1 .. max_delay`` (delay 1: the latest input the state has seen), or
        reservoirpy's lags with ``convention="lag"``.
    convention : str
        ``"delay"`` (itermap's) or ``"lag"`` (reservoirpy's).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import mlp_continuum
    >>> from itermap.analysis import memory_capacity
    >>> mlp = mlp_continuum([1, 4, 4], activation="identity", rng=0)
    >>> mc = memory_capacity(mlp, max_delay=4, steps=400, rng=0)
    >>> mc.delays.tolist(), np.round(mc.r2, 1).tolist()  # an MLP of depth 2 holds 2 delays
    ([1, 2, 3, 4], [1.0, 1.0, 0.0, 0.0])
    """

    _schema: ClassVar[dict[str, str]] = {
        "capacity": "float",
        "r2": "float[L]",
        "delays": "int[L]",
        "convention": "str",
    }
    _table: ClassVar[tuple[str, ...]] = ("delays", "r2")
    _dims: ClassVar[dict[str, str]] = {"L": "delay"}
    _coords: ClassVar[dict[str, str]] = {"delay": "delays"}

    capacity: float
    r2: Array
    delays: Array
    convention: str = "delay"


def _check_finite(xp, a, step, what="state"):
    """DivergenceError when ``a`` holds inf or NaN."""
    if not bool(xp.all(xp.isfinite(a))):
        raise itermap.DivergenceError(
            f"the {what} overflowed to inf or NaN at step {step}: the map's state diverges "
            "along this trajectory, so its impulse response is undefined")


def _sources(map_, blocks):
    n = len(map_.sizes)
    if blocks is None:
        return list(range(n))
    if isinstance(blocks, int | np.integer) and not isinstance(blocks, bool):
        blocks = [blocks]
    if not is_sequence(blocks):
        raise TypeError(f"blocks must be a block index or a sequence of them, got {blocks!r}")
    out = []
    for b in (_check_int("blocks", b) for b in blocks):
        if not -n <= b < n:
            raise ValueError(f"impulse in block {b}, which does not exist: the map has {n} "
                             f"blocks")
        out.append(int(b) % n)
    if len(set(out)) != len(out):
        raise ValueError(f"blocks repeat a block: {list(blocks)}")
    if not out:
        raise ValueError("blocks must name at least one block")
    return out


def _input_sequence(map_, x, steps, inputs):
    """One input per step (None for an autonomous map; default: ``x``'s input block)."""
    if map_.input_block is not None and inputs is None:
        return [x[map_.block_slice(map_.input_block)]] * steps
    constant, sequence = itermap.resolve_inputs(map_, x, inputs, steps)
    if constant is not None:
        return [constant] * steps
    return None if sequence is None else [sequence[k, ...] for k in range(steps)]


def _in_step_dtype(map_, x, inputs, steps):
    """``x`` in the dtype the map's step gives it (a float32 start of a float64 network
    runs in float64): the norms, ``eps`` and ``tol`` then have the run's precision, and a
    response below float32's range is not stored as 0, an ended response."""
    row = x if x.ndim == 1 else x[0]
    u = inputs if x.ndim == 1 else _row_inputs(map_, x, inputs, steps)[0]
    us = _input_sequence(map_, row, steps + 1, u)
    with np.errstate(all="ignore"):
        dtype = map_.step(row, None if us is None else us[0]).dtype
    xp = namespace(x)
    return xp.astype(x, dtype) if xp.isdtype(dtype, "real floating") else x


def _unit_columns(map_, blocks, xp, dtype):
    """A (dim, sum of sizes) matrix: the identity restricted to ``blocks``' columns."""
    E = np.zeros((map_.dim, sum(map_.sizes[b] for b in blocks)))
    for b, (lo, hi) in zip(blocks, _groups(map_, blocks)):
        s = map_.block_slice(b)
        E[np.arange(s.start, s.stop), np.arange(lo, hi)] = 1.0
    return xp.asarray(E, dtype=dtype)


def _block_norms(R, groups, map_, xp):
    """Frobenius norms of ``R`` (dim, cols) per (column group, row block), on the host.

    Each column is scaled by its largest entry before it is squared: a response below
    ``sqrt(tiny)`` (1e-154 in float64, 1e-19 in float32) keeps its norm instead of
    squaring to zero, which would read as a response that has ended."""
    scale = xp.max(xp.abs(R), axis=0) if R.shape[0] else xp.zeros(R.shape[1], dtype=R.dtype)
    scale = np.asarray(to_numpy(scale), dtype=np.float64)
    scale[~(scale > 0)] = 1.0  # a zero column (and a NaN one stays NaN below)
    Rn = R / xp.asarray(scale, dtype=R.dtype)
    sq = Rn * Rn
    out = np.zeros((len(groups), len(map_.sizes)))
    for t in range(len(map_.sizes)):
        rows = np.asarray(to_numpy(xp.sum(sq[map_.block_slice(t), :], axis=0)), dtype=np.float64)
        for g, (lo, hi) in enumerate(groups):
            m = float(np.max(scale[lo:hi], initial=0.0))
            out[g, t] = m * math.sqrt(float(np.sum((scale[lo:hi] / m) ** 2 * rows[lo:hi])))
    return out


def _frobenius(norms, axis):
    """``sqrt(sum(norms**2))`` over ``axis``, scaled so that small norms do not square to 0."""
    a = np.asarray(norms, dtype=np.float64)
    m = np.max(a, axis=axis, keepdims=True, initial=0.0)
    safe = np.where(m > 0, m, 1.0)
    return (np.squeeze(m, axis=axis) * np.sqrt(np.sum((a / safe) ** 2, axis=axis))).astype(
        np.asarray(norms).dtype, copy=False)


def _groups(map_, blocks):
    ends = np.cumsum([0] + [map_.sizes[b] for b in blocks]).tolist()
    return list(zip(ends[:-1], ends[1:]))


def _measured_length(total, tol):
    zero = total <= tol * max(float(np.max(total)), np.finfo(float).tiny)
    if not zero[-1]:
        return None
    nonzero = np.flatnonzero(~zero)
    return int(nonzero[-1] + 1) if nonzero.size else 0


def _decay_rate(total):
    k = np.arange(total.size)
    lo = min(total.size // 2, total.size - 2)
    k, y = k[lo:], total[lo:]
    good = y > 0
    if good.sum() < 2:
        return None
    slope = np.polyfit(k[good], np.log(y[good]), 1)[0]
    return float(-slope)


def _row_inputs(map_, X, inputs, steps):
    """The ``inputs`` of each row of a batch ``X`` (B, dim), as a single state takes them."""
    if inputs is None:
        return [None] * X.shape[0]
    constant, sequence = itermap.resolve_inputs(map_, X, inputs, steps + 1)
    if constant is not None:
        return [constant if constant.ndim == 1 else constant[i] for i in range(X.shape[0])]
    return [sequence[:, i, :] for i in range(X.shape[0])]


class _Plan:
    """What one impulse-response run propagates: the state and input sources and their rows."""

    def __init__(self, map_, sources, x, xp):
        self.ib = ib = map_.input_block
        self.state_src = [b for b in sources if b != ib]
        self.input_src = ib is not None and ib in sources
        self.rows_state = [sources.index(b) for b in self.state_src]
        self.row_input = sources.index(ib) if self.input_src else None
        self.g_state = _groups(map_, self.state_src)
        self.n_state = self.g_state[-1][1] if self.g_state else 0
        self.n_in = map_.input_size
        # 1 on every unit but the input block's (which the input overwrites each step)
        self.keep = None if ib is None else xp.asarray(state_units(map_), dtype=x.dtype)


def _linear_norms(map_, x, steps, us, plan, norms, xp):
    """Fill ``norms`` by propagating tangent vectors: exact derivatives and zeros."""
    def u_at(k):
        return None if us is None else us[k]

    V = _unit_columns(map_, plan.state_src, xp, x.dtype) if plan.state_src else None
    Vin = None
    if plan.input_src:
        if not is_network(map_):
            raise TypeError("an input impulse with method='linear' needs an IterativeMap; "
                            "use method='nonlinear' for other maps")
        # the same map without its input block overwritten: its tangent carries du_0
        free = itermap.IterativeMap(map_.block_matrix, map_.bias, list(map_.activations),
                                    functions=map_.functions, leak=map_.leak)
    for k in range(steps + 1):
        if V is not None:
            norms[k, plan.rows_state] = _block_norms(V, plan.g_state, map_, xp)
        need_state = V is not None and k < steps
        if not (need_state or plan.input_src):
            break
        if k == 0 and plan.input_src:
            E = _unit_columns(map_, [plan.ib], xp, x.dtype)
            Vin = free.tangent(map_.with_input(x, u_at(0)), E) * plan.keep[:, None]
            x_next, V = (map_.step_with_tangent(x, V, u_at(0)) if V is not None
                         else (map_.step(x, u_at(0)), None))
        else:
            x_next, V, Vin = _step_both(map_, x, V, Vin, need_state, u_at(k), plan.n_state, xp)
        _check_finite(xp, x_next, k + 1)
        for t in (V, Vin):
            if t is not None:
                _check_finite(xp, t, k + 1, "tangent vector")
        if Vin is not None:
            norms[k, plan.row_input] = _block_norms(Vin, [(0, plan.n_in)], map_, xp)[0]
        x = x_next


def _step_both(map_, x, V, Vin, need_state, u, n_state, xp):
    """One step of the state tangents ``V`` and the input tangents ``Vin`` in one batch."""
    if Vin is None:
        x_next, V = map_.step_with_tangent(x, V, u)
        return x_next, V, None
    if V is None or not need_state:
        x_next, Vin = map_.step_with_tangent(x, Vin, u)
        return x_next, V, Vin
    x_next, both = map_.step_with_tangent(x, xp.concat([V, Vin], axis=1), u)
    return x_next, both[:, :n_state], both[:, n_state:]


def _nonlinear_norms(map_, x, steps, us, plan, norms, xp, eps):
    """Fill ``norms`` from copies of the trajectory perturbed by ``eps``, run in one batch."""
    parts = [x[None, :]]
    if plan.state_src:
        parts.append(x[None, :] + eps * xp.permute_dims(
            _unit_columns(map_, plan.state_src, xp, x.dtype), (1, 0)))
    if plan.input_src:
        parts.append(xp.broadcast_to(x[None, :], (plan.n_in, map_.dim)))
    X = xp.concat(parts, axis=0)
    B = X.shape[0]
    lo_in = 1 + plan.n_state
    for k in range(steps + 1):
        if plan.state_src:
            D = xp.permute_dims((X[1:lo_in, :] - X[0:1, :]) / eps, (1, 0))
            norms[k, plan.rows_state] = _block_norms(D, plan.g_state, map_, xp)
        if not plan.input_src and k == steps:
            break
        U = None
        if us is not None:  # an input block's, or the input of a map driven without one
            U = xp.broadcast_to(us[k][None, :], (B, us[k].shape[-1]))
            if k == 0 and plan.input_src:
                bump = np.zeros((B, plan.n_in))
                bump[lo_in + np.arange(plan.n_in), np.arange(plan.n_in)] = eps
                U = U + xp.asarray(bump, dtype=x.dtype)
        X = map_.step(X, U)
        _check_finite(xp, X, k + 1)
        if plan.input_src:
            D = xp.permute_dims((X[lo_in:, :] - X[0:1, :]) / eps, (1, 0)) * plan.keep[:, None]
            norms[k, plan.row_input] = _block_norms(D, [(0, plan.n_in)], map_, xp)[0]


def _one_response(map_, x, steps, inputs, method, sources, eps, tol):
    """``(norms, length, decay_rate)`` of one state ``x`` (dim,)."""
    xp = namespace(x)
    plan = _Plan(map_, sources, x, xp)
    us = _input_sequence(map_, x, steps + 1, inputs)
    # the norms keep the map's precision (a float32 map gives float32 norms)
    real = np.float32 if str(x.dtype) == "float32" else np.float64
    norms = np.zeros((steps + 1, len(sources), len(map_.sizes)), dtype=real)
    # overflow is caught after each step (a DivergenceError), not warned about
    with np.errstate(over="ignore", invalid="ignore"):
        if method == "linear":
            _linear_norms(map_, x, steps, us, plan, norms, xp)
        else:
            _nonlinear_norms(map_, x, steps, us, plan, norms, xp, eps)
    total = _frobenius(norms, (1, 2))
    length = _measured_length(total, tol)
    rate = _decay_rate(total) if length is None else None
    return norms, length, rate


def impulse_response(map: MapLike, x: Array, steps: int, *, inputs: Array | None = None,
                     method: str = "linear", blocks: int | Sequence[int] | None = None,
                     eps: float | None = None, tol: float | None = None) -> ImpulseResponse:
    """The response of every block to an impulse at step 0, along a trajectory.

    Parameters
    ----------
    map : Map
        Any map; for an impulse on the input of a driven map with
        ``method="linear"``, an :class:`itermap.IterativeMap`.
    x : array of shape (dim,) or (B, dim)
        The start of the trajectory, or a batch of starts: each row gets its
        own response, as if passed alone.
    steps : int
        Number of steps to follow the response (>= 1).
    inputs : array, optional
        Driven maps: one input ``(n_in,)`` (or ``(B, n_in)``) held constant, or a
        sequence ``(steps + 1, n_in)`` (or ``(steps + 1, B, n_in)``). By default
        the input held in each state's input block.
    method : {"linear", "nonlinear"}
        ``"linear"`` propagates tangent vectors (exact derivatives and zeros);
        ``"nonlinear"`` differences copies perturbed by ``eps``.
    blocks : int or sequence of int, optional
        The source blocks of the impulse; all blocks by default (each costs a tangent
        vector per unit: restrict them on large maps). The input block of a driven map
        means an impulse on the input ``u_0``.
    eps : float, optional
        Size of the perturbation of the nonlinear method. Default: ``1e-6``, or
        ``sqrt(machine_eps)`` where that is larger (float32 states).
    tol : float, optional
        A response counts as zero at most ``tol`` times the largest norm seen.
        Default: 0 (linear), ``64 * machine_eps / eps`` (nonlinear).

    Returns
    -------
    ImpulseResponse
        For a batch, ``batched=True`` with a leading state axis on ``norms``
        and lists of ``length`` and ``decay_rate``.

    Raises
    ------
    ValueError
        ``steps < 1``, an impulse in a block that does not exist, bad inputs,
        a start with NaN or inf, an ``eps`` so small that the default ``tol``
        reaches 1 (every difference would be roundoff).
    TypeError
        A non-integer ``steps`` or block, or an input impulse with the linear
        method on a map that is not an :class:`itermap.IterativeMap`.
    itermap.DivergenceError
        When the state (or a tangent vector) overflows along the trajectory
        (for a batch, the message names the row ``x[i]``).

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).
    .. [2] R. Pascanu, T. Mikolov, Y. Bengio, "On the difficulty of training
       recurrent neural networks", ICML (2013), arXiv:1211.5063.

    Examples
    --------
    An MLP of 3 layers forgets an impulse after 3 steps, a scalar linear
    recurrence ``x -> 0.5 x`` never does, and its response decays at the
    rate ``log 2``:

    >>> import numpy as np
    >>> from itermap import IterativeMap
    >>> from itermap.systems import linear
    >>> from itermap.analysis import impulse_response
    >>> rng = np.random.default_rng(0)
    >>> mlp = IterativeMap.from_mlp([rng.normal(size=(4, 2)), rng.normal(size=(4, 4)),
    ...                              rng.normal(size=(1, 4))], activation="tanh")
    >>> x = rng.normal(size=mlp.dim)
    >>> impulse_response(mlp, x, 6).length
    3
    >>> r = impulse_response(linear(np.array([[0.5]])), np.array([1.0]), 20)
    >>> r.length is None, round(r.decay_rate, 6)
    (True, 0.693147)

    A batch of starts gives one response per row:

    >>> rb = impulse_response(mlp, rng.normal(size=(5, mlp.dim)), 6)
    >>> rb.norms.shape, rb.length
    ((5, 7, 4, 4), [3, 3, 3, 3, 3])
    """
    map = itermap.as_map(map)
    steps = _check_int("steps", steps, 1)
    method = check_choice("method", method, ("linear", "nonlinear"))
    x = _in_step_dtype(map, map.check_start(x, "x"), inputs, steps)
    # float32 differences of 1e-6 are roundoff: the response would read as zero
    eps = max(1e-6, float(np.sqrt(machine_eps(x.dtype)))) if eps is None else \
        check_real("eps", eps, positive=True)
    if tol is None:
        tol = 0.0 if method == "linear" else 64 * machine_eps(x.dtype) / eps
        if tol >= 1:
            raise ValueError(f"eps={eps:g} is too small for {x.dtype} states: the "
                             f"differences would be roundoff; use eps >= "
                             f"{128 * machine_eps(x.dtype):g} or method='linear'")
    tol = check_real("tol", tol, minimum=0.0)
    sources = _sources(map, blocks)
    sizes = list(map.sizes)
    if x.ndim == 1:
        norms, length, rate = _one_response(map, x, steps, inputs, method, sources, eps, tol)
        return ImpulseResponse(norms, length, rate, sources, sizes, method)
    rows = []
    for i, u in enumerate(_row_inputs(map, x, inputs, steps)):
        try:
            rows.append(_one_response(map, x[i], steps, u, method, sources, eps, tol))
        except itermap.DivergenceError as err:
            raise itermap.DivergenceError(f"x[{i}]: {err}") from None
    return ImpulseResponse(np.stack([r[0] for r in rows]), [r[1] for r in rows],
                           [r[2] for r in rows], sources, sizes, method, batched=True)


def memory_capacity(map: MapLike, *, input_block: int | None = None, max_delay: int,
                    steps: int, rng: RngLike = None, washout: int = 100,
                    input_scale: float = 1.0, ridge: float = 0.0,
                    convention: str = "delay") -> MemoryCapacity:
    """Jaeger's short-term memory capacity of a driven map.

    The map is driven from the zero state by an i.i.d. signal ``s(t) ~
    U(-input_scale, input_scale)`` on every input unit. For each delay ``d``, a linear
    readout of the non-input units of ``x_t`` is fitted to ``s(t - d)`` on the first
    half of the steps after ``washout``; ``r2[d]`` is its squared correlation on the
    second half (held out). ``x_t`` has seen ``s(0) .. s(t - 1)``: an MLP map of depth
    ``L`` has capacity at most ``L``, a linear network of ``N`` units reaches ``N``.

    reservoirpy's lag ``k`` is delay ``k + 1`` here (``convention="lag"``; its input
    draws have ``input_scale=0.8``, its fit uses 80 % of the steps, this half).

    Parameters
    ----------
    map : Map
        A driven map (``map.input_block`` is not None).
    input_block : int, optional
        The block the signal drives: the map's own input block.
    max_delay : int
        Largest delay scored (>= 1).
    steps : int
        Length of the driven run.
    rng : int, Generator or None
        Source of the input signal.
    washout : int
        Initial steps left out of the fit (>= 0).
    input_scale : float
        Amplitude of the input signal.
    ridge : float
        Ridge penalty of the readout (>= 0; 0: least squares), as reservoirpy's ``Ridge``
        (centred, the intercept unpenalised); compare capacities at one ``ridge``.
    convention : {"delay", "lag"}
        Report itermap's delays ``1 .. max_delay`` or reservoirpy's lags
        ``1 .. max_delay`` (delays ``2 .. max_delay + 1``).

    Returns
    -------
    MemoryCapacity
        ``capacity``, ``r2`` per delay and the ``delays``.

    Raises
    ------
    ValueError
        An autonomous map, an ``input_block`` that is not the map's, a bad
        ``max_delay``, ``steps``, ``washout`` or ``input_scale``, or too few
        steps to fit the readout.
    TypeError
        A non-integer ``input_block``, ``max_delay``, ``steps`` or ``washout``.

    References
    ----------
    .. [1] H. Jaeger, "Short term memory in echo state networks", GMD Report 152,
       German National Research Center for Information Technology (2002).
    .. [2] Q. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).
    .. [3] N. Trouvain, L. Pedrelli, T. T. Dinh, X. Hinaut, "ReservoirPy: an
       efficient and user-friendly library to design echo state networks", ICANN
       (2020).

    Examples
    --------
    A linear delay line of 3 units remembers exactly 3 inputs:

    >>> import numpy as np
    >>> from itermap import IterativeMap
    >>> from itermap.analysis import memory_capacity
    >>> shift = np.diag(np.ones(2), -1)
    >>> line = IterativeMap.from_rnn(shift, np.array([[1.0], [0.0], [0.0]]),
    ...                              activation="identity")
    >>> mc = memory_capacity(line, max_delay=6, steps=2000, rng=0)
    >>> round(mc.capacity, 1), np.round(mc.r2[:4], 2).tolist()
    (3.0, [1.0, 1.0, 1.0, 0.0])
    """
    map = itermap.as_map(map)
    ib = map.input_block
    if map.input_size == 0:
        raise ValueError("map: memory_capacity needs a driven map (input_size is 0); build "
                         "one with IterativeMap(..., input_block=k) or IterativeMap.from_rnn")
    if input_block is not None:
        if _check_int("input_block", input_block, 0) >= len(map.sizes):
            raise ValueError(f"input_block {input_block} does not exist: the map has "
                             f"{len(map.sizes)} blocks")
        if input_block != ib:
            raise ValueError(f"input_block {input_block} is not the map's input block {ib}")
    max_delay = _check_int("max_delay", max_delay, 1)
    steps = _check_int("steps", steps, 1)
    washout = _check_int("washout", washout, 0)
    input_scale = check_real("input_scale", input_scale, positive=True)
    ridge = check_real("ridge", ridge, minimum=0.0)
    convention = check_choice("convention", convention, ("delay", "lag"))
    shift = 1 if convention == "lag" else 0  # reservoirpy's lag k is delay k + 1
    gen = itermap.as_rng(rng)
    start = max(washout, max_delay + shift)
    n_samples = steps + 1 - start
    n_units = map.dim - map.forced_size
    if n_samples // 2 <= n_units + 1:
        raise ValueError(f"steps={steps} leaves {n_samples} samples after the washout and the "
                         f"largest delay (max_delay={max_delay}), too few to fit a readout of "
                         f"{n_units} units on half of them: use steps > "
                         f"{start + 2 * (n_units + 2)}")
    unit = gen.uniform(-1.0, 1.0, size=steps)  # r2 is scale-free: regress on the unit draws
    seq = np.repeat(input_scale * unit[:, None], map.input_size, axis=1)
    x0 = map.zeros()
    xp = namespace(x0)
    traj = itermap.iterate(map, x0, steps, inputs=xp.asarray(seq, dtype=x0.dtype))
    states = np.asarray(to_numpy(traj.states), dtype=float)
    t = np.arange(start, steps + 1)
    X = np.column_stack([states[t][:, state_units(map)], np.ones(t.size)])
    delays = np.arange(1, max_delay + 1)
    Y = unit[t[:, None] - delays[None, :] - shift]
    half = t.size // 2
    if ridge == 0.0:
        coef = np.linalg.lstsq(X[:half], Y[:half], rcond=None)[0]
        pred = X[half:] @ coef
    else:
        # r2 is scale-free in the target: the unit draws do for s(t) at any ridge
        pred = _ridge_predict(X[:half, :-1], Y[:half], X[half:, :-1], ridge)
    target = Y[half:]
    pc = pred - pred.mean(axis=0)
    tc = target - target.mean(axis=0)
    num = np.sum(pc * tc, axis=0) ** 2
    den = np.sum(pc * pc, axis=0) * np.sum(tc * tc, axis=0)
    r2 = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return MemoryCapacity(float(r2.sum()), r2, delays, convention)


def _ridge_predict(X, Y, X_test, ridge):
    """reservoirpy's Ridge readout: centred, the intercept unpenalised."""
    mx, my = X.mean(axis=0), Y.mean(axis=0)
    Xc = X - mx
    A = Xc.T @ Xc + ridge * np.eye(X.shape[1])
    try:
        W = scipy.linalg.solve(A, Xc.T @ (Y - my), assume_a="sym")
    except np.linalg.LinAlgError:  # a ridge below roundoff on a rank-deficient Gram matrix
        W = scipy.linalg.lstsq(A, Xc.T @ (Y - my))[0]
    return (X_test - mx) @ W + my
