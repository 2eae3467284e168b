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
        assert np.linalg.norm(A[i] @ x[i] - b[i]) <= 1e-11 * np.linalg.norm(b[i])
        cond = np.linalg.cond(A[i])
        assert np.linalg.norm(x[i] - ref) <= 1e-13 * cond * np.linalg.norm(ref)


def test_mixed_solve_singular_and_ill_conditioned_rows():
    n = _mixed.MIXED_DIM
    A = np.stack([np.eye(n)] * 3)
    A[1, :, 0] = 0.0                               # singular in float64: NaN row
    A[2] = np.diag(np.logspace(0, -12, n))         # beyond float32: the float64 fallback
    b = np.ones((3, n))
    x = _mixed.mixed_solve(A, b)
    assert np.allclose(x[0], 1.0)
    assert np.all(np.isnan(x[1]))
    np.testing.assert_allclose(x[2], np.logspace(0, 12, n), rtol=1e-10)
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
