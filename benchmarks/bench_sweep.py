"""Parameter sweeps: parallel efficiency and per-point overhead of the engines (issues 7, 12).

Workload: the top-10 Lyapunov exponents of a random tanh network (QR method,
written here in plain NumPy so the figure does not move with the analysis
code), one network per point, 8 gains x 8 trials = 64 points.

Engines: the sweep's own local pool (loky through joblib; ``executor=1`` and
``executor=2``), a ``concurrent.futures.ProcessPoolExecutor`` passed in (the
engine before issue 12), and a Dask ``LocalCluster`` with 2 single-threaded
worker processes, each started once and warmed up, so the figures are the
steady-state cost of a sweep; start-up times are printed separately. The
local pool gives each worker ``cores // workers`` BLAS threads.
"""

from __future__ import annotations

import os

# one BLAS thread per worker process, or 2 workers would fight over the cores
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import functools  # noqa: E402
import multiprocessing  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._timing import compare, time_call  # noqa: E402
from itermap.analysis import sweep  # noqa: E402
from itermap.analysis._sweep_pool import local_pool as _local_pool  # noqa: E402  (sweep's pool)

N, K = 128, 10


def lyapunov_top10(gain, trial, rng, *, n=N, steps=800, k=K):
    """Top-k Lyapunov exponents of x -> tanh(W x), W_ij ~ N(0, gain^2 / n), by QR."""
    W = rng.normal(scale=gain / np.sqrt(n), size=(n, n))
    x = rng.normal(size=n)
    for _ in range(100):  # transient
        x = np.tanh(W @ x)
    Q = np.linalg.qr(rng.normal(size=(n, k)))[0]
    sums = np.zeros(k)
    for _ in range(steps):
        x = np.tanh(W @ x)
        Q, R = np.linalg.qr((1.0 - x * x)[:, None] * (W @ Q))
        sums += np.log(np.abs(np.diag(R)))
    lyap = sums / steps
    return {"lyap_max": float(lyap[0]), "spectrum": lyap}


def noop(i):
    return i


def _all_points_in_one_task(points, steps):
    """The baseline: the same points as one plain loop in one worker (no engine per point)."""
    seeds = np.random.SeedSequence(0).spawn(len(points))
    return [lyapunov_top10(rng=np.random.default_rng(s), steps=steps, **p)
            for p, s in zip(points, seeds)]


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def run(quick: bool = False) -> list[dict]:
    gains = np.linspace(0.5, 2.5, 4 if quick else 8).tolist()
    trials = list(range(4 if quick else 8))
    steps = 200 if quick else 800
    repeat = 1 if quick else 3
    grid = {"gain": gains, "trial": trials}
    points = [{"gain": g, "trial": t} for g in gains for t in trials]
    n_pts = len(points)
    work = functools.partial(lyapunov_top10, steps=steps)

    rows = []
    t0 = time.perf_counter()
    first = sweep(work, grid, executor=2, seed=0, progress=False)
    t_pool_first = time.perf_counter() - t0
    sweep(noop, {"i": [0]}, executor=1, progress=False)  # start the 1-worker pool
    old_pool = ProcessPoolExecutor(2, mp_context=_context())  # the engine before issue 12
    assert sweep(work, grid, executor=old_pool, seed=0, progress=False).equals(first)
    from dask.distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        t_dask_start = time.perf_counter() - t0
    try:
        dask_ex = client.get_executor()
        via_dask = sweep(work, grid, executor=dask_ex, seed=0, progress=False)
        assert via_dask.equals(first), "the Dask sweep must give the local table bit for bit"
        print(f"start-up: 2-process loky pool + first sweep {t_pool_first:.2f} s, Dask "
              f"LocalCluster "
              f"(2 worker processes) {t_dask_start:.2f} s; load average before timing "
              f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

        def one_worker():
            return sweep(work, grid, executor=1, seed=0, progress=False)

        def two_workers():
            return sweep(work, grid, executor=2, seed=0, progress=False)

        def dask_two():
            return sweep(work, grid, executor=dask_ex, seed=0, progress=False)

        def one_task():  # in the very pool (and BLAS threads) of executor=1
            return _local_pool(1).submit(_all_points_in_one_task, points, steps).result()

        note = (f"{n_pts} points, top-{K} QR Lyapunov of an N={N} tanh net, {steps} steps; "
                "local NumPy workload (not analysis.lyapunov_spectrum)")
        rows.append(compare(f"sweep {n_pts} pts, 1 local worker vs same loop as 1 task",
                            one_worker, one_task, target="ratio <= 1.05", repeat=repeat,
                            setup_note=note))
        rows.append(compare(f"sweep {n_pts} pts, 2 local workers vs 1 local worker",
                            two_workers, one_worker, target="speedup >= 1.7", repeat=repeat,
                            setup_note=note))
        rows.append(compare(f"sweep {n_pts} pts, Dask LocalCluster 2 procs vs 1 local worker",
                            dask_two, one_worker, target="speedup >= 1.6", repeat=repeat,
                            setup_note=note))
        per_point = rows[0]["baseline_s"] / n_pts
        print(f"load average after timing {os.getloadavg()[0]:.2f}", flush=True)
        # per-point overhead of each engine: a sweep of no-op points
        m = 64 if quick else 256
        overheads = {}
        for label, ex in (("1 local worker", 1), ("2 local workers", 2),
                          ("2 procs, ProcessPoolExecutor passed in", old_pool),
                          ("Dask 2 procs", dask_ex)):
            t = time_call(lambda ex=ex: sweep(noop, {"i": list(range(m))}, executor=ex,
                                              progress=False), repeat=repeat)
            over = overheads[label] = t / m
            ratio = over / per_point
            ok = ratio <= 0.05
            print(f"{'per-point overhead, ' + label:<58} {over * 1e3:9.3f} ms/pt = "
                  f"{ratio * 100:5.2f} % of one point ({per_point * 1e3:.1f} ms)  "
                  f"[ratio <= 0.05: {'met' if ok else 'MISSED'}]", flush=True)
            rows.append({"name": f"per-point overhead, {label} (no-op x{m}) vs one point",
                         "ours_s": over, "baseline_s": per_point, "ratio": ratio,
                         "speedup": 1 / ratio, "target": "ratio <= 0.05", "met": ok,
                         "note": "no-op sweep time / points, against the work of one point"})
        ours, base = overheads["2 local workers"], overheads[
            "2 procs, ProcessPoolExecutor passed in"]
        print(f"{'per-point overhead, loky pool vs ProcessPoolExecutor':<58} "
              f"{ours * 1e3:.3f} / {base * 1e3:.3f} ms/pt = ratio {ours / base:.2f} "
              "(informative: start marks and recovery bookkeeping)", flush=True)
        rows.append({"name": "per-point overhead, 2-worker loky pool vs ProcessPoolExecutor",
                     "ours_s": ours, "baseline_s": base, "ratio": ours / base,
                     "speedup": base / ours, "target": "ratio <= 1e9", "met": True,
                     "note": "informative"})
        rows.append(_dead_worker_row(quick))
    finally:
        client.close()
        cluster.close()
        old_pool.shutdown()
    return rows


def dies_or_sleeps(i, *, dead, delay):
    if i == dead:
        os.kill(os.getpid(), 11)  # SIGSEGV
    time.sleep(delay)
    return i


def _dead_worker_row(quick):
    """What one segfaulting point costs: 20 points of 50 ms with and without it."""
    grid = {"i": list(range(20))}
    delay = 0.05

    def with_death():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sweep(functools.partial(dies_or_sleeps, dead=7, delay=delay), grid,
                        executor=2, progress=False)
        assert len(res) == 19 and len(res.failures) == 1
        return res

    def without():
        return sweep(functools.partial(dies_or_sleeps, dead=-1, delay=delay), grid,
                     executor=2, progress=False)

    return compare("20 pts of 50 ms, 2 workers: one segfaults vs none", with_death, without,
                   target="ratio <= 1e9", repeat=1 if quick else 3,
                   setup_note="informative: the dead worker's pool is restarted twice "
                              "(once in the sweep, once when its point runs alone)")


if __name__ == "__main__":
    run()
