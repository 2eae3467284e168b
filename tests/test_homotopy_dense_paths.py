"""Dense-LU gain paths past sharp folds, and the order of the last phases of
``method="newton"`` above 500 units (analysis/fixed_points/_homotopy.py, _newton.py,
issue 26 §1).

Every point is checked by a plain NumPy residual ``||tanh(W x) - x||`` from W.
"""

from __future__ import annotations

import numpy as np
import pytest

import itermap
import itermap.analysis.fixed_points._homotopy as hom
import itermap.analysis.fixed_points._newton as newton_mod
from itermap.analysis import find_fixed_points
from itermap.analysis.fixed_points._common import _Power
from itermap.analysis.fixed_points._result import CONVERGED
from tests.test_homotopy_dense import _case, _residuals


# gain 3, starts sample_states(..., rng=seed + 1): the paths whose step fell below
# _DS_MIN before (status 3 at s = 0.3-0.9): their tangent, solved by the LU at the last
# prediction, pointed off the curve past a sharp fold, and the turn test refused every
# shorter step
@pytest.mark.parametrize(("n", "seed", "row"), [(80, 1, 1), (120, 1, 4), (150, 2, 5)])
def test_dense_path_passes_sharp_folds_to_a_point(n, seed, row):
    m, W, X0 = _case(n, 3.0, seed, 8)
    F = _Power(m, 1, None, np)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        xe, st = hom._Path(F, hom._BETA * X0[row], "dense").run(1000)
        assert st == 0
        xp, r, st = hom.polish(F, xe, 1e-10, "dense")
    assert st == 0 and _residuals(W, xp[None])[0] <= 1e-10
    assert np.linalg.norm(xp) > 1e-3          # not the origin


def test_own_paths_run_before_wandering_above_the_threshold(monkeypatch):
    # N = 120, gain 3, 8 starts (the gain rule fires); the threshold lowered so that the
    # order above 500 units runs here: the starts that neither the gain paths nor their
    # own path bring to a point wander, and no other start does
    m, W, X0 = _case(120, 3.0, 0, 8)
    monkeypatch.setattr(hom, "_OWN_FIRST_DIM", 100)
    handed, wandered = [], []
    own, search = newton_mod.own_paths, newton_mod._search

    def own_rec(p, x0, status, fx, fr, leads=None):
        handed.append(np.flatnonzero(status != 0))
        out = own(p, x0, status, fx, fr, leads)
        handed.append(np.flatnonzero(status != 0))
        return out

    def search_rec(*a, **k):
        if k.get("wander"):
            wandered.append(int(a[1].shape[0]))
        return search(*a, **k)

    monkeypatch.setattr(newton_mod, "own_paths", own_rec)
    monkeypatch.setattr(newton_mod, "_search", search_rec)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        fp = find_fixed_points(m, X0, progress=False)
    P = np.asarray(fp.points)
    assert np.all(_residuals(W, P) <= 1e-10)
    assert len(handed) == 2 and handed[0].size          # the phase ran once, on starts
    left = handed[1]
    assert wandered == ([left.size] if left.size else [])
    # each start handed over, rerun alone along its own homotopy, is converged exactly
    # where its path ends at a point (from W) the search returned
    F = _Power(m, 1, None, np)
    st = np.asarray(fp.status)
    for i in handed[0]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            xe, _, s = hom._start_path(F, X0[i], 1000, 1e-10, 1e-6, "dense",
                                      hom.own_betas(W.shape[0]))
        ok = s == 0 and _residuals(W, xe[None])[0] <= 1e-10
        assert ok == (i not in left)
        if ok:
            assert st[i] == CONVERGED
            assert np.min(np.linalg.norm(P - xe, axis=1)) <= 1e-6
    assert fp.n_converged >= 8 - left.size


def test_own_paths_stop_where_most_paths_fail(monkeypatch):
    # the phase stops after _OWN_GIVE_UP failed paths while failures outnumber twice the
    # successes, at any size (round 20: a map without fixed points ran every start's
    # path); where every other path reaches a point, every start runs
    m, _, X0 = _case(60, 3.0, 0, 12)
    calls = []

    def fail(F, x0, *a):
        calls.append(1)
        return x0, np.nan, 3

    monkeypatch.setattr(hom, "_start_path", fail)

    class P:
        F, xp, patience, tol, unique_tol = _Power(m, 1, None, np), np, 10, 1e-10, 1e-6

    status = np.full(12, 3, dtype=np.int8)
    hom.own_paths(P, X0, status, [], [])
    assert len(calls) == hom._OWN_GIVE_UP and np.all(status == 3)
    calls.clear()

    def every_other(F, x0, *a):
        calls.append(1)
        return (x0, 0.0, 0) if len(calls) % 2 == 0 else (x0, np.nan, 3)

    monkeypatch.setattr(hom, "_start_path", every_other)
    hom.own_paths(P, X0, status, [], [])
    assert len(calls) == 12 and np.array_equal(status == 0, np.arange(12) % 2 == 1)


@pytest.mark.parametrize("x0", [9.551939389086023e-58, 1e-12, -1e-30])
@pytest.mark.parametrize("g", [1.5, 3.0])
def test_negligible_unfolding_still_reaches_a_point(g, x0):
    # x -> tanh(g x) from a start so near the origin that b = beta x0 leaves the pitchfork
    # at s = 1 / g unbroken in float64 (hypothesis found x0 = 9.6e-58, g = 3): the path
    # used to stop there, every step refused; it reaches s = 1 at a root of tanh(g x) - x
    m = itermap.IterativeMap(np.array([[g]]), bias=np.array([0.0]))
    fp = find_fixed_points(m, np.array([[x0]]), method="homotopy", progress=False)
    P = np.asarray(fp.points)[:, 0]
    assert fp.status[0] == 0 and P.size >= 1
    assert np.all(np.abs(np.tanh(g * P) - P) <= 1e-10)
