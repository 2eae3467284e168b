"""Parallel-in-time evaluation: Newton's method over a whole trajectory (DEER).

Linearised at the current guess, each Newton step is the linear recurrence
``x_{t+1} = J_t x_t + (F(x_t^old) - J_t x_t^old)``, solved for all ``t`` at once by
an associative scan. The entry point is :func:`itermap.iterate` with
``method="newton"``.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._core._backend import is_sparse, namespace
from .._core._checks import check_choice, check_int, check_memory, check_real
from .._core._result import Check, Status
from .._core._rng import as_rng
from .._core._types import Array, MapLike
from .._interop._io import saveable
from .._maps._protocol import as_map
from ._affine_scan import linear_recurrence
from ._iterate import METHODS, Trajectory, _check_finite, resolve_inputs, state_bytes
from ._iterate import iterate as _sequential

__all__ = ["NewtonConvergenceError", "NewtonTrajectory", "newton_iterate"]

JACOBIANS = ("full", "diagonal", "block")
FALLBACKS = ("raise", "sequential")
# steps over which a failed solve estimates the largest Lyapunov exponent for its message
_LYAPUNOV_STEPS = 2000


class NewtonConvergenceError(ValueError):
    """Newton's method over the trajectory did not converge; the parameters are attributes.

    Parameters
    ----------
    message : str
        What went wrong.
    iterations : int
        Iterations run.
    residuals : sequence of float
        The largest residual ``|x_{t+1} - F(x_t)|`` before each iteration and after
        the last (an array as attribute).
    lyapunov_exponent : float, optional
        The largest Lyapunov exponent estimated along the start of the sequential
        trajectory (None where it could not be estimated).

    Examples
    --------
    >>> from itermap import NewtonConvergenceError
    >>> err = NewtonConvergenceError("no convergence", iterations=3, residuals=[1.0, 0.5])
    >>> isinstance(err, ValueError), err.iterations, err.residuals.tolist()
    (True, 3, [1.0, 0.5])
    """

    def __init__(self, message: str, *, iterations: int = 0, residuals: Array = (),
                 lyapunov_exponent: float | None = None):
        super().__init__(message)
        self.iterations = iterations
        self.residuals = np.asarray(residuals, dtype=float)
        self.lyapunov_exponent = lyapunov_exponent


@saveable
@dataclass
class NewtonTrajectory(Trajectory):
    """A :class:`~itermap.Trajectory` computed by Newton's method over time.

    Attributes
    ----------
    states, times, sizes
        As for :class:`~itermap.Trajectory`.
    iterations : int
        Newton iterations (parallel linear solves), summed over the windows.
    residuals : ndarray
        The largest residual ``max |x_{t+1} - F(x_t, u_t)|`` before each
        iteration and after the last, window after window.
    converged : bool
        Whether every window met the tolerance. False only after a fallback.
    jacobian : str
        ``"full"``, ``"diagonal"`` or ``"block"``.
    damping : float
        The Levenberg-Marquardt damping used (0 is plain Newton, DEER).
    windows : int
        Time windows solved one after another (``chunk``).
    fallback_reason : str or None
        Why the sequential path was run instead, after a fallback.

    Examples
    --------
    >>> import itermap
    >>> m = itermap.random_rnn(4, gain=0.5, rng=0)
    >>> traj = itermap.iterate(m, np.ones(4), 20, method="newton")
    >>> type(traj).__name__, traj.states.shape, traj.converged, traj.jacobian
    ('NewtonTrajectory', (21, 4), True, 'full')
    """

    _schema: ClassVar[dict[str, str]] = {
        **Trajectory._schema,
        "iterations": "int",
        "residuals": "float[*] | None",
        "converged": "bool",
        "jacobian": "str",
        "damping": "float",
        "windows": "int",
        "fallback_reason": "str | None",
    }
    _checks: ClassVar[tuple[Check, ...]] = (Check(
        "converged", Status.FELL_BACK, "Newton over time did not converge and the sequential "
        "loop ran instead ({fallback_reason}): raise max_iter or use smaller windows"),)

    iterations: int = 0
    residuals: Array | None = None
    converged: bool = True
    jacobian: str = "full"
    damping: float = 0.0
    windows: int = 1
    fallback_reason: str | None = None


# -- Jacobians in the three structures -------------------------------------
def _weight_diagonal_blocks(m, xp, dtype):
    """The own-block weights ``W_ii`` of an IterativeMap (dense; zero for the input block)."""
    out = []
    bm = m.block_matrix
    for i, s in enumerate(m.sizes):
        if i == m.input_block or (i, i) not in bm.blocks:
            out.append(xp.zeros((s, s), dtype=dtype))
            continue
        W = bm.blocks[(i, i)]
        W = xp.asarray(W.toarray()) if is_sparse(W) else W
        out.append(xp.astype(W, dtype))
    return out


def _derivative(m, X, U):
    xp = namespace(X)
    parts, _ = m._preactivation(m._coerce(X), U)
    return m._derivative(parts, xp)


def _jacobian(m, X, U, kind, sizes):
    """``dF/dx`` at each row of ``X`` (N, d): full ``(N, d, d)``, ``(N, d)`` or blocks."""
    from .._maps._network import IterativeMap

    xp = namespace(X)
    if kind == "full":
        return m.jacobian(X, U)
    if isinstance(m, IterativeMap):
        d = _derivative(m, X, U)
        Ws = _weight_diagonal_blocks(m, xp, X.dtype)
        keep = m._keep_vec  # a leaky map's (1 - a) on the diagonal; None without leak
        if kind == "diagonal":
            diag = xp.concat([xp.linalg.diagonal(W) if W.shape[0] else W[:, 0] for W in Ws])
            return d * diag if keep is None else d * diag + xp.astype(keep, X.dtype)
        out, start = [], 0
        for W, s in zip(Ws, sizes):
            J = d[:, start:start + s, None] * W
            if keep is not None:
                J = J + xp.eye(s, dtype=X.dtype) * xp.astype(keep[start:start + s], X.dtype)
            out.append(J)
            start += s
        return out
    # any other map: its dense Jacobian, a few thousand rows at a time
    rows = max(1, 2 ** 22 // max(1, m.dim * m.dim))
    pieces = []
    for lo in range(0, X.shape[0], rows):
        J = m.jacobian(X[lo:lo + rows, ...], None if U is None else U[lo:lo + rows, ...])
        if kind == "diagonal":
            pieces.append(xp.linalg.diagonal(J))
        else:
            offs = np.concatenate([[0], np.cumsum(sizes)])
            pieces.append([J[:, a:b, a:b] for a, b in zip(offs[:-1], offs[1:])])
    if kind == "diagonal":
        return xp.concat(pieces, axis=0)
    return [xp.concat([p[i] for p in pieces], axis=0) for i in range(len(sizes))]


def _reshape_jacobian(J, kind, lead, xp):
    if kind == "block":
        return [xp.reshape(Ji, (*lead, *Ji.shape[1:])) for Ji in J]
    return xp.reshape(J, (*lead, *J.shape[1:]))


def _apply(J, v, kind, xp, transpose=False):
    """``J v`` (or ``J^T v``) for stacks of Jacobians in any of the three structures."""
    if kind == "diagonal":
        return J * v
    blocks = [J] if kind == "full" else J
    out, start = [], 0
    for Ji in blocks:
        s = Ji.shape[-1]
        Mi = xp.matrix_transpose(Ji) if transpose else Ji
        out.append(xp.matmul(Mi, v[..., start:start + s, None])[..., 0])
        start += s
    return out[0] if len(out) == 1 else xp.concat(out, axis=-1)


# -- the damped (Levenberg-Marquardt) step ------------------------------------
def _lm_step(J, r, damping, kind, xp, max_cg, rel_tol=1e-6):
    """``Delta`` minimising ``|r + L Delta|^2 + damping |Delta|^2`` by conjugate gradients.

    ``L``, the residuals' Jacobian, has identity blocks on its diagonal and ``-J_t``
    below; ``L^T L + damping I`` is well conditioned, so a few tens of iterations suffice.
    """
    zero = xp.zeros_like(r[:1, ...])
    J1 = J[1:, ...] if kind != "block" else [Ji[1:, ...] for Ji in J]

    def L(v):
        return v - xp.concat([zero, _apply(J1, v[:-1, ...], kind, xp)], axis=0)

    def Lt(y):
        return y - xp.concat([_apply(J1, y[1:, ...], kind, xp, transpose=True), zero], axis=0)

    def normal(v):
        return Lt(L(v)) + damping * v

    def dot(a, c):  # one inner product per trajectory of the batch
        return xp.sum(a * c, axis=(0, a.ndim - 1))

    rhs = -Lt(r)
    delta = xp.zeros_like(r)
    res = rhs
    p = res
    rr = dot(res, res)
    # an inexact step is enough: the damping is lowered until the exact Newton step takes over
    stop = rel_tol ** 2 * float(xp.max(rr))
    for _ in range(max_cg):
        if float(xp.max(rr)) <= stop:
            break
        Ap = normal(p)
        alpha = rr / xp.where(dot(p, Ap) > 0, dot(p, Ap), 1.0)
        delta = delta + alpha[None, :, None] * p
        res = res - alpha[None, :, None] * Ap
        rr_new = dot(res, res)
        beta = rr_new / xp.where(rr > 0, rr, 1.0)
        p = res + beta[None, :, None] * p
        rr = rr_new
    return delta


# -- helpers -------------------------------------------------------------------
def _eps(dtype) -> float:
    return float(np.finfo(np.dtype(str(dtype).split(".")[-1])).eps)


def _initial_guess(initial, x, steps, xp):
    """The first guess for ``x_1 .. x_T``, shape ``(T, B, d)``."""
    T, (B, d) = steps, x.shape
    if initial is None or (isinstance(initial, str) and initial == "start"):
        return xp.broadcast_to(x[None, ...], (T, B, d))
    if isinstance(initial, str):
        if initial == "zeros":
            return xp.zeros((T, B, d), dtype=x.dtype)
        raise ValueError(f"initial must be None, 'start', 'zeros', an array or a Trajectory, "
                         f"got {initial!r}")
    states = initial.states if isinstance(initial, Trajectory) else initial
    if isinstance(initial, Trajectory) and len(initial) != steps + 1:
        raise ValueError(f"initial: the Trajectory has {len(initial)} saved states; a guess "
                         f"for {steps} steps needs all {steps + 1} (x_0 to x_T, every=1)")
    if not hasattr(states, "shape"):
        states = np.asarray(states, dtype=float)
    states = xp.astype(xp.asarray(states), x.dtype)
    if states.ndim == 2:
        states = states[:, None, :]
    if states.ndim != 3 or states.shape[0] not in (T, T + 1) or states.shape[2] != d \
            or states.shape[1] not in (1, B):
        raise ValueError(f"initial of shape {tuple(states.shape)} does not fit: want "
                         f"({T}, {'B, ' if B > 1 else ''}{d}) for x_1..x_T, or {T + 1} states "
                         f"with x_0 first")
    if states.shape[0] == T + 1:
        states = states[1:, ...]
    if not bool(xp.all(xp.isfinite(states))):
        raise ValueError("initial contains NaN or inf")
    return xp.broadcast_to(states, (T, B, d))


def _inputs_over_time(constant, sequence, steps, B, xp):
    """Inputs as ``(T, B, n_in)`` (or None for an autonomous map)."""
    if constant is None and sequence is None:
        return None
    if sequence is not None:
        U = sequence if sequence.ndim == 3 else sequence[:, None, :]
        return xp.broadcast_to(U, (steps, B, U.shape[-1]))
    U = constant if constant.ndim == 2 else constant[None, :]
    return xp.broadcast_to(U[None, ...], (steps, B, U.shape[-1]))


def largest_lyapunov_estimate(m, x, U, steps, rng=0):
    """The largest Lyapunov exponent along the first ``steps`` steps from ``x`` (B, d).

    One tangent vector per trajectory, renormalised every step; the mean over
    the batch. None when a tangent vector overflows or collapses.
    """
    xp = namespace(x)
    B, d = x.shape
    v = xp.asarray(as_rng(rng).standard_normal((B, d, 1)))
    v = xp.astype(v, x.dtype)
    total = xp.zeros((B,), dtype=xp.float64)
    with np.errstate(all="ignore"):
        for t in range(steps):
            x, v = m.step_with_tangent(x, v, None if U is None else U[t, ...])
            norm = xp.sqrt(xp.sum(v[..., 0] ** 2, axis=-1))
            if not bool(xp.all((norm > 0) & xp.isfinite(norm))):
                return None
            total = total + xp.astype(xp.log(norm), xp.float64)
            v = v / norm[:, None, None]
    return float(xp.mean(total)) / max(steps, 1)


def _why(residual, iterations, steps, lam, n_lam, overflow, damping, jacobian):
    over = ": the iterate overflowed to inf or NaN" if overflow else ""
    what = (f"Newton over the trajectory did not converge in {iterations} iterations{over} "
            f"(largest residual {residual:.2e})")
    if lam is None:
        lyap = "the largest Lyapunov exponent could not be estimated"
    else:
        lyap = (f"the largest Lyapunov exponent is about {lam:+.3f} per step (estimated over "
                f"the first {n_lam} steps)")
    if lam is not None and lam > 0:
        advice = ("the map is chaotic along this trajectory: errors in the Newton iterate grow "
                  "like exp(lambda t), so Newton needs about as many iterations as steps "
                  "(Gonzalez et al. 2025); use the sequential path (fallback='sequential')")
    else:
        other = "jacobian='full' or " if jacobian != "full" else ""
        advice = (f"raise max_iter (up to steps={steps}, after which it is exact), or try "
                  f"{other}damping > 0" if iterations < steps else
                  "the residual stalls above tol: loosen tol")
        if damping > 0:
            advice += "; damping slows convergence on a contracting map, try a smaller one"
    return f"{what}; {lyap}; {advice}"


def _solve_window(m, x, U, X, *, kind, sizes, damping, tol, max_iter, max_cg, xp):
    """Newton iterations on one window (the damping schedule is ``newton_iterate``'s).

    Returns ``(X, iterations, history, ok, overflow)``.
    """
    T, B, d = X.shape
    history = []
    n_in = None if U is None else U.shape[-1]
    U_flat = None if U is None else xp.reshape(U, (T * B, n_in))
    iterations = 0
    lam = damping
    overflowed = False

    def evaluate(X):
        prev = xp.concat([x[None, ...], X[:-1, ...]], axis=0)
        flat = xp.reshape(prev, (T * B, d))
        FX = xp.reshape(m.step(flat, U_flat), (T, B, d))
        return prev, flat, FX

    def newton_step(J, prev, FX, X):
        X_new = linear_recurrence(J, FX - _apply(J, prev, kind, xp), x, kind=kind)
        # a state that overflowed (a Newton overshoot far along the trajectory), or whose
        # image does, keeps its previous value. Each prefix of the scan depends on the
        # earlier states only, so the prefix that is exact stays exact and the guarantee of
        # convergence within T iterations holds.
        finite = xp.all(xp.isfinite(X_new), axis=-1)
        over = not bool(xp.all(finite))
        if over:
            X_new = xp.where(finite[..., None], X_new, X)
        prev_n, flat_n, FX_n = evaluate(X_new)
        image_ok = xp.all(xp.isfinite(FX_n), axis=-1)          # F(x_t) for t = 0..T-1
        if not bool(xp.all(image_ok)):
            over = True
            keep = xp.concat([image_ok[1:, ...], xp.ones_like(image_ok[:1, ...])], axis=0)
            X_new = xp.where(keep[..., None], X_new, X)
            prev_n, flat_n, FX_n = evaluate(X_new)
        return X_new, prev_n, flat_n, FX_n, over

    with np.errstate(all="ignore"):
        prev, flat, FX = evaluate(X)
        while True:
            r = X - FX
            residual = float(xp.max(xp.abs(r)))
            if not math.isfinite(residual):
                return X, iterations, history + [math.inf], False, True
            history.append(residual)
            scale = max(1.0, float(xp.max(xp.abs(FX))))
            if residual <= tol * scale:
                return X, iterations, history, True, False
            if len(history) > 1 and residual <= 20 * tol * scale and \
                    residual >= history[-2]:
                return X, iterations, history, True, False   # the rounding floor: no progress
            if iterations >= max_iter:
                return X, iterations, history, False, overflowed
            J = _reshape_jacobian(_jacobian(m, flat, U_flat, kind, sizes), kind, (T, B), xp)
            iterations += 1
            merit = float(xp.sum(r * r))
            if lam < 1e-3:
                X_new, prev_n, flat_n, FX_n, over = newton_step(J, prev, FX, X)
                overflowed = over
                if damping > 0 and not float(xp.sum((X_new - FX_n) ** 2)) < merit:
                    lam = 1e-2  # the Newton step overshot: back to damped steps
                else:
                    X, prev, flat, FX = X_new, prev_n, flat_n, FX_n
                    continue
            while True:
                X_try = X + _lm_step(J, r, lam, kind, xp, max_cg)
                prev_t, flat_t, FX_t = evaluate(X_try)
                merit_try = float(xp.sum((X_try - FX_t) ** 2))
                if math.isfinite(merit_try) and merit_try < merit:
                    lam /= 10.0
                    break
                lam *= 4.0
                if lam > 1e12:  # no step lowers the residuals: a stationary point
                    return X, iterations, history, False, False
            X, prev, flat, FX = X_try, prev_t, flat_t, FX_t


def newton_iterate(map: MapLike, x0: Array, steps: int, *, inputs: Any = None, every: int = 1,
                   keep: str = "all", jacobian: str = "full", damping: float = 0.0,
                   tol: float | None = None, max_iter: int | None = None, initial: Any = None,
                   fallback: str = "raise", chunk: int | None = None,
                   max_cg: int = 100) -> NewtonTrajectory:
    """Run ``map`` for ``steps`` steps by Newton's method over the whole trajectory.

    Called by :func:`itermap.iterate` with ``method="newton"``; see there for
    ``map``, ``x0``, ``steps``, ``inputs``, ``every`` and ``keep``.

    Parameters
    ----------
    jacobian : {"full", "diagonal", "block"}
        The linearisation: the full Jacobian (DEER; exact in ``steps``
        iterations, ``O(T d^3)`` work), its diagonal (quasi-DEER: ``O(T d)``,
        only where the off-diagonal coupling is weak), or its own-block part of
        a block map.
    damping : float
        Levenberg-Marquardt damping ``lambda >= 0`` to start with (ELK [2]_),
        each damped step by conjugate gradients: a step that lowers the squared
        residuals is taken and ``lambda`` divided by 10, else retried at
        ``4 lambda``; below ``1e-3`` plain Newton takes over (damping resumes at
        ``1e-2`` if the residuals rise). 0 is plain Newton (DEER).
    tol : float, optional
        Converged when ``max |x_{t+1} - F(x_t, u_t)| <= tol * max(1, max |x|)``,
        or when it stops falling at all within 20 times that: the rounding
        floor. Defaults to 1e-11 in float64 and 5e-7 in float32.
    max_iter : int, optional
        Most Newton iterations per window; default ``min(steps, 100)``. The
        first ``k`` states are exact after ``k`` iterations, so ``steps`` always
        suffices in exact arithmetic.
    initial : None, "start", "zeros", array or Trajectory
        The first guess for the states: the start held (default), zeros, an
        array ``(steps, [B,] dim)`` of ``x_1..x_T`` (or ``steps + 1`` states with
        ``x_0`` first), or a Trajectory such as a previous solution.
    fallback : {"raise", "sequential"}
        What to do when Newton does not converge: raise
        :class:`NewtonConvergenceError`, or warn (``RuntimeWarning``, saying
        why) and run the sequential path.
    chunk : int, optional
        Solve windows of ``chunk`` steps one after another, each from the end
        of the last: memory ``O(chunk B d^2)`` instead of ``O(T B d^2)``.
    max_cg : int
        Most conjugate-gradient iterations per damped step.

    Returns
    -------
    NewtonTrajectory
        The :class:`~itermap.Trajectory`, with ``iterations``, ``residuals``
        and how it was computed.

    Raises
    ------
    NewtonConvergenceError
        When Newton does not converge within ``max_iter`` (``fallback="raise"``);
        the message names the largest Lyapunov exponent, estimated along
        the first 2000 steps.
    ValueError
        Bad options (the message names the parameter).

    Notes
    -----
    Memory ``O(T B d)`` for the states plus ``O(T B d^2)`` for full or block
    Jacobians, whatever ``keep`` (``chunk`` bounds both). Newton converges in few
    iterations on contracting maps and not on chaotic ones [3]_.

    References
    ----------
    .. [1] Y. H. Lim, Q. Zhu, J. Selfridge, M. F. Kasim, "Parallelizing non-linear
       sequential models over the sequence length", ICLR (2024), arXiv:2309.12252.
    .. [2] X. Gonzalez, A. Warrington, J. T. H. Smith, S. W. Linderman, "Towards
       scalable and stable parallelization of nonlinear RNNs", NeurIPS (2024),
       arXiv:2407.19115.
    .. [3] X. Gonzalez, L. Kozachkov, D. M. Zoltowski, K. L. Clarkson, S. W.
       Linderman, "Predictability enables parallelization of nonlinear state space
       models", NeurIPS (2025), arXiv:2508.16817.

    Examples
    --------
    >>> import itermap
    >>> m = itermap.random_rnn(8, gain=0.5, rng=0)
    >>> x0 = np.random.default_rng(1).normal(size=8)
    >>> traj = itermap.iterate(m, x0, 1000, method="newton")
    >>> seq = itermap.iterate(m, x0, 1000)
    >>> bool(np.max(np.abs(traj.states - seq.states)) < 1e-12), traj.iterations <= 10
    (True, True)
    """
    steps = check_int("steps", steps, 0)
    every = check_int("every", every, 1, maximum=None)  # a stride past the run: x_0
    keep = check_choice("keep", keep, ("all", "last"))
    jacobian = check_choice("jacobian", jacobian, JACOBIANS)
    fallback = check_choice("fallback", fallback, FALLBACKS)
    damping = check_real("damping", damping, minimum=0.0)
    if tol is not None:
        tol = check_real("tol", tol, positive=True)
    if max_iter is not None:
        max_iter = check_int("max_iter", max_iter, 0)
    if chunk is not None:
        chunk = check_int("chunk", chunk, 1)
    max_cg = check_int("max_cg", max_cg, 1)
    m = as_map(map)
    x = m.check_start(x0)
    xp = namespace(x)
    constant, sequence = resolve_inputs(m, x, inputs, steps)
    sizes = list(m.sizes)
    batched = x.ndim == 2
    xb = x if batched else x[None, :]
    B, d = xb.shape
    if tol is None:
        tol = 5e-7 if _eps(x.dtype) > 1e-10 else 1e-11
    max_iter = min(steps, 100) if max_iter is None else int(max_iter)
    chunk = max(steps, 1) if chunk is None else min(int(chunk), max(steps, 1))
    # every state of the run is held (whatever keep), and a window's Jacobians beside them
    per_jac = d if jacobian == "diagonal" else sum(s * s for s in sizes) \
        if jacobian == "block" else d * d
    per_state = state_bytes(xb)
    check_memory("steps", per_state * (2 * (steps + 1) + chunk * per_jac // max(d, 1)),
                 f"method='newton' (chunk={chunk}, jacobian={jacobian!r}): the run's "
                 f"{steps + 1} states ({per_state} bytes each) and a window's Jacobians")
    U_all = _inputs_over_time(constant, sequence, steps, B, xp)
    guess = _initial_guess(initial, xb, steps, xp) if steps else None

    pieces, history, total_iter, windows = [xb[None, ...]], [], 0, 0
    start = xb
    failure = None
    for lo in range(0, steps, chunk):
        hi = min(steps, lo + chunk)
        U = None if U_all is None else U_all[lo:hi, ...]
        if initial is None or (isinstance(initial, str) and initial in ("start",)):
            X0 = xp.broadcast_to(start[None, ...], (hi - lo, B, d))
        else:
            X0 = guess[lo:hi, ...]  # type: ignore[index]  # set: steps > 0 here
        X, its, hist, ok, overflow = _solve_window(
            m, start, U, X0, kind=jacobian, sizes=sizes, damping=damping, tol=tol,
            max_iter=max_iter, max_cg=max_cg, xp=xp)
        windows += 1
        total_iter += its
        history += hist
        if not ok:
            failure = (hist[-1], its, overflow, lo)
            break
        pieces.append(X)
        start = X[-1, ...]

    if failure is not None:
        residual, its, overflow, lo = failure
        n_lam = min(steps, _LYAPUNOV_STEPS)
        lam = largest_lyapunov_estimate(m, xb, U_all, n_lam)
        where = f" (window from step {lo})" if chunk < steps else ""
        reason = _why(residual, its, hi - lo, lam, n_lam, overflow, damping, jacobian) + where
        if fallback == "raise":
            raise NewtonConvergenceError(reason, iterations=total_iter, residuals=history,
                                         lyapunov_exponent=lam)
        logging.getLogger(__name__).info("iterate(method='newton'): %s; sequential path", reason)
        warnings.warn(f"{reason}; falling back to the sequential path", RuntimeWarning,
                      stacklevel=3)
        seq = _sequential(m, x0, steps, inputs=inputs, every=every, keep=keep)
        return NewtonTrajectory(seq.states, seq.times, seq.sizes, iterations=total_iter,
                                residuals=np.asarray(history, dtype=float), converged=False,
                                jacobian=jacobian, damping=damping, windows=windows,
                                fallback_reason=reason)

    states = xp.concat(pieces, axis=0)            # (T + 1, B, d)
    _check_finite(xp, states[-1, ...], steps)
    if m.periods is not None:  # solved on the lift; as iterate, the states after the start wrap
        states = xp.concat([states[:1, ...], m.wrap(states[1:, ...])], axis=0)
    idx = np.array([steps]) if keep == "last" else np.arange(0, steps + 1, min(every, steps + 1))
    states = xp.take(states, xp.asarray(idx), axis=0) if keep == "all" and every > 1 \
        else states[-1:, ...] if keep == "last" else states
    if not batched:
        states = states[:, 0, :]
    return NewtonTrajectory(states, np.asarray(idx, dtype=np.int64), sizes,
                            iterations=total_iter, residuals=np.asarray(history, dtype=float),
                            converged=True, jacobian=jacobian, damping=damping,
                            windows=windows)


METHODS["newton"] = newton_iterate  # iterate(..., method="newton")
