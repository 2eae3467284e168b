"""itermap.train: gradients against finite differences and torch, masks, options, bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import itermap
import itermap._training._bptt
from itermap import BlockMatrix, IterativeMap, datasets, loss_and_gradient, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- an independent reference: the loss from map.step, and central differences --------
def reference_loss(m, inputs, targets, *, steps, loss, at):
    """The loss written out from ``map.step`` and numpy, apart from the training code."""
    seq = inputs.ndim == 3
    n = inputs.shape[1] if seq else inputs.shape[0]
    x = np.zeros((n, m.dim))
    values = []
    for t in range(steps):
        x = m.step(x, inputs[t] if seq else inputs)
        if at == "all" or t == steps - 1:
            y = m.readout(x)
            tt = targets[t] if at == "all" else targets
            if loss == "mse":
                values.append(np.mean((y - tt) ** 2))
            else:
                logp = y - y.max(axis=1, keepdims=True)
                logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
                values.append(-np.mean(logp[np.arange(n), tt]))
    return float(np.mean(values))


def with_params(m, blocks, bias):
    return IterativeMap(BlockMatrix(m.sizes, blocks), bias, list(m.activations),
                        input_block=m.input_block)


def finite_difference(m, inputs, targets, *, steps, loss, at, h=1e-6):
    """Central differences at every stored weight (sparse: at the nonzeros) and bias."""
    blocks = {k: (b.tocsr().copy() if sp.issparse(b) else b.copy())
              for k, b in m.block_matrix.blocks.items()}
    for b in blocks.values():
        if sp.issparse(b):
            b.sort_indices()
    bias = m.bias.copy()
    grads = {}

    def at_params():
        return reference_loss(with_params(m, blocks, bias), inputs, targets, steps=steps,
                              loss=loss, at=at)

    for key, b in blocks.items():
        vals = b.data if sp.issparse(b) else b.reshape(-1)
        g = np.zeros(vals.size)
        for e in range(vals.size):
            keep = vals[e]
            vals[e] = keep + h
            lp = at_params()
            vals[e] = keep - h
            lm = at_params()
            vals[e] = keep
            g[e] = (lp - lm) / (2 * h)
        grads[key] = g
    gb = np.zeros(bias.size)
    for e in range(bias.size):
        keep = bias[e]
        bias[e] = keep + h
        lp = at_params()
        bias[e] = keep - h
        lm = at_params()
        bias[e] = keep
        gb[e] = (lp - lm) / (2 * h)
    return grads, gb


def flat(m, grads, gb):
    parts = []
    for key in sorted(m.block_matrix.blocks):
        g = grads[key]
        parts.append(np.asarray(g.data if sp.issparse(g) else g).reshape(-1))
    if m.input_block is not None:  # the input block's bias is never used
        gb = gb.copy()
        gb[m.block_slice(m.input_block)] = 0.0
    return np.concatenate(parts + [gb])


def sparse_rows_trained(m, grads):
    """Zero the rows of the input block, which neither code path trains."""
    out = {}
    for key, g in grads.items():
        out[key] = g * 0.0 if key[0] == m.input_block else g
    return out


def mlp_map(rng):
    return IterativeMap.from_mlp([rng.normal(size=(6, 4)), rng.normal(size=(3, 6))],
                                 biases=[rng.normal(size=6), rng.normal(size=3)],
                                 activation="tanh")


def hybrid_map(rng, *, dense_recurrent=False):
    """[input 2; hidden 5; readout 3], sparse and dense blocks, per-block activations."""
    rec = "W" if dense_recurrent else "R=0.5"
    bm = BlockMatrix.from_pattern([2, 5, 3], [["0", "0", "0"], ["W", rec, "R=0.6"],
                                              ["R=0.7", "W", "R=0.5"]], rng=rng)
    return IterativeMap(bm, rng.normal(size=10), ["identity", "tanh", "sigmoid"],
                        input_block=0)


CASES = {
    "dense mlp, held input, last": lambda r: (mlp_map(r), r.normal(size=(7, 4)),
                                              r.integers(0, 3, 7), 2, "cross_entropy", "last"),
    "sparse hybrid, sequence, last, ce": lambda r: (hybrid_map(r), r.normal(size=(6, 4, 2)),
                                                    r.integers(0, 3, 4), None, "cross_entropy",
                                                    "last"),
    "sparse hybrid, sequence, all, mse": lambda r: (hybrid_map(r), r.normal(size=(5, 4, 2)),
                                                    r.normal(size=(5, 4, 3)), None, "mse", "all"),
    "dense recurrent, held input, all, ce": lambda r: (hybrid_map(r, dense_recurrent=True),
                                                       r.normal(size=(3, 2)),
                                                       r.integers(0, 3, (4, 3)), 4,
                                                       "cross_entropy", "all"),
}


@pytest.fixture(params=["dense steps", "sparse steps"])
def step_kind(request, monkeypatch):
    """Small sparse maps train through dense steps; force the sparse steps too."""
    if request.param == "sparse steps":
        monkeypatch.setattr(itermap._training._bptt, "_DENSIFY_DIM", 0)
    return request.param


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("checkpoint", [None, 2])
def test_gradient_matches_central_differences(name, checkpoint, step_kind):
    rng = np.random.default_rng(abs(hash(name)) % 1000)
    m, inputs, targets, steps, loss, at = CASES[name](rng)
    T = inputs.shape[0] if inputs.ndim == 3 else steps
    L, grads, gb = loss_and_gradient(m, inputs, targets, steps=steps, loss=loss, at=at,
                                     checkpoint=checkpoint)
    assert L == pytest.approx(reference_loss(m, inputs, targets, steps=T, loss=loss, at=at),
                              rel=1e-12)
    fd, fdb = finite_difference(m, inputs, targets, steps=T, loss=loss, at=at)
    ours = flat(m, sparse_rows_trained(m, grads), gb)
    ref = flat(m, sparse_rows_trained(m, fd), fdb)
    assert np.linalg.norm(ours - ref) <= 1e-6 * np.linalg.norm(ref)
    for key, g in grads.items():  # a sparse block's gradient keeps the block's pattern
        b = m.block_matrix.blocks[key]
        if sp.issparse(b):
            assert sp.issparse(g) and g.nnz <= b.nnz
            assert set(zip(*g.nonzero())) <= set(zip(*b.nonzero()))


def test_parameter_gradient_of_one_step_matches_central_differences():
    rng = np.random.default_rng(3)
    m = hybrid_map(rng)
    x, w, u = rng.normal(size=(4, 10)), rng.normal(size=(4, 10)), rng.normal(size=(4, 2))
    grads, gb = m.parameter_gradient(x, w, u)
    h = 1e-6
    for key, b in m.block_matrix.blocks.items():
        b = b.tocsr().copy() if sp.issparse(b) else b.copy()
        vals = b.data if sp.issparse(b) else b.reshape(-1)
        got = np.asarray(grads[key].data if sp.issparse(grads[key]) else grads[key]).reshape(-1)
        for e in range(vals.size):
            blocks = dict(m.block_matrix.blocks)
            keep = vals[e]
            vals[e] = keep + h
            blocks[key] = b.copy()
            lp = np.sum(w * with_params(m, blocks, m.bias).step(x, u))
            vals[e] = keep - h
            blocks[key] = b.copy()
            lm = np.sum(w * with_params(m, blocks, m.bias).step(x, u))
            vals[e] = keep
            assert got[e] == pytest.approx((lp - lm) / (2 * h), rel=1e-6, abs=1e-8)
    assert gb.shape == (10,) and np.all(gb[:2] == 0)


def test_sampled_product_matches_the_dense_product_at_the_pattern():
    from itermap._maps._network_grad import sampled_product

    rng = np.random.default_rng(0)
    g, x = rng.normal(size=(30, 200)), rng.normal(size=(30, 150))
    S = sp.random(200, 150, density=0.01, random_state=1, format="coo")
    dense = g.T @ x
    np.testing.assert_allclose(sampled_product(g, x, S.row, S.col), dense[S.row, S.col],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("at", ["last", "all"])
def test_gradient_matches_torch_autograd(at, step_kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    m = hybrid_map(rng)
    u = rng.normal(size=(6, 4, 2))
    y = rng.integers(0, 3, (6, 4) if at == "all" else 4)
    L, grads, gb = loss_and_gradient(m, u, y, at=at)
    sizes, off = m.sizes, m.block_matrix.offsets
    params = {k: torch.tensor(b.toarray() if sp.issparse(b) else b, dtype=torch.float64,
                              requires_grad=True) for k, b in m.block_matrix.blocks.items()}
    masks = {k: torch.tensor((b.toarray() if sp.issparse(b) else b) != 0)
             for k, b in m.block_matrix.blocks.items()}
    bias = torch.tensor(m.bias, requires_grad=True)
    acts = [lambda z: z, torch.tanh, torch.sigmoid]
    x = [torch.zeros(4, s, dtype=torch.float64) for s in sizes]
    losses = []
    for t in range(6):
        x[0] = torch.tensor(u[t])
        new = [x[0]]
        for i in (1, 2):
            z = bias[off[i]:off[i + 1]].expand(4, -1)
            for (ii, j), W in params.items():
                if ii == i:
                    z = z + x[j] @ (W * masks[(ii, j)]).T
            new.append(acts[i](z))
        x = new
        if at == "all" or t == 5:
            target = torch.tensor(y[t] if at == "all" else y)
            losses.append(torch.nn.functional.cross_entropy(x[2], target))
    torch.stack(losses).mean().backward()
    assert L == pytest.approx(float(torch.stack(losses).mean().detach()), rel=1e-12)
    for key, W in params.items():
        ref = (W.grad * masks[key]).numpy()
        got = grads[key].toarray() if sp.issparse(grads[key]) else grads[key]
        if key[0] == 0:
            continue
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb[2:], bias.grad.numpy()[2:], rtol=1e-10, atol=1e-12)


# -- trainable entries only ------------------------------------------------------------
class MaskedBlocks(BlockMatrix):
    """A BlockMatrix carrying a ``trainable`` mask, as BlockMatrix.from_description will."""

    def __init__(self, sizes, blocks, trainable):
        super().__init__(sizes, blocks)
        self._flags = trainable

    @property
    def trainable(self):  # flags per block; a block not named trains
        return self._flags


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), p=st.floats(0.2, 0.8), frozen=st.booleans(),
       entrywise=st.booleans(), sparse_steps=st.booleans())
def test_zero_pattern_and_frozen_entries_survive_training(seed, p, frozen, entrywise,
                                                          sparse_steps):
    saved = itermap._training._bptt._DENSIFY_DIM
    itermap._training._bptt._DENSIFY_DIM = 0 if sparse_steps else saved
    try:
        _train_and_check_pattern(seed, p, frozen, entrywise)
    finally:
        itermap._training._bptt._DENSIFY_DIM = saved


def _train_and_check_pattern(seed, p, frozen, entrywise):
    rng = np.random.default_rng(seed)
    bm = BlockMatrix.from_pattern([3, 6, 2], [["0", "0", "0"], [f"R={p}", f"R={p}", "W"],
                                              ["0", "W", f"R={p}"]], rng=rng)
    blocks = bm.blocks
    trainable = {k: True for k in blocks}
    if frozen and (1, 1) in blocks:
        trainable[(1, 1)] = False
    if entrywise:
        trainable[(2, 1)] = rng.random(blocks[(2, 1)].shape) < 0.5
    m = IterativeMap(MaskedBlocks(bm.sizes, blocks, trainable), rng.normal(size=11),
                     ["identity", "tanh", "identity"], input_block=0)
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    net, _ = train(m, x, y, steps=3, epochs=3, batch_size=16, lr=0.05, rng=seed,
                   progress=False)
    for key, b in blocks.items():
        before = b.toarray() if sp.issparse(b) else b
        after = net.block_matrix.block(*key)
        after = after.toarray() if sp.issparse(after) else after
        assert np.all(after[before == 0] == 0), f"block {key} gained entries"
        flag = trainable[key]
        keep = ~np.asarray(flag, dtype=bool) if hasattr(flag, "shape") else (
            np.ones(before.shape, bool) if not flag else np.zeros(before.shape, bool))
        assert np.array_equal(after[keep], before[keep]), f"frozen entries of {key} moved"
    assert np.array_equal(net.bias[:3], m.bias[:3])
    assert net.block_matrix.trainable.keys() == trainable.keys()  # the mask is kept


def test_trainable_count_honours_the_mask():
    rng = np.random.default_rng(0)
    bm = BlockMatrix.from_pattern([2, 4, 2], [["0", "0", "0"], ["W", "R=0.5", "0"],
                                              ["0", "W", "0"]], rng=rng)
    plain = IterativeMap(bm, None, "tanh", input_block=0)
    expect = 8 + bm.blocks[(1, 1)].nnz + 8 + 6
    assert itermap.trainable_count(plain) == expect
    masked = IterativeMap(MaskedBlocks(bm.sizes, bm.blocks, {(1, 1): False}), None, "tanh",
                          input_block=0)
    assert itermap.trainable_count(masked) == expect - bm.blocks[(1, 1)].nnz
    # from_description's names: "non-zero" trains only a dense block's nonzeros
    W = bm.blocks[(1, 0)].copy()
    W[0, :] = 0.0
    blocks = {**bm.blocks, (1, 0): W}
    named = IterativeMap(MaskedBlocks(bm.sizes, blocks, {(1, 0): "non-zero", (2, 1): "none"}),
                         None, "tanh", input_block=0)
    assert itermap.trainable_count(named) == expect - 2 - 8
    with pytest.raises(ValueError, match="trainable flag"):
        itermap.trainable_count(IterativeMap(MaskedBlocks(bm.sizes, bm.blocks, {(1, 0): "some"}),
                                             None, "tanh", input_block=0))


# -- behaviour ---------------------------------------------------------------------------
def small_problem(seed=0):
    rng = np.random.default_rng(seed)
    m = IterativeMap.from_mlp([rng.normal(size=(8, 2)), rng.normal(size=(2, 8))],
                              biases=[np.zeros(8), np.zeros(2)], activation="tanh")
    x = rng.normal(size=(120, 2))
    return m, x, (x[:, 0] * x[:, 1] > 0).astype(int)


def test_train_learns_returns_a_new_map_and_is_reproducible():
    m, x, y = small_problem()
    before = m.block_matrix.to_dense().copy()
    net, hist = train(m, x, y, epochs=40, lr=0.05, rng=1, progress=False)
    assert np.array_equal(m.block_matrix.to_dense(), before)  # no mutation
    assert net is not m and hist.epochs == 40
    assert hist.loss[-1] < 0.6 * hist.loss[0] and hist.accuracy[-1] > 0.85
    again, hist2 = train(m, x, y, epochs=40, lr=0.05, rng=1, progress=False)
    assert np.array_equal(again.block_matrix.to_dense(), net.block_matrix.to_dense())
    assert np.array_equal(hist.loss, hist2.loss)
    L, acc = itermap.evaluate(net, x, y)
    assert L == pytest.approx(reference_loss(net, x, y, steps=2, loss="cross_entropy",
                                             at="last"), rel=1e-12)


@pytest.mark.parametrize("options", [dict(optimizer="sgd", momentum=0.9),
                                     dict(weight_decay=1e-3, clip_norm=0.5, schedule="cosine"),
                                     dict(schedule=lambda e: 0.9 ** e)])
def test_optimizer_options_train(options):
    m, x, y = small_problem()
    net, hist = train(m, x, y, epochs=30, lr=0.05, rng=0, progress=False, **options)
    assert hist.loss[-1] < hist.loss[0]
    if options.get("schedule") == "cosine":
        assert hist.lr[0] == 0.05 and hist.lr[-1] < 0.01


def test_one_epoch_of_adam_matches_torch():
    torch = pytest.importorskip("torch")
    m, x, y = small_problem()
    net, _ = train(m, x, y, epochs=1, batch_size=120, lr=0.01, rng=0, progress=False)
    W1 = torch.tensor(m.block_matrix.blocks[(1, 0)], requires_grad=True)
    W2 = torch.tensor(m.block_matrix.blocks[(2, 1)], requires_grad=True)
    b1 = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    b2 = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([W1, W2, b1, b2], lr=0.01)
    out = torch.tanh(torch.tensor(x) @ W1.T + b1) @ W2.T + b2
    torch.nn.functional.cross_entropy(out, torch.tensor(y)).backward()
    opt.step()
    np.testing.assert_allclose(net.block_matrix.blocks[(1, 0)], W1.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(net.bias[-2:], b2.detach().numpy(), rtol=1e-10, atol=1e-14)


def test_early_stopping_on_a_validation_split_returns_the_best_epoch():
    m, x, y = small_problem()
    net, hist = train(m, x, y, epochs=200, lr=0.2, rng=0, validation=0.25, patience=3,
                      progress=False)
    assert hist.stopped_early and hist.epochs < 200
    best = int(np.nanargmin(hist.val_loss)) + 1
    assert hist.best_epoch == best
    assert np.all(np.isfinite(hist.val_accuracy))


def test_resume_continues_exactly(tmp_path):
    m, x, y = small_problem()
    straight, h1 = train(m, x, y, epochs=6, lr=0.05, rng=3, progress=False)
    path = str(tmp_path / "state.npz")
    train(m, x, y, epochs=3, lr=0.05, rng=3, progress=False, save_state=path)
    resumed, h2 = train(m, x, y, epochs=6, lr=0.05, rng=3, progress=False, resume=path)
    np.testing.assert_array_equal(resumed.block_matrix.to_dense(),
                                  straight.block_matrix.to_dense())
    np.testing.assert_array_equal(h1.loss, h2.loss)


def test_history_saves_and_loads(tmp_path):
    m, x, y = small_problem()
    _, hist = train(m, x, y, epochs=2, lr=0.05, rng=0, progress=False)
    back = itermap.load(itermap.save(hist, str(tmp_path / "h.npz")))
    np.testing.assert_array_equal(back.loss, hist.loss)
    assert back.trainable_count == hist.trainable_count == 8 * 2 + 8 + 16 + 2


def test_a_loss_that_turns_inf_stops_with_epoch_step_and_the_last_good_map():
    rng = np.random.default_rng(0)
    bm = BlockMatrix([1, 4, 1], {(1, 0): np.ones((4, 1)), (1, 1): 1.5 * np.eye(4),
                                 (2, 1): np.ones((1, 4))})
    m = IterativeMap(bm, None, ["identity", "identity", "identity"], input_block=0)
    u = rng.normal(size=(60, 8, 1)) * 10
    with pytest.raises(itermap.NonFiniteLossError, match=r"epoch \d+, step \d+") as info:
        with np.errstate(all="ignore"):
            train(m, u, np.ones((8, 1)), loss="mse", epochs=3, lr=1e3, rng=0, progress=False)
    err = info.value
    assert err.epoch >= 1 and err.step >= 1
    assert np.all(np.isfinite(err.map.block_matrix.to_dense()))


@pytest.mark.parametrize("kwargs, match", [
    (dict(targets=np.zeros(5, int)), "targets"),           # wrong length
    (dict(targets=np.full(120, 7)), "0..1"),               # class out of range
    (dict(targets=np.zeros((120, 3))), "targets"),         # wrong width
    (dict(inputs=np.zeros((0, 2)), targets=np.zeros(0, int)), "empty"),
    (dict(lr=0.0), "lr"), (dict(lr=-1.0), "lr"), (dict(lr=np.nan), "lr"),
    (dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"),
    (dict(loss="hinge"), "loss"), (dict(at="first"), "at"),
    (dict(validation=1.0), "validation"),
    (dict(inputs=np.zeros((120, 3))), "features"),
])
def test_bad_input_is_refused(kwargs, match):
    m, x, y = small_problem()
    args = dict(inputs=x, targets=y)
    args.update({k: kwargs.pop(k) for k in ("inputs", "targets") if k in kwargs})
    with pytest.raises(ValueError, match=match):
        train(m, args["inputs"], args["targets"], progress=False, **kwargs)


def test_nan_in_the_data_is_refused():
    m, x, y = small_problem()
    x = x.copy()
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="inputs contain NaN"):
        train(m, x, y, progress=False)
    with pytest.raises(ValueError, match="targets contain NaN"):
        train(m, np.zeros((4, 2)), np.full((4, 2), np.nan), loss="mse", progress=False)


def test_an_autonomous_map_is_refused():
    with pytest.raises(ValueError, match="driven"):
        train(itermap.random_rnn(4, rng=0), np.zeros((3, 4)), np.zeros(3, int), steps=2)


# -- the vjp of the classic systems -------------------------------------------------------
@pytest.mark.parametrize("m, x", [(itermap.systems.logistic(3.7), np.array([[0.3], [0.6]])),
                                  (itermap.systems.henon(), np.array([[0.1, 0.2], [-0.4, 1]])),
                                  (itermap.systems.standard_map(0.9), np.array([[0.1, 2.0]])),
                                  (itermap.systems.linear(np.array([[1.0, 2.0], [3.0, 4.0]])),
                                   np.array([[1.0, -1.0]]))])
def test_classic_systems_vjp_is_the_transpose_product(m, x):
    rng = np.random.default_rng(0)
    J = m.jacobian(x)
    w = rng.normal(size=x.shape)
    np.testing.assert_allclose(m.vjp(x, w), np.einsum("bi,bij->bj", w, J), rtol=1e-14)
    wk = rng.normal(size=(x.shape[0], 3, x.shape[1]))  # k cotangents per state
    np.testing.assert_allclose(m.vjp(x, wk), np.einsum("bki,bij->bkj", wk, J), rtol=1e-14)
    one = rng.normal(size=(3, x.shape[1]))
    np.testing.assert_allclose(m.vjp(x[0], one), one @ J[0], rtol=1e-14)
    np.testing.assert_allclose(m.vjp(x[0], one[0]), one[0] @ J[0], rtol=1e-14)
    assert itermap.check_map(m, x[0]).passed


# -- data and shipped networks -----------------------------------------------------------
def test_digits_is_the_uci_set_with_a_fixed_split():
    x_train, y_train, x_test, y_test = datasets.digits()
    assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
    assert x_train.dtype == np.float64 and y_train.dtype.kind == "i"
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert np.all(np.round(x_train * 16) == x_train * 16)  # counts 0..16 divided by 16
    # the class counts of sklearn's load_digits (its documented 1797 images)
    counts = np.bincount(np.concatenate([y_train, y_test]))
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # sklearn's first image (load_digits().data[0]) is a zero
    first = np.array([0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0]) / 16
    rows = np.vstack([x_train, x_test])
    assert np.any(np.all(rows[:, :16] == first, axis=1))
    again = datasets.digits()
    assert np.array_equal(again[2], x_test)


def test_flip_flop_targets_hold_the_last_pulse():
    u, y = datasets.flip_flop(20, 300, bits=3, p=0.05, rng=4)
    assert u.shape == y.shape == (300, 20, 3)
    assert set(np.unique(u)) <= {-1.0, 0.0, 1.0}
    for i in range(20):
        for c in range(3):
            last = 0.0
            for t in range(300):
                if u[t, i, c] != 0:
                    last = u[t, i, c]
                assert y[t, i, c] == last
    assert abs(np.mean(u != 0) - 0.05) < 0.01
    a, _ = datasets.flip_flop(3, 10, rng=1)
    b, _ = datasets.flip_flop(3, 10, rng=1)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="p must"):
        datasets.flip_flop(3, 10, p=0.0)
    with pytest.raises(ValueError, match="steps"):
        datasets.flip_flop(3, 0)


@pytest.mark.parametrize("name, least", [("digits_mlp", 0.95), ("digits_sparse", 0.90)])
def test_shipped_digits_networks(name, least):
    net = itermap.load(os.path.join(ROOT, "data", "trained", f"{name}.npz"))
    _, _, x_test, y_test = datasets.digits()
    out = net.zeros(len(y_test))
    for _ in range(3):
        out = net.step(out, x_test)
    assert np.mean(np.argmax(net.readout(out), axis=1) == y_test) >= least


def test_shipped_flip_flop_rnn_holds_its_bits():
    net = itermap.load(os.path.join(ROOT, "data", "trained", "flip_flop_rnn.npz"))
    assert 64 <= net.sizes[1] <= 128 and net.activations[1].name == "tanh"
    u, y = datasets.flip_flop(100, 200, rng=123)
    x = net.zeros(100)
    correct = total = 0
    for t in range(200):
        x = net.step(x, u[t])
        if t >= 1:  # the readout reads the hidden state one step late
            held = y[t - 1] != 0
            correct += np.sum(np.sign(net.readout(x))[held] == y[t - 1][held])
            total += held.sum()
    assert correct / total >= 0.99


def test_checkpointing_lowers_the_peak_memory_and_keeps_the_gradient():
    import tracemalloc

    rng = np.random.default_rng(0)
    bm = BlockMatrix.from_pattern([4, 200, 4], [["0", "0", "0"], ["W", "W", "0"],
                                                ["0", "W", "0"]], rng=rng, scale=0.9)
    m = IterativeMap(bm, None, ["identity", "tanh", "identity"], input_block=0)
    u, y = rng.normal(size=(64, 32, 4)), rng.integers(0, 4, 32)
    peaks, grads = {}, {}
    for c in (None, 8):
        tracemalloc.start()
        _, g, gb = loss_and_gradient(m, u, y, checkpoint=c)
        peaks[c] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        grads[c] = np.concatenate([g[k].ravel() for k in sorted(g)] + [gb])
    # stored states: 2 T B dim floats without checkpoints, (T/c + 2c) B dim with
    stored = 2 * 64 * 32 * 208 * 8
    assert peaks[None] > stored
    assert peaks[8] < 0.5 * peaks[None]
    np.testing.assert_allclose(grads[8], grads[None], rtol=1e-12, atol=1e-15)
