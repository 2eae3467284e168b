"""Small maps against pynamicalsys (numba) and lyapynov (Python loop), issue 31.

Each row times ours and the peer side by side in one process, interleaved,
medians of 3 (the least of 15 for the 2,000-step single-trajectory rows), compile
time excluded (numba's, ours and pynamicalsys's: each is warmed up first) and
reported apart:

- the standard map (K = 0.5, 1.5, 4) and Henon, one trajectory, against pynamicalsys's
  (its units: theta/2pi), the plain loop at 2,000 steps (a user's short run) and, full size,
  20,000 and 200,000;
- a 2-D map written by a user as a plain class (Henon), against pynamicalsys's
  Henon: with NumPy methods (``np.stack`` of a list: the plain loop, and compiled through
  the stepper's overload of it) and with static methods in numba's subset (compiled);
- a user's plain class as most write it, attributes set in ``__init__`` and methods on one
  state (Henon, the standard map; compiled as a jitclass of its attributes), from 3 starts
  each, against pynamicalsys, and Lorenz-96 written the same way against lyapynov, with the
  load average;
- a 10-D Lorenz-96 discretised (Euler, dt = 0.01) as a user's FunctionMap:
  spectrum and covariant vectors against lyapynov's LCE and CLV;
- 1,000 starts of a 2-D map batched against looping pynamicalsys over them;
- finite-time exponents and covariant vectors of 2-D maps (plain loop) against a plain
  NumPy QR loop on the map's own methods and lyapynov's CLV;
- the periodic-orbit search (:func:`orbit_table`): the standard map at K = 0.9, 1.5, 4
  (periods 1-3) and Henon (periods 1-2), pynamicalsys's Newton (with ``periods`` on the
  torus) from each start against ours from the same starts: every orbit it finds is among
  ours, and the CPU time (medians).

``ITERMAP_NUMBA`` is set per row ("1": the compiled stepper; "0": the plain
loop, as without numba: for 2-D maps the QR in closed form, the built-in maps'
statements written into a float loop, a user's Jacobian called once per chunk
of states, a batch in place over the batch). Rows are skipped where a peer is
not installed (neither is a dependency of itermap).
"""

# the timed lambdas run within their loop iteration: binding late is what is meant
# ruff: noqa: B023

from __future__ import annotations

import math
import os
import time

import numpy as np

from benchmarks._timing import interleaved, report

TWO_PI = 2.0 * math.pi


class _numba_mode:
    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        self.old = os.environ.get("ITERMAP_NUMBA")
        os.environ["ITERMAP_NUMBA"] = self.mode

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("ITERMAP_NUMBA", None)
        else:
            os.environ["ITERMAP_NUMBA"] = self.old


# -- user maps ------------------------------------------------------------------------
class HenonNumPy:
    """A user's plain class, NumPy methods (batched)."""

    dim = 2

    def step(self, x):
        return np.stack([1.0 - 1.4 * x[..., 0] ** 2 + x[..., 1], 0.3 * x[..., 0]], -1)

    def jacobian(self, x):
        J = np.zeros(x.shape + (2,))
        J[..., 0, 0] = -2.8 * x[..., 0]
        J[..., 0, 1] = 1.0
        J[..., 1, 0] = 0.3
        return J


class HenonStatic:
    """The same, as static methods in numba's subset (still batched NumPy)."""

    dim = 2

    @staticmethod
    def step(x):
        y = np.empty_like(x)
        y[..., 0] = 1.0 - 1.4 * x[..., 0] ** 2 + x[..., 1]
        y[..., 1] = 0.3 * x[..., 0]
        return y

    @staticmethod
    def jacobian(x):
        J = np.zeros(x.shape + (2,))
        J[..., 0, 0] = -2.8 * x[..., 0]
        J[..., 0, 1] = 1.0
        J[..., 1, 0] = 0.3
        return J


class HenonUser:
    """A user's plain class as written most often: attributes set in __init__, methods on one
    state (the issue's example; compiled as a jitclass of its attributes where numba runs)."""

    dim = 2

    def __init__(self, a=1.4, b=0.3):
        self.a, self.b = a, b

    def step(self, x):
        return np.array([1 - self.a * x[0] ** 2 + x[1], self.b * x[0]])

    def jacobian(self, x):
        return np.array([[-2 * self.a * x[0], 1.0], [self.b, 0.0]])


class StandardUser:
    """The standard map written the same way, on the torus."""

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


class Lorenz96User:
    """Lorenz-96 (one Euler step of dt) written the same way: loops on one state."""

    def __init__(self, n=10, forcing=8.0, dt=0.01):
        self.dim, self.forcing, self.dt = n, forcing, dt

    def step(self, x):
        n = self.dim
        y = np.empty(n)
        for i in range(n):
            y[i] = x[i] + self.dt * ((x[(i + 1) % n] - x[i - 2]) * x[i - 1] - x[i]
                                     + self.forcing)
        return y

    def jacobian(self, x):
        n = self.dim
        J = np.zeros((n, n))
        for i in range(n):
            J[i, i] = 1.0 - self.dt
            J[i, (i + 1) % n] += self.dt * x[i - 1]
            J[i, (i - 2) % n] -= self.dt * x[i - 1]
            J[i, (i - 1) % n] += self.dt * (x[(i + 1) % n] - x[i - 2])
        return J


_DT, _F = 0.01, 8.0


def l96_loop(x):
    """Lorenz-96, one Euler step: numba's subset (compiled by the stepper)."""
    n = x.shape[-1]
    y = np.empty_like(x)
    for i in range(n):
        y[..., i] = x[..., i] + _DT * ((x[..., (i + 1) % n] - x[..., i - 2]) * x[..., i - 1]
                                       - x[..., i] + _F)
    return y


def l96_loop_jac(x):
    n = x.shape[-1]
    J = np.zeros(x.shape + (n,))
    for i in range(n):
        J[..., i, i] = 1.0 - _DT
        J[..., i, (i + 1) % n] += _DT * x[..., i - 1]
        J[..., i, (i - 2) % n] += -_DT * x[..., i - 1]
        J[..., i, (i - 1) % n] += _DT * (x[..., (i + 1) % n] - x[..., i - 2])
    return J


def l96_roll(x):
    """Lorenz-96 with np.roll (what a NumPy user writes; the plain loop)."""
    return x + _DT * ((np.roll(x, -1, -1) - np.roll(x, 2, -1)) * np.roll(x, 1, -1) - x + _F)


_N96 = 10
_IDX = np.arange(_N96)


def l96_roll_jac(x):
    J = np.zeros(x.shape + (_N96,))
    J[..., _IDX, _IDX] = 1.0 - _DT
    J[..., _IDX, (_IDX + 1) % _N96] += _DT * np.roll(x, 1, -1)
    J[..., _IDX, (_IDX - 2) % _N96] += -_DT * np.roll(x, 1, -1)
    J[..., _IDX, (_IDX - 1) % _N96] += _DT * (np.roll(x, -1, -1) - np.roll(x, 2, -1))
    return J


def _first_call(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- rows -----------------------------------------------------------------------------
def _fastest(fns, repeat):
    """The least wall time (s) of each callable over interleaved runs: on a loaded machine a
    run of a few ms is preempted more often than not, and the least time is the uncontended
    one (for such short rows only; the longer ones report medians)."""
    best = {key: math.inf for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - t0)
    return best


def _own_cost(mm, x0, n):
    """The map's own step and jacobian on one state, us a call (what no loop of ours avoids)."""
    fs, fj, fp = mm._point_functions()
    out = []
    for f in (fs, fj):
        t0 = time.perf_counter()
        for _ in range(n):
            f(x0) if fp is None else f(x0, fp)
        out.append((time.perf_counter() - t0) / n * 1e6)
    return (f"; the map's own step and jacobian on one state (NumPy) {out[0]:.2f} and "
            f"{out[1]:.2f} us a call")


def _single(quick, pyn):
    """One trajectory: the standard map (several K), Henon and a user's plain-class Henon,
    vs pynamicalsys; the plain loop at 2,000 steps (a user's short run) and longer."""
    import itermap
    from itermap.analysis import lyapunov_spectrum
    from itermap.systems import henon, standard_map

    rows = []
    st = np.array([0.3, 0.4])
    cases = [(f"standard map K={k}", standard_map(k), st, "standard map", [k], st / TWO_PI)
             for k in (0.5, 1.5, 4.0)]
    cases += [("Henon (built in)", henon(), np.array([0.1, 0.1]), "henon map", [1.4, 0.3],
               np.array([0.1, 0.1])),
              ("user plain class (NumPy methods) Henon", HenonNumPy(), np.array([0.1, 0.1]),
               "henon map", [1.4, 0.3], np.array([0.1, 0.1])),
              ("user plain class (static, numba subset) Henon", HenonStatic(),
               np.array([0.1, 0.1]), "henon map", [1.4, 0.3], np.array([0.1, 0.1]))]
    plain_sizes = (2000,) if quick else (2000, 20_000, 200_000)
    for label, m, x0, model, params, u in cases:
        ds = pyn(model=model)
        c_pyn = _first_call(lambda: ds.lyapunov(u, 100, parameters=params))
        for mode in ("1", "0"):
            if mode == "0" and "static" in label:
                continue  # static ones compile
            sizes = plain_sizes if mode == "0" else (20_000 if quick else 200_000,)
            if "NumPy" in label:  # np.stack of a list: compiled through itermap's overload
                sizes = (2000,) if quick else (2000, 20_000)
            for n in sizes:
                with _numba_mode(mode):
                    mm = itermap.as_map(m)
                    c_ours = _first_call(lambda: lyapunov_spectrum(mm, x0, 100, rng=0))
                    runs = {"ours": lambda: lyapunov_spectrum(mm, x0, n, rng=0),
                            "pyn": lambda: ds.lyapunov(u, n, parameters=params)}
                    t = _fastest(runs, 15) if n <= 2000 else interleaved(runs, 3)
                    res = lyapunov_spectrum(mm, x0, n, rng=0)
                per = t["ours"] / n
                how = "compiled" if mode == "1" else "plain loop"
                own = _own_cost(mm, x0, n) if "NumPy" in label else ""
                rows.append(report(
                    f"{label}, 1 trajectory, {n} steps, {how}, vs pynamicalsys", t["ours"],
                    t["pyn"], "<= 5 us/step and ratio <= 2",
                    per <= 5e-6 and t["ours"] <= 2 * t["pyn"],
                    f"{'least of 15' if n <= 2000 else 'median of 3'}: "
                    f"ours {per * 1e6:.2f} us/step, pynamicalsys {t['pyn'] / n * 1e6:.2f} "
                    f"us/step; first call (compile) ours {c_ours:.2f} s, pynamicalsys "
                    f"{c_pyn:.2f} s; exponents {np.round(res.exponents, 4).tolist()}{own}"))
    return rows


def _analyses_2d(quick):
    """Finite-time exponents and covariant vectors of 2-D maps, plain loop: vs a plain NumPy
    QR loop on the map's own methods, and vs lyapynov's CLV."""
    import lyapynov

    import itermap
    from itermap.analysis import covariant_lyapunov_vectors, finite_time_exponents
    from itermap.systems import henon, standard_map

    n = 2000 if quick else 20_000
    rows = []

    def plain_ftle(m, x, window):
        Q, acc, out = np.eye(2), np.zeros(2), []
        for t in range(1, n + 1):
            J = m.jacobian(x)
            x = m.wrap(m.step(x))
            Q, R = np.linalg.qr(J @ Q)
            acc += np.log(np.abs(np.diag(R)))
            if t % window == 0:
                out.append(acc / window)
                acc = np.zeros(2)
        return out

    for label, m, x0 in (("standard map K=1.5", standard_map(1.5), np.array([0.3, 0.4])),
                         ("standard map K=4.0", standard_map(4.0), np.array([0.3, 0.4])),
                         ("Henon", henon(), np.array([0.1, 0.1]))):
        x0 = itermap.iterate(m, x0, 100).final
        with _numba_mode("0"):
            t = interleaved({"ours": lambda: finite_time_exponents(m, x0, 20, n, transient=0,
                                                                   rng=0),
                             "plain": lambda: plain_ftle(m, x0, 20)}, 3)
            rows.append(report(
                f"{label} finite-time exponents (window 20, {n} steps), plain loop, vs a plain "
                "NumPy QR loop", t["ours"], t["plain"], "ratio <= 1", t["ours"] <= t["plain"],
                f"ours {t['ours'] / n * 1e6:.2f} us/step, plain loop "
                f"{t['plain'] / n * 1e6:.2f} us/step"))

            def system():
                return lyapynov.DiscreteDS(x0.copy(), 0, lambda x, t: m.wrap(m.step(x)),
                                           lambda x, t: m.jacobian(x))

            nb = n // 4
            t = interleaved({"ours": lambda: covariant_lyapunov_vectors(
                m, x0, nb, transient=nb, backward_transient=nb, rng=0),
                "ly": lambda: lyapynov.CLV(system(), 2, 0, nb, nb, nb, False)}, 3)
            rows.append(report(
                f"{label} covariant vectors ({nb} steps x 3), plain loop, vs lyapynov",
                t["ours"], t["ly"], "ratio <= 1", t["ours"] <= t["ly"],
                f"ours {t['ours'] / (3 * nb) * 1e6:.2f} us/step, lyapynov "
                f"{t['ly'] / (3 * nb) * 1e6:.2f} us/step"))
    return rows


def _batched(quick, pyn):
    """1,000 starts of a 2-D map batched vs looping pynamicalsys over them."""
    import itermap
    from itermap.analysis import lyapunov_spectrum
    from itermap.systems import standard_map

    starts, steps = 1000, (300 if quick else 2000)
    sub = 50 if quick else 100
    rows = []
    k = 1.5
    U = np.random.default_rng(0).uniform(0.0, 1.0, (starts, 2))
    cases = [(f"standard map K={kk}", standard_map(kk), U * TWO_PI, "standard map", [kk], U)
             for kk in (k, 4.0)]
    cases += [("user Henon (static, numba subset)", HenonStatic(),
              (U - 0.5) * 0.2, "henon map", [1.4, 0.3], (U - 0.5) * 0.2),
             ("user Henon (NumPy methods)", HenonNumPy(),
              (U - 0.5) * 0.2, "henon map", [1.4, 0.3], (U - 0.5) * 0.2)]
    for label, m, X, model, params, Up in cases:
        ds = pyn(model=model)
        ds.lyapunov(Up[0], 100, parameters=params)
        for mode in ("1", "0"):
            with _numba_mode(mode):
                mm = itermap.as_map(m)
                lyapunov_spectrum(mm, X[:2], 100, rng=0)  # compile (mode 1)

                def loop():
                    for row in Up[:sub]:
                        ds.lyapunov(row, steps, parameters=params)

                t = interleaved({"ours": lambda: lyapunov_spectrum(mm, X, steps, rng=0),
                                 "pyn": loop}, 3)
            t_pyn = t["pyn"] * starts / sub
            how = "compiled stepper" if mode == "1" else "batched NumPy path"
            rows.append(report(
                f"{starts} starts {label}, {how}, vs looping pynamicalsys", t["ours"], t_pyn,
                "speedup >= 4", t_pyn >= 4 * t["ours"],
                f"ours {t['ours'] / starts / steps * 1e6:.3f} us per trajectory-step, "
                f"pynamicalsys {t_pyn / starts / steps * 1e6:.3f} (loop over {sub} starts, "
                f"scaled); {steps} steps"))
    return rows


def _lorenz96(quick):
    """A 10-D user map: spectrum and covariant vectors vs lyapynov."""
    import lyapynov

    import itermap
    from itermap.analysis import covariant_lyapunov_vectors, lyapunov_spectrum

    steps = 2000 if quick else 20_000
    x0 = _F + 0.01 * np.sin(np.arange(_N96))
    x0 = itermap.iterate(itermap.FunctionMap(l96_roll, _N96, jacobian=l96_roll_jac), x0,
                         2000).final

    def ly_system():
        return lyapynov.DiscreteDS(x0.copy(), 0, lambda x, t: l96_roll(x),
                                   lambda x, t: l96_roll_jac(x))

    rows = []
    for label, step, jac, mode in (("numba-subset functions, compiled", l96_loop, l96_loop_jac,
                                    "1"),
                                   ("np.roll functions, plain loop", l96_roll, l96_roll_jac,
                                    "0")):
        m = itermap.FunctionMap(step, _N96, jacobian=jac)
        with _numba_mode(mode):
            c = _first_call(lambda: lyapunov_spectrum(m, x0, 50, rng=0))
            t = interleaved({"ours": lambda: lyapunov_spectrum(m, x0, steps, rng=0),
                             "ly": lambda: lyapynov.LCE(ly_system(), _N96, 0, steps, False)}, 3)
            ours = lyapunov_spectrum(m, x0, steps, rng=0).exponents
            theirs = lyapynov.LCE(ly_system(), _N96, 0, steps, False)
        rows.append(report(
            f"Lorenz-96 10-D user map, spectrum, {label}, vs lyapynov", t["ours"], t["ly"],
            "ratio <= 1", t["ours"] <= t["ly"],
            f"ours {t['ours'] / steps * 1e6:.1f} us/step, lyapynov "
            f"{t['ly'] / steps * 1e6:.1f} us/step; first call {c:.2f} s; top exponents "
            f"{np.round(ours[:3] / _DT, 3).tolist()} vs {np.round(theirs[:3] / _DT, 3).tolist()}"
            " per unit time"))
        n_b = steps // 4
        with _numba_mode(mode):
            t = interleaved({
                "ours": lambda: covariant_lyapunov_vectors(m, x0, n_b, transient=n_b,
                                                           backward_transient=n_b, rng=0),
                "ly": lambda: lyapynov.CLV(ly_system(), _N96, 0, n_b, n_b, n_b, False)}, 3)
        rows.append(report(
            f"Lorenz-96 10-D user map, covariant vectors, {label}, vs lyapynov", t["ours"],
            t["ly"], "ratio <= 1", t["ours"] <= t["ly"],
            f"{n_b} steps each of forward transient, stored and backward transient; ours "
            f"{t['ours'] / (3 * n_b) * 1e6:.1f} us/step, lyapynov "
            f"{t['ly'] / (3 * n_b) * 1e6:.1f} us/step"))
    return rows


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg())


def _ratios(per) -> str:
    return ", ".join(f"{a / n * 1e6:.2f} vs {b / n * 1e6:.2f} us/step ({a / b:.2f})"
                     for a, b, n in per)


def _user_classes(quick, pyn):
    """A user's plain class with instance attributes (Henon, the standard map), compiled, one
    trajectory of 20,000 steps from each of 3 starts vs pynamicalsys; compile time apart."""
    import itermap
    from itermap.analysis import lyapunov_spectrum

    n, rows = 20_000, []
    starts = {"Henon": [(0.1, 0.1), (0.2, -0.1), (-0.3, 0.05)],
              "standard map K=1.5": [(0.3, 0.4), (1.0, 2.0), (4.0, 0.5)]}
    for label, m, model, params, units in (
            ("Henon", HenonUser(), "henon map", [1.4, 0.3], 1.0),
            ("standard map K=1.5", StandardUser(1.5), "standard map", [1.5], 1 / TWO_PI)):
        X = [np.array(x) for x in starts[label]]
        ds = pyn(model=model)
        c_pyn = _first_call(lambda: ds.lyapunov(X[0] * units, 100, parameters=params))
        with _numba_mode("1"):
            c_ours = _first_call(lambda: lyapunov_spectrum(m, X[0], 100, rng=0))
            assert itermap.as_map(m).tangent_stepper(X[0][None], np.eye(2)[None]).compiled
            per = []
            for x0 in X:
                t = interleaved({"ours": lambda: lyapunov_spectrum(m, x0, n, rng=0),
                                 "pyn": lambda: ds.lyapunov(x0 * units, n, parameters=params)},
                                5)
                per.append((t["ours"], t["pyn"], n))
            res = lyapunov_spectrum(m, X[0], n, rng=0)
        ok = all(a <= 5e-6 * n and a <= 2 * b for a, b, _ in per)
        rows.append(report(
            f"user plain class (instance attributes) {label}, 1 trajectory, {n} steps, "
            f"compiled, vs pynamicalsys", float(np.median([a for a, _, _ in per])),
            float(np.median([b for _, b, _ in per])), "<= 5 us/step and ratio <= 2", ok,
            f"medians of 5 at each of 3 starts, ours vs pynamicalsys (ratio): {_ratios(per)}; "
            f"first call (compile) ours {c_ours:.2f} s, pynamicalsys {c_pyn:.2f} s; exponents "
            f"{np.round(res.exponents, 4).tolist()}; {_load()}"))
    return rows


def _lorenz96_user(quick):
    """Lorenz-96 written as a class with instance attributes, compiled, from 3 starts: spectrum
    and covariant vectors vs lyapynov."""
    import lyapynov

    import itermap
    from itermap.analysis import covariant_lyapunov_vectors, lyapunov_spectrum

    steps = 2000 if quick else 20_000
    n_b = steps // 4
    m = Lorenz96User(_N96, _F, _DT)
    base = itermap.FunctionMap(l96_roll, _N96, jacobian=l96_roll_jac)
    X = [itermap.iterate(base, _F + 0.01 * np.random.default_rng(seed).standard_normal(_N96),
                         2000).final for seed in range(3)]
    rows, per_s, per_c = [], [], []
    with _numba_mode("1"):
        c = _first_call(lambda: lyapunov_spectrum(m, X[0], 50, rng=0))
        assert itermap.as_map(m).tangent_stepper(X[0][None], np.eye(_N96)[None]).compiled
        for x0 in X:
            def system():
                return lyapynov.DiscreteDS(x0.copy(), 0, lambda x, t: l96_roll(x),
                                           lambda x, t: l96_roll_jac(x))

            t = interleaved({"ours": lambda: lyapunov_spectrum(m, x0, steps, rng=0),
                             "ly": lambda: lyapynov.LCE(system(), _N96, 0, steps, False)}, 3)
            per_s.append((t["ours"], t["ly"], steps))
            t = interleaved({
                "ours": lambda: covariant_lyapunov_vectors(m, x0, n_b, transient=n_b,
                                                           backward_transient=n_b, rng=0),
                "ly": lambda: lyapynov.CLV(system(), _N96, 0, n_b, n_b, n_b, False)}, 3)
            per_c.append((t["ours"], t["ly"], 3 * n_b))
        ours = lyapunov_spectrum(m, X[0], steps, rng=0).exponents
    for what, per in (("spectrum", per_s), ("covariant vectors", per_c)):
        rows.append(report(
            f"Lorenz-96 10-D user class (instance attributes), {what}, compiled, vs lyapynov",
            float(np.median([a for a, _, _ in per])), float(np.median([b for _, b, _ in per])),
            "ratio <= 1", all(a <= b for a, b, _ in per),
            f"medians of 3 at each of 3 starts, ours vs lyapynov (ratio): {_ratios(per)}; first "
            f"call (compile) {c:.2f} s; top exponents {np.round(ours[:3] / _DT, 3).tolist()} per "
            f"unit time; {_load()}"))
    return rows


def _pyn_orbits(ds, period, U, periods):
    """pynamicalsys's Newton from each start (``periods`` per coordinate or None): the points
    it reaches, in its units."""
    found = []
    for u in U:
        try:
            found.append(ds.find_periodic_orbit(u, period, periods=periods))
        except (RuntimeError, ValueError):
            pass
    return np.array(found).reshape(-1, 2)


def _missing(P, fp, period):
    """pynamicalsys's points ``P`` farther than 1e-6 from all of ours (on the torus where
    ``period``), and of those, how many lie within 1e-3 of a point of ours that Newton does
    not resolve (both multipliers within 1e-3 of 1 in modulus: a degenerate point, where
    either search's limits scatter within the tolerance)."""
    d = P[:, None, :] - fp.points[None]
    if period:
        d = np.mod(d + period / 2, period) - period / 2
    dist = np.linalg.norm(d, axis=-1)
    far = dist.min(axis=1) > 1e-6
    flat = np.all(np.abs(np.abs(fp.eigenvalues) - 1.0) < 1e-3, axis=1)
    at_flat = far & np.any((dist < 1e-3) & flat[None], axis=1)
    return int(far.sum()), int(at_flat.sum())


def orbit_table(side: int = 8, repeat: int = 7, cases=None) -> list[dict]:
    """The periodic-orbit search against pynamicalsys's Newton from the same ``side`` x
    ``side`` grid of starts: the standard map at K = 0.9, 1.5, 4 (periods 1-3, on the torus)
    and Henon (a = 1.4, b = 0.3; periods 1-2, starts on [-1, 1]^2). Medians of ``repeat``
    interleaved runs of each (CPU time); every point pynamicalsys finds must be among ours."""
    from pynamicalsys import DiscreteDynamicalSystem as pyn

    from itermap.analysis import find_fixed_points
    from itermap.systems import henon, standard_map

    g = (np.arange(side) + 0.5) / side
    U = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)   # pynamicalsys's units
    cases = cases or ([(k, p) for k in (0.9, 1.5, 4.0) for p in (1, 2, 3)]
                      + [("henon", 1), ("henon", 2)])
    rows = []
    for k, period in cases:
        if k == "henon":
            ds, m, X, Up, per, torus = (pyn(model="henon map"), henon(), 2 * U - 1.0,
                                        2 * U - 1.0, None, 0.0)
            ds.set_parameters([1.4, 0.3])
            label = "Henon"
        else:
            ds, m, X, Up, per, torus = (pyn(model="standard map"), standard_map(k), U * TWO_PI,
                                        U, [1.0, 1.0], TWO_PI)
            ds.set_parameters([k])
            label = f"standard map K={k}"

        def ours():
            return find_fixed_points(m, X, period=period)

        def theirs():
            return _pyn_orbits(ds, period, Up, per)

        ours(), theirs()   # compile (pynamicalsys), first calls
        times: dict = {"ours": [], "pyn": []}
        for _ in range(repeat):
            for key, fn in (("ours", ours), ("pyn", theirs)):
                t0 = time.process_time()
                fn()
                times[key].append(time.process_time() - t0)
        a, b = float(np.median(times["ours"])), float(np.median(times["pyn"]))
        P = theirs()
        if per is not None:
            P = np.mod(P, 1.0) * TWO_PI
        fp = ours()
        missing, flat = _missing(P, fp, torus)
        rows.append(report(
            f"{label} period-{period} orbits, {len(U)} starts, default, vs pynamicalsys Newton",
            a, b, "all of its points found, ratio <= 1", missing == flat and a <= b,
            f"CPU time, medians of {repeat} interleaved; pynamicalsys: {len(P)} converged "
            f"starts; ours {len(fp.points)} distinct points; its points missing from ours: "
            f"{missing} (of which {flat} at a degenerate point of ours, multipliers 1, 1); "
            f"{_load()}"))
    return rows


def _orbits(quick, pyn):
    """Periodic orbits from the same starts: pynamicalsys Newton vs ours (:func:`orbit_table`;
    64 starts, and 256 at full size)."""
    rows = orbit_table(8)
    if not quick:
        rows += orbit_table(16, repeat=3)
    return rows


def run(quick: bool = False) -> list[dict]:
    rows: list[dict] = []
    try:
        from pynamicalsys import DiscreteDynamicalSystem as pyn
    except ImportError:
        print("pynamicalsys rows skipped: pynamicalsys is not installed", flush=True)
        pyn = None
    if pyn is not None:
        rows += _single(quick, pyn)
        rows += _user_classes(quick, pyn)
        rows += _batched(quick, pyn)
        rows += _orbits(quick, pyn)
    try:
        import lyapynov  # noqa: F401
    except ImportError:
        print("lyapynov rows skipped: lyapynov is not installed", flush=True)
    else:
        rows += _lorenz96(quick)
        rows += _lorenz96_user(quick)
        rows += _analyses_2d(quick)
    return rows


if __name__ == "__main__":
    import sys

    # --orbits: the orbit-search table alone (python -m benchmarks.bench_small_maps --orbits)
    rows = orbit_table(8) if "--orbits" in sys.argv else run(quick="--quick" in sys.argv)
    for row in rows:
        print(f"  {row['name']}: {row['note']}")
