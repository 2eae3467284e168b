"""The batched globalised Newton iteration shared by ``method="newton"`` and ``"q"``.

Every start runs damped Newton on ``G(x) = F^p(x) - x`` together with the
others, one batched linear solve per iteration: a backtracking line search on
``||G||`` (the full step and its halves, quarters and eighths in one batched
evaluation, Armijo's test), Levenberg-Marquardt where no step passes, and
*wandering* (undamped steps of bounded length, accepted whatever they do) for
the starts that stall in a valley of ``q = 1/2 ||G||^2``. :class:`_NewtonSearch`
holds the per-start state (fates, merges, damping, stall marks); its
:meth:`~_NewtonSearch.run` is the short loop over the steps.

References
----------
.. [1] J. E. Dennis and R. B. Schnabel, "Numerical Methods for Unconstrained
   Optimization and Nonlinear Equations", Prentice-Hall 1983 (SIAM 1996),
   ch. 6 (line search) and 10 (Levenberg-Marquardt).
"""

from __future__ import annotations

import time

import numpy as np

from itermap.backends import to_numpy

from ._clustering import (
    _all_pairs,
    _cluster,
    _drawn_together,
    _least_in_groups,
    _nearest_within,
    _sq_dist,
)
from ._common import (
    _ALPHAS,
    _ESCAPES,
    _STALL_DROP,
    _STALL_ITERS,
    MergeRadius,
    _armijo_pick,
    _damped_solve,
    _host_norm,
    _like,
    _map_range,
    _minus_eye,
    _norm,
    _put_rows,
    _resolved,
    _solve,
    _stationary,
    _take,
)
from ._result import (
    _RUNNING,
    CONVERGED,
    GAVE_UP_MAX_ITER,
    GAVE_UP_NONFINITE,
    GAVE_UP_STALLED,
    SLOW_POINT,
    _n_final,
)
from ._small import small_applies, small_search

# early merging of running starts, whatever their residual: two starts within
# _CONVERGE_FRAC * scale being drawn together (_clustering._drawn_together) follow one
# representative from then on; only on maps of at least _PAIRS_DIM units: below, a row's
# Newton step costs less than finding its partners
_CONVERGE_FRAC = 0.1
_PAIRS_DIM = 4
# a stalled start then wanders: undamped Newton steps cut to this fraction of the starts'
# map's range, accepted whatever the residual, for ``patience`` iterations
_WANDER_STEP = 0.6
# a wanderer back within _CYCLE wandering steps of where it was two iterations ago, or within
# _DRIFT of its last step for _DRIFT_ITERS iterations running (a drifting cycle), is caught
# in a 2-cycle of the wandering step: it would never reach a point
_CYCLE = 1e-3
_DRIFT = 1e-2
_DRIFT_ITERS = 4
# ... and all wandering ends once no wandering start has reached a point for a window of
# _WANDER_IDLE_SHARE * patience * (the share of the batch's starts wandering) iterations,
# at least _WANDER_IDLE: finds scale with the wanderers, an iteration's cost hardly does
_WANDER_IDLE = 30
_WANDER_IDLE_SHARE = 1 / 3
# the final polish takes no step where every residual is within _ROUNDED roundings of
# the point's size (1 + max |x_i|) times the float's eps
_ROUNDED = 16


def _search(F, x, xp, eye, *, tol, max_iter, unique_tol, slow_points, patience=0,
            bar=None, wander=False, stall_final=True, share=1.0, leads=None):
    """The batched damped Newton iteration over the starts ``x`` (see :class:`_NewtonSearch`).

    Returns (converged points, their residuals, the status of each start (see
    :data:`STATUS`), slow points, their residuals), the points as lists of
    device arrays. ``leads`` (a list) is given each start's representative (a start
    that reached a point leads itself), for the deflation of repeats.
    """
    if leads is None and small_applies(x, slow_points=slow_points, patience=patience,
                                       wander=wander):
        return small_search(F, x, tol=tol, max_iter=max_iter, unique_tol=unique_tol, bar=bar,
                            stall_final=stall_final)
    search = _NewtonSearch(F, x, xp, eye, tol=tol, max_iter=max_iter, unique_tol=unique_tol,
                           slow_points=slow_points, patience=patience, bar=bar, wander=wander,
                           stall_final=stall_final, share=share)
    out = search.run()
    if leads is not None:
        leads.append(_roots(search.follows))
    return out


class _NewtonSearch:
    """The state of the batched damped Newton iteration over a set of starts.

    The working arrays (``x``, ``Px = F^p(x)``, ``G``, the rows one and two
    iterations back) hold the running rows only; ``ids`` maps them to starts.
    Per start, on the host: its ``fate`` (a code of :data:`STATUS`, -1 running),
    the start it ``follows`` once merged, its Levenberg-Marquardt damping, its
    stall mark and the iteration it began wandering. ``bar`` (a ``_Finished``)
    is shown the starts whose fate is final; a start given up stalled counts as
    final only with ``stall_final`` (else it wanders next).
    """

    def __init__(self, F, x, xp, eye, *, tol, max_iter, unique_tol, slow_points, patience,
                 bar, wander, stall_final, share=1.0):
        self.F, self.xp, self.eye, self.tol, self.max_iter = F, xp, eye, tol, max_iter
        self.unique_tol, self.slow_points, self.patience = unique_tol, slow_points, patience
        self.bar, self.wander, self.stall_final = bar, wander, stall_final
        # iterations without a find that end the wandering (``share``: of the batch's
        # starts, those wandering here)
        self.idle = max(_WANDER_IDLE, int(_WANDER_IDLE_SHARE * patience * share))
        n = int(x.shape[0])
        self.ids, self.follows = np.arange(n), np.arange(n)   # follows: a merged start's lead
        self.fate = np.full(n, _RUNNING, dtype=np.int8)
        # the iteration a start began wandering (-1: not yet)
        self.wander_from = np.full(n, 0 if wander else -1, dtype=np.int64)
        # starts that followed a wanderer set out again from x_start
        self.x_start, self.revive, self.last_found, self.it = x, [], 0, 0
        self.found_x, self.found_r, self.found_ids = [], [], []   # one per group
        self.slow_x, self.slow_r, self.shown = [], [], -np.inf   # shown: the bar's last draw
        self.lam = np.zeros(n)                    # Levenberg-Marquardt damping per start
        self.lm_mode = np.zeros(n, dtype=bool)    # lam initialized
        self.lm_failed = np.zeros(n, dtype=bool)
        self.x, self.Px = x, F.value(x)
        self.G = self.Px - x
        self.r_h = _host_norm(xp, self.G)
        self.wander_step = _WANDER_STEP * max(_map_range(self.Px), 1e-12)
        scale = float(np.mean(to_numpy(_norm(xp, x))))
        self.radius = MergeRadius(scale, unique_tol)
        self.converge_radius = _CONVERGE_FRAC * scale
        self.pairs = int(x.shape[1]) >= _PAIRS_DIM
        # per start: the residual to beat, and the iteration it was set
        self.mark_r, self.mark_it = self.r_h.copy(), np.zeros(n, dtype=np.int64)
        self.escapes, self.force = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        self.drift = np.zeros(n, dtype=np.int64)    # iterations running in a 2-cycle
        self.leaders_x = None     # converged points so far (one per group), on the device
        self.leader_ids = None    # ... and the starts that lead them
        self.prev1 = self.prev2 = x

    def run(self):
        """Iterate to the end; returns what :func:`_search` returns."""
        for it in range(self.max_iter + 1):
            self.it = it
            keep = self._record_converged()
            if keep.any() and it > 0:
                self._merge_running(keep)
            if self._wandering_over():
                self.fate[self.ids[keep]] = GAVE_UP_STALLED
                break
            if it == self.max_iter or not keep.any():
                break
            self._keep_rows(keep.nonzero()[0])
            self._revive_followers()
            self._step()
            if self.ids.size == 0:
                break
        return self._result()

    # -- bookkeeping --------------------------------------------------------------------
    def _record_converged(self):
        """Mark converged and non-finite rows; returns the rows that keep running."""
        r_h = self.r_h
        finite = np.isfinite(r_h)
        if not finite.all():
            self.fate[self.ids[~finite]] = GAVE_UP_NONFINITE
        done = finite & (r_h <= self.tol)
        if done.any():
            c = done.nonzero()[0]
            done[c] = _resolved(self.xp, _take(self.xp, self.x, c), self.tol)
        keep = finite & ~done
        if self.bar is not None and time.monotonic() >= self.shown + 0.1:
            self.shown = time.monotonic()
            self.bar.show(_n_final(self.fate[_roots(self.follows)], self.stall_final),
                          running=int(keep.sum()),
                          points=sum(len(f) for f in self.found_r) if self.found_r else 0)
        if done.any():
            self._add_points(done)
        return keep

    def _add_points(self, done):
        """Converged rows: record them, merged with what was found before."""
        xp = self.xp
        self.last_found = self.it
        xd = _take(xp, self.x, done.nonzero()[0])
        rd, idd = self.r_h[done], self.ids[done]
        self.fate[idd] = CONVERGED
        if self.leaders_x is not None:
            near = _nearest_within(xp, xd, self.leaders_x, self.unique_tol)
            old = near >= 0
            self.follows[idd[old]] = self.leader_ids[near[old]]
            xd, rd, idd = _take(xp, xd, (~old).nonzero()[0]), rd[~old], idd[~old]
        if idd.size:
            lead, _ = _cluster(xp, xd, self.unique_tol)
            heads, rep = _least_in_groups(lead, rd)
            self.follows[idd] = idd[rep]
            self.found_x.append(_take(xp, xd, heads))
            self.found_r.append(rd[heads])
            self.found_ids.append(idd[heads])
            self.leaders_x = xp.concat(self.found_x, axis=0)
            self.leader_ids = np.concatenate(self.found_ids)

    def _merge_running(self, keep):
        """Running rows that stalled give up or wander; those that reached a point already
        found, or each other, follow one representative (``keep`` updated in place)."""
        xp = self.xp
        k_idx = keep.nonzero()[0]
        if not self.slow_points:
            k_idx = self._give_up_stalled(k_idx, keep)
        xk = self.x if k_idx.size == self.ids.size else _take(xp, self.x, k_idx)
        rho = self.radius.of(self.r_h[k_idx])
        if self.leaders_x is not None and k_idx.size:
            near = _nearest_within(xp, xk, self.leaders_x, rho)
            hit = near >= 0
            if hit.any():
                to = self.leader_ids[near[hit]]
                k_idx, xk = self._follow(keep, k_idx, xk, hit, to)
        if not self.pairs or k_idx.size < 2 or (
                self.it < 2 and np.sum(self.r_h[k_idx] <= self.radius.closing) < 2):
            return
        # the squared distances of the running rows, for both mergers below (where the
        # partners are found from all pairs anyway)
        d2 = to_numpy(_sq_dist(xp, xk, xk)) if _all_pairs(*xk.shape) else None
        # rows being drawn together head to the same point: one leads, the others follow
        if self.it >= 2:
            lead = _drawn_together(xp, xk, self.prev1, self.prev2, self.r_h[k_idx],
                                   self.converge_radius, rows=k_idx, d2=d2)
            dup = lead != np.arange(k_idx.size)
            if dup.any():
                k_idx, xk = self._follow(keep, k_idx, xk, dup, self.ids[k_idx[lead[dup]]])
                d2 = None if d2 is None else d2[np.ix_(~dup, ~dup)]
        # only rows closing in on a point can sit within unique_tol of each other
        close = (self.r_h[k_idx] <= self.radius.closing).nonzero()[0]  # k_idx may have shrunk
        if close.size > 1:
            k_idx, xk = k_idx[close], _take(xp, xk, close)
            lead, _ = _cluster(xp, xk, rho, None if d2 is None else d2[np.ix_(close, close)])
            dup = lead != np.arange(k_idx.size)
            if dup.any():
                self._follow(keep, k_idx, xk, dup, self.ids[k_idx[lead[dup]]])

    def _follow(self, keep, k_idx, xk, hit, to):
        """Rows ``k_idx[hit]`` stop and follow the starts ``to``; the rest of (k_idx, xk)."""
        self.follows[self.ids[k_idx[hit]]] = to
        keep[k_idx[hit]] = False
        return k_idx[~hit], _take(self.xp, xk, (~hit).nonzero()[0])

    def _give_up_stalled(self, k_idx, keep):
        """Starts whose residual has not halved for a while: one undamped step out of the
        valley first, then wandering (``patience`` iterations), then given up."""
        it = self.it
        rid = self.ids[k_idx]
        r = self.r_h[k_idx]
        better = r <= _STALL_DROP * self.mark_r[rid]
        self.mark_r[rid[better]] = r[better]
        self.mark_it[rid[better]] = it
        since = it - self.wander_from[rid]             # iterations wandering, if wandering
        wandering = since <= it
        stalled = (it - self.mark_it[rid] >= _STALL_ITERS) & ~wandering
        if stalled.any():
            escape = stalled & (self.escapes[rid] < _ESCAPES)
            self.escapes[rid[escape]] += 1
            self.force[rid[escape]] = True
            self.mark_r[rid[escape]] = np.inf
            stalled &= ~escape
            if self.patience > 0:
                self.wander_from[rid[stalled]] = it
                self.revive.append(rid[stalled])
                stalled[:] = False
        stalled |= wandering & (since >= self.patience)
        w = (wandering & (since >= 2)).nonzero()[0]
        if w.size:
            stalled[w] |= self._in_cycle(k_idx[w], rid[w])
        if stalled.any():
            self.fate[rid[stalled]] = GAVE_UP_STALLED
            keep[k_idx[stalled]] = False
            k_idx = k_idx[~stalled]
        return k_idx

    def _in_cycle(self, rows, rid):
        """Wandering rows caught in a 2-cycle (see ``_CYCLE`` and ``_DRIFT``)."""
        xp = self.xp
        every = rows.size == int(self.x.shape[0])      # all wander: no copies of the rows
        x, p1, p2 = ((a if every else _take(xp, a, rows)) for a in (self.x, self.prev1,
                                                                     self.prev2))
        back, step = _host_norm(xp, x - p2), _host_norm(xp, x - p1)
        self.drift[rid] = np.where(back <= _DRIFT * step, self.drift[rid] + 1, 0)
        return (back <= _CYCLE * self.wander_step) | (self.drift[rid] >= _DRIFT_ITERS)

    def _wandering_over(self):
        """Wandering ends, for all, once it has brought no start to a point for a while."""
        return self.wander and self.it - self.last_found >= self.idle

    def _keep_rows(self, sel):
        if sel.size < self.x.shape[0]:
            self.x, self.Px, self.G, self.prev1, self.prev2 = (
                _take(self.xp, a, sel) for a in (self.x, self.Px, self.G, self.prev1, self.prev2))
            self.ids = self.ids[sel]
            self.r_h = self.r_h[sel]

    def _revive_followers(self):
        """The starts merged into one that now wanders set out again, from their starts:
        wandering paths part, so they reach other points."""
        revive, self.revive, xp = self.revive, [], self.xp
        if not any(r.size for r in revive):
            return
        back = _followers(self.follows, self.fate, np.concatenate(revive), self.ids)
        if back.size:
            self.follows[back] = back
            self.wander_from[back] = self.it
            self.drift[back] = 0
            xb = _take(xp, self.x_start, back)
            Pb = self.F.value(xb)
            self.x, self.Px, self.prev1, self.prev2 = (
                xp.concat([a, b], axis=0) for a, b in ((self.x, xb), (self.Px, Pb),
                                                       (self.prev1, xb), (self.prev2, xb)))
            self.G = self.Px - self.x
            self.ids = np.concatenate([self.ids, back])
            self.r_h = np.concatenate([self.r_h, _host_norm(xp, Pb - xb)])

    def _result(self):
        """Fates of merged starts follow their representatives (chains by iteration)."""
        follows = _roots(self.follows)
        self.fate[self.fate == _RUNNING] = GAVE_UP_MAX_ITER
        return self.found_x, self.found_r, self.fate[follows], self.slow_x, self.slow_r

    # -- one step -----------------------------------------------------------------------
    def _step(self):
        """Newton with a line search; wandering steps; Levenberg-Marquardt where both fail."""
        xp = self.xp
        # the Jacobian of F^p at the active rows (F^p itself is known)
        A = _minus_eye(xp, self.F.jacobian_only(self.x), self.eye)
        n = self.ids.size
        self.r_new = self.r_h.copy()
        self.accepted = np.zeros(n, dtype=bool)
        self.dropped = np.zeros(n, dtype=bool)
        self.new_parts = {}
        dx = _solve(xp, A, -self.G)                # all rows: no copies of A
        dx_h = dx if isinstance(dx, np.ndarray) else to_numpy(dx)
        dx_ok = np.isfinite(dx_h).all(axis=1)
        wand = dx_ok & (self.wander_from[self.ids] >= 0)
        if wand.any():
            self._wander_step(wand.nonzero()[0], dx, dx_h)
        pending = (dx_ok & ~wand).nonzero()[0]
        if pending.size:
            self._line_search(pending, dx)
        self.force[self.ids] = False
        lm = (~self.accepted).nonzero()[0]
        if lm.size:
            self._levenberg_marquardt(lm, A)
        self._assemble()

    def _take_step(self, key, rows, xt, Pt, rt):
        self.new_parts[key] = (rows, xt, Pt)
        self.r_new[rows] = rt
        self.accepted[rows] = True

    def _wander_step(self, w, dx, dx_h):
        """Wandering rows take the Newton step cut to length ``wander_step`` (max norm),
        whatever it does to the residual: it leaves the valleys of q."""
        xp = self.xp
        every = w.size == self.ids.size          # all wander: no copies of the rows
        step = np.abs(dx_h if every else dx_h[w]).max(axis=1)
        cut = np.minimum(1.0, self.wander_step / np.maximum(step, 1e-300))
        xt = ((self.x, dx) if every else (_take(xp, self.x, w), _take(xp, dx, w)))
        xt = xt[0] + _like(cut, xp)[:, None] * xt[1]
        Pt = self.F.value(xt)
        rt = _host_norm(xp, Pt - xt)
        o = np.isfinite(rt).nonzero()[0]
        self._take_step("wander", w[o], _take(xp, xt, o), _take(xp, Pt, o), rt[o])

    def _line_search(self, pending, dx):
        """The full Newton step and the shorter ones at once (one batched evaluation): the
        one of least residual passing Armijo's test, the full one when forced."""
        xp = self.xp
        na, npd = len(_ALPHAS), pending.size
        every = npd == self.ids.size
        xs, dxs = (self.x, dx) if every else (_take(xp, self.x, pending), _take(xp, dx, pending))
        al = xp.asarray(_ALPHAS, dtype=dxs.dtype)[:, None, None]
        xt = xp.reshape(xs[None, ...] + al * dxs[None, ...], (na * npd, -1))
        Pt = self.F.value(xt)
        rt = _host_norm(xp, Pt - xt).reshape(na, npd)
        best, good = _armijo_pick(rt, self.r_h[pending], self.force[self.ids[pending]])
        if good.any():
            o = good.nonzero()[0]
            flat = best[o] * npd + o
            self._take_step("newton", pending[o], _take(xp, xt, flat), _take(xp, Pt, flat),
                            rt[best[o], o])

    def _levenberg_marquardt(self, lm, A):
        """``(A^T A + lam I) dx = -A^T G`` where Newton failed, with a damping ``lam`` per
        start (divided by 3 after a success, times 4 after a failure)."""
        xp = self.xp
        Al, Gl = (A, self.G) if lm.size == self.ids.size else (_take(xp, A, lm),
                                                                _take(xp, self.G, lm))
        g = xp.matmul(Gl[:, None, :], Al)[:, 0, :]          # A^T G
        # diag(A^T A): column sums of squares (A^T A itself is formed with the solve)
        diag = to_numpy(xp.sum(Al * Al, axis=1)).astype(np.float64)
        rid = self.ids[lm]
        stalled = self._at_minimum_of_q(lm, rid, g, diag)
        first = ~self.lm_mode[rid]
        scale = np.maximum(np.max(diag, axis=1), 1e-300)
        self.lam[rid[first]] = 1e-3 * scale[first]
        self.lm_mode[rid] = True
        dl = _damped_solve(xp, Al, self.lam[rid], -g, self.eye)
        xt = _take(xp, self.x, lm) + dl
        Pt = self.F.value(xt)
        rt = _host_norm(xp, Pt - xt)
        ok = np.isfinite(rt) & (rt < self.r_h[lm]) & ~stalled
        self.lam[rid[ok]] /= 3.0
        self.lam[rid[~ok]] *= 4.0
        self.lm_failed[rid] = ~ok
        if ok.any():
            o = ok.nonzero()[0]
            self._take_step("lm", lm[o], _take(xp, xt, o), _take(xp, Pt, o), rt[o])

    def _at_minimum_of_q(self, lm, rid, g, diag):
        """Rows where q is stationary (``A^T G = 0``) but not zero: slow points when asked
        for, else they wander off or give up. Returns the mask of those rows."""
        xp = self.xp
        r = self.r_h[lm]
        stalled = _stationary(_host_norm(xp, g), diag, r, self.lm_failed[rid])
        if not stalled.any():
            return stalled
        if self.slow_points:
            self.fate[rid[stalled]] = SLOW_POINT
            self.slow_x.append(_take(xp, self.x, lm[stalled]))
            self.slow_r.append(r[stalled])
            self.dropped[lm[stalled]] = True
        else:
            start = stalled & (self.wander_from[rid] < 0) & (self.patience > 0)
            self.wander_from[rid[start]] = self.it
            self.revive.append(rid[start])
            out = stalled & ~start & (self.wander_from[rid] < 0)
            self.fate[rid[out]] = GAVE_UP_STALLED
            self.dropped[lm[out]] = True
        return stalled

    def _assemble(self):
        """The new iterate: rows in their old order, dropped rows left out."""
        xp = self.xp
        live = (~self.dropped).nonzero()[0]
        every = live.size == self.ids.size
        self.prev2 = self.prev1 if every else _take(xp, self.prev1, live)
        self.prev1 = self.x if every else _take(xp, self.x, live)
        x, Px = self.prev1, self.Px if every else _take(xp, self.Px, live)
        if self.new_parts:
            x = xp.asarray(x, copy=True)            # prev1 keeps the old rows
            Px = xp.asarray(Px, copy=True) if every else Px
            for rows, xt, Pt in self.new_parts.values():
                # the moved rows' places among the live rows (none of them was dropped)
                at = rows if every else np.searchsorted(live, rows)
                x, Px = _put_rows(xp, x, at, xt), _put_rows(xp, Px, at, Pt)
        self.x, self.Px = x, Px
        self.ids, self.r_h = self.ids[live], self.r_new[live]
        self.G = self.Px - self.x


def _roots(follows):
    """Each start's representative: the end of its chain of ``follows``."""
    root = follows
    for _ in range(64):
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    return root


def _followers(follows, fate, roots, active):
    """Starts not running (not in ``active``) whose chain of ``follows`` ends in ``roots``."""
    root = _roots(follows.copy())
    idle = np.ones(follows.size, dtype=bool)
    idle[active] = False
    idle[roots] = False
    return (idle & np.isin(root, roots) & (fate == _RUNNING)).nonzero()[0]


def _polish(F, xp, eye, pts):
    """One last Newton step on the distinct points (to machine precision); points it brings
    together are merged by the driver (:func:`._clustering.merge_within_error`).

    Returns (points, residuals, Jacobians of ``F^p`` there); the residuals are taken
    anew (on a torus, iterates that wandered far off lose their digits in x + G - x).
    """
    m = int(pts.shape[0])
    if m == 0:
        return pts, np.zeros(0), xp.zeros((0, pts.shape[1], pts.shape[1]), dtype=pts.dtype)
    Pp, jac = F.jacobian(pts)
    res = _host_norm(xp, Pp - pts)
    # residuals within a few dozen roundings of the point's size are at rounding level
    # already: no step (nor a second evaluation of the map) where every one is
    big = np.max(np.abs(to_numpy(pts)), axis=1).astype(np.float64)
    if np.all(res <= _ROUNDED * np.finfo(to_numpy(pts[:1, :1]).dtype).eps * (1.0 + big)):
        return pts, res, jac
    d = _solve(xp, _minus_eye(xp, xp.asarray(jac, copy=True), eye), pts - Pp)
    cand = pts + xp.where(xp.isfinite(d), d, xp.zeros_like(d))
    Pc, jc = F.jacobian(cand)
    rc = _host_norm(xp, Pc - cand)
    better = np.isfinite(rc) & (rc < res)
    if better.any():
        b = _like(better, xp)
        pts, jac = xp.where(b[:, None], cand, pts), xp.where(b[:, None, None], jc, jac)
        res = np.where(better, rc, res)
    return pts, res, jac
