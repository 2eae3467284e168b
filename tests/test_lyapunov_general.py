"""The general tangent stepper (the analyses' loop of last resort, map-side since round 10)."""

import numpy as np
import pytest

import itermap
from itermap import DivergenceError
from itermap.analysis import lyapunov_spectrum
from itermap.linalg import general_tangent_stepper
from itermap.systems import linear


def test_per_step_inputs_match_a_plain_loop():
    rng = np.random.default_rng(0)
    nh, nx, steps, B, k = 6, 2, 40, 2, 3
    W_hh = rng.normal(0, 1.5 / np.sqrt(nh), size=(nh, nh))
    W_hx = rng.normal(size=(nh, nx))
    m = itermap.IterativeMap.from_rnn(W_hh, W_hx)  # the state is [input | h]
    U = rng.normal(size=(steps, B, nx))
    h0 = rng.normal(size=(B, nh))
    Q0 = np.linalg.qr(rng.normal(size=(B, nh, k)))[0]
    x0 = np.concatenate([U[0], h0], axis=1)
    frame = np.concatenate([np.zeros((B, nx, k)), Q0], axis=1)
    acc = np.zeros((B, k))
    s = general_tangent_stepper(m, x0, frame, inputs=U)
    assert s.advance(steps, acc=acc) is not None
    # the plain loop on h: J = diag(f'(z)) W_hh formed, numpy.linalg.qr
    h, Q, ref = h0.copy(), Q0.copy(), np.zeros((B, k))
    for t in range(steps):
        z = h @ W_hh.T + U[t] @ W_hx.T
        J = (1 - np.tanh(z) ** 2)[:, :, None] * W_hh
        h, (Q, R) = np.tanh(z), np.linalg.qr(J @ Q)
        ref += np.log(np.abs(np.diagonal(R, axis1=1, axis2=2)))
    np.testing.assert_allclose(acc, ref, atol=1e-10)
    np.testing.assert_allclose(s.x[:, nx:], h, atol=1e-12)


@pytest.mark.parametrize("every", [1, 3])
def test_spaced_qrs_give_the_log_eigenvalues_of_a_linear_map(every):
    A = np.diag([1.5, 0.5, 0.25])
    s = general_tangent_stepper(linear(A), np.ones((1, 3)), np.eye(3)[None, :, :2])
    acc = np.zeros((1, 2))
    loss = s.advance(30, every=every, acc=acc)
    np.testing.assert_allclose(acc[0] / 30, np.log([1.5, 0.5]), atol=1e-12)
    assert np.isnan(loss[0]) == (every == 1)  # the precision loss is tracked for spaced QRs


def test_an_exact_collapse_is_minus_inf_and_an_overflow_names_the_step():
    s = general_tangent_stepper(linear(np.diag([2.0, 0.0])), np.ones((1, 2)), np.eye(2)[None])
    acc = np.zeros((1, 2))
    s.advance(5, acc=acc)
    assert acc[0, 0] == pytest.approx(5 * np.log(2.0)) and acc[0, 1] == -np.inf
    big = linear(np.diag([1e100, 0.5]))  # the state overflows at its 4th step
    s = general_tangent_stepper(big, np.ones((1, 2)), np.eye(2)[None], offset=10, transient=1)
    with pytest.raises(DivergenceError, match=r"state overflowed .* at step 14 \("):
        s.advance(5, acc=np.zeros((1, 2)))
    s = general_tangent_stepper(big, np.ones((1, 2)), np.eye(2)[None], transient=5)
    with pytest.raises(DivergenceError, match="at step 4 of the transient"):
        s.advance(5, acc=np.zeros((1, 2)))
    s = general_tangent_stepper(big, np.ones((1, 2)), np.eye(2)[None])
    with pytest.raises(DivergenceError, match="between steps 1 and 5"):
        s.advance(5, every=5, acc=np.zeros((1, 2)))


def test_a_map_that_hands_no_stepper_runs_on_the_general_one():
    class Plain(itermap.Map):  # a user's map: no stepper of its own
        dim = 3

        def __init__(self):
            self.A = np.array([[0.9, 0.2, 0.0], [0.0, -0.5, 0.1], [0.0, 0.0, 0.3]])

        def step(self, x, u=None):
            return x @ self.A.T

        def jacobian(self, x, u=None):
            return np.broadcast_to(self.A, x.shape[:-1] + (3, 3))

        def tangent_stepper(self, x, Q, u=None, *, steps=0):
            return None

    res = lyapunov_spectrum(Plain(), np.ones(3), 200, transient=50, rng=0)
    np.testing.assert_allclose(res.exponents, np.log([0.9, 0.5, 0.3]), atol=1e-9)
