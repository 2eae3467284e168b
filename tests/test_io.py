import os
from dataclasses import dataclass

import numpy as np
import pytest

import itermap
from itermap import BlockMatrix, IterativeMap, iterate, load, save


def test_trajectory_round_trip(tmp_path):
    m = itermap.systems.henon()
    traj = iterate(m, np.array([[0.1, 0.0], [0.2, 0.1]]), 20, every=2)
    back = load(save(traj, tmp_path / "traj.npz"))
    np.testing.assert_array_equal(back.states, traj.states)
    np.testing.assert_array_equal(back.times, traj.times)
    assert back.sizes == traj.sizes


def test_map_round_trip_keeps_everything(tmp_path):
    rng = np.random.default_rng(0)
    bm = BlockMatrix.from_pattern([3, 4, 2], [["0", "0", "0"], ["W", "R=0.5", "0"],
                                               ["0", "Row=2", "0"]], rng=rng)
    m = IterativeMap(bm, rng.normal(size=9), ["identity", "tanh", "sigmoid"], input_block=0)
    back = load(save(m, tmp_path / "m.npz"))
    assert back.input_block == 0 and back.sizes == m.sizes
    assert [a.name for a in back.activations] == ["identity", "tanh", "sigmoid"]
    np.testing.assert_array_equal(back.bias, m.bias)
    np.testing.assert_array_equal(back.block_matrix.to_dense(), bm.to_dense())
    assert back.block_matrix.block_pattern().tolist() == bm.block_pattern().tolist()


def test_saveable_dataclass_round_trip(tmp_path):
    from itermap._running._iterate import Trajectory

    t = Trajectory(np.arange(6.0).reshape(3, 2), np.arange(3), [2])
    assert load(save(t, tmp_path / "t.npz")).states.tolist() == t.states.tolist()


def test_truncated_file_is_a_clear_error(tmp_path):
    path = save(itermap.random_rnn(20, rng=0), tmp_path / "net.npz")
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load(path)


def test_foreign_files_are_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not an itermap file"):
        load(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable itermap file"):
        load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_failed_save_leaves_no_file(tmp_path):
    @dataclass
    class NotRegistered:
        a: int

    with pytest.raises(TypeError, match="cannot save"):
        save(NotRegistered(1), tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path, monkeypatch):
    path = save(itermap.systems.henon(0.7, 0.2), tmp_path / "h.npz")

    def broken_savez(fh, **arrays):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save(itermap.systems.henon(), path)
    monkeypatch.undo()
    assert load(path).a == 0.7
    assert sorted(os.listdir(tmp_path)) == ["h.npz"]


# --------------------------------------------------------------------------- helpers
import json  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import tracemalloc  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import scipy.sparse as sp  # noqa: E402
from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from itermap import saveable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _entries(path):
    """The entries of an archive we wrote ourselves (trusted), and its metadata."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(arrays.pop("__itermap__").tobytes().decode())
    return meta, arrays


def _write(path, meta, arrays, *, compress=None, raw=None):
    """An archive with the given metadata and entries, written by hand (no checks).

    ``raw`` maps entry names to bytes written as they are; ``compress`` names
    entries stored deflated.
    """
    compress = compress or set()
    with zipfile.ZipFile(path, "w") as zf:
        if meta is not None:  # a str is written as it is, anything else as JSON
            text = meta if isinstance(meta, str) else json.dumps(meta)
            with zf.open("__itermap__.npy", "w") as fh:
                np.lib.format.write_array(fh, np.frombuffer(text.encode(), np.uint8))
        for name, a in arrays.items():
            kind = zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED
            zinfo = zipfile.ZipInfo(name + ".npy")
            zinfo.compress_type = kind
            with zf.open(zinfo, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(a))
        for name, data in (raw or {}).items():
            zf.writestr(name, data)
    return str(path)


def _sparse_net_file(tmp_path):
    m = itermap.random_rnn(40, density=0.05, rng=0)
    return m, save(m, tmp_path / "sparse.npz")


_PROBE = textwrap.dedent("""
    import sys
    import numpy as np
    import itermap
    try:
        obj = itermap.load(sys.argv[1])
    except ValueError as exc:
        print("VALUEERROR", exc)
        sys.exit(0)
    if isinstance(obj, itermap.IterativeMap):
        obj.step(np.ones(obj.dim)); obj.jacobian(np.ones(obj.dim))
        obj = obj.block_matrix
    obj.to_dense(); obj.to_sparse()
    print("LOADED")
""")


def _load_in_subprocess(path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


# --------------------------------------------------------------------------- §5 sparse
def test_shifted_sparse_indices_are_refused_not_a_segfault(tmp_path):
    # the defect as filed: load + step of a file with shifted indices segfaulted (8 of 8)
    m, path = _sparse_net_file(tmp_path)
    meta, arrays = _entries(path)
    arrays["block_0_0.indices"] = arrays["block_0_0.indices"] + 1000
    bad = _write(tmp_path / "shifted.npz", meta, arrays)
    run = _load_in_subprocess(bad)
    assert run.returncode == 0, run.stderr
    assert "VALUEERROR" in run.stdout and bad in run.stdout
    assert "block_0_0" in run.stdout and "column indices" in run.stdout


def test_block_matrix_file_with_bad_indices_is_refused_not_a_heap_corruption(tmp_path):
    bm = BlockMatrix([5, 4], {(1, 0): sp.random(4, 5, density=0.5, random_state=0,
                                                 format="csr") + sp.eye(4, 5)})
    path = save(bm, tmp_path / "bm.npz")
    meta, arrays = _entries(path)
    arrays["block_1_0.indices"] = arrays["block_1_0.indices"] * 50
    bad = _write(tmp_path / "bad_bm.npz", meta, arrays)
    run = _load_in_subprocess(bad)
    assert run.returncode == 0, run.stderr
    assert "VALUEERROR" in run.stdout and "block_1_0" in run.stdout


@pytest.mark.parametrize("defect, change, message", [
    ("negative_index", lambda a: a.update({"block_0_0.indices": a["block_0_0.indices"] - 5}),
     "column indices"),
    ("indptr_not_monotone", lambda a: a["block_0_0.indptr"].__setitem__(5, 10 ** 6),
     "non-decreasing|from 0 to nnz"),
    ("indptr_decreasing_inside", lambda a: a["block_0_0.indptr"].__setitem__(
        slice(3, 5), a["block_0_0.indptr"][3:5][::-1] + np.array([5, -5])),
     "non-decreasing"),
    ("indptr_end_not_nnz", lambda a: a["block_0_0.indptr"].__setitem__(-1, 3), "nnz"),
    ("indptr_start_not_zero", lambda a: a["block_0_0.indptr"].__setitem__(0, 1), "from 0"),
])
def test_inconsistent_sparse_structure_is_a_named_value_error(tmp_path, defect, change,
                                                               message):
    _, path = _sparse_net_file(tmp_path)
    meta, arrays = _entries(path)
    change(arrays)
    bad = _write(tmp_path / f"{defect}.npz", meta, arrays)
    with pytest.raises(ValueError, match=message) as info:
        load(bad)
    assert bad in str(info.value) and "block_0_0" in str(info.value)


def test_indptr_of_the_wrong_length_is_refused(tmp_path):
    _, path = _sparse_net_file(tmp_path)
    meta, arrays = _entries(path)
    arrays["block_0_0.indptr"] = arrays["block_0_0.indptr"][:-3]
    meta["arrays"]["block_0_0.indptr"]["shape"] = [arrays["block_0_0.indptr"].shape[0]]
    with pytest.raises(ValueError, match="indptr has 38 entries"):
        load(_write(tmp_path / "short.npz", meta, arrays))


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(part=st.sampled_from(["data", "indices", "indptr"]), pos=st.integers(0, 10 ** 6),
       value=st.integers(-(2 ** 31), 2 ** 31 - 1))
def test_fuzzed_sparse_entries_load_correctly_or_raise_value_error(tmp_path, part, pos, value):
    # any single corrupted number: a ValueError naming the file, or a map that works
    _, path = _sparse_net_file(tmp_path)
    meta, arrays = _entries(path)
    arr = arrays[f"block_0_0.{part}"]
    arr[pos % arr.shape[0]] = value
    bad = _write(tmp_path / "fuzz.npz", meta, arrays)
    try:
        m = load(bad)
    except ValueError as exc:
        assert bad in str(exc)
        return
    dense = m.block_matrix.to_dense()
    assert dense.shape == (40, 40)
    np.testing.assert_allclose(m.step(np.ones(40)), np.tanh(dense @ np.ones(40)), rtol=1e-12,
                               atol=1e-15)


# --------------------------------------------------------------------------- §5 entries
def test_entry_the_metadata_does_not_name_is_refused(tmp_path):
    _, path = _sparse_net_file(tmp_path)
    meta, arrays = _entries(path)
    arrays["payload"] = np.zeros(10)
    with pytest.raises(ValueError, match="'payload.npy' is not named by the metadata"):
        load(_write(tmp_path / "extra.npz", meta, arrays))


def test_non_npy_entry_is_refused(tmp_path):
    _, path = _sparse_net_file(tmp_path)
    meta, arrays = _entries(path)
    with pytest.raises(ValueError, match="'notes.txt' is not named"):
        load(_write(tmp_path / "extra.npz", meta, arrays, raw={"notes.txt": b"hi"}))


def test_missing_entry_is_a_named_value_error(tmp_path):
    _, path = _sparse_net_file(tmp_path)
    meta, arrays = _entries(path)
    del arrays["block_0_0.data"]
    with pytest.raises(ValueError, match="missing entry 'block_0_0.data'"):
        load(_write(tmp_path / "missing.npz", meta, arrays))


def test_zip_bomb_entry_is_refused_before_it_is_read(tmp_path):
    # the defect as filed: a 2.3 MB file made load reach 2.4 GB. Here 400 MB of zeros,
    # deflated to well under 1 MB, stand in a file whose metadata describes 8 bytes.
    m = itermap.systems.linear([[0.5]])
    meta, arrays = _entries(save(m, tmp_path / "lin.npz"))
    arrays["A"] = np.zeros((50_000_000,))
    meta["arrays"]["A"]["shape"] = [50_000_000]  # even a lying table does not help
    bomb = _write(tmp_path / "bomb.npz", meta, arrays, compress={"A"})
    assert os.path.getsize(bomb) < 2_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="expands from") as info:
            load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "'A.npy'" in str(info.value) and bomb in str(info.value)
    assert peak < 20_000_000


def test_entry_larger_than_its_metadata_is_refused_before_it_is_read(tmp_path, monkeypatch):
    m = itermap.systems.linear([[0.5, 0.0], [0.0, 0.5]])
    meta, arrays = _entries(save(m, tmp_path / "lin.npz"))
    arrays["A"] = np.zeros((300, 300))  # stored, not compressed: only the table can tell
    bad = _write(tmp_path / "big.npz", meta, arrays)
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, name, *a, **k: opened.append(getattr(name, "filename",
                                                                          name))
                        or real_open(self, name, *a, **k))
    with pytest.raises(ValueError, match=r"more than the float64 array of shape \(2, 2\)"):
        load(bad)
    assert "A.npy" not in opened  # refused from the zip header alone


def test_entry_whose_header_disagrees_with_the_metadata_is_refused(tmp_path):
    m = itermap.systems.linear([[0.5, 0.0], [0.0, 0.5]])
    meta, arrays = _entries(save(m, tmp_path / "lin.npz"))
    arrays["A"] = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="but the metadata describes float64"):
        load(_write(tmp_path / "dtype.npz", meta, arrays))


def test_object_array_entry_is_refused(tmp_path):
    m = itermap.systems.linear([[0.5]])
    meta, arrays = _entries(save(m, tmp_path / "lin.npz"))
    meta["arrays"]["A"] = {"dtype": "|O", "shape": [1]}
    with pytest.raises(ValueError, match="never writes"):
        load(_write(tmp_path / "obj.npz", meta, arrays))


def test_duplicate_entry_is_refused(tmp_path):
    m = itermap.systems.linear([[0.5]])
    meta, arrays = _entries(save(m, tmp_path / "lin.npz"))
    path = _write(tmp_path / "dup.npz", meta, arrays)
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "a") as zf:
            with zf.open("A.npy", "w") as fh:
                np.lib.format.write_array(fh, np.array([[9.0]]))
    with pytest.raises(ValueError, match="more than once"):
        load(path)


# --------------------------------------------------------------------------- §5 metadata
def _v1(type_name, fields):
    # format 1 (no array table), which the old reader also read
    return {"format": "itermap", "format_version": 1, "type": type_name, "fields": fields}


@pytest.mark.parametrize("defect, meta", [
    ("metadata_a_list", [1, 2]),
    ("metadata_null", None),
    ("metadata_a_string", "itermap"),
    ("metadata_a_number", 3),
    ("version_a_string", {"format": "itermap", "format_version": "1", "type": "HenonMap",
                          "fields": {"a": 1.4, "b": 0.3}}),
    ("version_a_bool", {"format": "itermap", "format_version": True, "type": "HenonMap",
                        "fields": {"a": 1.4, "b": 0.3}}),
    ("version_null", {"format": "itermap", "format_version": None, "type": "HenonMap",
                      "fields": {"a": 1.4, "b": 0.3}}),
    ("type_a_number", _v1(3, {})),
    ("type_a_list", _v1(["HenonMap"], {})),
    ("fields_a_list", _v1("HenonMap", [])),
    ("fields_null", _v1("HenonMap", None)),
    ("henon_a_a_list", _v1("HenonMap", {"a": [1], "b": 0.3})),
    ("henon_a_a_string", _v1("HenonMap", {"a": "x", "b": 0.3})),
    ("blocks_a_dict", _v1("BlockMatrix", {"sizes": [2], "blocks": {"a": 1}})),
    ("block_entry_short", _v1("BlockMatrix", {"sizes": [2], "blocks": [[0, 0]]})),
    ("sizes_a_string", _v1("BlockMatrix", {"sizes": "ab", "blocks": []})),
    ("activation_a_number", _v1("IterativeMap", {"weights": {"sizes": [1], "blocks": []},
                                                 "activation": 3, "input_block": None,
                                                 "bias": None})),
    ("input_block_a_string", _v1("IterativeMap", {"weights": {"sizes": [1], "blocks": []},
                                                  "activation": ["tanh"], "input_block": "0",
                                                  "bias": None})),
    ("array_ref_a_number", _v1("LinearMap", {"A": {"__array__": 7}})),
    ("array_ref_a_list", _v1("LinearMap", {"A": [1, 2]})),
    ("trajectory_fields_wrong", _v1("itermap._running._iterate:Trajectory",
                                    {"states": {"__float__": "1e400"}, "times": [],
                                     "sizes": []})),
    ("unknown_field", _v1("itermap._running._iterate:Trajectory", {"states": 1, "times": 2,
                                                          "sizes": 3, "extra": 4})),
    ("arrays_a_list", {"format": "itermap", "format_version": 2, "type": "HenonMap",
                       "fields": {"a": 1.4, "b": 0.3}, "arrays": []}),
    ("array_shape_a_string", {"format": "itermap", "format_version": 2, "type": "LinearMap",
                              "fields": {"A": {"__array__": "A"}},
                              "arrays": {"A": {"dtype": "<f8", "shape": "2"}}}),
    ("array_dtype_garbage", {"format": "itermap", "format_version": 2, "type": "LinearMap",
                             "fields": {"A": {"__array__": "A"}},
                             "arrays": {"A": {"dtype": "not a dtype", "shape": [1, 1]}}}),
])
def test_metadata_of_the_wrong_json_type_is_a_value_error_naming_the_file(tmp_path, defect,
                                                                          meta):
    arrays = {"A": np.ones((1, 1))} if defect.startswith("array_dtype") else {}
    path = _write(tmp_path / f"{defect}.npz", json.dumps(meta), arrays)
    with pytest.raises(ValueError) as info:
        load(path)
    assert path in str(info.value)


def test_metadata_that_is_not_json_is_a_value_error(tmp_path):
    path = _write(tmp_path / "nojson.npz", "{not json", {})
    with pytest.raises(ValueError, match="corrupt itermap metadata"):
        load(path)


def test_newer_format_is_refused_with_its_version(tmp_path):
    path = _write(tmp_path / "new.npz", {"format": "itermap", "format_version": 99,
                                         "type": "HenonMap", "fields": {}, "arrays": {}}, {})
    with pytest.raises(ValueError, match="format 99"):
        load(path)


def test_format_1_files_still_load(tmp_path):
    meta = {"format": "itermap", "format_version": 1, "itermap_version": "0.1.0",
            "type": "IterativeMap",
            "fields": {"weights": {"sizes": [2], "blocks": [[0, 0, {"__array__": "block_0_0"}]]},
                       "activation": ["tanh"], "input_block": None, "bias": None}}
    W = np.array([[0.5, 0.1], [0.0, 0.3]])
    m = load(_write(tmp_path / "v1.npz", meta, {"block_0_0": W}))
    assert m == IterativeMap(W)


def test_untrusted_type_name_imports_nothing(tmp_path):
    path = _write(tmp_path / "evil.npz", {"format": "itermap", "format_version": 2,
                                          "type": "os:system", "fields": {}, "arrays": {}}, {})
    with pytest.raises(ValueError, match="unknown saved type"):
        load(path)


# --------------------------------------------------------------------------- §5 saveable
@saveable
@dataclass
class _Record:
    payload: object
    note: str = ""


_keys = st.one_of(st.text(max_size=5), st.integers(-10, 10), st.none(), st.booleans(),
                  st.tuples(st.integers(0, 3), st.text(max_size=2)))
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.builds(np.float32, st.floats(width=32)), st.builds(np.int8, st.integers(-128, 127)),
    st.builds(np.float64, st.floats()), st.builds(np.bool_, st.booleans()),
    st.builds(np.uint64, st.integers(0, 2 ** 64 - 1)),
    st.builds(lambda n: np.arange(n, dtype=np.int16), st.integers(0, 4)),
)
_values = st.recursive(_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner),
    st.dictionaries(_keys, inner, max_size=3)), max_leaves=12)


def _exactly(a, b):
    if isinstance(a, np.ndarray):
        return (type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, np.generic):
        return type(a) is type(b) and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return type(b) is float and (a == b or (a != a and b != b))
    if isinstance(a, complex):
        return type(b) is complex and a == b
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_exactly, a, b))
    if isinstance(a, dict):
        return (type(b) is dict and [type(k) for k in a] == [type(k) for k in b]
                and list(a) == list(b) and all(_exactly(a[k], b[k]) for k in a))
    return type(a) is type(b) and a == b


@hsettings(max_examples=80, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_values)
def test_saveable_fields_round_trip_exactly(tmp_path, value):
    # tuples stayed lists, int keys became strings, NumPy scalars became Python numbers
    back = load(save(_Record(value, "n"), tmp_path / "r.npz"))
    assert _exactly(value, back.payload), (value, back.payload)


def test_tuples_int_keys_and_numpy_scalars_round_trip(tmp_path):
    value = {1: (np.float32(0.1), np.int64(3)), (2, "a"): [1, 2.5], "__float__": "x",
             None: np.bool_(True)}
    back = load(save(_Record(value), tmp_path / "r.npz")).payload
    assert _exactly(value, back)
    assert type(back[1]) is tuple and type(back[1][0]) is np.float32


@pytest.mark.parametrize("bad", [{1, 2}, object(), [np.array([object()])],
                                 {frozenset(): 1}, np.datetime64("2026-01-01", "D").astype("O"),
                                 np.zeros(2, dtype=[("a", "f8")])])
def test_values_that_would_not_round_trip_are_refused_before_writing(tmp_path, bad):
    with pytest.raises(TypeError, match="cannot save field 'payload'"):
        save(_Record(bad), tmp_path / "r.npz")
    assert os.listdir(tmp_path) == []


def test_unregistered_activation_is_refused_before_writing(tmp_path):
    cube = itermap.Activation("cube", lambda z, xp: z ** 3, lambda z, xp: 3 * z ** 2)
    with pytest.raises(TypeError, match="activation 'cube'"):
        save(IterativeMap(np.eye(2), activation=cube), tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- §5 writing
def test_save_into_a_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "no" / "such" / "net.npz"
    with pytest.raises(FileNotFoundError) as info:
        save(itermap.random_rnn(3, rng=0), target)
    assert str(target) in str(info.value) and ".itermap-" not in str(info.value)


@pytest.mark.parametrize("defect, path, message", [
    ("empty_path", "", "path is empty"),
    ("existing_folder", ".", "is a folder"),
    ("trailing_slash", "sub/", "is a folder"),
    ("other_suffix", "net.pkl", "must end in .npz"),
    ("no_suffix", "net", "must end in .npz"),
    ("double_suffix", "net.npz.bak", "must end in .npz"),
])
def test_save_refuses_paths_that_are_not_an_npz_file(tmp_path, monkeypatch, defect, path,
                                                     message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        save(itermap.random_rnn(3, rng=0), path)
    assert os.listdir(tmp_path) == []


def test_save_writes_exactly_the_path_given(tmp_path):
    path = save(itermap.random_rnn(3, rng=0), tmp_path / "net.npz")
    assert path == str(tmp_path / "net.npz") and os.listdir(tmp_path) == ["net.npz"]


def test_save_refuses_a_non_path(tmp_path):
    with pytest.raises(TypeError, match="path must be a str"):
        save(itermap.random_rnn(3, rng=0), 3)


def test_failed_save_removes_its_temporary(tmp_path, monkeypatch):
    def broken_savez(fh, **arrays):
        fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        save(itermap.random_rnn(3, rng=0), tmp_path / "net.npz")
    assert os.listdir(tmp_path) == []


_KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import itermap

    def dying_savez(fh, **arrays):
        fh.write(b"half an archive")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    np.savez = dying_savez
    itermap.save(itermap.random_rnn(3, rng=0), sys.argv[1])
""")


def test_temporary_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(tmp_path / "a.npz")],
                         cwd=REPO, env=env, capture_output=True, timeout=120)
    assert run.returncode == -signal.SIGKILL
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].endswith(".npz.tmp")
    save(itermap.random_rnn(3, rng=0), tmp_path / "b.npz")
    assert os.listdir(tmp_path) == ["b.npz"]


def test_temporary_of_a_live_writer_is_kept(tmp_path):
    from itermap._interop import _io

    live = tmp_path / f".itermap-{_io._host()}-{os.getppid()}-abc.npz.tmp"
    live.write_bytes(b"in progress")
    save(itermap.random_rnn(3, rng=0), tmp_path / "b.npz")
    assert live.exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_saved_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save(itermap.random_rnn(3, rng=0), tmp_path / "net.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.basename(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save(itermap.random_rnn(3, rng=0), tmp_path / "net.npz")
    tmp_name = next(name for kind, name in events if kind == "replace")
    assert events.index(("fsync", tmp_name)) < events.index(("replace", tmp_name))


# --------------------------------------------------------------------------- §4 of 17
def _maps_for_equality():
    rng = np.random.default_rng(0)
    bm = BlockMatrix.from_pattern([3, 4, 2], [["0", "0", "0"], ["W", "R=0.5", "0"],
                                               ["0", "Row=2", "0"]], rng=rng)
    return {
        "dense": itermap.random_rnn(8, rng=1),
        "sparse": itermap.random_rnn(30, density=0.05, rng=1),
        "blocks": IterativeMap(bm, rng.normal(size=9), ["identity", "tanh", "sigmoid"],
                               input_block=0),
        "mlp": IterativeMap.from_mlp([rng.normal(size=(3, 2)), rng.normal(size=(1, 3))]),
    }


@pytest.mark.parametrize("kind", ["dense", "sparse", "blocks", "mlp"])
def test_map_equals_its_own_load_of_save(tmp_path, kind):
    m = _maps_for_equality()[kind]
    assert load(save(m, tmp_path / "m.npz")) == m


def test_maps_with_other_content_differ():
    m = _maps_for_equality()["blocks"]
    bm, bias = m.block_matrix, m.bias
    blocks = bm.blocks
    changed = dict(blocks)
    changed[(1, 0)] = blocks[(1, 0)] * (1 + 1e-15)
    assert IterativeMap(bm, bias, list(m.activations), input_block=0) == m
    assert IterativeMap(BlockMatrix(bm.sizes, changed), bias, list(m.activations),
                        input_block=0) != m
    assert IterativeMap(bm, bias + 1e-12, list(m.activations), input_block=0) != m
    assert IterativeMap(bm, None, list(m.activations), input_block=0) != m
    assert IterativeMap(bm, bias, ["identity", "tanh", "relu"], input_block=0) != m
    assert IterativeMap(bm, bias, list(m.activations), input_block=None) != m
    sparse_copy = {k: sp.csr_matrix(b) if not sp.issparse(b) else b for k, b in blocks.items()}
    assert IterativeMap(BlockMatrix(bm.sizes, sparse_copy), bias, list(m.activations),
                        input_block=0) != m  # storage differs, so steps may round apart
    assert m != "a map"


def test_maps_are_not_hashable_by_content():
    with pytest.raises(TypeError, match="unhashable"):
        hash(itermap.random_rnn(3, rng=0))


def test_map_repr_lists_activations_per_block_in_order():
    mlp = IterativeMap.from_mlp([np.ones((3, 2)), np.ones((2, 3)), np.ones((1, 2))],
                                activation="relu", output_activation="sigmoid")
    assert "activation=['identity', 'relu', 'relu', 'sigmoid']" in repr(mlp)
    assert "activation='tanh'" in repr(itermap.random_rnn(3, rng=0))


def test_trajectory_repr_is_compact():
    traj = iterate(itermap.random_rnn(50, rng=0), np.full(50, 0.1), 400)
    text = repr(traj)
    assert text == ("Trajectory(states=array(shape=(401, 50), dtype=float64), "
                    "times=array(shape=(401,), dtype=int64), sizes=[50])")


def test_result_reprs_are_compact():
    from itermap.analysis import impulse_response, lyapunov_scan, orbit_diagram

    mlp = IterativeMap.from_mlp([np.ones((30, 3)), np.ones((2, 30))])
    values = np.linspace(3.4, 3.9, 300)
    results = {
        "ImpulseResponse": impulse_response(mlp, mlp.zeros(), 40, inputs=np.ones(3)),
        "OrbitDiagram": orbit_diagram(itermap.systems.logistic, values, np.array([0.3]),
                                      transient=10, keep=50),
        "LyapunovScan": lyapunov_scan(itermap.systems.logistic, values, np.array([0.3]), 50,
                                      transient=10),
    }
    for name, res in results.items():
        text = repr(res)
        assert text.startswith(name + "(") and len(text) < 400, text
        assert "array(shape=" in text and "..." not in text
    assert "states=array(shape=(300, 50, 1), dtype=float64)" in repr(results["OrbitDiagram"])
    assert "transient=10" in repr(results["LyapunovScan"])


def test_a_class_with_its_own_repr_keeps_it():
    @saveable
    @dataclass
    class Mine:
        x: object

        def __repr__(self):
            return "mine"

    assert repr(Mine(np.zeros(3))) == "mine"


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_apply_umask_opens_private_temporaries_to_the_umask(tmp_path, umask):
    import tempfile

    from itermap.files import apply_umask

    folder = tempfile.mkdtemp(dir=tmp_path)
    fd, file = tempfile.mkstemp(dir=tmp_path)
    os.close(fd)
    old = os.umask(umask)
    try:
        apply_umask(folder)
        apply_umask(file)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o777 & ~umask
    assert stat.S_IMODE(os.stat(file).st_mode) == 0o666 & ~umask


def test_load_refuses_a_non_path_and_a_folder(tmp_path):
    with pytest.raises(TypeError, match="path must be a str"):
        load(3)
    with pytest.raises(ValueError, match="is a folder"):
        load(tmp_path)


def test_a_one_layer_recurrent_map_loads_as_its_own_class(tmp_path):
    # load gave back a plain RecurrentMap for an LSTMMap, GRUMap or ElmanRNNMap
    rng = np.random.default_rng(0)
    for cls, rows in ((itermap.ElmanRNNMap, 3), (itermap.GRUMap, 9), (itermap.LSTMMap, 12)):
        m = cls(rng.normal(size=(rows, 2)), rng.normal(size=(rows, 3)))
        back = itermap.load(itermap.save(m, tmp_path / f"{cls.__name__}.npz"))
        assert type(back) is cls
        x = rng.normal(size=(2, m.dim))
        u = rng.normal(size=(2, 2))
        np.testing.assert_array_equal(back.step(x, u), m.step(x, u))


def test_a_recurrent_class_that_disagrees_with_its_layer_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    path = itermap.save(itermap.GRUMap(rng.normal(size=(9, 2)), rng.normal(size=(9, 3))),
                        tmp_path / "gru.npz")
    meta, arrays = _entries(path)
    for wrong in ("LSTMMap", "Map", "os.system"):
        meta["fields"]["class"] = wrong
        bad = _write(tmp_path / f"{wrong}.npz", meta, arrays)
        with pytest.raises(ValueError, match="class"):
            itermap.load(bad)
