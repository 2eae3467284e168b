"""The Lyapunov spectra of the whole shipped zoo through ``analysis.spectra_table`` (issue 29).

Workload: the driven top-12 spectra of the 216 zoo networks (108 per task, each task
with its own input: a flip-flop pulse train, a digit's rows repeated), 200 measured
steps after 50 of transient, one sweep point per network. Timed on the sweep's local
pool with 2 workers against 1 worker (target: 1.7x faster), and on a Dask
``LocalCluster`` of 2 single-threaded worker processes against 1 local worker
(recorded). Pools and the cluster are started and warmed up before timing; the
zoo is loaded once, outside the timing. Each worker's BLAS threads are read with
threadpoolctl inside it and printed, with the calling process's CPU time per run.
"""

from __future__ import annotations

import os

# one BLAS thread per worker, stated: the sweep would give one worker cores // 1 = 2 (a
# second row times that baseline too); these spectra's matrices (22-50 units, 12
# vectors) gain nothing from a second BLAS thread
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
for _var in _THREAD_VARS:
    os.environ[_var] = "1"

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._timing import compare  # noqa: E402
from itermap import datasets  # noqa: E402
from itermap.analysis import spectra_table  # noqa: E402

K, STEPS, TRANSIENT = 12, 200, 50


def _inputs(task, n):
    if task == "flip_flop":
        return datasets.flip_flop(1, n, p=0.1, rng=0)[0][:, 0]
    x = datasets.digits()[0][0].reshape(8, 8)
    return np.tile(x, (n // 8 + 1, 1))[:n]


def _zoo_maps(quick):
    maps = {task: [r["map"] for r in datasets.zoo(task)] for task in ("flip_flop", "digits")}
    return {task: (m[:16] if quick else m) for task, m in maps.items()}


def _zoo_spectra(executor, quick, maps):
    steps = 50 if quick else STEPS
    return [spectra_table(m, inputs=_inputs(task, steps + TRANSIENT), k=K, steps=steps,
                          transient=TRANSIENT, executor=executor, seed=0)
            for task, m in maps.items()]


def _blas_threads(point, rng=None):
    from threadpoolctl import threadpool_info

    return {"threads": max(d["num_threads"] for d in threadpool_info()), "pid": os.getpid()}


def _threads_seen(executor):
    """The BLAS threads of each worker, read by threadpoolctl inside the worker."""
    from itermap.analysis import sweep

    res = sweep(_blas_threads, {"point": list(range(8))}, executor=executor, seed=0,
                progress=False)
    return sorted({r["threads"] for r in res.records})


def _parent_cpu(executor, quick, maps):
    t0 = time.process_time()
    _zoo_spectra(executor, quick, maps)
    return time.process_time() - t0


def run(quick: bool = False) -> list[dict]:
    repeat = 1 if quick else 3
    rows = []
    maps = _zoo_maps(quick)  # loaded once: the timing is spectra_table's alone
    t0 = time.perf_counter()
    first = _zoo_spectra(2, quick, maps)
    print(f"first run with 2 workers (pool start included) {time.perf_counter() - t0:.1f} s; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    _zoo_spectra(1, quick, maps)
    threads = {w: _threads_seen(w) for w in (1, 2)}
    cpu = {w: _parent_cpu(w, quick, maps) for w in (1, 2)}
    note = (f"{'32' if quick else '216'} zoo networks, driven top-{K} spectra, "
            f"{50 if quick else STEPS} + {TRANSIENT} steps; BLAS threads per worker "
            f"(threadpoolctl, in the workers): 1 worker {threads[1]}, 2 workers {threads[2]}; "
            f"CPU of the calling process per run: {cpu[1]:.2f} s (1 worker), "
            f"{cpu[2]:.2f} s (2 workers)")
    rows.append(compare("zoo spectra_table, 2 local workers vs 1 local worker",
                        lambda: _zoo_spectra(2, quick, maps),
                        lambda: _zoo_spectra(1, quick, maps),
                        target="speedup >= 1.7", repeat=repeat, warmup=0, setup_note=note))
    # the sweep's own default for one worker: cores // workers = 2 BLAS threads
    blas = os.environ["OPENBLAS_NUM_THREADS"]
    try:
        for var in _THREAD_VARS:
            os.environ[var] = "2"
        seen = _threads_seen(1)
        rows.append(compare(
            "zoo spectra_table, 2 local workers (1 BLAS thread each) vs 1 local worker with "
            "2 BLAS threads", lambda: _zoo_spectra(2, quick, maps),
            lambda: _zoo_spectra(1, quick, maps), target="speedup >= 1.7", repeat=repeat,
            warmup=0, setup_note=f"{note}; baseline's BLAS threads {seen}"))
    finally:
        for var in _THREAD_VARS:
            os.environ[var] = blas
    from dask.distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        try:
            ex = client.get_executor()
            dask = _zoo_spectra(ex, quick, maps)
            for a, b in zip(first, dask):
                np.testing.assert_array_equal(a.spectra, b.spectra)
            rows.append(compare("zoo spectra_table, Dask LocalCluster 2 procs vs 1 local worker",
                                lambda: _zoo_spectra(ex, quick, maps),
                                lambda: _zoo_spectra(1, quick, maps),
                                target="speedup >= 1.6", repeat=repeat, warmup=0,
                                setup_note=note))
        finally:
            client.close()
            cluster.close()
    print(f"load average after timing {os.getloadavg()[0]:.2f}", flush=True)
    return rows


if __name__ == "__main__":
    run()
