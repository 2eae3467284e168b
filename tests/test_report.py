"""``itermap report``: specs, validation, budget, one input per network, determinism, output."""

from __future__ import annotations

import base64
import json
import math
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import itermap
from itermap.analysis import _report
from itermap.analysis._report import (
    KINDS,
    BudgetError,
    ReportKind,
    SpecError,
    load_spec,
    run_report,
    validate_spec,
)
from itermap.analysis.cli import main

ROOT = Path(__file__).resolve().parent.parent

SMALL = """
title = "small"
seed = 3
[networks.mlp]
kind = "mlp"
widths = [3, 6, 2]
[networks.rnn]
kind = "random_rnn"
n = 12
gain = 1.6
[[analyses]]
kind = "equivalence"
network = "mlp"
batch = 8
[[analyses]]
kind = "block_matrix"
network = "mlp"
[[analyses]]
kind = "lyapunov_scan"
network = "rnn"
gains = {start = 0.5, stop = 2.0, num = 4}
steps = 100
transient = 20
seeds = 3
"""


def _write(tmp_path, text, name="spec.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _base(**patch):
    spec = {"networks": {"r": {"kind": "random_rnn", "n": 4}},
            "analyses": [{"kind": "lyapunov", "network": "r", "k": 2}]}
    spec.update(patch)
    return spec


def test_small_report_files_numbers_and_html(tmp_path):
    spec = _write(tmp_path, SMALL)
    out = tmp_path / "rep"
    doc = run_report(spec, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["figures", "report.html", "results.json"]
    figs = sorted(p.name for p in (out / "figures").iterdir())
    # numbered as the report shows them: the first section has no figure
    assert figs == ["fig01_block_matrix_mlp.pdf", "fig01_block_matrix_mlp.png",
                    "fig02_lyapunov_scan_rnn.pdf", "fig02_lyapunov_scan_rnn.png"]
    assert (out / "figures" / figs[0]).read_bytes().startswith(b"%PDF")
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == doc
    assert on_disk["seed"] == 3 and on_disk["spec"]["title"] == "small"
    assert set(on_disk["versions"]) >= {"itermap", "numpy", "scipy", "matplotlib", "python",
                                        "pydantic", "jinja2"}
    eq = on_disk["analyses"][0]["numbers"]
    assert eq["max_abs_error"] <= 1e-12 and eq["one_more_step_changes_nothing"] is True
    bm = on_disk["analyses"][1]["numbers"]
    assert bm["sizes"] == [3, 6, 2] and bm["nnz"] == 3 * 6 + 6 * 2
    assert bm["block_pattern"] == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
    scan = on_disk["analyses"][2]["numbers"]
    np.testing.assert_allclose(scan["gains"], [0.5, 1.0, 1.5, 2.0])
    assert scan["mean_field"][0] == pytest.approx(math.log(0.5))  # ln g below the transition
    assert scan["largest_exponent"][0] < 0 < scan["largest_exponent"][-1]
    html = (out / "report.html").read_text()
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) == 2 and base64.b64decode(imgs[0])[:4] == b"\x89PNG"
    assert re.findall(r"<b>Figure (\d+)\.</b>", html) == ["1", "2"]
    assert "figures/fig02_lyapunov_scan_rnn.pdf" in html
    assert "<table>" in html and "max |map after L steps" in html
    assert 'src="http' not in html and "src='http" not in html  # self-contained


def test_results_json_is_jsons_own_formatting(tmp_path):
    doc = run_report(_write(tmp_path, SMALL), tmp_path / "rep", progress=False)
    text = (tmp_path / "rep" / "results.json").read_text()
    assert text == json.dumps(doc, indent=1, sort_keys=True, allow_nan=False,
                              ensure_ascii=False) + "\n"


def test_html_escapes_what_the_spec_says(tmp_path):
    spec = _write(tmp_path, SMALL.replace('title = "small"', 'title = "<script>x</script>"'))
    run_report(spec, tmp_path / "rep", progress=False)
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_the_network_is_the_one_the_spec_names():
    # independent rebuild: the report's random_rnn is random_rnn with the spec's seed stream
    spec = validate_spec({"seed": 5, "networks": {"r": {"kind": "random_rnn", "n": 7,
                                                        "gain": 0.7}},
                          "analyses": [{"kind": "block_matrix", "network": "r"}]})
    m = _report.build_network("r", spec.networks["r"], 5)
    ref = itermap.random_rnn(7, gain=0.7, rng=_report.rng_for(5, "network", "r"))
    np.testing.assert_array_equal(m.block_matrix.to_dense(), ref.block_matrix.to_dense())


def test_same_spec_and_seed_identical_results(tmp_path):
    spec = _write(tmp_path, SMALL)
    run_report(spec, tmp_path / "a", progress=False)
    run_report(spec, tmp_path / "b", progress=False)
    assert (tmp_path / "a" / "results.json").read_bytes() == \
        (tmp_path / "b" / "results.json").read_bytes()
    run_report(spec, tmp_path / "c", progress=False, seed=4)
    c = json.loads((tmp_path / "c" / "results.json").read_text())
    assert c["seed"] == 4
    assert (tmp_path / "c" / "results.json").read_bytes() != \
        (tmp_path / "a" / "results.json").read_bytes()


def test_interrupted_run_leaves_earlier_report_untouched(tmp_path, monkeypatch):
    spec = _write(tmp_path, SMALL)
    out = tmp_path / "rep"
    run_report(spec, out, progress=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise KeyboardInterrupt  # an interrupt in the middle of the run

    kind = KINDS["lyapunov_scan"]
    monkeypatch.setitem(KINDS, "lyapunov_scan", ReportKind(kind.name, kind.model, boom))
    with pytest.raises(KeyboardInterrupt):
        run_report(spec, out, progress=False)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "spec.toml"]  # no debris
    with pytest.raises(KeyboardInterrupt):
        run_report(spec, tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists()


def test_rerun_replaces_an_earlier_report(tmp_path):
    spec = _write(tmp_path, SMALL)
    out = tmp_path / "rep"
    run_report(spec, out, progress=False)
    (out / "figures" / "fig09_lyapunov_old.pdf").write_text("old")  # an earlier run's
    run_report(spec, out, progress=False, seed=9)
    assert not (out / "figures" / "fig09_lyapunov_old.pdf").exists()
    assert json.loads((out / "results.json").read_text())["seed"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "spec.toml"]


def test_report_folder_follows_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o027)
    try:
        run_report(_write(tmp_path, SMALL), tmp_path / "rep", progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "rep").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "rep" / "results.json").stat().st_mode) == 0o640


def test_refuses_to_replace_something_that_is_not_a_report(tmp_path):
    spec = _write(tmp_path, SMALL)
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(FileExistsError, match="not an itermap report"):
        run_report(spec, precious, progress=False)
    assert (precious / "chapter1.tex").read_text() == "..."


@pytest.mark.parametrize("patch, message", [
    ({"networks": {"r": {"kind": "random_rnn", "n": 4, "gain": "big"}}},
     r"networks\.r\.gain: expected a finite number, got 'big'"),
    ({"networks": {"r": {"kind": "random_rnn"}}}, r"networks\.r\.n: missing"),
    ({"networks": {"r": {"kind": "random_rnn", "n": "10"}}},
     r"networks\.r\.n: expected an integer, got '10'"),
    ({"networks": {"r": {"kind": "lstm", "n": 3}}}, r"networks\.r\.kind: expected one of"),
    ({"networks": {"r": {"n": 3}}}, r"networks\.r\.kind: expected one of .*missing"),
    ({"networks": {"r": {"kind": "random_rnn", "n": 4, "gian": 1.0}}},
     r"networks\.r\.gian: unknown key, did you mean 'gain'\? \(allowed: activation, density, "
     r"gain, input, inputs, n\)"),
    ({"networks": {"r": {"kind": "random_rnn", "n": 4, "density": 2.0}}},
     r"networks\.r\.density: must be <= 1"),
    ({"networks": {"r": {"kind": "random_rnn", "n": 4, "activation": "tahn"}}},
     r"networks\.r\.activation: expected one of .*'tanh'.*got 'tahn'"),
    ({"networks": {"p": {"kind": "pattern", "sizes": [2, 2], "pattern": [["0", "W"],
                                                                        ["W", "0"]],
                         "activation": ["tanh", "swish"]}}},
     r"networks\.p\.activation\[1\]: expected one of"),
    ({"networks": {"m": {"kind": "mlp"}}}, r"networks\.m: give exactly one of widths"),
    ({"networks": {"m": {"kind": "mlp", "widths": [3]}}},
     r"networks\.m\.widths: expected at least 2 entries"),
    ({"networks": {"p": {"kind": "pattern", "sizes": [2, 2], "pattern": [["0"]]}}},
     r"networks\.p\.pattern: expected 2 rows"),
    ({"networks": {"a/b": {"kind": "random_rnn", "n": 4}}},
     r"networks\.a/b: a name must be an identifier"),
    ({"networks": {"1st": {"kind": "random_rnn", "n": 4}}},
     r"networks\.1st: a name must be an identifier"),
    # no networks is a spec of kinds that build their own models (round 23); an analysis
    # that names one is told the spec has none
    ({"networks": {}}, r"analyses\[0\]\.network: no network named 'r' \(the spec has no "
                       r"\[networks\.NAME\] table\)"),
    ({"analyses": []}, r"analyses: missing or empty \(add at least one \[\[analyses\]\]"),
    ({"analyses": [{"kind": "lyapunov", "network": "nope"}]},
     r"analyses\[0\]\.network: no network named 'nope'"),
    ({"analyses": [{"kind": "lyapunov", "network": "r", "steps": 0}]},
     r"analyses\[0\]\.steps: must be >= 1"),
    ({"analyses": [{"kind": "lyapunov", "network": "r", "k": 1.5}]},
     r"analyses\[0\]\.k: expected an integer, got 1\.5"),
    ({"analyses": [{"kind": "lyapunov", "network": "r", "k": True}]},
     r"analyses\[0\]\.k: expected an integer, got True"),
    ({"analyses": [{"kind": "lyapunov", "network": "r", "k": 9}]},
     r"analyses\[0\]\.k: 9 exponents exceed the dimension 4"),
    ({"networks": {"p": {"kind": "pattern", "sizes": [3, 2], "input_block": 0,
                         "pattern": [["0", "0"], ["W", "W"]]}},
      "analyses": [{"kind": "lyapunov", "network": "p", "k": 3}]},
     r"analyses\[0\]\.k: 3 exponents exceed the dimension 2 of p's state outside its input"),
    ({"analyses": [{"kind": "fft", "network": "r"}]}, r"analyses\[0\]\.kind: expected one of"),
    ({"analyses": [{"kind": "lyapunov_scan", "network": "r", "gains": {"start": 1}}]},
     r"analyses\[0\]\.gains\.stop: missing"),
    ({"analyses": [{"kind": "lyapunov_scan", "network": "r",
                    "gains": {"start": 1, "stop": 2, "num": 3, "step": 1}}]},
     r"analyses\[0\]\.gains\.step: unknown key, did you mean 'stop'\? \(allowed: num, start, "
     r"stop\)"),
    ({"analyses": [{"kind": "lyapunov_scan", "network": "r", "gains": [1.0, "x"]}]},
     r"analyses\[0\]\.gains\[1\]: expected a finite number"),
    ({"analyses": [{"kind": "lyapunov_scan", "network": "r"}]},
     r"analyses\[0\]\.gains: missing"),
    ({"analyses": [{"kind": "orbit_diagram", "network": "r", "gains": [1.0], "unit": 4}]},
     r"analyses\[0\]\.unit: unit 4 does not exist \(n = 4\)"),
    ({"analyses": [{"kind": "trajectory", "network": "r", "dims": [0, 7]}]},
     r"analyses\[0\]\.dims: unit 7 does not exist"),
    ({"analyses": [{"kind": "equivalence", "network": "r"}]},
     r"analyses\[0\]\.network: the equivalence check is for an mlp"),
    ({"analyses": [{"kind": "impulse_response", "networks": ["r", "q"]}]},
     r"analyses\[0\]\.networks: no network named 'q'"),
    ({"seed": -1}, r"seed: expected a non-negative integer"),
    ({"seed": "0"}, r"seed: expected a non-negative integer"),
    ({"colour": "red"}, r"colour: unknown top-level key \(allowed: analyses, networks, seed"),
])
def test_bad_spec_names_the_key(patch, message):
    with pytest.raises(SpecError, match=message):
        validate_spec(_base(**patch))


def test_the_activation_names_are_itermaps():
    from typing import get_args

    from itermap.analysis._report._models import Activation

    assert set(get_args(Activation)) == set(itermap.ACTIVATIONS)


def test_integral_floats_are_counts():
    # TOML's 1e3 is a float: an integral one is the count, a fractional one is refused
    spec = validate_spec(_base(analyses=[{"kind": "lyapunov", "network": "r", "steps": 1e3,
                                          "k": 2}]))
    assert spec.analyses[0].steps == 1000 and isinstance(spec.analyses[0].steps, int)


def test_not_a_table():
    with pytest.raises(SpecError, match="the spec must be a table"):
        validate_spec([1, 2])


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(_write(tmp_path, "title = \n"))
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")


# -- the budget: nothing allocated, refused with the key and the estimate ----------------------
@pytest.mark.parametrize("patch, key, words", [
    ({"analyses": [{"kind": "orbit_diagram", "network": "r", "gains": {"start": 0.5,
                                                                       "stop": 2, "num": 1e9}}]},
     r"analyses\[0\]\.gains", r"needs about .* TiB of memory \(estimate\)"),
    ({"networks": {"r": {"kind": "random_rnn", "n": 1000000}}},
     r"networks\.r\.n", r"needs about 14\.6 TiB of memory \(estimate\)"),
    ({"analyses": [{"kind": "lyapunov", "network": "r", "k": 2, "steps": 1e12}]},
     r"analyses\[0\]\.steps", r"would take about .* days \(estimate"),
    ({"analyses": [{"kind": "trajectory", "network": "r", "steps": 1e12}]},
     r"analyses\[0\]\.steps", r"of memory \(estimate\)"),
])
def test_budget_refuses_before_allocating(tmp_path, patch, key, words):
    spec = _base(**patch)
    tracemalloc.start()
    try:
        with pytest.raises(BudgetError, match=f"{key}: .*{words}"):
            run_report(spec, tmp_path / "rep", progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2 ** 20  # validation and the estimates allocate next to nothing
    assert not (tmp_path / "rep").exists()


def test_cli_budget_exit_codes_and_force(tmp_path, capsys):
    huge = _write(tmp_path, '[networks.r]\nkind = "random_rnn"\nn = 1000000\n'
                            '[[analyses]]\nkind = "block_matrix"\nnetwork = "r"\n', "huge.toml")
    assert main(["report", str(huge), "--out", str(tmp_path / "o"), "--force"]) == 2
    err = capsys.readouterr().err
    assert "networks.r.n" in err and "TiB of memory" in err  # --force never lifts memory
    slow = _write(tmp_path, SMALL, "slow.toml")
    assert main(["report", str(slow), "--out", str(tmp_path / "o"), "--time-limit",
                 "1e-4"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"analyses\[\d\]\.\w+: .* would take about .*over the time limit", err)
    assert "--force" in err and not (tmp_path / "o").exists()
    assert main(["report", str(slow), "--out", str(tmp_path / "o"), "--time-limit", "1e-4",
                 "--force"]) == 0
    assert (tmp_path / "o" / "report.html").exists()


def test_time_estimates_are_within_an_order_of_magnitude():
    # the machine model is crude; the estimate of a real run must still not be absurd
    import time

    spec = validate_spec({"networks": {"r": {"kind": "random_rnn", "n": 200, "gain": 2.0}},
                          "analyses": [{"kind": "lyapunov", "network": "r", "steps": 300,
                                        "k": 10, "transient": 0}]})
    cost = _report.check_budget(spec, {"r": _report._networks.static_sizes(
        "r", spec.networks["r"], "networks.r")})[0]
    m = itermap.random_rnn(200, gain=2.0, rng=0)
    t = time.perf_counter()
    itermap.analysis.lyapunov_spectrum(m, np.full((4, 200), 0.1), 300, k=10, rng=0)
    took = time.perf_counter() - t
    assert took / 30 < cost.seconds < 30 * took


# -- one input per driven network ---------------------------------------------------------------
def test_one_input_per_network_fixed_point_and_lyapunov_agree(tmp_path):
    # the rnn of mlp_vs_rnn contracts to one fixed point under its input: the largest
    # Lyapunov exponent of the driven map is ln of the spectral radius there
    doc = run_report(_report.examples()["mlp_vs_rnn"], tmp_path / "r", progress=False)
    u = doc["networks"]["rnn"]["input"]
    # drawn from the report's seed, the same stream for every network (scale 1 by default)
    np.testing.assert_array_equal(u, _report.rng_for(0, "input").normal(size=10))
    assert doc["networks"]["mlp"]["input"] is not None
    by = {a["kind"]: a["numbers"] for a in doc["analyses"]}
    fp, ly = by["fixed_points"], by["lyapunov"]
    assert fp["count"] == 1 and fp["stable"] == 1
    assert ly["exponents"][0] == pytest.approx(math.log(fp["spectral_radius"][0]), abs=1e-3)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "The input of each driven network" in html and f"{u[0]:.3g}" in html


def test_every_analysis_sees_the_same_input(tmp_path, monkeypatch):
    seen = {}
    for name in ("fixed_points", "lyapunov", "impulse_response", "trajectory"):
        kind = KINDS[name]

        def spy(cfg, ctx, out, _run=kind.run, _name=name):
            seen[_name] = {n: None if u is None else u.copy() for n, u in ctx.inputs.items()}
            return _run(cfg, ctx, out)

        monkeypatch.setitem(KINDS, name, ReportKind(kind.name, kind.model, spy))
    spec = {"seed": 2, "networks": {"p": {"kind": "pattern", "sizes": [2, 5], "input_block": 0,
                                          "pattern": [["0", "0"], ["W", "W"]], "scale": 0.5}},
            "analyses": [{"kind": "fixed_points", "network": "p", "starts": 4},
                         {"kind": "lyapunov", "network": "p", "steps": 50, "k": 2},
                         {"kind": "impulse_response", "networks": ["p"], "steps": 5},
                         {"kind": "trajectory", "network": "p", "steps": 10}]}
    doc = run_report(spec, tmp_path / "r", progress=False)
    first = seen["fixed_points"]["p"]
    assert first.shape == (2,)
    for name in seen:
        np.testing.assert_array_equal(seen[name]["p"], first)
    np.testing.assert_array_equal(doc["networks"]["p"]["input"], first)


# -- a failing analysis gets its own section ----------------------------------------------------
DIVERGING = """
[networks.wild]
kind = "random_rnn"
n = 20
gain = 8.0
activation = "relu"
[networks.calm]
kind = "random_rnn"
n = 10
gain = 0.5
[[analyses]]
kind = "lyapunov"
network = "wild"
steps = 3000
k = 2
[[analyses]]
kind = "lyapunov"
network = "calm"
steps = 200
k = 2
"""


def test_failed_analysis_is_reported_in_its_section(tmp_path, capsys):
    spec = _write(tmp_path, DIVERGING)
    assert main(["report", str(spec), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "DivergenceError" in err and "analyses 1 (lyapunov) failed" in err
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["failed"] == [0]
    assert doc["analyses"][0]["error"]["type"] == "DivergenceError"
    assert doc["analyses"][0]["figures"] == []
    calm = doc["analyses"][1]["numbers"]["exponents"]
    assert calm[0] < 0 and "error" not in doc["analyses"][1]
    html = (tmp_path / "o" / "report.html").read_text()
    assert "This analysis failed" in html and "DivergenceError" in html
    assert re.findall(r"<b>Figure (\d+)\.</b>", html) == ["1"]  # numbering skips nothing
    assert sorted(p.name for p in (tmp_path / "o" / "figures").iterdir()) == \
        ["fig01_lyapunov_calm.pdf", "fig01_lyapunov_calm.png"]


# -- the BLAS library and its threads -----------------------------------------------------------
def test_results_record_the_blas_threads(tmp_path):
    from threadpoolctl import threadpool_info

    doc = run_report(_write(tmp_path, SMALL), tmp_path / "a", progress=False)
    libs = {d["internal_api"] for d in threadpool_info() if d["user_api"] == "blas"}
    assert doc["blas"] and {b["library"] for b in doc["blas"]} == libs
    assert all(b["threads"] == 1 for b in doc["blas"])  # small networks: one thread (auto)
    doc2 = run_report(_write(tmp_path, SMALL), tmp_path / "b", progress=False, blas_threads=2)
    assert all(b["threads"] == min(2, t["num_threads"]) or b["threads"] == 2
               for b, t in zip(doc2["blas"], threadpool_info()))
    assert "BLAS (threadpoolctl)" in (tmp_path / "b" / "report.html").read_text()


@pytest.mark.slow
def test_error_bars_cover_the_difference_between_blas_threads(tmp_path):
    example = load_spec(_report.example_spec_path())
    keep = [a for a in example.analyses if a.kind in ("lyapunov", "lyapunov_scan")]
    spec = example.model_copy(update={"analyses": keep})
    runs = [run_report(spec, tmp_path / f"t{t}", progress=False, blas_threads=t)
            for t in (1, 2)]
    assert [b["threads"] for b in runs[0]["blas"]][0] == 1
    one, two = ({a["kind"]: a["numbers"] for a in r["analyses"]} for r in runs)
    lam1, lam2 = one["lyapunov"]["exponents"][0], two["lyapunov"]["exponents"][0]
    se = max(one["lyapunov"]["stderr"][0], two["lyapunov"]["stderr"][0])
    assert abs(lam1 - lam2) <= 2 * se
    d = np.abs(np.subtract(one["lyapunov_scan"]["largest_exponent"],
                           two["lyapunov_scan"]["largest_exponent"]))
    se = np.maximum(one["lyapunov_scan"]["stderr"], two["lyapunov_scan"]["stderr"])
    assert np.all(d <= 2 * se)


# -- what the sections say ----------------------------------------------------------------------
def test_kaplan_yorke_undetermined_is_null_with_a_reason(tmp_path):
    spec = {"networks": {"c": {"kind": "random_rnn", "n": 40, "gain": 3.0}},
            "analyses": [{"kind": "lyapunov", "network": "c", "steps": 300, "k": 2}]}
    doc = run_report(spec, tmp_path / "r", progress=False)
    ly = doc["analyses"][0]["numbers"]
    assert ly["exponents"][1] > 0  # two positive exponents: partial sums stay >= 0
    assert ly["kaplan_yorke_dimension"] is None
    assert "at least 2" in ly["kaplan_yorke_reason"]
    text = (tmp_path / "r" / "results.json").read_text()
    assert '"nan"' not in text and "NaN" not in text
    html = (tmp_path / "r" / "report.html").read_text()
    assert "undetermined" in html and "raise k to find it" in html


def test_fixed_points_table_marks_symmetric_pairs_and_unconverged(tmp_path):
    # the example's strong network: the origin, and pairs x*, -x* (tanh is odd, no bias)
    spec = {"seed": 0, "networks": {"strong": {"kind": "random_rnn", "n": 60, "gain": 2.0}},
            "analyses": [{"kind": "fixed_points", "network": "strong", "starts": 48}]}
    doc = run_report(spec, tmp_path / "r", progress=False)
    fp = doc["analyses"][0]["numbers"]
    sym = fp["symmetry"]
    assert "origin" in sym and any(s.startswith("± pair") for s in sym)
    for i, s in enumerate(sym):
        if s == "origin":
            assert fp["state_norm"][i] < 1e-12
        elif s:  # x* and -x*: the same norm and the same spectrum (tanh is odd, no bias)
            j = int(s.split("#")[1])
            assert sym[j] == f"± pair with #{i}"
            assert fp["state_norm"][j] == pytest.approx(fp["state_norm"][i], rel=1e-9)
            assert fp["spectral_radius"][j] == pytest.approx(fp["spectral_radius"][i],
                                                             rel=1e-9)
    table = doc["analyses"][0]["tables"][0]
    assert f"{fp['unconverged']} starts unconverged" in table["caption"]
    origin = sym.index("origin")
    assert table["rows"][origin][1] == "0"
    assert "starts unconverged" in (tmp_path / "r" / "report.html").read_text()


# -- files: npz weights and saved maps ----------------------------------------------------------
def test_mlp_from_npz_and_saved_map(tmp_path):
    rng = np.random.default_rng(0)
    W0, W1, b0, b1 = rng.normal(size=(5, 3)), rng.normal(size=(2, 5)), rng.normal(size=5), \
        rng.normal(size=2)
    np.savez(tmp_path / "w.npz", W0=W0, W1=W1, b0=b0, b1=b1)
    itermap.save(itermap.random_rnn(6, gain=0.5, rng=1), tmp_path / "net.npz")
    spec = _write(tmp_path, """
[networks.m]
kind = "mlp"
path = "w.npz"
[networks.s]
kind = "saved"
path = "net.npz"
[[analyses]]
kind = "equivalence"
network = "m"
[[analyses]]
kind = "block_matrix"
network = "s"
""")
    doc = run_report(spec, tmp_path / "r", progress=False)
    assert doc["networks"]["m"]["sizes"] == [3, 5, 2]
    assert doc["analyses"][0]["numbers"]["max_abs_error"] <= 1e-12
    assert doc["networks"]["s"]["dim"] == 6
    bad = _write(tmp_path, '[networks.m]\nkind = "saved"\npath = "nothing.npz"\n'
                           '[[analyses]]\nkind = "block_matrix"\nnetwork = "m"\n', "bad.toml")
    with pytest.raises(SpecError, match=r"networks\.m\.path: .*does not exist"):
        run_report(bad, tmp_path / "r2", progress=False)


def test_cli_report_errors_and_progress(tmp_path, capsys):
    bad = _write(tmp_path, '[networks.r]\nkind = "random_rnn"\nn = "ten"\n')
    assert main(["report", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "networks.r.n" in err and not (tmp_path / "o").exists()
    good = _write(tmp_path, SMALL, "good.toml")
    assert main(["report", str(good), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "[1/3] equivalence (mlp)" in err and "report written" in err
    assert main(["report", "no_such_example", "--out", str(tmp_path / "x")]) == 2
    assert "no example of that name (examples: chaos_scan, dynamics, example" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report"])  # neither a spec nor --example


# -- shipped specs and the schema ---------------------------------------------------------------
def test_shipped_specs_are_valid():
    shipped = _report.examples()
    assert set(shipped) >= {"example", "chaos_scan", "mlp_vs_rnn", "sparse_continuum"}
    for path in shipped.values():
        assert load_spec(path).analyses, path


def test_published_schema_is_the_models_schema():
    on_disk = (ROOT / "data" / "spec.schema.json").read_text()
    assert on_disk == _report.schema_text(), \
        "regenerate: itermap report --schema > data/spec.schema.json"


def test_schema_accepts_the_examples_and_names_every_kind():
    schema = _report.spec_schema()
    kinds = {d["properties"]["kind"]["const"] for d in schema["$defs"].values()
             if "kind" in d.get("properties", {})}
    assert kinds == set(KINDS) | {"mlp", "random_rnn", "pattern", "saved"}
    names = schema["properties"]["networks"]
    assert list(names["patternProperties"]) == ["^[A-Za-z_][A-Za-z0-9_]*$"]
    assert names["additionalProperties"] is False
    try:
        import jsonschema
    except ImportError:
        pytest.skip("jsonschema not installed")
    import tomllib

    for path in _report.examples().values():
        jsonschema.validate(tomllib.loads(path.read_text()), schema)


def test_a_new_kind_is_one_model_one_function(tmp_path, monkeypatch):
    from typing import Literal

    from itermap.analysis._report import AnalysisModel, report_kind
    from itermap.analysis._report._models import Count, Name

    class Norms(AnalysisModel):
        """Norm of the state after some steps."""

        kind: Literal["norms"]
        network: Name
        steps: Count = 3

    monkeypatch.setattr(_report._kinds, "KINDS", KINDS)  # the same registry
    try:
        @report_kind(Norms)
        def norms(cfg, ctx, out):
            m = ctx.nets[cfg.network]
            x = np.ones(m.dim)
            for _ in range(cfg.steps):
                x = m.step(x)
            out.numbers["norm"] = float(np.linalg.norm(x))

        doc = run_report({"networks": {"r": {"kind": "random_rnn", "n": 3, "gain": 0.0}},
                          "analyses": [{"kind": "norms", "network": "r"}]},
                         tmp_path / "r", progress=False)
        assert doc["analyses"][0]["numbers"]["norm"] == 0.0  # gain 0: tanh(0) = 0
        with pytest.raises(SpecError, match=r"analyses\[0\]\.steps: must be >= 1"):
            validate_spec({"networks": {"r": {"kind": "random_rnn", "n": 3}},
                           "analyses": [{"kind": "norms", "network": "r", "steps": 0}]})
    finally:
        KINDS.pop("norms", None)


# -- the example: the paper's story, and the chaos transition over an ensemble -------------------
def test_example_report_tells_the_story(tmp_path, capsys):
    out = tmp_path / "example"
    assert main(["report", "--example", "--out", str(out)]) == 0
    assert "[7/7]" in capsys.readouterr().err  # progress while it runs
    doc = json.loads((out / "results.json").read_text())
    by_kind = {a["kind"]: a["numbers"] for a in doc["analyses"]}
    assert list(by_kind) == ["equivalence", "block_matrix", "sparsity_graph",
                             "impulse_response", "fixed_points", "lyapunov", "lyapunov_scan"]
    assert by_kind["equivalence"]["max_abs_error"] <= 1e-12
    layers = by_kind["equivalence"]["layers"]
    graph = by_kind["sparsity_graph"]
    assert graph["acyclic"] and graph["fir_length"] == graph["longest_path"] == layers
    ir = by_kind["impulse_response"]
    assert ir["mlp"]["length"] == layers and ir["mlp"]["norm_per_step"][layers] == 0.0
    assert ir["rnn"]["length"] is None and ir["rnn"]["decay_rate"] > 0
    fp = by_kind["fixed_points"]
    assert fp["count"] >= 1 and fp["max_residual"] < 1e-8
    ly = by_kind["lyapunov"]
    exps = np.array(ly["exponents"])
    assert np.all(np.diff(exps) <= 0) and exps[0] > 0  # the strong network is chaotic
    assert ly["entropy_rate"] == pytest.approx(exps[exps > 0].sum())
    scan = by_kind["lyapunov_scan"]
    gains, per_net = np.array(scan["gains"]), np.array(scan["per_network"])
    radius = np.array(scan["spectral_radius"])
    assert per_net.shape == (scan["seeds"], gains.size) and scan["seeds"] >= 8
    # below the transition each network contracts to the origin, where the Jacobian is
    # g W: its largest exponent is ln(g rho(W)) (the mean-field ln g only as n -> inf)
    np.testing.assert_allclose(per_net[:, 0], np.log(gains[0] * radius), atol=0.02)
    # the mean-field curve on a fine grid is ln g up to the kink at 1, positive after
    grid = scan["mean_field_grid"]
    g, mf = np.array(grid["gains"]), np.array(grid["exponent"])
    assert g.size >= 200 and np.max(np.diff(g)) < 0.01
    np.testing.assert_allclose(mf[g <= 1], np.log(g[g <= 1]), atol=1e-12)
    assert np.all(mf[g > 1.01] > 0)
    # the transition: an interval from resampling networks, above the mean-field gain at
    # the same threshold (itself above 1)
    lo, hi = scan["transition_interval"]
    g_mf = scan["mean_field_gain_at_threshold"]
    assert float(np.interp(g_mf, g, mf)) == pytest.approx(scan["threshold"], abs=1e-3)
    assert 1.0 < g_mf < lo <= scan["transition_gain"] <= hi < gains[-1]
    html = (out / "report.html").read_text()
    assert "Why the estimate lies above 1" in html and "Finite N" in html
    assert "95% interval (bootstrap over networks)" in html
    for a in doc["analyses"]:
        for pdf in a["figures"]:
            assert (out / pdf).exists() and (out / pdf).with_suffix(".png").exists()


def test_readme_says_what_the_example_shows(tmp_path):
    readme = (ROOT / "README.md").read_text()
    doc = run_report(_report.example_spec_path(), tmp_path / "r", progress=False)
    scan = next(a["numbers"] for a in doc["analyses"] if a["kind"] == "lyapunov_scan")
    words = {10: "ten"}
    assert f"ensemble of {words[scan['seeds']]} random tanh networks of {scan['n']} units " \
           f"(two starts each)" in " ".join(readme.split()) and scan["starts"] == 2
    lo, hi = scan["transition_interval"]
    assert round(scan["transition_gain"], 1) == 1.4 and "about 1.4" in readme
    assert (round(lo, 1), round(hi, 1)) == (1.3, 1.6) and "interval of 1.3-1.6" in readme
    assert round(scan["mean_field_gain_at_threshold"], 2) == 1.15 and "only at 1.15" in readme


# -- the kinds of the later topics, run end to end from their shipped specs ----------------------
def _numbers(results, kind):
    (section,) = [a for a in results["analyses"] if a["kind"] == kind]
    return section["numbers"]


@pytest.mark.slow
def test_dynamics_example_against_closed_forms(tmp_path):
    res = run_report(load_spec(_report.examples()["dynamics"]), tmp_path / "dyn")
    assert not res["failed"]
    mc = _numbers(res, "memory_capacity")
    # an MLP of two layers keeps the input for exactly two steps (its finite impulse response)
    assert 1.95 < mc["mlp"]["capacity"] < 2.05 and max(mc["mlp"]["r2"][2:]) < 0.02
    assert mc["rnn"]["capacity"] > mc["mlp"]["capacity"] + 2  # recurrence adds memory
    cont = _numbers(res, "continuation")   # folds where g (1 - x^2) = 1
    np.testing.assert_allclose(cont["folds_found"], cont["folds_closed_form"], atol=1e-6)
    g = cont["gain"]
    x = np.sqrt(1 - 1 / g)
    assert cont["folds_closed_form"][0] == pytest.approx(np.arctanh(x) - g * x, abs=1e-12)
    newton = _numbers(res, "newton")
    lam = np.ravel(newton["lyapunov"])
    its = np.ravel(newton["iterations"])
    contracting = lam < -0.1
    assert all(np.ravel(newton["converged"])[contracting])
    assert its[contracting].max() < its[~contracting].max()  # slower towards lambda = 0
    clv = _numbers(res, "covariant_vectors")
    assert 0 <= clv["min_angle_12"] <= clv["median_angle_12"] <= np.pi / 2
    ft = _numbers(res, "finite_time")
    assert ft["windows"] == 100 and all(s > 0 for s in ft["std"])
    stems = sorted(p.name for p in (tmp_path / "dyn" / "figures").glob("*.png"))
    assert [s[:5] for s in stems] == ["fig01", "fig02", "fig03", "fig04", "fig05"]


@pytest.mark.slow
def test_trained_networks_example_reproduces_the_claims(tmp_path):
    res = run_report(load_spec(_report.examples()["trained_networks"]), tmp_path / "tr")
    assert not res["failed"]
    tr = _numbers(res, "train")
    acc = dict(zip(tr["names"], np.mean(tr["accuracy"], axis=1)))
    assert acc["mlp"] >= 0.95                       # the paper's MLP on digits
    params = dict(zip(tr["names"], tr["trainable"]))
    for name in tr["names"]:
        if name.startswith("sparse"):               # equal trainable counts, within 2 %
            assert abs(params[name] - params["mlp"]) <= 0.02 * params["mlp"]
            assert acc[name] >= acc["mlp"] - 0.05   # within a few points of the MLP
    ff = _numbers(res, "flip_flop")
    assert ff["bit_accuracy"] >= 0.99
    assert ff["stable"] == 8 and ff["patterns_of_stable_points"] == 8


@pytest.mark.parametrize("method", ["linear", "nonlinear"])
def test_impulse_response_section_runs_each_method_the_analysis_takes(tmp_path, method):
    # the spec's choices are exactly analysis.impulse_response's methods; an MLP forgets in
    # len(widths) - 1 steps whichever way its response is measured
    spec = {"seed": 0, "networks": {"m": {"kind": "mlp", "widths": [3, 4, 2]}},
            "analyses": [{"kind": "impulse_response", "networks": ["m"], "steps": 6,
                          "method": method}]}
    doc = run_report(spec, tmp_path / method, progress=False)
    assert doc["analyses"][0]["numbers"]["m"]["length"] == 2


def test_impulse_response_method_outside_the_analysis_is_refused(tmp_path):
    spec = {"networks": {"m": {"kind": "mlp", "widths": [3, 4, 2]}},
            "analyses": [{"kind": "impulse_response", "networks": ["m"],
                          "method": "finite_difference"}]}
    with pytest.raises(ValueError, match="method"):
        run_report(spec, tmp_path / "r", progress=False)
