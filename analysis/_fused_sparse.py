"""One Lyapunov step of a large sparse map, fused over row blocks on all cores.

For a single trajectory of a sparse :class:`~itermap.IterativeMap` the step
``(x, Q) -> (f(W x + b), f'(z) * (W Q))`` and the CholeskyQR of the new frame
are all separable by rows except the ``k x k`` Cholesky factorisation. Each
thread takes a block of rows with about equal nonzeros and, in one visit,
multiplies its rows of ``W`` by ``[x | Q]`` (SciPy's CSR kernel), applies the
activation and its derivative, scales the tangents and forms its part of the
Gram matrix; after the factorisation it forms its rows of ``Q R^-1`` and of the
next ``[x | Q]``. Everything else of :func:`lyapunov_spectrum` (checkpoints,
diagnostics, the result) is the general loop's. Where the factorisation needs
more than one CholeskyQR pass (an ill-conditioned frame), that step goes
through the :class:`~itermap.analysis._reorth.Reorthonormalizer` with its
checks and Householder fallback. N = 20000, 4e5 nonzeros, k = 10 on 2 cores:
see benchmarks/RESULTS.md.
"""

from __future__ import annotations

import math

import numpy as np

from itermap import IterativeMap
from itermap._sparse_product import _kernel, _row_blocks, accumulate, pool, uses_thread_pool

from ._reorth import _exact_rank

__all__ = ["FusedSparseStep"]

_EPS = float(np.finfo(np.float64).eps)


class FusedSparseStep:
    """``(x, Q) -> (x', Q', log|diag R|)`` for one trajectory of a large sparse map.

    Build it with :meth:`maybe`, which returns None for any map or run it does not
    cover; the frames it returns must not be kept past the next call (two output
    buffers alternate).
    """

    @classmethod
    def maybe(cls, map_, x, Q, *, every: int, reorth) -> FusedSparseStep | None:
        """A fused step for this run, or None where the general loop must run."""
        if not (isinstance(map_, IterativeMap) and map_._kind == "sparse" and map_._uniform
                and map_.input_block is None and every == 1):
            return None
        if not (isinstance(x, np.ndarray) and isinstance(Q, np.ndarray) and x.shape[0] == 1
                and x.dtype == Q.dtype == map_._W.dtype == np.float64):
            return None
        k = Q.shape[-1]
        kernel = _kernel()
        if not 4 <= k < 128 or not uses_thread_pool(map_, k) or kernel is None:
            return None
        return cls(map_, k, reorth, kernel)

    def __init__(self, map_, k, reorth, kernel):
        from itermap._threads import n_threads

        self.W, self.bias, self.act, self.k = map_._W, map_.bias, map_.activations[0], k
        self.kernel = kernel
        self.reorth = reorth
        n = map_.dim
        reorth.set_loop_threads(np.empty((1, n, k)))  # BLAS at one thread beside the pool
        self.blocks = _row_blocks(self.W, n_threads())
        self.cols = np.empty((n, 1 + k))  # [x | Q]
        self.out = np.empty((n, 1 + k))  # W [x | Q]
        self.Y = np.empty((n, k))  # f'(z) * (W Q)
        self.frames = [np.empty((1, n, k)), np.empty((1, n, k))]
        self.turn = 0
        self.fresh = False  # whether cols holds the last step's (x, Q) already
        self.cond_limit, self.sqrt_eps = 0.01 / _EPS, math.sqrt(_EPS)

    def _product(self, block):
        lo, hi, part = block
        out = self.out[lo:hi]
        accumulate(self.kernel, part, self.cols, out)
        z = out[:, 0].copy()
        if self.bias is not None:
            z += self.bias[lo:hi]
        y = self.act.apply(z, np)
        Yb = np.multiply(out[:, 1:], self.act.derivative(z, np)[:, None], out=self.Y[lo:hi])
        return y, Yb.T @ Yb

    def _orthonormalize(self, i, y, Rinv, Qn):
        lo, hi, _ = self.blocks[i]
        q = np.matmul(self.Y[lo:hi], Rinv, out=Qn[lo:hi])
        self.cols[lo:hi, 0] = y
        self.cols[lo:hi, 1:] = q

    def __call__(self, x, Q):
        if not self.fresh:
            self.cols[:, 0] = x[0]
            self.cols[:, 1:] = Q[0]
        parts = list(pool().map(self._product, self.blocks))
        ys = [p[0] for p in parts]
        y = np.concatenate(ys)[None]
        factors = self._factor(sum(p[1] for p in parts))
        if factors is None:  # more than one pass needed: the checked, general path
            self.fresh = False
            Qn, logd, _ = self.reorth(self.Y[None].copy())
            return y, Qn, logd
        L, Rinv = factors
        frame = self.frames[self.turn]
        self.turn ^= 1
        list(pool().map(lambda i: self._orthonormalize(i, ys[i], Rinv, frame[0]),
                        range(len(self.blocks))))
        self.fresh = True
        logd = np.log(np.diagonal(L))[None]
        Q_out, logd, _ = _exact_rank(np, self.Y[None], frame, logd, None)
        if Q_out is not frame:
            self.fresh = False
        return y, Q_out, logd

    def _factor(self, G):
        """``(L, L^-T)`` of the Gram matrix where one CholeskyQR pass is enough, else None."""
        try:
            L = np.linalg.cholesky(G)
        except np.linalg.LinAlgError:
            return None
        d = np.diagonal(L)
        if not np.all(d > 0) or float(d.max() / d.min()) ** 2 > self.cond_limit:
            return None
        Rinv = np.linalg.inv(L.T)
        # the orthogonality loss ~eps kappa^2, kappa <= ||R||_F ||R^-1||_F (as in _reorth)
        if float(np.sum(L * L) * np.sum(Rinv * Rinv)) * _EPS > 1e-3 * self.sqrt_eps:
            return None
        return L, Rinv
