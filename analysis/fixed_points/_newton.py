"""``method="newton"``: globalised Newton on dense Jacobians, from every start at once.

Three phases, all starts advancing together. (1) A few batched L-BFGS steps on
``q = 1/2 ||G||^2`` bring the starts nearer points (one ``vjp`` a step, no
Jacobian). (2) Damped Newton on ``G(x) = F^p(x) - x`` with a backtracking line
search and Levenberg-Marquardt (:mod:`._search`); starts that stall are set
aside. (3) The stalled starts *wander*: undamped Newton steps of bounded
length, accepted whatever they do to ``||G||``, which leaves the valleys of
``q`` where damped methods end.

References
----------
.. [1] J. E. Dennis and R. B. Schnabel, "Numerical Methods for Unconstrained
   Optimization and Nonlinear Equations", Prentice-Hall 1983 (SIAM 1996).
.. [2] J. Nocedal and S. J. Wright, "Numerical Optimization", 2nd ed., Springer
   2006, ch. 7 (L-BFGS) and 11 (nonlinear equations).
"""

from __future__ import annotations

import numpy as np

from ._common import Solution, _take
from ._dense import run_dense
from ._q import _lbfgs_q
from ._result import GAVE_UP_STALLED
from ._search import _search

# L-BFGS iterations on q run before Newton end early where ||G|| <= _Q_SWITCH
_Q_SWITCH = 1e-3


def newton(problem) -> Solution:
    """Globalised Newton from every start (dense Jacobians, batched solves)."""
    return run_dense(problem, _newton_batch)


def _newton_batch(p, xc, eye, done):
    xp = p.xp
    # the global phase: a few L-BFGS steps on q bring the starts nearer points
    if p.q_steps:
        xc, _, _ = _lbfgs_q(p.F, xc, xp, tol=_Q_SWITCH, max_iter=p.q_steps)
    fx, fr, st, sx, sr = _search(p.F, xc, xp, eye, tol=p.tol, max_iter=p.max_iter,
                                 unique_tol=p.unique_tol, slow_points=False, patience=0,
                                 bar=done, stall_final=not p.patience)
    # the starts that stalled (and those merged into them) wander from where the global
    # phase left them, each on its own
    again = np.flatnonzero(st == GAVE_UP_STALLED) if p.patience else np.zeros(0, np.int64)
    done.commit(len(st) - len(again))
    if not len(again):
        return fx, fr, st, sx, sr, False
    fx2, fr2, st[again], _, _ = _search(
        p.F, _take(xp, xc, again), xp, eye, tol=p.tol, max_iter=max(p.max_iter, p.patience),
        unique_tol=p.unique_tol, slow_points=False, patience=p.patience, bar=done,
        wander=True, share=len(again) / len(st))
    done.commit(len(again))
    return fx + fx2, fr + fr2, st, sx, sr, True
