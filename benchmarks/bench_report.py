"""The shipped example reports: BLAS held to one thread for small networks (issue 17 §1).

``itermap report`` runs networks of up to 512 units with one BLAS thread
(``blas_threads="auto"``). Baseline: the same report with the BLAS library's own
thread count (``blas_threads=None``), which on a busy 2-core machine spins OpenBLAS
threads over products too small to share. Target: one thread no slower (ratio <= 1).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks._timing import compare
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
                                repeat=1 if quick else 3, warmup=0))
    return rows
