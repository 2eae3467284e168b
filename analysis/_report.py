"""Scripted analysis reports: ``itermap report SPEC.toml --out DIR``.

A spec (TOML) names the networks and the analyses to run with their
settings; :func:`run_report` runs them and writes, atomically,

- ``DIR/report.html``: self-contained (figures embedded as PNG), the numbers in tables;
- ``DIR/figures/*.pdf`` and ``*.png``;
- ``DIR/results.json``: every number, the spec, the seed and the library
  versions. The same spec and seed give an identical file (no timestamps,
  no timings in it).

Spec layout::

    title = "..."            # optional
    seed = 0                 # optional, default 0

    [networks.NAME]          # one table per network
    kind = "mlp"             # widths = [...] (random weights) or path = "w.npz" (W0, W1, ...,
                             # optionally b0, b1, ...; torch (out, in) layout)
    kind = "random_rnn"      # n, gain, density, activation
    kind = "pattern"         # sizes, pattern (grid of BlockMatrix.from_pattern tokens), scale,
                             # activation, input_block, bias
    kind = "saved"           # path = "map.npz" (itermap.save)

    [[analyses]]             # run in order
    kind = "equivalence" | "block_matrix" | "sparsity_graph" | "trajectory" | "impulse_response"
         | "fixed_points" | "lyapunov" | "lyapunov_scan" | "orbit_diagram"
    network = "NAME"         # (impulse_response: networks = ["A", "B"])
    ...                      # the analysis' settings (see ANALYSES)

Relative paths are relative to the spec file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

__all__ = ["SpecError", "load_spec", "validate_spec", "run_report", "example_spec_path",
           "NETWORK_KINDS", "ANALYSES"]

_EXAMPLE = Path(__file__).with_name("data") / "example.toml"
_MARKER = "itermap-report"


class SpecError(ValueError):
    """A report spec with a missing, unknown or malformed key (the message names it)."""


def example_spec_path() -> str:
    """Path of the embedded default spec (``itermap report --example``)."""
    return str(_EXAMPLE)


# -- spec schema --------------------------------------------------------------------
_INT, _NUM, _STR, _BOOL = "int", "number", "string", "bool"

#: Network kinds: {kind: {key: (type, default or REQUIRED)}}
REQUIRED = object()
NETWORK_KINDS = {
    "mlp": {"widths": ("int_list", None), "path": (_STR, None), "activation": (_STR, "relu"),
            "output_activation": (_STR, "identity"), "scale": (_NUM, 1.0),
            "bias": (_NUM, 0.0)},
    "random_rnn": {"n": (_INT, REQUIRED), "gain": (_NUM, 1.0), "density": (_NUM, 1.0),
                   "activation": (_STR, "tanh")},
    "pattern": {"sizes": ("int_list", REQUIRED), "pattern": ("pattern", REQUIRED),
                "scale": (_NUM, 1.0), "activation": ("str_or_list", "tanh"),
                "input_block": (_INT, None), "bias": (_NUM, 0.0)},
    "saved": {"path": (_STR, REQUIRED)},
}

_GAINS = ("gains", REQUIRED)
#: Analyses: {kind: {key: (type, default or REQUIRED)}}; every analysis also takes `kind`.
ANALYSES = {
    "equivalence": {"network": (_STR, REQUIRED), "batch": (_INT, 32)},
    "block_matrix": {"network": (_STR, REQUIRED)},
    "sparsity_graph": {"network": (_STR, REQUIRED), "level": (_STR, "unit")},
    "trajectory": {"network": (_STR, REQUIRED), "steps": (_INT, 300), "transient": (_INT, 0),
                   "dims": ("int_list", [0, 1])},
    "impulse_response": {"networks": ("str_list", REQUIRED), "steps": (_INT, 20),
                         "method": (_STR, "linear")},
    "fixed_points": {"network": (_STR, REQUIRED), "starts": (_INT, 32),
                     "period": (_INT, 1)},
    "lyapunov": {"network": (_STR, REQUIRED), "steps": (_INT, 2000), "k": (_INT, 8),
                 "transient": (_INT, 200)},
    "lyapunov_scan": {"network": (_STR, REQUIRED), "gains": _GAINS, "steps": (_INT, 500),
                      "k": (_INT, 1), "transient": (_INT, 200)},
    "orbit_diagram": {"network": (_STR, REQUIRED), "gains": _GAINS, "transient": (_INT, 300),
                      "keep": (_INT, 40), "unit": (_INT, 0)},
}
_MIN = {"batch": 1, "steps": 1, "starts": 1, "period": 1, "k": 1, "transient": 0, "keep": 1,
        "n": 1, "unit": 0}


def _type_ok(kind, value):
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value)
    if kind == _STR:
        return isinstance(value, str)
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == "int_list":
        return isinstance(value, list) and bool(value) and all(_type_ok(_INT, v) for v in value)
    if kind == "str_list":
        return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    if kind == "str_or_list":
        return isinstance(value, str) or (isinstance(value, list) and value
                                          and all(isinstance(v, str) for v in value))
    if kind == "pattern":
        return isinstance(value, list) and value and all(
            isinstance(r, list) and all(isinstance(t, str) for t in r) for r in value)
    if kind == "gains":
        return (isinstance(value, list) and value and all(_type_ok(_NUM, v) for v in value)) \
            or isinstance(value, dict)
    raise AssertionError(kind)


_TYPE_WORDS = {_INT: "an integer", _NUM: "a finite number", _STR: "a string",
               _BOOL: "true or false", "int_list": "a non-empty list of integers",
               "str_list": "a non-empty list of names", "str_or_list": "a name or a list of names",
               "pattern": "a list of rows of block tokens (strings)",
               "gains": "a list of numbers or a table {start, stop, num}"}


def _check_table(where, table, schema):
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table, got {type(table).__name__}")
    out = {}
    for key in table:
        if key != "kind" and key not in schema:
            raise SpecError(f"{where}.{key}: unknown key (allowed: "
                            f"{', '.join(sorted(schema))})")
    for key, (kind, default) in schema.items():
        if key not in table:
            if default is REQUIRED:
                raise SpecError(f"{where}.{key}: missing (required, {_TYPE_WORDS[kind]})")
            out[key] = default
            continue
        value = table[key]
        if value is None and default is None:  # an optional key left unset
            out[key] = None
            continue
        if not _type_ok(kind, value):
            raise SpecError(f"{where}.{key}: expected {_TYPE_WORDS[kind]}, got {value!r}")
        if key in _MIN and value < _MIN[key]:
            raise SpecError(f"{where}.{key}: must be >= {_MIN[key]}, got {value}")
        if kind == "gains" and isinstance(value, dict):
            value = _gain_table(f"{where}.{key}", value)
        out[key] = value
    return out


def _gain_table(where, t):
    for k in t:
        if k not in ("start", "stop", "num"):
            raise SpecError(f"{where}.{k}: unknown key (allowed: num, start, stop)")
    for k, kind in (("start", _NUM), ("stop", _NUM), ("num", _INT)):
        if k not in t:
            raise SpecError(f"{where}.{k}: missing (required, {_TYPE_WORDS[kind]})")
        if not _type_ok(kind, t[k]):
            raise SpecError(f"{where}.{k}: expected {_TYPE_WORDS[kind]}, got {t[k]!r}")
    if t["num"] < 1:
        raise SpecError(f"{where}.num: must be >= 1, got {t['num']}")
    return np.linspace(t["start"], t["stop"], t["num"]).tolist()


def validate_spec(spec: dict) -> dict:
    """Check a parsed spec and fill in the defaults.

    Returns
    -------
    dict
        ``{"title", "seed", "networks": {name: settings}, "analyses": [settings]}``.

    Raises
    ------
    SpecError
        Naming the key (``networks.rnn.gain``, ``analyses[2].steps``) and what is wrong.

    Examples
    --------
    >>> validate_spec({"networks": {"a": {"kind": "random_rnn", "n": 10}},
    ...                "analyses": [{"kind": "lyapunov", "network": "a"}]})["analyses"][0]["k"]
    8
    >>> validate_spec({"networks": {"a": {"kind": "random_rnn", "n": -1}}, "analyses": []})
    Traceback (most recent call last):
    ...
    itermap.analysis._report.SpecError: networks.a.n: must be >= 1, got -1
    """
    if not isinstance(spec, dict):
        raise SpecError(f"the spec must be a table, got {type(spec).__name__}")
    for key in spec:
        if key not in ("title", "seed", "networks", "analyses"):
            raise SpecError(f"{key}: unknown top-level key (allowed: analyses, networks, seed, "
                            "title)")
    title = spec.get("title", "itermap report")
    if not isinstance(title, str):
        raise SpecError(f"title: expected a string, got {title!r}")
    seed = spec.get("seed", 0)
    if not _type_ok(_INT, seed) or seed < 0:
        raise SpecError(f"seed: expected a non-negative integer, got {seed!r}")
    nets = spec.get("networks")
    if not isinstance(nets, dict) or not nets:
        raise SpecError("networks: missing or empty (add at least one [networks.NAME] table)")
    networks = {}
    for name, table in nets.items():
        where = f"networks.{name}"
        if not isinstance(table, dict):
            raise SpecError(f"{where}: expected a table, got {table!r}")
        kind = table.get("kind")
        if kind not in NETWORK_KINDS:
            raise SpecError(f"{where}.kind: expected one of {', '.join(NETWORK_KINDS)}, "
                            f"got {kind!r}")
        settings = _check_table(where, table, NETWORK_KINDS[kind])
        if kind == "mlp" and (settings["widths"] is None) == (settings["path"] is None):
            raise SpecError(f"{where}: give exactly one of widths (random weights) or path "
                            "(an .npz of W0, W1, ...)")
        if kind == "mlp" and settings["widths"] is not None and (
                len(settings["widths"]) < 2 or min(settings["widths"]) < 1):
            raise SpecError(f"{where}.widths: needs at least two positive widths, got "
                            f"{settings['widths']}")
        if kind == "random_rnn" and not 0 < settings["density"] <= 1:
            raise SpecError(f"{where}.density: must be in (0, 1], got {settings['density']}")
        if kind == "pattern":
            n = len(settings["sizes"])
            if len(settings["pattern"]) != n or any(len(r) != n for r in settings["pattern"]):
                raise SpecError(f"{where}.pattern: expected {n} rows of {n} tokens to match "
                                f"sizes {settings['sizes']}")
        networks[name] = {"kind": kind, **settings}
    raw = spec.get("analyses", [])
    if not isinstance(raw, list):
        raise SpecError("analyses: expected an array of tables ([[analyses]])")
    analyses = []
    for i, table in enumerate(raw):
        where = f"analyses[{i}]"
        if not isinstance(table, dict):
            raise SpecError(f"{where}: expected a table, got {table!r}")
        kind = table.get("kind")
        if kind not in ANALYSES:
            raise SpecError(f"{where}.kind: expected one of {', '.join(ANALYSES)}, got {kind!r}")
        settings = _check_table(where, table, ANALYSES[kind])
        for key in ("network", "networks"):
            if key in settings:
                names = settings[key] if isinstance(settings[key], list) else [settings[key]]
                for name in names:
                    if name not in networks:
                        raise SpecError(f"{where}.{key}: no network named {name!r} (defined: "
                                        f"{', '.join(networks)})")
        if kind in ("lyapunov_scan", "orbit_diagram") and \
                networks[settings["network"]]["kind"] != "random_rnn":
            raise SpecError(f"{where}.network: a gain scan needs a random_rnn network, "
                            f"{settings['network']!r} is {networks[settings['network']]['kind']}")
        if kind == "equivalence" and networks[settings["network"]]["kind"] != "mlp":
            raise SpecError(f"{where}.network: the equivalence check is for an mlp network")
        if kind == "sparsity_graph" and settings["level"] not in ("unit", "block"):
            raise SpecError(f"{where}.level: expected 'unit' or 'block', got "
                            f"{settings['level']!r}")
        analyses.append({"kind": kind, **settings})
    return {"title": title, "seed": seed, "networks": networks, "analyses": analyses}


def load_spec(path) -> dict:
    """Read and validate a TOML spec; relative paths inside it are resolved against its folder."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file {path} does not exist") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    spec = validate_spec(raw)
    for net in spec["networks"].values():
        if net.get("path"):
            p = Path(net["path"])
            net["path"] = str(p if p.is_absolute() else (path.parent / p))
    return spec


# -- building networks --------------------------------------------------------------
def _rng_for(seed, *names):
    words = [seed] + [zlib.crc32(str(n).encode()) for n in names]
    return np.random.default_rng(words)


def _build_network(name, net, seed):
    import itermap

    kind = net["kind"]
    rng = _rng_for(seed, "network", name)
    where = f"networks.{name}"
    if kind == "random_rnn":
        return itermap.random_rnn(net["n"], gain=net["gain"], density=net["density"],
                                  activation=net["activation"], rng=rng)
    if kind == "mlp":
        if net["path"] is not None:
            try:
                with np.load(net["path"], allow_pickle=False) as data:
                    files = dict(data)
            except FileNotFoundError:
                raise SpecError(f"{where}.path: {net['path']} does not exist") from None
            Ws, l = [], 0
            while f"W{l}" in files:
                Ws.append(files[f"W{l}"])
                l += 1
            if not Ws:
                raise SpecError(f"{where}.path: {net['path']} holds no arrays W0, W1, ...")
            bs = [files[f"b{i}"] for i in range(len(Ws))] if all(
                f"b{i}" in files for i in range(len(Ws))) else None
        else:
            w = net["widths"]
            Ws = [rng.normal(0.0, net["scale"] / math.sqrt(i), size=(o, i))
                  for i, o in zip(w[:-1], w[1:])]
            bs = [net["bias"] * rng.normal(size=o) for o in w[1:]] if net["bias"] else None
        try:
            return itermap.IterativeMap.from_mlp(Ws, bs, activation=net["activation"],
                                                 output_activation=net["output_activation"])
        except (ValueError, TypeError, KeyError) as exc:
            raise SpecError(f"{where}: {exc}") from None
    if kind == "pattern":
        try:
            bm = itermap.BlockMatrix.from_pattern(net["sizes"], net["pattern"], rng=rng,
                                                  scale=net["scale"])
            bias = net["bias"] * rng.normal(size=bm.dim) if net["bias"] else None
            return itermap.IterativeMap(bm, bias, net["activation"],
                                        input_block=net["input_block"])
        except (ValueError, TypeError, KeyError) as exc:
            raise SpecError(f"{where}: {exc}") from None
    if kind == "saved":
        try:
            obj = itermap.load(net["path"])
        except FileNotFoundError:
            raise SpecError(f"{where}.path: {net['path']} does not exist") from None
        if not isinstance(obj, itermap.Map):
            raise SpecError(f"{where}.path: {net['path']} holds a {type(obj).__name__}, "
                            "not a map")
        return obj
    raise AssertionError(kind)


def _describe(m):
    bm = getattr(m, "block_matrix", None)
    out = {"dim": int(m.dim), "sizes": [int(s) for s in m.sizes],
           "input_block": m.input_block, "type": type(m).__name__}
    if bm is not None:
        out.update(nnz=int(bm.nnz), density=float(bm.density),
                   block_pattern=bm.block_pattern().astype(int).tolist())
    acts = getattr(m, "activations", None)
    if acts is not None:
        out["activations"] = [a.name for a in acts]
    return out


def _block_labels(m):
    n = len(m.sizes)
    if m.input_block is None:
        return [str(i) for i in range(n)]
    labels = [f"h{i}" for i in range(n)]
    labels[m.input_block] = "x"
    if m.input_block == 0 and n > 2:
        labels = ["x"] + [f"h{i}" for i in range(1, n - 1)] + ["y"]
    return labels


def _input_for(m, rng):
    """A fixed input vector for a driven map (None for autonomous ones)."""
    if m.input_block is None:
        return None
    return rng.normal(size=m.input_size)


def _settled(m, u, steps=None):
    """A state of a driven map after ``steps`` (or enough) steps under the input ``u``."""
    x = m.zeros()
    n = steps or getattr(m, "settle_steps", None) or 50
    for _ in range(n):
        x = m.step(x, u)
    return x


# -- analyses -----------------------------------------------------------------------------
class _Out:
    """What one analysis produces: numbers, tables and figures."""

    def __init__(self):
        self.numbers: dict = {}
        self.tables: list = []  # (caption, columns, rows)
        self.figures: list = []  # (stem, figure, caption)

    def table(self, caption, columns, rows):
        self.tables.append((caption, list(columns), [list(r) for r in rows]))

    def figure(self, stem, fig, caption):
        self.figures.append((stem, fig, caption))


def _new_axes(columns=1, height=None):
    """A figure sized for the paper (analyses run inside :func:`plots.paper_style`)."""
    import matplotlib.pyplot as plt

    from .plots import COLUMN_WIDTHS

    width = COLUMN_WIDTHS[columns]
    fig, ax = plt.subplots(figsize=(width, height or plt.rcParams["figure.figsize"][1]))
    return fig, ax


def _a_equivalence(cfg, nets, rng, out):
    m = nets[cfg["network"]]
    L = len(m.sizes) - 1
    x = rng.normal(size=(cfg["batch"], m.input_size))
    # a plain forward pass, written here independently of the map
    h = x
    acts = m.activations
    for l in range(1, L + 1):
        W = np.asarray(m.block_matrix.block(l, l - 1).toarray() if hasattr(
            m.block_matrix.block(l, l - 1), "toarray") else m.block_matrix.block(l, l - 1))
        b = 0.0 if m.bias is None else np.asarray(m.bias)[m.block_slice(l)]
        h = acts[l].apply(h @ W.T + b, np)
    state = m.zeros(cfg["batch"])
    for _ in range(L):
        state = m.step(state, x)
    err = float(np.max(np.abs(m.readout(state) - h)))
    rests = bool(np.array_equal(m.step(state, x), state))
    out.numbers.update(layers=L, batch=cfg["batch"], max_abs_error=err,
                       one_more_step_changes_nothing=rests,
                       settle_steps=getattr(m, "settle_steps", None))
    out.table("The MLP as an iterative map", ["quantity", "value"],
              [["layers L", L], [f"max |map after L steps - forward pass| ({cfg['batch']} inputs)",
                                 f"{err:.2e}"],
               ["state at rest after L steps", rests]])


def _a_block_matrix(cfg, nets, rng, out):
    from . import plots

    m = nets[cfg["network"]]
    bm = m.block_matrix
    fig, ax = _new_axes(1, height=3.3)
    plots.block_matrix(m, ax=ax, labels=_block_labels(m))
    out.figure(f"block_matrix_{cfg['network']}", fig,
               f"Weight matrix of {cfg['network']}: nonzeros (red positive, blue negative) and "
               "block boundaries.")
    out.numbers.update(sizes=list(bm.sizes), nnz=int(bm.nnz), density=float(bm.density),
                       block_pattern=bm.block_pattern().astype(int).tolist())
    labels = _block_labels(m)
    rows = [[labels[i]] + [int(_nnz(bm.blocks.get((i, j)))) for j in range(bm.n_blocks)]
            for i in range(bm.n_blocks)]
    out.table("Nonzeros per block (row: to, column: from)", ["to \\ from"] + labels, rows)


def _nnz(block):
    if block is None:
        return 0
    if hasattr(block, "count_nonzero") and not hasattr(block, "ndim"):
        return block.count_nonzero()
    if hasattr(block, "nnz"):
        return block.count_nonzero()
    return np.count_nonzero(np.asarray(block))


def _need(name):
    import itermap.analysis as analysis

    fn = getattr(analysis, name, None)
    if fn is None:
        raise RuntimeError(f"analysis.{name} is not available in this installation")
    return fn


def _a_sparsity_graph(cfg, nets, rng, out):
    import networkx as nx

    from . import plots

    m = nets[cfg["network"]]
    G = _need("sparsity_graph")(m, level=cfg["level"])
    fig, ax = _new_axes(1)
    plots.sparsity_graph(G, ax=ax, labels=_block_labels(m))
    out.figure(f"sparsity_graph_{cfg['network']}", fig,
               f"Sparsity graph of {cfg['network']} ({cfg['level']} level), laid out by block.")
    dag = nx.is_directed_acyclic_graph(G)
    fir = getattr(__import__("analysis"), "fir_length", None)
    out.numbers.update(nodes=G.number_of_nodes(), edges=G.number_of_edges(), acyclic=dag,
                       longest_path=int(nx.dag_longest_path_length(G, weight=None)) if dag
                       else None,
                       fir_length=None if fir is None else fir(m))
    out.table("Sparsity graph", ["quantity", "value"],
              [[k, v] for k, v in out.numbers.items()])


def _a_trajectory(cfg, nets, rng, out):
    import itermap

    from . import plots

    m = nets[cfg["network"]]
    u = _input_for(m, rng)
    x0 = rng.normal(size=m.dim) * 0.5
    if u is not None:
        x0 = m.with_input(x0, u) if hasattr(m, "with_input") else x0
    traj = itermap.iterate(m, x0, cfg["steps"] + cfg["transient"], inputs=u)
    states = np.asarray(traj.states)[cfg["transient"]:]
    dims = [d for d in cfg["dims"]]
    for d in dims:
        if not 0 <= d < m.dim:
            raise SpecError(f"analyses trajectory.dims: unit {d} does not exist in "
                            f"{cfg['network']} (dim {m.dim})")
    fig, ax = _new_axes(1)
    plots.trajectory(states, dims=dims if m.dim > 1 else (0,), ax=ax)
    out.figure(f"trajectory_{cfg['network']}", fig,
               f"Phase portrait of {cfg['network']} after {cfg['transient']} steps.")
    out.numbers.update(steps=cfg["steps"], final_norm=float(np.linalg.norm(states[-1])),
                       mean_abs_state=float(np.mean(np.abs(states))))


def _a_impulse_response(cfg, nets, rng, out):
    from . import plots

    fn = _need("impulse_response")
    fig, ax = _new_axes(1)
    rows = []
    for name in cfg["networks"]:
        m = nets[name]
        u = _input_for(m, rng)
        x = _settled(m, u) if u is not None else m.zeros()
        ir = fn(m, x, cfg["steps"], inputs=u, method=cfg["method"])
        norms = np.asarray(ir.norms, dtype=float)
        total = np.sqrt(np.sum(norms ** 2, axis=(1, 2)))  # every source, every block
        plots.impulse_response(total[:, None], ax=ax, labels=[name], mark_length=False)
        length = getattr(ir, "length", None)
        decay = getattr(ir, "decay_rate", None)
        out.numbers[name] = {"length": None if length is None else int(length),
                             "decay_rate": None if decay is None else float(decay),
                             "norm_per_step": total.tolist()}
        rows.append([name, "infinite" if length is None else int(length),
                     "-" if decay is None else f"{float(decay):.3g}"])
    ax.set_title("response to an impulse")
    out.figure("impulse_response_" + "_".join(cfg["networks"]), fig,
               "Norm of the linear response to an impulse against the step: a finite impulse "
               "response ends (the log axis cannot show zeros), a recurrent one decays.")
    out.table("Impulse responses", ["network", "length (steps)", "decay rate (nats/step)"],
              rows)


def _a_fixed_points(cfg, nets, rng, out):
    from . import plots

    m = nets[cfg["network"]]
    find = _need("find_fixed_points")
    u = _input_for(m, rng)
    sample = getattr(__import__("analysis"), "sample_states", None)
    if sample is not None:
        x0 = sample(m, cfg["starts"], steps=20, noise=0.5, rng=rng,
                    **({} if u is None else {"inputs": u}))
    else:
        x0 = rng.normal(size=(cfg["starts"], m.dim))
    fp = find(m, x0, inputs=u, period=cfg["period"])
    pts = np.asarray(fp.points)
    ev = np.asarray(fp.eigenvalues)
    stable = np.asarray(fp.stable, dtype=bool)
    n_uns = np.asarray(fp.n_unstable)
    fig, ax = _new_axes(1, height=2.6)
    plots.eigenvalues(fp, ax=ax)
    out.figure(f"fixed_points_{cfg['network']}", fig,
               f"Jacobian eigenvalues at the fixed points of {cfg['network']}.")
    radius = np.abs(ev).max(axis=1) if ev.size else np.zeros(0)
    out.numbers.update(count=int(pts.shape[0]), stable=int(stable.sum()),
                       unconverged=int(getattr(fp, "n_unconverged", 0)),
                       max_residual=float(np.max(np.asarray(fp.residuals), initial=0.0)),
                       spectral_radius=radius.tolist(), n_unstable=n_uns.tolist(),
                       state_norm=np.linalg.norm(pts, axis=1).tolist())
    out.table(f"Fixed points of {cfg['network']} ({cfg['starts']} starts)",
              ["#", "|x*|", "spectral radius", "unstable directions", "stable"],
              [[i, f"{np.linalg.norm(pts[i]):.3g}", f"{radius[i]:.3g}", int(n_uns[i]),
                bool(stable[i])] for i in range(min(pts.shape[0], 20))])


def _a_lyapunov(cfg, nets, rng, out):
    from . import plots

    m = nets[cfg["network"]]
    fn = _need("lyapunov_spectrum")
    k = min(cfg["k"], m.dim)
    x0 = rng.normal(size=(4, m.dim)) * 0.5
    kw = {"k": k, "transient": cfg["transient"]}
    u = _input_for(m, rng)
    if u is not None:
        kw["inputs"] = u
    res = fn(m, x0, cfg["steps"], **kw)
    import matplotlib.pyplot as plt

    fig = plots.lyapunov_panels(res, fig=plt.figure(figsize=(plots.COLUMN_WIDTHS[2], 2.6)))
    out.figure(f"lyapunov_{cfg['network']}", fig,
               f"Lyapunov spectrum of {cfg['network']} and the convergence of its estimates.")
    exps = np.asarray(res.exponents, dtype=float)
    err = getattr(res, "stderr", None)
    err = np.full_like(exps, np.nan) if err is None else np.asarray(err, dtype=float)
    dky = getattr(res, "kaplan_yorke_dimension", None)
    h = getattr(res, "entropy_rate", None)
    out.numbers.update(exponents=exps.tolist(), stderr=err.tolist(),
                       kaplan_yorke_dimension=None if dky is None else float(dky),
                       entropy_rate=None if h is None else float(h), steps=cfg["steps"])
    out.table(f"Lyapunov exponents of {cfg['network']} (nats/step)",
              ["i", "exponent", "std. error"],
              [[i + 1, f"{e:.4f}", f"{s:.1e}"] for i, (e, s) in enumerate(zip(exps, err))])
    out.table("Derived", ["quantity", "value"],
              [["Kaplan-Yorke dimension", "-" if dky is None else f"{float(dky):.3g}"],
               ["entropy rate (sum of positive exponents)", "-" if h is None
                else f"{float(h):.4f}"]])


def _gain_family(net, seed, name):
    """``make_map(g)`` for the network's weights scaled to gain ``g`` (batched over gains)."""
    import itermap

    from ._scan import gain_family

    base = itermap.random_rnn(net["n"], gain=1.0, density=net["density"],
                              activation=net["activation"],
                              rng=_rng_for(seed, "network", name))
    return gain_family(base)


_CHAOS = 0.01  # nats/step: the largest exponent above which a scan point counts as chaotic


def _a_lyapunov_scan(cfg, nets, rng, out, *, spec):
    from . import plots
    from ._scan import lyapunov_scan, mean_field_exponent

    name = cfg["network"]
    net = spec["networks"][name]
    gains = np.asarray(cfg["gains"], dtype=float)
    x0 = rng.normal(size=net["n"]) * 0.5
    scan = lyapunov_scan(_gain_family(net, spec["seed"], name), gains, x0, cfg["steps"],
                         k=cfg["k"], transient=cfg["transient"])
    lam = scan.exponents[:, 0]
    ref = mean_field_exponent(gains) if net["activation"] == "tanh" and \
        net["density"] == 1.0 else None
    fig, ax = _new_axes(1)
    plots.lyapunov_scan(scan, ax=ax, reference=None if ref is None else np.maximum(ref, -5),
                        reference_label="mean-field theory", all_exponents=cfg["k"] > 1)
    out.figure(f"lyapunov_scan_{name}", fig,
               f"Largest Lyapunov exponent of a random tanh network (n = {net['n']}) against "
               "the gain, with the mean-field prediction; chaos where it is positive.")
    # onset of chaos: where the largest exponent first rises above a small threshold (a
    # finite network often sits on a limit cycle or torus, lambda_1 = 0, just above g = 1)
    crossing = None
    pos = np.flatnonzero(lam > _CHAOS)
    if pos.size and pos[0] > 0:
        i = pos[0]
        g0, g1, l0, l1 = gains[i - 1], gains[i], lam[i - 1], lam[i]
        crossing = float(g0 + (g1 - g0) * (_CHAOS - l0) / (l1 - l0))
    out.numbers.update(gains=gains.tolist(), largest_exponent=lam.tolist(),
                       stderr=scan.stderr[:, 0].tolist(),
                       mean_field=None if ref is None else ref.tolist(),
                       transition_gain=crossing, n=net["n"], steps=cfg["steps"])
    out.table("Largest exponent against gain (nats/step)",
              ["gain", "largest exponent", "std. error"] + (["mean field"] if ref is not None
                                                            else []),
              [[f"{g:.3g}", f"{v:.4f}", f"{s:.1e}"] + ([f"{r:.4f}"] if ref is not None else [])
               for g, v, s, r in zip(gains, lam, scan.stderr[:, 0],
                                     ref if ref is not None else gains)])
    out.table("Transition to chaos", ["quantity", "value"],
              [[f"gain where the largest exponent exceeds {_CHAOS} (chaos)",
                "-" if crossing is None else f"{crossing:.3f}"],
               ["mean-field prediction (n -> infinity)", "1" if ref is not None else "-"]])


def _a_orbit_diagram(cfg, nets, rng, out, *, spec):
    from . import plots
    from ._scan import orbit_diagram

    name = cfg["network"]
    net = spec["networks"][name]
    if not 0 <= cfg["unit"] < net["n"]:
        raise SpecError(f"analyses orbit_diagram.unit: unit {cfg['unit']} does not exist "
                        f"(n = {net['n']})")
    gains = np.asarray(cfg["gains"], dtype=float)
    x0 = rng.normal(size=net["n"]) * 0.5
    od = orbit_diagram(_gain_family(net, spec["seed"], name), gains, x0,
                       transient=cfg["transient"], keep=cfg["keep"])
    fig, ax = _new_axes(1)
    plots.orbit_diagram(od, ax=ax, component=cfg["unit"], xlabel="gain $g$")
    out.figure(f"orbit_diagram_{name}", fig,
               f"States of unit {cfg['unit']} visited after the transient, against the gain.")
    s = od.states[:, :, cfg["unit"]]
    out.numbers.update(gains=gains.tolist(),
                       distinct_values=[int(np.unique(np.round(r, 6)).size) for r in s],
                       spread=np.nan_to_num(np.nanmax(s, 1) - np.nanmin(s, 1)).tolist())


_RUNNERS = {"equivalence": _a_equivalence, "block_matrix": _a_block_matrix,
            "sparsity_graph": _a_sparsity_graph, "trajectory": _a_trajectory,
            "impulse_response": _a_impulse_response, "fixed_points": _a_fixed_points,
            "lyapunov": _a_lyapunov, "lyapunov_scan": _a_lyapunov_scan,
            "orbit_diagram": _a_orbit_diagram}


# -- output ---------------------------------------------------------------------------------
def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else ("nan" if math.isnan(v) else
                                           ("inf" if v > 0 else "-inf"))
    return value


def _dumps(doc) -> str:
    """JSON with sorted keys, one key per line, and flat lists of numbers on one line."""
    import re

    text = json.dumps(doc, indent=1, sort_keys=True, allow_nan=False)
    # JSON strings hold no raw newlines, so ",\n" and indentation only occur between items
    return re.sub(r"\[\s*([^\[\]{}]*?)\s*\]",
                  lambda m: "[" + ", ".join(p.strip() for p in m.group(1).split(",\n")) + "]",
                  text) + "\n"


def _versions():
    import matplotlib
    import networkx
    import scipy

    import itermap

    return {"itermap": itermap.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "matplotlib": matplotlib.__version__, "networkx": networkx.__version__,
            "python": platform.python_version()}


_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222}h1{font-size:1.5rem}h2{font-size:1.15rem;border-bottom:1px solid #ccc;
margin-top:2rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}th{background:#f3f3f3}
caption{caption-side:top;text-align:left;font-weight:600;padding:.2rem 0}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}pre{background:#f6f6f6;padding:.6rem;overflow:auto;
font-size:.8rem}.error{color:#a00}"""


def _html_table(caption, columns, rows):
    e = html.escape
    head = "".join(f"<th>{e(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><caption>{e(caption)}</caption><tr>{head}</tr>{body}</table>"


def _render(spec, spec_text, nets, sections, versions, elapsed):
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(spec['title'])}"
             f"</title><style>{_CSS}</style></head><body><h1>{e(spec['title'])}</h1>",
             f"<p>seed {spec['seed']} &middot; {len(sections)} analyses &middot; ran in "
             f"{elapsed:.1f} s &middot; itermap {e(versions['itermap'])}. Exponents and decay "
             "rates are in nats per step. Every number is also in <code>results.json</code>; "
             "every figure in <code>figures/</code> as PDF and PNG.</p>"]
    rows = [[n, d["type"], d["dim"], d["sizes"], d.get("nnz", "-"),
             f"{d['density']:.3g}" if "density" in d else "-",
             "-" if d["input_block"] is None else d["input_block"]] for n, d in nets.items()]
    parts.append("<h2>Networks</h2>" + _html_table(
        "Networks", ["name", "type", "dim", "block sizes", "nnz", "density", "input block"],
        rows))
    for sec in sections:
        parts.append(f"<h2>{sec['index'] + 1}. {e(sec['title'])}</h2>")
        for caption, columns, trows in sec["tables"]:
            parts.append(_html_table(caption, columns, trows))
        for stem, png, caption in sec["figures"]:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<figure><img alt='{e(stem)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{e(caption)} (<code>figures/{e(stem)}.pdf</code>)"
                         "</figcaption></figure>")
    parts.append("<h2>Versions</h2>" + _html_table("Library versions", ["library", "version"],
                                                   sorted(versions.items())))
    parts.append(f"<h2>Spec</h2><pre>{e(spec_text)}</pre></body></html>")
    return "\n".join(parts)


def _looks_like_report(path: Path) -> bool:
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    entries = list(path.iterdir())
    if not entries:
        return True
    try:
        with open(path / "results.json", encoding="utf-8") as fh:
            return json.load(fh).get("format") == _MARKER
    except (OSError, ValueError, AttributeError):
        return False


def _title_of(cfg):
    target = cfg.get("network") or ", ".join(cfg.get("networks", []))
    return f"{cfg['kind'].replace('_', ' ')} ({target})"


def run_report(spec, out, *, spec_text=None, seed=None, progress=None) -> dict:
    """Run the analyses of a spec and write the report to ``out`` atomically.

    Parameters
    ----------
    spec : dict or path
        A path to a TOML spec, or a spec as a dict (checked with
        :func:`validate_spec`; relative paths in it are relative to the
        working directory).
    out : path
        The report folder. It is built next to ``out`` under a temporary
        name and swapped in only when complete; an earlier report there is
        replaced then, and anything else there is refused.
    spec_text : str, optional
        The spec's source text, shown in the HTML.
    seed : int, optional
        Overrides the spec's seed.
    progress : file, optional
        Where progress lines go (default ``sys.stderr``); ``False`` for silence.

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    if progress is None:
        progress = sys.stderr
    if not isinstance(spec, dict):
        spec_path = Path(spec)
        spec = load_spec(spec_path)
        if spec_text is None:
            spec_text = spec_path.read_text(encoding="utf-8")
    else:
        spec = validate_spec(spec)  # idempotent: a validated spec passes unchanged
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SpecError(f"seed: expected a non-negative integer, got {seed!r}")
        spec = dict(spec, seed=seed)
    out = Path(out).absolute()
    if not _looks_like_report(out):
        raise FileExistsError(f"{out} exists and is not an itermap report; refusing to "
                              "replace it (choose another --out)")

    def say(msg, end="\n"):
        if progress:
            print(msg, end=end, file=progress, flush=True)

    import matplotlib.pyplot as plt

    from . import plots

    t_start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        (tmp / "figures").mkdir()
        nets, described = {}, {}
        for name, net in spec["networks"].items():
            nets[name] = _build_network(name, net, spec["seed"])
            described[name] = _describe(nets[name])
        n = len(spec["analyses"])
        sections, results = [], []
        for i, cfg in enumerate(spec["analyses"]):
            title = _title_of(cfg)
            say(f"[{i + 1}/{n}] {title} ...", end="")
            t0 = time.perf_counter()
            res = _Out()
            runner = _RUNNERS[cfg["kind"]]
            rng = _rng_for(spec["seed"], "analysis", i, cfg["kind"])
            kw = {"spec": spec} if cfg["kind"] in ("lyapunov_scan", "orbit_diagram") else {}
            with np.errstate(all="ignore"), plots.paper_style(1):
                runner(cfg, nets, rng, res, **kw)
            figs = []
            for stem, fig, caption in res.figures:
                stem = f"{i + 1:02d}_{stem}"
                # tight bounding boxes: labels outside the axes are never clipped
                fig.savefig(tmp / "figures" / f"{stem}.pdf", metadata={"CreationDate": None},
                            bbox_inches="tight", pad_inches=0.03)
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=200, bbox_inches="tight", pad_inches=0.03)
                png = buf.getvalue()
                (tmp / "figures" / f"{stem}.png").write_bytes(png)
                plt.close(fig)
                figs.append((stem, png, caption))
            sections.append({"index": i, "title": title, "tables": res.tables, "figures": figs})
            results.append({"kind": cfg["kind"], "settings": cfg, "numbers": res.numbers,
                            "tables": [{"caption": c, "columns": cols, "rows": rows}
                                       for c, cols, rows in res.tables],
                            "figures": [f"figures/{s}.pdf" for s, _, _ in figs]})
            say(f" {time.perf_counter() - t0:.1f} s")
        versions = _versions()
        doc = _jsonable({"format": _MARKER, "format_version": 1, "title": spec["title"],
                         "seed": spec["seed"], "spec": spec, "versions": versions,
                         "networks": described, "analyses": results})
        (tmp / "results.json").write_text(_dumps(doc), encoding="utf-8")
        elapsed = time.perf_counter() - t_start
        text = spec_text if spec_text is not None else json.dumps(_jsonable(spec), indent=1)
        (tmp / "report.html").write_text(
            _render(spec, text, described, sections, versions, elapsed), encoding="utf-8")
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"report written to {out / 'report.html'} ({time.perf_counter() - t_start:.1f} s)")
    return doc


def _swap_in(tmp: Path, out: Path):
    """Replace ``out`` by the finished ``tmp`` with renames (never a half-written ``out``)."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(old)
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)  # put the earlier report back
        raise
    shutil.rmtree(old, ignore_errors=True)


def report_command(parser, args) -> int:
    """The ``itermap report`` subcommand (errors in the spec exit with status 2)."""
    import matplotlib

    matplotlib.use("Agg")
    if args.example == (args.spec is not None):
        parser.error("report: give a SPEC.toml or --example (one of them)")
    path = example_spec_path() if args.example else args.spec
    try:
        run_report(path, args.out, seed=args.seed)
    except (SpecError, FileExistsError) as exc:
        print(f"itermap report: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an analysis failed: nothing was written
        print(f"\nitermap report: failed ({type(exc).__name__}: {exc}); no report was written",
              file=sys.stderr)
        return 1
    return 0
