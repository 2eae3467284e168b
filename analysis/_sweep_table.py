"""The table of a sweep (:class:`SweepResult`), its failures, and its files: tables and cache
entries go through the one codec; files of the first format load through ``_sweep_legacy``."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Iterable, Mapping

import numpy as np

import itermap
from itermap.files import Writer, decode_value, encode_value, register_codec

from . import _sweep_legacy

__all__ = ["SweepResult", "SweepFailure", "CachedPoint", "read_sweep_file"]

# the type names of the files: fixed, wherever the classes live
TABLE_TYPE = "itermap.analysis._sweep:SweepResult"
POINT_TYPE = "itermap.analysis._sweep:CachedPoint"


@dataclasses.dataclass
class SweepFailure:
    """A point whose function raised.

    Attributes
    ----------
    params : dict
        The point's parameters.
    error : str
        The exception's type name.
    message : str
        ``str(exception)``.
    traceback : str
        The formatted traceback, from the worker.

    Examples
    --------
    >>> import warnings
    >>> from itermap.analysis import sweep
    >>> def inverse(x):
    ...     return 1 / x
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     table = sweep(inverse, {"x": [0, 2]}, executor="serial", progress=False)
    >>> table["result"].tolist(), [str(f) for f in table.failures]
    ([0.5], ["{'x': 0}: ZeroDivisionError: division by zero"])
    """

    params: dict
    error: str
    message: str
    traceback: str = ""

    def __str__(self):
        return f"{self.params}: {self.error}: {self.message}"


class SweepResult(itermap.Result):
    """The table of a sweep: one record per finished point, in grid order.

    Iterating yields one dict per point; ``result[name]`` a column (an array when the
    cells are numbers or arrays of one shape, else a list), ``result[i]`` the i-th
    record. The arguments are kept as attributes (``columns``: all column names).

    Parameters
    ----------
    params : sequence of str
        Parameter names (the leading columns).
    records : iterable of dict
        One dict per successful point.
    failures : iterable of SweepFailure
        The points whose function raised; they are not in the table.
    seed : dict, optional
        The root seed (``{"entropy": ..., "spawn_key": [...]}``) when the
        function took ``rng``, to reproduce the sweep.
    n_cached : int
        How many points were read from the cache rather than computed.

    Examples
    --------
    >>> import os, tempfile
    >>> from itermap.analysis import SweepResult, sweep
    >>> def square(x):
    ...     return {"y": x * x}
    >>> table = sweep(square, {"x": [1, 2, 3]}, executor="serial", progress=False)
    >>> [row for row in table]
    [{'x': 1, 'y': 1}, {'x': 2, 'y': 4}, {'x': 3, 'y': 9}]
    >>> table["y"]
    array([1, 4, 9])
    >>> path = table.save(os.path.join(tempfile.mkdtemp(), "squares"))
    >>> SweepResult.load(path).equals(table)
    True
    >>> table.to_pandas().shape
    (3, 2)
    """

    _checks = (itermap.Check(
        "failures", itermap.Status.POINTS_FAILED, "{n} points raised (see .failures): fix the "
        "function, then run the same sweep with cache=DIR to compute only those"),)

    def __init__(self, params: Iterable[str], records: Iterable[dict],
                 failures: Iterable[SweepFailure] = (), *, seed: dict | None = None,
                 n_cached: int = 0):
        self.params = tuple(params)
        self.records = list(records)
        self.failures = list(failures)
        self.seed = seed
        self.n_cached = int(n_cached)
        self.columns = self.params + tuple(dict.fromkeys(
            k for r in self.records for k in r if k not in self.params))

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(dict(r) for r in self.records)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.columns:
                raise KeyError(f"no column {key!r}; columns are {list(self.columns)}")
            return _column([r.get(key) for r in self.records])
        if isinstance(key, numbers.Integral):
            return dict(self.records[key])
        raise TypeError(f"index a SweepResult with a column name or a row number, "
                        f"not {type(key).__name__}")

    def __repr__(self):
        return (f"SweepResult({len(self)} points, {len(self.failures)} failed, "
                f"columns={list(self.columns)})")

    def _html_rows(self):
        yield "points", f"{len(self)} ({self.n_cached} from the cache)"
        yield "failed", str(len(self.failures))
        cols = list(self.columns)
        yield "columns", ", ".join(cols[:12]) + (f", ... ({len(cols)})" if len(cols) > 12 else "")

    def equals(self, other) -> bool:
        """True when both tables hold bitwise equal records in the same order."""
        return isinstance(other, SweepResult) and len(self) == len(other) \
            and self.columns == other.columns \
            and all(_equal(a, b) for a, b in zip(self.records, other.records))

    def to_pandas(self):
        """The table as a :class:`pandas.DataFrame` (array cells stay objects).

        Raises
        ------
        ImportError
            When pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is a test dependency
            raise ImportError("SweepResult.to_pandas needs pandas: pip install "
                              "'itermap[tables]' (or pip install pandas)") from exc
        return pd.DataFrame.from_records(self.records, columns=list(self.columns))

    def save(self, path) -> str:
        """Write the table to ``path`` (``.npz``, written atomically); returns the path.

        The file is an itermap file (:func:`itermap.load` reads it too).
        """
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        return itermap.save(self, path)

    @classmethod
    def load(cls, path) -> SweepResult:
        """Read a table written by :meth:`save` (by this version or an older one).

        Raises
        ------
        ValueError
            When the file is truncated, corrupt or not a sweep table.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        out = read_sweep_file(path)  # a folder, FIFO or device: a ValueError naming it
        if isinstance(out, CachedPoint):
            raise ValueError(f"{path} is a sweep cache entry, not a sweep table")
        return out


def _column(cells):
    if all(isinstance(c, (numbers.Number, np.generic)) and not isinstance(c, str)
           for c in cells):
        return np.asarray(cells)
    if cells and all(isinstance(c, np.ndarray) for c in cells) and \
            len({c.shape for c in cells}) == 1:
        return np.stack(cells)
    return list(cells)


def _equal(a, b):
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(
            _equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(
            _equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and \
            bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------- files
class CachedPoint:
    """One finished point in a sweep's cache: its key, parameters, function and outputs."""

    def __init__(self, key, params, function, outputs):
        self.key, self.params, self.function, self.outputs = key, params, function, outputs


def _columns(row: dict, writer: Writer, name: str):
    """``[[column, value], ...]``: any column name, even one that looks like a codec tag."""
    return [[k, encode_value(v, writer, f"{name}.{j}", f"{name}.{k}")]
            for j, (k, v) in enumerate(row.items())]


def _row(pairs, arrays) -> dict:
    if not isinstance(pairs, list):
        raise ValueError(f"a row must be a list of [column, value] pairs, got "
                         f"{type(pairs).__name__}")
    out = {}
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ValueError(f"a row entry must be [column, value], got {pair!r}")
        out[pair[0]] = decode_value(pair[1], arrays)
    return out


def _encode_table(t: SweepResult, writer: Writer) -> dict:
    return {"params": list(t.params), "columns": list(t.columns),
            "records": [_columns(r, writer, f"r{i}") for i, r in enumerate(t.records)],
            "failures": [[encode_value(f.params, writer, f"f{i}", f"failure {i}"), f.error,
                          f.message, f.traceback] for i, f in enumerate(t.failures)],
            "seed": encode_value(t.seed, writer, "seed", "seed"), "n_cached": t.n_cached}


def _decode_table(fields: dict, arrays: dict) -> SweepResult:
    try:
        records = [_row(r, arrays) for r in fields["records"]]
        failures = []
        for f in fields["failures"]:
            params, error, message, tb = f
            if not all(isinstance(s, str) for s in (error, message, tb)):
                raise ValueError(f"a failure's error, message and traceback are text: {f!r}")
            failures.append(SweepFailure(decode_value(params, arrays), error, message, tb))
        if not (isinstance(fields["params"], list) and isinstance(fields["columns"], list)):
            raise ValueError("params and columns must be lists of names")
        out = SweepResult(fields["params"], records, failures,
                          seed=decode_value(fields["seed"], arrays),
                          n_cached=fields["n_cached"])
        out.columns = tuple(fields["columns"])
    except Exception as exc:  # wrong JSON types, missing members: the file is damaged
        raise ValueError(f"a damaged sweep table ({type(exc).__name__}: {exc})") from exc
    return out


def _encode_point(p: CachedPoint, writer: Writer) -> dict:
    return {"key": p.key, "params": encode_value(p.params, writer, "p", "params"),
            "function": encode_value(p.function, writer, "fn", "function"),
            "outputs": _columns(p.outputs, writer, "c")}


def _decode_point(fields: dict, arrays: dict) -> CachedPoint:
    return CachedPoint(fields["key"], decode_value(fields["params"], arrays),
                       decode_value(fields["function"], arrays), _row(fields["outputs"], arrays))


register_codec(SweepResult, TABLE_TYPE, _encode_table, _decode_table)
register_codec(CachedPoint, POINT_TYPE, _encode_point, _decode_point)


def read_sweep_file(path):
    """The SweepResult or CachedPoint in ``path``; a ValueError when it holds neither."""
    try:
        out = itermap.load(path)
    except ValueError as exc:
        if _sweep_legacy.metadata_entry(path) == _sweep_legacy.META:  # the first format
            return _sweep_legacy.read(path, SweepResult, SweepFailure, CachedPoint)
        raise ValueError(f"{path} is not a readable sweep file ({exc})") from exc
    if not isinstance(out, SweepResult | CachedPoint):
        raise ValueError(f"{path} is not a readable sweep file: it holds a "
                         f"{type(out).__name__}")
    return out
