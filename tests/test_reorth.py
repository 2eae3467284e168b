"""CholeskyQR2 against Householder QR (NumPy's) on frames of every conditioning."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itermap.analysis import _reorth
from itermap.analysis._reorth import Reorthonormalizer
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
