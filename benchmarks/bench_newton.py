"""Newton over the whole trajectory (DEER) against the sequential ``iterate`` (issue 18).

Cases:
- on the CPU: a contracting driven Elman RNN (``IterativeMap.from_rnn``, recurrent
  gain 0.7, 4 inputs), T = 10^5 steps, hidden size d in 8, 16, 32, batch B in 1, 16:
  ``iterate(..., method="newton", jacobian="block")`` (exact Newton for an RNN map:
  the input block's Jacobian is zero) against ``iterate(...)``; and the diagonal
  (quasi-DEER) Jacobian at d = 32;
- on a GPU (CuPy), skipped without one: T = 10^4 .. 10^6, d = 1 .. 128, B = 16,
  float32, against the sequential CuPy loop, for comparison with DEER's published
  V100 figures (GRU, batch 16: 100-130x at d = 1 and T = 10^4, 9x at d = 16, 4x at
  d = 32).

Work per Newton iteration, per trajectory: the Jacobians (T d^2), the scan (about T
d x d matrix products, 2 T d^3 flops, in ceil(log2 T) dependent rounds) and the
step (2 T d^2); the whole sequential run is 2 T d^2. So Newton does about
``iterations * (d + 3)`` times the sequential arithmetic and only wins where the
sequential loop is bound by per-step overhead or by its T dependent rounds.

BLAS is held to one thread for both (threadpoolctl): on the shared 2-core machine
OpenBLAS's threads make a tall-skinny (T B, d) x (d, d) product 25x slower than one
thread, which would charge the machine's load to Newton.
"""

from __future__ import annotations

import math

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks._timing import compare
from itermap import IterativeMap, iterate

N_INPUTS = 4
GAIN = 0.7
# memory for the Jacobians of one window (bytes): longer runs are solved in windows
WINDOW_BYTES = 1.0e9


def _rnn(d, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    W = (rng.normal(size=(d, d)) * GAIN / np.sqrt(d)).astype(dtype)
    Wx = (rng.normal(size=(d, N_INPUTS)) / np.sqrt(N_INPUTS)).astype(dtype)
    return IterativeMap.from_rnn(W, Wx, (0.1 * rng.normal(size=d)).astype(dtype))


def _chunk(T, B, d, itemsize=8):
    per_step = B * (d * d + N_INPUTS ** 2) * itemsize * 3  # Jacobians and the scan's copies
    return int(min(T, max(1000, WINDOW_BYTES // per_step)))


def _case(T, d, B, jacobian, repeat):
    m = _rnn(d)
    rng = np.random.default_rng(1)
    u = rng.normal(size=(T, B, N_INPUTS)) if B > 1 else rng.normal(size=(T, N_INPUTS))
    x0 = np.zeros((B, m.dim)) if B > 1 else np.zeros(m.dim)
    chunk = _chunk(T, B, d)
    out = {}

    def ours():
        out["newton"] = iterate(m, x0, T, inputs=u, method="newton", jacobian=jacobian,
                                chunk=chunk, keep="last", max_iter=500)

    def base():
        out["sequential"] = iterate(m, x0, T, inputs=u, keep="last")

    row = compare(f"Newton ({jacobian}) T={T} d={d} B={B} vs sequential iterate", ours, base,
                  target="speedup >= 1", repeat=repeat, warmup=0)
    traj, seq = out["newton"], out["sequential"]
    err = float(np.max(np.abs(traj.states - seq.states)))
    assert err <= 1e-10, err
    its = traj.iterations / traj.windows
    flops = its * (2 * d ** 3 + 3 * d ** 2) / (2 * d ** 2) if jacobian != "diagonal" else \
        its * 8 / (2 * d)
    row["note"] = (f"{traj.iterations} iterations over {traj.windows} window(s) of {chunk} "
                   f"steps; max |diff| {err:.1e}; arithmetic ~{flops:.0f}x the sequential "
                   f"run's")
    print(f"    {row['note']}", flush=True)
    return row


def _gpu(quick):
    """Newton against the sequential loop on a CUDA device (CuPy), float32, B = 16."""
    from itermap.backends import cupy_available

    if not cupy_available():
        print("GPU cases skipped: cupy with a CUDA GPU is not available", flush=True)
        return []
    import cupy as cp

    rows = []
    B = 16
    lengths = (10_000,) if quick else (10_000, 100_000, 1_000_000)
    for T in lengths:
        for d in (1, 8, 16, 32, 128):
            m = _rnn(d, dtype=np.float32).to("cupy")
            u = cp.asarray(np.random.default_rng(1).normal(size=(T, B, N_INPUTS)),
                           dtype=cp.float32)
            x0 = cp.zeros((B, m.dim), dtype=cp.float32)
            # 8 GB of Jacobians per window
            chunk = int(min(T, max(1000, 8e9 // (B * (d * d + N_INPUTS ** 2) * 4 * 3))))
            # the sequential loop is timed over at most 10^5 steps and scaled (linear in T)
            T_seq = min(T, 100_000)
            u_seq = u[:T_seq]

            def ours(m=m, x0=x0, T=T, u=u, chunk=chunk):
                traj = iterate(m, x0, T, inputs=u, method="newton", jacobian="block",
                               chunk=chunk, keep="last", max_iter=500)
                cp.cuda.Device().synchronize()
                return traj

            def base(m=m, x0=x0, T_seq=T_seq, u_seq=u_seq):
                traj = iterate(m, x0, T_seq, inputs=u_seq, keep="last")
                cp.cuda.Device().synchronize()
                return traj

            traj = ours()
            seq = iterate(m, x0, T, inputs=u, keep="last") if T <= 100_000 else None
            note = f"{traj.iterations} iterations over {traj.windows} window(s)"
            if seq is not None:
                err = float(cp.max(cp.abs(traj.states - seq.states)))
                assert err <= 1e-4, err
                note += f"; max |diff| {err:.1e}"
            row = compare(f"GPU (CuPy) Newton (block) T={T} d={d} B={B} vs sequential CuPy",
                          ours, base, target="speedup >= 1", repeat=1 if quick else 3,
                          setup_note=note + (f"; sequential timed on {T_seq} steps, scaled"
                                             if T_seq < T else ""))
            if T_seq < T:
                scale = T / T_seq
                row["baseline_s"] *= scale
                row["ratio"] /= scale
                row["speedup"] *= scale
                row["met"] = row["speedup"] >= 1
            rows.append(row)
    return rows


def run(quick: bool = False) -> list[dict]:
    T = 10_000 if quick else 100_000
    repeat = 1
    rows = []
    with threadpool_limits(1):
        for d in (8, 16, 32):
            for B in (1, 16):
                rows.append(_case(T, d, B, "block", repeat))
        for B in (1, 16):
            rows.append(_case(T, 32, B, "diagonal", repeat))
    rows += _gpu(quick)
    if not math.isfinite(sum(r["ratio"] for r in rows)):
        raise RuntimeError("a timing came out non-finite")
    return rows
