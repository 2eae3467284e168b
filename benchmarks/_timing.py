"""Side-by-side timing: interleaved runs in one process, medians and their ratio.

The machines are noisy; only ratios measured in the same process hold.
"""

from __future__ import annotations

import gc
import platform
import statistics
import time

import numpy as np

__all__ = ["compare", "time_call", "machine"]


def time_call(fn, *, repeat=5, warmup=1):
    """Median wall time (s) of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare(name, ours, baseline, *, target, repeat=5, warmup=1, setup_note="",
            higher_is_better=False):
    """Time ``ours`` and ``baseline`` interleaved; print and return the ratio.

    Parameters
    ----------
    name : str
        What is measured.
    ours, baseline : callable
        Zero-argument callables doing the same work.
    target : str
        The goal, e.g. ``"ratio <= 1.1"`` (ratio = ours / baseline time) or
        ``"speedup >= 10"`` (speedup = baseline / ours time).
    """
    for _ in range(warmup):
        ours()
        baseline()
    t_ours, t_base = [], []
    for _ in range(repeat):
        for fn, acc in ((ours, t_ours), (baseline, t_base)):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    mo, mb = statistics.median(t_ours), statistics.median(t_base)
    ratio = mo / mb
    speedup = mb / mo
    kind, _, value = target.partition(">=") if ">=" in target else target.partition("<=")
    kind = kind.strip()
    value = float(value)
    measured = speedup if kind == "speedup" else ratio
    ok = measured >= value if ">=" in target else measured <= value
    row = {"name": name, "ours_s": mo, "baseline_s": mb, "ratio": ratio, "speedup": speedup,
           "target": target, "met": bool(ok), "note": setup_note}
    print(f"{name:<58} ours {mo * 1e3:9.2f} ms  base {mb * 1e3:9.2f} ms  "
          f"ratio {ratio:6.3f}  speedup {speedup:7.2f}x  [{target}: "
          f"{'met' if ok else 'MISSED'}]", flush=True)
    return row


def machine() -> str:
    """One line naming the machine and the BLAS in use."""
    import os

    blas = "unknown BLAS"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]["name"]
    except Exception:
        pass
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, NumPy {np.__version__} ({blas})")
