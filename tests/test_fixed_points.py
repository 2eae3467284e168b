"""Fixed points, periodic orbits and their stability (issue 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap._maps._map import Map
from itermap.analysis import FixedPoints, find_fixed_points, sample_states
from itermap.backends import to_numpy
from itermap.systems import henon, logistic


# -- reference systems written here -------------------------------------------------
class Shifted(Map):
    """``x -> x + c + x^2`` in 1-D: no fixed point for c > 0; q has its minimum
    ``c^2 / 2`` at x = 0 (a slow point, the ghost of a saddle-node)."""

    def __init__(self, c=1.0):
        self.c = c

    @property
    def dim(self):
        return 1

    def step(self, x, u=None):
        self._no_input(u)
        x = self._check_state(x)
        return x + self.c + x * x

    def jacobian(self, x, u=None):
        self._no_input(u)
        x = self._check_state(x)
        return (1.0 + 2.0 * x)[..., None]


def _sorted_rows(a):
    a = np.asarray(a)
    return a[np.lexsort(np.round(a, 9).T[::-1])]    # rounding-level ties do not reorder


# -- the tests the issue names ------------------------------------------------------
def test_henon_fixed_points_closed_form():
    a, b = 1.4, 0.3
    rng = np.random.default_rng(0)
    fp = find_fixed_points(henon(a, b), rng.uniform(-2, 2, size=(64, 2)))
    # x = 1 - a x^2 + b x  =>  a x^2 + (1 - b) x - 1 = 0, y = b x
    disc = np.sqrt((1 - b) ** 2 + 4 * a)
    xs = np.array([(-(1 - b) - disc) / (2 * a), (-(1 - b) + disc) / (2 * a)])
    want = np.stack([xs, b * xs], axis=1)
    order = np.argsort(fp.points[:, 0])
    assert len(fp) == 2 and fp.n_unconverged == 0
    np.testing.assert_allclose(fp.points[order], want, atol=1e-12)
    # eigenvalues of [[-2 a x, 1], [b, 0]]: lam^2 + 2 a x lam - b = 0
    lam = np.stack([-a * xs + np.sqrt(a * a * xs * xs + b), -a * xs - np.sqrt(a * a * xs * xs + b)],
                   axis=1)
    want_unstable = np.sum(np.abs(lam) > 1, axis=1)
    np.testing.assert_array_equal(fp.n_unstable[order], want_unstable)
    assert not fp.stable.any()
    want_ev = np.sort(np.abs(lam), axis=1)[:, ::-1]
    np.testing.assert_allclose(np.abs(fp.eigenvalues[order]), want_ev, atol=1e-12)
    assert np.all(fp.residuals <= 1e-10)
    np.testing.assert_allclose(np.abs(np.prod(fp.eigenvalues, axis=1)), b, rtol=1e-12)


def test_tanh_diag_nine_fixed_points():
    m = itermap.IterativeMap(np.diag([2.0, 2.0]))
    g = np.linspace(-1.5, 1.5, 13)
    starts = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    fp = find_fixed_points(m, starts)
    xstar = scipy.optimize.brentq(lambda s: np.tanh(2 * s) - s, 0.5, 1.5)
    want = np.array([[i * xstar, j * xstar] for i in (-1, 0, 1) for j in (-1, 0, 1)])
    assert len(fp) == 9 and fp.n_unconverged == 0
    assert np.all(fp.residuals < 1e-14)            # polished to machine precision
    np.testing.assert_allclose(_sorted_rows(fp.points), _sorted_rows(want), atol=1e-12)
    zeros = np.sum(np.abs(fp.points) < 1e-8, axis=1)
    # the Jacobian diag(2 (1 - x_i^2)): unstable along each coordinate that is 0
    np.testing.assert_array_equal(fp.n_unstable, zeros)
    assert fp.stable.sum() == 4 and np.all(fp.stable == (zeros == 0))
    assert np.sum(zeros == 1) == 4 and np.sum(zeros == 2) == 1
    d = 2 * (1 - xstar**2)
    stable_ev = fp.eigenvalues[fp.stable]
    np.testing.assert_allclose(stable_ev, d, atol=1e-12)
    # the Jacobians are those of the map at the points
    np.testing.assert_allclose(fp.jacobians, m.jacobian(fp.points), atol=1e-14)


def test_logistic_period_two_orbit_and_multiplier():
    r = 3.2
    fp = find_fixed_points(logistic(r), np.linspace(0.02, 0.98, 25)[:, None], period=2)
    pts = fp.points[:, 0]
    two = fp.min_period == 2
    assert two.sum() == 2 and fp.n_unconverged == 0
    # the 2-cycle: roots of r^2 x^2 - r (r + 1) x + (r + 1) = 0
    want = np.sort((r + 1 + np.array([-1, 1]) * np.sqrt((r + 1) * (r - 3))) / (2 * r))
    np.testing.assert_allclose(np.sort(pts[two]), want, atol=1e-12)
    np.testing.assert_allclose(fp.eigenvalues[two, 0], 4 + 2 * r - r * r, atol=1e-12)
    assert np.all(fp.stable[two]) and np.all(fp.n_unstable[two] == 0)
    # both points of the cycle carry one orbit label; the fixed points their own
    assert len(set(fp.orbit[two].tolist())) == 1
    np.testing.assert_allclose(np.sort(pts[~two]), [0.0, 1 - 1 / r], atol=1e-12)
    assert len(set(fp.orbit.tolist())) == 3
    # the multiplier of a fixed point found as a period-2 point is f'(x)^2
    np.testing.assert_allclose(np.sort(fp.eigenvalues[~two, 0].real),
                               np.sort([r * r, (2 - r) ** 2]), rtol=1e-12)


def test_mlp_unique_fixed_point_is_the_forward_pass():
    rng = np.random.default_rng(3)
    Ws = [rng.normal(size=(6, 3)), rng.normal(size=(5, 6)), rng.normal(size=(2, 5))]
    bs = [rng.normal(size=6), rng.normal(size=5), rng.normal(size=2)]
    m = itermap.IterativeMap.from_mlp(Ws, bs)
    u = rng.normal(size=3)
    starts = rng.normal(scale=5.0, size=(40, m.dim))
    fp = find_fixed_points(m, starts, inputs=u)
    h1 = np.maximum(Ws[0] @ u + bs[0], 0)
    h2 = np.maximum(Ws[1] @ h1 + bs[1], 0)
    out = Ws[2] @ h2 + bs[2]
    assert len(fp) == 1 and fp.n_unconverged == 0
    np.testing.assert_allclose(fp.points[0], np.concatenate([u, h1, h2, out]), atol=1e-12)
    # the Jacobian of a feed-forward map is nilpotent: every multiplier is 0
    np.testing.assert_allclose(np.abs(fp.eigenvalues), 0.0, atol=1e-6)
    assert fp.stable[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_mlp_fixed_point_from_any_single_start(seed):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(4, 2)), rng.normal(size=(3, 4))]
    m = itermap.IterativeMap.from_mlp(Ws, activation="tanh")
    u = rng.normal(size=2)
    want = itermap.iterate(m, m.zeros(), 2, inputs=u, keep="last").final
    for _ in range(3):
        fp = find_fixed_points(m, rng.normal(scale=10.0, size=(1, m.dim)), inputs=u)
        np.testing.assert_allclose(fp.points, want[None, :], atol=1e-12)


def test_driven_rnn_fixed_point_matches_plain_iteration():
    rng = np.random.default_rng(4)
    W_hh = 0.4 * rng.normal(size=(6, 6)) / np.sqrt(6)      # contracting: one fixed point
    W_hx, b = rng.normal(size=(6, 2)), rng.normal(size=6)
    m = itermap.IterativeMap.from_rnn(W_hh, W_hx, b)
    u = np.array([0.3, -1.2])
    h = np.zeros(6)
    for _ in range(500):                                     # reference: plain iteration
        h = np.tanh(W_hh @ h + W_hx @ u + b)
    fp = find_fixed_points(m, rng.normal(size=(10, m.dim)), inputs=u)
    assert len(fp) == 1 and fp.n_unconverged == 0
    np.testing.assert_allclose(fp.points[0], np.concatenate([u, h]), atol=1e-12)
    # multipliers: the eigenvalues of diag(1 - h^2) W_hh, and 0 for the input block
    J = (1 - h**2)[:, None] * W_hh
    want = np.sort(np.abs(np.concatenate([np.linalg.eigvals(J), np.zeros(2)])))[::-1]
    np.testing.assert_allclose(np.abs(fp.eigenvalues[0]), want, atol=1e-12)
    assert fp.stable[0]


def test_logistic_period_three_orbit_chain_rule():
    r = 3.83                                                  # inside the period-3 window
    fp = find_fixed_points(logistic(r), np.linspace(0.01, 0.99, 60)[:, None], period=3)
    three = fp.min_period == 3
    assert three.sum() == 6                                   # a stable and an unstable 3-cycle
    x = fp.points[three, 0]
    # each point maps to another point of its orbit, and the orbit labels say so
    fx = r * x * (1 - x)
    j = np.argmin(np.abs(fx[:, None] - x[None, :]), axis=1)
    np.testing.assert_allclose(fx, x[j], atol=1e-10)
    np.testing.assert_array_equal(fp.orbit[three], fp.orbit[three][j])
    assert len(set(fp.orbit[three].tolist())) == 2
    # the multiplier is the product of f'(x) = r (1 - 2 x) along the orbit
    f3 = fx
    mult = r * (1 - 2 * x)
    for _ in range(2):
        mult = mult * r * (1 - 2 * f3)
        f3 = r * f3 * (1 - f3)
    np.testing.assert_allclose(fp.eigenvalues[three, 0].real, mult, rtol=1e-9, atol=1e-12)
    assert np.sum(fp.stable[three]) == 3
    # the fixed points 0 and 1 - 1/r are period-3 points too, with least period 1
    np.testing.assert_allclose(np.sort(fp.points[fp.min_period == 1, 0]), [0, 1 - 1 / r],
                               atol=1e-12)


def test_sparse_map_matches_its_dense_twin():
    m = itermap.random_rnn(60, gain=1.5, density=0.1, rng=0)
    assert itermap.backends.is_sparse(m.block_matrix.to_sparse())
    md = itermap.IterativeMap(m.block_matrix.to_dense())
    starts = 0.3 * np.random.default_rng(1).normal(size=(8, 60))
    fs, fd = find_fixed_points(m, starts), find_fixed_points(md, starts)
    assert len(fs) == len(fd) >= 1 and fs.n_unconverged == fd.n_unconverged
    np.testing.assert_allclose(_sorted_rows(fs.points), _sorted_rows(fd.points), atol=1e-12)
    W = md.block_matrix.to_dense()
    res = np.linalg.norm(np.tanh(fs.points @ W.T) - fs.points, axis=1)
    assert np.all(res <= 1e-10)


# -- backends -------------------------------------------------------------------------
def test_henon_over_namespaces(xp):
    starts = xp.asarray(np.random.default_rng(1).uniform(-2, 2, size=(16, 2)))
    fp = find_fixed_points(henon(), starts)
    assert itermap.backends.backend_of(fp.points) == itermap.backends.backend_of(starts)
    a, b = 1.4, 0.3
    xs = np.sort((-(1 - b) + np.array([-1, 1]) * np.sqrt((1 - b) ** 2 + 4 * a)) / (2 * a))
    np.testing.assert_allclose(np.sort(np.asarray(to_numpy(fp.points))[:, 0]), xs, atol=1e-12)
    assert np.asarray(to_numpy(fp.jacobians)).shape == (2, 2, 2)


def test_logistic_period_two_over_namespaces(xp):
    r = 3.2
    starts = xp.asarray(np.linspace(0.05, 0.95, 10)[:, None])
    fp = find_fixed_points(logistic(r), starts, period=2)
    ev = fp.eigenvalues[fp.min_period == 2, 0]
    np.testing.assert_allclose(ev, 4 + 2 * r - r * r, atol=1e-12)


# -- slow points, unconverged starts ----------------------------------------------------
def test_no_fixed_point_counts_unconverged_and_finds_the_slow_point():
    m = Shifted(1.0)
    starts = np.linspace(-3, 3, 8)[:, None]
    fp = find_fixed_points(m, starts, max_iter=60)
    assert len(fp) == 0 and fp.n_unconverged == 8 and fp.slow_points is None
    fp = find_fixed_points(m, starts, max_iter=60, slow_points=True)
    assert len(fp) == 0
    assert fp.slow_points.shape == (1, 1) and fp.n_unconverged < 8
    np.testing.assert_allclose(fp.slow_points[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(fp.slow_residuals, [1.0], rtol=1e-12)


def test_slow_point_of_a_tanh_ghost_matches_scalar_minimization():
    # x -> tanh(2 x + b) just past its saddle-node: one stable fixed point on the
    # left and a slow point (the ghost of the vanished pair) on the right
    w, b = 2.0, -0.6

    def q(s):
        return 0.5 * (np.tanh(w * s + b) - s) ** 2

    m = itermap.IterativeMap(np.array([[w]]), bias=np.array([b]))
    ref = scipy.optimize.minimize_scalar(q, bounds=(0.3, 1.2), method="bounded",
                                         options={"xatol": 1e-10})
    assert q(ref.x) > 1e-6                        # a true slow point: q > 0
    fp = find_fixed_points(m, np.linspace(-1.5, 1.5, 16)[:, None], slow_points=True,
                           max_iter=100)
    left = scipy.optimize.brentq(lambda s: np.tanh(w * s + b) - s, -1.5, 0.0)
    np.testing.assert_allclose(fp.points[:, 0], [left], atol=1e-12)
    assert fp.slow_points.shape[0] == 1
    # a slow point is located to about 1e-6 (q is flat to second order there)
    np.testing.assert_allclose(fp.slow_points[0, 0], ref.x, atol=1e-5)
    np.testing.assert_allclose(fp.slow_residuals[0], np.sqrt(2 * q(ref.x)), rtol=1e-8)


def test_max_iter_too_small_is_counted_not_raised():
    m = itermap.IterativeMap(np.diag([2.0, 2.0]))
    fp = find_fixed_points(m, np.array([[0.3, 0.7], [0.9, 0.95]]), max_iter=1)
    assert fp.n_unconverged + len(fp) >= 1 and fp.n_starts == 2
    assert np.all(fp.residuals <= 1e-10)


# -- properties -----------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 6), gain=st.floats(0.3, 2.5))
def test_points_solve_the_equation_and_are_distinct(seed, n, gain):
    m = itermap.random_rnn(n, gain=gain, rng=seed)
    W = m.block_matrix.to_dense()
    starts = np.random.default_rng(seed).normal(size=(24, n))
    fp = find_fixed_points(m, starts)
    pts = np.asarray(fp.points)
    # every point solves the equation; the origin, when found, exactly
    norms = np.linalg.norm(pts, axis=1)
    assert np.all((norms < 1e-12) | (norms > 1e-6))
    np.testing.assert_array_less(np.linalg.norm(np.tanh(pts @ W.T) - pts, axis=1), 1e-10)
    d = np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=-1) + np.eye(len(pts))
    assert np.all(d > 1e-6)
    # every start converged or was counted
    assert fp.n_unconverged <= 24
    # eigenvalues sorted by modulus, descending; stability consistent with them
    mod = np.abs(fp.eigenvalues)
    assert np.all(np.diff(mod, axis=1) <= 1e-12)
    np.testing.assert_array_equal(fp.stable, np.all(mod < 1, axis=1))
    np.testing.assert_array_equal(fp.n_unstable, np.sum(mod > 1, axis=1))
    # reference eigenvalues of the reference Jacobian diag(1 - x^2) W
    for p, ev in zip(pts, fp.eigenvalues):
        J = (1 - np.tanh(W @ p) ** 2)[:, None] * W
        np.testing.assert_allclose(np.sort(np.abs(np.linalg.eigvals(J)))[::-1],
                                   np.abs(ev), atol=1e-9)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_odd_map_fixed_points_come_in_pairs(seed):
    # tanh is odd: x is a fixed point of x -> tanh(W x) exactly when -x is
    m = itermap.random_rnn(4, gain=2.0, rng=seed)
    rng = np.random.default_rng(seed)
    starts = rng.normal(size=(32, 4))
    fp = find_fixed_points(m, np.concatenate([starts, -starts]))
    pts = np.asarray(fp.points)
    if fp.n_unconverged == 0:
        d = np.linalg.norm(pts[:, None, :] + pts[None, :, :], axis=-1)
        assert np.all(d.min(axis=1) < 1e-8)


# -- duplicates, saving, sampling ---------------------------------------------------------
def test_duplicates_merge_and_least_residual_represents():
    m = itermap.IterativeMap(np.array([[2.0]]))
    starts = np.full((50, 1), 0.8) + np.linspace(0, 1e-3, 50)[:, None]
    fp = find_fixed_points(m, starts)
    assert len(fp) == 1 and fp.n_unconverged == 0


def test_chunks_of_starts_give_the_same_points(monkeypatch):
    import itermap.analysis.fixed_points._dense as fpmod

    m = itermap.IterativeMap(np.diag([2.0, 2.0]))
    g = np.linspace(-1.5, 1.5, 7)
    starts = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    whole = find_fixed_points(m, starts)
    # a budget of 5 starts' Jacobians per batch: 10 batches, points found many times
    monkeypatch.setattr(fpmod, "_MEM_BUDGET", 4 * 2 * 2 * 8 * 5)
    chunked = find_fixed_points(m, starts)
    assert len(chunked) == len(whole) == 9
    np.testing.assert_allclose(_sorted_rows(chunked.points), _sorted_rows(whole.points),
                               atol=1e-14)
    assert chunked.n_unconverged == whole.n_unconverged == 0


def test_save_and_load_roundtrip(tmp_path):
    fp = find_fixed_points(logistic(3.2), np.linspace(0.1, 0.9, 6)[:, None], period=2)
    back = itermap.load(itermap.save(fp, tmp_path / "fp.npz"))
    assert isinstance(back, FixedPoints)
    for name in ("points", "residuals", "jacobians", "eigenvalues", "stable", "n_unstable",
                 "orbit", "min_period"):
        np.testing.assert_array_equal(np.asarray(getattr(back, name)),
                                      np.asarray(getattr(fp, name)))
    assert back.n_unconverged == fp.n_unconverged and back.period == 2
    assert "period=2" in repr(back)


def test_sample_states_are_trajectory_states_plus_noise():
    m = itermap.random_rnn(5, gain=0.9, rng=0)
    x0 = np.random.default_rng(2).normal(size=(7, 5))
    s = sample_states(m, 7, steps=4, noise=0.0, rng=3, x0=x0)
    traj = itermap.iterate(m, x0, 4).states          # (5, 7, 5)
    # each sample is one of its own trajectory's states
    hit = np.isclose(traj, s[None, :, :], atol=1e-14).all(axis=-1).any(axis=0)
    assert hit.all()
    noisy = sample_states(m, 7, steps=4, noise=0.1, rng=3, x0=x0)
    assert 0.02 < np.std(noisy - s) < 0.3
    again = sample_states(m, 7, steps=4, noise=0.1, rng=3, x0=x0)
    np.testing.assert_array_equal(noisy, again)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_sample_states_driven_map_and_divergence():
    rng = np.random.default_rng(0)
    m = itermap.IterativeMap.from_mlp([rng.normal(size=(3, 2))])
    s = sample_states(m, 4, steps=3, rng=0, inputs=np.array([1.0, -1.0]))
    assert s.shape == (4, m.dim)
    with pytest.raises(itermap.DivergenceError, match="overflow"):
        sample_states(logistic(4.0), 4, steps=50, rng=0, x0=np.array([5.0]))


# -- bad input ----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, exc, match", [
    ({"period": 0}, ValueError, "period"),
    ({"period": 1.5}, TypeError, "period"),
    ({"tol": 0.0}, ValueError, "tol"),
    ({"tol": -1e-3}, ValueError, "tol"),
    ({"tol": "x"}, TypeError, "tol"),
    ({"unique_tol": 0.0}, ValueError, "unique_tol"),
    ({"max_iter": 0}, ValueError, "max_iter"),
    ({"inputs": np.zeros(2)}, ValueError, "autonomous"),
])
def test_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        find_fixed_points(henon(), np.zeros((3, 2)), **kwargs)


@pytest.mark.parametrize("x0, exc, match", [
    (np.zeros((3, 3)), ValueError, "dim"),
    (np.zeros((2, 3, 2)), ValueError, "shape"),
    (np.zeros((0, 2)), ValueError, "empty"),
    (np.zeros((3, 2), dtype=object), TypeError, "floating"),  # integers are cast (round 20)
    (np.zeros((3, 2), dtype=np.complex128), TypeError, "floating"),
    (np.array([[np.nan, 0.0]]), ValueError, "NaN"),
    (None, TypeError, "x0"),
])
def test_bad_starts(x0, exc, match):
    with pytest.raises(exc, match=match):
        find_fixed_points(henon(), x0)


def test_bad_inputs_for_driven_map():
    m = itermap.IterativeMap.from_mlp([np.ones((2, 3))])
    with pytest.raises(ValueError, match="driven"):
        find_fixed_points(m, np.zeros((2, m.dim)))
    with pytest.raises(ValueError, match="shape"):
        find_fixed_points(m, np.zeros((2, m.dim)), inputs=np.zeros(2))


@pytest.mark.parametrize("kwargs, exc", [
    ({"n": 0}, ValueError), ({"n": 2.0}, TypeError), ({"n": 3, "steps": -1}, ValueError),
    ({"n": 3, "noise": -0.1}, ValueError), ({"n": 3, "x0": np.zeros(4)}, ValueError),
])
def test_sample_states_bad_input(kwargs, exc):
    with pytest.raises(exc):
        sample_states(henon(), **kwargs)


# -- the coarse merging and the giving up of stalled starts ------------------------------
def _hybr_distinct(W, starts, tol=1e-10, unique_tol=1e-6):
    """Distinct points that a plain loop of scipy's hybr reaches (the issue's reference)."""
    eye = np.eye(W.shape[0])
    kept = []
    for x0 in starts:
        sol = scipy.optimize.root(lambda x: np.tanh(W @ x) - x, x0, method="hybr",
                                  jac=lambda x: (1 - np.tanh(W @ x) ** 2)[:, None] * W - eye)
        if np.linalg.norm(np.tanh(W @ sol.x) - sol.x) <= tol and all(
                np.linalg.norm(sol.x - q) > unique_tol for q in kept):
            kept.append(sol.x)
    return len(kept)


# seed 6: the monotone damped search alone ends at local minima of q and misses the
# origin that hybr reaches; the L-BFGS steps on q before Newton find it
@pytest.mark.parametrize("seed", [0, 3, 5, 6, 7])
def test_chaotic_net_finds_at_least_the_points_of_a_hybr_loop(seed):
    m = itermap.random_rnn(16, gain=1.5, rng=seed)
    W = m.block_matrix.to_dense()
    starts = sample_states(m, 64, steps=30, noise=0.5, rng=seed + 1)
    fp = find_fixed_points(m, starts)
    pts = np.asarray(fp.points)
    np.testing.assert_array_less(np.linalg.norm(np.tanh(pts @ W.T) - pts, axis=1), 1e-10)
    assert len(fp) >= _hybr_distinct(W, starts)


def test_starts_merged_early_count_by_their_representative():
    # 40 starts within 1e-4 of each other (inside the coarse merging radius) and 40
    # more near the negative point: all converge, to the two stable points of tanh(2x)
    m = itermap.IterativeMap(np.array([[2.0]]))
    starts = np.concatenate([0.6 + 1e-4 * np.linspace(0, 1, 40), -0.7 - 1e-4 *
                             np.linspace(0, 1, 40)])[:, None]
    fp = find_fixed_points(m, starts)
    root = scipy.optimize.brentq(lambda s: np.tanh(2 * s) - s, 0.5, 1.5)
    np.testing.assert_allclose(np.sort(fp.points[:, 0]), [-root, root], atol=1e-12)
    assert fp.n_unconverged == 0 and fp.n_starts == 80


def test_stalled_starts_are_given_up_and_counted():
    # no fixed point at all: every start stalls near the slow point and is counted
    m = Shifted(1.0)
    fp = find_fixed_points(m, np.linspace(-3, 3, 8)[:, None], max_iter=500)
    assert len(fp) == 0 and fp.n_unconverged == 8


# -- early merging of starts drawn together ------------------------------------------------
def _drawn_together_reference(x, p1, p2, res, radius, kappa, k):
    """Plain loop: partners are among the k nearest rows within radius (either way round);
    each row follows its partner of least residual (ties: lower index)."""
    n = len(x)
    dist = np.linalg.norm(x[:, None] - x[None], axis=2)
    nearest = []
    for i in range(n):
        others = sorted((dist[i, j], j) for j in range(n) if j != i)
        nearest.append({j for d, j in others[:k] if d <= radius})
    lead = np.arange(n)
    for i in range(n):
        best = (res[i], i)
        for j in range(n):
            if j == i or not (j in nearest[i] or i in nearest[j]):
                continue
            d0 = np.linalg.norm(x[i] - x[j])
            d1 = np.linalg.norm(p1[i] - p1[j])
            d2 = np.linalg.norm(p2[i] - p2[j])
            if d0 <= radius and d0 <= kappa * d1 and d1 <= kappa * d2:
                best = min(best, (res[j], j))
        lead[i] = best[1]
    return lead


def _drawn_together_case(n, dim, seed):
    rng = np.random.default_rng(seed)
    # clusters shrinking at random rates: some pairs contract twice by half, some do not
    center = rng.normal(size=(3, dim))[rng.integers(0, 3, n)]
    offsets = rng.normal(size=(n, dim))
    shrink = rng.uniform(0.2, 1.0, size=(n, 1))
    p2 = center + offsets
    p1 = center + shrink * offsets
    x = center + shrink ** 2 * offsets
    return x, p1, p2, rng.uniform(size=n), float(rng.uniform(0.5, 3.0))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), dim=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_drawn_together_matches_a_reference_loop(n, dim, seed):
    from itermap.analysis.fixed_points import _clustering as fpm
    x, p1, p2, res, radius = _drawn_together_case(n, dim, seed)
    got = fpm._drawn_together(np, x, p1, p2, res, radius)
    want = _drawn_together_reference(x, p1, p2, res, radius, fpm._CONVERGE, fpm._PARTNERS)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 60), seed=st.integers(0, 2**31 - 1))
def test_drawn_together_from_rows_of_the_history_and_known_distances(n, seed):
    # the search passes its whole history arrays with the rows, and the rows' squared
    # distances: the same leads as the rows taken out first (checked against the reference)
    from itermap.analysis.fixed_points import _clustering as fpm
    x, p1, p2, res, radius = _drawn_together_case(n, 3, seed)
    rows = np.random.default_rng(seed).permutation(2 * n)[:n]
    P1, P2 = np.zeros((2 * n, 3)), np.zeros((2 * n, 3))
    P1[rows], P2[rows] = p1, p2
    d2 = np.sum((x[:, None] - x[None]) ** 2, axis=2)
    got = fpm._drawn_together(np, x, P1, P2, res, radius, rows=rows, d2=d2)
    want = _drawn_together_reference(x, p1, p2, res, radius, fpm._CONVERGE, fpm._PARTNERS)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_drawn_together_same_with_a_kd_tree(monkeypatch, seed):
    # many starts of a low-dimensional map go through a k-d tree, not all pairs
    from itermap.analysis.fixed_points import _clustering as fpm
    x, p1, p2, res, radius = _drawn_together_case(400, 3, seed)
    tree = fpm._drawn_together(np, x, p1, p2, res, radius)
    monkeypatch.setattr(fpm, "_TREE_ROWS", 10 ** 9)
    dense = fpm._drawn_together(np, x, p1, p2, res, radius)
    np.testing.assert_array_equal(tree, dense)
    assert np.sum(dense != np.arange(400)) > 20          # the case merges rows at all



def _count_jacobian_rows(monkeypatch, m):
    """The row counts of every Jacobian the search asks ``m``'s class for (a list it fills)."""
    rows, jacobian = [], type(m).jacobian

    def counting(self, x, u=None):
        rows.append(x.shape[0])
        return jacobian(self, x, u)

    monkeypatch.setattr(type(m), "jacobian", counting)
    return rows

def test_merging_starts_drawn_together_saves_work_and_finds_the_same_points(monkeypatch):
    from itermap.analysis.fixed_points import _search as fpm
    m = itermap.random_rnn(32, gain=1.5, rng=0)
    starts = sample_states(m, 128, steps=30, noise=0.5, rng=1)
    rows = _count_jacobian_rows(monkeypatch, m)
    # the Newton search alone: wandering paths are chaotic and reach other points in each run
    merged = find_fixed_points(m, starts, patience=0, q_steps=0)
    work_merged = sum(rows)
    rows.clear()
    monkeypatch.setattr(fpm, "_CONVERGE_FRAC", 0.0)        # no early merging
    plain = find_fixed_points(m, starts, patience=0, q_steps=0)
    assert work_merged < 0.9 * sum(rows)
    # the same distinct points, each within unique_tol of one found without merging
    assert len(merged) == len(plain)
    d = np.linalg.norm(np.asarray(merged.points)[:, None] - np.asarray(plain.points)[None],
                       axis=2)
    assert np.all(d.min(axis=1) <= 1e-6)


# -- issue 15: a search that does not give up early; slow points; per-start status ------
def test_every_start_has_a_status_and_the_counts_add_up():
    from itermap.analysis import STATUS
    m = itermap.random_rnn(24, gain=2.0, rng=1)
    starts = sample_states(m, 40, steps=30, noise=0.5, rng=2)
    fp = find_fixed_points(m, starts, progress=False)
    st = np.asarray(fp.status)
    assert st.shape == (40,) and set(np.unique(st)) <= set(range(len(STATUS)))
    counts = fp.status_counts()
    assert sum(counts.values()) == 40 and counts["converged"] == fp.n_converged
    assert fp.n_unconverged == 40 - fp.n_converged - fp.n_slow


def test_patience_converges_more_starts_than_giving_up_at_once():
    # random_rnn(64, gain=2.5): stalled starts given up at once against starts that wander
    m = itermap.random_rnn(64, gain=2.5, rng=0)
    W = m.block_matrix.to_dense()
    starts = sample_states(m, 32, steps=50, noise=0.5, rng=1)
    quick = find_fixed_points(m, starts, patience=0, progress=False)
    patient = find_fixed_points(m, starts, progress=False)
    assert patient.n_converged >= 16 > quick.n_converged        # at least half the starts
    assert len(patient) > len(quick)
    assert len(patient) >= _hybr_distinct(W, starts)
    pts = np.asarray(patient.points)
    np.testing.assert_array_less(np.linalg.norm(np.tanh(pts @ W.T) - pts, axis=1), 1e-10)


def test_q_method_hands_the_rows_lbfgs_leaves_creeping_to_newton():
    # a linear map with multipliers from 0 to 1 - 1e-4: q's Hessian (A - I)^T (A - I) spans
    # 8 decades, L-BFGS creeps down its valley past max_iter, and Newton ends it in a step;
    # the point is (I - A)^-1 b (a trained flip-flop GRU's memories look alike)
    rng = np.random.default_rng(0)
    n = 40
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ np.diag(1.0 - np.logspace(-4, 0, n)) @ Q.T
    want = rng.standard_normal(n)
    b = want - A @ want
    m = itermap.FunctionMap(lambda x: x @ A.T + b, n,
                            jacobian=lambda x: np.broadcast_to(A, x.shape[:-1] + (n, n)))
    fp = find_fixed_points(m, rng.standard_normal((4, n)), slow_points=True, progress=False)
    assert len(fp) == 1 and fp.n_converged == 4
    np.testing.assert_allclose(np.asarray(fp.points)[0], want, atol=1e-9)


def test_slow_point_of_a_ghost_by_q_minimization():
    # F(x) = x - 0.1 (x^2 + eps): no fixed point; q = 0.005 (x^2 + eps)^2 has its minimum
    # at x = 0 with speed ||F(x) - x|| = 0.1 eps and F'(0) = 1 (the ghost of a saddle-node)
    eps = 0.01
    m = itermap.FunctionMap(lambda x: x - 0.1 * (x * x + eps), 1,
                            jacobian=lambda x: (1.0 - 0.2 * x)[:, :, None],
                            vjp=lambda x, w: w * (1.0 - 0.2 * x))
    fp = find_fixed_points(m, np.linspace(-2, 2, 9)[:, None], method="q", progress=False)
    assert len(fp) == 0 and fp.n_slow == 9
    np.testing.assert_allclose(np.asarray(fp.slow_points)[:, 0], [0.0], atol=1e-6)
    np.testing.assert_allclose(fp.slow_residuals, [0.1 * eps], rtol=1e-9)
    np.testing.assert_allclose(fp.slow_q, [0.5 * (0.1 * eps) ** 2], rtol=1e-9)
    np.testing.assert_allclose(fp.slow_eigenvalues, [[1.0]], atol=1e-6)


def test_q_minima_agree_with_scipy_lbfgs():
    # the minima of q that our batched L-BFGS reaches, against scipy's L-BFGS-B on the
    # same q and gradient from the same starts: the same q values at each start
    from itermap.analysis.fixed_points import _common, _q, _result
    m = itermap.random_rnn(12, gain=2.0, rng=3)
    W = m.block_matrix.to_dense()
    starts = np.asarray(sample_states(m, 6, steps=20, noise=0.3, rng=4))
    F = _common._Power(m, 1, None, np)
    xe, q, status = _q._lbfgs_q(F, starts.copy(), np, tol=1e-12, max_iter=3000)

    def qg(x):
        t = np.tanh(W @ x)
        g = t - x
        return 0.5 * g @ g, ((1 - t * t)[:, None] * W - np.eye(12)).T @ g

    for i, x0 in enumerate(starts):
        ref = scipy.optimize.minimize(qg, x0, jac=True, method="L-BFGS-B",
                                      options={"gtol": 1e-14, "ftol": 1e-30, "maxiter": 5000})
        G, q_here, grad = _q._q_and_grad(F, np, xe[i:i + 1])
        np.testing.assert_allclose(grad[0], qg(xe[i])[1], atol=1e-12)
        # both end at a stationary point of q (not always the same one: compare q only
        # where they end at the same point)
        if np.linalg.norm(ref.x - xe[i]) < 1e-4:
            np.testing.assert_allclose(q[i], ref.fun, atol=1e-12)
    assert np.all(status != _result.GAVE_UP_NONFINITE)


def test_q_method_finds_the_tanh_points_by_q_then_newton():
    m = itermap.IterativeMap(np.array([[2.0]]))
    fp = find_fixed_points(m, np.linspace(-2, 2, 9)[:, None], method="q", progress=False)
    root = scipy.optimize.brentq(lambda s: np.tanh(2 * s) - s, 0.5, 1.5)
    np.testing.assert_allclose(np.sort(fp.points[:, 0]), [-root, 0.0, root], atol=1e-12)
    assert fp.n_converged == 9 and len(fp.slow_points) == 0


def test_method_patience_q_steps_progress_are_checked():
    m = itermap.IterativeMap(np.array([[2.0]]))
    x0 = np.array([[0.5]])
    with pytest.raises(ValueError, match="method"):
        find_fixed_points(m, x0, method="adam")
    with pytest.raises(ValueError, match="patience"):
        find_fixed_points(m, x0, patience=-1)
    with pytest.raises(TypeError, match="q_steps"):
        find_fixed_points(m, x0, q_steps=1.5)
    with pytest.raises(TypeError, match="progress"):
        find_fixed_points(m, x0, progress="yes")


_FLIP_FLOP = Path(__file__).resolve().parent.parent / "data" / "trained" / "flip_flop_rnn.npz"


@pytest.mark.skipif(not _FLIP_FLOP.exists(), reason="the trained flip-flop RNN is missing")
def test_trained_flip_flop_has_all_eight_stable_points():
    # the 3-bit flip-flop RNN (N=64 tanh, trained on branch train) under zero input
    # remembers 8 states: 8 stable fixed points whose outputs carry every sign pattern
    m = itermap.load(_FLIP_FLOP)
    u = np.zeros(m.input_size)
    x0 = np.random.default_rng(0).uniform(-1, 1, (256, m.dim))
    starts = sample_states(m, 256, steps=100, noise=0.1, rng=0, inputs=u, x0=x0)
    fp = find_fixed_points(m, starts, inputs=u, progress=False)
    pts = np.asarray(fp.points)[np.asarray(fp.stable)]
    assert pts.shape[0] == 8
    out = pts[:, -m.forced_size:] if m.input_block == 0 else pts
    signs = {tuple(np.sign(p[-3:]).astype(int)) for p in out}
    assert signs == {(a, b, c) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)}
    # each is a fixed point of the map (a plain reference step), and stable by its own
    # Jacobian's spectral radius
    step = np.asarray(m.step(pts, np.broadcast_to(u, (8, u.size))))
    np.testing.assert_array_less(np.linalg.norm(step - pts, axis=1), 1e-10)
    J = np.asarray(m.jacobian(pts, np.broadcast_to(u, (8, u.size))))
    assert np.all(np.abs(np.linalg.eigvals(J)).max(axis=1) < 1.0)


def test_the_starts_are_not_modified_and_the_search_repeats():
    m = itermap.random_rnn(32, gain=2.0, rng=4)
    starts = np.asarray(sample_states(m, 48, steps=30, noise=0.5, rng=5))
    before = starts.copy()
    a = find_fixed_points(m, starts, progress=False)
    np.testing.assert_array_equal(starts, before)
    b = find_fixed_points(m, starts, progress=False)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.status, b.status)


def test_large_maps_go_matrix_free_and_agree_with_the_dense_search(monkeypatch):
    # a sparse net with a bias: past _KRYLOV_DIM the search is Newton-Krylov on the
    # tangent; the same point as the dense search, and its leading multipliers by ARPACK
    # agree with a dense eigensolver
    from itermap.analysis.fixed_points import _driver as fpm
    r = itermap.random_rnn(300, gain=1.3, density=0.05, rng=0)
    W = r.block_matrix.to_sparse().tocsr()
    m = itermap.IterativeMap(W, bias=np.random.default_rng(0).normal(0, 0.5, 300))
    starts = np.asarray(sample_states(m, 3, steps=30, noise=0.3, rng=1))
    dense = find_fixed_points(m, starts, progress=False)
    monkeypatch.setattr(fpm, "_KRYLOV_DIM", 100)
    calls = []
    jac = type(m).jacobian
    monkeypatch.setattr(type(m), "jacobian", lambda self, *a, **k: calls.append(1) or
                        jac(self, *a, **k))
    krylov = find_fixed_points(m, starts, progress=False)
    assert not calls and krylov.jacobians is None           # matrix-free
    assert len(krylov) == len(dense) == 1 and krylov.n_converged == 3
    np.testing.assert_allclose(krylov.points, dense.points, atol=1e-10)
    x = np.asarray(krylov.points)[0]
    ev = np.linalg.eigvals((1 - np.tanh(W @ x + m.bias) ** 2)[:, None] * W.toarray())
    np.testing.assert_allclose(np.abs(krylov.eigenvalues[0, :4]),
                               np.sort(np.abs(ev))[::-1][:4], rtol=1e-8)
    assert bool(krylov.stable[0]) == bool(np.abs(ev).max() < 1)


# -- issue 26: methods, matrix-free Newton-Krylov, deflation, progress ---------------------
def test_methods_are_a_registry_and_unknown_names_are_refused():
    from itermap.analysis.fixed_points import METHODS
    assert set(METHODS) == {"auto", "newton", "newton-krylov", "homotopy", "q"}
    m = itermap.IterativeMap(np.array([[2.0]]))
    for bad in ("krylov", 3, None):
        with pytest.raises(ValueError, match="method"):
            find_fixed_points(m, np.array([[0.5]]), method=bad)
    with pytest.raises(ValueError, match="slow"):
        find_fixed_points(m, np.array([[0.5]]), method="newton-krylov", slow_points=True)


def _sparse_linear(n, seed, density=0.01):
    """``x -> A x + b`` with sparse A of spectral radius about 0.5: its one fixed point is
    ``(I - A)^{-1} b`` (solved here by a sparse direct solver)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    A = sp.random(n, n, density=density, random_state=seed, format="csr",
                  data_rvs=np.random.default_rng(seed).standard_normal)
    A = A * (0.5 / np.sqrt(n * density))
    b = np.random.default_rng(seed + 1).normal(size=n)
    x_star = spla.spsolve((sp.identity(n, format="csc") - A).tocsc(), b)
    return itermap.IterativeMap(A, bias=b, activation="identity"), A, b, x_star


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(50, 400))
def test_newton_krylov_linear_map_closed_form(seed, n):
    m, A, b, x_star = _sparse_linear(n, seed)
    x0 = np.random.default_rng(seed).normal(size=(2, n))
    fp = find_fixed_points(m, x0, method="newton-krylov", progress=False)
    assert len(fp) == 1 and fp.n_converged == 2 and fp.jacobians is None
    x = np.asarray(fp.points)[0]
    np.testing.assert_allclose(x, x_star, atol=1e-9)
    assert np.linalg.norm(A @ x + b - x) <= 1e-10       # the residual, independently


def test_newton_krylov_sparse_rnn_residual_from_step_and_no_dense_array(monkeypatch):
    # a contracting sparse tanh network with a bias: its one fixed point is the limit of
    # the plain iteration (the reference), reached without any n x n array; the complete
    # sparse LU (untraced, used up to a 64 MiB fill) is turned off: GMRES alone is tested
    import tracemalloc

    from itermap.analysis.fixed_points import _newton_krylov
    monkeypatch.setattr(_newton_krylov, "_LU_BYTES", 0)
    n = 1500
    r = itermap.random_rnn(n, gain=0.6, density=6e-3, rng=3)
    b = np.random.default_rng(4).normal(0, 0.5, n)
    m = itermap.IterativeMap(r.block_matrix.to_sparse().tocsr(), bias=b)
    W = r.block_matrix.to_sparse().tocsr()
    ref = np.zeros(n)
    for _ in range(400):
        ref = np.tanh(W @ ref + b)
    x0 = np.random.default_rng(5).normal(size=(2, n))
    tracemalloc.start()
    try:
        fp = find_fixed_points(m, x0, method="newton-krylov", progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < n * n * 8 / 4, peak           # one dense n x n array: 18 MB
    assert len(fp) == 1 and fp.n_converged == 2
    P = np.asarray(fp.points)
    np.testing.assert_allclose(P[0], ref, atol=1e-9)
    res = np.linalg.norm(np.asarray(m.step(P)) - P, axis=1)
    assert np.all(res <= 1e-10)
    # the leading multiplier (ARPACK) against a dense eigensolver on the exact Jacobian
    J = (1 - np.tanh(W @ P[0] + b) ** 2)[:, None] * W.toarray()
    rho = np.abs(np.linalg.eigvals(J)).max()
    np.testing.assert_allclose(np.abs(fp.eigenvalues[0, 0]), rho, rtol=1e-8)
    assert bool(fp.stable[0]) == bool(rho < 1)


def test_auto_is_newton_krylov_past_the_stated_dim_and_never_forms_the_identity(monkeypatch):
    import tracemalloc
    n = 200_000
    m = itermap.random_rnn(n, gain=1.2, density=2e-5, rng=0)
    x0 = np.random.default_rng(1).normal(size=(1, n)) * 0.1
    # Newton-Krylov alone: the gain paths "auto" then runs for its unconverged starts are
    # tested in test_newton_krylov_homotopy.py (at n = 200,000 under tracemalloc: 5 min)
    from itermap.analysis.fixed_points import _driver
    from itermap.analysis.fixed_points import _newton_krylov as nk
    monkeypatch.setattr(_driver, "_paths_for_unconverged", lambda problem, sol: sol)
    # IDR(s)'s memory does not grow with its products: 200 a Newton step keep this short
    real_idrs = nk.idrs
    monkeypatch.setattr(nk, "idrs", lambda A, b, **k: real_idrs(A, b, **{
        **k, "max_products": 200}))
    tracemalloc.start()
    try:
        fp = find_fixed_points(m, x0, max_iter=3, q_steps=0, progress=False)  # "auto"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fp.jacobians is None and fp.n_starts == 1
    assert peak < 2e9, peak           # the dense identity alone would be 320 GB
    # the dense method is refused up front, with its estimate, naming the option
    with pytest.raises(ValueError, match=r"method.*GB"):
        find_fixed_points(m, x0, method="newton", progress=False)


def test_newton_krylov_refuses_up_front_when_memory_is_short(monkeypatch):
    import itermap._core._checks as checks
    monkeypatch.setattr(checks, "_physical_memory", lambda: 1e4)
    m, _, _, _ = _sparse_linear(300, 0)
    with pytest.raises(ValueError, match=r"method.*newton-krylov.*GB"):
        find_fixed_points(m, np.zeros((4, 300)), method="newton-krylov")


def test_deflated_step_is_newton_on_the_deflated_residual():
    # Farrell et al.'s rescaled step against Newton on M(x) G(x) with a finite-difference
    # Jacobian of the deflated residual
    from itermap.analysis.fixed_points._deflation import deflated_step, log_deflation
    rng = np.random.default_rng(0)
    n = 5
    A = rng.normal(size=(n, n))
    c = rng.normal(size=n)
    pts = rng.normal(size=(3, n))
    radius = 0.7

    def G(x):
        return np.tanh(A @ x) - x + c

    def MG(x):
        return np.exp(log_deflation(x[None, :], pts, radius)[0][0]) * G(x)

    x = rng.normal(size=n)
    h = 1e-6
    Jt = np.column_stack([(MG(x + h * e) - MG(x - h * e)) / (2 * h) for e in np.eye(n)])
    ref = np.linalg.solve(Jt, -MG(x))
    J = (1 - np.tanh(A @ x) ** 2)[:, None] * A - np.eye(n)
    dx = np.linalg.solve(J, -G(x))
    _, grad = log_deflation(x[None, :], pts, radius)
    tau = deflated_step(dx[None, :], grad)[0]
    np.testing.assert_allclose(tau * dx, ref, rtol=1e-6, atol=1e-8)
    # M itself: the product formula
    d2 = np.sum((x - pts) ** 2, axis=1)
    np.testing.assert_allclose(np.exp(log_deflation(x[None, :], pts, radius)[0][0]),
                               np.prod(1 + radius ** 2 / d2), rtol=1e-12)


def test_deflation_turns_repeated_convergence_into_new_points():
    # x -> tanh(2x) per unit, 4 units: 81 fixed points, every start from near one stable
    # point; undeflated Newton-Krylov returns that point each time, deflated ones others
    from itermap.analysis.fixed_points import _newton_krylov as nk
    m = itermap.IterativeMap(2.0 * np.eye(4))
    p = np.full(4, 0.9575)
    x0 = p + np.random.default_rng(0).normal(scale=0.05, size=(6, 4))
    fp = find_fixed_points(m, x0, method="newton-krylov", progress=False)
    P = np.asarray(fp.points)
    assert np.all(np.linalg.norm(np.tanh(2 * P) - P, axis=1) <= 1e-10)
    # every coordinate of every point is one of the three roots of tanh(2 y) = y
    roots = np.array([-0.957504, 0.0, 0.957504])
    assert np.all(np.min(np.abs(P[..., None] - roots), axis=-1) < 1e-5)
    assert len(fp) >= 4
    # without deflation: one point
    nk_radius = nk._DEFLATE_FRAC
    try:
        nk._DEFLATE_FRAC = 0.0
        plain = find_fixed_points(m, x0, method="newton-krylov", progress=False)
    finally:
        nk._DEFLATE_FRAC = nk_radius
    assert len(plain) == 1


def test_progress_counts_starts_and_leaves_the_final_state(capsys):
    import re
    m = itermap.random_rnn(24, gain=2.0, rng=0)
    x0 = np.asarray(sample_states(m, 40, steps=30, noise=0.5, rng=1))
    fp = find_fixed_points(m, x0, progress=True)
    err = capsys.readouterr().err
    counts = [int(k) for k in re.findall(r"(\d+)/40 ", err)]
    assert counts and counts[-1] == 40 and counts == sorted(counts)
    assert "start" in err and err.rstrip("\n").endswith("]")     # left on screen
    assert sum(fp.status_counts().values()) == 40
    # the last line drawn gives the result's count of points, not a phase's running rows
    last = err.rstrip("\n").split("\r")[-1]
    assert f"points={len(fp)}]" in last and "running=" not in last, last


# -- round 9: the method registry, the q phase's default -----------------------------------
def test_a_method_registered_in_methods_is_run_by_the_driver(monkeypatch):
    # the contract of the package docstring: Problem -> Solution, under a new name; the
    # driver adds stability and orbits. Checked against the roots of tanh(2x) = x (brentq)
    from itermap.analysis.fixed_points import METHODS
    from itermap.analysis.fixed_points._common import Solution

    calls = []

    def mine(problem):
        calls.append(problem.method)
        P = np.asarray(problem.x)[:1] * 0.0          # the origin only
        G = np.tanh(2.0 * P) - P
        return Solution(points=P, residuals=np.linalg.norm(G, axis=1),
                        status=np.zeros(problem.x.shape[0], np.int8), jacobians=None,
                        eigenvalues=np.array([[2.0 + 0j]]))

    monkeypatch.setitem(METHODS, "mine", mine)
    m = itermap.IterativeMap(np.array([[2.0]]))
    fp = find_fixed_points(m, np.array([[0.3], [0.7]]), method="mine")
    assert calls == ["mine"] and len(fp) == 1 and fp.n_converged == 2
    assert not fp.stable[0] and fp.n_unstable.tolist() == [1]     # |2| > 1
    # the built-in names run through the same registry and agree on this map
    root = scipy.optimize.brentq(lambda s: np.tanh(2 * s) - s, 0.5, 1.5)
    for name in ("newton", "q", "newton-krylov"):
        got = find_fixed_points(m, np.linspace(-1.5, 1.5, 7)[:, None], method=name,
                                progress=False)
        np.testing.assert_allclose(np.sort(np.asarray(got.points)[:, 0]), [-root, 0, root],
                                   atol=1e-10)


def test_q_steps_default_skips_the_q_phase_on_small_maps_only(monkeypatch):
    # maps of up to 3 units: Newton from the starts themselves (q_steps=0), larger maps
    # 30 L-BFGS steps first; the L-BFGS calls are counted
    from itermap.analysis.fixed_points import _newton

    seen = []
    real = _newton._lbfgs_q
    monkeypatch.setattr(_newton, "_lbfgs_q", lambda *a, **k: seen.append(k["max_iter"]) or
                        real(*a, **k))
    sm = itermap.systems.standard_map(1.5)
    g = (np.arange(6) + 0.5) / 6 * 2 * np.pi
    X = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    a = find_fixed_points(sm, X, period=3, progress=False)
    b = find_fixed_points(sm, X, period=3, q_steps=0, progress=False)
    assert seen == []
    np.testing.assert_array_equal(_sorted_rows(a.points), _sorted_rows(b.points))
    # every point closes after 3 steps modulo 2 pi, checked by the plain formula
    th, p = np.asarray(a.points).T.copy()
    for _ in range(3):
        p = p + 1.5 * np.sin(th)
        th = th + p
    d = np.mod(np.stack([th, p], 1) - a.points + np.pi, 2 * np.pi) - np.pi
    assert len(a) > 0 and np.all(np.linalg.norm(d, axis=1) <= 1e-9)
    m = itermap.random_rnn(8, gain=1.5, rng=0)
    find_fixed_points(m, sample_states(m, 4, steps=10, rng=1), progress=False)
    assert seen == [30]


# -- round 10: clustering without all pairs, the polish's Jacobians, many starts of a 2-D map --
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 700), dim=st.integers(1, 4), spread=st.sampled_from([1e-8, 1e-6, 1.0]),
       seed=st.integers(0, 2**31 - 1), given_d2=st.booleans())
def test_cluster_groups_within_tol_and_leaders_apart(n, dim, spread, seed, given_d2):
    # checked against plain norms: every row within tol of its leader, leaders > tol apart;
    # n up to 700 runs several passes of _HEAD candidate leaders; with given_d2 the passes
    # read the rows' squared distances from one matrix (as the search's merging does)
    from itermap.analysis.fixed_points import _clustering as fpm
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(rng.integers(1, 6), dim))
    x = centres[rng.integers(0, len(centres), n)] + spread * rng.normal(size=(n, dim))
    tol = 1e-6
    d2 = np.sum((x[:, None] - x[None]) ** 2, axis=2) if given_d2 else None
    lead, heads = fpm._cluster(np, x, tol, d2)
    assert np.all(lead[heads] == heads) and set(lead.tolist()) == set(heads.tolist())
    # up to the rounding of distances by a matmul (|x|^2 eps against tol^2: 1e-3 here)
    assert np.all(np.linalg.norm(x - x[lead], axis=1) <= tol * (1 + 1e-3))
    d = np.linalg.norm(x[heads][:, None] - x[heads][None], axis=2)
    assert np.all(d[~np.eye(len(heads), dtype=bool)] > tol * (1 - 1e-3))


@settings(max_examples=30, deadline=None)
@given(na=st.integers(1, 80), nb=st.integers(1, 80), dim=st.integers(1, 9),
       seed=st.integers(0, 2**31 - 1))
def test_sq_dist_equals_plain_norms_on_both_paths(na, nb, dim, seed):
    from itermap.analysis.fixed_points import _clustering as fpm
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(na, dim)) + 3.0, rng.normal(size=(nb, dim)) + 3.0
    want = np.sum((a[:, None] - b[None]) ** 2, axis=2)
    direct = fpm._DIRECT
    try:
        np.testing.assert_allclose(fpm._sq_dist(np, a, b), want, rtol=1e-12, atol=1e-12)
        fpm._DIRECT = 0                                   # the matmul path
        np.testing.assert_allclose(fpm._sq_dist(np, a, b), want, rtol=1e-9, atol=1e-9)
    finally:
        fpm._DIRECT = direct


@pytest.mark.parametrize("period", [1, 2, 3])
def test_standard_map_orbits_carry_the_jacobian_at_the_returned_points(period):
    # the Jacobians returned are D(F^p) at the polished points, by the closed form of the
    # standard map's Jacobian chained along the orbit (not the search's own numbers)
    k = 1.5
    side = np.arange(6) * (2 * np.pi / 6) + 0.3
    x0 = np.stack(np.meshgrid(side, side), -1).reshape(-1, 2)
    fp = find_fixed_points(itermap.systems.standard_map(k), x0, period=period)
    assert len(fp) >= period
    for x, J in zip(np.asarray(fp.points), np.asarray(fp.jacobians)):
        want, (th, p) = np.eye(2), x
        for _ in range(period):
            c = k * np.cos(th)
            want = np.array([[1.0 + c, 1.0], [c, 1.0]]) @ want
            p = p + k * np.sin(th)
            th = th + p
        np.testing.assert_allclose(J, want, rtol=1e-10, atol=1e-10)
    assert np.all(np.asarray(fp.residuals) <= 1e-12)            # polished


def test_henon_many_starts_every_start_at_the_closed_form_points():
    # 3,000 starts of a 2-D map go through the k-d tree and the clustering passes
    a, b = 1.4, 0.3
    x0 = np.random.default_rng(4).uniform(-1.5, 1.5, (3000, 2))
    fp = find_fixed_points(henon(a, b), x0)
    xs = (-(1 - b) + np.array([-1.0, 1.0]) * np.sqrt((1 - b) ** 2 + 4 * a)) / (2 * a)
    np.testing.assert_allclose(np.sort(np.asarray(fp.points)[:, 0]), xs, atol=1e-13)
    np.testing.assert_allclose(np.asarray(fp.points)[:, 1], b * np.asarray(fp.points)[:, 0],
                               atol=1e-13)
    assert fp.n_converged == 3000


def test_wanderers_in_two_cycles_are_given_up_without_losing_points(monkeypatch):
    # random_rnn(64, 1.5) seed 1: a third of 128 starts wander into 2-cycles of the
    # wandering step; giving them up saves work and loses none of the points, which are
    # checked by their residual and against the hybr loop's over the same starts
    from itermap.analysis.fixed_points import _search as fpm
    m = itermap.random_rnn(64, gain=1.5, rng=1)
    W = m.block_matrix.to_dense()
    x0 = np.asarray(sample_states(m, 128, steps=50, noise=0.5, rng=2))
    rows = _count_jacobian_rows(monkeypatch, m)
    fp = find_fixed_points(m, x0)
    work = sum(rows)
    rows.clear()
    monkeypatch.setattr(fpm, "_CYCLE", 0.0)      # both 2-cycle rules off
    monkeypatch.setattr(fpm, "_DRIFT", 0.0)
    plain = find_fixed_points(m, x0)
    assert work < 0.8 * sum(rows)
    P = np.asarray(fp.points)
    assert np.all(np.linalg.norm(np.tanh(P @ W.T) - P, axis=1) <= 1e-10)
    d = np.linalg.norm(P[:, None] - np.asarray(plain.points)[None], axis=2)
    assert len(fp) == len(plain) and np.all(d.min(axis=1) <= 1e-6)
    hybr = []
    for x in x0:
        sol = scipy.optimize.root(lambda v: np.tanh(W @ v) - v, x, method="hybr",
                                  jac=lambda v: (1 - np.tanh(W @ v) ** 2)[:, None] * W
                                  - np.eye(64))
        if np.linalg.norm(np.tanh(W @ sol.x) - sol.x) <= 1e-10 and all(
                np.linalg.norm(sol.x - h) > 1e-6 for h in hybr):
            hybr.append(sol.x)
    assert len(fp) >= len(hybr)


# -- round 21: points within their error bounds are one --------------------------------
def test_points_within_unique_tol_or_their_error_bounds_are_one():
    from itermap.analysis.fixed_points._clustering import merge_within_error

    tol = 1e-4
    e = np.eye(3)[0]
    # a chain 0.8 tol apart: the least-residual member of one leader group and of the next
    # stood within tol of each other; single linkage makes them one, the least residual
    pts = np.stack([0.0 * e, 0.8 * tol * e, 1.6 * tol * e, 5.0 * e])
    res = np.array([3e-9, 1e-9, 2e-9, 1e-9])
    far = np.full((4, 3), 0.5 + 0.0j)                # multipliers far from 1: no widening
    assert merge_within_error(np, pts, res, far, tol).tolist() == [1, 3]
    # residual 1e-5 at a multiplier 0.99: known to 1e-5 / 0.01 = 1e-3, so 3e-4 apart is one
    pts = np.stack([0.0 * e, 3e-4 * e])
    near_one = np.full((2, 3), 0.99 + 0.0j)
    assert merge_within_error(np, pts, np.array([1e-5, 2e-5]), near_one, tol).tolist() == [0]
    # ... but not at a multiplier 0.5 (bound 2e-5), nor from a line of points (multiplier
    # exactly 1: the bound is capped at 10 tol) 0.1 apart
    assert merge_within_error(np, pts, np.array([1e-5, 2e-5]), far[:2], tol).tolist() == [0, 1]
    line = np.stack([0.0 * e, 0.1 * e, 0.2 * e])
    ones = np.ones((3, 3), dtype=complex)
    assert merge_within_error(np, line, np.full(3, 1e-6), ones, tol).tolist() == [0, 1, 2]

