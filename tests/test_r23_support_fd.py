"""Round 23: central differences of a FunctionMap step each coordinate at its own scale.

Checked against the exact Jacobian of closed-form maps. The step was eps^(1/3) of the whole
state's largest entry: beside a coordinate of 1e6, a unit-scale coordinate was moved by ~6
and its derivatives came out 40-50 % wrong."""

from __future__ import annotations

import numpy as np
import pytest

import itermap

rng = np.random.default_rng(0)
W = rng.normal(size=(4, 4))
C = rng.normal(size=4) * 0.3


def _tanh_net(S):
    """``x -> S tanh(W (x / S) + c)``: a tanh network with unit j measured in units of S_j."""
    S = np.asarray(S, dtype=float)

    def step(X):
        return S * np.tanh((X / S) @ W.T + C)

    def jac(x):
        return (S * (1 - np.tanh(W @ (x / S) + C) ** 2))[:, None] * W / S[None, :]

    return step, jac


def _rel_err(step, jac, x, V):
    m = itermap.FunctionMap(step, 4, jacobian="central")
    exact = jac(x) @ V
    return np.linalg.norm(m.tangent(x, V) - exact) / np.linalg.norm(exact)


FRAME = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 4)))[0]  # a Lyapunov frame


@pytest.mark.parametrize("V", [np.eye(4), FRAME], ids=["coordinates", "dense frame"])
def test_a_state_of_mixed_scales_is_differenced_at_each_coordinate_s_scale(V):
    step, jac = _tanh_net([1e6, 1, 1, 1])
    x = np.array([1e6, 1, 1, 1]) * np.random.default_rng(2).uniform(-1, 1, 4)
    assert _rel_err(step, jac, x, V) < 1e-8  # was 0.46 (coordinates), 0.39 (frame); now 1e-11


@pytest.mark.parametrize("scale, at", [(1e6, 1e6), (1.0, 1.0), (1.0, 1e-6)],
                         ids=["all 1e6", "unit", "unit map near 0"])
def test_uniform_scales_stay_at_the_textbook_accuracy(scale, at):
    # Nocedal and Wright's h ~ eps^(1/3) max(1, |x|): ~1e-10 relative for smooth maps; the
    # floor of 1 keeps a unit-scale map near its fixed point 0 accurate (no floor: 2e-6)
    step, jac = _tanh_net([scale] * 4)
    x = at * np.random.default_rng(1).uniform(-1, 1, 4)
    for V in (np.eye(4), FRAME):
        assert _rel_err(step, jac, x, V) < 1e-9


def test_a_zero_direction_gives_a_zero_tangent():
    step, _ = _tanh_net([1e6, 1, 1, 1])
    m = itermap.FunctionMap(step, 4, jacobian="central")
    V = np.zeros((4, 2))
    V[1, 1] = 1.0
    out = m.tangent(np.array([3e5, 0.2, -0.1, 0.4]), V)
    assert np.all(out[:, 0] == 0) and np.all(np.isfinite(out))
