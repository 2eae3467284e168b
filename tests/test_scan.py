"""orbit_diagram, lyapunov_scan and mean_field_exponent against closed forms and plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import systems
from itermap.analysis import lyapunov_scan, mean_field_exponent, orbit_diagram


def test_orbit_diagram_logistic_closed_forms():
    r = np.array([2.5, 3.2, 3.5])
    od = orbit_diagram(systems.logistic, r, np.array([0.3]), transient=2000, keep=8)
    assert od.batched and od.states.shape == (3, 8, 1)
    np.testing.assert_allclose(od.states[0, :, 0], 1 - 1 / 2.5, atol=1e-10)
    # period 2: x = (r + 1 +- sqrt((r - 3)(r + 1))) / (2r)
    r2 = 3.2
    pair = (r2 + 1 + np.array([1, -1]) * math.sqrt((r2 - 3) * (r2 + 1))) / (2 * r2)
    np.testing.assert_allclose(np.sort(np.unique(od.states[1, :, 0].round(9))), np.sort(pair),
                               atol=1e-8)
    # period 4 at r = 3.5: four distinct values that repeat every 4 steps
    s = od.states[2, :, 0]
    np.testing.assert_allclose(s[:4], s[4:], atol=1e-9)
    assert len(np.unique(s.round(6))) == 4


def test_orbit_diagram_matches_a_plain_loop_unbatched():
    # a network family cannot take an array of gains: falls back to one map per value
    def make(g):
        return itermap.random_rnn(5, gain=g, rng=3)

    x0 = np.linspace(-0.5, 0.5, 5)
    od = orbit_diagram(make, [0.5, 1.8], x0, transient=10, keep=3)
    assert not od.batched
    for i, g in enumerate([0.5, 1.8]):
        W = np.asarray(make(g).block_matrix.to_dense())
        x = x0.copy()
        kept = []
        for t in range(13):
            x = np.tanh(W @ x)
            if t >= 10:
                kept.append(x)
        np.testing.assert_allclose(od.states[i], np.array(kept), rtol=1e-12, atol=1e-14)


def test_batched_and_unbatched_agree():
    r = np.linspace(3.4, 3.9, 5)
    a = orbit_diagram(systems.logistic, r, np.array([0.2]), transient=50, keep=5)
    b = orbit_diagram(systems.logistic, r, np.array([0.2]), transient=50, keep=5, batched=False)
    assert a.batched and not b.batched
    np.testing.assert_allclose(a.states, b.states, rtol=1e-12)


def test_diverging_orbits_become_nan():
    od = orbit_diagram(systems.logistic, [3.0, 4.5], np.array([0.3]), transient=100, keep=2)
    assert np.all(np.isfinite(od.states[0])) and np.all(np.isnan(od.states[1]))


def test_per_value_start_states():
    x0 = np.array([[0.1], [0.9]])
    od = orbit_diagram(systems.logistic, [2.0, 2.0], x0, transient=0, keep=1)
    np.testing.assert_allclose(od.states[:, 0, 0], 2.0 * x0[:, 0] * (1 - x0[:, 0]))


def test_lyapunov_scan_logistic_closed_forms_and_reference_loop():
    r = np.array([2.5, 3.2, 4.0])
    s = lyapunov_scan(systems.logistic, r, np.array([0.3]), 20000, transient=500)
    assert s.batched and s.exponents.shape == (3, 1)
    # fixed point 1 - 1/r: lambda = ln|2 - r|
    assert s.exponents[0, 0] == pytest.approx(math.log(0.5), abs=1e-9)
    # period 2 at r = 3.2: lambda = (1/2) ln|f'(x+) f'(x-)| = (1/2) ln|4 + 2r - r^2|
    assert s.exponents[1, 0] == pytest.approx(0.5 * math.log(abs(4 + 2 * 3.2 - 3.2**2)),
                                              abs=1e-6)
    # r = 4: ln 2 (invariant density), within the Monte-Carlo error
    assert s.exponents[2, 0] == pytest.approx(math.log(2), abs=3e-2)
    # the same run as a plain loop: mean of ln|r (1 - 2x)|
    x, acc = 0.3, 0.0
    for _ in range(500):
        x = 4.0 * x * (1 - x)
    for _ in range(20000):
        acc += math.log(abs(4.0 * (1 - 2 * x)))
        x = 4.0 * x * (1 - x)
    assert s.exponents[2, 0] == pytest.approx(acc / 20000, rel=1e-9)
    assert np.all(s.stderr >= 0) and s.stderr[2, 0] < 0.05


def test_lyapunov_scan_henon_sum_is_log_b():
    s = lyapunov_scan(lambda a: systems.henon(a=a, b=0.3), [1.4], np.array([0.1, 0.1]), 5000,
                      k=2, transient=100)
    assert not s.batched
    assert s.exponents.sum() == pytest.approx(math.log(0.3), abs=1e-9)
    assert s.exponents[0, 0] == pytest.approx(0.419, abs=0.02)  # literature value 0.41922
    assert s.exponents[0, 0] > s.exponents[0, 1]


def test_lyapunov_scan_linear_network_is_log_spectral_radius():
    # identity activation on a normal matrix: exponents are ln|eigenvalues|
    Q = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]

    def make(g):
        return itermap.IterativeMap(Q @ np.diag([g, 0.5, 0.3, 0.1]) @ Q.T, activation="identity")

    s = lyapunov_scan(make, [0.9, 0.7], np.ones(4), 300, k=2, transient=100)
    np.testing.assert_allclose(s.exponents, np.log([[0.9, 0.5], [0.7, 0.5]]), atol=1e-6)


def test_mean_field_subcritical_is_log_gain():
    g = np.array([0.1, 0.5, 0.99, 1.0])
    np.testing.assert_allclose(mean_field_exponent(g), np.log(g), rtol=1e-12)
    assert mean_field_exponent(0.0) == -np.inf


def test_mean_field_supercritical_against_quad():
    from scipy import integrate

    def gauss(f):
        return integrate.quad(lambda z: f(z) * np.exp(-z * z / 2) / math.sqrt(2 * math.pi),
                              -12, 12, limit=200)[0]

    for g in (1.5, 3.0):
        q = 1.0
        for _ in range(3000):
            q = g * g * gauss(lambda z, q=q: np.tanh(math.sqrt(q) * z) ** 2)
        lam = math.log(g) + 0.5 * math.log(gauss(
            lambda z, q=q: (1 - np.tanh(math.sqrt(q) * z) ** 2) ** 2))
        assert mean_field_exponent(g) == pytest.approx(lam, abs=1e-6)
        assert lam > 0


@settings(max_examples=20, deadline=None)
@given(st.floats(1.0, 4.0))
def test_mean_field_positive_above_one_and_increasing(g):
    a, b = mean_field_exponent(g), mean_field_exponent(g + 0.05)
    assert a >= -1e-12 and b > a


def test_errors_name_the_problem():
    x0 = np.array([0.3])
    with pytest.raises(ValueError, match="values"):
        orbit_diagram(systems.logistic, [], x0)
    with pytest.raises(ValueError, match="NaN"):
        orbit_diagram(systems.logistic, [np.nan], x0)
    with pytest.raises(ValueError, match="keep"):
        orbit_diagram(systems.logistic, [3.0], x0, keep=0)
    with pytest.raises(TypeError, match="transient"):
        orbit_diagram(systems.logistic, [3.0], x0, transient=1.5)
    with pytest.raises(TypeError, match="callable"):
        orbit_diagram(3.0, [3.0], x0)
    with pytest.raises(ValueError, match="x0"):
        orbit_diagram(systems.logistic, [3.0], np.array([0.3, 0.2]), batched=False)
    with pytest.raises(ValueError, match="k=3"):
        lyapunov_scan(systems.henon, [1.4], np.zeros(2), 10, k=3)
    with pytest.raises(ValueError, match="steps"):
        lyapunov_scan(systems.logistic, [3.0], x0, 0)
    with pytest.raises(ValueError, match="batch"):
        orbit_diagram(lambda r: systems.logistic(np.mean(r)), [2.0, 3.0], x0, batched=True)
    with pytest.raises(ValueError, match="tanh"):
        mean_field_exponent(1.0, activation="relu")
    with pytest.raises(ValueError, match="gain"):
        mean_field_exponent(-1.0)


def test_segment_stderr_from_running_averages():
    from types import SimpleNamespace

    from itermap.analysis.lyapunov._scan import _segment_stderr

    # per-step values: segment j of 100 steps has mean m_j; running averages at every 100 steps
    means = np.array([0.1, 0.3, 0.2, 0.4, 0.0, 0.2, 0.1, 0.3, 0.2, 0.2])
    steps = np.arange(1, 11) * 100
    running = np.cumsum(means * 100) / steps
    res = SimpleNamespace(history=running[:, None], history_steps=steps)
    expected = np.std(means, ddof=1) / np.sqrt(10)
    np.testing.assert_allclose(_segment_stderr(res), [expected], rtol=1e-12)
    flat = SimpleNamespace(history=np.full((10, 2), 0.5), history_steps=steps)
    np.testing.assert_allclose(_segment_stderr(flat), [0.0, 0.0], atol=1e-15)


def test_unbatched_scan_goes_through_lyapunov_spectrum():
    from itermap.analysis import lyapunov_spectrum

    x0 = np.array([0.1, 0.1])
    s = lyapunov_scan(lambda a: systems.henon(a=a), [1.2, 1.4], x0, 3000, k=2, transient=100)
    for i, a in enumerate([1.2, 1.4]):
        ref = lyapunov_spectrum(systems.henon(a=a), x0[None, :], 3000, k=2, transient=100, rng=0)
        np.testing.assert_allclose(s.exponents[i], ref.exponents, rtol=1e-12)
    assert np.all(np.isfinite(s.stderr)) and np.all(s.stderr < 0.05)


@pytest.mark.parametrize("density", [1.0, 0.05])
def test_gain_family_rows_are_plain_networks(density):
    from itermap.analysis import gain_family

    base = itermap.random_rnn(60, gain=1.0, density=density, rng=4)
    W = np.asarray(base.block_matrix.to_dense())
    make = gain_family(base)
    gains = np.array([0.5, 1.3, 2.0])
    fam = make(gains)
    X = np.random.default_rng(0).normal(size=(3, 60))
    # one step: a plain loop over the rows
    ref = np.array([np.tanh(g * W @ x) for g, x in zip(gains, X)])
    np.testing.assert_allclose(fam.step(X), ref, rtol=1e-12, atol=1e-15)
    # Jacobians: diag(1 - tanh^2(g W x)) g W, and tangents are J @ v
    J = fam.jacobian(X)
    for i, (g, x) in enumerate(zip(gains, X)):
        Jref = (1 - np.tanh(g * W @ x) ** 2)[:, None] * (g * W)
        np.testing.assert_allclose(J[i], Jref, rtol=1e-12, atol=1e-15)
    V = np.random.default_rng(1).normal(size=(3, 60, 2))
    np.testing.assert_allclose(fam.tangent(X, V), J @ V, rtol=1e-10, atol=1e-13)
    # a scalar gain gives an ordinary map with weights g W
    single = make(1.3)
    np.testing.assert_allclose(np.asarray(single.block_matrix.to_dense()), 1.3 * W, rtol=1e-15)


def test_gain_family_scan_is_batched_and_matches_per_value_runs():
    from itermap.analysis import gain_family, lyapunov_spectrum

    base = itermap.random_rnn(40, gain=1.0, rng=5)
    make = gain_family(base)
    gains = np.array([0.5, 0.8])
    x0 = np.full(40, 0.2)
    s = lyapunov_scan(make, gains, x0, 400, transient=200)
    assert s.batched
    for i, g in enumerate(gains):
        ref = lyapunov_spectrum(make(float(g)), x0[None, :], 400, k=1, transient=200, rng=0)
        assert s.exponents[i, 0] == pytest.approx(float(ref.exponents[0]), abs=5e-3)
        # the origin is the attractor: the exponent is ln of W's spectral radius
        rho = np.abs(np.linalg.eigvals(g * np.asarray(base.block_matrix.to_dense()))).max()
        assert s.exponents[i, 0] == pytest.approx(np.log(rho), abs=2e-2)


def test_gain_family_errors():
    from itermap.analysis import gain_family

    with pytest.raises(TypeError, match="IterativeMap"):
        gain_family(systems.henon())
    rnn = itermap.IterativeMap.from_rnn(np.eye(2) * 0.5, np.ones((2, 1)))
    with pytest.raises(ValueError, match="autonomous"):
        gain_family(rnn)
    mixed = itermap.IterativeMap(np.eye(4) * 0.5, activation=["tanh", "relu"], sizes=[2, 2])
    with pytest.raises(ValueError, match="one activation"):
        gain_family(mixed)
    make = gain_family(itermap.random_rnn(3, rng=0))
    with pytest.raises(ValueError, match="gains"):
        make(np.array([[1.0]]))
    with pytest.raises(ValueError, match="shape"):
        make(np.array([1.0, 2.0])).step(np.zeros((3, 3)))


class _ContractingAndLogistic:
    """``x -> (0.5 x_0, r x_1 (1 - x_1))``, batched over ``r``: the exponents are
    ln 0.5 exactly (no spread) and the logistic map's (ln 2 at r = 4, with spread).

    The QR from the identity frame keeps ``e_0`` first, so the batched scan gets them
    in ascending order and must sort them, errors included.
    """

    dim = 2

    def __init__(self, r):
        self.r = np.atleast_1d(np.asarray(r, dtype=float))

    def _slopes(self, x):
        x = np.asarray(x, dtype=float)
        r = self.r if x.ndim == 2 else self.r[0]
        return np.stack([np.full_like(x[..., 0], 0.5), r * (1.0 - 2.0 * x[..., 1])], axis=-1)

    def step(self, x, u=None):
        x = np.asarray(x, dtype=float)
        r = self.r if x.ndim == 2 else self.r[0]
        return np.stack([0.5 * x[..., 0], r * x[..., 1] * (1.0 - x[..., 1])], axis=-1)

    def jacobian(self, x, u=None):
        d = self._slopes(x)
        return d[..., :, None] * np.eye(2)

    def tangent(self, x, v, u=None):
        return self._slopes(x)[..., :, None] * np.asarray(v, dtype=float)

    def vjp(self, x, w, u=None):
        return np.asarray(w, dtype=float) * self._slopes(x)


@pytest.mark.parametrize("batched", [True, False])
def test_scan_sorts_the_errors_with_the_exponents(batched):
    s = lyapunov_scan(_ContractingAndLogistic, [4.0, 4.0], np.array([0.0, 0.3]), 4000, k=2,
                      batched=batched)
    np.testing.assert_allclose(s.exponents[:, 0], np.log(2.0), atol=0.03)
    np.testing.assert_allclose(s.exponents[:, 1], np.log(0.5), atol=1e-12)
    # ln 0.5 is exact in every segment: its error is 0, the logistic map's is not
    np.testing.assert_allclose(s.stderr[:, 1], 0.0, atol=1e-12)
    assert np.all(s.stderr[:, 0] > 1e-4)


def test_scan_and_spectrum_give_an_exact_collapse_zero_error():
    from itermap import systems

    s = lyapunov_scan(lambda a: systems.linear(np.diag([a, 0.0])), [0.5, 2.0], np.ones(2),
                      200, k=2, batched=False)
    assert np.all(s.exponents[:, 1] == -np.inf) and np.all(s.stderr[:, 1] == 0.0)
    from itermap.analysis import lyapunov_spectrum

    one = lyapunov_spectrum(systems.linear(np.diag([0.5, 0.0])), np.ones(2), 50, rng=0)
    assert one.exponents[1] == -np.inf and one.stderr[1] == 0.0  # one trajectory too
    assert np.isnan(one.stderr[0])  # no spread to estimate from


def _logistic_log_slopes(r, x, transient, steps):
    """Plain loop: ln|r (1 - 2 x_t)| over the measured steps of the logistic map."""
    for _ in range(transient):
        x = r * x * (1 - x)
    out = []
    for _ in range(steps):
        out.append(math.log(abs(r * (1 - 2 * x))))
        x = r * x * (1 - x)
    return np.array(out)


@pytest.mark.parametrize("batched", [True, False])
def test_scan_marks_a_diverged_orbit_nan_and_keeps_the_others(batched):
    # r = 4.5 leaves [0, 1] and overflows; r = 3.0 and 3.9 stay bounded
    s = lyapunov_scan(systems.logistic, [3.0, 4.5, 3.9], np.array([0.3]), 3000, transient=200,
                      batched=batched)
    assert s.batched == batched
    assert np.isnan(s.exponents[1, 0]) and np.isnan(s.stderr[1, 0])
    for i, r in ((0, 3.0), (2, 3.9)):
        ref = _logistic_log_slopes(r, 0.3, 200, 3000).mean()
        assert s.exponents[i, 0] == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_scan_stderr_with_fewer_steps_than_segments():
    # 5 steps: 5 one-step segments, the error is the spread of the per-step values
    s = lyapunov_scan(systems.logistic, [3.9], np.array([0.3]), 5, transient=200)
    per_step = _logistic_log_slopes(3.9, 0.3, 200, 5)
    assert s.exponents[0, 0] == pytest.approx(per_step.mean(), rel=1e-9)
    assert s.stderr[0, 0] == pytest.approx(np.std(per_step, ddof=1) / math.sqrt(5), rel=1e-9)
