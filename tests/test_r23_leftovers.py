"""Round 23: defects other helpers found this round (r23-leftovers).

Each test fails before its fix; the numbers are checked against another code path (the dense
weights' training), torch's reference forward pass or a closed form.
"""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

import itermap
from itermap import BlockMatrix, IterativeMap

# -- a trainable zero in a sparse block is stored, so it trains ----------------------------


def _chain():
    """The reported graph: a 31-node chain whose first edge has weight 0."""
    G = nx.DiGraph([(i, i + 1, {"w": 0.0 if i == 0 else 0.5}) for i in range(30)])
    return itermap.from_graph(G, weight="w", rng=0)


def _dense_twin(m):
    bm = m.block_matrix
    blocks = {k: b.toarray() if sp.issparse(b) else b for k, b in bm.blocks.items()}
    return IterativeMap(BlockMatrix(bm.sizes, blocks, trainable=bm.trainable), m.bias,
                        [a.name for a in m.activations], input_block=m.input_block)


def _one_sgd_step(m):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, m.sizes[0])), rng.normal(size=(16, m.sizes[-1]))
    trained, _ = itermap.train(m, x, y, steps=3, loss="mse", epochs=1, batch_size=16, lr=1.0,
                               optimizer="sgd", momentum=0.0, rng=0, progress=False)
    return trained


def _hidden(m):
    b = m.block_matrix.block(1, 1)
    return b.toarray() if sp.issparse(b) else np.asarray(b)


def test_a_trainable_zero_weight_of_a_sparse_block_trains_like_the_dense_path():
    m = _chain()
    hidden = m.block_matrix.blocks[(1, 1)]
    assert sp.issparse(hidden)                       # the sparse path (3 % filled)
    assert m.block_matrix.trainable[(1, 1)][1, 0]
    # the zero edge is stored: the pattern agrees with the mask (was 29 entries)
    assert hidden.nnz == 30 and hidden[1, 0] == 0.0
    assert hidden.count_nonzero() == 29              # nnz still counts nonzeros
    sparse_step = _hidden(_one_sgd_step(m))
    dense_step = _hidden(_one_sgd_step(_dense_twin(m)))
    assert abs(dense_step[1, 0]) > 1e-5              # the dense path moves it off zero
    np.testing.assert_allclose(sparse_step, dense_step, rtol=1e-10, atol=1e-14)
    # the weights outside the graph stay exactly zero on both paths
    off_graph = ~m.block_matrix.trainable[(1, 1)].toarray()
    assert not sparse_step[off_graph].any()


def test_the_zero_weights_gradient_is_the_finite_difference_of_the_loss():
    m = _chain()
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 1)), rng.normal(size=(16, 1))
    _, grads, _ = itermap.loss_and_gradient(m, x, y, steps=3, loss="mse")
    g = grads[(1, 1)]
    assert sp.issparse(g) and g.nnz == 30            # the zero edge has a gradient entry

    def loss_at(w):
        twin = _dense_twin(m)
        W = twin.block_matrix.blocks[(1, 1)].copy()
        W[1, 0] = w
        blocks = dict(twin.block_matrix.blocks)
        blocks[(1, 1)] = W
        net = IterativeMap(BlockMatrix(m.sizes, blocks), m.bias,
                           [a.name for a in m.activations], input_block=m.input_block)
        return itermap.loss_and_gradient(net, x, y, steps=3, loss="mse")[0]

    h = 1e-5
    fd = (loss_at(h) - loss_at(-h)) / (2 * h)
    assert abs(fd) > 1e-6
    np.testing.assert_allclose(g[1, 0], fd, rtol=1e-6)


def test_the_stored_pattern_holds_the_mask_and_drops_the_other_zeros():
    data = np.array([0.0, 1.0, 0.0])
    b = sp.csr_matrix((data, ([0, 1, 2], [1, 2, 0])), shape=(3, 3))
    # (0, 1): a zero in the mask, kept; (2, 0): a zero outside it, dropped;
    # (2, 2): in the mask but not in the pattern, added as a zero
    mask = sp.csr_matrix((np.ones(3, bool), ([0, 1, 2], [1, 2, 2])), shape=(3, 3))
    for trainable in ({(0, 0): mask}, {(0, 0): mask.toarray()}):
        W = BlockMatrix([3], {(0, 0): b}, trainable=trainable)
        kept = W.blocks[(0, 0)].tocoo()
        assert sorted(zip(kept.row.tolist(), kept.col.tolist())) == [(0, 1), (1, 2), (2, 2)]
        np.testing.assert_array_equal(W.to_dense(), b.toarray())
        assert W.nnz == 1
    assert BlockMatrix([3], {(0, 0): b}).blocks[(0, 0)].nnz == 1   # no mask: the pattern
    assert b.nnz == 3                                # the caller's matrix is not changed
    # a block with no nonzero entry is not stored, with a mask or without (as dense ones)
    zero = sp.csr_matrix((np.zeros(1), ([0], [1])), shape=(3, 3))
    assert BlockMatrix([3], {(0, 0): zero}, trainable={(0, 0): mask}).blocks == {}


def test_a_mask_entry_outside_the_sparse_pattern_trains_like_the_dense_path():
    rng = np.random.default_rng(2)
    hidden = sp.random(6, 6, density=0.3, random_state=rng, format="csr")
    mask = (hidden != 0).toarray()
    mask[0, :] = True                                # row 0: entries the pattern lacks
    assert (hidden[0].toarray() == 0).any()
    blocks = {(1, 0): rng.normal(size=(6, 2)), (1, 1): hidden, (2, 1): rng.normal(size=(1, 6))}
    trainable = {(1, 0): np.ones((6, 2), bool), (1, 1): mask, (2, 1): np.ones((1, 6), bool)}
    m = IterativeMap(BlockMatrix([2, 6, 1], blocks, trainable=trainable), None,
                     ["identity", "tanh", "identity"], input_block=0)
    assert sp.issparse(m.block_matrix.blocks[(1, 1)])
    sparse_step = _hidden(_one_sgd_step(m))
    dense_step = _hidden(_one_sgd_step(_dense_twin(m)))
    assert np.abs(dense_step[0][~(hidden[0].toarray()[0] != 0)]).min() > 1e-6
    np.testing.assert_allclose(sparse_step, dense_step, rtol=1e-10, atol=1e-14)
    assert not sparse_step[~mask].any()


@pytest.mark.parametrize("sparse", [False, True])
def test_a_masked_block_that_is_zero_now_trains(sparse):
    # the docstring's "a block initialised to zeros that training fills": it is not stored
    # (tests/test_description.py), and training did not fill it
    rng = np.random.default_rng(3)
    mask = rng.random((5, 2)) < 0.6
    C, R = rng.normal(size=(1, 5)), 0.3 * rng.normal(size=(5, 5))
    trainable = {(1, 0): sp.csr_matrix(mask) if sparse else mask,
                 (1, 1): np.ones((5, 5), bool), (2, 1): np.ones((1, 5), bool)}

    def net(w10):
        blocks = {(1, 1): R, (2, 1): C}
        if w10 is not None:
            blocks[(1, 0)] = sp.csr_matrix(w10 * mask) if sparse else w10 * mask
        return IterativeMap(BlockMatrix([2, 5, 1], blocks, trainable=trainable), None,
                            ["identity", "tanh", "identity"], input_block=0)

    zero = net(None)
    assert (1, 0) not in zero.block_matrix.blocks
    # the same map with the block stored at 1e-300: the ordinary path, the same step
    tiny = net(np.full((5, 2), 1e-300))
    got = _one_sgd_step(zero).block_matrix.block(1, 0)
    want = _one_sgd_step(tiny).block_matrix.block(1, 0)
    got, want = (b.toarray() if sp.issparse(b) else b for b in (got, want))
    assert np.abs(want[mask]).min() > 1e-6 and not got[~mask].any()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-290)


def test_save_and_load_keep_the_stored_zero(tmp_path):
    m = _chain()
    path = itermap.save(m, tmp_path / "chain.npz")
    back = itermap.load(path)
    hidden = back.block_matrix.blocks[(1, 1)]
    assert hidden.nnz == 30 and hidden[1, 0] == 0.0
    assert abs(_hidden(_one_sgd_step(back))[1, 0]) > 1e-5


# -- iterate names a misspelled keyword ----------------------------------------------------

@pytest.mark.parametrize("method", ["sequential", "newton"])
def test_iterate_names_an_unknown_keyword_and_the_close_one(method):
    from itermap.systems import logistic

    with pytest.raises(TypeError, match=r"unknown keyword.*'kep'.*did you mean 'keep'"):
        itermap.iterate(logistic(2.0), np.array([0.1]), 5, method=method, kep="last")
    with pytest.raises(TypeError, match=r"'damp'.*did you mean 'damping'"):
        itermap.iterate(logistic(2.0), np.array([0.1]), 5, method=method, damp=0.1)


def test_iterate_still_refuses_newton_options_without_newton_and_runs_them_with_it():
    from itermap.systems import logistic

    with pytest.raises(TypeError, match="only method='newton'"):
        itermap.iterate(logistic(2.0), np.array([0.1]), 5, tol=1e-3)
    traj = itermap.iterate(logistic(2.0), np.array([0.1]), 3, method="newton", tol=1e-12)
    x = 0.1
    for _ in range(3):
        x = 2.0 * x * (1 - x)
    np.testing.assert_allclose(traj.states[-1, 0], x, rtol=1e-9)


# -- from_torch on a transformer followed by a Linear --------------------------------------

def test_from_torch_says_a_transformer_and_a_linear_do_not_mix():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0,
                                                     batch_first=True), nn.Linear(4, 2))
    model.double().eval()
    with pytest.raises(ValueError, match=r"model\[0\] is a TransformerEncoderLayer and "
                                         r"model\[1\] a Linear.*not the two mixed.*"
                                         r"from_torch\(model\[:1\], seq_len=T\)"):
        itermap.from_torch(model, seq_len=3)
    # the advice works: the encoder alone, the Linear as a readout, equal torch's output
    m = itermap.from_torch(model[:1], seq_len=3)
    X = torch.randn(2, 3, 4, dtype=torch.float64)
    ours = m.forward(X.numpy()) @ model[1].weight.detach().numpy().T + \
        model[1].bias.detach().numpy()
    np.testing.assert_allclose(ours, model(X).detach().numpy(), atol=1e-12)


# -- Map.zeros names batch -----------------------------------------------------------------

def _maps():
    from itermap.systems import henon, logistic

    rng = np.random.default_rng(0)
    yield henon()
    yield logistic(3.0)
    yield itermap.random_rnn(5, rng=0)
    yield IterativeMap.from_mlp([rng.normal(size=(3, 2)), rng.normal(size=(1, 3))])
    yield itermap.as_map(_Halve())


class _Halve:
    """A user's own map: a plain class with dim and step."""

    dim = 3

    def step(self, x):
        return 0.5 * x

    def jacobian(self, x):
        return 0.5 * np.broadcast_to(np.eye(3), x.shape + (3,))


@pytest.mark.parametrize("bad, error", [((4,), TypeError), (2.0, TypeError),
                                        ("4", TypeError), (-1, ValueError)])
def test_zeros_names_batch(bad, error):
    for m in _maps():
        with pytest.raises(error, match="batch"):
            m.zeros(bad)
        assert m.zeros(4).shape == (4, m.dim) and not m.zeros(4).any()
