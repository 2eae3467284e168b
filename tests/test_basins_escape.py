"""Basins of chaotic maps: escape and bounded non-periodic starts have their own labels
(issue 24, section 2), checked against a plain per-start loop and known facts."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import itermap  # noqa: E402
from itermap.analysis import Basins, basins, lyapunov_spectrum, plots  # noqa: E402


class GeneralisedHenon:
    """x1' = a - x_{N-1}^2 - b x_N, x_j' = x_{j-1} (Baier and Klein 1990), a plain class."""

    def __init__(self, dim=3, a=1.76, b=0.1):
        self.dim, self.a, self.b = dim, a, b

    def step(self, x):
        head = self.a - x[..., -2] ** 2 - self.b * x[..., -1]
        return np.concatenate([head[..., None], x[..., :-1]], axis=-1)

    def jacobian(self, x):
        J = np.zeros(x.shape + (self.dim,))
        J[..., 0, -2] = -2 * x[..., -2]
        J[..., 0, -1] = -self.b
        for j in range(1, self.dim):
            J[..., j, j - 1] = 1.0
        return J


def _escapes(m, x, steps, radius):
    """A plain loop, one start at a time in Python floats: does it ever leave the ball?"""
    x = [float(v) for v in x]
    for _ in range(steps):
        # x * x, not x ** 2: libm's pow(x, 2) is off by one ulp on ~1e-3 of inputs, and a
        # chaotic orbit grows that to an escape a hundred steps later that the map never makes
        head = m.a - x[-2] * x[-2] - m.b * x[-1] if abs(x[-2]) < 1e150 else float("inf")
        x = [head] + x[:-1]
        if not all(np.isfinite(x)) or np.sqrt(sum(v * v for v in x)) > radius:
            return True
    return False


def _grid(n, lo, hi, dim):
    g = np.linspace(lo, hi, n)
    X, Y = np.meshgrid(g, g)
    return np.column_stack([X.ravel(), Y.ravel()] + [np.zeros(X.size)] * (dim - 2)), X.shape


def test_generalised_henon_escape_against_a_plain_loop():
    m = GeneralisedHenon()
    x0, _ = _grid(41, -2.5, 2.5, 3)
    b = basins(m, x0, steps=150, max_period=8, escape_radius=1e4)
    want = np.array([_escapes(m, x, 150 + 8, 1e4) for x in x0])
    assert 0.2 < want.mean() < 0.8                    # both fates occur on this slice
    np.testing.assert_array_equal(b.labels == Basins.ESCAPED, want)
    # a=1.76, b=0.1: a strange attractor and no stable cycle, so every bounded start is -1
    np.testing.assert_array_equal(b.labels == Basins.BOUNDED, ~want)
    assert b.periods.size == 0
    n = len(x0)
    assert b.escaped_fraction == pytest.approx(want.mean())
    assert b.aperiodic_fraction == pytest.approx(1 - want.mean())
    assert b.escaped_error == pytest.approx(np.sqrt(want.mean() * (1 - want.mean()) / n))
    assert b.other_fraction == pytest.approx(1.0)
    assert np.all(np.isnan(b.final[want])) and np.all(np.isfinite(b.final[~want]))


def test_the_bounded_starts_are_on_a_strange_attractor():
    # a bounded, non-periodic start of the generalised Henon map has a positive exponent
    m = GeneralisedHenon()
    x0, _ = _grid(9, -1.0, 1.0, 3)
    b = basins(m, x0, steps=200)
    start = x0[np.flatnonzero(b.labels == Basins.BOUNDED)[0]]
    lam = lyapunov_spectrum(m, start, 20000, transient=500).exponents
    assert lam[0] > 0.05


def test_classic_henon_known_facts():
    henon = itermap.systems.henon()             # a = 1.4, b = 0.3
    rng = np.random.default_rng(0)
    # Henon's (1976) trapping quadrilateral maps into itself: starts inside stay bounded
    A, B, C, D = map(np.array, [(-1.33, 0.42), (1.32, 0.133), (1.245, -0.14), (-1.06, -0.5)])
    s, t = rng.uniform(size=(2, 400))
    inside = np.where((s + t <= 1)[:, None], A + s[:, None] * (B - A) + t[:, None] * (D - A),
                      C + (1 - s)[:, None] * (B - C) + (1 - t)[:, None] * (D - C))
    near_origin = rng.uniform(-0.2, 0.2, size=(200, 2))
    far = np.column_stack([rng.choice([-1, 1], 200) * rng.uniform(3, 50, 200),
                           rng.uniform(-3, 3, 200)])
    b = basins(henon, np.vstack([inside, near_origin, far]), steps=300)
    assert np.all(b.labels[:600] == Basins.BOUNDED)
    assert np.all(b.labels[600:] == Basins.ESCAPED)
    assert b.periods.size == 0                    # no stable cycle at a = 1.4, b = 0.3
    assert b.escaped_fraction == pytest.approx(200 / 800)
    assert b.aperiodic_fraction == pytest.approx(600 / 800)


@settings(max_examples=20, deadline=None)
@given(a=st.floats(0.2, 1.9), b_=st.floats(-0.35, 0.35), seed=st.integers(0, 10**6))
def test_the_fates_partition_the_starts(a, b_, seed):
    # over the Henon family (cycles, strange attractors, escape): one fate per start,
    # escape as the plain loop finds it, and the fractions add up to one
    m = GeneralisedHenon(dim=2, a=a, b=b_)
    x0 = np.random.default_rng(seed).uniform(-2, 2, (30, 2))
    res = basins(m, x0, steps=120, max_period=6, escape_radius=1e3)
    esc = np.array([_escapes(m, x, 126, 1e3) for x in x0])
    np.testing.assert_array_equal(res.labels == -2, esc)
    assert np.all(res.labels >= -2)
    total = res.fractions.sum() + res.aperiodic_fraction + res.escaped_fraction
    assert total == pytest.approx(1.0)
    assert res.other_fraction == pytest.approx(res.aperiodic_fraction + res.escaped_fraction)


class _OverflowThenZero:
    """x -> 1e200 x^2, except that inf maps to 0: an overflow that comes back finite."""

    dim = 1

    def step(self, x):
        with np.errstate(over="ignore"):
            return np.where(np.isinf(x), 0.0, 1e200 * x ** 2)

    def jacobian(self, x):
        return (2e200 * x)[..., None]


def test_an_overflow_that_comes_back_finite_is_still_an_escape():
    b = basins(_OverflowThenZero(), np.array([[1e100], [0.0], [1e-300]]), steps=20)
    np.testing.assert_array_equal(b.labels, [Basins.ESCAPED, 0, 0])
    np.testing.assert_allclose(b.attractors, [[0.0]])


def test_escape_radius():
    m = itermap.systems.linear(np.array([[1.01]]))    # 1.01^300 = 19.8
    x0 = np.array([[1.0], [0.0]])
    assert basins(m, x0, steps=300, escape_radius=10.0).labels.tolist() == [-2, 0]
    b = basins(m, x0, steps=300)                      # the default radius is far out
    assert b.labels.tolist() == [-1, 0] and b.escape_radius == 1e6
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="escape_radius"):
            basins(m, x0, steps=5, escape_radius=bad)


def test_basin_figure_shows_a_strange_attractor_against_escape():
    m = GeneralisedHenon()
    x0, shape = _grid(41, -2.5, 2.5, 3)
    b = basins(m, x0, steps=150, escape_radius=1e4)
    esc = np.mean(b.labels == -2)
    with plots.paper_style(columns=2):
        fig, axes = plt.subplots(1, 2)
        ax = plots.basins(b, shape, extent=(-2.5, 2.5, -2.5, 2.5), ax=axes[0])
        plots.basins(basins(itermap.systems.henon(), x0[:, :2], steps=150), shape, ax=axes[1])
        fig.canvas.draw()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f"bounded, no periodic orbit: {1 - esc:.1%}", f"escape: {esc:.1%}"]
    img = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(img == 0, (b.labels == -2).reshape(shape))
    cmap = ax.images[0].get_cmap()
    assert cmap(0) != cmap(1)                          # escape and bounded differ in colour
    for a in axes:                                      # the legends stay inside the figure
        assert fig.bbox.contains(*a.get_legend().get_window_extent().p0)
        assert fig.bbox.contains(*a.get_legend().get_window_extent().p1)
    plt.close(fig)


def test_the_new_fields_survive_save_and_load(tmp_path):
    b = basins(itermap.systems.henon(), np.array([[0.1, 0.1], [4.0, 4.0]]), steps=100)
    itermap.save(b, tmp_path / "b.npz")
    c = itermap.load(tmp_path / "b.npz")
    assert (c.escaped_fraction, c.aperiodic_fraction) == (0.5, 0.5)
    assert c.escape_radius == b.escape_radius == 4e6 * np.sqrt(2)
    np.testing.assert_array_equal(c.labels, [Basins.BOUNDED, Basins.ESCAPED])
