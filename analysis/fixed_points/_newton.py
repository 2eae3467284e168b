"""``method="newton"``: globalised Newton on dense Jacobians, from every start at once.

Four phases, all starts advancing together (:func:`find_fixed_points` states the rules):

1. A few batched L-BFGS steps on ``q = 1/2 ||G||^2`` bring the starts nearer points (one
   ``vjp`` a step, no Jacobian).
2. Damped Newton on ``G(x) = F^p(x) - x`` with a backtracking line search and
   Levenberg-Marquardt (:mod:`._search`); starts that stall are set aside.
3. The stalled starts *wander*: undamped Newton steps of bounded length, accepted whatever
   they do to ``||G||``, which leaves the valleys of ``q`` where damped methods end. Where
   phase 2 reached no point at all (a tanh network at gain 2-3, N >= 400) on a map not on
   a torus, it also runs on the map at lower gain, ``F(s x)``, and the points found there
   (and the branches an odd map's origin sheds) are followed along the gain to ``s = 1``
   by pseudo-arclength continuation (:func:`_by_gain`, :mod:`._paths`); a start converges
   if either way reaches a point. On maps of up to 1024 units, each start still
   unconverged where that rule ran then follows its own unfolded gain homotopy from
   ``s = 0`` (:func:`._homotopy.own_paths`, dense LU, ``patience`` steps) and converges
   where it ends at a point; above 500 units these paths run before wandering, and only
   the starts that neither path brought to a point wander. On maps of up to 500 units
   where wandering leaves more than half the starts unconverged, they follow their own
   paths even where the rule did not run. Either way the paths stop once most of them
   fail (:func:`._homotopy.own_paths`).
4. With ``deflation``, the starts that converged onto a point another start reached run
   again as deflated Newton against every point found (:mod:`._deflation`), so that
   repeated convergence becomes new points.

References
----------
.. [1] J. E. Dennis and R. B. Schnabel, "Numerical Methods for Unconstrained
   Optimization and Nonlinear Equations", Prentice-Hall 1983 (SIAM 1996).
.. [2] J. Nocedal and S. J. Wright, "Numerical Optimization", 2nd ed., Springer
   2006, ch. 7 (L-BFGS) and 11 (nonlinear equations).
.. [3] P. E. Farrell, A. Birkisson and S. W. Funke, "Deflation techniques for
   finding distinct solutions of nonlinear partial differential equations",
   SIAM J. Sci. Comput. 37(4), 2015.
.. [4] E. L. Allgower and K. Georg, "Introduction to Numerical Continuation
   Methods", SIAM 2003.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import is_numpy_namespace

from itermap.backends import to_numpy

from ._clustering import _cluster, _sq_dist
from ._common import Solution, _host_norm, _map_range, _norm, _take
from ._deflation import deflate_repeats
from ._dense import run_dense
from ._homotopy import _OWN_FIRST_DIM, own_before_wandering, own_paths
from ._paths import GainHomotopy, Scaled, follow_paths, origin_branches
from ._q import _lbfgs_q
from ._result import CONVERGED, GAVE_UP_MAX_ITER, GAVE_UP_STALLED
from ._search import _WANDER_STEP, _NewtonSearch, _roots, _search

# L-BFGS iterations on q run before Newton end early where ||G|| <= _Q_SWITCH
_Q_SWITCH = 1e-3
# deflation radius (deflation=True or "auto"): a found point repels within this
# fraction of the starts' mean norm
_DEFLATE_FRAC = 0.1
# deflation="auto" deflates on maps of at least this many units (not on a torus): below,
# the starts reach the few points there are
_DEFLATE_MIN_DIM = 100
# the deflated runs set out from at most this many of the starts that repeat one point
# (the first by index)
_PER_POINT = 8
# then from the midpoints of this many nearest pairs of points a start
_MIDPOINTS = 2
# the unconverged fraction of the starts above which, on maps of up to _OWN_FIRST_DIM
# units, the starts wandering left follow their own gain paths (3'')
_OWN_REST = 0.5
# where the damped phase reached no point, the search runs on F(s x), s = _GAIN_STEP,
# _GAIN_STEP^2, ... >= _GAIN_MIN (gain 3: 2.25, 1.69, 1.27)
_GAIN_STEP, _GAIN_MIN = 0.75, 0.4


def newton(problem) -> Solution:
    """Globalised Newton from every start (dense Jacobians, batched solves)."""
    return run_dense(problem, _newton_batch)


def _newton_batch(p, xc, eye, done):
    xp = p.xp
    x0 = xc
    # the global phase: a few L-BFGS steps on q bring the starts nearer points
    if p.q_steps:
        xc, _, _ = _lbfgs_q(p.F, xc, xp, tol=_Q_SWITCH, max_iter=p.q_steps)
    # who followed whom is kept only for deflation (the lean loop of small maps keeps none)
    radius = _radius(p, x0)
    leads: list | None = [] if radius is not None else None
    fx, fr, st, sx, sr = _search(p.F, xc, xp, eye, tol=p.tol, max_iter=p.max_iter,
                                 unique_tol=p.unique_tol, slow_points=False, patience=0,
                                 bar=done, stall_final=not p.patience, leads=leads)
    # the starts that stalled (and those merged into them) wander from where the global
    # phase left them, each on its own
    again = np.flatnonzero(st == GAVE_UP_STALLED) if p.patience else np.zeros(0, np.int64)
    done.commit(len(st) - len(again))
    gain_st, gain_lead = None, None
    if len(again) and not fx and p.F.torus is None and _GAIN_STEP > 0:
        # no start reached a point: points at a lower gain, followed back to this map's
        # (module doc); the starts wander all the same (each wanderer finds its own)
        fx, fr, gain_st, gain_lead = _by_gain(p, _take(xp, xc, again), eye, done, radius)
    own_first = gain_st is not None and own_before_wandering(int(xc.shape[1]))
    if own_first and is_numpy_namespace(xp):
        # (3'') first: each start its gain path left follows its own homotopy, and only
        # the starts neither reached wander (at this size wandering found no point)
        todo = np.zeros(len(st), dtype=np.int8)
        todo[again[gain_st != CONVERGED]] = GAVE_UP_STALLED
        fx, fr = own_paths(p, x0, todo, fx, fr, leads)
        by_gain = gain_st == CONVERGED
        st[again[by_gain | (todo[again] == 0)]] = CONVERGED
        if leads is not None:
            leads[0][again[by_gain]] = again[gain_lead[by_gain]]
        wander = ~by_gain & (todo[again] != 0)
        done.commit(int(np.sum(~wander)))
        again, gain_st, gain_lead = again[wander], gain_st[wander], gain_lead[wander]
    if len(again):
        sub: list | None = [] if leads is not None else None
        fx2, fr2, st[again], _, _ = _search(
            p.F, _take(xp, xc, again), xp, eye, tol=p.tol, max_iter=max(p.max_iter, p.patience),
            unique_tol=p.unique_tol, slow_points=False, patience=p.patience, bar=done,
            wander=True, share=len(again) / len(st), leads=sub)
        done.commit(len(again))
        fx, fr = fx + fx2, fr + fr2
        lead = sub[0] if sub else np.arange(len(again))
        if gain_st is not None:     # converged by its gain path, not by wandering
            by_gain = (gain_st == CONVERGED) & (st[again] != CONVERGED)
            st[again[by_gain]] = CONVERGED
            lead = np.where(by_gain, gain_lead, lead)
        if leads is not None:
            leads[0][again] = again[lead]
    # (3'') each start still unconverged follows its own gain homotopy: where the gain rule
    # ran, and on maps of up to _OWN_FIRST_DIM units where wandering left most starts (two
    # starts reaching one point used to leave the other 125 of 128 given up on
    # random_rnn(64, 2, rng=1), whose paths all end at points); the phase stops early
    # where most paths fail (a map whose paths escape, or one without fixed points)
    rest = (p.F.torus is None and xc.shape[1] <= _OWN_FIRST_DIM
            and np.mean(st != CONVERGED) > _OWN_REST)
    if (gain_st is not None or rest) and not own_first and is_numpy_namespace(p.xp):
        fx, fr = own_paths(p, x0, st, fx, fr, leads)
    # (4) the starts that repeated a point run again from where they set out, deflated
    # by every point found; their status stays "converged" (they reached a point)
    found_new = False
    rows = _repeats(leads[0], st) if leads is not None else np.zeros(0, np.int64)
    if radius is not None and rows.size and fx:
        fx, fr, _ = _deflate(p.F, p, eye, _take(xp, x0, rows), fx, fr, radius, len(st), done,
                             _WANDER_STEP * _map_range(p.F.value(x0)))
        found_new = True
    return fx, fr, st, sx, sr, bool(len(again)) or found_new


def _deflate(F, p, eye, x, fx, fr, radius, k, bar, wander):
    """Deflated Newton on ``F`` from the rows ``x``, then from the midpoints of the
    ``_MIDPOINTS * k`` nearest pairs of points (between two points of a network lie the
    saddles that separate them); the points ``fx`` with the new ones. ``wander``: the
    deflated runs' wandering step (the search's fraction of the map's range)."""
    xp = p.xp
    kw = {"tol": p.tol, "unique_tol": p.unique_tol, "radius": radius,
          "wander": wander, "bar": bar}
    # the phases before find some points twice: a copy would be its own nearest pair
    known = _distinct_points(xp, fx, p.unique_tol)
    nx, nr, by = deflate_repeats(F, xp, eye, x, known, **kw)
    if len(nr):
        fx, fr = fx + [nx], fr + [nr]
        # deflation's new points lie beyond unique_tol of the known ones and of each other
        known = xp.concat([known, nx], axis=0)
    nx, nr, mid = deflate_repeats(F, xp, eye, _midpoints(xp, known, _MIDPOINTS * k), known,
                                  **kw)
    if len(nr):
        fx, fr = fx + [nx], fr + [nr]
    return fx, fr, np.concatenate([by, np.full(mid.size, -1)])


def _by_gain(p, x, eye, done, radius):
    """Phase (3'): the damped search on ``F(s x)`` for ``s = _GAIN_STEP, _GAIN_STEP^2,
    ...`` (down to ``_GAIN_MIN``); at the one with most points off the origin, the starts
    that led no point run deflated against them (and their mirrors on an odd map), and
    each point is followed along the gain to ``s = 1`` (:mod:`._paths`, ``patience``
    iterations at most; on an odd map one path per mirror pair), the ends polished by
    the damped search on ``F``. Returns (points, residuals, status per start, the start
    each follows): a start is converged where its point at the lower gain (its group's,
    or the one its deflated run found) continued to a point of ``F``; "gave up: max_iter
    reached" where that path ran out of steps, "gave up: stalled" where it came back or
    no gain gave a point."""
    xp, k = p.xp, int(x.shape[0])
    st = np.full(k, GAVE_UP_STALLED, dtype=np.int8)
    lead = np.arange(k)
    fx: list = []
    fr: list = []
    # the gain with the most points other than the origin (a point of every F(s x) of an
    # odd map, its path x = 0): gain 2 at s = 0.42 has the origin alone
    best: tuple = (0,)
    s = 1.0
    while s * _GAIN_STEP >= _GAIN_MIN:
        s *= _GAIN_STEP
        low = _NewtonSearch(Scaled(p.F, s), x, xp, eye, tol=p.tol, max_iter=p.max_iter,
                            unique_tol=p.unique_tol, slow_points=False, patience=0, bar=None,
                            wander=False, stall_final=True)
        px, pr, st_low, _, _ = low.run()
        good = _off_origin(xp, px, p.unique_tol)
        if good > best[0]:
            best = (good, s, low, px, pr, st_low)
    if best[0]:
        _, s, low, px, pr, st_low = best
        heads = np.concatenate(low.found_ids)         # the start that led each point
        root = _roots(low.follows)
        P = xp.concat(px, axis=0)
        odd = _odd(p.F, xp, x)
        # the start that found each path's point (-1: none, a midpoint or a mirror)
        owner = heads
        # every other start runs again at this gain, deflated by the points (and their
        # mirrors): repeated and stalled starts alike find new points there
        rows = np.setdiff1d(np.arange(k), heads)
        if radius is not None and rows.size:
            known = _mirrored(xp, P, p.unique_tol) if odd else P
            fxs, _, by = _deflate(low.F, p, eye, _take(xp, x, rows), [known],
                                  [np.zeros(int(known.shape[0]))], radius, k, done,
                                  _WANDER_STEP * _map_range(low.F.value(x)))
            P = xp.concat([P] + fxs[1:], axis=0)
            owner = np.concatenate([owner, np.where(by >= 0, rows[np.maximum(by, 0)], -1)])
            owner = np.concatenate([owner, np.full(int(P.shape[0]) - owner.size, -1)])
        # on an odd map one path per mirror pair: the path of -y is the mirror of y's
        pos, uniq = _mirror_pairs(P, p.unique_tol) if odd else (None, np.arange(owner.size))
        hom = GainHomotopy(p.F, xp, s, int(x.shape[1]), x.dtype)
        end, reached, _, solves = follow_paths(hom, xp, _take(xp, P, uniq), max_iter=p.patience,
                                               bar=done)
        if odd:
            end = xp.concat([end, -end], axis=0)
            reached, solves = np.tile(reached, 2), np.tile(solves, 2)
            owner, o = np.full(end.shape[0], -1), owner
            owner[pos] = o
            # the branches the origin sheds: paths of their own, without a start
            eb, rb, sb = _branch_paths(p, xp, eye, int(x.shape[1]), x.dtype, done)
            end = xp.concat([end, eb, -eb], axis=0)
            reached, solves = (np.concatenate([v, w, w]) for v, w in ((reached, rb), (solves, sb)))
            owner = np.concatenate([owner, np.full(2 * rb.size, -1)])
        path_st = np.where(solves >= p.patience, GAVE_UP_MAX_ITER, GAVE_UP_STALLED)
        got = np.flatnonzero(reached)
        sub: list = []
        if got.size:
            fx, fr, path_st[got], _, _ = _search(
                p.F, _take(xp, end, got), xp, eye, tol=p.tol, max_iter=p.max_iter,
                unique_tol=p.unique_tol, slow_points=False, patience=0, bar=done, leads=sub)
        path_lead = owner.copy()    # the paths without a start count their points only
        if sub:     # merged at s = 1: follow the merged path's start (if it has one)
            rep = path_lead[got[sub[0]]]
            path_lead[got] = np.where(rep >= 0, rep, path_lead[got])
        # each start: the fate of the path from the point it reached at the lower gain,
        # by the damped search (its group's point) or, where it found one, by deflation
        j = np.full(k, -1)
        j[heads] = np.arange(heads.size)
        j = j[root]
        j[st_low != CONVERGED] = -1
        mine = np.flatnonzero(owner >= 0)
        j[owner[mine]] = mine
        on = j >= 0
        st[on] = path_st[j[on]]
        lead[on] = path_lead[j[on]]
    elif _odd(p.F, xp, x):      # no lower gain gave a point: the origin's branches alone
        eb, rb, _ = _branch_paths(p, xp, eye, int(x.shape[1]), x.dtype, done)
        if rb.any():
            eb = _take(xp, eb, np.flatnonzero(rb))
            fx, fr, _, _, _ = _search(p.F, xp.concat([eb, -eb], axis=0), xp, eye, tol=p.tol,
                                      max_iter=p.max_iter, unique_tol=p.unique_tol,
                                      slow_points=False, patience=0, bar=done)
    return fx, fr, st, lead


def _branch_paths(p, xp, eye, n, dtype, done):
    """Each branch the origin of an odd map sheds (:func:`._paths.origin_branches`): its
    point near the pitchfork by the damped search on ``F(s0 x)``, followed to ``s = 1``.
    Returns (path ends, reached, solves), one row a branch."""
    ends, reached, solves = [], [], []
    for s0, a in origin_branches(p.F, xp, n, dtype):
        pts, _, _, _, _ = _search(Scaled(p.F, s0), xp.asarray(a[None, :], dtype=dtype), xp, eye,
                                  tol=p.tol, max_iter=30, unique_tol=p.unique_tol,
                                  slow_points=False)
        if not pts or _off_origin(xp, pts, p.unique_tol) == 0:
            continue
        e, r, _, k = follow_paths(GainHomotopy(p.F, xp, s0, n, dtype), xp, pts[0],
                                  max_iter=p.patience, bar=done)
        ends.append(e)
        reached.append(r)
        solves.append(k)
    if not ends:
        return xp.zeros((0, n), dtype=dtype), np.zeros(0, bool), np.zeros(0, np.int64)
    return xp.concat(ends, axis=0), np.concatenate(reached), np.concatenate(solves)


def _odd(F, xp, x):
    """Whether ``F(-x) = -F(x)`` on the first rows of ``x`` (a tanh network without bias:
    ``-y`` is a point where ``y`` is, its gain path the mirror of ``y``'s)."""
    y = x[:2]
    d = _host_norm(xp, F.value(-y) + F.value(y))
    return bool(np.all(d <= 1e-12 * (1.0 + float(np.max(np.abs(to_numpy(y)))))))


def _mirrored(xp, P, tol):
    """``P`` with ``-P``, less the mirrors within ``tol`` of a row of ``P``."""
    Q = np.asarray(to_numpy(P), dtype=np.float64)
    far = np.min(_sq_dist(np, -Q, Q), axis=1) > tol * tol
    return xp.concat([P, -_take(xp, P, np.flatnonzero(far))], axis=0)


def _mirror_pairs(P, tol):
    """For the rows of ``P``: the row of each one's path end among ``m`` paths and their
    ``m`` mirrors (a row that is the mirror of an earlier row takes that row's mirror end),
    and the ``m`` rows that are followed."""
    Q = np.asarray(to_numpy(P), dtype=np.float64)
    twin = np.tril(_sq_dist(np, -Q, Q) <= tol * tol, -1)      # row i is -(row j), j < i
    dup = twin.any(axis=1)
    uniq = np.flatnonzero(~dup)
    at = np.full(Q.shape[0], -1)
    at[uniq] = np.arange(uniq.size)
    pos = at.copy()
    pos[dup] = uniq.size + at[np.argmax(twin[dup], axis=1)]
    return pos, uniq


def _off_origin(xp, px, tol):
    """How many of the points ``px`` have norm > ``tol`` (are not the origin)."""
    if not px:
        return 0
    return int(np.sum(_host_norm(xp, xp.concat(px, axis=0)) > tol))


def _radius(p, x):
    """The deflation radius that ``p.deflation`` asks for, or None (no deflation)."""
    d = p.deflation
    if d is False or (d == "auto" and (int(x.shape[1]) < _DEFLATE_MIN_DIM
                                       or p.F.torus is not None)):
        return None
    if d is True or d == "auto":
        scale = float(np.mean(to_numpy(_norm(p.xp, x))))
        return _DEFLATE_FRAC * scale if scale > 0 else _DEFLATE_FRAC
    return float(d)


def _repeats(lead, status):
    """The starts that converged following another start (onto a point it reached),
    at most ``_PER_POINT`` per point, the first by index."""
    rep = np.flatnonzero((status == CONVERGED) & (lead != np.arange(lead.size)))
    order = np.argsort(lead[rep], kind="stable")
    grp = lead[rep][order]
    first = np.searchsorted(grp, grp)               # the first index of each group
    keep = np.arange(grp.size) - first < _PER_POINT
    return np.sort(rep[order][keep])


def _distinct_points(xp, fx, tol):
    """The points of the list ``fx`` of arrays, one of each group within ``tol``."""
    pts = xp.concat(fx, axis=0)
    return _take(xp, pts, _cluster(xp, pts, tol)[1])


def _midpoints(xp, pts, k):
    """The midpoints of the ``k`` nearest pairs of ``pts`` (fewer if there are fewer)."""
    m = int(pts.shape[0])
    i, j = np.triu_indices(m, 1)
    if not i.size:
        return pts[:0]
    P = np.asarray(to_numpy(pts), dtype=np.float64)
    o = np.argsort(_sq_dist(np, P, P)[i, j], kind="stable")[:k]
    return 0.5 * (_take(xp, pts, i[o]) + _take(xp, pts, j[o]))
