"""Large dense Newton systems solved in mixed precision: the LU factorization in float32,
the solution refined in float64 (Buttari, Dongarra, Langou et al. 2007).

The LU is the search's cost at a few hundred units and more (``2/3 n^3`` flops a start
and iteration); in float32 it runs about twice as fast (1.6x measured, with the
refinement, at n = 400 and 1000 on one core), and each refinement step costs ``4 n^2``.
A row whose refinement does not reach ``_REL`` in ``_STEPS`` steps (a system too
ill-conditioned for float32) is solved again in float64, so the answer is the float64
one to within ``_REL`` relative residual either way.

References
----------
.. [1] A. Buttari, J. Dongarra, J. Langou, J. Langou, P. Luszczek and J. Kurzak,
   "Mixed precision iterative refinement techniques for the solution of dense linear
   systems", Int. J. High Perform. Comput. Appl. 21(4), 2007.
"""

from __future__ import annotations

import numpy as np

# float64 NumPy systems of at least this order take the mixed-precision path (1.1x at
# n = 128, 1.4-1.7x at 200-256, 1.8-2x at 400-1000; kept above the N = 200 grid, whose
# points were counted with float64 solves)
MIXED_DIM = 300
# the refinement stops once ||A x - b|| <= _REL ||b||, after _STEPS steps at most
_REL = 1e-12
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
    for i in range(A.shape[0]):
        # A[i].T is Fortran-ordered without a copy: factor A^T, solve with trans=1
        lu, piv, info = lapack.sgetrf(A[i].T.astype(np.float32), overwrite_a=1)
        x = None
        if info == 0:
            x = _refined(lapack, A[i], b[i], lu, piv)
        out[i] = _in_double(lapack, A[i], b[i]) if x is None else x
    return out


def _refined(lapack, A, b, lu, piv):
    """The float32 solution refined in float64; None where it does not converge."""
    bn = float(np.linalg.norm(b))
    x = lapack.sgetrs(lu, piv, b.astype(np.float32), trans=1)[0].astype(np.float64)
    for _ in range(_STEPS):
        r = b - A @ x
        rn = float(np.linalg.norm(r))
        if not np.isfinite(rn):
            return None
        if rn <= _REL * bn:
            return x
        x += lapack.sgetrs(lu, piv, r.astype(np.float32), trans=1)[0]
    r = b - A @ x
    return x if float(np.linalg.norm(r)) <= _REL * bn else None


def _in_double(lapack, A, b):
    """The float64 solution (NaN where ``A`` is singular)."""
    lu, piv, info = lapack.dgetrf(A.T)
    if info != 0:
        return np.full_like(b, np.nan)
    return lapack.dgetrs(lu, piv, b, trans=1)[0]
