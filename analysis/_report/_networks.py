"""The networks of a spec: their sizes before building, the maps, their one driving input."""

from __future__ import annotations

import math
import re
import zlib

import numpy as np

import itermap
from itermap.files import NpzReader

from ._models import InputDraw, Sizes, SpecError, check_held_input

__all__ = ["rng_for", "static_sizes", "sizes_of", "build_network", "describe", "drive_input",
           "input_source", "block_labels", "network_gain"]


def rng_for(seed, *names):
    """A Generator for one named purpose: the same seed and names give the same stream."""
    words = [seed] + [zlib.crc32(str(n).encode()) for n in names]
    return np.random.default_rng(words)


def _layer_names(archive, where):
    """``(["W0", "W1", ...], ["b0", ...] or [])`` of an MLP archive: the members it uses.

    A ``W<k>`` after a gap, or biases for some layers only, would be dropped without a
    word: a SpecError names them."""
    names = set(archive.members())
    Ws = []
    while f"W{len(Ws)}" in names:
        Ws.append(f"W{len(Ws)}")
    bs = [f"b{i}" for i in range(len(Ws))]
    numbered = {n for n in names if re.fullmatch(r"[Wb]\d+", n)}
    if numbered - set(Ws) - set(bs) or numbered & set(bs) not in (set(), set(bs)):
        raise SpecError(f"{where}.path: {archive.path} holds {sorted(numbered)}: an MLP's "
                        f"layers are W0, W1, ... without a gap, with a bias b<k> for every "
                        f"W<k> or for none")
    return Ws, bs if all(b in names for b in bs) else []


def static_sizes(name, net, where) -> Sizes | None:
    """The dimension and stored weights of a spec's network, None if known only once loaded
    (nothing is allocated: a saved mlp is measured from the array headers)."""
    if net.kind == "random_rnn":
        return Sizes(dim=net.n + net.inputs,
                     nnz=math.ceil(net.n * net.n * net.density) + net.n * net.inputs,
                     driven=net.inputs > 0, gain=float(net.gain))
    if net.kind == "pattern":
        s = net.sizes
        nnz = sum(s[i] * s[j] for i, row in enumerate(net.pattern) for j, t in enumerate(row)
                  if t.strip() != "0")
        return Sizes(dim=sum(s), nnz=nnz, driven=net.input_block is not None,
                     gain=float(net.scale))
    if net.kind == "mlp":
        if net.widths is not None:
            w = net.widths
            return Sizes(dim=sum(w), nnz=sum(a * b for a, b in zip(w[:-1], w[1:])), driven=True,
                         gain=float(net.scale))
        try:  # the shapes of W0, W1, ... from their headers
            with NpzReader(net.path, f"{where}.path") as archive:
                Ws = [archive.header(w)[0] for w in _layer_names(archive, where)[0]]
        except SpecError:
            raise
        except FileNotFoundError:
            raise SpecError(f"{where}.path: {net.path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise SpecError(f"{where}.path: {net.path} is not a readable .npz ({exc})") from None
        if not Ws or any(len(s) != 2 for s in Ws):
            raise SpecError(f"{where}.path: {net.path} holds no 2-D arrays W0, W1, ...")
        dim = Ws[0][1] + sum(s[0] for s in Ws)
        return Sizes(dim=int(dim), nnz=int(sum(a * b for a, b in Ws)), driven=True)
    return None


def sizes_of(m) -> Sizes:
    """The sizes of a built map (for the estimates of a saved network)."""
    bm = getattr(m, "block_matrix", None)
    nnz = int(bm.nnz) if bm is not None else int(m.dim) ** 2
    return Sizes(dim=int(m.dim), nnz=nnz, driven=int(getattr(m, "input_size", 0)) > 0)


def build_network(name, net, seed):
    """The map a spec's network names (weights from the stream ``(seed, "network", name)``)."""
    rng = rng_for(seed, "network", name)
    where = f"networks.{name}"
    if net.kind == "random_rnn":
        m = itermap.random_rnn(net.n, gain=net.gain, density=net.density,
                               activation=net.activation, rng=rng)
        return _with_inputs(m, net, rng) if net.inputs else m
    try:
        if net.kind == "mlp":
            return _mlp(net, rng, where)
        if net.kind == "pattern":
            bm = itermap.BlockMatrix.from_pattern(net.sizes, net.pattern, rng=rng,
                                                  scale=net.scale)
            bias = net.bias * rng.normal(size=bm.dim) if net.bias else None
            return itermap.IterativeMap(bm, bias, net.activation, input_block=net.input_block)
    except SpecError:
        raise
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise SpecError(f"{where}: {exc}") from None
    try:
        obj = itermap.load(net.path)
    except FileNotFoundError:
        raise SpecError(f"{where}.path: {net.path} does not exist") from None
    except ValueError as exc:
        raise SpecError(f"{where}.path: {exc}") from None
    except OSError as exc:  # unreadable (permissions, I/O): refused like a bad file
        raise SpecError(f"{where}.path: cannot read {net.path} ({exc.strerror or exc})") from None
    if not isinstance(obj, itermap.Map):
        raise SpecError(f"{where}.path: {net.path} holds a {type(obj).__name__}, not a map")
    return obj


def _with_inputs(m, net, rng):
    """``m`` driven by an input block of ``net.inputs`` units before its own: the same
    recurrent weights (drawn first from the same stream) and ``W_in ~ N(0, 1 / inputs)``."""
    W = m.block_matrix.block(0, 0)
    W_in = rng.normal(0.0, 1.0 / math.sqrt(net.inputs), size=(net.n, net.inputs))
    bm = itermap.BlockMatrix([net.inputs, net.n], {(1, 0): W_in, (1, 1): W})
    return itermap.IterativeMap(bm, None, ["identity", net.activation], input_block=0)


def _mlp(net, rng, where):
    if net.path is not None:
        # only W0, W1, ... and b0, b1, ... are read; other members are never decompressed
        with NpzReader(net.path, f"{where}.path") as archive:
            w_names, b_names = _layer_names(archive, where)
            Ws = [archive.read(w) for w in w_names]
            bs = [archive.read(b) for b in b_names] or None
    else:
        w = net.widths
        Ws = [rng.normal(0.0, net.scale / math.sqrt(i), size=(o, i))
              for i, o in zip(w[:-1], w[1:])]
        bs = [net.bias * rng.normal(size=o) for o in w[1:]] if net.bias else None
    return itermap.IterativeMap.from_mlp(Ws, bs, activation=net.activation,
                                         output_activation=net.output_activation)


def drive_input(name, m, seed, held=None):
    """The one input of a driven network for the whole report (None for an autonomous map).

    ``held`` is the network's ``input`` setting (None: a draw of scale 1), drawn from the
    stream ``(seed, "input")``: networks of one input size get the same ``u``."""
    size = int(getattr(m, "input_size", 0) or 0)
    check_held_input(f"networks.{name}", held, size)
    if size == 0:
        return None
    held = InputDraw() if held is None else held
    if isinstance(held, InputDraw):
        draw_seed = seed if held.seed is None else held.seed
        return held.scale * rng_for(draw_seed, "input").normal(size=size)
    if isinstance(held, list):
        return np.asarray(held, dtype=float)
    return np.full(size, float(held))


def input_source(held, seed) -> str:
    """How a network's held input was set, in words (for the report's network table)."""
    if held is None or isinstance(held, InputDraw):
        scale = 1.0 if held is None else held.scale
        s = seed if held is None or held.seed is None else held.seed
        return f"drawn, scale {scale:g}, seed {s}"
    if isinstance(held, list):
        return "given"
    return "zero" if float(held) == 0.0 else f"{float(held):g} in every unit"


def describe(m, u=None):
    """The facts of a network for the report's first table and results.json."""
    bm = getattr(m, "block_matrix", None)
    out = {"dim": int(m.dim), "sizes": [int(s) for s in m.sizes],
           "input_block": m.input_block, "type": type(m).__name__,
           "input": None if u is None else [float(v) for v in u]}
    if bm is not None:
        out.update(nnz=int(bm.nnz), density=float(bm.density),
                   block_pattern=bm.block_pattern().astype(int).tolist())
    acts = getattr(m, "activations", None)
    if acts is not None:
        out["activations"] = [a.name for a in acts]
        out["block_labels"] = block_labels(m)
    if u is not None:
        out["input_norm"] = float(np.linalg.norm(u))
    return out


def network_gain(net):
    """The gain a spec sets for a network (random_rnn: gain; mlp and pattern: scale)."""
    if net.kind == "random_rnn":
        return float(net.gain)
    if net.kind == "pattern" or (net.kind == "mlp" and net.widths is not None):
        return float(net.scale)
    return None


def block_labels(m):
    """x, h1, ..., y for a network with its input first; block numbers otherwise."""
    n = len(m.sizes)
    if m.input_block is None:
        return [str(i) for i in range(n)]
    labels = [f"h{i}" for i in range(n)]
    labels[m.input_block] = "x"
    if m.input_block == 0 and n > 2:
        labels = ["x"] + [f"h{i}" for i in range(1, n - 1)] + ["y"]
    return labels
