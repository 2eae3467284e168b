"""Impulse responses and memory capacity: the dynamics side of the continuum (issue 5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import IterativeMap, add_blocks
from itermap.analysis import ImpulseResponse, fir_length, impulse_response, memory_capacity
from itermap.backends import to_numpy
from itermap.systems import linear


def _mlp(rng, depth, *, activation="tanh"):
    sizes = rng.integers(1, 6, size=depth + 1).tolist()
    Ws = [rng.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [0.3 * rng.normal(size=o) for o in sizes[1:]]
    return IterativeMap.from_mlp(Ws, bs, activation=activation)


def _jacobian_products(m, x, us, steps):
    """Reference: plain loop over dense Jacobians, J_{k-1} ... J_0."""
    P = np.eye(m.dim)
    out = [P]
    for k in range(steps):
        P = m.jacobian(x, us[k]) @ P
        x = m.step(x, us[k])
        out.append(P)
    return out


def _block_fro(M, m, t, s_cols):
    return np.linalg.norm(M[m.block_slice(t)][:, s_cols])


# -- finite impulse response of MLPs ------------------------------------------
@settings(max_examples=15, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_mlp_fir_length_is_depth_structurally_and_measured(depth, seed):
    rng = np.random.default_rng(seed)
    m = _mlp(rng, depth)
    x = rng.normal(size=m.dim)
    u = rng.normal(size=m.input_size)
    assert fir_length(m) == depth
    for method in ("linear", "nonlinear"):
        r = impulse_response(m, x, depth + 3, inputs=u, method=method)
        assert r.length == depth, method
        assert r.decay_rate is None
        # each kind of impulse on its own lasts exactly the depth too
        assert impulse_response(m, x, depth + 2, inputs=u, method=method, blocks=[0]).length \
            == depth
        assert impulse_response(m, x, depth + 2, inputs=u, method=method, blocks=[1]).length \
            == depth
        # the output block forgets after one step
        assert impulse_response(m, x, 3, inputs=u, method=method, blocks=-1).length == 1


def test_linear_norms_match_jacobian_products_and_finite_differences():
    rng = np.random.default_rng(5)
    m = _mlp(rng, 3)
    x = rng.normal(size=m.dim)
    steps = 5
    us = rng.normal(size=(steps + 1, m.input_size))
    r = impulse_response(m, x, steps, inputs=us)
    assert r.norms.shape == (steps + 1, 4, 4)
    assert r.sources == [0, 1, 2, 3] and r.sizes == list(m.sizes)
    P = _jacobian_products(m, x, us, steps)
    for k in range(steps + 1):
        for s in (1, 2, 3):
            for t in range(4):
                ref = _block_fro(P[k], m, t, m.block_slice(s))
                assert r.norms[k, s, t] == pytest.approx(ref, rel=1e-12, abs=1e-300)
    # input impulse: central differences of the plain loop, read one step later
    h = 1e-6
    ib = m.block_slice(0)
    for c in range(m.input_size):
        plus, minus = us.copy(), us.copy()
        plus[0, c] += h
        minus[0, c] -= h
        xp_, xm_ = x.copy(), x.copy()
        diffs = []
        for k in range(steps + 1):
            xp_, xm_ = m.step(xp_, plus[k]), m.step(xm_, minus[k])
            d = (xp_ - xm_) / (2 * h)
            d[ib] = 0.0
            diffs.append(d)
        if c == 0:
            cols = [diffs]
        else:
            cols.append(diffs)
    for k in range(steps + 1):
        D = np.stack([cols[c][k] for c in range(m.input_size)], axis=1)
        for t in range(4):
            ref = np.linalg.norm(D[m.block_slice(t)])
            assert r.norms[k, 0, t] == pytest.approx(ref, rel=1e-6, abs=1e-9)
    # the input block is never a target after it is overwritten
    assert np.all(r.norms[:, 0, 0] == 0)


def test_nonlinear_agrees_with_linear():
    rng = np.random.default_rng(6)
    m = _mlp(rng, 4)
    m = add_blocks(m, {(2, 2): 0.5}, rng=1)
    x = rng.normal(size=m.dim)
    a = impulse_response(m, x, 8, method="linear")
    b = impulse_response(m, x, 8, method="nonlinear", eps=1e-7)
    assert np.allclose(a.norms, b.norms, rtol=1e-4, atol=1e-6)


# -- infinite impulse response -----------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_one_recurrent_block_makes_the_response_infinite(seed):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(2, 5))
    m = _mlp(rng, depth)
    layer = int(rng.integers(1, depth + 1))
    # a recurrent block of gain 0.9 near the origin (tanh' ~ 1): the finite differences of
    # the nonlinear method stay far above rounding for the steps we follow
    blocks = m.block_matrix.blocks
    blocks[(layer, layer)] = 0.9 * np.eye(m.sizes[layer])
    rec = IterativeMap(itermap.BlockMatrix(m.sizes, blocks), None, list(m.activations),
                       input_block=0)
    assert fir_length(m) == depth and fir_length(rec) is None
    x = 0.05 * rng.normal(size=m.dim)
    steps = depth + 6
    for method in ("linear", "nonlinear"):
        r = impulse_response(rec, x, steps, method=method)
        assert r.length is None, method
        assert np.all(r.total > 0)
        assert np.isfinite(r.decay_rate)


def test_decay_rate_closed_forms():
    # x -> a x: the response is a^k exactly
    a = 0.8
    r = impulse_response(linear(np.array([[a]])), np.array([2.0]), 12)
    assert np.allclose(r.total, a ** np.arange(13), rtol=1e-14)
    assert r.decay_rate == pytest.approx(-np.log(a), rel=1e-12)
    assert r.length is None
    # a scaled rotation: norm rho^k sqrt(2) (Frobenius of rho^k R^k)
    rho, th = 1.1, 0.7
    R = rho * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    r = impulse_response(linear(R), np.array([1.0, 0.0]), 10, method="nonlinear", eps=1e-8)
    assert np.allclose(r.total, np.sqrt(2) * rho ** np.arange(11), rtol=1e-6)
    assert r.decay_rate == pytest.approx(-np.log(rho), rel=1e-6)
    # nilpotent shift: gone after 3 steps
    S = np.diag([1.0, 1.0], -1)
    assert impulse_response(linear(S), np.zeros(3), 5).length == 3


def test_dense_paths_over_namespaces(xp):
    A = xp.asarray(np.array([[0.5, 0.2], [0.0, 0.5]]))
    m = linear(A)
    ref = [np.linalg.norm(np.linalg.matrix_power(np.asarray(to_numpy(A)), k)) for k in range(7)]
    r = impulse_response(m, xp.asarray(np.array([1.0, -1.0])), 6)
    assert np.allclose(r.total, ref, rtol=1e-12)
    r = impulse_response(m, xp.asarray(np.array([1.0, -1.0])), 6, method="nonlinear")
    assert np.allclose(r.total, ref, rtol=1e-6)
    assert isinstance(r.norms, np.ndarray)  # results come back on the host


def test_save_and_load_round_trip(tmp_path):
    r = impulse_response(linear(np.array([[0.5]])), np.array([1.0]), 4)
    itermap.save(r, tmp_path / "r.npz")
    back = itermap.load(tmp_path / "r.npz")
    assert isinstance(back, ImpulseResponse)
    assert np.array_equal(back.norms, r.norms)
    assert back.length is None and back.decay_rate == pytest.approx(r.decay_rate)
    assert back.sources == [0] and back.method == "linear"


# -- memory capacity -----------------------------------------------------------
def _orthogonal(n, rng):
    Q, R = np.linalg.qr(rng.normal(size=(n, n)))
    return Q * np.sign(np.diag(R))


def test_memory_capacity_of_linear_orthogonal_network_approaches_dimension():
    rng = np.random.default_rng(0)
    n, rho, D = 8, 0.95, 40
    A = rho * _orthogonal(n, rng)
    w = rng.normal(size=(n, 1))
    # closed form: r2(d) = w_d^T C^-1 w_d with w_d = A^(d-1) w and C = sum_k w_k w_k^T
    ws = [w]
    for _ in range(3000):
        ws.append(A @ ws[-1])
    C = sum(v @ v.T for v in ws)
    theory = np.array([(v.T @ np.linalg.solve(C, v)).item() for v in ws[:D]])
    assert n - 0.5 < theory.sum() <= n  # the closed form itself: close to n
    lin = IterativeMap.from_rnn(A, w, activation="identity")
    mc = memory_capacity(lin, max_delay=D, steps=10000, rng=1)
    # sampling spread of the estimate at 10^4 steps is about +-0.15 (checked over seeds)
    assert mc.capacity == pytest.approx(theory.sum(), abs=0.4)
    assert np.allclose(mc.r2[:5], theory[:5], atol=0.02)
    # tanh with small input weights is nearly linear: the same capacity
    small = IterativeMap.from_rnn(A, 0.01 * w, activation="tanh")
    assert memory_capacity(small, max_delay=D, steps=4000, rng=1).capacity > n - 0.8


def test_memory_capacity_of_mlp_does_not_exceed_depth():
    for depth, seed in ((1, 0), (2, 1), (3, 2)):
        m = itermap.mlp_continuum([1] + [6] * depth, rng=seed)
        mc = memory_capacity(m, max_delay=8, steps=2000, rng=seed)
        assert mc.capacity <= depth + 0.05
        assert np.all(mc.r2[depth:] < 0.02)  # older inputs are gone
        # a linear MLP holds each of its depth inputs exactly
        lin = itermap.mlp_continuum([1] + [6] * depth, rng=seed, activation="identity")
        mc = memory_capacity(lin, max_delay=8, steps=2000, rng=seed)
        assert np.allclose(mc.r2[:depth], 1.0, atol=1e-9)
        assert mc.capacity == pytest.approx(depth, abs=0.05)


def test_memory_capacity_reference_loop_and_determinism():
    rng = np.random.default_rng(3)
    A = 0.9 * _orthogonal(4, rng)
    w = rng.normal(size=(4, 1))
    m = IterativeMap.from_rnn(A, w, activation="tanh")
    a = memory_capacity(m, max_delay=6, steps=600, rng=7, washout=50)
    b = memory_capacity(m, max_delay=6, steps=600, rng=np.random.default_rng(7), washout=50)
    assert a.capacity == b.capacity and np.array_equal(a.r2, b.r2)
    # reference: the same recipe by hand
    s = np.random.default_rng(7).uniform(-1, 1, size=600)
    h = np.zeros(4)
    H = [h]
    for t in range(600):
        h = np.tanh(A @ h + w[:, 0] * s[t])
        H.append(h)
    H = np.array(H)
    t = np.arange(50, 601)
    half = t.size // 2
    r2 = []
    for d in range(1, 7):
        X = np.column_stack([H[t], np.ones(t.size)])
        y = s[t - d]
        c = np.linalg.lstsq(X[:half], y[:half], rcond=None)[0]
        r2.append(np.corrcoef(X[half:] @ c, y[half:])[0, 1] ** 2)
    assert np.allclose(a.r2, r2, atol=1e-10)
    assert list(a.delays) == [1, 2, 3, 4, 5, 6]


# -- bad input -----------------------------------------------------------------
def test_impulse_response_bad_input():
    m = _mlp(np.random.default_rng(0), 2)
    x = m.zeros()
    with pytest.raises(ValueError, match="steps"):
        impulse_response(m, x, 0)
    with pytest.raises(TypeError, match="steps"):
        impulse_response(m, x, 2.5)
    with pytest.raises(ValueError, match="does not exist"):
        impulse_response(m, x, 3, blocks=[7])
    with pytest.raises(ValueError, match="repeat"):
        impulse_response(m, x, 3, blocks=[1, 1])
    with pytest.raises(ValueError, match="method"):
        impulse_response(m, x, 3, method="adjoint")
    with pytest.raises(ValueError, match="eps"):
        impulse_response(m, x, 3, method="nonlinear", eps=0.0)
    with pytest.raises(ValueError, match="shape"):
        impulse_response(m, np.zeros((2, 2, m.dim)), 3)
    with pytest.raises(ValueError, match="batch of 2"):  # one constant input per state
        impulse_response(m, m.zeros(2), 3, inputs=np.zeros((3, m.input_size)))
    with pytest.raises(ValueError, match="NaN"):
        impulse_response(m, np.full((2, m.dim), np.nan), 3)
    with pytest.raises(ValueError, match="inputs"):
        impulse_response(m, x, 3, inputs=np.zeros((3, m.input_size)))  # needs steps + 1
    with pytest.raises(ValueError, match="autonomous"):
        impulse_response(linear(np.eye(2)), np.zeros(2), 3, inputs=np.zeros(2))
    with pytest.raises(TypeError, match="IterativeMap"):
        class Forced(itermap.Map):
            input_block = 0
            dim = 1

            def step(self, x, u=None):
                return x

        impulse_response(Forced(), np.zeros(1), 2)


# -- a batch of states ----------------------------------------------------------
def _reference_norms(m, x, us, steps):
    """Plain loop: block norms of the Jacobian products, state sources only."""
    P = _jacobian_products(m, x, us, steps)
    n = len(m.sizes)
    out = np.zeros((steps + 1, n, n))
    for k in range(steps + 1):
        for s in range(n):
            for t in range(n):
                out[k, s, t] = _block_fro(P[k], m, t, m.block_slice(s))
    return out


@pytest.mark.parametrize("method", ["linear", "nonlinear"])
def test_a_batch_is_its_rows_one_by_one(method):
    rng = np.random.default_rng(11)
    m = add_blocks(_mlp(rng, 3), {(2, 2): 0.6}, rng=2)  # a recurrent block: an IIR response
    X = rng.normal(size=(4, m.dim))
    U = rng.normal(size=(4, m.input_size))  # one constant input per state
    b = impulse_response(m, X, 7, inputs=U, method=method)
    assert b.batched and b.norms.shape == (4, 8, 4, 4)
    assert len(b.length) == len(b.decay_rate) == 4
    assert b.total.shape == (4, 8)
    for i in range(4):
        one = impulse_response(m, X[i], 7, inputs=U[i], method=method)
        assert not one.batched
        assert np.array_equal(b.norms[i], one.norms)
        assert b.length[i] == one.length and b.decay_rate[i] == one.decay_rate
        row = b.row(i)
        assert np.array_equal(row.norms, one.norms) and row.decay_rate == one.decay_rate
        if method == "linear":  # the state sources against the plain Jacobian loop
            ref = _reference_norms(m, X[i], [U[i]] * 8, 7)
            assert np.allclose(b.norms[i][:, 1:], ref[:, 1:], rtol=1e-12, atol=1e-300)
    # the rows differ: each state has its own response
    assert not np.allclose(b.norms[0], b.norms[1])


def test_a_batch_takes_shared_and_per_state_input_sequences():
    rng = np.random.default_rng(12)
    m = _mlp(rng, 2)
    X = rng.normal(size=(3, m.dim))
    seq = rng.normal(size=(6, m.input_size))
    per = impulse_response(m, X, 5, inputs=np.stack([seq] * 3, axis=1))
    for i in range(3):
        assert np.array_equal(per.norms[i], impulse_response(m, X[i], 5, inputs=seq).norms)
    # as in iterate, a batch reads (steps + 1, n_in) as one constant input per state
    with pytest.raises(ValueError, match="batch of 3"):
        impulse_response(m, X, 5, inputs=seq)
    # without inputs, each row's own input block drives it
    own = impulse_response(m, X, 5)
    for i in range(3):
        assert np.array_equal(own.norms[i], impulse_response(m, X[i], 5).norms)


def test_a_batch_of_one_keeps_the_batch_axis_and_saves(tmp_path):
    m = linear(np.array([[0.5]]))
    r = impulse_response(m, np.array([[1.0]]), 10)
    assert r.batched and r.norms.shape == (1, 11, 1, 1)
    assert r.decay_rate[0] == pytest.approx(np.log(2), rel=1e-9)
    assert r.length == [None]
    back = itermap.load(itermap.save(r, tmp_path / "r.npz"))
    assert back.batched and back.length == [None] and np.array_equal(back.norms, r.norms)
    with pytest.raises(ValueError, match="index 3"):
        r.row(3)
    with pytest.raises(TypeError, match="index"):
        r.row(0.5)
    with pytest.raises(ValueError, match="not a batch"):
        impulse_response(m, np.array([1.0]), 3).row(0)


def test_a_diverging_row_is_named():
    m = linear(np.array([[1e200]]))
    with pytest.raises(itermap.DivergenceError, match=r"x\[1\]"):
        impulse_response(m, np.array([[0.0], [1e200]]), 1)


@pytest.mark.parametrize("method", ["linear", "nonlinear"])
@pytest.mark.filterwarnings("error")  # the error, not an overflow warning before it
def test_impulse_response_of_diverging_map_raises(method):
    m = linear(np.array([[1e200]]))
    with pytest.raises(itermap.DivergenceError, match="diverges"):
        impulse_response(m, np.array([1e200]), 5, method=method)


def test_memory_capacity_bad_input():
    m = itermap.mlp_continuum([1, 3, 3], rng=0)
    with pytest.raises(ValueError, match="driven"):
        memory_capacity(itermap.random_rnn(5, rng=0), max_delay=3, steps=500)
    with pytest.raises(ValueError, match="not the map's input block"):
        memory_capacity(m, input_block=1, max_delay=3, steps=500)
    with pytest.raises(ValueError, match="does not exist"):
        memory_capacity(m, input_block=5, max_delay=3, steps=500)
    with pytest.raises(ValueError, match="max_delay"):
        memory_capacity(m, max_delay=0, steps=500)
    with pytest.raises(ValueError, match="too few"):
        memory_capacity(m, max_delay=3, steps=110)
    with pytest.raises(ValueError, match="input_scale"):
        memory_capacity(m, max_delay=3, steps=500, input_scale=-1.0)
