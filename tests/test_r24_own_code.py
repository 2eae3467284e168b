"""Round 24: a new user's own code and files (maps, torch modules, weights files, specs)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

import itermap
from itermap.analysis._report import SpecError, run_report


# -- a report's MLP read from the user's .npz ----------------------------------------------
@pytest.mark.parametrize("members, named", [
    (("W0", "W2"), r"\['W0', 'W2'\]"),                 # torch-style numbering 0, 2
    (("W0", "W1", "b0"), r"\['W0', 'W1', 'b0'\]"),     # one bias of two
    (("W0", "W1", "b0", "b1", "b2"), r"\[.*'b2'\]"),       # a bias with no layer
])
def test_a_report_mlp_file_with_a_gap_or_some_biases_is_refused_not_cut_short(
        tmp_path, members, named):
    # before: W2 after the gap, or every bias, was dropped without a word, and the report
    # analysed another network than the file's
    rng = np.random.default_rng(0)
    shapes = {"W0": (5, 3), "W1": (2, 5), "W2": (2, 5), "b0": (5,), "b1": (2,), "b2": (2,)}
    np.savez(tmp_path / "w.npz", **{k: rng.normal(size=shapes[k]) for k in members})
    spec = {"title": "t", "seed": 0,
            "networks": {"m": {"kind": "mlp", "path": str(tmp_path / "w.npz")}},
            "analyses": [{"kind": "equivalence", "network": "m"}]}
    with pytest.raises(SpecError, match=r"networks\.m\.path: .*w\.npz holds " + named):
        run_report(spec, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_a_report_mlp_file_with_every_bias_is_the_numpy_mlp(tmp_path):
    rng = np.random.default_rng(1)
    W0, W1, b0, b1 = (rng.normal(size=s) for s in ((5, 3), (2, 5), (5,), (2,)))
    np.savez(tmp_path / "w.npz", W0=W0, W1=W1, b0=b0, b1=b1, notes=np.arange(3))
    from itermap.analysis._report._models import MLP
    from itermap.analysis._report._networks import build_network

    m = build_network("m", MLP(kind="mlp", path=str(tmp_path / "w.npz")), 0)
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(m.forward(x), np.maximum(x @ W0.T + b0, 0) @ W1.T + b1,
                               rtol=1e-12, atol=1e-12)


# -- a .safetensors file of bfloat16 weights -------------------------------------------------
def _bf16_file(path, arrays):
    """``arrays`` (float32, low 16 bits zero) written as BF16 tensors, as torch writes them."""
    import json
    import struct

    header, data = {}, b""
    for k, a in arrays.items():
        raw = (a.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
        header[k] = {"dtype": "BF16", "shape": list(a.shape),
                     "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def test_a_bfloat16_safetensors_file_comes_in_as_float32_exactly(tmp_path):
    # before: safetensors.numpy's TypeError "data type 'bfloat16' not understood", naming
    # neither the file nor what to do; a live bfloat16 module was read all along
    pytest.importorskip("safetensors")
    rng = np.random.default_rng(0)
    arrays = {k: (rng.normal(size=s).astype(np.float32).view(np.uint32) & 0xFFFF0000)
              .view(np.float32) for k, s in (("0.weight", (4, 3)), ("0.bias", (4,)),
                                             ("2.weight", (2, 4)), ("2.bias", (2,)))}
    _bf16_file(tmp_path / "w.safetensors", arrays)
    m = itermap.from_torch(tmp_path / "w.safetensors", ["Linear", "Tanh", "Linear"])
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m.block_matrix.block(1, 0), arrays["0.weight"])
    x = rng.normal(size=(5, 3)).astype(np.float32)
    want = np.tanh(x @ arrays["0.weight"].T + arrays["0.bias"]) @ arrays["2.weight"].T \
        + arrays["2.bias"]
    np.testing.assert_allclose(m.forward(x), want, rtol=1e-5, atol=1e-6)


# -- pruned and parametrized torch modules ---------------------------------------------------
def _torch_mlp_error(torch, model, m):
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    return float(np.abs(m.forward(x) - want).max())


def test_a_pruned_torch_mlp_and_rnn_run_with_their_masks():
    # before: "the weights have no '0.weight'" (prune keeps weight_orig and weight_mask)
    torch = pytest.importorskip("torch")
    prune = pytest.importorskip("torch.nn.utils.prune")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    m = itermap.from_torch(model)
    W = m.block_matrix.block(1, 0)
    assert np.count_nonzero(W) == 12  # half of the 24 weights, as torch pruned them
    np.testing.assert_array_equal(W, model[0].weight.detach().numpy())
    assert _torch_mlp_error(torch, model, m) < 1e-6
    rnn = nn.RNN(3, 5, num_layers=2)
    prune.random_unstructured(rnn, "weight_hh_l1", amount=0.4)
    x = np.random.default_rng(1).normal(size=(7, 2, 3)).astype(np.float32)
    with torch.no_grad():
        out, h = rnn(torch.from_numpy(x))
    mout, mh = itermap.from_torch(rnn).run(x)
    np.testing.assert_allclose(mout, out.numpy(), atol=1e-6)
    np.testing.assert_allclose(mh, h.numpy(), atol=1e-6)


def test_weight_norm_and_spectral_norm_modules_are_read_as_their_forward_computes():
    # before: "model[0] is a ParametrizedLinear, which from_torch does not support", and an
    # RNN under weight_norm was described as 'ParametrizedRNN', an unknown architecture
    torch = pytest.importorskip("torch")
    nn, pz = torch.nn, torch.nn.utils.parametrizations
    torch.manual_seed(1)
    wn = nn.Sequential(pz.weight_norm(nn.Linear(3, 6)), nn.ELU(), nn.Linear(6, 2))
    assert _torch_mlp_error(torch, wn, itermap.from_torch(wn)) < 1e-6
    sn = nn.Sequential(pz.spectral_norm(nn.Linear(3, 6)), nn.Tanh(), nn.Linear(6, 2))
    with pytest.raises(ValueError, match=r"0\.weight .*training mode.*model\.eval\(\)"):
        itermap.from_torch(sn)
    sn.eval()
    u = sn[0].parametrizations.weight[0]._u.clone()
    m = itermap.from_torch(sn)
    assert torch.equal(u, sn[0].parametrizations.weight[0]._u)  # the module is not changed
    assert _torch_mlp_error(torch, sn, m) < 1e-6
    assert abs(np.linalg.norm(m.block_matrix.block(1, 0), 2) - 1.0) < 1e-3  # its purpose
    gru = pz.weight_norm(nn.GRU(3, 4, batch_first=True), "weight_hh_l0")
    x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype(np.float32)
    with torch.no_grad():
        out, _ = gru(torch.from_numpy(x))
    np.testing.assert_allclose(itermap.from_torch(gru).run(x)[0], out.numpy(), atol=1e-6)


# -- save writes no file that load refuses ---------------------------------------------------
def test_save_refuses_a_result_that_load_would_refuse_and_writes_nothing(tmp_path):
    # before: save wrote the file, and only load (weeks later) said it could not read it
    @itermap.saveable
    @dataclasses.dataclass
    class UserResult:                    # a user's own result, with a schema
        rates: np.ndarray
        steps: int
        _schema: ClassVar[dict] = {"rates": "float[N]", "steps": "int"}

    good = UserResult(np.array([0.5, 1.5]), 10)
    loaded = itermap.load(itermap.save(good, tmp_path / "good.npz"))
    np.testing.assert_array_equal(loaded.rates, good.rates)
    net = itermap.random_rnn(4, rng=0)
    res = itermap.analysis.lyapunov_spectrum(net, np.full(4, 0.1), 20, rng=0)
    for bad, field in ((UserResult(np.arange(3), 10), "rates"),        # ints for floats
                       (UserResult(np.ones(2), "10"), "steps"),
                       (dataclasses.replace(res, exponents=res.exponents[:2]), "per_trajectory"),
                       (dataclasses.replace(res, steps=20.0), "steps")):
        with pytest.raises(ValueError, match=rf"obj: .*field '{field}' of "):
            itermap.save(bad, tmp_path / "bad.npz")
        assert not (tmp_path / "bad.npz").exists()


def test_continue_from_a_loaded_result_with_an_impossible_step_count_is_refused(tmp_path):
    # before: steps=-1 in an edited file gave exponents twice the true ones, without a word
    net = itermap.random_rnn(4, rng=0)
    res = itermap.analysis.lyapunov_spectrum(net, np.full(4, 0.1), 50, rng=0)
    for steps, transient in ((-1, 0), (0, 0), (50, -3)):
        bad = dataclasses.replace(res, steps=steps, transient=transient)
        with pytest.raises(ValueError, match=rf"continue_from ran steps={steps} "):
            itermap.analysis.lyapunov_spectrum(net, None, 50, continue_from=bad)
    more = itermap.analysis.lyapunov_spectrum(net, None, 50, continue_from=res)
    whole = itermap.analysis.lyapunov_spectrum(net, np.full(4, 0.1), 100, rng=0)
    np.testing.assert_allclose(more.exponents, whole.exponents, rtol=1e-12, atol=1e-14)


# -- a user's step that returns a torch tensor ------------------------------------------------
@pytest.mark.parametrize("analysis", ["iterate", "lyapunov_spectrum", "find_fixed_points",
                                      "check_map"])
def test_a_step_returning_a_torch_tensor_for_numpy_states_is_named(analysis):
    # before: "sum() got an unexpected keyword argument 'axis'" from deep inside a run
    torch = pytest.importorskip("torch")
    W = torch.tensor([[0.5, -0.3], [0.2, 0.4]], dtype=torch.float64)

    def step(x):
        return torch.tanh(torch.as_tensor(x) @ W.T)

    m = itermap.FunctionMap(step, 2, jacobian="central")
    x0 = np.array([0.1, -0.2])
    run = {"iterate": lambda: itermap.iterate(m, x0, 5),
           "lyapunov_spectrum": lambda: itermap.analysis.lyapunov_spectrum(m, x0, 20, rng=0),
           "find_fixed_points": lambda: itermap.analysis.find_fixed_points(m, x0[None]),
           "check_map": lambda: itermap.check_map(m, rng=0)}[analysis]
    with pytest.raises(TypeError, match=r"its step returned a torch Tensor for a numpy "
                                        r"argument.*\.detach\(\)\.numpy\(\)"):
        run()
    fixed = itermap.FunctionMap(lambda x: step(x).numpy(), 2, jacobian="central")
    np.testing.assert_allclose(itermap.iterate(fixed, x0, 1).final,
                               np.tanh(W.numpy() @ x0), rtol=1e-15)


# -- compiled and data-parallel torch modules, and their state dicts ------------------------
def test_a_data_parallel_module_is_read_as_the_module_it_runs():
    # before: "from_torch reads nn.Sequential MLPs, ...; got a DataParallel" (and "got a
    # OptimizedModule" for torch.compile's, unwrapped the same way: not run here, its
    # compiler takes 15 s to import), and a wrapper's state_dict keys ('module.0.weight',
    # '_orig_mod.0.weight') were refused without saying to pass prefix=
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 5), nn.SiLU(), nn.Linear(5, 2))
    assert _torch_mlp_error(torch, model, itermap.from_torch(nn.DataParallel(model))) < 1e-6
    for prefix in ("module.", "_orig_mod."):
        state = {prefix + k: v for k, v in model.state_dict().items()}
        with pytest.raises(ValueError, match=rf"no '0\.weight'.*pass prefix='{prefix}'"):
            itermap.from_torch(state, ["Linear", "SiLU", "Linear"])
        m = itermap.from_torch(state, ["Linear", "SiLU", "Linear"], prefix=prefix)
        assert _torch_mlp_error(torch, model, m) < 1e-6


# -- a report rerun into a folder where the user added files --------------------------------
def test_a_report_rerun_keeps_the_users_files_added_to_the_earlier_report(tmp_path):
    # before: the rerun swapped the folder and deleted the user's notes, notebook and figure
    spec = {"title": "t", "seed": 0, "networks": {"n": {"kind": "random_rnn", "n": 6}},
            "analyses": [{"kind": "lyapunov", "network": "n", "steps": 30}]}
    out = tmp_path / "report"
    run_report(spec, out, progress=False)
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "fig01_lyapunov_n.pdf", "fig01_lyapunov_n.png"]
    from itermap.analysis._report._run import _not_the_reports

    (out / ".DS_Store").write_bytes(b"")        # a file browser's: not the user's work
    assert _not_the_reports(out) == []          # an earlier report alone is replaced
    for added in ("notes.md", "figures/fig01_lyapunov_n_edited.svg", "work/a.ipynb"):
        (out / added).parent.mkdir(exist_ok=True)
        (out / added).write_text("mine")
        with pytest.raises(FileExistsError, match=rf"also holds \['{added.split('/')[0]}"):
            run_report(spec, out, progress=False)
        assert (out / added).read_text() == "mine"
        (out / added).unlink()


# -- the covariant vectors' helpers take the result they come from ----------------------------
def test_clv_angles_and_participation_ratio_take_a_covariant_vectors_result():
    # before: clv_angles(result) said "vectors must be real numbers, got dtype object"
    A = np.array([[2.0, 1.0], [0.0, 0.5]])   # CLVs: its eigenvectors (1, 0) and (1, -1.5)

    class Linear:
        dim = 2

        def step(self, x):
            return x @ A.T

        def jacobian(self, x):
            return np.broadcast_to(A, x.shape + (2,))

    res = itermap.analysis.covariant_lyapunov_vectors(Linear(), np.array([1e-3, 1e-3]), 40,
                                                      transient=20, rng=0)
    angles = itermap.analysis.clv_angles(res)
    np.testing.assert_allclose(angles[:, 0, 1], np.arccos(1 / np.sqrt(1 + 1.5 ** 2)),
                               rtol=1e-12)
    np.testing.assert_array_equal(angles, itermap.analysis.clv_angles(res.vectors))
    pr = itermap.analysis.participation_ratio(res)
    v = np.array([1.0, -1.5]) ** 2
    np.testing.assert_allclose(pr[:, 1], v.sum() ** 2 / (v ** 2).sum(), rtol=1e-12)
    np.testing.assert_allclose(pr[:, 0], 1.0, rtol=1e-12)


def test_resample_spectrum_of_a_result_says_to_pass_its_exponents():
    # before: "spectrum must be real numbers, got dtype object"
    res = itermap.analysis.lyapunov_spectrum(itermap.random_rnn(5, rng=0), np.full(5, 0.1), 20,
                                             rng=0)
    with pytest.raises(TypeError, match=r"spectrum .*got a LyapunovSpectrum: pass its "
                                        r"\.exponents"):
        itermap.analysis.resample_spectrum(res, 3)
    ex = np.sort(res.exponents)[::-1]
    np.testing.assert_allclose(itermap.analysis.resample_spectrum(res.exponents, 3),
                               [ex[0], ex[2], ex[4]], rtol=1e-15)


# -- itermap.load on the other files a user has -------------------------------------------------
def test_load_of_weights_json_or_a_plain_npz_says_what_reads_them(tmp_path):
    # before: "not a readable itermap file (truncated or corrupt: BadZipFile ...)" for a
    # sound .safetensors or results.json, and "(no metadata)" for np.savez's arrays
    (tmp_path / "results.json").write_text('{"format": "itermap-report"}')
    (tmp_path / "w.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    np.savez(tmp_path / "w.npz", W0=np.eye(2))
    for name, says in (("results.json", r"is a \.json file, .*json\.load"),
                       ("w.safetensors", r"is a \.safetensors file, .*from_torch"),
                       ("w.npz", r"is an \.npz file but not an itermap file \(no "
                                 r"metadata\): .*numpy\.load.*from_torch")):
        with pytest.raises(ValueError, match=rf"{name} {says}"):
            itermap.load(tmp_path / name)
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04")   # a damaged .npz: as before
    with pytest.raises(ValueError, match=r"cut\.npz is not a readable itermap file "
                                         r"\(truncated or corrupt"):
        itermap.load(tmp_path / "cut.npz")


# -- check_map of a map on a torus ------------------------------------------------------------
class _StandardMap:
    """Chirikov's standard map on the torus, its step wrapping onto [0, 2 pi)."""

    dim = 2
    periods = (2 * np.pi, 2 * np.pi)

    def __init__(self, wrong=0.0):
        self.wrong = wrong

    def step(self, x):
        p = np.mod(x[..., 1] + 0.5 * np.sin(x[..., 0]), 2 * np.pi)
        return np.stack([np.mod(x[..., 0] + p, 2 * np.pi), p], -1)

    def jacobian(self, x):
        c = 0.5 * np.cos(x[..., 0])
        J = np.empty(x.shape + (2,))
        J[..., 0, 0], J[..., 0, 1], J[..., 1, 0], J[..., 1, 1] = 1 + c, 1.0, c, 1.0 + self.wrong
        return J


def test_check_map_passes_a_torus_map_whose_step_wraps_next_to_the_seam():
    # before: "jacobian: differs from central differences of step by 1.00e+00": the
    # differences of a step that wraps were taken across the seam, not modulo the period
    seam = np.array([[2 * np.pi - 1e-9, 2 * np.pi - 1e-9], [1e-9, 2 * np.pi - 0.5 - 1e-9]])
    assert itermap.check_map(_StandardMap(), seam).errors["jacobian"] < 1e-8
    with pytest.raises(itermap.ConformanceError, match="jacobian: differs from central"):
        itermap.check_map(_StandardMap(wrong=1e-3), seam)


def test_from_graph_with_edge_weights_refuses_a_gain_it_would_ignore():
    # before: gain=2.0 with weight="weight" gave the edge values unscaled, without a word
    nx = pytest.importorskip("networkx")
    G = nx.DiGraph()
    G.add_weighted_edges_from([("a", "b", 0.5), ("b", "c", -1.0), ("c", "a", 2.0)])
    with pytest.raises(ValueError, match=r"gain=2 .*weight='weight'.*scale them"):
        itermap.from_graph(G, weight="weight", gain=2.0, rng=0)
    H = itermap.from_graph(G, weight="weight", rng=0).block_matrix.block(1, 1)
    H = H.toarray() if hasattr(H, "toarray") else H
    np.testing.assert_array_equal(H, [[0, 0, 2.0], [0.5, 0, 0], [0, -1.0, 0]])
