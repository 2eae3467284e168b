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
and 6): a secant predictor (no tangent solves) and a Newton corrector on the bordered
system ``[H_x, H_s; t^T] d = -[H; 0]``, solved by GMRES on products with the map's
``tangent`` (no ``dim x dim`` array), the correction cut back until ``||H||`` falls.
The Jacobians ``s D F - I`` along the path have their spectrum around the origin once
``s`` passes ``1 / gain`` (the disk of ``D W`` reaches 1: a random network's fixed
points are unstable), where short GMRES cycles stagnate: the cycle length grows
(doubling, up to ``_RESTART_CAP``) where the corrector fails, before the step is cut.
At ``s = 1`` Newton-Krylov with long GMRES cycles polishes the point to ``tol``
(Kelley 1995, ch. 6; Knoll and Keyes 2004). For an odd map (``F(-x) = -F(x)``, a
network without bias) ``-x`` is a fixed point too and is returned when its residual,
computed, is within ``tol``.

Memory: one GMRES basis of at most ``max(_RESTART_CAP, _POLISH_RESTART)`` vectors of
length ``dim + 1`` (and its ``m x m`` Hessenberg matrix), a few vectors, the points.

References
----------
.. [1] E. L. Allgower and K. Georg, "Introduction to Numerical Continuation Methods",
   SIAM Classics in Applied Mathematics 45, 2003 (Springer 1990).
.. [2] S.-N. Chow, J. Mallet-Paret and J. A. Yorke, "Finding zeroes of maps: homotopy
   methods that are constructive with probability one", Math. Comp. 32, 1978.
.. [3] C. T. Kelley, "Iterative Methods for Linear and Nonlinear Equations", SIAM 1995.
.. [4] D. A. Knoll and D. E. Keyes, "Jacobian-free Newton-Krylov methods: a survey of
   approaches and applications", J. Comput. Phys. 193, 2004.
"""

from __future__ import annotations

import numpy as np

from itermap.threads import blas_limited

from .._checks import check_memory
from ._common import Solution, _progress_bar, _settle
from ._newton_krylov import _residual, add_point, leading_multipliers, tangent_operator

# the unfolding: b = _BETA x0 (a start from sample_states has rms ~0.5 on a tanh network:
# b of rms ~0.25; a smaller b unfolds the pitchforks more sharply, and the path then
# passes near-singular points that stall the corrector)
_BETA = 0.5
# arclength steps (x weighted by 1 / dim, so that rms(x) and s count alike): first, largest
_DS0, _DS_MAX = 0.05, 0.1
# a corrected point is accepted at rms(H) <= _TAU ds, within _CORRECTOR_ITERS steps
_TAU = 5e-3
_CORRECTOR_ITERS = 8
# GMRES cycle of the corrector: first length, cap; relative tolerance of its solves
_RESTART0, _RESTART_CAP = 30, 1000
_CORRECTOR_RTOL = 1e-3
# the polish at s = 1: GMRES cycle length, Newton steps at most
_POLISH_RESTART = 3000
_POLISH_ITERS = 10
_POLISH_CYCLES = 4
_DS_MIN = 1e-5
# steps over a singular point, in units of the last step that succeeded
_JUMPS = (2.0, 4.0)
# a start whose path stops runs once more with this many times the unfolding b
_RETRY_BETA = 2.0
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
    check_memory("method", homotopy_memory(dim, n_starts),
                 f"method='homotopy' on {n_starts} starts of dim {dim} (GMRES basis and "
                 f"starts)")
    bar = _progress_bar(problem.progress, n_starts, dim, n_starts)
    found: list[np.ndarray] = []
    res: list[float] = []
    status = np.zeros(n_starts, dtype=np.int8)
    with bar, blas_limited(1), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(n_starts):
            x0 = np.array(x[i], dtype=np.float64)
            xe, st = _Path(F, _BETA * x0).run(problem.max_iter)
            if st != 0:
                xe, st = _Path(F, _RETRY_BETA * _BETA * x0).run(problem.max_iter)
            if st == 0:
                xe, r, st = polish(F, xe, problem.tol)
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


def _cycle_cap(n, cap):
    """The longest GMRES cycle on a system of size ``n``: ``cap``, at most ``n / 3``
    (at least 20): the basis never grows to a ``dim x dim`` array."""
    return int(min(cap, max(20, n // 3)))


def homotopy_memory(dim, n_starts, itemsize=8):
    """Bytes the homotopy holds beyond the map: the longest GMRES basis (``m + 1``
    vectors of ``dim + 1``, its Hessenberg matrix), 30 work vectors, starts and points."""
    m = max(_cycle_cap(dim + 1, _RESTART_CAP), _cycle_cap(dim, _POLISH_RESTART))
    return float((m + 1) * (dim + 1) * itemsize + 2 * m * (m + 1) * itemsize
                 + 30 * (dim + 1) * itemsize + 3 * n_starts * dim * itemsize)


class _Path:
    """The zero curve of ``H(x, s) = F(s x) + (1 - s) b - x`` from ``s = 0`` to 1."""

    def __init__(self, F, b):
        self.F, self.b = F, b
        self.n = b.size
        self.w = 1.0 / self.n               # weight of x in the arclength norm
        self.m = _RESTART0                  # the corrector's GMRES cycle
        self.cap = _cycle_cap(self.n + 1, _RESTART_CAP)

    def H(self, x, s):
        return np.asarray(self.F.value((s * x)[None, :]))[0] + (1.0 - s) * self.b - x

    def rms(self, x, s):
        return float(np.linalg.norm(self.H(x, s))) / np.sqrt(self.n)

    def unit(self, v):
        return v / np.sqrt(self.w * float(v[:-1] @ v[:-1]) + float(v[-1]) ** 2)

    def bordered_step(self, x, s, t, h):
        """GMRES on ``[s J - I, J x - b; w t_x^T, t_s] d = -[h; 0]``, J = D F(s x)."""
        from scipy.sparse.linalg import LinearOperator, gmres

        n = self.n
        _, J = tangent_operator(self.F, s * x)
        hs = J.matvec(x) - self.b
        tw = self.w * t[:n]

        def mv(v):
            out = np.empty(n + 1)
            out[:n] = s * J.matvec(v[:n]) - v[:n] + v[n] * hs
            out[n] = tw @ v[:n] + t[n] * v[n]
            return out

        A = LinearOperator((n + 1, n + 1), matvec=mv, dtype=np.float64)
        # one cycle; two at the cap (a cycle is at most dim / 3: no dim x dim basis)
        d, _ = gmres(A, -np.append(h, 0.0), rtol=_CORRECTOR_RTOL,
                     restart=min(self.m, self.cap), maxiter=1 + (self.m >= self.cap))
        return d

    def correct(self, x, s, t, ds):
        """Newton on the bordered system from the predicted ``(x, s)``; the corrected
        point and the corrector steps taken, or None where it does not converge."""
        r0 = r = self.rms(x, s)
        for k in range(_CORRECTOR_ITERS + 1):
            if r <= _TAU * ds:
                return x, s, k
            if k == _CORRECTOR_ITERS or not np.isfinite(r) or r > 4.0 * r0:
                return None
            d = self.bordered_step(x, s, t, self.H(x, s))
            if not np.all(np.isfinite(d)):
                return None
            # the correction cut back until the residual falls (GMRES stopped short
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
        for _ in range(max_steps):
            got = self.correct(x + ds * t[:n], s + ds * t[n], t, ds)
            if got is None:
                # a longer GMRES cycle first, then a shorter step; where short steps fail
                # too the curve passes near a singular point: step over it, longer
                if self.m < self.cap:
                    self.m, ds = min(2 * self.m, self.cap), 0.8 * ds
                elif ds > ds_ok / 16 or jumps >= len(_JUMPS):
                    ds *= 0.5
                else:
                    ds, jumps = _JUMPS[jumps] * ds_ok, jumps + 1
                if ds < _DS_MIN:
                    return x, 3
                continue
            xc, sc, k = got
            ds_ok, jumps = ds, 0
            if sc >= 1.0:
                a = (1.0 - s) / (sc - s)        # linear interpolation to s = 1
                return x + a * (xc - x), 0
            t = self.unit(np.append(xc - x, sc - s))          # the secant
            x, s = xc, sc
            ds = min(_DS_MAX, ds * (1.6 if k <= 2 else 1.0 if k <= 4 else 0.7))
            if k <= 2:
                self.m = max(_RESTART0, int(self.m / 1.5))
        return x, 2


def polish(F, x, tol):
    """Newton-Krylov on ``F(x) - x`` with long GMRES cycles (``_POLISH_RESTART``),
    backtracking where the residual would grow: (x, ||F(x) - x||, status code)."""
    from scipy.sparse.linalg import gmres

    G, r = _residual(F, x)
    for _ in range(_POLISH_ITERS):
        if not np.isfinite(r):
            return x, r, 4
        if r <= tol:
            return x, r, 0
        A, _ = tangent_operator(F, x)
        rtol = max(1e-8, min(1e-3, r / np.sqrt(x.size)))
        d, _ = gmres(A, -G, rtol=rtol, restart=_cycle_cap(x.size, _POLISH_RESTART),
                     maxiter=_POLISH_CYCLES)
        for a in (1.0, 0.5, 0.25, 0.125, 0.0625):
            xt = x + a * d
            Gt, rt = _residual(F, xt)
            if rt < r:
                break
        else:
            return x, r, 3
        x, G, r = xt, Gt, rt
    return x, r, (0 if r <= tol else 2)
