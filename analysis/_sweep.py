"""Parameter sweeps on local processes or any ``concurrent.futures`` executor: the driver
(the table in ``_sweep_table``, the pool in ``_sweep_pool``, the function's cache identity
in ``_function_identity``)."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import inspect
import json
import logging
import math
import numbers
import os
import tempfile
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from itertools import product
from typing import Any

import numpy as np

import itermap
from itermap.progress import progress_bar

from ._function_identity import function_identity
from ._sweep_pool import SerialExecutor, run_on_local_pool, run_point
from ._sweep_table import CachedPoint, SweepFailure, SweepResult, read_sweep_file

__all__ = ["sweep", "SweepResult", "SweepFailure"]

_FORMAT = "itermap-sweep"
_RESULT_KEY = "result"


# --------------------------------------------------------------------------- parameters
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


def _json_lost_types(value, path=""):
    """[path, type] of what JSON loses in a parameter, for the cache key only: a NumPy
    scalar's dtype (np.int32(2**31 - 1) + 1 wraps where the int does not) and a tuple (an
    array, as a list is); seeds ignore them, so np.linspace grids keep their streams."""
    if isinstance(value, np.generic):
        return [[path, value.dtype.str]]
    items = value.items() if isinstance(value, Mapping) else \
        enumerate(value) if isinstance(value, (list, tuple)) else ()
    own = [[path, "tuple"]] if isinstance(value, tuple) else []
    return own + sorted(s for k, v in items for s in _json_lost_types(v, f"{path}/{k}"))


def _digest(obj) -> bytes:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).digest()


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
    return v[()] if isinstance(v, np.ndarray) and v.ndim == 0 else v


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
            if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, (Sequence, np.ndarray)) \
                    or getattr(v, "ndim", 1) == 0:
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


def _function_name(function):
    f = function
    while hasattr(f, "func"):  # functools.partial
        f = f.func
    return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', type(f).__name__)}"


# --------------------------------------------------------------------------- the sweep
class _Sweep:
    """The state of one sweep: its points with their keys and seeds, where it runs, the
    cache, the outputs and failures so far, and the progress bar."""

    def __init__(self, function, grid, executor, seed, cache, progress):
        if not callable(function):
            raise TypeError(f"function must be callable, got {type(function).__name__}")
        if not isinstance(progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True or False, got {type(progress).__name__}")
        self.function = function
        self.points = _points(grid)
        self.names = list(dict.fromkeys(k for p in self.points for k in p))
        if "rng" in self.names:
            raise ValueError("'rng' cannot be a grid parameter: sweep hands each point its "
                             "own rng derived from seed")
        self.executor, self.n_workers = _executor(executor)
        self._seeds(seed, cache)
        self._keys(cache)
        n = len(self.points)
        self.outputs: list = [None] * n
        self.done = [False] * n
        self.failures: dict[int, SweepFailure] = {}
        self.uncached: list[str] = []
        self.n_cached = 0
        self.progress, self.bar = bool(progress), None

    def _seeds(self, seed, cache):
        """The root seed, and so each point's stream, when the function takes ``rng``."""
        takes_rng = _takes_rng(self.function)
        if seed is not None and not takes_rng:
            _root_seed(seed)  # validate the type even when unused
        if cache is not None and takes_rng and seed is None:
            raise ValueError("cache= with a function that takes rng needs a seed: without one "
                             "every run draws new streams and no cached point could be reused")
        self.root = _root_seed(seed) if takes_rng else None
        self.seed_json = None if self.root is None else {
            "entropy": self.root.entropy, "spawn_key": list(self.root.spawn_key)}

    def _keys(self, cache):
        """Canonical parameters, duplicates refused, cache keys and per-point seeds."""
        self.canon = [{k: _canonical(v, f"{k!r} at point {i}") for k, v in sorted(p.items())}
                      for i, p in enumerate(self.points)]
        digests = [_digest(c) for c in self.canon]
        seen: dict[bytes, int] = {}
        for i, d in enumerate(digests):
            if d in seen:
                raise ValueError(f"grid has duplicate points: {self.points[seen[d]]} (points "
                                 f"{seen[d]} and {i})")
            seen[d] = i
        self.cache_dir, self.identity = _cache_dir(cache, self.function)
        self.keys = [_digest({"params": c, "seed": self.seed_json, "function": self.identity,
                              **({"types": n} if (n := _json_lost_types(p)) else {})}).hex()[:32]
                     for c, p in zip(self.canon, self.points)]
        self.seeds = [None if self.root is None else _child_seed(self.root, d)
                      for d in digests]

    def read_cache(self):
        if self.cache_dir is None:
            return
        os.makedirs(self.cache_dir, exist_ok=True)
        _check_manifest(self.cache_dir, _function_name(self.function))
        for i, key in enumerate(self.keys):
            rec = _read_cached(self.cache_dir, key, self.canon[i], self.identity)
            if rec is not None:
                self.outputs[i], self.done[i] = rec, True
                self.n_cached += 1
                logging.getLogger(__name__).debug("sweep: %s read from the cache", self.points[i])

    def finish(self, fut, i):
        """Record the point ``i`` from its future: its columns, or its failure."""
        try:
            ok, value = fut.result()
            if ok:
                out = _flatten(value)
        except Exception as exc:  # the engine failed (pickling, lost worker, ...), or _flatten
            ok, value = False, (type(exc).__name__, str(exc), traceback.format_exc())
        if not ok:
            self.fail(i, *value)
            return
        self.outputs[i], self.done[i] = out, True
        if self.cache_dir is not None:
            try:
                itermap.save(CachedPoint(self.keys[i], self.canon[i], self.identity, out),
                             os.path.join(self.cache_dir, self.keys[i] + ".npz"))
            except (TypeError, ValueError, OSError) as exc:  # in the table, but not cached
                self.uncached.append(f"{self.points[i]}: {exc}")
        self.bar.update(1)

    def fail(self, i, error, message, tb=""):
        self.failures[i] = SweepFailure(dict(self.points[i]), error, message, tb)
        self.bar.update(1)

    def run(self):
        """Compute the points not in the cache; an interrupt says what survives."""
        todo = [i for i, d in enumerate(self.done) if not d]
        futures: dict = {}
        self.bar = progress_bar(total=len(self.points), initial=self.n_cached, desc="sweep",
                                unit="pt", disable=not self.progress)
        try:
            if self.executor is None:
                if todo:
                    run_on_local_pool(self.function, todo, self.points, self.seeds,
                                      self.n_workers, self.finish, self.fail)
            else:
                for i in todo:
                    fut = self.executor.submit(run_point, self.function, self.points[i],
                                               self.seeds[i])
                    if fut.done():  # e.g. "serial": record (and cache) it right away
                        self.finish(fut, i)
                    else:
                        futures[fut] = i
                for fut in cf.as_completed(futures):
                    self.finish(fut, futures[fut])
        except BaseException as exc:
            for fut in futures:
                fut.cancel()
            if not isinstance(exc, KeyboardInterrupt):
                raise
            self.bar.close()
            # one line that says what survives, in place of the pool's internals
            on_disk = None if self.cache_dir is None else sum(
                os.path.exists(os.path.join(self.cache_dir, key + ".npz")) for key in self.keys)
            raise KeyboardInterrupt(_interrupted(sum(self.done), on_disk, len(self.points),
                                                 self.cache_dir)) from None
        finally:
            self.bar.close()

    def table(self) -> SweepResult:
        """The records in grid order; warnings for uncached and failed points."""
        records = [{**p, **{f"{_RESULT_KEY}.{k}" if k in p else k: v for k, v in out.items()}}
                   for p, out, done in zip(self.points, self.outputs, self.done) if done]
        if self.uncached:
            warnings.warn(f"{len(self.uncached)} sweep points could not be cached (they are in "
                          f"the table): {self.uncached[0]}", RuntimeWarning, stacklevel=3)
        failed = [self.failures[i] for i in sorted(self.failures)]
        if failed:
            shown = "; ".join(str(f) for f in failed[:3])
            more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
            warnings.warn(f"{len(failed)} of {len(self.points)} sweep points failed and are left "
                          f"out of the table (see result.failures): {shown}{more}",
                          RuntimeWarning, stacklevel=3)
        return SweepResult(self.names, records, failed, seed=self.seed_json,
                           n_cached=self.n_cached)


def _executor(executor):
    """(an Executor or None for the local pool, the local pool's number of workers)."""
    if isinstance(executor, str):
        if executor != "serial":
            raise ValueError(f"executor must be None, an int, 'serial' or an Executor, "
                             f"got {executor!r}")
        return SerialExecutor(), None
    if executor is None or (isinstance(executor, numbers.Integral)
                            and not isinstance(executor, bool)):
        from joblib.externals import loky  # its cpu_count respects affinity and cgroup quotas

        n_workers = loky.cpu_count() if executor is None else int(executor)
        if n_workers < 1:
            raise ValueError(f"executor (number of worker processes) must be >= 1, "
                             f"got {n_workers}")
        return None, n_workers
    if not isinstance(executor, cf.Executor):
        raise TypeError(f"executor must be None, an int, 'serial' or a "
                        f"concurrent.futures.Executor, got {type(executor).__name__}")
    return executor, None


def _cache_dir(cache, function):
    """(the cache folder or None, the function's identity or None)."""
    if cache is None:
        return None, None
    if not isinstance(cache, (str, os.PathLike)):
        raise TypeError(f"cache must be a directory path, got {type(cache).__name__}")
    cache_dir = os.fspath(cache)
    if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
        raise ValueError(f"cache {cache_dir!r} exists and is not a directory")
    identity = function_identity(function)
    # None: a global that cannot be hashed (warned), so no cache
    return (None, None) if identity is None else (cache_dir, identity)


def _child_seed(root, digest):
    """The point's stream: a child of ``root`` keyed by the digest of its parameters."""
    words = tuple(int.from_bytes(digest[j:j + 4], "little") for j in range(0, 16, 4))
    return np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key + words,
                                  pool_size=root.pool_size)


def sweep(function: Callable[..., Any], grid: Mapping[str, Sequence] | Sequence[Mapping], *,
          executor: int | str | cf.Executor | None = None,
          seed: int | np.random.SeedSequence | np.random.Generator | None = None,
          cache: str | os.PathLike | None = None, progress: bool = True) -> SweepResult:
    """Run ``function(**params)`` for every point of ``grid`` and tabulate the results.

    Parameters
    ----------
    function : callable
        Called as ``function(**params)``, plus ``rng=<numpy Generator>`` when
        it has a parameter named ``rng``. It may return a dict (one column per
        key; nested dicts become ``"outer.inner"`` columns), a dataclass (one
        column per field), or any other value (a column ``"result"``). Workers
        receive it by :mod:`cloudpickle` (lambdas and notebook functions run
        too); pass fixed objects such as a map through :func:`functools.partial`.
    grid : dict of lists or list of dicts
        A dict ``{name: [values, ...]}`` sweeps the Cartesian product in
        row-major order (the last name varies fastest); a list of dicts
        lists the points explicitly. Values must be numbers, strings,
        booleans, None, arrays or lists/dicts of those.
    executor : None, int, "serial" or concurrent.futures.Executor
        None: a :mod:`loky` pool with a worker process per core; an int: that many
        processes. The pool is kept for the next sweep; each worker limits its BLAS
        threads to ``cores // workers``. A worker that dies (a segfault, an
        out-of-memory kill) fails only its own point (a :class:`SweepFailure` naming
        the exit code). ``"serial"``: run in the calling process. An Executor (e.g.
        Dask's ``client.get_executor(pure=False)``) is used as is and left running.
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        The root seed. Each point gets the child stream keyed by its parameters, so
        results do not depend on the executor, the order of completion or the rest
        of the grid. None draws fresh entropy (recorded in ``result.seed``).
    cache : str or os.PathLike, optional
        A directory. Each finished point is written there atomically; points already
        there (same parameters, seed and function) are read instead of computed. The
        function counts by content: its code, defaults, closure variables,
        :func:`functools.partial` arguments and every global it reads, followed into
        the user's own modules; installed libraries count by name and version. A
        global that cannot be hashed turns the cache off with a warning; no key sees
        environment variables or files. A damaged entry is recomputed with a warning;
        failed points are not cached.
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
        with ``cache``, a ``function`` bound to a value that cannot be hashed.
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
    file system.

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
    run = _Sweep(function, grid, executor, seed, cache, progress)
    run.read_cache()
    run.run()
    return run.table()


def _interrupted(n_done, n_cached, n_points, cache_dir):
    """The message of an interrupted sweep: how many points are cached, and how to resume."""
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


def _read_cached(cache_dir, key, canon, identity):
    """The outputs stored for this point, or None (with a warning when the file is bad)."""
    path = os.path.join(cache_dir, key + ".npz")
    if not os.path.exists(path):
        return None
    try:
        point = read_sweep_file(path)
        if (not isinstance(point, CachedPoint) or point.key != key
                or point.params != canon or point.function != identity):
            raise ValueError("it does not hold this point of this function")
        return point.outputs
    except Exception as exc:  # any damage at all: recompute, never abort the sweep
        warnings.warn(f"ignoring unreadable sweep cache entry {path} "
                      f"({type(exc).__name__}: {exc}); recomputing",
                      RuntimeWarning, stacklevel=4)
        return None
