"""Deflation in the dense search (``find_fixed_points(method="newton", deflation=...)``).

Points are checked against an independent enumeration: a 3-unit tanh network whose
fixed points are found by a loop of ``scipy.optimize.root`` (hybr) from a dense grid
over the cube ``[-1, 1]^3`` that holds them all, and decoupled units whose points are
the products of the roots of ``tanh(g y) = y`` (``scipy.optimize.brentq``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import find_fixed_points, sample_states

TOL = 1e-10


def _residuals(W, P):
    return np.linalg.norm(np.tanh(np.asarray(P) @ W.T) - np.asarray(P), axis=1)


def _enumerate(W, k=9):
    """Every fixed point of ``tanh(W x)`` (3 units): hybr from a k^3 grid over [-1, 1]^3."""
    n = W.shape[0]

    def f(x):
        return np.tanh(W @ x) - x

    def jac(x):
        return (1 - np.tanh(W @ x) ** 2)[:, None] * W - np.eye(n)

    g = np.linspace(-1.0, 1.0, k)
    found: list = []
    for x0 in itertools.product(*([g] * n)):
        x = scipy.optimize.root(f, np.array(x0), jac=jac, method="hybr").x
        if np.linalg.norm(f(x)) <= TOL and all(np.linalg.norm(x - q) > 1e-6 for q in found):
            found.append(x)
    return np.array(found)


def _coupled(seed=3):
    rng = np.random.default_rng(seed)
    W = 2.0 * np.eye(3) + 0.3 * rng.normal(size=(3, 3))
    R = _enumerate(W)
    # every start near one point: plain Newton returns that point from each
    p = R[np.argmax(R.sum(axis=1))]
    x0 = p + 0.05 * rng.normal(size=(12, 3))
    return W, R, x0


def _in(P, R, tol=1e-8):
    return np.array([np.min(np.linalg.norm(R - q, axis=1)) <= tol for q in np.asarray(P)])


def _scalar_roots(g):
    """The positive root of tanh(g y) = y for each gain g > 1 (brentq)."""
    return np.array([scipy.optimize.brentq(lambda y, gi=gi: np.tanh(gi * y) - y, 0.1, 1.0)
                     for gi in g])


@pytest.mark.parametrize("deflation", [True, 0.3, 1.0])
def test_deflation_finds_points_plain_newton_finds_once(deflation):
    W, R, x0 = _coupled()
    assert len(R) >= 9                         # the enumeration: many points to find
    m = itermap.IterativeMap(W)
    plain = find_fixed_points(m, x0, deflation=False, progress=False)
    assert len(plain) == 1 and _in(plain.points, R).all()
    fp = find_fixed_points(m, x0, deflation=deflation, progress=False)
    P = np.asarray(fp.points)
    # new points, every one of them a point of the independent enumeration
    assert len(fp) >= 4
    assert _in(P, R).all()
    assert np.all(_residuals(W, P) <= TOL)
    # distinct, and the plain search's point is among them
    assert np.min(np.linalg.norm(P[:, None] - P[None], axis=2) + np.eye(len(P))) > 1e-6
    assert _in(plain.points, P).all()
    # each start keeps its fate: all converged (to a point, the old one or a new one)
    np.testing.assert_array_equal(fp.status, plain.status)
    assert fp.n_converged == len(x0)


def test_decoupled_units_give_products_of_the_scalar_roots():
    # x -> tanh(g_i x_i): the points are the 3^4 products of {-a_i, 0, a_i}
    g = np.array([1.5, 2.0, 2.5, 3.0])
    a = _scalar_roots(g)
    m = itermap.IterativeMap(np.diag(g))
    x0 = a + np.random.default_rng(0).normal(scale=0.05, size=(10, 4))
    plain = find_fixed_points(m, x0, deflation=False, progress=False)
    fp = find_fixed_points(m, x0, deflation=True, progress=False)
    assert len(plain) == 1
    assert len(fp) > len(plain)
    P = np.asarray(fp.points)
    # each coordinate is one of -a_i, 0, a_i
    dev = np.min(np.abs(np.abs(P) - np.stack([a, np.zeros(4)])[:, None, :]), axis=0)
    assert np.all(dev <= 1e-9)


def test_auto_is_off_on_small_maps_and_on_at_100_units():
    W, _, x0 = _coupled()
    auto = find_fixed_points(itermap.IterativeMap(W), x0, progress=False)   # dim 3: off
    assert len(auto) == 1
    # 100 decoupled units (3^100 points), starts near one: "auto" deflates
    g = np.tile([1.5, 2.0, 2.5, 3.0], 25)
    a = _scalar_roots(g)
    m = itermap.IterativeMap(np.diag(g))
    X0 = a + np.random.default_rng(2).normal(scale=0.02, size=(6, 100))
    assert len(find_fixed_points(m, X0, deflation=False, progress=False)) == 1
    on = find_fixed_points(m, X0, progress=False)
    assert len(on) > 1
    P = np.asarray(on.points)
    dev = np.min(np.abs(np.abs(P) - np.stack([a, np.zeros(100)])[:, None, :]), axis=0)
    assert np.all(dev <= 1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deflation_only_adds_points(seed):
    # the phase runs after the search: every point of the plain search is found again,
    # each start keeps its status, and all points pass the residual from W
    net = itermap.random_rnn(24, gain=1.5, rng=seed)
    W = net.block_matrix.to_dense()
    X0 = np.asarray(sample_states(net, 24, steps=30, noise=0.5, rng=seed + 10))
    off = find_fixed_points(net, X0, deflation=False, progress=False)
    on = find_fixed_points(net, X0, deflation=True, progress=False)
    assert _in(off.points, np.asarray(on.points)).all()
    np.testing.assert_array_equal(on.status, off.status)
    assert len(on) >= len(off)
    assert np.all(_residuals(W, on.points) <= TOL)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), gain=st.floats(1.2, 3.0),
       radius=st.one_of(st.just(True), st.floats(0.05, 2.0)))
def test_no_point_above_tol_and_same_rng_same_result(seed, gain, radius):
    m = itermap.random_rnn(12, gain=gain, rng=seed)
    W = m.block_matrix.to_dense()
    x0 = np.asarray(sample_states(m, 16, steps=20, noise=0.5, rng=seed + 1))
    fp = find_fixed_points(m, x0, deflation=radius, progress=False)
    assert np.all(_residuals(W, fp.points) <= TOL)
    again = find_fixed_points(m, x0, deflation=radius, progress=False)
    np.testing.assert_array_equal(np.asarray(fp.points), np.asarray(again.points))
    np.testing.assert_array_equal(fp.status, again.status)


@pytest.mark.parametrize("bad", ["yes", "", -1.0, 0, 0.0, float("nan"), float("inf")])
def test_bad_deflation_values_raise_value_error(bad):
    m = itermap.IterativeMap(np.array([[2.0]]))
    with pytest.raises(ValueError, match="deflation"):
        find_fixed_points(m, np.ones((2, 1)), deflation=bad)


@pytest.mark.parametrize("bad", [[0.1], object(), 1j])
def test_bad_deflation_types_raise_type_error(bad):
    m = itermap.IterativeMap(np.array([[2.0]]))
    with pytest.raises(TypeError, match="deflation"):
        find_fixed_points(m, np.ones((2, 1)), deflation=bad)


def test_deflated_runs_never_return_a_known_point():
    # deflate_repeats directly: starts at (near) the one known point of tanh(2x) in 2-D
    from itermap.analysis.fixed_points._common import _Power
    from itermap.analysis.fixed_points._deflation import deflate_repeats
    a = scipy.optimize.brentq(lambda y: np.tanh(2 * y) - y, 0.1, 1.0)
    m = itermap.IterativeMap(2.0 * np.eye(2))
    F = _Power(m, 1, None, np, None)
    known = np.array([[a, a]])
    x0 = known + np.random.default_rng(1).normal(scale=0.05, size=(6, 2))
    P, r, rows = deflate_repeats(F, np, np.eye(2), x0, known, tol=TOL, unique_tol=1e-6,
                                 radius=0.2, wander=0.5)
    assert len(P) >= 1
    assert np.all(np.linalg.norm(P - known, axis=1) > 1e-6)
    assert np.all(np.linalg.norm(np.tanh(2 * P) - P, axis=1) <= TOL)
    np.testing.assert_allclose(r, np.linalg.norm(np.tanh(2 * P) - P, axis=1), atol=1e-15)
    assert np.all((rows >= 0) & (rows < 6))
    # the points of tanh(2x) in 2-D: coordinates in {-a, 0, a}
    assert np.all(np.min(np.abs(np.abs(P)[..., None] - np.array([0.0, a])), axis=-1) < 1e-9)


def test_midpoints_of_the_nearest_pairs_against_a_plain_loop():
    from itermap.analysis.fixed_points._newton import _midpoints
    P = np.random.default_rng(4).normal(size=(7, 5))
    pairs = sorted((np.linalg.norm(P[i] - P[j]), i, j) for i in range(7) for j in range(i + 1, 7))
    ref = np.array([0.5 * (P[i] + P[j]) for _, i, j in pairs[:9]])
    np.testing.assert_allclose(_midpoints(np, P, 9), ref, rtol=0, atol=1e-15)
    assert _midpoints(np, P, 100).shape == (21, 5)
    assert _midpoints(np, P[:1], 5).shape == (0, 5)
