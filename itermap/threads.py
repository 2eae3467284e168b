"""Threads shared by itermap and its analyses: one pool per purpose, BLAS thread limits.

Code built on itermap (the analyses) runs its parallel work through these, so
that nested pools and BLAS threads do not oversubscribe the cores.

Examples
--------
>>> from itermap.threads import blas_limited, n_threads
>>> n_threads() >= 1
True
>>> with blas_limited(1):
...     pass
"""

from ._sparse_product import _kernel as sparse_kernel
from ._sparse_product import pool as sparse_pool
from ._sparse_product import uses_thread_pool
from ._threads import ProcessLocalPool, blas_limited, n_threads, scipy_blas_limited

__all__ = ["ProcessLocalPool", "blas_limited", "n_threads", "scipy_blas_limited",
           "sparse_kernel", "sparse_pool", "uses_thread_pool"]
