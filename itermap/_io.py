"""Saving and loading maps, trajectories and analysis results.

One file per object: a NumPy ``.npz`` archive whose entry ``__itermap__``
holds JSON metadata (format version, library version, object type, its plain
fields, and the dtype and shape of every array entry) next to the arrays.
Files are written atomically.

A file is untrusted input: :func:`load` reads the metadata first, checks
every archive entry against it (names, sizes, dtypes and shapes) before
reading the entry, and validates every sparse structure before SciPy sees it.
"""

from __future__ import annotations

import dataclasses
import errno
import importlib
import inspect
import json
import math
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import zipfile
import zlib
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from ._backend import is_sparse, to_numpy
from ._moved import current_module
from ._schema import check_fields, check_schema

__all__ = ["save", "load", "saveable", "write_npz_atomic", "apply_umask", "FORMAT_VERSION"]

#: Version 2 records each array entry's dtype and shape, and tags tuples,
#: non-string dict keys and NumPy scalars; version 1 files still load.
FORMAT_VERSION = 2
_META = "__itermap__"
_REGISTRY: dict[str, type] = {}
_TRUSTED_PREFIX = "itermap."
# an .npy header is at most 65535 bytes plus its 12-byte preamble
_NPY_HEADER_MAX = 65535 + 12
_MAX_META_BYTES = 64 * 2 ** 20
_READ_CHUNK = 2 ** 18  # as np.load: chunks that stay in cache
# np.savez stores entries uncompressed; a compressed entry may expand at most this much
_MAX_EXPANSION = 100
# dtype kinds an entry may hold: booleans, numbers, strings, dates (never objects)
_ARRAY_KINDS = frozenset("biufcSUMm")
_TAGS = ("__array__", "__sparse__", "__scalar__", "__float__", "__complex__", "__tuple__",
         "__dict__")


def _type_name(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


# ----------------------------------------------------------------------------- saveable
T = TypeVar("T")


def saveable(cls: type[T]) -> type[T]:
    """Class decorator: make a dataclass of arrays and plain values saveable.

    Fields may hold arrays (NumPy or CuPy, saved on the host; sparse
    matrices), NumPy scalars, Python numbers, strings, None, and lists,
    tuples and dicts of those (dict keys may be strings, numbers, tuples or
    None). All of these load back with their types: a tuple stays a tuple,
    an ``int`` key stays an ``int``, a ``np.float32`` stays a ``np.float32``.
    :func:`save` refuses anything else before it writes.

    Unless the class defines its own ``__repr__``, it gets a compact one:
    arrays show their shape and dtype, not their values.

    Parameters
    ----------
    cls : type
        A dataclass.

    Returns
    -------
    type
        ``cls`` itself, registered so that :func:`load` can rebuild it.

    Raises
    ------
    TypeError
        When ``cls`` is not a dataclass.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> import numpy as np
    >>> import itermap
    >>> @itermap.saveable
    ... @dataclass
    ... class Run:
    ...     states: object
    ...     gain: float
    >>> Run(np.zeros((500, 3)), 1.5)
    Run(states=array(shape=(500, 3), dtype=float64), gain=1.5)
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"@saveable needs a dataclass, got {cls.__name__}")
    check_schema(cls)
    if _has_generated_repr(cls):
        setattr(cls, "__repr__", _compact_repr)  # noqa: B010 (mypy: no method assignment)
    _REGISTRY[_type_name(cls)] = cls
    return cls


def _has_generated_repr(cls) -> bool:
    """True when ``__repr__`` is the one @dataclass wrote (or object's)."""
    fn = None
    for klass in cls.__mro__:
        if "__repr__" in klass.__dict__:
            fn = klass.__dict__["__repr__"]
            break
    if fn is None or fn is object.__repr__:
        return True
    if fn is _compact_repr:
        return True
    code = getattr(inspect.unwrap(fn), "__code__", None)
    # @dataclass compiles its methods from source text
    return code is not None and code.co_filename == "<string>"


def _short(value, depth=0) -> str:
    if is_sparse(value):
        return (f"{type(value).__name__}(shape={tuple(value.shape)}, nnz={value.nnz}, "
                f"dtype={value.dtype})")
    if _is_array(value):
        return f"array(shape={tuple(value.shape)}, dtype={value.dtype})"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, (list, tuple)) and depth < 2:
        if len(value) > 8:
            return f"<{type(value).__name__} of {len(value)}>"
        inner = ", ".join(_short(v, depth + 1) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' * (len(value) == 1)})"
    if isinstance(value, dict) and depth < 2:
        if len(value) > 8:
            return f"<dict of {len(value)}>"
        return "{" + ", ".join(f"{k!r}: {_short(v, depth + 1)}" for k, v in value.items()) + "}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _compact_repr(self) -> str:
    parts = [f"{f.name}={_short(getattr(self, f.name))}"
             for f in dataclasses.fields(self) if f.repr]
    return f"{type(self).__qualname__}({', '.join(parts)})"


# ----------------------------------------------------------------------------- encoding
def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(
        value, np.generic)


def _array_dtype_ok(dtype) -> bool:
    return dtype.kind in _ARRAY_KINDS and not dtype.hasobject and dtype.fields is None \
        and dtype.subdtype is None


class _Writer:
    """Collects the array entries of one file and the table that describes them."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, name, a, where):
        a = np.asarray(to_numpy(a))
        if not _array_dtype_ok(a.dtype):
            raise TypeError(f"cannot save {where}: arrays of dtype {a.dtype} are not saved "
                            "(objects, records and raw bytes would need pickle)")
        if name in self.arrays:
            raise ValueError(f"cannot save {where}: entry name {name!r} is used twice")
        self.arrays[name] = a
        return name

    def put_sparse(self, name, a, where):
        fmt = a.format
        a = sp.csr_matrix(to_numpy(a))
        self.put(f"{name}.data", a.data, where)
        self.put(f"{name}.indices", a.indices, where)
        self.put(f"{name}.indptr", a.indptr, where)
        return {"__sparse__": name, "shape": [int(s) for s in a.shape], "format": fmt}

    def ref(self, name, a, where):
        if is_sparse(a):
            return self.put_sparse(name, a, where)
        return {"__array__": self.put(name, a, where)}

    def table(self):
        return {k: {"dtype": a.dtype.str, "shape": list(a.shape)} for k, a in self.arrays.items()}


def _encode_value(value, writer, name, where):
    """JSON for one field value; arrays and NumPy scalars go to ``writer``.

    Raises TypeError, naming ``where``, for anything that would not load back as it was.
    """
    if isinstance(value, np.generic):  # first: np.float64 is also a float
        if not _array_dtype_ok(value.dtype):
            raise TypeError(f"cannot save {where}: a NumPy scalar of dtype {value.dtype}")
        return {"__scalar__": writer.put(name, np.asarray(value), where)}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, complex):
        return {"__complex__": [_encode_value(value.real, writer, name, where),
                                _encode_value(value.imag, writer, name, where)]}
    if is_sparse(value) or _is_array(value):
        return writer.ref(name, value, where)
    if isinstance(value, list):
        return [_encode_value(v, writer, f"{name}.{i}", f"{where}[{i}]")
                for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode_value(v, writer, f"{name}.{i}", f"{where}[{i}]")
                              for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode_value(v, writer, f"{name}.{i}", f"{where}[{k!r}]")
                    for i, (k, v) in enumerate(value.items())}
        pairs = []
        for i, (k, v) in enumerate(value.items()):
            if not (k is None or isinstance(k, (str, int, float, complex, tuple, np.generic))):
                raise TypeError(f"cannot save {where}: dict key {k!r} of type "
                                f"{type(k).__name__}")
            pairs.append([_encode_value(k, writer, f"{name}.k{i}", f"{where} key {k!r}"),
                          _encode_value(v, writer, f"{name}.{i}", f"{where}[{k!r}]")])
        return {"__dict__": pairs}
    raise TypeError(f"cannot save {where}: values of type {type(value).__name__} are not "
                    "saved (arrays, numbers, strings, None, and lists, tuples and dicts "
                    "of those are)")


def _decode_value(value, arrays):
    if isinstance(value, list):
        return [_decode_value(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    tag = next((t for t in _TAGS if t in value), None)
    if tag in ("__array__", "__sparse__"):
        return _get_array(arrays, value)
    if tag == "__scalar__":
        a = arrays[_entry_name(value["__scalar__"])]
        if a.ndim != 0:
            raise ValueError(f"entry {value['__scalar__']!r} should hold a scalar, but has "
                             f"shape {a.shape}")
        return a[()]
    if tag == "__float__":
        text = value["__float__"]
        if text not in ("nan", "inf", "-inf"):
            raise ValueError(f"bad non-finite float {text!r}")
        return float(text)
    if tag == "__complex__":
        re_, im = (_decode_value(v, arrays) for v in value["__complex__"])
        return complex(re_, im)
    if tag == "__tuple__":
        return tuple(_decode_value(v, arrays) for v in _json_list(value["__tuple__"], tag))
    if tag == "__dict__":
        out = {}
        for pair in _json_list(value["__dict__"], tag):
            k, v = _json_list(pair, "a __dict__ pair")
            out[_decode_value(k, arrays)] = _decode_value(v, arrays)
        return out
    return {k: _decode_value(v, arrays) for k, v in value.items()}


def _json_list(value, what):
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list, got {type(value).__name__}")
    return value


def _entry_name(name):
    if not isinstance(name, str):
        raise ValueError(f"an entry name must be a string, got {name!r}")
    return name


def _get_array(arrays, ref):
    if "__sparse__" in ref:
        name = _entry_name(ref["__sparse__"])
        return _sparse_from(name, arrays[f"{name}.data"], arrays[f"{name}.indices"],
                            arrays[f"{name}.indptr"], ref.get("shape"), ref.get("format", "csr"))
    return arrays[_entry_name(ref["__array__"])]


def _sparse_from(name, data, indices, indptr, shape, fmt):
    """A CSR matrix from its three arrays, checked so that SciPy never reads out of bounds."""
    if not (isinstance(shape, list) and len(shape) == 2 and all(_is_count(s) for s in shape)):
        raise ValueError(f"sparse entry {name!r}: shape must be two non-negative ints, "
                         f"got {shape!r}")
    m, n = shape
    for part, arr in (("data", data), ("indices", indices), ("indptr", indptr)):
        if arr.ndim != 1:
            raise ValueError(f"sparse entry {name!r}: {part} must be 1-D, got shape {arr.shape}")
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        raise ValueError(f"sparse entry {name!r}: indices and indptr must be integers, got "
                         f"{indices.dtype} and {indptr.dtype}")
    if data.dtype.kind not in "biufc":
        raise ValueError(f"sparse entry {name!r}: data must be numeric, got {data.dtype}")
    if indptr.shape[0] != m + 1:
        raise ValueError(f"sparse entry {name!r}: indptr has {indptr.shape[0]} entries; a "
                         f"matrix with {m} rows needs {m + 1}")
    nnz = data.shape[0]
    if indices.shape[0] != nnz:
        raise ValueError(f"sparse entry {name!r}: {indices.shape[0]} indices for {nnz} values")
    ptr = indptr.astype(np.int64) if indptr.dtype != np.uint64 else indptr
    if int(ptr[0]) != 0 or int(ptr[-1]) != nnz:
        raise ValueError(f"sparse entry {name!r}: indptr must run from 0 to nnz={nnz}, got "
                         f"{int(ptr[0])} .. {int(ptr[-1])}")
    if np.any(ptr[1:] < ptr[:-1]):
        raise ValueError(f"sparse entry {name!r}: indptr is not non-decreasing")
    if nnz and (int(indices.min()) < 0 or int(indices.max()) >= n):
        raise ValueError(f"sparse entry {name!r}: column indices must lie in [0, {n}), got "
                         f"{int(indices.min())} .. {int(indices.max())}")
    if fmt not in ("csr", "csc", "coo", "bsr", "dia", "lil", "dok"):
        raise ValueError(f"sparse entry {name!r}: unknown sparse format {fmt!r}")
    out = sp.csr_matrix((data, indices.astype(np.int64), ptr.astype(np.int64)), shape=(m, n))
    return out if fmt == "csr" else out.asformat(fmt)


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _activation_named(name):
    """The activation a file would read back for ``name`` (None if none)."""
    from ._activations import get_activation

    try:
        return get_activation(name)
    except (TypeError, ValueError):
        return None


# the one-layer recurrent map classes and the kind of their layer
_ONE_LAYER_MAPS = {"ElmanRNNMap": "rnn", "GRUMap": "gru", "LSTMMap": "lstm"}


def _encode(obj, writer):
    """(type name, fields as JSON with array references) for a supported object."""
    from ._blocks import BlockMatrix
    from ._gated import RecurrentMap
    from ._network import IterativeMap
    from ._systems import HenonMap, LinearMap, LogisticMap, StandardMap

    if isinstance(obj, BlockMatrix):
        blocks = [[i, j, writer.ref(f"block_{i}_{j}", b, f"block ({i}, {j})")]
                  for (i, j), b in obj.blocks.items()]
        fields = {"sizes": list(obj.sizes), "blocks": blocks}
        if obj._trainable is not None:  # an explicit mask; the default follows the blocks
            fields["trainable"] = [[i, j, writer.ref(f"trainable_{i}_{j}", m,
                                                      f"trainable mask ({i}, {j})")]
                                   for (i, j), m in obj._trainable.items()]
        return "BlockMatrix", fields
    if isinstance(obj, IterativeMap):
        for a in obj.activations:
            if _activation_named(a.name) != a:
                raise TypeError(f"cannot save activation {a.name!r}: it is not in "
                                "itermap.ACTIVATIONS, and a file stores activations by name")
        _, bm = _encode(obj.block_matrix, writer)
        fields = {"weights": bm, "activation": [a.name for a in obj.activations],
                  "input_block": obj.input_block, "bias": None}
        if obj.bias is not None:
            fields["bias"] = writer.ref("bias", obj.bias, "bias")
        if obj.functions:
            fields["functions"] = [_encode_function(i, j, g, writer)
                                   for (i, j), g in obj.functions.items()]
        if obj.leaky:  # written only when set, so maps without leak keep their files
            fields["leak"] = list(obj.leak)
        if getattr(obj, "readout_weights", None) is not None:  # a ReservoirMap's readout
            fields["readout"] = [writer.ref("readout_weights", obj.readout_weights,
                                            "readout weights"),
                                 writer.ref("readout_bias", obj.readout_bias, "readout bias")]
        return "IterativeMap", fields
    if isinstance(obj, RecurrentMap):
        layers = []
        for l, c in enumerate(obj.layers):
            ref = {k: writer.ref(f"layer{l}_{k}", v, f"layer {l} {k}")
                   for k, v in c.arrays().items()}
            layers.append({"kind": c.kind, "arrays": ref,
                           "nonlinearity": getattr(c, "nonlinearity", None)})
        fields = {"layers": layers, "batch_first": obj.batch_first}
        if type(obj).__name__ in _ONE_LAYER_MAPS:  # so that load gives back an LSTMMap, say
            fields["class"] = type(obj).__name__
        return "RecurrentMap", fields
    if isinstance(obj, LogisticMap):
        r = obj.r if isinstance(obj.r, float) else writer.ref("r", obj.r, "r")
        return "LogisticMap", {"r": r}
    if isinstance(obj, HenonMap):
        return "HenonMap", {"a": obj.a, "b": obj.b}
    if isinstance(obj, StandardMap):
        return "StandardMap", {"k": obj.k}
    if isinstance(obj, LinearMap):
        return "LinearMap", {"A": writer.ref("A", obj.A, "A")}
    sequence = _encode_sequence_map(obj, writer)
    if sequence is not None:
        return sequence
    cls = type(obj)
    if _type_name(cls) in _REGISTRY:
        fields = {f.name: _encode_value(getattr(obj, f.name), writer, f"field_{f.name}",
                                        f"field {f.name!r} of {cls.__name__}")
                  for f in dataclasses.fields(obj)}
        return _type_name(cls), fields
    raise TypeError(f"obj: cannot save a {cls.__name__}: itermap saves maps, block matrices, "
                    "trajectories and @saveable result dataclasses")


def _encode_sequence_map(obj, writer):
    """(type name, fields) of an AttentionRNN or a LinearStateSpace; None for other objects."""
    from ._attention_rnn import AttentionRNN
    from ._state_space import LinearStateSpace

    if isinstance(obj, AttentionRNN):
        return "AttentionRNN", {k: writer.ref(k, getattr(obj, k), k) for k in ("Wk", "Wv", "q")} \
            | {"scale": obj.scale}
    if isinstance(obj, LinearStateSpace):
        return "LinearStateSpace", {k: writer.ref(k, getattr(obj, k), k)
                                    for k in ("A", "B", "C", "D")} \
            | {"dt": obj.dt, "method": obj.method}
    return None


def _decode_sequence_map(type_name, fields, arrays):
    from ._attention_rnn import AttentionRNN
    from ._state_space import LinearStateSpace

    if type_name == "AttentionRNN":
        Wk, Wv, q = (_get_array(arrays, fields[k]) for k in ("Wk", "Wv", "q"))
        return AttentionRNN(Wk, Wv, q, scale=fields["scale"])
    A, B, C, D = (_get_array(arrays, fields[k]) for k in ("A", "B", "C", "D"))
    return LinearStateSpace(A, B, C, D, dt=fields["dt"], method=fields["method"])


def _encode_function(i, j, g, writer):
    """``[i, j, config, {name: array ref}]`` for a built-in block function."""
    try:
        config = g.config()
    except TypeError as e:
        raise TypeError(f"cannot save function block ({i}, {j}): {e}") from None
    refs = {k: writer.ref(f"function_{i}_{j}.{k}", a, f"function block ({i}, {j}) {k}")
            for k, a in g.arrays().items()}
    return [i, j, config, refs]


def _decode_functions(entries, arrays):
    from ._block_functions import rebuild

    out = {}
    for entry in _json_list(entries, "functions"):
        i, j, config, refs = _json_list(entry, "a function block entry")
        if not (_is_count(i) and _is_count(j)) or not isinstance(refs, dict):
            raise ValueError(f"a function block entry must be [i, j, config, arrays], got "
                             f"{entry!r}")
        got = {k: _get_array(arrays, ref) for k, ref in refs.items()}
        try:
            out[(i, j)] = rebuild(config, got)
        except TypeError as e:  # a file's wrong types are a bad file, not a bad call
            raise ValueError(f"function block ({i}, {j}): {e}") from None
    return out


def _reservoir_map(m, refs, arrays):
    """The ReservoirMap of a decoded map ``[input, reservoir]`` and its readout's arrays."""
    from ._reservoir import ReservoirMap

    if len(refs) != 2 or m.sizes.__len__() != 2 or m.input_block != 0 or \
            set(m.block_matrix.blocks) - {(1, 0), (1, 1)}:
        raise ValueError("readout: a file's readout belongs to a map [input, reservoir]")
    W, W_in = m.block_matrix.blocks.get((1, 1)), m.block_matrix.blocks.get((1, 0))
    if W is None or W_in is None:
        raise ValueError("readout: a reservoir map needs both its input and recurrent blocks")
    bias = None if m.bias is None else m.bias[m.block_slice(1)]
    return ReservoirMap(W, W_in, bias, m.activations[1].name, leak=m.leak[1],
                        readout_weights=_get_array(arrays, refs[0]),
                        readout_bias=_get_array(arrays, refs[1]))


def _decode(type_name, fields, arrays):
    from ._blocks import BlockMatrix
    from ._gated import RecurrentMap
    from ._network import IterativeMap
    from ._systems import HenonMap, LinearMap, LogisticMap, StandardMap

    if type_name == "BlockMatrix":
        blocks = {}
        for entry in _json_list(fields["blocks"], "blocks"):
            i, j, ref = _json_list(entry, "a block entry")
            if not (_is_count(i) and _is_count(j)):
                raise ValueError(f"block keys must be non-negative ints, got ({i!r}, {j!r})")
            blocks[(i, j)] = _get_array(arrays, ref)
        trainable = None
        if "trainable" in fields:
            trainable = {}
            for entry in _json_list(fields["trainable"], "trainable"):
                i, j, ref = _json_list(entry, "a trainable entry")
                if not (_is_count(i) and _is_count(j)):
                    raise ValueError(f"trainable keys must be non-negative ints, got "
                                     f"({i!r}, {j!r})")
                trainable[(i, j)] = _get_array(arrays, ref)
        return BlockMatrix(fields["sizes"], blocks, trainable=trainable)
    if type_name == "IterativeMap":
        bm = _decode("BlockMatrix", fields["weights"], arrays)
        bias = None if fields["bias"] is None else _get_array(arrays, fields["bias"])
        acts = _json_list(fields["activation"], "activation")
        if not all(isinstance(a, str) for a in acts):
            raise ValueError(f"activations must be names, got {acts!r}")
        functions = (_decode_functions(fields["functions"], arrays)
                     if fields.get("functions") is not None else None)
        leak = fields.get("leak")
        if leak is not None and not (isinstance(leak, list) and all(
                isinstance(r, int | float) and not isinstance(r, bool) for r in leak)):
            raise ValueError(f"leak must be a list of numbers, got {leak!r}")
        m = IterativeMap(bm, bias, acts, input_block=fields["input_block"],
                         functions=functions, leak=leak)
        if fields.get("readout") is not None:
            return _reservoir_map(m, _json_list(fields["readout"], "readout"), arrays)
        return m
    if type_name == "RecurrentMap":
        from . import _gated
        from ._gated import _ElmanCell, _GRUCell, _LSTMCell

        cls = {"rnn": _ElmanCell, "gru": _GRUCell, "lstm": _LSTMCell}
        layers = []
        for spec in _json_list(fields["layers"], "layers"):
            if not isinstance(spec, dict) or spec.get("kind") not in cls \
                    or not isinstance(spec.get("arrays"), dict):
                raise ValueError(f"a recurrent layer must name its kind (rnn, gru, lstm) and "
                                 f"arrays, got {spec!r}")
            got = {k: _get_array(arrays, ref) for k, ref in spec["arrays"].items()}
            kw = {"nonlinearity": spec.get("nonlinearity")} if spec["kind"] == "rnn" else {}
            layers.append(cls[spec["kind"]](**got, **kw))
        name = fields.get("class", "RecurrentMap")
        if name != "RecurrentMap" and (name not in _ONE_LAYER_MAPS or len(layers) != 1
                                       or layers[0].kind != _ONE_LAYER_MAPS[name]):
            raise ValueError(f"a recurrent map of class {name!r} must be one layer of its kind")
        rec_cls = getattr(_gated, name) if name != "RecurrentMap" else RecurrentMap
        rec = rec_cls.__new__(rec_cls)  # the layers are built: skip the subclass's weights
        RecurrentMap.__init__(rec, layers, batch_first=bool(fields["batch_first"]))
        return rec
    if type_name == "LogisticMap":
        r = fields["r"]
        return LogisticMap(r if not isinstance(r, dict) else _get_array(arrays, r))
    if type_name == "HenonMap":
        return HenonMap(fields["a"], fields["b"])
    if type_name == "StandardMap":
        return StandardMap(fields["k"])
    if type_name == "LinearMap":
        return LinearMap(_get_array(arrays, fields["A"]))
    if type_name in ("AttentionRNN", "LinearStateSpace"):
        return _decode_sequence_map(type_name, fields, arrays)
    cls = _saved_class(type_name)
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"field {unknown[0]!r} is not a field of {cls.__qualname__}")
    kwargs, later = {}, {}
    for f in dataclasses.fields(cls):
        if f.name in fields:
            (kwargs if f.init else later)[f.name] = _decode_value(fields[f.name], arrays)
    check_fields(cls, {**kwargs, **later})  # types, dtypes and shapes, before cls sees them
    obj = cls(**kwargs)
    for k, v in later.items():
        object.__setattr__(obj, k, v)
    return obj


def _saved_class(type_name):
    cls = _REGISTRY.get(type_name)
    if cls is not None:
        return cls
    module, _, qualname = type_name.partition(":")
    module = current_module(module)  # a file saved before its module moved
    cls = _REGISTRY.get(f"{module}:{qualname}")
    if cls is not None:
        return cls
    if module.startswith("analysis."):  # files from before analysis became itermap.analysis
        module = "itermap." + module
        cls = _REGISTRY.get(f"{module}:{qualname}")
        if cls is not None:
            return cls
    if not module.startswith(_TRUSTED_PREFIX):
        raise ValueError(f"unknown saved type {type_name!r}; import the module that "
                         "defines it (and decorates it with @itermap.saveable) first")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"saved type {type_name!r}: no module {module!r}") from exc
    cls = _REGISTRY.get(f"{module}:{qualname}")
    if cls is None:
        raise ValueError(f"saved type {type_name!r} is not a saveable class")
    return cls


# ----------------------------------------------------------------------------- writing
def _check_target(path, what="path") -> str:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise ValueError(f"{what} is empty: name the .npz file to write")
    if path.endswith((os.sep, "/")) or os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a folder: name the .npz file to write in it")
    return path


def save(obj: Any, path: str | os.PathLike) -> str:
    """Save a map, block matrix, trajectory or result to the ``.npz`` file ``path``.

    The file is written to a temporary name beside ``path``, flushed to disk
    and moved into place, so a failed save never leaves a half-written file
    (nor a temporary one) behind.

    Parameters
    ----------
    obj : IterativeMap, classic map, BlockMatrix, Trajectory or @saveable dataclass
        What to save.
    path : str or os.PathLike
        The file to write, ending in ``.npz``; it is written exactly there.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ValueError
        When ``path`` is empty, a folder, or does not end in ``.npz``.
    FileNotFoundError
        When the folder of ``path`` does not exist.
    TypeError
        When ``obj`` (or one of its fields) is of a kind that cannot be saved;
        nothing is written then.

    Examples
    --------
    >>> import os, tempfile
    >>> import itermap
    >>> m = itermap.random_rnn(5, rng=0)
    >>> path = itermap.save(m, os.path.join(tempfile.mkdtemp(), "net.npz"))
    >>> itermap.load(path) == m
    True
    """
    from . import __version__

    path = _check_target(path)
    if os.path.splitext(path)[1] != ".npz":
        raise ValueError(f"path {path!r} must end in .npz: save writes exactly the path it "
                         "is given")
    writer = _Writer()
    type_name, fields = _encode(obj, writer)
    meta = {"format": "itermap", "format_version": FORMAT_VERSION,
            "itermap_version": __version__, "type": type_name, "fields": fields,
            "arrays": writer.table()}
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot save a {type(obj).__name__}: {exc}") from exc
    arrays = {_META: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **writer.arrays}
    write_npz_atomic(path, arrays)
    return path


_TMP_SUFFIX = ".npz.tmp"
_last_sweep: dict[tuple[str, str], float] = {}
# a folder is searched for stale temporaries at most this often (seconds) per process
_SWEEP_EVERY = 10.0


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # the portable way: set and restore
    os.umask(mask)
    return mask


def apply_umask(path) -> None:
    """Give ``path`` the permissions a new file or folder gets under the umask.

    :func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` create private
    (``0o600`` / ``0o700``) entries; call this on one before moving it into
    place, so that what a user sees follows their umask like any other file.

    Parameters
    ----------
    path : str or os.PathLike
        A file (gets ``0o666 & ~umask``) or a folder (``0o777 & ~umask``).

    Examples
    --------
    >>> import os, stat, tempfile
    >>> from itermap.files import apply_umask
    >>> old = os.umask(0o022)
    >>> folder = tempfile.mkdtemp()
    >>> apply_umask(folder)
    >>> oct(stat.S_IMODE(os.stat(folder).st_mode))
    '0o755'
    >>> _ = os.umask(old)
    """
    base = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, base & ~_umask())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_stale(directory, prefix):
    """Remove temporaries that a killed process of this host left in ``directory``."""
    remove_stale(directory, prefix, _TMP_SUFFIX)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "host"


def write_npz_atomic(path, arrays, *, prefix=".itermap-"):
    """Write ``arrays`` to the ``.npz`` file ``path`` all at once or not at all.

    The archive goes to a temporary file beside ``path``, is flushed to disk
    (``fsync``) and moved into place, so an interrupted or failed write leaves
    neither a half-written file nor a damaged earlier one. The temporary file
    is removed on any error; one left by a killed process (its name carries
    the host and process id) is removed by the next write into that folder.
    The file gets the permissions the umask gives a new file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    arrays : dict of str to array
        The archive's entries.
    prefix : str
        Start of the temporary file's name.

    Raises
    ------
    FileNotFoundError
        When the folder of ``path`` does not exist (the message names ``path``).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from itermap.files import write_npz_atomic
    >>> folder = tempfile.mkdtemp()
    >>> write_npz_atomic(os.path.join(folder, "a.npz"), {"x": np.arange(3)})
    >>> os.listdir(folder)
    ['a.npz']
    """
    path = _check_target(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path!r}: its folder "
                                f"{directory!r} does not exist", path)
    _remove_stale(directory, prefix)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{_host()}-{os.getpid()}-", suffix=_TMP_SUFFIX,
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(directory)


def _fsync_folder(directory):
    # make the rename itself durable; not every platform opens folders
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- reading
def load(path: str | os.PathLike) -> Any:
    """Load an object written by :func:`save`.

    The file is treated as untrusted: its metadata is read and checked
    first, every other entry is checked against it (name, size, dtype and
    shape) before it is read, and sparse matrices are validated before
    SciPy sees them.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    object
        The saved map, block matrix, trajectory or result.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When ``path`` is not a regular file (a folder, a FIFO, a device), or
        the file is truncated, corrupt, not an itermap file, from a newer
        format version, or inconsistent with its own metadata; the message
        names the file and the entry.

    Examples
    --------
    >>> import os, tempfile
    >>> import itermap
    >>> path = itermap.save(itermap.systems.henon(), os.path.join(tempfile.mkdtemp(), "h.npz"))
    >>> itermap.load(path)
    HenonMap(a=1.4, b=0.3)
    """
    with NpzReader(path, "path", expansion=_MAX_EXPANSION, kind="itermap file") as archive:
        path = archive.path
        try:
            type_name, fields, arrays = _read_archive(archive, path)
        except _ZIP_ERRORS as exc:
            raise ValueError(f"{path} is not a readable itermap file (truncated or corrupt: "
                             f"{exc})") from exc
        except RecursionError:  # metadata nested deeper than Python's stack
            raise ValueError(f"{path}: corrupt itermap metadata (nested too deeply)") from None
    try:
        return _decode(type_name, fields, arrays)
    except KeyError as exc:
        raise ValueError(f"{path}: itermap file is missing entry {exc}") from exc
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except RecursionError:
        raise ValueError(f"{path}: the metadata's fields are nested too deeply") from None


def _read_archive(archive, path):
    """(type, fields, arrays) of an opened archive, every entry checked against the metadata."""
    names = list(archive.infos)
    meta_info = archive.infos.get(_META + ".npy")
    if meta_info is None:
        raise ValueError(f"{path} is an .npz file but not an itermap file (no metadata)")
    raw = archive.read_info(meta_info, {"dtype": "|u1", "shape": None}, _MAX_META_BYTES)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupt itermap metadata ({exc})") from exc
    except RecursionError:  # JSON nested deeper than Python's stack
        raise ValueError(f"{path}: corrupt itermap metadata (nested too deeply)") from None
    type_name, fields, table = _check_meta(meta, path)
    wanted = _referenced(fields)
    if table is None:  # format 1: no table; the fields name the entries
        table = dict.fromkeys(wanted)
    else:
        missing = sorted(wanted - set(table))
        if missing:
            raise ValueError(f"{path}: the fields refer to entry {missing[0]!r}, which the "
                             "metadata's array table does not describe")
    for name in names:
        if name == meta_info.filename:
            continue
        if not name.endswith(".npy") or name[:-4] not in table:
            raise ValueError(f"{path}: archive entry {name!r} is not named by the metadata")
    arrays = {}
    for name, spec in table.items():
        info = archive.infos.get(name + ".npy")
        if info is None:
            raise ValueError(f"{path}: itermap file is missing entry {name!r}")
        arrays[name] = archive.read_info(info, spec, None)
    return type_name, fields, arrays


def _check_meta(meta, path):
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: itermap metadata must be a JSON object, got "
                         f"{type(meta).__name__}")
    if meta.get("format") != "itermap" or "type" not in meta:
        raise ValueError(f"{path}: not an itermap file")
    version = meta.get("format_version")
    if not _is_count(version) or version < 1:
        raise ValueError(f"{path}: format_version must be a positive int, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} uses itermap file format {version}; this version reads "
                         f"up to {FORMAT_VERSION}")
    type_name, fields = meta["type"], meta.get("fields")
    if not isinstance(type_name, str):
        raise ValueError(f"{path}: metadata type must be a string, got {type_name!r}")
    if not isinstance(fields, dict):
        raise ValueError(f"{path}: metadata fields must be a JSON object, got "
                         f"{type(fields).__name__}")
    if version < 2:
        return type_name, fields, None
    table = meta.get("arrays")
    if not isinstance(table, dict):
        raise ValueError(f"{path}: metadata arrays must be a JSON object, got "
                         f"{type(table).__name__}")
    for name, spec in table.items():
        if not (isinstance(spec, dict) and isinstance(spec.get("dtype"), str)
                and isinstance(spec.get("shape"), list) and len(spec["shape"]) <= 64
                and all(_is_count(s) for s in spec["shape"])):
            raise ValueError(f"{path}: metadata for entry {name!r} must give a dtype string "
                             f"and a shape of non-negative ints, got {spec!r}")
    return type_name, fields, table


def _referenced(value) -> set:
    """Entry names that the metadata's fields refer to."""
    out: set = set()
    if isinstance(value, list):
        for v in value:
            out |= _referenced(v)
    elif isinstance(value, dict):
        if isinstance(value.get("__array__"), str):
            out.add(value["__array__"])
        elif isinstance(value.get("__scalar__"), str):
            out.add(value["__scalar__"])
        elif isinstance(value.get("__sparse__"), str):
            out |= {f"{value['__sparse__']}.{p}" for p in ("data", "indices", "indptr")}
        else:
            for v in value.values():
                out |= _referenced(v)
    return out


def _read_entry(zf, info, path, spec, limit, expansion=_MAX_EXPANSION):
    """One ``.npy`` entry, its zip and npy headers checked before any data is read.

    ``spec`` is the metadata's ``{"dtype", "shape"}`` for it (None for a
    format-1 file or a foreign archive); ``limit`` caps its size in bytes;
    ``expansion`` (None: any) caps its uncompressed size over its compressed one.
    """
    where = f"{path}: entry {info.filename!r}"
    if info.flag_bits & 0x1:
        raise ValueError(f"{where} is encrypted")
    if expansion is not None and \
            info.file_size > expansion * max(info.compress_size, 1) + _NPY_HEADER_MAX:
        raise ValueError(f"{where} expands from {info.compress_size} to {info.file_size} "
                         "bytes: more than any itermap file does")
    want_dtype = want_shape = None
    if spec is not None:
        try:
            want_dtype = np.dtype(spec["dtype"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: the metadata gives a bad dtype {spec['dtype']!r}") from exc
        if not _array_dtype_ok(want_dtype):
            raise ValueError(f"{where}: the metadata gives dtype {want_dtype}, which itermap "
                             "never writes")
        if spec["shape"] is not None:
            want_shape = tuple(spec["shape"])
            implied = math.prod(want_shape) * want_dtype.itemsize + _NPY_HEADER_MAX
            if info.file_size > implied:
                raise ValueError(f"{where} holds {info.file_size} bytes uncompressed, more "
                                 f"than the {want_dtype} array of shape {want_shape} that "
                                 "the metadata describes")
    if limit is not None and info.file_size > limit:
        raise ValueError(f"{where} holds {info.file_size} bytes, more than the {limit} "
                         "allowed")
    with zf.open(info) as fh:
        shape, fortran, dtype = _npy_header(fh, where)
        if not _array_dtype_ok(dtype):
            raise ValueError(f"{where} holds dtype {dtype}, which itermap never writes")
        if want_dtype is not None and (dtype != want_dtype or (
                want_shape is not None and tuple(shape) != want_shape)):
            raise ValueError(f"{where} is a {dtype} array of shape {tuple(shape)}, but the "
                             f"metadata describes {want_dtype} of shape {want_shape}")
        nbytes = math.prod(shape) * dtype.itemsize
        if fh.tell() + nbytes != info.file_size:  # before allocating: a header may declare 2**34
            raise ValueError(f"{where}: its header describes {nbytes} bytes of data, but the "
                             f"entry holds {info.file_size - fh.tell()}")
        order = "F" if fortran else "C"
        out = np.empty(shape, dtype=dtype, order=order)
        if nbytes:
            flat = out.reshape(-1, order="A").view(np.uint8)
            got = 0
            while got < nbytes:
                chunk = fh.read(min(nbytes - got, _READ_CHUNK))
                if not chunk:
                    raise ValueError(f"{where} is truncated")
                flat[got:got + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                got += len(chunk)
        fh.read(1)  # reach the end, so that zipfile checks the CRC
    return out


def _npy_header(fh, where):
    """(shape, fortran, dtype) from the ``.npy`` header at the start of ``fh``."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fh)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(fh)
        raise ValueError(f"npy format version {version}")
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{where} is not a readable array ({type(exc).__name__}: "
                         f"{exc})") from exc


# ----------------------------------------------------------------------------- untrusted files
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error,
               NotImplementedError, OverflowError)
_FILE_KINDS = ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO (named pipe)"),
               (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
               (stat.S_ISSOCK, "socket"))


def _as_path(path, what) -> str:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    return os.fsdecode(path) if isinstance(path, bytes) else path


def _refuse_special(path, st, what):
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _FILE_KINDS if test(st.st_mode)), "special file")
        raise ValueError(f"{what}: {path} is a {kind}, not a regular file")


def check_regular_file(path, what: str = "path") -> str:
    """``path`` as a str, if it names an existing regular file.

    Checked with :func:`os.stat` before anything opens it: a folder, a FIFO
    (opening one blocks until a writer comes), ``/dev/zero`` (reading never
    ends) or a socket is refused with a ValueError naming ``what`` and the
    path.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a regular file, or one that cannot be examined.
    """
    path = _as_path(path, what)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"{what}: no such file", path) from None
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise
        raise ValueError(f"{what}: cannot examine {path} ({exc.strerror or exc})") from None
    _refuse_special(path, st, what)
    return path


def open_regular_file(path, what: str = "path"):
    """A binary file object for the regular file ``path`` (see :func:`check_regular_file`).

    Opened without blocking and checked again through the open descriptor, so
    a FIFO swapped in after the first check neither blocks nor gets read.
    """
    path = check_regular_file(path, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        _refuse_special(path, os.fstat(fd), what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _memory_cap() -> int:
    from ._checks import _physical_memory

    return _physical_memory()


class NpzReader:
    """An ``.npz`` archive from an untrusted file, read one member at a time.

    The file must be a regular file (:func:`open_regular_file`). Opening reads
    only the zip directory; :meth:`header` reads one member's ``.npy`` header
    and :meth:`read` one member, after checking its declared (uncompressed)
    size: against ``expansion`` times its compressed size (when given), and,
    together with everything read before through this reader, against this
    machine's memory. A member that is never asked for is never decompressed.
    Every failure is a ValueError that names the file (and the member).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        The parameter that named it, for messages.
    expansion : float, optional
        Largest uncompressed/compressed ratio accepted (None: any).
    kind : str
        What the file should be, for messages.
    """

    def __init__(self, path, what: str = "path", *, expansion: float | None = None,
                 kind: str = ".npz file"):
        self.what = what
        self.expansion = expansion
        self.path = path = _as_path(path, what)
        self._fh = open_regular_file(path, what)
        self.budget = _memory_cap()
        try:
            self.zf = zipfile.ZipFile(self._fh)
            infos = self.zf.infolist()
        except (*_ZIP_ERRORS, MemoryError) as exc:  # a directory that declares too much
            self._fh.close()
            raise ValueError(f"{what}: {path} is not a readable {kind} (truncated or corrupt: "
                             f"{type(exc).__name__}: {exc})") from exc
        except BaseException:
            self._fh.close()
            raise
        names = [i.filename for i in infos]
        self.infos = {i.filename: i for i in infos}
        if len(self.infos) != len(names):
            self.close()
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"{path}: the archive holds entry {dup[0]!r} more than once")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.zf.close()
        self._fh.close()

    def members(self) -> list[str]:
        """The names of the archive's arrays (its ``.npy`` members, without the suffix)."""
        return [n[:-4] for n in self.infos if n.endswith(".npy")]

    def _info(self, name):
        info = self.infos.get(name + ".npy")
        if info is None:
            raise ValueError(f"{self.what}: {self.path} holds no array {name!r}")
        return info

    def header(self, name):
        """(shape, dtype) of the array ``name``, from its header alone."""
        info = self._info(name)
        try:
            with self.zf.open(info) as fh:
                shape, _, dtype = _npy_header(fh, f"{self.path}: entry {info.filename!r}")
        except _ZIP_ERRORS as exc:
            raise ValueError(f"{self.path}: entry {info.filename!r} is truncated or corrupt "
                             f"({type(exc).__name__}: {exc})") from exc
        return tuple(shape), dtype

    def read(self, name, spec=None):
        """The array ``name``, checked before it is decompressed (``spec``: see load)."""
        return self.read_info(self._info(name), spec, None)

    def read_info(self, info, spec, limit):
        if info.file_size > self.budget:
            raise ValueError(f"{self.path}: entry {info.filename!r} declares "
                             f"{info.file_size} bytes uncompressed, more than the "
                             f"{self.budget} bytes of memory left for this file")
        limit = self.budget if limit is None else min(limit, self.budget)
        try:
            out = _read_entry(self.zf, info, self.path, spec, limit, self.expansion)
        except _ZIP_ERRORS as exc:
            raise ValueError(f"{self.path}: entry {info.filename!r} is truncated or corrupt "
                             f"({type(exc).__name__}: {exc})") from exc
        self.budget -= info.file_size
        return out


def remove_stale(directory, prefix, suffix="", *, folders=False) -> None:
    """Remove what a killed process of this host left in ``directory``.

    Temporaries are named ``{prefix}{host}-{pid}-...{suffix}``; an entry of
    this host whose process is gone is removed (a folder with its content
    when ``folders``). Searched at most every few seconds per folder.
    """
    key = (os.fspath(directory), prefix + "\0" + suffix)
    now = time.monotonic()
    if now - _last_sweep.get(key, -math.inf) < _SWEEP_EVERY:
        return
    _last_sweep[key] = now
    pattern = re.compile(re.escape(f"{prefix}{_host()}-") + r"(\d+)-.*" + re.escape(suffix)
                         + "$")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        try:
            if folders and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            elif not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        except OSError:
            pass
