import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import BlockMatrix, IterativeMap, iterate, random_rnn
from tests.conftest import to_np


def _mlp_forward(Ws, bs, x, act):
    h = x
    for l, W in enumerate(Ws):
        h = h @ W.T + (bs[l] if bs is not None else 0.0)
        if l < len(Ws) - 1:
            h = act(h)
    return h


@settings(max_examples=25, deadline=None)
@given(widths=st.lists(st.integers(1, 12), min_size=2, max_size=6),
       batch=st.integers(1, 5), seed=st.integers(0, 2 ** 16), with_bias=st.booleans())
def test_mlp_map_reproduces_forward_pass(widths, batch, seed, with_bias):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(o, i)) for i, o in zip(widths[:-1], widths[1:])]
    bs = [rng.normal(size=o) for o in widths[1:]] if with_bias else None
    m = IterativeMap.from_mlp(Ws, bs, activation="tanh")
    x = rng.normal(size=(batch, widths[0]))
    ref = _mlp_forward(Ws, bs, x, np.tanh)
    # the plain Jacobi loop: L steps of the map from the zero state
    state = m.zeros(batch)
    for _ in range(len(Ws)):
        state = m.step(state, x)
    assert np.max(np.abs(m.readout(state) - ref)) <= 1e-12
    # and one more step changes nothing: the map rests at a fixed point
    np.testing.assert_array_equal(m.step(state, x), state)
    # iterate's settling shortcut gives the same answer
    final = iterate(m, m.zeros(batch), len(Ws) + 3, inputs=x, keep="last").final
    assert np.max(np.abs(final - state)) <= 1e-12
    assert m.settle_steps == len(Ws)


def test_mlp_block_structure_is_subdiagonal():
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(4, 3)), rng.normal(size=(5, 4)), rng.normal(size=(2, 5))]
    m = IterativeMap.from_mlp(Ws)
    assert m.sizes == (3, 4, 5, 2) and m.input_block == 0
    np.testing.assert_array_equal(m.block_matrix.block_pattern(), np.eye(4, k=-1, dtype=bool))
    assert [a.name for a in m.activations] == ["identity", "relu", "relu", "identity"]
    # nilpotent: W^(L+1) = 0, and with the input overwritten every product of L Jacobians is 0
    W = m.block_matrix.to_dense()
    assert np.count_nonzero(np.linalg.matrix_power(W, 3)) > 0
    assert np.count_nonzero(np.linalg.matrix_power(W, 4)) == 0
    xs = rng.normal(size=(3, m.dim))
    u = rng.normal(size=3)
    J = [m.jacobian(x, u) for x in xs]
    assert np.count_nonzero(J[0] @ J[1]) > 0
    assert np.count_nonzero(J[0] @ J[1] @ J[2]) == 0


def test_elman_rnn_reproduces_plain_loop():
    rng = np.random.default_rng(1)
    n_x, n_h, T = 3, 6, 25
    W_hh = rng.normal(size=(n_h, n_h)) / np.sqrt(n_h)
    W_hx = rng.normal(size=(n_h, n_x))
    b = rng.normal(size=n_h) * 0.1
    xs = rng.normal(size=(T, n_x))
    h = np.zeros(n_h)
    ref = []
    for t in range(T):
        h = np.tanh(W_hh @ h + W_hx @ xs[t] + b)
        ref.append(h)
    m = IterativeMap.from_rnn(W_hh, W_hx, b)
    traj = iterate(m, m.zeros(), T, inputs=xs)
    np.testing.assert_allclose(traj.block(1)[1:], np.array(ref), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(traj.block(0)[1:], xs)


@pytest.mark.parametrize("storage", ["dense", "sparse", "blocks"])
def test_step_matches_reference_for_every_storage(storage):
    rng = np.random.default_rng(2)
    sizes = [3, 4, 5]
    dense = rng.normal(size=(12, 12)) * (rng.random((12, 12)) < 0.4)
    b = rng.normal(size=12)
    if storage == "dense":
        weights = dense
        kw = {"sizes": sizes}
    elif storage == "sparse":
        weights = sp.csr_matrix(dense)
        kw = {"sizes": sizes}
    else:
        off = [0, 3, 7, 12]
        weights = BlockMatrix(sizes, {(1, 0): dense[3:7, 0:3], (2, 2): dense[7:, 7:]})
        dense = weights.to_dense()
        kw = {}
    acts = ["tanh", "relu", "sigmoid"]
    m = IterativeMap(weights, b, acts, **kw)
    x = rng.normal(size=(6, 12))
    z = x @ dense.T + b
    ref = np.concatenate([np.tanh(z[:, :3]), np.maximum(z[:, 3:7], 0),
                          1 / (1 + np.exp(-z[:, 7:]))], axis=1)
    np.testing.assert_allclose(m.step(x), ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(m.step(x[0]), ref[0], rtol=1e-13, atol=1e-13)
    if storage == "blocks":
        assert m._kind == "blocks"
        assert off  # the block offsets used above


def test_forced_input_block_semantics(xp):
    rng = np.random.default_rng(3)
    W = xp.asarray(rng.normal(size=(5, 5)))
    m = IterativeMap(W, activation="tanh", sizes=[2, 3], input_block=0)
    x = xp.asarray(rng.normal(size=(4, 5)))
    u = xp.asarray(rng.normal(size=(4, 2)))
    y = m.step(x, u)
    xin = np.concatenate([to_np(u), to_np(x)[:, 2:]], axis=1)
    ref = np.tanh(xin @ to_np(W).T)
    np.testing.assert_allclose(to_np(y)[:, 2:], ref[:, 2:], atol=1e-13)
    np.testing.assert_array_equal(to_np(y)[:, :2], to_np(u))
    J = to_np(m.jacobian(x, u))
    np.testing.assert_array_equal(J[:, :2, :], 0.0)
    np.testing.assert_array_equal(J[:, :, :2], 0.0)


def test_sparse_parameter_gradient_and_trainable_mask_on_any_backend(xp):
    # sparse weights move to cupyx.scipy.sparse with the map; the gradient stays on the pattern
    if getattr(xp, "__name__", "") not in ("numpy", "cupy"):
        pytest.skip("sparse weights run on numpy/cupy only")
    rng = np.random.default_rng(4)
    S = sp.random(6, 6, density=0.4, random_state=4, format="csr")
    m = IterativeMap(S, activation="tanh")
    if xp is not np:
        m = m.to("cupy")
    x_np, w_np = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    grads, gb = m.parameter_gradient(xp.asarray(x_np), xp.asarray(w_np))
    # closed form: dL/dz = w * tanh'(z), dL/dW = (dL/dz)^T x read at the stored entries
    g = w_np * (1.0 - np.tanh(x_np @ S.toarray().T) ** 2)
    pattern = S.toarray() != 0
    np.testing.assert_allclose(to_np(grads[(0, 0)].toarray()), (g.T @ x_np) * pattern,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(to_np(gb), g.sum(axis=0), rtol=1e-12, atol=1e-14)
    mask = m.block_matrix.trainable[(0, 0)]
    assert sp.issparse(mask)  # masks live on the host
    np.testing.assert_array_equal(mask.toarray(), pattern)
    assert m.block_matrix.trainable_count == S.nnz == itermap.trainable_count(m) - 6


def test_a_float32_sparse_driven_map_stays_float32(xp):
    # the input block's mask once came in float64 and promoted the weights with it
    if getattr(xp, "__name__", "") not in ("numpy", "cupy"):
        pytest.skip("sparse weights run on numpy/cupy only")
    rng = np.random.default_rng(6)
    S = sp.random(6, 6, density=0.5, random_state=6, format="csr", dtype=np.float32)
    m = IterativeMap(S, sizes=[2, 4], input_block=0)
    if xp is not np:
        m = m.to("cupy")
    x_np, u_np = rng.normal(size=(3, 6)), rng.normal(size=(3, 2))
    x, u = xp.asarray(x_np, dtype=xp.float32), xp.asarray(u_np, dtype=xp.float32)
    y, Jv = m.step_with_tangent(x, xp.asarray(rng.normal(size=(3, 6, 2)), dtype=xp.float32), u)
    assert y.dtype == Jv.dtype == m.jacobian(x, u).dtype == np.float32
    assert m.jacobian(x[0], u[0], sparse=True).dtype == np.float32
    xin = np.concatenate([u_np, x_np[:, 2:]], axis=1).astype(np.float32).astype(float)
    ref = np.tanh(xin @ S.toarray().astype(float).T)
    np.testing.assert_allclose(to_np(y)[:, 2:], ref[:, 2:], rtol=1e-5, atol=1e-6)


def test_random_rnn_statistics_and_storage():
    n, gain, density = 2000, 1.5, 0.01
    m = random_rnn(n, gain=gain, density=density, rng=0)
    S = m.block_matrix.to_sparse()
    assert sp.issparse(m.block_matrix.block(0, 0))
    assert S.nnz / n ** 2 == pytest.approx(density, rel=0.03)
    # row norms^2 ~ gain^2: the spectral radius is about gain
    assert np.mean(np.asarray(S.multiply(S).sum(axis=1))) == pytest.approx(gain ** 2, rel=0.03)
    dense = random_rnn(200, gain=0.5, rng=0)
    assert not sp.issparse(dense.block_matrix.block(0, 0))
    radius = np.max(np.abs(np.linalg.eigvals(dense.block_matrix.to_dense())))
    assert radius == pytest.approx(0.5, rel=0.15)
    np.testing.assert_array_equal(random_rnn(50, density=0.05, rng=4).block_matrix.to_dense(),
                                  random_rnn(50, density=0.05, rng=4).block_matrix.to_dense())


def test_float32_maps_stay_float32():
    m = random_rnn(64, rng=0, dtype=np.float32)
    x = np.ones((3, 64), dtype=np.float32)
    assert m.step(x).dtype == np.float32
    assert iterate(m, x, 5, keep="last").final.dtype == np.float32


@pytest.mark.parametrize("call, exc, words", [
    (lambda: IterativeMap(np.ones((2, 3))), ValueError, "square"),
    (lambda: IterativeMap("W"), TypeError, "weights must be"),
    (lambda: IterativeMap(np.eye(3), activation="swish"), ValueError, "unknown activation"),
    (lambda: IterativeMap(np.eye(3), activation=["tanh"], sizes=[1, 2]), ValueError,
     "1 activations for 2 blocks"),
    (lambda: IterativeMap(np.eye(3), sizes=[1, 1]), ValueError, "add up"),
    (lambda: IterativeMap(np.eye(3), input_block=3, sizes=[1, 2]), ValueError, "does not exist"),
    (lambda: IterativeMap(np.eye(3), np.ones(2)), ValueError, "bias must have shape"),
    (lambda: IterativeMap(np.eye(3), np.array([1.0, np.nan, 0])), ValueError, "NaN"),
    (lambda: IterativeMap(np.array([[1.0, np.inf], [0, 1]])), ValueError, "NaN or inf"),
    (lambda: IterativeMap.from_mlp([np.ones((3, 2)), np.ones((2, 4))]), ValueError,
     "layer 1 expects 4 inputs"),
    (lambda: IterativeMap.from_mlp([]), ValueError, "at least one"),
    (lambda: random_rnn(0), ValueError, "n must be >= 1"),
    (lambda: random_rnn(5, density=0.0), ValueError, "density"),
    (lambda: random_rnn(5, gain=np.nan), ValueError, "gain"),
    (lambda: random_rnn(5, dtype=np.int32), TypeError, "floating"),
])
def test_bad_construction(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_bad_states_and_inputs():
    m = IterativeMap(np.eye(5), sizes=[2, 3], input_block=0)
    with pytest.raises(ValueError, match="dimension 4"):
        m.step(np.zeros(4), np.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        m.step(np.zeros((2, 2, 5)), np.zeros(2))
    with pytest.raises(ValueError, match="needs an input u of length 2"):
        m.step(np.zeros(5))
    with pytest.raises(ValueError, match="input u has shape"):
        m.step(np.zeros(5), np.zeros(3))
    with pytest.raises(TypeError, match="real floating"):
        m.step(np.zeros(5, dtype=complex), np.zeros(2))
    with pytest.raises(ValueError, match="no input"):
        IterativeMap(np.eye(2)).step(np.zeros(2), np.zeros(1))


def test_jacobians_are_c_contiguous_for_every_storage():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(12, 12)) * (rng.random((12, 12)) < 0.3)
    for weights in (A, sp.csr_matrix(A)):
        m = IterativeMap(weights, sizes=[4, 8], input_block=0)
        J = m.jacobian(rng.normal(size=(3, 12)), rng.normal(size=(3, 4)))
        assert J.flags.c_contiguous


def test_forward_is_the_mlp_forward_pass():
    rng = np.random.default_rng(4)
    Ws = [rng.normal(size=(6, 3)), rng.normal(size=(5, 6)), rng.normal(size=(2, 5))]
    bs = [rng.normal(size=6), rng.normal(size=5), rng.normal(size=2)]
    mlp = IterativeMap.from_mlp(Ws, bs, activation="tanh")
    x = rng.normal(size=(7, 3))
    h = x
    for i, (W, b) in enumerate(zip(Ws, bs)):   # a plain reference loop
        h = h @ W.T + b
        h = np.tanh(h) if i < 2 else h
    np.testing.assert_allclose(mlp.forward(x), h, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(mlp.forward(x[0]), h[0], rtol=1e-13, atol=1e-14)
    with pytest.raises(ValueError, match="x must have shape"):
        mlp.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="cycle"):
        itermap.add_blocks(mlp, {(1, 1): 0.5}, rng=0).forward(x)
    with pytest.raises(ValueError, match="input block"):
        itermap.random_rnn(4, rng=0).forward(x)


def test_sparse_jacobian_keeps_the_pattern_and_dense_ones_warn():
    import scipy.sparse as sp

    from itermap._maps import _network_grad

    net = itermap.random_rnn(60, density=0.05, rng=0)
    x = np.random.default_rng(0).normal(size=60)
    Js = net.jacobian(x, sparse=True)
    assert sp.issparse(Js)
    np.testing.assert_allclose(Js.toarray(), net.jacobian(x), rtol=1e-14, atol=0)
    assert Js.nnz <= net.block_matrix.nnz
    old = _network_grad._WARN_DENSE_JACOBIAN
    try:
        _network_grad._WARN_DENSE_JACOBIAN = 50
        with pytest.warns(UserWarning, match="sparse=True"):
            net.jacobian(x)
    finally:
        _network_grad._WARN_DENSE_JACOBIAN = old
    with pytest.raises(ValueError, match="one state"):
        net.jacobian(np.zeros((2, 60)), sparse=True)
