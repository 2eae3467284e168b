"""CholeskyQR2 against Householder QR (NumPy's) on frames of every conditioning."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itermap import _reorth
from itermap._reorth import Reorthonormalizer
from tests.conftest import to_np


@settings(max_examples=60, deadline=None)
@given(n=st.integers(8, 400), k=st.integers(4, 40), decay=st.floats(0.0, 3.0),
       batch=st.integers(1, 3), seed=st.integers(0, 2 ** 16))
def test_cholesky_qr_matches_householder_whatever_the_conditioning(n, k, decay, batch, seed):
    k = min(k, n)
    rng = np.random.default_rng(seed)
    # singular values exp(-decay j): condition numbers from 1 to e^117
    U = np.linalg.qr(rng.normal(size=(batch, n, k)))[0]
    V = np.linalg.qr(rng.normal(size=(k, k)))[0]
    Y = (U * np.exp(-decay * np.arange(k))) @ V
    Q, logd, R = Reorthonormalizer()(Y, want_r=True)
    _, R_ref = np.linalg.qr(Y)
    ref = np.log(np.abs(np.diagonal(R_ref, axis1=-2, axis2=-1)))
    # R_jj from any QR of Y agree up to sign; their logs to rounding relative to the
    # largest (Householder's own error is eps ||Y||)
    scale = np.abs(ref).max() + 1.0
    np.testing.assert_allclose(logd, ref, rtol=0, atol=1e-7 * scale)
    eye = np.broadcast_to(np.eye(k), (batch, k, k))
    np.testing.assert_allclose(np.swapaxes(Q, -1, -2) @ Q, eye, atol=1e-7)
    np.testing.assert_allclose(Q @ R, Y, atol=1e-12 * np.abs(Y).max() * n)


@pytest.mark.parametrize("frames_in_threads", [False, True])
@pytest.mark.parametrize("batch, decay", [(1, 0.0), (3, 0.05), (4, 0.15)])
def test_per_matrix_cholesky_qr_matches_householder(batch, decay, frames_in_threads,
                                                    monkeypatch):
    """k >= 128: one frame at a time, with SciPy's wrappers or (in threads) without the GIL."""
    threads = []  # the thread each frame was factorised on
    one = _reorth._chol_one

    def recorded(*args):
        threads.append(threading.current_thread().name)
        return one(*args)

    monkeypatch.setattr(_reorth, "_chol_one", recorded)
    monkeypatch.setattr(_reorth, "n_threads", lambda: 2)
    n, k = 180, 130
    rng = np.random.default_rng(batch)
    U = np.linalg.qr(rng.normal(size=(batch, n, k)))[0]
    V = np.linalg.qr(rng.normal(size=(k, k)))[0]
    Y = (U * np.exp(-decay * np.arange(k))) @ V  # condition numbers up to e^19.4
    with Reorthonormalizer(frames_in_threads=frames_in_threads) as reorth:
        Q, logd, R = reorth(Y, want_r=True)
        assert reorth.fallbacks == (1 if decay > 0.1 else 0)  # kappa^2 past 0.01 / eps
    split = frames_in_threads and batch > 1
    # in threads every frame is factorised; one after another, up to the first refusal
    assert len(threads) == (batch if split or decay < 0.1 else 1)
    assert any(name.startswith("itermap-") for name in threads) == split
    _, R_ref = np.linalg.qr(Y)
    ref = np.log(np.abs(np.diagonal(R_ref, axis1=-2, axis2=-1)))
    np.testing.assert_allclose(logd, ref, rtol=0, atol=1e-7 * (np.abs(ref).max() + 1.0))
    np.testing.assert_allclose(np.swapaxes(Q, -1, -2) @ Q, np.broadcast_to(np.eye(k), R.shape),
                               atol=1e-9)
    np.testing.assert_allclose(Q @ R, Y, atol=1e-12 * np.abs(Y).max() * n)


def test_nogil_routines_against_numpy():
    from itermap import _nogil_blas as nb

    assert nb.available()
    rng = np.random.default_rng(0)
    Y1, Y2 = rng.normal(size=(30, 5)), rng.normal(size=(20, 5))
    G = np.zeros((5, 5))
    nb.gram_upper(Y1, G)
    nb.gram_upper(Y2, G, add=True)  # G accumulates: the Gram matrix of the stacked rows
    ref = Y1.T @ Y1 + Y2.T @ Y2
    np.testing.assert_allclose(np.tril(G), np.tril(ref), rtol=1e-13)
    assert nb.cholesky_upper(G) == 0
    R = np.triu(G.T)
    np.testing.assert_allclose(R.T @ R, ref, rtol=1e-12)
    Q = np.vstack([Y1, Y2])
    nb.solve_upper_transposed(G, Q)
    np.testing.assert_allclose(Q @ R, np.vstack([Y1, Y2]), atol=1e-12)
    np.testing.assert_allclose(Q.T @ Q, np.eye(5), atol=1e-12)
    # not positive definite: LAPACK's info names the failing minor
    S = -np.eye(3)
    assert nb.cholesky_upper(S) == 1


def test_nogil_routines_on_the_leading_columns_of_wider_rows():
    from itermap import _nogil_blas as nb

    rng = np.random.default_rng(1)
    wide = rng.normal(size=(40, 7))
    Y = wide[:, 1:6]  # row stride 7, 5 columns: BLAS's leading dimension
    G = np.zeros((5, 5))
    nb.gram_upper(Y, G)
    np.testing.assert_allclose(np.tril(G), np.tril(Y.T @ Y), rtol=1e-13)
    assert nb.cholesky_upper(G) == 0
    before = wide.copy()
    nb.solve_upper_transposed(G, Y)
    np.testing.assert_allclose(Y.T @ Y, np.eye(5), atol=1e-12)
    np.testing.assert_array_equal(wide[:, [0, 6]], before[:, [0, 6]])  # the rest untouched


@pytest.mark.parametrize("bad", [np.zeros((4, 3), dtype=np.float32),
                                 np.asfortranarray(np.zeros((4, 3))),
                                 np.zeros((4, 6))[:, ::2], np.zeros(12), np.zeros((4, 3))[::-1]])
def test_nogil_routines_refuse_arrays_they_would_misread(bad):
    from itermap import _nogil_blas as nb

    with pytest.raises(ValueError, match="Y must be a writeable C-ordered float64"):
        nb.gram_upper(bad, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="G must be"):
        nb.cholesky_upper(np.asfortranarray(np.eye(3))[:, :2])
    with pytest.raises(ValueError, match=r"G must be .* shape \(3, 3\)"):
        nb.solve_upper_transposed(np.zeros((2, 2)), np.zeros((4, 3)))


def test_large_frames_off_numpy_factorise_one_matrix_at_a_time(monkeypatch):
    # the per-matrix path CuPy takes past _BATCHED_MAX_K columns, run on array_api_strict
    # with the limit lowered: the same Q and log|R_jj| as Householder (NumPy's)
    xps = pytest.importorskip("array_api_strict")
    calls = []
    per_matrix = _reorth._per_matrix

    def counted(xp, fn, A):
        calls.append(A.shape)
        return per_matrix(xp, fn, A)

    monkeypatch.setattr(_reorth, "_BATCHED_MAX_K", 3)
    monkeypatch.setattr(_reorth, "_per_matrix", counted)
    rng = np.random.default_rng(2)
    Y = rng.normal(size=(3, 9, 5)) * np.exp(-0.5 * np.arange(5))
    Q, logd, _ = Reorthonormalizer()(xps.asarray(Y))
    Qn, logdn = to_np(Q), to_np(logd)
    _, R_ref = np.linalg.qr(Y)
    np.testing.assert_allclose(logdn, np.log(np.abs(np.diagonal(R_ref, axis1=-2, axis2=-1))),
                               atol=1e-12)
    np.testing.assert_allclose(np.swapaxes(Qn, -1, -2) @ Qn, np.broadcast_to(np.eye(5), (3, 5, 5)),
                               atol=1e-12)
    assert calls and all(s == (3, 5, 5) for s in calls)  # Cholesky and inverse, per matrix
