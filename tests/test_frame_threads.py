"""Batched dense Lyapunov loops with the trajectories in threads, against a plain loop.

The split lives on the map side: a dense network hands the analyses a
:class:`itermap._running._fused_steppers.BatchedStepper` with groups of trajectories.
"""

import numpy as np
import pytest

import itermap
from itermap._running import _fused_steppers
from itermap._running._fused_steppers import BatchedStepper, frame_groups
from itermap.analysis import covariant_lyapunov_vectors, lyapunov_spectrum


@pytest.fixture
def split_calls(monkeypatch):
    monkeypatch.setattr(_fused_steppers, "n_threads", lambda: 2)  # split even on one CPU
    calls = {"n": 0}
    step = BatchedStepper._step_with_tangent

    def counted(self):
        calls["n"] += self.groups > 1
        return step(self)

    monkeypatch.setattr(BatchedStepper, "_step_with_tangent", counted)
    return calls


def _reference(W, b, X0, Q0, steps):
    """The textbook loop: J = f'(z) W formed, numpy.linalg.qr every step."""
    x, Q, acc = X0.copy(), Q0.copy(), 0.0
    for _ in range(steps):
        z = x @ W.T + b
        J = (1.0 - np.tanh(z) ** 2)[:, :, None] * W
        x = np.tanh(z)
        Q, R = np.linalg.qr(J @ Q)
        acc = acc + np.log(np.abs(np.diagonal(R, axis1=-2, axis2=-1)))
    return np.sort(acc / steps, axis=1)[:, ::-1]


def test_split_trajectories_give_the_plain_loops_spectrum(split_calls):
    n, k, B, steps = 140, 130, 3, 40  # k >= 128: frames factorised one at a time
    m = itermap.random_rnn(n, gain=1.3, rng=2)
    b = np.random.default_rng(3).normal(size=n) * 0.1
    m = itermap.IterativeMap(np.asarray(m.block_matrix.to_dense()), b, "tanh")
    X0 = np.random.default_rng(4).normal(size=(B, n))
    assert frame_groups(np.zeros((B, n, k))) == 2
    res = lyapunov_spectrum(m, X0, steps, k=k, rng=0)
    assert split_calls["n"] == steps
    Q0 = np.linalg.qr(np.random.default_rng(0).standard_normal((B, n, k)))[0]
    # the same initial frame as rng=0 (a CholeskyQR of the same Gaussian frame: the
    # same span, so the same exponents to rounding)
    ref = _reference(np.asarray(m.block_matrix.to_dense()), b, X0, Q0, steps)
    np.testing.assert_allclose(res.per_trajectory, ref, rtol=0, atol=1e-9)
    x = X0
    for _ in range(steps):
        x = np.tanh(x @ np.asarray(m.block_matrix.to_dense()).T + b)
    np.testing.assert_allclose(res.state, x, rtol=0, atol=1e-12)


def test_split_trajectories_with_batched_inputs_and_covariant_vectors(split_calls,
                                                                     monkeypatch):
    # a driven map: each trajectory its own constant input (sliced with its group); the
    # numbers are anchored by the test above, here the split must not change them
    n_in, n_h, B = 3, 130, 3
    rng = np.random.default_rng(5)
    W = np.zeros((n_in + n_h, n_in + n_h))
    W[n_in:, :n_in] = rng.normal(size=(n_h, n_in))
    W[n_in:, n_in:] = rng.normal(size=(n_h, n_h)) * 1.2 / np.sqrt(n_h)
    m = itermap.IterativeMap(W, None, "tanh", sizes=[n_in, n_h], input_block=0)
    u = rng.normal(size=(B, n_in))
    X0 = np.hstack([u, rng.normal(size=(B, n_h))])
    got = lyapunov_spectrum(m, X0, 30, k=128, inputs=u, rng=0)
    assert split_calls["n"] == 30
    clv = covariant_lyapunov_vectors(m, X0, 20, k=128, transient=5, inputs=u, rng=0)
    split_steps = split_calls["n"]
    assert split_steps > 30  # its forward pass went through the split too
    monkeypatch.setattr(_fused_steppers, "frame_groups", lambda Q: 1)  # the same runs unsplit
    plain = lyapunov_spectrum(m, X0, 30, k=128, inputs=u, rng=0)
    np.testing.assert_allclose(got.per_trajectory, plain.per_trajectory, rtol=0, atol=1e-9)
    clv_plain = covariant_lyapunov_vectors(m, X0, 20, k=128, transient=5, inputs=u, rng=0)
    assert split_calls["n"] == split_steps
    np.testing.assert_allclose(np.abs(np.asarray(clv.vectors)),
                               np.abs(np.asarray(clv_plain.vectors)), rtol=0, atol=1e-9)


def test_no_split_where_it_does_not_apply(monkeypatch):
    monkeypatch.setattr(_fused_steppers, "n_threads", lambda: 2)
    m = itermap.random_rnn(140, rng=0)
    X, Q = np.zeros((3, 140)), np.zeros((3, 140, 130))

    def groups(m, X, Q):
        s = m.tangent_stepper(X, Q)
        return s.groups if isinstance(s, BatchedStepper) else 1

    assert groups(m, X, Q) == 2
    assert groups(m, X[:1], Q[:1]) == 1  # one trajectory
    assert groups(m, X, Q[..., :100]) == 1  # small frames: batched NumPy factorisations
    assert groups(m, X.astype(np.float32), Q.astype(np.float32)) == 1
    assert groups(itermap.random_rnn(140, density=0.05, rng=0), X, Q) == 1  # sparse
    assert groups(itermap.systems.linear(np.eye(2)), X[:, :2], np.zeros((3, 2, 2))) == 1


def test_no_split_that_would_idle_most_cores(monkeypatch):
    monkeypatch.setattr(_fused_steppers, "n_threads", lambda: 16)
    assert frame_groups(np.zeros((7, 140, 130))) == 1
    assert frame_groups(np.zeros((8, 140, 130))) == 8
    assert frame_groups(np.zeros((40, 140, 130))) == 16
    monkeypatch.setattr(_fused_steppers, "n_threads", lambda: 1)
    assert frame_groups(np.zeros((8, 140, 130))) == 1  # one CPU


def test_without_the_gil_free_blas_the_batched_path_gives_the_same_spectrum(monkeypatch):
    """The fallback where SciPy lacks its Cython BLAS entry points: no split, no fused step,
    the Reorthonormalizer's batched factorisations; the same exponents."""
    from itermap._running import _nogil_blas, _reorth

    n, k, B = 140, 130, 2
    m = itermap.random_rnn(n, gain=1.3, rng=2)
    X0 = np.random.default_rng(4).normal(size=(B, n))
    with_blas = lyapunov_spectrum(m, X0, 15, k=k, rng=0)
    one = lyapunov_spectrum(m, X0[0], 15, k=k, rng=0)
    for mod in (_fused_steppers, _reorth):
        monkeypatch.setattr(mod, "available" if mod is not _reorth else "nogil_available",
                            lambda: False)
    monkeypatch.setattr(_nogil_blas, "_routines", lambda: None)
    assert not _nogil_blas.available()
    assert m.tangent_stepper(X0, np.zeros((B, n, k))) is None
    without = lyapunov_spectrum(m, X0, 15, k=k, rng=0)
    np.testing.assert_allclose(without.per_trajectory, with_blas.per_trajectory, rtol=0,
                               atol=1e-9)
    np.testing.assert_allclose(lyapunov_spectrum(m, X0[0], 15, k=k, rng=0).exponents,
                               one.exponents, rtol=0, atol=1e-9)
