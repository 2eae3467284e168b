"""Probability-one homotopy paths for the starts the damped Newton search gives up on.

From a start ``a`` the fixed-point homotopy

    H(x, t) = x - t F(x) - (1 - t) a = 0

has the single solution ``x = a`` at ``t = 0`` (there ``D_x H = I``), and at
``t = 1`` its zeros are the fixed points of ``F``. For almost every ``a`` the
zeros through ``(a, 0)`` form a smooth curve without bifurcations (Chow,
Mallet-Paret and Yorke 1978); it cannot come back to ``t = 0`` (the solution
there is unique), and where ``F`` is bounded (``||F||_inf <= 1`` for a tanh
network) every point of it has ``||x||_inf <= 1 + ||a||_inf`` for ``t`` in
[0, 1], so the curve reaches ``t = 1``: at a fixed point. It is followed by
pseudo-arclength continuation (a tangent predictor, a Newton corrector on
``H = 0`` bordered by the arclength condition), which passes the folds where
``D_x H`` is singular and ``t`` turns back; a damped Newton search on
``F(x) - x`` (the search's own, with its merit) stalls at exactly these folds of
its merit's valleys. All paths advance together, one batched bordered solve an
iteration (which gives the corrector step and the next tangent at once).

References
----------
.. [1] S.-N. Chow, J. Mallet-Paret and J. A. Yorke, "Finding zeroes of maps:
   homotopy methods that are constructive with probability one", Math. Comp. 32
   (1978) 887-899.
.. [2] E. L. Allgower and K. Georg, "Introduction to Numerical Continuation
   Methods", SIAM 2003, ch. 1-2 and 11.
.. [3] L. T. Watson, "Globally convergent homotopy methods: a tutorial", Appl.
   Math. Comput. 31 (1989) 369-396.
"""

from __future__ import annotations

import numpy as np

from itermap.backends import to_numpy

from ._common import _like, _norm, _take

# steps in the arclength norm ||(x, t)||^2 = ||x||^2 / n + t^2 (x by its RMS): first,
# at most, and least (a path whose step falls below it is given up)
_H0, _H_MAX, _H_MIN = 0.05, 0.5, 1e-6
# the corrector: converged at RMS(H) <= _CORRECT_TOL, at most _CORRECT_ITERS steps
_CORRECT_TOL, _CORRECT_ITERS = 1e-8, 4
# a step is taken back (and halved) where the tangent turns more than this (cosine)
_MIN_COS = 0.7
# it grows by _GROW after a correction of at most _EASY steps
_GROW, _EASY = 1.5, 2


def follow_paths(F, xp, a, *, max_iter, bar=None):
    """The homotopy path of each row of ``a`` (k, n), all at once, from ``t = 0`` to 1.

    ``max_iter`` bounds the iterations (one bordered solve per path each). Returns
    (x near the path's point at ``t = 1`` (k, n), whether the path reached ``t = 1``,
    the solves each path took); rows that did not reach it hold their last point.
    """
    k, n = int(a.shape[0]), int(a.shape[1])
    ids = np.arange(k)                       # running paths
    reached = np.zeros(k, dtype=bool)
    solves = np.zeros(k, dtype=np.int64)
    end = a
    # the accepted point (y0: x and t), its unit tangent (v), the step, the corrector's
    # iterate (y), its prediction (yp) and its step count and last residual
    Fa = F.value(a)
    x0, t0 = a, np.zeros(k)
    vx, vt = _unit(xp, Fa - a, np.ones(k), n)          # D_x H = I at t = 0
    h = np.full(k, _H0)
    x, t = x0 + _like(h, xp)[:, None] * vx, h * vt
    xq, tq = x, t
    c = np.zeros(k, dtype=np.int64)
    r_prev = np.full(k, np.inf)
    for _it in range(max_iter):
        if not ids.size:
            break
        Fx, J = F.jacobian(x)
        H = x - _like(t, xp)[:, None] * Fx - _like(1.0 - t, xp)[:, None] * _take(xp, a, ids)
        r = to_numpy(_norm(xp, H)).astype(np.float64) / np.sqrt(n)
        d, w = _bordered(xp, J, t, _take(xp, a, ids) - Fx, vx, vt, H,
                         _dot(xp, vx, x - xq) / n + vt * (t - tq), n)
        solves[ids] += 1
        dn = to_numpy(_norm(xp, d)).astype(np.float64)
        bad = ~np.isfinite(r) | ~np.isfinite(dn) | (c >= _CORRECT_ITERS) | (
            (c > 0) & (r > r_prev))
        conv = ~bad & (r <= _CORRECT_TOL)
        # a converged corrector: the tangent there (oriented by v: v . w = 1 > 0)
        wx, wt = _unit(xp, w[:, :n], to_numpy(w[:, n]).astype(np.float64), n)
        cos = _dot(xp, wx, vx) / n + wt * vt
        sx = x - x0
        jump = np.sqrt(to_numpy(_dot(xp, sx, sx)).astype(np.float64) / n + (t - t0) ** 2)
        back = conv & ((cos < _MIN_COS) | (jump > 2.0 * h))
        bad |= back
        conv &= ~back
        # a path past t = 1: the point there, by linear interpolation on the last step
        past = conv & (t >= 1.0)
        if past.any():
            s = _like((1.0 - t0[past]) / np.maximum(t[past] - t0[past], 1e-300), xp)[:, None]
            p = np.flatnonzero(past)
            xe = _take(xp, x0, p) + s * (_take(xp, x, p) - _take(xp, x0, p))
            end = _put(xp, end, ids[p], xe)
            reached[ids[past]] = True
        ok = conv & ~past
        # accepted: the next prediction from here; refused: a shorter one from the last
        h = np.where(ok, np.minimum(_H_MAX, h * np.where(c <= _EASY, _GROW, 1.0)),
                     np.where(bad, 0.5 * h, h))
        x0 = _where(xp, ok, x, x0)
        t0 = np.where(ok, t, t0)
        vx, vt = _where(xp, ok, wx, vx), np.where(ok, wt, vt)
        new = ok | bad
        hb = _like(h, xp)[:, None]
        x = _where(xp, new, x0 + hb * vx, x + d[:, :n])
        t = np.where(new, t0 + h * vt, t + to_numpy(d[:, n]).astype(np.float64))
        xq, tq = _where(xp, new, x, xq), np.where(new, t, tq)
        c = np.where(new, 0, c + 1)
        r_prev = np.where(new, np.inf, r)
        live = ~past & (h >= _H_MIN)
        end = _put(xp, end, ids[~live & ~past], _take(xp, x0, np.flatnonzero(~live & ~past)))
        if not live.all():
            keep = np.flatnonzero(live)
            ids, h, t0, vt, t, tq, c, r_prev = (v[keep] for v in (ids, h, t0, vt, t, tq, c,
                                                                  r_prev))
            x0, vx, x, xq = (_take(xp, v, keep) for v in (x0, vx, x, xq))
        if bar is not None:
            bar.show(0, paths=int(ids.size), reached=int(reached.sum()))
    if ids.size:
        end = _put(xp, end, ids, x0)
    return end, reached, solves


def _bordered(xp, J, t, Ht, vx, vt, H, arc, n):
    """The corrector step ``d`` and the tangent ``w`` (k, n + 1) from one solve of
    ``[[I - t J, Ht], [vx^T / n, vt]] [d, w] = [[-H, 0], [-arc, 1]]``."""
    k = int(J.shape[0])
    dt = J.dtype
    eye = xp.eye(n, dtype=dt)
    Hx = eye[None, :, :] - _like(t, xp)[:, None, None] * J
    top = xp.concat([Hx, Ht[:, :, None]], axis=2)
    row = xp.concat([vx / n, xp.astype(_like(vt, xp), dt)[:, None]], axis=1)
    M = xp.concat([top, row[:, None, :]], axis=1)
    rhs0 = xp.concat([-H, xp.astype(_like(-arc, xp), dt)[:, None]], axis=1)
    rhs1 = xp.concat([xp.zeros((k, n), dtype=dt), xp.ones((k, 1), dtype=dt)], axis=1)
    B = xp.stack([rhs0, rhs1], axis=2)
    try:
        S = xp.linalg.solve(M, B)
    except Exception:  # a singular system: the rows one by one, NaN where singular
        rows = []
        for i in range(k):
            try:
                rows.append(xp.linalg.solve(M[i, ...], B[i, ...]))
            except Exception:
                rows.append(xp.full((n + 1, 2), float("nan"), dtype=dt))
        S = xp.stack(rows)
    return S[:, :, 0], S[:, :, 1]


def _unit(xp, wx, wt, n):
    """``(wx, wt)`` scaled to unit arclength norm (``||wx||^2 / n + wt^2 = 1``)."""
    s = np.sqrt(to_numpy(_dot(xp, wx, wx)).astype(np.float64) / n + wt * wt)
    s = np.where(np.isfinite(s) & (s > 0), s, 1.0)
    return wx / _like(s, xp)[:, None], wt / s


def _dot(xp, a, b):
    return to_numpy(xp.sum(a * b, axis=1)).astype(np.float64)


def _where(xp, mask, a, b):
    return xp.where(_like(mask, xp)[:, None], a, b)


def _put(xp, a, rows, values):
    """``a`` with ``a[rows] = values`` (a new array)."""
    if not len(rows):
        return a
    if isinstance(a, np.ndarray):
        out = a.copy()
        out[rows] = values
        return out
    idx = np.full(int(a.shape[0]), -1, dtype=np.int64)
    idx[rows] = np.arange(len(rows))
    sel = _like(idx >= 0, xp)[:, None]
    return xp.where(sel, _take(xp, values, np.maximum(idx, 0)), a)
