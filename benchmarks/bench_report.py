"""The shipped example reports: BLAS held to one thread for small networks (issue 17 §1),
and the time estimates of every analysis kind (issue 26 §3).

``itermap report`` runs networks of up to 512 units with one BLAS thread
(``blas_threads="auto"``). Baseline: the same report with the BLAS library's own
thread count (``blas_threads=None``), which on a busy 2-core machine spins OpenBLAS
threads over products too small to share. Target: one thread no slower (ratio <= 1).

The estimates: the test suite's calibration spec (one analysis of each common kind, in
``tests/test_report_specs.py``), each analysis's estimate against its CPU time. Target:
every one within 3x (the test suite checks 5x, as it runs on loaded machines too).
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

from benchmarks._timing import compare, report
from itermap.analysis._report import examples, load_spec, run_report


def _runner(spec, threads, folder):
    def go():
        run_report(spec, Path(folder) / f"t{threads}", progress=False, blas_threads=threads)
    return go


def run(quick: bool = False) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in ("example",) if quick else ("example", "chaos_scan"):
            spec = load_spec(examples()[name])
            scans = [a for a in spec.analyses if a.kind == "lyapunov_scan"]
            spec = spec.model_copy(update={"analyses": scans})
            rows.append(compare(f"{name} report, its lyapunov_scan: one BLAS thread vs the "
                                "library default", _runner(spec, "auto", folder),
                                _runner(spec, None, folder), target="ratio <= 1.0",
                                # one warm-up each: the process's first report pays the
                                # imports and compiles, whichever thread count runs first
                                repeat=1 if quick else 3, warmup=1))
    return rows + [_estimates()]


def _estimates():
    from tests.test_report_specs import CALIBRATION, _seconds

    log = io.StringIO()
    with tempfile.TemporaryDirectory() as folder:
        run_report(CALIBRATION, Path(folder) / "r", progress=log)
    rows = re.findall(r"done in [\d.]+ s, ([\d.e+-]+) s of CPU \(estimated ([^)]+)\)",
                      log.getvalue())
    kinds = [a["kind"] for a in CALIBRATION["analyses"]]
    est = [_seconds(e) for _, e in rows]
    cpu = [float(c) for c, _ in rows]
    ratios = [e / c for e, c in zip(est, cpu)]
    note = "; ".join(f"{k} {r:.2f}" for k, r in zip(kinds, ratios))
    print("   estimate/CPU:", note, flush=True)
    return report(f"report estimates, {len(kinds)} analysis kinds (calibration spec): "
                  "total", sum(est), sum(cpu), "each estimate/CPU in [1/3, 3]",
                  len(rows) == len(kinds) and all(1 / 3 <= r <= 3 for r in ratios), note)
