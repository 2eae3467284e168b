"""Large dense Newton systems solved in mixed precision: the LU factorization in float32,
the solution refined in float64 (Buttari, Dongarra, Langou et al. 2007).

The LU is the search's cost at a few hundred units and more (``2/3 n^3`` flops a start
and iteration); in float32 it runs about twice as fast (1.6-1.9x measured, with the
refinement, at n = 300 to 1000 on one core), and each refinement step costs ``4 n^2``.
A row whose refinement does not reach ``_REL`` in ``_STEPS`` steps (a system too
ill-conditioned for float32) is solved again in float64, so the answer is the float64
one to within ``_REL`` relative residual either way. The Levenberg-Marquardt step's
normal matrix ``A^T A + lam I`` is formed and Cholesky-factorized in float32 the same
way, and refined on ``A`` in float64 (1.5-2x).

References
----------
.. [1] A. Buttari, J. Dongarra, J. Langou, J. Langou, P. Luszczek and J. Kurzak,
   "Mixed precision iterative refinement techniques for the solution of dense linear
   systems", Int. J. High Perform. Comput. Appl. 21(4), 2007.
"""

from __future__ import annotations

import numpy as np

# float64 NumPy systems of at least this order take the mixed-precision path (one core:
# 1.1x at n = 128, 1.4-1.7x at 200-256, 1.6-1.9x at 300-1000; kept above the N = 200
# grid, whose points were counted with float64 solves)
MIXED_DIM = 300
# the refinement stops once ||A x - b|| <= _REL ||b||, after _STEPS steps at most: a
# Newton step that exact keeps the iteration's quadratic rate down to the tolerances the
# search uses (a residual of 1e-4 goes to 1e-13, not 1e-16, by the step's own error);
# one refinement step usually reaches it (asking 1e-12 cost 4-7 % more at n = 300-1000)
_REL = 1e-9
_STEPS = 4


def applies(A) -> bool:
    """Whether :func:`mixed_solve` is the solve for the stack ``A``."""
    return isinstance(A, np.ndarray) and A.dtype == np.float64 and A.ndim == 3 \
        and A.shape[-1] >= MIXED_DIM


def mixed_solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A[i]^{-1} b[i]`` for float64 ``A`` (k, n, n) and ``b`` (k, n); NaN rows where
    ``A[i]`` is singular in float64."""
    from scipy.linalg import lapack

    out = np.empty_like(b)
    # row by row, each factor used while it is in cache (factorizing all rows first, then
    # refining, ran 1.1-1.5x slower at n = 300-400)
    for i in range(A.shape[0]):
        Ai = A[i]
        # Ai.T is Fortran-ordered without a copy: factor A^T, solve with trans=1
        lu, piv, info = lapack.sgetrf(Ai.T.astype(np.float32), overwrite_a=1)
        x = None
        if info == 0:
            x = _refined(lambda v, Ai=Ai: Ai @ v, lambda r, lu=lu, piv=piv: lapack.sgetrs(
                lu, piv, r.astype(np.float32), trans=1)[0], b[i])
        out[i] = _in_double(lapack, Ai, b[i]) if x is None else x
    return out


def mixed_damped_solve(A: np.ndarray, lam, b: np.ndarray) -> np.ndarray:
    """``(A[i]^T A[i] + lam[i] I)^{-1} b[i]`` (the Levenberg-Marquardt step) for float64
    ``A`` (k, n, n): the normal matrix formed and Cholesky-factorized in float32, the
    solution refined in float64 on ``A`` itself; float64 rows where that fails (which
    raise ``numpy.linalg.LinAlgError`` where the float64 system is singular)."""
    from scipy.linalg import lapack

    from itermap.linalg import damped_normal_solve

    lam = np.asarray(lam, dtype=np.float64)
    n = A.shape[-1]
    out = np.empty_like(b)
    for i in range(A.shape[0]):
        Ai, li = A[i], float(lam[i])
        a32 = Ai.astype(np.float32)
        N = a32.T @ a32
        N.flat[::n + 1] += np.float32(li)
        c, info = lapack.spotrf(N, lower=0, overwrite_a=1)
        x = None
        if info == 0:
            x = _refined(lambda v, Ai=Ai, li=li: Ai.T @ (Ai @ v) + li * v,
                         lambda r, c=c: lapack.spotrs(c, r.astype(np.float32), lower=0)[0],
                         b[i])
        out[i] = damped_normal_solve(A[i:i + 1], lam[i:i + 1], b[i:i + 1])[0] if x is None \
            else x
    return out


def _refined(apply, solve32, b):
    """``x`` from the float32 factors (``solve32``), corrected by the float64 residual
    ``b - apply(x)`` until within ``_REL``; None where it is not after ``_STEPS`` steps."""
    bn = float(np.linalg.norm(b))
    x = solve32(b).astype(np.float64)
    for step in range(_STEPS + 1):
        rn = float(np.linalg.norm(r := b - apply(x)))
        if rn <= _REL * bn:
            return x
        if not np.isfinite(rn) or step == _STEPS:
            return None
        x += solve32(r)
    return None


def _in_double(lapack, A, b):
    """The float64 solution (NaN where ``A`` is singular)."""
    lu, piv, info = lapack.dgetrf(A.T)
    if info != 0:
        return np.full_like(b, np.nan)
    return lapack.dgetrs(lu, piv, b, trans=1)[0]
