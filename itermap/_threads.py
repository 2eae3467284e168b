"""Holding BLAS to a number of threads, cheaply enough for an inner loop.

``threadpoolctl.threadpool_limits`` finds the loaded BLAS libraries anew on every
call (it reads the process's memory map: about a millisecond). The loops that hold
BLAS to one thread per step or per QR use one controller, found once.
"""

from __future__ import annotations

import contextlib
import functools

__all__ = ["blas_limited"]


@functools.lru_cache(maxsize=1)
def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # an optional speed-up
        return None
    return ThreadpoolController()


def blas_limited(threads: int = 1):
    """A context holding the BLAS libraries to ``threads`` threads (a no-op without
    threadpoolctl).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap._threads import blas_limited
    >>> with blas_limited(1):
    ...     float(np.ones((2, 2)) @ np.ones(2) @ np.ones(2))
    4.0
    """
    controller = _controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=threads, user_api="blas")
