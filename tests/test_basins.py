"""Basins of attraction and their fractions (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import basins, find_fixed_points, plots


def _tanh_root(g):
    return scipy.optimize.brentq(lambda s: np.tanh(g * s) - s, 1e-3, 2.0)


def test_tanh_basins_split_at_the_origin():
    # x -> tanh(2x): x > 0 goes to +x*, x < 0 to -x*, and 0 stays (unstable, fixed)
    m = itermap.IterativeMap(np.array([[2.0]]))
    x0 = np.linspace(-1, 1, 201)[:, None]
    b = basins(m, x0, steps=200)
    r = _tanh_root(2.0)
    np.testing.assert_allclose(b.attractors[:, 0], [-r, 0.0, r], atol=1e-9)
    np.testing.assert_array_equal(b.periods, [1, 1, 1])
    want = np.where(x0[:, 0] < 0, 0, np.where(x0[:, 0] > 0, 2, 1))
    np.testing.assert_array_equal(b.labels, want)
    np.testing.assert_allclose(b.fractions, [100 / 201, 1 / 201, 100 / 201])
    f = b.fractions
    np.testing.assert_allclose(b.errors, np.sqrt(f * (1 - f) / 201))
    assert b.other_fraction == 0.0


def test_period_two_orbit_is_one_attractor():
    # x -> tanh(-2x): every start but 0 ends on the 2-cycle +-x*
    m = itermap.IterativeMap(np.array([[-2.0]]))
    b = basins(m, np.linspace(-1, 1, 101)[:, None], steps=200)
    r = _tanh_root(2.0)
    np.testing.assert_allclose(b.attractors[:, 0], [-r, 0.0], atol=1e-9)
    np.testing.assert_array_equal(b.periods, [2, 1])
    np.testing.assert_allclose(b.fractions, [100 / 101, 1 / 101])


def test_given_attractors_from_find_fixed_points_and_other():
    # two uncoupled tanh(2x) units: 4 stable points; give only the two with x0 > 0;
    # starts going elsewhere are "other"
    m = itermap.IterativeMap(np.diag([2.0, 2.0]))
    fp = find_fixed_points(m, np.random.default_rng(0).uniform(-1, 1, (64, 2)),
                           progress=False)
    stable = np.asarray(fp.points)[np.asarray(fp.stable)]
    assert stable.shape == (4, 2)
    given_pts = stable[stable[:, 0] > 0]
    x0 = np.random.default_rng(1).uniform(-1, 1, (400, 2))
    b = basins(m, x0, steps=200, attractors=given_pts)
    for i, p in enumerate(given_pts):      # the quadrant of the point is its basin
        in_quadrant = (np.sign(x0) == np.sign(p)).all(axis=1)
        np.testing.assert_array_equal(b.labels == i, in_quadrant)
    np.testing.assert_allclose(b.other_fraction, np.mean(x0[:, 0] < 0))
    np.testing.assert_allclose(b.fractions.sum() + b.other_fraction, 1.0)


def test_chaotic_starts_are_other():
    from itermap.systems import logistic
    b = basins(logistic(4.0), np.linspace(0.11, 0.89, 50)[:, None], steps=300)
    assert b.other_fraction > 0.9


def test_driven_map_uses_the_constant_input():
    # x -> tanh(2 x + u) with u = 1: one stable point only (beyond the fold at 0.533)
    W = np.array([[0.0, 0.0], [1.0, 2.0]])
    m = itermap.IterativeMap(W, input_block=0, sizes=[1, 1], activation=["identity", "tanh"])
    b = basins(m, np.column_stack([np.zeros(30), np.linspace(-1, 1, 30)]), steps=200,
               inputs=np.array([1.0]))
    x = scipy.optimize.brentq(lambda s: np.tanh(2 * s + 1) - s, 0.5, 1.0)
    assert b.attractors.shape == (1, 2)
    np.testing.assert_allclose(b.attractors[0], [1.0, x], atol=1e-9)
    np.testing.assert_allclose(b.fractions, [1.0])


def test_bad_input_is_named():
    m = itermap.IterativeMap(np.diag([2.0, 2.0]))
    x0 = np.zeros((3, 2))
    with pytest.raises(ValueError, match="steps"):
        basins(m, x0, steps=0)
    with pytest.raises(TypeError, match="steps"):
        basins(m, x0, steps=2.5)
    with pytest.raises(ValueError, match="attractors"):
        basins(m, x0, steps=5, attractors=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="x0"):
        basins(m, np.zeros((3, 5)), steps=5)
    with pytest.raises(ValueError, match="x0"):
        basins(m, np.full((3, 2), np.nan), steps=5)
    with pytest.raises(ValueError, match="max_period"):
        basins(m, x0, steps=5, max_period=0)
    with pytest.raises(ValueError, match="tol"):
        basins(m, x0, steps=5, tol=-1.0)
    with pytest.raises(ValueError, match="inputs"):
        basins(m, x0, steps=5, inputs=np.zeros(1))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), g=st.floats(0.2, 3.0), seed=st.integers(0, 1000))
def test_fractions_are_a_partition(n, g, seed):
    # whatever the map, every start has one label and the fractions add up to one
    m = itermap.IterativeMap(np.array([[g, 0.3], [-0.3, g]]))
    x0 = np.random.default_rng(seed).uniform(-2, 2, (n, 2))
    b = basins(m, x0, steps=50)
    assert b.labels.shape == (n,)
    assert np.all((b.labels >= -1) & (b.labels < len(b.periods)))
    np.testing.assert_allclose(b.fractions.sum() + b.other_fraction, 1.0)
    assert np.all(np.isfinite(b.errors))


def test_basin_figure_colours_the_slice():
    m = itermap.IterativeMap(np.diag([2.0, 2.0]))
    g = np.linspace(-1, 1, 21)
    X, Y = np.meshgrid(g, g)
    b = basins(m, np.column_stack([X.ravel(), Y.ravel()]), steps=100)
    ax = plots.basins(b, X.shape, extent=(-1, 1, -1, 1))
    img = ax.images[0].get_array()
    # the four quadrants carry four different colours, the axes a fifth and more
    corners = {int(img[0, 0]), int(img[0, -1]), int(img[-1, 0]), int(img[-1, -1])}
    assert len(corners) == 4
    with pytest.raises(ValueError, match="shape"):
        plots.basins(b, (5, 5))


def test_the_repr_shows_other_as_the_sum_of_aperiodic_and_escaped():
    # Henon at the classic parameters: starts off the attractor's basin escape, the rest
    # wander on the strange attractor (aperiodic); no periodic attractor
    from itermap.systems import henon

    b = basins(henon(1.4, 0.3), np.random.default_rng(0).uniform(-2, 2, (200, 2)), steps=200)
    assert b.other_fraction == pytest.approx(b.aperiodic_fraction + b.escaped_fraction)
    text = repr(b)
    assert (f"other={b.other_fraction:.3f} (aperiodic {b.aperiodic_fraction:.3f} + escaped "
            f"{b.escaped_fraction:.3f})") in text
