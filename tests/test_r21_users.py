"""Round 21: three new users (issues 25, 26) and what misled or broke for them.

A neuroscientist with a trained PyTorch LSTM or GRU, a dynamical-systems user coming from
ChaosTools.jl or pynamicalsys, and an ML researcher making a paper's figures. Fixed here:
the documentation that misled them (each test fails on the text before the fix). Library
defects in files other helpers own are reported, each with a test marked ``xfail(strict=True)``
that names the owner's file: it fails (XPASS) once the defect is fixed, and the mark goes.
Every number is checked against something independent: a plain NumPy LSTM, closed forms.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import itermap
from itermap.analysis import continuation, find_fixed_points, sample_states

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = ROOT / "docs" / "guides" / "coming_from.md"


# -- helpers: an LSTM as torch defines it, in plain NumPy -----------------------------------
def _lstm_arrays(rng, n_in, hidden, layers, scale):
    """A state dict under torch's keys, drawn as torch draws it (uniform, +-1/sqrt(H)), scaled."""
    k = 1 / np.sqrt(hidden)
    out = {}
    for layer in range(layers):
        width = n_in if layer == 0 else hidden
        out[f"weight_ih_l{layer}"] = rng.uniform(-k, k, (4 * hidden, width)) * scale
        out[f"weight_hh_l{layer}"] = rng.uniform(-k, k, (4 * hidden, hidden)) * scale
        out[f"bias_ih_l{layer}"] = rng.uniform(-k, k, 4 * hidden) * scale
        out[f"bias_hh_l{layer}"] = rng.uniform(-k, k, 4 * hidden) * scale
    return out


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _numpy_lstm(arrays, x, h0, c0):
    """torch.nn.LSTM's forward (gates i, f, g, o) on one unbatched sequence x of shape (T, n)."""
    layers = h0.shape[0]
    h, c = h0.copy(), c0.copy()
    outputs = []
    for u in x:
        inp = u
        for layer in range(layers):
            z = (arrays[f"weight_ih_l{layer}"] @ inp + arrays[f"bias_ih_l{layer}"]
                 + arrays[f"weight_hh_l{layer}"] @ h[layer] + arrays[f"bias_hh_l{layer}"])
            i, f, g, o = np.split(z, 4)
            c[layer] = _sigmoid(f) * c[layer] + _sigmoid(i) * np.tanh(g)
            h[layer] = _sigmoid(o) * np.tanh(c[layer])
            inp = h[layer]
        outputs.append(h[-1].copy())
    return np.array(outputs), h, c


# -- the neuroscientist: a trained LSTM from torch ------------------------------------------
def test_the_readme_says_how_lstm_states_go_in_and_to_analyse_float32_in_float64():
    # the README showed a GRU only: an LSTM user passed torch's (h0, c0) tuple to run and met
    # an error about "constant inputs", and analysed a float32 model in float32, where one
    # fixed point came out as up to ten (see the xfail below)
    assert "m.run(x, h0, c0)" in README
    assert "dtype=np.float64" in README.split("## Your own map")[0]
    # and what it says holds: run(x, h0, c0) is torch's LSTM (here a NumPy one) ...
    rng = np.random.default_rng(0)
    arrays = _lstm_arrays(rng, 3, 4, 2, 1.0)
    m = itermap.from_torch(arrays, "LSTM")
    x, h0, c0 = rng.normal(size=(6, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    output, (h_n, c_n) = m.run(x, h0, c0)
    want, want_h, want_c = _numpy_lstm(arrays, x, h0, c0)
    assert np.abs(output - want).max() < 1e-12
    assert np.abs(h_n - want_h).max() < 1e-12 and np.abs(c_n - want_c).max() < 1e-12
    # ... and dtype= turns float32 weights into a float64 map
    m64 = itermap.from_torch({k: v.astype(np.float32) for k, v in arrays.items()}, "LSTM",
                             dtype=np.float64)
    assert m64.step(np.zeros(m64.dim), np.zeros(3)).dtype == np.float64


# RecurrentMap.run took h0 and c0 apart; torch's (h0, c0) tuple was stacked into one array
# and refused as 'constant inputs ... do not match the batch'
def test_an_lstm_runs_from_torchs_state_tuple_or_says_to_pass_c0():
    rng = np.random.default_rng(1)
    arrays = _lstm_arrays(rng, 3, 4, 2, 1.0)
    m = itermap.from_torch(arrays, "LSTM")
    x, h0, c0 = rng.normal(size=(5, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    try:
        output, _ = m.run(x, (h0, c0))            # as torch: lstm(x, (h0, c0))
    except TypeError as err:                     # or refused, naming what to pass
        assert "c0" in str(err)
    else:
        assert np.abs(output - _numpy_lstm(arrays, x, h0, c0)[0]).max() < 1e-12


# in float32, points that meet tol = 1.2e-5 near a multiplier of modulus 0.994 lie up to
# 2e-3 from the one true point: they were returned as 10 points, two of them 6.3e-5 apart,
# inside unique_tol = 1.2e-4 (now one: merged within their error bounds)
def test_a_float32_lstm_has_as_many_fixed_points_as_in_float64():
    arrays = _lstm_arrays(np.random.default_rng(2), 2, 6, 2, 4.0)
    m32 = itermap.from_torch({k: v.astype(np.float32) for k, v in arrays.items()}, "LSTM")
    m64 = itermap.from_torch({k: v.astype(np.float32) for k, v in arrays.items()}, "LSTM",
                             dtype=np.float64)
    u = np.array([0.3, -0.2], np.float32)
    x0 = sample_states(m32, 60, inputs=u, rng=0)
    fp32 = find_fixed_points(m32, x0, inputs=u, progress=False)
    fp64 = find_fixed_points(m64, x0.astype(np.float64), inputs=u.astype(np.float64),
                             progress=False)
    # the float64 points are fixed points of the NumPy LSTM with the same float32 weights
    w = {k: v.astype(np.float32).astype(np.float64) for k, v in arrays.items()}
    for p in np.asarray(fp64.points):
        h, c = p.reshape(2, 2, 6)[:, 0], p.reshape(2, 2, 6)[:, 1]   # per layer [h; c]
        _, h1, c1 = _numpy_lstm(w, u.astype(np.float64)[None], h, c)
        assert np.abs(h1 - h).max() < 1e-12 and np.abs(c1 - c).max() < 1e-12
    P = np.asarray(fp32.points, dtype=np.float64)
    gaps = np.linalg.norm(P[:, None] - P[None], axis=-1)[np.triu_indices(len(P), 1)]
    assert gaps.size == 0 or gaps.min() > 1.2e-4          # unique_tol in float32
    assert len(P) == len(fp64.points)


# state_dict tensors went through .numpy(), which torch refuses for bfloat16 ('Got
# unsupported ScalarType BFloat16'), before the float32 upcast meant for half precision
def test_a_bfloat16_module_comes_in_as_float32():
    torch = pytest.importorskip("torch")

    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 4)
    m = itermap.from_torch(gru.bfloat16())
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    with torch.no_grad():
        want = gru.float()(torch.from_numpy(x))[0].numpy()   # the same bf16-rounded weights
    assert np.abs(m.run(x)[0] - want).max() < 1e-5


# -- the ChaosTools.jl / pynamicalsys user -----------------------------------------------------
def test_the_guide_from_chaostools_names_a_counterpart_for_each_function():
    # a Julia user looked for lyapunovspectrum, fixedpoints, periodicorbits ... and found
    # analysis.lyapunov and analysis.fixed_points, which are subpackages, not functions
    text = GUIDE.read_text(encoding="utf-8")
    assert "guides/coming_from" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    rows = [r for r in text.splitlines() if r.startswith("| `") or r.startswith("| BifurcationKit")]
    for name in ("DeterministicIteratedMap", "trajectory", "lyapunovspectrum", "lyapunov(",
                 "fixedpoints", "periodicorbits", "basins_of_attraction", "orbitdiagram",
                 "local_growth_rates", "covariant_vectors", "kaplanyorke_dim"):
        assert any(name in r.split("|")[1] for r in rows), name
    # every itermap name the table gives exists, as a callable or a class
    names = set(re.findall(r"\{(?:func|class)\}`~?(itermap[\w.]+)`", text))
    assert len(names) >= 12
    for dotted in names:
        module, _, attr = dotted.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), dotted
    assert "analysis.lyapunov` is the subpackage" in text


# from the non-zero branch of x -> tanh(w x) the pitchfork at w = 1 is a turning point of w
# whose multiplier touches +1 without crossing: it was passed onto the mirror branch unreported
def test_continuation_through_a_pitchfork_reports_it():
    # x = tanh(w x): the branches x != 0 exist for w > 1 and meet x = 0 at w = 1
    def make(w):
        return itermap.IterativeMap(np.array([[w]]))

    c = continuation(make, np.linspace(2.0, 0.5, 31), np.array([0.95]))
    params = np.asarray(c.parameters)
    assert params.min() == pytest.approx(1.0, abs=1e-3)        # the branch reaches w = 1
    assert any(abs(b["parameter"] - 1.0) < 1e-3 for b in c.bifurcations)


# -- the ML researcher making figures -----------------------------------------------------------
def test_the_readme_tells_a_paper_to_seed_and_to_keep_keys_under_the_axes():
    paper = README.split("For a paper:", 1)[1].split("`notebooks/` holds", 1)[0]
    assert re.search(r"lyapunov_scan\(.*rng=0\)", paper)
    assert 'layout="constrained"' in paper and "save_figure" in paper


def _paper_figure(draw):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from itermap.analysis import plots

    with plots.paper_style(columns=1):
        fig, ax = plt.subplots(layout="constrained")
        draw(ax)
        fig.canvas.draw()
    return fig, ax


# lyapunov_scan passed label= to errorbar next to its own label: a TypeError
def test_two_scans_on_one_axes_take_their_own_labels():
    from itermap.analysis import plots

    g = np.array([0.5, 1.0, 2.0])
    fig, ax = _paper_figure(lambda ax: [
        plots.lyapunov_scan({"values": g, "exponents": np.log(g)[:, None]}, ax=ax, label="dense"),
        plots.lyapunov_scan({"values": g, "exponents": np.log(g)[:, None] - 0.1}, ax=ax,
                            label="sparse")])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "dense" in texts and "sparse" in texts


# in paper_style(columns=1) the colour key, at a fixed -0.14 of the Axes height, covered
# the x label, and the markers (sized before the layout shrank the Axes) were wider than a
# unit's cell
def test_block_matrix_in_a_paper_figure_keeps_its_key_off_the_label_and_cells_apart():
    from itermap.analysis import plots

    W = itermap.mlp_continuum([4, 8, 8, 2], recurrent=0.3, rng=0).block_matrix
    fig, ax = _paper_figure(lambda ax: plots.block_matrix(W, ax=ax))
    renderer = fig.canvas.get_renderer()
    key = ax.get_legend().get_window_extent(renderer)
    assert not key.overlaps(ax.xaxis.label.get_window_extent(renderer))
    n = W.shape[0]
    cell_pt = ax.get_window_extent(renderer).width / n * 72 / fig.dpi
    assert ax.lines[0].get_markersize() <= cell_pt


def test_a_table_of_spectra_and_its_embedding_save_and_load(tmp_path):
    # a paper's population study keeps its spectra: itermap.save refused a SpectraTable
    # ("cannot save a SpectraTable") while every other analysis result saved
    from itermap.analysis import spectra_table, spectrum_embedding
    from itermap.systems import linear

    maps = [linear(np.diag([0.5, 2.0])), linear(np.eye(2) * 1e200), linear(np.diag([0.25]))]
    with pytest.warns(RuntimeWarning, match="1 of 3"):
        t = spectra_table(maps, steps=20, transient=100, executor="serial", seed=0)
    back = itermap.load(itermap.save(t, tmp_path / "table.npz"))
    # the exponents of a diagonal linear map are the logs of its diagonal
    np.testing.assert_allclose(back.raw[0], np.log([2.0, 0.5]), atol=1e-12)
    np.testing.assert_allclose(back.raw[1], np.log([0.25]), atol=1e-12)
    assert np.array_equal(back.spectra, t.spectra) and back.index.tolist() == [0, 2]
    assert back.failures[0][0] == 1 and "Divergence" in back.failures[0][1]
    X = np.random.default_rng(0).normal(size=(12, 3))
    e = spectrum_embedding(X, X[:, 0], latent=3, rng=0)
    again = itermap.load(itermap.save(e, tmp_path / "embedding.npz"))
    assert np.array_equal(again.codes, e.codes) and again.r2 == e.r2 > 0.99
    assert again.method == "pca" and np.array_equal(again.test, e.test)


def _numpy_gru_step(w, h, u):
    """torch.nn.GRU's cell (gates r, z, n) for one unbatched state."""
    gi = w["weight_ih_l0"] @ u + w["bias_ih_l0"]
    gh = w["weight_hh_l0"] @ h + w["bias_hh_l0"]
    H = h.size
    r = _sigmoid(gi[:H] + gh[:H])
    z = _sigmoid(gi[H:2 * H] + gh[H:2 * H])
    n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
    return (1 - z) * n + z * h


def test_a_saturated_grus_isolated_points_are_the_closed_form_ones():
    # the fixed-point guide's example: a GRU unit whose update gate saturates has a half-line
    # of points copied exactly (multiplier 1); the isolated ones solve h = tanh(3 h sigmoid(h))
    from scipy.optimize import brentq

    w = {"weight_ih_l0": np.zeros((3, 1)), "weight_hh_l0": np.array([[1.0], [-12.0], [3.0]]),
         "bias_ih_l0": np.zeros(3), "bias_hh_l0": np.zeros(3)}
    fp = find_fixed_points(itermap.from_torch(w, "GRU"), np.linspace(-6, 2, 33)[:, None],
                           inputs=np.zeros(1), progress=False)
    on_line = np.abs(fp.eigenvalues - 1).min(axis=1) < 1e-9
    def g(h):
        return np.tanh(3 * h * _sigmoid(h)) - h

    roots = [brentq(g, -2, -0.5, xtol=1e-14), 0.0, brentq(g, 0.5, 2, xtol=1e-14)]
    np.testing.assert_allclose(np.sort(fp.points[~on_line, 0]), roots, atol=1e-9)
    for p in fp.points[on_line]:                 # fixed points of torch's cell, to rounding
        assert p[0] < -2
        assert abs(_numpy_gru_step(w, p, np.zeros(1))[0] - p[0]) <= 1e-10
    assert "not isolated" in (ROOT / "docs" / "guides" / "fixed_points.md").read_text()


def _one_state_henon():
    """Hénon written for one state at a time, as a ChaosTools user writes it."""
    def step(x, a=1.4, b=0.3):
        return np.array([1 - a * x[0] ** 2 + x[1], b * x[0]])

    def jacobian(x, a=1.4, b=0.3):
        return np.array([[-2 * a * x[0], 1.0], [b, 0.0]])

    return itermap.FunctionMap(step, 2, jacobian=jacobian)


# a step written for one state failed inside the user's function with NumPy's broadcast
# ValueError or an IndexError; every analysis now names the batched protocol
@pytest.mark.parametrize("analysis_name", ["basins", "continuation", "orbit_diagram"])
def test_a_step_for_one_state_is_named_by_every_analysis(analysis_name):
    from itermap import analysis

    m = _one_state_henon()
    run = {"basins": lambda: analysis.basins(m, np.zeros((4, 2)), steps=10),
           "continuation": lambda: analysis.continuation(lambda a: m, [1.0, 1.1],
                                                         np.array([0.6, 0.2])),
           "orbit_diagram": lambda: analysis.orbit_diagram(lambda a: m, [1.0, 1.2], np.zeros(2),
                                                           transient=5, keep=2)}[analysis_name]
    with pytest.raises((ValueError, TypeError), match=r"batch"):
        run()


def test_a_gru_refuses_a_state_tuple_by_name():
    rng = np.random.default_rng(3)
    H, n = 4, 3
    arrays = {"weight_ih_l0": rng.normal(size=(3 * H, n)),
              "weight_hh_l0": rng.normal(size=(3 * H, H)),
              "bias_ih_l0": np.zeros(3 * H), "bias_hh_l0": np.zeros(3 * H)}
    m = itermap.from_torch(arrays, "GRU")
    h0 = np.zeros((1, H))
    with pytest.raises(TypeError, match="h0"):
        m.run(rng.normal(size=(5, n)), (h0, h0))
