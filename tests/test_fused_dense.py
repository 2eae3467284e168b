"""The row-split dense Lyapunov step against a plain loop (numpy.linalg.qr every step)."""

import numpy as np
import pytest

import itermap
from itermap._running import _fused_dense, _reorth
from itermap._running._fused_steppers import FusedStepper
from itermap.analysis import lyapunov_spectrum


@pytest.fixture
def fused_calls(monkeypatch):
    monkeypatch.setattr(_fused_dense, "n_threads", lambda: 2)  # split even on one CPU
    calls = {"n": 0, "qr": 0}
    step = _fused_dense.FusedDenseStep.advance

    def counted(self, **kw):
        calls["n"] += 1
        calls["qr"] += kw.get("qr", True)
        return step(self, **kw)

    monkeypatch.setattr(_fused_dense.FusedDenseStep, "advance", counted)
    return calls


def _map(activation="tanh", n=140):
    rng = np.random.default_rng(6)
    W = rng.normal(size=(n, n)) * 1.4 / np.sqrt(n)
    return itermap.IterativeMap(W, rng.normal(size=n) * 0.1, activation), W


def _reference(W, b, act, dact, x0, Q0, steps):
    x, Q, acc = x0.copy(), Q0.copy(), np.zeros(Q0.shape[-1])
    for _ in range(steps):
        z = W @ x + b
        Q, R = np.linalg.qr((dact(z)[:, None] * W) @ Q)
        x = act(z)
        acc += np.log(np.abs(np.diagonal(R)))
    return np.sort(acc / steps)[::-1], x


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_fused_dense_step_gives_the_plain_loops_spectrum(activation, fused_calls):
    m, W = _map(activation)
    x0 = np.random.default_rng(1).normal(size=140)
    res = lyapunov_spectrum(m, x0, 60, k=130, rng=0)
    assert fused_calls["n"] == 60
    # rng=0's frame: a CholeskyQR of the same Gaussian frame (the same span)
    Q0 = np.linalg.qr(np.random.default_rng(0).standard_normal((1, 140, 130)))[0][0]
    if activation == "tanh":
        act, dact = np.tanh, lambda z: 1.0 - np.tanh(z) ** 2
    else:
        act, dact = _sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))
    ref, x = _reference(W, m.bias, act, dact, x0, Q0, 60)
    np.testing.assert_allclose(res.exponents, ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.state[0], x, rtol=0, atol=1e-12)
    Q = np.asarray(res.tangents)[0]
    np.testing.assert_allclose(Q.T @ Q, np.eye(130), atol=1e-12)


def test_fused_dense_step_with_spaced_qrs_and_fallbacks(fused_calls, monkeypatch):
    m, W = _map()
    x0 = np.random.default_rng(2).normal(size=140)
    with monkeypatch.context() as mp:  # the general loop, for the same run
        mp.setattr(_fused_dense.FusedDenseStep, "maybe", classmethod(lambda cls, *a, **k: None))
        plain = lyapunov_spectrum(m, x0, 60, k=130, transient=6, reorthonormalize_every=3,
                                  rng=0)
    assert fused_calls["n"] == 0
    got = lyapunov_spectrum(m, x0, 60, k=130, transient=6, reorthonormalize_every=3, rng=0)
    assert fused_calls["n"] == 66 and fused_calls["qr"] == 6 + 20
    np.testing.assert_allclose(got.exponents, plain.exponents, rtol=0, atol=1e-10)
    assert got.precision_loss == pytest.approx(plain.precision_loss, rel=1e-9)
    # every third factorisation refused: the shifted pass or the Reorthonormalizer takes
    # that step
    factor, turn = _fused_dense.FusedDenseStep._pass, {"i": 0}

    def every_third(self, *args):
        turn["i"] += 1
        if turn["i"] % 3 == 0:
            raise _reorth._CholeskyFailed
        return factor(self, *args)

    monkeypatch.setattr(_fused_dense.FusedDenseStep, "_pass", every_third)
    again = lyapunov_spectrum(m, x0, 60, k=130, transient=6, reorthonormalize_every=3, rng=0)
    assert turn["i"] >= 26
    np.testing.assert_allclose(again.exponents, plain.exponents, rtol=0, atol=1e-10)


def test_fused_dense_step_covers_only_what_it_can(monkeypatch):
    """The network hands out its fused stepper only for the runs it covers."""
    monkeypatch.setattr(_fused_dense, "n_threads", lambda: 2)

    def fused(m, x, Q, u=None):
        return isinstance(m.tangent_stepper(x, Q, u), FusedStepper)

    m, W = _map()
    x, Q = np.zeros((1, 140)), np.zeros((1, 140, 130))
    assert fused(m, x, Q)
    assert not fused(m, np.zeros((2, 140)), np.zeros((2, 140, 130)))  # a batch
    assert not fused(m, x, Q[..., :100])  # small frames
    assert not fused(m, x.astype(np.float32), Q.astype(np.float32))
    assert not fused(itermap.IterativeMap(W, None, "tanh", leak=0.5), x, Q)  # a leak
    driven = itermap.IterativeMap(W, None, "tanh", sizes=[10, 130], input_block=0)
    assert not fused(driven, x, Q, np.zeros(10))
    mixed = itermap.IterativeMap(W, None, ["tanh", "relu"], sizes=[70, 70])
    assert not fused(mixed, x, Q)  # one activation per block
    monkeypatch.setattr(_fused_dense, "n_threads", lambda: 1)
    assert not fused(m, x, Q)  # one CPU: nothing to split


def test_fused_dense_step_with_more_row_blocks_than_cores(monkeypatch):
    monkeypatch.setattr(_fused_dense, "n_threads", lambda: 5)  # 140 rows: 4 blocks of 35
    m, W = _map()
    step = m.tangent_stepper(np.zeros((1, 140)), np.zeros((1, 140, 128))).step
    assert [hi - lo for lo, hi in step.rows] == [35, 35, 35, 35]
    x0 = np.random.default_rng(3).normal(size=140)
    res = lyapunov_spectrum(m, x0, 30, k=128, rng=0)
    Q0 = np.linalg.qr(np.random.default_rng(0).standard_normal((1, 140, 128)))[0][0]
    ref, x = _reference(W, m.bias, np.tanh, lambda z: 1.0 - np.tanh(z) ** 2, x0, Q0, 30)
    np.testing.assert_allclose(res.exponents, ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.state[0], x, rtol=0, atol=1e-12)
