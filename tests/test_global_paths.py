"""The gain paths of the dense search (analysis/fixed_points/_paths.py): where the damped
Newton phase reaches no point (a tanh network at gain 3), it reaches points of ``F(s x)``
at a lower gain, followed along ``x - F(s(t) x) = 0`` to points of the map.

Every point is checked by a plain NumPy residual ``||tanh(W x) - x||`` from W, and the
path ends by plain NumPy Newton (``np.linalg.solve``), not the search's own numbers."""

from __future__ import annotations

import functools
from unittest import mock

import numpy as np
import pytest

import itermap
import itermap.analysis.fixed_points._newton as newton_mod
import itermap.analysis.fixed_points._paths as paths_mod
from itermap.analysis import find_fixed_points, sample_states
from itermap.analysis.fixed_points._common import _Power
from itermap.analysis.fixed_points._paths import GainHomotopy, follow_paths
from itermap.analysis.fixed_points._result import CONVERGED, GAVE_UP_STALLED

# networks random_rnn(n, gain=3, rng=seed) on which the damped phase of 8 starts
# (sample_states, rng=seed + 1) reaches no point, so the paths run
_CASES = [(60, 1), (60, 6), (80, 9)]


def _case(n, seed, starts=8):
    m = itermap.random_rnn(n, gain=3.0, rng=seed)
    X0 = np.asarray(sample_states(m, starts, steps=50, noise=0.5, rng=seed + 1))
    return m, m.block_matrix.to_dense(), X0


def _plain_newton(W, x, iters=12):
    n = x.size
    for _ in range(iters):
        g = np.tanh(W @ x) - x
        x = x - np.linalg.solve((1.0 - np.tanh(W @ x) ** 2)[:, None] * W - np.eye(n), g)
    return x, float(np.linalg.norm(np.tanh(W @ x) - x))


def _residuals(W, P):
    return np.linalg.norm(np.tanh(P @ W.T) - P, axis=1)


def _low_gain_points(W, s, n_starts=12, seed=0):
    """Points of tanh(s W x) by plain NumPy Newton from random states (independent of
    the search)."""
    rng = np.random.default_rng(seed)
    out = []
    for x in rng.uniform(-1, 1, (n_starts, W.shape[0])):
        for _ in range(40):
            g = np.tanh(s * W @ x) - x
            d = np.linalg.solve(s * (1 - np.tanh(s * W @ x) ** 2)[:, None] * W
                                - np.eye(x.size), -g)
            x = x + d / max(1.0, np.max(np.abs(d)))
        if np.linalg.norm(np.tanh(s * W @ x) - x) <= 1e-10 and np.linalg.norm(x) > 1e-3 \
                and not any(np.linalg.norm(x - p) < 1e-6 for p in out):
            out.append(x)
    return np.array(out)


@pytest.mark.parametrize(("n", "seed"), _CASES)
def test_gain_paths_end_near_fixed_points_and_stay_bounded(n, seed):
    m, W, X0 = _case(n, seed)
    s0 = 0.5
    P0 = _low_gain_points(W, s0)
    assert len(P0) >= 2
    hom = GainHomotopy(_Power(m, 1, None, np), np, s0, n, np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        end, reached, back, solves = follow_paths(hom, np, P0, max_iter=2000)
    assert reached.any() and not np.any(reached & back)
    assert np.all(solves <= 2000)
    # tanh: every point of the path, its end included, has ||x||_inf <= 1
    assert np.all(np.max(np.abs(end), axis=1) <= 1.0 + 1e-9)
    for x in end[reached]:
        # the point at t = 1 is within Newton's reach of a fixed point: plain Newton lands
        assert np.linalg.norm(np.tanh(W @ x) - x) <= 0.1
        _, r = _plain_newton(W, x)
        assert r <= 1e-10


@functools.cache
def _with_and_without_paths(n, seed):
    """The search on a case, and again with the gain paths ruled out (wandering alone)."""
    m, W, X0 = _case(n, seed)
    fp = find_fixed_points(m, X0, progress=False)
    with mock.patch.object(newton_mod, "_GAIN_STEP", 0.0):
        fw = find_fixed_points(m, X0, progress=False)
    return fp, fw


@pytest.mark.parametrize(("n", "seed"), _CASES)
def test_search_reaches_points_where_damped_newton_stalls(n, seed):
    _, W, _ = _case(n, seed)
    fp, fw = _with_and_without_paths(n, seed)
    P = np.asarray(fp.points)
    assert len(P) >= 3 and np.all(_residuals(W, P) <= 1e-10)
    assert fp.n_converged >= 7
    st = np.asarray(fp.status)
    assert set(st.tolist()) <= {CONVERGED, GAVE_UP_STALLED}
    assert np.all(_residuals(W, np.asarray(fw.points)) <= 1e-10)


def test_the_paths_converge_more_starts_than_wandering_alone_over_the_cases():
    # over the cases, not on each: at gain 3 the searches are chaotic in their rounding
    # (NumPy's SIMD tanh and the BLAS kernels round differently on other CPUs): on a
    # Zen 3 VM wandering alone reached all 8 starts of (80, 9), as the paths did, where
    # on the VM the test was written on it reached fewer; summed, the paths converge more
    runs = [_with_and_without_paths(n, seed) for n, seed in _CASES]
    assert sum(fp.n_converged for fp, _ in runs) > sum(fw.n_converged for _, fw in runs)
    assert sum(len(fp) for fp, _ in runs) > sum(len(fw) for _, fw in runs)
    assert any(np.any(np.asarray(fw.status) == GAVE_UP_STALLED) for _, fw in runs)


def test_paths_out_of_budget_find_nothing():
    m, W, X0 = _case(60, 6)
    fp = find_fixed_points(m, X0, patience=3, deflation=False, progress=False)
    # 3 bordered solves take no path to t = 1 (nor 3 wandering steps a start to a point):
    # no point, and every start keeps wandering's reason
    assert len(fp) == 0
    assert np.all(np.asarray(fp.status) == GAVE_UP_STALLED)


def test_paths_same_starts_same_points():
    m, W, X0 = _case(80, 9)
    a = find_fixed_points(m, X0, progress=False)
    b = find_fixed_points(m, X0, progress=False)
    np.testing.assert_array_equal(np.asarray(a.points), np.asarray(b.points))
    np.testing.assert_array_equal(np.asarray(a.status), np.asarray(b.status))


def test_paths_rule_leaves_searches_that_reach_points_alone(monkeypatch):
    # gain 1.5: the damped phase reaches points, so the paths never run
    m = itermap.random_rnn(60, gain=1.5, rng=0)
    X0 = np.asarray(sample_states(m, 8, steps=50, noise=0.5, rng=1))
    calls = []
    orig = newton_mod.follow_paths
    monkeypatch.setattr(newton_mod, "follow_paths",
                        lambda *a, **k: calls.append(1) or orig(*a, **k))
    fp = find_fixed_points(m, X0, progress=False)
    assert len(fp) >= 1 and not calls


class _Tanh:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def value(self, x):
        return np.tanh(x @ self.W.T + self.b)


def test_mirrored_adds_negatives_only_for_odd_maps():
    m, W, X0 = _case(60, 1)
    P = _low_gain_points(W, 0.5)
    assert len(P) >= 2
    # the mirror of every point is a point of tanh(s W x) (plain residual from W)
    assert np.all(_residuals(0.5 * W, -P) <= 1e-10)
    G: list = []                 # one of each mirror pair
    for p in P:
        if all(np.linalg.norm(p + q) > 1e-6 for q in G):
            G.append(p)
    assert len(G) >= 2
    Q = np.vstack([G, -G[0]])     # one mirror present already: not added twice
    out = newton_mod._mirrored(np, Q, 1e-6)
    assert out.shape == (2 * len(G), W.shape[0])
    for p in G:   # each point and its mirror exactly once (plain loop)
        assert sum(np.linalg.norm(o - p) < 1e-9 for o in out) == 1
        assert sum(np.linalg.norm(o + p) < 1e-9 for o in out) == 1
    # tanh without bias is odd; a bias breaks the symmetry
    assert newton_mod._odd(_Tanh(W, 0.0), np, X0)
    assert not newton_mod._odd(_Tanh(W, np.full(W.shape[0], 0.1)), np, X0)


def test_off_origin_counts_points_other_than_the_origin():
    m, W, X0 = _case(60, 6)
    P = _low_gain_points(W, 0.5)
    # the origin is a point of every tanh(s W x) (plain residual), but not counted
    Z = np.zeros((1, W.shape[0]))
    assert _residuals(0.5 * W, Z)[0] == 0.0
    want = sum(np.linalg.norm(p) > 1e-6 for p in P)
    assert want >= 2
    assert newton_mod._off_origin(np, [P, Z], 1e-6) == want
    assert newton_mod._off_origin(np, [Z], 1e-6) == 0 and newton_mod._off_origin(np, [], 1e-6) == 0


def test_mirror_pairs_follow_one_path_per_pair():
    rng = np.random.default_rng(3)
    A = rng.uniform(-1, 1, (4, 6))
    P = np.vstack([A[0], -A[0], A[1], A[2], -A[1], np.zeros(6), A[3], -A[3]])
    pos, uniq = newton_mod._mirror_pairs(P, 1e-6)
    m = uniq.size
    # plain loop: a row is followed unless it is the mirror of an earlier row
    want = [i for i in range(len(P)) if not any(np.linalg.norm(P[i] + P[j]) <= 1e-6
                                                  for j in range(i))]
    assert uniq.tolist() == want
    # each row's end: its own path, or the mirror of its twin's
    ends = np.vstack([P[uniq], -P[uniq]])
    np.testing.assert_array_equal(ends[pos], P)
    assert np.all(pos < 2 * m)


# networks (n, seed) of gain 3 (8 starts, deflation on: n >= 100) where the damped phase
# reaches no point, and the points the search found with the lower-gain deflation run
# from the repeated starts only (the rule before this one: main 710d4ca)
_HARVEST = [(120, 0, 10), (120, 2, 10), (150, 3, 9)]


@pytest.mark.parametrize(("n", "seed", "before"), _HARVEST)
def test_lower_gain_deflation_from_every_start(n, seed, before, monkeypatch):
    m, W, X0 = _case(n, seed)
    calls = []
    orig = newton_mod._deflate

    def spy(F, p, eye, x, fx, fr, *a):
        out = orig(F, p, eye, x, fx, fr, *a)
        calls.append((getattr(F, "s", 1.0), np.vstack(fx), np.vstack(out[0])))
        return out

    monkeypatch.setattr(newton_mod, "_deflate", spy)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        fp = find_fixed_points(m, X0, progress=False)
    low = [c for c in calls if c[0] < 1.0]
    assert len(low) == 1
    s, known, out = low[0]
    new = out[len(known):]
    assert len(new) >= 1
    # every new point is a point of tanh(s W x) (plain residual from W), none is a known
    # point or a known point's mirror (the mirrors of an odd map are deflated too)
    assert np.all(_residuals(s * W, new) <= 1e-10)
    for q in new:
        assert all(np.linalg.norm(q - k) > 1e-6 for k in known)
    assert all(any(np.linalg.norm(k + j) <= 1e-6 for j in known) for k in known)
    # the points at s = 1, checked from W and counted by a plain loop: more than before
    P = np.asarray(fp.points)
    assert np.all(_residuals(W, P) <= 1e-10)
    assert _distinct_plain(P) > before


@pytest.mark.parametrize(("n", "seed"), [(120, 0), (150, 3), (200, 5)])
def test_origin_branches_start_near_points_of_the_scaled_map(n, seed):
    m, W, X0 = _case(n, seed)
    out = paths_mod.origin_branches(_Power(m, 1, None, np), np, n, np.float64)
    mu = np.linalg.eigvals(W)
    mu = np.sort(mu.real[(np.abs(mu.imag) < 1e-9) & (mu.real > 1.02)])
    assert 1 <= len(out) <= mu.size
    landed = 0
    for s0, x in out:
        # s0 = 1.02 / mu for a real eigenvalue mu of W (plain NumPy), and x lies along its
        # eigenvector with the amplitude of tanh's normal form (closed form: the cubic
        # term of tanh(y) is -y^3 / 3, so a^2 = 3 (s mu - 1) / ((s mu)^3 sum w v^3 / w.v))
        k = int(np.argmin(np.abs(mu - 1.02 / s0)))
        assert abs(mu[k] * s0 - 1.02) <= 1e-9
        v = x / np.linalg.norm(x)
        assert np.linalg.norm(W @ v - mu[k] * v) <= 1e-8
        wl = np.linalg.solve((W - mu[k] * np.eye(n)).T + np.outer(v, v), v)   # left vector
        kap = np.sum(wl * v ** 3) / (wl @ v)
        a = np.sqrt(3 * (s0 * mu[k] - 1) / ((s0 * mu[k]) ** 3 * kap))
        assert abs(np.linalg.norm(x) - a) <= 0.05 * a
        # the normal form's residual is small against the point's size (plain residual)
        assert _residuals(s0 * W, x[None])[0] <= 0.05 * np.linalg.norm(x)
        # plain Newton (halving the step until ||g|| falls) on tanh(s0 W y) - y from x
        y = x.copy()
        for _ in range(40):
            r = _residuals(s0 * W, y[None])[0]
            d = np.linalg.solve(s0 * (1 - np.tanh(s0 * W @ y) ** 2)[:, None] * W - np.eye(n),
                                y - np.tanh(s0 * W @ y))
            lam = 1.0
            while _residuals(s0 * W, (y + lam * d)[None])[0] >= r and lam > 1e-4:
                lam /= 2
            y = y + lam * d
        if _residuals(s0 * W, y[None])[0] <= 1e-10 and np.linalg.norm(y - x) <= 0.3 * a:
            landed += 1
    # on most branches it lands on a point off the origin, near the start
    assert landed >= max(1, len(out) // 2)


def _distinct_plain(P):
    kept: list = []
    for p in P:
        if all(np.linalg.norm(p - q) > 1e-6 for q in kept):
            kept.append(p)
    return len(kept)


@pytest.mark.parametrize(("n", "seed"), [(120, 2), (200, 1)])
def test_origin_branch_paths_add_points(n, seed, monkeypatch):
    m, W, X0 = _case(n, seed)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        fp = find_fixed_points(m, X0, progress=False)
        monkeypatch.setattr(newton_mod, "origin_branches", lambda *a: [])
        fw = find_fixed_points(m, X0, progress=False)
    P, Q = np.asarray(fp.points), np.asarray(fw.points)
    assert np.all(_residuals(W, P) <= 1e-10) and np.all(_residuals(W, Q) <= 1e-10)
    # more distinct points (plain loop) with the branches than without, the same starts
    # converged (the branch paths have no start)
    assert _distinct_plain(P) > _distinct_plain(Q)
    assert fp.n_converged == fw.n_converged


def test_origin_branches_run_where_no_lower_gain_gives_a_point(monkeypatch):
    m, W, X0 = _case(120, 2)
    calls: list = []
    orig = newton_mod.origin_branches
    monkeypatch.setattr(newton_mod, "_GAIN_MIN", 0.9)     # no lower gain runs
    monkeypatch.setattr(newton_mod, "origin_branches",
                        lambda *a: calls.append(1) or orig(*a))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        fp = find_fixed_points(m, X0, deflation=False, progress=False)
        monkeypatch.setattr(newton_mod, "origin_branches", lambda *a: [])
        fw = find_fixed_points(m, X0, deflation=False, progress=False)
    P, Q = np.asarray(fp.points), np.asarray(fw.points)
    assert calls and np.all(_residuals(W, P) <= 1e-10)
    # the branches' points come on top of what wandering finds (plain count)
    assert _distinct_plain(P) > _distinct_plain(Q)
