"""Small maps on the map's tangent stepper, and maps on a torus (issue 31).

Every number is checked against something independent: a plain NumPy QR loop
written here, the exact identities of the Henon and standard maps (sum of the
exponents = ln|det J|), the covariance J V_t || V_{t+1}, and periodic orbits
closed by the map's own step modulo 2 pi.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import itermap
from itermap import FunctionMap, iterate
from itermap.analysis import (
    covariant_lyapunov_vectors,
    find_fixed_points,
    finite_time_exponents,
    lyapunov_spectrum,
)
from itermap.systems import henon, linear, logistic, standard_map
from tests.conftest import MODES

TWO_PI = 2.0 * math.pi


# -- user maps, written three ways ------------------------------------------------------
def henon_step(x):  # numba's subset, and batched NumPy too
    y = np.empty_like(x)
    y[..., 0] = 1.0 - 1.4 * x[..., 0] ** 2 + x[..., 1]
    y[..., 1] = 0.3 * x[..., 0]
    return y


def henon_jac(x):
    J = np.zeros(x.shape + (2,))
    J[..., 0, 0] = -2.8 * x[..., 0]
    J[..., 0, 1] = 1.0
    J[..., 1, 0] = 0.3
    return J


class UserHenon:
    """A plain class with NumPy methods (bound methods: the plain loop)."""

    dim = 2

    def __init__(self, a=1.4, b=0.3):
        self.a, self.b = a, b

    def step(self, x):
        return np.stack([1.0 - self.a * x[..., 0] ** 2 + x[..., 1], self.b * x[..., 0]], -1)

    def jacobian(self, x):
        J = np.zeros(x.shape + (2,))
        J[..., 0, 0] = -2.0 * self.a * x[..., 0]
        J[..., 0, 1] = 1.0
        J[..., 1, 0] = self.b
        return J


class UserStandard:
    """A user's standard map on the torus, declaring its periods."""

    dim = 2
    periods = (TWO_PI, TWO_PI)
    k = 1.2

    def step(self, x):
        p = x[..., 1] + self.k * np.sin(x[..., 0])
        return np.stack([x[..., 0] + p, p], -1)

    def jacobian(self, x):
        c = self.k * np.cos(x[..., 0])
        one = np.ones_like(c)
        return np.stack([np.stack([1 + c, one], -1), np.stack([c, one], -1)], -2)


def l96_step(x):
    """Lorenz-96 (F = 8), one explicit Euler step of 0.01: a 10-D map, numba's subset."""
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


def _reference(step, jac, x, Q, n, periods=None):
    """The plain NumPy QR loop a user writes: sum of log|R_ii| over n steps."""
    x, Q = np.array(x, dtype=float), np.array(Q, dtype=float)
    acc = np.zeros(Q.shape[1])
    for _ in range(n):
        J = jac(x)
        x = step(x)
        if periods is not None:
            x = np.mod(x, periods)
        Q, R = np.linalg.qr(J @ Q)
        acc += np.log(np.abs(np.diag(R)))
    return x, acc


CASES = {
    "henon": (henon(), henon_step, henon_jac, None, 2),
    "standard": (standard_map(1.5), lambda x: standard_map(1.5).step(x),
                 lambda x: standard_map(1.5).jacobian(x), TWO_PI, 2),
    "function-map": (FunctionMap(henon_step, 2, jacobian=henon_jac), henon_step, henon_jac,
                     None, 2),
    "plain-class": (UserHenon(), henon_step, henon_jac, None, 2),
    "user-torus": (UserStandard(), UserStandard().step, UserStandard().jacobian, TWO_PI, 2),
    "lorenz96": (FunctionMap(l96_step, 10, jacobian=l96_jac), l96_step, l96_jac, None, 10),
    "logistic": (logistic(3.9), lambda x: logistic(3.9).step(x),
                 lambda x: logistic(3.9).jacobian(x), None, 1),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_spectrum_matches_the_plain_qr_loop(case, mode, monkeypatch):
    """Segment after segment (short enough that chaos does not amplify rounding past 1e-9)."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    m, step, jac, period, dim = CASES[case]
    x0 = np.full(dim, 0.1) + 0.01 * np.arange(dim)
    prev = lyapunov_spectrum(m, x0, 20, transient=50, rng=1)
    for _ in range(5):
        res = lyapunov_spectrum(m, None, 30, continue_from=prev)
        x, acc = _reference(step, jac, prev.state[0], prev.tangents[0], 30,
                            None if period is None else period)
        np.testing.assert_allclose(res.log_stretch[0] - prev.log_stretch[0], acc,
                                   rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(res.state[0], x, rtol=1e-8, atol=1e-9)
        if period is not None:
            assert np.all((res.state >= 0.0) & (res.state < period))
        prev = res


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("b", [0.3, 0.2, -0.25])
def test_henon_exponents_sum_to_ln_b(b, mode, monkeypatch):
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    for m in (henon(1.4 if b > 0 else 1.2, b), UserHenon(1.4 if b > 0 else 1.2, b)):
        res = lyapunov_spectrum(m, np.array([0.1, 0.1]), 4000, transient=200, rng=3)
        assert abs(res.exponents.sum() - math.log(abs(b))) < 1e-13
        fte = finite_time_exponents(m, np.array([0.1, 0.1]), 25, 2000, rng=3)
        np.testing.assert_allclose(fte.exponents.sum(axis=1), math.log(abs(b)), atol=1e-13)


@pytest.mark.parametrize("mode", MODES)
def test_standard_map_sum_zero_and_known_exponent(mode, monkeypatch):
    """det J = 1: the exponents sum to 0; at K = 6 (well chaotic) l1 ~ ln(K/2) (Chirikov 1979)."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    res = lyapunov_spectrum(standard_map(6.0), np.array([0.3, 0.4]), 20000, transient=100,
                            rng=0)
    assert abs(res.exponents.sum()) < 1e-12
    assert abs(res.exponents[0] - math.log(6.0 / 2.0)) < 0.05


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("m, period", [(henon(), None), (standard_map(6.0), TWO_PI),
                                       (FunctionMap(henon_step, 2, jacobian=henon_jac), None)])
def test_finite_time_windows_match_the_plain_loop(m, period, mode, monkeypatch):
    """After a transient the frame is the backward Lyapunov frame whatever its start (the
    exponents' gap is about 2 per step), so each window matches a loop from the identity."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    x0 = np.array([0.1, 0.2])
    window, n_windows, transient = 10, 4, 40
    fte = finite_time_exponents(m, x0, window, window * n_windows, transient=transient, rng=2)
    x, Q = x0, np.eye(2)
    for _ in range(transient):
        J = m.jacobian(x)
        x = m.step(x) if period is None else np.mod(m.step(x), period)
        Q, _ = np.linalg.qr(J @ Q)
    for w in range(n_windows):
        acc = np.zeros(2)
        for _ in range(window):
            J = m.jacobian(x)
            x = m.step(x) if period is None else np.mod(m.step(x), period)
            Q, R = np.linalg.qr(J @ Q)
            acc += np.log(np.abs(np.diag(R)))
        np.testing.assert_allclose(fte.exponents[w], acc / window, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", ["henon", "lorenz96", "user-torus"])
def test_covariant_vectors_are_covariant(case, mode, monkeypatch):
    """J(x_t) V_t is parallel to V_{t+1}, at the states the map's own iteration gives."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    m, step, jac, period, dim = CASES[case]
    x0 = np.full(dim, 0.1) + 0.01 * np.arange(dim)
    transient, steps = 100, 200
    clv = covariant_lyapunov_vectors(m, x0, steps, transient=transient, rng=0)
    states = iterate(m, x0, transient + steps).states
    V = clv.vectors
    for t in range(0, steps - 1, 7):
        x = states[transient + clv.times[t]]
        W = jac(x) @ V[t]
        cos = np.abs(np.sum(W * V[t + 1], axis=0)) / np.linalg.norm(W, axis=0)
        np.testing.assert_allclose(cos, 1.0, atol=1e-9)
    if case == "henon":
        assert abs(clv.exponents.sum() - math.log(0.3)) < 1e-12


def test_compiled_and_plain_loops_agree(monkeypatch):
    pytest.importorskip("numba")
    out = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("ITERMAP_NUMBA", mode)
        out[mode] = lyapunov_spectrum(standard_map(1.2), np.array([[0.1, 0.2]]), 5000,
                                      transient=10, rng=4)
    np.testing.assert_allclose(out["0"].log_stretch, out["1"].log_stretch, rtol=1e-9)
    np.testing.assert_allclose(out["0"].state, out["1"].state, atol=1e-9)


def test_a_batch_runs_compiled_and_matches_each_trajectory(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("ITERMAP_NUMBA", "1")
    X = np.random.default_rng(0).uniform(0.0, TWO_PI, (6, 2))
    m = standard_map(0.9)
    batch = lyapunov_spectrum(m, X, 1000, rng=5)
    first = lyapunov_spectrum(m, X, 1, rng=5)  # the same frames, one step in
    for b in range(6):
        x, acc = _reference(m.step, m.jacobian, first.state[b], first.tangents[b], 999,
                            TWO_PI)
        np.testing.assert_allclose(batch.log_stretch[b] - first.log_stretch[b], acc,
                                   rtol=1e-8, atol=1e-8)


def test_the_stepper_is_the_maps(monkeypatch):
    """The analyses take the stepper the map hands over (a map may supply its own)."""
    calls = []

    class Own(UserHenon):
        def tangent_stepper(self, x, Q, u=None, *, steps=0):
            calls.append(steps)
            return None  # no stepper: the general batched path

    res = lyapunov_spectrum(itermap.as_map(Own()), np.array([0.1, 0.1]), 500, rng=0)
    assert calls == []  # a plain class is wrapped: FunctionMap's stepper runs
    m = itermap.as_map(UserHenon())
    assert m.tangent_stepper(np.zeros((1, 2)), np.eye(2)[None]) is not None

    class OwnMap(itermap.Map):
        dim = 2

        def step(self, x, u=None):
            return henon_step(x)

        def jacobian(self, x, u=None):
            return henon_jac(x)

        def tangent_stepper(self, x, Q, u=None, *, steps=0):
            calls.append(steps)
            return None

    res2 = lyapunov_spectrum(OwnMap(), np.array([0.1, 0.1]), 500, rng=0)
    assert calls == [500]
    np.testing.assert_allclose(res2.exponents, res.exponents, rtol=1e-9)


def test_a_divergence_is_named_from_the_stepper():
    m = linear(np.array([[1e100, 0.0], [0.0, 1.0]]))
    with pytest.raises(itermap.DivergenceError, match="step"):
        lyapunov_spectrum(m, np.array([1.0, 1.0]), 50, rng=0)


# -- maps on a torus ------------------------------------------------------------------
def test_iterate_wraps_onto_the_torus():
    m = standard_map(2.0)
    x0 = np.array([3.0, 6.0])
    traj = iterate(m, x0, 50).states
    assert np.all((traj[1:] >= 0) & (traj[1:] < TWO_PI))
    # the lift by hand, reduced modulo 2 pi at the end
    th, p = x0
    for _ in range(50):
        p = p + 2.0 * math.sin(th)
        th = th + p
    np.testing.assert_allclose(np.mod(np.array([th, p]) - traj[-1] + math.pi, TWO_PI) - math.pi,
                               0.0, atol=1e-9)
    assert iterate(henon(), np.array([0.1, 0.1]), 3).states[-1][0] < 2  # no periods, no wrap


@pytest.mark.parametrize("k", [0.5, 1.0, 1.5, 3.0])
def test_standard_map_period_two_orbit_modulo_two_pi(k):
    """{(0, pi), (pi, pi)} closes only modulo 2 pi: found, checked by the map's own step."""
    g = np.linspace(0.0, TWO_PI, 10, endpoint=False)
    starts = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    fp = find_fixed_points(standard_map(k), starts, period=2)
    pts = fp.points
    for want in ([0.0, math.pi], [math.pi, math.pi], [0.0, 0.0], [math.pi, 0.0]):
        d = np.mod(pts - np.array(want) + math.pi, TWO_PI) - math.pi
        assert np.min(np.linalg.norm(d, axis=1)) < 1e-9, want
    m = standard_map(k)
    y = m.step(m.step(pts))
    r = np.mod(y - pts + math.pi, TWO_PI) - math.pi
    assert np.max(np.abs(r)) < 1e-9
    i = np.argmin(np.linalg.norm(np.mod(pts - [0.0, math.pi] + math.pi, TWO_PI) - math.pi,
                                 axis=1))
    assert fp.min_period[i] == 2
    assert np.all((pts > -1e-6) & (pts < TWO_PI))


@settings(max_examples=12, deadline=None)
@given(k=st.floats(0.3, 4.0), period=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_every_orbit_found_closes_modulo_two_pi(k, period, seed):
    starts = np.random.default_rng(seed).uniform(0.0, TWO_PI, (40, 2))
    m = standard_map(k)
    fp = find_fixed_points(m, starts, period=period)
    y = fp.points
    for _ in range(period):
        y = m.step(y)
    r = np.linalg.norm(np.mod(y - fp.points + math.pi, TWO_PI) - math.pi, axis=1)
    # to 1e-8, or (at a bifurcation, where Newton slows) the residual the result reports
    assert np.all(r <= np.maximum(1e-8, 2.0 * fp.residuals))
    # distinct on the torus: no two points the same modulo 2 pi
    d = np.mod(fp.points[:, None] - fp.points[None] + math.pi, TWO_PI) - math.pi
    dist = np.linalg.norm(d, axis=-1) + np.eye(len(fp.points)) * 10
    assert np.all(dist > 1e-7)


def test_a_user_map_declares_its_periods():
    m = itermap.as_map(UserStandard())
    assert m.periods == (TWO_PI, TWO_PI)
    fp = find_fixed_points(UserStandard(), np.array([[0.1, math.pi + 0.1], [3.0, 3.0]]),
                           period=2)
    d = np.mod(fp.points - np.array([0.0, math.pi]) + math.pi, TWO_PI) - math.pi
    assert np.min(np.linalg.norm(d, axis=1)) < 1e-9
    fm = FunctionMap(henon_step, 2, jacobian=henon_jac, periods=[None, 2.0])
    assert fm.periods == (None, 2.0)
    np.testing.assert_allclose(fm.wrap(np.array([5.0, 5.0])), [5.0, 1.0])
    assert FunctionMap(henon_step, 2, jacobian=henon_jac, periods=[None, None]).periods is None


@pytest.mark.parametrize("bad, err", [([1.0], ValueError), ([0.0, 1.0], ValueError),
                                      ([float("inf"), 1.0], ValueError), ("ab", TypeError),
                                      (3.0, TypeError), (["x", 1.0], TypeError)])
def test_bad_periods_are_named(bad, err):
    with pytest.raises(err, match="periods"):
        FunctionMap(henon_step, 2, jacobian=henon_jac, periods=bad)

    class Bad(UserHenon):
        periods = bad

    with pytest.raises(err, match="periods"):
        itermap.as_map(Bad())


@pytest.mark.parametrize("c", [0.5, 1.5])
@pytest.mark.parametrize("given", [None, [[0.0]]])
def test_basins_on_the_torus_compare_wrapped_states(c, given):
    """x -> x - c sin x on the circle: one attractor at the seam 0 = 2 pi, reached from both
    sides (c = 1.5: across the seam a step). After 20 steps the states sit ~1e-7 either side
    of it: one attractor of period 1, every start on it (in the plane: two, or period 2)."""
    from itermap.analysis import basins

    m = FunctionMap(lambda x: x - c * np.sin(x), 1, periods=[TWO_PI],
                    jacobian=lambda x: (1.0 - c * np.cos(x[..., 0]))[..., None, None])
    b = basins(m, np.array([[0.3], [-0.3], [TWO_PI - 0.2], [TWO_PI + 0.2]]), steps=20,
               attractors=given)
    assert b.labels.tolist() == [0, 0, 0, 0]
    assert b.periods.tolist() == [1]
    assert np.min(np.abs(np.mod(b.attractors[0, 0] + 1.0, TWO_PI) - 1.0)) < 1e-6


def test_without_numba_the_plain_loop_runs(monkeypatch):
    """numba is an optional extra: where it cannot be imported the plain loop gives the numbers."""
    import itermap._running._stepper as stepper

    monkeypatch.setenv("ITERMAP_NUMBA", "1")
    monkeypatch.setattr(stepper, "numba_available", lambda: False)
    m = FunctionMap(henon_step, 2, jacobian=henon_jac)
    s = m.tangent_stepper(np.array([[0.1, 0.1]]), np.eye(2)[None], steps=10**9)
    assert s is not None and not s.compiled
    # a batch of a 2-D map runs in closed form over the batch; a larger map's batch has no
    # plain stepper: the general batched path runs it
    assert not m.tangent_stepper(np.zeros((3, 2)), np.tile(np.eye(2), (3, 1, 1))).compiled
    m10 = FunctionMap(l96_step, 10, jacobian=l96_jac)
    assert m10.tangent_stepper(np.zeros((3, 10)), np.tile(np.eye(10), (3, 1, 1))) is None
    first = lyapunov_spectrum(m, np.array([0.1, 0.1]), 10, rng=0)
    res = lyapunov_spectrum(m, None, 30, continue_from=first)
    _, acc = _reference(henon_step, henon_jac, first.state[0], first.tangents[0], 30)
    np.testing.assert_allclose(res.log_stretch[0] - first.log_stretch[0], acc, rtol=1e-9)


def test_functions_numba_refuses_fall_back_to_the_plain_loop(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("ITERMAP_NUMBA", "1")
    seen = []

    def step(x):  # a Python list and a side effect: not numba's subset
        seen.append(1)
        return np.array([float(v) for v in henon_step(x)])

    m = FunctionMap(step, 2, jacobian=henon_jac)
    s = m.tangent_stepper(np.array([[0.1, 0.1]]), np.eye(2)[None])
    assert s is not None and not s.compiled
    res = lyapunov_spectrum(m, np.array([0.1, 0.1]), 200, transient=20, rng=0)
    assert abs(res.exponents.sum() - math.log(0.3)) < 1e-12
    assert len(seen) >= 220


def test_auto_compiles_only_long_runs(monkeypatch):
    pytest.importorskip("numba")
    import itermap._running._stepper as stepper

    monkeypatch.setenv("ITERMAP_NUMBA", "auto")

    def step(x):  # a fresh function: compiled by no earlier test
        y = np.empty_like(x)
        y[..., 0] = 1.0 - 1.4 * x[..., 0] ** 2 + x[..., 1]
        y[..., 1] = 0.3 * x[..., 0]
        return y

    m = FunctionMap(step, 2, jacobian=henon_jac)
    x, Q = np.array([[0.1, 0.1]]), np.eye(2)[None]
    assert not m.tangent_stepper(x, Q, steps=1000).compiled
    assert m.tangent_stepper(x, Q, steps=stepper.COMPILE_MIN_STEPS).compiled
    assert m.tangent_stepper(x, Q, steps=10).compiled  # compiled once, used from then on
    monkeypatch.setenv("ITERMAP_NUMBA", "0")
    assert not m.tangent_stepper(x, Q, steps=10**9).compiled


def _map_private_names():
    """The private attributes and methods that itermap's map classes define."""
    import ast
    import inspect

    classes, todo = set(), [itermap.Map]
    while todo:  # every map class of the package, public or not
        cls = todo.pop()
        if cls.__module__.startswith("itermap") and not cls.__module__.startswith(
                "itermap.analysis"):
            classes.add(cls)
        todo += cls.__subclasses__()
    names = set()
    for cls in classes:
        tree = ast.parse(inspect.getsource(inspect.getmodule(cls)))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
                for n in ast.walk(node):
                    if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) \
                            and n.value.id == "self":
                        names.add(n.attr)
                    elif isinstance(n, ast.FunctionDef):
                        names.add(n.name)
    return classes, {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_analyses_test_no_concrete_map_class():
    """Issue 25: the speed comes from the map's stepper and the analyses ask the protocol:
    nothing in itermap.analysis tests a concrete map class or reads a map's private member."""
    import ast
    import pathlib

    classes, private = _map_private_names()
    concrete = {c.__name__ for c in classes} - {"Map"}
    assert {"IterativeMap", "HenonMap", "FunctionMap", "LSTMMap"} <= concrete
    assert {"_W", "_kind", "_uniform", "_leak", "_check_start"} <= private
    root = pathlib.Path(itermap.__file__).resolve().parent.parent / "analysis"
    files = sorted(root.rglob("*.py"))
    assert any(f.name == "_spectrum.py" for f in files) and len(files) > 20
    bad = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                named = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                named |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                bad += [f"{where} isinstance {c}" for c in named & concrete]
            if isinstance(node, ast.Compare) and any(  # type(m) is IterativeMap
                    isinstance(n, ast.Name) and n.id in concrete for n in node.comparators):
                bad.append(f"{where} compares with a map class")
            if isinstance(node, ast.Attribute) and node.attr in private and not (
                    isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                bad.append(f"{where} reads {ast.unparse(node)}")
    assert not bad, bad


def test_the_scan_sees_a_class_test_and_a_private_read(tmp_path):
    """The check above fails on the two things it looks for (it must not pass vacuously)."""
    import ast

    _, private = _map_private_names()
    src = "def f(m):\n    return isinstance(m, itermap.IterativeMap) or m._W\n"
    tree = ast.parse(src)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.func.id == "isinstance"]
    reads = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in private]
    assert calls and reads == ["_W"]


# -- round 9: the uncompiled loops (closed-form 2-D QR, chunked Jacobians, batches) -------
class Tinkerbell(itermap.Map):
    """A 2-D map whose det J changes sign and size: its loop forms det J a step."""

    dim = 2
    a, b, c, d = 0.9, -0.6013, 2.0, 0.5

    def step(self, x, u=None):
        x0, x1 = x[..., 0], x[..., 1]
        return np.stack([x0 * x0 - x1 * x1 + self.a * x0 + self.b * x1,
                         2.0 * x0 * x1 + self.c * x0 + self.d * x1], -1)

    def jacobian(self, x, u=None):
        x0, x1 = x[..., 0], x[..., 1]
        return np.stack([np.stack([2 * x0 + self.a, -2 * x1 + self.b], -1),
                         np.stack([2 * x1 + self.c, 2 * x0 + self.d], -1)], -2)

    def _scalar_kernel(self):
        from itermap._running._stepper import ScalarSource

        return ScalarSource("y0 = x0 * x0 - x1 * x1 + A * x0 + B * x1\n"
                            "y1 = 2.0 * x0 * x1 + C * x0 + D * x1",
                            ("2.0 * x0 + A", "-2.0 * x1 + B", "2.0 * x1 + C", "2.0 * x0 + D"),
                            (("A", self.a), ("B", self.b), ("C", self.c), ("D", self.d)))


def _reference_frames(step, jac, x, Q, n, periods=None):
    """The plain QR loop with diag R > 0: the state, sum log R_ii and the final frame."""
    x, Q = np.array(x, dtype=float), np.array(Q, dtype=float)
    acc = np.zeros(Q.shape[1])
    for _ in range(n):
        J = jac(x)
        x = step(x)
        if periods is not None:
            x = x - periods * np.floor(x / periods)
        Q, R = np.linalg.qr(J @ Q)
        s = np.sign(np.diag(R))
        Q = Q * s
        acc += np.log(np.abs(np.diag(R)))
    return x, acc, Q


class HenonTracked(itermap.systems.HenonMap):
    """Henon with det J left to the loop (formed a step: negative, so the frame flips)."""

    def _scalar_kernel(self):
        from itermap._running._stepper import ScalarSource

        src = super()._scalar_kernel()
        return ScalarSource(src.body, src.jacobian, src.names)


TWO_D = {name: case for name, case in CASES.items() if case[4] == 2}
TWO_D["tinkerbell"] = (Tinkerbell(), Tinkerbell().step, Tinkerbell().jacobian, None, 2)
TWO_D["henon-det-a-step"] = (HenonTracked(), henon_step, henon_jac, None, 2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("case", sorted(TWO_D))
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # same env every input
@given(seed=st.integers(0, 2**31 - 1), batch=st.sampled_from([1, 5]))
@example(seed=57279910, batch=5)
def test_two_d_stepper_matches_the_plain_qr_loop(case, k, mode, seed, batch, monkeypatch):
    """Every 2-D loop (closed form on floats, chunked Jacobians, in place over a batch, compiled)
    against numpy.linalg.qr a step: exponents, states and frames."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    m, step, jac, period, _ = TWO_D[case]
    g = np.random.default_rng(seed)
    if case == "tinkerbell":
        X = np.array([-0.72, -0.64]) + g.uniform(-0.01, 0.01, (batch, 2))
    elif period is None:
        X = g.uniform(-0.1, 0.1, (batch, 2))
    else:
        X = g.uniform(0.0, TWO_PI, (batch, 2))
    Q0 = np.linalg.qr(g.normal(size=(batch, 2, 2)))[0][..., :k]
    # short: chaos amplifies the reference's own rounding (1.4 x^2 vs 1.4 x x), and a step
    # where J v nearly cancels (k = 1) amplifies it again in log|R|: at 25 steps the
    # @example's exponent differed by 4e-8 with states equal to 8e-15
    n = 15
    s = itermap.as_map(m).tangent_stepper(X, Q0, steps=n)
    assert s is not None
    acc = np.zeros((batch, k))
    assert s.advance(n, acc=acc) is not None
    for b in range(batch):
        x, ref, Q = _reference_frames(step, jac, X[b], Q0[b], n, period)
        np.testing.assert_allclose(acc[b], ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(s.x[b], x, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(s.Q[b], Q, atol=1e-9)


def test_the_uncompiled_paths_are_the_ones_meant(monkeypatch):
    """Built-in 2-D maps write their statements into the loop; a user's jacobian that takes a
    batch is called once a chunk; one that does not is called a step, and agrees."""
    monkeypatch.setenv("ITERMAP_NUMBA", "0")
    x, Q = np.array([[0.1, 0.1]]), np.eye(2)[None]
    for m in (henon(), standard_map(1.2), Tinkerbell()):
        assert itermap.as_map(m).tangent_stepper(x, Q)._loop is not None
    assert itermap.as_map(UserHenon()).tangent_stepper(x, Q)._batches
    calls = []

    def one_state_jac(x):  # a scalar read: wrong for a batch of states
        calls.append(1)
        return np.array([[-2.8 * float(x[0]), 1.0], [0.3, 0.0]])

    m = FunctionMap(henon_step, 2, jacobian=one_state_jac)
    s = m.tangent_stepper(x, Q)
    assert not s._batches
    acc = np.zeros((1, 2))
    calls.clear()
    s.advance(300, acc=acc)
    assert len(calls) == 300
    _, ref, _ = _reference_frames(henon_step, henon_jac, x[0], Q[0], 300)
    np.testing.assert_allclose(acc[0], ref, rtol=1e-9)
    # a batch-capable jacobian: one call per chunk of states
    counted = []

    def counting_jac(x):
        counted.append(1)
        return henon_jac(x)

    s = FunctionMap(henon_step, 2, jacobian=counting_jac).tangent_stepper(x, Q)
    counted.clear()
    s.advance(1000, acc=np.zeros((1, 2)))
    assert len(counted) == 4  # 256 + 256 + 256 + 232 states


@pytest.mark.parametrize("mode", MODES)
def test_a_batch_matches_each_trajectory_through_the_analysis(mode, monkeypatch):
    """lyapunov_spectrum on a batch (plain: closed form in place; spaced QRs: numpy's QR)."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    X = np.random.default_rng(1).uniform(-0.1, 0.1, (4, 2))
    for m in (henon(), UserHenon(), Tinkerbell()):
        X0 = X + (np.array([-0.72, -0.64]) if isinstance(m, Tinkerbell) else 0.0)
        first = lyapunov_spectrum(m, X0, 1, rng=5)
        for every in (1, 3):
            batch = lyapunov_spectrum(m, X0, 61, rng=5, reorthonormalize_every=every)
            for b in range(4):
                _, acc, _ = _reference_frames(m.step, m.jacobian, first.state[b],
                                              first.tangents[b], 60)
                np.testing.assert_allclose(batch.log_stretch[b] - first.log_stretch[b], acc,
                                           rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("mode", MODES)
def test_collapse_and_divergence_from_the_uncompiled_loops(mode, monkeypatch):
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    nil = linear([[0.0, 0.0], [1.0, 0.0]])
    res = lyapunov_spectrum(nil, np.ones((3, 2)), 10)
    assert np.all(res.exponents == -np.inf)
    for x0 in (np.array([10.0, 10.0]), np.array([[10.0, 10.0], [0.1, 0.1]])):
        for m in (henon(), UserHenon()):
            with pytest.raises(itermap.DivergenceError):
                lyapunov_spectrum(m, x0, 200, rng=0)


def test_auto_leaves_a_two_d_batch_uncompiled(monkeypatch):
    pytest.importorskip("numba")
    import itermap._running._stepper as stepper

    monkeypatch.setenv("ITERMAP_NUMBA", "auto")
    m = FunctionMap(henon_step, 2, jacobian=henon_jac)
    X = np.zeros((1000, 2))
    Q = np.tile(np.eye(2), (1000, 1, 1))
    assert not m.tangent_stepper(X, Q, steps=stepper.COMPILE_MIN_STEPS).compiled
    monkeypatch.setenv("ITERMAP_NUMBA", "1")
    assert m.tangent_stepper(X[:3], Q[:3], steps=10).compiled


def test_a_jacobian_that_refills_one_array_is_copied_each_step(monkeypatch):
    monkeypatch.setenv("ITERMAP_NUMBA", "0")
    buf = np.zeros((10, 10))

    def refilling_jac(x):  # one array, refilled each call (and no batches)
        if x.ndim != 1:
            raise ValueError("one state at a time")
        buf[:] = l96_jac(x)
        return buf

    m = FunctionMap(l96_step, 10, jacobian=refilling_jac)
    x0 = 8.0 + np.sin(np.arange(10.0))
    s = m.tangent_stepper(x0[None], np.eye(10)[None, :, :3])
    assert not s._batches
    acc = np.zeros((1, 3))
    s.advance(30, acc=acc)
    _, ref, _ = _reference_frames(l96_step, l96_jac, x0, np.eye(10)[:, :3], 30)
    np.testing.assert_allclose(acc[0], ref, rtol=1e-9)


# -- round 10: the history recorded by the stepper in one call ----------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("m, every", [(standard_map(0.3), 1), (standard_map(0.3), 4),
                                      (henon(1.0, 0.3), 1), (UserHenon(1.0, 0.3), 1),
                                      (HenonTracked(1.0, 0.3), 1), (UserStandard(), 1)])
def test_history_is_the_running_estimate_of_the_plain_loop(m, every, mode, monkeypatch):
    """230 measured steps: checkpoints every 3 (or 4) steps, the last one short; each one's
    estimate against the plain QR loop's running sums (non-chaotic parameters: no rounding
    blown up over the run)."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    mm = itermap.as_map(m)
    prev = lyapunov_spectrum(mm, np.array([0.3, 0.2]), 5, rng=2)
    res = lyapunov_spectrum(mm, None, 230, reorthonormalize_every=every, continue_from=prev)
    steps = res.history_steps[len(prev.history_steps):]
    chunk = every * math.ceil(230 / every / 100)  # about 100 checkpoints, on QR steps
    np.testing.assert_array_equal(steps, 5 + np.minimum(chunk * np.arange(1, len(steps) + 1),
                                                        230))
    assert steps[-1] == 235 and len(steps) == math.ceil(230 / chunk)
    x, Q = prev.state[0], prev.tangents[0]
    sums, acc = {}, prev.log_stretch[0].copy()
    for t in range(1, 231):
        J = mm.jacobian(x)
        x = mm.wrap(mm.step(x))
        Q, R = np.linalg.qr(J @ Q)
        acc = acc + np.log(np.abs(np.diag(R)))
        sums[5 + t] = acc
    ref = np.array([np.sort(sums[s] / s)[::-1] for s in steps])
    np.testing.assert_allclose(res.history[len(prev.history_steps):], ref, rtol=1e-8,
                               atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case", sorted(TWO_D))
def test_two_d_stepper_stores_each_r_and_frame_as_the_plain_qr_loop(case, batch, k, mode,
                                                                    monkeypatch):
    """The covariant vectors' forward pass: every step's R (diag > 0) and every 5th frame."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    m, step, jac, period, _ = TWO_D[case]
    g = np.random.default_rng(7)
    X = (np.array([-0.72, -0.64]) + g.uniform(-0.01, 0.01, (batch, 2)) if case == "tinkerbell"
         else g.uniform(0.0, TWO_PI, (batch, 2)) if period else g.uniform(-0.1, 0.1, (batch, 2)))
    Q0 = np.linalg.qr(g.normal(size=(batch, 2, 2)))[0][..., :k]
    n = 20
    s = itermap.as_map(m).tangent_stepper(X, Q0, steps=n)
    R, Qs = np.full((n, batch, k, k), np.nan), np.full((n // 5, batch, 2, k), np.nan)
    assert s.advance(n, acc=np.zeros((batch, k)), r_out=R, q_out=Qs, q_every=5) is not None
    for b in range(batch):
        x, Q = X[b], Q0[b]
        for t in range(n):
            J = jac(x)
            x = step(x)
            if period is not None:
                x = x - period * np.floor(x / period)
            Q, Rt = np.linalg.qr(J @ Q)
            sg = np.sign(np.diag(Rt))
            Q, Rt = Q * sg, Rt * sg[:, None]
            np.testing.assert_allclose(R[t, b], Rt, rtol=1e-9, atol=1e-9)
            if (t + 1) % 5 == 0:
                np.testing.assert_allclose(Qs[(t + 1) // 5 - 1, b], Q, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(x=st.lists(st.floats(-1e6, 1e6) | st.sampled_from([-1e-17, -1e-300, -5e-324, -0.0, TWO_PI]),
                  min_size=2, max_size=2))
@example(x=[0.0, -5e-324])
def test_wrap_lands_in_zero_to_the_period(x):
    """Map.wrap: in [0, 2 pi) (a tiny negative rounds to 2 pi itself: that is 0), and the
    same point of the torus (x - wrap(x) a whole number of periods)."""
    x = np.array(x)
    w = standard_map().wrap(x)
    assert np.all((w >= 0.0) & (w < TWO_PI))
    turns = (x - w) / TWO_PI
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-9)
