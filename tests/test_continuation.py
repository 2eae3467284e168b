"""Continuation of fixed points and their bifurcations (issue 15), against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import continuation, gain_family, plots


def _one_unit(g):
    return lambda u: itermap.IterativeMap(np.array([[g]]), bias=np.array([u]))


def _fold_closed_form(g):
    """x = tanh(g x + u) folds where g (1 - x^2) = 1: x = +-sqrt(1 - 1/g)."""
    x = np.sqrt(1.0 - 1.0 / g)
    return np.arctanh(x) - g * x, x          # (u, x) of the fold with x > 0


@settings(max_examples=8, deadline=None)
@given(g=st.floats(1.3, 4.0))
def test_one_unit_folds_at_the_closed_form(g):
    u_star, x_star = _fold_closed_form(g)
    span = abs(u_star) + 0.5
    c = continuation(_one_unit(g), np.linspace(span, -span, 41), np.array([0.999]))
    assert c.stop_reason == "end of range"
    folds = [b for b in c.bifurcations if b["kind"] == "fold"]
    assert len(folds) == 2 and len(c.bifurcations) == 2
    got = sorted((b["parameter"], b["point"][0]) for b in folds)
    np.testing.assert_allclose([got[0][0], got[1][0]], [u_star, -u_star], atol=1e-6)
    np.testing.assert_allclose([got[0][1], got[1][1]], [x_star, -x_star], atol=1e-5)
    # every point is a fixed point, stable exactly where g (1 - x^2) < 1
    x, u = c.points[:, 0], c.parameters
    np.testing.assert_allclose(np.tanh(g * x + u), x, atol=1e-10)
    slope = g * (1 - x ** 2)
    clear = np.abs(slope - 1) > 1e-6
    np.testing.assert_array_equal(c.stable[clear], slope[clear] < 1)
    # the branch turned twice: the parameter is not monotone along it
    assert np.sum(np.diff(np.sign(np.diff(u))) != 0) == 2


def test_two_unit_symmetric_network_folds_like_one_unit():
    # W = [[a, b], [b, a]] with u on both units: on the symmetric branch x1 = x2 the map is
    # x = tanh((a + b) x + u), so the folds are those of one unit with g = a + b
    a, b = 1.2, 0.8
    W = np.array([[a, b], [b, a]])
    make = lambda u: itermap.IterativeMap(W, bias=np.array([u, u]))  # noqa: E731
    u_star, x_star = _fold_closed_form(a + b)
    c = continuation(make, np.linspace(1.0, -1.0, 41), np.array([0.99, 0.99]))
    folds = sorted(bb["parameter"] for bb in c.bifurcations if bb["kind"] == "fold")
    np.testing.assert_allclose(folds, [u_star, -u_star], atol=1e-6)
    np.testing.assert_allclose(c.points[:, 0], c.points[:, 1], atol=1e-9)
    # the other multiplier, (a - b)(1 - x^2), stays inside the circle
    x = c.points[:, 0]
    ev = np.sort(np.real(c.eigenvalues), axis=1)
    np.testing.assert_allclose(ev, np.sort(np.column_stack([(a + b) * (1 - x ** 2),
                                                            (a - b) * (1 - x ** 2)]),
                                           axis=1), atol=1e-6)


def test_period_doubling_of_the_origin():
    # x -> tanh(-g x): the origin's multiplier is -g; it crosses -1 at g = 1
    c = continuation(lambda g: itermap.IterativeMap(np.array([[-g]])), np.linspace(0.5, 1.5, 11),
                     np.array([0.1]))
    assert [b["kind"] for b in c.bifurcations] == ["period doubling"]
    np.testing.assert_allclose(c.bifurcations[0]["parameter"], 1.0, atol=1e-6)
    np.testing.assert_allclose(c.points, 0.0, atol=1e-10)
    # a multiplier within 1e-9 of -1 (the branch point at g = 1 - 1e-16) is on the circle
    np.testing.assert_array_equal(c.stable, c.parameters < 1 - 1e-9)


def test_neimark_sacker_of_a_rotation_through_gain_family():
    # x -> tanh(g R x), R a rotation by 0.7: the origin's multipliers g e^{+-0.7 i}
    th = 0.7
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    c = continuation(gain_family(itermap.IterativeMap(R)), np.linspace(0.5, 1.5, 6),
                     np.zeros(2))
    assert [b["kind"] for b in c.bifurcations] == ["Neimark-Sacker"]
    bif = c.bifurcations[0]
    np.testing.assert_allclose(bif["parameter"], 1.0, atol=1e-6)
    np.testing.assert_allclose(np.abs(complex(*bif["multiplier"])), 1.0, atol=1e-6)
    np.testing.assert_allclose(abs(np.angle(complex(*bif["multiplier"]))), th, atol=1e-6)


def test_result_saves_and_loads(tmp_path):
    c = continuation(_one_unit(2.0), np.linspace(1.0, -1.0, 21), np.array([0.99]))
    itermap.save(c, tmp_path / "c.npz")
    back = itermap.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(back.parameters, c.parameters)
    assert back.bifurcations == c.bifurcations


def test_bad_input_is_named():
    make = _one_unit(2.0)
    with pytest.raises(TypeError, match="make_map"):
        continuation(3, [0, 1], np.zeros(1))
    with pytest.raises(ValueError, match="values"):
        continuation(make, [0.0], np.zeros(1))
    with pytest.raises(ValueError, match="values"):
        continuation(make, [0.0, 0.0], np.zeros(1))
    with pytest.raises(ValueError, match="values"):
        continuation(make, [0.0, np.nan], np.zeros(1))
    with pytest.raises(ValueError, match="x_start"):
        continuation(make, [0.0, 1.0], np.zeros(3))
    with pytest.raises(ValueError, match="max_step"):
        continuation(make, [0.0, 1.0], np.zeros(1), max_step=-1.0)
    with pytest.raises(ValueError, match="x_start"):   # no fixed point of x -> x + 1 near it
        continuation(lambda s: itermap.FunctionMap(lambda x: x + 1.0 + s, 1,
                                                   jacobian=lambda x: np.ones((x.shape[0], 1, 1))),
                     [0.0, 1.0], np.zeros(1))


def test_figure_dashes_the_unstable_part_and_marks_the_folds():
    c = continuation(_one_unit(2.0), np.linspace(1.0, -1.0, 41), np.array([0.99]))
    ax = plots.continuation(c)
    styles = [line.get_linestyle() for line in ax.lines]
    assert styles.count("--") == 1 and styles.count("-") == 2     # stable, unstable, stable
    offsets = np.concatenate([col.get_offsets() for col in ax.collections])
    np.testing.assert_allclose(np.sort(offsets[:, 0]), sorted(b["parameter"] for b in
                                                              c.bifurcations))


def test_a_turning_point_without_a_crossing_is_a_branch_point_and_a_fold_stays_a_fold():
    # x -> tanh(w x) from x > 0: the branch x^2 ~ 3 (w - 1) turns at w = 1 onto x < 0 with
    # its multiplier w (1 - x^2) < 1 on both sides (a pitchfork: a branch point)
    c = continuation(lambda w: itermap.IterativeMap(np.array([[w]])), np.linspace(2.0, 0.5, 31),
                     np.array([0.95]))
    assert [b["kind"] for b in c.bifurcations] == ["branch point"]
    b = c.bifurcations[0]
    assert abs(b["parameter"] - 1.0) < 1e-5 and abs(b["point"][0]) < 1e-2
    assert abs(b["multiplier"][0] - 1.0) < 1e-5
    # x -> x + (lam - x^2) / 2: points +-sqrt(lam), multipliers 1 -+ sqrt(lam): the branch
    # from x = 1 turns at lam = 0, where the multiplier crosses +1 (a saddle-node: a fold)
    fold = continuation(
        lambda lam: itermap.FunctionMap(lambda x: x + 0.5 * (lam - x * x), 1,
                                        jacobian=lambda x: (1.0 - x)[..., None]),
        np.linspace(1.0, -0.5, 16), np.array([1.0]))
    assert [b["kind"] for b in fold.bifurcations] == ["fold"]
    assert abs(fold.bifurcations[0]["parameter"]) < 1e-6
