"""Fixed points of large maps along a gain homotopy (``method="homotopy"``).

Each start ``x0`` defines the homotopy

    H(x, s) = F(s x) + (1 - s) b - x,    b = _BETA x0,

which at ``s = 0`` has the one solution ``x = F(0) + b`` and at ``s = 1`` is
``F(x) - x``. For a network ``F(x) = f(W x + c)`` the factor ``s`` is the gain of the
recurrent weights: the path starts where the map is a contraction and raises the gain
to its value. The zero set of ``H`` through ``(F(0) + b, 0)`` is, for almost every
``b``, a smooth curve (Chow, Mallet-Paret and Yorke 1978); while the states stay
bounded (a saturating ``f``) it cannot end, nor come back to ``s = 0`` (one solution
there), so it reaches ``s = 1``, at a fixed point of ``F``. Without ``b`` a bias-free
network (``random_rnn``) would stay on the trivial branch ``x = 0``: its non-trivial
points branch off it at ``s = 1 / lambda`` for the real eigenvalues ``lambda > 1`` of
``W``, and ``b`` unfolds these pitchforks so that the path turns onto one of them.

The curve is followed by pseudo-arclength continuation (Allgower and Georg 2003, ch. 2
and 6): a predictor along the tangent, a Newton corrector on the bordered system
``[H_x, H_s; t^T] d = -[H; 0]``, the correction cut back until ``||H||`` falls, and a
step refused where the path turns by more than ``arccos(_MIN_COS)``. The solves:

- a network with sparse weights (period 1) whose bordered Jacobian's complete LU fill
  (``12 (dim + 1)^2`` bytes) fits 64 MiB (``dim <= 2363``): a sparse LU (SuperLU) of the
  Jacobian built from the weights' pattern, so every corrector step is exact; the tangent
  at each point is solved for too (the same bordered matrix, oriented by the last one);
- a map without sparse weights up to ``_DENSE_DIM`` = 4096 units (the dense search's
  limit): a dense LU (LAPACK) of the bordered Jacobian; a corrector step reuses the last
  factorization while the residual falls fast enough (chord steps, ``O(dim^2)``), and
  the tangent is solved by it; a step across which the sign of ``det [H_x, H_s; t^T]``
  changes (constant along a regular curve; Allgower and Georg 2003, sec. 2.1, read off
  the LU's diagonal and pivots) is refused and shortened: it crossed a singular point
  or turned the path back on itself;
- otherwise IDR(s) (:func:`itermap.linalg.idrs`) on products with the map's sparse
  Jacobian (``Map.sparse_jacobian``) or its ``tangent`` (no ``dim x dim`` array), to a
  relative residual of ``_IDR_RTOL``, so the steps are as good as the LU's and the path
  is followed as with it. The Jacobians ``s D F - I``
  have their spectrum around the origin once ``s`` passes ``1 / gain`` (the disk of
  ``D W`` reaches 1: a random network's fixed points are unstable), where restarted
  GMRES stagnates until its basis holds ``O(dim^0.75)`` vectors; IDR(s) takes about as
  many products but holds ``3 s + 4`` vectors.

At ``s = 1`` Newton (LU or IDR(s) steps) polishes the point to ``tol`` (Kelley 1995,
ch. 6; Knoll and Keyes 2004). A path that stops, comes back on itself (a step past a
near-singular point can land on a closed loop of zeros: seen on fixed projections of
the accepted points), whose polish fails or that ends at ``x = 0`` runs again with
``b = 0.25 x0``, then ``b = x0`` (``x = 0`` is kept where no unfolding reaches another
point). For an odd map (``F(-x) = -F(x)``, a network without bias) ``-x`` is a fixed
point too and is returned when its residual, computed, is within ``tol``.

:func:`own_paths` runs a start's path for ``method="newton"``: the starts its gain
rule leaves unconverged (:mod:`._newton`), one unfolding ``b = _BETA x0`` each.

Memory: the dense or sparse LU (at most its complete fill) or IDR(s)'s ``3 s + 4``
vectors, a few more vectors, the points.

References
----------
.. [1] E. L. Allgower and K. Georg, "Introduction to Numerical Continuation Methods",
   SIAM Classics in Applied Mathematics 45, 2003 (Springer 1990).
.. [2] S.-N. Chow, J. Mallet-Paret and J. A. Yorke, "Finding zeroes of maps: homotopy
   methods that are constructive with probability one", Math. Comp. 32, 1978.
.. [3] C. T. Kelley, "Iterative Methods for Linear and Nonlinear Equations", SIAM 1995.
.. [4] M. B. van Gijzen and P. Sonneveld, "Algorithm 913: An elegant IDR(s) variant that
   efficiently exploits biorthogonality properties", ACM Trans. Math. Softw. 38(1), 2011.
.. [5] D. A. Knoll and D. E. Keyes, "Jacobian-free Newton-Krylov methods: a survey of
   approaches and applications", J. Comput. Phys. 193, 2004.
"""

from __future__ import annotations

import numpy as np

from itermap.linalg import idrs
from itermap.threads import blas_limited

from .._checks import check_memory
from ._common import Solution, _progress_bar, _Running, _settle
from ._newton_krylov import (
    _residual,
    add_point,
    leading_multipliers,
    lu_memory,
    sparse_jacobian,
    tangent_operator,
    uses_lu,
)

# the unfolding: b = _BETA x0 (a start from sample_states has rms ~0.5 on a tanh network:
# b of rms ~0.25; a smaller b unfolds the pitchforks more sharply, and the path then
# passes nearer singular points)
_BETA = 0.5
# arclength steps (x weighted by 1 / dim, so that rms(x) and s count alike): first, largest
_DS0, _DS_MAX = 0.05, 0.1
# a corrected point is accepted at rms(H) <= _TAU ds (every solve is as good as exact: a
# point accurate enough that the next corrector starts within Newton's reach of the curve
# near its singular points), within _CORRECTOR_ITERS
_TAU = 5e-6
_CORRECTOR_ITERS = 8
# dense LU: a corrector step reuses the last factorization while the residual fell by
# at least this factor in the step before (chord steps: O(dim^2), not O(dim^3))
_CHORD = 0.3
# a step is refused where the secant turns from the last by more than arccos(_MIN_COS)
_MIN_COS = 0.9
# the linear solves: a sparse LU of the (bordered) Jacobian where ``uses_lu`` (a network
# with sparse weights, a complete fill within 64 MiB: dim <= 2363); a dense LU for maps
# without sparse weights up to _DENSE_DIM units (the driver's dense limit); else IDR(s)
# with a shadow space of _IDR_S vectors, to _IDR_RTOL (as exact as the LU for the path),
# in at most dim + _IDR_PRODUCTS_EXTRA products (IDR(s) ends within dim + dim / s in
# exact arithmetic), and along a path at most _IDR_BUDGET_FACTOR times the products of
# the last solve that converged (at least _IDR_MIN_BUDGET; doubled after each that does
# not): near a singular point a solve that will not converge gives up at a few times
# the usual cost, not at dim; a solve left above _IDR_ACCEPT counts as failed (the step
# is refused and shortened)
_DENSE_DIM = 4096
_IDR_S = 8
_IDR_RTOL = 1e-10
_IDR_PRODUCTS_EXTRA = 1000
_IDR_BUDGET_FACTOR, _IDR_MIN_BUDGET = 4, 1000
_IDR_ACCEPT = 1e-2
# the polish at s = 1: Newton steps at most
_POLISH_ITERS = 10
_DS_MIN = 1e-5
# b of rms below this counts as no unfolding for the orientation (x0 of 1e-10 and less
# left the paths of x -> tanh(g x) stuck at the pitchfork s = 1 / g, every step refused)
_FLAT = 1e-8
# steps over a singular point, in units of the last step that succeeded
_JUMPS = (2.0, 4.0)
# a start whose path stops (or comes back on itself: a step past a near-singular point can
# land on a closed loop of zeros) runs again with these multiples of x0 as b
_RETRY_BETAS = (0.25, 1.0)
# the unfoldings of the starts that method="newton" hands over (own_paths), on maps of
# at most _OWN_MAX_DIM units; above _OWN_FIRST_DIM they run before the wandering phase,
# which they replace for the starts they bring to a point, with a sharper unfolding
# (shorter paths at N = 1000; at N = 200 the wider one reaches more distinct points:
# benchmarks/RESULTS.md, round 16)
_OWN_BETAS, _OWN_BETAS_FIRST = (_BETA,), (0.1,)
_OWN_MAX_DIM, _OWN_FIRST_DIM = 1024, 500
# the phase stops once _OWN_GIVE_UP paths have failed and failures outnumber twice the
# paths that reached a point (a failing path costs a minute at N = 1000; a map without
# fixed points ran every start's path: 64 paths, 22 s, at 20 units)
_OWN_GIVE_UP = 4
# loops are seen on _LOOP_FEATURES fixed projections of (x, s): a point nearer than
# _LOOP_NEAR ds to one accepted more than _LOOP_AGE steps before
_LOOP_FEATURES, _LOOP_NEAR, _LOOP_AGE = 8, 0.2, 5
_KRYLOV_EIGS = 6


def homotopy(problem) -> Solution:
    """Each start's gain homotopy followed to ``s = 1``, then polished (module docstring).

    Parameters
    ----------
    problem : Problem
        The checked inputs (the contract in :mod:`itermap.analysis.fixed_points`);
        ``max_iter`` bounds the continuation steps per start.

    Returns
    -------
    Solution
        The distinct points at residual ``<= tol`` (with ``-x`` for an odd map), one
        status per start, no Jacobians, the 6 leading multipliers (ARPACK).

    References
    ----------
    .. [1] E. L. Allgower and K. Georg, "Introduction to Numerical Continuation
       Methods", SIAM 2003.
    .. [2] S.-N. Chow, J. Mallet-Paret and J. A. Yorke, Math. Comp. 32, 1978.
    """
    x, F = problem.x, problem.F
    n_starts, dim = int(x.shape[0]), int(x.shape[1])
    if F.torus is not None:
        raise ValueError("method='homotopy' scales the state (F(s x)): it needs a map on "
                         "R^n, not on a torus; use method='newton'")
    lu = _solver(F, dim)
    check_memory("method", homotopy_memory(problem.map, n_starts, dim, lu=lu),
                 f"method='homotopy' on {n_starts} starts of dim {dim} (LU or IDR(s) vectors, "
                 f"and starts)")
    bar = _progress_bar(problem.progress, n_starts, dim, n_starts, problem.stage)
    found: list[np.ndarray] = []
    res: list[float] = []
    status = np.zeros(n_starts, dtype=np.int8)
    tick = _Running(bar, found)
    with bar, blas_limited(1), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(n_starts):
            xe, r, st = _start_path(F, np.array(x[i], dtype=np.float64), problem.max_iter,
                                    problem.tol, problem.unique_tol, lu, tick=tick)
            if st == 0:
                add_point(found, res, xe, r, problem.unique_tol)
                # an odd map: -x is a point too (kept where its residual says so)
                rm = _residual(F, -xe)[1]
                if rm <= problem.tol:
                    add_point(found, res, -xe, rm, problem.unique_tol)
            status[i] = st
            bar.update(1)
            bar.set_postfix(points=len(found), refresh=False)
        _settle(bar)
        P = np.asarray(found).reshape(-1, dim)
        ev = leading_multipliers(F, P, _KRYLOV_EIGS)
    return Solution(points=P, residuals=np.asarray(res, dtype=np.float64), status=status,
                    jacobians=None, eigenvalues=ev)


def _start_path(F, x0, max_iter, tol, unique_tol, lu, betas=(_BETA, *_RETRY_BETAS),
                tick=None):
    """The path of one start, polished: (x, ||F(x) - x||, status code). A path that
    stops, ends where the polish fails or ends at ``x = 0`` (a network without bias: the
    point every start has) runs again with the next unfolding ``b`` in ``betas``.
    ``tick`` (a :class:`._common._Running`) is told where the path and the polish are."""
    trivial = None
    for beta in betas:
        xe, st = _Path(F, beta * x0, lu, tick).run(max_iter)
        r = np.nan
        if st == 0:
            xe, r, st = polish(F, xe, tol, lu, tick)
        if st == 0 and float(np.linalg.norm(xe)) > unique_tol:
            return xe, r, 0
        if st == 0:
            trivial = trivial or (xe, r)
    return (trivial[0], trivial[1], 0) if trivial is not None else (xe, r, st)


def _solver(F, dim):
    """How the path's linear systems are solved: "sparse" (LU), "dense" (LU) or "idr"."""
    return "sparse" if uses_lu(F, dim) else ("dense" if _dense_lu(F, dim) else "idr")


def _dense_lu(F, dim):
    """Whether the homotopy's solves are dense LU: a map without sparse weights up to
    ``_DENSE_DIM`` units (the dense search's limit)."""
    return dim <= _DENSE_DIM and F.map.jacobian_nnz is None


def homotopy_memory(map_, n_starts, dim, itemsize=8, lu="idr"):
    """Bytes the homotopy holds beyond the map: the dense bordered matrix and its LU
    (``lu="dense"``), the sparse LU at its complete fill and the Jacobian's copies of the
    weights (``"sparse"``), or IDR(s)'s ``3 s + 4`` vectors of ``dim + 1`` and the sparse
    Jacobian with its bordered copy, in building (``"idr"``: 64 bytes a nonzero);
    30 work vectors, starts and points."""
    if lu == "dense":        # the bordered matrix, its LU and the Jacobian
        solver = 3 * (dim + 1) ** 2 * itemsize
    elif lu == "sparse":
        solver = lu_memory(dim, map_.jacobian_nnz or 0)
    else:                    # and the sparse Jacobian and its bordered copy as built
        solver = (3 * _IDR_S + 4) * (dim + 1) * 8 + 64.0 * (map_.jacobian_nnz or 0)
    return float(solver + 30 * (dim + 1) * itemsize + 3 * n_starts * dim * itemsize)


def _jacobian(F, y):
    """``D F(y)``: the map's sparse Jacobian (``Map.sparse_jacobian``)."""
    return sparse_jacobian(F.map, y, F.u)


def _dense_jacobian(F, y):
    """``D F(y)``, dense (n, n)."""
    return np.asarray(F.jacobian(y[None, :])[1], dtype=np.float64)[0]


def _dense_solve(A, rhs):
    """``A^-1 rhs`` by LAPACK's LU (NaN where ``A`` is singular)."""
    try:
        return np.linalg.solve(A, rhs)
    except np.linalg.LinAlgError:
        return np.full(rhs.shape, np.nan)


def _idr_solve(A, rhs, budget=None):
    """``A^-1 rhs`` by IDR(s) to ``_IDR_RTOL`` (NaN where it ends above ``_IDR_ACCEPT``) in
    at most ``budget`` products (and ``dim + _IDR_PRODUCTS_EXTRA``); with the products
    taken and whether it converged."""
    cap = rhs.size + _IDR_PRODUCTS_EXTRA
    sol = idrs(A, rhs, s=_IDR_S, rtol=_IDR_RTOL,
               max_products=cap if budget is None else min(cap, budget))
    x = sol.x if sol.residual <= _IDR_ACCEPT else np.full(rhs.shape, np.nan)
    return x, sol.products, sol.converged


def _lu_solve(A, rhs):
    """``A^-1 rhs`` by a sparse LU (NaN where ``A`` is exactly singular)."""
    from scipy.sparse.linalg import splu

    try:
        return splu(A.tocsc()).solve(rhs)
    except RuntimeError:
        return np.full(rhs.shape, np.nan)


class _Path:
    """The zero curve of ``H(x, s) = F(s x) + (1 - s) b - x`` from ``s = 0`` to 1."""

    def __init__(self, F, b, lu="idr", tick=None):
        self.F, self.b, self.lu, self.tick = F, b, lu, tick
        self.n = b.size
        self.w = 1.0 / self.n               # weight of x in the arclength norm
        self.budget = None                  # IDR(s)'s products a solve (_IDR_BUDGET_FACTOR)
        self.sign = None                    # the orientation (dense LU)
        # an unfolding below _FLAT (rms) leaves pitchforks numerically unbroken
        self.flat = float(np.linalg.norm(b)) <= _FLAT * np.sqrt(self.n)

    def H(self, x, s):
        return np.asarray(self.F.value((s * x)[None, :]))[0] + (1.0 - s) * self.b - x

    def rms(self, x, s):
        return float(np.linalg.norm(self.H(x, s))) / np.sqrt(self.n)

    def unit(self, v):
        return v / np.sqrt(self.w * float(v[:-1] @ v[:-1]) + float(v[-1]) ** 2)

    def bordered_step(self, x, s, t, h, last=0.0):
        """``[s J - I, J x - b; w t_x^T, t_s] d = [-h; last]``, J = D F(s x): a dense or
        sparse LU, or IDR(s) on the bordered sparse matrix (a map with a sparse Jacobian)
        or on products with the tangent."""
        from scipy.sparse.linalg import LinearOperator

        n = self.n
        tw = self.w * t[:n]
        rhs = np.append(-h, last)
        if self.lu == "dense":
            import warnings

            from scipy.linalg import lu_factor

            J = _dense_jacobian(self.F, s * x)
            A = np.empty((n + 1, n + 1))
            A[:n, :n] = s * J
            A[np.arange(n), np.arange(n)] -= 1.0
            A[:n, n] = J @ x - self.b
            A[n, :n], A[n, n] = tw, t[n]
            with warnings.catch_warnings():     # singular: NaN steps, refused below
                warnings.simplefilter("ignore")
                self.fac = lu_factor(A, overwrite_a=True, check_finite=False)
            self.fresh = True
            return self.chord(h, last)
        J = _jacobian(self.F, s * x) if self.F.p == 1 else None   # "sparse": always p = 1
        if J is not None:
            import scipy.sparse as sp

            A = sp.bmat([[s * J - sp.identity(n), sp.csc_matrix((J @ x - self.b)[:, None])],
                         [sp.csc_matrix(tw[None, :]), sp.csc_matrix([[t[n]]])]])
            # the LU, or IDR(s) on the bordered matrix (one CSR product a step)
            return _lu_solve(A, rhs) if self.lu == "sparse" else self.idr(A.tocsr(), rhs)
        _, J = tangent_operator(self.F, s * x)
        hs = J.matvec(x) - self.b

        def mv(v):
            out = np.empty(n + 1)
            out[:n] = s * J.matvec(v[:n]) - v[:n] + v[n] * hs
            out[n] = tw @ v[:n] + t[n] * v[n]
            return out

        return self.idr(LinearOperator((n + 1, n + 1), matvec=mv, dtype=np.float64), rhs)

    def idr(self, A, rhs):
        """An IDR(s) solve within the path's budget, which follows the solves' cost."""
        d, products, converged = _idr_solve(A, rhs, self.budget)
        if converged:
            self.budget = max(_IDR_MIN_BUDGET, _IDR_BUDGET_FACTOR * products)
        elif self.budget is not None:
            self.budget *= 2
        return d

    def dense_tangent(self, x, s, t):
        """The tangent at ``(x, s)`` by the dense LU (the last one, where the corrector
        took a step from here; False where it is singular), or None where the sign of
        ``det [H_x, H_s; t^T]`` differs from the path's: it is constant along a regular
        curve (Allgower and Georg 2003, sec. 2.1), so a change says the step crossed a
        singular point or jumped to another branch, and a shorter step is taken."""
        if not self.fresh:
            self.bordered_step(x, s, t, np.zeros(self.n))
        tau = self.chord(np.zeros(self.n), 1.0)
        if not np.all(np.isfinite(tau)):
            return False
        lu, piv = self.fac
        sign = np.prod(np.sign(np.diag(lu))) * (-1.0) ** np.count_nonzero(
            piv != np.arange(piv.size))
        if self.sign is None or self.flat:
            # b = 0 (or too small to show in float64) unfolds nothing: the trivial branch
            # has its pitchforks, where the sign changes (bifurcations); the last tangent
            # orients it
            self.sign = sign
        return self.unit(tau) if sign == self.sign else None

    def chord(self, h, last=0.0):
        """The bordered step with the last dense LU (a chord step)."""
        from scipy.linalg import lu_solve

        return lu_solve(self.fac, np.append(-h, last), check_finite=False)

    def correct(self, x, s, t, ds):
        """Newton on the bordered system from the predicted ``(x, s)``; the corrected
        point and the corrector steps taken, or None where it does not converge."""
        r0 = r = self.rms(x, s)
        self.fresh, r_prev = False, np.inf
        tau = _TAU
        for k in range(_CORRECTOR_ITERS + 1):
            if r <= tau * ds:
                return x, s, k
            if k == _CORRECTOR_ITERS or not np.isfinite(r) or r > 4.0 * r0:
                return None
            # dense: the last LU again while it contracts fast enough (chord steps)
            if self.lu == "dense" and k and r <= _CHORD * r_prev:
                d = self.chord(self.H(x, s))
            else:
                d = self.bordered_step(x, s, t, self.H(x, s))
            if not np.all(np.isfinite(d)):
                return None
            # the correction cut back until the residual falls (a solve stopped short
            # leaves long components along the near-null directions)
            for a in (1.0, 0.5, 0.25, 0.125):
                xt, st = x + a * d[:-1], s + a * d[-1]
                rt = self.rms(xt, st)
                if rt < r:
                    break
            r_prev, x, s, r = r, xt, st, rt
            if k >= 4 and r > 0.8 * r_prev:
                return None
        return None

    def turn(self, x, s, t, got):
        """The cosine between the tangent ``t`` and the secant to the corrected point (a
        step past a fold can land back on the part of the curve just followed)."""
        v = self.unit(np.append(got[0] - x, got[1] - s))
        return self.w * float(v[:-1] @ t[:-1]) + float(v[-1] * t[-1])

    def run(self, max_steps):
        """Follow the curve to ``s = 1``: (x there, 0), or (x, status code) where it
        stops (2 ``max_steps`` taken, 3 the step fell below ``_DS_MIN``)."""
        n, b = self.n, self.b
        x, s = np.asarray(self.F.value(np.zeros((1, n))))[0] + b, 0.0
        if not np.all(np.isfinite(x)):
            return x, 4
        _, J0 = tangent_operator(self.F, np.zeros(n))
        t = self.unit(np.append(J0.matvec(x) - b, 1.0))    # dx/ds at s = 0 (H_x = -I)
        ds = ds_ok = _DS0
        jumps = 0
        exact = True        # whether t was solved for at (x, s) itself
        # deterministic quasi-random projections (weights of variance 1 / n): feature
        # distances estimate the arclength norm's distances
        c = np.cos(2.0 * np.pi * 0.6180339887498949 * np.outer(
            np.arange(1, _LOOP_FEATURES + 1), np.arange(n))) * np.sqrt(2.0 / n)
        seen: list[np.ndarray] = []
        for _ in range(max_steps):
            got = self.correct(x + ds * t[:n], s + ds * t[n], t, ds)
            if got is not None and self.turn(x, s, t, got) < _MIN_COS:
                got = None          # the corrector crossed to the curve's other side
            if got is not None and self.lu == "dense":
                t_dense = self.dense_tangent(got[0], got[1], t)
                if t_dense is None:
                    got = None      # det's sign changed: a singular point crossed
            if got is None and self.lu == "dense" and not exact:
                # the tangent is the one at the last prediction (its LU), not at (x, s):
                # past a sharp fold it points off the curve, and every shorter step is
                # refused by the turn test; the exact tangent first, then the same step
                exact = True
                self.fresh = False
                te = self.dense_tangent(x, s, t)
                if isinstance(te, np.ndarray):
                    t = te
                    continue
            if got is None:
                # a shorter step; where short steps fail too the curve passes near a
                # singular point: step over it, longer
                if ds > ds_ok / 16 or jumps >= len(_JUMPS):
                    ds *= 0.5
                else:
                    ds, jumps = _JUMPS[jumps] * ds_ok, jumps + 1
                if ds < _DS_MIN:
                    return x, 3
                continue
            xc, sc, k = got
            if sc < 0.0:       # back past s = 0: not on the curve from (F(0) + b, 0)
                return x, 3
            f = np.append(c @ xc, sc)
            old = np.asarray(seen[:-_LOOP_AGE]).reshape(-1, f.size)
            if old.size and np.min(np.sqrt(np.mean((old[:, :-1] - f[:-1]) ** 2, axis=1)
                                           + (old[:, -1] - f[-1]) ** 2)) < _LOOP_NEAR * ds:
                return x, 3            # a closed loop: it would never reach s = 1
            seen.append(f)
            ds_ok, jumps = ds, 0
            if self.tick is not None:
                self.tick(path_s=f"{min(sc, 1.0):.3f}")
            if sc >= 1.0:
                a = (1.0 - s) / (sc - s)        # linear interpolation to s = 1
                return x + a * (xc - x), 0
            # the secant; with exact solves the tangent there, oriented by the last one (a
            # secant across a near-singular point can turn the path back on itself)
            t_new = self.unit(np.append(xc - x, sc - s))
            if self.lu == "dense":
                t_new = t_dense if t_dense is not False else t_new
            else:
                tau = self.bordered_step(xc, sc, t, np.zeros(n), 1.0)
                t_new = self.unit(tau) if np.all(np.isfinite(tau)) else t_new
            t, x, s, exact = t_new, xc, sc, False
            ds = min(_DS_MAX, ds * (1.6 if k <= 2 else 1.0 if k <= 4 else 0.7))
        return x, 2


def polish(F, x, tol, lu="idr", tick=None):
    """Newton on ``F(x) - x``: dense or sparse LU steps (``lu``) or IDR(s) steps,
    backtracking where the residual would grow: (x, ||F(x) - x||, status code)."""
    G, r = _residual(F, x)
    for it in range(_POLISH_ITERS):
        if not np.isfinite(r):
            return x, r, 4
        if r <= tol:
            return x, r, 0
        if tick is not None:
            tick(polish_step=it, residual=f"{r:.1e}")
        if lu == "dense":
            J = _dense_jacobian(F, x)
            J[np.diag_indices_from(J)] -= 1.0
            d = _dense_solve(J, -G)
        elif lu == "sparse":
            import scipy.sparse as sp

            d = _lu_solve(_jacobian(F, x) - sp.identity(x.size), -G)
        else:
            d = _idr_solve(tangent_operator(F, x)[0], -G)[0]
        for a in (1.0, 0.5, 0.25, 0.125, 0.0625):
            xt = x + a * d
            Gt, rt = _residual(F, xt)
            if rt < r:
                break
        else:
            return x, r, 3
        x, G, r = xt, Gt, rt
    return x, r, (0 if r <= tol else 2)


def own_before_wandering(dim):
    """Whether ``method="newton"`` runs :func:`own_paths` before its wandering phase
    (maps of ``_OWN_FIRST_DIM`` to ``_OWN_MAX_DIM`` units), not after it."""
    return _OWN_FIRST_DIM < dim <= _OWN_MAX_DIM


def own_betas(dim):
    """The unfoldings (multiples of the start) of :func:`own_paths` on ``dim`` units."""
    return _OWN_BETAS_FIRST if own_before_wandering(dim) else _OWN_BETAS


def own_paths(p, x0, status, fx, fr, leads=None):
    """A phase of ``method="newton"`` where the gain rule fired, or where wandering left
    most starts on a map of at most ``_OWN_FIRST_DIM`` units, on maps of at most ``_OWN_MAX_DIM``
    units: each start that has not converged follows its own unfolded gain homotopy from
    ``s = 0`` (``b = beta x0``, :func:`own_betas`; a dense or sparse LU, none where only
    IDR(s) would do), polished at ``s = 1``; the phase stops early where most paths fail
    (``_OWN_GIVE_UP``: a map whose paths escape, or one without fixed points). ``status``
    (and ``leads``: the start is its own lead) are updated in place for the starts that
    end at a point; returns the points ``fx`` and residuals ``fr`` with theirs."""
    F, xp = p.F, p.xp
    dim = int(x0.shape[1])
    lu = _solver(F, dim)
    if lu == "idr" or dim > _OWN_MAX_DIM:     # LU solves only, and paths of a few seconds
        return fx, fr
    rows = np.flatnonzero(status != 0)
    got, pts, res = [], [], []
    X = np.asarray(x0, dtype=np.float64)
    failed = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in rows:
            if failed >= _OWN_GIVE_UP and failed > 2 * len(got):
                break       # the paths mostly fail here: the rest keep their status
            xe, r, st = _start_path(F, X[i], p.patience, p.tol, p.unique_tol, lu,
                                    own_betas(dim))
            if st == 0:
                got.append(i)
                pts.append(xe)
                res.append(r)
            else:
                failed += 1
    if got:
        status[got] = 0
        if leads is not None:
            leads[0][got] = got
        fx = fx + [xp.asarray(np.asarray(pts), dtype=x0.dtype)]
        fr = fr + [np.asarray(res, dtype=np.float64)]
    return fx, fr
