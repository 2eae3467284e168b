"""Run the benchmarks: ``python -m benchmarks [topic ...] [--quick] [--markdown FILE]``.

Each ``benchmarks/bench_<topic>.py`` exposes ``run(quick=False) -> list[dict]``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import machine  # noqa: E402


def topics() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)])
                  if m.name.startswith("bench_"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("topic", nargs="*", help=f"topics to run (default all): {topics()}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--markdown", metavar="FILE", help="also write a Markdown table")
    args = parser.parse_args(argv)
    chosen = args.topic or topics()
    unknown = sorted(set(chosen) - set(topics()))
    if unknown:
        parser.error(f"unknown topics {unknown}; known: {topics()}")
    print(f"# machine: {machine()}", flush=True)
    rows = []
    for topic in chosen:
        print(f"## {topic}", flush=True)
        module = importlib.import_module(f"benchmarks.bench_{topic}")
        for row in module.run(quick=args.quick):
            rows.append({"topic": topic, **row})
    if args.markdown:
        lines = [f"Machine: {machine()}", "",
                 "| topic | case | ours | baseline | ratio (ours/base) | target | met |",
                 "|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['topic']} | {r['name']} | {r['ours_s'] * 1e3:.2f} ms | "
                         f"{r['baseline_s'] * 1e3:.2f} ms | {r['ratio']:.3f} | {r['target']} | "
                         f"{'yes' if r['met'] else 'no'} |")
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    missed = [r["name"] for r in rows if not r["met"]]
    if missed:
        print(f"targets missed: {missed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
