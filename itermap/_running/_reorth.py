"""Reorthonormalisation of tangent frames ``Y = Q R`` (B, n, k): Q and ``log|diag R|``.

- ``k <= 3``: classical Gram-Schmidt applied twice [4]_, vectorised over the batch;
- otherwise CholeskyQR (:func:`cholesky_qr`): one pass, CholeskyQR2 [2]_, or shifted
  CholeskyQR3 [3]_ as the first pass's condition estimate decides, batched on the
  input's namespace;
- Householder QR where CholeskyQR3 cannot reach (``kappa`` past ~1e13), a
  Gram-Schmidt column vanishes or anything is not finite; the next 16 frames
  follow it. Rows that are all zero give ``R_jj = 0`` exactly.

Square frames (:mod:`._fused_square`) are kept as Householder reflectors
(:mod:`._nogil_blas`), backward stable at any conditioning [1]_.

References
----------
.. [1] G. H. Golub and C. F. Van Loan, *Matrix Computations*, 4th ed., Johns
   Hopkins University Press, 2013, sections 5.1-5.2.
.. [2] Y. Yamamoto, Y. Nakatsukasa, Y. Yanagisawa and T. Fukaya, "Roundoff error
   analysis of the CholeskyQR2 algorithm", Electron. Trans. Numer. Anal. 44,
   306-326 (2015).
.. [3] T. Fukaya, R. Kannan, Y. Nakatsukasa, Y. Yamamoto and Y. Yanagisawa,
   "Shifted Cholesky QR for computing the QR factorization of ill-conditioned
   matrices", SIAM J. Sci. Comput. 42(1), A477-A503 (2020).
.. [4] L. Giraud, J. Langou, M. Rozloznik and J. van den Eshof, "Rounding error
   analysis of the classical Gram-Schmidt orthogonalization process", Numer.
   Math. 101, 87-100 (2005).
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, NamedTuple

import numpy as np

from itermap.backends import namespace
from itermap.threads import OPTIONS, blas_limited

__all__ = ["Reorthonormalizer"]

_SMALL_K = 3
_FALLBACK_HOLD = 16
# off NumPy, larger frames are factorised one matrix at a time: CuPy's batched Cholesky and
# inverse call cuSOLVER/cuBLAS *Batched routines made for small matrices, and CuPy's own
# solve loops over the batch past this size (cupy.cublas.get_batched_gesv_limit())
_BATCHED_MAX_K = 256


def _transpose(xp, a):
    return xp.swapaxes(a, -1, -2) if hasattr(xp, "swapaxes") else xp.matrix_transpose(a)


def column_sq_norms(xp, Y):
    """``||y_j||^2`` of each column of ``Y`` (..., n, k) (NumPy: einsum, faster than sum)."""
    if isinstance(Y, np.ndarray):
        return np.einsum("...ij,...ij->...j", Y, Y)
    return xp.sum(Y * Y, axis=-2)


def _diag(xp, a):
    if isinstance(a, np.ndarray):
        return np.diagonal(a, axis1=-2, axis2=-1)
    return xp.linalg.diagonal(a)


def _per_matrix(xp, fn, A):
    """``fn`` of a batch ``A`` (B, k, k): one call, or one per matrix for a large k off NumPy."""
    if isinstance(A, np.ndarray) or A.shape[-1] <= _BATCHED_MAX_K:
        return fn(A)
    return xp.stack([fn(A[b, ...]) for b in range(A.shape[0])])


class _CholeskyFailed(Exception):
    """A CholeskyQR pass refused the frame; ``done``: the passes already applied to it."""

    def __init__(self, done=()):
        super().__init__()
        self.done = list(done)


class _Pass(NamedTuple):
    """One CholeskyQR pass: ``log diag R``, ``R`` (or None), ``kappa(R)^2`` estimated and
    ``dev``, the largest ``| ||q_j||^2 - 1 |`` it left."""

    logd: Any
    R: Any
    kappa_sq: float
    dev: float


# eps kappa^2 bounds CholeskyQR's loss of orthogonality: one pass up to 1e-3 sqrt(eps),
# CholeskyQR2 up to _TWO_PASS (the first pass's Q is then well conditioned), beyond it
# shifted CholeskyQR3
_TWO_PASS = 1e-2
# after the shifted pass, the frame must be within plain CholeskyQR's reach (a Gram matrix
# that rounding leaves positive definite); else Y's rank was lost to rounding
_SHIFTED_REST = 1.0


def _one_pass(kappa_sq: float, eps: float, k: int, dev: float = math.inf) -> bool:
    """Whether one pass leaves a frame of estimated ``kappa^2`` orthonormal to ~1e-3 sqrt(eps),
    by the estimate (an orthonormal frame's runs up to ``4 k^2``) or by ``dev``."""
    limit = 1e-3 * math.sqrt(eps)
    return kappa_sq * eps <= limit or kappa_sq <= 4.0 * k * k or dev <= 0.1 * limit


def passes_needed(kappa_sq: float, eps: float, k: int, dev: float = math.inf) -> int:
    """CholeskyQR passes for a frame of estimated ``kappa^2``: 1, 2 or 3 (shifted) [2]_ [3]_."""
    if not kappa_sq * eps <= _TWO_PASS:  # NaN too
        return 3
    return 1 if _one_pass(kappa_sq, eps, k, dev) else 2


def shift_of(sq_norm: float, n: int, k: int, eps: float) -> float:
    """Shifted CholeskyQR's shift ``11 (n k + k (k + 1)) u ||Y||_F^2``, ``u = eps / 2`` [3]_."""
    return 11.0 * (n * k + k * (k + 1)) * 0.5 * eps * sq_norm


def cholesky_qr(run_pass, shift, eps: float, k: int, *, shifted: bool = False):
    """CholeskyQR2, or shifted CholeskyQR3, of a frame that ``run_pass`` factorises in place.

    ``run_pass(shift, give_up)`` runs one pass (``shift`` added to the Gram matrix's
    diagonal) and returns a :class:`_Pass`, or raises :class:`_CholeskyFailed` where
    Cholesky refuses or, before the frame changes, ``kappa^2 eps > give_up``.
    ``shift()`` is the shift of the frame as given; ``shifted`` starts with it.
    Returns the passes and whether the shift was needed; raises
    :class:`_CholeskyFailed` (with the passes done) where the rank was lost to rounding.
    """
    passes = 3
    if not shifted:
        with contextlib.suppress(_CholeskyFailed):  # the frame is unchanged: shifted, from it
            first = run_pass(None, _TWO_PASS)
            passes = passes_needed(first.kappa_sq, eps, k, first.dev)
    if passes == 3:
        first = run_pass(shift(), math.inf)
    done = [first]
    try:
        for i in range(passes - 1):
            # after the shifted pass the frame must be within plain CholeskyQR's reach
            done.append(run_pass(None, _SHIFTED_REST if passes == 3 and i == 0 else math.inf))
    except _CholeskyFailed:
        raise _CholeskyFailed(done) from None
    if passes > 1 and not _one_pass(done[-1].kappa_sq, eps, k, done[-1].dev):
        raise _CholeskyFailed(done)  # the frame's rank was lost to rounding
    return done, passes == 3


def _combined(done, want_r):
    """``log diag R`` and ``R`` (or None) of the product of the passes' factors."""
    logd, R = done[0].logd, done[0].R
    for p in done[1:]:
        logd = logd + p.logd
        if want_r:
            R = p.R @ R
    return logd, (R if want_r else None)


def _batched_qr(xp, Y, eps, want_r, shifted):
    """CholeskyQR of a batch ``Y`` (B, n, k) on its namespace:
    ``(Q, log diag R, R, whether shifted)``; raises :class:`_CholeskyFailed`."""
    B, n, k = Y.shape
    frame = [Y]

    def run_pass(shift, give_up):
        step = _batched_pass(xp, frame[0], shift)
        if step is None or not step[3] * eps <= give_up:
            raise _CholeskyFailed
        frame[0] = xp.matmul(frame[0], step[1])
        dev = float(xp.max(xp.abs(column_sq_norms(xp, frame[0]) - 1.0)))
        return _Pass(step[2], step[0], step[3], dev)

    done, was_shifted = cholesky_qr(
        run_pass, lambda: shift_of(xp.sum(column_sq_norms(xp, Y), axis=-1), n, k, eps),
        eps, k, shifted=shifted)
    return (frame[0], *_combined(done, want_r), was_shifted)


def _exact_rank(xp, Y, Q, logd, R):
    """``log|R_jj| = -inf`` for ``j >=`` the number of nonzero rows of ``Y`` (rank ``<= m``
    exactly, where rounding would leave ``eps``-sized values)."""
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


def _rounding_unit(dtype) -> float:
    """The eps of a float32 frame, else float64's."""
    return float(np.finfo(np.float32 if "32" in str(dtype) else np.float64).eps)


class Reorthonormalizer:
    """``Q``, ``log|diag R|`` and optionally ``R`` of frames ``Y`` (B, n, k).

    One instance per run: it remembers a recent Householder or shifted start. As a
    context manager around a NumPy loop it sets the loop's BLAS threads once: one
    thread for small frames where ``pool_products`` (the map's products run on
    itermap's pool).

    Parameters
    ----------
    pool_products : bool
        Whether the map's tangent products run on itermap's thread pool (the loop then
        holds BLAS to one thread for small frames, so the two do not contend).

    Examples
    --------
    >>> Y = np.random.default_rng(0).normal(size=(2, 6, 4))
    >>> Q, logd, R = Reorthonormalizer()(Y, want_r=True)
    >>> bool(np.allclose(Q @ R, Y)), bool(np.allclose(np.log(np.abs(np.diagonal(
    ...     np.linalg.qr(Y)[1], axis1=1, axis2=2))), logd))
    (True, True)
    """

    def __init__(self, *, pool_products: bool = False):
        self.pool_products = pool_products
        self.hold = 0
        self.fallbacks = 0
        self.shifted = 0  # factorisations left that start with the shifted pass
        self._stack: contextlib.ExitStack | None = None
        self._threads_set = False
        self._blas_held = False

    def __enter__(self) -> Reorthonormalizer:
        self._stack = contextlib.ExitStack()
        return self

    def __exit__(self, *exc) -> None:
        stack, self._stack = self._stack, None
        self._threads_set = self._blas_held = False
        if stack is not None:
            stack.close()

    def set_loop_threads(self, Y) -> None:
        """Set the loop's BLAS threads for frames like ``Y`` (inside ``with``), once."""
        if self._stack is None or self._threads_set:
            return
        self._threads_set = True
        B, n, k = Y.shape
        small = n * k * k < OPTIONS.qr_small_frame_work
        if isinstance(Y, np.ndarray) and self.pool_products and small:
            self.hold_blas()

    def hold_blas(self) -> None:
        """Hold every BLAS library to one thread for the loop (inside ``with``), once."""
        if self._stack is None or self._blas_held:
            return
        self._threads_set = self._blas_held = True
        self._stack.enter_context(blas_limited(1))

    def __call__(self, Y, want_r=False):
        xp = namespace(Y)
        self.set_loop_threads(Y)
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
                logging.getLogger(__name__).debug("QR: Householder for an ill-conditioned frame")
                self.hold = _FALLBACK_HOLD
            out = self._householder(xp, Y, want_r)
        return _exact_rank(xp, Y, *out)

    @staticmethod
    def _householder(xp, Y, want_r):
        Q, R = (np.linalg.qr if isinstance(Y, np.ndarray) else xp.linalg.qr)(Y)
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
        Y2 = xp.stack([dot(Y[..., j], Y[..., j]) for j in range(k)], axis=-1)
        eps = _rounding_unit(Y.dtype)
        # an exact collapse, NaN, or a column that kept under 100 eps of its norm: twice is
        # enough only for a numerically independent one (past that v is rounding, along
        # the q before it, and the direction is lost): Householder decides
        if not bool(xp.all(N * N > 1e4 * eps * eps * Y2)):
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
        eps = _rounding_unit(Y.dtype)
        # a frame that needed the shift is followed by frames as ill-conditioned
        start = self.shifted > 0
        try:
            Q, logd, R, shifted = _batched_qr(xp, Y, eps, want_r, start)
        except _CholeskyFailed:
            return None  # Householder decides
        self.shifted = self.shifted - 1 if start else _FALLBACK_HOLD if shifted else 0
        return Q, logd, R


def _batched_pass(xp, Q, shift=None):
    """One batched CholeskyQR pass: ``(R, R^-1, log diag R, max ||R||_F^2 ||R^-1||_F^2)``
    (the last bounds ``kappa^2``), or None where Cholesky refuses."""
    G = xp.matmul(_transpose(xp, Q), Q)
    if shift is not None:
        k = G.shape[-1]
        G = G + xp.asarray(shift)[:, None, None] * xp.eye(k, dtype=G.dtype)
    try:
        L = _per_matrix(xp, xp.linalg.cholesky, G)
    except np.linalg.LinAlgError:
        return None
    d = _diag(xp, L)
    if not bool(xp.all(d > 0)):  # CuPy returns NaN rather than raising
        return None
    R = _transpose(xp, L)
    Rinv = _per_matrix(xp, xp.linalg.inv, R)
    kappa2 = float(xp.max(xp.sum(L * L, axis=(-2, -1)) * xp.sum(Rinv * Rinv, axis=(-2, -1))))
    return R, Rinv, xp.log(d), kappa2
