"""Deflation of known solutions (Farrell, Birkisson and Funke, SIAM J. Sci. Comput. 2015).

Newton on the deflated residual ``M(x) G(x)``, with the deflation operator
``M(x) = prod_j (1 + (r / ||x - p_j||)^2)`` over the points ``p_j`` already found,
cannot converge to any ``p_j`` (``M`` blows up there), while every other zero of
``G`` is a zero of ``M G``. Its Newton step is the undeflated one rescaled, so a
deflated solver needs no new linear solve (their eq. 3.3, by Sherman-Morrison):
``dx_deflated = tau dx`` with ``tau = 1 / (1 - grad(log M) . dx)``.

``r`` is the radius within which a known point repels (``r / ||x - p||`` is
their ``||x - p||^{-p}`` with ``p = 2`` and shift ``sigma = 1``, in the state's
own units).
"""

from __future__ import annotations

import numpy as np

from itermap.backends import to_numpy

from ._clustering import _cluster, _least_in_groups, _nearest_within
from ._common import (
    _ALPHAS,
    _ARMIJO,
    _STALL_DROP,
    _STALL_ITERS,
    _like,
    _minus_eye,
    _norm,
    _resolved,
    _solve,
    _take,
)


def log_deflation(x, points, radius):
    """``(log M(x), grad log M(x))`` for rows ``x`` (k, n) and known ``points`` (m, n).

    Host NumPy, float64; ``M = 1`` (log 0, gradient 0) where there are no points.
    """
    x = np.asarray(x, dtype=np.float64)
    k = x.shape[0]
    if points is None or len(points) == 0:
        return np.zeros(k), np.zeros_like(x)
    P = np.asarray(points, dtype=np.float64)
    diff = x[:, None, :] - P[None, :, :] if P.shape[0] * k * x.shape[1] <= 2 ** 24 else None
    if diff is None:        # many points: distances through one matmul, gradient by rows
        d2 = (np.sum(x * x, 1)[:, None] + np.sum(P * P, 1)[None, :] - 2.0 * x @ P.T)
        d2 = np.maximum(d2, 1e-300)
    else:
        d2 = np.maximum(np.einsum("kmn,kmn->km", diff, diff), 1e-300)
    r2 = radius * radius
    logm = np.sum(np.log1p(r2 / d2), axis=1)
    # d/dx log(1 + r^2/d2) = -2 r^2 (x - p) / (d2 (d2 + r^2))
    w = -2.0 * r2 / (d2 * (d2 + r2))                     # (k, m)
    grad = w.sum(axis=1)[:, None] * x - w @ P
    return logm, grad


def deflated_step(dx, grad_logm):
    """The deflated Newton step ``tau dx`` from the undeflated ``dx`` (rows).

    ``tau = 1 / (1 - grad(log M) . dx)``; where the denominator is not positive
    (the step heads into a known point faster than it reaches a zero) the step is
    reversed in sign by the formula, which is what deflation asks for; where it is
    near zero the step is left undeflated (``tau`` is capped at 1e3 in modulus).
    """
    s = np.einsum("kn,kn->k", np.asarray(dx, dtype=np.float64), grad_logm)
    den = 1.0 - s
    tau = np.where(np.abs(den) > 1e-3, 1.0 / np.where(den == 0, 1.0, den), 1.0)
    return tau


# -- the deflation phase of the dense search (method="newton") ---------------------------
# the search's Armijo constant, step lengths and stall rule (_common), on the deflated
# merit M ||G||: a deflated run whose merit has not fallen by _STALL_DROP within
# _STALL_ITERS iterations, and that finds no step lowering it, wanders (_WANDER_ITERS
# steps at most) or stops; the phase runs _MAX_ITERS iterations at most, and ends once
# no row has reached a new point for _IDLE iterations (for the first _PROBE, if none
# has yet)
_MAX_ITERS = 150
_IDLE = 60
_PROBE = 30
_WANDER_ITERS = 100


def deflate_repeats(F, xp, eye, x, known, *, tol, unique_tol, radius, max_iter=_MAX_ITERS,
                    wander=None, bar=None):
    """Deflated Newton from the rows ``x`` (the starts that converged onto a point found
    already, or midpoints of known points), all rows at once, against the ``known``
    points and those it finds.

    Each row runs Newton on ``M(x) G(x)`` (the undeflated step rescaled by
    :func:`deflated_step`), with a batched backtracking line search on the deflated
    merit ``M ||G||``. A row whose trial step has ``||G|| <= tol`` farther than
    ``unique_tol`` from every known point has found a new point: the point joins the
    deflation of the other rows at once. Rows stop at a new point, when their merit
    has not halved for ``_STALL_ITERS`` iterations, after ``max_iter`` iterations,
    or when no row has found a new point for ``_IDLE`` iterations.

    Returns (new points (k, dim) in ``xp``, their residuals, the index of the row that
    found each).
    """
    if not int(x.shape[0]):
        return x, np.zeros(0), np.zeros(0, np.int64)
    P = np.asarray(to_numpy(known), dtype=np.float64).reshape(-1, int(x.shape[1]))
    ids = np.arange(int(x.shape[0]))
    Px = F.value(x)
    G = Px - x
    r = to_numpy(_norm(xp, G)).astype(np.float64)
    best = np.full(ids.size, np.inf)
    best_it = np.zeros(ids.size, dtype=np.int64)
    wandered = np.zeros(ids.size, dtype=np.int64)
    new_x, new_r, new_ids, last = [], [], [], 0
    alphas = np.asarray(_ALPHAS)[:, None]
    for it in range(max_iter):
        if not ids.size or it - last >= (_IDLE if new_x else _PROBE):
            break
        x_h = np.asarray(to_numpy(x), dtype=np.float64)
        logm, grad = log_deflation(x_h, P, radius)
        logmer = logm + np.log(np.maximum(r, 1e-300))      # log of the deflated merit
        improved = logmer <= best + np.log(_STALL_DROP)
        best[improved], best_it[improved] = logmer[improved], it
        dx = _solve(xp, _minus_eye(xp, F.jacobian_only(x), eye), -G)
        dx_h = np.asarray(to_numpy(dx), dtype=np.float64)
        tau = deflated_step(dx_h, grad)
        d = xp.astype(_like(tau, xp), x.dtype)[:, None] * dx
        k = ids.size
        xt = xp.concat([x + a * d for a in _ALPHAS], axis=0)
        Pt = F.value(xt)
        rt = to_numpy(_norm(xp, Pt - xt)).astype(np.float64)
        xt_h = np.asarray(to_numpy(xt), dtype=np.float64)
        lt = log_deflation(xt_h, P, radius)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            lmt = (lt + np.log(rt)).reshape(len(_ALPHAS), k)
        ok = np.isfinite(lmt) & (lmt <= np.log1p(-_ARMIJO * alphas) + logmer[None, :])
        # a trial at a zero of G away from every known point: a new point
        hit = (rt <= tol) & _resolved(xp, xt, tol)
        if hit.any() and P.size:
            hi = np.flatnonzero(hit)
            hit[hi[_nearest_within(np, xt_h[hi], P, unique_tol) >= 0]] = False
        hit = hit.reshape(len(_ALPHAS), k)
        found = hit.any(axis=0)
        if found.any():
            rows = np.flatnonzero(found)
            flat = np.argmax(hit[:, rows], axis=0) * k + rows
            xf, rf = _take(xp, xt, flat), rt[flat]
            lead, _ = _cluster(xp, xf, unique_tol)
            heads, _ = _least_in_groups(lead, rf)
            new_x.append(_take(xp, xf, heads))
            new_r.append(rf[heads])
            new_ids.append(ids[rows[heads]])
            P = np.concatenate([P, xt_h[flat[heads]]], axis=0)
            last = it
        step = ok.any(axis=0) & ~found & (it - best_it < _STALL_ITERS)
        sel = np.flatnonzero(step)
        pick = np.argmin(np.where(ok, lmt, np.inf), axis=0)[sel] * k + sel
        x_n, P_n, r_n = _take(xp, xt, pick), _take(xp, Pt, pick), rt[pick]
        # rows with no step that lowers the merit, or stalled, wander: the deflated step
        # cut to ``wander`` (max norm), taken whatever it does (``_WANDER_ITERS`` at most)
        wrows = np.flatnonzero(~step & ~found & np.all(np.isfinite(dx_h), axis=1)
                               & (wandered < _WANDER_ITERS)) if wander else np.zeros(0, int)
        if wrows.size:
            dw = tau[wrows, None] * dx_h[wrows]
            cut = np.minimum(1.0, wander / np.maximum(np.max(np.abs(dw), axis=1), 1e-300))
            xw = _take(xp, x, wrows) + xp.astype(_like(cut * tau[wrows], xp), x.dtype)[:, None] \
                * _take(xp, dx, wrows)
            Pw = F.value(xw)
            rw = to_numpy(_norm(xp, Pw - xw)).astype(np.float64)
            fin = np.isfinite(rw)
            wrows, xw, Pw, rw = wrows[fin], _take(xp, xw, np.flatnonzero(fin)), \
                _take(xp, Pw, np.flatnonzero(fin)), rw[fin]
            wandered[wrows] += 1
            best[wrows], best_it[wrows] = np.inf, it
            sel = np.concatenate([sel, wrows])
            x_n, P_n, r_n = xp.concat([x_n, xw], axis=0), xp.concat([P_n, Pw], axis=0), \
                np.concatenate([r_n, rw])
        if bar is not None:
            bar.show(0, deflating=int(sel.size), new=int(sum(len(v) for v in new_r)))
        x, Px, r = x_n, P_n, r_n
        G = Px - x
        ids, best, best_it, wandered = ids[sel], best[sel], best_it[sel], wandered[sel]
    if not new_x:
        return xp.zeros((0, int(x.shape[1])), dtype=x.dtype), np.zeros(0), np.zeros(0, np.int64)
    return xp.concat(new_x, axis=0), np.concatenate(new_r), np.concatenate(new_ids)
