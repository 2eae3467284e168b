"""from_torch against torch's own numbers, stored as fixtures: no torch needed.

The fixtures come from tests/fixtures/make_torch_fixtures.py (weights in torch's
key names as safetensors, and what torch computed from them). The live tests,
against torch itself, are in test_torch_live.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import itermap
from itermap.analysis import find_fixed_points, lyapunov_spectrum

safetensors_numpy = pytest.importorskip("safetensors.numpy")

FIX = Path(__file__).resolve().parent / "fixtures"
RECURRENT = ["rnn1", "rnn2", "rnn3", "gru", "gru2", "lstm", "lstm2"]


def load(name):
    path = FIX / f"torch_{name}.safetensors"
    from safetensors import safe_open

    with safe_open(str(path), "numpy") as f:
        arch = json.loads(f.metadata()["architecture"])
    io = dict(np.load(FIX / f"torch_{name}_io.npz"))
    return path, arch, io


def test_fixtures_are_small():
    assert sum(p.stat().st_size for p in FIX.glob("torch_*")) < 1_000_000


def test_mlp_settled_output_equals_torch():
    path, arch, io = load("mlp")
    m = itermap.from_torch(path, arch)
    x = io["x"]
    final = itermap.iterate(m, m.zeros(len(x)), m.settle_steps, inputs=x, keep="last").final
    np.testing.assert_allclose(m.readout(final), io["y"], rtol=0, atol=1e-12)
    # the same by plain steps (Jacobi), not the topological sweep
    s = m.zeros(len(x))
    for _ in range(m.settle_steps):
        s = m.step(s, x)
    np.testing.assert_allclose(m.readout(s), io["y"], rtol=0, atol=1e-12)
    assert itermap.check_map(m, rng=0).passed


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_outputs_equal_torch(name):
    path, arch, io = load(name)
    m = itermap.from_torch(path, arch)
    assert isinstance(m, itermap.RecurrentMap)
    if "lstm" in name:
        out, (h_n, c_n) = m.run(io["x"], io["h0"], io["c0"])
        np.testing.assert_allclose(c_n, io["c_n"], rtol=0, atol=1e-12)
    else:
        out, h_n = m.run(io["x"], io["h0"])
    assert out.shape == io["output"].shape
    np.testing.assert_allclose(out, io["output"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n, io["h_n"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_alignment_by_hand(name):
    """The documented alignment: the state after step t + 1 holds output[t]."""
    path, arch, io = load(name)
    m = itermap.from_torch(path, arch)
    x = io["x"] if not m.batch_first else np.swapaxes(io["x"], 0, 1)  # (T, B, n)
    x0 = m.initial_state(io["h0"], io.get("c0"))
    traj = itermap.iterate(m, x0, len(x), inputs=x)
    want = io["output"] if not m.batch_first else np.swapaxes(io["output"], 0, 1)
    for t in range(len(x)):
        np.testing.assert_allclose(traj.states[t + 1][:, m.output_slice], want[t], atol=1e-12)
    for layer in range(m.num_layers):
        np.testing.assert_allclose(traj.final[:, m.hidden_slice(layer)], io["h_n"][layer],
                                   atol=1e-12)


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_jacobian_equals_torch_autograd(name):
    path, arch, io = load(name)
    m = itermap.from_torch(path, arch)
    for x, u, J in zip(io["jac_states"], io["jac_inputs"], io["jacobians"]):
        np.testing.assert_allclose(m.jacobian(x, u), J, rtol=0, atol=1e-12)
        v = np.random.default_rng(0).normal(size=(m.dim, 2))
        np.testing.assert_allclose(m.tangent(x, v, u), J @ v, atol=1e-12)
        w = np.random.default_rng(1).normal(size=(3, m.dim))
        np.testing.assert_allclose(m.vjp(x, w, u), w @ J, atol=1e-12)
    assert itermap.check_map(m, rng=0).passed


def test_gru_fixed_points_match_scipy_on_torch_cell():
    path, arch, io = load("gru")
    m = itermap.from_torch(path, arch)
    u, want = io["fp_input"], io["fixed_points"]
    assert len(want) >= 5
    # each root scipy found on torch's cell is a fixed point of the imported map
    for p in want:
        assert np.max(np.abs(m.step(p, u) - p)) < 1e-12
    # from the same starts, Newton's paths and scipy's (hybr) differ: ours reach at least as
    # many distinct points, most of scipy's among them, each a fixed point of the map
    res = find_fixed_points(m, io["fp_starts"], inputs=u)
    ours = np.asarray(res.points)
    assert len(ours) >= len(want)
    assert np.all(np.max(np.abs(m.step(ours, np.tile(u, (len(ours), 1))) - ours), axis=1)
                  < 1e-10)
    dist = np.array([np.min(np.max(np.abs(ours - p), axis=1)) for p in want])
    assert np.mean(dist < 1e-9) >= 0.75, dist
    assert np.all(np.abs(ours) < 1)  # h = n in (-1, 1): none of the spurious saturated roots
    # from starts near each of scipy's roots, every one is found
    near = want + 1e-3 * np.random.default_rng(0).normal(size=want.shape)
    found = np.asarray(find_fixed_points(m, near, inputs=u).points)
    assert len(found) == len(want)
    for p in want:
        assert np.min(np.max(np.abs(found - p), axis=1)) < 1e-10


def test_lstm_lyapunov_spectrum_matches_torch_jacobian_products():
    path, arch, io = load("lstm")
    m = itermap.from_torch(path, arch)
    res = lyapunov_spectrum(m, io["ly_x0"], len(io["ly_inputs"]), inputs=io["ly_inputs"], rng=0)
    # the sum is the mean log |det J| along the driven trajectory, whatever the start frame
    assert abs(np.sum(res.exponents) - np.sum(io["lyapunov"])) < 1e-9
    # single finite-time exponents depend on the random start frame (the fixture's is I)
    np.testing.assert_allclose(res.exponents, io["lyapunov"], rtol=0, atol=0.05)
    assert res.exponents.shape == (m.dim,) and np.all(np.isfinite(res.exponents))


def test_sequential2d_iterates_as_the_paper_loop():
    path, arch, io = load("seq2d")
    m = itermap.from_torch(path, arch, activation="relu", input_block=0)
    for steps, want in zip(io["steps"], io["states"]):
        got = itermap.iterate(m, io["x0"], int(steps), inputs=io["u"], keep="last").final
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # blocks[i][j] is W[j, i]: the Linear from block 0 to block 1 sits at W[1, 0]
    arrays = safetensors_numpy.load_file(str(path))
    np.testing.assert_array_equal(m.block_matrix.block(1, 0), arrays["blocks.(0, 1).weight"])
    # trainable: every entry of a Linear, the mask of a MaskedLinear, nothing of Identity
    want = sum(arrays[k].size for k in arrays if k.endswith(".weight")) + \
        sum(int(np.count_nonzero(arrays[k])) for k in arrays if k.endswith(".mask"))
    assert m.block_matrix.trainable_count == want
    assert (1, 1) not in m.block_matrix.trainable


def test_arrays_as_a_dict_and_as_npz(tmp_path):
    path, arch, io = load("gru")
    arrays = safetensors_numpy.load_file(str(path))
    np.savez(tmp_path / "gru.npz", **arrays)
    for source in (arrays, tmp_path / "gru.npz", str(path)):
        m = itermap.from_torch(source, arch)
        out, h_n = m.run(io["x"], io["h0"])
        np.testing.assert_allclose(h_n, io["h_n"], atol=1e-12)


def test_prefix_takes_part_of_a_larger_state_dict():
    path, arch, io = load("gru")
    arrays = safetensors_numpy.load_file(str(path))
    whole = {f"rnn.{k}": v for k, v in arrays.items()}
    whole["readout.weight"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match="no weight_ih_l0.*prefix="):
        itermap.from_torch(whole, arch)
    with pytest.raises(ValueError, match="unexpected weights.*readout.weight.*prefix"):
        itermap.from_torch({**arrays, "readout.weight": np.zeros((2, 3))}, arch)
    m = itermap.from_torch(whole, arch, prefix="rnn.")
    np.testing.assert_allclose(m.run(io["x"], io["h0"])[1], io["h_n"], atol=1e-12)
    with pytest.raises(ValueError, match="prefix: no key starts with 'cnn.'"):
        itermap.from_torch(whole, arch, prefix="cnn.")


def test_float32_weights_stay_float32():
    path, arch, io = load("mlp")
    arrays = {k: v.astype(np.float32) for k, v in safetensors_numpy.load_file(str(path)).items()}
    m = itermap.from_torch(arrays, arch)
    assert m.dtype == np.float32
    x = io["x"].astype(np.float32)
    y = m.readout(itermap.iterate(m, m.zeros(len(x)).astype(np.float32), m.settle_steps,
                                  inputs=x, keep="last").final)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, io["y"], rtol=1e-5, atol=1e-5)


def test_the_iterative_form_of_a_one_layer_rnn():
    path, arch, io = load("rnn1")
    m = itermap.from_torch(path, arch, form="iterative")
    assert isinstance(m, itermap.IterativeMap) and m.input_block == 0
    x, h0 = io["x"], io["h0"][0]  # (T, B, n), (B, H)
    state = np.concatenate([np.zeros((x.shape[1], x.shape[2])), h0], axis=-1)
    traj = itermap.iterate(m, state, len(x), inputs=x)
    np.testing.assert_allclose(traj.states[1:, :, x.shape[2]:], io["output"], atol=1e-12)
    with pytest.raises(ValueError, match="one-layer nn.RNN"):
        itermap.from_torch(*load("gru")[:2], form="iterative")


# -- bad input --------------------------------------------------------------------------
def _mlp_arrays():
    path, arch, _ = load("mlp")
    return dict(safetensors_numpy.load_file(str(path))), arch


def test_nan_weight_names_the_layer():
    arrays, arch = _mlp_arrays()
    arrays["2.weight"] = arrays["2.weight"].copy()
    arrays["2.weight"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"model\[2\].*NaN"):
        itermap.from_torch(arrays, arch)
    path, rarch, _ = load("lstm")
    rarrays = dict(safetensors_numpy.load_file(str(path)))
    rarrays["weight_hh_l0"] = np.full_like(rarrays["weight_hh_l0"], np.nan)
    with pytest.raises(ValueError, match="LSTM layer 0.*NaN"):
        itermap.from_torch(rarrays, rarch)


def test_mismatched_shapes_name_the_layer():
    arrays, arch = _mlp_arrays()
    arrays["2.weight"] = np.zeros((6, 7))
    with pytest.raises(ValueError, match=r"model\[2\] \(Linear\) takes 7 inputs"):
        itermap.from_torch(arrays, arch)
    arrays, arch = _mlp_arrays()
    arrays["0.bias"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"model\[0\].*0.bias has shape"):
        itermap.from_torch(arrays, arch)
    path, rarch, _ = load("gru2")
    rarrays = dict(safetensors_numpy.load_file(str(path)))
    rarrays["weight_ih_l1"] = np.zeros((9, 5))
    with pytest.raises(ValueError, match="layer 1 takes inputs of size 5"):
        itermap.from_torch(rarrays, rarch)


@pytest.mark.parametrize("layer,match", [
    ("Conv2d", r"model\[1\] is a 'Conv2d'"), ("BatchNorm1d", "BatchNorm1d"),
    ("Sin(3)", "cannot read|give parameters"),
])
def test_unsupported_layers_name_the_layer(layer, match):
    arrays, arch = _mlp_arrays()
    arch = [arch[0], layer] + arch[2:]
    with pytest.raises(ValueError, match=match):
        itermap.from_torch(arrays, arch)


def test_bidirectional_and_projected_weights_are_refused():
    path, arch, _ = load("lstm")
    arrays = dict(safetensors_numpy.load_file(str(path)))
    with pytest.raises(ValueError, match="bidirectional"):
        itermap.from_torch({**arrays, "weight_ih_l0_reverse": arrays["weight_ih_l0"]}, arch)
    with pytest.raises(ValueError, match="proj_size"):
        itermap.from_torch({**arrays, "weight_hr_l0": np.zeros((2, 3))}, arch)


def test_architecture_errors():
    arrays, arch = _mlp_arrays()
    with pytest.raises(ValueError, match="architecture"):
        itermap.from_torch(arrays)
    with pytest.raises(ValueError, match="'RNN', 'GRU' or 'LSTM'"):
        itermap.from_torch(arrays, "Transformer")
    with pytest.raises(ValueError, match="before the first Linear"):
        itermap.from_torch(arrays, ["Tanh"] + arch)
    with pytest.raises(ValueError, match="follows another activation"):
        itermap.from_torch(arrays, arch[:2] + ["ReLU"] + arch[2:])
    with pytest.raises(ValueError, match="no '1.weight'|no '4.weight'"):
        itermap.from_torch(arrays, ["Linear", "Linear"] + arch[2:])
    with pytest.raises(ValueError, match=".safetensors or .npz"):
        itermap.from_torch("weights.pt", arch)
    with pytest.raises(ValueError, match="form"):
        itermap.from_torch(arrays, arch, form="dense")
    with pytest.raises(TypeError, match="architecture must be"):
        itermap.from_torch(arrays, 3)
    path, sarch, _ = load("seq2d")
    with pytest.raises(ValueError, match="name the activation"):
        itermap.from_torch(path, sarch)


# -- torch stays optional ---------------------------------------------------------------
def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)


def test_importing_itermap_does_not_import_torch():
    res = _run("import sys, itermap, itermap.analysis, itermap.analysis.plots\n"
               "assert 'torch' not in sys.modules, 'torch was imported'\n"
               "assert 'itermap._interop._torch_modules' not in sys.modules\nprint('ok')")
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_a_live_module_without_torch_says_how_to_install():
    res = _run("import sys\nsys.modules['torch'] = None  # as if not installed\n"
               "import itermap\n"
               "class Linear:\n    pass\nLinear.__module__ = 'torch.nn.modules.linear'\n"
               "for call in (lambda: itermap.from_torch(Linear()),\n"
               "             lambda: itermap.to_torch(itermap.random_rnn(3, rng=0))):\n"
               "    try:\n        call()\n    except ImportError as e:\n        print(e)\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count('pip install "itermap[torch]"') == 2, res.stdout


def test_arrays_are_read_without_torch():
    res = _run("import sys, json\nsys.modules['torch'] = None\nimport itermap\n"
               "from safetensors import safe_open\n"
               "p = 'tests/fixtures/torch_gru.safetensors'\n"
               "arch = json.loads(safe_open(p, 'numpy').metadata()['architecture'])\n"
               "print(itermap.from_torch(p, arch))")
    assert res.returncode == 0 and "RecurrentMap" in res.stdout, res.stderr


# -- properties of the recurrent maps, and fuzzing their construction -------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["rnn", "gru", "lstm"]), n_in=st.integers(1, 3),
       hidden=st.integers(1, 4), layers=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_vjp_and_tangent_agree_exactly(kind, n_in, hidden, layers, seed):
    """w . (J v) == (w^T J) . v: forward and reverse mode through every layer."""
    rng = np.random.default_rng(seed)
    from itermap._maps._gated import _ElmanCell, _GRUCell, _LSTMCell

    cls = {"rnn": _ElmanCell, "gru": _GRUCell, "lstm": _LSTMCell}[kind]
    cells, size = [], n_in
    for _ in range(layers):
        g = cls.n_gates * hidden
        cells.append(cls(rng.normal(size=(g, size)), rng.normal(size=(g, hidden)),
                         rng.normal(size=g), rng.normal(size=g)))
        size = hidden
    m = itermap.RecurrentMap(cells)
    x = rng.normal(size=(2, m.dim))
    u = rng.normal(size=(2, n_in))
    v = rng.normal(size=(2, m.dim, 1))
    w = rng.normal(size=(2, m.dim))
    lhs = np.einsum("bi,bi->b", w, m.tangent(x, v, u)[..., 0])
    rhs = np.einsum("bi,bi->b", m.vjp(x, w, u), v[..., 0])
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)
    J = m.jacobian(x, u)
    np.testing.assert_allclose(J @ v, m.tangent(x, v, u), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 13), cols=st.integers(0, 5), hh_rows=st.integers(0, 13),
       hh_cols=st.integers(0, 5), bias=st.integers(0, 13), nan=st.booleans())
def test_gru_weights_of_any_shape_give_a_map_or_a_clear_error(rows, cols, hh_rows, hh_cols,
                                                              bias, nan):
    w_ih, w_hh, b = np.ones((rows, cols)), np.ones((hh_rows, hh_cols)), np.ones(bias)
    if nan and w_hh.size:
        w_hh[0, 0] = np.nan
    try:
        m = itermap.GRUMap(w_ih, w_hh, b)
    except ValueError as err:
        assert any(name in str(err) for name in ("weight_ih", "weight_hh", "bias_ih")), err
        return
    assert not (nan and w_hh.size)
    assert m.dim == hh_cols >= 1 and m.input_size == cols >= 1 and hh_rows == 3 * hh_cols


def test_imported_maps_and_trainable_masks_save_and_load(tmp_path):
    for name in ("lstm2", "rnn2"):
        path, arch, io = load(name)
        m = itermap.from_torch(path, arch)
        itermap.save(m, tmp_path / f"{name}.npz")
        back = itermap.load(tmp_path / f"{name}.npz")
        assert isinstance(back, itermap.RecurrentMap) and back.batch_first == m.batch_first
        np.testing.assert_array_equal(back.run(io["x"], io["h0"], io.get("c0"))[0],
                                      m.run(io["x"], io["h0"], io.get("c0"))[0])
    path, arch, io = load("seq2d")
    m = itermap.from_torch(path, arch, activation="relu", input_block=0)
    itermap.save(m, tmp_path / "seq2d.npz")
    back = itermap.load(tmp_path / "seq2d.npz")
    assert back.block_matrix.trainable.keys() == m.block_matrix.trainable.keys()
    for key, mask in m.block_matrix.trainable.items():
        np.testing.assert_array_equal(back.block_matrix.trainable[key], mask)
