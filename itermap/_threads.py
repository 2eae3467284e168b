"""Threads: BLAS thread limits cheap enough for a loop, and itermap's own thread pools.

``threadpoolctl.threadpool_limits`` finds the loaded BLAS libraries anew on every
call (it reads the process's memory map: about a millisecond); the limits here use
one controller, found once. ``scipy_blas_limited`` holds only SciPy's own OpenBLAS,
where its pip wheel carries one apart from NumPy's. ``ProcessLocalPool`` is the
thread pool of the parallel products and solves, made anew in a forked child.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading

__all__ = ["ProcessLocalPool", "blas_limited", "n_threads", "scipy_blas_limited"]


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


class ProcessLocalPool:
    """A thread pool made at first use, and made anew in a forked child.

    A child forked after the parent's pool started inherits the pool object but not
    its threads: work submitted there would wait forever (a sweep's fork-context
    process pool after a parallel product in the parent).

    Examples
    --------
    >>> pool = ProcessLocalPool("itermap-doc")
    >>> pool().submit(sum, [1, 2]).result()
    3
    >>> pool.run_parts(abs, [-1, 2, -3])
    [1, 2, 3]
    """

    def __init__(self, name: str):
        self._name = name
        self._pid: int | None = None
        self._executor = None
        self._lock = threading.Lock()

    def __call__(self):
        from concurrent.futures import ThreadPoolExecutor

        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._executor = ThreadPoolExecutor(max_workers=n_threads(),
                                                        thread_name_prefix=self._name)
                    self._pid = pid
        return self._executor

    def run_parts(self, fn, items) -> list:
        """``[fn(item) for item in items]``: the first on the calling thread (one handoff
        fewer), the others on this pool.

        Every part finishes before an exception from any of them is raised (the first
        one's), so that none is left running over the caller's arrays.
        """
        items = list(items)
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
    >>> from itermap._threads import blas_limited
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
    at default threads leaves each pool's threads spinning against the other's: on
    2 cores a 256 x 256 product followed by a SciPy ``dsyrk`` took 15 ms instead of
    0.9 ms. Holding SciPy's pool to one thread for the whole loop (entered once: a
    limit costs about a millisecond) leaves NumPy's products their threads. A no-op
    where both share one library, or without threadpoolctl.

    Examples
    --------
    >>> from itermap._threads import scipy_blas_limited
    >>> with scipy_blas_limited(1):
    ...     pass
    """
    selected = _scipy_own_blas()
    if selected is None:
        return contextlib.nullcontext()
    return selected.limit(limits=threads)
