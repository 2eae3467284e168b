"""Side-by-side timing: interleaved runs in one process, medians and their ratio.

The machines are noisy; only ratios measured in the same process hold.
"""

from __future__ import annotations

import gc
import platform
import statistics
import time

import numpy as np

__all__ = ["compare", "interleaved", "machine", "report", "time_call"]


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
    t = interleaved({"ours": ours, "baseline": baseline}, repeat)
    ratio = t["ours"] / t["baseline"]
    kind, _, value = target.partition(">=") if ">=" in target else target.partition("<=")
    measured = 1 / ratio if kind.strip() == "speedup" else ratio
    ok = measured >= float(value) if ">=" in target else measured <= float(value)
    return report(name, t["ours"], t["baseline"], target, ok, setup_note)


def interleaved(fns, repeat):
    """Median wall time (s) of each zero-argument callable, run interleaved ``repeat`` times."""
    times = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {key: statistics.median(v) for key, v in times.items()}


def report(name, ours, base, target, met, note=""):
    """Print one result line and return it as a row (times in seconds)."""
    ratio = ours / base
    print(f"{name:<58} ours {ours * 1e3:9.2f} ms  base {base * 1e3:9.2f} ms  "
          f"ratio {ratio:6.3f}  speedup {1 / ratio:7.2f}x  [{target}: "
          f"{'met' if met else 'MISSED'}]", flush=True)
    return {"name": name, "ours_s": ours, "baseline_s": base, "ratio": ratio,
            "speedup": 1 / ratio, "target": target, "met": bool(met), "note": note}


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
