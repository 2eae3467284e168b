"""Threads: itermap's one thread pool (forgotten in a forked child), its thresholds
(:data:`OPTIONS`) and BLAS thread limits (one threadpoolctl controller, found once;
``scipy_blas_limited`` holds SciPy's own OpenBLAS where its wheel carries one).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from dataclasses import dataclass

__all__ = ["OPTIONS", "ProcessLocalPool", "ThreadOptions", "blas_limited", "n_threads", "pool",
           "scipy_blas_limited"]


@dataclass
class ThreadOptions:
    """The work sizes from which itermap splits a step over its thread pool or changes method.

    Each is a break-even point, the defaults for a few cores: time a run at a few
    values (``benchmarks/bench_lyapunov.py``) and set the fields of :data:`OPTIONS`.
    ``ITERMAP_NUM_THREADS=1`` turns every split off.

    Attributes
    ----------
    sparse_min_work : int
        Multiply-adds (``nnz * (k + 1)``) per thread from which one trajectory
        of a sparse network runs the fused sparse stepper, its rows split over
        the threads (default ``2**20``).
    fused_sparse_k : tuple of int
        ``(lo, hi)``: one trajectory of a large sparse network runs the fused
        sparse stepper for ``lo <= k < hi`` tangent vectors (default (4, 128)).
    qr_small_frame_work : int
        ``n k^2`` below which a loop whose products run on the pool holds every
        BLAS library to one thread (default ``2**24``).

    Examples
    --------
    >>> from itermap._running._threads import OPTIONS
    >>> OPTIONS.sparse_min_work
    1048576
    """

    sparse_min_work: int = 1 << 20
    fused_sparse_k: tuple[int, int] = (4, 128)
    qr_small_frame_work: int = 1 << 24


#: itermap's thresholds for splitting work over threads (see :class:`ThreadOptions`).
OPTIONS = ThreadOptions()


def n_threads() -> int:
    """Threads for itermap's pool: the CPUs this process may run on, at most 8, and at
    most ``ITERMAP_NUM_THREADS`` (a positive integer, read at each call; 1: no split).

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    ValueError
        ``ITERMAP_NUM_THREADS`` is set to something other than a positive integer.

    Examples
    --------
    >>> import os
    >>> os.environ["ITERMAP_NUM_THREADS"] = "1"
    >>> n_threads()
    1
    >>> del os.environ["ITERMAP_NUM_THREADS"]
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    limit = os.environ.get("ITERMAP_NUM_THREADS", "").strip()
    if limit:
        value = int(limit) if limit.isdigit() else 0
        if value < 1:
            raise ValueError(f"ITERMAP_NUM_THREADS must be a positive integer, got {limit!r}")
        cpus = min(cpus, value)
    return max(1, min(8, cpus))


_WORKER_PREFIX = "itermap-pool"
_executor = None
_executor_lock = threading.Lock()


def _forget_executor() -> None:
    """In a forked child: the parent's executor came without its threads, so forget it."""
    global _executor, _executor_lock
    _executor, _executor_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def _shared_executor():
    global _executor
    if _executor is None:
        from concurrent.futures import ThreadPoolExecutor

        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=n_threads(),
                                               thread_name_prefix=_WORKER_PREFIX)
    return _executor


class ProcessLocalPool:
    """A handle on itermap's one thread pool, shared by the whole process.

    Calling the handle gives the pool, a ``concurrent.futures.ThreadPoolExecutor`` of
    :func:`n_threads` workers made at the first call (and again in a forked child, whose
    copy of the parent's has no threads). ``itermap.threads.pool`` is the handle itermap
    itself uses.

    Parameters
    ----------
    name : str, default "itermap"
        Only labels the caller; every handle shares the one pool.

    Examples
    --------
    >>> pool = ProcessLocalPool("itermap-doc")
    >>> pool().submit(sum, [1, 2]).result()
    3
    >>> pool.run_parts(abs, [-1, 2, -3])
    [1, 2, 3]
    """

    def __init__(self, name: str = "itermap"):
        self._name = name

    def __call__(self):
        return _shared_executor()

    def run_parts(self, fn, items) -> list:
        """``[fn(item) for item in items]``: the first on the calling thread, the rest on the pool.

        Every part finishes before the first exception is raised (none is left running
        over the caller's arrays); called from a pool thread, the parts run there in turn
        (waiting on its own pool could deadlock).
        """
        items = list(items)
        if threading.current_thread().name.startswith(_WORKER_PREFIX):
            return [fn(item) for item in items]
        jobs = [self().submit(fn, item) for item in items[1:]]
        results, error = [], None
        if items:
            try:
                results.append(fn(items[0]))
            except BaseException as exc:  # re-raised once the others are done
                error = exc
        for job in jobs:
            try:
                results.append(job.result())
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error
        return results


#: The pool itermap's parallel products and factorisations share.
pool = ProcessLocalPool()


@functools.lru_cache(maxsize=1)
def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # an optional speed-up
        return None
    import scipy.linalg.blas  # noqa: F401  # load SciPy's own BLAS, so the limits reach it
    return ThreadpoolController()


def blas_limited(threads: int = 1) -> contextlib.AbstractContextManager:
    """A context holding the BLAS libraries to ``threads`` threads (a no-op without
    threadpoolctl).

    For loops of many small products, where BLAS threads cost more than they give, and for
    work already split over itermap's pool (threads inside threads oversubscribe the cores).

    Parameters
    ----------
    threads : int, default 1
        The most threads each BLAS library may use inside the block.

    Returns
    -------
    contextlib.AbstractContextManager
        Restores the previous limits on leaving the block.

    Examples
    --------
    >>> from itermap._running._threads import blas_limited
    >>> with blas_limited(1):
    ...     float(np.ones((2, 2)) @ np.ones(2) @ np.ones(2))
    4.0
    """
    controller = _controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=threads, user_api="blas")


@functools.lru_cache(maxsize=1)
def _scipy_own_blas():
    """The controller of the BLAS library SciPy loads apart from NumPy's (pip wheels), or None."""
    controller = _controller()
    if controller is None:
        return None
    import scipy

    root = os.path.dirname(os.path.dirname(os.path.abspath(scipy.__file__)))
    own = [lib.filepath for lib in controller.lib_controllers
           if lib.user_api == "blas" and _inside_scipy(lib.filepath, root)]
    numpy_libs = [lib.filepath for lib in controller.lib_controllers
                  if lib.user_api == "blas" and lib.filepath not in own]
    if not own or not numpy_libs:  # one shared library: nothing alternates
        return None
    return controller.select(filepath=own)


def _inside_scipy(path: str, site: str) -> bool:
    rel = os.path.relpath(os.path.abspath(path), site)
    top = rel.split(os.sep, 1)[0]
    return top in ("scipy", "scipy.libs", ".dylibs") and not rel.startswith("..")


def scipy_blas_limited(threads: int = 1) -> contextlib.AbstractContextManager:
    """A context holding SciPy's own BLAS library, where it has one, to ``threads`` threads
    (so that its threads and NumPy's do not spin against each other in one loop).

    pip's SciPy wheels load a BLAS library of their own beside NumPy's; where both are one
    library (conda, a distribution's packages) this is a no-op, as it is without
    threadpoolctl.

    Parameters
    ----------
    threads : int, default 1
        The most threads SciPy's own BLAS may use inside the block.

    Returns
    -------
    contextlib.AbstractContextManager
        Restores the previous limit on leaving the block.

    Examples
    --------
    >>> from itermap._running._threads import scipy_blas_limited
    >>> with scipy_blas_limited(1):
    ...     pass
    """
    selected = _scipy_own_blas()
    if selected is None:
        return contextlib.nullcontext()
    return selected.limit(limits=threads)
