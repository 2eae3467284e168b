"""Newton over the whole trajectory (iterate(method="newton")) against the sequential run."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import FunctionMap, IterativeMap, NewtonConvergenceError, iterate, random_rnn
from itermap._running._newton import _lm_step
from itermap.systems import linear, logistic
from tests.conftest import to_np


def _rnn(n_h=12, n_x=3, gain=0.6, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    W = (rng.normal(size=(n_h, n_h)) * gain / np.sqrt(n_h)).astype(dtype)
    Wx = rng.normal(size=(n_h, n_x)).astype(dtype)
    return IterativeMap.from_rnn(W, Wx, (0.1 * rng.normal(size=n_h)).astype(dtype))


@pytest.mark.parametrize("steps", [1, 2, 3, 17, 1000])
@pytest.mark.parametrize("gain", [0.5, 0.9])
def test_random_rnn_matches_the_sequential_run(steps, gain):
    m = random_rnn(10, gain=gain, rng=3)
    x0 = np.random.default_rng(4).normal(size=10)
    traj = iterate(m, x0, steps, method="newton")
    seq = iterate(m, x0, steps)
    assert traj.states.shape == seq.states.shape
    np.testing.assert_array_equal(traj.times, seq.times)
    assert np.max(np.abs(traj.states - seq.states)) <= 1e-10
    assert 1 <= traj.iterations <= steps
    assert len(traj.residuals) == traj.iterations + 1 and traj.converged


def test_a_hundred_thousand_steps():
    m = random_rnn(8, gain=0.7, rng=0)
    x0 = np.random.default_rng(1).normal(size=8)
    traj = iterate(m, x0, 100_000, method="newton", keep="last")
    seq = iterate(m, x0, 100_000, keep="last")
    assert np.max(np.abs(traj.states - seq.states)) <= 1e-10
    assert traj.iterations <= 10


@pytest.mark.parametrize("jacobian", ["full", "block", "diagonal"])
def test_driven_rnn_with_an_input_sequence_and_a_batch(jacobian):
    m = _rnn()
    rng = np.random.default_rng(2)
    T = 400
    u = rng.normal(size=(T, 5, 3))
    x0 = np.zeros((5, m.dim))
    traj = iterate(m, x0, T, inputs=u, method="newton", jacobian=jacobian)
    seq = iterate(m, x0, T, inputs=u)
    assert np.max(np.abs(traj.states - seq.states)) <= 1e-10
    # the input block of an RNN map has zero Jacobian: its own-block part is exact Newton
    if jacobian == "block":
        full = iterate(m, x0, T, inputs=u, method="newton")
        assert traj.iterations == full.iterations


def test_constant_input():
    m = _rnn(seed=5)
    x0 = np.zeros(m.dim)
    traj = iterate(m, x0, 300, inputs=np.array([0.3, -0.2, 1.0]), method="newton")
    seq = iterate(m, x0, 300, inputs=np.array([0.3, -0.2, 1.0]))
    assert np.max(np.abs(traj.states - seq.states)) <= 1e-10


def test_function_map_driven():
    # a leaky tanh unit driven by u, written as plain functions
    rng = np.random.default_rng(7)
    W = rng.normal(size=(4, 4)) * 0.3

    def step(x, u):
        return 0.5 * x + np.tanh(x @ W.T + u)

    def jac(x, u):
        d = 1 - np.tanh(x @ W.T + u) ** 2
        return 0.5 * np.eye(4) + d[..., :, None] * W

    m = FunctionMap(step, 4, jacobian=jac, input_size=4)
    u = rng.normal(size=(250, 4))
    x0 = rng.normal(size=4)
    for kind in ("full", "diagonal", "block"):
        traj = iterate(m, x0, 250, inputs=u, method="newton", jacobian=kind)
        assert np.max(np.abs(traj.states - iterate(m, x0, 250, inputs=u).states)) <= 1e-10


def test_float32_agrees_to_1e5():
    m = random_rnn(32, gain=0.9, rng=1, dtype=np.float32)
    x0 = np.random.default_rng(2).normal(size=(3, 32)).astype(np.float32)
    traj = iterate(m, x0, 3000, method="newton")
    assert traj.states.dtype == np.float32
    assert np.max(np.abs(traj.states - iterate(m, x0, 3000).states)) <= 1e-5


def test_a_linear_map_takes_one_iteration_on_any_namespace(xp):
    A = np.array([[0.5, 0.2], [-0.1, 0.8]])
    m = linear(xp.asarray(A))
    traj = iterate(m, xp.asarray(np.array([1.0, -1.0])), 50, method="newton")
    want = [np.linalg.matrix_power(A, t) @ np.array([1.0, -1.0]) for t in range(51)]
    np.testing.assert_allclose(to_np(traj.states), np.array(want), atol=1e-14)
    assert traj.iterations == 1


@pytest.mark.parametrize("steps", [5, 12])
def test_exact_after_steps_iterations_on_a_chaotic_map(steps):
    # the logistic map at r = 4 (exponent ln 2): Newton still finishes in at most `steps`
    m = logistic(4.0)
    x0 = np.array([0.2])
    traj = iterate(m, x0, steps, method="newton", max_iter=steps)
    assert traj.iterations <= steps
    assert np.max(np.abs(traj.states - iterate(m, x0, steps).states)) <= 1e-10


def test_a_chaotic_map_raises_naming_the_lyapunov_exponent():
    m = logistic(4.0)
    with pytest.raises(NewtonConvergenceError, match="Lyapunov exponent is about") as info:
        iterate(m, np.array([0.2]), 500, method="newton", max_iter=20)
    err = info.value
    assert isinstance(err, ValueError) and err.iterations == 20
    assert abs(err.lyapunov_exponent - np.log(2)) < 0.05
    assert "chaotic" in str(err) and len(err.residuals) >= 20


def test_fallback_runs_the_sequential_path_and_says_why():
    m = logistic(4.0)
    x0 = np.array([0.2])
    with pytest.warns(RuntimeWarning, match="falling back to the sequential path"):
        traj = iterate(m, x0, 300, method="newton", max_iter=10, fallback="sequential")
    np.testing.assert_array_equal(traj.states, iterate(m, x0, 300).states)
    assert not traj.converged and "Lyapunov" in traj.fallback_reason


def test_damped_steps_converge_to_the_same_trajectory():
    m = _rnn(seed=8, gain=0.8)
    u = np.random.default_rng(3).normal(size=(300, 3))
    x0 = np.zeros(m.dim)
    seq = iterate(m, x0, 300, inputs=u)
    for damping in (0.1, 10.0):
        traj = iterate(m, x0, 300, inputs=u, method="newton", damping=damping)
        assert np.max(np.abs(traj.states - seq.states)) <= 1e-10
        assert traj.damping == damping


def _dense_residual_jacobian(J):
    """L for r_t = x_{t+1} - F(x_t): identity blocks, -J_t below (J_0 never enters)."""
    T, d = J.shape[0], J.shape[-1]
    L = np.eye(T * d)
    for t in range(1, T):
        L[t * d:(t + 1) * d, (t - 1) * d:t * d] = -J[t]
    return L


@settings(max_examples=15, deadline=None)
@given(T=st.integers(1, 12), d=st.integers(1, 4), damping=st.floats(0.01, 10.0),
       seed=st.integers(0, 2**16))
def test_lm_step_solves_the_damped_normal_equations(T, d, damping, seed):
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(T, 1, d, d)) * 0.7
    r = rng.normal(size=(T, 1, d))
    L = _dense_residual_jacobian(J[:, 0])
    want = np.linalg.solve(L.T @ L + damping * np.eye(T * d), -L.T @ r.reshape(-1))
    got = _lm_step(J, r, damping, "full", np, max_cg=500, rel_tol=1e-12)
    np.testing.assert_allclose(got.reshape(-1), want, rtol=1e-5, atol=1e-7)
    gotd = _lm_step(J[..., 0], r, damping, "diagonal", np, max_cg=500, rel_tol=1e-12)
    Ld = _dense_residual_jacobian(np.stack([np.diag(j[:, 0]) for j in J[:, 0]]))
    wantd = np.linalg.solve(Ld.T @ Ld + damping * np.eye(T * d), -Ld.T @ r.reshape(-1))
    np.testing.assert_allclose(gotd.reshape(-1), wantd, rtol=1e-5, atol=1e-7)


def test_sparse_maps_converge_with_the_diagonal_jacobian():
    m = random_rnn(200, gain=0.3, density=0.05, rng=0)
    assert itermap.backends.is_sparse(m.block_matrix.blocks[(0, 0)])
    x0 = np.random.default_rng(0).normal(size=(2, 200))
    traj = iterate(m, x0, 500, method="newton", jacobian="diagonal")
    assert np.max(np.abs(traj.states - iterate(m, x0, 500).states)) <= 1e-10


def test_block_jacobian_of_a_block_map():
    rng = np.random.default_rng(9)
    sizes = [3, 4, 5]
    W = rng.normal(size=(12, 12)) * 0.1
    m = IterativeMap(W, sizes=sizes, activation=["tanh", "sin", "tanh"])
    x0 = rng.normal(size=12)
    traj = iterate(m, x0, 400, method="newton", jacobian="block")
    assert np.max(np.abs(traj.states - iterate(m, x0, 400).states)) <= 1e-10


def test_initial_guess_and_chunks():
    m = random_rnn(6, gain=0.8, rng=2)
    x0 = np.random.default_rng(5).normal(size=(2, 6))
    seq = iterate(m, x0, 200)
    again = iterate(m, x0, 200, method="newton", initial=seq)
    assert again.iterations == 0
    np.testing.assert_array_equal(again.states, seq.states)
    zeros = iterate(m, x0, 200, method="newton", initial="zeros")
    assert np.max(np.abs(zeros.states - seq.states)) <= 1e-10
    chunked = iterate(m, x0, 200, method="newton", chunk=64)
    assert chunked.windows == 4
    assert np.max(np.abs(chunked.states - seq.states)) <= 1e-10


def test_every_and_keep_match_the_sequential_run():
    m = random_rnn(5, gain=0.6, rng=1)
    x0 = np.ones(5) * 0.5
    for kw in ({"every": 7}, {"keep": "last"}):
        traj = iterate(m, x0, 50, method="newton", **kw)
        seq = iterate(m, x0, 50, **kw)
        np.testing.assert_array_equal(traj.times, seq.times)
        assert np.max(np.abs(traj.states - seq.states)) <= 1e-12
    zero = iterate(m, x0, 0, method="newton")
    assert zero.states.shape == (1, 5) and zero.iterations == 0


def test_newton_trajectory_saves_and_loads(tmp_path):
    m = random_rnn(5, gain=0.6, rng=1)
    traj = iterate(m, np.ones(5) * 0.5, 30, method="newton")
    back = itermap.load(itermap.save(traj, os.path.join(tmp_path, "traj.npz")))
    assert isinstance(back, itermap.NewtonTrajectory)
    np.testing.assert_array_equal(back.states, traj.states)
    np.testing.assert_array_equal(back.residuals, traj.residuals)
    assert back.iterations == traj.iterations and back.jacobian == "full"


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "parallel"}, "method"),
    ({"method": "newton", "jacobian": "sparse"}, "jacobian"),
    ({"method": "newton", "damping": -1.0}, "damping"),
    ({"method": "newton", "damping": float("nan")}, "damping"),
    ({"method": "newton", "tol": 0.0}, "tol"),
    ({"method": "newton", "max_iter": -1}, "max_iter"),
    ({"method": "newton", "chunk": 0}, "chunk"),
    ({"method": "newton", "fallback": "ignore"}, "fallback"),
    ({"method": "newton", "initial": "random"}, "initial"),
    ({"method": "newton", "initial": np.zeros((9, 5))}, "initial"),
    ({"method": "newton", "initial": np.full((10, 5), np.nan)}, "initial"),
    ({"method": "newton", "steps": -1}, "steps"),
])
def test_bad_options_raise_value_errors_naming_them(kwargs, match):
    m = random_rnn(5, gain=0.6, rng=1)
    steps = kwargs.pop("steps", 10)
    with pytest.raises(ValueError, match=match):
        iterate(m, np.ones(5), steps, **kwargs)


def test_newton_options_need_the_newton_method():
    with pytest.raises(TypeError, match="method='newton'"):
        iterate(random_rnn(3, rng=0), np.ones(3), 5, jacobian="full")


def test_a_non_finite_start_is_refused():
    with pytest.raises(ValueError, match="x0"):
        iterate(random_rnn(3, rng=0), np.array([np.nan, 0, 0]), 5, method="newton")


def test_overflow_is_reported_not_returned():
    # x -> 3x: the first linear solve is exact, but the state itself overflows
    m = linear(np.array([[3.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="inf or NaN"):
            iterate(m, np.array([1.0]), 1000, method="newton")


def test_float32_driven_rnn_over_a_long_run():
    # inputs of a few units enter the residual's scale: the tolerance must still give 1e-5
    m = _rnn(n_h=16, gain=0.8, seed=11, dtype=np.float32)
    u = np.random.default_rng(12).normal(size=(20_000, 3)).astype(np.float32) * 2
    x0 = m.zeros()
    traj = iterate(m, x0, 20_000, inputs=u, method="newton", jacobian="block")
    assert np.max(np.abs(traj.states - iterate(m, x0, 20_000, inputs=u).states)) <= 1e-5
