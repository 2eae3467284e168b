"""Lyapunov steps of a dense map's full spectrum, each frame kept as Householder reflectors.

A step is a Householder QR (``dgeqrt``, ``4/3 n^3``) and ``W Q`` formed from the
reflectors (``dgemqrt``, ``2 n^3``): as fast as one CholeskyQR pass and backward
stable at any conditioning [1]_ [2]_. One trajectory on two or more threads: the
QR runs by panels on the calling thread while a pool thread applies each final
panel to ``W``; several trajectories: the threads take whole trajectories.
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

import threading

import numpy as np

from ._nogil_blas import (
    PANEL,
    apply_frame,
    explicit_frame,
    householder_available,
    householder_frame,
)
from ._threads import n_threads, pool

__all__ = ["FusedSquareStep"]

# below this a frame's LAPACK calls and their Python overhead cost more than the general
# loop's batched calls
_MIN_N = 64


class FusedSquareStep:
    """The state ``(x, Q)`` of a batch of full-spectrum trajectories, stepped in place.

    :meth:`maybe` builds it or returns None; :meth:`advance`; :meth:`state`.
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
        self.bias, self.act = bias, act
        self.x = np.array(x, dtype=np.float64)
        B, n = self.x.shape
        # each trajectory's frame (a copy: the caller's stays; reflectors after a QR) and
        # W times it (the next step's tangent map before diag(f')), Fortran-ordered
        self.frames = [np.array(Q[b], order="F") for b in range(B)]
        self.products = [np.asfortranarray(self.W @ F) for F in self.frames]
        self.Ts = [np.empty((min(PANEL, n), n), order="F") for _ in range(B)]
        self.implicit = False  # the frames hold reflectors (after a QR) or Q itself
        threads = n_threads()
        self.groups = max(1, min(threads, B))
        self.overlap = B == 1 and threads > 1  # one trajectory: its QR beside its product
        halves = np.linspace(0, n, 3).astype(int)
        self.halves = [(int(a), int(b)) for a, b in zip(halves[:-1], halves[1:])]

    def hold_threads(self) -> None:
        """Inside the reorthonormaliser's ``with``: every BLAS call on one thread, as
        itermap's threads share the cores."""
        self.reorth.hold_blas()

    def _qr(self, Y, T, out):
        """``Y``'s QR in place (reflectors), and ``out <- W Q``: ``log|R_jj|``."""
        n = Y.shape[0]
        if not self.overlap or n <= 2 * PANEL:  # one or two panels: little to overlap
            logd = householder_frame(Y, T)
            np.copyto(out, self.W)
            if self.overlap:  # the product's rows split over two threads instead
                pool.run_parts(lambda r: apply_frame(Y, T, out[r[0]:r[1]]), self.halves)
            else:
                apply_frame(Y, T, out)
            return logd
        ready = {lo: threading.Event() for lo in range(0, n, PANEL)}

        def factor():
            try:
                return householder_frame(Y, T, panel_done=lambda lo, hi: ready[lo].set())
            finally:  # an error: let the other part finish before it is raised
                for event in ready.values():
                    event.set()

        def product():
            np.copyto(out, self.W)
            for lo, event in ready.items():
                event.wait()
                apply_frame(Y, T, out, cols=(lo, min(n, lo + PANEL)))

        return pool.run_parts(lambda part: factor() if part == 0 else product(), (0, 1))[0]

    def _product(self, Y, out) -> None:
        """``out <- W Y`` for an explicit frame (a step without a QR)."""
        if not self.overlap:
            np.matmul(self.W, Y, out=out)
            return
        pool.run_parts(lambda r: np.matmul(self.W[r[0]:r[1]], Y, out=out[r[0]:r[1]]),
                       self.halves)

    def _trajectory(self, b, qr):
        """Trajectory ``b``'s step: its new state, ``log|diag R|`` and column norms."""
        z = self.W @ self.x[b]
        if self.bias is not None:
            z += self.bias
        d = self.act.derivative(z, np)
        Y, out = self.products[b], self.frames[b]  # the old frame's buffer takes W Q'
        Y *= d[:, None]
        norms_sq = np.einsum("ij,ij->j", Y, Y)
        logd = None
        if qr:
            rows = None
            if not np.all(d != 0):  # rows a dead unit zeroed: the rank is at most their number
                rows = int(np.count_nonzero(np.any(Y != 0, axis=1)))
            logd = self._qr(Y, self.Ts[b], out)
            if rows is not None and rows < logd.size:
                logd[rows:] = -np.inf  # R_jj = 0 exactly there, where rounding leaves eps
        else:
            self._product(Y, out)
        self.frames[b], self.products[b] = Y, out
        return self.act.apply(z, np), logd, norms_sq

    def advance(self, *, qr: bool = True):
        """One step, and the QR of the new frames if ``qr``: ``log|diag R|`` (B, k) (None
        without ``qr``), the columns' squared norms before it (B, k) and the sum of the
        new states (a finiteness probe)."""
        B = self.x.shape[0]
        if self.groups == 1:
            out = [self._trajectory(b, qr) for b in range(B)]
        else:
            cuts = np.linspace(0, B, self.groups + 1).astype(int)
            out = [r for part in pool.run_parts(
                lambda span: [self._trajectory(b, qr) for b in range(*span)],
                zip(cuts[:-1], cuts[1:])) for r in part]
        self.x = np.stack([o[0] for o in out])
        self.implicit = qr
        norms_sq = np.stack([o[2] for o in out])
        logd = np.stack([o[1] for o in out]) if qr else None
        return logd, norms_sq, float(np.sum(self.x))

    def state(self):
        """``(x, Q)``: the states (B, n) and orthonormal frames (B, n, n), new arrays."""
        Q = np.stack([explicit_frame(F, T) if self.implicit else F
                      for F, T in zip(self.frames, self.Ts)])
        return self.x.copy(), Q
