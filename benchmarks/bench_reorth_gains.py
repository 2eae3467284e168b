"""The dense N=256 full spectrum against torch's loop at every gain (issue 25).

One trajectory (B=1) and a batch (B=8) of ``random_rnn(256, gain=g)``, 300 steps,
QR every step, full spectrum, default threads; ours (:func:`lyapunov_spectrum`)
against torch's straightforward loop (``J = diag(1 - x^2) W`` formed,
``torch.linalg.qr(J @ Q)``, ``log|diag R|`` accumulated), interleaved in one
process, medians. At chaotic gains the tangent frame is ill-conditioned (saturated
units make ``diag(f')`` span many decades), which is what the reorthonormaliser
must survive without losing its lead. Skipped without torch.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time

import numpy as np

import itermap
from benchmarks._timing import report
from itermap.analysis import lyapunov_spectrum

GAINS = (1.2, 1.5, 2.0, 3.0)
BATCHES = (1, 8)


def case(torch, n, gain, batch, steps, seed=0):
    """``(ours, torch_loop)``: zero-argument callables running the same spectrum."""
    m = itermap.random_rnn(n, gain=gain, rng=seed)
    Wt = torch.from_numpy(np.asarray(m.block_matrix.to_dense()))
    X0 = np.random.default_rng(1).normal(size=(batch, n))
    Q0 = np.linalg.qr(np.random.default_rng(2).normal(size=(batch, n, n)))[0]

    def torch_loop():
        x, Q = torch.from_numpy(X0.copy()), torch.from_numpy(Q0.copy())
        acc = torch.zeros(batch, n, dtype=torch.float64)
        for _ in range(steps):
            z = x @ Wt.T
            J = (1.0 - torch.tanh(z) ** 2)[:, :, None] * Wt  # J formed
            x = torch.tanh(z)
            Q, R = torch.linalg.qr(J @ Q)
            acc += torch.log(torch.abs(torch.diagonal(R, dim1=-2, dim2=-1)))
        return acc

    def ours():
        return lyapunov_spectrum(m, X0, steps, rng=0)

    return ours, torch_loop


def run(quick: bool = False, *, gains=GAINS, batches=BATCHES, repeat=None,
        steps=None, one_thread=None, seeds=(0,)) -> list[dict]:
    """Default threads (the target), then one thread (a record, less moved by the load of a
    shared machine); ``one_thread`` picks one of the two. ``seeds``: the networks' seeds."""
    try:
        import torch
    except ImportError:
        print("reorth_gains skipped: torch is not installed", flush=True)
        return []
    modes = (False, True) if one_thread is None else (one_thread,)
    rows = []
    for mode in modes:
        rows += _rows(torch, quick, gains, batches, repeat, steps, mode, seeds)
    return rows


def _rows(torch, quick, gains, batches, repeat, steps, one_thread, seeds=(0,)):
    from threadpoolctl import threadpool_limits

    from benchmarks.bench_lyapunov import _one_thread

    n, steps = 256, steps or 300  # the size, quick or not
    repeat = repeat or (1 if quick else 3)
    label = "1 thread" if one_thread else "default threads"
    ctx = _one_thread(threadpool_limits) if one_thread else contextlib.nullcontext()
    before = torch.get_num_threads()
    with ctx:
        if one_thread:
            torch.set_num_threads(1)
        try:
            return [row for batch in batches for gain in gains for seed in seeds
                    for row in _case_rows(torch, n, gain, batch, steps, repeat, label, seed)]
        finally:
            torch.set_num_threads(before)


def _interleaved_cpu(fns, repeat):
    """Median wall and CPU seconds (all threads of the process) of each callable, interleaved."""
    wall, cpu = {key: [] for key in fns}, {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    return ({k: statistics.median(v) for k, v in wall.items()},
            {k: statistics.median(v) for k, v in cpu.items()})


def _case_rows(torch, n, gain, batch, steps, repeat, label, seed=0):
    """Ours and torch's loop on one case, interleaved; one row."""
    ours, base = case(torch, n, gain, batch, steps, seed)
    ours(), base()  # warm up
    fns = {"ours": ours, "torch": base}
    load = os.getloadavg()[0]
    t, cpu = _interleaved_cpu(fns, repeat)
    note = (f"{steps} steps, {label}, network seed {seed}, median of {repeat} interleaved runs, "
            f"load {load:.1f}-{os.getloadavg()[0]:.1f}, CPU s ours {cpu['ours']:.2f} torch "
            f"{cpu['torch']:.2f}")
    print(f"  ({note})", flush=True)
    name = f"seed {seed} " if seed else ""
    target = "speedup >= 1.3" if label == "default threads" else "record"
    rows = [report(f"dense N={n} B={batch} gain {gain:g} {name}full, QR every step, vs torch "
                   f"loop ({label})", t["ours"], t["torch"], target,
                   t["torch"] / t["ours"] >= 1.3 or target == "record", note)]
    return rows


if __name__ == "__main__":
    import sys

    # the size, several networks:
    # python -m benchmarks.bench_reorth_gains B [seeds [default|1]]
    run(batches=(int(sys.argv[1]),) if len(sys.argv) > 1 else BATCHES,
        one_thread=len(sys.argv) > 3 and sys.argv[3] == "1",
        seeds=tuple(int(s) for s in sys.argv[2].split(",")) if len(sys.argv) > 2 else (0,))
