"""The mixed-precision solve of the dense search's large Newton systems (float32 LU,
float64 refinement), checked against LAPACK's float64 solve and against the map itself."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import find_fixed_points, sample_states
from itermap.analysis.fixed_points import _common, _mixed


def _newton_like(rng, n, k, gain=1.5):
    """Newton matrices of a tanh network, ``diag(1 - tanh^2) W - I``, and right sides."""
    W = gain * rng.normal(size=(n, n)) / np.sqrt(n)
    A = np.stack([(1.0 - np.tanh(rng.normal(size=n)) ** 2)[:, None] * W - np.eye(n)
                  for _ in range(k)])
    return A, rng.normal(size=(k, n))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), gain=st.sampled_from([0.5, 1.5, 3.0]),
       k=st.integers(1, 3))
def test_mixed_solve_matches_float64_lapack(seed, gain, k):
    rng = np.random.default_rng(seed)
    A, b = _newton_like(rng, _mixed.MIXED_DIM, k, gain)
    x = _mixed.mixed_solve(A, b)
    for i in range(k):
        ref = scipy.linalg.solve(A[i], b[i])
        # the refinement's own target, checked as a residual computed here
        assert np.linalg.norm(A[i] @ x[i] - b[i]) <= 1e-9 * np.linalg.norm(b[i])
        cond = np.linalg.cond(A[i])
        assert np.linalg.norm(x[i] - ref) <= 1e-8 * cond * np.linalg.norm(ref)


def test_mixed_solve_singular_and_ill_conditioned_rows(monkeypatch):
    n = _mixed.MIXED_DIM
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = np.stack([np.eye(n)] * 3)
    A[1, :, 0] = 0.0                               # singular in float64: NaN row
    A[2] = (Q * np.logspace(0, -10, n)) @ Q.T      # cond 1e10, beyond float32
    b = np.ones((3, n))
    doubles = []
    real = _mixed._in_double
    monkeypatch.setattr(_mixed, "_in_double", lambda *a: doubles.append(1) or real(*a))
    x = _mixed.mixed_solve(A, b)
    assert doubles                                 # the float64 fallback ran
    assert np.allclose(x[0], 1.0)
    assert np.all(np.isnan(x[1]))
    ref = scipy.linalg.solve(A[2], b[2])
    np.testing.assert_allclose(x[2], ref, rtol=1e-4)
    # as good as float64 LAPACK can do here (cond 1e10: a relative residual near 1e-7)
    assert np.linalg.norm(A[2] @ x[2] - b[2]) <= 10 * np.linalg.norm(A[2] @ ref - b[2])
    # and through the search's solve, which keeps its contract (NaN rows, no raise)
    x2 = _common._solve(np, A, b)
    np.testing.assert_array_equal(np.isnan(x2), np.isnan(x))


def test_mixed_path_rule():
    n = _mixed.MIXED_DIM
    assert _mixed.applies(np.zeros((2, n, n)))
    assert not _mixed.applies(np.zeros((2, n - 1, n - 1)))
    assert not _mixed.applies(np.zeros((2, n, n), dtype=np.float32))


def test_search_on_the_mixed_path_finds_true_points(monkeypatch):
    """A network past the rule: the search takes the mixed path, and every point it
    returns is a zero of tanh(W x) - x computed here from W."""
    calls = []
    real = _mixed.mixed_solve

    def counted(A, b):
        calls.append(A.shape)
        return real(A, b)

    monkeypatch.setattr(_mixed, "mixed_solve", counted)
    m = itermap.random_rnn(_mixed.MIXED_DIM, gain=1.5, rng=3)
    W = m.block_matrix.to_dense()
    x0 = sample_states(m, 4, steps=50, noise=0.5, rng=4)
    fp = find_fixed_points(m, x0, progress=False, patience=50, deflation=False)
    assert calls
    P = np.asarray(fp.points)
    assert len(fp) >= 1
    assert np.all(np.linalg.norm(np.tanh(P @ W.T) - P, axis=1) <= 1e-10)


@pytest.mark.parametrize("n", [_mixed.MIXED_DIM - 1, _mixed.MIXED_DIM])
def test_mixed_and_double_solves_agree_at_the_threshold(n):
    rng = np.random.default_rng(n)
    A, b = _newton_like(rng, n, 2)
    np.testing.assert_allclose(_common._solve(np, A.copy(), b),
                               np.linalg.solve(A, b[..., None])[..., 0], rtol=1e-8,
                               atol=1e-10)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), lam=st.sampled_from([1e-6, 1e-2, 1.0]))
def test_mixed_damped_solve_matches_the_normal_equations(seed, lam):
    rng = np.random.default_rng(seed)
    A, b = _newton_like(rng, _mixed.MIXED_DIM, 2)
    lams = np.array([lam, 10 * lam])
    x = _mixed.mixed_damped_solve(A, lams, b)
    for i in range(2):
        # solved here in float64 by scipy, from A^T A + lam I formed independently
        N = A[i].T @ A[i] + lams[i] * np.eye(A.shape[-1])
        ref = scipy.linalg.solve(N, b[i], assume_a="pos")
        assert np.linalg.norm(N @ x[i] - b[i]) <= 1e-8 * np.linalg.norm(b[i])
        assert np.linalg.norm(x[i] - ref) <= 1e-8 * np.linalg.cond(N) * np.linalg.norm(ref)


def test_mixed_damped_solve_singular_normal_matrix_falls_back():
    n = _mixed.MIXED_DIM
    A = np.stack([np.eye(n), np.eye(n)])
    A[1, :, 0] = 0.0                 # A^T A singular; lam = 0 leaves it so
    b = np.ones((2, n))
    b[1, 0] = 0.0                    # consistent right side
    with pytest.raises(np.linalg.LinAlgError):
        _mixed.mixed_damped_solve(A, np.array([0.0, 0.0]), b)
    x = _common._damped_solve(np, A, np.array([0.0, 1e-3]), b, np.eye(n))
    np.testing.assert_allclose(x[0], 1.0)
    np.testing.assert_allclose(x[1, 1:], 1.0 / (1.0 + 1e-3))
