"""Batched dense Lyapunov loops with large top-k frames, against a plain loop."""

import numpy as np

import itermap
from itermap.analysis import lyapunov_spectrum


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


def test_batched_large_frames_give_the_plain_loops_spectrum():
    n, k, B, steps = 140, 130, 3, 40
    m = itermap.random_rnn(n, gain=1.3, rng=2)
    b = np.random.default_rng(3).normal(size=n) * 0.1
    m = itermap.IterativeMap(np.asarray(m.block_matrix.to_dense()), b, "tanh")
    X0 = np.random.default_rng(4).normal(size=(B, n))
    res = lyapunov_spectrum(m, X0, steps, k=k, rng=0)
    Q0 = np.linalg.qr(np.random.default_rng(0).standard_normal((B, n, k)))[0]
    # the same initial frame as rng=0 (a CholeskyQR of the same Gaussian frame: the
    # same span, so the same exponents to rounding)
    ref = _reference(np.asarray(m.block_matrix.to_dense()), b, X0, Q0, steps)
    np.testing.assert_allclose(res.per_trajectory, ref, rtol=0, atol=1e-9)
    x = X0
    for _ in range(steps):
        x = np.tanh(x @ np.asarray(m.block_matrix.to_dense()).T + b)
    np.testing.assert_allclose(res.state, x, rtol=0, atol=1e-12)
