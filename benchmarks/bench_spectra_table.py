"""The Lyapunov spectra of the whole shipped zoo through ``analysis.spectra_table`` (issue 29).

Workload: the driven top-12 spectra of the 216 zoo networks (108 per task, each task
with its own input: a flip-flop pulse train, a digit's rows repeated), 200 measured
steps after 50 of transient, one sweep point per network. Timed on the sweep's local
pool with 2 workers against 1 worker (target: 1.7x faster), and on a Dask
``LocalCluster`` of 2 single-threaded worker processes against 1 local worker
(recorded). Pools and the cluster are started and warmed up before timing.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

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


def _zoo_spectra(executor, quick):
    steps = 50 if quick else STEPS
    out = []
    for task in ("flip_flop", "digits"):
        maps = [r["map"] for r in datasets.zoo(task)]
        maps = maps[:16] if quick else maps
        out.append(spectra_table(maps, inputs=_inputs(task, steps + TRANSIENT), k=K,
                                 steps=steps, transient=TRANSIENT, executor=executor, seed=0))
    return out


def run(quick: bool = False) -> list[dict]:
    repeat = 1 if quick else 3
    rows = []
    t0 = time.perf_counter()
    first = _zoo_spectra(2, quick)
    print(f"first run with 2 workers (pool start included) {time.perf_counter() - t0:.1f} s; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    _zoo_spectra(1, quick)
    note = (f"{'32' if quick else '216'} zoo networks, driven top-{K} spectra, "
            f"{50 if quick else STEPS} + {TRANSIENT} steps")
    rows.append(compare("zoo spectra_table, 2 local workers vs 1 local worker",
                        lambda: _zoo_spectra(2, quick), lambda: _zoo_spectra(1, quick),
                        target="speedup >= 1.7", repeat=repeat, warmup=0, setup_note=note))
    from dask.distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        try:
            ex = client.get_executor()
            dask = _zoo_spectra(ex, quick)
            for a, b in zip(first, dask):
                np.testing.assert_array_equal(a.spectra, b.spectra)
            rows.append(compare("zoo spectra_table, Dask LocalCluster 2 procs vs 1 local worker",
                                lambda: _zoo_spectra(ex, quick), lambda: _zoo_spectra(1, quick),
                                target="speedup >= 1.6", repeat=repeat, warmup=0,
                                setup_note=note))
        finally:
            client.close()
            cluster.close()
    print(f"load average after timing {os.getloadavg()[0]:.2f}", flush=True)
    return rows


if __name__ == "__main__":
    run()
