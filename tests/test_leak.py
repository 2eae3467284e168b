"""Leaky maps: x_i -> (1 - a_i) x_i + a_i f_i(W x + b)_i, against plain NumPy, finite
differences, torch, eigenvalues and the map without leak (bit for bit at a = 1)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import BlockMatrix, IterativeMap, load, loss_and_gradient, save
from itermap.analysis import fir_length, lyapunov_spectrum, sparsity_graph

ACT = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "identity": lambda z: z,
       "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z))}


def reference_step(W, b, acts, sizes, leak, x, u=None, input_block=None):
    """The leaky step written out with dense NumPy, apart from IterativeMap."""
    off = np.concatenate([[0], np.cumsum(sizes)])
    xin = x.copy()
    if input_block is not None:
        xin[..., off[input_block]:off[input_block + 1]] = u
    z = xin @ W.T + (0.0 if b is None else b)
    out = np.empty_like(z)
    for i, (act, a) in enumerate(zip(acts, leak)):
        s = slice(off[i], off[i + 1])
        out[..., s] = (1 - a) * x[..., s] + a * ACT[act](z[..., s])
    if input_block is not None:
        out[..., off[input_block]:off[input_block + 1]] = u
    return out


def maps(seed):
    """Leaky maps of every storage kind, with their dense weights and leak per block."""
    rng = np.random.default_rng(seed)
    n = 12
    dense = rng.normal(0, 1.3 / np.sqrt(n), (n, n))
    yield "dense", IterativeMap(dense, rng.normal(size=n), leak=0.3), (dense, [0.3], None)
    S = sp.random(n, n, density=0.3, random_state=seed, data_rvs=rng.standard_normal).tocsr()
    yield "sparse", IterativeMap(S, leak=0.45), (S.toarray(), [0.45], None)
    bm = BlockMatrix.from_pattern([2, 6, 4], [["0", "0", "0"], ["W", "R=0.5", "R=0.6"],
                                              ["R=0.7", "W", "W"]], rng=rng)
    m = IterativeMap(bm, rng.normal(size=12), ["identity", "tanh", "sigmoid"], input_block=0,
                     leak=[1.0, 0.2, 0.7])
    yield "blocks", m, (bm.to_dense(), [1.0, 0.2, 0.7], 0)
    m2 = IterativeMap(dense, None, ["tanh", "relu"], sizes=[5, 7], leak=[0.6, 0.25])
    yield "per-block activations", m2, (dense, [0.6, 0.25], None)


CASES = [(seed, kind) for seed in (0, 1, 2) for kind in
         ("dense", "sparse", "blocks", "per-block activations")]


def get(seed, kind):
    for k, m, ref in maps(seed):
        if k == kind:
            return m, ref
    raise KeyError(kind)


@pytest.mark.parametrize("seed,kind", CASES)
def test_step_tangent_jacobian_vjp_against_numpy_and_differences(seed, kind):
    m, (W, leak, ib) = get(seed, kind)
    rng = np.random.default_rng(seed + 10)
    x = rng.normal(size=(3, m.dim))
    u = None if ib is None else rng.normal(size=(3, m.input_size))
    acts = [a.name for a in m.activations]
    b = None if m.bias is None else np.asarray(m.bias)
    want = reference_step(W, b, acts, m.sizes, leak, x, u, ib)
    np.testing.assert_allclose(m.step(x, u), want, rtol=1e-14, atol=1e-14)
    # the Jacobian by central differences of the NumPy step
    h = 1e-6
    for r in range(3):
        J = m.jacobian(x[r], None if u is None else u[r])
        fd = np.empty((m.dim, m.dim))
        for j in range(m.dim):
            e = np.zeros(m.dim)
            e[j] = h
            up = reference_step(W, b, acts, m.sizes, leak, x[r] + e, None if u is None else u[r],
                                ib)
            dn = reference_step(W, b, acts, m.sizes, leak, x[r] - e, None if u is None else u[r],
                                ib)
            fd[:, j] = (up - dn) / (2 * h)
        if ib is not None:  # the input overwrites its block: no dependence on its old value
            fd[:, m.block_slice(ib)] = 0.0
        np.testing.assert_allclose(J, fd, atol=1e-8)
        if "relu" not in acts:
            np.testing.assert_allclose(m.jacobian(x[r], None if u is None else u[r],
                                                  sparse=True).toarray(), J, atol=1e-15)
    Jb = m.jacobian(x, u)
    V = rng.normal(size=(3, m.dim, 4))
    np.testing.assert_allclose(m.tangent(x, V, u), Jb @ V, rtol=1e-12, atol=1e-13)
    y, JV = m.step_with_tangent(x, V, u)
    np.testing.assert_allclose(y, want, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(JV, Jb @ V, rtol=1e-12, atol=1e-13)
    w = rng.normal(size=(3, m.dim))
    np.testing.assert_allclose(m.vjp(x, w, u), np.einsum("bi,bij->bj", w, Jb), rtol=1e-12,
                               atol=1e-13)
    wk = rng.normal(size=(3, 2, m.dim))
    np.testing.assert_allclose(m.vjp(x, wk, u), np.einsum("bki,bij->bkj", wk, Jb), rtol=1e-12,
                               atol=1e-13)
    assert itermap.check_map(m).passed


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9), a=st.floats(1e-3, 1.0), seed=st.integers(0, 2 ** 16),
       act=st.sampled_from(["tanh", "sigmoid", "identity"]))
def test_one_block_step_and_jacobian_property(n, a, seed, act):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, n))
    b = rng.normal(size=n)
    m = IterativeMap(W, b, act, leak=a)
    x = rng.normal(size=n)
    want = (1 - a) * x + a * ACT[act](W @ x + b)
    np.testing.assert_allclose(m.step(x), want, rtol=1e-13, atol=1e-14)
    z = W @ x + b
    d = {"tanh": 1 - np.tanh(z) ** 2, "identity": np.ones(n),
         "sigmoid": ACT["sigmoid"](z) * (1 - ACT["sigmoid"](z))}[act]
    np.testing.assert_allclose(m.jacobian(x), (1 - a) * np.eye(n) + a * d[:, None] * W,
                               rtol=1e-13, atol=1e-14)


def test_jacobian_at_the_origin_is_the_effective_matrix():
    """tanh'(0) = 1: J(0) = (1 - a) I + a W, Jaeger's effective matrix."""
    for seed, a in [(0, 0.1), (1, 0.5), (2, 0.9)]:
        W = np.random.default_rng(seed).normal(size=(20, 20)) / np.sqrt(20)
        J = IterativeMap(W, leak=a).jacobian(np.zeros(20))
        np.testing.assert_allclose(J, (1 - a) * np.eye(20) + a * W, rtol=0, atol=1e-16)


def _all_outputs(m, x, u, V, w):
    out = [m.step(x, u), m.tangent(x, V, u), m.jacobian(x, u), m.vjp(x, w, u)]
    out += list(m.step_with_tangent(x, V, u)) + list(m.step_with_derivative(x, u))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leak_one_everywhere_is_todays_map_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(10, 10))
    S = sp.random(300, 300, density=0.01, random_state=seed).tocsr()
    bm = BlockMatrix.from_pattern([2, 5, 3], [["0", "0", "0"], ["W", "R=0.5", "0"],
                                              ["0", "W", "0"]], rng=rng)
    b = rng.normal(size=10)
    pairs = [(IterativeMap(W, b), IterativeMap(W, b, leak=1.0)),
             (IterativeMap(S), IterativeMap(S, leak=1)),
             (IterativeMap(bm, None, ["identity", "tanh", "relu"], input_block=0),
              IterativeMap(bm, None, ["identity", "tanh", "relu"], input_block=0,
                           leak=[0.3, 1.0, 1.0])),  # the input block's rate has no effect
             (IterativeMap.from_rnn(W[:6, :6], W[:6, 6:]),
              IterativeMap.from_rnn(W[:6, :6], W[:6, 6:], leak=1.0))]
    for plain, leaky in pairs:
        assert not leaky.leaky and leaky == plain and leaky.leak == (1.0,) * len(plain.sizes)
        x = rng.normal(size=(4, plain.dim))
        u = None if plain.input_block is None else rng.normal(size=(4, plain.input_size))
        V = rng.normal(size=(4, plain.dim, 3))
        w = rng.normal(size=(4, plain.dim))
        for a, b in zip(_all_outputs(plain, x, u, V, w), _all_outputs(leaky, x, u, V, w)):
            assert np.array_equal(a, b)
        tp = itermap.iterate(plain, x, 20, inputs=u).states
        tl = itermap.iterate(leaky, x, 20, inputs=u).states
        assert np.array_equal(tp, tl)
        assert plain.settle_steps == leaky.settle_steps
    r1 = itermap.random_rnn(50, gain=1.3, density=0.05, rng=4)
    r2 = itermap.random_rnn(50, gain=1.3, density=0.05, rng=4, leak=1.0)
    assert r1 == r2


def test_from_rnn_and_random_rnn_take_a_leak():
    rng = np.random.default_rng(5)
    Whh, Whx, b = rng.normal(size=(8, 8)) / 3, rng.normal(size=(8, 2)), rng.normal(size=8)
    m = IterativeMap.from_rnn(Whh, Whx, b, leak=0.3)
    assert m.leak == (1.0, 0.3) and m.settle_steps is None
    us = rng.normal(size=(30, 2))
    h = np.zeros(8)
    x = m.zeros()
    for t in range(30):  # the leaky-integrator ESN update, written out
        h = 0.7 * h + 0.3 * np.tanh(Whh @ h + Whx @ us[t] + b)
        x = m.step(x, us[t])
        np.testing.assert_allclose(m.read_block(x, 1), h, rtol=1e-13, atol=1e-15)
    r = itermap.random_rnn(40, gain=0.9, density=0.2, rng=1, leak=0.25)
    plain = itermap.random_rnn(40, gain=0.9, density=0.2, rng=1)
    assert r.leak == (0.25,)
    assert np.array_equal(r.block_matrix.to_dense(), plain.block_matrix.to_dense())
    x0 = rng.normal(size=40)
    np.testing.assert_allclose(r.step(x0), 0.75 * x0 + 0.25 * plain.step(x0), rtol=1e-14)


def test_lyapunov_spectrum_of_a_linear_leaky_map_is_log_eigenvalues():
    """x -> ((1 - a) I + a W) x: the exponents are log|eig| of that matrix."""
    for seed, a in [(0, 0.3), (1, 0.7)]:
        rng = np.random.default_rng(seed)
        Qm = np.linalg.qr(rng.normal(size=(8, 8)))[0]
        # symmetric, spread eigenvalues inside (-1, 1): the exponents converge fast, no overflow
        W = Qm @ np.diag(np.linspace(-0.95, 0.9, 8)) @ Qm.T
        m = IterativeMap(W, activation="identity", leak=a)
        lam = np.sort(np.log(np.abs(np.linalg.eigvalsh((1 - a) * np.eye(8) + a * W))))[::-1]
        # |eig| 0.375 and 0.365 (a = 0.7) separate by 0.027 a step: the transient aligns the
        # frame first, so the test does not hang on how the drawn frame meets that pair
        res = lyapunov_spectrum(m, rng.normal(size=8), 3000, transient=3000, rng=seed)
        np.testing.assert_allclose(np.sort(np.ravel(res.exponents))[::-1], lam, atol=2e-3)


@pytest.mark.parametrize("density,n,k", [(1.0, 200, 128), (0.02, 600, 8)])
def test_fast_lyapunov_paths_decline_leaky_maps_and_the_general_loop_is_right(density, n, k):
    from itermap._running._fused_steppers import FusedStepper

    m = itermap.random_rnn(n, gain=2.0, density=density, rng=3, leak=0.4)
    x = np.random.default_rng(0).normal(size=(1, n))
    Q = np.linalg.qr(np.random.default_rng(1).normal(size=(1, n, k)))[0]
    assert not isinstance(m.tangent_stepper(x, Q), FusedStepper)
    # the same map from plain functions: the general loop of lyapunov_spectrum
    W = m.block_matrix.to_dense()
    W = W.toarray() if sp.issparse(W) else np.asarray(W)
    fm = itermap.FunctionMap(lambda x: 0.6 * x + 0.4 * np.tanh(x @ W.T), n,
                             jacobian=lambda x: 0.6 * np.eye(n) + 0.4 * (
                                 1 - np.tanh(x @ W.T) ** 2)[..., :, None] * W)
    kk = min(k, 8)
    ours = lyapunov_spectrum(m, x[0], 150, k=kk, transient=20, rng=0)
    ref = lyapunov_spectrum(fm, x[0], 150, k=kk, transient=20, rng=0)
    np.testing.assert_allclose(np.ravel(ours.exponents), np.ravel(ref.exponents), atol=1e-9)


def test_save_load_and_pickle_round_trip(tmp_path):
    for seed in (0, 1):
        for kind, m, _ in maps(seed):
            path = tmp_path / f"{kind}{seed}.npz"
            save(m, path)
            back = load(path)
            assert back == m and back.leak == m.leak and back.leaky
            x = np.random.default_rng(seed).normal(size=(2, m.dim))
            u = None if m.input_block is None else np.ones((2, m.input_size))
            assert np.array_equal(back.step(x, u), m.step(x, u))
            again = pickle.loads(pickle.dumps(m))
            assert again == m and np.array_equal(again.step(x, u), m.step(x, u))
    # a map without leak writes no leak field: files stay as they were
    plain = IterativeMap(np.eye(3))
    save(plain, tmp_path / "plain.npz")
    assert not load(tmp_path / "plain.npz").leaky
    assert IterativeMap(np.eye(3), leak=0.5) != plain


def test_equality_and_repr_see_the_leak():
    W = np.eye(3) * 0.5
    assert IterativeMap(W, leak=0.5) != IterativeMap(W, leak=0.6)
    assert "leak=[0.5]" in repr(IterativeMap(W, leak=0.5))
    assert "leak" not in repr(IterativeMap(W))


@pytest.mark.parametrize("bad,err", [(0.0, ValueError), (-0.1, ValueError), (1.5, ValueError),
                                     (float("nan"), ValueError), (float("inf"), ValueError),
                                     ([0.5, 0.5, 0.5], ValueError), ([], ValueError),
                                     ("0.5", TypeError), (True, TypeError), ([0.5, None],
                                                                             TypeError),
                                     (1 + 0j, TypeError)])
def test_bad_leak_is_refused_naming_it(bad, err):
    with pytest.raises(err, match="leak"):
        IterativeMap(np.eye(4), sizes=[2, 2], leak=bad)
    if not isinstance(bad, list):
        with pytest.raises(err, match="leak"):
            itermap.random_rnn(5, leak=bad)
        with pytest.raises(err, match="leak"):
            IterativeMap.from_rnn(np.eye(2), np.ones((2, 1)), leak=bad)


def test_sparsity_graph_has_a_self_loop_of_weight_one_minus_a():
    W = np.array([[0.0, 0.5, 0.0], [0.2, 0.0, 0.0], [0.0, 0.0, 0.9]])
    m = IterativeMap(W, leak=0.3)
    G = sparsity_graph(m)
    for unit in range(3):
        assert G.has_edge(unit, unit)
        assert G.edges[unit, unit]["leak"] == pytest.approx(0.7)
    assert G.edges[0, 0]["weight"] == pytest.approx(0.7)  # no diagonal weight: 1 - a
    assert G.edges[2, 2]["weight"] == 0.9  # a diagonal weight keeps its weight
    assert G.number_of_edges() == 2 + 3
    assert not sparsity_graph(IterativeMap(W)).has_edge(0, 0)
    mlp_like = IterativeMap(BlockMatrix([2, 3], {(1, 0): np.ones((3, 2))}), None,
                            ["identity", "tanh"], input_block=0, leak=[1.0, 0.5])
    B = sparsity_graph(mlp_like, level="block")
    assert B.edges[1, 1]["leak"] == 0.5 and not B.has_edge(0, 0)
    assert fir_length(mlp_like) is None
    assert fir_length(IterativeMap(BlockMatrix([2, 3], {(1, 0): np.ones((3, 2))}), None,
                                   ["identity", "tanh"], input_block=0)) == 1


def leaky_hybrid(rng):
    bm = BlockMatrix.from_pattern([2, 5, 3], [["0", "0", "0"], ["W", "R=0.6", "0"],
                                              ["0", "W", "W"]], rng=rng)
    return IterativeMap(bm, rng.normal(size=10), ["identity", "tanh", "identity"],
                        input_block=0, leak=[1.0, 0.35, 0.6])


def test_training_gradient_of_a_leaky_map_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    m = leaky_hybrid(rng)
    U = rng.normal(size=(6, 4, 2))
    Y = rng.normal(size=(6, 4, 3))
    L, grads, gb = loss_and_gradient(m, U, Y, loss="mse", at="all")
    W = torch.tensor(np.asarray(m.block_matrix.to_dense().toarray()
                                if sp.issparse(m.block_matrix.to_dense())
                                else m.block_matrix.to_dense()), requires_grad=True)
    b = torch.tensor(np.asarray(m.bias), requires_grad=True)
    a = torch.tensor(np.repeat(m.leak, m.sizes))
    x = torch.zeros(4, 10, dtype=torch.float64)
    losses = []
    for t in range(6):
        xin = torch.cat([torch.tensor(U[t]), x[:, 2:]], dim=1)
        z = xin @ W.T + b
        f = torch.cat([z[:, :2], torch.tanh(z[:, 2:7]), z[:, 7:]], dim=1)
        x = (1 - a) * xin + a * f
        x = torch.cat([torch.tensor(U[t]), x[:, 2:]], dim=1)
        losses.append(torch.mean((x[:, 7:] - torch.tensor(Y[t])) ** 2))
    total = torch.stack(losses).mean()
    total.backward()
    assert L == pytest.approx(float(total.detach()), rel=1e-12)
    gW = W.grad.numpy()
    for (i, j), g in grads.items():
        if i == 0:
            continue
        blk = gW[m.block_slice(i), m.block_slice(j)]
        if sp.issparse(g):
            c = g.tocoo()
            np.testing.assert_allclose(c.data, blk[c.row, c.col], rtol=1e-10, atol=1e-12)
        else:
            np.testing.assert_allclose(g, blk, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb[2:], b.grad.numpy()[2:], rtol=1e-10, atol=1e-12)


def test_train_keeps_the_leak_fixed():
    rng = np.random.default_rng(2)
    m = leaky_hybrid(rng)
    U = rng.normal(size=(5, 16, 2))
    Y = rng.integers(0, 3, 16)
    trained, history = itermap.train(m, U, Y, epochs=5, progress=False, rng=0, lr=0.05)
    assert trained.leak == m.leak and trained.leaky
    assert history.loss[-1] < history.loss[0]
    assert not np.array_equal(trained.block_matrix.to_dense(), m.block_matrix.to_dense())


def test_newton_block_jacobians_of_a_leaky_map_are_the_full_jacobians_blocks():
    from itermap._running._newton import _jacobian

    rng = np.random.default_rng(11)
    m = leaky_hybrid(rng)
    X = rng.normal(size=(4, m.dim))
    U = rng.normal(size=(4, m.input_size))
    J = m.jacobian(X, U)
    diag = _jacobian(m, X, U, "diagonal", m.sizes)
    np.testing.assert_allclose(diag, np.diagonal(J, axis1=1, axis2=2), rtol=1e-14, atol=1e-15)
    blocks = _jacobian(m, X, U, "blocks", m.sizes)
    for i, B in enumerate(blocks):
        s = m.block_slice(i)
        np.testing.assert_allclose(B, J[:, s, s], rtol=1e-14, atol=1e-15)


def test_linear_impulse_response_of_a_leaky_driven_map_matches_the_nonlinear_one():
    from itermap.analysis import impulse_response

    rng = np.random.default_rng(12)
    m = IterativeMap.from_rnn(rng.normal(size=(6, 6)) / 3, rng.normal(size=(6, 2)), leak=0.3)
    x = m.with_input(np.r_[np.zeros(2), rng.normal(size=6) * 0.1], np.zeros(2))
    us = rng.normal(size=(11, 2)) * 0.1
    lin = impulse_response(m, x, 10, inputs=us, method="linear")
    non = impulse_response(m, x, 10, inputs=us, method="nonlinear", eps=1e-7)
    np.testing.assert_allclose(np.asarray(lin.norms), np.asarray(non.norms), rtol=1e-4,
                               atol=1e-9)
    # the leak keeps a trace of the impulse: it decays like (1 - a + ...)^k, never exactly 0
    assert np.all(np.asarray(lin.norms)[-1][..., 1] > 0)  # the hidden block (the input: 0)


def test_to_torch_and_gain_family_refuse_a_leaky_map_naming_the_leak():
    from itermap.analysis import gain_family

    m = itermap.random_rnn(5, rng=0, leak=0.5)
    with pytest.raises(ValueError, match="leak"):
        gain_family(m)
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="leak"):
        itermap.to_torch(m)


@pytest.mark.parametrize("n_in", [1, 3, 300])  # few inputs: a dense input term; many: sparse
def test_a_sparse_driven_leaky_map_steps_one_state_a_batch_of_one_and_a_batch(n_in):
    rng = np.random.default_rng(n_in)
    n = 400
    W = sp.random(n, n, density=0.02, random_state=1, format="csr")
    Win = sp.random(n, n_in, density=0.2, random_state=2, format="csr")
    b = rng.normal(size=n)
    m = IterativeMap.from_rnn(W, Win, b, leak=0.35)
    assert m._kind == "sparse"
    X = rng.normal(size=(3, m.dim))
    U = rng.normal(size=(3, n_in))
    h = X[:, n_in:]
    want = 0.65 * h + 0.35 * np.tanh(h @ W.toarray().T + U @ Win.toarray().T + b)
    np.testing.assert_allclose(m.step(X, U)[:, n_in:], want, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(m.step(X[:1], U[:1])[0, n_in:], want[0], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(m.step(X[1], U[1])[n_in:], want[1], rtol=1e-13, atol=1e-14)
    assert np.array_equal(m.step(X[1], U[1])[:n_in], U[1])
    traj = itermap.iterate(m, X[0], 5, inputs=rng.normal(size=(5, n_in)))
    assert traj.states.shape == (6, m.dim) and traj.states.flags.c_contiguous


def test_trainable_leak_gradient_matches_torch_and_central_differences():
    torch = pytest.importorskip("torch")
    from itermap._training._bptt import _layout, _run

    rng = np.random.default_rng(9)
    m = leaky_hybrid(rng)
    U = rng.normal(size=(6, 4, 2))
    Y = rng.normal(size=(6, 4, 3))
    for checkpoint in (None, 2):
        lay, theta, _ = _layout(m, False, True)
        assert lay.leak_blocks == [1, 2] and lay.size == theta.shape[0]
        L, _, _, grad = _run(lay, theta, U, Y, True, 6, "all", "mse", checkpoint)
        # torch: the same leaky steps with the rates as leaves
        W = torch.tensor(np.asarray(m.block_matrix.to_dense().toarray()
                                    if sp.issparse(m.block_matrix.to_dense())
                                    else m.block_matrix.to_dense()))
        b = torch.tensor(np.asarray(m.bias))
        r = torch.tensor([0.35, 0.6], dtype=torch.float64, requires_grad=True)
        a = torch.cat([torch.ones(2, dtype=torch.float64), r[0].repeat(5), r[1].repeat(3)])
        x = torch.zeros(4, 10, dtype=torch.float64)
        losses = []
        for t in range(6):
            xin = torch.cat([torch.tensor(U[t]), x[:, 2:]], dim=1)
            z = xin @ W.T + b
            f = torch.cat([z[:, :2], torch.tanh(z[:, 2:7]), z[:, 7:]], dim=1)
            x = (1 - a) * xin + a * f
            losses.append(torch.mean((x[:, 7:] - torch.tensor(Y[t])) ** 2))
        total = torch.stack(losses).mean()
        total.backward()
        assert float(L) == pytest.approx(float(total.detach()), rel=1e-12)
        np.testing.assert_allclose(grad[lay.bias_stop:], r.grad.numpy(), rtol=1e-10)
    # and central differences through plain map.step
    h = 1e-6

    def loss_at(rates):
        mm = IterativeMap(m.block_matrix, m.bias, list(m.activations), input_block=0,
                          leak=[1.0, *rates])
        x = mm.zeros(4)
        out = []
        for t in range(6):
            x = mm.step(x, U[t])
            out.append(np.mean((mm.readout(x) - Y[t]) ** 2))
        return np.mean(out)

    fd = [(loss_at([0.35 + h, 0.6]) - loss_at([0.35 - h, 0.6])) / (2 * h),
          (loss_at([0.35, 0.6 + h]) - loss_at([0.35, 0.6 - h])) / (2 * h)]
    np.testing.assert_allclose(grad[lay.bias_stop:], fd, rtol=1e-6)


def test_train_with_train_leak_moves_the_rates_and_keeps_them_in_range():
    rng = np.random.default_rng(2)
    m = leaky_hybrid(rng)
    U = rng.normal(size=(5, 16, 2))
    Y = rng.integers(0, 3, 16)
    trained, history = itermap.train(m, U, Y, epochs=5, progress=False, rng=0, lr=0.05,
                                     train_leak=True)
    assert trained.leak[0] == 1.0 and trained.leak[1:] != m.leak[1:]
    assert all(0 < r <= 1 for r in trained.leak)
    assert history.loss[-1] < history.loss[0]
    same, _ = itermap.train(m, U, Y, epochs=5, progress=False, rng=0, lr=0.05)
    assert same.leak == m.leak


def test_training_the_leak_resumes_exactly(tmp_path):
    rng = np.random.default_rng(4)
    m = leaky_hybrid(rng)
    U = rng.normal(size=(4, 12, 2))
    Y = rng.integers(0, 3, 12)
    kw = dict(lr=0.05, rng=3, progress=False, train_leak=True)
    straight, h1 = itermap.train(m, U, Y, epochs=4, **kw)
    path = str(tmp_path / "state.npz")
    itermap.train(m, U, Y, epochs=2, save_state=path, **kw)
    resumed, h2 = itermap.train(m, U, Y, epochs=4, resume=path, **kw)
    assert resumed.leak == straight.leak and resumed == straight
    np.testing.assert_array_equal(h1.loss, h2.loss)
    with pytest.raises(ValueError, match="resume"):  # the state holds the rates too
        itermap.train(m, U, Y, epochs=4, resume=path, lr=0.05, rng=3, progress=False)


def test_iterate_steps_exactly_as_step_and_honours_a_subclass_step():
    rng = np.random.default_rng(13)
    m = leaky_hybrid(rng)
    X = rng.normal(size=(3, m.dim))
    for inputs in (rng.normal(size=2), rng.normal(size=(3, 2)), rng.normal(size=(7, 3, 2))):
        traj = itermap.iterate(m, X, 7, inputs=inputs).states
        x = X
        for k in range(7):
            x = m.step(x, inputs[k] if inputs.ndim == 3 else inputs)
            assert np.array_equal(traj[k + 1], x)

    class Doubled(IterativeMap):
        def step(self, x, u=None):
            return 2.0 * IterativeMap.step(self, x, u)

    d = Doubled(m.block_matrix, m.bias, list(m.activations), input_block=0, leak=m.leak)
    traj = itermap.iterate(d, X[0], 3, inputs=np.zeros(2)).states
    x = X[0]
    for _ in range(3):
        x = d.step(x, np.zeros(2))
    assert np.array_equal(traj[-1], x)
