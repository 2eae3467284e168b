"""The fixed-point search on maps of at most three units (issue 31): the closed-form
solves, the lean Newton loop, the orbit search on the standard map, the late progress bar."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import find_fixed_points
from itermap.analysis.fixed_points import _common
from itermap.analysis.fixed_points._common import _damped_solve, _small_solve
from itermap.systems import standard_map

TWO_PI = 2.0 * math.pi


# -- closed-form solves against LAPACK -----------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), k=st.integers(1, 20), seed=st.integers(0, 2 ** 31 - 1))
def test_small_solve_matches_numpy_solve(n, k, seed):
    rng = np.random.default_rng(seed)
    # well conditioned: a random orthogonal matrix times singular values in [0.5, 2]
    Q1 = np.linalg.qr(rng.normal(size=(k, n, n)))[0]
    Q2 = np.linalg.qr(rng.normal(size=(k, n, n)))[0]
    A = Q1 * rng.uniform(0.5, 2.0, (k, 1, n)) @ Q2
    b = rng.normal(size=(k, n))
    want = np.linalg.solve(A, b[..., None])[..., 0]
    np.testing.assert_allclose(_small_solve(A, b), want, rtol=1e-12, atol=1e-12)
    lam = rng.uniform(1e-3, 1.0, k)
    normal = np.swapaxes(A, 1, 2) @ A + lam[:, None, None] * np.eye(n)
    np.testing.assert_allclose(_damped_solve(np, A, lam, b, np.eye(n)),
                               np.linalg.solve(normal, b[..., None])[..., 0],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_small_solve_gives_nan_rows_where_singular_and_solves_the_others(n):
    A = np.stack([np.zeros((n, n)), 2.0 * np.eye(n), np.ones((n, n)) if n > 1 else np.eye(1)])
    b = np.ones((3, n))
    x = _small_solve(A, b)
    assert np.all(np.isnan(x[0]))
    np.testing.assert_array_equal(x[1], 0.5 * np.ones(n))
    assert np.all(np.isnan(x[2])) if n > 1 else np.all(x[2] == 1.0)


# -- the lean loop: the same points as closed forms ----------------------------------------
def test_tanh_cube_has_27_fixed_points_found_by_the_3x3_path():
    # tanh(2 x_i) = x_i in each of 3 coordinates: 3^3 points, every start converges
    m = itermap.IterativeMap(2.0 * np.eye(3))
    g = np.linspace(-1.5, 1.5, 5)
    starts = np.stack(np.meshgrid(g, g, g), axis=-1).reshape(-1, 3)
    fp = find_fixed_points(m, starts, progress=False)
    s = scipy.optimize.brentq(lambda v: np.tanh(2 * v) - v, 0.5, 1.5)
    want = np.array([[i, j, k] for i in (-s, 0, s) for j in (-s, 0, s) for k in (-s, 0, s)])
    got = np.asarray(fp.points)
    assert len(fp) == 27 and fp.n_unconverged == 0
    d = np.linalg.norm(got[:, None, :] - want[None], axis=-1)
    assert np.all(d.min(axis=1) < 1e-12) and np.all(d.min(axis=0) < 1e-12)
    assert np.all(fp.residuals <= 1e-12)
    # stable only where every coordinate is at +-s (slope 2 (1 - s^2) < 1 there)
    np.testing.assert_array_equal(fp.stable, np.all(np.abs(got) > 0.5, axis=1))


def test_a_start_with_no_point_is_given_up_and_counted():
    # x -> x + 1 + x^2 (1-D) has no fixed point: every start stalls (q's minimum 1/2 at
    # x = 0 is a slow point); the lean loop gives them up, none is called converged
    m = itermap.FunctionMap(lambda x: x + 1.0 + x * x, 1,
                            jacobian=lambda x: (1.0 + 2.0 * x)[..., None])
    fp = find_fixed_points(m, np.linspace(-2, 2, 7)[:, None], patience=0, progress=False)
    assert len(fp) == 0 and fp.n_unconverged == 7


# -- the periodic-orbit search on the standard map ------------------------------------------
def _standard_power(k, p):
    """F^p(x) - x modulo 2 pi for the standard map, written here (not itermap's)."""
    def G(v):
        th, pp = v
        for _ in range(p):
            pp = pp + k * math.sin(th)
            th = th + pp
        d = np.array([th, pp]) - v
        return d - TWO_PI * np.round(d / TWO_PI)
    return G


def _brute_force_orbits(k, p, starts):
    """Per-start Newton (hybr, as pynamicalsys's per-start search would) on the residual
    modulo 2 pi: the points reached, reduced onto [0, 2 pi)."""
    G = _standard_power(k, p)
    out = []
    for x0 in starts:
        sol = scipy.optimize.root(G, x0, method="hybr", options={"xtol": 1e-13})
        if np.linalg.norm(G(sol.x)) <= 1e-10:
            out.append(np.mod(sol.x, TWO_PI))
    return np.array(out).reshape(-1, 2)


def _torus_dist(a, b):
    d = np.mod(a[:, None, :] - b[None] + math.pi, TWO_PI) - math.pi
    return np.linalg.norm(d, axis=-1)


@pytest.mark.parametrize("k", [0.9, 1.5])
@pytest.mark.parametrize("period", [1, 2, 3])
def test_standard_map_orbits_include_every_one_per_start_newton_finds(k, period):
    side = 8
    g = (np.arange(side) + 0.5) / side
    X = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2) * TWO_PI
    fp = find_fixed_points(standard_map(k), X, period=period, progress=False)
    pts = np.asarray(fp.points)
    ref = _brute_force_orbits(k, period, X)
    assert len(ref) > 0
    assert np.all(_torus_dist(ref, pts).min(axis=1) < 1e-6)      # none of its missing
    # every point ours is a point of period dividing p (by the map written here)
    G = _standard_power(k, period)
    assert max(np.linalg.norm(G(p)) for p in pts) <= 1e-10
    assert np.all(_torus_dist(pts, pts) + np.eye(len(pts)) * 10 > 1e-6)   # distinct


def test_standard_map_period_2_orbit_through_0_pi_and_pi_pi():
    # (0, pi) -> (pi, pi) -> (2 pi, pi) = (0, pi) modulo 2 pi, for every K (sin 0 = sin pi = 0)
    g = (np.arange(8) + 0.5) / 8
    X = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2) * TWO_PI
    fp = find_fixed_points(standard_map(1.5), X, period=2, progress=False)
    pts = np.asarray(fp.points)
    want = np.array([[0.0, math.pi], [math.pi, math.pi]])
    d = _torus_dist(want, pts)
    i, j = np.argmin(d, axis=1)
    assert d[0, i] < 1e-12 and d[1, j] < 1e-12
    assert fp.orbit[i] == fp.orbit[j] and fp.min_period[i] == fp.min_period[j] == 2


# -- the progress bar of a short search ------------------------------------------------------
def test_progress_none_shows_the_bar_once_the_search_has_run_its_delay(capsys, monkeypatch):
    m = itermap.IterativeMap(np.diag([2.0, 2.0]))
    x0 = np.random.default_rng(0).uniform(-1.5, 1.5, (30, 2))
    find_fixed_points(m, x0)                        # a few ms: no bar at all
    assert "fixed points" not in capsys.readouterr().err
    monkeypatch.setattr(_common, "_BAR_DELAY", 0.0)
    fp = find_fixed_points(m, x0)
    err = capsys.readouterr().err
    assert "30/30" in err and fp.n_starts == 30


@pytest.mark.parametrize(("k", "period", "side"), [(1.5, 2, 8), (4.0, 2, 16), (0.9, 3, 8)])
def test_lean_loop_finds_what_the_general_search_finds(monkeypatch, k, period, side):
    # the general batched search (forced here) is the other implementation of phase (2);
    # at K = 4 the period-2 search meets the degenerate (pi, 0) (multipliers -1, -1),
    # where running starts must merge into the points found as they do there
    from itermap.analysis.fixed_points import _search

    g = (np.arange(side) + 0.5) / side
    X = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2) * TWO_PI
    lean = find_fixed_points(standard_map(k), X, period=period, progress=False)
    monkeypatch.setattr(_search, "small_applies", lambda *a, **kw: False)
    general = find_fixed_points(standard_map(k), X, period=period, progress=False)
    a, b = np.asarray(lean.points), np.asarray(general.points)
    # the lean loop (plain Newton first) reports a degenerate point once: the general
    # search's copies of (pi, 0) at K = 4 (within 1e-3, its Newton limits scatter) are one
    degenerate = _torus_dist(b, np.array([[math.pi, 0.0]]))[:, 0] < 1e-3
    assert np.sum(_torus_dist(a, np.array([[math.pi, 0.0]]))[:, 0] < 1e-3) == min(
        1, int(degenerate.sum()))
    assert np.all(_torus_dist(b[~degenerate], a).min(axis=1) < 1e-6)
    assert len(a) == np.sum(~degenerate) + min(1, int(degenerate.sum()))
    # plain Newton first sends a few starts elsewhere: at most 1 % more given up (K = 4
    # from 256 starts: 21 against 19, near the degenerate point)
    assert lean.n_unconverged <= general.n_unconverged + 0.01 * len(X)
    G = _standard_power(k, period)
    assert max(np.linalg.norm(G(p)) for p in a) <= 1e-10


def test_the_degenerate_point_at_k_4_is_one_point_of_multipliers_one():
    """At K = 4 the fixed point (pi, 0) of the standard map has multipliers -1, -1 (trace
    2 - K = -2, det 1): F^2 - I is singular there and Newton's limits scatter within the
    tolerance around it; the search reports it once, with F^2's multipliers 1, 1."""
    g = (np.arange(16) + 0.5) / 16
    X = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2) * TWO_PI
    fp = find_fixed_points(standard_map(4.0), X, period=2, progress=False)
    d = _torus_dist(np.asarray(fp.points), np.array([[math.pi, 0.0]]))[:, 0]
    near = np.flatnonzero(d < 1e-2)
    assert near.size == 1 and d[near[0]] < 1e-3
    np.testing.assert_allclose(np.abs(fp.eigenvalues[near[0]]), [1.0, 1.0], atol=1e-3)
    # the other points: the fixed points (0, 0), and the 2-cycle through (0, pi), (pi, pi)
    for want in ([0.0, 0.0], [0.0, math.pi], [math.pi, math.pi]):
        assert _torus_dist(np.asarray(fp.points), np.array([want])).min() < 1e-12


def _henon_closed_forms(a, b):
    """Henon's fixed points and 2-cycle in closed form: x^2 a + (1 - b) x - 1 = 0, and
    a^2 x^2 - a (1 - b) x + (1 - b)^2 - a = 0 for the cycle's x; y = b x' (x' the other)."""
    s = math.sqrt((1 - b) ** 2 + 4 * a)
    fixed = [((-(1 - b) + sg * s) / (2 * a)) for sg in (1, -1)]
    c = math.sqrt(4 * a - 3 * (1 - b) ** 2)
    x1, x2 = ((1 - b) + c) / (2 * a), ((1 - b) - c) / (2 * a)
    return (np.array([[x, b * x] for x in fixed]),
            np.array([[x1, b * x2], [x2, b * x1]]))


@pytest.mark.parametrize(("a", "b"), [(1.4, 0.3), (1.2, -0.2), (1.0, 0.5)])
def test_henon_fixed_points_and_2_cycle_match_the_closed_forms(a, b):
    """From a grid on [-1, 1]^2 the period-2 search finds the two fixed points (least period
    1) and the 2-cycle (one orbit label, least period 2), to 1e-12, and nothing else."""
    fixed, cycle = _henon_closed_forms(a, b)
    g = (np.arange(8) + 0.5) / 8 * 2 - 1
    X = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    fp1 = find_fixed_points(itermap.systems.henon(a, b), X, progress=False)
    assert len(fp1) == 2
    assert np.abs(np.asarray(fp1.points)[:, None] - fixed[None]).sum(-1).min(0).max() < 1e-12
    fp = find_fixed_points(itermap.systems.henon(a, b), X, period=2, progress=False)
    pts = np.asarray(fp.points)
    want = np.concatenate([fixed, cycle])
    d = np.linalg.norm(pts[:, None] - want[None], axis=-1)
    assert len(pts) == 4 and d.min(axis=0).max() < 1e-12 and d.min(axis=1).max() < 1e-12
    i, j = np.argmin(d[:, 2:], axis=0)
    assert fp.orbit[i] == fp.orbit[j] and fp.min_period[i] == fp.min_period[j] == 2
    assert sorted(fp.min_period.tolist()) == [1, 1, 2, 2]


@pytest.mark.parametrize("k", [0.9, 1.5, 4.0])
def test_a_point_found_brings_the_rest_of_its_orbit(k):
    """One start on the 2-cycle (0, pi) -> (pi, pi) of the standard map (every K): both
    points come back, one orbit; one start that reaches a point of least period 3 brings
    the three points of its orbit (each one of period 3 by the map written here)."""
    fp = find_fixed_points(standard_map(k), np.array([[0.0, math.pi]]), period=2,
                           progress=False)
    want = np.array([[0.0, math.pi], [math.pi, math.pi]])
    d = _torus_dist(np.asarray(fp.points), want)
    assert len(fp) == 2 and d.min(axis=0).max() < 1e-12
    assert fp.orbit[0] == fp.orbit[1] and list(fp.min_period) == [2, 2]
    G = _standard_power(k, 3)
    seed = np.random.default_rng(0).uniform(0, TWO_PI, (1, 2))   # reaches period 3 at each K
    fp3 = find_fixed_points(standard_map(k), seed, period=3, progress=False)
    assert len(fp3) == 3 and list(fp3.min_period) == [3, 3, 3]
    assert len(set(fp3.orbit.tolist())) == 1
    assert max(np.linalg.norm(G(p)) for p in np.asarray(fp3.points)) <= 1e-10
    assert np.all(_torus_dist(np.asarray(fp3.points), np.asarray(fp3.points))
                  + 10 * np.eye(3) > 1e-6)
