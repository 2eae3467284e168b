"""Memory of a map: impulse responses and Jaeger's short-term memory capacity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import itermap
from itermap.backends import namespace, to_numpy

from ._checks import check_choice, check_real
from ._checks import check_int as _check_int

__all__ = ["ImpulseResponse", "MemoryCapacity", "impulse_response", "memory_capacity"]


@itermap.saveable
@dataclass
class ImpulseResponse:
    """How an impulse at step 0 spreads through the blocks of a map.

    Attributes
    ----------
    norms : array of shape (steps + 1, n_sources, n_blocks)
        ``norms[k, s, t]``: Frobenius norm of the response of target block
        ``t`` to unit impulses in every unit of source block ``sources[s]``,
        ``k`` steps after the impulse. For a state block, row ``k = 0`` is
        the impulse itself (norm ``sqrt(size)``). For the input block of a
        driven map the impulse is on the input ``u_0``, which first shows in
        the state after one step: its row ``k`` is that state's response
        ``k + 1`` steps on, so for both kinds ``k`` counts the steps *after*
        the first state the impulse touches. The input block is overwritten
        every step, so as a target it is always zero.
    length : int or None
        The measured FIR length: the first ``k`` from which every response
        is zero for good (so ``length`` states carry the impulse); None if
        the response has not vanished within ``steps``.
    decay_rate : float or None
        ``r`` in ``total ~ exp(-r k)`` fitted over the second half of the
        steps when the response does not vanish (positive: it decays;
        negative: it grows); None when it vanishes.
    sources : list of int
        The source block of each row of ``norms``.
    sizes : list of int
        Block sizes of the map.
    method : str
        ``"linear"`` or ``"nonlinear"``.
    """

    norms: object
    length: int | None
    decay_rate: float | None
    sources: list
    sizes: list
    method: str

    @property
    def total(self):
        """Frobenius norm of the whole response at each step, shape (steps + 1,)."""
        return np.sqrt(np.sum(np.asarray(self.norms) ** 2, axis=(1, 2)))


@itermap.saveable
@dataclass
class MemoryCapacity:
    """Jaeger's short-term memory capacity and its terms.

    Attributes
    ----------
    capacity : float
        ``sum_d r2[d]``.
    r2 : array of shape (max_delay,)
        Squared correlation between ``u(t - d)`` and its best linear
        reconstruction from the state, on held-out steps.
    delays : array of int, shape (max_delay,)
        ``1 .. max_delay``; delay 1 is the latest input the state has seen.
    """

    capacity: float
    r2: object
    delays: object


def _machine_eps(x):
    """Machine epsilon of x's floating dtype (any array namespace)."""
    return float(np.finfo(np.float32 if "32" in str(x.dtype) else np.float64).eps)


def _check_finite(xp, a, step, what="state"):
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
    if isinstance(blocks, str | bytes) or not hasattr(blocks, "__iter__"):
        raise TypeError(f"blocks must be a block index or a sequence of them, got {blocks!r}")
    out = []
    for b in blocks:
        if isinstance(b, bool) or not isinstance(b, int | np.integer):
            raise TypeError(f"blocks must be block indices, got {b!r}")
        if not -n <= b < n:
            raise ValueError(f"impulse in block {b}, which does not exist: the map has {n} "
                             f"blocks")
        out.append(int(b) % n)
    if len(set(out)) != len(out):
        raise ValueError(f"blocks repeat a block: {list(blocks)}")
    if not out:
        raise ValueError("blocks must name at least one block")
    return out


def _input_sequence(map_, x, steps, inputs, xp):
    """One input per step for ``steps`` steps (None for an autonomous map).

    Without ``inputs`` a driven map holds the input already in ``x``'s input block.
    """
    if map_.input_block is not None and inputs is None:
        return [x[map_.block_slice(map_.input_block)]] * steps
    constant, sequence = itermap.resolve_inputs(map_, x, inputs, steps)
    if constant is not None:
        return [constant] * steps
    if sequence is not None:
        return [sequence[k, ...] for k in range(steps)]
    return None


def _unit_columns(map_, blocks, xp, dtype):
    """A (dim, sum of sizes) matrix: the identity restricted to ``blocks``' columns."""
    dim = map_.dim
    cols = sum(map_.sizes[b] for b in blocks)
    E = np.zeros((dim, cols))
    c = 0
    for b in blocks:
        s = map_.block_slice(b)
        size = s.stop - s.start
        E[s.start + np.arange(size), c + np.arange(size)] = 1.0
        c += size
    return xp.asarray(E, dtype=dtype)


def _block_norms(R, groups, map_, xp):
    """Frobenius norms of ``R`` (dim, cols) per (column group, row block), on the host."""
    sq = R * R
    out = np.zeros((len(groups), len(map_.sizes)))
    for t in range(len(map_.sizes)):
        rows = xp.sum(sq[map_.block_slice(t), :], axis=0)
        for g, (lo, hi) in enumerate(groups):
            out[g, t] = float(xp.sum(rows[lo:hi]))
    return np.sqrt(out)


def _groups(map_, blocks):
    groups, c = [], 0
    for b in blocks:
        groups.append((c, c + map_.sizes[b]))
        c += map_.sizes[b]
    return groups


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


def impulse_response(map, x, steps, *, inputs=None, method="linear", blocks=None, eps=1e-6,
                     tol=None):
    """The response of every block to an impulse at step 0, along a trajectory.

    Parameters
    ----------
    map : Map
        Any map; for an impulse on the input of a driven map with
        ``method="linear"``, an :class:`itermap.IterativeMap`.
    x : array of shape (dim,)
        The start of the trajectory.
    steps : int
        Number of steps to follow the response (>= 1).
    inputs : array, optional
        Driven maps: one input ``(n_in,)`` held constant, or a sequence of
        ``steps + 1`` inputs ``(steps + 1, n_in)`` (the input impulse's
        response runs one step longer than a state impulse's). By default
        the input held in ``x``'s input block.
    method : {"linear", "nonlinear"}
        ``"linear"`` propagates tangent vectors (exact derivatives, exact
        structural zeros); ``"nonlinear"`` runs the trajectory next to copies
        perturbed by ``eps`` (in one batch, so untouched units match to the
        last bit) and divides the difference by ``eps``. A response that has
        decayed below about ``1e-16 / eps`` of the state is lost in rounding
        there and reads as zero, so measure fast-decaying IIR maps with the
        linear method.
    blocks : int or sequence of int, optional
        The source blocks of the impulse; all blocks by default. The input
        block of a driven map means an impulse on the input ``u_0``.
    eps : float
        Size of the perturbation of the nonlinear method.
    tol : float, optional
        A step's response counts as zero when its norm is at most ``tol``
        times the largest norm seen. Default: 0 for the linear method (its
        structural zeros are exact); ``64 * machine_eps / eps`` for the
        nonlinear one, whose untouched units can differ from the reference
        in the last bit (BLAS may round batch rows differently), which
        ``/ eps`` magnifies to about ``1e-10``.

    Returns
    -------
    ImpulseResponse
        ``norms (steps + 1, sources, blocks)``, ``length`` and
        ``decay_rate``.

    Raises
    ------
    ValueError
        ``steps < 1``, an impulse in a block that does not exist, bad inputs.
    itermap.DivergenceError
        When the state (or a tangent vector) overflows along the trajectory.

    Notes
    -----
    Each step propagates one tangent vector (or one perturbed copy) per unit
    of the source blocks, so the cost is that of iterating a batch of
    ``sum(sizes[b] for b in blocks)`` states; pass ``blocks`` to restrict it
    on large maps.

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
    """
    map = itermap.as_map(map)
    steps = _check_int("steps", steps, 1)
    method = check_choice("method", method, ("linear", "nonlinear"))
    eps = check_real("eps", eps, positive=True)
    x = map._check_state(x, "x")
    if x.ndim != 1:
        raise ValueError(f"x must be one state of shape ({map.dim},), got {tuple(x.shape)}")
    xp = namespace(x)
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError("x contains NaN or inf")
    if tol is None:
        tol = 0.0 if method == "linear" else 64 * _machine_eps(x) / eps
    tol = check_real("tol", tol, minimum=0.0)
    sources = _sources(map, blocks)
    ib = map.input_block
    state_src = [b for b in sources if b != ib]
    input_src = ib is not None and ib in sources
    us = _input_sequence(map, x, steps + 1, inputs, xp)

    def u_at(k):
        return None if us is None else us[k]

    n_src, n_blk = len(sources), len(map.sizes)
    norms = np.zeros((steps + 1, n_src, n_blk))
    rows_state = [sources.index(b) for b in state_src]
    row_input = sources.index(ib) if input_src else None
    g_state = _groups(map, state_src)
    n_state = g_state[-1][1] if g_state else 0
    n_in = map.input_size
    if ib is not None:
        keep = np.ones(map.dim)
        keep[map.block_slice(ib)] = 0.0
        keep = xp.asarray(keep, dtype=x.dtype)

    # overflow is caught below (a DivergenceError after the step), not warned about
    with np.errstate(over="ignore", invalid="ignore"):
        if method == "linear":
            V = _unit_columns(map, state_src, xp, x.dtype) if state_src else None
            Vin = None
            aux = None
            if input_src:
                if not isinstance(map, itermap.IterativeMap):
                    raise TypeError("an input impulse with method='linear' needs an IterativeMap; "
                                    "use method='nonlinear' for other maps")
                aux = itermap.IterativeMap(map.block_matrix, map.bias, list(map.activations))
            for k in range(steps + 1):
                if V is not None:
                    norms[k, rows_state] = _block_norms(V, g_state, map, xp)
                need_state = V is not None and k < steps
                if not (need_state or input_src):
                    break
                if k == 0 and input_src:
                    x_in = map.with_input(x, u_at(0))
                    E = _unit_columns(map, [ib], xp, x.dtype)
                    Vin = aux.tangent(x_in, E) * keep[:, None]
                    x_next, V = (map.step_with_tangent(x, V, u_at(0)) if V is not None
                                 else (map.step(x, u_at(0)), None))
                else:
                    both = V if Vin is None else (Vin if V is None or not need_state
                                                  else xp.concat([V, Vin], axis=1))
                    x_next, both = map.step_with_tangent(x, both, u_at(k))
                    if Vin is None:
                        V = both
                    elif V is None or not need_state:
                        Vin = both
                    else:
                        V, Vin = both[:, :n_state], both[:, n_state:]
                _check_finite(xp, x_next, k + 1)
                for t in (V, Vin):
                    if t is not None:
                        _check_finite(xp, t, k + 1, "tangent vector")
                if Vin is not None:
                    norms[k, row_input] = _block_norms(Vin, [(0, n_in)], map, xp)[0]
                x = x_next
        else:
            parts = [x[None, :]]
            if state_src:
                parts.append(x[None, :] + eps * xp.permute_dims(
                    _unit_columns(map, state_src, xp, x.dtype), (1, 0)))
            if input_src:
                parts.append(xp.broadcast_to(x[None, :], (n_in, map.dim)))
            X = xp.concat(parts, axis=0)
            B = X.shape[0]
            lo_in = 1 + n_state
            for k in range(steps + 1):
                if state_src:
                    D = xp.permute_dims((X[1:lo_in, :] - X[0:1, :]) / eps, (1, 0))
                    norms[k, rows_state] = _block_norms(D, g_state, map, xp)
                if not input_src and k == steps:
                    break
                U = None
                if ib is not None:
                    U = xp.broadcast_to(u_at(k)[None, :], (B, n_in))
                    if k == 0 and input_src:
                        bump = np.zeros((B, n_in))
                        bump[lo_in + np.arange(n_in), np.arange(n_in)] = eps
                        U = U + xp.asarray(bump, dtype=x.dtype)
                X = map.step(X, U)
                _check_finite(xp, X, k + 1)
                if input_src:
                    D = xp.permute_dims((X[lo_in:, :] - X[0:1, :]) / eps, (1, 0)) * keep[:, None]
                    norms[k, row_input] = _block_norms(D, [(0, n_in)], map, xp)[0]
    total = np.sqrt(np.sum(norms ** 2, axis=(1, 2)))
    length = _measured_length(total, tol)
    rate = _decay_rate(total) if length is None else None
    return ImpulseResponse(norms, length, rate, sources, list(map.sizes), method)


def memory_capacity(map, *, input_block=None, max_delay, steps, rng=None, washout=100,
                    input_scale=1.0):
    """Jaeger's short-term memory capacity of a driven map.

    The map is driven by an i.i.d. scalar signal ``s(t) ~ U(-input_scale,
    input_scale)`` (written to every unit of the input block) from the zero
    state. For each delay ``d = 1 .. max_delay``, a linear readout with
    intercept of the non-input units of the state ``x_t`` is fitted to
    ``s(t - d)`` by least squares on the first half of the steps after
    ``washout``, and ``r2[d]`` is the squared correlation between its
    prediction and ``s(t - d)`` on the second half (held out, so delays the
    state does not remember score about ``1 / n_test``, not the in-sample
    ``n_units / n_train``). The capacity is ``sum_d r2[d]``.

    ``x_t`` has seen ``s(0) .. s(t - 1)``, so delay 1 is the latest input. An
    MLP map of depth ``L`` holds only delays ``1 .. L``: its capacity is at
    most ``L``. A linear recurrent network of ``N`` units reaches ``N``.

    Parameters
    ----------
    map : Map
        A driven map (``map.input_block`` is not None).
    input_block : int, optional
        The block the signal drives; must be the map's own input block
        (the default).
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

    Returns
    -------
    MemoryCapacity
        ``capacity``, ``r2`` per delay and the ``delays``.

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
        if isinstance(input_block, bool) or not isinstance(input_block, int | np.integer):
            raise TypeError(f"input_block must be an int, got {input_block!r}")
        if not 0 <= input_block < len(map.sizes):
            raise ValueError(f"input_block {input_block} does not exist: the map has "
                             f"{len(map.sizes)} blocks")
        if input_block != ib:
            raise ValueError(f"input_block {input_block} is not the map's input block {ib}")
    max_delay = _check_int("max_delay", max_delay, 1)
    steps = _check_int("steps", steps, 1)
    washout = _check_int("washout", washout, 0)
    input_scale = check_real("input_scale", input_scale, positive=True)
    gen = itermap.as_rng(rng)
    start = max(washout, max_delay)
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
    keep = np.ones(map.dim, dtype=bool)
    if ib is not None:
        keep[map.block_slice(ib)] = False
    t = np.arange(start, steps + 1)
    X = np.column_stack([states[t][:, keep], np.ones(t.size)])
    delays = np.arange(1, max_delay + 1)
    Y = unit[t[:, None] - delays[None, :]]
    half = t.size // 2
    coef = np.linalg.lstsq(X[:half], Y[:half], rcond=None)[0]
    pred = X[half:] @ coef
    target = Y[half:]
    pc = pred - pred.mean(axis=0)
    tc = target - target.mean(axis=0)
    num = np.sum(pc * tc, axis=0) ** 2
    den = np.sum(pc * pc, axis=0) * np.sum(tc * tc, axis=0)
    r2 = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return MemoryCapacity(float(r2.sum()), r2, delays)
