"""The worker side of :func:`~itermap.analysis.sweep` and its local :mod:`loky` pools, kept
for reuse, one per (workers, threads each)."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import mmap
import os
import re
import tempfile
import threading
import time
import traceback
import weakref
from concurrent.futures.process import BrokenProcessPool

import numpy as np

__all__ = ["run_point", "SerialExecutor", "local_pool", "run_on_local_pool"]


# --------------------------------------------------------------------------- worker side
_marks: dict[str, mmap.mmap] = {}  # in a worker: the start-marks file of the current sweep


def _mark_started(path, i):
    """Set byte ``i`` of the file ``path`` (mapped once per worker and sweep)."""
    marks = _marks.get(path)
    if marks is None:
        for old in _marks.values():
            old.close()
        _marks.clear()
        with open(path, "r+b") as fh:
            marks = _marks[path] = mmap.mmap(fh.fileno(), 0)
    marks[i] = 1  # a shared mapping: the caller sees it even if this process dies next


def run_point(function, params, seed_seq, started=None):
    """Run one point in a worker; never raises (the error travels back as data). It first
    sets byte ``i`` of the file ``started = (path, i)``: should the worker die, it ran."""
    try:
        if started is not None:
            _mark_started(*started)
        kwargs = dict(params)
        if seed_seq is not None:
            kwargs["rng"] = np.random.default_rng(seed_seq)
        return True, function(**kwargs)
    except Exception as exc:
        return False, (type(exc).__name__, str(exc), traceback.format_exc())


class SerialExecutor(cf.Executor):
    """Runs each submitted call at once in the calling process."""

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as exc:  # KeyboardInterrupt and friends stop the sweep
            fut.set_exception(exc)
        return fut


# Thread-count variables read by OpenBLAS, MKL, BLIS, OpenMP (torch too), Accelerate, numexpr
# when they load (threadpoolctl then limits those already loaded), and by itermap's own pools
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                "ITERMAP_NUM_THREADS")
_IDLE_WORKER_TIMEOUT = 300  # s; joblib's choice: idle workers exit, a new sweep respawns them
_WATCH_INTERVAL = 0.2  # s between a worker's checks that the calling process is alive


def _init_worker(driver_pid, n_threads):
    """Worker initializer: limit BLAS threads and itermap's own, and exit when the calling
    process dies."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n_threads)
    os.environ["ITERMAP_NUM_THREADS"] = str(n_threads)
    if os.getppid() != driver_pid:
        os._exit(1)
    threading.Thread(target=_exit_with_driver, args=(driver_pid,), daemon=True,
                     name="itermap-sweep-watchdog").start()


def _exit_with_driver(driver_pid):
    # loky's workers outlive a killed parent (an idle one until its timeout, a busy one until
    # its point ends); once the parent is gone the worker is adopted, and getppid changes
    while os.getppid() == driver_pid:
        time.sleep(_WATCH_INTERVAL)
    os._exit(1)


_pools: dict[tuple[int, int], object] = {}  # (workers, threads each) -> loky pool
_pools_lock = threading.Lock()


def _threads_per_worker(n_workers):
    """``cores // n_workers``, or less where the environment already asks for fewer."""
    from joblib.externals import loky

    n_threads = max(1, loky.cpu_count() // n_workers)
    for var in _THREAD_VARS:  # e.g. OMP_NUM_THREADS=1 set for the calling process
        value = os.environ.get(var, "")
        if value.strip().isdigit() and int(value) >= 1:
            n_threads = min(n_threads, int(value))
    return n_threads


def _new_pool(n_workers, n_threads):
    """A loky pool of ``n_workers`` processes with ``n_threads`` BLAS threads each."""
    from joblib.externals import loky

    return loky.ProcessPoolExecutor(
        max_workers=n_workers, timeout=_IDLE_WORKER_TIMEOUT, initializer=_init_worker,
        initargs=(os.getpid(), n_threads), env={v: str(n_threads) for v in _THREAD_VARS})


def local_pool(n_workers):
    """The shared pool of ``n_workers`` processes, started on first use and kept for reuse."""
    key = (n_workers, _threads_per_worker(n_workers))
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = _new_pool(*key)
        return pool


def _discard_pool(pool, *, quiet=False):
    """Drop a broken or interrupted pool, killing its workers; ``quiet`` silences loky's
    manager thread, which can print a second traceback after a KeyboardInterrupt."""
    with _pools_lock:
        for key in [k for k, v in _pools.items() if v is pool]:
            del _pools[key]
    manager = getattr(pool, "_executor_manager_thread", None)
    if quiet and isinstance(manager, threading.Thread):
        _silence(manager)
    pool.shutdown(wait=False, kill_workers=True)
    if quiet and isinstance(manager, threading.Thread):
        manager.join(timeout=5.0)


_silenced: weakref.WeakSet = weakref.WeakSet()  # threads whose exceptions are not printed
_hook_lock = threading.Lock()


def _silence(thread):
    """Keep ``thread``'s uncaught exception from being printed (threading.excepthook)."""
    with _hook_lock:
        if not _silenced and not getattr(threading.excepthook, "_itermap_quiet", False):
            previous = threading.excepthook

            def quiet(args, _previous=previous):
                if args.thread is not None and args.thread in _silenced:
                    return
                _previous(args)

            quiet._itermap_quiet = True
            threading.excepthook = quiet
        _silenced.add(thread)


def _worker_death(exc, started):
    """(error, message) of a point whose worker died."""
    codes = re.search(r"exit codes? of the workers? (?:are|is) \{([^}]*)\}", str(exc))
    code = codes.group(1) if codes else "unknown"
    if started:
        return (type(exc).__name__,
                f"the worker process died while running this point (exit code {code}): a "
                "crash in native code (segmentation fault), os._exit, or the operating "
                "system killing it (e.g. out of memory)")
    return type(exc).__name__, f"the worker pool broke before this point started: {exc}"


def run_on_local_pool(function, todo, points, seeds, n_workers, finish, fail):
    """Run the points ``todo`` on the local pool; a dead worker fails only its own point.

    A dead worker fails every unfinished future: points not yet started (each marks its
    start in a shared file) run again, suspects alone on a one-worker pool."""
    from joblib.externals.loky.process_executor import ShutdownExecutorError

    pool_gone = (BrokenProcessPool, ShutdownExecutorError)
    fd, marks = tempfile.mkstemp(prefix="itermap-sweep-", suffix=".marks")
    os.ftruncate(fd, len(points))  # one zero byte per point; a worker sets its point's

    def ran(i):
        os.lseek(fd, i, os.SEEK_SET)
        return os.read(fd, 1) == b"\x01"

    queue, suspects = sorted(todo), []
    pool = alone = None
    blind_breaks = 0
    try:
        while queue:
            pool = local_pool(n_workers)
            futures = {}
            # a pool that broke while submitting: what was not submitted waits for the next round
            with contextlib.suppress(*pool_gone):
                for i in queue:
                    futures[pool.submit(run_point, function, points[i], seeds[i],
                                        (marks, i))] = i
            submitted = set(futures.values())
            lost = [i for i in queue if i not in submitted]
            for fut in cf.as_completed(futures):
                # the point's pool broke or was shut down under it
                if fut.cancelled() or isinstance(fut.exception(), pool_gone):
                    lost.append(futures[fut])
                else:
                    finish(fut, futures[fut])
            if not lost:
                break
            _discard_pool(pool)
            running = [i for i in lost if ran(i)]
            if not running:  # no point was running (an idle worker was killed?): retry once
                blind_breaks += 1
                if blind_breaks > 1:
                    running = lost
            suspects += running
            queue = sorted(set(lost) - set(running))
        pool = None
        for i in sorted(suspects):
            os.lseek(fd, i, os.SEEK_SET)
            os.write(fd, b"\x00")
            alone = alone or _new_pool(1, _threads_per_worker(1))
            try:
                fut = alone.submit(run_point, function, points[i], seeds[i], (marks, i))
                exc = fut.exception()
            except BrokenProcessPool as broken:
                exc = broken
            if isinstance(exc, BrokenProcessPool):
                alone.shutdown(wait=False, kill_workers=True)
                alone = None
                fail(i, *_worker_death(exc, ran(i)))
            else:
                finish(fut, i)
    except BaseException:
        if pool is not None:  # an interrupt: stop the points still running
            _discard_pool(pool, quiet=True)
        raise
    finally:
        if alone is not None:
            alone.shutdown(wait=False, kill_workers=True)
        os.close(fd)
        with contextlib.suppress(OSError):  # Windows, while a worker still maps it
            os.remove(marks)
