"""The GPU benchmark rows alone, within a time budget, for one call on a lent GPU machine.

``python -m benchmarks.gpu [--budget SECONDS] [--json FILE]`` runs, in this order, the
rows the issues ask for on a GPU, each skipped once the budget would not hold it:

1. the fixed-point search, N = 64, 512 starts, on CuPy against the hybr loop on the host;
2. the parallel-in-time Newton solve against the sequential CuPy loop (quick sizes);
3. the attention scan (T = 10^5) and the state-space convolution (L = 10^4), float32;
4. the Lyapunov spectrum of a dense N = 4096 network, B = 1 and 8, at 100 steps, then at
   the issue's 1000 steps where the 100-step time says it fits (time, and fraction of the
   measured CuPy float64 matmul rate).

Without CuPy and a CUDA device every row is skipped, and it says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument("--budget", type=float, default=300.0,
                        help="seconds the rows may take together (default 300)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)

    from itermap.backends import cupy_available

    if not cupy_available():
        print("GPU rows skipped: cupy with a CUDA GPU is not available", flush=True)
        return 0
    from benchmarks import bench_fixed_points, bench_lyapunov, bench_newton, bench_sequence

    start = time.perf_counter()
    rows: list[dict] = []

    def left() -> float:
        return args.budget - (time.perf_counter() - start)

    def part(name, run, needs):
        if left() < needs:
            print(f"{name}: skipped, {left():.0f} s of the budget left (needs ~{needs:.0f})",
                  flush=True)
            return None
        t0 = time.perf_counter()
        try:
            out = run()
        except Exception as exc:  # one broken row must not hide the others
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
            rows.append({"name": name, "error": f"{type(exc).__name__}: {exc}"})
            return None
        rows.extend(out)
        if args.json:  # after every part: a run cut short by the timeout keeps its rows
            with open(args.json, "w") as fh:
                json.dump(rows, fh, indent=1, default=str)
        return time.perf_counter() - t0

    # the Lyapunov rows last: the cost of their N = 4096 factorisations on CuPy is the least
    # known (benchmarks/gpu/REVIEW.md, item 6), so a slow run there leaves the others measured
    m, _, X0 = bench_fixed_points._problem(starts=512)
    part("fixed points", lambda: bench_fixed_points._gpu(m, X0, False), 30)
    part("newton (quick sizes)", lambda: bench_newton._gpu(True), 30)
    part("sequence models", lambda: bench_sequence._gpu(False), 20)
    quick_lyapunov = part("lyapunov, 100 steps", lambda: bench_lyapunov._gpu(True), 20)
    if quick_lyapunov is not None:  # 1000 steps cost about 10x the 100-step run
        part("lyapunov, 1000 steps", lambda: bench_lyapunov._gpu(False),
             10 * quick_lyapunov + 10)
    print("\n| row | ours (s) | baseline (s) | speedup | target | met |", flush=True)
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | error: {r['error']} | | | | |")
        else:
            print(f"| {r['name']} | {r['ours_s']:.3f} | {r['baseline_s']:.3f} | "
                  f"{r['speedup']:.2f} | {r['target']} | {r['met']} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=str)
    print(f"total {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
