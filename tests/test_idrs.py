"""IDR(s) (itermap.linalg.idrs) against direct solves, on the spectra it is for."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from hypothesis import given, settings
from hypothesis import strategies as st

from itermap._running import _idrs
from itermap.linalg import idrs


def _indefinite(n, seed, gain=1.5, density=None):
    """``D W - I`` with the spectrum of a random network at a fixed point: a disk of
    radius ~1.07 around -1, so it surrounds the origin (mean-field ``D``)."""
    rng = np.random.default_rng(seed)
    if density is None:
        W = rng.standard_normal((n, n)) * gain / np.sqrt(n)
    else:
        W = sp.random(n, n, density=density, random_state=seed,
                      data_rvs=rng.standard_normal).tocsr() * (gain / np.sqrt(n * density))
    d = 1.0 - np.tanh(gain * np.sqrt(0.35) * rng.standard_normal(n)) ** 2
    return sp.diags(d) @ W - sp.identity(n) if density else d[:, None] * W - np.eye(n)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), s=st.integers(1, 10), seed=st.integers(0, 2**16))
def test_matches_a_direct_solve_and_reports_its_true_residual(n, s, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)) + 3.0 * np.sqrt(n) * np.eye(n)
    b = rng.standard_normal(n)
    sol = idrs(A, b, s=s, rtol=1e-10)
    assert sol.converged
    x = np.linalg.solve(A, b)
    assert np.linalg.norm(sol.x - x) <= 1e-8 * max(np.linalg.norm(x), 1e-300)
    assert sol.residual == pytest.approx(np.linalg.norm(b - A @ sol.x) / np.linalg.norm(b),
                                         rel=1e-6, abs=1e-15)
    # in exact arithmetic IDR(s) ends within n + n / s products; a few more in floats
    assert sol.products <= 3 * (n + n // max(s, 1)) + 10


def test_indefinite_random_network_jacobian_where_restarted_gmres_stalls():
    # a spectrum around the origin: GMRES(30) stagnates, IDR(8) reaches 1e-8 in O(n)
    # products, and its answer is spsolve's
    n = 800
    A = _indefinite(n, 0, density=20 / n).tocsr()
    b = np.random.default_rng(1).standard_normal(n)
    x_ref = sla.spsolve(A.tocsc(), b)
    sol = idrs(A, b, s=8, rtol=1e-8)
    assert sol.converged and sol.products < 4 * n
    assert np.linalg.norm(sol.x - x_ref) <= 1e-5 * np.linalg.norm(x_ref)
    y, _ = sla.gmres(A, b, rtol=1e-8, restart=30, maxiter=sol.products // 30)
    assert np.linalg.norm(A @ y - b) > 1e3 * np.linalg.norm(A @ sol.x - b)


def test_every_form_of_the_matrix_gives_the_same_iterates():
    A = _indefinite(60, 3)
    b = np.random.default_rng(4).standard_normal(60)
    forms = [A, sp.csr_matrix(A), sla.aslinearoperator(A), lambda v: A @ v]
    sols = [idrs(f, b, rtol=1e-9, rng=5) for f in forms]
    assert all(sol.converged for sol in sols)
    for sol in sols[1:]:        # the products round differently: agreement to the rtol
        np.testing.assert_allclose(sol.x, sols[0].x, rtol=1e-7, atol=1e-9)
    # the same seed, the same iterates; a start x0 near the answer takes fewer products
    assert np.array_equal(idrs(A, b, rng=5).x, idrs(A, b, rng=5).x)
    near = np.linalg.solve(A, b) + 1e-6
    assert idrs(A, b, x0=near, rtol=1e-9).products < idrs(A, b, rtol=1e-9).products


def test_residual_replacement_keeps_the_true_residual_at_the_tolerance(monkeypatch):
    # a hard spectrum whose plateau inflates intermediate residuals: without replacement
    # the recursive residual reached 1e-10 while b - A x stayed far above it, and a
    # restart from x crossed the plateau again (1,180 products here, 719 with it)
    n = 3000
    A = _indefinite(n, 8, density=20 / n).tocsr()
    b = np.random.default_rng(9).standard_normal(n)
    passes = []
    real = _idrs._cycles
    monkeypatch.setattr(_idrs, "_cycles", lambda *a: passes.append(1) or real(*a))
    for rtol in (1e-6, 1e-10):
        passes.clear()
        sol = idrs(A, b, rtol=rtol)
        assert sol.converged and len(passes) == 1        # no restart was needed
        assert np.linalg.norm(b - A @ sol.x) <= rtol * np.linalg.norm(b)


def test_budget_is_kept_and_a_zero_right_hand_side_is_solved_at_once():
    A = _indefinite(300, 6)
    b = np.ones(300)
    sol = idrs(A, b, rtol=1e-12, max_products=50)
    assert not sol.converged and sol.products <= 50 + 2 * (_idrs._MAX_RESTARTS + 1)
    assert sol.residual == pytest.approx(np.linalg.norm(b - A @ sol.x) / np.linalg.norm(b))
    zero = idrs(A, np.zeros(300))
    assert zero.converged and zero.products == 0 and not np.any(zero.x)


def test_a_singular_system_ends_unconverged_not_with_nan():
    A = np.diag([1.0, 2.0, 0.0])
    sol = idrs(A, np.array([1.0, 1.0, 1.0]), s=2, max_products=200)
    assert not sol.converged
    assert np.all(np.isfinite(sol.x)) and np.isfinite(sol.residual)


@pytest.mark.parametrize("kwargs, match", [
    ({"b": np.ones((2, 2))}, "b must be 1-D"),
    ({"b": np.array([1.0, np.nan])}, "b contains NaN"),
    ({"b": np.array([1.0 + 1j, 0.0])}, "b must be real"),
    ({"A": np.eye(3)}, r"A has shape \(3, 3\), expected \(2, 2\)"),
    ({"A": np.array([[1.0, np.inf], [0.0, 1.0]])}, "A contains NaN"),
    ({"A": lambda v: np.ones(3)}, "A: its product"),
    ({"x0": np.ones(3)}, "x0 has shape"),
    ({"s": 0}, "s"),
    ({"s": 2.5}, "s"),
    ({"s": True}, "s"),
    ({"rtol": 0.0}, "rtol"),
    ({"rtol": 1.5}, "rtol must be < 1"),
    ({"rtol": "1e-3"}, "rtol"),
    ({"max_products": 0}, "max_products"),
])
def test_bad_inputs_name_the_parameter(kwargs, match):
    args = {"A": np.eye(2), "b": np.ones(2), **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        idrs(args.pop("A"), args.pop("b"), **args)


def test_a_matrix_that_is_not_one_raises_type_error():
    for bad in ("not a matrix", 3, object(), None):
        with pytest.raises(TypeError, match="A"):
            idrs(bad, np.ones(2))
