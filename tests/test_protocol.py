"""The open protocol: any object with dim, step and jacobian or tangent is a map.

A user's plain classes (Lozi, Ikeda, a cubic map) run through every analysis and
are checked against closed forms and exact identities.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import root

import itermap
import itermap.analysis as analysis
from itermap import ConformanceError, FunctionMap, as_map, check_map


class Lozi:
    """(x, y) -> (1 - a|x| + y, b x): det J = -b, so the exponents sum to ln b."""

    dim = 2

    def __init__(self, a=1.7, b=0.5):
        self.a, self.b = a, b

    def step(self, x):
        return np.stack([1 - self.a * np.abs(x[..., 0]) + x[..., 1], self.b * x[..., 0]], -1)

    def jacobian(self, x):
        J = np.zeros(x.shape + (2,))
        J[..., 0, 0] = -self.a * np.sign(x[..., 0])
        J[..., 0, 1] = 1.0
        J[..., 1, 0] = self.b
        return J


class Ikeda:
    """The Ikeda map; det J = u^2 everywhere. Only tangent is given (no jacobian)."""

    dim = 2

    def __init__(self, u=0.9):
        self.u = u

    def _t(self, x):
        return 0.4 - 6.0 / (1.0 + x[..., 0] ** 2 + x[..., 1] ** 2)

    def step(self, x, u=None):
        t = self._t(x)
        c, s = np.cos(t), np.sin(t)
        x0, x1 = x[..., 0], x[..., 1]
        return np.stack([1 + self.u * (x0 * c - x1 * s), self.u * (x0 * s + x1 * c)], -1)

    def tangent(self, x, v, u=None):
        t = self._t(x)
        c, s = np.cos(t), np.sin(t)
        x0, x1 = x[..., 0], x[..., 1]
        r2 = 1.0 + x0 ** 2 + x1 ** 2
        dt0, dt1 = 12 * x0 / r2 ** 2, 12 * x1 / r2 ** 2
        a = x0 * (-s) - x1 * c     # d(x0 c - x1 s)/dt
        b = x0 * c - x1 * s        # d(x0 s + x1 c)/dt
        J = np.empty(x.shape + (2,))
        J[..., 0, 0] = self.u * (c + a * dt0)
        J[..., 0, 1] = self.u * (-s + a * dt1)
        J[..., 1, 0] = self.u * (s + b * dt0)
        J[..., 1, 1] = self.u * (c + b * dt1)
        return J @ v


class Cubic:
    """x -> r x - x^3: fixed points 0 and +-sqrt(r - 1), multipliers r and 3 - 2r."""

    dim = 1

    def __init__(self, r=1.8):
        self.r = r

    def step(self, x):
        return self.r * x - x ** 3

    def jacobian(self, x):
        return (self.r - 3 * x ** 2)[..., None]


class DrivenTanh:
    """A driven map whose input is not part of the state: x -> tanh(W x + V u)."""

    def __init__(self, n=3, m=2, seed=0):
        g = np.random.default_rng(seed)
        self.W = 0.5 * g.standard_normal((n, n))
        self.V = g.standard_normal((n, m))
        self.dim, self.input_size = n, m

    def step(self, x, u):
        return np.tanh(x @ self.W.T + u @ self.V.T)

    def jacobian(self, x, u):
        d = 1 - np.tanh(x @ self.W.T + u @ self.V.T) ** 2
        return d[..., :, None] * self.W


@pytest.mark.parametrize("cls", [Lozi, Ikeda, Cubic, DrivenTanh])
def test_a_plain_class_passes_check_map(cls):
    report = check_map(cls(), rng=0)
    assert report.passed
    assert set(report.errors) == {"step", "jacobian", "tangent", "vjp", "step_with_tangent"}


def test_as_map_passes_a_map_through_unchanged():
    m = itermap.systems.henon()
    assert as_map(m) is m


@pytest.mark.parametrize(("obj", "message"), [
    (None, "map is None"),
    (object(), "object has no step"),
    (type("NoJac", (), {"dim": 1, "step": lambda self, x: x})(), "needs jacobian or tangent"),
    (type("NoDim", (), {"step": lambda self, x: x, "jacobian": lambda self, x: x})(),
     "has no dim"),
    (type("BadDim", (), {"dim": 1.5, "step": lambda self, x: x,
                         "jacobian": lambda self, x: x})(), "dim"),
])
def test_as_map_names_what_is_missing(obj, message):
    with pytest.raises(TypeError, match=message):
        as_map(obj)


def test_autonomous_user_map_accepts_u_none():
    m = as_map(Cubic())
    np.testing.assert_allclose(m.step(np.array([0.5]), None), [0.775])
    with pytest.raises(ValueError, match="autonomous"):
        m.step(np.array([0.5]), np.array([1.0]))


def test_function_map_derives_tangent_vjp_and_jacobian():
    A = np.array([[0.5, 1.0], [0.0, -0.3]])
    m = FunctionMap(lambda x: x @ A.T, 2, tangent=lambda x, v: A @ v)
    x = np.ones((4, 2))
    np.testing.assert_array_equal(m.jacobian(x), np.broadcast_to(A, (4, 2, 2)))
    w = np.array([[1.0, 2.0]] * 4)
    np.testing.assert_allclose(m.vjp(x, w), w @ A)
    assert check_map(m).passed


def test_function_map_rejects_bad_arguments():
    with pytest.raises(TypeError, match="step must be callable"):
        FunctionMap(3, 2, jacobian=lambda x: x)
    with pytest.raises(TypeError, match="jacobian or tangent"):
        FunctionMap(lambda x: x, 2)
    with pytest.raises(ValueError, match="dim"):
        FunctionMap(lambda x: x, 0, jacobian=lambda x: x)
    with pytest.raises(ValueError, match="input_size"):
        FunctionMap(lambda x, u: x, 2, jacobian=lambda x, u: x, input_size=-1)
    with pytest.raises(TypeError, match="takes no input"):
        FunctionMap(lambda x: x, 2, jacobian=lambda x: x, input_size=1)


# -- check_map fails on broken maps, naming the member --------------------------
class _WrongJacobian(Cubic):
    def jacobian(self, x):
        return (self.r - 2 * x ** 2)[..., None]


class _UnbatchedStep(Lozi):
    def step(self, x):
        return super().step(x[0] if x.ndim == 2 else x) * np.ones_like(x)


class _DtypeChanger(Cubic):
    def step(self, x):
        return np.asarray(super().step(x), dtype=np.float32)


class _WrongTangent(Lozi):
    def tangent(self, x, v):
        return 2 * (self.jacobian(x) @ v)


class _WrongVjp(Lozi):
    def vjp(self, x, w):
        return w


@pytest.mark.parametrize(("cls", "member"), [
    (_WrongJacobian, "jacobian"), (_UnbatchedStep, "step"), (_DtypeChanger, "step"),
    (_WrongTangent, "tangent"), (_WrongVjp, "vjp"),
])
def test_check_map_names_the_member_that_fails(cls, member):
    with pytest.raises(ConformanceError, match=f"^{member}:"):
        check_map(cls(), rng=0)


# -- every analysis works on a user's plain class --------------------------------
def test_lozi_lyapunov_sum_is_ln_b():
    res = analysis.lyapunov_spectrum(Lozi(), np.array([0.1, 0.1]), 20000, transient=100, rng=0)
    assert abs(float(res.exponents.sum()) - np.log(0.5)) < 1e-10
    assert 0.44 < float(res.exponents[0]) < 0.50  # published: about 0.47


def test_ikeda_from_tangent_only_sum_is_two_ln_u():
    res = analysis.lyapunov_spectrum(Ikeda(), np.array([0.1, 0.1]), 5000, transient=100, rng=0)
    assert abs(float(res.exponents.sum()) - 2 * np.log(0.9)) < 1e-10


def test_cubic_fixed_points_are_the_closed_form_and_agree_with_scipy_root():
    r = 1.8
    fp = analysis.find_fixed_points(Cubic(r), np.linspace(-2, 2, 41)[:, None])
    order = np.argsort(np.asarray(fp.points)[:, 0])
    got = np.asarray(fp.points)[order, 0]
    np.testing.assert_allclose(got, [-np.sqrt(r - 1), 0.0, np.sqrt(r - 1)], atol=1e-12)
    for p in got:
        sol = root(lambda x: r * x - x ** 3 - x, [p + 0.05], method="hybr")
        assert abs(sol.x[0] - p) < 1e-9
    mult = {round(p, 6): complex(e[0]).real for p, e in zip(got, np.asarray(fp.eigenvalues)[order])}
    assert abs(mult[0.0] - r) < 1e-12
    assert abs(mult[round(np.sqrt(r - 1), 6)] - (3 - 2 * r)) < 1e-10


def test_user_maps_run_through_iterate_and_sample_states():
    traj = itermap.iterate(Lozi(), np.array([0.1, 0.1]), 5)
    x = np.array([0.1, 0.1])
    for _ in range(5):
        x = Lozi().step(x)
    np.testing.assert_array_equal(traj.final, x)
    states = analysis.sample_states(Lozi(), 8, steps=20, rng=0, x0=np.array([0.1, 0.1]))
    assert states.shape == (8, 2)


def test_user_driven_map_runs_through_iterate_impulse_and_memory():
    m = DrivenTanh()
    u = np.random.default_rng(1).normal(size=(6, 2))
    traj = itermap.iterate(m, np.zeros(3), 6, inputs=u)
    x = np.zeros(3)
    for k in range(6):
        x = np.tanh(m.W @ x + m.V @ u[k])
    np.testing.assert_allclose(traj.final, x, atol=1e-15)
    ir = analysis.impulse_response(m, np.zeros(3), 5, inputs=np.zeros(2))
    assert ir.norms.shape[0] == 6
    mc = analysis.memory_capacity(m, max_delay=3, steps=600, rng=0)
    assert 0.0 <= mc.capacity <= 3.0 + 1e-9
    spec = analysis.lyapunov_spectrum(m, np.zeros(3), 500, inputs=np.zeros(2), rng=0)
    # at u = 0 the origin is a fixed point: the exponents are ln|eig W| (tanh'(0) = 1)
    want = np.sort(np.log(np.abs(np.linalg.eigvals(m.W))))[::-1]
    np.testing.assert_allclose(np.sort(spec.exponents)[::-1], want, atol=2e-2)


def test_user_maps_run_through_orbit_diagram_and_lyapunov_scan():
    od = analysis.orbit_diagram(lambda r: Cubic(r), [1.5, 1.8], np.array([0.3]),
                                transient=200, keep=3)
    np.testing.assert_allclose(od.states[:, -1, 0], np.sqrt([0.5, 0.8]), atol=1e-9)
    scan = analysis.lyapunov_scan(lambda a: Lozi(a=a), [1.7], np.array([0.1, 0.1]), 3000, k=2)
    assert abs(float(scan.exponents[0].sum()) - np.log(0.5)) < 1e-8


# -- jacobian="central": a map without its derivative ------------------------------------
def _henon_step(x, a=1.4, b=0.3):
    return np.stack([1 - a * x[..., 0] ** 2 + x[..., 1], b * x[..., 0]], -1)


def _henon_jac(x, a=1.4, b=0.3):
    J = np.zeros(x.shape + (2,))
    J[..., 0, 0], J[..., 0, 1], J[..., 1, 0] = -2 * a * x[..., 0], 1.0, b
    return J


def test_central_differences_match_the_closed_form_jacobian():
    x = np.random.default_rng(0).uniform(-1.5, 1.5, (7, 2))
    fd = FunctionMap(_henon_step, 2, jacobian="central")
    np.testing.assert_allclose(fd.jacobian(x), _henon_jac(x), rtol=0, atol=1e-9)
    np.testing.assert_allclose(fd.jacobian(x[0]), _henon_jac(x[0]), rtol=0, atol=1e-9)
    v = np.random.default_rng(1).normal(size=(7, 2, 3))
    np.testing.assert_allclose(fd.tangent(x, v), _henon_jac(x) @ v, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fd.vjp(x, v[:, :, 0]),
                               np.einsum("bi,bij->bj", v[:, :, 0], _henon_jac(x)), atol=1e-8)
    # a random tanh network of 30 units against its own closed-form Jacobian
    net = itermap.random_rnn(30, gain=2.0, rng=3)
    xs = np.random.default_rng(2).normal(size=(4, 30))
    fd_net = FunctionMap(net.step, 30, jacobian="central")
    np.testing.assert_allclose(fd_net.jacobian(xs), net.jacobian(xs), rtol=0, atol=1e-9)
    # float32 states: float32's cube root of eps sets the error
    j32 = fd.jacobian(x.astype(np.float32))
    assert j32.dtype == np.float32
    np.testing.assert_allclose(j32, _henon_jac(x), rtol=0, atol=1e-3)


def test_central_differences_give_the_exponents_and_points_of_the_exact_jacobian():
    exact = FunctionMap(_henon_step, 2, jacobian=_henon_jac)
    fd = FunctionMap(_henon_step, 2, jacobian="central")
    x0 = np.array([[0.1, 0.1]])
    # the same step, so the same trajectory: only the tangents differ
    le = analysis.lyapunov_spectrum(exact, x0, steps=5000, transient=100).exponents
    lf = analysis.lyapunov_spectrum(fd, x0, steps=5000, transient=100).exponents
    np.testing.assert_allclose(lf, le, rtol=0, atol=1e-8)
    assert abs(float(np.sum(lf)) - np.log(0.3)) < 1e-8          # det J = -b
    fp = analysis.find_fixed_points(fd, np.random.default_rng(0).uniform(-1.5, 1.5, (100, 2)))
    a, b = 1.4, 0.3
    closed = (-(1 - b) + np.array([-1.0, 1.0]) * np.sqrt((1 - b) ** 2 + 4 * a)) / (2 * a)
    np.testing.assert_allclose(np.sort(np.asarray(fp.points)[:, 0]), closed, atol=1e-10)
    # logistic map at r = 4: lambda = ln 2 (a 1-D map, one state per row)
    lg = FunctionMap(lambda x: 4.0 * x * (1.0 - x), 1, jacobian="central")
    lam = analysis.lyapunov_spectrum(lg, np.array([[0.3]]), steps=100_000,
                                     transient=100).exponents
    assert abs(float(lam[0]) - np.log(2.0)) < 5e-3


def test_central_differences_of_a_wrapping_step_and_of_a_driven_map():
    K = 0.7

    def standard(x):         # the Chirikov standard map, wrapped onto [0, 2 pi)^2 by step
        p = np.mod(x[..., 1] + K * np.sin(x[..., 0]), 2 * np.pi)
        return np.stack([np.mod(x[..., 0] + p, 2 * np.pi), p], -1)

    m = FunctionMap(standard, 2, jacobian="central", periods=(2 * np.pi, 2 * np.pi))
    # states whose images straddle the wrap: the differences are taken modulo 2 pi
    x = np.array([[2 * np.pi - 1e-7, 1e-7], [1e-7, 2 * np.pi - 1e-7], [3.0, 2.0]])
    c = K * np.cos(x[:, 0])
    closed = np.stack([np.stack([1 + c, np.ones(3)], -1), np.stack([c, np.ones(3)], -1)], 1)
    np.testing.assert_allclose(m.jacobian(x), closed, rtol=0, atol=1e-8)

    dm = FunctionMap(lambda x, u: np.tanh(0.5 * x + u), 3, jacobian="central", input_size=3)
    xs, us = np.random.default_rng(1).normal(size=(2, 4, 3))
    d = 0.5 * (1 - np.tanh(0.5 * xs + us) ** 2)
    np.testing.assert_allclose(dm.jacobian(xs, us), d[:, :, None] * np.eye(3), atol=1e-9)


def test_central_differences_refuse_what_they_cannot_be():
    with pytest.raises(ValueError, match="jacobian"):
        FunctionMap(_henon_step, 2, jacobian="forward")
    with pytest.raises(ValueError, match="tangent"):
        FunctionMap(_henon_step, 2, jacobian="central", tangent=lambda x, v: v)
    with pytest.raises(TypeError, match="jacobian='central'"):
        as_map(type("NoJac", (), {"dim": 2, "step": staticmethod(_henon_step)})())
