"""Lyapunov steps of a dense map's full spectrum, with each frame kept as Householder reflectors.

For the full spectrum (``k = n``) of a dense network (:class:`~itermap.IterativeMap`) the
frame is square, and ``W Q`` can be formed from ``Q``'s Householder reflectors
directly (``dormqr``, ``2 n^3`` flops: those of the product with an explicit
``Q``) without forming ``Q`` first (``dorgqr``, ``4/3 n^3``). A step is then a
Householder QR (``dgeqrf``, ``4/3 n^3``) and one application of reflectors, against
a product and one (well-conditioned frames) or two (the ill-conditioned frames of
chaotic gains) CholeskyQR passes of ``7/3 n^3`` each: as fast as CholeskyQR at its
best, and backward stable at any conditioning, with no second pass and no
fallback. See :func:`itermap._running._reorth.householder_frame`.

One trajectory: itermap's threads take blocks of rows of ``W Q``, and the
factorisation runs on one core. Several: the threads take whole trajectories.
Every BLAS call runs on one thread.

References
----------
.. [1] G. H. Golub and C. F. Van Loan, *Matrix Computations*, 4th ed., Johns Hopkins
   University Press, 2013, sections 5.1-5.2 (Householder QR, the compact WY form).
.. [2] G. Benettin, L. Galgani, A. Giorgilli and J.-M. Strelcyn, "Lyapunov
   characteristic exponents for smooth dynamical systems and for Hamiltonian
   systems; a method for computing all of them", Meccanica 15, 9-30 (1980).
"""

from __future__ import annotations

import numpy as np

from ._reorth import apply_frame, explicit_frame, householder_available, householder_frame
from ._threads import n_threads, pool

__all__ = ["FusedSquareStep"]

# below this a frame's LAPACK calls and their Python overhead cost more than the general
# loop's batched calls (n = 32, B = 8: 3x slower)
_MIN_N = 64


class FusedSquareStep:
    """The state ``(x, Q)`` of a batch of full-spectrum trajectories, stepped in place.

    Same interface as :class:`itermap._running._fused_dense.FusedDenseStep`:
    :meth:`maybe`, :meth:`advance`, :meth:`state`.
    """

    @classmethod
    def maybe(cls, W, bias, act, x, Q, *, reorth) -> FusedSquareStep | None:
        """A fused step from ``(x, Q)`` for this run, or None where another path must run."""
        if not (isinstance(x, np.ndarray) and isinstance(Q, np.ndarray) and Q.ndim == 3
                and x.dtype == Q.dtype == np.float64 and W.dtype == np.float64):
            return None
        n, k = Q.shape[-2:]
        if k != n or n < _MIN_N or not householder_available():
            return None
        return cls(W, bias, act, x, Q, reorth)

    def __init__(self, W, bias, act, x, Q, reorth):
        self.reorth = reorth
        self.W = np.asfortranarray(W)
        self.Wc = np.ascontiguousarray(W)  # for the state's product
        self.bias, self.act = bias, act
        self.x = np.array(x, dtype=np.float64)
        B, n = self.x.shape
        # each trajectory's frame (a copy: the caller's stays) and the next product's
        # buffer, Fortran-ordered
        self.frames = [[np.array(Q[b], order="F"), np.empty((n, n), order="F")]
                       for b in range(B)]
        self.taus = [np.empty(n) for _ in range(B)]
        self.turn = 0
        self.implicit = False  # the frames hold reflectors (after a QR) or Q itself
        threads = n_threads()
        self.groups = max(1, min(threads, B))
        parts = max(1, min(threads, n // 32)) if B == 1 else 1
        edges = np.linspace(0, n, parts + 1).astype(int)
        self.rows = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]

    def hold_threads(self) -> None:
        """Inside the reorthonormaliser's ``with``: every BLAS call on one thread, as
        itermap's threads share the cores."""
        self.reorth.hold_blas()

    def _rows_of(self, b, lo, hi, qr):
        """Rows ``lo:hi`` of trajectory ``b``'s next frame ``f'(z) W Q`` and state."""
        F, out = self.frames[b][self.turn], self.frames[b][self.turn ^ 1]
        M = out[lo:hi]
        if self.implicit:
            M[...] = self.W[lo:hi]
            apply_frame(F, self.taus[b], M)
        else:
            np.matmul(self.W[lo:hi], F, out=M)
        z = self.Wc[lo:hi] @ self.x[b]
        if self.bias is not None:
            z += self.bias[lo:hi]
        d = self.act.derivative(z, np)
        M *= d[:, None]
        return self.act.apply(z, np), d

    def _trajectory(self, b, qr):
        """Trajectory ``b``'s step whole: its ``log|diag R|``, column norms and state."""
        y, d = self._rows_of(b, 0, self.x.shape[1], qr)
        return (y, d) + self._factor(b, d, qr)

    def _factor(self, b, d, qr):
        M = self.frames[b][self.turn ^ 1]
        norms_sq = np.einsum("ij,ij->j", M, M)
        if not qr:
            return None, norms_sq
        rows = None
        if not np.all(d != 0):  # rows a dead unit zeroed: the rank is at most their number
            rows = int(np.count_nonzero(np.any(M != 0, axis=1)))
        logd = householder_frame(M, self.taus[b])
        if rows is not None and rows < logd.size:
            logd[rows:] = -np.inf  # R_jj = 0 exactly there, where rounding leaves eps
        return logd, norms_sq

    def advance(self, *, qr: bool = True):
        """One step, and the QR of the new frames if ``qr``.

        Returns ``log|diag R|`` (B, k), the squared norms of the frames' columns
        before the QR (B, k) and the sum of the new states (a finiteness probe);
        without ``qr`` the first is None and the frames are left unnormalised.
        """
        B = self.x.shape[0]
        if B == 1:
            parts = pool.run_parts(lambda r: self._rows_of(0, r[0], r[1], qr), self.rows)
            y, d = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            out = [(y, d) + self._factor(0, d, qr)]
        else:
            cuts = np.linspace(0, B, self.groups + 1).astype(int)
            out = [r for part in pool.run_parts(
                lambda span: [self._trajectory(b, qr) for b in range(*span)],
                zip(cuts[:-1], cuts[1:])) for r in part]
        self.x = np.stack([o[0] for o in out])
        self.turn ^= 1
        self.implicit = qr
        norms_sq = np.stack([o[3] for o in out])
        logd = np.stack([o[2] for o in out]) if qr else None
        return logd, norms_sq, float(np.sum(self.x))

    def state(self):
        """``(x, Q)``: the states (B, n) and orthonormal frames (B, n, n), new arrays."""
        Q = np.empty((len(self.frames),) + self.frames[0][0].shape)
        for b, pair in enumerate(self.frames):
            F = pair[self.turn].copy(order="F")
            if self.implicit:
                explicit_frame(F, self.taus[b])
            Q[b] = F
        return self.x.copy(), Q
