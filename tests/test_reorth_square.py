"""The dense full spectrum's square frames as Householder reflectors, at the issue's size.

One trajectory of ``random_rnn(256, gain)``: the QR of each frame runs by panels while
another thread forms the next product from the panels' reflectors as they are done.
Checked against a plain ``numpy.linalg.qr`` loop written here, and the panel-by-panel
factorisation against LAPACK's one call.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

import itermap
from itermap._running import _fused_square, _nogil_blas
from itermap.analysis import lyapunov_spectrum


def _plain_loop(W, x, Q, steps):
    """tanh network, ``J = diag(1 - tanh(z)^2) W`` formed, ``numpy.linalg.qr`` every step;
    the exponents sorted descending."""
    acc = np.zeros(Q.shape[1])
    with threadpool_limits(1):  # fast on a shared machine
        for _ in range(steps):
            z = W @ x
            x = np.tanh(z)
            Q, R = np.linalg.qr(((1.0 - x * x)[:, None] * W) @ Q)
            acc += np.log(np.abs(np.diagonal(R)))
    return np.sort(acc / steps)[::-1]


def _overlapping(monkeypatch, threads=2):
    """Count the steps that overlap the QR with the next product (two threads asked for,
    whatever the machine has)."""
    monkeypatch.setattr(_fused_square, "n_threads", lambda: threads)
    seen = []
    qr = _fused_square.FusedSquareStep._qr

    def counted(self, *a):
        seen.append(self.overlap)
        return qr(self, *a)

    monkeypatch.setattr(_fused_square.FusedSquareStep, "_qr", counted)
    return seen


@pytest.mark.parametrize("gain", [1.2, 3.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_trajectory_at_n256_matches_a_plain_numpy_qr_loop(gain, seed, monkeypatch):
    seen = _overlapping(monkeypatch)
    n, steps = 256, 40
    m = itermap.random_rnn(n, gain=gain, rng=seed)
    x0 = np.random.default_rng(seed + 10).normal(size=(1, n))
    res = lyapunov_spectrum(m, x0, steps, rng=seed)
    assert seen == [True] * steps
    W = np.asarray(m.block_matrix.to_dense())
    Q0 = np.linalg.qr(np.random.default_rng(seed).standard_normal((1, n, n)))[0][0]
    ref = _plain_loop(W, x0[0], Q0, steps)
    got = res.per_trajectory[0]
    scale = np.abs(ref).max()
    # relative to the spectrum's scale; chaos amplifies the two loops' rounding of the
    # state by e^(0.3 t) at gain 3, so 40 steps. The deepest directions (R_jj below
    # e^-10 ||J Q|| on a step) take eps ||J Q|| / |R_jj| from any backward-stable QR:
    # 1e-10 down to -10, 1e-9 below (2e-10 measured)
    top = ref > -10.0
    np.testing.assert_allclose(got[top], ref[top], rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(got[~top], ref[~top], rtol=0, atol=1e-9 * scale)
    if gain == 1.2:
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * scale)
    Q = res.tangents[0]
    np.testing.assert_allclose(Q.T @ Q, np.eye(n), rtol=0, atol=20 * np.finfo(float).eps * n)
    again = lyapunov_spectrum(m, x0, steps, rng=seed)  # same seed, same result
    np.testing.assert_array_equal(again.per_trajectory, res.per_trajectory)
    np.testing.assert_array_equal(again.tangents, res.tangents)


# 130: panels of 64, 64 and 2 columns, overlapped; 100: two panels, the QR and then the
# product's rows split over two threads
@pytest.mark.parametrize("n", [130, 100])
def test_the_overlapped_step_equals_the_one_thread_step(n, monkeypatch):
    m = itermap.random_rnn(n, gain=2.0, rng=3)
    x0 = np.random.default_rng(4).normal(size=(1, n))
    seen = _overlapping(monkeypatch, threads=1)
    one = lyapunov_spectrum(m, x0, 30, rng=5)
    assert seen and not any(seen)
    seen = _overlapping(monkeypatch, threads=2)
    two = lyapunov_spectrum(m, x0, 30, rng=5)
    assert seen and all(seen)
    # the split product rounds differently; 30 steps at gain 2 grow that to ~3e-13 in
    # the frame and ~1e-13 relative in the smallest exponents (1.3e-13 on a Zen 3 VM)
    np.testing.assert_allclose(two.per_trajectory, one.per_trajectory, rtol=1e-12, atol=0)
    np.testing.assert_allclose(two.tangents, one.tangents, rtol=0, atol=1e-11)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 200), k=st.integers(1, 200), seed=st.integers(0, 2 ** 16))
def test_panel_by_panel_qr_hands_over_each_block_and_equals_lapacks_call(n, k, seed):
    k = min(k, n)
    rng = np.random.default_rng(seed)
    A = np.asfortranarray(rng.normal(size=(n, k)) * np.logspace(0, -8, k))
    nb = min(_nogil_blas.PANEL, k)
    F1, T1 = A.copy(order="F"), np.empty((nb, k), order="F")
    F2, T2 = A.copy(order="F"), np.empty((nb, k), order="F")
    logd = _nogil_blas.householder_frame(F1, T1)
    blocks = []
    logd2 = _nogil_blas.householder_frame(F2, T2, panel_done=lambda lo, hi: blocks.append((lo, hi)))
    edges = list(range(0, k, _nogil_blas.PANEL)) + [k]
    assert blocks == list(zip(edges[:-1], edges[1:]))
    Q = _nogil_blas.explicit_frame(F1, T1)
    np.testing.assert_allclose(Q @ np.triu(F1[:k]), A, rtol=0, atol=1e-12 * np.abs(A).max())
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), rtol=0, atol=1e-13 * n)
    np.testing.assert_allclose(logd2, logd, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_nogil_blas.explicit_frame(F2, T2), Q, rtol=0, atol=1e-13 * n)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 200), r=st.integers(1, 30), seed=st.integers(0, 2 ** 16))
def test_applying_the_blocks_in_turn_multiplies_by_q(n, r, seed):
    rng = np.random.default_rng(seed)
    F, T = np.asfortranarray(rng.normal(size=(n, n))), np.empty((min(_nogil_blas.PANEL, n), n),
                                                                 order="F")
    _nogil_blas.householder_frame(F, T)
    M = np.asfortranarray(rng.normal(size=(r, n)))
    expected = M @ _nogil_blas.explicit_frame(F, T)
    for lo in range(0, n, _nogil_blas.PANEL):
        before = M[:, :lo].copy()
        _nogil_blas.apply_frame(F, T, M, cols=(lo, min(n, lo + _nogil_blas.PANEL)))
        np.testing.assert_array_equal(M[:, :lo], before)  # a block changes M[:, lo:] alone
    np.testing.assert_allclose(M, expected, rtol=0, atol=1e-12 * n)


def test_without_scipys_cython_lapack_a_full_spectrum_runs_the_general_loop(monkeypatch):
    """The fallback where SciPy lacks its Cython LAPACK entry points: no square-frame
    stepper, the general loop's batched factorisations; the same exponents."""
    n, B = 80, 2
    m = itermap.random_rnn(n, gain=1.3, rng=2)
    X0 = np.random.default_rng(4).normal(size=(B, n))
    assert isinstance(m.tangent_stepper(X0, np.zeros((B, n, n))).step,
                      _fused_square.FusedSquareStep)
    fused = lyapunov_spectrum(m, X0, 15, rng=0)
    monkeypatch.setattr(_nogil_blas, "_householder_routines", lambda: None)
    assert not _nogil_blas.householder_available()
    assert m.tangent_stepper(X0, np.zeros((B, n, n))) is None
    general = lyapunov_spectrum(m, X0, 15, rng=0)
    np.testing.assert_allclose(general.per_trajectory, fused.per_trajectory, rtol=0, atol=1e-9)
