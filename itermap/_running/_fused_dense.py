"""One Lyapunov step of a dense network's single trajectory, split by rows over the threads.

For one trajectory of a dense :class:`~itermap.IterativeMap` with a large frame (``k >=
OPTIONS.fused_dense_min_k``, see :class:`itermap._running._threads.ThreadOptions`) a step is a
product ``W [x | Q]`` and a CholeskyQR of the new frame. NumPy's BLAS threads split the
product, but SciPy's wrappers factorise on one core, and the BLAS threads spinning after
each product slow what runs next. Here every BLAS call runs on one thread and itermap's
threads take blocks of rows: each multiplies its rows of ``W`` by ``[x | Q]`` (NumPy,
which releases the GIL), applies the activation and f', and forms its part of the Gram
matrix (:mod:`._nogil_blas`); the calling thread factors the ``k x k`` Gram matrix; then
each thread solves its rows of ``Q R^-1`` in place. The new ``[x | Q]`` is the product's
output buffer itself: two buffers alternate and nothing is copied. LAPACK's condition
estimate of the first pass's ``R`` decides, as in
:class:`~itermap._running._reorth.Reorthonormalizer`: one pass, a second (CholeskyQR2), or,
for a frame the Cholesky factorisation refuses or too ill-conditioned for CholeskyQR2,
the reorthonormaliser's shifted CholeskyQR3. The map hands it out through
:meth:`itermap.IterativeMap.tangent_stepper` (see :mod:`._fused_steppers`).
"""

from __future__ import annotations

import numpy as np

from ._nogil_blas import available, cholesky_upper, gram_upper, solve_upper_transposed
from ._reorth import _one_pass, passes_needed, triangular_kappa_sq
from ._threads import OPTIONS, n_threads, pool

__all__ = ["FusedDenseStep"]

_EPS = float(np.finfo(np.float64).eps)


class FusedDenseStep:
    """The state ``(x, Q)`` of one trajectory of a dense map, stepped in place.

    Build it with :meth:`maybe` from the network's dense ``W``, bias and one
    activation; it returns None for a run it does not cover. :meth:`advance`
    takes one step and returns what
    :meth:`itermap._running._fused_sparse.FusedSparseStep.advance` returns, and
    :meth:`state` returns ``(x, Q)`` as new arrays.
    """

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

    def _factor(self):
        """Cholesky factor of the summed Gram matrix (in place, see :mod:`._nogil_blas`),
        its diagonal and estimated ``kappa^2``, or None where it fails."""
        G = self.grams[0]
        for g in self.grams[1:]:
            G += g
        if cholesky_upper(G) != 0:
            return None
        d = np.diagonal(G).copy()
        if not np.all(d > 0):
            return None
        return G, d, triangular_kappa_sq(np.triu(G.T))

    def advance(self, *, qr: bool = True):
        """One step, and the QR of the new frame if ``qr``.

        Returns ``log|diag R|`` (1, k), the squared norms of the frame's columns
        before the QR (1, k) and the sum of the new state (a finiteness probe);
        without ``qr`` the first two are None and the frame is left unnormalised.
        """
        total = sum(self._map(lambda i: self._product(i, qr)))
        self.turn ^= 1
        if not qr:
            return None, None, total
        norms_sq = np.sum([np.diagonal(g) for g in self.grams], axis=0)[None]
        Y = self.cols[self.turn][:, 1:]
        logd = np.zeros(self.k)
        passes = 2
        for pas in range(2):
            if pas:
                self._map(self._gram)
            factors = self._factor()
            if factors is not None and pas == 0:
                passes = passes_needed(factors[2], _EPS, self.k)
            if factors is None or passes == 3:
                break
            G, d, kappa_sq = factors
            logd += np.log(d)
            dev = self._solve(G)
            if pas == 0:
                passes = passes_needed(kappa_sq, _EPS, self.k, dev)
            elif not _one_pass(kappa_sq, _EPS, self.k, dev):
                break
            if passes == 1 or pas == 1:
                return logd[None], norms_sq, total
        # the reorthonormaliser's shifted CholeskyQR3, after any pass done
        Q, logd_rest, _ = self.reorth(np.ascontiguousarray(Y)[None])
        Y[...] = Q[0]
        return logd[None] + logd_rest, norms_sq, total

    def state(self):
        """``(x, Q)``: the state (1, n) and the orthonormal frame (1, n, k), new arrays."""
        cols = self.cols[self.turn]
        return cols[:, 0].copy()[None], cols[:, 1:].copy()[None]
