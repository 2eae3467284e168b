"""The dense search on small NumPy maps (issues 25, 26): BLAS held to one thread while it
runs and restored after, NumPy's own namespace giving what array_api_compat's gives, and
the N = 64 points checked against the weights and a plain loop of scipy's hybr."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

import itermap
from itermap.analysis import find_fixed_points, sample_states
from itermap.analysis.fixed_points import _dense, _search

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads():
    return sorted(lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                  if lib["user_api"] == "blas")


def _recording_solve(monkeypatch, seen):
    solve = _search._solve

    def recorded(xp, A, b):
        if not seen:                       # threadpool_info is slow: the first call only
            seen.append(_blas_threads())
        return solve(xp, A, b)

    monkeypatch.setattr(_search, "_solve", recorded)


@pytest.mark.parametrize("n", [64, 200, 600])
def test_blas_is_held_to_one_thread_on_small_maps_and_restored(monkeypatch, n):
    before = _blas_threads()
    if max(before) < 2:
        with threadpoolctl.threadpool_limits(2, user_api="blas"):
            before = _blas_threads()
            _check_threads(monkeypatch, n, before)
    else:
        _check_threads(monkeypatch, n, before)


def _check_threads(monkeypatch, n, before):
    seen: list = []
    _recording_solve(monkeypatch, seen)
    m = itermap.random_rnn(n, gain=1.5, rng=0)
    find_fixed_points(m, np.asarray(sample_states(m, 4, rng=1)), progress=False,
                      patience=0, deflation=False, max_iter=3)
    assert seen, "the Newton solve never ran"
    # at most 512 units: one thread; above: the threads the caller had
    assert seen[0] == ([1] * len(before) if n <= _dense._ONE_THREAD_DIM else before)
    assert _blas_threads() == before


@pytest.mark.parametrize("gain,seed", [(1.5, 0), (2.0, 1), (3.0, 2)])
def test_numpy_namespace_gives_what_the_array_api_wrappers_give(monkeypatch, gain, seed):
    m = itermap.random_rnn(64, gain=gain, rng=seed)
    X0 = np.asarray(sample_states(m, 24, steps=50, noise=0.5, rng=seed + 1))
    kw = {"progress": False, "patience": 30}
    fast = find_fixed_points(m, X0, **kw)
    monkeypatch.setattr(_dense, "_plain_numpy", lambda problem: problem)
    wrapped = find_fixed_points(m, X0, **kw)
    np.testing.assert_array_equal(fast.status, wrapped.status)
    np.testing.assert_allclose(fast.points, wrapped.points, rtol=0, atol=1e-12)


@pytest.mark.parametrize("gain,seed", [(1.5, 1), (2.0, 2), (3.0, 0)])
def test_n64_points_are_zeros_from_the_weights_and_no_fewer_than_hybr(gain, seed):
    m = itermap.random_rnn(64, gain=gain, rng=seed)
    W = m.block_matrix.to_dense()
    X0 = np.asarray(sample_states(m, 24, steps=50, noise=0.5, rng=seed + 1))
    fp = find_fixed_points(m, X0, progress=False, patience=30)
    P = np.asarray(fp.points)
    # residuals from W itself, not the search's numbers
    assert np.all(np.linalg.norm(np.tanh(P @ W.T) - P, axis=1) <= 1e-10)
    d = np.linalg.norm(P[:, None, :] - P[None, :, :], axis=2) + np.eye(len(P))
    assert np.all(d > 1e-6)
    assert fp.status.shape == (24,) and fp.n_converged + fp.n_unconverged == 24
    eye = np.eye(64)
    hybr = []
    for x0 in X0:
        sol = scipy.optimize.root(lambda x: np.tanh(W @ x) - x, x0, method="hybr",
                                  jac=lambda x: (1 - np.tanh(W @ x) ** 2)[:, None] * W - eye)
        if np.linalg.norm(np.tanh(W @ sol.x) - sol.x) <= 1e-10 and all(
                np.linalg.norm(sol.x - q) > 1e-6 for q in hybr):
            hybr.append(sol.x)
    assert len(P) >= len(hybr)
