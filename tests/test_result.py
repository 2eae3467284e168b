"""The result base (itermap.Result): status and message, to_pandas, to_xarray, _repr_html_;
and files written by main's code before the codec moved (tests/fixtures/main_format/)."""

from __future__ import annotations

import builtins
import dataclasses
import html.parser
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

import itermap
import itermap.analysis as analysis
from itermap import Result, Status
from tests.test_io_fields import _results

FIX = Path(__file__).parent / "fixtures" / "main_format"
HENON = itermap.systems.henon()


@pytest.fixture(scope="module")
def results():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _results()
        table = analysis.sweep(lambda a: {"y": a * 2.0}, {"a": [1, 2]}, executor="serial",
                               progress=False)
        out["SweepResult"] = table
        out["SpectraTable"] = analysis.spectra_table(
            [HENON, itermap.systems.linear(np.diag([0.5, 0.25]))], x0=np.array([0.1, 0.1]),
            steps=50, executor="serial", seed=0, progress=False)
    return out


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


# -- to_pandas: the columns are the fields ----------------------------------------------------
def test_every_result_is_a_result_and_every_table_is_its_fields(results):
    tables = 0
    for name, r in results.items():
        assert isinstance(r, Result), name
        if not r._table or name == "SweepResult":
            continue
        tables += 1
        df = r.to_pandas()
        for field in r._table:
            value = getattr(r, field)
            if value is None:
                assert not any(c == field or c.startswith(field + "[") for c in df.columns)
                continue
            a = np.asarray(value) if not isinstance(value, list) else value
            if isinstance(a, list) or a.ndim == 1:
                assert _same(df[field].to_numpy(), np.asarray(a)), (name, field)
            else:  # one column per column of the field, in order
                cols = [f"{field}[{j}]" for j in range(a.shape[1])]
                assert _same(df[cols].to_numpy(), a), (name, field)
                assert all(df[c].dtype == a.dtype for c in cols), (name, field)
        assert len(df) == len(np.asarray(getattr(r, r._table[-1]))), name
    assert tables >= 12


def test_fixed_points_table_holds_the_closed_form_points(results):
    fp = analysis.find_fixed_points(itermap.IterativeMap(np.array([[2.0]])),
                                    np.linspace(-1, 1, 9)[:, None])
    df = fp.to_pandas().sort_values("points[0]")
    root = brentq(lambda x: np.tanh(2 * x) - x, 0.5, 1.5)  # tanh(2x) = x
    np.testing.assert_allclose(df["points[0]"], [-root, 0.0, root], atol=1e-9)
    assert df["stable"].tolist() == [True, False, True]
    assert df.index.name == "point"


def test_sweep_table_to_pandas_keeps_its_columns(results):
    df = results["SweepResult"].to_pandas()
    assert list(df.columns) == ["a", "y"] and df["y"].tolist() == [2.0, 4.0]


def test_a_grid_scan_is_a_long_table_indexed_by_its_coordinates(results):
    scan = results["EdgeOfChaosScan"]
    df = scan.to_pandas()
    assert df.index.names == ["leak", "radius"] and len(df) == scan.mean.size
    for i, j in np.ndindex(*scan.mean.shape):
        row = df.loc[(scan.leaks[i], scan.radii[j])]
        assert _same(row["mean"], scan.mean[i, j]) and _same(row["stderr"], scan.stderr[i, j])
    assert _same(df["mean"].to_numpy(), scan.mean.reshape(-1))


def test_not_a_table_says_to_use_xarray(results):
    with pytest.raises(TypeError, match="not a table: use to_xarray"):
        results["Trajectory"].to_pandas()


# -- to_xarray: named dimensions and coordinates ----------------------------------------------
def test_every_array_field_is_a_variable_or_coordinate_with_its_values(results):
    for name, r in results.items():
        if name == "SweepResult":
            continue
        ds = r.to_xarray()
        coords = {f: d for d, f in r._coords.items()}
        for f in dataclasses.fields(r):
            value = getattr(r, f.name)
            if not isinstance(value, np.ndarray):
                continue
            if f.name in coords and value.ndim == 1:
                assert _same(ds[coords[f.name]].values, value), (name, f.name)
            else:
                assert _same(ds[f.name].values, value), (name, f.name)
                assert len(ds[f.name].dims) == value.ndim == len(set(ds[f.name].dims))


@pytest.mark.parametrize("name, field, dims, coord", [
    ("Trajectory", "states", ("time", "unit"), ("time", "times")),
    ("CovariantVectors", "angles", ("time", "exponent", "exponent_2"), ("time", "times")),
    ("LyapunovSpectrum", "history", ("step", "exponent"), ("step", "history_steps")),
    ("FiniteTimeExponents", "exponents", ("window", "exponent"), None),
    ("EdgeOfChaosScan", "exponents", ("seed", "leak", "radius"), ("radius", "radii")),
    ("LyapunovScan", "exponents", ("value", "exponent"), ("value", "values")),
    ("ImpulseResponse", "norms", ("source", "step"), ("source", "sources")),
])
def test_named_dimensions_and_coordinates(results, name, field, dims, coord):
    r = results[name]
    ds = r.to_xarray()
    assert ds[field].dims[-len(dims):] == dims
    if coord is not None:
        assert _same(ds.coords[coord[0]].values, np.asarray(getattr(r, coord[1])))


def test_batched_trajectory_has_a_batch_dimension():
    x0 = np.random.default_rng(0).normal(size=(3, 2)) * 0.1
    traj = itermap.iterate(HENON, x0, 4)
    ds = traj.to_xarray()
    assert ds["states"].dims == ("time", "batch", "unit")
    assert ds["states"].sel(time=2).values.tolist() == traj.states[2].tolist()


# -- optional packages ------------------------------------------------------------------------
@pytest.mark.parametrize("package, method", [("pandas", "to_pandas"), ("xarray", "to_xarray")])
def test_missing_package_names_the_extra(results, monkeypatch, package, method):
    real = builtins.__import__

    def no(name, *args, **kwargs):
        if name == package or name.startswith(package + "."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no)
    with pytest.raises(ImportError, match=rf"needs {package}.*pip install 'itermap\[tables\]'"):
        getattr(results["MemoryCapacity"], method)()


# -- _repr_html_ ------------------------------------------------------------------------------
class _Balanced(html.parser.HTMLParser):
    VOID = {"br", "hr", "img", "meta", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.ok = [], True

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        self.ok = self.ok and bool(self.stack) and self.stack.pop() == tag


def _valid(text):
    p = _Balanced()
    p.feed(text)
    p.close()
    return p.ok and not p.stack


def test_every_result_displays_as_valid_small_html(results):
    for name, r in results.items():
        text = r._repr_html_()
        assert _valid(text) and text.startswith("<table>"), name
        assert len(text) < 3000, (name, len(text))
        assert name in text


def test_html_of_a_large_result_is_small_and_escaped():
    traj = itermap.iterate(itermap.random_rnn(200, rng=0), np.full(200, 0.1), 5000)
    text = traj._repr_html_()
    assert _valid(text) and len(text) < 600
    assert "(5001, 200)" in text and str(traj.states[-1, 0])[:8] not in text
    odd = analysis.Continuation(np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1), complex),
                                np.ones(1, bool), np.zeros(1), [], "<b>&")
    assert "&lt;b&gt;&amp;" in odd._repr_html_() and _valid(odd._repr_html_())


# -- status and message -----------------------------------------------------------------------
def test_successful_results_say_so(results):
    for name, r in results.items():
        assert r.result is Status.SUCCESS and r.message == "", (name, r.message)


def test_fixed_points_that_gave_up_say_raise_max_iter():
    m = itermap.random_rnn(6, gain=2.5, rng=1)
    starts = np.random.default_rng(0).normal(size=(12, 6))
    # patience=0: no wandering, and no gain paths that would bring them to points
    fp = analysis.find_fixed_points(m, starts, max_iter=2, q_steps=0, patience=0)
    gave_up = int(np.sum(fp.status == 2))
    assert gave_up > 0 and fp.result is Status.MAX_ITERATIONS
    assert fp.message.startswith(f"{gave_up} starts used up max_iter: raise max_iter")
    assert Status.MAX_ITERATIONS.name in fp._repr_html_()


@settings(max_examples=30, deadline=None)
@given(codes=st.lists(st.integers(0, 4), min_size=1, max_size=20))
def test_property_fixed_point_status_counts_each_code(codes):
    fp = analysis.FixedPoints(np.zeros((0, 1)), np.zeros(0), None, np.zeros((0, 1), complex),
                              np.zeros(0, bool), np.zeros(0, int), 0,
                              status=np.array(codes, np.int8))
    first = next((c for c in (2, 3, 4) if c in codes), None)
    want = {None: Status.SUCCESS, 2: Status.MAX_ITERATIONS, 3: Status.STALLED,
            4: Status.NONFINITE}[first]
    assert fp.result is want
    for code, words in ((2, "used up"), (3, "stalled"), (4, "NaN or inf")):
        n = codes.count(code)
        assert (f"{n} starts {words}" in fp.message or f"{n} starts reached {words}"
                in fp.message) == (n > 0)


def test_spaced_qr_that_loses_precision_says_lower_the_spacing():
    m = itermap.random_rnn(40, gain=3.0, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ls = analysis.lyapunov_spectrum(m, np.full(40, 0.1), 400, reorthonormalize_every=40)
    assert (ls.result is Status.IMPRECISE) == (ls.qr_error > 1e-6)
    if ls.result:
        assert "lower reorthonormalize_every" in ls.message


def test_failed_sweep_points_are_the_status():
    with pytest.warns(RuntimeWarning):
        t = analysis.sweep(lambda x: 1 / x, {"x": [0, 1, 0.0]}, executor="serial",
                           progress=False)
    assert t.result is Status.POINTS_FAILED and t.message.startswith("2 points raised")


def test_continuation_stopped_early_says_why():
    c = analysis.Continuation(np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1), complex),
                              np.ones(1, bool), np.zeros(1), [], "max_points")
    assert c.result is Status.STOPPED and "(max_points): lower min_step" in c.message
    done = dataclasses.replace(c, stop_reason="end of range")
    assert done.result is Status.SUCCESS


# -- files written by main's code -------------------------------------------------------------
def test_main_format_maps_and_results_still_load():
    assert itermap.load(FIX / "net.npz") == itermap.random_rnn(5, gain=1.5, rng=0)
    assert repr(itermap.load(FIX / "henon.npz")) == "HenonMap(a=1.4, b=0.3)"
    traj = itermap.load(FIX / "trajectory.npz")
    x, states = np.array([0.1, 0.1]), [np.array([0.1, 0.1])]
    for _ in range(6):  # the Henon map by hand
        x = np.array([1 - 1.4 * x[0] ** 2 + x[1], 0.3 * x[0]])
        states.append(x)
    np.testing.assert_allclose(traj.states, np.array(states), rtol=1e-14)
    fp = itermap.load(FIX / "fixed_points.npz")
    root = brentq(lambda x: np.tanh(2 * x) - x, 0.5, 1.5)
    np.testing.assert_allclose(np.sort(fp.points[:, 0]), [-root, 0, root], atol=1e-9)
    assert isinstance(fp, Result) and fp.result is Status.SUCCESS
    ls = itermap.load(FIX / "lyapunov.npz")
    assert ls.exponents.sum() == pytest.approx(np.log(0.3), abs=1e-9)  # ln |det J|


def test_main_format_sweep_table_and_cache_still_load(tmp_path):
    from tests.fixtures.main_format_function import point

    old = analysis.SweepResult.load(FIX / "sweep_table.npz")
    assert old["sum"].tolist() == [1.5, 2.5]
    assert [r["vec"].tolist() for r in old] == [[0.0], [0.0, 1.0]]
    assert old["vec"][0].dtype == np.float32 if isinstance(old["vec"], list) else True
    assert [type(r["scalar"]) for r in old] == [np.int16, np.int16]
    assert [r["pair"] for r in old] == [(1, "x"), (2, "x")]
    assert [r["nested.c"] for r in old] == [1 + 0.5j, 2 + 0.5j]
    assert np.isnan(old["nan"]).all()
    cache = tmp_path / "cache"
    shutil.copytree(FIX / "sweep_cache", cache)
    again = analysis.sweep(point, {"a": [1, 2], "b": [0.5]}, executor="serial", seed=3,
                           cache=cache, progress=False)
    assert again.n_cached == 2 and again.equals(old)
    fresh = analysis.sweep(point, {"a": [1, 2], "b": [0.5]}, executor="serial", seed=3,
                           progress=False)
    assert fresh.equals(old)


def test_newton_fallback_training_nan_and_unconverged_scans_say_the_fix(results):
    newton = dataclasses.replace(results["NewtonTrajectory"], converged=False,
                                 fallback_reason="a window diverged")
    assert newton.result is Status.FELL_BACK
    assert "(a window diverged): raise max_iter" in newton.message
    history = results["TrainHistory"]
    loss = history.loss.copy()
    loss[-1] = np.nan
    bad = dataclasses.replace(history, loss=loss)
    assert bad.result is Status.NONFINITE and bad.message == "the loss is NaN or inf in 1 " \
        "epochs: lower lr"
    scan = results["NewtonLyapunovScan"]
    converged = np.ones_like(scan.converged)
    converged.flat[0] = False
    late = dataclasses.replace(scan, converged=converged)
    assert late.result is Status.MAX_ITERATIONS and late.message.startswith(
        "Newton did not converge within steps iterations in 1 runs")
    assert late.to_pandas()["converged[0]"].tolist() == converged[:, 0].tolist()


def test_every_result_record_of_the_public_api_is_a_result():
    from tests.fuzz_api import EXEMPT

    records = {name for name, why in EXEMPT.items() if "result record" in why
               or "saved optimizer state" in why}
    assert len(records) >= 20
    for name in records - {"SweepFailure"}:  # a failure is a row of SweepResult.failures
        cls = getattr(itermap, name, None) or getattr(analysis, name)
        assert issubclass(cls, Result), name
