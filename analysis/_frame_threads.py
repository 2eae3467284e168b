"""A dense map's batched tangent loop with its trajectories split over threads.

For a batch of ``B >= 2`` trajectories of a dense :class:`~itermap.IterativeMap`
with large frames (``k >= 128``: the Reorthonormalizer factorises them one at
a time), each step is ``B`` matrix products and ``B`` CholeskyQRs. Left to
themselves, NumPy's BLAS threads split each product while the factorisations
run on one core; worse, the BLAS threads spin after each product and slow
whatever runs next on the cores. Here every BLAS call runs on one thread, and
itermap's threads take groups of trajectories instead: the products through
NumPy (which releases the GIL), the factorisations through
:mod:`._nogil_blas`. N = 256, B = 8 on 2 cores: see benchmarks/RESULTS.md.
"""

from __future__ import annotations

import numpy as np

from itermap import IterativeMap
from itermap.threads import ProcessLocalPool, n_threads

from ._nogil_blas import available

__all__ = ["frame_groups", "step_frames"]

# from this many columns the Reorthonormalizer factorises one frame at a time
_MIN_K = 128

_pool = ProcessLocalPool("itermap-frames")


def frame_groups(map_, Q) -> int:
    """Into how many groups of trajectories (threads) the loop over frames ``Q`` splits.

    1 (no split) unless ``map_`` is a dense :class:`~itermap.IterativeMap` on NumPy,
    ``Q`` a float64 NumPy batch of frames of ``k >= 128`` columns, SciPy's routines
    can be called without the GIL, and there are at least two trajectories and at
    least half as many as CPUs (with BLAS at one thread, fewer groups than that
    would leave most cores to idle through the products).
    """
    if not (isinstance(map_, IterativeMap) and map_._kind == "dense"
            and map_.backend == "numpy" and isinstance(Q, np.ndarray) and Q.ndim == 3
            and Q.dtype == np.float64):
        return 1
    B, _, k = Q.shape
    cpus = n_threads()
    if B < max(2, cpus // 2) or k < _MIN_K or not available():
        return 1
    return min(cpus, B)


def step_frames(map_, x, Q, u, groups: int):
    """``map_.step_with_tangent(x, Q, u)`` with the trajectories in ``groups`` threads."""
    B = x.shape[0]
    cuts = np.linspace(0, B, groups + 1).astype(int)
    batched_u = u is not None and getattr(u, "ndim", 0) == 2

    def part(span):
        lo, hi = span
        return map_.step_with_tangent(x[lo:hi], Q[lo:hi], u[lo:hi] if batched_u else u)

    parts = _pool.run_parts(part, zip(cuts[:-1], cuts[1:]))
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
