"""Run the benchmarks: ``python -m benchmarks [topic ...] [--quick] [--markdown FILE]
[--results benchmarks/RESULTS.md]``.

Each ``benchmarks/bench_<topic>.py`` exposes ``run(quick=False) -> list[dict]``.
``--results`` rewrites the current table at the head of RESULTS.md (between its
``current:begin`` and ``current:end`` markers) from this run alone, with the machine,
the date and the load; everything below the markers, the history of earlier rounds,
is kept as it is.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import math
import os
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


BEGIN = "<!-- current:begin (written by `python -m benchmarks --results`; do not edit) -->"
END = "<!-- current:end -->"


def _load() -> str:
    try:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # not every platform has it
        return "load average unknown"


def table(rows: list[dict]) -> list[str]:
    """The Markdown rows of a run: one per target, with its figure and whether it is met."""
    lines = ["| topic | case | ours | baseline | ratio (ours/base) | target | met |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['topic']} | {r['name']} | {r['ours_s'] * 1e3:.2f} ms | "
                     f"{r['baseline_s'] * 1e3:.2f} ms | {r['ratio']:.3f} | {r['target']} | "
                     f"{'yes' if r['met'] else 'no'} |")
    return lines


def current_block(rows: list[dict], *, machine_line: str, when: str, load_before: str,
                  load_after: str, command: str) -> str:
    """The head of RESULTS.md for one run."""
    met = sum(r["met"] for r in rows)
    lines = [BEGIN, "## Current results", "",
             f"One run of `{command}`, {when}, on {machine_line}; {load_before} before the "
             f"run and {load_after} after it. {met} of {len(rows)} targets met.", "",
             *table(rows), "", END]
    return "\n".join(lines)


def write_results(path: Path, block: str) -> None:
    """Replace the current block of ``path`` (or put one after its title), keeping the rest."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        new = head + block + tail
    else:
        title, nl, body = text.partition("\n")
        new = title + nl + "\n" + block + "\n" + body
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    tmp.replace(path)  # whole or not at all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("topic", nargs="*", help=f"topics to run (default all): {topics()}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--markdown", metavar="FILE", help="also write a Markdown table")
    parser.add_argument("--results", metavar="FILE",
                        help="rewrite the current table at the head of FILE (RESULTS.md)")
    args = parser.parse_args(argv)
    load_before = _load()
    chosen = args.topic or topics()
    unknown = sorted(set(chosen) - set(topics()))
    if unknown:
        parser.error(f"unknown topics {unknown}; known: {topics()}")
    print(f"# machine: {machine()}", flush=True)
    rows = []
    for topic in chosen:
        print(f"## {topic}", flush=True)
        try:
            module = importlib.import_module(f"benchmarks.bench_{topic}")
            rows += [{"topic": topic, **row} for row in module.run(quick=args.quick)]
        except Exception as exc:  # one broken benchmark is a row that says so, not a lost run
            print(f"{topic} failed: {type(exc).__name__}: {exc}", flush=True)
            rows.append({"topic": topic, "name": f"failed: {type(exc).__name__}: {exc}",
                         "ours_s": math.nan, "baseline_s": math.nan, "ratio": math.nan,
                         "target": "runs", "met": False})
    if args.markdown:
        Path(args.markdown).write_text("\n".join([f"Machine: {machine()}", "", *table(rows)])
                                       + "\n")
    if args.results:
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
        write_results(Path(args.results), current_block(
            rows, machine_line=machine(), when=when, load_before=load_before,
            load_after=_load(), command=command))
    missed = [r["name"] for r in rows if not r["met"]]
    if missed:
        print(f"targets missed: {missed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
