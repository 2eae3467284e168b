"""The end of the wandering phase (issues 25, 26): wanderers caught in a 2-cycle of the
wandering step, drifting or not, are given up, which saves work and loses no point; the
points found stay zeros of the map, checked from the weights and against scipy's hybr
from the same starts."""

from __future__ import annotations

import types

import numpy as np
import pytest
import scipy.optimize

import itermap
from itermap.analysis import find_fixed_points, sample_states
from itermap.analysis.fixed_points import _search


def _rows(back, step, dim=8, rng=0):
    """(x, prev1, prev2) of one row: its last step has length ``step`` and it returns to
    within ``back`` of where it was two iterations ago (in a random direction)."""
    g = np.random.default_rng(rng)
    x = g.normal(size=dim)
    u, v = g.normal(size=dim), g.normal(size=dim)
    return x, x - step * u / np.linalg.norm(u), x - back * v / np.linalg.norm(v)


def _state(rows, wander_step=1.0):
    x, p1, p2 = (np.stack(a) for a in zip(*rows))
    return types.SimpleNamespace(xp=np, x=x, prev1=p1, prev2=p2, wander_step=wander_step,
                                 drift=np.zeros(len(rows), dtype=np.int64))


def _caught(state):
    n = state.x.shape[0]
    return _search._NewtonSearch._in_cycle(state, np.arange(n), np.arange(n))


def test_an_exact_two_cycle_is_caught_at_once():
    s = _state([_rows(0.0, 1.7), _rows(1e-4, 1.7)])      # back within _CYCLE steps
    assert _search._CYCLE * s.wander_step > 1e-4
    assert _caught(s).tolist() == [True, True]


@pytest.mark.parametrize("ratio", [1e-3, 5e-3, 9e-3])
def test_a_drifting_two_cycle_is_caught_after_the_stated_iterations(ratio):
    step = 1.7
    s = _state([_rows(ratio * step, step, rng=1)], wander_step=0.5)
    assert ratio * step > _search._CYCLE * s.wander_step      # not the absolute rule
    seen = [bool(_caught(s)[0]) for _ in range(_search._DRIFT_ITERS)]
    assert seen == [False] * (_search._DRIFT_ITERS - 1) + [True]


def test_one_ordinary_step_restarts_the_drift_count():
    s = _state([_rows(0.005, 1.0, rng=2)], wander_step=0.1)
    for _ in range(_search._DRIFT_ITERS - 1):
        assert not _caught(s)[0]
    far = _state([_rows(1.5, 1.0, rng=2)], wander_step=0.1)   # back farther than a step
    far.drift = s.drift
    assert not _caught(far)[0] and far.drift[0] == 0
    s.drift = far.drift
    assert not _caught(s)[0]


@pytest.mark.parametrize("step", [1e-6, 0.3, 2.0])
def test_a_row_moving_on_is_never_caught(step):
    # two steps the same way: back is twice the step, whatever its length
    g = np.random.default_rng(3)
    x, u = g.normal(size=8), g.normal(size=8)
    u *= step / np.linalg.norm(u)
    s = types.SimpleNamespace(xp=np, x=x[None], prev1=(x - u)[None], prev2=(x - 2 * u)[None],
                              wander_step=1e-3, drift=np.zeros(1, dtype=np.int64))
    assert not any(bool(_caught(s)[0]) for _ in range(10))


def _wander_rows(monkeypatch):
    """Rows stepped while wandering, recorded from the search's step."""
    rows: list = []

    def counted(self, _step=_search._NewtonSearch._step):
        if self.wander:
            rows.append(self.ids.size)
        _step(self)

    monkeypatch.setattr(_search._NewtonSearch, "_step", counted)
    return rows


@pytest.mark.parametrize("gain,seed,share", [(1.5, 1, 0.8), (2.0, 2, 1.0)])
def test_drifting_cycles_given_up_save_work_and_lose_no_point_nor_start(monkeypatch, gain,
                                                                        seed, share):
    # the N = 64 benchmark networks where wanderers sit in drifting 2-cycles
    m = itermap.random_rnn(64, gain=gain, rng=seed)
    W = m.block_matrix.to_dense()
    X0 = np.asarray(sample_states(m, 128, steps=50, noise=0.5, rng=seed + 1))
    rows = _wander_rows(monkeypatch)
    fp = find_fixed_points(m, X0, progress=False)
    work = sum(rows)
    rows.clear()
    monkeypatch.setattr(_search, "_DRIFT", 0.0)         # the drift rule off
    plain = find_fixed_points(m, X0, progress=False)
    assert work < share * sum(rows)
    P, Q = np.asarray(fp.points), np.asarray(plain.points)
    assert np.all(np.linalg.norm(np.tanh(P @ W.T) - P, axis=1) <= 1e-10)
    assert len(P) == len(Q)
    assert np.all(np.min(np.linalg.norm(P[:, None] - Q[None], axis=2), axis=1) <= 1e-8)
    assert fp.n_converged == plain.n_converged


def _hybr_points(W, X0):
    eye = np.eye(W.shape[0])
    out = []
    for x0 in X0:
        sol = scipy.optimize.root(lambda x: np.tanh(W @ x) - x, x0, method="hybr",
                                  jac=lambda x: (1.0 - np.tanh(W @ x) ** 2)[:, None] * W - eye)
        if np.linalg.norm(np.tanh(W @ sol.x) - sol.x) <= 1e-10:
            if all(np.linalg.norm(sol.x - p) > 1e-6 for p in out):
                out.append(sol.x)
    return out


@pytest.mark.parametrize("gain,seed", [(1.5, 1), (2.0, 0), (3.0, 2)])
def test_default_search_points_are_zeros_and_no_fewer_than_hybr(gain, seed):
    m = itermap.random_rnn(64, gain=gain, rng=seed)
    W = m.block_matrix.to_dense()
    X0 = np.asarray(sample_states(m, 32, steps=50, noise=0.5, rng=seed + 1))
    fp = find_fixed_points(m, X0, progress=False)
    P = np.asarray(fp.points)
    assert np.all(np.linalg.norm(np.tanh(P @ W.T) - P, axis=1) <= 1e-10)
    assert len(P) >= len(_hybr_points(W, X0))


def test_starts_wandering_leaves_follow_their_own_gain_paths():
    # random_rnn(64, 2, rng=105) from 128 starts: 5 starts reach a point in the damped
    # phase, so the gain rule does not run, and wandering leaves the other 123; they now
    # follow their own gain homotopies (phase 3'') and every one ends at a point, each a
    # zero of tanh(W x) - x computed from the weights
    m = itermap.random_rnn(64, gain=2.0, rng=105)
    W = m.block_matrix.to_dense()
    x0 = sample_states(m, 128, steps=50, noise=0.5, rng=1005)
    fp = find_fixed_points(m, x0, progress=False)
    assert fp.status_counts()["converged"] == 128
    P = np.asarray(fp.points)
    assert np.all(np.linalg.norm(np.tanh(P @ W.T) - P, axis=1) <= 1e-10)


def test_a_map_without_fixed_points_gives_its_gain_paths_up_early(monkeypatch):
    # x -> x + 1 has no fixed point: no start converges, the gain rule runs, and the
    # starts' own gain paths (each fails) stop once _OWN_GIVE_UP of them have failed
    # (64 paths took 22 s before)
    from itermap.analysis.fixed_points import _homotopy

    calls = []
    path = _homotopy._start_path

    def counted(*args, **kwargs):
        calls.append(1)
        return path(*args, **kwargs)

    monkeypatch.setattr(_homotopy, "_start_path", counted)
    m = itermap.IterativeMap(np.eye(20), bias=np.ones(20), activation="identity")
    x0 = np.random.default_rng(0).normal(size=(64, 20))
    fp = find_fixed_points(m, x0, progress=False)
    assert len(fp) == 0 and fp.n_unconverged == 64
    assert len(calls) == _homotopy._OWN_GIVE_UP


def test_deflation_sets_out_from_midpoints_of_distinct_points(monkeypatch):
    # the phases before deflation find some points twice (phase 2, wandering, paths); a
    # point and its copy were the nearest pair, whose midpoint is the point itself: every
    # midpoint start must lie between two distinct points, and the known points handed to
    # deflation are distinct
    from itermap.analysis.fixed_points import _newton

    seen = []

    def fake(F, xp, eye, x, known, **kw):
        seen.append((np.asarray(x), np.asarray(known)))
        return x[:0], np.zeros(0), np.full(x.shape[0], -1)

    monkeypatch.setattr(_newton, "deflate_repeats", fake)
    g = np.random.default_rng(0)
    P = g.normal(size=(5, 8))
    fx = [P, P[:3] + 1e-9 * g.normal(size=(3, 8))]      # three points found twice
    p = types.SimpleNamespace(xp=np, tol=1e-10, unique_tol=1e-6)
    _newton._deflate(None, p, None, P[:2], fx, [np.zeros(5), np.zeros(3)], 0.1, 4, None, 1.0)
    (_, known1), (mids, known2) = seen
    for known in (known1, known2):
        assert known.shape == (5, 8)
        d = np.linalg.norm(known[:, None] - known[None], axis=-1) + np.eye(5)
        assert d.min() > 1e-6
    # the midpoints are those of the closest pairs of the 5 distinct points (all 10 here)
    pairs = sorted(np.linalg.norm(P[i] - P[j]) for i in range(5) for j in range(i + 1, 5))
    mid_gaps = np.linalg.norm(mids[:, None] - P[None], axis=-1).min(axis=1)
    assert mids.shape[0] == 8 and mid_gaps.min() >= 0.5 * pairs[0] - 1e-12
