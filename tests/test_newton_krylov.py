"""Newton-Krylov for large and sparse maps, the method rule and the progress bar (issue 26
§2, §3). Every point is checked by a residual computed here by a plain product, or
against scipy.optimize.root."""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import find_fixed_points, sample_states
from itermap.analysis.fixed_points import _driver
from itermap.analysis.fixed_points import _newton_krylov as nk


def _biased_sparse(n, seed, gain=0.9, density=0.05):
    """A sparse tanh network with a bias (so the origin is no fixed point) and its weights."""
    r = itermap.random_rnn(n, gain=gain, density=density, rng=seed)
    W = r.block_matrix.to_sparse().tocsr()
    b = np.random.default_rng(seed + 100).normal(0.0, 0.5, n)
    return itermap.IterativeMap(W, bias=b), W, b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_points_are_roots_of_the_plain_residual_and_agree_with_scipy_root(seed):
    # every point: residual by a plain scipy.sparse product, and scipy's hybr (dense
    # Jacobian, its own code) started at the point stays there
    n = 60
    m, W, b = _biased_sparse(n, seed)
    x0 = np.asarray(sample_states(m, 4, steps=20, noise=0.3, rng=seed))
    fp = find_fixed_points(m, x0, method="newton-krylov", progress=False)
    P = np.asarray(fp.points)
    assert len(P) >= 1 and fp.jacobians is None
    assert np.all(np.linalg.norm(np.tanh(P @ W.T + b) - P, axis=1) <= 1e-10)
    Wd = W.toarray()
    for p in P:
        sol = scipy.optimize.root(lambda x: np.tanh(Wd @ x + b) - x, p + 1e-4, method="hybr",
                                  jac=lambda x: (1 - np.tanh(Wd @ x + b) ** 2)[:, None] * Wd
                                  - np.eye(n), tol=1e-13)
        assert sol.success
        np.testing.assert_allclose(sol.x, p, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(eta=st.floats(1e-6, 0.5), r=st.floats(1e-9, 1e3), ratio=st.floats(1e-3, 2.0),
       tol=st.floats(1e-14, 1e-6))
def test_forcing_terms_are_eisenstat_walker_choice_2_with_safeguards(eta, r, ratio, tol):
    # closed form of Eisenstat and Walker's choice 2 (gamma 0.9, alpha 2) with Kelley's
    # safeguards: never above the cap, never below half of tol / r
    r_old = r / ratio
    got = nk._forcing(eta, r, r_old, tol)
    ew = 0.9 * ratio ** 2
    if 0.9 * eta ** 2 > 0.1:
        ew = max(ew, 0.9 * eta ** 2)
    assert got == pytest.approx(min(nk._ETA, max(ew, 0.5 * tol / r)), rel=1e-12)
    assert nk._forcing(eta, r, None, tol) == nk._ETA


def test_progress_counts_starts_finished_not_iterations(capsys):
    # the bar's total is the number of starts, whatever max_iter is; it reaches it when
    # every start has ended, given up ones included (max_iter=2: most give up)
    m, _, _ = _biased_sparse(80, 3, gain=2.0)
    x0 = np.asarray(sample_states(m, 5, steps=30, noise=0.5, rng=1))
    for max_iter in (2, 50):
        fp = find_fixed_points(m, x0, method="newton-krylov", max_iter=max_iter,
                               progress=True)
        err = capsys.readouterr().err
        pairs = re.findall(r"(\d+)/(\d+) ", err)
        counts, totals = [int(a) for a, _ in pairs], {int(t) for _, t in pairs}
        assert totals == {5}, err                  # starts, not iterations
        assert counts == sorted(counts) and counts[-1] == 5
        assert sum(fp.status_counts().values()) == 5


def test_auto_rule_is_the_documented_size_rule():
    # method="auto": Newton-Krylov exactly past the dim the docstring states, on NumPy
    doc = find_fixed_points.__doc__
    assert f"dim > {_driver._KRYLOV_DIM}" in doc.replace("``", "")
    assert _driver._auto_name(_driver._KRYLOV_DIM, np) == "newton"
    assert _driver._auto_name(_driver._KRYLOV_DIM + 1, np) == "newton-krylov"


def _one_per_row(n):
    """A sparse network with one weight per row (built without any n^2 index array)."""
    rng = np.random.default_rng(n)
    W = sp.csr_matrix((rng.normal(size=n), (np.arange(n), rng.integers(0, n, n))), (n, n))
    return itermap.IterativeMap(W)


def test_memory_estimate_is_linear_in_n_for_sparse_maps_and_refusal_names_it(monkeypatch):
    # N = 200,000: the estimate holds no n^2 term (twice n, twice the bytes) and is far
    # below one dense n x n array; short of memory, the call is refused before any work,
    # naming the option, with the estimate in the message
    n = 200_000
    m, m2 = _one_per_row(n), _one_per_row(2 * n)
    est, est2 = nk.krylov_memory(m, 4, n), nk.krylov_memory(m2, 4, 2 * n)
    assert est < 1e9 < 8.0 * n * n
    assert est2 / est == pytest.approx(2.0, rel=0.01)
    import itermap._core._checks as checks
    monkeypatch.setattr(checks, "_physical_memory", lambda: est / 2)
    x0 = np.zeros((4, n))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"method.*newton-krylov") as err:
            find_fixed_points(m, x0, progress=False)                   # auto
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{est / 1e9:.3g} GB" in str(err.value)
    assert peak < 100 * x0.nbytes          # nothing of size n^2 was allocated


def test_sparse_map_runs_at_200000_units_without_an_n_squared_array():
    # a short run (2 Newton-Krylov steps) at N = 200,000 under tracemalloc: its traced peak
    # is within the estimate, and a dense n x n array would be 320 GB
    n = 200_000
    m = itermap.random_rnn(n, gain=0.5, density=2e-5, rng=0)
    x0 = 0.1 * np.random.default_rng(1).normal(size=(1, n))
    tracemalloc.start()
    try:
        fp = find_fixed_points(m, x0, method="newton-krylov", max_iter=2, q_steps=0,
                               progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= nk.krylov_memory(m, 1, n) + 2 * m.block_matrix.to_sparse().data.nbytes
    assert fp.n_starts == 1 and fp.jacobians is None
    # whatever 2 steps reached is a point by the residual computed directly
    P = np.asarray(fp.points)
    W = m.block_matrix.to_sparse().tocsr()
    assert np.all(np.linalg.norm(np.tanh(P @ W.T) - P, axis=1) <= 1e-10)


def test_report_costs_a_large_fixed_point_analysis_as_newton_krylov():
    # past the dim rule the report's estimate is of Newton-Krylov and the gain paths: its
    # memory is the search's own estimate (no n^2 term), not the dense 6 x 8 x starts x n^2
    # bytes; past gain 1 a start costs its paths' caps, so 32 starts at n = 20,000 are
    # refused up front (a run of days), naming the starts
    from itermap.analysis._report import BudgetError, check_budget, validate_spec
    from itermap.analysis._report._networks import static_sizes

    def cost(n, starts=32, gain=1.5, force=True):
        spec = validate_spec({"networks": {"r": {"kind": "random_rnn", "n": n,
                                                 "density": 20 / n, "gain": gain}},
                              "analyses": [{"kind": "fixed_points", "network": "r",
                                            "starts": starts}]})
        return check_budget(spec, {"r": static_sizes("r", spec.networks["r"], "networks.r")},
                            force=force)[0]

    with pytest.raises(BudgetError, match=r"analyses\[0\]\.starts: fixed_points would take"):
        cost(20_000, force=False)
    assert cost(20_000, gain=0.8).seconds < 0.01 * cost(20_000).seconds

    n = 20_000
    m = itermap.random_rnn(n, density=20 / n, gain=1.5, rng=0)
    c = cost(n)
    assert 0.5 < c.bytes / nk.krylov_memory(m, 32, n) < 2.0
    assert c.bytes < 1e9 < 6 * 8 * 32 * n * n
    assert cost(2 * n).seconds > c.seconds and cost(n, 64).seconds > 1.5 * c.seconds
