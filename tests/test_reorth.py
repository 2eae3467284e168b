"""CholeskyQR2 against Householder QR (NumPy's) on frames of every conditioning."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itermap._running import _nogil_blas, _reorth
from itermap._running._reorth import Reorthonormalizer
from tests.conftest import to_np


def _assert_close_diagonals(logd, ref, Y, atol):
    """``log|R_jj|`` against a reference: ``atol``, or the backward error of a stable QR
    (``|R_jj|`` off by ``1e3 eps ||Y||_2``) where that is larger."""
    eps = np.finfo(np.float64).eps
    norm = np.linalg.norm(Y, ord=2, axis=(-2, -1))[..., None]
    tol = atol + 1e3 * eps * norm / np.exp(ref)
    bad = np.abs(logd - ref) > tol
    assert not bad.any(), (logd[bad], ref[bad], tol[bad])


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
    # largest, or to the backward error eps ||Y|| of a stable QR (where |R_jj| is that small)
    scale = np.abs(ref).max() + 1.0
    _assert_close_diagonals(logd, ref, Y, 1e-7 * scale)
    eye = np.broadcast_to(np.eye(k), (batch, k, k))
    # one pass where it leaves Q orthonormal to 1e-3 sqrt(eps), two or three elsewhere
    np.testing.assert_allclose(np.swapaxes(Q, -1, -2) @ Q, eye, atol=2e-11)
    np.testing.assert_allclose(Q @ R, Y, atol=1e-12 * np.abs(Y).max() * n)


@pytest.mark.parametrize("batch, decay", [(1, 0.0), (3, 0.05), (4, 0.15)])
def test_large_frames_cholesky_qr_matches_householder(batch, decay):
    """k >= 128: batched CholeskyQR2 or shifted CholeskyQR3, as for small frames."""
    n, k = 180, 130
    rng = np.random.default_rng(batch)
    U = np.linalg.qr(rng.normal(size=(batch, n, k)))[0]
    V = np.linalg.qr(rng.normal(size=(k, k)))[0]
    Y = (U * np.exp(-decay * np.arange(k))) @ V  # condition numbers up to e^19.4
    with Reorthonormalizer() as reorth:
        Q, logd, R = reorth(Y, want_r=True)
        assert reorth.fallbacks == 0  # shifted CholeskyQR3 past CholeskyQR2's kappa ~1e7
    _, R_ref = np.linalg.qr(Y)
    ref = np.log(np.abs(np.diagonal(R_ref, axis1=-2, axis2=-1)))
    _assert_close_diagonals(logd, ref, Y, 1e-7 * (np.abs(ref).max() + 1.0))
    np.testing.assert_allclose(np.swapaxes(Q, -1, -2) @ Q, np.broadcast_to(np.eye(k), R.shape),
                               atol=1e-13)
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


# -- square frames kept as Householder reflectors (the dense full spectrum) --------------
def _t_factors(k):
    """The ``T`` factors' buffer of a frame of ``k`` columns."""
    return np.empty((min(_nogil_blas.PANEL, k), k), order="F")


def _frame(rng, n, k, log10_cond):
    """An (n, k) Fortran frame with singular values spread log-uniformly over 10^-c..1."""
    U = np.linalg.qr(rng.normal(size=(n, k)))[0]
    V = np.linalg.qr(rng.normal(size=(k, k)))[0]
    s = np.logspace(0, -log10_cond, k)
    return np.asfortranarray((U * s) @ V)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 120), k=st.integers(1, 120), log10_cond=st.floats(0.0, 14.0),
       seed=st.integers(0, 2 ** 16), rows=st.booleans())
def test_householder_frame_is_backward_stable_whatever_the_conditioning(n, k, log10_cond,
                                                                        seed, rows):
    k = min(k, n)
    rng = np.random.default_rng(seed)
    A = _frame(rng, n, k, log10_cond)
    if rows:  # a graded frame: rows scaled over 10^-c..1, as diag(f') scales W Q
        A = np.asfortranarray(A * np.logspace(0, -log10_cond, n)[rng.permutation(n), None])
    F, T = A.copy(order="F"), _t_factors(k)
    logd = _nogil_blas.householder_frame(F, T)
    R = np.triu(F[:k])
    Q = _nogil_blas.explicit_frame(F, T)
    eps, norm = np.finfo(float).eps, np.linalg.norm(A, 2)
    # orthogonal to machine precision and Q R = A to eps ||A||, at any conditioning
    assert np.abs(Q.T @ Q - np.eye(k)).max() <= 20 * n * eps
    assert np.abs(Q @ R - A).max() <= 20 * n * eps * norm
    np.testing.assert_array_equal(logd, np.log(np.abs(np.diagonal(R))))
    # R_jj against NumPy's Householder R, to eps ||A|| (their relative accuracy as good
    # as the conditioning allows)
    R_ref = np.linalg.qr(A, mode="r")
    np.testing.assert_allclose(np.abs(np.diagonal(R)), np.abs(np.diagonal(R_ref)), rtol=0,
                               atol=20 * n * eps * norm)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 90), r=st.integers(1, 40), lo=st.integers(0, 39),
       seed=st.integers(0, 2 ** 16))
def test_apply_frame_multiplies_by_q_without_forming_it(n, r, lo, seed):
    rng = np.random.default_rng(seed)
    F, T = _frame(rng, n, n, 8.0), _t_factors(n)
    _nogil_blas.householder_frame(F, T)
    Q = _nogil_blas.explicit_frame(F, T)
    M = np.asfortranarray(rng.normal(size=(40, n)))
    expected = M @ Q
    before = M.copy()
    hi = max(lo + 1, min(40, lo + r))
    _nogil_blas.apply_frame(F, T, M[lo:hi])  # a block of rows
    np.testing.assert_allclose(M[lo:hi], expected[lo:hi], rtol=0, atol=1e-13 * n)
    np.testing.assert_array_equal(np.delete(M, np.s_[lo:hi], 0),
                                  np.delete(before, np.s_[lo:hi], 0))


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros((4, 4), dtype=np.float32, order="F"),
                                 np.zeros(16), np.asfortranarray(np.zeros((8, 4)))[::2]])
def test_householder_frame_refuses_arrays_it_would_misread(bad):
    with pytest.raises(ValueError, match="F must be"):
        _nogil_blas.householder_frame(bad, _t_factors(4))
    with pytest.raises(ValueError, match="at most as many columns"):
        _nogil_blas.householder_frame(np.zeros((3, 4), order="F"), _t_factors(4))
    with pytest.raises(ValueError, match="square frame"):
        _nogil_blas.apply_frame(np.zeros((5, 4), order="F"), _t_factors(4),
                            np.zeros((2, 5), order="F"))
    with pytest.raises(ValueError, match="M must be"):
        _nogil_blas.apply_frame(np.zeros((4, 4), order="F"), _t_factors(4), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="T must have shape"):
        _nogil_blas.householder_frame(np.zeros((4, 4), order="F"), np.zeros((4, 3), order="F"))


def _numpy_qr_loop(m, X0, Q0, steps, every=1):
    """The plain loop: J = diag(f'(z)) W formed, numpy.linalg.qr every ``every`` steps and
    at the end; a frame with m < k nonzero rows has R_jj = 0 for j >= m (the package's
    rule for an exact collapse, see ``_exact_rank``)."""
    W, bias = np.asarray(m.block_matrix.to_dense()), m.bias
    act = m.activations[0]
    acc = np.zeros(Q0.shape[:2])
    for b in range(len(X0)):
        x, Q = X0[b], Q0[b]
        for t in range(1, steps + 1):
            z = W @ x + (0.0 if bias is None else bias)
            x = act.apply(z, np)
            Q = act.derivative(z, np)[:, None] * (W @ Q)
            if t % every and t != steps:
                continue
            rows = np.count_nonzero(np.any(Q != 0, axis=1))
            Q, R = np.linalg.qr(Q)
            logd = np.log(np.abs(np.diagonal(R)))
            logd[rows:] = -np.inf
            acc[b] += logd
    return np.sort(acc / steps, axis=1)[:, ::-1]


def _square_steps(monkeypatch):
    from itermap._running import _fused_square

    calls = []
    advance = _fused_square.FusedSquareStep.advance

    def counted(self, **kw):
        calls.append(self.x.shape[0])
        return advance(self, **kw)

    monkeypatch.setattr(_fused_square.FusedSquareStep, "advance", counted)
    return calls


@pytest.mark.parametrize("gain", [1.2, 1.5, 2.0, 3.0, 5.0])
@pytest.mark.parametrize("seed, batch", [(0, 1), (1, 2), (2, 3)])
def test_full_spectrum_of_square_frames_matches_a_numpy_qr_loop(gain, seed, batch, monkeypatch):
    import itermap
    from itermap.analysis import lyapunov_spectrum

    calls = _square_steps(monkeypatch)
    n, steps = 72, 60
    m = itermap.random_rnn(n, gain=gain, rng=seed)
    X0 = np.random.default_rng(seed + 10).normal(size=(batch, n))
    res = lyapunov_spectrum(m, X0, steps, rng=seed)
    assert calls == [batch] * steps  # every step through the reflectors
    Q0 = np.linalg.qr(np.random.default_rng(seed).standard_normal((batch, n, n)))[0]
    ref = _numpy_qr_loop(m, X0, Q0, steps)
    got = res.per_trajectory
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref))
    fin = np.isfinite(ref)
    # two backward-stable QRs: each R_jj agrees to eps ||J Q|| / |R_jj| relative, which
    # grows with the gain (saturated units: f' ~ 1e-8 at gain 3, ~1e-13 at gain 5)
    tol = {1.2: 1e-12, 1.5: 1e-12, 2.0: 1e-11, 3.0: 1e-8, 5.0: 1e-5}[gain]
    # and below e^-15 per step a direction's R_jj nears eps ||J Q|| on some steps, where
    # any two backward-stable QRs differ by O(1) in that step's log: over 60 steps up to
    # ~1/60 in the mean, ~1e-3 relative at -19 (the BLAS's summation order decides which)
    deep = ref < -15.0
    # the trajectory itself is chaotic: a rounding apart (another tanh or BLAS kernel on
    # another CPU) grows by e^(lambda_1 steps), 6e12 at gain 5 (lambda_1 ~ 0.49), and the
    # two loops' exponents then differ by ~1e-3 whatever their QRs (the plain loop
    # against itself from a start moved by 1e-16: 8e-4); a few times that bound
    chaos = 4 * np.finfo(float).eps * np.exp(max(ref[fin].max(), 0.0) * steps)
    np.testing.assert_allclose(got[fin & ~deep], ref[fin & ~deep], rtol=0,
                               atol=max(tol, chaos) * (1 + np.abs(ref[fin]).max()))
    np.testing.assert_allclose(got[fin & deep], ref[fin & deep], rtol=5e-3)
    Q = res.tangents
    np.testing.assert_allclose(np.swapaxes(Q, -1, -2) @ Q, np.broadcast_to(np.eye(n), Q.shape),
                               rtol=0, atol=50 * n * np.finfo(float).eps)


@pytest.mark.parametrize("gain", [1.2, 1.5])
def test_square_frames_with_spaced_qrs_match_the_numpy_loop(gain, monkeypatch):
    # steps without a QR leave the frame explicit: the next product is a plain matmul
    import itermap
    from itermap.analysis import lyapunov_spectrum

    calls = _square_steps(monkeypatch)
    n, steps, every = 64, 40, 3
    m = itermap.random_rnn(n, gain=gain, rng=4)
    X0 = np.random.default_rng(5).normal(size=(2, n))
    res = lyapunov_spectrum(m, X0, steps, reorthonormalize_every=every, rng=6)
    assert len(calls) == steps
    Q0 = np.linalg.qr(np.random.default_rng(6).standard_normal((2, n, n)))[0]
    ref = _numpy_qr_loop(m, X0, Q0, steps, every=every)
    np.testing.assert_allclose(res.per_trajectory, ref, rtol=0,
                               atol=1e-10 * (1 + np.abs(ref).max()))


def test_square_frames_collapse_exactly_on_dead_units_and_resume(monkeypatch):
    # ReLU units a negative bias kills have zero rows in J: R_jj = 0 exactly, as the
    # plain loop's rule says; a continued run is the same as one long run
    import itermap
    from itermap.analysis import lyapunov_spectrum

    calls = _square_steps(monkeypatch)
    n = 64
    W = np.random.default_rng(7).normal(size=(n, n)) * 1.5 / np.sqrt(n)
    bias = np.where(np.arange(n) < 5, -50.0, 0.1)
    m = itermap.IterativeMap(W, bias=bias, activation="relu")
    X0 = np.random.default_rng(8).normal(size=(1, n))
    whole = lyapunov_spectrum(m, X0, 30, rng=9)
    Q0 = np.linalg.qr(np.random.default_rng(9).standard_normal((1, n, n)))[0]
    ref = _numpy_qr_loop(m, X0, Q0, 30)
    assert np.isneginf(whole.per_trajectory).sum() == np.isneginf(ref).sum() >= 5
    fin = np.isfinite(ref)
    np.testing.assert_allclose(whole.per_trajectory[fin], ref[fin], atol=1e-10)
    first = lyapunov_spectrum(m, X0, 12, rng=9)
    first.tangents = np.asfortranarray(first.tangents)  # a layout the step could reuse
    kept = first.tangents.copy()
    resumed = lyapunov_spectrum(m, None, 18, continue_from=first)
    np.testing.assert_array_equal(first.tangents, kept)  # the earlier result untouched
    np.testing.assert_allclose(resumed.per_trajectory[fin], whole.per_trajectory[fin],
                               atol=1e-12)
    assert len(calls) == 60


def test_a_network_hands_out_square_frame_steps_only_where_they_apply():
    import itermap
    from itermap._running._fused_square import FusedSquareStep

    def square(m, x, Q):
        stepper = m.tangent_stepper(x, Q)
        return isinstance(getattr(stepper, "step", None), FusedSquareStep)

    W = np.random.default_rng(0).normal(size=(70, 70)) / np.sqrt(70)
    m = itermap.IterativeMap(W, None, "tanh")
    x, Q = np.zeros((2, 70)), np.broadcast_to(np.eye(70), (2, 70, 70)).copy()
    assert square(m, x, Q) and square(m, x[:1], Q[:1])
    assert not square(m, x, Q[..., :69])  # top-k
    assert not square(m, x.astype(np.float32), Q.astype(np.float32))
    small = itermap.IterativeMap(W[:8, :8], None, "tanh")
    assert not square(small, x[:, :8], Q[:, :8, :8])
    assert not square(itermap.random_rnn(70, density=0.1, rng=0), x, Q)  # sparse
    driven = itermap.IterativeMap(W, None, "tanh", sizes=[10, 60], input_block=0)
    assert not square(driven, x, Q)
    assert not square(itermap.IterativeMap(W, None, "tanh", leak=0.5), x, Q)
