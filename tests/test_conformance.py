"""One conformance test that every kind of map in itermap passes: the classic systems,
networks (dense, sparse, mixed, driven), the recurrent maps (Elman, GRU, LSTM, stacked),
attention RNNs, state spaces, reservoirs, looped transformers and function maps; a test
checks that every concrete Map subclass of itermap is here (tests/test_architecture.py)."""

import numpy as np
import pytest
import scipy.sparse as sp

import itermap
from itermap import BlockMatrix, IterativeMap
from itermap.block_functions import FeedForward, LayerNorm, SelfAttention, transformer_layer
from itermap.systems import henon, linear, logistic, standard_map
from tests.conftest import to_np


def _henon_step(x):
    """The Henon map written as plain functions of the state (a FunctionMap's step)."""
    xp = itermap.backends.namespace(x)
    return xp.stack([1 - 1.4 * x[..., 0] ** 2 + x[..., 1], 0.3 * x[..., 0]], axis=-1)


def _henon_jacobian(x):
    xp = itermap.backends.namespace(x)
    one = xp.ones_like(x[..., 0])
    rows = [xp.stack([-2.8 * x[..., 0], one], axis=-1), xp.stack([0.3 * one, 0 * one], axis=-1)]
    return xp.stack(rows, axis=-2)


def _layer(xp, rng, T=2, d=2):
    """One transformer encoder layer on a sequence of T tokens of width d."""
    def w(*shape):
        return xp.asarray(rng.normal(size=shape) / np.sqrt(shape[-1]))

    att = SelfAttention(w(3 * d, d), w(3 * d), w(d, d), w(d), num_heads=1, seq_len=T)
    ff = FeedForward(w(2 * d, d), w(2 * d), w(d, 2 * d), w(d), seq_len=T, activation="gelu")
    norms = [LayerNorm(xp.asarray(1 + 0.1 * rng.normal(size=d)),
                       xp.asarray(0.1 * rng.normal(size=d)), seq_len=T) for _ in range(2)]
    return transformer_layer(att, ff, *norms)


def _maps(xp):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 4))
    maps = {
        "logistic": (logistic(3.7), None),
        "henon": (henon(), None),
        "standard": (standard_map(0.9), None),
        "linear": (linear(xp.asarray(A)), None),
        "dense_tanh": (IterativeMap(xp.asarray(rng.normal(size=(6, 6)) / 2), activation="tanh"),
                       None),
        "hetero_blocks": (IterativeMap(xp.asarray(rng.normal(size=(7, 7)) / 2),
                                       xp.asarray(rng.normal(size=7)),
                                       ["sigmoid", "elu", "softplus"], sizes=[2, 2, 3]), None),
        "forced_mlp": (IterativeMap.from_mlp(
            [xp.asarray(rng.normal(size=(4, 3))), xp.asarray(rng.normal(size=(2, 4)))],
            activation="tanh", output_activation="sin"), rng.normal(size=3)),
        "elman": (itermap.ElmanRNNMap(xp.asarray(rng.normal(size=(4, 2))),
                                      xp.asarray(rng.normal(size=(4, 4)) / 2),
                                      xp.asarray(rng.normal(size=4)),
                                      xp.asarray(rng.normal(size=4))), rng.normal(size=2)),
        "gru": (itermap.GRUMap(xp.asarray(rng.normal(size=(9, 2))),
                               xp.asarray(rng.normal(size=(9, 3))),
                               xp.asarray(rng.normal(size=9)),
                               xp.asarray(rng.normal(size=9))), rng.normal(size=2)),
        "lstm": (itermap.LSTMMap(xp.asarray(rng.normal(size=(12, 2))),
                                 xp.asarray(rng.normal(size=(12, 3))),
                                 xp.asarray(rng.normal(size=12)),
                                 xp.asarray(rng.normal(size=12))), rng.normal(size=2)),
        # a stack of all three kinds: each layer's input is the hidden state below it
        "stacked_recurrent": (itermap.RecurrentMap(
            itermap.ElmanRNNMap(xp.asarray(rng.normal(size=(3, 2))),
                                xp.asarray(rng.normal(size=(3, 3)) / 2),
                                nonlinearity="relu").layers
            + itermap.GRUMap(xp.asarray(rng.normal(size=(6, 3))),
                             xp.asarray(rng.normal(size=(6, 2)))).layers
            + itermap.LSTMMap(xp.asarray(rng.normal(size=(8, 2))),
                              xp.asarray(rng.normal(size=(8, 2)))).layers),
            rng.normal(size=2)),
        "attention_rnn": (itermap.AttentionRNN(
            xp.asarray(rng.normal(size=(3, 2))), xp.asarray(rng.normal(size=(2, 2))),
            xp.asarray(rng.normal(size=3))), rng.normal(size=2)),
        "state_space": (itermap.LinearStateSpace(
            xp.asarray(itermap.systems.hippo("legs", 3)[0]), xp.asarray(rng.normal(size=(3, 2))),
            xp.asarray(rng.normal(size=(1, 3))), dt=0.3), rng.normal(size=2)),
        "reservoir": (itermap.ReservoirMap(
            xp.asarray(rng.normal(size=(5, 5)) / 3), xp.asarray(rng.normal(size=(5, 2))),
            xp.asarray(rng.normal(size=5)), leak=0.5,
            readout_weights=xp.asarray(rng.normal(size=(5, 1)))), rng.normal(size=2)),
        "looped_transformer": (itermap.LoopedTransformerMap(_layer(xp, rng)),
                               rng.normal(size=4)),
        "function_map": (itermap.FunctionMap(_henon_step, 2, jacobian=_henon_jacobian,
                                             name="henon"), None),
    }
    if getattr(xp, "__name__", "") in ("numpy", "cupy"):
        sparse = {
            "sparse_rnn": (itermap.random_rnn(30, gain=1.3, density=0.1, rng=1), None),
            "mixed_blocks": (IterativeMap(BlockMatrix(
                [3, 4], {(1, 0): sp.random(4, 3, density=0.5, random_state=2, format="csr"),
                         (1, 1): rng.normal(size=(4, 4)), (0, 1): rng.normal(size=(3, 4))}),
                activation="tanh"), None),
            "forced_sparse": (IterativeMap(sp.csr_matrix(rng.normal(size=(6, 6))),
                                           sizes=[2, 4], input_block=0), rng.normal(size=2))}
        if xp is not np:  # the same maps on the GPU: cupyx.scipy.sparse weights
            sparse = {k: (m.to("cupy"), u) for k, (m, u) in sparse.items()}
        maps.update(sparse)
    return maps


MAP_NAMES = ["logistic", "henon", "standard", "linear", "dense_tanh", "hetero_blocks",
             "forced_mlp", "elman", "gru", "lstm", "stacked_recurrent", "sparse_rnn",
             "mixed_blocks", "forced_sparse", "attention_rnn", "state_space", "reservoir",
             "looped_transformer", "function_map"]
# maps of Python functions: pickled (tests/test_pickle.py), never saved to a file
UNSAVEABLE = {"function_map"}


@pytest.mark.parametrize("name", MAP_NAMES)
def test_map_conformance(name, xp):
    maps = _maps(xp)
    if name not in maps:
        pytest.skip("sparse maps run on numpy/cupy only")
    m, u = maps[name]
    rng = np.random.default_rng(5)
    batch = 3
    x_np = rng.uniform(0.1, 0.9, size=(batch, m.dim))
    x = xp.asarray(x_np)
    u_x = None if u is None else xp.asarray(np.broadcast_to(u, (batch, u.size)).copy())
    # batched step equals row-by-row steps
    y = to_np(m.step(x, u_x))
    for b in range(batch):
        yb = to_np(m.step(x[b, ...], None if u is None else xp.asarray(u)))
        np.testing.assert_allclose(y[b], yb, rtol=1e-13, atol=1e-14)
    # the Jacobian agrees with central finite differences
    J = to_np(m.jacobian(x, u_x))
    assert J.shape == (batch, m.dim, m.dim)
    h = 1e-6
    for j in range(m.dim):
        e = np.zeros(m.dim)
        e[j] = h
        fd = (to_np(m.step(xp.asarray(x_np + e), u_x)) - to_np(m.step(xp.asarray(x_np - e), u_x)))
        np.testing.assert_allclose(J[:, :, j], fd / (2 * h), rtol=1e-6, atol=1e-7)
    # tangent equals jacobian @ v, batched and single
    v_np = rng.normal(size=(batch, m.dim, 2))
    Jv = to_np(m.tangent(x, xp.asarray(v_np), u_x))
    np.testing.assert_allclose(Jv, J @ v_np, rtol=1e-12, atol=1e-12)
    J0 = to_np(m.jacobian(x[0, ...], None if u is None else xp.asarray(u)))
    np.testing.assert_allclose(J0, J[0], rtol=1e-13, atol=1e-14)
    y2, Jv2 = m.step_with_tangent(x, xp.asarray(v_np), u_x)
    np.testing.assert_allclose(to_np(y2), y, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(to_np(Jv2), Jv, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", MAP_NAMES)
def test_map_saves_and_loads_exactly(name, tmp_path):
    m, u = _maps(np)[name]
    if name in UNSAVEABLE:  # refused at once, by a message that names the class
        with pytest.raises(TypeError, match=f"cannot save a {type(m).__name__}"):
            itermap.save(m, tmp_path / f"{name}.npz")
        assert not list(tmp_path.iterdir())
        return
    m2 = itermap.load(itermap.save(m, tmp_path / f"{name}.npz"))
    assert type(m2) is type(m)
    x = np.random.default_rng(0).uniform(0.1, 0.9, size=(2, m.dim))
    np.testing.assert_array_equal(m2.step(x, None if u is None else np.tile(u, (2, 1))),
                                  m.step(x, None if u is None else np.tile(u, (2, 1))))


@pytest.mark.parametrize("name", MAP_NAMES)
def test_every_map_passes_the_public_check_map(name, xp):
    maps = _maps(xp)
    if name not in maps:
        pytest.skip("sparse maps run on numpy/cupy only")
    m, u = maps[name]
    x = xp.asarray(np.random.default_rng(5).uniform(0.1, 0.9, size=(3, m.dim)))
    u_x = None if u is None else xp.asarray(np.tile(u, (3, 1)))
    report = itermap.check_map(m, x, u=u_x, rng=0)
    assert report.passed and report.errors["jacobian"] < 1e-6


@pytest.mark.parametrize("name", MAP_NAMES)
def test_vjp_is_the_transpose_of_the_jacobian(name):
    m, u = _maps(np)[name]
    rng = np.random.default_rng(7)
    x = rng.uniform(0.1, 0.9, size=(3, m.dim))
    u_x = None if u is None else np.tile(u, (3, 1))
    J = m.jacobian(x, u_x)
    w = rng.normal(size=(3, 4, m.dim))       # k cotangents per state
    np.testing.assert_allclose(m.vjp(x, w, u_x), np.einsum("bki,bij->bkj", w, J),
                               rtol=1e-12, atol=1e-13)
    w1 = rng.normal(size=m.dim)              # one state, one cotangent
    np.testing.assert_allclose(m.vjp(x[0], w1, None if u is None else u), w1 @ J[0],
                               rtol=1e-12, atol=1e-13)
