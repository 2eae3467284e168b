"""``method="newton"``: globalised Newton on dense Jacobians, from every start at once.

Four phases, all starts advancing together. (1) A few batched L-BFGS steps on
``q = 1/2 ||G||^2`` bring the starts nearer points (one ``vjp`` a step, no
Jacobian). (2) Damped Newton on ``G(x) = F^p(x) - x`` with a backtracking line
search and Levenberg-Marquardt (:mod:`._search`); starts that stall are set
aside. (3) The stalled starts *wander*: undamped Newton steps of bounded
length, accepted whatever they do to ``||G||``, which leaves the valleys of
``q`` where damped methods end. The rule: where the damped phase reached no
point at all (every start stalled: high gain) on a map of at most
``_PATH_MAX_DIM`` units, the stalled starts instead follow the probability-one
homotopy path from their start to a fixed point (:mod:`._paths`; Chow,
Mallet-Paret and Yorke 1978), which passes the folds (singular ``D G``) where
damped Newton stalls; a path not at ``t = 1`` within ``patience`` bordered
solves is "gave up: max_iter reached", one whose step underflows "gave up:
stalled". (4) With ``deflation``, the starts that
converged onto a point another start reached run again, as deflated Newton
against every point found (:mod:`._deflation`), so that repeated convergence
becomes new points.

References
----------
.. [1] J. E. Dennis and R. B. Schnabel, "Numerical Methods for Unconstrained
   Optimization and Nonlinear Equations", Prentice-Hall 1983 (SIAM 1996).
.. [2] J. Nocedal and S. J. Wright, "Numerical Optimization", 2nd ed., Springer
   2006, ch. 7 (L-BFGS) and 11 (nonlinear equations).
.. [3] P. E. Farrell, A. Birkisson and S. W. Funke, "Deflation techniques for
   finding distinct solutions of nonlinear partial differential equations",
   SIAM J. Sci. Comput. 37(4), 2015.
.. [4] S.-N. Chow, J. Mallet-Paret and J. A. Yorke, "Finding zeroes of maps:
   homotopy methods that are constructive with probability one", Math. Comp. 32
   (1978) 887-899.
.. [5] E. L. Allgower and K. Georg, "Introduction to Numerical Continuation
   Methods", SIAM 2003.
"""

from __future__ import annotations

import numpy as np

from itermap.backends import to_numpy

from ._clustering import _sq_dist
from ._common import Solution, _norm, _take
from ._deflation import deflate_repeats
from ._dense import run_dense
from ._paths import follow_paths
from ._q import _lbfgs_q
from ._result import CONVERGED, GAVE_UP_MAX_ITER, GAVE_UP_STALLED
from ._search import _search

# L-BFGS iterations on q run before Newton end early where ||G|| <= _Q_SWITCH
_Q_SWITCH = 1e-3
# deflation radius (deflation=True or "auto"): a found point repels within this
# fraction of the starts' mean norm
_DEFLATE_FRAC = 0.1
# deflation="auto" deflates on maps of at least this many units (not on a torus): on the
# N = 64 benchmark networks the search finds the 3 points there are, and stage 1 alone
# added 10-40 % to the call for nothing
_DEFLATE_MIN_DIM = 100
# the deflated runs set out from at most this many of the starts that repeat one point
# (the first by index): at N = 64 the benchmark's 128 starts repeat 3 points
_PER_POINT = 8
# their wandering step, in units of the map's range (as the search's)
_WANDER_FRAC = 0.6
# then from the midpoints of this many nearest pairs of points a start (gain 1.5 grid
# network 6: 15 points with one, 18 with two)
_MIDPOINTS = 2
# the homotopy paths replace wandering on maps of at most this many units: at N = 100-200,
# gain 3, a path reaches t = 1 in 200-3000 bordered solves; at N = 400 one path of 8 did in
# 4000 (benchmarks/RESULTS.md, round 13), beyond what wandering's window costs
_PATH_MAX_DIM = 256


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
    if len(again) and not fx and int(xc.shape[1]) <= _PATH_MAX_DIM:
        # no start reached a point: the stalled ones follow homotopy paths (module doc)
        fx2, fr2, st[again] = _by_paths(p, _take(xp, x0, again), eye, done, leads)
        done.commit(len(again))
    elif len(again):
        fx2, fr2, st[again], _, _ = _search(
            p.F, _take(xp, xc, again), xp, eye, tol=p.tol, max_iter=max(p.max_iter, p.patience),
            unique_tol=p.unique_tol, slow_points=False, patience=p.patience, bar=done,
            wander=True, share=len(again) / len(st), leads=leads)
        done.commit(len(again))
    if len(again):
        fx, fr = fx + fx2, fr + fr2
        if leads is not None:
            leads[0][again] = again[leads[1]]
    # (4) the starts that repeated a point run again from where they set out, deflated
    # by every point found; their status stays "converged" (they reached a point)
    found_new = False
    rows = _repeats(leads[0], st) if leads is not None else np.zeros(0, np.int64)
    if radius is not None and rows.size and fx:
        kw = {"tol": p.tol, "unique_tol": p.unique_tol, "radius": radius,
              "wander": _wander_step(p.F, x0), "bar": done}
        nx, nr, _ = deflate_repeats(p.F, xp, eye, _take(xp, x0, rows), xp.concat(fx, axis=0),
                                    **kw)
        if len(nr):
            fx, fr = fx + [nx], fr + [nr]
        # then from the midpoints of the nearest pairs of points (two per start): between
        # two points of a network lie the saddles that separate them
        known = xp.concat(fx, axis=0)
        nx, nr, _ = deflate_repeats(p.F, xp, eye, _midpoints(xp, known, _MIDPOINTS * len(st)),
                                    known, **kw)
        if len(nr):
            fx, fr = fx + [nx], fr + [nr]
        found_new = True
    return fx, fr, st, sx, sr, bool(len(again)) or found_new


def _by_paths(p, a, eye, done, leads):
    """Phase (3'): the homotopy path of each start of ``a`` to ``t = 1``
    (:func:`._paths.follow_paths`, ``patience`` iterations at most), then the damped
    search from the ends of the paths that got there. Returns (points, residuals,
    status per start): a path that did not reach ``t = 1`` in time is "gave up:
    max_iter reached", one whose step fell below its least "gave up: stalled"."""
    end, reached, solves = follow_paths(p.F, p.xp, a, max_iter=p.patience, bar=done)
    k = int(a.shape[0])
    st = np.where(solves >= p.patience, GAVE_UP_MAX_ITER, GAVE_UP_STALLED).astype(np.int8)
    got = np.flatnonzero(reached)
    lead = np.arange(k)
    fx: list = []
    fr: list = []
    if got.size:
        sub: list | None = [] if leads is not None else None
        fx, fr, st[got], _, _ = _search(p.F, _take(p.xp, end, got), p.xp, eye, tol=p.tol,
                                        max_iter=p.max_iter, unique_tol=p.unique_tol,
                                        slow_points=False, patience=0, bar=done, leads=sub)
        if sub:
            lead[got] = got[sub[0]]
    if leads is not None:
        leads.append(lead)
    return fx, fr, st


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


def _wander_step(F, x):
    """The deflated runs' wandering step: as the search's, a fraction of the map's range
    (the mean max-norm of the images of the starts)."""
    img = np.max(np.abs(to_numpy(F.value(x))), axis=1)
    img = img[np.isfinite(img)]
    return _WANDER_FRAC * (float(np.mean(img)) if img.size else 1.0)


def _repeats(lead, status):
    """The starts that converged following another start (onto a point it reached),
    at most ``_PER_POINT`` per point, the first by index."""
    rep = np.flatnonzero((status == CONVERGED) & (lead != np.arange(lead.size)))
    order = np.argsort(lead[rep], kind="stable")
    grp = lead[rep][order]
    first = np.searchsorted(grp, grp)               # the first index of each group
    keep = np.arange(grp.size) - first < _PER_POINT
    return np.sort(rep[order][keep])


def _midpoints(xp, pts, k):
    """The midpoints of the ``k`` nearest pairs of ``pts`` (fewer if there are fewer)."""
    m = int(pts.shape[0])
    i, j = np.triu_indices(m, 1)
    if not i.size:
        return pts[:0]
    P = np.asarray(to_numpy(pts), dtype=np.float64)
    o = np.argsort(_sq_dist(np, P, P)[i, j], kind="stable")[:k]
    return 0.5 * (_take(xp, pts, i[o]) + _take(xp, pts, j[o]))
