"""Saving and loading maps, trajectories and analysis results.

One file per object: a NumPy ``.npz`` archive whose entry ``__itermap__``
holds JSON metadata (format version, library version, object type and its
scalar fields) next to the arrays. Files are written atomically.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import tempfile
import zipfile

import numpy as np
import scipy.sparse as sp

from ._backend import is_sparse, to_numpy

__all__ = ["save", "load", "saveable", "write_npz_atomic", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_META = "__itermap__"
_REGISTRY: dict[str, type] = {}
_TRUSTED_PREFIXES = ("itermap.", "analysis.")


def _type_name(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def saveable(cls):
    """Class decorator: make a dataclass of arrays and plain values saveable.

    Fields may hold arrays (NumPy or CuPy; saved on the host), numbers,
    strings, None, and lists or dicts of those.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"@saveable needs a dataclass, got {cls.__name__}")
    _REGISTRY[_type_name(cls)] = cls
    return cls


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(
        value, (np.generic,))


def _plain(value):
    """JSON-ready copy of a non-array value."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return {"__float__": repr(value)}
    return value


def _unplain(value):
    if isinstance(value, dict):
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: _unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    return value


def _put_array(arrays, name, a):
    if is_sparse(a):
        a = sp.csr_matrix(to_numpy(a))
        arrays[f"{name}.data"] = a.data
        arrays[f"{name}.indices"] = a.indices
        arrays[f"{name}.indptr"] = a.indptr
        return {"__sparse__": name, "shape": list(a.shape)}
    arrays[name] = np.asarray(to_numpy(a))
    return {"__array__": name}


def _get_array(arrays, ref):
    if "__sparse__" in ref:
        name = ref["__sparse__"]
        return sp.csr_matrix((arrays[f"{name}.data"], arrays[f"{name}.indices"],
                              arrays[f"{name}.indptr"]), shape=tuple(ref["shape"]))
    return arrays[ref["__array__"]]


def _encode(obj, arrays):
    """(type name, fields as JSON with array references) for a supported object."""
    from ._blocks import BlockMatrix
    from ._gated import RecurrentMap
    from ._network import IterativeMap
    from ._systems import HenonMap, LinearMap, LogisticMap, StandardMap

    if isinstance(obj, BlockMatrix):
        blocks = [[i, j, _put_array(arrays, f"block_{i}_{j}", b)]
                  for (i, j), b in obj.blocks.items()]
        fields = {"sizes": list(obj.sizes), "blocks": blocks}
        if obj._trainable is not None:  # an explicit mask; the default follows the blocks
            fields["trainable"] = [[i, j, _put_array(arrays, f"trainable_{i}_{j}", m)]
                                   for (i, j), m in obj._trainable.items()]
        return "BlockMatrix", fields
    if isinstance(obj, IterativeMap):
        _, bm = _encode(obj.block_matrix, arrays)
        fields = {"weights": bm, "activation": [a.name for a in obj.activations],
                  "input_block": obj.input_block, "bias": None}
        if obj.bias is not None:
            fields["bias"] = _put_array(arrays, "bias", obj.bias)
        return "IterativeMap", fields
    if isinstance(obj, RecurrentMap):
        layers = []
        for l, c in enumerate(obj.layers):
            ref = {k: _put_array(arrays, f"layer{l}_{k}", v) for k, v in c.arrays().items()}
            layers.append({"kind": c.kind, "arrays": ref,
                           "nonlinearity": getattr(c, "nonlinearity", None)})
        return "RecurrentMap", {"layers": layers, "batch_first": obj.batch_first}
    if isinstance(obj, LogisticMap):
        r = obj.r if isinstance(obj.r, float) else _put_array(arrays, "r", obj.r)
        return "LogisticMap", {"r": r}
    if isinstance(obj, HenonMap):
        return "HenonMap", {"a": obj.a, "b": obj.b}
    if isinstance(obj, StandardMap):
        return "StandardMap", {"k": obj.k}
    if isinstance(obj, LinearMap):
        return "LinearMap", {"A": _put_array(arrays, "A", obj.A)}
    cls = type(obj)
    if _type_name(cls) in _REGISTRY:
        fields = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if _is_array(value) or is_sparse(value):
                fields[f.name] = _put_array(arrays, f"field_{f.name}", value)
            else:
                fields[f.name] = _plain(value)
        return _type_name(cls), fields
    raise TypeError(f"cannot save a {cls.__name__}: itermap saves maps, block matrices, "
                    "trajectories and @saveable result dataclasses")


def _decode(type_name, fields, arrays):
    from ._blocks import BlockMatrix
    from ._gated import RecurrentMap
    from ._network import IterativeMap
    from ._systems import HenonMap, LinearMap, LogisticMap, StandardMap

    if type_name == "BlockMatrix":
        blocks = {(i, j): _get_array(arrays, ref) for i, j, ref in fields["blocks"]}
        trainable = None
        if "trainable" in fields:
            trainable = {(i, j): _get_array(arrays, ref) for i, j, ref in fields["trainable"]}
        return BlockMatrix(fields["sizes"], blocks, trainable=trainable)
    if type_name == "IterativeMap":
        bm = _decode("BlockMatrix", fields["weights"], arrays)
        bias = None if fields["bias"] is None else _get_array(arrays, fields["bias"])
        return IterativeMap(bm, bias, fields["activation"], input_block=fields["input_block"])
    if type_name == "RecurrentMap":
        from ._gated import _ElmanCell, _GRUCell, _LSTMCell

        cls = {"rnn": _ElmanCell, "gru": _GRUCell, "lstm": _LSTMCell}
        layers = []
        for spec in fields["layers"]:
            got = {k: _get_array(arrays, ref) for k, ref in spec["arrays"].items()}
            kw = {"nonlinearity": spec["nonlinearity"]} if spec["kind"] == "rnn" else {}
            layers.append(cls[spec["kind"]](**got, **kw))
        return RecurrentMap(layers, batch_first=fields["batch_first"])
    if type_name == "LogisticMap":
        r = fields["r"]
        return LogisticMap(r if not isinstance(r, dict) else _get_array(arrays, r))
    if type_name == "HenonMap":
        return HenonMap(fields["a"], fields["b"])
    if type_name == "StandardMap":
        return StandardMap(fields["k"])
    if type_name == "LinearMap":
        return LinearMap(_get_array(arrays, fields["A"]))
    cls = _REGISTRY.get(type_name)
    if cls is None:
        module = type_name.split(":")[0]
        if not module.startswith(_TRUSTED_PREFIXES):
            raise ValueError(f"unknown saved type {type_name!r}; import the module that "
                             "defines it (and decorates it with @itermap.saveable) first")
        importlib.import_module(module)
        cls = _REGISTRY.get(type_name)
        if cls is None:
            raise ValueError(f"saved type {type_name!r} is not a saveable class")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in fields:
            continue
        value = fields[f.name]
        if isinstance(value, dict) and ("__array__" in value or "__sparse__" in value):
            kwargs[f.name] = _get_array(arrays, value)
        else:
            kwargs[f.name] = _unplain(value)
    return cls(**kwargs)


def save(obj, path) -> str:
    """Save a map, block matrix, trajectory or result to ``path`` (``.npz``).

    The file is written to a temporary name and moved into place, so a
    failed save never leaves a half-written file behind.

    Returns
    -------
    str
        The path written (``.npz`` is appended when missing).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import itermap
    >>> m = itermap.random_rnn(5, rng=0)
    >>> path = itermap.save(m, os.path.join(tempfile.mkdtemp(), "net"))
    >>> m2 = itermap.load(path)
    >>> bool(np.array_equal(m2.block_matrix.to_dense(), m.block_matrix.to_dense()))
    True
    """
    from . import __version__

    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    arrays: dict[str, np.ndarray] = {}
    type_name, fields = _encode(obj, arrays)
    meta = {"format": "itermap", "format_version": FORMAT_VERSION,
            "itermap_version": __version__, "type": type_name, "fields": fields}
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    write_npz_atomic(path, arrays)
    return path


def write_npz_atomic(path, arrays, *, prefix=".itermap-"):
    """Write ``arrays`` to the ``.npz`` file ``path`` all at once or not at all.

    The archive goes to a temporary file beside ``path`` and is moved into
    place, so an interrupted or failed write leaves neither a half-written
    file nor a damaged earlier one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    """Load an object written by :func:`save`.

    Raises
    ------
    ValueError
        When the file is truncated, corrupt, not an itermap file, or from a
        newer format version.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable itermap file (truncated or corrupt: "
                         f"{exc})") from exc
    if _META not in arrays:
        raise ValueError(f"{path} is an .npz file but not an itermap file (no metadata)")
    try:
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupt itermap metadata") from exc
    if meta.get("format") != "itermap" or "type" not in meta:
        raise ValueError(f"{path}: not an itermap file")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} uses itermap file format {meta['format_version']}; this "
                         f"version reads up to {FORMAT_VERSION}")
    try:
        return _decode(meta["type"], meta["fields"], arrays)
    except KeyError as exc:
        raise ValueError(f"{path}: itermap file is missing entry {exc}") from exc
