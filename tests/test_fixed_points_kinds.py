"""The fixed-point analyses on map kinds their authors did not try (round 15's defect hunt).

Every number is checked against something independent of the search: plain ``step``
calls, central-difference Jacobians of ``step`` and their ``np.linalg.eigvals``, closed
forms (the standard map's elliptic point, linear maps).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from hypothesis import example, given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import basins, continuation, find_fixed_points, sample_states


# -- independent references --------------------------------------------------------------
def _step_p(m, x, p, u=None):
    """``F^p`` at one state by plain ``step`` calls."""
    y = np.asarray(x, dtype=float)[None, :]
    uu = None if u is None else np.asarray(u, dtype=float)[None, :]
    for _ in range(p):
        y = np.asarray(m.step(y, uu), dtype=float)
    return y[0]


def _wrapped(m, d):
    """A difference of states, the shortest way round on a torus."""
    if m.periods is None:
        return d
    per = np.array([P or 0.0 for P in m.periods])
    return d - per * np.round(d / np.where(per > 0, per, 1.0))


def _fd_jacobian(m, x, p, u=None, h=1e-6):
    """``D(F^p)(x)`` by central differences of ``step``."""
    n = x.size
    J = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        J[:, j] = (_step_p(m, x + e, p, u) - _step_p(m, x - e, p, u)) / (2 * h)
    return J


# -- slow points are stationary points of q -----------------------------------------------
@settings(max_examples=8, deadline=None)
@given(gain=st.floats(1.5, 4.0), seed=st.integers(0, 50), period=st.sampled_from([1, 2]))
@example(gain=2.5, seed=0, period=1)    # a line search failed once: a "slow point" with
@example(gain=4.0, seed=0, period=1)    # ||grad q|| ~ ||G|| before the fix
def test_every_slow_point_is_a_stationary_point_of_q(gain, seed, period):
    # q = 1/2 ||G||^2, G = F^p(x) - x: at a slow point grad q = (DF^p - I)^T G vanishes
    # (to the search's 1e-9 relative); a failed line search is no reason to stop there
    m = itermap.random_rnn(10, gain=gain, rng=seed)
    fp = find_fixed_points(m, sample_states(m, 24, rng=1, noise=0.3), period=period,
                           slow_points=True, progress=False)
    assert len(fp.slow_points) == len(fp.slow_residuals) == len(fp.slow_q)
    for x, r in zip(np.asarray(fp.slow_points), np.asarray(fp.slow_residuals), strict=True):
        G = _step_p(m, x, period) - x
        A = _fd_jacobian(m, x, period) - np.eye(x.size)
        assert abs(np.linalg.norm(G) - r) <= 1e-9 * r
        assert np.linalg.norm(A.T @ G) <= 1e-5 * np.linalg.norm(A, 2) * np.linalg.norm(G)


def test_slow_points_on_a_torus_are_reduced_onto_it_and_distinct_modulo_the_periods():
    # the standard map's period-2 search has slow points; L-BFGS wanders along the lift,
    # so they were reported off [0, 2 pi) and the same slow point twice, 2 pi apart
    m = itermap.systems.standard_map(3.0)
    starts = np.random.default_rng(0).uniform(-7.0, 7.0, (30, 2))
    fp = find_fixed_points(m, starts, period=2, slow_points=True, progress=False)
    sp = np.asarray(fp.slow_points)
    assert len(sp) >= 2
    two_pi = 2.0 * np.pi
    assert np.all((sp > -1e-6) & (sp < two_pi))
    for i in range(len(sp)):
        G = _wrapped(m, _step_p(m, sp[i], 2) - sp[i])
        assert abs(np.linalg.norm(G) - fp.slow_residuals[i]) <= 1e-9 * fp.slow_residuals[i]
        A = _fd_jacobian(m, sp[i], 2) - np.eye(2)
        assert np.linalg.norm(A.T @ G) <= 1e-5 * np.linalg.norm(A, 2) * np.linalg.norm(G)
        for j in range(i):
            assert np.linalg.norm(_wrapped(m, sp[i] - sp[j])) > 1e-6


# -- multipliers on the unit circle: neither stable nor unstable ---------------------------
@settings(max_examples=10, deadline=None)
@given(k=st.floats(0.05, 3.95))
@example(k=0.3)     # the elliptic point came out with |mu| = 1 + 2e-16: n_unstable 2
@example(k=0.5)     # ... or 1 - 2e-16: stable
def test_the_standard_maps_elliptic_point_is_neither_stable_nor_unstable(k):
    # (pi, 0): J = [[1 - k, 1], [-k, 1]], det 1, trace 2 - k in (-2, 2): mu = e^{+-i theta},
    # cos theta = 1 - k/2; (0, 0) is a saddle, trace 2 + k: one multiplier outside
    m = itermap.systems.standard_map(k)
    fp = find_fixed_points(m, np.array([[3.0, 0.1], [0.1, -0.1]]), progress=False)
    at_pi = np.flatnonzero(np.abs(np.asarray(fp.points)[:, 0] - np.pi) < 1e-6)
    at_0 = np.flatnonzero(np.linalg.norm(_wrapped(m, np.asarray(fp.points)), axis=1) < 1e-6)
    assert at_pi.size == 1 and at_0.size == 1
    e, s = at_pi[0], at_0[0]
    theta = np.arccos(1.0 - k / 2.0)
    np.testing.assert_allclose(np.sort_complex(fp.eigenvalues[e]),
                               np.sort_complex(np.exp([-1j * theta, 1j * theta])), atol=1e-8)
    assert not fp.stable[e] and fp.n_unstable[e] == 0
    assert not fp.stable[s] and fp.n_unstable[s] == 1


def test_continuation_reports_no_crossing_for_multipliers_that_stay_on_the_circle():
    # the elliptic point (pi, 0) of the standard map: mu = e^{+-i theta} for 0 < k < 4, on
    # the circle throughout (rounding put them in and out: four Neimark-Sacker points);
    # at k = 4 they meet at -1 and one leaves along the real axis: a period doubling
    make = itermap.systems.standard_map
    c = continuation(make, np.linspace(0.3, 3.9, 37), np.array([np.pi, 0.0]))
    assert c.bifurcations == [] and c.stop_reason == "end of range"
    assert not np.any(c.stable)
    np.testing.assert_allclose(np.abs(c.eigenvalues), 1.0, atol=1e-12)
    c = continuation(make, np.linspace(3.5, 4.5, 11), np.array([np.pi, 0.0]))
    assert [b["kind"] for b in c.bifurcations] == ["period doubling"]
    np.testing.assert_allclose(c.bifurcations[0]["parameter"], 4.0, atol=1e-6)


# -- bad inputs are refused, naming the parameter ------------------------------------------
def _driven():
    rng = np.random.default_rng(0)
    return itermap.IterativeMap.from_rnn(rng.normal(size=(4, 4)), rng.normal(size=(4, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_constant_input_is_refused_by_every_analysis(bad):
    # it ran before: no points, every start given up (find_fixed_points), every start
    # "escaped" (basins), "states overflowed" (sample_states), "no fixed point near it"
    m = _driven()
    u = np.array([bad, 0.5])
    starts = np.zeros((3, m.dim))
    calls = [lambda: find_fixed_points(m, starts, inputs=u),
             lambda: find_fixed_points(m, starts, inputs=u, method="q"),
             lambda: basins(m, starts, steps=5, inputs=u),
             lambda: sample_states(m, 3, inputs=u, rng=0)]
    for call in calls:
        with pytest.raises(ValueError, match="inputs contain NaN or inf"):
            call()


def test_continuation_checks_its_inputs_against_the_map():
    # an input for an autonomous family was ignored, a wrong shape failed inside the map
    # ("input u has shape (1, 3)"), a NaN input ended in "Newton found no fixed point"
    autonomous = lambda g: itermap.IterativeMap(np.array([[g]]))   # noqa: E731
    with pytest.raises(ValueError, match="inputs: the map is autonomous"):
        continuation(autonomous, [0.5, 0.6], np.zeros(1), inputs=np.ones(2))
    driven = lambda g: itermap.IterativeMap.from_rnn(np.array([[g]]),   # noqa: E731
                                                     np.array([[1.0]]))
    with pytest.raises(ValueError, match=r"inputs must be one constant input of shape \(1,\)"):
        continuation(driven, [0.5, 0.6], np.zeros(2), inputs=np.ones(3))
    with pytest.raises(ValueError, match="inputs contain NaN or inf"):
        continuation(driven, [0.5, 0.6], np.zeros(2), inputs=np.array([np.nan]))
    with pytest.raises(ValueError, match="inputs: the map is driven"):
        continuation(driven, [0.5, 0.6], np.zeros(2))
    # and a right one drives it: x = tanh(g x + 0.3), the input 0.3 held in block 0
    c = continuation(driven, np.linspace(0.5, 0.9, 5), np.zeros(2), inputs=np.array([0.3]))
    x, g = c.points[:, 1], c.parameters
    np.testing.assert_allclose(c.points[:, 0], 0.3)
    np.testing.assert_allclose(np.tanh(g * x + 0.3), x, atol=1e-10)


# -- continuation of the origin of leaky networks: the crossings in closed form ------------
def _origin_crossings(n, density, leak, seed):
    """The gains where a multiplier of ``(1 - a) I + a g W`` (the origin's Jacobian of
    ``random_rnn(n, gain=g, leak=a)``, ``W`` its gain-1 weights) has modulus 1."""
    J1 = itermap.random_rnn(n, gain=1.0, density=density, leak=leak, rng=seed).jacobian(
        np.zeros(n))
    d = leak * np.linalg.eigvals((J1 - (1 - leak) * np.eye(n)) / leak)
    c = 1.0 - leak            # |c + g d|^2 = 1: |d|^2 g^2 + 2 c Re(d) g + c^2 - 1 = 0
    A, B = np.abs(d) ** 2, 2.0 * c * d.real
    return np.unique(np.round((-B + np.sqrt(B * B - 4.0 * A * (c * c - 1.0))) / (2 * A), 9))


@pytest.mark.parametrize(("seed", "leak"), [(1, 0.3), (1, 0.6), (0, 0.6), (3, 0.6), (4, 0.3)])
def test_continuation_reports_the_crossings_inside_the_range_and_no_others(seed, leak):
    # the origin of a leaky sparse network along the gain: every crossing of the unit
    # circle in [0.3, 3] found to 1e-6, none beyond (seed 1 reported one at 3.162); with
    # leak 0.6 two pairs cross at 2.449 and 2.472, in one step: one was reported
    make = lambda g: itermap.random_rnn(10, gain=g, density=0.5, leak=leak,   # noqa: E731
                                        rng=seed)
    c = continuation(make, np.linspace(0.3, 3.0, 28), np.zeros(10))
    g = _origin_crossings(10, 0.5, leak, seed)
    want = g[(g >= 0.3) & (g <= 3.0)]
    got = [b["parameter"] for b in c.bifurcations]
    assert len(got) == len(want)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(c.points, 0.0, atol=1e-12)


def test_a_complex_pair_that_meets_on_the_real_axis_outside_the_circle_is_no_bifurcation():
    # x -> tanh(M x), M = [[2, 1], [l, 2]]: the origin's multipliers 2 +- sqrt(l), a
    # complex pair of modulus > 1 for l < 0, two reals > 1 for 0 < l < 1: nothing crosses
    # the circle (it was reported as a fold and a Neimark-Sacker point at l = 0)
    make = lambda lam: itermap.IterativeMap(np.array([[2.0, 1.0], [lam, 2.0]]))  # noqa: E731
    c = continuation(make, np.linspace(-0.5, 0.5, 11), np.zeros(2))
    assert c.bifurcations == [] and c.stop_reason == "end of range"
    root = np.sqrt(c.parameters.astype(complex))
    want = np.stack([2 + root, 2 - root], axis=1)
    np.testing.assert_allclose(np.sort_complex(c.eigenvalues), np.sort_complex(want),
                               atol=1e-6)


# -- float32 maps -----------------------------------------------------------------------
def test_a_float32_map_refuses_a_tol_it_cannot_reach_and_defaults_to_one_it_can():
    # tol = 1e-10 is below float32 rounding: every start gave up ("stalled: raise
    # patience"), no point, no error; the default (None: 100 eps) finds the points of the
    # float64 network, as an explicit 1e-5 does
    m32 = itermap.random_rnn(20, gain=2.0, rng=1, dtype=np.float32)
    m64 = itermap.random_rnn(20, gain=2.0, rng=1)
    starts = sample_states(m64, 16, rng=0, noise=0.1)
    with pytest.raises(ValueError, match=r"tol=1e-10 is below the rounding of float32"):
        find_fixed_points(m32, starts.astype(np.float32), tol=1e-10, progress=False)
    fp64 = find_fixed_points(m64, starts, progress=False)
    for tol in (None, 1e-5):
        fp32 = find_fixed_points(m32, starts.astype(np.float32), tol=tol, progress=False)
        assert fp32.points.dtype == np.float32 and len(fp32) >= 1
        bound = 100 * np.finfo(np.float32).eps if tol is None else tol
        for x in np.asarray(fp32.points, dtype=np.float64):
            assert np.linalg.norm(_step_p(m32, x.astype(np.float32), 1) - x) <= bound
            assert np.min(np.linalg.norm(np.asarray(fp64.points) - x, axis=1)) <= 1e-4


# -- sample_states on a torus ---------------------------------------------------------------
def test_sample_states_on_a_torus_are_states_on_it_as_iterate_keeps_them():
    # the standard map's lift drifts: after 1000 steps at k = 3 the samples were 2e4 off
    # the torus (and had lost 4 digits); iterate wraps every step, and so must the samples
    m = itermap.systems.standard_map(3.0)
    x = sample_states(m, 40, steps=1000, rng=0)
    assert np.all((x >= 0.0) & (x < 2.0 * np.pi))
    # with noise 0 each sample is a state of its trajectory: plain steps, wrapped each time
    m = itermap.systems.standard_map(0.5)
    x0 = np.random.default_rng(1).uniform(0.0, 2.0 * np.pi, (8, 2))
    x = sample_states(m, 8, steps=20, rng=2, x0=x0)
    y, states = x0.copy(), [x0.copy()]
    for _ in range(20):
        y = np.mod(np.asarray(m.step(y)), 2.0 * np.pi)
        states.append(y)
    gaps = np.linalg.norm(np.stack(states) - x[None], axis=2).min(axis=0)
    assert np.all(gaps <= 1e-9)


# -- basins: one attractor per orbit --------------------------------------------------------
def test_basins_count_an_orbit_whose_points_share_their_first_coordinate_once():
    # x -> tanh(2 x), y -> tanh(-2 y): the attractors are the 2-cycles (+-s, s) <-> (+-s, -s),
    # s = tanh(2 s); both points of a cycle have the first coordinate, and starts of either
    # phase made two "attractors" of one cycle, each with half the starts
    s = scipy.optimize.brentq(lambda v: np.tanh(2 * v) - v, 0.5, 1.5)
    m = itermap.IterativeMap(np.diag([2.0, -2.0]))
    x0 = np.random.default_rng(0).uniform(0.1, 1.0, (40, 2))
    x0[::2, 1] *= -1          # both phases of the y-cycle
    x0[::3, 0] *= -1          # both x attractors
    b = basins(m, x0, steps=200)
    np.testing.assert_allclose(b.attractors, [[-s, -s], [s, -s]], atol=1e-9)
    assert b.periods.tolist() == [2, 2]
    np.testing.assert_allclose(b.fractions, [np.mean(x0[:, 0] < 0), np.mean(x0[:, 0] > 0)])
    np.testing.assert_array_equal(b.labels, (x0[:, 0] > 0).astype(int))


# -- continuation on a cylinder: F(x) = x modulo the periods ----------------------------------
def _zaslavsky(k, b=0.5):
    """The dissipative standard map on the cylinder: p' = b p + k sin(theta),
    theta' = theta + p' (mod 2 pi); its fixed points have p = 2 pi m, sin(theta) =
    (1 - b) 2 pi m / k."""
    def step(x):
        p = b * x[..., 1] + k * np.sin(x[..., 0])
        return np.stack([x[..., 0] + p, p], axis=-1)

    def jacobian(x):
        c = k * np.cos(x[..., 0])
        J = np.empty(x.shape + (2,))
        J[..., 0, 0], J[..., 0, 1], J[..., 1, 0], J[..., 1, 1] = 1 + c, b, c, b
        return J

    return itermap.FunctionMap(step, 2, jacobian=jacobian, periods=(2 * np.pi, None))


def test_continuation_follows_a_point_that_is_fixed_modulo_the_period():
    # (theta, 2 pi) with sin(theta) = pi / k is fixed modulo 2 pi (find_fixed_points finds
    # it); continuation solved F(x) = x on the lift and went to (0, 0) instead. Along k the
    # two branches sin(theta) = pi / k meet in a fold at k = pi (theta = pi / 2), and the
    # upper one doubles its period where k cos(theta) = -3: k = sqrt(9 + pi^2)
    k0 = 5.0
    start = np.array([np.arcsin(np.pi / k0), 2 * np.pi])
    fp = find_fixed_points(_zaslavsky(k0), start[None, :] + 0.01, progress=False)
    np.testing.assert_allclose(fp.points, [start], atol=1e-12)
    c = continuation(_zaslavsky, np.linspace(5.0, 2.0, 31), np.asarray(fp.points[0]))
    assert [b["kind"] for b in c.bifurcations] == ["fold", "period doubling"]
    np.testing.assert_allclose(c.bifurcations[0]["parameter"], np.pi, atol=1e-6)
    np.testing.assert_allclose(c.bifurcations[0]["point"], [np.pi / 2, 2 * np.pi], atol=1e-4)
    np.testing.assert_allclose(c.bifurcations[1]["parameter"], np.sqrt(9 + np.pi ** 2),
                               atol=1e-6)
    np.testing.assert_allclose(c.points[:, 1], 2 * np.pi, atol=1e-9)
    np.testing.assert_allclose(np.sin(c.points[:, 0]), np.pi / c.parameters, atol=1e-9)


def test_float32_starts_of_a_map_that_computes_in_float64():
    # tol = 1e-10 is refused (a search in float32 cannot meet it); at tol = 1e-6 the
    # small maps' plain Newton resolves the points at |x| ~ 3 in the float64 iterates (it
    # took the starts' float32 rounding, kept an empty group, and numpy raised "zero-size
    # array to reduction operation minimum")
    W = 2.0 * np.eye(2)
    m = itermap.FunctionMap(lambda x: 3.0 * np.tanh(x @ W.T), 2,
                            jacobian=lambda x: 3.0 * (1 - np.tanh(x @ W.T) ** 2)[..., :, None] * W)
    starts = np.array([[2.5, -2.5], [3.2, 2.8]], dtype=np.float32)
    with pytest.raises(ValueError, match="or float64 starts and map"):
        find_fixed_points(m, starts, tol=1e-10, progress=False)
    fp = find_fixed_points(m, starts, tol=1e-6, progress=False)
    s = scipy.optimize.brentq(lambda v: 3.0 * np.tanh(2 * v) - v, 1.0, 4.0)
    got = np.asarray(fp.points, dtype=np.float64)
    np.testing.assert_allclose(got[np.argsort(got[:, 1])], [[s, -s], [s, s]], atol=1e-6)


# -- every kind: points, multipliers, stability and least periods against plain steps ------
def _kind(name, seed):
    """A small map of the named kind, its starts and its constant input (or None)."""
    rng = np.random.default_rng(seed)
    u = None
    if name == "dense":
        m = itermap.random_rnn(12, gain=2.0, rng=seed)
    elif name == "sparse leaky":
        m = itermap.random_rnn(20, gain=2.5, density=0.3, leak=0.3, rng=seed)
    elif name == "sigmoid bias":
        m = itermap.IterativeMap(rng.normal(size=(8, 8)) * 3.0 / np.sqrt(8),
                                 bias=rng.normal(size=8), activation="sigmoid")
    elif name == "driven":
        m = itermap.IterativeMap.from_rnn(rng.normal(size=(6, 6)) * 2.0 / np.sqrt(6),
                                          rng.normal(size=(6, 2)), rng.normal(size=6), leak=0.5)
        u = rng.normal(size=2)
    elif name == "gru":
        m = itermap.GRUMap(rng.normal(size=(12, 2)), rng.normal(size=(12, 4)) * 1.5,
                           rng.normal(size=12))
        u = rng.normal(size=2)
    elif name == "lstm":
        m = itermap.LSTMMap(rng.normal(size=(12, 2)), rng.normal(size=(12, 3)) * 2.0,
                            rng.normal(size=12))
        u = rng.normal(size=2)
    elif name == "henon":
        m = itermap.systems.henon(rng.uniform(0.5, 1.4), 0.3)
    else:   # "standard"
        m = itermap.systems.standard_map(rng.uniform(0.2, 3.0))
    if name in ("henon", "standard"):
        starts = rng.uniform(-1.5, 1.5, (16, 2)) * (4.0 if name == "standard" else 1.0)
    else:
        starts = sample_states(m, 16, rng=seed, noise=0.3, inputs=u)
    return m, np.asarray(starts), u


@settings(max_examples=16, deadline=None)
@given(name=st.sampled_from(["dense", "sparse leaky", "sigmoid bias", "driven", "gru", "lstm",
                             "henon", "standard"]),
       seed=st.integers(0, 30), period=st.sampled_from([1, 2]),
       method=st.sampled_from(["newton", "q"]))
def test_points_and_their_linearisation_agree_with_plain_steps_on_every_kind(name, seed, period,
                                                                            method):
    m, starts, u = _kind(name, seed)
    fp = find_fixed_points(m, starts, inputs=u, period=period, method=method, progress=False)
    pts = np.asarray(fp.points)
    assert fp.n_unconverged == int(np.sum(np.asarray(fp.status) >= 2))
    # a converged start reached a point (points may come without one: on an odd map the
    # branches the origin sheds are followed from no start)
    assert len(pts) > 0 or not np.any(np.asarray(fp.status) == 0)
    for i, x in enumerate(pts):
        G = _wrapped(m, _step_p(m, x, period, u) - x)
        assert np.linalg.norm(G) <= 1e-10
        mu = np.linalg.eigvals(_fd_jacobian(m, x, period, u))
        got = np.asarray(fp.eigenvalues[i])
        for lam in got:     # each reported multiplier is one of the difference Jacobian's
            assert np.min(np.abs(mu - lam)) <= 1e-5 * max(1.0, abs(lam))
        assert np.all(np.diff(np.abs(got)) <= 1e-12)
        rho = np.abs(got)
        assert fp.stable[i] == bool(np.all(rho < 1 - 1e-9))
        assert fp.n_unstable[i] == int(np.sum(rho > 1 + 1e-9))
        # least period by plain steps, and the next point of the orbit shares the label
        y, least = x, None
        for k in range(1, period + 1):
            y = _step_p(m, y, 1, u)
            if least is None and np.linalg.norm(_wrapped(m, y - x)) <= 1e-6:
                least = k
            if k == 1:
                near = np.linalg.norm(_wrapped(m, pts - y), axis=1)
                if near.min() <= 1e-6:
                    assert fp.orbit[np.argmin(near)] == fp.orbit[i]
        assert fp.min_period[i] == least
    for i in range(len(pts)):
        for j in range(i):
            assert np.linalg.norm(_wrapped(m, pts[i] - pts[j])) > 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_float32_henon_by_default_gives_its_two_points_once_each(seed):
    # at float32's default tol (100 eps) a point is resolved only to ~1e-6; with
    # unique_tol 1e-6 one point came out twice, 1.05e-6 apart (4 points, not 2)
    a, b = 1.4, 0.3
    xs = np.roots([a, 1.0 - b, -1.0])                 # x = 1 - a x^2 + b x
    exact = np.sort(np.column_stack([xs, b * xs]), axis=0)
    x0 = np.random.default_rng(seed).normal(0.0, 1.0, (200, 2)).astype(np.float32)
    fp = find_fixed_points(itermap.systems.henon(a, b), x0, progress=False)
    got = np.asarray(fp.points, dtype=np.float64)
    assert got.shape == (2, 2)
    np.testing.assert_allclose(np.sort(got, axis=0), exact, atol=1e-5)
