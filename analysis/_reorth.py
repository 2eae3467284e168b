"""Reorthonormalisation of batched tangent frames: Gram-Schmidt, CholeskyQR2, Householder.

A frame ``Y`` of shape ``(B, n, k)`` is factorised as ``Y = Q R`` with ``Q``
orthonormal and ``R`` upper triangular; the Lyapunov analyses need ``Q`` and
``log|diag R|`` (and ``R`` itself for covariant vectors). Which method runs:

- ``k <= 3``: classical Gram-Schmidt applied twice, vectorised over the batch
  (a few array operations; a batched LAPACK QR of tiny matrices costs a call
  per matrix);
- otherwise CholeskyQR: ``R = chol(Y^T Y)``, ``Q = Y R^-1``, almost all
  BLAS-3; a second pass (CholeskyQR2) runs when the first leaves a column norm
  of ``Q`` off by more than ``sqrt(eps)``;
- a frame with fewer nonzero rows ``m`` than columns has ``R_jj = 0`` for
  ``j >= m`` exactly (rounding would leave ``eps``-sized values);
- Householder QR (``linalg.qr``) when the Cholesky factorisation fails, when
  the Gram matrix's condition estimate ``(max R_ii / min R_ii)^2`` exceeds
  ``0.01 / eps``, when a Gram-Schmidt column vanishes (an exact collapse: the
  Householder ``R_ii`` is then exactly 0), or when anything is not finite.
  After a fallback the next 16 factorisations go straight to Householder.

The spans of the leading columns are the same whatever the method, so the
product of the ``R`` factors, and with it the exponents, agree to rounding:
an orthogonality error of one step is not carried into the next one's ``R``.
"""

from __future__ import annotations

import contextlib
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from itermap.backends import namespace

from ._lapack_threads import _n_threads

__all__ = ["Reorthonormalizer"]

_SMALL_K = 3
_FALLBACK_HOLD = 16
# per-matrix SciPy BLAS/LAPACK calls (threads over the batch) from this much work n k^2
_PER_MATRIX_WORK = 48 ** 3
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_n_threads(), thread_name_prefix="itermap-qr")
    return _POOL


def _transpose(xp, a):
    return xp.swapaxes(a, -1, -2) if hasattr(xp, "swapaxes") else xp.matrix_transpose(a)


def _diag(xp, a):
    if isinstance(a, np.ndarray):
        return np.diagonal(a, axis1=-2, axis2=-1)
    return xp.linalg.diagonal(a)


def _blas_one_thread():
    # threadpoolctl's own per-call limit on purpose, not itermap._threads.blas_limited: its
    # slow entry lets OpenBLAS's threads go idle before the next tangent product; switching
    # quickly left them spinning against ours (dense N=256, B=1: 81 ms became 515 ms)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional speed-up
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class _CholeskyFailed(Exception):
    pass


def _chol_one(Y, cond_limit, sqrt_eps, want_r, parts=1):
    """CholeskyQR2 of one (n, k) NumPy frame with SciPy's BLAS/LAPACK (releases the GIL).

    It works on ``A = Y^T`` (k, n), Fortran-ordered when ``Y`` is C-ordered, so
    that no call copies: ``G = A A^T`` (syrk), ``G = R^T R`` (potrf),
    ``A <- R^-T A`` (trsm), and ``Q = A^T``. With ``parts > 1`` the syrk and
    the trsm are split over column blocks of ``A``, one per thread.
    """
    from scipy.linalg import blas, lapack

    Rs, logs = [], []
    A = Y.T
    n = A.shape[1]
    cuts = np.linspace(0, n, parts + 1).astype(int)
    blocks = list(zip(cuts[:-1], cuts[1:]))
    for pas in range(2):
        if parts > 1:  # G = sum of the blocks' A_c A_c^T, one block per thread
            G = sum(_pool().map(
                lambda c, A=A: blas.dsyrk(1.0, A[:, c[0]:c[1]], trans=0, lower=0), blocks))
        else:
            G = blas.dsyrk(1.0, A, trans=0, lower=0)
        R, info = lapack.dpotrf(G, lower=0, clean=1, overwrite_a=1)
        d = np.diagonal(R)
        if info != 0 or not np.all(d > 0):
            raise _CholeskyFailed
        if pas == 0 and float(d.max() / d.min()) ** 2 > cond_limit:
            raise _CholeskyFailed
        if parts > 1:  # the columns of R^-T A are independent
            A = np.concatenate(list(_pool().map(
                lambda c, A=A, R=R: blas.dtrsm(1.0, R, A[:, c[0]:c[1]], side=0, lower=0,
                                               trans_a=1),
                blocks)), axis=1)
        else:
            A = blas.dtrsm(1.0, R, A, side=0, lower=0, trans_a=1)
        Rs.append(R)
        logs.append(np.log(d))
        if pas == 0:
            dev = float(np.max(np.abs(np.einsum("ij,ij->j", A, A) - 1.0)))
            if dev <= sqrt_eps:
                break
    logd = logs[0] if len(logs) == 1 else logs[0] + logs[1]
    R = None
    if want_r:
        R = Rs[0] if len(Rs) == 1 else Rs[1] @ Rs[0]
    return A.T, logd, R


def _exact_rank(xp, Y, Q, logd, R):
    """Set ``log|R_jj| = -inf`` for ``j >=`` the number of nonzero rows of ``Y``.

    A frame with ``m < k`` nonzero rows (a nilpotent MLP's empty layers, units a
    ReLU has killed) has rank ``<= m``: ``R_jj = 0`` exactly for ``j >= m``,
    where rounding would leave values of order ``eps``.
    """
    k = Y.shape[-1]
    # a rank below k leaves R_jj ~ eps ||Y||: look only where the R_jj spread that far
    if k < 2 or not float(xp.min(logd)) < float(xp.max(logd)) - 18.0:
        return Q, logd, R
    rows = xp.sum(xp.astype(xp.any(Y != 0, axis=-1), xp.int64), axis=-1)  # (B,)
    if bool(xp.all(rows >= k)):
        return Q, logd, R
    j = xp.arange(k)
    dead = j[None, :] >= rows[:, None]
    logd = xp.where(dead, -xp.inf, logd)
    if R is not None:
        diag_mask = xp.eye(k, dtype=xp.bool)[None] & dead[:, None, :]
        R = xp.where(diag_mask, xp.zeros_like(R), R)
    return Q, logd, R


class Reorthonormalizer:
    """``Q``, ``log|diag R|`` and optionally ``R`` of frames ``Y`` (B, n, k).

    One instance per run: it remembers a recent Householder fallback.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.random.default_rng(0).normal(size=(2, 6, 4))
    >>> Q, logd, R = Reorthonormalizer()(Y, want_r=True)
    >>> bool(np.allclose(Q @ R, Y)), bool(np.allclose(np.log(np.abs(np.diagonal(
    ...     np.linalg.qr(Y)[1], axis1=1, axis2=2))), logd))
    (True, True)
    """

    def __init__(self):
        self.hold = 0
        self.fallbacks = 0

    def __call__(self, Y, want_r=False):
        xp = namespace(Y)
        out = None
        if self.hold > 0:
            self.hold -= 1
        elif Y.shape[-1] <= _SMALL_K:
            out = self._gram_schmidt(xp, Y, want_r)
        else:
            out = self._cholesky(xp, Y, want_r)
        if out is None:
            if self.hold == 0 and Y.shape[-1] > 0:
                self.fallbacks += 1
                self.hold = _FALLBACK_HOLD
            out = self._householder(xp, Y, want_r)
        return _exact_rank(xp, Y, *out)

    @staticmethod
    def _householder(xp, Y, want_r):
        qr = np.linalg.qr if isinstance(Y, np.ndarray) else xp.linalg.qr
        Q, R = qr(Y)
        return Q, xp.log(xp.abs(_diag(xp, R))), (R if want_r else None)

    @staticmethod
    def _gram_schmidt(xp, Y, want_r):
        k = Y.shape[-1]
        if isinstance(Y, np.ndarray):  # a reduction over a short axis is slow in NumPy
            def dot(a, b):
                return np.einsum("...i,...i->...", a, b)
        else:
            def dot(a, b):
                return xp.sum(a * b, axis=-1)
        cols, norms = [], []
        R = [[None] * k for _ in range(k)]
        for j in range(k):
            v = Y[..., j]
            for _ in range(2):  # twice is enough (Giraud et al. 2005)
                for i, q in enumerate(cols):
                    c = dot(q, v)
                    v = v - c[..., None] * q
                    R[i][j] = c if R[i][j] is None else R[i][j] + c
            nrm = xp.sqrt(dot(v, v))
            cols.append(v / nrm[..., None])
            norms.append(nrm)
        N = xp.stack(norms, axis=-1)
        if not bool(xp.all(N > 0)):  # an exact collapse or NaN: Householder decides
            return None
        Q = xp.stack(cols, axis=-1)
        Rm = None
        if want_r:
            zero = xp.zeros_like(norms[0])
            rows = [xp.stack([norms[i] if j == i else (R[i][j] if j > i else zero)
                              for j in range(k)], axis=-1) for i in range(k)]
            Rm = xp.stack(rows, axis=-2)
        return Q, xp.log(N), Rm

    def _cholesky(self, xp, Y, want_r):
        eps = float(np.finfo(np.float32 if "32" in str(Y.dtype) else np.float64).eps)
        cond_limit, sqrt_eps = 0.01 / eps, math.sqrt(eps)
        B, n, k = Y.shape
        if isinstance(Y, np.ndarray) and Y.dtype == np.float64 and n * k * k >= _PER_MATRIX_WORK:
            return self._cholesky_per_matrix(Y, cond_limit, sqrt_eps, want_r)
        Q, logs, Rs = Y, [], []
        for pas in range(2):
            G = xp.matmul(_transpose(xp, Q), Q)
            try:
                L = xp.linalg.cholesky(G)
            except np.linalg.LinAlgError:
                return None
            d = _diag(xp, L)
            if not bool(xp.all(d > 0)):  # CuPy returns NaN rather than raising
                return None
            if pas == 0 and float(xp.max((xp.max(d, axis=-1) / xp.min(d, axis=-1)) ** 2)) \
                    > cond_limit:
                return None
            Rinv = xp.linalg.inv(_transpose(xp, L))
            Q = xp.matmul(Q, Rinv)
            logs.append(xp.log(d))
            Rs.append(_transpose(xp, L))
            if pas == 0:
                dev = float(xp.max(xp.abs(xp.sum(Q * Q, axis=-2) - 1.0)))
                if dev <= sqrt_eps:
                    break
        logd = logs[0] if len(logs) == 1 else logs[0] + logs[1]
        R = None
        if want_r:
            R = Rs[0] if len(Rs) == 1 else xp.matmul(Rs[1], Rs[0])
        return Q, logd, R

    @staticmethod
    def _cholesky_per_matrix(Y, cond_limit, sqrt_eps, want_r):
        B, n, k = Y.shape
        threads = _n_threads()
        try:
            with _blas_one_thread():  # our threads share the cores, BLAS's would spin
                if B >= threads > 1:  # one matrix per thread
                    parts = list(_pool().map(
                        lambda b: _chol_one(Y[b], cond_limit, sqrt_eps, want_r), range(B)))
                else:  # one matrix at a time, its columns split over the threads
                    split = threads if n * k * k >= threads * _PER_MATRIX_WORK else 1
                    parts = [_chol_one(Y[b], cond_limit, sqrt_eps, want_r, split)
                             for b in range(B)]
        except _CholeskyFailed:
            return None
        Q = np.stack([p[0] for p in parts])
        logd = np.stack([p[1] for p in parts])
        R = np.stack([p[2] for p in parts]) if want_r else None
        return Q, logd, R
