"""The one codec of itermap's files: values and objects to JSON plus array entries.

:func:`itermap.save`, the sweep tables and cache entries of
:func:`itermap.analysis.sweep` and the report's ``results.json`` all encode
numbers and arrays here. Objects are found through registries, never through
a ladder of ``isinstance`` tests: a ``@saveable`` dataclass registers itself by
its type name, and any other class (the maps, the block matrix) registers an
encoder and a decoder with :func:`register_codec` (``itermap/_interop/_io_maps.py``).
This module reads and writes no file (``itermap/_interop/_io.py`` does).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from .._core._backend import is_sparse, to_numpy
from .._moved import current_module
from ._schema import check_fields, check_schema

__all__ = ["saveable", "register_codec", "encode_object", "decode_object", "jsonable",
           "Writer", "encode_value", "decode_value"]

_REGISTRY: dict[str, type] = {}
# classes saved by an encoder of their own (register_codec): class -> (type name, encode)
_ENCODERS: dict[type, tuple[str, Callable[[Any, Any], dict]]] = {}
_DECODERS: dict[str, Callable[[dict, dict], Any]] = {}
_TRUSTED_PREFIX = "itermap."
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

    Fields may hold arrays (dense or sparse, saved on the host), NumPy scalars,
    Python numbers, strings, None, and lists, tuples and dicts of those; all load
    back with their types. :func:`save` refuses anything else before it writes.
    Without its own ``__repr__`` the class gets a compact one (arrays by shape).

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
        When ``cls`` is not a dataclass (an instance of one included).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> import itermap
    >>> @itermap.saveable
    ... @dataclass
    ... class Run:
    ...     states: object
    ...     gain: float
    >>> Run(np.zeros((500, 3)), 1.5)
    Run(states=array(shape=(500, 3), dtype=float64), gain=1.5)
    """
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        raise TypeError(f"cls: @saveable needs a dataclass, got "
                        f"{getattr(cls, '__name__', type(cls).__name__ + ' object')}")
    check_schema(cls)
    if _has_generated_repr(cls):
        setattr(cls, "__repr__", _compact_repr)  # noqa: B010 (mypy: no method assignment)
    _REGISTRY[_type_name(cls)] = cls
    return cls


def _has_generated_repr(cls) -> bool:
    """True when ``__repr__`` is the one @dataclass wrote (or object's)."""
    fn = next((k.__dict__["__repr__"] for k in cls.__mro__ if "__repr__" in k.__dict__), None)
    if fn is None or fn is object.__repr__ or fn is _compact_repr:
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


class Writer:
    """Collects the array entries of one file and the table that describes them.

    :func:`encode_value` and a codec's ``encode`` (:func:`register_codec`) hand it each
    array through ``ref(name, array, where)``, which returns the JSON reference to write.

    Examples
    --------
    >>> from itermap.files import Writer
    >>> w = Writer()
    >>> w.ref("W", np.eye(2), "field 'W'")
    {'__array__': 'W'}
    >>> w.table()
    {'W': {'dtype': '<f8', 'shape': [2, 2]}}
    """

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, name, a, where):
        if isinstance(a, np.ma.MaskedArray):  # asarray would drop the mask
            raise TypeError(f"cannot save {where}: a masked array loses its mask; save "
                            "a.filled(...) and a.mask as two fields")
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
        for part in ("data", "indices", "indptr"):
            self.put(f"{name}.{part}", getattr(a, part), where)
        return {"__sparse__": name, "shape": [int(s) for s in a.shape], "format": fmt}

    def ref(self, name, a, where):
        if is_sparse(a):
            return self.put_sparse(name, a, where)
        return {"__array__": self.put(name, a, where)}

    def table(self):
        return {k: {"dtype": a.dtype.str, "shape": list(a.shape)} for k, a in self.arrays.items()}


def encode_value(value: Any, writer: Writer, name: str, where: str) -> Any:
    """JSON for ``value``, its arrays and NumPy scalars handed to ``writer``.

    Parameters
    ----------
    value : object
        None, a bool, int, float (NaN and infinities too), complex, str, NumPy scalar,
        array (dense or sparse), or a list, tuple or dict of these.
    writer : Writer
        Receives the arrays.
    name : str
        Starts the names of ``value``'s array entries.
    where : str
        Names ``value`` in the errors.

    Returns
    -------
    object
        JSON values; tuples, non-string keys, arrays and non-finite floats as tagged dicts.

    Raises
    ------
    TypeError
        Anything :func:`decode_value` would not give back as it was (a set, an object
        array, a masked array, an arbitrary object).
    ValueError
        An array entry name used twice.

    Examples
    --------
    >>> w = Writer()
    >>> doc = encode_value({"x": np.float32(1.5), "t": (1, "a")}, w, "v", "v")
    >>> decode_value(doc, w.arrays)
    {'x': np.float32(1.5), 't': (1, 'a')}
    """
    if isinstance(value, np.generic):  # first: np.float64 is also a float
        if not _array_dtype_ok(value.dtype):
            raise TypeError(f"cannot save {where}: a NumPy scalar of dtype {value.dtype}")
        return {"__scalar__": writer.put(name, np.asarray(value), where)}
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, complex):
        return {"__complex__": [encode_value(value.real, writer, name, where),
                                encode_value(value.imag, writer, name, where)]}
    if is_sparse(value) or _is_array(value):
        return writer.ref(name, value, where)
    if isinstance(value, list):
        return [encode_value(v, writer, f"{name}.{i}", f"{where}[{i}]")
                for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v, writer, f"{name}.{i}", f"{where}[{i}]")
                              for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode_value(v, writer, f"{name}.{i}", f"{where}[{k!r}]")
                    for i, (k, v) in enumerate(value.items())}
        pairs = []
        for i, (k, v) in enumerate(value.items()):
            if not (k is None or isinstance(k, (str, int, float, complex, tuple, np.generic))):
                raise TypeError(f"cannot save {where}: dict key {k!r} of type "
                                f"{type(k).__name__}")
            pairs.append([encode_value(k, writer, f"{name}.k{i}", f"{where} key {k!r}"),
                          encode_value(v, writer, f"{name}.{i}", f"{where}[{k!r}]")])
        return {"__dict__": pairs}
    raise TypeError(f"cannot save {where}: values of type {type(value).__name__} are not "
                    "saved (arrays, numbers, strings, None, and lists, tuples and dicts "
                    "of those are)")


def decode_value(value: Any, arrays: dict) -> Any:
    """The value :func:`encode_value` encoded, its arrays taken from ``arrays``.

    Parameters
    ----------
    value : object
        JSON as :func:`encode_value` wrote it, from a file: untrusted.
    arrays : dict
        The file's arrays by entry name.

    Returns
    -------
    object

    Raises
    ------
    ValueError
        An unknown tag, a tag whose content is malformed, or a reference to an array that
        is missing or of the wrong shape.

    Examples
    --------
    >>> from itermap.files import decode_value
    >>> decode_value({"t": {"__tuple__": [1, {"__float__": "inf"}]}}, {})
    {'t': (1, inf)}
    >>> decode_value({"__pickle__": 1}, {})
    Traceback (most recent call last):
    ...
    ValueError: unknown tag '__pickle__'
    """
    if isinstance(value, list):
        return [decode_value(v, arrays) for v in value]
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
        re_, im = (decode_value(v, arrays) for v in value["__complex__"])
        return complex(re_, im)
    if tag == "__tuple__":
        return tuple(decode_value(v, arrays) for v in _json_list(value["__tuple__"], tag))
    if tag == "__dict__":
        out = {}
        for pair in _json_list(value["__dict__"], tag):
            k, v = _json_list(pair, "a __dict__ pair")
            out[decode_value(k, arrays)] = decode_value(v, arrays)
        return out
    odd = next((k for k in value if k.startswith("__") and k.endswith("__")), None)
    if odd is not None:  # the encoder writes such keys as pairs: this is no value of ours
        raise ValueError(f"unknown tag {odd!r}")
    return {k: decode_value(v, arrays) for k, v in value.items()}


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


# ----------------------------------------------------------------------------- objects
def register_codec(cls: type, name: str, encode: Callable[[Any, Any], dict],
                   decode: Callable[[dict, dict], Any]) -> None:
    """Save instances of ``cls`` (and of its subclasses) as the type ``name``.

    ``encode(obj, writer)`` returns the object's fields as JSON values, its
    arrays handed to ``writer.ref``; ``decode(fields, arrays)`` rebuilds it,
    treating both as untrusted (a ValueError for anything out of place).

    Parameters
    ----------
    cls : type
        The class saved (a subclass saves as it, unless registered itself).
    name : str
        The type name written to the file; loading looks the decoder up by it.
    encode : callable
        ``encode(obj, writer) -> dict`` of JSON values.
    decode : callable
        ``decode(fields, arrays) -> obj``.

    Examples
    --------
    >>> import os, tempfile
    >>> import itermap
    >>> from itermap.files import register_codec
    >>> class Interval:
    ...     def __init__(self, lo, hi):
    ...         self.lo, self.hi = lo, hi
    >>> register_codec(Interval, "doc.Interval", lambda obj, writer: {"lo": obj.lo, "hi": obj.hi},
    ...                lambda fields, arrays: Interval(float(fields["lo"]), float(fields["hi"])))
    >>> path = os.path.join(tempfile.mkdtemp(), "i.npz")
    >>> _ = itermap.save(Interval(0.5, 2.0), path)
    >>> itermap.load(path).hi
    2.0
    """
    _ENCODERS[cls] = (name, encode)
    _DECODERS[name] = decode


def encode_object(obj, writer) -> tuple[str, dict]:
    """(type name, fields as JSON with array references) of a saveable object."""
    cls = type(obj)
    if _REGISTRY.get(_type_name(cls)) is cls:
        fields = {f.name: encode_value(getattr(obj, f.name), writer, f"field_{f.name}",
                                        f"field {f.name!r} of {cls.__name__}")
                  for f in dataclasses.fields(obj)}
        try:  # the check load makes: a file that load would refuse is not written
            check_fields(cls, {k: decode_value(v, writer.arrays) for k, v in fields.items()})
        except ValueError as exc:
            raise ValueError(f"obj: cannot save it, {exc} (load refuses such a file)") from None
        return _type_name(cls), fields
    for klass in cls.__mro__:  # the nearest registered class: a subclass saves as its base
        if klass in _ENCODERS:
            name, encode = _ENCODERS[klass]
            return name, encode(obj, writer)
    raise TypeError(f"obj: cannot save a {cls.__name__}: itermap saves maps, block matrices, "
                    "trajectories and @saveable result dataclasses")


def decode_object(type_name, fields, arrays):
    """The object a file's type name, fields and (checked) arrays describe."""
    # _saved_class imports a trusted module, which may register a decoder
    cls = None if type_name in _DECODERS else _saved_class(type_name)
    decode = _DECODERS.get(type_name)
    if decode is not None:
        return decode(fields, arrays)
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"field {unknown[0]!r} is not a field of {cls.__qualname__}")
    kwargs, later = {}, {}
    for f in dataclasses.fields(cls):
        if f.name in fields:
            (kwargs if f.init else later)[f.name] = decode_value(fields[f.name], arrays)
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
    if module.startswith("analysis."):  # files from before analysis became itermap.analysis
        module = "itermap." + module
    module = current_module(module)  # a file saved before its module moved
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
    if cls is None and type_name not in _DECODERS:
        raise ValueError(f"saved type {type_name!r} is not a saveable class")
    return cls


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


# ----------------------------------------------------------------------------- plain JSON
def jsonable(value: Any) -> Any:
    """Plain JSON values: arrays to lists, NaN to null, infinities to "inf" / "-inf".

    The readable form (``results.json``), not the typed one of a file: tuples
    become lists and dict keys strings. A ``@saveable`` result becomes the dict
    of its fields.

    Parameters
    ----------
    value : object
        Arrays, NumPy and Python scalars, saveable results, and lists, tuples and dicts of
        them; anything else is returned as it is.

    Returns
    -------
    object
        What ``json.dumps`` writes as it is.

    Examples
    --------
    >>> jsonable({"x": np.array([1.0, np.nan, -np.inf]), 2: (np.int8(3), True)})
    {'x': [1.0, None, '-inf'], '2': [3, True]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if _REGISTRY.get(_type_name(type(value))) is type(value):
        fields = dataclasses.fields(value)  # type: ignore[arg-type]  # a @saveable dataclass
        return {f.name: jsonable(getattr(value, f.name)) for f in fields}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isnan(v):
            return None
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    return value
