"""Top-k frames: CholeskyQR2 / shifted CholeskyQR3 against numpy.linalg.qr, and the
reorthonormaliser's thresholds as ThreadOptions fields (issue 25)."""

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap._running import _reorth
from itermap._running._reorth import Reorthonormalizer
from itermap.analysis import lyapunov_spectrum
from itermap.threads import OPTIONS

EPS = np.finfo(np.float64).eps


def _ill_conditioned(rng, batch, n, k, log10_cond):
    """Frames ``U diag(s) V^T`` with ``s`` log-spaced over ``10^-c .. 1``: a condition
    number that no scaling of the columns undoes."""
    U = np.linalg.qr(rng.normal(size=(batch, n, k)))[0]
    V = np.linalg.qr(rng.normal(size=(batch, k, k)))[0]
    return (U * np.logspace(0, -log10_cond, k)[None, None, :]) @ np.swapaxes(V, -1, -2)


def _check_against_numpy(Y, Q, logd, R, orth_atol):
    k = Y.shape[-1]
    # orthonormal to machine precision (not to sqrt(eps))
    err = np.abs(np.swapaxes(Q, -1, -2) @ Q - np.eye(k)).max()
    assert err <= orth_atol, err
    norm = np.linalg.norm(Y, ord=2, axis=(-2, -1))
    # Y = Q R, R upper triangular, numpy's R up to the signs of its rows
    np.testing.assert_allclose(Q @ R, Y, rtol=0, atol=50 * k * EPS * norm.max())
    np.testing.assert_array_equal(np.tril(R, -1), 0.0)
    Rn = np.linalg.qr(Y)[1]
    signs = np.sign(np.diagonal(Rn, axis1=-2, axis2=-1))[..., None]
    R = np.sign(np.diagonal(R, axis1=-2, axis2=-1))[..., None] * R  # Householder's may be < 0
    np.testing.assert_allclose(np.exp(logd), np.abs(np.diagonal(Rn, axis1=-2, axis2=-1)),
                               rtol=1e-9, atol=1e3 * EPS * norm.max())
    # the rows of R: a QR's R is as well determined as kappa(Y) eps ||Y|| allows, and
    # the rows lead with |R_jj|, so compare relative to the diagonal's scale
    np.testing.assert_allclose(R, signs * Rn, rtol=0, atol=1e-6 * norm.max())


@pytest.mark.parametrize("log10_cond", [8, 10, 12, 13, 14, 15])
@pytest.mark.parametrize("batch, n, k", [(2, 256, 10), (1, 2000, 10), (2, 256, 64)])
def test_ill_conditioned_top_k_frames_against_numpy_qr(batch, n, k, log10_cond):
    Y = _ill_conditioned(np.random.default_rng(log10_cond + n + k), batch, n, k, log10_cond)
    reorth = Reorthonormalizer()
    Q, logd, R = reorth(Y, want_r=True)
    _check_against_numpy(Y, Q, logd, R, orth_atol=20 * k * EPS)
    # shifted CholeskyQR3 holds to kappa ~1e12 at least; past ~1e14 Householder decides
    if log10_cond <= 12:
        assert reorth.fallbacks == 0


@pytest.mark.parametrize("log10_cond", [8, 11, 15])
def test_ill_conditioned_frames_in_a_context(log10_cond):
    """Inside ``with``, a batch of two ill-conditioned frames of 40 columns."""
    Y = _ill_conditioned(np.random.default_rng(log10_cond), 2, 200, 40, log10_cond)
    with Reorthonormalizer() as reorth:
        Q, logd, R = reorth(Y, want_r=True)
        if log10_cond <= 11:
            assert reorth.fallbacks == 0
    _check_against_numpy(Y, Q, logd, R, orth_atol=20 * 40 * EPS)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(12, 300), k=st.integers(4, 12), log10_cond=st.floats(0.0, 16.0),
       seed=st.integers(0, 2 ** 16))
def test_any_conditioning_gives_an_orthonormal_frame(n, k, log10_cond, seed):
    Y = _ill_conditioned(np.random.default_rng(seed), 1, n, k, log10_cond)
    passes = []
    loop = _reorth.cholesky_qr

    def counted(*args, **kw):
        done = loop(*args, **kw)
        passes.append(len(done[0]))
        return done

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_reorth, "cholesky_qr", counted)
        Q, logd, R = Reorthonormalizer()(Y, want_r=True)
    # one pass only where it leaves Q orthonormal to ~1e-3 sqrt(eps) (at kappa < 1e3
    # always; above, where the column norms it left say so); more passes give eps
    one_pass = log10_cond < 3 or passes == [1]
    atol = 2e-11 if one_pass else 20 * k * EPS
    _check_against_numpy(Y, Q, logd, R, orth_atol=atol)


def test_passes_needed_follows_the_condition_number():
    k = 10
    assert _reorth.passes_needed(1.0, EPS, k) == 1
    assert _reorth.passes_needed(1e6, EPS, k) == 2  # eps kappa^2 = 2e-10
    assert _reorth.passes_needed(1e6, EPS, k, dev=1e-14) == 1  # measured: one was enough
    assert _reorth.passes_needed(1e16, EPS, k) == 3  # past CholeskyQR2: shifted
    assert _reorth.passes_needed(float("nan"), EPS, k) == 3
    # the shift of Fukaya et al. (2020): 11 (n k + k (k + 1)) u ||Y||_F^2
    assert _reorth.shift_of(2.0, 100, 10, EPS) == pytest.approx(11 * 1110 * EPS / 2 * 2.0)


def _numpy_loop(m, x0, Q0, steps):
    """The plain loop: J Q with J = diag(f'(z)) W, numpy.linalg.qr every step."""
    W = np.asarray(m.block_matrix.to_dense())
    act = m.activations[0]
    acc = np.zeros(Q0.shape[-1])
    x, Q = x0, Q0
    for _ in range(steps):
        z = W @ x
        x, Q = act.apply(z, np), act.derivative(z, np)[:, None] * (W @ Q)
        Q, R = np.linalg.qr(Q)
        acc += np.log(np.abs(np.diagonal(R)))
    return acc / steps


def _fallbacks(caplog):
    return sum("Householder" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("gain", [1.5, 2.0, 3.0])
@pytest.mark.parametrize("n, k", [(200, 130), (120, 12)])
def test_top_k_spectrum_at_chaotic_gains_matches_a_numpy_qr_loop(gain, n, k, caplog):
    """One trajectory, top-k, through the batched loop."""
    caplog.set_level(logging.DEBUG, logger=_reorth.__name__)
    m = itermap.random_rnn(n, gain=gain, rng=int(gain * 10))
    x0 = np.random.default_rng(1).normal(size=n)
    T = 60
    res = lyapunov_spectrum(m, x0, T, k=k, rng=0)
    assert _fallbacks(caplog) == 0  # no step needed Householder
    Q0 = np.linalg.qr(np.random.default_rng(0).standard_normal((1, n, k)))[0][0]
    ref = np.sort(_numpy_loop(m, x0, Q0, T))[::-1]
    # two stable QRs: each R_jj agrees to eps ||J Q|| / |R_jj| relative, which grows with
    # the gain (saturated units: f' ~ 1e-8 at gain 3)
    tol = {1.5: 1e-11, 2.0: 1e-10, 3.0: 1e-8}[gain]
    np.testing.assert_allclose(res.exponents, ref, rtol=0, atol=tol * (1 + np.abs(ref).max()))
    Q = res.tangents[0]
    assert np.abs(Q.T @ Q - np.eye(k)).max() <= 2e-11


# -- the thresholds are options: they change the path, never the result -------------------
def _frames(n=200, k=40, batch=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, n, k))


def test_qr_small_frame_work_decides_whether_the_loop_holds_blas(monkeypatch):
    Y = _frames(batch=1)
    held = {}
    for work in (OPTIONS.qr_small_frame_work, 1):
        monkeypatch.setattr(OPTIONS, "qr_small_frame_work", work)
        with Reorthonormalizer(pool_products=True) as reorth:
            out = reorth(Y, want_r=True)
            held[work] = (reorth._blas_held, out)
    (small, a), (large, b) = held.values()
    assert small and not large  # n k^2 = 320000: below the default, above 1
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, atol=1e-12)


@pytest.mark.parametrize("k", [10, 20])
def test_after_a_shifted_frame_the_next_ones_start_shifted_and_stay_exact(k, monkeypatch):
    """The frames of one run are alike: the plain first pass is skipped for a while."""
    rng = np.random.default_rng(k)
    reorth = Reorthonormalizer()
    reorth(_ill_conditioned(rng, 2, 150, k, 11.0))
    assert reorth.shifted == _reorth._FALLBACK_HOLD and reorth.fallbacks == 0
    for i in range(_reorth._FALLBACK_HOLD):
        Y = _ill_conditioned(rng, 2, 150, k, 2.0)  # well conditioned, factorised shifted
        _check_against_numpy(Y, *reorth(Y, want_r=True), orth_atol=20 * k * EPS)
        assert reorth.shifted == _reorth._FALLBACK_HOLD - 1 - i
    Y = _ill_conditioned(rng, 2, 150, k, 2.0)
    _check_against_numpy(Y, *reorth(Y, want_r=True), orth_atol=2e-11)
    assert reorth.shifted == 0
