"""Threads shared by itermap and its analyses: one pool, its options, BLAS thread limits.

Code built on itermap (the analyses) runs its parallel work through these, so
that nested pools and BLAS threads do not oversubscribe the cores. The
thresholds that decide when work is split over threads are fields of
:data:`OPTIONS` (a :class:`ThreadOptions`), documented there.

Examples
--------
>>> from itermap.threads import blas_limited, n_threads
>>> n_threads() >= 1
True
>>> with blas_limited(1):
...     pass
"""

from ._running._threads import (
    OPTIONS,
    ProcessLocalPool,
    ThreadOptions,
    blas_limited,
    n_threads,
    pool,
    scipy_blas_limited,
)

__all__ = ["OPTIONS", "ProcessLocalPool", "ThreadOptions", "blas_limited", "n_threads", "pool",
           "scipy_blas_limited"]
