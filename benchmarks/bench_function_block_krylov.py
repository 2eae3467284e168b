"""Newton-Krylov on networks with function blocks, preconditioned or not (round 16).

A sparse two-block network (density 0.1 per diagonal block, gain g) whose second block
also gets a ``FeedForward`` of the first (16 hidden units): ``find_fixed_points(method=
"newton-krylov")`` from 3 starts, with the map's ``approximate_jacobian`` (the LU
preconditioner) and with it returning None (GMRES unpreconditioned, as before round
16), interleaved in one process, CPU time with one BLAS thread. Points are counted at
residual <= 1e-10, computed here from the weights by plain products.

Run: ``OPENBLAS_NUM_THREADS=1 python -m benchmarks.bench_function_block_krylov`` (or
``python -m benchmarks function_block_krylov``).
"""

from __future__ import annotations

import os
import time

import numpy as np
import scipy.sparse as sp

import itermap
from itermap.analysis import find_fixed_points
from itermap.block_functions import FeedForward


def network(n, gain, seed=0):
    """The network and its step written from the weights."""
    h = n // 2
    rng = np.random.default_rng(seed)
    F1, F2 = rng.normal(size=(16, h)) * 0.3, rng.normal(size=(h, 16)) * 0.3
    Ws = []
    for k in (1, 2):
        g = np.random.default_rng(seed + k)
        W = sp.random(h, h, density=0.1, random_state=g, data_rvs=g.standard_normal)
        Ws.append((W * (gain / np.sqrt(h * 0.1))).tocsr())
    m = itermap.IterativeMap(itermap.BlockMatrix([h, h], {(0, 0): Ws[0], (1, 1): Ws[1]}),
                             functions={(1, 0): FeedForward(F1, None, F2, None, seq_len=1)})

    def plain(x):
        return np.concatenate([np.tanh(Ws[0] @ x[:h]),
                               np.tanh(Ws[1] @ x[h:] + F2 @ np.tanh(F1 @ x[:h]))])
    return m, plain


def _case(n, gain, starts=3, preconditioned=True):
    """(CPU seconds, points at residual <= 1e-10, status per start)."""
    m, plain = network(n, gain)
    if not preconditioned:       # the map offers no matrix: GMRES unpreconditioned
        m.approximate_jacobian = lambda x, u=None, *, max_nnz=None: None
    x0 = np.random.default_rng(9).normal(0.0, 0.5, (starts, n))
    t = time.process_time()
    fp = find_fixed_points(m, x0, method="newton-krylov", progress=False)
    cpu = time.process_time() - t
    good = sum(np.linalg.norm(plain(p) - p) <= 1e-10 for p in np.asarray(fp.points))
    return cpu, int(good), [int(s) for s in fp.status]


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m benchmarks``: n = 200, gain 1.5 (and 2.0 unless quick)."""
    rows = []
    for n, gain in ((200, 1.5),) if quick else ((200, 1.5), (200, 2.0)):
        ours, points, status = _case(n, gain)
        base, base_points, base_status = _case(n, gain, preconditioned=False)
        print(f"n={n} gain={gain}: LU {ours:.1f} s ({points} points, status {status}), "
              f"none {base:.1f} s ({base_points} points, status {base_status}), "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        rows.append({"name": f"newton-krylov, function blocks, n={n} gain={gain}",
                     "ours_s": ours, "baseline_s": base, "ratio": ours / base,
                     "target": "ratio <= 0.1", "met": ours <= 0.1 * base})
    return rows


if __name__ == "__main__":
    run()
