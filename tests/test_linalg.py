"""The batched solves and eigenvalues (itermap._running._linalg) against plain loops of
np.linalg."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itermap._running._linalg import (
    batched_eigvals,
    batched_solve,
    damped_normal_solve,
)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 200), n=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_batched_solve_matches_a_loop(rows, n, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((rows, n, n)) + n * np.eye(n)   # well conditioned
    b = rng.standard_normal((rows, n))
    x = batched_solve(A, b)
    ref = np.stack([np.linalg.solve(A[i], b[i]) for i in range(rows)])
    assert x.shape == (rows, n)
    np.testing.assert_allclose(x, ref, rtol=1e-10, atol=1e-12)


def test_batched_solve_keeps_row_order_and_float32():
    rng = np.random.default_rng(0)
    A = (rng.standard_normal((256, 32, 32)) + 32 * np.eye(32)).astype(np.float32)
    b = rng.standard_normal((256, 32)).astype(np.float32)
    x = batched_solve(A, b)
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.einsum("kij,kj->ki", A, x), b, rtol=1e-4, atol=1e-4)


def test_batched_eigvals_match_a_loop():
    # the eigenvalues of each matrix, in row order
    rng = np.random.default_rng(4)
    J = rng.standard_normal((64, 48, 48))
    ref = [np.sort_complex(np.linalg.eigvals(J[i])) for i in range(64)]
    ev = batched_eigvals(J)
    assert ev.shape == (64, 48) and ev.dtype == np.complex128
    for i in range(64):
        np.testing.assert_allclose(np.sort_complex(ev[i]), ref[i], rtol=1e-10, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 160), n=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_damped_normal_solve_matches_a_loop(rows, n, seed):
    # the Levenberg-Marquardt systems (A^T A + lam I) x = b
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((rows, n, n))
    lam = rng.uniform(0.1, 2.0, rows)
    b = rng.standard_normal((rows, n))
    x = damped_normal_solve(A, lam, b)
    ref = np.stack([np.linalg.solve(A[i].T @ A[i] + lam[i] * np.eye(n), b[i])
                    for i in range(rows)])
    assert x.shape == (rows, n)
    np.testing.assert_allclose(x, ref, rtol=1e-8, atol=1e-10)


def test_singular_matrix_raises_like_numpy():
    A = np.tile(np.eye(20), (128, 1, 1))
    A[77] = 0.0
    with pytest.raises(np.linalg.LinAlgError):
        batched_solve(A, np.ones((128, 20)))


def test_blas_limit_is_restored_after_the_search():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import itermap
    from itermap.analysis import find_fixed_points, sample_states

    before = [d["num_threads"] for d in threadpoolctl.threadpool_info()]
    m = itermap.random_rnn(48, gain=1.5, rng=0)
    find_fixed_points(m, sample_states(m, 128, steps=10, rng=1))
    assert [d["num_threads"] for d in threadpoolctl.threadpool_info()] == before
