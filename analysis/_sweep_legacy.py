"""Files of the first sweep format (``__sweep__`` JSON metadata), read so that old tables and
cache entries still load. Nothing writes this format any more (``analysis/_sweep_table.py``).
"""

from __future__ import annotations

import json
import zipfile

import numpy as np

from itermap.files import MAX_EXPANSION as _MAX_EXPANSION
from itermap.files import NpzReader

FORMAT = "itermap-sweep"
FORMAT_VERSION = 1
META = "__sweep__"


def metadata_entry(path):
    """``"__sweep__"``, ``"__itermap__"`` or None: which metadata the archive holds."""
    try:
        with NpzReader(path, "path", expansion=_MAX_EXPANSION, kind="sweep file") as archive:
            members = set(archive.members())
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable sweep file (truncated or corrupt: "
                         f"{exc!r})") from exc
    return next((m for m in (META, "__itermap__") if m in members), None)


def _read_npz(path):
    """(meta, arrays) of a file of the first format; ValueError when unreadable."""
    try:  # a regular file, each member checked (declared size, header) before it is read
        with NpzReader(path, "path", expansion=_MAX_EXPANSION, kind="sweep file") as archive:
            arrays = {k: archive.read(k) for k in archive.members()}
        meta = json.loads(arrays.pop(META).tobytes().decode("utf-8"))
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError,
            UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a readable sweep file (truncated or corrupt: "
                         f"{exc!r})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a sweep file")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} uses sweep format {meta['format_version']}; this version "
                         f"reads up to {FORMAT_VERSION}")
    return meta, arrays


def _decode_value(value, arrays):
    if isinstance(value, list):
        return [_decode_value(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return arrays[value["__array__"]]
    if "__np__" in value:
        dtype = np.dtype(value["__np__"])
        v = _decode_value(value["v"], arrays)
        if isinstance(v, list):
            v = complex(v[0], v[1])
        return dtype.type(v)
    if "__float__" in value:
        return float(value["__float__"])
    if "__complex__" in value:
        re, im = (_decode_value(v, arrays) for v in value["__complex__"])
        return complex(re, im)
    if "__tuple__" in value:
        return tuple(_decode_value(v, arrays) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode_value(v, arrays) for k, v in value["__dict__"].items()}
    raise ValueError(f"corrupt sweep value {value!r}")


def read(path, table_cls, failure_cls, point_cls):
    """The table (``table_cls``) or cache entry (``point_cls``) in a first-format file."""
    meta, arrays = _read_npz(path)
    if meta.get("kind") == "point":
        outputs = meta.get("outputs")
        if not isinstance(outputs, dict) or not all(isinstance(k, str) for k in outputs):
            raise ValueError(f"its outputs are a {type(outputs).__name__}, not a dict of "
                             "columns")
        return point_cls(meta.get("key"), meta.get("params"), meta.get("function"),
                         {k: _decode_value(v, arrays) for k, v in outputs.items()})
    if meta.get("kind") != "table":
        raise ValueError(f"{path} is not a sweep table")
    try:
        records = [{k: _decode_value(v, arrays) for k, v in r.items()}
                   for r in meta["records"]]
        failures = [failure_cls(_decode_value(f["params"], arrays), f["error"],
                                f["message"], f["traceback"]) for f in meta["failures"]]
        out = table_cls(meta["params"], records, failures, seed=meta["seed"],
                        n_cached=meta["n_cached"])
        out.columns = tuple(meta["columns"])
    except Exception as exc:  # wrong JSON types, missing members: the file is damaged
        raise ValueError(f"{path} is a damaged sweep table ({type(exc).__name__}: "
                         f"{exc})") from exc
    return out
