"""The small-map stepper against the peers' own packages (issue 31), where they are installed.

lyapynov runs the textbook loop (``W = J W``, then numpy's QR, from the identity), so over
a short run its exponents equal ours to rounding: an exact check of every uncompiled and
compiled path, single trajectories and batches. pynamicalsys's standard map (in units of
2 pi, its own compiled loop) is checked statistically: its mean exponent over the same
starts at K = 6. Neither package is a dependency of itermap; the tests skip without them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import itermap
from itermap import FunctionMap
from itermap.analysis import lyapunov_spectrum
from itermap.systems import henon, standard_map
from tests.conftest import MODES

TWO_PI = 2.0 * math.pi


class UserHenon:
    """A user's plain class with NumPy methods."""

    dim = 2

    def step(self, x):
        return np.stack([1.0 - 1.4 * x[..., 0] * x[..., 0] + x[..., 1], 0.3 * x[..., 0]], -1)

    def jacobian(self, x):
        J = np.zeros(x.shape + (2,))
        J[..., 0, 0] = -2.8 * x[..., 0]
        J[..., 0, 1] = 1.0
        J[..., 1, 0] = 0.3
        return J


def l96(x):
    n = x.shape[-1]
    y = np.empty_like(x)
    for i in range(n):
        y[..., i] = x[..., i] + 0.01 * ((x[..., (i + 1) % n] - x[..., i - 2]) * x[..., i - 1]
                                        - x[..., i] + 8.0)
    return y


def l96_jac(x):
    n = x.shape[-1]
    J = np.zeros(x.shape + (n,))
    for i in range(n):
        J[..., i, i] = 1.0 - 0.01
        J[..., i, (i + 1) % n] += 0.01 * x[..., i - 1]
        J[..., i, (i - 2) % n] += -0.01 * x[..., i - 1]
        J[..., i, (i - 1) % n] += 0.01 * (x[..., (i + 1) % n] - x[..., i - 2])
    return J


def _lyapynov_exponents(m, x, k, n):
    lyapynov = pytest.importorskip("lyapynov")
    system = lyapynov.DiscreteDS(np.array(x, dtype=float), 0,
                                 lambda x, t: m.wrap(m.step(x)), lambda x, t: m.jacobian(x))
    return lyapynov.LCE(system, k, 0, n, False)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["henon", "user-class", "standard", "lorenz96", "lorenz96-top3"])
def test_exponents_equal_lyapynov_over_a_short_run(name, mode, monkeypatch):
    pytest.importorskip("lyapynov")
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    g = np.random.default_rng(7)
    if name.startswith("lorenz96"):
        m = FunctionMap(l96, 10, jacobian=l96_jac)
        X = 8.0 + g.normal(size=(3, 10))
        k = 3 if name.endswith("top3") else 10
    else:
        m = itermap.as_map({"henon": henon(), "user-class": UserHenon(),
                            "standard": standard_map(1.5)}[name])
        X = g.uniform(-0.1, 0.1, (3, 2)) if name != "standard" else g.uniform(0, TWO_PI, (3, 2))
        k = 2
    n = 25  # short: the two loops' rounding is not amplified past 1e-9
    for starts in (X[:1], X):  # one trajectory, and a batch
        B = len(starts)
        s = m.tangent_stepper(starts, np.tile(np.eye(m.dim)[:, :k], (B, 1, 1)), steps=n)
        if s is None:  # a 10-D batch without numba: the analyses' general path
            continue
        acc = np.zeros((B, k))
        assert s.advance(n, acc=acc) is not None
        for b in range(B):
            np.testing.assert_allclose(acc[b] / n, _lyapynov_exponents(m, starts[b], k, n),
                                       rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_standard_map_exponent_agrees_with_pynamicalsys(mode, monkeypatch):
    """K = 6, 8 starts, 5000 steps: the means agree within their spread (~0.01 each)."""
    pynamicalsys = pytest.importorskip("pynamicalsys")
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    U = np.random.default_rng(0).uniform(0.0, 1.0, (8, 2))
    ds = pynamicalsys.DiscreteDynamicalSystem(model="standard map")
    theirs = np.array([ds.lyapunov(u, 5000, parameters=[6.0]) for u in U])
    batch = lyapunov_spectrum(standard_map(6.0), U * TWO_PI, 5000, rng=0)
    single = [lyapunov_spectrum(standard_map(6.0), u * TWO_PI, 5000, rng=0).exponents
              for u in U[:2]]
    assert abs(batch.exponents[0] - theirs[:, 0].mean()) < 0.03
    assert abs(batch.exponents.sum()) < 1e-12 and abs(theirs.sum(axis=1)).max() < 1e-10
    for ours, u in zip(single, U[:2]):
        assert abs(ours[0] - ds.lyapunov(u, 5000, parameters=[6.0])[0]) < 0.1


@pytest.mark.parametrize("k", [0.5, 1.5, 3.0])
def test_standard_map_period_two_orbits_include_pynamicalsys_ones(k):
    """pynamicalsys's Newton with ``periods`` from a grid of starts: every period-2 point it
    finds is among ours from the same starts (modulo 2 pi), {(0, pi), (pi, pi)} included."""
    pynamicalsys = pytest.importorskip("pynamicalsys")
    from itermap.analysis import find_fixed_points

    g = (np.arange(8) + 0.5) / 8
    U = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    ds = pynamicalsys.DiscreteDynamicalSystem(model="standard map")
    ds.set_parameters([k])
    theirs = []
    for u in U:
        try:
            theirs.append(ds.find_periodic_orbit(u, 2, periods=[1.0, 1.0]))
        except (RuntimeError, ValueError):
            pass
    theirs = np.mod(np.array(theirs).reshape(-1, 2), 1.0) * TWO_PI
    ours = find_fixed_points(standard_map(k), U * TWO_PI, period=2).points
    d = np.mod(theirs[:, None, :] - ours[None] + math.pi, TWO_PI) - math.pi
    assert len(theirs) > 0
    assert np.linalg.norm(d, axis=-1).min(axis=1).max() < 1e-6
    for want in ([0.0, math.pi], [math.pi, math.pi]):
        dw = np.mod(ours - np.array(want) + math.pi, TWO_PI) - math.pi
        assert np.linalg.norm(dw, axis=1).min() < 1e-9
