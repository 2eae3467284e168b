"""A user's plain class with instance attributes on the small-map stepper (issue 31).

Where numba is installed such a class runs compiled (a jitclass of its numeric
attributes and its own methods); anything numba refuses, or whose compiled numbers
differ from the plain call at the start, runs the plain loop. Every number is
checked against a plain NumPy QR loop written here, or the exact identity of the
Henon map (the exponents sum to ln|b|); a fallback gives the plain loop's numbers
exactly. The plain path is tested without numba too (CI has none).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import (
    covariant_lyapunov_vectors,
    finite_time_exponents,
    lyapunov_spectrum,
)
from tests.conftest import HAVE_NUMBA, MODES
from tests.test_small_maps import UserHenon

TWO_PI = 2.0 * math.pi


# -- maps as a user writes them: attributes set in __init__, methods on one state --------
class Henon:
    dim = 2

    def __init__(self, a=1.4, b=0.3):
        self.a, self.b = a, b

    def step(self, x):
        return np.array([1 - self.a * x[0] ** 2 + x[1], self.b * x[0]])

    def jacobian(self, x):
        return np.array([[-2 * self.a * x[0], 1.0], [self.b, 0.0]])


class Standard:
    """Chirikov's standard map on the torus; ``k`` and the periods on the class."""

    dim = 2
    periods = (TWO_PI, TWO_PI)

    def __init__(self, k=1.5):
        self.k = k

    def step(self, x):
        p = x[1] + self.k * np.sin(x[0])
        return np.array([x[0] + p, p])

    def jacobian(self, x):
        c = self.k * np.cos(x[0])
        return np.array([[1.0 + c, 1.0], [c, 1.0]])


class Lorenz96:
    """Lorenz-96 (one Euler step of ``dt``), an array attribute and loops on one state."""

    def __init__(self, n=10, forcing=8.0, dt=0.01):
        self.dim, self.forcing, self.dt = n, forcing, dt
        self._scale = np.ones(n)

    def _rhs(self, x):
        n = self.dim
        f = np.empty(n)
        for i in range(n):
            f[i] = (x[(i + 1) % n] - x[i - 2]) * x[i - 1] - x[i] + self.forcing
        return f

    def step(self, x):
        return x + self.dt * self._scale * self._rhs(x)

    def jacobian(self, x):
        n = self.dim
        J = np.zeros((n, n))
        for i in range(n):
            J[i, i] += 1.0 - self.dt
            J[i, (i + 1) % n] += self.dt * x[i - 1]
            J[i, (i - 2) % n] -= self.dt * x[i - 1]
            J[i, (i - 1) % n] += self.dt * (x[(i + 1) % n] - x[i - 2])
        return J


@dataclass
class HenonData:
    """A dataclass: a property and a helper method read the fields."""

    a: float = 1.4
    b: float = 0.3
    dim: int = 2

    @property
    def minus_two_a(self):
        return -2.0 * self.a

    def _quad(self, x):
        return 1.0 - self.a * x[0] * x[0]

    def step(self, x):
        return np.array([self._quad(x) + x[1], self.b * x[0]])

    def jacobian(self, x):
        return np.array([[self.minus_two_a * x[0], 1.0], [self.b, 0.0]])


class HenonSlots:
    """__slots__, a tuple attribute, a class constant and a static helper; a str attribute
    and a list that the methods never read are left out."""

    __slots__ = ("ab", "label", "history")
    dim = 2
    one = 1.0

    def __init__(self, a=1.4, b=0.3):
        self.ab, self.label, self.history = (a, b), "henon", []

    @staticmethod
    def _row(a, u, v):
        return np.array([-2.0 * a * u, v])

    def step(self, x):
        return np.array([self.one - self.ab[0] * x[0] ** 2 + x[1], self.ab[1] * x[0]])

    def jacobian(self, x):
        J = np.zeros((2, 2))
        J[0] = self._row(self.ab[0], x[0], 1.0)
        J[1, 0] = self.ab[1]
        return J


def _qr_loop(m, x, Q, n):
    """The plain NumPy QR loop a user writes, on the class's own methods: (x, Q, log R sums)."""
    x, Q = np.array(x, dtype=float), np.array(Q, dtype=float)
    periods = getattr(m, "periods", None)
    acc = np.zeros(Q.shape[1])
    for _ in range(n):
        J = m.jacobian(x)
        x = m.step(x)
        if periods is not None:
            x = np.mod(x, periods)
        Q, R = np.linalg.qr(J @ Q)
        acc += np.log(np.abs(np.diag(R)))
    return x, Q, acc


def _stepper(m, B=1):
    dim = itermap.as_map(m).dim
    x = np.full((B, dim), 0.1) + 0.01 * np.arange(B * dim).reshape(B, dim)
    return itermap.as_map(m).tangent_stepper(x, np.tile(np.eye(dim), (B, 1, 1)))


def _segments_match(m, x0, mode, monkeypatch, segments=4, n=30):
    """Segment after segment (short: chaos does not amplify rounding past the tolerance)."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    prev = lyapunov_spectrum(m, x0, 20, transient=40, rng=1)
    for _ in range(segments):
        res = lyapunov_spectrum(m, None, n, continue_from=prev)
        x, _, acc = _qr_loop(m, prev.state[0], prev.tangents[0], n)
        np.testing.assert_allclose(res.log_stretch[0] - prev.log_stretch[0], acc,
                                   rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(res.state[0], x, rtol=1e-8, atol=1e-9)
        prev = res
    return prev


# NumPy methods written for a batch as most write them (issue 31): ``x[..., i]``, ``np.stack``
# of a list and ``np.zeros(x.shape + (2,))``; numba takes ``np.stack`` of a tuple only, and
# compiles the list form through the stepper's own overload
HenonStack = UserHenon


class StandardStack:
    """The standard map the same way, ``np.stack`` along axis 0 then transposed."""

    dim = 2
    periods = (TWO_PI, TWO_PI)
    k = 0.9

    def step(self, x):
        p = x[..., 1] + self.k * np.sin(x[..., 0])
        return np.stack([x[..., 0] + p, p], axis=0).T

    def jacobian(self, x):
        c = self.k * np.cos(x[..., 0])
        return np.stack([np.stack([1.0 + c, 1.0 + 0.0 * c], -1),
                         np.stack([c, 1.0 + 0.0 * c], -1)], -2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make", [Henon, Standard, Lorenz96, HenonData, HenonSlots, HenonStack,
                                  StandardStack])
def test_spectrum_matches_a_plain_qr_loop(make, mode, monkeypatch):
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    m = make()
    assert _stepper(m).compiled == (mode == "1")  # the stepper is the one meant
    dim = itermap.as_map(m).dim
    _segments_match(m, np.full(dim, 0.1) + 0.01 * np.arange(dim), mode, monkeypatch)


@pytest.mark.parametrize("mode", MODES)
def test_henon_sum_and_finite_time_windows(mode, monkeypatch):
    """The exponents sum to ln b (det J = -b); each window of finite-time exponents is the
    plain loop's, from the frame a transient leaves (the Henon gap is about 2 a step)."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    m = Henon(1.2, -0.25)
    res = lyapunov_spectrum(m, np.array([0.1, 0.1]), 4000, transient=200, rng=3)
    assert abs(res.exponents.sum() - math.log(0.25)) < 1e-13
    window, windows, transient = 10, 4, 40
    fte = finite_time_exponents(m, np.array([0.1, 0.2]), window, window * windows,
                                transient=transient, rng=2)
    x, Q, _ = _qr_loop(m, [0.1, 0.2], np.eye(2), transient)
    for w in range(windows):
        x, Q, acc = _qr_loop(m, x, Q, window)
        np.testing.assert_allclose(fte.exponents[w], acc / window, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make", [Henon, Lorenz96])
def test_covariant_vectors_are_covariant(make, mode, monkeypatch):
    """J(x_t) V_t is parallel to V_{t+1} at the states the class's own step gives."""
    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    m = make()
    dim = itermap.as_map(m).dim
    x0 = np.full(dim, 0.1) + 0.01 * np.arange(dim)
    transient, steps = 100, 150
    clv = covariant_lyapunov_vectors(m, x0, steps, transient=transient, rng=0)
    x = x0
    states = [x]
    for _ in range(transient + steps):
        x = m.step(x)
        states.append(x)
    V = clv.vectors
    for t in range(0, steps - 1, 7):
        W = m.jacobian(states[transient + clv.times[t]]) @ V[t]
        cos = np.abs(np.sum(W * V[t + 1], axis=0)) / np.linalg.norm(W, axis=0)
        np.testing.assert_allclose(cos, 1.0, atol=1e-9)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.floats(0.2, 1.4), b=st.floats(0.05, 0.35), sign=st.sampled_from([1.0, -1.0]))
def test_any_parameters_match_the_plain_loop(a, b, sign, monkeypatch):
    """The compiled class (where numba is installed: one compile for all these floats) and
    the plain one give the plain QR loop's numbers, and sum to ln|b|, at any (a, b)."""
    m = Henon(a, sign * b)
    x0 = np.array([0.05, 0.02])
    for mode in ("0", "1") if HAVE_NUMBA else ("0",):
        monkeypatch.setenv("ITERMAP_NUMBA", mode)
        try:
            first = lyapunov_spectrum(m, x0, 10, rng=0)
            res = lyapunov_spectrum(m, None, 40, continue_from=first)
        except itermap.DivergenceError:  # an orbit that escapes: the plain loop's escapes too
            with np.errstate(all="ignore"):
                x, _, _ = _qr_loop(m, x0, np.eye(2), 50)
            assert not np.all(np.abs(x) < 1e100)
            continue
        x, _, acc = _qr_loop(m, first.state[0], first.tangents[0], 40)
        np.testing.assert_allclose(res.log_stretch[0] - first.log_stretch[0], acc,
                                   rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(res.state[0], x, rtol=1e-8, atol=1e-9)
        assert abs(res.exponents.sum() - math.log(b)) < 1e-12


@pytest.mark.parametrize("mode", MODES)
def test_a_changed_attribute_is_read_at_the_next_call(mode, monkeypatch):
    """Attributes are read when a run starts (the stepper is built each call): a change
    between calls is seen, without a new compile while its type stays the same."""
    from itermap._running import _stepper_kernels as kernels

    monkeypatch.setenv("ITERMAP_NUMBA", mode)
    m = Henon()
    lyapunov_spectrum(m, np.array([0.1, 0.1]), 50, rng=0)
    compiled = len(kernels._COMPILED)
    m.a, m.b = 1.2, -0.2
    res = lyapunov_spectrum(m, np.array([0.1, 0.1]), 500, transient=50, rng=0)
    assert len(kernels._COMPILED) == compiled
    assert abs(res.exponents.sum() - math.log(0.2)) < 1e-13
    _segments_match(m, np.array([0.1, 0.1]), mode, monkeypatch, segments=2)
    m.a = 1  # an int now: another jitclass field type, compiled afresh where numba runs
    _segments_match(m, np.array([0.1, 0.1]), mode, monkeypatch, segments=2)


# -- what numba refuses, or computes otherwise, runs the plain loop with its numbers -----
def _coefficient():
    return float(Fraction(7, 5))  # Python objects: not numba's subset


class WithHelper(Henon):
    def step(self, x):
        return np.array([1 - _coefficient() * x[0] ** 2 + x[1], self.b * x[0]])


class WithDict(Henon):
    def __init__(self):
        super().__init__()
        self.params = {"a": 1.4}

    def step(self, x):
        return np.array([1 - self.params["a"] * x[0] ** 2 + x[1], self.b * x[0]])


class Counting(Henon):
    """A side effect on the object: it must happen in every step."""

    calls = 0

    def step(self, x):
        self.calls += 1
        return super().step(x)


class Overflowing(Henon):
    """An int attribute: Python's exact integers here, numba's int64 wraps to 0."""

    def __init__(self):
        super().__init__()
        self.n = 2 ** 62

    def step(self, x):
        one = self.n * 4 / 1.8446744073709552e19  # 2**64 / 2**64 in Python; 0 in int64
        return np.array([1 - self.a * x[0] ** 2 + x[1], self.b * x[0] * one])


class BatchOnly(Henon):
    """Methods that take a batch only: the compiled kernel's one state is refused."""

    def step(self, x):
        return np.stack([1 - self.a * x[:, 0] ** 2 + x[:, 1], self.b * x[:, 0]], -1)

    def jacobian(self, x):
        J = np.zeros(x.shape + (2,))
        J[:, 0, 0] = -2 * self.a * x[:, 0]
        J[:, 0, 1] = 1.0
        J[:, 1, 0] = self.b
        return J


class HenonConcatenate(Henon):
    """A NumPy method numba refuses as written: ``np.concatenate`` of a list (numba takes a
    tuple; the stepper adds the list form for ``np.stack`` only)."""

    def step(self, x):
        return np.concatenate([1 - self.a * x[..., :1] ** 2 + x[..., 1:], self.b * x[..., :1]],
                              axis=-1)


@pytest.mark.parametrize("make", [WithHelper, WithDict, Counting, Overflowing, BatchOnly,
                                  HenonConcatenate])
def test_what_numba_refuses_runs_the_plain_loop(make, monkeypatch, caplog):
    pytest.importorskip("numba")
    out = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("ITERMAP_NUMBA", mode)
        m = make()
        with caplog.at_level(logging.INFO, logger="itermap"):
            s = _stepper(m)
            out[mode] = lyapunov_spectrum(m, np.array([0.1, 0.1]), 300, transient=20, rng=0)
        assert s is None or not s.compiled
        if make is Counting:
            assert m.calls >= 320
    np.testing.assert_array_equal(out["1"].log_stretch, out["0"].log_stretch)
    np.testing.assert_array_equal(out["1"].state, out["0"].state)
    assert abs(out["1"].exponents.sum() - math.log(0.3)) < 1e-13
    if make in (WithHelper, WithDict, HenonConcatenate):  # refused: the fallback is logged
        assert "numba refused" in caplog.text
    if make is HenonConcatenate:  # the fallback's numbers: the plain NumPy QR loop's
        _segments_match(make(), np.array([0.1, 0.1]), "1", monkeypatch)
    if make is Overflowing:  # compiled, but its numbers differ at the start: logged, not used
        assert "differs from its plain call" in caplog.text
    from itermap._running import _stepper_kernels as kernels

    tried = dict(kernels._COMPILED)
    s = _stepper(make())  # the compile is tried once a class
    assert s is None or not s.compiled
    assert kernels._COMPILED == tried


def test_a_batch_runs_its_one_state_methods_row_by_row(monkeypatch):
    """Methods on one state: a batch's compiled kernel calls them a row at a time, compiled
    even for a short run (the plain batch loop cannot call them; B = 2 gives a Henon
    step of the right shape and wrong numbers)."""
    pytest.importorskip("numba")
    monkeypatch.setenv("ITERMAP_NUMBA", "auto")
    for m, B in ((Henon(), 2), (Henon(), 3), (Lorenz96(), 4)):
        s = _stepper(m, B)
        assert s.compiled
        X = s.x.copy()
        first = lyapunov_spectrum(m, X, 1, rng=5)
        batch = lyapunov_spectrum(m, None, 40, continue_from=first)
        for b in range(B):
            x, _, acc = _qr_loop(m, first.state[b], first.tangents[b], 40)
            np.testing.assert_allclose(batch.log_stretch[b] - first.log_stretch[b], acc,
                                       rtol=1e-8, atol=1e-8)
            np.testing.assert_allclose(batch.state[b], x, rtol=1e-8, atol=1e-8)


def test_without_numba_a_plain_class_runs_the_plain_loop(monkeypatch):
    """numba is an optional extra: without it the class's own methods give the numbers."""
    import itermap._running._stepper as stepper

    monkeypatch.setattr(stepper, "numba_available", lambda: False)
    m = Henon(1.3, 0.25)
    s = _stepper(m)
    assert s is not None and not s.compiled
    _segments_match(m, np.array([0.1, 0.1]), "1", monkeypatch)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=2), n=st.integers(1, 4),
       axis=st.integers(-3, 2))
def test_stack_of_a_list_compiles_to_numpys(shape, n, axis):
    """The overload the stepper registers: ``np.stack`` of a list of arrays (or scalars) in
    numba gives NumPy's array, for every axis NumPy takes; a bad axis is refused."""
    import numba

    from itermap._running._stepper_kernels import _stack_lists

    _stack_lists(numba)
    ok = -len(shape) - 1 <= axis <= len(shape)
    rng = np.random.default_rng(len(shape) * 100 + n * 10 + axis)
    parts = [rng.standard_normal(shape) for _ in range(n)]
    src = f"def f(parts):\n    return np.stack(list(parts), {axis})\n"
    ns: dict = {"np": np}
    exec(src, ns)  # noqa: S102 -- the axis must be a literal for the overload
    f = numba.njit(ns["f"])
    if not shape:  # scalars: axis 0 or -1 only
        parts = [float(p) for p in parts]
        ok = axis in (0, -1)
    if not ok:
        with pytest.raises(Exception):  # noqa: B017, PT011 -- numba's typing error
            f(tuple(parts))
        return
    np.testing.assert_array_equal(f(tuple(parts)), np.stack(parts, axis))


def test_stack_of_a_list_keeps_numbas_tuple_form():
    """numba's own ``np.stack`` of a tuple is unchanged once the list form is registered."""
    numba = pytest.importorskip("numba")
    from itermap._running._stepper_kernels import _stack_lists

    _stack_lists(numba)
    f = numba.njit(lambda a, b: np.stack((a, b), 1))
    a, b = np.arange(3.0), np.arange(3.0, 6.0)
    np.testing.assert_array_equal(f(a, b), np.stack((a, b), 1))


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize(("make", "x1", "batch"), [(lambda: Henon(0.2, 0.3), (0.5, 0.1), False),
                                                   (lambda: HenonStack(0.2, 0.3), (0.5, 0.1),
                                                    True),
                                                   (StandardStack, (3.0, 0.1), True)])
def test_the_compiled_loop_records_the_plain_loops_history(make, x1, batch, monkeypatch):
    """The compiled loop records a run's checkpoints in one call: the history (running
    exponents at each checkpoint) and its steps are the plain loop's, from one start and
    from a batch of three (methods that take a batch). Regular orbits (Henon at a = 0.2 has a stable
    fixed point; the standard map's island around (pi, 0)): rounding is not amplified."""
    base = np.array(x1)
    starts = [base] + ([base + np.array([[0.0, 0.0], [0.02, -0.01], [-0.01, 0.02]])]
                       if batch else [])
    for x0 in starts:
        out = {}
        for mode in ("0", "1"):
            monkeypatch.setenv("ITERMAP_NUMBA", mode)
            out[mode] = lyapunov_spectrum(make(), x0, 1030, transient=10, rng=0)
        assert _stepper(make()).compiled   # ITERMAP_NUMBA=1 is set: the compiled loop ran
        assert len(out["1"].history_steps) > 50
        np.testing.assert_array_equal(out["1"].history_steps, out["0"].history_steps)
        np.testing.assert_allclose(out["1"].history, out["0"].history, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(out["1"].exponents, out["0"].exponents, rtol=1e-7,
                                   atol=1e-9)
