"""IDR(s): a short-recurrence Krylov solver for large nonsymmetric systems.

The Newton systems ``(D F - I) dx = -G`` of a large random network at its fixed points
are the hard case for restarted GMRES: the spectrum of ``D F - I`` is a disk that
surrounds the origin, so GMRES plateaus until its basis holds ``O(n^0.75)`` vectors, and
orthogonalising that basis costs ``O(n m^2)``. IDR(s) needs about as many products with
the matrix but keeps only ``3 s + 4`` vectors, so each product costs ``O(s n)`` more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .._core._checks import check_int, check_real, check_real_array, one_namespace
from .._core._rng import as_rng
from .._core._types import RngLike

__all__ = ["IDRSolution", "idrs"]

# "maintaining the convergence" (Sleijpen and van der Vorst 1995): omega is enlarged
# where the residual and its image are nearly orthogonal
_KAPPA = 0.7
# restarts from the true residual b - A x when the recursive one has drifted from it
_MAX_RESTARTS = 3
# the recursive residual is replaced by the true one where it has fallen this far below
# its peak since the last replacement
_REPLACE = 1e-2


class IDRSolution(NamedTuple):
    """What :func:`idrs` returns.

    Attributes
    ----------
    x : ndarray
        The approximate solution.
    residual : float
        ``||b - A x|| / ||b||``, recomputed from ``x`` (not the recursive estimate).
    products : int
        Products with ``A`` taken.
    converged : bool
        Whether ``residual <= rtol``.

    Examples
    --------
    >>> from itermap.linalg import idrs
    >>> x, residual, products, converged = idrs(np.diag([2.0, 4.0]), np.ones(2), s=1)
    >>> x, converged
    (array([0.5 , 0.25]), True)
    """

    x: np.ndarray
    residual: float
    products: int
    converged: bool


def _as_matvec(A: Any, n: int) -> Callable[[np.ndarray], np.ndarray]:
    """``v -> A v`` for a callable, a LinearOperator, a sparse matrix or an array (checked:
    real, finite, of shape (n, n)); the products' shape is checked on the first one."""
    import scipy.sparse as sp

    if isinstance(A, np.ndarray | list | tuple) or type(A).__module__.startswith(
            ("numpy", "array_api_strict")):
        A = check_real_array("A", A, ndim=2)
    if not (callable(A) or hasattr(A, "matvec") or sp.issparse(A) or isinstance(A, np.ndarray)):
        raise TypeError(f"A must be a callable, a LinearOperator or a matrix, "
                        f"not {type(A).__name__}")
    shape = getattr(A, "shape", None)
    if shape is not None and tuple(shape) != (n, n):
        raise ValueError(f"A has shape {tuple(shape)}, expected ({n}, {n}) for b of length {n}")
    if hasattr(A, "matvec"):
        return A.matvec
    if not callable(A):
        return lambda v: A @ v
    checked: list[bool] = []

    def product(v):
        out = np.asarray(A(v))
        if not checked:
            if out.shape != (n,):
                raise ValueError(f"A: its product with a vector of shape ({n},) has shape "
                                 f"{out.shape}, expected ({n},)")
            checked.append(True)
        return out
    return product


def idrs(A: Any, b: np.ndarray, *, x0: np.ndarray | None = None, s: int = 8,
         rtol: float = 1e-8, max_products: int | None = None,
         rng: RngLike = 0) -> IDRSolution:
    """Solve ``A x = b`` by IDR(s) with biorthogonal residuals.

    Each cycle of ``s + 1`` products pushes the residual into a sequence of nested
    subspaces (Sonneveld and van Gijzen 2008); the variant here keeps the new residuals
    biorthogonal to the ``s`` shadow vectors (van Gijzen and Sonneveld 2011), and the
    minimal-residual step is enlarged where it would nearly stall ("maintaining the
    convergence", Sleijpen and van der Vorst 1995). The recursive residual is replaced
    by ``b - A x`` each time it has fallen a hundredfold (van der Vorst and Ye 2000), and
    checked against it at the end; where they still differ IDR(s) restarts from ``x``.

    Parameters
    ----------
    A : callable, LinearOperator, sparse matrix or ndarray
        The matrix, or its product ``v -> A v`` on 1-D arrays.
    b : ndarray, shape (n,)
        The right-hand side.
    x0 : ndarray, optional
        The first guess (zeros by default).
    s : int
        Dimension of the shadow space: memory is ``3 s + 4`` vectors; larger ``s`` takes
        fewer products on hard (complex, indefinite) spectra, at ``O(s n)`` work each.
    rtol : float
        Relative tolerance on ``||b - A x|| / ||b||``.
    max_products : int, optional
        Products with ``A`` at most (``max(20 n, 1000)`` by default).
    rng : int, Generator or None
        Seeds the shadow space: the same seed gives the same iterates.

    Returns
    -------
    IDRSolution
        ``x``, its relative residual, the products taken and whether it converged.

    Raises
    ------
    ValueError
        ``b`` or ``x0`` not 1-D or not finite, ``A`` not of shape (n, n) (or its product
        not of shape (n,)), ``s`` or ``max_products`` below 1, ``rtol`` outside (0, 1).
    TypeError
        ``A`` neither callable nor a matrix; ``b``, ``x0``, ``s``, ``rtol`` or
        ``max_products`` of the wrong type; arrays from different libraries.

    Examples
    --------
    >>> from itermap.linalg import idrs
    >>> A = np.array([[3.0, 1.0], [-1.0, 2.0]])
    >>> sol = idrs(A, np.array([1.0, 0.0]), s=2, rtol=1e-12)
    >>> bool(sol.converged), np.round(sol.x, 6)
    (True, array([0.285714, 0.142857]))

    References
    ----------
    .. [1] P. Sonneveld and M. B. van Gijzen, "IDR(s): a family of simple and fast
       algorithms for solving large nonsymmetric systems of linear equations", SIAM J.
       Sci. Comput. 31(2), 2008.
    .. [2] M. B. van Gijzen and P. Sonneveld, "Algorithm 913: An elegant IDR(s) variant
       that efficiently exploits biorthogonality properties", ACM Trans. Math. Softw.
       38(1), 2011.
    .. [3] G. L. G. Sleijpen and H. A. van der Vorst, "Maintaining convergence
       properties of BiCGstab methods in finite precision arithmetic", Numer.
       Algorithms 10, 1995.
    .. [4] H. A. van der Vorst and Q. Ye, "Residual replacement strategies for Krylov
       subspace iterative methods for the convergence of true residuals", SIAM J. Sci.
       Comput. 22(3), 2000.
    """
    one_namespace(A=A, b=b, x0=x0)
    b = check_real_array("b", b, ndim=1)
    n = b.size
    matvec = _as_matvec(A, n)
    s = min(check_int("s", s, 1), n)
    rtol = check_real("rtol", rtol, positive=True)
    if rtol >= 1.0:
        raise ValueError(f"rtol must be < 1, got {rtol!r}")
    budget = max(20 * n, 1000) if max_products is None else check_int("max_products",
                                                                       max_products, 1)
    dtype = np.float64
    x = np.zeros(n, dtype)
    if x0 is not None:
        x = check_real_array("x0", x0, ndim=1)
        if x.shape != (n,):
            raise ValueError(f"x0 has shape {x.shape}, expected ({n},) as b")
    nb = float(np.linalg.norm(b))
    if nb == 0.0:
        return IDRSolution(np.zeros(n, dtype), 0.0, 0, True)
    shadow = np.linalg.qr(as_rng(rng).standard_normal((n, s)))[0].T.copy()
    if x0 is None:
        r, products = b.astype(dtype), 0
    else:
        r, products = b - np.asarray(matvec(x)), 1
    for _ in range(_MAX_RESTARTS + 1):
        rel = float(np.linalg.norm(r)) / nb
        if rel <= rtol or products >= budget or not np.isfinite(rel):
            break
        with np.errstate(over="ignore", invalid="ignore"):   # overflow: handled in _cycles
            x, products = _cycles(matvec, b, x, r, shadow, rtol * nb, products, budget)
        r = b - np.asarray(matvec(x))       # the true residual: restart where it drifted
        products += 1
    rel = float(np.linalg.norm(r)) / nb
    return IDRSolution(x, rel, products, bool(rel <= rtol))


def _cycles(matvec, b, x, r, P, tol, products, budget):
    """IDR(s) cycles from ``x`` (residual ``r``) until the recursive residual is below
    ``tol``, a breakdown, or ``budget`` products: (x, products). The recursive residual
    is replaced by ``b - A x`` at the end of a cycle once it has fallen ``_REPLACE``
    below its peak since the last replacement (van der Vorst and Ye 2000): rounding in
    the updates of ``x`` while the residual was large then no longer separates the two."""
    s, n = P.shape
    G = np.zeros((s, n), x.dtype)       # A U, the new directions' images
    U = np.zeros((s, n), x.dtype)
    M = np.eye(s, dtype=x.dtype)        # P G^T, lower triangular
    omega = 1.0
    nr = float(np.linalg.norm(r))
    peak, kept = nr, x.copy()
    while nr > tol and products < budget:
        kept = x.copy()
        f = P @ r
        for k in range(s):
            # the new direction, in the next subspace: v = r - G c with P v = 0
            c = np.linalg.solve(M[k:, k:], f[k:])
            v = r - c @ G[k:]
            U[k] = c @ U[k:] + omega * v
            G[k] = matvec(U[k])
            products += 1
            # biorthogonalise: P_i G_k = 0 for i < k
            for i in range(k):
                alpha = (P[i] @ G[k]) / M[i, i]
                G[k] -= alpha * G[i]
                U[k] -= alpha * U[i]
            M[k:, k] = P[k:] @ G[k]
            if M[k, k] == 0.0 or not np.isfinite(M[k, k]):
                return kept, products            # breakdown: restart from the cycle's start
            beta = f[k] / M[k, k]
            r -= beta * G[k]
            x += beta * U[k]
            nr = float(np.linalg.norm(r))
            peak = max(peak, nr)
            if not np.isfinite(nr) or not np.isfinite(beta):
                return kept, products
            if nr <= tol or products >= budget:
                return x, products
            f[k + 1:] -= beta * M[k + 1:, k]
        # the minimal-residual step into the next subspace
        t = np.asarray(matvec(r))
        products += 1
        tt, tr = float(t @ t), float(t @ r)
        if tt == 0.0 or not np.isfinite(tt):
            return kept, products
        omega = tr / tt
        rho = abs(tr) / (np.sqrt(tt) * nr)
        if rho < _KAPPA:
            omega *= _KAPPA / max(rho, 1e-300)
        x += omega * r
        r -= omega * t
        nr = float(np.linalg.norm(r))
        if not np.isfinite(nr):         # an overflow (a singular system): the cycle's start
            return kept, products
        peak = max(peak, nr)
        if nr < _REPLACE * peak and nr > tol:
            r[:] = b - np.asarray(matvec(x))
            products += 1
            nr = peak = float(np.linalg.norm(r))
    return x, products
