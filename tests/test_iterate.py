import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import BlockMatrix, DivergenceError, IterativeMap, iterate
from itermap.systems import henon, linear, logistic
from tests.conftest import to_np


def test_states_times_and_every(xp):
    A = xp.asarray(np.array([[0.5, 0.1], [0.0, 0.9]]))
    m = linear(A)
    x0 = xp.asarray(np.array([1.0, 2.0]))
    traj = iterate(m, x0, 10, every=3)
    np.testing.assert_array_equal(traj.times, [0, 3, 6, 9])
    ref = [np.array([1.0, 2.0])]
    for _ in range(9):
        ref.append(to_np(A) @ ref[-1])
    np.testing.assert_allclose(to_np(traj.states), np.array(ref)[[0, 3, 6, 9]], rtol=1e-14)
    last = iterate(m, x0, 10, keep="last")
    assert last.states.shape == (1, 2)
    np.testing.assert_allclose(to_np(last.final), np.linalg.matrix_power(to_np(A), 10)
                               @ np.array([1.0, 2.0]), rtol=1e-14)


def test_batched_shapes():
    m = henon()
    x0 = np.random.default_rng(0).uniform(-0.1, 0.1, size=(5, 2))
    traj = iterate(m, x0, 4)
    assert traj.states.shape == (5, 5, 2) and len(traj) == 5
    np.testing.assert_array_equal(traj.states[2, 3], m.step(m.step(x0[3])))


def test_input_sequences_and_constants():
    rng = np.random.default_rng(1)
    m = IterativeMap(rng.normal(size=(5, 5)), sizes=[2, 3], input_block=0)
    seq = rng.normal(size=(6, 4, 2))
    x0 = rng.normal(size=(4, 5))
    traj = iterate(m, x0, 6, inputs=seq)
    x = x0
    for k in range(6):
        x = m.step(x, seq[k])
    np.testing.assert_array_equal(traj.final, x)
    # one constant input for a whole batch, and one per trajectory
    u = rng.normal(size=2)
    a = iterate(m, x0, 3, inputs=u).final
    b = iterate(m, x0, 3, inputs=np.tile(u, (4, 1))).final
    np.testing.assert_array_equal(a, b)


@settings(max_examples=20, deadline=None)
@given(widths=st.lists(st.integers(1, 8), min_size=2, max_size=5), extra=st.integers(0, 3),
       seed=st.integers(0, 1000), skip=st.booleans())
def test_settling_shortcut_equals_plain_iteration(widths, extra, seed, skip):
    rng = np.random.default_rng(seed)
    n = len(widths)
    blocks = {(i + 1, i): rng.normal(size=(widths[i + 1], widths[i])) for i in range(n - 1)}
    if skip and n > 2:  # a skip connection keeps the graph acyclic
        blocks[(n - 1, 0)] = rng.normal(size=(widths[-1], widths[0]))
    m = IterativeMap(BlockMatrix(widths, blocks), rng.normal(size=sum(widths)), "tanh",
                     input_block=0)
    x0 = rng.normal(size=(3, m.dim))
    u = rng.normal(size=(3, widths[0]))
    steps = m.settle_steps + extra
    x = x0
    for _ in range(steps):
        x = m.step(x, u)
    np.testing.assert_allclose(iterate(m, x0, steps, inputs=u, keep="last").final, x,
                               rtol=1e-14, atol=1e-14)


def test_cyclic_maps_do_not_settle():
    m = itermap.random_rnn(10, rng=0)
    assert m.settle_steps is None
    x0 = np.ones(10) * 0.1
    x = x0
    for _ in range(7):
        x = m.step(x)
    np.testing.assert_array_equal(iterate(m, x0, 7, keep="last").final, x)


@pytest.mark.filterwarnings("ignore:overflow")
def test_divergence_names_the_step():
    m = linear(np.array([[1e100]]))
    with pytest.raises(DivergenceError, match="step 4"):
        iterate(m, np.array([1.0]), 10)
    with pytest.raises(ValueError, match=r"trajectories \[1\]"):
        iterate(m, np.array([[0.0], [1.0]]), 10, keep="last")


def test_logistic_is_bounded_and_matches_closed_form():
    # r = 4: x_k = sin^2(2^k theta)
    theta = 0.3
    traj = iterate(logistic(4.0), np.array([np.sin(theta) ** 2]), 8)
    ref = np.sin(2.0 ** np.arange(9) * theta) ** 2
    np.testing.assert_allclose(traj.states[:, 0], ref, rtol=1e-9)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"steps": -1}, ValueError, "steps must be >= 0"),
    ({"steps": 2.5}, TypeError, "steps must be an integer"),
    ({"steps": 3, "every": 0}, ValueError, "every"),
    ({"steps": 3, "keep": "first"}, ValueError, "keep"),
    ({"steps": 3, "x0": np.zeros(4)}, ValueError, "dimension 4"),
    ({"steps": 3, "x0": np.array([np.nan, 0, 0, 0, 0])}, ValueError, "x0 contains NaN"),
    ({"steps": 3, "inputs": None}, ValueError, "pass inputs"),
    ({"steps": 3, "inputs": np.zeros(3)}, ValueError, "input block has size 2"),
    ({"steps": 3, "inputs": np.zeros((4, 2))}, ValueError, "one input per step"),
    ({"steps": 3, "inputs": np.zeros((3, 1, 1, 2))}, ValueError, "fit neither"),
    ({"steps": 3, "inputs": np.array([np.inf, 0])}, ValueError, "inputs contain NaN"),
])
def test_bad_iterate_arguments(kwargs, exc, words):
    m = IterativeMap(np.eye(5) * 0.5, sizes=[2, 3], input_block=0)
    kwargs = {"x0": np.zeros(5), "inputs": np.zeros(2), **kwargs}
    with pytest.raises(exc, match=words):
        iterate(m, kwargs.pop("x0"), kwargs.pop("steps"), **kwargs)


def test_autonomous_map_rejects_inputs():
    with pytest.raises(ValueError, match="autonomous"):
        iterate(henon(), np.zeros(2), 3, inputs=np.zeros(1))


# -- estimate before allocating (issue 23, item 9) ---------------------------------------------
def _never_steps(dim=3):
    def step(x, u=None):
        raise RuntimeError("stepped: the run was not refused up front")

    return itermap.FunctionMap(step, dim, jacobian=lambda x, u=None: np.zeros(x.shape + (dim,)))


@pytest.mark.parametrize("method", ["sequential", "newton"])
def test_iterate_keep_all_beyond_memory_is_refused_before_the_first_step(method):
    with pytest.raises(ValueError, match=r"^steps: .*1000000000001 states.* GB, more than "
                                         r"this machine's"):
        iterate(_never_steps(), np.zeros(3), 10 ** 12, keep="all", method=method)
    if method == "newton":  # newton holds every state whatever keep says
        with pytest.raises(ValueError, match=r"^steps: method='newton'"):
            iterate(_never_steps(), np.zeros(3), 10 ** 12, keep="last", method=method)
    else:  # keep="last" stores one state: it runs (and reaches the step)
        with pytest.raises(RuntimeError, match="stepped"):
            iterate(_never_steps(), np.zeros(3), 10 ** 12, keep="last")


@settings(max_examples=30, deadline=None)
@given(steps=st.integers(0, 60), every=st.integers(1, 7), batch=st.integers(0, 4),
       dim=st.integers(1, 4), dtype=st.sampled_from([np.float32, np.float64]))
def test_iterate_memory_estimate_is_the_stored_states_twice(steps, every, batch, dim, dtype):
    # closed form: (steps // every + 1) saved states of B * dim items, gathered then stacked
    x0 = np.full((batch, dim) if batch else (dim,), 0.5, dtype=dtype)
    need = 2 * (steps // every + 1) * max(batch, 1) * dim * np.dtype(dtype).itemsize
    m = linear(np.eye(dim, dtype=dtype) * 0.5)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(itermap._core._checks, "_physical_memory", lambda: need)
        traj = iterate(m, x0, steps, every=every)
        assert traj.states.nbytes * 2 == need
        mp.setattr(itermap._core._checks, "_physical_memory", lambda: need - 1)
        with pytest.raises(ValueError, match=f"steps: the {steps // every + 1} states"):
            iterate(m, x0, steps, every=every)
        iterate(m, x0, steps, every=every, keep="last")  # one state: never refused
