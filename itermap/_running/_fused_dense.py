"""One Lyapunov step of a dense network's single trajectory, split by rows over the threads.

For ``k >= OPTIONS.fused_dense_min_k``: every BLAS call runs on one thread and
itermap's threads take blocks of rows of ``W [x | Q]``, the activation and their
part of the Gram matrix (:mod:`._nogil_blas`); the calling thread factors the
``k x k`` Gram matrix, then each thread solves its rows of ``Q R^-1`` in place.
Passes as :func:`~itermap._running._reorth.cholesky_qr` decides, by row blocks.
"""

from __future__ import annotations

import numpy as np

from ._nogil_blas import available, gram_upper, solve_upper_transposed
from ._reorth import _CholeskyFailed, _Pass, cholesky_qr, factor_gram, shift_of
from ._threads import OPTIONS, n_threads, pool

__all__ = ["FusedDenseStep"]

_EPS = float(np.finfo(np.float64).eps)


class FusedDenseStep:
    """The state ``(x, Q)`` of one trajectory of a dense map, stepped in place
    (:meth:`maybe` builds it or returns None; :meth:`advance`; :meth:`state`)."""

    @classmethod
    def maybe(cls, W, bias, act, x, Q, *, reorth) -> FusedDenseStep | None:
        """A fused step from ``(x, Q)`` for this run, or None where the general loop must run."""
        if not (isinstance(x, np.ndarray) and isinstance(Q, np.ndarray) and x.shape[0] == 1
                and x.dtype == Q.dtype == np.float64 and W.dtype == np.float64):
            return None
        if Q.shape[-1] < OPTIONS.fused_dense_min_k or n_threads() < 2 or not available():
            return None
        return cls(W, bias, act, x, Q, reorth)

    def __init__(self, W, bias, act, x, Q, reorth):
        self.W = np.ascontiguousarray(W)
        self.bias, self.act = bias, act
        self.reorth = reorth
        n, k = Q.shape[-2:]
        self.k = k
        parts = max(1, min(n_threads(), n // 32))
        edges = np.linspace(0, n, parts + 1).astype(int)
        self.rows = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        self.grams = [np.empty((k, k)) for _ in self.rows]
        # [x | Q] of this step and the next (the next product's output buffer)
        self.cols = [np.empty((n, 1 + k)), np.empty((n, 1 + k))]
        self.cols[0][:, 0] = x[0]
        self.cols[0][:, 1:] = Q[0]
        self.turn = 0
        self.fresh = False  # the Gram matrices are those of the frame as it stands

    def hold_threads(self) -> None:
        """Inside the reorthonormaliser's ``with``: every BLAS call on one thread, as the
        row blocks share the cores."""
        self.reorth.hold_blas()

    def _map(self, fn):
        """``fn(i)`` for every row block ``i``, the first on the calling thread."""
        return pool.run_parts(fn, range(len(self.rows)))

    def _product(self, i, qr):
        lo, hi = self.rows[i]
        out = self.cols[self.turn ^ 1][lo:hi]
        np.matmul(self.W[lo:hi], self.cols[self.turn], out=out)
        z = out[:, 0] if self.bias is None else out[:, 0] + self.bias[lo:hi]
        y = self.act.apply(z, np)
        d = self.act.derivative(z, np)
        out[:, 0] = y
        Y = out[:, 1:]
        Y *= d[:, None]
        if qr:
            gram_upper(Y, self.grams[i])
        return float(np.sum(y))

    def _gram(self, i):
        gram_upper(self.cols[self.turn][self.rows[i][0]:self.rows[i][1], 1:], self.grams[i])

    def _solve(self, G):
        """``Q = Y R^-1`` by row blocks; the largest ``| ||q_j||^2 - 1 |``."""
        def solve(i):
            Y = self.cols[self.turn][self.rows[i][0]:self.rows[i][1], 1:]
            solve_upper_transposed(G, Y)
            return np.einsum("ij,ij->j", Y, Y)
        return float(np.max(np.abs(sum(self._map(solve)) - 1.0)))

    def _pass(self, shift, give_up):
        """One CholeskyQR pass by row blocks (the first uses the product's Gram matrices)."""
        if not self.fresh:
            self._map(self._gram)
        self.fresh = False
        G = self.grams[0]
        for g in self.grams[1:]:
            G += g
        d, _, kappa_sq = factor_gram(G, shift, _EPS, give_up)
        return _Pass(np.log(d), None, kappa_sq, self._solve(G))

    def advance(self, *, qr: bool = True):
        """One step, and the QR of the new frame if ``qr``: ``log|diag R|`` (1, k), the
        columns' squared norms before it (1, k) (both None without ``qr``) and the sum
        of the new state (a finiteness probe)."""
        total = sum(self._map(lambda i: self._product(i, qr)))
        self.turn ^= 1
        if not qr:
            return None, None, total
        norms_sq = np.sum([np.diagonal(g) for g in self.grams], axis=0)[None]
        self.fresh = True
        n = self.cols[0].shape[0]
        try:
            done, _ = cholesky_qr(self._pass, lambda: shift_of(float(np.sum(norms_sq)), n,
                                                                 self.k, _EPS),
                                  _EPS, self.k)
        except _CholeskyFailed as failed:  # the reorthonormaliser's Householder, after the
            Y = self.cols[self.turn][:, 1:]  # passes done (Y = Q R, R their product)
            Q, logd, _ = self.reorth(np.ascontiguousarray(Y)[None])
            Y[...] = Q[0]
            return logd + sum(p.logd for p in failed.done), norms_sq, total
        return sum(p.logd for p in done)[None], norms_sq, total

    def state(self):
        """``(x, Q)``: the state (1, n) and the orthonormal frame (1, n, k), new arrays."""
        cols = self.cols[self.turn]
        return cols[:, 0].copy()[None], cols[:, 1:].copy()[None]
