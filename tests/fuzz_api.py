"""A fuzz catalogue of the public API: every parameter of every public callable, given
bad values of every kind.

Each outcome is classified:

- ``ok``: a result whose arrays are finite (or NaN only where the case documents it);
- ``named``: a ValueError or TypeError whose message names the parameter;
- ``unnamed``: a ValueError or TypeError that does not name it;
- ``accepted``: a value that must be refused returned a result;
- ``nonfinite``: a result with undocumented NaN or inf;
- ``other``: any other exception type.

Run ``python -m tests.fuzz_api`` for the tally; ``tests/test_fuzz.py`` asserts that
every column but ``ok`` and ``named`` is zero.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import itermap
import itermap.analysis as analysis
import itermap.linalg
from itermap import BlockMatrix, IterativeMap
from itermap.analysis import plots
from itermap.systems import henon, linear, logistic, standard_map

RNN = itermap.random_rnn(5, gain=0.9, rng=0)
MLP = IterativeMap.from_mlp([np.full((3, 2), 0.5), np.full((1, 3), 0.5)], activation="tanh")
HENON = henon()
FLIP_FLOP = itermap.load(Path(analysis.__file__).parent / "data" / "flip_flop_rnn.npz")
EMBED_X = np.random.default_rng(0).normal(size=(16, 4))
TMP = Path(tempfile.mkdtemp(prefix="itermap-fuzz-"))


class _Missing:
    def __repr__(self):
        return "<missing>"


MISSING = _Missing()


@dataclass
class Param:
    """A parameter: its valid value, its kind, and the names a message may use for it."""

    value: object
    kind: str
    optional: bool = False
    names: tuple = ()
    size_like: bool = False


@dataclass
class Case:
    fn: Callable
    params: dict
    positional: tuple = ()
    nan_ok: bool = False          # the result may hold NaN by documentation
    passes_nan: bool = False      # the inner loop (map methods) passes NaN/inf through
    nan_fields: tuple = ()        # result fields documented to hold NaN
    answers: tuple = ()           # exception types that are the function's documented answer
    skip: dict = field(default_factory=dict)   # param -> bad labels not to try
    slow: bool = False            # a valid call trains or searches: hypothesis leaves it out


def _bad_values(p: Param):
    """(label, value, must_refuse) for a parameter of kind ``p.kind``."""
    v, k = p.value, p.kind
    out = []
    if not p.optional:
        out.append(("None", None, True))
    out.append(("str", "abc", True))
    if k in ("int>=1", "int>=0", "int>=2"):
        out += [("float 1.5", 1.5, True), ("negative", -1, True), ("bool", True, True),
                ("nan", float("nan"), True), ("complex", 1j, True), ("list", [1, 2], True)]
        if k == "int>=1":
            out.append(("zero", 0, True))
        if p.size_like:  # would allocate more than any machine has
            out += [("huge", 10 ** 12, True), ("beyond float", 10 ** 400, True)]
    elif k in ("float>0", "float>=0", "float"):
        out += [("nan", float("nan"), True), ("inf", float("inf"), True),
                ("complex", 1 + 1j, True), ("list", [1.0, 2.0], True)]
        if k == "float>0":
            out += [("zero", 0.0, True), ("negative", -1.0, True)]
        if k == "float>=0":
            out.append(("negative", -1.0, True))
    elif k in ("state", "array"):
        a = np.asarray(v, dtype=float)
        out += [("complex", a.astype(complex) + 1j, True), ("object", a.astype(object), True),
                ("nan", np.full_like(a, np.nan), True), ("inf", np.full_like(a, np.inf), True),
                ("empty", np.zeros((0,) + a.shape[1:]), True),
                ("wrong shape", np.zeros(a.shape[:-1] + (a.shape[-1] + 1,)) if a.ndim
                 else np.zeros(3), True),
                ("3-d", np.zeros((2, 2, 2, 2)), True)]
        out += _array_kinds(a)
    elif k == "map":
        out += [("int", 3, True), ("object", object(), True), ("array", np.zeros(3), True)]
    elif k == "callable":
        out += [("int", 3, True), ("object", object(), True)]
    elif k == "labels":
        a = np.asarray(v)
        out += [("negative class", np.full_like(a, -1), True), ("float", a + 0.5, True),
                ("nan", np.full(a.shape, np.nan), True), ("wrong length", a[:-1], True),
                ("complex", a.astype(complex), True), ("empty", a[:0], True),
                ("masked", np.ma.masked_array(a, mask=a == a.flat[0]), True),
                ("mixed namespaces", _strict(a), True)]
    elif k == "probability":
        out += [("nan", float("nan"), True), ("negative", -0.1, True), ("above 1", 1.5, True),
                ("complex", 1j, True)]
    elif k == "executor":
        out += [("unknown", "no-such-executor", True), ("zero", 0, True),
                ("object", object(), True)]
    elif k == "choice":
        out += [("unknown", "no-such-choice", True), ("int", 3, True)]
    elif k == "rng":
        out += [("negative", -1, True), ("float", 1.5, True), ("object", object(), True)]
    elif k == "bool":
        out += [("int", 3, True)]
    elif k == "sizes":
        out += [("float", [1.5, 2], True), ("zero", [0, 2], True), ("negative", [-1], True),
                ("empty", [], True), ("bool", [True, 2], True), ("nested", [[1, 2]], True)]
    elif k == "values":
        out += [("nan", [np.nan, 1.0], True), ("inf", [np.inf], True),
                ("complex", [1j], True), ("empty", [], True), ("2-d", [[1.0, 2.0]], True)]
        out += _array_kinds(np.asarray(v, dtype=float))
    elif k == "path":
        out += [("int", 3, True), ("empty", "", True), ("folder", str(TMP), True),
                ("missing", str(TMP / "no-such-file.npz"), True)]
        out = [o for o in out if o[0] != "str"]  # "abc" is a valid file name
    elif k == "result":
        out += [("int", 3, True), ("object", object(), True)]
    elif k == "blocks":
        key, blk = next(iter(v.items()))
        if isinstance(blk, np.ndarray):
            out += [("float key", {(key[0] + 0.5, key[1]): blk}, True),
                    ("missing block", {(7, 0): blk}, True),
                    ("complex", {key: blk.astype(complex) + 1j}, True),
                    ("nan", {key: np.full_like(blk, np.nan)}, True),
                    ("object", {key: blk.astype(object)}, True),
                    ("masked", {key: np.ma.masked_array(blk, mask=blk == blk.flat[0])}, True),
                    ("matrix", {key: _matrix(blk)}, False),
                    ("big-endian", {key: blk.astype(">f8")}, False)]
        else:
            out += [("float key", {(key[0] + 0.5, key[1]): blk}, True),
                    ("missing block", {(7, 0): blk}, True),
                    ("unknown token", {key: "Q"}, True)]
    elif k == "pattern":
        out += [("unknown token", [["0", "Q"], ["W", "0"]], True),
                ("wrong grid", [["0"]], True), ("float token", [["0", 1.5], ["W", "0"]], True)]
    elif k == "layers":
        out += [("complex", [np.ones((3, 2)) + 1j, np.ones((1, 3))], True),
                ("nan", [np.full((3, 2), np.nan), np.ones((1, 3))], True),
                ("empty", [], True), ("mismatch", [np.ones((3, 2)), np.ones((1, 4))], True),
                ("masked", [np.ma.masked_array(np.ones((3, 2)), mask=np.eye(3, 2, dtype=bool)),
                            np.ones((1, 3))], True),
                ("matrix", [_matrix(np.ones((3, 2))), _matrix(np.ones((1, 3)))], False),
                ("big-endian", [np.ones((3, 2), dtype=">f8"), np.ones((1, 3), dtype=">f8")],
                 False),
                ("mixed namespaces", [_strict(np.ones((3, 2))), np.ones((1, 3))], True)]
        if p.optional:
            out = [o for o in out if o[0] != "empty"]
    elif k == "grid":
        out += [("empty values", {"x": []}, True), ("list of ints", [1, 2], True),
                ("non-str key", {1: [1.0]}, True)]
    elif k == "dims":
        out += [("out of range", (0, 5), True), ("float", (0.5, 1), True)]
    return out


def _strict(a):
    """``a`` as an array_api_strict array: another array library than NumPy."""
    import array_api_strict

    return array_api_strict.asarray(np.asarray(a))


def _matrix(a):
    """``np.matrix(a)``, without its PendingDeprecationWarning (users still make them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix(a)


def _array_kinds(a):
    """The array kinds that are not plain ndarrays (issue 23): masked (with a mask, refused),
    np.matrix, big-endian, float16 (each accepted or refused with a named error), 0-d
    (refused where an array of at least one axis goes), and an array from another library
    (array_api_strict; refused where the call holds NumPy arrays as well, see ``run``)."""
    a = np.asarray(a, dtype=float)
    out = []
    if a.size:
        mask = np.zeros(a.shape, dtype=bool)
        mask.flat[0] = True
        out.append(("masked", np.ma.masked_array(a, mask=mask), True))
    if 1 <= a.ndim <= 2:
        out.append(("matrix", _matrix(a), False))
    out += [("big-endian", a.astype(">f8"), False), ("float16", a.astype(np.float16), False),
            ("mixed namespaces", _strict(a), False)]
    if a.ndim:
        out.append(("0-d", np.asarray(0.5), True))
    return out


def _holds_numpy(value) -> bool:
    """True for a NumPy array, or a list, tuple or dict holding one."""
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, list | tuple):
        return any(_holds_numpy(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_numpy(v) for v in value.values())
    return False


def _nonfinite(obj, seen=None, skip=()) -> bool:
    """True if ``obj`` holds a float NaN or inf anywhere (arrays, dataclasses, containers)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    if isinstance(obj, float):
        return not math.isfinite(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            return not bool(np.all(np.isfinite(obj)))
        return False
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return any(_nonfinite(getattr(obj, f.name), seen, skip)
                   for f in dataclasses.fields(obj) if f.name not in skip)
    if isinstance(obj, dict):
        return any(_nonfinite(v, seen, skip) for v in obj.values())
    if isinstance(obj, list | tuple):
        return any(_nonfinite(v, seen, skip) for v in obj)
    return False


def _call(case: Case, name: str, bad):
    args, kwargs = [], {}
    for pname, p in case.params.items():
        value = bad if pname == name else p.value
        if pname in case.positional:
            args.append(value)
        elif value is not MISSING:
            kwargs[pname] = value
    return case.fn(*args, **kwargs)


def classify(case: Case, name: str, label: str, bad, must_refuse: bool) -> tuple[str, str]:
    """(outcome, detail) of one call."""
    import matplotlib.pyplot as plt

    p = case.params[name]
    names = (name,) + tuple(p.names)
    if label == "hypothesis":  # an arbitrary value may clash with another parameter
        names += tuple(n for q, spec in case.params.items() for n in (q,) + tuple(spec.names))
    here = os.getcwd()
    try:
        # arbitrary strings are file names to save and save_figure: keep them out of the tree
        os.chdir(TMP)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                result = _call(case, name, bad)
                if hasattr(result, "__enter__"):
                    with result:
                        pass
    except case.answers:
        return "ok", "its documented answer"
    except itermap.DivergenceError as exc:
        # a start outside the basin of a bounded orbit: the documented error, naming the step
        if label == "hypothesis" and "step" in str(exc):
            return "named", str(exc)
        return "unnamed", f"DivergenceError: {exc}"
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        # the name as a word: "n" inside "Maximum allowed dimension exceeded" names nothing
        if any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", msg, re.I) for n in names):
            return "named", msg
        return "unnamed", f"{type(exc).__name__}: {msg}"
    except FileNotFoundError as exc:
        if label in ("missing", "str", "empty", "hypothesis"):
            return "named", str(exc)
        return "other", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - every other type is a finding
        return "other", f"{type(exc).__name__}: {exc}"
    finally:
        os.chdir(here)
        plt.close("all")
    if must_refuse:
        return "accepted", repr(result)[:200]
    if not case.nan_ok and _nonfinite(result, skip=case.nan_fields):
        return "nonfinite", repr(result)[:200]
    return "ok", ""


def _reservoirpy_node():
    """An initialised reservoirpy Reservoir, or None where reservoirpy is not installed."""
    try:
        from reservoirpy.nodes import Reservoir
    except ImportError:
        return None
    node = Reservoir(5, lr=0.5, seed=0)
    node.initialize(np.zeros((1, 1)))
    return node


def _fixed_points():
    return analysis.find_fixed_points(HENON, np.array([[0.6, 0.2], [-1.1, -0.3]]))


def _spectrum():
    return analysis.lyapunov_spectrum(HENON, np.array([0.1, 0.1]), 50)


def _scan():
    return analysis.lyapunov_scan(logistic, [3.5, 3.9], np.array([0.3]), 50, transient=10)


def _orbits():
    return analysis.orbit_diagram(logistic, [3.5, 3.9], np.array([0.3]), transient=10, keep=4)


def _impulse():
    return analysis.impulse_response(RNN, np.zeros(5), 4)


def _figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    return fig


def _tiny_task():
    g = np.random.default_rng(0)
    mlp = IterativeMap.from_mlp([g.normal(size=(4, 3)), g.normal(size=(2, 4))],
                                activation="tanh")
    return mlp, g.normal(size=(12, 3)), g.integers(0, 2, size=12)


def _history():
    mlp, x, y = _tiny_task()
    return itermap.train(mlp, x, y, epochs=2, batch_size=4, rng=0, progress=False)[1]


def _gru_weights():
    g = np.random.default_rng(1)
    return (g.normal(size=(9, 2)) * 0.5, g.normal(size=(9, 3)) * 0.5, g.normal(size=9) * 0.1,
            g.normal(size=9) * 0.1)


def _sequence_comparison():
    return analysis.compare_sequence_models(units=6, steps=3, max_delay=2, mc_steps=300,
                                            lyapunov_steps=10, rng=0)


def _fold_family(u):
    return IterativeMap(np.array([[1.5]]), np.array([float(u)]), "tanh")


def _basins():
    return analysis.basins(logistic(2.5), np.linspace(0.1, 0.9, 6)[:, None], steps=60)


def _continuation():
    return analysis.continuation(_fold_family, [-0.3, 0.3], np.array([0.8]), max_points=60)


def _square(x):
    return x * x


def _transformer_parts():
    rng = np.random.default_rng(0)
    T, d = 2, 4
    return {"att": (rng.normal(size=(3 * d, d)), rng.normal(size=3 * d), rng.normal(size=(d, d)),
                    rng.normal(size=d)),
            "ff": (rng.normal(size=(6, d)), rng.normal(size=6), rng.normal(size=(d, 6)),
                   rng.normal(size=d)),
            "ln": (np.ones(d), np.zeros(d)), "T": T}


def _transformer_cases(P):
    from itermap import block_functions as bf

    parts = _transformer_parts()
    att, ff, ln, T = parts["att"], parts["ff"], parts["ln"], parts["T"]
    LN = bf.LayerNorm(*ln, seq_len=T)
    ATT = bf.SelfAttention(*att, num_heads=2, seq_len=T)
    FF = bf.FeedForward(*ff, seq_len=T)
    return {
        "block_functions.LayerNorm": Case(bf.LayerNorm, {
            "weight": P(ln[0], "array"), "bias": P(ln[1], "array"), "seq_len": P(T, "int>=1"),
            "eps": P(1e-5, "float>=0")}, positional=("weight", "bias")),
        "block_functions.FeedForward": Case(bf.FeedForward, {
            "weight1": P(ff[0], "array"), "bias1": P(ff[1], "array", optional=True),
            "weight2": P(ff[2], "array"), "bias2": P(ff[3], "array", optional=True),
            "seq_len": P(T, "int>=1"), "activation": P("relu", "choice")},
            positional=("weight1", "bias1", "weight2", "bias2"),
            # one more column is a network from width 5: valid, not a wrong shape
            skip={"weight1": {"wrong shape"}}),
        "block_functions.SelfAttention": Case(bf.SelfAttention, {
            "in_proj_weight": P(att[0], "array"), "in_proj_bias": P(att[1], "array",
                                                                    optional=True),
            "out_proj_weight": P(att[2], "array"), "out_proj_bias": P(att[3], "array",
                                                                      optional=True),
            "num_heads": P(2, "int>=1"), "seq_len": P(T, "int>=1"),
            "causal": P(False, "bool"), "mask": P(np.zeros((T, T)), "array", optional=True)},
            positional=("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")),
        "block_functions.Residual": Case(bf.Residual, {"inner": P(LN, "map")},
                                         positional=("inner",)),
        "block_functions.Chain": Case(bf.Chain, {"parts": P([LN, FF], "map")},
                                      positional=("parts",)),
        "block_functions.transformer_layer": Case(bf.transformer_layer, {
            "attention": P(ATT, "map"), "feed_forward": P(FF, "map"), "norm1": P(LN, "map"),
            "norm2": P(LN, "map"), "norm_first": P(False, "bool")},
            positional=("attention", "feed_forward", "norm1", "norm2")),
        "transformer_map": Case(itermap.transformer_map, {
            "layers": P([LN, LN], "map"), "final_norm": P(None, "map", optional=True)},
            positional=("layers",)),
        "looped_transformer_map": Case(itermap.looped_transformer_map, {
            "layer": P(LN, "map")}, positional=("layer",)),
        "LoopedTransformerMap": Case(itermap.LoopedTransformerMap, {
            "layer": P(LN, "map")}, positional=("layer",)),
    }


def cases() -> dict:
    """The catalogue: one valid call per public callable, parameter by parameter."""
    P = Param
    x5 = np.full(5, 0.1)
    c = {
        # -- itermap: structures and maps ------------------------------------------
        "BlockMatrix": Case(BlockMatrix, {
            "sizes": P([2, 3], "sizes"),
            "blocks": P({(1, 0): np.ones((3, 2))}, "blocks", optional=True)},
            positional=("sizes", "blocks")),
        "BlockMatrix.from_pattern": Case(BlockMatrix.from_pattern, {
            "sizes": P([2, 2], "sizes"), "pattern": P([["0", "0"], ["W", "0"]], "pattern"),
            "rng": P(0, "rng", optional=True), "scale": P(1.0, "float")},
            positional=("sizes", "pattern")),
        "IterativeMap": Case(IterativeMap, {
            "weights": P(np.eye(3) * 0.5, "array", names=("W", "matrix")),
            "bias": P(np.zeros(3), "array", optional=True),
            "activation": P("tanh", "choice"),
            "input_block": P(None, "int>=0", optional=True),
            "sizes": P(None, "sizes", optional=True),
            "leak": P(0.5, "probability", optional=True)},
            positional=("weights", "bias", "activation")),
        "IterativeMap.from_mlp": Case(IterativeMap.from_mlp, {
            "weights": P([np.ones((3, 2)), np.ones((1, 3))], "layers", names=("layer",)),
            "biases": P(None, "layers", optional=True, names=("bias", "layer")),
            "activation": P("relu", "choice"), "output_activation": P("identity", "choice")},
            positional=("weights", "biases")),
        "IterativeMap.from_rnn": Case(IterativeMap.from_rnn, {
            "W_hh": P(np.eye(3) * 0.5, "array"), "W_hx": P(np.ones((3, 2)), "array"),
            "b": P(np.zeros(3), "array", optional=True), "activation": P("tanh", "choice"),
            "leak": P(0.5, "probability", optional=True)},
            positional=("W_hh", "W_hx", "b"), skip={"W_hx": {"wrong shape"}}),
        "ReservoirMap": Case(itermap.ReservoirMap, {
            "W": P(np.eye(3) * 0.5, "array", names=("W_hh", "matrix")),
            "W_in": P(np.ones((3, 2)), "array", names=("W_hx", "matrix")),
            "bias": P(np.zeros(3), "array", optional=True, names=("b",)),
            "activation": P("tanh", "choice"), "leak": P(0.5, "probability", optional=True),
            "readout_weights": P(np.ones((3, 1)), "array"),
            "readout_bias": P(np.zeros(1), "array", optional=True)},
            positional=("W", "W_in", "bias"),
            # (3, 2) weights are a readout of 2 outputs: then the bias's shape is the error
            skip={"W_in": {"wrong shape"}, "readout_weights": {"wrong shape"}}),
        "from_reservoirpy": Case(itermap.from_reservoirpy, {
            "node": P(_reservoirpy_node(), "map", names=("node",))}, positional=("node",),
            answers=(ImportError,)),  # without reservoirpy: the documented ImportError
        "random_rnn": Case(itermap.random_rnn, {
            "n": P(4, "int>=1", size_like=True), "gain": P(1.0, "float>=0"),
            "density": P(1.0, "float>0"),
            "activation": P("tanh", "choice"), "rng": P(0, "rng", optional=True),
            "leak": P(0.5, "probability")},
            positional=("n",)),
        "FunctionMap": Case(itermap.FunctionMap, {
            "step": P(_square, "callable"), "dim": P(1, "int>=1"),
            "jacobian": P(lambda x: 2 * x[..., None], "callable", optional=True),
            "input_size": P(0, "int>=0")}, positional=("step", "dim")),
        "as_map": Case(itermap.as_map, {"obj": P(HENON, "map", names=("map",))},
                       positional=("obj",)),
        "check_map": Case(itermap.check_map, {
            "m": P(HENON, "map", names=("map",)), "x": P(np.array([[0.1, 0.2]]), "state",
                                                       optional=True),
            "rng": P(0, "rng", optional=True), "tol": P(1e-6, "float>0")},
            positional=("m", "x"), answers=(itermap.ConformanceError,)),
        "logistic": Case(logistic, {"r": P(3.5, "float")}, positional=("r",),
                         skip={"r": {"list"}}),  # a 1-D r is a batch of parameters
        "henon": Case(henon, {"a": P(1.4, "float"), "b": P(0.3, "float")},
                      positional=("a", "b")),
        "linear": Case(linear, {"A": P(np.eye(2) * 0.5, "array")}, positional=("A",)),
        "standard_map": Case(standard_map, {"k": P(1.0, "float")}, positional=("k",)),
        "add_blocks": Case(itermap.add_blocks, {
            "base": P(MLP, "map", names=("map",)), "blocks": P({(1, 1): 0.5}, "blocks"),
            "rng": P(0, "rng", optional=True), "scale": P(1.0, "float")},
            positional=("base", "blocks")),
        "mlp_continuum": Case(itermap.mlp_continuum, {
            "sizes": P([2, 3, 1], "sizes"), "recurrent": P(0.5, "float>=0"),
            "skip": P(0.0, "float>=0"), "rng": P(0, "rng", optional=True)},
            positional=("sizes",)),
        "as_rng": Case(itermap.as_rng, {"rng": P(0, "rng", optional=True)},
                       positional=("rng",)),
        # -- running maps -----------------------------------------------------------
        "iterate": Case(itermap.iterate, {
            "map": P(RNN, "map"), "x0": P(x5, "state"), "steps": P(3, "int>=0"),
            "inputs": P(None, "array", optional=True), "every": P(1, "int>=1"),
            "keep": P("all", "choice")}, positional=("map", "x0", "steps")),
        "iterate (driven)": Case(itermap.iterate, {
            "map": P(MLP, "map"), "x0": P(np.zeros(6), "state"), "steps": P(2, "int>=0"),
            "inputs": P(np.ones(2), "array")}, positional=("map", "x0", "steps")),
        "resolve_inputs": Case(itermap.resolve_inputs, {
            "map": P(MLP, "map"), "x": P(np.zeros(6), "state"),
            "inputs": P(np.ones(2), "array"), "steps": P(2, "int>=0")},
            positional=("map", "x", "inputs", "steps"),
            skip={"x": {"nan", "inf"}}),  # x gives shapes only
        "IterativeMap.step": Case(RNN.step, passes_nan=True, params={"x": P(x5, "state"),
                                             "u": P(None, "array", optional=True)},
                                  positional=("x", "u"), nan_ok=True),
        "IterativeMap.jacobian": Case(RNN.jacobian, passes_nan=True, params={"x": P(x5, "state")},
                                      positional=("x",), nan_ok=True),
        "IterativeMap.sparse_jacobian": Case(
            IterativeMap(sp.csr_matrix(np.eye(5, k=1) * 0.5), leak=0.5).sparse_jacobian,
            passes_nan=True, params={"x": P(x5, "state"), "u": P(None, "array", optional=True)},
            positional=("x", "u"), nan_ok=True),
        "IterativeMap.tangent": Case(RNN.tangent, passes_nan=True, params={
            "x": P(x5, "state"), "v": P(np.eye(5)[:, :2], "array")},
            positional=("x", "v"), nan_ok=True,
            skip={"v": {"wrong shape"}}),  # another k: v (dim, k) is valid for every k
        "IterativeMap.vjp": Case(RNN.vjp, passes_nan=True, params={
            "x": P(x5, "state"), "w": P(np.ones(5), "array")},
            positional=("x", "w"), nan_ok=True),
        # -- files ------------------------------------------------------------------
        "save": Case(itermap.save, {"obj": P(RNN, "result"),
                                    "path": P(str(TMP / "rnn.npz"), "path")},
                     positional=("obj", "path"), skip={"path": {"missing"}}),
        "load": Case(itermap.load, {"path": P(str(TMP / "rnn.npz"), "path")},
                     positional=("path",)),
        # -- training ---------------------------------------------------------------
        "train": Case(itermap.train, {
            "map": P(_tiny_task()[0], "map"), "inputs": P(_tiny_task()[1], "state"),
            "targets": P(_tiny_task()[2], "labels"), "steps": P(None, "int>=1", optional=True),
            "loss": P("cross_entropy", "choice"), "at": P("last", "choice"),
            "epochs": P(1, "int>=1"), "batch_size": P(4, "int>=1"), "lr": P(0.01, "float>0"),
            "rng": P(0, "rng", optional=True), "optimizer": P("adam", "choice"),
            "momentum": P(0.9, "float>=0"), "weight_decay": P(0.0, "float>=0"),
            "clip_norm": P(None, "float>0", optional=True),
            "validation": P(0.0, "float>=0"), "patience": P(None, "int>=1", optional=True),
            "freeze_bias": P(False, "bool"), "checkpoint": P(None, "int>=1", optional=True),
            "train_leak": P(False, "bool"),
            "progress": P(False, "bool", optional=True)}, positional=("map", "inputs", "targets"),
            skip={"inputs": {"wrong shape"}},  # another input width is another map's
            nan_fields=("val_loss", "val_accuracy", "best_val")),  # NaN: no validation split
        "evaluate": Case(itermap.evaluate, {
            "map": P(_tiny_task()[0], "map"), "inputs": P(_tiny_task()[1], "state"),
            "targets": P(_tiny_task()[2], "labels"), "loss": P("cross_entropy", "choice"),
            "batch_size": P(8, "int>=1")}, positional=("map", "inputs", "targets")),
        "loss_and_gradient": Case(itermap.loss_and_gradient, {
            "map": P(_tiny_task()[0], "map"), "inputs": P(_tiny_task()[1], "state"),
            "targets": P(_tiny_task()[2], "labels"), "loss": P("cross_entropy", "choice"),
            "checkpoint": P(None, "int>=1", optional=True)},
            positional=("map", "inputs", "targets")),
        "trainable_count": Case(itermap.trainable_count, {"m": P(MLP, "map", names=("map",))},
                                positional=("m",)),
        "datasets.flip_flop": Case(itermap.datasets.flip_flop, {
            "n": P(3, "int>=1", size_like=True), "steps": P(10, "int>=1"),
            "bits": P(3, "int>=1"), "p": P(0.05, "probability"),
            "rng": P(0, "rng", optional=True)}, positional=("n", "steps")),
        "sparse_hidden_width": Case(analysis.sparse_hidden_width, {
            "target": P(500, "int>=1"), "density": P(0.5, "probability"),
            "n_in": P(64, "int>=1"), "n_out": P(10, "int>=1")}, positional=("target", "density")),
        "digits_model": Case(analysis.digits_model, {
            "kind": P("mlp", "choice"), "hidden": P(8, "int>=1"),
            "density": P(1.0, "probability"), "rng": P(0, "rng", optional=True)},
            positional=("kind",)),
        "equal_parameter_comparison": Case(analysis.equal_parameter_comparison, {
            "hidden": P(4, "int>=1"), "densities": P([0.5], "values"),
            "seeds": P(1, "int>=1"), "epochs": P(1, "int>=1"), "steps": P(1, "int>=1"),
            "lr": P(3e-3, "float>0"), "batch_size": P(256, "int>=1"),
            "progress": P(False, "bool")}, slow=True,
            # no densities: only the MLP and the continuum; a list of seeds: the seeds
            skip={"densities": {"empty"}, "seeds": {"list"}}),
        "flip_flop_analysis": Case(analysis.flip_flop_analysis, {
            "net": P(FLIP_FLOP, "map"), "trials": P(4, "int>=1", size_like=True),
            "steps": P(20, "int>=1"), "starts": P(16, "int>=1"), "noise": P(0.02, "float>=0"),
            "keep_trials": P(2, "int>=1"), "rng": P(0, "rng", optional=True)},
            positional=("net",), slow=True),
        "plots.training_history": Case(plots.training_history, {
            "history": P(_history(), "result"), "metric": P("loss", "choice")},
            positional=("history",)),
        # -- recurrent maps, parallel in time ---------------------------------------
        "GRUMap": Case(itermap.GRUMap, {
            "weight_ih": P(_gru_weights()[0], "array"), "weight_hh": P(_gru_weights()[1], "array"),
            "bias_ih": P(_gru_weights()[2], "array", optional=True),
            "bias_hh": P(_gru_weights()[3], "array", optional=True),
            "batch_first": P(False, "bool")},
            positional=("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
            skip={"weight_ih": {"wrong shape"}}),  # another input width is another GRU
        "LSTMMap": Case(itermap.LSTMMap, {
            "weight_ih": P(np.ones((12, 2)) * 0.1, "array"),
            "weight_hh": P(np.ones((12, 3)) * 0.1, "array"),
            "bias_ih": P(np.zeros(12), "array", optional=True),
            "bias_hh": P(np.zeros(12), "array", optional=True),
            "batch_first": P(False, "bool")},
            positional=("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
            skip={"weight_ih": {"wrong shape"}}),
        "ElmanRNNMap": Case(itermap.ElmanRNNMap, {
            "weight_ih": P(np.ones((3, 2)) * 0.1, "array"),
            "weight_hh": P(np.eye(3) * 0.5, "array"),
            "bias_ih": P(np.zeros(3), "array", optional=True),
            "bias_hh": P(np.zeros(3), "array", optional=True),
            "nonlinearity": P("tanh", "choice"), "batch_first": P(False, "bool")},
            positional=("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
            skip={"weight_ih": {"wrong shape"}}),
        "newton_iterate": Case(itermap.newton_iterate, {
            "map": P(RNN, "map"), "x0": P(x5, "state"), "steps": P(8, "int>=0"),
            "jacobian": P("full", "choice"), "damping": P(0.0, "float>=0"),
            "tol": P(None, "float>0", optional=True), "max_iter": P(None, "int>=1", optional=True),
            "fallback": P("raise", "choice"), "chunk": P(None, "int>=1", optional=True),
            "max_cg": P(100, "int>=1")}, positional=("map", "x0", "steps")),
        "affine_scan": Case(itermap.affine_scan, passes_nan=True, nan_ok=True, params={
            "A": P(np.full((4, 2, 2), 0.5), "array"), "b": P(np.ones((4, 2)), "array"),
            "kind": P("full", "choice")}, positional=("A", "b"),
            skip={"A": {"wrong shape"}, "b": {"wrong shape"}}),
        "linear_recurrence": Case(itermap.linear_recurrence, passes_nan=True, nan_ok=True,
                                  params={
            "A": P(np.full((4, 2, 2), 0.5), "array"), "b": P(np.ones((4, 2)), "array"),
            "x0": P(np.zeros(2), "array"), "kind": P("full", "choice")},
            positional=("A", "b", "x0")),
        # -- sequence models: attention as an RNN, linear state-space layers ------------
        "AttentionRNN": Case(itermap.AttentionRNN, {
            "Wk": P(np.full((2, 3), 0.5), "array"), "Wv": P(np.full((2, 3), 0.3), "array"),
            "q": P(np.ones(2), "array"), "scale": P(None, "float", optional=True)},
            positional=("Wk", "Wv", "q")),
        "attention_scan": Case(itermap.attention_scan, {
            "scores": P(np.linspace(-1.0, 1.0, 4), "array"),
            "values": P(np.ones((4, 2)), "array")}, positional=("scores", "values"),
            skip={"values": {"wrong shape"}}),   # another value width is another attention
        "LinearStateSpace": Case(itermap.LinearStateSpace, {
            "A": P(-np.eye(2), "array"), "B": P(np.ones(2), "array"),
            "C": P(np.ones(2), "array"), "D": P(None, "array", optional=True),
            "dt": P(0.1, "float>0"), "method": P("bilinear", "choice")},
            positional=("A", "B", "C", "D"),   # complex A, B, C are S4D/S5 layers (D real)
            skip={"A": {"complex"}, "B": {"complex"}, "C": {"complex"}}),
        "LinearStateSpace.from_discrete": Case(itermap.LinearStateSpace.from_discrete, {
            "Abar": P(0.5 * np.eye(2), "array"), "Bbar": P(np.ones(2), "array"),
            "C": P(np.ones(2), "array"), "D": P(None, "array", optional=True)},
            positional=("Abar", "Bbar", "C", "D"),   # complex Abar, Bbar, C: an LRU layer
            skip={"Abar": {"complex"}, "Bbar": {"complex"}, "C": {"complex"}}),
        "deep_lssl": Case(itermap.deep_lssl, {
            "layers": P([itermap.LinearStateSpace(-np.eye(2), np.ones(2), np.ones(2), dt=0.1)],
                        "layers"),
            "activation": P("tanh", "choice"), "output_activation": P("identity", "choice")},
            positional=("layers",)),
        "systems.hippo": Case(itermap.systems.hippo, {
            "kind": P("legs", "choice"), "N": P(3, "int>=1", size_like=True)},
            positional=("kind", "N")),
        "sequence_models": Case(analysis.sequence_models, {
            "units": P(6, "int>=1"), "rng": P(0, "rng", optional=True)},
            skip={"units": {"zero"}}),   # 0 < 4 is refused as any small value
        "compare_sequence_models": Case(analysis.compare_sequence_models, {
            "maps": P(None, "map", optional=True), "units": P(6, "int>=1"),
            "steps": P(3, "int>=1"), "max_delay": P(2, "int>=1"), "mc_steps": P(300, "int>=1"),
            "lyapunov_steps": P(10, "int>=1"), "k": P(2, "int>=1"),
            "rng": P(0, "rng", optional=True)},
            nan_fields=("exponents",)),  # -inf: an MLP's exact collapse, documented
        "plots.sequence_comparison": Case(plots.sequence_comparison, {
            "result": P(_sequence_comparison(), "result"), "panel": P("memory", "choice")},
            positional=("result", "panel")),
        "basins": Case(analysis.basins, {
            "map": P(logistic(2.5), "map"), "x0": P(np.array([[0.2], [0.7]]), "state"),
            "steps": P(40, "int>=1"), "max_period": P(4, "int>=1"), "tol": P(1e-6, "float>0"),
            "escape_radius": P(None, "float>0", optional=True)},
            positional=("map", "x0"), nan_fields=("final",)),  # NaN: an escaped start
        "continuation": Case(analysis.continuation, {
            "make_map": P(_fold_family, "callable"), "values": P([-0.3, 0.3], "values"),
            "x_start": P(np.array([0.8]), "state"), "tol": P(1e-10, "float>0", optional=True),
            "max_points": P(60, "int>=1"), "max_step": P(None, "float>0", optional=True),
            "min_step": P(1e-9, "float>0")}, positional=("make_map", "values", "x_start"),
            skip={"values": {"2-d"}}),
        "plots.basins": Case(plots.basins, {
            "result": P(_basins(), "result"), "shape": P((2, 3), "dims")},
            positional=("result", "shape"), skip={"shape": {"out of range"}}),
        "plots.continuation": Case(plots.continuation, {
            "result": P(_continuation(), "result"), "component": P(0, "int>=0")},
            positional=("result",), skip={"component": {"negative"}}),
        # -- analyses ---------------------------------------------------------------
        "find_fixed_points": Case(analysis.find_fixed_points, {
            "map": P(HENON, "map"), "x0": P(np.array([[0.6, 0.2]]), "state",
                                            names=("start",)),
            "inputs": P(None, "array", optional=True), "period": P(1, "int>=1"),
            "tol": P(1e-10, "float>0", optional=True), "max_iter": P(20, "int>=1"),
            "unique_tol": P(1e-6, "float>0", optional=True), "slow_points": P(False, "bool")},
            positional=("map", "x0")),
        "linalg.idrs": Case(itermap.linalg.idrs, {
            "A": P(np.array([[2.0, 1.0], [0.0, 3.0]]), "array"),
            "b": P(np.array([1.0, 0.0]), "array"),
            "x0": P(None, "array", optional=True), "s": P(2, "int>=1"),
            "rtol": P(1e-8, "float>0"), "max_products": P(None, "int>=1", optional=True),
            "rng": P(0, "rng", optional=True)}, positional=("A", "b")),
        "sample_states": Case(analysis.sample_states, {
            "map": P(RNN, "map"), "n": P(3, "int>=1", size_like=True), "steps": P(5, "int>=0"),
            "noise": P(0.0, "float>=0"), "rng": P(0, "rng", optional=True),
            "x0": P(None, "state", optional=True), "inputs": P(None, "array", optional=True)},
            positional=("map", "n")),
        "fir_length": Case(analysis.fir_length, {
            "map": P(MLP, "map"), "input_block": P(None, "int>=0", optional=True)},
            positional=("map",)),
        "impulse_response": Case(analysis.impulse_response, {
            "map": P(RNN, "map"), "x": P(np.zeros(5), "state"), "steps": P(4, "int>=1"),
            "inputs": P(None, "array", optional=True), "method": P("linear", "choice"),
            "blocks": P(None, "int>=0", optional=True), "eps": P(1e-6, "float>0", optional=True),
            "tol": P(None, "float>=0", optional=True)}, positional=("map", "x", "steps"),
            skip={"blocks": {"negative"}}),  # negative block indices count from the end
        "memory_capacity": Case(analysis.memory_capacity, {
            "map": P(IterativeMap.from_rnn(np.eye(3) * 0.5, np.ones((3, 1))), "map"),
            "max_delay": P(3, "int>=1", size_like=True), "steps": P(300, "int>=1"),
            "rng": P(0, "rng", optional=True), "washout": P(20, "int>=0"),
            "input_scale": P(1.0, "float>0"), "ridge": P(0.0, "float>=0"),
            "convention": P("delay", "choice")}, positional=("map",)),
        "edge_of_chaos_scan": Case(analysis.edge_of_chaos_scan, {
            "radii": P([0.5, 1.5], "values"), "leaks": P([0.5], "values"),
            "n": P(8, "int>=1", size_like=True), "density": P(0.5, "probability"),
            "seeds": P(2, "int>=1", size_like=True), "steps": P(20, "int>=1", size_like=True),
            "transient": P(5, "int>=0", size_like=True), "input_scale": P(0.0, "float>=0"),
            "rng": P(0, "rng", optional=True)}, positional=("radii", "leaks"),
            nan_fields=("edge",)),  # NaN: no crossing inside the scan, documented
        "effective_spectral_radius": Case(analysis.effective_spectral_radius, {
            "map": P(np.eye(3) * 0.5, "array", names=("map", "matrix")),
            "leak": P(0.5, "probability", optional=True), "method": P("auto", "choice")},
            positional=("map",)),
        "sparsity_graph": Case(analysis.sparsity_graph, {
            "weights": P(MLP, "map", names=("map", "matrix")), "level": P("unit", "choice")},
            positional=("weights",)),
        "kaplan_yorke_dimension": Case(analysis.kaplan_yorke_dimension, {
            "exponents": P(np.array([0.4, -1.6]), "array"),
            "dim": P(None, "int>=1", optional=True)}, positional=("exponents", "dim"),
            skip={"exponents": {"wrong shape"}}),  # a longer spectrum is a spectrum
        "lyapunov_spectrum": Case(analysis.lyapunov_spectrum, {
            "map": P(HENON, "map"), "x0": P(np.array([0.1, 0.1]), "state"),
            "steps": P(30, "int>=1"), "k": P(None, "int>=1", optional=True),
            "transient": P(0, "int>=0"), "reorthonormalize_every": P(1, "int>=1"),
            "inputs": P(None, "array", optional=True), "rng": P(0, "rng", optional=True),
            "progress": P(False, "bool")}, positional=("map", "x0", "steps"),
            # no spread from one trajectory, no dimension from a top-k spectrum: NaN, by
            # documentation
            nan_fields=("stderr", "kaplan_yorke_dimension", "precision_loss", "qr_error")),
        "entropy_rate": Case(analysis.entropy_rate, {
            "exponents": P(np.array([0.4, -1.6]), "array")}, positional=("exponents",),
            skip={"exponents": {"wrong shape"}}),  # a longer spectrum is a spectrum
        "covariant_lyapunov_vectors": Case(analysis.covariant_lyapunov_vectors, {
            "map": P(HENON, "map"), "x0": P(np.array([0.1, 0.1]), "state"),
            "steps": P(20, "int>=1"), "k": P(None, "int>=1", optional=True),
            "transient": P(10, "int>=0"),
            "backward_transient": P(None, "int>=0", optional=True),
            "save_every": P(1, "int>=1"), "rng": P(0, "rng", optional=True)},
            positional=("map", "x0", "steps")),
        "clv_angles": Case(analysis.clv_angles, {
            "vectors": P(np.eye(2)[None] @ np.array([[1.0, 0.5], [0.0, 1.0]]), "array")},
            positional=("vectors",), skip={"vectors": {"wrong shape"}}),
        "participation_ratio": Case(analysis.participation_ratio, {
            "vectors": P(np.eye(2)[None], "array")}, positional=("vectors",),
            skip={"vectors": {"wrong shape"}}),
        "finite_time_exponents": Case(analysis.finite_time_exponents, {
            "map": P(HENON, "map"), "x0": P(np.array([0.1, 0.1]), "state"),
            "window": P(5, "int>=1"), "steps": P(20, "int>=1"),
            "k": P(None, "int>=1", optional=True), "transient": P(10, "int>=0"),
            "rng": P(0, "rng", optional=True)}, positional=("map", "x0", "window", "steps")),
        "plots.clv_angles": Case(plots.clv_angles, {
            "result": P(analysis.covariant_lyapunov_vectors(
                HENON, np.array([0.1, 0.1]), 30, transient=10), "result"),
            "bins": P(10, "int>=1"), "log": P(True, "bool")}, positional=("result",)),
        "plots.finite_time_histogram": Case(plots.finite_time_histogram, {
            "result": P(analysis.finite_time_exponents(
                HENON, np.array([0.1, 0.1]), 5, 40, transient=10), "result"),
            "max_exponents": P(4, "int>=1"), "bins": P(10, "int>=1")},
            positional=("result",)),
        "gain_family": Case(analysis.gain_family, {"map": P(RNN, "map")},
                            positional=("map",)),
        "lyapunov_scan": Case(analysis.lyapunov_scan, {
            "make_map": P(logistic, "callable"), "values": P([3.5, 3.9], "values"),
            "x0": P(np.array([0.3]), "state"), "steps": P(40, "int>=1"),
            "k": P(1, "int>=1"), "transient": P(10, "int>=0"),
            "rng": P(0, "rng", optional=True)},
            positional=("make_map", "values", "x0", "steps"),
            nan_ok=True),  # NaN marks a diverged orbit, by documentation
        "mean_field_exponent": Case(analysis.mean_field_exponent, {
            "gain": P(np.array([0.5, 1.5]), "values"), "activation": P("tanh", "choice"),
            "quadrature": P(401, "int>=2", size_like=True)}, positional=("gain",),
            nan_ok=True,  # -inf at gain 0, by documentation
            skip={"gain": {"2-d", "empty", "0-d"}}),  # elementwise over any shape
        "orbit_diagram": Case(analysis.orbit_diagram, {
            "make_map": P(logistic, "callable"), "values": P([3.5, 3.9], "values"),
            "x0": P(np.array([0.3]), "state"), "transient": P(10, "int>=0"),
            "keep": P(4, "int>=1")}, positional=("make_map", "values", "x0"),
            nan_ok=True),  # NaN marks a diverged orbit, by documentation
        "sweep": Case(analysis.sweep, {
            "function": P(_square, "callable"), "grid": P({"x": [1.0, 2.0]}, "grid"),
            "executor": P("serial", "executor", optional=True), "seed": P(0, "rng", optional=True),
            "progress": P(False, "bool")}, positional=("function", "grid")),
        # -- plots ------------------------------------------------------------------
        "plots.trajectory": Case(plots.trajectory, {
            "traj": P(itermap.iterate(HENON, np.array([0.1, 0.1]), 5), "result"),
            "dims": P((0, 1), "dims")}, positional=("traj",)),
        "plots.lyapunov_spectrum": Case(plots.lyapunov_spectrum, {
            "result": P(_spectrum(), "result")}, positional=("result",)),
        "plots.lyapunov_history": Case(plots.lyapunov_history, {
            "result": P(_spectrum(), "result"),
            "max_exponents": P(6, "int>=1", optional=True)},
            positional=("result",)),
        "plots.eigenvalues": Case(plots.eigenvalues, {
            "fixed_points": P(_fixed_points(), "result")}, positional=("fixed_points",)),
        "plots.impulse_response": Case(plots.impulse_response, {
            "ir": P(_impulse(), "result"), "source": P(None, "int>=0", optional=True)},
            positional=("ir",), skip={"source": {"negative"}}),
        "plots.block_matrix": Case(plots.block_matrix, {
            "W": P(MLP, "map", names=("matrix", "weights"))}, positional=("W",)),
        "plots.sparsity_graph": Case(plots.sparsity_graph, {
            "G": P(analysis.sparsity_graph(MLP), "result", names=("graph",))},
            positional=("G",)),
        "plots.orbit_diagram": Case(plots.orbit_diagram, {
            "od": P(_orbits(), "result", names=("orbit",)), "component": P(0, "int>=0")},
            positional=("od",), skip={"component": {"negative"}}),
        "plots.lyapunov_scan": Case(plots.lyapunov_scan, {
            "scan": P(_scan(), "result")}, positional=("scan",)),
        "plots.lyapunov_panels": Case(plots.lyapunov_panels, {
            "result": P(_spectrum(), "result")}, positional=("result",)),
        "plots.memory_capacity": Case(plots.memory_capacity, {
            "results": P(analysis.memory_capacity(
                IterativeMap.from_rnn(np.eye(3) * 0.5, np.ones((3, 1))), max_delay=3,
                steps=300, rng=0), "result")}, positional=("results",)),
        "plots.paper_style": Case(plots.paper_style, {"columns": P(1, "int>=1")},
                                  positional=("columns",)),
        "plots.save_figure": Case(plots.save_figure, {
            "fig": P(_figure(), "figure"), "path": P(str(TMP / "fig"), "path")},
            positional=("fig", "path"), skip={"path": {"missing"}}),
    }
    # -- round 16 (r16-defects) --------------------------------------------------
    c["IterativeMap.approximate_jacobian"] = Case(
        IterativeMap(sp.csr_matrix(np.eye(5, k=1) * 0.5), leak=0.5).approximate_jacobian,
        passes_nan=True, params={"x": P(x5, "state"), "u": P(None, "array", optional=True)},
        positional=("x", "u"), nan_ok=True)
    c.update(_transformer_cases(P))
    c.update(_population_cases())
    return c


def _population_cases() -> dict:
    """Populations of networks (issue 29): graphs, pruning, probes, spectra tables."""
    import networkx as nx

    P = Param
    graph_rnn = itermap.random_graph_rnn(6, kind="ws", k=2, p=0.2, n_in=2, rng=0)
    return {
        "datasets.zoo": Case(itermap.datasets.zoo, {"task": P(None, "choice", optional=True)},
                             positional=("task",)),
        "from_graph": Case(itermap.from_graph, {
            "G": P(nx.cycle_graph(4), "result", names=("graph",)),
            "level": P("unit", "choice"), "block_size": P(1, "int>=1", size_like=True),
            "n_in": P(1, "int>=1", size_like=True), "n_out": P(1, "int>=1", size_like=True),
            "input_nodes": P(None, "result", optional=True),
            "output_nodes": P(None, "result", optional=True),
            "weight": P(None, "result", optional=True), "gain": P(1.0, "float>=0"),
            "activation": P("tanh", "choice"), "rng": P(0, "rng", optional=True)},
            positional=("G",)),
        "random_graph_rnn": Case(itermap.random_graph_rnn, {
            "n": P(6, "int>=2", size_like=True), "kind": P("ws", "choice"),
            "p": P(0.2, "probability"), "k": P(2, "int>=2"), "m": P(1, "int>=1"),
            "directed": P(False, "bool"), "n_in": P(1, "int>=1", size_like=True),
            "n_out": P(1, "int>=1", size_like=True), "gain": P(1.0, "float>=0"),
            "activation": P("tanh", "choice"), "rng": P(0, "rng", optional=True)},
            positional=("n",)),
        "prune": Case(itermap.prune, {
            "map": P(graph_rnn, "map"), "fraction": P(0.5, "probability", optional=True),
            "threshold": P(MISSING, "float>=0", optional=True),
            "blocks": P(None, "result", optional=True)}, positional=("map",),
            skip={"fraction": {"None"}}),  # None with no threshold is refused: named
        "graph_properties": Case(analysis.graph_properties, {
            "map": P(graph_rnn, "map"), "blocks": P(None, "result", optional=True),
            "directed": P(False, "bool"), "max_nodes": P(100, "int>=1")},
            positional=("map",)),
        "probe": Case(analysis.probe, {
            "map": P(graph_rnn, "map"), "probes": P(np.full((2, 3, 2), 0.5), "array"),
            "block": P(-1, "int>=0"), "x0": P(None, "state", optional=True)},
            positional=("map", "probes"), skip={"block": {"negative"}}),
        "weight_statistics": Case(analysis.weight_statistics, {"map": P(graph_rnn, "map")},
                                  positional=("map",)),
        "canonical_permutation": Case(analysis.canonical_permutation, {
            "map": P(graph_rnn, "map"), "blocks": P(None, "result", optional=True)},
            positional=("map",)),
        "resample_spectrum": Case(analysis.resample_spectrum, {
            "spectrum": P(np.array([0.1, -0.2, -1.0]), "array"),
            "length": P(5, "int>=1", size_like=True)}, positional=("spectrum", "length"),
            skip={"spectrum": {"wrong shape"}}),  # any length is a spectrum
        "spectra_table": Case(analysis.spectra_table, {
            "maps": P([RNN, HENON], "result"), "inputs": P(None, "array", optional=True),
            "k": P(None, "int>=1", optional=True), "steps": P(20, "int>=1"),
            "transient": P(5, "int>=0"), "length": P(None, "int>=1", optional=True),
            "x0": P("random", "result", optional=True), "floor": P(-30.0, "float"),
            "executor": P("serial", "executor", optional=True),
            "seed": P(0, "rng", optional=True), "progress": P(False, "bool")},
            positional=("maps",)),
        "spectrum_embedding": Case(analysis.spectrum_embedding, {
            "table": P(EMBED_X, "array"), "targets": P(EMBED_X[:, 0], "array"),
            "method": P("pca", "choice"), "latent": P(2, "int>=1"),
            "test_fraction": P(0.25, "probability"), "activation": P("tanh", "choice"),
            "alpha": P(1.0, "float>=0"), "epochs": P(20, "int>=1"), "lr": P(1e-2, "float>0"),
            "rng": P(0, "rng", optional=True)}, positional=("table", "targets"),
            nan_fields=("spearman",), skip={"table": {"wrong shape"}}),  # any feature count
        "permute_units": Case(analysis.permute_units, {
            "map": P(graph_rnn, "map"), "perm": P(np.arange(graph_rnn.dim), "array")},
            positional=("map", "perm")),
    }


# public names exercised elsewhere, with the reason they are not in the catalogue
EXEMPT = {
    "ACTIVATIONS": "a read-only registry (dict), no call",
    "Activation": "a plain record of functions; every map built from names checks them",
    "ConformanceError": "an exception type",
    "DivergenceError": "an exception type",
    "Map": "the base class; every concrete map is in the catalogue",
    "MapCheck": "a result record of check_map",
    "Trajectory": "a result record of iterate",
    "backends": "a module",
    "systems": "a module (its constructors are in the catalogue)",
    "saveable": "a class decorator; tests/test_io.py covers bad classes",
    "Result": "the base class of results; tests/test_result.py",
    "Status": "an enum of result codes",
    "Check": "a record of how a result fails in part; tests/test_result.py",
    "__version__": "a string",
    "FixedPoints": "a result record",
    "ImpulseResponse": "a result record",
    "MemoryCapacity": "a result record",
    "EdgeOfChaosScan": "a result record",
    "LyapunovSpectrum": "a result record",
    "LyapunovScan": "a result record",
    "OrbitDiagram": "a result record",
    "SweepFailure": "a result record",
    "SweepResult": "a result record",
    "GraphProperties": "a result record",
    "WeightStatistics": "a result record",
    "SpectraTable": "a result record",
    "SpectrumEmbedding": "a result record",
    "plots": "a module (its functions are in the catalogue)",
    "datasets": "a module (its functions are in the catalogue)",
    "NonFiniteLossError": "an exception type",
    "TrainHistory": "a result record of train",
    "TrainState": "a saved optimizer state of train",
    "FlipFlopAnalysis": "a result record",
    "SequenceComparison": "a result record",
    "CovariantVectors": "a result record",
    "Basins": "a result record",
    "Continuation": "a result record",
    "NewtonLyapunovScan": "a result record",
    "NewtonTrajectory": "a result record of iterate(method='newton')",
    "NewtonConvergenceError": "an exception type",
    "STATUS": "a constant (the names of the per-start states)",
    "RecurrentMap": "the stack of GRU/LSTM/RNN layers that from_torch builds; its layer maps"
                    " are in the catalogue",
    "from_torch": "needs torch modules or their state dicts; tests/test_torch.py checks its"
                  " errors layer by layer",
    "to_torch": "needs torch (CI has none); tests/test_torch_live.py",
    "newton_lyapunov_scan": "trains nothing but runs a scan over gains (seconds); its options"
                            " are checked in tests/test_parallel_in_time.py",
    "newton_lyapunov": "draws a NewtonLyapunovScan, see tests/test_parallel_in_time.py",
    "FiniteTimeExponents": "a result record",
    "ParameterComparison": "a result record",
    "digits": "takes no arguments",
    "accuracy_vs_parameters": "draws a ParameterComparison, which takes minutes to make",
    "fixed_points_pca": "see tests/test_training_analysis.py",
    "STYLE": "a path to the shipped style file",
    "COLUMN_WIDTHS": "a constant",
    "LogisticMap": "the class behind logistic(), which is in the catalogue",
    "HenonMap": "the class behind henon(), which is in the catalogue",
    "LinearMap": "the class behind linear(), which is in the catalogue",
    "StandardMap": "the class behind standard_map(), which is in the catalogue",
    "BlockFunction": "the base class of block functions; the built-in ones are in the catalogue",
    "BLOCK_FUNCTIONS": "a read-only registry (dict), no call",
    "block_functions": "a module (its classes are in the catalogue)",
}


def run(select=None):
    """Every (case, parameter, bad value) outcome: a list of dicts."""
    import matplotlib

    matplotlib.use("Agg")
    rows = []
    itermap.save(RNN, TMP / "rnn.npz")
    for cname, case in cases().items():
        if select is not None and cname not in select:
            continue
        for pname, p in case.params.items():
            if p.kind == "figure":
                continue
            for label, bad, refuse in _bad_values(p):
                if label in case.skip.get(pname, ()):
                    continue
                if case.passes_nan and label in ("nan", "inf"):
                    refuse = False
                if label == "mixed namespaces" and p.kind not in ("layers", "values"):
                    # another library's array beside NumPy arrays: one TypeError up front
                    # (parameter values are read one by one as Python floats: no mixing)
                    refuse = any(_holds_numpy(q.value) for q_name, q in case.params.items()
                                 if q_name != pname)
                outcome, detail = classify(case, pname, label, bad, refuse)
                rows.append({"case": cname, "param": pname, "bad": label,
                             "outcome": outcome, "detail": detail})
    return rows


def tally(rows) -> Counter:
    return Counter(r["outcome"] for r in rows)


if __name__ == "__main__":
    rows = run()
    print(f"{len(rows)} calls:", dict(tally(rows)))
    for r in rows:
        if r["outcome"] not in ("ok", "named"):
            print(f"{r['outcome']:>9}  {r['case']}({r['param']}={r['bad']}): {r['detail'][:150]}")
