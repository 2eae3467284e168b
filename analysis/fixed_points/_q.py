"""``method="q"``: Sussillo and Barak's q-minimisation, batched L-BFGS on
``q(x) = 1/2 ||F^p(x) - x||^2`` from every start.

The gradient ``D(F^p)^T G - G`` comes from the map's ``vjp`` along the orbit, so
no Jacobian is formed. Minima near zero are polished by Newton into fixed
points; the others are slow points (:mod:`._slow_points`). The same L-BFGS
runs a few steps before Newton in the other methods.

References
----------
.. [1] D. Sussillo and O. Barak, "Opening the black box: low-dimensional dynamics
   in high-dimensional recurrent neural networks", Neural Computation 25(3), 2013.
.. [2] M. D. Golub and D. Sussillo, "FixedPointFinder: a TensorFlow toolbox for
   identifying and characterizing fixed points in recurrent neural networks",
   JOSS 3(31), 2018.
.. [3] D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large
   scale optimization", Math. Programming 45, 1989.
"""

from __future__ import annotations

import numpy as np

from itermap.backends import to_numpy

from ._common import _ARMIJO, Solution, _like, _put_rows, _resolved, _take
from ._dense import run_dense
from ._result import _RUNNING, CONVERGED, GAVE_UP_MAX_ITER, GAVE_UP_NONFINITE, SLOW_POINT
from ._search import _search

# L-BFGS memory, and the step lengths tried in turn along d (Armijo's test, _common._ARMIJO)
_LBFGS_MEMORY = 10
_LBFGS_STEPS = (1.0, 0.25, 0.05, 0.01)
# stationary: ||grad q|| <= _Q_GRAD_TOL * max(||G||, tol); a row whose line search failed
# _Q_FAILS times in a row (after the first, along short gradient steps) is at q's rounding
# floor and stops there
_Q_GRAD_TOL = 1e-9
_Q_FAILS = 3
# a minimum with ||G|| <= _ZERO_CANDIDATE is polished by Newton as a possible zero
_ZERO_CANDIDATE = 1e-4


def _rowdot(xp, a, b):
    """Row-wise dot products of two (k, n) arrays, on the host as float64."""
    if isinstance(a, np.ndarray):       # b too: one namespace
        return np.einsum("ij,ij->i", a, b).astype(np.float64, copy=False)
    return to_numpy(xp.sum(a * b, axis=1)).astype(np.float64)


def _axpy(xp, a, y, d):
    """``d + a[:, None] * y`` for host coefficients ``a`` (in place on a NumPy ``d``)."""
    if isinstance(d, np.ndarray):       # y too
        d += a[:, None] * y
        return d
    return d + _like(a, xp)[:, None] * y


def _q_and_grad(F, xp, x, Px=None):
    """``(G, q, grad q)`` at rows x: ``G = F^p(x) - x``, ``grad = D(F^p)^T G - G`` by vjps.

    ``Px``, when given, is ``F(x)`` already evaluated (period 1 only).
    """
    u = F._u(x)
    if Px is not None and F.p == 1:
        orbit = [x, Px]
    else:
        orbit = [x if F.torus is None else F.torus.reduce(x)]
        for _ in range(F.p):
            orbit.append(F.map.step(orbit[-1], u))
    G = orbit[-1] - orbit[0] if F.torus is None else F.torus.nearest(orbit[-1], orbit[0]) \
        - orbit[0]
    w = G
    for k in range(F.p - 1, -1, -1):
        w = F.map.vjp(orbit[k], w, u)
    return G, 0.5 * _rowdot(xp, G, G), w - G


def _lbfgs_direction(xp, g, gn, S, Y, rho, slot):
    """The L-BFGS direction of every row and its slope ``g . d``, by the two-loop recursion
    over the rows' memory (slot ``j`` in ``S[j], Y[j]`` and ``rho[j]``, one entry a row;
    empty where ``rho = 0``; the newest is ``slot - 1``). Rows where it is not a descent
    direction forget their memory (``rho`` zeroed in place) and go down the gradient."""
    m = len(S)
    d, nrho = -g, -rho
    alpha = np.zeros((m, g.shape[0]))
    order = [(slot - 1 - j) % m for j in range(m)]
    last = order[0]
    used = rho.any(axis=1)
    order = [j for j in order if used[j]]     # slots empty in every row: skip
    for j in order:
        np.multiply(nrho[j], _rowdot(xp, S[j], d), out=alpha[j])
        d = _axpy(xp, alpha[j], Y[j], d)
    yy = _rowdot(xp, Y[last], Y[last])
    gamma = np.where((rho[last] > 0) & (yy > 0), 1.0 / np.maximum(rho[last] * yy, 1e-300), 0.0)
    # no memory yet: a gradient step of length at most 0.1 (in the state's units)
    short = np.minimum(1.0, 0.1 / np.maximum(gn, 1e-300))
    gamma = np.where(gamma > 0, gamma, short)
    d = _like(gamma, xp)[:, None] * d
    for j in reversed(order):
        beta = nrho[j] * _rowdot(xp, Y[j], d)
        d = _axpy(xp, beta - alpha[j], S[j], d)
    slope = _rowdot(xp, g, d)
    uphill = ~(slope < 0)
    if uphill.any():   # not a descent direction: forget the memory, go down the gradient
        d = xp.where(_like(uphill, xp)[:, None], -g * _like(short, xp)[:, None], d)
        slope = _rowdot(xp, g, d)
        rho[:, uphill] = 0.0
    return d, slope


def _lbfgs_q(F, x, xp, *, tol, max_iter, bar=None):
    """Batched L-BFGS on ``q = 1/2 ||F^p(x) - x||^2`` from the rows of ``x``.

    Returns (end points, their q, status per row): status ``CONVERGED`` where
    ``||G|| <= tol``, ``SLOW_POINT`` where q is stationary, ``GAVE_UP_MAX_ITER``
    or ``GAVE_UP_NONFINITE``.
    """
    # the working arrays hold the running rows only (rows that end leave them): ``idx``
    # maps them to the starts; memory slot j of every row is S[j], Y[j] (rows, n)
    B, n = int(x.shape[0]), int(x.shape[1])
    m = _LBFGS_MEMORY
    x_out = xp.asarray(x, copy=True)    # rows are updated in place: not the caller's
    q_out = np.zeros(B)
    status = np.full(B, _RUNNING, dtype=np.int8)
    idx = np.arange(B)
    xw = x_out
    _, q, g = _q_and_grad(F, xp, xw)
    S = [xp.zeros((B, n), dtype=x.dtype) for _ in range(m)]
    Y = [xp.zeros((B, n), dtype=x.dtype) for _ in range(m)]
    rho = np.zeros((m, B))     # per memory slot, per row
    fails = np.zeros(B, dtype=np.int64)
    slot = 0
    for _it in range(max_iter + 1):
        r = np.sqrt(2.0 * q)
        gn = np.sqrt(_rowdot(xp, g, g))
        st = np.full(idx.size, _RUNNING, dtype=np.int8)
        st[(fails >= _Q_FAILS) | (gn <= _Q_GRAD_TOL * np.maximum(r, tol))] = SLOW_POINT
        small = (r <= tol).nonzero()[0]
        if small.size:
            st[small[_resolved(xp, _take(xp, xw, small), tol)]] = CONVERGED
        st[~(np.isfinite(q) & np.isfinite(gn))] = GAVE_UP_NONFINITE
        if _it == max_iter:
            st[st == _RUNNING] = GAVE_UP_MAX_ITER
        end = st != _RUNNING
        if end.any():
            e = np.flatnonzero(end)
            status[idx[e]] = st[e]
            q_out[idx[e]] = q[e]
            x_out = _put_rows(xp, x_out, idx[e], _take(xp, xw, e))
            if bar is not None:
                bar.show(int(np.sum(status != _RUNNING)))
            live = np.flatnonzero(~end)
            if live.size == 0:
                break
            idx, q, r, gn, rho, fails = idx[live], q[live], r[live], gn[live], rho[:, live], \
                fails[live]
            xw, g = _take(xp, xw, live), _take(xp, g, live)
            S = [_take(xp, a, live) for a in S]
            Y = [_take(xp, a, live) for a in Y]
        k = idx.size
        d, slope = _lbfgs_direction(xp, g, gn, S, Y, rho, slot)
        # backtracking: the step lengths in turn, each tried only by the rows the longer
        # ones failed (the longest passing Armijo wins)
        pending = np.arange(k)
        o_parts, x_parts, p_parts = [], [], []
        for a in _LBFGS_STEPS:
            xt = (xw + a * d) if pending.size == k else (
                _take(xp, xw, pending) + a * _take(xp, d, pending))
            Pt = F.value(xt)
            Gt = Pt - xt
            qt = 0.5 * _rowdot(xp, Gt, Gt)
            ok = np.isfinite(qt) & (qt <= q[pending] + _ARMIJO * a * slope[pending])
            if ok.any():
                o = np.flatnonzero(ok)
                every = bool(ok.all())          # every row passed: no copies
                o_parts.append(pending[o])
                x_parts.append(xt if every else _take(xp, xt, o))
                p_parts.append(Pt if every else _take(xp, Pt, o))
            pending = pending[~ok]
            if pending.size == 0:
                break
        fails[pending] += 1
        rho[:, pending] = 0.0   # a failed direction: the next is a short gradient step
        if not o_parts:
            continue
        rows = np.concatenate(o_parts)
        fails[rows] = 0
        x_new = xp.concat(x_parts, axis=0) if len(x_parts) > 1 else x_parts[0]
        P_new = xp.concat(p_parts, axis=0) if len(p_parts) > 1 else p_parts[0]
        _, q_new, g_new = _q_and_grad(F, xp, x_new, P_new)
        every = rows.size == k and bool(np.all(rows == np.arange(k)))
        s_vec = x_new - (xw if every else _take(xp, xw, rows))
        y_vec = g_new - (g if every else _take(xp, g, rows))
        sy = _rowdot(xp, s_vec, y_vec)
        curv = sy > 1e-12 * np.sqrt(_rowdot(xp, s_vec, s_vec) * _rowdot(xp, y_vec, y_vec))
        rho[slot] = 0.0
        rho[slot, rows] = np.where(curv, 1.0 / np.where(curv, sy, 1.0), 0.0)
        if every:
            S[slot], Y[slot], xw, g, q = s_vec, y_vec, x_new, g_new, q_new
        else:
            S[slot] = _put_rows(xp, S[slot], rows, s_vec)     # rho = 0 masks the others
            Y[slot] = _put_rows(xp, Y[slot], rows, y_vec)
            xw = _put_rows(xp, xw, rows, x_new)
            g = _put_rows(xp, g, rows, g_new)
            q[rows] = q_new
        slot = (slot + 1) % m
    return x_out, q_out, status


def q(problem) -> Solution:
    """q-minimisation from every start; slow points kept, minima near zero polished."""
    return run_dense(problem, _q_batch)


def _q_batch(p, xc, eye, done):
    fx, fr, st, sx, sr = _q_search(p.F, xc, p.xp, eye, tol=p.tol, max_iter=p.max_iter,
                                   unique_tol=p.unique_tol, bar=done)
    done.commit(len(st))
    return fx, fr, st, sx, sr, False


def _q_search(F, x, xp, eye, *, tol, max_iter, unique_tol, bar=None):
    """Slow points and fixed points: L-BFGS on q, then Newton on the minima near zero.

    Returns what :func:`._search._search` returns.
    """
    xe, qe, status = _lbfgs_q(F, x, xp, tol=tol, max_iter=max_iter, bar=bar)
    r = np.sqrt(2.0 * qe)
    found_x, found_r = [], []
    # Newton takes the minima near zero and the rows L-BFGS left creeping down a flat
    # valley (multipliers near 1: a flip-flop network's memories), which it ends in a few steps
    cand = np.flatnonzero((status == CONVERGED) | (status == GAVE_UP_MAX_ITER) |
                          ((status == SLOW_POINT) & (r <= _ZERO_CANDIDATE)))
    if cand.size:
        found_x, found_r, st_c, _, _ = _search(F, _take(xp, xe, cand), xp, eye, tol=tol,
                                               max_iter=30, unique_tol=unique_tol,
                                               slow_points=False, patience=0)
        status[cand] = np.where(st_c == CONVERGED, CONVERGED,
                                np.where(status[cand] == GAVE_UP_MAX_ITER, GAVE_UP_MAX_ITER,
                                         SLOW_POINT))
    slow = np.flatnonzero((status == SLOW_POINT) & (r > tol))
    slow_x = [_take(xp, xe, slow)] if slow.size else []
    return found_x, found_r, status, slow_x, [r[slow]] if slow.size else []

