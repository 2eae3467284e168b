"""The gain homotopy at N = 200,000 (issue 26 §2): it refuses up front with its memory
estimate, or runs within it, and never allocates an N x N array (320 GB here)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import itermap
from itermap.analysis import find_fixed_points
from itermap.analysis.fixed_points import _homotopy as hom

N = 200_000


def _network(n):
    # 4 weights a row on average, built by random_rnn's own sparse path (no n^2 index)
    return itermap.random_rnn(n, density=2e-5, gain=1.5, rng=0)


def test_estimate_has_no_n_squared_term_and_refusal_comes_before_any_work(monkeypatch):
    m, m2 = _network(N), _network(2 * N)
    est, est2 = hom.homotopy_memory(m, 1, N), hom.homotopy_memory(m2, 1, 2 * N)
    # IDR(s)'s vectors, the work vectors and the starts, linear in N, and the sparse
    # Jacobian, linear in its nonzeros
    assert est < 1e9 < 8.0 * N * N
    jac, jac2 = 64.0 * m.jacobian_nnz, 64.0 * m2.jacobian_nnz
    assert est2 - jac2 == pytest.approx(2.0 * (est - jac), rel=0.01)
    import itermap._core._checks as checks

    monkeypatch.setattr(checks, "_physical_memory", lambda: est / 2)
    x0 = 0.1 * np.ones((1, N))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"method: method='homotopy' on 1 starts") as err:
            find_fixed_points(m, x0, method="homotopy", progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{est / 1e9:.3g} GB" in str(err.value)
    assert peak < 20 * x0.nbytes            # refused before the basis was allocated


def test_a_short_run_stays_within_the_estimate():
    # two continuation steps at N = 200,000 (one start): the traced peak (NumPy's buffers:
    # IDR(s)'s vectors, the Jacobian products) is within the estimate the search refuses
    # on; whatever comes back is a point by a residual computed here from the weights
    m = _network(N)
    x0 = 0.5 * np.random.default_rng(1).standard_normal((1, N))
    tracemalloc.start()
    try:
        fp = find_fixed_points(m, x0, method="homotopy", max_iter=2, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    W = m.block_matrix.to_sparse().tocsr()
    assert peak <= hom.homotopy_memory(m, 1, N) + 2 * W.data.nbytes
    assert fp.n_starts == 1 and fp.jacobians is None
    P = np.asarray(fp.points)
    assert np.all(np.linalg.norm(np.tanh(P @ W.T) - P, axis=1) <= 1e-10)
