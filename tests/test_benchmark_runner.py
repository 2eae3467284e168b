"""The benchmark runner writes RESULTS.md's current table and keeps its history."""

from benchmarks import run

ROWS = [{"topic": "core", "name": "dense", "ours_s": 0.5, "baseline_s": 0.25, "ratio": 2.0,
         "target": "ratio <= 1.1", "met": False},
        {"topic": "graph", "name": "nx", "ours_s": 0.1, "baseline_s": 0.2, "ratio": 0.5,
         "target": "ratio <= 1.0", "met": True}]


def _block(rows, when="2026-12-06 03:00 UTC"):
    return run.current_block(rows, machine_line="x86_64, 2 cores", when=when,
                             load_before="load average 0.10", load_after="load average 1.90",
                             command="python -m benchmarks --quick")


def test_the_current_table_replaces_only_the_head(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\nIntro.\n\n## Round 7\nold figures\n")
    run.write_results(path, _block(ROWS))
    first = path.read_text()
    assert first.index("## Current results") < first.index("Intro.") < first.index("## Round 7")
    assert "| core | dense | 500.00 ms | 250.00 ms | 2.000 | ratio <= 1.1 | no |" in first
    assert "1 of 2 targets met" in first and "load average 0.10" in first
    # a second run replaces the table and keeps the history once
    run.write_results(path, _block(ROWS[1:], when="2026-12-07 01:00 UTC"))
    second = path.read_text()
    assert second.count("## Current results") == 1 and second.count("## Round 7") == 1
    assert "2026-12-07" in second and "2026-12-06" not in second
    assert "| core | dense |" not in second and "1 of 1 targets met" in second
    assert second.endswith("## Round 7\nold figures\n")
