"""from_torch and to_torch against live torch modules (skipped where torch is missing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import itermap

torch = pytest.importorskip("torch")
nn = torch.nn

_spec = importlib.util.spec_from_file_location(
    "make_torch_fixtures", Path(__file__).resolve().parent / "fixtures" / "make_torch_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)
torch.set_default_dtype(torch.float32)  # the fixture module sets float64 on import

ACTS = [nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.ELU(alpha=0.3), nn.LeakyReLU(0.2),
        nn.Softplus(beta=1.5, threshold=3.0), nn.GELU(), nn.GELU(approximate="tanh"),
        nn.SiLU(), nn.Identity()]


def settled(m, x):
    return m.readout(itermap.iterate(m, m.zeros(len(x)).astype(m.dtype), m.settle_steps,
                                     inputs=x, keep="last").final)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: repr(a))
def test_mlp_with_each_activation_equals_torch(act):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 7), act, nn.Linear(7, 5), act,
                          nn.Dropout(0.5), nn.Linear(5, 2)).double().eval()
    x = torch.randn(9, 2, 3, dtype=torch.float64) * 3
    m = itermap.from_torch(model)
    np.testing.assert_allclose(settled(m, x.reshape(9, -1).numpy()),
                               model(x).detach().numpy(), rtol=0, atol=1e-12)
    assert itermap.check_map(m, rng=0).passed
    # float32: to float32 rounding
    model32 = model.float()
    m32 = itermap.from_torch(model32)
    assert m32.dtype == np.float32
    y32 = settled(m32, x.float().reshape(9, -1).numpy())
    np.testing.assert_allclose(y32, model32(x.float()).detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls,kw", [
    (nn.RNN, {"nonlinearity": "tanh"}), (nn.RNN, {"nonlinearity": "relu", "bias": False}),
    (nn.GRU, {}), (nn.GRU, {"bias": False}), (nn.LSTM, {}),
])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_equals_torch(cls, kw, layers, batch_first):
    torch.manual_seed(layers)
    model = cls(3, 4, num_layers=layers, batch_first=batch_first, dtype=torch.float64, **kw)
    m = itermap.from_torch(model)
    x = torch.randn((2, 11, 3) if batch_first else (11, 2, 3), dtype=torch.float64)
    h0 = torch.randn(layers, 2, 4, dtype=torch.float64)
    if cls is nn.LSTM:
        c0 = torch.randn(layers, 2, 4, dtype=torch.float64)
        out, (h_n, c_n) = model(x, (h0, c0))
        got, (gh, gc) = m.run(x.numpy(), h0.numpy(), c0.numpy())
        np.testing.assert_allclose(gc, c_n.detach().numpy(), atol=1e-12)
    else:
        out, h_n = model(x, h0)
        got, gh = m.run(x.numpy(), h0.numpy())
    np.testing.assert_allclose(got, out.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(gh, h_n.detach().numpy(), rtol=0, atol=1e-12)
    assert itermap.check_map(m, rng=0).passed
    back = itermap.to_torch(m)
    for (k, a), (k2, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_unbatched_sequence():
    model = nn.GRU(2, 3, dtype=torch.float64)
    x = torch.randn(6, 2, dtype=torch.float64)
    out, h_n = model(x)
    got, gh = itermap.from_torch(model).run(x.numpy())
    np.testing.assert_allclose(got, out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(gh, h_n.detach().numpy(), atol=1e-12)


def test_sequential2d_live():
    torch.manual_seed(3)
    model = fixtures.seq2d_model().double()
    m = itermap.from_torch(model, activation="relu", input_block=0)
    sizes = model.in_features_list
    xb = [torch.randn(3, n, dtype=torch.float64) for n in sizes]
    u = torch.randn(3, sizes[0], dtype=torch.float64)
    with torch.no_grad():
        want = fixtures.iterate_seq2d(model, xb, u, 4).numpy()
    got = itermap.iterate(m, torch.cat(xb, -1).numpy(), 4, inputs=u.numpy(), keep="last").final
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def _random_maps():
    rng = np.random.default_rng(0)
    dense = itermap.IterativeMap(rng.normal(size=(5, 5)) * 0.5, rng.normal(size=5), "tanh")
    sparse = itermap.random_rnn(40, gain=1.1, density=0.05, rng=1)
    bm = itermap.BlockMatrix.from_pattern([3, 4, 5], [["0", "0", "0"], ["W", "R=0.5", "0"],
                                                      ["0", "S=6", "D"]], rng=2)
    mixed = itermap.IterativeMap(bm, rng.normal(size=12),
                                 ["identity", "elu(alpha=0.5)", "sin"], input_block=0)
    described = itermap.BlockMatrix.from_description(
        [2, 3], [2, 3], [[0, 0], ["W", "R=0.5"]], [[0, 0], ["G", "U"]],
        [[False, False], [True, "non-zero"]], rng=3)
    desc = itermap.IterativeMap(described, None, ["identity", "softplus"], input_block=0)
    return {"dense": dense, "sparse": sparse, "mixed": mixed, "described": desc}


@pytest.mark.parametrize("name", ["dense", "sparse", "mixed", "described"])
def test_round_trip_through_torch_is_exact(name):
    m = _random_maps()[name]
    module = itermap.to_torch(m)
    back = itermap.from_torch(module)
    assert back.sizes == m.sizes and back.input_block == m.input_block
    assert [a.name for a in back.activations] == [a.name for a in m.activations]
    np.testing.assert_array_equal(back.block_matrix.to_dense(), m.block_matrix.to_dense())
    np.testing.assert_array_equal(back.bias if back.bias is not None else 0,
                                  m.bias if m.bias is not None else 0)
    assert set(back.block_matrix.blocks) == set(m.block_matrix.blocks)
    for key, b in m.block_matrix.blocks.items():
        assert itermap.backends.is_sparse(b) == itermap.backends.is_sparse(
            back.block_matrix.blocks[key]), key
    assert back.block_matrix.trainable_count == m.block_matrix.trainable_count
    # and through a state dict saved and loaded
    again = itermap.to_torch(m)
    again.load_state_dict(module.state_dict())
    np.testing.assert_array_equal(itermap.from_torch(again).block_matrix.to_dense(),
                                  m.block_matrix.to_dense())


@pytest.mark.parametrize("name", ["dense", "sparse", "mixed", "described"])
def test_torch_module_runs_the_map(name):
    m = _random_maps()[name]
    module = itermap.to_torch(m)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, m.dim)) * 0.5
    u = rng.normal(size=(7, 3, m.input_size)) if m.input_size else None
    want = itermap.iterate(m, x, 7, inputs=u, keep="last").final
    got = module(torch.as_tensor(x), None if u is None else torch.as_tensor(u), steps=7)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=0, atol=1e-12)


def test_training_in_torch_keeps_the_sparse_pattern():
    m = _random_maps()["mixed"]
    module = itermap.to_torch(m)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    x = torch.randn(4, m.dim, dtype=torch.float64)
    u = torch.randn(4, m.input_size, dtype=torch.float64)
    for _ in range(3):
        opt.zero_grad()
        module(x, u, steps=3).pow(2).sum().backward()
        opt.step()
    trained = itermap.from_torch(module)
    before, after = m.block_matrix, trained.block_matrix
    changed = False
    for key in set(before.blocks) | set(after.blocks):
        a = np.asarray(before.block(*key).toarray() if itermap.backends.is_sparse(
            before.block(*key)) else before.block(*key))
        b = np.asarray(after.block(*key).toarray() if itermap.backends.is_sparse(
            after.block(*key)) else after.block(*key))
        mask = before.trainable.get(key)
        mask = np.zeros(a.shape, bool) if mask is None else (
            mask.toarray() if itermap.backends.is_sparse(mask) else mask)
        np.testing.assert_array_equal(a[~mask], b[~mask])  # off the pattern: untouched
        changed |= bool(np.any(a[mask] != b[mask]))
    assert changed


def test_unsupported_modules_name_the_layer():
    cases = [
        (nn.Sequential(nn.Linear(3, 4), nn.Conv2d(1, 1, 1)), r"model\[1\] is a Conv2d"),
        (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), r"model\[1\] is a BatchNorm1d"),
        (nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.2)), r"model\[1\] \(Dropout\).*training"),
        (nn.Sequential(nn.Linear(3, 4), nn.Flatten()), "leading Flatten"),
        (nn.GRU(2, 3, bidirectional=True), "bidirectional"),
        (nn.LSTM(2, 3, proj_size=2), "proj_size"),
        (nn.GRU(2, 3, num_layers=2, dropout=0.5), "training mode"),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), r"model\[1\] \(Linear\) takes 5"),
    ]
    for model, match in cases:
        with pytest.raises(ValueError, match=match):
            itermap.from_torch(model)
    with pytest.raises(TypeError, match="Embedding"):
        itermap.from_torch(nn.Embedding(4, 3))
    bad = nn.Sequential(nn.Linear(3, 4))
    with torch.no_grad():
        bad[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"model\[0\].*NaN"):
        itermap.from_torch(bad)
    with pytest.raises(ValueError, match="mixes"):
        layers = itermap.GRUMap(np.ones((9, 2)), np.ones((9, 3))).layers + \
            itermap.ElmanRNNMap(np.ones((3, 3)), np.ones((3, 3))).layers
        itermap.to_torch(itermap.RecurrentMap(layers))


def test_nn_linear_alone():
    lin = nn.Linear(3, 2, dtype=torch.float64)
    m = itermap.from_torch(lin)
    x = torch.randn(4, 3, dtype=torch.float64)
    np.testing.assert_allclose(settled(m, x.numpy()), lin(x).detach().numpy(), atol=1e-12)
