"""Phase (2) of the Newton search on maps of at most three units, on NumPy: lean loops.

First plain Newton from every start, batched (as pynamicalsys's per-start Newton): one
evaluation of ``F^p`` and its Jacobian an iteration, closed-form solves, converged rows
dropped, rows closing in on a point found merged into it. The starts it leaves run the
damped loop, with the rules and constants of :mod:`._search`'s phase (2) (line search on
``||G||``, Levenberg-Marquardt, one undamped escape from a stall) but without its per-call
overhead: one map evaluation at the trial points, 2 x 2 and 3 x 3 systems in closed form.
Then each point brings the rest of its orbit, and points Newton does not resolve within
``unique_tol`` (``F^p - I`` singular) are merged within the coarse radius.

References
----------
.. [1] J. E. Dennis and R. B. Schnabel, "Numerical Methods for Unconstrained
   Optimization and Nonlinear Equations", Prentice-Hall 1983 (SIAM 1996),
   ch. 6 (line search) and 10 (Levenberg-Marquardt).
"""

from __future__ import annotations

import time

import numpy as np

from . import _common as C
from ._clustering import _cluster, _least_in_groups, _nearest_within
from ._common import _SMALL_SOLVE, _damped_solve, _small_solve
from ._result import (
    _RUNNING,
    CONVERGED,
    GAVE_UP_MAX_ITER,
    GAVE_UP_NONFINITE,
    GAVE_UP_STALLED,
    _n_final,
)


def small_applies(x, *, slow_points, patience, wander):
    """Whether :func:`small_search` runs phase (2) for the starts ``x``."""
    return (isinstance(x, np.ndarray) and int(x.shape[1]) <= _SMALL_SOLVE
            and not slow_points and not wander and patience == 0)


def _eval(F, x):
    """``F^p(x)``, ``D(F^p)(x) - I`` and the residual norms (host float64)."""
    P, J = F.jacobian(x)
    # J may be a view of the map's own arrays: then a copy
    own = isinstance(J, np.ndarray) and J.flags.owndata and J.flags.writeable \
        and J.flags.c_contiguous
    A = J if own else np.array(J, copy=True)
    n = A.shape[-1]
    A.reshape(A.shape[0], n * n)[:, ::n + 1] -= 1.0
    G = P - x
    return P, A, np.sqrt(np.einsum("ij,ij->i", G, G)).astype(np.float64, copy=False)


class _Rows:
    """The running rows: state, ``F^p`` there, ``A = D(F^p) - I``, residual, ids."""

    def __init__(self, F, x):
        self.x = x
        self.P, self.A, self.r = _eval(F, x)
        n = x.shape[0]
        self.ids = np.arange(n)
        self.lam = np.zeros(n)                       # Levenberg-Marquardt damping, 0: unset
        self.failed = np.zeros(n, dtype=bool)        # the last damped step was rejected
        self.mark_r, self.mark_it = self.r.copy(), np.zeros(n, dtype=np.int64)
        self.escapes = np.zeros(n, dtype=np.int64)
        self.force = np.zeros(n, dtype=bool)
        # took a damped step the iteration before (at the start: any may need one)
        self.lm_before = np.ones(n, dtype=bool)
        # the step lengths tried
        self.alphas = np.asarray(C._ALPHAS, dtype=np.float64)[:, None]
        self.alphas_x = self.alphas[:, :, None].astype(x.dtype)

    def keep(self, sel):
        for name in ("x", "P", "A", "r", "ids", "lam", "failed", "mark_r", "mark_it",
                     "escapes", "force", "lm_before"):
            setattr(self, name, getattr(self, name)[sel])

    def move(self, rows, xt, Pt, At, rt):
        self.x[rows], self.P[rows], self.A[rows], self.r[rows] = xt, Pt, At, rt


def small_search(F, x, *, tol, max_iter, unique_tol, bar=None, stall_final=True):
    """Phase (2) from the starts ``x`` (NumPy, dim <= 3): returns what
    :func:`._search._search` returns (the points in one block; the dense runner's final
    merge merges them)."""
    n = int(x.shape[0])
    fate = np.full(n, _RUNNING, dtype=np.int8)
    merge = _Merge(x, unique_tol)
    rest = _undamped(F, x, fate, merge, tol, min(max_iter, _UNDAMPED_ITERS))
    if rest.size:
        merge.loose_seen = True   # the damped loop's points are not checked as they come
        sub = fate[rest]
        _damped(F, x[rest], sub, merge, tol=tol, max_iter=max_iter, bar=bar,
                stall_final=stall_final)
        fate[rest] = sub
    fate[fate == _RUNNING] = GAVE_UP_MAX_ITER
    if merge.leaders is None:
        return [], [], fate, [], []
    _complete_orbits(F, merge)
    _merge_unresolved(F, merge)
    return [merge.leaders], [merge.leaders_r], fate, [], []


def _merge_unresolved(F, merge):
    """Merge points whose Newton step exceeds ``unique_tol`` (``F^p - I`` nearly singular, as
    at the standard map's (pi, 0) at K = 4) within the coarse radius, least residual first."""
    if not merge.loose_seen:
        return
    pts = merge.leaders
    P, A, _ = _eval(F, pts)
    with np.errstate(all="ignore"):
        dx = _solve2(A, pts - P) if pts.shape[1] == 2 else _small_solve(A, pts - P)
    loose = ~(np.einsum("ij,ij->i", dx, dx) <= merge.tol * merge.tol)
    if np.count_nonzero(loose) < 2:
        return
    lx, lr = pts[loose], merge.leaders_r[loose]
    d = lx[:, None, :] - lx[None]
    if F.torus is not None:   # to the nearest image: a point near p = 0 has one near 2 pi
        d = F.torus.nearest(d, np.zeros_like(d))
    near = np.einsum("ijk,ijk->ij", d, d) <= merge.radius.rho_max * merge.radius.rho_max
    heads: list = []
    for i in np.argsort(lr, kind="stable"):   # the least residual leads its group
        if not any(near[i, h] for h in heads):
            heads.append(int(i))
    merge.leaders = np.concatenate([pts[~loose], lx[heads]])
    merge.leaders_r = np.concatenate([merge.leaders_r[~loose], lr[heads]])


# plain Newton iterations before the damped loop: on the standard map's grids they reach
# pynamicalsys's points from the same starts, most in 4-10
_UNDAMPED_ITERS = 30


def _undamped(F, x, fate, merge, tol, max_iter):
    """Plain Newton from the starts ``x`` for ``max_iter`` iterations; the indices of the
    starts left (non-finite, singular or not converged)."""
    ids = np.arange(int(x.shape[0]))
    xs = np.array(x, copy=True)
    found_x, found_r = [], []
    with np.errstate(all="ignore"):
        for it in range(max_iter + 1):
            P, A, r = _eval(F, xs)
            dx = _solve2(A, xs - P) if xs.shape[1] == 2 else _small_solve(A, xs - P)
            done = r <= tol
            if done.any():   # resolved in the iterates' dtype (float32 starts of a float64
                # map are float64 after one step)
                done &= np.max(np.abs(xs), axis=1) * (4.0 * np.finfo(xs.dtype).eps) <= tol
            if done.any():
                # the step solved already takes a resolved point (the step within
                # unique_tol) to rounding level: the final polish then needs none
                step = dx[done]
                tight = np.einsum("ij,ij->i", step, step) <= merge.tol * merge.tol
                merge.loose_seen |= not tight.all()
                found_x.append(xs[done] + np.where(tight[:, None], step, 0.0))
                found_r.append(r[done])
                fate[ids[done]] = CONVERGED
                lead = np.concatenate(found_x)
                keep = ~done
            else:
                keep = np.ones(r.size, dtype=bool)
            if it == max_iter:
                break
            if found_x and keep.any():
                # running rows within the merging radius of a point found are that point
                # (the rule of the damped loop: near a degenerate point, where F^p - I is
                # singular, many rows converge within the tolerance, all one point)
                rho = merge.radius.of(r[keep])
                d2 = np.min(np.sum((xs[:, None, :] - lead[None]) ** 2, axis=2), axis=1)
                hit = keep & (d2 <= rho * rho)
                fate[ids[hit]] = CONVERGED
                keep &= ~hit
            keep &= np.isfinite(dx[:, 0])
            if not keep.all():
                if not keep.any():
                    break
                ids, xs, dx = ids[keep], xs[keep], dx[keep]
            xs = xs + dx
    if found_x:   # merged by the caller's final merge (_dense._distinct), as the images are
        merge.extend(np.concatenate(found_x), np.concatenate(found_r))
    return np.flatnonzero(fate == _RUNNING)


def _solve2(A, b):
    """``A[i]^{-1} b[i]`` for 2 x 2 systems (Cramer; inf or NaN rows where singular): the
    lean loop's own, without :func:`._common._small_solve`'s NaN marking and error state."""
    a, e, c, d = A[:, 0, 0], A[:, 0, 1], A[:, 1, 0], A[:, 1, 1]
    b0, b1 = b[:, 0], b[:, 1]
    det = a * d - e * c
    out = np.empty_like(b)
    np.divide(d * b0 - e * b1, det, out=out[:, 0])
    np.divide(a * b1 - c * b0, det, out=out[:, 1])
    return out


def _complete_orbits(F, merge):
    """Each point's orbit ``F(x), ..., F^{p-1}(x)`` joins the points (all solve F^p = I)."""
    if F.p == 1:
        return
    pts = merge.leaders
    imgs, y = [], pts
    for _ in range(F.p - 1):
        y = F.map.step(y, F._u(y))
        if F.torus is not None:
            y = F.torus.reduce(y)
        imgs.append(y)
    y = np.concatenate(imgs)
    # the images' residuals are the polish's to take: their points' stand in for them;
    # the search's final merge (_dense._distinct) merges them with the points
    r = np.tile(merge.leaders_r, F.p - 1)
    ok = np.isfinite(y).all(axis=1)
    merge.extend(y[ok], r[ok])


def _damped(F, x, fate, merge, *, tol, max_iter, bar, stall_final):
    """The damped loop (the rules of :mod:`._search`'s phase 2) from the starts ``x``."""
    rows = _Rows(F, np.array(x, copy=True))
    eps4 = 4.0 * np.finfo(x.dtype).eps
    shown = -np.inf
    for it in range(max_iter + 1):
        r = rows.r
        finite = np.isfinite(r)
        done = finite & (r <= tol)
        if done.any():   # a residual that rounding cannot tell from zero is no point
            done &= np.max(np.abs(rows.x), axis=1) * eps4 <= tol
        if not finite.all():
            fate[rows.ids[~finite]] = GAVE_UP_NONFINITE
        if done.any():
            fate[rows.ids[done]] = CONVERGED
            merge.add(rows.x[done], r[done])
        keep = finite & ~done
        if it > 0:
            keep &= ~_stalled(rows, it, fate, keep)
            merge.follow(rows.r, rows.x, rows.ids, keep, fate)
        if bar is not None and time.monotonic() >= shown + 0.1:
            shown = time.monotonic()
            bar.show(_n_final(fate, stall_final), running=int(keep.sum()))
        if it == max_iter or not keep.any():
            break
        if not keep.all():
            rows.keep(np.flatnonzero(keep))
        _step(F, rows, fate)


class _Merge:
    """The points found; running rows within ``rho_k`` of one converge to it (the rule of
    :mod:`._search`), adding no point."""

    def __init__(self, x, unique_tol):
        scale = float(np.mean(np.sqrt(np.einsum("ij,ij->i", x, x))))
        self.tol, self.leaders, self.leaders_r = unique_tol, None, None
        self.loose_seen = False   # whether a point found may be unresolved (_merge_unresolved)
        self.radius = C.MergeRadius(scale, unique_tol)

    def add(self, xd, rd):
        """Converged rows: new points, merged within ``unique_tol`` (least residual leads)."""
        if self.leaders is not None:
            new = _nearest_within(np, xd, self.leaders, self.tol) < 0
            xd, rd = xd[new], rd[new]
        if xd.shape[0]:
            lead, _ = _cluster(np, xd, self.tol)
            heads, _ = _least_in_groups(lead, rd)
            self.extend(xd[heads], rd[heads])

    def extend(self, x, r):
        """Points joined as they are, not merged (a caller's final merge does that)."""
        if self.leaders is None:
            self.leaders, self.leaders_r = x, r
        else:
            self.leaders = np.concatenate([self.leaders, x])
            self.leaders_r = np.concatenate([self.leaders_r, r])

    def follow(self, r, x, ids, keep, fate):
        """Mark running rows within the radius of a point found converged, unkept."""
        if self.leaders is None or not keep.any():
            return
        run = np.flatnonzero(keep)
        rho = self.radius.of(r[run])
        hit = run[_nearest_within(np, x[run], self.leaders, rho) >= 0]
        fate[ids[hit]] = CONVERGED
        keep[hit] = False


def _stalled(rows, it, fate, running):
    """Rows not halving their residual in ``_STALL_ITERS`` iterations: escape, then give up
    (the mask returned)."""
    better = rows.r <= C._STALL_DROP * rows.mark_r
    rows.mark_r[better], rows.mark_it[better] = rows.r[better], it
    if it < C._STALL_ITERS:           # none can have stalled yet
        return np.zeros(rows.ids.size, dtype=bool)
    stalled = (it - rows.mark_it >= C._STALL_ITERS) & running
    escape = stalled & (rows.escapes < C._ESCAPES)
    if escape.any():
        rows.escapes[escape] += 1
        rows.force[escape] = True
        rows.mark_r[escape] = np.inf
    out = stalled & ~escape
    fate[rows.ids[out]] = GAVE_UP_STALLED
    return out


def _step(F, rows, fate):
    """Newton with the line search, Levenberg-Marquardt where no step passes (rows damped
    the iteration before are evaluated with the Newton steps, in one map call)."""
    x, A, d = rows.x, rows.A, rows.x.shape[1]
    G = rows.P - x
    dx = _small_solve(A, -G)
    pend = np.flatnonzero(np.all(np.isfinite(dx), axis=1))
    a = rows.alphas
    k = pend.size
    trials = [(x[pend][None] + rows.alphas_x * dx[pend][None]).reshape(-1, d)]
    spec = np.flatnonzero(rows.lm_before)
    if spec.size:
        damped = _damped_steps(rows, spec, G[spec])
        trials.append(x[spec] + damped[0])
    xt = trials[0] if len(trials) == 1 else np.concatenate(trials)
    Pt, At, rt = _eval(F, xt)
    accepted = np.zeros(rows.ids.size, dtype=bool)
    if k:
        accepted[pend] = _line_search(rows, pend, a, xt, Pt, At, rt)
    rows.force[:] = False
    rows.lm_before = ~accepted
    lm = np.flatnonzero(~accepted)
    if not lm.size:
        return
    # the damped steps: those evaluated already, and those of the other rows
    at = np.full(rows.ids.size, -1)
    at[spec] = np.arange(spec.size)
    have, new = lm[at[lm] >= 0], lm[at[lm] < 0]
    o = at[have]
    parts = [(damped[1][o], damped[2][o], damped[3][o], xt[a.size * k + o], Pt[a.size * k + o],
              At[a.size * k + o], rt[a.size * k + o])] if have.size else []
    if new.size:
        dl, g, diag, lam = _damped_steps(rows, new, G[new])
        xl = x[new] + dl
        parts.append((g, diag, lam, xl, *_eval(F, xl)))
    lm = np.concatenate([have, new])
    g, diag, lam, *trial = (np.concatenate(v) for v in zip(*parts))
    gone = _levenberg_marquardt(rows, lm, g, diag, lam, trial, fate)
    if gone.any():
        rows.keep(np.flatnonzero(~gone))


def _damped_steps(rows, sel, G):
    """The damped steps of the rows ``sel`` (``G`` their residual vectors), with ``A^T G``,
    ``diag(A^T A)`` and the damping (set to ``1e-3 max diag(A^T A)`` on a row's first)."""
    A = rows.A[sel]
    g = np.einsum("ki,kij->kj", G, A)                   # A^T G
    diag = np.einsum("kij,kij->kj", A, A)               # diag(A^T A)
    lam = rows.lam[sel]
    first = lam == 0.0
    if first.any():
        lam = lam.copy()
        lam[first] = 1e-3 * np.maximum(np.max(diag[first], axis=1), 1e-300)
    return _damped_solve(np, A, lam, -g, None), g, diag, lam


def _line_search(rows, pend, a, xt, Pt, At, rt):
    """Move to the least-residual step length passing Armijo's test; the rows that moved."""
    k = pend.size
    rt = rt[:a.size * k].reshape(a.size, k)
    best, good = C._armijo_pick(rt, rows.r[pend], rows.force[pend])
    if good.any():
        flat = best[good] * k + np.flatnonzero(good)
        rows.move(pend[good], xt[flat], Pt[flat], At[flat], rt.reshape(-1)[flat])
    return good


def _levenberg_marquardt(rows, lm, g, diag, lam, trial, fate):
    """Take the damped steps that lower the residual; give up rows where ``q`` is stationary
    (the mask returned)."""
    xt, Pt, At, rt = trial
    g_n = np.sqrt(np.einsum("ij,ij->i", g, g))
    stat = C._stationary(g_n, diag, rows.r[lm], rows.failed[lm])
    ok = np.isfinite(rt) & (rt < rows.r[lm]) & ~stat
    rows.lam[lm] = np.where(ok, lam / 3.0, lam * 4.0)
    rows.failed[lm] = ~ok
    if ok.any():
        rows.move(lm[ok], xt[ok], Pt[ok], At[ok], rt[ok])
    gone = np.zeros(rows.ids.size, dtype=bool)
    gone[lm[stat]] = True
    fate[rows.ids[gone]] = GAVE_UP_STALLED
    return gone
