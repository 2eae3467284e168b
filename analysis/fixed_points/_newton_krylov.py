"""Matrix-free Newton-Krylov for fixed points of large maps (``method="newton-krylov"``).

Each start runs Newton on ``G(x) = F^p(x) - x``; the Newton systems
``(D(F^p)(x) - I) dx = -G`` are solved by IDR(s) (:func:`itermap.linalg.idrs`) on
products with the map's sparse Jacobian (``Map.sparse_jacobian``) or its exact
``tangent`` (Knoll and Keyes, J. Comput. Phys. 2004), so no ``dim x dim`` array is
formed. A complete or incomplete LU factorization of
``D F - I``, from the map's own sparse (approximate) Jacobian
(``Map.approximate_jacobian``: a network with sparse weights, function blocks included;
O(nnz) memory), preconditions it (on the right) up to ``_ILU_MAX_NNZ`` nonzeros; larger
maps run unpreconditioned (an incomplete factorisation of a random sparse pattern fills
in). Where ``D F - I`` is indefinite (its spectrum surrounds the origin: a random
network's fixed points are unstable) restarted GMRES stagnates until its basis holds
``O(dim^0.75)`` vectors; IDR(s) takes about as many products with ``3 s + 4`` vectors
held. Starts run one after the other,
each deflated (Farrell, Birkisson and Funke 2015) by the points the earlier ones
found, so repeated convergence to one point becomes convergence to new ones.

Memory: the map (O(nnz)), the ILU factors (a few times nnz, small maps), and IDR(s)'s
``3 s + 4`` vectors of length ``dim`` for one start at a time.

References
----------
.. [1] D. A. Knoll and D. E. Keyes, "Jacobian-free Newton-Krylov methods: a survey
   of approaches and applications", J. Comput. Phys. 193, 2004.
.. [2] S. C. Eisenstat and H. F. Walker, "Choosing the forcing terms in an inexact
   Newton method", SIAM J. Sci. Comput. 17(1), 1996.
.. [3] M. B. van Gijzen and P. Sonneveld, "Algorithm 913: An elegant IDR(s) variant that
   efficiently exploits biorthogonality properties", ACM Trans. Math. Softw. 38(1), 2011.
.. [4] P. E. Farrell, A. Birkisson and S. W. Funke, "Deflation techniques for
   finding distinct solutions of nonlinear partial differential equations",
   SIAM J. Sci. Comput. 37(4), 2015.
"""

from __future__ import annotations

import numpy as np

from itermap.linalg import idrs
from itermap.threads import blas_limited

from .._checks import check_memory
from ._common import Solution, _progress_bar, _Running, _settle, _with_orbits
from ._deflation import deflated_step, log_deflation
from ._q import _lbfgs_q

# IDR(s)'s shadow space and its products per Newton step (at most dim +
# _PRODUCTS_EXTRA, as the homotopy's solves); the forcing terms: Eisenstat and Walker's choice 2,
# eta_k = 0.9 (||G_k|| / ||G_k-1||)^2, capped at _ETA and safeguarded as in Kelley (1995,
# sec. 6.3): loose solves far from a point (where an exact Newton step is no better),
# tight ones as the residual falls
_IDR_S = 8
_PRODUCTS_EXTRA = 1000
_ETA = 0.5
# Armijo constant and the step lengths tried, longest first
_ARMIJO = 1e-4
_ALPHAS = (1.0, 0.5, 0.25, 0.125, 0.0625)
# ILU of the sparse Newton matrix: drop tolerance and fill factor; rebuilt every
# _ILU_EVERY Newton steps (the Jacobian changes slowly near a point)
_ILU_DROP = 1e-4
_ILU_FILL = 4.0
_ILU_EVERY = 3
_ILU_MAX_NNZ = 20_000
# the complete sparse LU instead, where its fill at worst (12 (dim + 1)^2 bytes) fits
# this budget (dim <= 2363): the Newton steps are then exact
_LU_BYTES = 64 * 2**20
# deflation radius: a found point repels within this fraction of the starts' mean norm
_DEFLATE_FRAC = 0.1
# a start whose (deflated) residual has not halved within this many Newton steps stalls
_STALL_ITERS = 10
# wandering step, in units of the map's range (as the dense search's)
_WANDER_STEP = 0.6
# multipliers computed at each point (ARPACK): the stability is exact, n_unstable is
# counted among these
_KRYLOV_EIGS = 6
_ARPACK_WORK = 4e6


def newton_krylov(problem) -> Solution:
    """Matrix-free Newton-Krylov from each start in turn, deflated by the points found."""
    x, F = problem.x, problem.F
    n_starts, dim = int(x.shape[0]), int(x.shape[1])
    check_memory("method", krylov_memory(problem.map, n_starts, dim),
                 f"method='newton-krylov' on {n_starts} starts of dim {dim} (IDR(s) vectors, "
                 f"ILU factors and starts)")
    bar = _progress_bar(problem.progress, n_starts, dim, n_starts, problem.stage)
    # IDR(s) works on single vectors: threaded BLAS only adds contention
    with bar, blas_limited(1), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        P, R, status, _ = krylov_search(F, np.asarray(x), tol=problem.tol,
                                        max_iter=problem.max_iter,
                                        unique_tol=problem.unique_tol, bar=bar,
                                        q_steps=problem.q_steps)
        if F.p > 1 and len(P):
            P, R = _with_images(F, P, R, problem.tol, problem.unique_tol)
        _settle(bar)
    # the points in the starts' dtype, as the other methods give them (Newton ran in float64)
    return Solution(points=P.astype(x.dtype, copy=False), residuals=R, status=status,
                    jacobians=None, eigenvalues=leading_multipliers(F, P, _KRYLOV_EIGS))


def _with_images(F, P, R, tol, unique_tol):
    """The points with the rest of their orbits, ``F(x), ..., F^{p-1}(x)`` (each solves
    ``F^p = x`` too, and the docs promise every point of an orbit): each image polished
    by undeflated Newton-Krylov and kept where it is a new point."""
    found, res = list(P), list(R)
    y, _ = _with_orbits(F, np, P, R)
    for yi in y[len(P):]:
        xe, r, st = newton_krylov_start(F, np.array(yi, dtype=np.float64), tol=tol,
                                        max_iter=_IMAGE_ITERS, found=[], radius=1.0)
        if st == 0:
            add_point(found, res, xe, r, unique_tol)
    return np.asarray(found).reshape(-1, P.shape[1]), np.asarray(res, dtype=np.float64)


# Newton-Krylov steps that polish an orbit's image (it starts within |J| tol of a point)
_IMAGE_ITERS = 10


def krylov_memory(map_, n_starts, dim, itemsize=8):
    """Bytes the Newton-Krylov search holds beyond the map: IDR(s)'s vectors, the sparse
    Jacobian (two copies of the weights' nonzeros while it is built), the ILU factors
    (``_ILU_FILL`` times the nonzeros, values and indices), the starts and the points
    found."""
    nnz = map_.jacobian_nnz          # None: the map gives no sparse Jacobian
    ilu = 0.0 if nnz is None or nnz > _ILU_MAX_NNZ else (_ILU_FILL + 1.0) * nnz * (itemsize + 4) * 2
    ilu += 0.0 if nnz is None else 2.0 * 12.0 * nnz
    if nnz is not None and _lu_fits(dim):
        ilu = lu_memory(dim, nnz)
    return float((3 * _IDR_S + 28) * dim * 8 + ilu + 3.0 * n_starts * dim * itemsize)


def sparse_jacobian(map_, x, u, max_nnz=None):
    """The map's own sparse ``D F(x)`` (``Map.sparse_jacobian``: the map knows its leak,
    input block and function blocks) as float64 SciPy CSR; None where it gives none,
    one of more than ``max_nnz`` nonzeros, or one off the host."""
    nnz = map_.jacobian_nnz
    if nnz is None or (max_nnz is not None and nnz > max_nnz):
        return None
    return _host_csr64(map_.sparse_jacobian(x, u))


def _host_csr64(J):
    """A map's sparse Jacobian as float64 SciPy CSR; None for none or one off the host."""
    import scipy.sparse as sp

    return J.astype(np.float64).tocsr() if J is not None and sp.issparse(J) else None


def _lu_fits(dim):
    """Whether a complete LU fill of a (bordered) system of ``dim`` units (``12 (dim +
    1)^2`` bytes: values and row indices) fits ``_LU_BYTES``."""
    return 12.0 * (dim + 1) ** 2 <= _LU_BYTES


def lu_memory(dim, nnz):
    """Bytes of the sparse LU at its complete fill and the Jacobian's copies of the
    ``nnz`` weights."""
    return 12.0 * (dim + 1) ** 2 + 8.0 * 12.0 * nnz


def uses_lu(F, dim):
    """Whether ``F``'s Newton systems get a sparse LU: period 1, a map with a sparse
    Jacobian (``Map.jacobian_nnz``), and a complete fill within ``_LU_BYTES``
    (:func:`_lu_fits`)."""
    return F.p == 1 and _lu_fits(dim) and F.map.jacobian_nnz is not None


def _preconditioner(F, x):
    """A preconditioner of ``D F(x) - I`` (period 1), or None: from the map's
    ``Map.approximate_jacobian`` (its sparse Jacobian; a network with function blocks
    gives one too), the complete sparse LU where its fill fits ``_LU_BYTES`` (IDR(s) then
    converges in one step where the matrix is exact), else an ILU up to
    ``_ILU_MAX_NNZ`` nonzeros."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import LinearOperator, spilu, splu

    if F.p != 1:
        return None
    lu = _lu_fits(x.size)
    J = _host_csr64(F.map.approximate_jacobian(x, F.u, max_nnz=None if lu else _ILU_MAX_NNZ))
    if J is None:
        return None
    A = (J - sp.identity(x.size, format="csr")).tocsc()
    try:
        fac = splu(A) if lu else spilu(A, drop_tol=_ILU_DROP, fill_factor=_ILU_FILL)
    except RuntimeError:          # exactly singular factor: run unpreconditioned
        return None
    return LinearOperator(A.shape, matvec=fac.solve, dtype=np.float64)


def tangent_operator(F, x):
    """``(D(F^p)(x) - I, D(F^p)(x))`` as scipy LinearOperators: products with the map's own
    sparse Jacobian (``Map.sparse_jacobian``, built once: a CSR product, no Python per
    product) at period 1 where it gives one, else ``map.tangent`` along the orbit (one
    tangent product per step of the period)."""
    from scipy.sparse.linalg import LinearOperator, aslinearoperator

    n = x.size
    J = sparse_jacobian(F.map, x, F.u) if F.p == 1 else None
    if J is not None:
        return (LinearOperator((n, n), matvec=lambda v: J @ v - v, dtype=np.float64),
                aslinearoperator(J))
    u = None if F.u is None else np.asarray(F.u)[None, :]
    orbit = [x[None, :]]
    for _ in range(F.p - 1):
        orbit.append(np.asarray(F.map.step(orbit[-1], u)))

    def jv(v):
        w = np.asarray(v, dtype=x.dtype).reshape(1, -1, 1)
        for y in orbit:
            w = np.asarray(F.map.tangent(y, w, u))
        return w.reshape(-1)

    return (LinearOperator((n, n), matvec=lambda v: jv(v) - np.ravel(v), dtype=x.dtype),
            LinearOperator((n, n), matvec=jv, dtype=x.dtype))


def _residual(F, x):
    G = np.asarray(F.value(x[None, :]))[0] - x
    return G, float(np.linalg.norm(G))


def newton_krylov_start(F, x, *, tol, max_iter, found, radius, wander_step=None,
                        tick=None):
    """Newton-Krylov from one start, deflated by ``found`` (a list of points).

    Where no step lowers the deflated residual enough (or it has not halved in
    ``_STALL_ITERS`` steps) the start *wanders*, as the dense search does: the
    Newton step cut to max-norm ``wander_step``, taken whatever it does to the
    residual, until a step passes Armijo again; ``max_iter`` bounds all steps.

    Returns (x, ||G(x)||, status code), the codes those of ``FixedPoints.status``:
    0 converged, 2 max_iter reached, 3 stalled (no wandering asked for), 4
    non-finite residual. ``tick`` (a :class:`._common._Running`) is told each step and
    residual.
    """
    G, r = _residual(F, x)
    M = None
    pts = np.asarray(found) if found else None
    best, best_it = np.inf, 0
    eta, r_old = _ETA, None
    for it in range(max_iter):
        if not np.isfinite(r):
            return x, r, 4
        if r <= tol:
            return x, r, 0
        if tick is not None:
            tick(newton_step=it, residual=f"{r:.1e}")
        A, _ = tangent_operator(F, x)
        if it % _ILU_EVERY == 0:
            M = _preconditioner(F, x)
        eta = _forcing(eta, r, r_old, tol)
        r_old = r
        dx = _newton_step(A, M, -G, eta)
        if not np.all(np.isfinite(dx)):
            return x, r, 3
        logm, grad = log_deflation(x[None, :], pts, radius)
        d = deflated_step(dx[None, :], grad)[0] * dx
        target = np.exp(logm[0]) * r            # the deflated residual ||M G||
        if target <= 0.5 * best:
            best, best_it = target, it
        stalled = it - best_it >= _STALL_ITERS
        moved = False
        for a in (() if stalled else _ALPHAS):
            xt = x + a * d
            Gt, rt = _residual(F, xt)
            lt, _ = log_deflation(xt[None, :], pts, radius)
            if np.isfinite(rt) and np.exp(lt[0]) * rt <= (1.0 - _ARMIJO * a) * target:
                x, G, r, moved = xt, Gt, rt, True
                break
            if rt <= tol:          # a zero of G closer than the deflated test allows
                return xt, rt, 0
        if moved:
            continue
        if wander_step is None:
            return x, r, 3
        # wander: the step cut to wander_step (max norm), accepted whatever it does
        xt = x + min(1.0, wander_step / max(float(np.max(np.abs(d))), 1e-300)) * d
        Gt, rt = _residual(F, xt)
        if not np.isfinite(rt):
            return x, r, 3
        x, G, r = xt, Gt, rt
        best, best_it = np.exp(log_deflation(x[None, :], pts, radius)[0][0]) * r, it
    return x, r, (0 if r <= tol else 2)


def _newton_step(A, M, rhs, rtol):
    """``A^-1 rhs`` to ``rtol`` by IDR(s), right-preconditioned by ``M`` (or None)."""
    op = A.matvec if M is None else (lambda v: A.matvec(M.matvec(v)))
    y = idrs(op, rhs, s=_IDR_S, rtol=rtol, max_products=rhs.size + _PRODUCTS_EXTRA).x
    return y if M is None else M.matvec(y)


def _forcing(eta, r, r_old, tol):
    """The next GMRES tolerance (Eisenstat and Walker's choice 2, Kelley's safeguards)."""
    if r_old is None:
        return _ETA
    new = 0.9 * (r / r_old) ** 2
    if 0.9 * eta * eta > 0.1:               # do not tighten faster than the residual falls
        new = max(new, 0.9 * eta * eta)
    return float(min(_ETA, max(new, 0.5 * tol / r)))


def add_point(found, res, x, r, unique_tol):
    """``x`` (residual ``r``) among the distinct points ``found`` (their residuals ``res``),
    in place: it joins the first within ``unique_tol`` (the lower residual represents the
    group) or is appended. Returns its group's index."""
    for j, p in enumerate(found):
        if np.linalg.norm(x - p) <= unique_tol:
            if r < res[j]:
                found[j], res[j] = x, r
            return j
    found.append(x)
    res.append(r)
    return len(found) - 1


def krylov_search(F, x, *, tol, max_iter, unique_tol, bar=None, q_steps=0):
    """Newton-Krylov from every row of ``x`` (host NumPy), deflated start by start.

    Returns (points, residuals, status per start, index of each start's point or -1).
    A start that converges within ``unique_tol`` of a point found before (deflation
    makes that rare) joins it.
    """
    n_starts, dim = x.shape
    scale = float(np.mean(np.linalg.norm(x, axis=1))) or 1.0
    radius = _DEFLATE_FRAC * scale
    # the wandering step: as the dense search's, 0.6 times the map's range
    img = np.max(np.abs(np.asarray(F.value(x[: min(n_starts, 8)]))), axis=1)
    img = img[np.isfinite(img)]
    wander = _WANDER_STEP * (float(np.mean(img)) if img.size else 1.0)
    # a few L-BFGS steps on q (matrix-free: one vjp each) bring the starts nearer points
    if q_steps:
        x, _, _ = _lbfgs_q(F, x, np, tol=1e-3, max_iter=q_steps)
        x = np.asarray(x, dtype=np.float64)
    found, res = [], []
    status = np.zeros(n_starts, dtype=np.int8)
    which = np.full(n_starts, -1, dtype=np.int64)
    tick = None if bar is None else _Running(bar, found)
    for i in range(n_starts):
        xi = np.array(x[i], dtype=np.float64)
        # deflated, a start that finds no new point stalls soon (no wandering) ...
        xe, r, st = newton_krylov_start(F, xi, tol=tol, max_iter=max_iter, found=found,
                                        radius=radius, wander_step=None if found else wander,
                                        tick=tick)
        if st != 0 and found:
            # ... and runs again undeflated (wandering if need be): it may still lead to
            # a known point
            xe, r, st = newton_krylov_start(F, xi, tol=tol, max_iter=max_iter, found=[],
                                            radius=radius, wander_step=wander, tick=tick)
        status[i] = st
        if st == 0:
            which[i] = add_point(found, res, xe, r, unique_tol)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(points=len(found), refresh=False)
    P = np.asarray(found).reshape(-1, dim)
    return P, np.asarray(res, dtype=np.float64), status, which


def leading_multipliers(F, P, k_max):
    """The ``k_max`` multipliers of largest modulus at each point (ARPACK on the tangent;
    a dense eigensolver on the tangent's columns where ``dim <= 64``).

    ARPACK gets ``_ARPACK_WORK / dim`` restarts, at least 20 (its default, ``10 dim``,
    runs for hours on a large map whose spectrum is a disk with no gap); the multipliers
    it has not converged by then are NaN, and such a point is not called stable.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, eigs

    n = P.shape[1]
    # a map of fewer than k_max units has that many multipliers (no zero padding)
    ev = np.zeros((P.shape[0], min(k_max, n)), dtype=np.complex128)
    for j, p in enumerate(P):
        _, J = tangent_operator(F, p)
        if n <= 64:
            vals = np.linalg.eigvals(J.matmat(np.eye(n)))
        else:
            try:
                vals = eigs(J, k=min(k_max, n - 2), which="LM", return_eigenvectors=False,
                            tol=1e-12, ncv=min(n, 48),
                            maxiter=max(20, int(_ARPACK_WORK / n)))
            except ArpackNoConvergence as err:
                vals = np.full(k_max, np.nan + 0j)
                vals[:err.eigenvalues.size] = err.eigenvalues
        vals = vals[np.argsort(-np.abs(vals), kind="stable")][:k_max]
        ev[j, :vals.size] = vals
    return ev
