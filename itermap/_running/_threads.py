"""Threads: itermap's one thread pool, its thresholds, and BLAS thread limits.

Every parallel part of itermap's linear algebra (the split sparse product, the
fused tangent steps, frames factorised without the GIL) runs on one executor,
made at first use and forgotten in a forked child (``os.register_at_fork``). The
work sizes from which a split pays are the fields of :data:`OPTIONS`
(:class:`ThreadOptions`), documented defaults that a user may change.
``threadpoolctl.threadpool_limits`` finds the loaded BLAS libraries anew on every
call; the limits here use one controller, found once. ``scipy_blas_limited``
holds only SciPy's own OpenBLAS, where its pip wheel carries one apart from
NumPy's.
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

    Each is a break-even point: below it, handing work to a thread costs more
    than it saves. The defaults suit a few cores; on another machine, time a
    run at a few values (``benchmarks/bench_lyapunov.py``) and set the fields
    of :data:`OPTIONS`. ``ITERMAP_NUM_THREADS=1`` turns every split off.

    Attributes
    ----------
    sparse_min_work : int
        Multiply-adds (``nnz * columns``) per thread from which a SciPy CSR
        product ``S @ V`` is split by rows (default ``2**20``).
    fused_dense_min_k : int
        Tangent vectors from which one trajectory of a dense float64 network
        runs the fused stepper, its rows split over the threads (default 128).
    fused_sparse_k : tuple of int
        ``(lo, hi)``: one trajectory of a large sparse network runs the fused
        sparse stepper for ``lo <= k < hi`` tangent vectors (default (4, 128)).
    gather_bytes : int
        Bytes of ``[x | Y]`` rows that one column part of the fused sparse
        stepper gathers, to stay in a core's cache (default ``2**20``).
    frames_min_k : int
        Tangent vectors from which a batch of trajectories of a dense network
        is stepped and factorised in groups on the threads (default 128).
    qr_per_matrix_k : int
        Columns from which a NumPy float64 frame is factorised one matrix at a
        time by SciPy's ``syrk``/``potrf``/``trsm`` without the GIL, rather than
        by NumPy's batched inverse and product (default 128).
    qr_small_frame_work : int
        ``n k^2`` below which a loop whose products run on the pool holds every
        BLAS library to one thread: the factorisation's products are too small
        to share, and BLAS threads spinning after them slow the pool's work
        (default ``2**24``).
    qr_split_work : int
        Work ``B n k^2`` per thread from which a batch of Householder QRs, in a
        loop that holds BLAS to one thread, is split over the pool (default
        ``2**22``).

    Examples
    --------
    >>> from itermap._running._threads import OPTIONS
    >>> OPTIONS.sparse_min_work
    1048576
    """

    sparse_min_work: int = 1 << 20
    fused_dense_min_k: int = 128
    fused_sparse_k: tuple[int, int] = (4, 128)
    gather_bytes: int = 1 << 20
    frames_min_k: int = 128
    qr_per_matrix_k: int = 128
    qr_small_frame_work: int = 1 << 24
    qr_split_work: int = 1 << 22


#: itermap's thresholds for splitting work over threads (see :class:`ThreadOptions`).
OPTIONS = ThreadOptions()


def n_threads() -> int:
    """Threads for itermap's own pools: the CPUs this process may run on, at most 8.

    The environment variable ``ITERMAP_NUM_THREADS`` (a positive integer, read at
    each call) lowers it, as ``OMP_NUM_THREADS`` does for BLAS: 1 runs every
    product and factorisation on the calling thread.

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
    """A handle on itermap's one thread pool, made at first use and anew in a forked child.

    Every handle shares one executor (``name`` only labels the caller). A child
    forked after the pool started inherits the executor object but not its
    threads: ``os.register_at_fork`` makes the child forget it, so work submitted
    there runs on a fresh one.

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
        """``[fn(item) for item in items]``: the first on the calling thread (one handoff
        fewer), the others on the pool.

        Every part finishes before an exception from any of them is raised (the first
        one's), so that none is left running over the caller's arrays. Called from one
        of the pool's own threads, the parts run one after another there: a part that
        waited on the pool it runs on could wait forever.
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
    try:  # load SciPy's BLAS library, where it has its own, so that the limits reach it
        import scipy.linalg.blas  # noqa: F401
    except ImportError:
        pass
    return ThreadpoolController()


def blas_limited(threads: int = 1):
    """A context holding the BLAS libraries to ``threads`` threads (a no-op without
    threadpoolctl).

    Examples
    --------
    >>> import numpy as np
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
    """The controller of a BLAS library that SciPy loads apart from NumPy's, or None.

    pip wheels ship one OpenBLAS inside each package (``numpy.libs``, ``scipy.libs``),
    each with its own thread pool; conda and system builds share one library.
    """
    controller = _controller()
    if controller is None:
        return None
    try:
        import scipy
    except ImportError:
        return None
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


def scipy_blas_limited(threads: int = 1):
    """A context holding SciPy's own BLAS library, where it has one, to ``threads`` threads.

    NumPy's and SciPy's pip wheels each carry an OpenBLAS with its own thread pool.
    A loop that alternates NumPy products with ``scipy.linalg.blas``/``lapack`` calls
    at default threads leaves each pool's threads spinning against the other's
    (see benchmarks/RESULTS.md). Holding
    SciPy's pool to one thread for the whole loop (entered once) leaves NumPy's
    products their threads. A no-op where both share one library, or without threadpoolctl.

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
