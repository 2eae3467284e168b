"""The one codec (itermap/_interop/_codec.py): registries instead of isinstance ladders, no
import of a map class from the file layer, one plain JSON form for results.json."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import files
from itermap._interop._codec import _DECODERS, _ENCODERS

ROOT = Path(__file__).resolve().parent.parent
MAP_MODULES = {"_network", "_blocks", "_gated", "_systems", "_reservoir", "_attention_rnn",
               "_state_space", "_transformer", "_block_functions", "_activations"}


def _imports(path):
    """Every module ``path`` imports, at any depth of its code (function-level included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            out.add((node.module or "").lstrip("."))
            out.update(f"{node.module or ''}.{a.name}".lstrip(".") for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("module", ["_interop/_io.py", "_interop/_codec.py", "_core/_result.py",
                                    "_interop/_schema.py"])
def test_the_file_layer_imports_no_map_class(module):
    names = _imports(ROOT / "itermap" / module)
    assert names  # the scan reads the file
    assert not {part for n in names for part in n.split(".")} & MAP_MODULES, names


def test_every_map_kind_is_found_through_the_registry():
    names = {name for name, _ in _ENCODERS.values()}
    assert {"BlockMatrix", "IterativeMap", "RecurrentMap", "LogisticMap", "HenonMap",
            "StandardMap", "LinearMap", "AttentionRNN", "LinearStateSpace"} <= names
    assert names <= set(_DECODERS)


class _Point:
    def __init__(self, xy, label):
        self.xy, self.label = xy, label


class _LabelledPoint(_Point):
    pass


def test_a_registered_class_round_trips_and_its_subclass_saves_as_it(tmp_path):
    files.register_codec(
        _Point, "tests.test_codec:_Point",
        lambda p, w: {"xy": w.ref("xy", p.xy, "xy"), "label": p.label},
        lambda f, a: _Point(a[f["xy"]["__array__"]], f["label"]))
    try:
        xy = np.array([1.5, -2.0], dtype=np.float32)
        back = itermap.load(itermap.save(_LabelledPoint(xy, "a"), tmp_path / "p.npz"))
        assert type(back) is _Point and back.label == "a"
        assert back.xy.dtype == np.float32 and back.xy.tolist() == [1.5, -2.0]
    finally:
        del _ENCODERS[_Point], _DECODERS["tests.test_codec:_Point"]
    with pytest.raises(TypeError, match="cannot save a _LabelledPoint"):
        itermap.save(_LabelledPoint(xy, "a"), tmp_path / "q.npz")


def test_an_unknown_tag_in_a_field_is_refused():
    with pytest.raises(ValueError, match="unknown tag '__what__'"):
        files.decode_value({"a": {"__what__": 1}}, {})
    w = files.Writer()
    doc = files.encode_value({"__what__": 1}, w, "v", "v")  # such a key is written as a pair
    assert files.decode_value(doc, w.arrays) == {"__what__": 1}


values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=5)
    | st.floats(allow_nan=True) | st.complex_numbers(allow_nan=False)
    | st.builds(np.float32, st.floats(width=32)) | st.builds(np.int8, st.integers(-128, 127)),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3),
    max_leaves=12)


def _same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float | np.floating) and math.isnan(a):
        return bool(np.isnan(b))
    return a == b


@settings(max_examples=150, deadline=None)
@given(value=values)
def test_property_every_value_loads_back_as_it_was(value):
    w = files.Writer()
    doc = json.loads(json.dumps(files.encode_value(value, w, "v", "v"), allow_nan=False))
    assert _same(files.decode_value(doc, w.arrays), value)


def test_plain_json_of_a_result_is_its_fields():
    traj = itermap.iterate(itermap.systems.henon(), np.array([0.1, 0.1]), 2)
    doc = files.jsonable({"t": traj, "x": np.array([np.nan, np.inf, 1.0])})
    assert doc["x"] == [None, "inf", 1.0]
    assert doc["t"]["states"] == traj.states.tolist() and doc["t"]["times"] == [0, 1, 2]
    json.dumps(doc, allow_nan=False)


def test_report_results_json_uses_the_codecs_plain_form():
    from itermap.analysis._report import _html

    assert _html.jsonable is files.jsonable
