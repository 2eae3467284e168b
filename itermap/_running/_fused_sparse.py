"""One Lyapunov step of a large sparse map, fused over row blocks on all cores.

The frame is kept as ``Q = Y R^-1`` (``W Q = (W Y) R^-1``). Each thread takes
rows of ``W`` with about equal nonzeros and, in one visit a step, multiplies
them by ``[x | Y]`` (SciPy's CSR kernel),
applies ``R^-1`` and the activation, and forms its part of the next Gram matrix;
the calling thread factors that ``k x k`` matrix. A frame that needs more than
one CholeskyQR pass goes through the
:class:`~itermap._running._reorth.Reorthonormalizer`.
"""

from __future__ import annotations

import numpy as np

from .._maps._activations import ACTIVATIONS, _tanh_d_from
from ._reorth import _exact_rank, _one_pass
from ._threads import OPTIONS, n_threads, pool

__all__ = ["FusedSparseStep", "splits"]

_EPS = float(np.finfo(np.float64).eps)
_FIRST_SHARE = 1.05  # the calling thread's share of the nonzeros, against 1 per other thread


class FusedSparseStep:
    """The state ``(x, Q)`` of one trajectory of a large sparse map, stepped in place
    (:meth:`maybe` builds it or returns None; :meth:`advance`; :meth:`state`)."""

    @classmethod
    def maybe(cls, W, bias, act, x, Q, *, reorth) -> FusedSparseStep | None:
        """A fused step from ``(x, Q)`` for this run, or None where the general loop must run."""
        if not (isinstance(x, np.ndarray) and isinstance(Q, np.ndarray) and x.shape[0] == 1
                and x.dtype == Q.dtype == W.dtype == np.float64):
            return None
        k = Q.shape[-1]
        kernel = _kernel()
        lo, hi = OPTIONS.fused_sparse_k
        if not lo <= k < hi or not splits(W.nnz, k + 1) or kernel is None:
            return None
        return cls(W, bias, act, x, Q, reorth, kernel)

    def __init__(self, W, bias, act, x, Q, reorth, kernel):
        self.W, self.bias, self.act = W, bias, act
        self.tanh = self.act is ACTIVATIONS["tanh"]  # f' from f (sech^2 from z in saturation)
        self.kernel = kernel
        self.reorth = reorth
        n, k = Q.shape[-2:]
        self.n, self.k = n, k
        self.blocks = _blocks(self.W, n_threads())
        # [x | Y] of this step and the next: a block's product reads every row of this
        # step's, so the rows of the next are written elsewhere
        self.cols = [np.empty((n, 1 + k)), np.empty((n, 1 + k))]
        self.cols[0][:, 0] = x[0]
        self.cols[0][:, 1:] = Q[0]
        self.turn = 0  # which of cols holds this step's [x | Y]
        self.Rinv = None  # the last step's R^-1 (None: Y is orthonormal already)
        self.out = np.empty((n, 1 + k))  # W [x | Y]
        self.scaled = np.empty((n, k))  # the next Y, contiguous for its Gram matrix

    def hold_threads(self) -> None:
        """Inside the reorthonormaliser's ``with``: BLAS at one thread beside the pool."""
        self.reorth.set_loop_threads(np.empty((1, self.n, self.k)))

    def _block(self, i, gram):
        """Rows ``lo:hi`` of the next ``[x | Y]``: their Gram matrix (if ``gram``) and
        sum of ``x``."""
        lo, hi, rows = self.blocks[i]
        out = self.out[lo:hi]
        cols = self.cols[self.turn]
        out.fill(0.0)  # the kernel adds to out
        self.kernel(rows.shape[0], rows.shape[1], cols.shape[1], rows.indptr, rows.indices,
                    rows.data, cols.reshape(-1), out.reshape(-1))
        z = out[:, 0] if self.bias is None else out[:, 0] + self.bias[lo:hi]
        y = self.act.apply(z, np)
        d = _tanh_d_from(y, z, np) if self.tanh else self.act.derivative(z, np)
        Y = self.scaled[lo:hi]
        if self.Rinv is None:
            np.multiply(out[:, 1:], d[:, None], out=Y)
        else:
            np.matmul(out[:, 1:], self.Rinv, out=Y)
            Y *= d[:, None]
        nxt = self.cols[self.turn ^ 1]
        nxt[lo:hi, 0] = y
        nxt[lo:hi, 1:] = Y
        return (Y.T @ Y if gram else None), float(np.sum(y))

    def advance(self, *, qr: bool = True):
        """As :meth:`itermap._running._fused_square.FusedSquareStep.advance` for (1, k),
        the norms None too without ``qr``."""
        parts = pool.run_parts(lambda i: self._block(i, qr), range(len(self.blocks)))
        total = sum(p[1] for p in parts)
        self.turn ^= 1
        self.Rinv = None  # applied: the new Y is the frame
        if not qr:
            return None, None, total
        G = np.sum([p[0] for p in parts], axis=0)
        Y = self.cols[self.turn][:, 1:]
        norms_sq = np.diagonal(G).copy()[None]
        factors = self._factor(G)
        if factors is None:  # more than one pass needed: the checked, general path
            Q, logd, _ = self.reorth(self.scaled[None])
            Y[...] = Q[0]
            return logd, norms_sq, total
        L, self.Rinv = factors
        logd = np.log(np.diagonal(L))[None]
        _, logd, _ = _exact_rank(np, Y[None], None, logd, None)
        return logd, norms_sq, total

    def state(self):
        """``(x, Q)``: the state (1, n) and the orthonormal frame (1, n, k), new arrays."""
        cols = self.cols[self.turn]
        x, Y = cols[:, 0].copy(), cols[:, 1:]
        Q = Y.copy() if self.Rinv is None else Y @ self.Rinv
        return x[None], Q[None]

    def _factor(self, G):
        """``(L, L^-T)`` of the Gram matrix where one CholeskyQR pass is enough, else None."""
        try:
            L = np.linalg.cholesky(G)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.diagonal(L) > 0):
            return None
        Rinv = np.linalg.inv(L.T)
        # the orthogonality loss ~eps kappa^2, kappa <= ||R||_F ||R^-1||_F (as in _reorth)
        if not _one_pass(float(np.sum(L * L) * np.sum(Rinv * Rinv)), _EPS, self.k):
            return None
        return L, Rinv


def _parts(nnz: int, columns: int) -> int:
    """Threads a product of ``nnz`` nonzeros by ``columns`` columns is split over."""
    return min(n_threads(), nnz * max(1, columns) // max(1, OPTIONS.sparse_min_work))


def splits(nnz: int, columns: int = 1) -> bool:
    """Whether a CSR product with ``nnz`` nonzeros by ``columns`` columns runs on the pool.

    Examples
    --------
    >>> splits(400_000, 11) == (n_threads() > 1)
    True
    >>> splits(1_000, 1)
    False
    """
    return _parts(nnz, columns) >= 2


def _kernel():
    """SciPy's CSR-times-dense kernel ``Y += A X`` (private; None where it moved)."""
    try:
        from scipy.sparse._sparsetools import csr_matvecs
    except ImportError:
        return None
    return csr_matvecs


def _blocks(W, parts: int):
    """``(lo, hi, W[lo:hi])`` per thread: rows of ``W`` with about equal nonzeros (the
    calling thread's a little more), indices sorted."""
    shares = np.full(parts, 1.0)
    shares[0] = _FIRST_SHARE
    cuts = np.searchsorted(W.indptr, W.nnz * np.cumsum(shares)[:-1] / shares.sum())
    edges = [0, *sorted(set(int(c) for c in cuts)), W.shape[0]]
    blocks = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        rows = W[lo:hi].tocsr()
        rows.sort_indices()
        blocks.append((int(lo), int(hi), rows))
    return blocks
