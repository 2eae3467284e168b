"""Gain homotopy paths for the starts the damped Newton search gives up on.

Where damped Newton on ``G(x) = F(x) - x`` reaches no point (a tanh network at gain 2-3
and N >= 400: every start stalls in a valley of ``||G||``, the step heading out of the
box where points live while ``D G`` is near singular), it does reach points of the map
at lower gain, ``F(s x)`` with ``s < 1``. Each point found there is followed along

    H(x, t) = x - F(s(t) x) = 0,    s(t) = s0 + (1 - s0) t,

from ``t = 0`` to 1 by pseudo-arclength continuation: a tangent predictor and a Newton
corrector on ``H = 0`` bordered by the arclength condition, which passes the folds where
``D_x H`` is singular and ``t`` turns back (a branch that comes back to ``t = 0`` is
given up). For a tanh network every point of the path has ``||x||_inf <= 1``. All
paths advance together, one batched bordered solve an iteration, which gives the
corrector step and the next tangent at once.

References
----------
.. [1] E. L. Allgower and K. Georg, "Introduction to Numerical Continuation
   Methods", SIAM 2003, ch. 1-2 and 11.
.. [2] H. B. Keller, "Numerical solution of bifurcation and nonlinear eigenvalue
   problems", in Applications of Bifurcation Theory, Academic Press 1977, 359-384.
.. [3] M. G. Crandall and P. H. Rabinowitz, "Bifurcation from simple eigenvalues",
   J. Funct. Anal. 8(2), 1971, 321-340 (the branches born at the origin).
"""

from __future__ import annotations

import numpy as np

from itermap.backends import to_numpy

from ._common import _host_norm, _like, _put_rows, _solve, _take

# steps in the arclength norm ||(x, t)||^2 = ||x||^2 / n + t^2 (x by its RMS): first,
# at most, and least (a path whose step falls below it is given up)
_H0, _H_MAX, _H_MIN = 0.05, 0.5, 1e-6
# the corrector: converged at RMS(H) <= _CORRECT_TOL, at most _CORRECT_ITERS steps
_CORRECT_TOL, _CORRECT_ITERS = 1e-8, 4
# a step is taken back (and halved) where the tangent turns more than this (cosine)
_MIN_COS = 0.7
# it grows by _GROW after a correction of at most _EASY steps
_GROW, _EASY = 1.5, 2
# a branch born at the origin at s = 1 / mu is first solved at s = (1 + _BRANCH_STEP) / mu
_BRANCH_STEP = 0.02


class Scaled:
    """The map ``x -> F(s x)`` (``value``, ``jacobian``, ``jacobian_only``), for the
    damped search at lower gain."""

    torus = None

    def __init__(self, F, s):
        self.F, self.s = F, s

    def value(self, x):
        return self.F.value(self.s * x)

    def jacobian(self, x):
        y, J = self.F.jacobian(self.s * x)
        return y, self.s * J

    def jacobian_only(self, x):
        return self.s * self.F.jacobian_only(self.s * x)


class GainHomotopy:
    """``H(x, t) = x - F(s x)``, ``s = s0 + (1 - s0) t``; called on rows, it returns
    ``(H, D_x H, D_t H)``."""

    def __init__(self, F, xp, s0, dim, dtype):
        self.F, self.xp, self.s0 = F, xp, s0
        self.eye = xp.eye(dim, dtype=dtype)

    def __call__(self, x, t):
        xp = self.xp
        s = _like(self.s0 + (1.0 - self.s0) * t, xp)
        Fy, J = self.F.jacobian(s[:, None] * x)
        Hx = self.eye[None, :, :] - s[:, None, None] * J
        Ht = -(1.0 - self.s0) * xp.matmul(J, x[:, :, None])[:, :, 0]
        return x - Fy, Hx, Ht


def origin_branches(F, xp, n, dtype):
    """The points of ``F(s x)`` on the branches an odd map's origin sheds.

    Where ``F(-x) = -F(x)`` the origin is a point of every ``F(s x)``, and at
    ``s = 1 / mu`` for each real eigenvalue ``mu > 1`` of ``D F(0)`` a pair ``+-x`` is
    born from it (a pitchfork, Crandall and Rabinowitz 1971): near it, along the right
    eigenvector ``v`` (left ``w``), ``x = a v`` with ``a = s mu a + c (s a)^3``, ``c`` the
    cubic term of ``w . F(e v) / w . v``. Returns ``(s0, a v)`` at ``s0 = (1 + 0.02) /
    mu < 1`` for each branch that opens towards larger ``s`` (``c < 0``), host arrays.
    """
    import scipy.linalg

    J0 = np.asarray(to_numpy(F.jacobian_only(xp.zeros((1, n), dtype=dtype))[0]), np.float64)
    mu, U, V = scipy.linalg.eig(J0, left=True, right=True)
    real = np.abs(mu.imag) <= 1e-9 * np.abs(mu)
    out = []
    for m, w, v in zip(mu.real[real], U.real[:, real].T, V.real[:, real].T):
        s0 = (1.0 + _BRANCH_STEP) / m
        if not 0 < s0 < 1:
            continue
        v = v / np.linalg.norm(v)
        e = 0.1 / np.max(np.abs(v))
        Fe = np.asarray(to_numpy(F.value(xp.asarray(e * v[None, :], dtype=dtype))))[0]
        c = (w @ Fe / (w @ v) - m * e) / e ** 3
        if c < 0:
            out.append((s0, np.sqrt((1.0 - s0 * m) / (c * s0 ** 3)) * v))
    return out


def follow_paths(hom, xp, a, *, max_iter, bar=None):
    """The path of each row of ``a`` (k, n), zeros of ``hom`` at ``t = 0``, all at
    once, to ``t = 1``.

    ``max_iter`` bounds the iterations (one bordered solve per path each). Returns
    (x near the path's point at ``t = 1`` (k, n), whether the path reached ``t = 1``,
    whether it came back to ``t = 0``, the solves each path took); rows that did not
    reach ``t = 1`` hold their last point.
    """
    k, n = int(a.shape[0]), int(a.shape[1])
    ids = np.arange(k)                       # running paths
    reached, back0 = np.zeros(k, dtype=bool), np.zeros(k, dtype=bool)
    solves = np.zeros(k, dtype=np.int64)
    end = xp.asarray(a, copy=True)     # written row by row as paths end
    # the accepted point (x0, t0), its unit tangent (vx, vt), the step, the corrector's
    # iterate (x, t), its prediction (xq, tq), its step count and last residual
    x0, t0 = a, np.zeros(k)
    _, Hx, Ht = hom(a, t0)
    vx, vt = _unit(xp, _solve(xp, Hx, -Ht), np.ones(k), n)   # D_x H w + D_t H = 0
    h = np.full(k, _H0)
    x, t = x0 + _like(h, xp)[:, None] * vx, h * vt
    xq, tq = x, t
    c = np.zeros(k, dtype=np.int64)
    r_prev = np.full(k, np.inf)
    for _it in range(max_iter):
        if not ids.size:
            break
        H, Hx, Ht = hom(x, t)
        r = _host_norm(xp, H) / np.sqrt(n)
        d, w = _bordered(xp, Hx, Ht, vx, vt, H, _dot(xp, vx, x - xq) / n + vt * (t - tq), n)
        solves[ids] += 1
        dn = _host_norm(xp, d)
        bad = ~np.isfinite(r) | ~np.isfinite(dn) | (c >= _CORRECT_ITERS) | (
            (c > 0) & (r > r_prev))
        conv = ~bad & (r <= _CORRECT_TOL)
        # a converged corrector: the tangent there (oriented by v: v . w = 1 > 0)
        wx, wt = _unit(xp, w[:, :n], to_numpy(w[:, n]).astype(np.float64), n)
        cos = _dot(xp, wx, vx) / n + wt * vt
        sx = x - x0
        jump = np.sqrt(_dot(xp, sx, sx) / n + (t - t0) ** 2)
        back = conv & ((cos < _MIN_COS) | (jump > 2.0 * h))
        bad |= back
        conv &= ~back
        # a path past t = 1: the point there, by linear interpolation on the last step
        past = conv & (t >= 1.0)
        if past.any():
            s = _like((1.0 - t0[past]) / np.maximum(t[past] - t0[past], 1e-300), xp)[:, None]
            p = np.flatnonzero(past)
            xe = _take(xp, x0, p) + s * (_take(xp, x, p) - _take(xp, x0, p))
            end = _put_rows(xp, end, ids[p], xe)
            reached[ids[past]] = True
        # a branch back at t = 0 (a fold pair's other point at the lower gain): given up
        under = conv & (t < 0.0)
        back0[ids[under]] = True
        ok = conv & ~past & ~under
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
        live = ~past & ~under & (h >= _H_MIN)
        gone = np.flatnonzero(~live & ~past)
        end = _put_rows(xp, end, ids[gone], _take(xp, x0, gone))
        if not live.all():
            keep = np.flatnonzero(live)
            ids, h, t0, vt, t, tq, c, r_prev = (v[keep] for v in (ids, h, t0, vt, t, tq, c,
                                                                  r_prev))
            x0, vx, x, xq = (_take(xp, v, keep) for v in (x0, vx, x, xq))
        if bar is not None:
            bar.show(0, paths=int(ids.size), reached=int(reached.sum()))
    if ids.size:
        end = _put_rows(xp, end, ids, x0)
    return end, reached, back0, solves


def _bordered(xp, Hx, Ht, vx, vt, H, arc, n):
    """The corrector step ``d`` and the tangent ``w`` (k, n + 1) from one solve of
    ``[[Hx, Ht], [vx^T / n, vt]] [d, w] = [[-H, 0], [-arc, 1]]``."""
    k = int(Hx.shape[0])
    dt = Hx.dtype
    top = xp.concat([Hx, Ht[:, :, None]], axis=2)
    row = xp.concat([vx / n, xp.astype(_like(vt, xp), dt)[:, None]], axis=1)
    M = xp.concat([top, row[:, None, :]], axis=1)
    rhs0 = xp.concat([-H, xp.astype(_like(-arc, xp), dt)[:, None]], axis=1)
    rhs1 = xp.concat([xp.zeros((k, n), dtype=dt), xp.ones((k, 1), dtype=dt)], axis=1)
    S = _solve(xp, M, xp.stack([rhs0, rhs1], axis=2))     # NaN rows where singular
    return S[:, :, 0], S[:, :, 1]


def _unit(xp, wx, wt, n):
    """``(wx, wt)`` scaled to unit arclength norm (``||wx||^2 / n + wt^2 = 1``)."""
    s = np.sqrt(_dot(xp, wx, wx) / n + wt * wt)
    s = np.where(np.isfinite(s) & (s > 0), s, 1.0)
    return wx / _like(s, xp)[:, None], wt / s


def _dot(xp, a, b):
    return to_numpy(xp.sum(a * b, axis=1)).astype(np.float64)


def _where(xp, mask, a, b):
    return xp.where(_like(mask, xp)[:, None], a, b)

