"""Saved results are checked field by field on load (issue 23, item 5).

Every saveable result declares one spec per field (``_schema``, itermap/_interop/_schema.py); a
file whose field holds another type, dtype or a shape that disagrees with another field
is refused with a ValueError naming the file and the field. The files here are crafted
by hand from real results: the expected verdicts come from the field's documented type,
not from the code under test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import zipfile
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import itermap
import itermap.analysis as analysis
from itermap._interop._io import _REGISTRY
from itermap.systems import henon, logistic

HENON = henon()


def _results() -> dict:
    """One real instance of every saveable result of itermap (small and quick)."""
    from tests import fuzz_api as F

    x = np.array([0.1, 0.1])
    mlp, xs, ys = F._tiny_task()
    state = os.path.join(tempfile.mkdtemp(prefix="itermap-fields-"), "state.npz")
    history = itermap.train(mlp, xs, ys, epochs=2, batch_size=4, rng=0, progress=False,
                            save_state=state)[1]
    return {
        "TrainState": itermap.load(state),
        "Trajectory": itermap.iterate(HENON, x, 5),
        "NewtonTrajectory": itermap.iterate(F.RNN, np.full(5, 0.1), 8, method="newton"),
        "TrainHistory": history,
        "Continuation": F._continuation(),
        "OrbitDiagram": F._orbits(),
        "LyapunovScan": F._scan(),
        "FiniteTimeExponents": analysis.finite_time_exponents(HENON, x, 5, 20, transient=10),
        "NewtonLyapunovScan": analysis.newton_lyapunov_scan(
            [0.5, 1.5], n=6, steps=16, trials=1, lyapunov_steps=50, transient=10, rng=0),
        "Basins": F._basins(),
        "CovariantVectors": analysis.covariant_lyapunov_vectors(HENON, x, 10, transient=5),
        "LyapunovSpectrum": F._spectrum(),
        "FixedPoints": F._fixed_points(),
        "ImpulseResponse": F._impulse(),
        "MemoryCapacity": analysis.memory_capacity(
            itermap.IterativeMap.from_rnn(np.eye(3) * 0.5, np.ones((3, 1))), max_delay=3,
            steps=200, rng=0),
        "ParameterComparison": analysis.ParameterComparison(
            names=["mlp", "sparse"], params=np.array([100.0, 90.0]), hidden=np.array([8, 9]),
            accuracy=np.array([[0.9, 0.8], [0.7, 0.75]]), seconds=np.ones((2, 2)),
            seeds=[0, 1], epochs=1, steps=3),
        "FlipFlopAnalysis": analysis.FlipFlopAnalysis(
            points=np.zeros((2, 3)), n_unstable=np.array([0, 1]), stable=np.array([True, False]),
            patterns=np.ones((2, 1)), n_patterns=1, bit_accuracy=1.0,
            hidden=np.zeros((5, 2, 1))),
        "EdgeOfChaosScan": analysis.edge_of_chaos_scan([0.5, 3.0], [1.0], n=20, density=0.3,
                                                       seeds=2, steps=60, transient=20, rng=0),
        "SequenceComparison": analysis.compare_sequence_models(
            units=6, steps=4, max_delay=3, mc_steps=200, lyapunov_steps=30, rng=0),
        # round 21: the population results save too
        "SpectraTable": analysis.spectra_table(
            [HENON, itermap.systems.linear(np.diag([0.5, 0.25]))], x0=x, steps=20,
            executor="serial", seed=0, progress=False),
        "WeightStatistics": analysis.weight_statistics(
            itermap.random_rnn(12, gain=1.5, density=0.3, rng=0)),
        "GraphProperties": analysis.graph_properties(
            itermap.random_rnn(12, gain=1.5, density=0.3, rng=0)),
        "SpectrumEmbedding": analysis.spectrum_embedding(
            np.random.default_rng(0).normal(size=(12, 3)), np.linspace(0, 1, 12), latent=1,
            rng=0),
    }


@pytest.fixture(scope="module")
def results():
    return _results()


def _read(path):
    """The metadata and entries of a file we wrote ourselves (trusted)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(arrays.pop("__itermap__").tobytes().decode())
    return meta, arrays


def _write(path, meta, arrays):
    """An archive with this metadata and entries, the array table rewritten to match."""
    meta = dict(meta, arrays={k: {"dtype": a.dtype.str, "shape": list(a.shape)}
                              for k, a in arrays.items()})
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("__itermap__.npy", "w") as fh:
            text = json.dumps(meta).encode()
            np.lib.format.write_array(fh, np.frombuffer(text, np.uint8))
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, a)
    return str(path)


def _array_fields(obj):
    """Fields of ``obj`` that hold a NumPy array (not None)."""
    return [f.name for f in dataclasses.fields(obj) if isinstance(getattr(obj, f.name),
                                                                   np.ndarray)]


def _refused(path, field):
    with pytest.raises(ValueError) as err:
        itermap.load(path)
    msg = str(err.value)
    assert str(path) in msg and repr(field) in msg, msg


def test_every_saveable_result_declares_a_schema_of_its_fields(results):
    ours = {name.split(":")[1]: cls for name, cls in _REGISTRY.items()
            if name.startswith("itermap.")}
    assert set(ours) == set(results), "add the new result to _results()"
    for name, cls in ours.items():
        assert sorted(cls._schema) == sorted(f.name for f in dataclasses.fields(cls)), name


def test_real_results_pass_their_own_schema_and_round_trip(results, tmp_path):
    for name, obj in results.items():
        back = itermap.load(itermap.save(obj, tmp_path / f"{name}.npz"))
        assert type(back) is type(obj)
        for f in dataclasses.fields(obj):
            a, b = getattr(obj, f.name), getattr(back, f.name)
            if isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), f.name


@pytest.mark.parametrize("value", ["abc", 3, 1.5, [1.0, 2.0], {"k": 1}, True])
def test_a_plain_json_value_in_an_array_field_is_refused_naming_the_field(results, tmp_path,
                                                                           value):
    # today's main loaded these: states="abc" came back as a Trajectory of a string
    for name, obj in results.items():
        path = itermap.save(obj, tmp_path / f"{name}.npz")
        meta, arrays = _read(path)
        for field in _array_fields(obj):
            bad = json.loads(json.dumps(meta))
            bad["fields"][field] = value
            _refused(_write(tmp_path / "bad.npz", bad, arrays), field)


@pytest.mark.parametrize("kind", ["complex", "unicode", "datetime", "bytes"])
def test_complex_unicode_and_datetime_members_are_refused_naming_the_field(results, tmp_path,
                                                                           kind):
    for name, obj in results.items():
        path = itermap.save(obj, tmp_path / f"{name}.npz")
        meta, arrays = _read(path)
        for field in _array_fields(obj):
            ref = meta["fields"][field]["__array__"]
            a = arrays[ref]
            if kind == "complex":
                if a.dtype.kind == "c" or field in ("eigenvalues", "slow_eigenvalues"):
                    continue  # eigenvalues are complex by documentation
                bad = a.astype(complex) + 1j
            else:
                bad = {"unicode": np.full(a.shape, "x"), "bytes": np.full(a.shape, b"x"),
                       "datetime": np.full(a.shape, np.datetime64("2026-01-01"))}[kind]
            _refused(_write(tmp_path / "bad.npz", meta, {**arrays, ref: bad}), field)


@pytest.mark.parametrize("name, field, grow", [
    ("Trajectory", "times", 1), ("Trajectory", "times", -1),
    ("LyapunovSpectrum", "history_steps", 1), ("LyapunovSpectrum", "stderr", 1),
    ("FixedPoints", "residuals", 1), ("FixedPoints", "stable", -1),
    ("TrainHistory", "accuracy", 1), ("CovariantVectors", "times", 1),
    ("MemoryCapacity", "delays", -1), ("Basins", "periods", 1),
])
def test_disagreeing_shapes_are_refused_naming_the_field(results, tmp_path, name, field, grow):
    # states (12, 3) beside times (11,) loaded on today's main
    path = itermap.save(results[name], tmp_path / f"{name}.npz")
    meta, arrays = _read(path)
    ref = meta["fields"][field]["__array__"]
    a = arrays[ref]
    bad = np.concatenate([a, a[:1]]) if grow > 0 else a[:-1]
    _refused(_write(tmp_path / "bad.npz", meta, {**arrays, ref: bad}), field)


def test_a_trajectory_of_the_wrong_rank_or_kind_is_refused(tmp_path):
    traj = itermap.iterate(HENON, np.array([0.1, 0.1]), 5)
    meta, arrays = _read(itermap.save(traj, tmp_path / "t.npz"))
    for field, bad in (("states", np.zeros(6)), ("times", np.zeros(6)),
                       ("times", np.zeros((6, 1), dtype=np.int64))):
        ref = meta["fields"][field]["__array__"]
        _refused(_write(tmp_path / "bad.npz", meta, {**arrays, ref: bad}), field)
    for field, bad in (("sizes", "2"), ("sizes", [2.5]), ("sizes", [True]), ("sizes", None)):
        m = json.loads(json.dumps(meta))
        m["fields"][field] = bad
        _refused(_write(tmp_path / "bad.npz", m, arrays), field)


def test_plain_fields_of_the_wrong_type_are_refused(results, tmp_path):
    spec = results["LyapunovSpectrum"]
    meta, arrays = _read(itermap.save(spec, tmp_path / "s.npz"))
    for field, bad in (("steps", "50"), ("steps", 1.5), ("steps", True), ("batched", 1),
                       ("kaplan_yorke_dimension", "nan"), ("dim", None),
                       ("entropy_rate", {"__complex__": [1.0, 2.0]})):
        m = json.loads(json.dumps(meta))
        m["fields"][field] = bad
        _refused(_write(tmp_path / "bad.npz", m, arrays), field)


def test_tuple_fields_hold_tuples_of_their_items(results, tmp_path):
    # WeightStatistics.keys is a tuple of (int, int) blocks, names a tuple of str
    meta, arrays = _read(itermap.save(results["WeightStatistics"], tmp_path / "w.npz"))
    for field, bad in (("keys", [[0, 0]]), ("keys", {"__tuple__": [[0, 0]]}),
                       ("keys", {"__tuple__": [{"__tuple__": ["0", 0]}]}),
                       ("names", {"__tuple__": [1, 2]}), ("names", ["nnz"])):
        m = json.loads(json.dumps(meta))
        m["fields"][field] = bad
        _refused(_write(tmp_path / "bad.npz", m, arrays), field)
    back = itermap.load(tmp_path / "w.npz")
    assert back.keys == results["WeightStatistics"].keys and type(back.names) is tuple


def test_deeply_nested_json_metadata_is_a_value_error_not_a_recursion_error(tmp_path):
    traj = itermap.iterate(HENON, np.array([0.1, 0.1]), 2)
    meta, arrays = _read(itermap.save(traj, tmp_path / "t.npz"))
    text = json.dumps(meta)
    depth = 200_000
    nested = text.replace('"sizes": [2]', '"sizes": ' + "[" * depth + "]" * depth)
    path = tmp_path / "deep.npz"
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("__itermap__.npy", "w") as fh:
            np.lib.format.write_array(fh, np.frombuffer(nested.encode(), np.uint8))
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w") as fh:
                np.lib.format.write_array(fh, a)
    with pytest.raises(ValueError, match="deep.npz"):
        itermap.load(path)


def test_nested_lists_in_a_list_field_are_refused_at_any_depth(
        tmp_path):
    # deep enough for json to parse; sizes is a list of ints, not of lists
    traj = itermap.iterate(HENON, np.array([0.1, 0.1]), 2)
    meta, arrays = _read(itermap.save(traj, tmp_path / "t.npz"))
    for depth in (500, 900, 2000):
        m = json.loads(json.dumps(meta))
        text = json.dumps(m).replace('"sizes": [2]', '"sizes": ' + "[" * depth + "]" * depth)
        path = tmp_path / f"deep{depth}.npz"
        with zipfile.ZipFile(path, "w") as zf:
            with zf.open("__itermap__.npy", "w") as fh:
                np.lib.format.write_array(fh, np.frombuffer(text.encode(), np.uint8))
            for name, a in arrays.items():
                with zf.open(name + ".npy", "w") as fh:
                    np.lib.format.write_array(fh, a)
        with pytest.raises(ValueError, match=f"deep{depth}.npz"):
            itermap.load(path)


def test_deeply_nested_toml_spec_is_a_value_error_not_a_recursion_error(tmp_path):
    from itermap.analysis._report._spec import load_spec

    depth = 100_000
    path = tmp_path / "deep.toml"
    path.write_text('title = "x"\nnested = ' + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ValueError, match="deep.toml"):
        load_spec(path)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-5, 5)
                    | st.text(max_size=3),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=6)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["states", "times", "sizes"]), value=JSON)
def test_any_json_in_a_trajectory_field_loads_a_valid_trajectory_or_is_a_value_error(
        tmp_path, field, value):
    traj = itermap.iterate(HENON, np.array([0.1, 0.1]), 3)
    meta, arrays = _read(itermap.save(traj, tmp_path / "t.npz"))
    meta["fields"][field] = value
    path = _write(tmp_path / "h.npz", meta, arrays)
    try:
        back = itermap.load(path)
    except ValueError as err:
        assert "h.npz" in str(err)
        return
    # what loads is a trajectory that works: float states, int times that agree with them
    assert back.states.dtype.kind == "f" and back.times.dtype.kind in "iu"
    assert back.states.shape[0] == back.times.shape[0]
    assert all(isinstance(s, int) for s in back.sizes)
    assert back.final.shape == back.states.shape[1:]


def test_a_schema_that_misses_a_field_is_refused_at_class_definition():
    with pytest.raises(TypeError, match="one spec per field"):
        @itermap.saveable
        @dataclasses.dataclass
        class Half:
            _schema: ClassVar[dict] = {"a": "float[N]"}
            a: object
            b: object

    with pytest.raises(TypeError, match="not a field spec"):
        @itermap.saveable
        @dataclasses.dataclass
        class Wrong:
            _schema: ClassVar[dict] = {"a": "float(N)"}
            a: object


def test_a_user_subclass_of_a_result_keeps_the_parent_schema_for_its_fields(tmp_path):
    @itermap.saveable
    @dataclasses.dataclass
    class Tagged(itermap.Trajectory):
        tag: str = ""

    traj = itermap.iterate(HENON, np.array([0.1, 0.1]), 3)
    obj = Tagged(traj.states, traj.times, traj.sizes, tag="run 1")
    back = itermap.load(itermap.save(obj, tmp_path / "t.npz"))
    assert back.tag == "run 1" and np.array_equal(back.states, traj.states)
    meta, arrays = _read(tmp_path / "t.npz")
    ref = meta["fields"]["times"]["__array__"]
    _refused(_write(tmp_path / "bad.npz", meta, {**arrays, ref: arrays[ref][:-1]}), "times")


def test_user_results_without_a_schema_still_round_trip(tmp_path):
    @itermap.saveable
    @dataclasses.dataclass
    class Run:
        states: object
        gain: float

    back = itermap.load(itermap.save(Run(np.arange(3.0), 1.5), tmp_path / "r.npz"))
    assert np.array_equal(back.states, np.arange(3.0)) and back.gain == 1.5


def test_logistic_scan_file_with_swapped_axes_is_refused(tmp_path):
    scan = analysis.lyapunov_scan(logistic, [3.5, 3.7, 3.9], np.array([0.3]), 30, transient=5)
    meta, arrays = _read(itermap.save(scan, tmp_path / "s.npz"))
    ref = meta["fields"]["exponents"]["__array__"]
    _refused(_write(tmp_path / "bad.npz", meta, {**arrays, ref: arrays[ref].T.copy()}),
             "exponents")
    assert os.path.exists(tmp_path / "s.npz")


def test_a_deeply_nested_results_json_is_not_a_report_not_a_recursion_error(tmp_path):
    from itermap.analysis._report._run import _looks_like_report

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("[" * 200_000 + "]" * 200_000)
    assert _looks_like_report(out) is False
