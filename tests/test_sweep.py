"""analysis.sweep: grids, seeds, executors (local processes, a real Dask cluster), the
atomic cache under a real kill, failures, and the SweepResult table."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
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
        return threading.Lock()  # cannot travel back from a worker process, even by cloudpickle
    return k


def slow_noisy(i, rng, *, delay=0.0, marks=None):
    """Sleeps, then draws; leaves a marker file per call so a test can count the calls.

    The environment variable SWEEP_TEST_DELAY (seconds) adds to the delay: a test can slow a
    run down without changing the function's arguments, which are part of the cache key.
    """
    if marks is not None:
        with open(os.path.join(marks, f"{i}-{os.getpid()}-{time.monotonic_ns()}"), "w"):
            pass
    time.sleep(delay + float(os.environ.get("SWEEP_TEST_DELAY", "0")))
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


# --- the cache key holds the function's identity --------------------------------------------


def response(gain, net):
    """A number that depends on every weight of the bound map."""
    x = np.linspace(-1.0, 1.0, net.dim)
    return {"y": float(np.sum(net.step(gain * x)))}


def _reference_response(net, gains):
    # the map by hand: random_rnn's step is tanh(W x) on the whole state (no bias)
    assert net.bias is None and [a.name for a in net.activations] == ["tanh"]
    W = net.block_matrix.to_dense()
    x = np.linspace(-1.0, 1.0, net.dim)
    return [float(np.sum(np.tanh(W @ (g * x)))) for g in gains]


def test_cache_never_returns_another_bound_maps_results(tmp_path):
    import itermap

    gains = [0.5, 1.0, 1.5]
    A, B = itermap.random_rnn(12, rng=0), itermap.random_rnn(12, rng=1)
    a = sweep(functools.partial(response, net=A), {"gain": gains}, executor="serial",
              cache=tmp_path, progress=False)
    b = sweep(functools.partial(response, net=B), {"gain": gains}, executor="serial",
              cache=tmp_path, progress=False)
    assert b.n_cached == 0  # B's numbers, reported as computed
    np.testing.assert_allclose(b["y"], _reference_response(B, gains), rtol=1e-12)
    np.testing.assert_allclose(a["y"], _reference_response(A, gains), rtol=1e-12)
    assert not np.any(a["y"] == b["y"])
    # the key is the content, not the object: the same map built again hits the cache
    again = sweep(functools.partial(response, net=itermap.random_rnn(12, rng=0)),
                  {"gain": gains}, executor="serial", cache=tmp_path, progress=False)
    assert again.n_cached == 3 and again.equals(a)


def _define(source, name="point"):
    """Define ``name`` from source in a module namespace of its own (same name each time)."""
    namespace = {"__name__": "sweep_defined", "np": np}
    exec(textwrap.dedent(source), namespace)
    return namespace[name]


LOZI = """
class Lozi:
    def __init__(self, a):
        self.a = a
        self.dim = 2

    def step(self, x):
        return np.array([1 + {b} * x[1] - self.a * abs(x[0]), 0.3 * x[0]])

def point(x, m):
    return float(m.step(np.array([x, 0.5]))[0])
"""


def _lozi(a, b="1.0"):
    point = _define(LOZI.format(b=b))
    return functools.partial(point, m=point.__globals__["Lozi"](a))


# (first, changed, the changed function's value at x = 1); the second must recompute
IDENTITY_CHANGES = {
    "code": ("def point(x):\n    return x + 1", "def point(x):\n    return x + 2", 3),
    "default": ("def point(x, k=1):\n    return x * k", "def point(x, k=2):\n    return x * k",
                2),
    "closure": ("def make(k):\n    return lambda x: x * k\npoint = make(3)",
                "def make(k):\n    return lambda x: x * k\npoint = make(4)", 4),
    "helper": ("def helper(x):\n    return x - 1\ndef point(x):\n    return helper(x)",
               "def helper(x):\n    return x - 5\ndef point(x):\n    return helper(x)", -4),
    "module constant": ("K = 2.0\ndef point(x):\n    return x * K",
                        "K = 2.5\ndef point(x):\n    return x * K", 2.5),
    "partial array, last bit": (
        lambda: functools.partial(_define("def point(x, w):\n    return float(x * w[-1])"),
                                  w=np.ones(4)),
        lambda: functools.partial(_define("def point(x, w):\n    return float(x * w[-1])"),
                                  w=np.array([1.0, 1.0, 1.0, np.nextafter(1.0, 2.0)])),
        np.nextafter(1.0, 2.0)),
    "bound object's attribute": (lambda: _lozi(1.4), lambda: _lozi(1.7), 1 + 0.5 - 1.7),
    "bound object's class code": (lambda: _lozi(1.4), lambda: _lozi(1.4, b="0.5"),
                                  1 + 0.5 * 0.5 - 1.4),
}


@pytest.mark.parametrize("change", list(IDENTITY_CHANGES))
def test_cache_key_covers_code_and_bound_values(tmp_path, change):
    first, changed, expected = IDENTITY_CHANGES[change]
    make = {f: (f if callable(f) else functools.partial(_define, f)) for f in (first, changed)}
    grid = {"x": [1.0]}
    a = sweep(make[first](), grid, executor="serial", cache=tmp_path, progress=False)
    b = sweep(make[changed](), grid, executor="serial", cache=tmp_path, progress=False)
    assert b.n_cached == 0 and b["result"][0] == expected
    assert a["result"][0] != expected
    # defined again from the same source (new objects, same content): a cache hit
    again = sweep(make[changed](), grid, executor="serial", cache=tmp_path, progress=False)
    assert again.n_cached == 1 and again.equals(b)


def test_unhashable_bound_value_with_cache_is_a_clear_error(tmp_path):
    f = functools.partial(plain, b=threading.Lock())
    with pytest.raises(TypeError, match="function .* holds a value that cannot be hashed"):
        sweep(f, {"a": [1]}, executor="serial", cache=tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()
    assert len(sweep(functools.partial(lambda a, b: a, b=threading.Lock()), {"a": [1]},
                     executor="serial", progress=False)) == 1  # without cache= it runs
    # a bound module (an array namespace, say) counts by its name
    for xp, n_cached in ((np, 0), (np, 1), (math, 0)):
        f = functools.partial(lambda a, xp: float(xp.sqrt(a)), xp=xp)
        res = sweep(f, {"a": [4.0]}, executor="serial", cache=tmp_path / "m", progress=False)
        assert res.n_cached == n_cached and res["result"][0] == 2.0


# --- damaged cache entries are recomputed ----------------------------------------------------


def _rewrite_meta(path, change):
    """Rewrite the metadata of an itermap file (tables and cache entries are ones)."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = change(json.loads(arrays["__itermap__"].tobytes()))
    text = meta if isinstance(meta, bytes) else json.dumps(meta).encode()  # bytes: raw JSON
    arrays["__itermap__"] = np.frombuffer(text, dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _set(key, value):
    """Set a field of the saved object (``format_version``: of the file)."""
    def change(meta):
        if key == "format_version":
            meta[key] = value
        else:
            meta["fields"][key] = value
        return meta
    return change


def _outputs(change):
    """Change the saved outputs, a list of [column, value] pairs."""
    def apply(meta):
        meta["fields"]["outputs"] = change(meta["fields"]["outputs"])
        return meta
    return apply


def _deep(meta, n=5000):
    """Outputs nested deeper than the JSON reader recurses (raw JSON text)."""
    meta["fields"]["outputs"] = [["u", "DEEP"]]
    text = json.dumps(meta)
    return text.replace('"DEEP"', "[" * n + "0" + "]" * n).encode()


DAMAGES = {
    "outputs is a list": _set("outputs", [1, 2]),
    "outputs is null": _set("outputs", None),
    "no outputs": lambda m: {**m, "fields": {k: v for k, v in m["fields"].items()
                                             if k != "outputs"}},
    "wrong key": _set("key", "0" * 32),
    "other parameters": _set("params", {"gain": 9.0, "n": 3}),
    "other function": _set("function", "f" * 40),
    "meta is a list": lambda m: [m],
    "meta is a string": lambda m: "point",
    "missing array": _outputs(lambda o: o + [["first", {"__array__": "x"}]]),
    "bad dtype": _outputs(lambda o: o + [["u", {"__np__": "zz", "v": 1}]]),
    "unknown tag": _outputs(lambda o: o + [["u", {"__what__": 1}]]),
    "bad complex": _outputs(lambda o: o + [["u", {"__complex__": [1]}]]),
    "deep nesting": _deep,
    "not JSON": lambda m: b"{'format': ",
    "future version": _set("format_version", 99),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_cache_entry_is_recomputed_with_a_warning(tmp_path, damage):
    res = sweep(noisy, GRID, executor="serial", seed=2, cache=tmp_path, progress=False)
    victim = tmp_path / _points_in(tmp_path)[0]
    _rewrite_meta(victim, DAMAGES[damage])
    with pytest.warns(RuntimeWarning, match="ignoring unreadable sweep cache entry"):
        again = sweep(noisy, GRID, executor="serial", seed=2, cache=tmp_path, progress=False)
    assert again.n_cached == 5 and again.equals(res)
    # the recomputed point replaced the damaged file
    assert sweep(noisy, GRID, executor="serial", seed=2, cache=tmp_path,
                 progress=False).n_cached == 6


def test_damaged_cache_files_and_manifest_do_not_abort(tmp_path):
    res = sweep(noisy, GRID, executor="serial", seed=2, cache=tmp_path, progress=False)
    names = _points_in(tmp_path)
    (tmp_path / names[0]).unlink()
    (tmp_path / names[0]).mkdir()  # a folder where the entry should be
    (tmp_path / names[1]).write_bytes(b"")
    (tmp_path / "sweep.json").write_text("[1, 2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = sweep(noisy, GRID, executor="serial", seed=2, cache=tmp_path, progress=False)
    assert again.n_cached == 4 and again.equals(res)
    messages = [str(w.message) for w in caught]
    assert sum("ignoring unreadable sweep cache entry" in m for m in messages) == 2
    # the folder in the way cannot be replaced: that point stays in the table, uncached
    assert any("1 sweep points could not be cached" in m for m in messages)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_property_any_byte_damage_recomputes_or_is_harmless(tmp_path_factory, data):
    cache = tmp_path_factory.mktemp("damaged")
    grid = {"gain": [0.5], "n": [3, 5]}
    res = sweep(noisy, grid, executor="serial", seed=4, cache=cache, progress=False)
    victim = cache / _points_in(cache)[data.draw(st.integers(0, 1), label="entry")]
    raw = bytearray(victim.read_bytes())
    how = data.draw(st.sampled_from(["truncate", "flip", "splice"]), label="how")
    at = data.draw(st.integers(0, len(raw) - 1), label="at")
    if how == "truncate":
        raw = raw[:at]
    elif how == "flip":
        raw[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    else:
        raw[at:at + 8] = data.draw(st.binary(min_size=0, max_size=16), label="junk")
    victim.write_bytes(bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        again = sweep(noisy, grid, executor="serial", seed=4, cache=cache, progress=False)
    assert again.equals(res)  # never another value, never an abort


KILLED_SWEEP = """
import functools, sys
sys.path[:0] = [{root!r}, {here!r}]
from itermap.analysis import sweep
from test_sweep import slow_noisy

if __name__ == "__main__":
    f = functools.partial(slow_noisy, marks={marks!r})
    sweep(f, {{"i": list(range(24))}}, executor=2, seed=9, cache={cache!r}, progress=False)
    print("finished", flush=True)
"""


def test_killed_sweep_resumes_with_only_the_missing_points(tmp_path):
    cache, marks = tmp_path / "cache", tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "run_sweep.py"
    script.write_text(textwrap.dedent(KILLED_SWEEP.format(
        root=ROOT, here=HERE, marks=str(marks), cache=str(cache))))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "SWEEP_TEST_DELAY": "0.25"})
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
            assert data["__itermap__"].size > 0

    # the same function (the cache key holds its identity), from another process
    f = functools.partial(slow_noisy, marks=str(marks))
    calls_before = len(os.listdir(marks))
    resumed = sweep(f, {"i": list(range(24))}, executor="serial", seed=9, cache=cache,
                    progress=False)
    assert resumed.n_cached == len(kept)
    assert len(os.listdir(marks)) - calls_before == 24 - len(kept)  # only the missing ran
    uninterrupted = sweep(slow_noisy, {"i": list(range(24))}, executor="serial", seed=9,
                          progress=False)
    assert resumed.equals(uninterrupted)


# --- the local pool: functions from __main__, dead workers, a killed driver, BLAS threads ----


MAIN_SCRIPT = """
import functools, json, os, sys
import numpy as np
import itermap
from itermap.analysis import sweep

def response(gain, net):
    x = np.linspace(-1.0, 1.0, net.dim)
    return {"y": float(np.sum(net.step(gain * x))), "pid": os.getpid()}

net = itermap.random_rnn(6, rng=0)
table = sweep(functools.partial(response, net=net), {"gain": [0.5, 1.0, 2.0]}, executor=2,
              cache=sys.argv[1], progress=False)
out = {"y": table["y"].tolist(), "pids": table["pid"].tolist(), "n_cached": table.n_cached,
       "failures": [str(f) for f in table.failures], "driver": os.getpid()}
if table.n_cached == 0:
    offset = 3
    closure = sweep(lambda k: k * k + offset, {"k": [1, 2, 3, 4]}, executor=2, progress=False)
    out["squares"] = closure["result"].tolist()
    out["failures"] += [str(f) for f in closure.failures]
print(json.dumps(out))
"""


def test_function_defined_in_main_runs_on_two_local_workers(tmp_path):
    import itermap

    script = tmp_path / "main_sweep.py"
    script.write_text(MAIN_SCRIPT)  # no __main__ guard: the default pool does not need one
    runs = []
    for hash_seed in ("1", "2"):  # two processes, string hashing salted differently
        out = subprocess.run([sys.executable, str(script), str(tmp_path / "cache")],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": ROOT,
                                  "PYTHONHASHSEED": hash_seed})
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.splitlines()[-1]))
    first, second = runs
    assert first["failures"] == [] and first["n_cached"] == 0
    np.testing.assert_allclose(first["y"], _reference_response(itermap.random_rnn(6, rng=0),
                                                               [0.5, 1.0, 2.0]), rtol=1e-12)
    assert first["driver"] not in first["pids"]  # it ran in the workers
    assert first["squares"] == [4, 7, 12, 19]
    # the __main__ function and its bound map hash alike in another process: all cached
    assert second["n_cached"] == 3 and second["y"] == first["y"]


def test_a_dead_worker_fails_only_its_own_point():
    deaths = {5: "segfault", 12: "exit", 17: "kill"}

    def dies_at(i):  # local: it travels by value, workers need not import this test module
        how = deaths.get(i)
        if how == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif how == "exit":
            os._exit(3)
        elif how == "kill":  # what the out-of-memory killer does
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.02)
        return {"i2": i * i, "pid": os.getpid()}

    f = dies_at
    with pytest.warns(RuntimeWarning, match="3 of 20 sweep points failed"):
        res = sweep(f, {"i": list(range(20))}, executor=2, progress=False)
    survivors = [i for i in range(20) if i not in deaths]
    assert res["i"].tolist() == survivors  # 17 of 20: only the three that died are lost
    assert res["i2"].tolist() == [i * i for i in survivors]
    assert os.getpid() not in set(res["pid"].tolist())
    causes = {f.params["i"]: f for f in res.failures}
    assert sorted(causes) == [5, 12, 17]
    assert all(f.error == "TerminatedWorkerError" for f in res.failures)
    assert all("died while running this point" in f.message for f in res.failures)
    assert "SIGSEGV" in causes[5].message and "EXIT(3)" in causes[12].message
    assert "SIGKILL" in causes[17].message
    # the pool is whole again afterwards
    assert sweep(_pid, {"k": [0, 1]}, executor=2, progress=False)["result"].size == 2


DRIVER_SCRIPT = """
import os, sys, time
sys.path[:0] = [{root!r}]
from itermap.analysis import sweep

def slow(i):  # defined here: it travels by value, the workers import no test module
    with open(os.path.join({marks!r}, f"{{i}}-{{os.getpid()}}"), "w"):
        pass
    time.sleep(60)

sweep(slow, {{"i": list(range(6))}}, executor=2, progress=False)
"""


def _alive(processes):
    import psutil

    out = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killing_the_driver_leaves_no_process_behind(tmp_path, how):
    psutil = pytest.importorskip("psutil")
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER_SCRIPT.format(root=ROOT, marks=str(marks)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    children = []
    try:
        deadline = time.monotonic() + 60
        while len(os.listdir(marks)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(os.listdir(marks)) == 2, "the two workers never started their points"
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = {int(name.split("-")[1]) for name in os.listdir(marks)}
        assert workers <= {c.pid for c in children}  # the check below is not vacuous
        os.kill(proc.pid, how)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [(p.pid, " ".join(p.cmdline())[:80]) for p in _alive(children)]
        assert left == [], f"left behind: {left}"
    finally:
        for p in _alive(children):
            p.kill()
        if proc.poll() is None:
            proc.kill()


def test_an_environment_asking_for_fewer_blas_threads_is_obeyed(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    for libs in sweep(blas_threads, {"k": [0]}, executor=1, progress=False)["libs"]:
        assert [n for api, _, n in libs if api == "blas"] == [1] * len(
            [api for api, _, _ in libs if api == "blas"])


def test_concurrent_sweeps_share_the_pool_and_survive_each_others_dead_worker():
    def dies_at_3(i):
        if i == 3:
            os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(0.05)
        return i

    results = {}

    def run(name, f, n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[name] = sweep(f, {"i": list(range(n))}, executor=2, progress=False)

    threads = [threading.Thread(target=run, args=("dies", dies_at_3, 8)),
               threading.Thread(target=run, args=("sleeps", sleeper, 6))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results["dies"]["result"].tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert [f.params for f in results["dies"].failures] == [{"i": 3}]
    assert results["sleeps"]["i"].tolist() == list(range(6))  # lost nothing to the other
    assert results["sleeps"].failures == []


def blas_threads(k):
    from threadpoolctl import threadpool_info

    from itermap._running._threads import n_threads

    return {"libs": [(d["user_api"], d["internal_api"], d["num_threads"])
                     for d in threadpool_info()], "pid": os.getpid(), "itermap": n_threads()}


@pytest.mark.parametrize("workers", [1, 2])
def test_each_worker_limits_its_blas_threads(workers):
    import joblib

    cores = joblib.cpu_count()
    res = sweep(blas_threads, {"k": list(range(2 * workers))}, executor=workers,
                progress=False)
    expected = max(1, cores // workers)
    asked = [int(v) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                              "ITERMAP_NUM_THREADS")
             if (v := os.environ.get(k, "")).isdigit() and int(v) >= 1]
    expected = min([expected, *asked])  # an environment asking for fewer is obeyed
    # itermap's own pools (sparse products, frames in threads) get the same share
    assert res["itermap"].tolist() == [min(expected, 8)] * (2 * workers)
    for libs in res["libs"]:
        blas = [n for api, _, n in libs if api == "blas"]
        assert blas, f"no BLAS library loaded in the worker: {libs}"
        assert all(n == expected for n in blas), libs
        assert workers * max(n for _, _, n in libs) <= max(cores, workers)


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
    table = sweep(plain, {"a": [1], "b": [1]}, executor="serial", progress=False).save(
        tmp_path / "t.npz")
    for damage in (_set("records", {"a": 1}), _set("failures", [3]), _set("params", None),
                   lambda m: {**m, "fields": {k: v for k, v in m["fields"].items()
                                              if k != "columns"}}):
        _rewrite_meta(table, lambda m, damage=damage: damage(dict(m)))
        with pytest.raises(ValueError, match="damaged sweep table"):
            SweepResult.load(table)
        sweep(plain, {"a": [1], "b": [1]}, executor="serial", progress=False).save(table)


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
    with pytest.raises(TypeError, match="cannot save r0.obj: values of type object"):
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
