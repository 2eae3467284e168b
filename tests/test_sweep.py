"""analysis.sweep: grids, seeds, executors (local processes, a real Dask cluster), the
atomic cache under a real kill, failures, and the SweepResult table."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itermap.analysis import SweepFailure, SweepResult, sweep

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# --- sweep functions: module level so worker processes can import them ---------------------


def noisy(gain, n, rng):
    """A small random computation: the result depends on every bit of the stream."""
    x = rng.normal(size=n)
    return {"norm": float(np.linalg.norm(gain * x)), "first": x[:2].copy(),
            "u": rng.integers(0, 2**62)}


def plain(a, b):
    return a * 10 + b


def fails_on_odd(k, rng):
    if k % 2:
        raise ArithmeticError(f"odd k={k} refused")
    return {"k2": k * k, "r": rng.random()}


def returns_unpicklable(k):
    if k == 1:
        return lambda: k  # cannot travel back from a worker process
    return k


def slow_noisy(i, rng, *, delay=0.0, marks=None):
    """Sleeps, then draws; leaves a marker file per call so a test can count the calls."""
    if marks is not None:
        with open(os.path.join(marks, f"{i}-{os.getpid()}-{time.monotonic_ns()}"), "w"):
            pass
    time.sleep(delay)
    return {"v": rng.standard_normal(4), "s": float(rng.random())}


@dataclasses.dataclass
class Summary:
    mean: float
    spectrum: np.ndarray


def interrupted_at_3(i):
    if i == 3:
        raise KeyboardInterrupt
    return i


def returns_object(i):
    return {"obj": object() if i == 1 else None, "i2": 2 * i}


def _pid(k):
    return os.getpid()


def sleeper(i):
    t0 = time.monotonic()
    time.sleep(0.3)
    return {"t0": t0, "t1": time.monotonic(), "pid": os.getpid()}


def _overlap(res):
    """Whether some two points ran at the same time (in different processes)."""
    spans = sorted(zip(res["t0"].tolist(), res["t1"].tolist()))
    return any(b0 < a1 for (_, a1), (b0, _) in zip(spans, spans[1:]))


def dataclass_result(m):
    return Summary(float(m) / 2, np.arange(m, dtype=np.float32))


def nested(m):
    return {"stats": {"lo": m - 1, "hi": m + 1}, "m": np.asarray(m * 1.5)}


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


GRID = {"gain": [0.5, 1.0, 2.0], "n": [3, 5]}


def reference_noisy(seed, grid):
    """Plain loop with the documented stream construction (independent of the executor)."""
    root = np.random.SeedSequence(seed)
    rows = []
    import hashlib
    import json

    for gain in grid["gain"]:
        for n in grid["n"]:
            canon = json.dumps({"gain": float(gain), "n": int(n)}, sort_keys=True,
                               separators=(",", ":"))
            d = hashlib.sha256(canon.encode()).digest()
            words = tuple(int.from_bytes(d[j:j + 4], "little") for j in range(0, 16, 4))
            rng = np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=words))
            x = rng.normal(size=n)
            rows.append((gain, n, np.linalg.norm(gain * x), x[:2], rng.integers(0, 2**62)))
    return rows


# --- grid, columns, order ------------------------------------------------------------------


def test_cartesian_grid_matches_plain_loop():
    res = sweep(plain, {"a": [1, 2, 3], "b": [0, 5]}, executor="serial", progress=False)
    assert res.params == ("a", "b") and res.columns == ("a", "b", "result")
    assert [(r["a"], r["b"]) for r in res] == [(a, b) for a in (1, 2, 3) for b in (0, 5)]
    assert res["result"].tolist() == [a * 10 + b for a in (1, 2, 3) for b in (0, 5)]
    assert res.seed is None  # plain takes no rng


def test_list_of_dicts_keeps_order_and_union_of_columns():
    res = sweep(plain, [{"a": 3, "b": 1}, {"b": 2, "a": 0}], executor="serial", progress=False)
    assert res["result"].tolist() == [31, 2]
    assert len(res) == 2 and res[1] == {"b": 2, "a": 0, "result": 2}


def test_values_follow_documented_streams_exactly():
    res = sweep(noisy, GRID, executor="serial", seed=7, progress=False)
    ref = reference_noisy(7, GRID)
    assert len(res) == len(ref) == 6
    for rec, (gain, n, norm, first, u) in zip(res, ref):
        assert (rec["gain"], rec["n"]) == (gain, n)
        assert rec["norm"] == norm and rec["u"] == u
        np.testing.assert_array_equal(rec["first"], first)
    assert res.seed == {"entropy": 7, "spawn_key": []}


def test_point_stream_depends_only_on_its_parameters():
    full = sweep(noisy, GRID, executor="serial", seed=3, progress=False)
    part = sweep(noisy, [{"n": 5, "gain": 2.0}, {"gain": 0.5, "n": 3}], executor="serial",
                 seed=3, progress=False)
    by_params = {(r["gain"], r["n"]): r for r in full}
    for r in part:
        assert r["u"] == by_params[(r["gain"], r["n"])]["u"]
    # distinct points draw distinct streams; another root seed changes every point
    assert len(set(full["u"].tolist())) == len(full)
    other = sweep(noisy, GRID, executor="serial", seed=4, progress=False)
    assert not np.any(other["u"] == full["u"])


def test_seed_forms_agree():
    a = sweep(noisy, GRID, executor="serial", seed=11, progress=False)
    b = sweep(noisy, GRID, executor="serial", seed=np.random.SeedSequence(11), progress=False)
    assert a.equals(b)
    g1 = sweep(noisy, GRID, executor="serial", seed=np.random.default_rng(5), progress=False)
    g2 = sweep(noisy, GRID, executor="serial", seed=np.random.default_rng(5), progress=False)
    assert g1.equals(g2) and not g1.equals(a)
    n1 = sweep(noisy, GRID, executor="serial", progress=False)
    n2 = sweep(noisy, GRID, executor="serial", progress=False)
    assert not n1.equals(n2)  # fresh entropy ...
    again = sweep(noisy, GRID, executor="serial", progress=False,
                  seed=np.random.SeedSequence(n1.seed["entropy"]))
    assert again.equals(n1)  # ... recorded so the sweep can be reproduced


# --- executors -----------------------------------------------------------------------------


def test_identical_across_local_processes_and_threads():
    serial = sweep(noisy, GRID, executor="serial", seed=21, progress=False)
    one = sweep(noisy, GRID, executor=1, seed=21, progress=False)
    with ProcessPoolExecutor(2) as pool:
        two = sweep(noisy, GRID, executor=pool, seed=21, progress=False)
    with ThreadPoolExecutor(3) as pool:
        threads = sweep(noisy, GRID, executor=pool, seed=21, progress=False)
    for other in (one, two, threads):
        assert serial.equals(other)


def test_default_executor_is_a_local_process_pool():
    res = sweep(_pid, {"k": [0, 1, 2, 3]}, progress=False)
    assert os.getpid() not in set(res["result"].tolist())


def test_two_local_workers_run_points_concurrently():
    res = sweep(sleeper, {"i": [0, 1, 2, 3]}, executor=2, progress=False)
    assert len(set(res["pid"].tolist())) == 2 and _overlap(res)
    assert not _overlap(sweep(sleeper, {"i": [0, 1]}, executor=1, progress=False))


def test_dask_local_cluster_gives_identical_table(dask_client):
    serial = sweep(noisy, GRID, executor="serial", seed=21, progress=False)
    res = sweep(noisy, GRID, executor=dask_client.get_executor(), seed=21, progress=False)
    assert serial.equals(res)
    workers = sweep(sleeper, {"i": [10, 11, 12]}, executor=dask_client.get_executor(),
                    progress=False)
    pids = set(workers["pid"].tolist())
    assert os.getpid() not in pids and len(pids) == 2 and _overlap(workers)


def test_dask_failures_are_reported(dask_client):
    with pytest.warns(RuntimeWarning, match="2 of 4 sweep points failed"):
        res = sweep(fails_on_odd, {"k": [0, 1, 2, 3]}, executor=dask_client.get_executor(),
                    seed=0, progress=False)
    assert res["k"].tolist() == [0, 2]
    assert [f.params for f in res.failures] == [{"k": 1}, {"k": 3}]


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["serial", 2])
def test_failing_points_are_reported_and_the_rest_kept(executor):
    with pytest.warns(RuntimeWarning, match="3 of 6 sweep points failed.*odd k=1 refused"):
        res = sweep(fails_on_odd, {"k": list(range(6))}, executor=executor, seed=1,
                    progress=False)
    assert res["k"].tolist() == [0, 2, 4] and res["k2"].tolist() == [0, 4, 16]
    assert all(isinstance(f, SweepFailure) for f in res.failures)
    assert [(f.params["k"], f.error) for f in res.failures] == [(1, "ArithmeticError"),
                                                                 (3, "ArithmeticError"),
                                                                 (5, "ArithmeticError")]
    assert "odd k=5 refused" in res.failures[2].message
    assert "fails_on_odd" in res.failures[0].traceback
    clean = sweep(fails_on_odd, {"k": [0, 2, 4]}, executor="serial", seed=1, progress=False)
    assert clean.equals(res)  # failures do not shift the streams of the others


def test_result_that_cannot_travel_back_is_a_failure():
    with pytest.warns(RuntimeWarning, match="1 of 3"):
        res = sweep(returns_unpicklable, {"k": [0, 1, 2]}, executor=2, progress=False)
    assert res["result"].tolist() == [0, 2]
    assert res.failures[0].params == {"k": 1}


# --- cache ---------------------------------------------------------------------------------


def _points_in(cache):
    return sorted(f for f in os.listdir(cache) if f.endswith(".npz"))


def test_cache_reuses_matching_points_of_a_changed_grid(tmp_path):
    cache, marks = tmp_path / "cache", tmp_path / "marks"
    marks.mkdir()
    f = functools.partial(slow_noisy, marks=str(marks))
    first = sweep(f, {"i": [0, 1, 2]}, executor="serial", seed=5, cache=cache,
                  progress=False)
    assert first.n_cached == 0 and len(_points_in(cache)) == 3
    assert not any(n.endswith(".tmp") for n in os.listdir(cache))
    grown = sweep(f, {"i": [2, 3, 0, 4]}, executor="serial", seed=5, cache=cache,
                  progress=False)
    assert grown.n_cached == 2 and len(os.listdir(marks)) == 3 + 2
    fresh = sweep(slow_noisy, {"i": [2, 3, 0, 4]}, executor="serial", seed=5, progress=False)
    assert fresh.equals(grown)
    other_seed = sweep(f, {"i": [0]}, executor="serial", seed=6, cache=cache, progress=False)
    assert other_seed.n_cached == 0


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    res = sweep(noisy, GRID, executor="serial", seed=2, cache=tmp_path, progress=False)
    victim = tmp_path / _points_in(tmp_path)[0]
    victim.write_bytes(victim.read_bytes()[:40])
    with pytest.warns(RuntimeWarning, match="ignoring unreadable sweep cache entry"):
        again = sweep(noisy, GRID, executor="serial", seed=2, cache=tmp_path, progress=False)
    assert again.n_cached == 5 and again.equals(res)


def test_cache_of_another_function_is_refused(tmp_path):
    sweep(plain, {"a": [1], "b": [2]}, executor="serial", cache=tmp_path, progress=False)
    with pytest.raises(ValueError, match="holds results of .*plain"):
        sweep(nested, {"m": [1]}, executor="serial", cache=tmp_path, progress=False)


def test_serial_sweep_caches_each_point_before_the_next_and_stops_on_ctrl_c(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        sweep(interrupted_at_3, {"i": list(range(6))}, executor="serial", cache=tmp_path,
              progress=False)
    assert len(_points_in(tmp_path)) == 3  # points 0, 1, 2; nothing after the interrupt
    res = sweep(interrupted_at_3, {"i": [0, 1, 2, 4]}, executor="serial", cache=tmp_path,
                progress=False)
    assert res.n_cached == 3 and res["result"].tolist() == [0, 1, 2, 4]


def test_point_that_cannot_be_cached_stays_in_the_table(tmp_path):
    with pytest.warns(RuntimeWarning, match="1 sweep points could not be cached"):
        res = sweep(returns_object, {"i": [0, 1, 2]}, executor="serial", cache=tmp_path,
                    progress=False)
    assert res["i2"].tolist() == [0, 2, 4] and len(_points_in(tmp_path)) == 2


KILLED_SWEEP = """
import functools, sys
sys.path[:0] = [{root!r}, {here!r}]
from itermap.analysis import sweep
from test_sweep import slow_noisy

if __name__ == "__main__":
    f = functools.partial(slow_noisy, delay=0.25, marks={marks!r})
    sweep(f, {{"i": list(range(24))}}, executor=2, seed=9, cache={cache!r}, progress=False)
    print("finished", flush=True)
"""


def test_killed_sweep_resumes_with_only_the_missing_points(tmp_path):
    cache, marks, marks2 = tmp_path / "cache", tmp_path / "marks", tmp_path / "marks2"
    marks.mkdir()
    marks2.mkdir()
    script = tmp_path / "run_sweep.py"
    script.write_text(textwrap.dedent(KILLED_SWEEP.format(
        root=ROOT, here=HERE, marks=str(marks), cache=str(cache))))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if cache.is_dir() and len(_points_in(cache)) >= 4:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup handler runs
        proc.wait(timeout=30)
    finally:
        try:  # the orphaned pool workers of that sweep
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL
    assert b"finished" not in proc.stdout.read()
    kept = _points_in(cache)
    assert 4 <= len(kept) < 24
    for name in kept:  # every file present is a whole point
        with np.load(cache / name) as data:
            assert data["__sweep__"].size > 0

    f = functools.partial(slow_noisy, marks=str(marks2))
    resumed = sweep(f, {"i": list(range(24))}, executor="serial", seed=9, cache=cache,
                    progress=False)
    assert resumed.n_cached == len(kept)
    assert len(os.listdir(marks2)) == 24 - len(kept)  # only the missing points ran
    uninterrupted = sweep(slow_noisy, {"i": list(range(24))}, executor="serial", seed=9,
                          progress=False)
    assert resumed.equals(uninterrupted)


# --- the table -----------------------------------------------------------------------------


def test_flattening_of_returned_values():
    res = sweep(dataclass_result, {"m": [2, 3]}, executor="serial", progress=False)
    assert res.columns == ("m", "mean", "spectrum")
    assert res["mean"].tolist() == [1.0, 1.5]
    assert [s.dtype for s in res["spectrum"]] == [np.float32, np.float32]
    assert isinstance(res["spectrum"], list)  # ragged: lengths 2 and 3
    res = sweep(nested, {"m": [1, 2]}, executor="serial", progress=False)
    assert res.columns == ("m", "stats.lo", "stats.hi", "result.m")  # a clash is renamed
    assert res["stats.hi"].tolist() == [2, 3]
    assert isinstance(res[0]["result.m"], np.float64)  # 0-d array became a scalar
    stacked = sweep(noisy, GRID, executor="serial", seed=0, progress=False)["first"]
    assert stacked.shape == (6, 2)


def test_save_load_round_trip_is_exact(tmp_path):
    recs = [{"a": 1, "b": "x", "f32": np.float32(0.1), "c": 1 + 2j, "nan": math.nan,
             "arr": np.arange(3, dtype=np.int16), "none": None, "lst": [1.5, np.inf],
             "d": {"k": np.float64(-0.0)}, "cz": np.complex64(1 - 1j), "ok": np.True_},
            {"a": 2, "b": "y", "f32": np.float32(-np.inf), "c": 0j, "nan": 2.0,
             "arr": np.zeros((2, 2)), "none": None, "lst": [], "d": {}, "cz": np.complex64(0),
             "ok": np.False_}]
    fail = SweepFailure({"a": 3}, "ValueError", "bad", "tb")
    t = SweepResult(("a",), recs, [fail], seed={"entropy": 3, "spawn_key": []}, n_cached=1)
    path = t.save(tmp_path / "table")
    assert path.endswith(".npz") and os.listdir(tmp_path) == ["table.npz"]
    back = SweepResult.load(path)
    assert back.equals(t) and back.columns == t.columns and back.seed == t.seed
    assert type(back[0]["f32"]) is np.float32 and type(back[0]["cz"]) is np.complex64
    assert back[0]["d"]["k"] == 0 and math.copysign(1, back[0]["d"]["k"]) == -1
    assert back.failures == [fail] and back.n_cached == 1


def test_sweep_table_round_trip_and_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    res = sweep(noisy, GRID, executor="serial", seed=1, progress=False)
    back = SweepResult.load(res.save(tmp_path / "s.npz"))
    assert back.equals(res)
    df = back.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == list(res.columns)
    assert df.shape == (6, 5)
    np.testing.assert_array_equal(df["norm"].to_numpy(), res["norm"])
    assert df.groupby("gain")["norm"].count().tolist() == [2, 2, 2]


def test_load_refuses_bad_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable sweep file"):
        SweepResult.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="not a readable sweep file"):
        SweepResult.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError):
        SweepResult.load(tmp_path / "missing.npz")
    sweep(plain, {"a": [1], "b": [1]}, executor="serial", cache=tmp_path / "c", progress=False)
    entry = tmp_path / "c" / _points_in(tmp_path / "c")[0]
    with pytest.raises(ValueError, match="cache entry, not a sweep table"):
        SweepResult.load(entry)


def test_table_indexing_errors():
    res = sweep(plain, {"a": [1], "b": [2]}, executor="serial", progress=False)
    with pytest.raises(KeyError, match="no column 'zz'"):
        res["zz"]
    with pytest.raises(TypeError, match="column name or a row number"):
        res[1.5]
    assert "1 points, 0 failed" in repr(res)


def test_progress_bar_runs(capsys):
    pytest.importorskip("tqdm")
    res = sweep(plain, {"a": [1, 2], "b": [0]}, executor="serial", progress=True)
    assert len(res) == 2
    assert "2/2" in capsys.readouterr().err


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"function": 3}, TypeError, "function must be callable"),
    ({"grid": 5}, TypeError, "grid must be a dict of lists"),
    ({"grid": "ab"}, TypeError, "grid must be a dict of lists"),
    ({"grid": {}}, ValueError, "grid is empty"),
    ({"grid": []}, ValueError, "grid is empty"),
    ({"grid": {"a": [], "b": [1]}}, ValueError, r"grid\['a'\] is empty"),
    ({"grid": {"a": 1, "b": [1]}}, TypeError, r"grid\['a'\] must be a list of values"),
    ({"grid": {"a": "xyz", "b": [1]}}, TypeError, r"grid\['a'\] must be a list of values"),
    ({"grid": {1: [1]}}, TypeError, "grid keys must be parameter names"),
    ({"grid": [{"a": 1}, 3]}, TypeError, r"grid\[1\] must be a dict"),
    ({"grid": [{0: 1}]}, TypeError, "non-string parameter name"),
    ({"grid": [{"a": 1, "b": 2}, {"b": 2, "a": 1}]}, ValueError, "duplicate points"),
    ({"grid": {"a": [1, 1.0], "b": [2]}}, None, None),  # int 1 and float 1.0 differ
    ({"grid": {"a": [object()], "b": [1]}}, TypeError, "parameter 'a' at point 0 has type object"),
    ({"grid": {"a": [1], "b": [1], "rng": [0]}}, ValueError, "'rng' cannot be a grid"),
    ({"executor": "dask"}, ValueError, "executor must be None, an int, 'serial'"),
    ({"executor": 0}, ValueError, "must be >= 1"),
    ({"executor": 2.5}, TypeError, "executor must be None, an int"),
    ({"seed": -1}, ValueError, "seed must be non-negative"),
    ({"seed": 1.5}, TypeError, "seed must be an int"),
    ({"seed": True}, TypeError, "seed must be an int"),
    ({"cache": 3}, TypeError, "cache must be a directory path"),
    ({"progress": "yes"}, TypeError, "progress must be True or False"),
])
def test_bad_input(kwargs, exc, match):
    args = {"function": plain, "grid": {"a": [1], "b": [2]}, "executor": "serial",
            "progress": False, **kwargs}
    function, grid = args.pop("function"), args.pop("grid")
    if exc is None:
        assert len(sweep(function, grid, **args)) == 2
        return
    with pytest.raises(exc, match=match):
        sweep(function, grid, **args)


def test_bad_cache_arguments(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        sweep(plain, {"a": [1], "b": [1]}, executor="serial", cache=tmp_path / "file",
              progress=False)
    with pytest.raises(ValueError, match="needs a seed"):
        sweep(noisy, GRID, executor="serial", cache=tmp_path / "c", progress=False)
    with pytest.raises(TypeError, match="executor must be"):
        sweep(plain, {"a": [1], "b": [1]}, executor=[], cache=tmp_path / "d", progress=False)
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_unsaveable_result_is_a_clear_error(tmp_path):
    res = SweepResult(("a",), [{"a": 1, "obj": object()}])
    with pytest.raises(TypeError, match="cannot save r0.obj of type object"):
        res.save(tmp_path / "t")
    assert os.listdir(tmp_path) == []


# --- properties ----------------------------------------------------------------------------


scalars = st.one_of(st.integers(-5, 5), st.floats(-3, 3, allow_nan=False, width=32),
                    st.sampled_from(["x", "y"]), st.booleans(), st.none())


@settings(max_examples=25, deadline=None)
@given(grid=st.dictionaries(st.sampled_from(["p", "q", "r"]),
                            st.lists(scalars, min_size=1, max_size=3, unique_by=repr),
                            min_size=1, max_size=3),
       seed=st.integers(0, 2**32))
def test_property_table_matches_reference_loop_and_subgrids(grid, seed):
    # values unique by repr are distinct points (1, 1.0 and True included)
    import itertools

    def echo(rng, **params):
        return {"draw": int(rng.integers(0, 2**62))}

    points = [dict(zip(grid, c)) for c in itertools.product(*grid.values())]
    res = sweep(echo, grid, executor="serial", seed=seed, progress=False)
    assert [{k: r[k] for k in grid} for r in res] == points
    # each point alone gives the same draw: streams do not depend on the rest of the grid
    last = sweep(echo, [points[-1]], executor="serial", seed=seed, progress=False)
    assert last["draw"][0] == res["draw"][-1]
