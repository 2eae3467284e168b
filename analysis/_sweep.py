"""Parameter sweeps on local processes or any ``concurrent.futures`` executor.

:func:`sweep` runs ``function(**params)`` for every point of a grid and
gathers the results into a :class:`SweepResult` table. The same call runs on
worker processes of this machine (the default: a loky pool, through joblib),
in the calling process (``executor="serial"``), or on a cluster through any
:class:`concurrent.futures.Executor`, e.g. a Dask client's
``client.get_executor()``.

Reproducibility. Each point draws from its own stream: a child of the root
:class:`numpy.random.SeedSequence` whose spawn key is derived from the
point's parameters (``SeedSequence(root.entropy, spawn_key=root.spawn_key +
hash(params))``, the construction ``SeedSequence.spawn`` uses with a counter).
Keying the child by content rather than by position makes a point's stream
independent of the executor, of the number of workers, of the order of
completion, and of the rest of the grid, so a cached point stays valid when
the grid grows.

Caching. With ``cache=DIR`` every finished point is written to its own file
``DIR/<key>.npz`` (temporary file + :func:`os.replace`, so a killed sweep
never leaves a half-written point). The key is a SHA-256 of the canonical
JSON of the parameters, the root seed and the *identity of the function*: a
:func:`joblib.hash` (content hash; arrays and maps by their bytes) of its
code, of every value bound to it (``functools.partial`` arguments, closure
variables, defaults) and of every global it reads, by value, followed into
the user's own modules (their helpers, constants, lists, maps and class
attributes; see ``analysis/_function_identity.py``). Running the same sweep
again computes only the points whose file is missing; a changed function, a
changed global or a different bound map computes afresh. A damaged entry is
recomputed with a warning. No key sees environment variables or files the
function reads.

Local workers. The default pool is a :mod:`loky` process pool (through
:mod:`joblib`), which sends functions with :mod:`cloudpickle`, so functions
defined in ``__main__`` or a notebook, lambdas and closures run too. A worker
that dies (a segmentation fault, ``os._exit``, an out-of-memory kill) fails
only the point it was running: the points lost with it are run again, the
suspects one at a time, and the point that kills its worker alone is reported
as a :class:`SweepFailure`. Each worker limits its BLAS/OpenMP threads to
``cores // workers`` and exits as soon as the calling process is gone.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import inspect
import json
import math
import mmap
import numbers
import os
import re
import tempfile
import threading
import time
import traceback
import warnings
import weakref
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from itertools import product

import numpy as np

from itermap.backends import to_numpy
from itermap.files import write_npz_atomic

from ._function_identity import function_identity

__all__ = ["sweep", "SweepResult", "SweepFailure"]

_FORMAT = "itermap-sweep"
_FORMAT_VERSION = 1
_META = "__sweep__"
_RESULT_KEY = "result"


# --------------------------------------------------------------------------- values <-> JSON


def _canonical(value, where):
    """JSON-ready canonical form of a parameter value (for hashing)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, numbers.Complex):
        return {"__complex__": [_canonical(value.real, where), _canonical(value.imag, where)]}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"sweep parameter {where} is an object array; use numbers, "
                            "strings, booleans, None or lists of those")
        return {"__ndarray__": value.dtype.str, "shape": list(value.shape),
                "data": [_canonical(v, where) for v in value.ravel().tolist()]}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, where) for v in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"sweep parameter {where} is a dict with non-string keys")
        return {k: _canonical(v, f"{where}[{k!r}]") for k, v in sorted(value.items())}
    raise TypeError(
        f"sweep parameter {where} has type {type(value).__name__}; parameters must be "
        "numbers, strings, booleans, None, arrays or lists/dicts of those (pass fixed "
        "objects such as a map through functools.partial)")


def _digest(obj) -> bytes:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).digest()


def _encode_value(value, arrays, name):
    """JSON form of a result value; arrays and NumPy scalars keep their dtype exactly."""
    if isinstance(value, np.ndarray) or (hasattr(value, "__array__") and hasattr(value, "dtype")
                                         and not isinstance(value, np.generic)):
        a = np.asarray(to_numpy(value))
        if a.dtype == object:
            raise TypeError(f"cannot save {name}: object arrays are not supported")
        arrays[name] = a
        return {"__array__": name}
    if isinstance(value, np.generic):
        if isinstance(value, np.complexfloating):
            item = [float(value.real), float(value.imag)]
        else:
            item = value.item()
        if isinstance(item, float) and not math.isfinite(item):
            item = {"__float__": repr(item)}
        elif isinstance(item, list):
            item = [v if math.isfinite(v) else {"__float__": repr(v)} for v in item]
        return {"__np__": value.dtype.str, "v": item}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, complex):
        return {"__complex__": [_encode_value(value.real, arrays, name),
                                _encode_value(value.imag, arrays, name)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        out = [_encode_value(v, arrays, f"{name}.{i}") for i, v in enumerate(value)]
        return out if isinstance(value, list) else {"__tuple__": out}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot save {name}: dict keys must be strings")
        return {"__dict__": {k: _encode_value(v, arrays, f"{name}.{k}")
                             for k, v in value.items()}}
    raise TypeError(f"cannot save {name} of type {type(value).__name__}: sweep tables hold "
                    "numbers, strings, None, arrays and lists/dicts of those")


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


def _write_npz(path, meta, arrays):
    """Atomically write ``arrays`` plus JSON ``meta`` to ``path``."""
    arrays = dict(arrays)
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    write_npz_atomic(path, arrays, prefix=".sweep-")


def _read_npz(path):
    """(meta, arrays) of a file written by :func:`_write_npz`; ValueError when unreadable."""
    from itermap.files import MAX_EXPANSION as _MAX_EXPANSION
    from itermap.files import NpzReader

    try:  # a regular file, each member checked (declared size, header) before it is read
        with NpzReader(path, "path", expansion=_MAX_EXPANSION, kind="sweep file") as archive:
            arrays = {k: archive.read(k) for k in archive.members()}
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError,
            UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a readable sweep file (truncated or corrupt: "
                         f"{exc!r})") from exc
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a sweep file")
    if meta.get("format_version", 0) > _FORMAT_VERSION:
        raise ValueError(f"{path} uses sweep format {meta['format_version']}; this version "
                         f"reads up to {_FORMAT_VERSION}")
    return meta, arrays


# --------------------------------------------------------------------------- results


def _flatten(value, prefix=""):
    """Columns of one returned value: dicts and dataclasses are spread into columns."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            name = f"{prefix}{k}"
            if isinstance(v, Mapping) or (dataclasses.is_dataclass(v)
                                          and not isinstance(v, type)):
                out.update(_flatten(v, name + "."))
            else:
                out[name] = _scalar(v)
        return out
    return {prefix.rstrip(".") or _RESULT_KEY: _scalar(value)}


def _scalar(v):
    """0-d arrays become NumPy scalars; everything else is kept."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v[()]
    return v


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


class SweepResult:
    """The table of a sweep: one record per finished point, in grid order.

    Iterating yields one dict per point (parameters, then the function's
    outputs). ``result[name]`` returns a column (a NumPy array when the
    cells are numbers or arrays of one shape, else a list), ``result[i]``
    the i-th record.

    Attributes
    ----------
    params : tuple of str
        Parameter names (the leading columns).
    columns : tuple of str
        All column names.
    records : list of dict
        One dict per successful point.
    failures : list of SweepFailure
        Points whose function raised; they are not in the table.
    seed : dict or None
        The root seed (``{"entropy": ..., "spawn_key": [...]}``) when the
        function took ``rng``, to reproduce the sweep.
    n_cached : int
        How many points were read from the cache rather than computed.

    Parameters
    ----------
    params : sequence of str
        Parameter names.
    records : iterable of dict
        One dict per successful point.
    failures : iterable of SweepFailure
        The points whose function raised.
    seed : dict, optional
        The root seed, when the function took ``rng``.
    n_cached : int
        Points read from the cache.

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

    def __init__(self, params, records, failures=(), *, seed=None, n_cached=0):
        self.params = tuple(params)
        self.records = list(records)
        self.failures = list(failures)
        self.seed = seed
        self.n_cached = int(n_cached)
        cols = list(self.params)
        for r in self.records:
            for k in r:
                if k not in cols:
                    cols.append(k)
        self.columns = tuple(cols)

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

    def equals(self, other) -> bool:
        """True when both tables hold bitwise equal records in the same order."""
        if not isinstance(other, SweepResult) or len(self) != len(other):
            return False
        if self.columns != other.columns:
            return False
        return all(_equal(a, b) for a, b in zip(self.records, other.records))

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
            raise ImportError("SweepResult.to_pandas needs pandas: pip install pandas") from exc
        return pd.DataFrame.from_records(self.records, columns=list(self.columns))

    def save(self, path) -> str:
        """Write the table to ``path`` (``.npz``, written atomically); returns the path."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        arrays: dict[str, np.ndarray] = {}
        records = [{k: _encode_value(v, arrays, f"r{i}.{k}") for k, v in r.items()}
                   for i, r in enumerate(self.records)]
        failures = [{"params": _encode_value(f.params, arrays, f"f{i}"), "error": f.error,
                     "message": f.message, "traceback": f.traceback}
                    for i, f in enumerate(self.failures)]
        meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "kind": "table",
                "params": list(self.params), "columns": list(self.columns),
                "records": records, "failures": failures, "seed": self.seed,
                "n_cached": self.n_cached}
        _write_npz(path, meta, arrays)
        return path

    @classmethod
    def load(cls, path) -> SweepResult:
        """Read a table written by :meth:`save`.

        Raises
        ------
        ValueError
            When the file is truncated, corrupt or not a sweep table.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        meta, arrays = _read_npz(path)  # a folder, FIFO or device: a ValueError naming it
        if meta.get("kind") != "table":
            raise ValueError(f"{path} is a sweep cache entry, not a sweep table")
        try:
            records = [{k: _decode_value(v, arrays) for k, v in r.items()}
                       for r in meta["records"]]
            failures = [SweepFailure(_decode_value(f["params"], arrays), f["error"],
                                     f["message"], f["traceback"]) for f in meta["failures"]]
            out = cls(meta["params"], records, failures, seed=meta["seed"],
                      n_cached=meta["n_cached"])
            out.columns = tuple(meta["columns"])
        except Exception as exc:  # wrong JSON types, missing members: the file is damaged
            raise ValueError(f"{path} is a damaged sweep table ({type(exc).__name__}: "
                             f"{exc})") from exc
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


# --------------------------------------------------------------------------- grid, seeds


def _points(grid):
    """The grid as a list of parameter dicts."""
    if isinstance(grid, Mapping):
        names = list(grid)
        values = []
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"grid keys must be parameter names (str), got {name!r}")
            v = grid[name]
            if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, (Sequence, np.ndarray)):
                raise TypeError(f"grid[{name!r}] must be a list of values, got "
                                f"{type(v).__name__}; wrap a single value in a list")
            v = list(v)
            if not v:
                raise ValueError(f"grid[{name!r}] is empty: the sweep would have no points")
            values.append(v)
        if not names:
            raise ValueError("grid is empty: the sweep would have no points")
        return [dict(zip(names, combo)) for combo in product(*values)]
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence):
        raise TypeError(f"grid must be a dict of lists (Cartesian product) or a list of dicts, "
                        f"got {type(grid).__name__}")
    if not grid:
        raise ValueError("grid is empty: the sweep would have no points")
    points = []
    for i, p in enumerate(grid):
        if not isinstance(p, Mapping):
            raise TypeError(f"grid[{i}] must be a dict of parameters, got {type(p).__name__}")
        for k in p:
            if not isinstance(k, str):
                raise TypeError(f"grid[{i}] has a non-string parameter name {k!r}")
        points.append(dict(p))
    return points


def _root_seed(seed):
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(0, 2**63, size=4).tolist())
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)):
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        return np.random.SeedSequence(int(seed))
    raise TypeError(f"seed must be an int, a numpy Generator or SeedSequence, or None, "
                    f"got {type(seed).__name__}")


def _takes_rng(function):
    try:
        sig = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    p = sig.parameters.get("rng")
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


def _cpu_count():
    from joblib.externals import loky

    return loky.cpu_count()  # respects CPU affinity and cgroup quotas


def _function_name(function):
    f = function
    while hasattr(f, "func"):  # functools.partial
        f = f.func
    return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', type(f).__name__)}"


# --------------------------------------------------------------------------- function identity
# (analysis/_function_identity.py: what the cache key covers, and what it cannot see)


# --------------------------------------------------------------------------- worker side


_marks: dict[str, mmap.mmap] = {}  # in a worker: the start-marks file of the current sweep


def _mark_started(path, i):
    """Set byte ``i`` of the file ``path`` (mapped once per worker and sweep)."""
    marks = _marks.get(path)
    if marks is None:
        for old in _marks.values():
            old.close()
        _marks.clear()
        with open(path, "r+b") as fh:
            marks = _marks[path] = mmap.mmap(fh.fileno(), 0)
    marks[i] = 1  # a shared mapping: the caller sees it even if this process dies next


def _run_point(function, params, seed_seq, started=None):
    """Run one point in a worker; never raises (the error travels back as data).

    ``started`` is ``(path, i)``: the point first sets byte ``i`` of that file, which
    tells the caller, should the worker die, that this point was running rather than
    waiting in the queue.
    """
    try:
        if started is not None:
            _mark_started(*started)
        kwargs = dict(params)
        if seed_seq is not None:
            kwargs["rng"] = np.random.default_rng(seed_seq)
        return True, function(**kwargs)
    except Exception as exc:
        return False, (type(exc).__name__, str(exc), traceback.format_exc())


class _SerialExecutor(cf.Executor):
    """Runs each submitted call at once in the calling process."""

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as exc:  # KeyboardInterrupt and friends stop the sweep
            fut.set_exception(exc)
        return fut


# Thread-count variables read by OpenBLAS, MKL, BLIS, OpenMP (torch too), Accelerate, numexpr
# when they load (threadpoolctl then limits those already loaded), and by itermap's own pools
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                "ITERMAP_NUM_THREADS")
_IDLE_WORKER_TIMEOUT = 300  # s; joblib's choice: idle workers exit, a new sweep respawns them
_WATCH_INTERVAL = 0.2  # s between a worker's checks that the calling process is alive


def _init_worker(driver_pid, n_threads):
    """Worker initializer: limit BLAS threads and itermap's own, and exit when the calling
    process dies."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n_threads)
    os.environ["ITERMAP_NUM_THREADS"] = str(n_threads)
    if os.getppid() != driver_pid:
        os._exit(1)
    threading.Thread(target=_exit_with_driver, args=(driver_pid,), daemon=True,
                     name="itermap-sweep-watchdog").start()


def _exit_with_driver(driver_pid):
    # loky's workers outlive a killed parent (an idle one until its timeout, a busy one until
    # its point ends); once the parent is gone the worker is adopted, and getppid changes
    while os.getppid() == driver_pid:
        time.sleep(_WATCH_INTERVAL)
    os._exit(1)


_pools: dict[tuple[int, int], object] = {}  # (workers, threads each) -> loky pool
_pools_lock = threading.Lock()


def _threads_per_worker(n_workers):
    """``cores // n_workers``, or less where the environment already asks for fewer."""
    from joblib.externals import loky

    n_threads = max(1, loky.cpu_count() // n_workers)
    for var in _THREAD_VARS:  # e.g. OMP_NUM_THREADS=1 set for the calling process
        value = os.environ.get(var, "")
        if value.strip().isdigit() and int(value) >= 1:
            n_threads = min(n_threads, int(value))
    return n_threads


def _new_pool(n_workers, n_threads):
    """A loky pool of ``n_workers`` processes with ``n_threads`` BLAS threads each."""
    from joblib.externals import loky

    return loky.ProcessPoolExecutor(
        max_workers=n_workers, timeout=_IDLE_WORKER_TIMEOUT, initializer=_init_worker,
        initargs=(os.getpid(), n_threads), env={v: str(n_threads) for v in _THREAD_VARS})


def _local_pool(n_workers):
    """The shared pool of ``n_workers`` processes, started on first use and kept for reuse."""
    key = (n_workers, _threads_per_worker(n_workers))
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = _new_pool(*key)
        return pool


def _discard_pool(pool, *, quiet=False):
    """Drop a broken or interrupted pool (its workers are killed); the next use starts anew.

    ``quiet``: silence the pool's manager thread meanwhile. Killed under work in flight
    (an interrupt), loky's manager thread can trip over its own cleared work items and
    print a second traceback after the user's KeyboardInterrupt.
    """
    with _pools_lock:
        for key in [k for k, v in _pools.items() if v is pool]:
            del _pools[key]
    manager = getattr(pool, "_executor_manager_thread", None)
    if quiet and isinstance(manager, threading.Thread):
        _silence(manager)
    pool.shutdown(wait=False, kill_workers=True)
    if quiet and isinstance(manager, threading.Thread):
        manager.join(timeout=5.0)


_silenced: weakref.WeakSet = weakref.WeakSet()  # threads whose exceptions are not printed
_hook_lock = threading.Lock()


def _silence(thread):
    """Keep ``thread``'s uncaught exception from being printed (threading.excepthook)."""
    with _hook_lock:
        if not _silenced and not getattr(threading.excepthook, "_itermap_quiet", False):
            previous = threading.excepthook

            def quiet(args, _previous=previous):
                if args.thread is not None and args.thread in _silenced:
                    return
                _previous(args)

            quiet._itermap_quiet = True
            threading.excepthook = quiet
        _silenced.add(thread)


def _worker_death(exc, started):
    """(error, message) of a point whose worker died."""
    codes = re.search(r"exit codes? of the workers? (?:are|is) \{([^}]*)\}", str(exc))
    code = codes.group(1) if codes else "unknown"
    if started:
        return (type(exc).__name__,
                f"the worker process died while running this point (exit code {code}): a "
                "crash in native code (segmentation fault), os._exit, or the operating "
                "system killing it (e.g. out of memory)")
    return type(exc).__name__, f"the worker pool broke before this point started: {exc}"


def _pool_lost(fut) -> bool:
    """Whether the future failed because its pool broke or was shut down under it."""
    from joblib.externals.loky.process_executor import ShutdownExecutorError

    return fut.cancelled() or isinstance(fut.exception(),
                                         (BrokenProcessPool, ShutdownExecutorError))


def _run_on_local_pool(function, todo, points, seeds, n_workers, finish, fail):
    """Run the points ``todo`` on the local pool; a dead worker fails only its own point.

    When a worker dies, loky fails every unfinished future of the pool. The points that
    had not started are submitted again; those that had (each marks its start in a
    shared file) are suspects, run again one at a time once the rest is done, on a pool of one
    worker that this sweep alone uses, and one whose worker dies while it runs alone is
    the one that killed it. (The shared pool may also break under a sweep running in
    another thread; its points are then lost and rerun the same way.)
    """
    from joblib.externals.loky.process_executor import ShutdownExecutorError

    pool_gone = (BrokenProcessPool, ShutdownExecutorError)
    fd, marks = tempfile.mkstemp(prefix="itermap-sweep-", suffix=".marks")
    os.ftruncate(fd, len(points))  # one zero byte per point; a worker sets its point's

    def ran(i):
        os.lseek(fd, i, os.SEEK_SET)
        return os.read(fd, 1) == b"\x01"

    queue, suspects = sorted(todo), []
    pool = alone = None
    blind_breaks = 0
    try:
        while queue:
            pool = _local_pool(n_workers)
            futures = {}
            try:
                for i in queue:
                    futures[pool.submit(_run_point, function, points[i], seeds[i],
                                        (marks, i))] = i
            except pool_gone:
                pass  # broke while submitting; what was not submitted waits for the next round
            submitted = set(futures.values())
            lost = [i for i in queue if i not in submitted]
            for fut in cf.as_completed(futures):
                if _pool_lost(fut):
                    lost.append(futures[fut])
                else:
                    finish(fut, futures[fut])
            if not lost:
                break
            _discard_pool(pool)
            running = [i for i in lost if ran(i)]
            if not running:  # no point was running (an idle worker was killed?): retry once
                blind_breaks += 1
                if blind_breaks > 1:
                    running = lost
            suspects += running
            queue = sorted(set(lost) - set(running))
        pool = None
        for i in sorted(suspects):
            os.lseek(fd, i, os.SEEK_SET)
            os.write(fd, b"\x00")
            alone = alone or _new_pool(1, _threads_per_worker(1))
            try:
                fut = alone.submit(_run_point, function, points[i], seeds[i], (marks, i))
                exc = fut.exception()
            except BrokenProcessPool as broken:
                exc = broken
            if isinstance(exc, BrokenProcessPool):
                alone.shutdown(wait=False, kill_workers=True)
                alone = None
                fail(i, *_worker_death(exc, ran(i)))
            else:
                finish(fut, i)
    except BaseException:
        if pool is not None:  # an interrupt: stop the points still running
            _discard_pool(pool, quiet=True)
        raise
    finally:
        if alone is not None:
            alone.shutdown(wait=False, kill_workers=True)
        os.close(fd)
        try:
            os.remove(marks)
        except OSError:  # pragma: no cover - Windows, while a worker still maps it
            pass


# --------------------------------------------------------------------------- the sweep


def sweep(function, grid, *, executor=None, seed=None, cache=None, progress=True):
    """Run ``function(**params)`` for every point of ``grid`` and tabulate the results.

    Parameters
    ----------
    function : callable
        Called as ``function(**params)``, plus ``rng=<numpy Generator>`` when
        it has a parameter named ``rng``. It may return a dict (one column
        per key; nested dicts become ``"outer.inner"`` columns), a dataclass
        (one column per field), or any other value (one column named
        ``"result"``); 0-d arrays become scalars. Workers receive it by
        :mod:`cloudpickle`, so a function defined in ``__main__``, a
        notebook, a lambda or a closure runs too; pass fixed objects such as
        a map through :func:`functools.partial`.
    grid : dict of lists or list of dicts
        A dict ``{name: [values, ...]}`` sweeps the Cartesian product in
        row-major order (the last name varies fastest); a list of dicts
        lists the points explicitly. Values must be numbers, strings,
        booleans, None, arrays or lists/dicts of those.
    executor : None, int, "serial" or concurrent.futures.Executor
        None: a :mod:`loky` pool (through :mod:`joblib`) with one worker
        process per available core; an int: a pool of that many processes.
        The pool is kept for the next sweep (idle workers exit after 5
        minutes); each worker limits its BLAS and OpenMP threads to
        ``cores // workers`` (or fewer, where ``OMP_NUM_THREADS``,
        ``OPENBLAS_NUM_THREADS`` or the like ask for fewer) and exits when
        the calling process dies. A
        worker that dies (a segmentation fault, ``os._exit``, an
        out-of-memory kill) fails only the point it was running: the points
        lost with it are run again, the ones that were running one at a time
        alone, and a point whose worker dies while it runs alone becomes a
        :class:`SweepFailure` naming the exit code. ``"serial"``: run in
        the calling process (for debugging and functions that cannot be
        pickled). An Executor (e.g. a Dask ``client.get_executor()``) is
        used as is and left running; on a ``concurrent.futures``
        ProcessPoolExecutor you pass, one dead worker breaks the whole pool.
        Dask treats submitted calls as pure by default and may hand back the
        result of an identical earlier call; for a function with side
        effects pass ``client.get_executor(pure=False)``.
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        The root seed. Each point gets the child stream keyed by its
        parameters, so results do not depend on the executor, the number of
        workers, the order of completion or the rest of the grid. None draws
        fresh entropy (recorded in ``result.seed``).
    cache : str or os.PathLike, optional
        A directory. Each finished point is written there atomically as soon
        as it completes; points already there (same parameters, seed and
        function) are read instead of computed. The function counts by
        content: its code, its defaults, its closure variables, the
        arguments a :func:`functools.partial` binds (arrays and maps by
        their values), and every global it reads, by value: module-level
        data (lists, dicts, arrays, maps), and the helpers, constants and
        class attributes of the user's own modules (those outside the
        standard library and site-packages), followed through the helpers
        they call; installed libraries count by name and version;
        :func:`joblib.hash` hashes them. So a changed function, a changed
        global (``NET = random_rnn(3, rng=1)`` where it was ``rng=0``) or
        another bound map is computed afresh, and the same map built again
        is a cache hit. When a global the function reads cannot be hashed
        (a lock, an open file), the sweep warns and runs without its cache.
        No key sees environment variables, files the function reads, or
        globals reached by computed names (``getattr(module, name)``). A
        damaged entry is recomputed with a warning. Failed points are not
        cached.
    progress : bool
        Show a progress bar (when :mod:`tqdm` is installed).

    Returns
    -------
    SweepResult
        One record per successful point in grid order; ``failures`` lists
        the points whose function raised (a warning names them too).

    Raises
    ------
    TypeError
        For a non-callable ``function``, a malformed ``grid``, unsupported
        parameter values, a bad ``executor``/``seed``/``cache`` type, or,
        with ``cache``, a ``function`` bound (closure, default, partial
        argument) to a value that cannot be hashed
        (a lock, an open file).
    ValueError
        For an empty grid, duplicate points, a parameter named ``rng``, a
        cache without a seed for a function taking ``rng``, or a cache
        directory holding another function's results.

    Notes
    -----
    On a Dask cluster (``pip install itermap[cluster]``)::

        from dask.distributed import Client
        client = Client("scheduler-address:8786")   # or Client(LocalCluster(...))
        table = sweep(f, grid, executor=client.get_executor(), seed=0, cache="runs/f")

    The cache is written by the calling process, so workers need no shared
    file system. A ``concurrent.futures.ProcessPoolExecutor`` you pass
    yourself needs the sweep under ``if __name__ == "__main__":`` in
    scripts and a function importable by name; the default pool needs
    neither.

    Examples
    --------
    >>> from itermap.analysis import sweep
    >>> def f(a, b, rng):
    ...     return {"sum": a + b, "noise": rng.random()}
    >>> res = sweep(f, {"a": [1, 2], "b": [10, 20]}, executor="serial", seed=0,
    ...             progress=False)
    >>> res.columns
    ('a', 'b', 'sum', 'noise')
    >>> res["sum"].tolist()
    [11, 21, 12, 22]
    >>> again = sweep(f, [{"a": 2, "b": 20}], executor="serial", seed=0, progress=False)
    >>> bool(again["noise"][0] == res["noise"][3])   # a point's stream depends on it alone
    True
    """
    # long: the submission loop owns the pool, the cache and crash recovery together, so a
    # dead worker's points are resubmitted in one place
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False, got {type(progress).__name__}")
    points = _points(grid)
    names: list[str] = []
    for p in points:
        for k in p:
            if k not in names:
                names.append(k)
    if "rng" in names:
        raise ValueError("'rng' cannot be a grid parameter: sweep hands each point its own "
                         "rng derived from seed")
    n_workers = None
    if isinstance(executor, str):
        if executor != "serial":
            raise ValueError(f"executor must be None, an int, 'serial' or an Executor, "
                             f"got {executor!r}")
    elif executor is None or (isinstance(executor, numbers.Integral)
                              and not isinstance(executor, bool)):
        n_workers = _cpu_count() if executor is None else int(executor)
        if n_workers < 1:
            raise ValueError(f"executor (number of worker processes) must be >= 1, "
                             f"got {n_workers}")
        executor = None
    elif not isinstance(executor, cf.Executor):
        raise TypeError(f"executor must be None, an int, 'serial' or a "
                        f"concurrent.futures.Executor, got {type(executor).__name__}")
    takes_rng = _takes_rng(function)
    if seed is not None and not takes_rng:
        _root_seed(seed)  # validate the type even when unused
    if cache is not None and takes_rng and seed is None:
        raise ValueError("cache= with a function that takes rng needs a seed: without one "
                         "every run draws new streams and no cached point could be reused")
    root = _root_seed(seed) if takes_rng else None
    seed_json = None if root is None else {
        "entropy": root.entropy, "spawn_key": list(root.spawn_key)}

    canon = [{k: _canonical(v, f"{k!r} at point {i}") for k, v in sorted(p.items())}
             for i, p in enumerate(points)]
    param_digests = [_digest(c) for c in canon]
    seen: dict[bytes, int] = {}
    for i, d in enumerate(param_digests):
        if d in seen:
            raise ValueError(f"grid has duplicate points: {points[seen[d]]} (points "
                             f"{seen[d]} and {i})")
        seen[d] = i
    cache_dir = identity = None
    if cache is not None:
        if not isinstance(cache, (str, os.PathLike)):
            raise TypeError(f"cache must be a directory path, got {type(cache).__name__}")
        cache_dir = os.fspath(cache)
        if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
            raise ValueError(f"cache {cache_dir!r} exists and is not a directory")
        identity = function_identity(function)
        if identity is None:  # a global that cannot be hashed (warned): no cache
            cache_dir = None
    keys = [_digest({"params": c, "seed": seed_json, "function": identity}).hex()[:32]
            for c in canon]
    seeds = [None] * len(points)
    if root is not None:
        for i, d in enumerate(param_digests):
            words = tuple(int.from_bytes(d[j:j + 4], "little") for j in range(0, 16, 4))
            seeds[i] = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key + words,
                                              pool_size=root.pool_size)

    outputs: list = [None] * len(points)
    done = [False] * len(points)
    failures: dict[int, SweepFailure] = {}
    n_cached = 0
    if cache_dir is not None:
        os.makedirs(cache_dir, exist_ok=True)
        _check_manifest(cache_dir, _function_name(function))
        for i, key in enumerate(keys):
            rec = _read_cached(cache_dir, key, canon[i], identity)
            if rec is not None:
                outputs[i], done[i] = rec, True
                n_cached += 1
    if isinstance(executor, str):  # "serial", checked above
        executor = _SerialExecutor()

    bar = None
    if progress:
        try:
            from itermap.progress import progress_bar

            bar = progress_bar(total=len(points), initial=n_cached, desc="sweep", unit="pt")
        except ImportError:  # pragma: no cover
            bar = None
    futures: dict = {}
    uncached: list[str] = []

    def finish(fut, i):
        try:
            ok, value = fut.result()
        except Exception as exc:  # the engine failed (pickling, lost worker, ...)
            ok, value = False, (type(exc).__name__, str(exc), traceback.format_exc())
        if ok:
            try:
                out = _flatten(value)
            except Exception as exc:
                ok, value = False, (type(exc).__name__, str(exc), traceback.format_exc())
        if ok:
            outputs[i], done[i] = out, True
            if cache_dir is not None:
                try:
                    _write_cached(cache_dir, keys[i], canon[i], identity, out)
                except (TypeError, ValueError, OSError) as exc:  # kept in the table, but not cached
                    uncached.append(f"{points[i]}: {exc}")
            if bar is not None:
                bar.update(1)
        else:
            fail(i, *value)

    def fail(i, error, message, tb=""):
        failures[i] = SweepFailure(dict(points[i]), error, message, tb)
        if bar is not None:
            bar.update(1)

    todo = [i for i in range(len(points)) if not done[i]]
    try:
        if executor is None:
            if todo:
                _run_on_local_pool(function, todo, points, seeds, n_workers, finish, fail)
        else:
            for i in todo:
                fut = executor.submit(_run_point, function, points[i], seeds[i])
                if fut.done():  # e.g. "serial": record (and cache) it right away
                    finish(fut, i)
                else:
                    futures[fut] = i
            for fut in cf.as_completed(futures):
                finish(fut, futures[fut])
    except KeyboardInterrupt:
        for fut in futures:
            fut.cancel()
        if bar is not None:
            bar.close()
            bar = None
        # one line that says what survives, in place of the pool's internals
        on_disk = None if cache_dir is None else sum(
            os.path.exists(os.path.join(cache_dir, key + ".npz")) for key in keys)
        raise KeyboardInterrupt(_interrupted(sum(done), on_disk, len(points),
                                             cache_dir)) from None
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()

    records = []
    for i, p in enumerate(points):
        if done[i]:
            rec = dict(p)
            for k, v in outputs[i].items():
                rec[f"{_RESULT_KEY}.{k}" if k in p else k] = v
            records.append(rec)
    if uncached:
        warnings.warn(f"{len(uncached)} sweep points could not be cached (they are in the "
                      f"table): {uncached[0]}", RuntimeWarning, stacklevel=2)
    failed = [failures[i] for i in sorted(failures)]
    if failed:
        shown = "; ".join(str(f) for f in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        warnings.warn(f"{len(failed)} of {len(points)} sweep points failed and are left out "
                      f"of the table (see result.failures): {shown}{more}",
                      RuntimeWarning, stacklevel=2)
    return SweepResult(names, records, failed, seed=seed_json, n_cached=n_cached)


def _interrupted(n_done, n_cached, n_points, cache_dir):
    """The message of an interrupted sweep: how many points are cached (counted on disk),
    and how to resume."""
    if cache_dir is None:
        return (f"sweep interrupted: {n_done} of {n_points} points done, none cached (pass "
                "cache=DIR to keep finished points across an interrupt)")
    return (f"sweep interrupted: {n_cached} of {n_points} points are cached in "
            f"{cache_dir}; run the same sweep again to resume")


# --------------------------------------------------------------------------- cache files


def _check_manifest(cache_dir, function_name):
    path = os.path.join(cache_dir, "sweep.json")
    if os.path.exists(path):
        try:
            from itermap.files import open_regular_file

            with open_regular_file(path, "cache") as fh:  # a FIFO there must not block
                stored = json.load(fh).get("function")
        except (OSError, ValueError, AttributeError, RecursionError):
            stored = None
        if stored is not None and stored != function_name:
            raise ValueError(f"cache directory {cache_dir!r} holds results of {stored}, not "
                             f"{function_name}; use another directory")
        if stored is not None:
            return
    fd, tmp = tempfile.mkstemp(prefix=".sweep-", suffix=".tmp", dir=cache_dir)
    with os.fdopen(fd, "w") as fh:
        json.dump({"format": _FORMAT, "function": function_name}, fh)
    os.replace(tmp, path)


def _write_cached(cache_dir, key, canon, identity, out):
    arrays: dict[str, np.ndarray] = {}
    cols = {k: _encode_value(v, arrays, f"c.{k}") for k, v in out.items()}
    meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "kind": "point",
            "key": key, "params": canon, "function": identity, "outputs": cols}
    _write_npz(os.path.join(cache_dir, key + ".npz"), meta, arrays)


def _read_cached(cache_dir, key, canon, identity):
    """The outputs stored for this point, or None (with a warning when the file is bad)."""
    path = os.path.join(cache_dir, key + ".npz")
    if not os.path.exists(path):
        return None
    try:
        meta, arrays = _read_npz(path)
        if (meta.get("kind") != "point" or meta.get("key") != key
                or meta.get("params") != canon or meta.get("function") != identity):
            raise ValueError("it does not hold this point of this function")
        outputs = meta.get("outputs")
        if not isinstance(outputs, dict) or not all(isinstance(k, str) for k in outputs):
            raise ValueError(f"its outputs are a {type(outputs).__name__}, not a dict of "
                             "columns")
        return {k: _decode_value(v, arrays) for k, v in outputs.items()}
    except Exception as exc:  # any damage at all: recompute, never abort the sweep
        warnings.warn(f"ignoring unreadable sweep cache entry {path} "
                      f"({type(exc).__name__}: {exc}); recomputing",
                      RuntimeWarning, stacklevel=3)
        return None
