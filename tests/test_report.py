"""``itermap report``: specs, validation, determinism, atomic output."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import itermap
from itermap.analysis import _report
from itermap.analysis._report import SpecError, load_spec, run_report, validate_spec
from itermap.analysis.cli import main

DATA = Path(__file__).resolve().parent.parent / "data"

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
"""


def _write(tmp_path, text, name="spec.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_small_report_files_numbers_and_html(tmp_path):
    spec = _write(tmp_path, SMALL)
    out = tmp_path / "rep"
    doc = run_report(spec, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["figures", "report.html", "results.json"]
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs == ["02_block_matrix_mlp.pdf", "02_block_matrix_mlp.png",
                    "03_lyapunov_scan_rnn.pdf", "03_lyapunov_scan_rnn.png"]
    assert (out / "figures" / figs[0]).read_bytes().startswith(b"%PDF")
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == doc
    assert on_disk["seed"] == 3 and on_disk["spec"]["title"] == "small"
    assert set(on_disk["versions"]) >= {"itermap", "numpy", "scipy", "matplotlib", "python"}
    eq = on_disk["analyses"][0]["numbers"]
    assert eq["max_abs_error"] <= 1e-12 and eq["one_more_step_changes_nothing"] is True
    bm = on_disk["analyses"][1]["numbers"]
    assert bm["sizes"] == [3, 6, 2] and bm["nnz"] == 3 * 6 + 6 * 2
    assert bm["block_pattern"] == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
    scan = on_disk["analyses"][2]["numbers"]
    np.testing.assert_allclose(scan["gains"], [0.5, 1.0, 1.5, 2.0])
    # the mean-field column is ln g below the transition
    assert scan["mean_field"][0] == pytest.approx(math.log(0.5))
    assert scan["largest_exponent"][0] < 0 < scan["largest_exponent"][-1]
    html = (out / "report.html").read_text()
    imgs = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(imgs) == 2 and base64.b64decode(imgs[0])[:4] == b"\x89PNG"
    assert "<table>" in html and "max |map after L steps" in html
    assert 'src="http' not in html and "src='http" not in html  # self-contained


def test_the_network_is_the_one_the_spec_names(tmp_path):
    # independent rebuild: the report's random_rnn is random_rnn with the spec's seed stream
    spec = validate_spec({"seed": 5, "networks": {"r": {"kind": "random_rnn", "n": 7,
                                                        "gain": 0.7}},
                          "analyses": []})
    m = _report._build_network("r", spec["networks"]["r"], 5)
    ref = itermap.random_rnn(7, gain=0.7, rng=_report._rng_for(5, "network", "r"))
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


def test_failed_run_leaves_earlier_report_untouched(tmp_path, monkeypatch):
    spec = _write(tmp_path, SMALL)
    out = tmp_path / "rep"
    run_report(spec, out, progress=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise KeyboardInterrupt  # an interrupt in the middle of the run

    monkeypatch.setitem(_report._RUNNERS, "lyapunov_scan", boom)
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
    (out / "stale.txt").write_text("old")
    run_report(spec, out, progress=False, seed=9)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "results.json").read_text())["seed"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "spec.toml"]


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
    ({"networks": {"r": {"kind": "lstm", "n": 3}}}, r"networks\.r\.kind: expected one of"),
    ({"networks": {"r": {"kind": "random_rnn", "n": 4, "gian": 1.0}}},
     r"networks\.r\.gian: unknown key"),
    ({"networks": {"r": {"kind": "random_rnn", "n": 4, "density": 2.0}}},
     r"networks\.r\.density: must be in"),
    ({"networks": {"m": {"kind": "mlp"}}}, r"networks\.m: give exactly one of widths"),
    ({"networks": {"p": {"kind": "pattern", "sizes": [2, 2], "pattern": [["0"]]}}},
     r"networks\.p\.pattern: expected 2 rows"),
    ({"analyses": [{"kind": "lyapunov", "network": "nope"}]},
     r"analyses\[0\]\.network: no network named 'nope'"),
    ({"analyses": [{"kind": "lyapunov", "network": "r", "steps": 0}]},
     r"analyses\[0\]\.steps: must be >= 1"),
    ({"analyses": [{"kind": "lyapunov", "network": "r", "k": 1.5}]},
     r"analyses\[0\]\.k: expected an integer"),
    ({"analyses": [{"kind": "fft", "network": "r"}]}, r"analyses\[0\]\.kind: expected one of"),
    ({"analyses": [{"kind": "lyapunov_scan", "network": "r", "gains": {"start": 1}}]},
     r"analyses\[0\]\.gains\.stop: missing"),
    ({"analyses": [{"kind": "lyapunov_scan", "network": "r"}]},
     r"analyses\[0\]\.gains: missing"),
    ({"analyses": [{"kind": "equivalence", "network": "r"}]},
     r"analyses\[0\]\.network: the equivalence check is for an mlp"),
    ({"seed": -1}, r"seed: expected a non-negative integer"),
    ({"colour": "red"}, r"colour: unknown top-level key"),
])
def test_bad_spec_names_the_key(patch, message):
    spec = {"networks": {"r": {"kind": "random_rnn", "n": 4}}, "analyses": []}
    spec.update(patch)
    with pytest.raises(SpecError, match=message):
        validate_spec(spec)


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(_write(tmp_path, "title = \n"))
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")


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
    bad = _write(tmp_path, '[networks.m]\nkind = "saved"\npath = "nothing.npz"\n', "bad.toml")
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
    with pytest.raises(SystemExit):
        main(["report"])  # neither a spec nor --example


def test_shipped_specs_are_valid():
    specs = sorted(DATA.glob("*.toml")) + [Path(_report.example_spec_path())]
    assert len(specs) >= 3
    for path in specs:
        spec = load_spec(path)
        assert spec["analyses"], path


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
    gains, lam = np.array(scan["gains"]), np.array(scan["largest_exponent"])
    # below the transition the largest exponent is about ln g (the origin's, ln of W's
    # spectral radius); above it, chaos
    assert lam[0] == pytest.approx(math.log(gains[0]), abs=0.05)
    assert np.all(lam[gains < 0.95] < 0) and lam[-1] > 0.05
    assert 0.9 < scan["transition_gain"] < 1.8
    for a in doc["analyses"]:
        for pdf in a["figures"]:
            assert (out / pdf).exists() and (out / pdf).with_suffix(".png").exists()
