"""PyTorch models in and out: :func:`from_torch` and :func:`to_torch`.

torch is imported inside the functions that need a live module, never at
import time: ``import itermap`` works, and weights saved as arrays (a
``.safetensors`` or ``.npz`` file, or a dict) are read, where torch is not
installed.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._core._backend import is_sparse, to_numpy
from .._core._checks import plain_array
from .._core._types import MapLike
from .._maps._activations import activation_name, get_activation
from .._maps._blocks import BlockMatrix
from .._maps._gated import RecurrentMap, _ElmanCell, _GRUCell, _LSTMCell
from .._maps._map import Map
from .._maps._network import IterativeMap
from ._tensors import tensor_to_numpy

__all__ = ["from_torch", "to_torch"]

_INSTALL = 'pip install "itermap[torch]"'

# torch.nn activation layers, by lowercased class name: (itermap kind, torch parameters)
_TORCH_ACTIVATIONS = {
    "relu": ("relu", ()), "tanh": ("tanh", ()), "sigmoid": ("sigmoid", ()),
    "identity": ("identity", ()), "silu": ("silu", ()),
    "elu": ("elu", ("alpha",)), "leakyrelu": ("leaky_relu", ("negative_slope",)),
    "softplus": ("softplus", ("beta", "threshold")), "gelu": ("gelu", ("approximate",)),
}
# modules that wrap the module they run, by class name: the attribute that holds it
_WRAPPERS = {"OptimizedModule": "_orig_mod", "DataParallel": "module",
             "DistributedDataParallel": "module"}
_RECURRENT = {"rnn": _ElmanCell, "gru": _GRUCell, "lstm": _LSTMCell}
_RNN_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # torch's, with a _l{layer}
_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$")
_BLOCK_KEY = re.compile(r"^blocks\.\((\d+),\s*(\d+)\)\.(\w+)$")


def _require_torch(what):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{what} needs PyTorch, which is not installed: {_INSTALL} (or pass "
                          f"the weights as arrays, with their architecture)") from None
    return torch


def _parse_spec(spec, where):
    """``"ELU(alpha=0.5)"`` -> ``("elu", {"alpha": 0.5})``."""
    if not isinstance(spec, str):
        raise TypeError(f"architecture {where}: a layer is named by a string such as 'Linear' "
                        f"or 'ELU(alpha=0.5)', got {spec!r}")
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f"architecture {where}: cannot read layer {spec!r}")
    kwargs = {}
    if match.group(2) and match.group(2).strip():
        try:
            call = ast.parse(f"f({match.group(2)})", mode="eval").body
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
            if call.args:
                raise ValueError
        except (SyntaxError, ValueError):
            raise ValueError(f"architecture {where}: {spec!r}: give parameters as "
                             f"name=value") from None
    return match.group(1).lower(), kwargs


def _activation_of(kind, kwargs, where):
    if kind in _TORCH_ACTIVATIONS:
        ours, allowed = _TORCH_ACTIVATIONS[kind]
        extra = set(kwargs) - set(allowed) - {"inplace"}
        if extra:
            raise ValueError(f"{where}: {kind} takes {list(allowed)}, not {sorted(extra)}")
        params = {k: v for k, v in kwargs.items() if k in allowed}
        return get_activation(activation_name(ours, **params)).name if allowed else ours
    try:
        return get_activation(kind).name
    except ValueError:
        return None


def _get(arrays, key, where, shape=None, *, pattern=False):
    """``arrays[key]``: a real floating array (or, for a ``pattern`` such as a mask,
    booleans or integers too); errors name ``where`` and ``key``."""
    if key not in arrays:
        under = sorted(k[:-len(key)] for k in arrays if k.endswith("." + key))
        hint = f"; pass prefix={under[0]!r}" if under else ""  # a wrapper's state_dict
        raise ValueError(f"{where}: the weights have no {key!r} (keys: "
                         f"{sorted(arrays)[:8]}{'...' if len(arrays) > 8 else ''}){hint}")
    a = arrays[key]
    kind = a.dtype.kind
    if kind == "c":  # IterativeMap refuses complex weights; a cast would drop the imaginary part
        raise TypeError(f"{where}: {key} is complex ({a.dtype}): weights must be real")
    if kind in "biu" and not pattern:
        # integer weights are quantized weights (their scale is stored elsewhere) or a
        # mistake: read as numbers they would be silently wrong
        raise TypeError(f"{where}: {key} holds {a.dtype} values: weights and biases must be "
                        f"floating point (dequantize integer weights first)")
    if kind not in "biuf":
        raise TypeError(f"{where}: {key} holds {a.dtype} values: weights must be real numbers")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{where}: {key} has shape {tuple(a.shape)}, expected {tuple(shape)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: {key} contains NaN or inf")
    return a


# -- reading a live module: its arrays and its architecture -------------------------
def _numpy_state(module):
    """The module's tensors by state_dict key, as its forward uses them: a pruned weight
    (``torch.nn.utils.prune`` stores ``w_orig`` and ``w_mask``) as torch applies it, ``mask *
    orig``; a parametrized one (``weight_norm``, ``spectral_norm``) as the module computes it.
    """
    state = {k: v for k, v in module.state_dict().items() if hasattr(v, "detach")}
    for k in [k for k in state if k.endswith("_orig") and k[:-5] + "_mask" in state]:
        orig = state.pop(k)
        state[k[:-5]] = state.pop(k[:-5] + "_mask").to(dtype=orig.dtype) * orig
    for path, sub in module.named_modules():
        for name, chain in getattr(sub, "parametrizations", {}).items():
            at = f"{path}.{name}" if path else name
            if any(p.training and next(p.buffers(), None) is not None for p in chain):
                raise ValueError(f"{at} has a parametrization with state in training mode "
                                 f"({type(chain[0]).__name__}: each forward changes the "
                                 f"weight); call model.eval() first")
            pre = f"{path}.parametrizations.{name}." if path else f"parametrizations.{name}."
            state = {k: v for k, v in state.items() if not k.startswith(pre)}
            state[at] = getattr(sub, name).detach()
    meta = [k for k, v in state.items() if getattr(v, "is_meta", False)]
    if meta:   # built under torch.device("meta") or init_empty_weights: shapes, no values
        raise ValueError(f"the module's weights are on the meta device ({meta[:3]}"
                         f"{' ...' if len(meta) > 3 else ''}): they have shapes but no values; "
                         f"load them first (module.to_empty(device='cpu') and "
                         f"load_state_dict, or build it on the CPU)")
    return {k: tensor_to_numpy(v) for k, v in state.items()}


def _kind_name(module):
    """A module's class name; torch's ``Parametrized<Name>`` (weight_norm, ...) is <Name>."""
    name = type(module).__name__
    return name[12:] if name.startswith("Parametrized") and hasattr(
        module, "parametrizations") else name


def _describe_layer(layer, where, first):
    name = _kind_name(layer)
    kind = name.lower()
    if kind == "linear":
        return "Linear"
    if kind == "flatten":
        if not first or layer.start_dim != 1 or layer.end_dim != -1:
            raise ValueError(f"{where} (Flatten): only a leading Flatten(start_dim=1) is "
                             f"supported")
        return "Flatten"
    if kind in ("dropout", "dropout1d", "alphadropout"):
        if layer.training and layer.p > 0:
            raise ValueError(f"{where} (Dropout) is in training mode, so the model is random; "
                             f"call model.eval() first")
        return "Dropout"
    if kind in _TORCH_ACTIVATIONS:
        _, params = _TORCH_ACTIVATIONS[kind]
        if not params:
            return name
        return f"{name}({', '.join(f'{p}={getattr(layer, p)!r}' for p in params)})"
    hint = ""
    if kind.startswith("batchnorm"):
        hint = "; fold it into the Linear before it (in eval mode it is affine)"
    elif kind.startswith("conv"):
        hint = "; convolutions are not elementwise maps on a flat state"
    elif kind == "sequential":
        hint = f"; unnest it: its layers go into the outer nn.Sequential (*{where} for {where})"
    raise ValueError(f"{where} is a {name}, which from_torch does not support: an MLP is "
                     f"Linear layers, elementwise activations (ReLU, Tanh, Sigmoid, ELU, "
                     f"LeakyReLU, Softplus, GELU, SiLU, Identity), a leading Flatten and "
                     f"Dropout in eval mode{hint}")


def _no_mixed_transformer(layers):
    """Refuse an nn.Sequential that mixes transformer modules with MLP layers, saying how
    to split it (an all-transformer Sequential never gets here)."""
    from ._torch_transformer import TRANSFORMER_KINDS

    kinds = [type(layer).__name__ for layer in layers]
    at = [k for k, name in enumerate(kinds) if name in TRANSFORMER_KINDS]
    if not at:
        return
    other = next(k for k, name in enumerate(kinds) if name not in TRANSFORMER_KINDS)
    split = (f"use from_torch(model[:{other}], seq_len=T) for the transformer and apply "
             f"model[{other}:] to its output as a readout" if other == len(at) else
             "import the transformer modules alone and apply the other layers before or "
             "after them yourself")
    raise ValueError(f"model[{at[0]}] is a {kinds[at[0]]} and model[{other}] a {kinds[other]}: "
                     f"from_torch reads an nn.Sequential of transformer modules "
                     f"(TransformerEncoderLayer, TransformerEncoder, MultiheadAttention) or "
                     f"an MLP (Linear layers and elementwise activations), not the two mixed "
                     f"in one nn.Sequential; {split}")


def _describe_module(model, torch):
    nn = torch.nn
    from ._torch_modules import IteratedModel

    if isinstance(model, IteratedModel):
        return _numpy_state(model), model.architecture
    if isinstance(model, (nn.RNN, nn.GRU, nn.LSTM)):
        name = _kind_name(model)
        if model.bidirectional:
            raise ValueError(f"{name} is bidirectional: it runs the sequence both ways at once "
                             f"and is no map forward in time")
        if getattr(model, "proj_size", 0):
            raise ValueError(f"{name} has proj_size={model.proj_size}: projected LSTMs are "
                             f"not supported")
        if model.training and model.dropout > 0 and model.num_layers > 1:
            raise ValueError(f"{name} has dropout={model.dropout} between layers and is in "
                             f"training mode; call model.eval() first")
        extra = f", nonlinearity={model.nonlinearity!r}" if name == "RNN" else ""
        return _numpy_state(model), f"{name}(batch_first={model.batch_first}{extra})"
    if hasattr(model, "in_features_list") and isinstance(getattr(model, "blocks", None),
                                                         nn.ModuleDict):
        identity = []
        for key, blk in model.blocks.items():
            kind = type(blk).__name__
            if kind == "Identity":
                i, j = (int(t) for t in key.strip("()").split(","))
                identity.append([i, j])
            elif kind not in ("Linear", "MaskedLinear"):
                raise ValueError(f"Sequential2D block {key} is a {kind}: from_torch reads "
                                 f"Linear, MaskedLinear and Identity blocks")
        return _numpy_state(model), {"type": "Sequential2D",
                                     "sizes": list(model.in_features_list),
                                     "out_sizes": list(model.out_features_list),
                                     "identity": identity}
    if isinstance(model, nn.Linear):
        return {f"0.{k}": v for k, v in _numpy_state(model).items()}, ["Linear"]
    if isinstance(model, nn.Sequential):
        layers = list(model)
        _no_mixed_transformer(layers)
        return _numpy_state(model), [_describe_layer(layer, f"model[{k}]", k == 0)
                                     for k, layer in enumerate(layers)]
    name, hint = type(model).__name__, ""
    if isinstance(model, torch.jit.ScriptModule):
        hint = ("; a TorchScript module is read through its weights: from_torch("
                "model.state_dict(), architecture), or pass the Python module")
    elif isinstance(model, nn.RNNCellBase):
        hint = (f"; a cell is one step of a one-layer {name[:-4]}: copy its weights into "
                f"nn.{name[:-4]}(input_size, hidden_size) (weight_ih as weight_ih_l0, and so "
                f"on) and pass that")
    raise TypeError(f"from_torch reads nn.Sequential MLPs, nn.Linear, nn.RNN, nn.GRU, "
                    f"nn.LSTM, nn.TransformerEncoderLayer, nn.TransformerEncoder, "
                    f"nn.MultiheadAttention, the paper's Sequential2D and itermap's "
                    f"IteratedModel; got a {name}{hint}")


# -- building maps from arrays ------------------------------------------------------
def _cast(a, dtype):
    a = np.asarray(a)
    if dtype is not None:
        return a.astype(dtype, copy=False)
    if a.dtype.kind != "f":
        return a.astype(np.float64)
    if a.dtype.itemsize < 4:  # float16 / bfloat16 weights run in float32
        return a.astype(np.float32)
    return a


def _no_other_keys(arrays, used, what):
    other = sorted(set(arrays) - set(used))
    if other:
        raise ValueError(f"{what}: unexpected weights {other[:5]}{'...' if len(other) > 5 else ''}"
                         f"; for part of a larger model pass prefix= (e.g. prefix='rnn.')")


def _build_mlp(arrays, layers, dtype):
    weights, biases, acts = [], [], []
    last = None  # index of the last Linear
    for k, spec in enumerate(layers):
        where = f"model[{k}]"
        kind, kwargs = _parse_spec(spec, where)
        if kind == "linear":
            W = _cast(_get(arrays, f"{k}.weight", f"{where} (Linear)"), dtype)
            if W.ndim != 2:
                raise ValueError(f"{where} (Linear): weight must be 2-D, got {W.shape}")
            if weights and W.shape[1] != weights[-1].shape[0]:
                raise ValueError(f"{where} (Linear) takes {W.shape[1]} inputs, but the layer "
                                 f"before it gives {weights[-1].shape[0]}")
            b = None if f"{k}.bias" not in arrays else _cast(
                _get(arrays, f"{k}.bias", f"{where} (Linear)", (W.shape[0],)), dtype)
            if acts and acts[-1] is None:
                acts[-1] = "identity"
            weights.append(W)
            biases.append(b)
            acts.append(None)
            last = k
            continue
        if kind == "flatten":
            if k != 0:
                raise ValueError(f"{where} (Flatten): only a leading Flatten is supported")
            continue
        if kind.startswith("dropout"):
            continue
        act = _activation_of(kind, kwargs, where)
        if act is None:
            raise ValueError(f"{where} is a {spec!r}, which from_torch does not support")
        if last is None:
            raise ValueError(f"{where} ({spec}) comes before the first Linear layer")
        if acts[-1] is not None:
            raise ValueError(f"{where} ({spec}) follows another activation; from_torch reads "
                             f"one activation after each Linear")
        acts[-1] = act
    if not weights:
        raise ValueError("the model has no Linear layer")
    used = {f"{k}.{f}" for k, spec in enumerate(layers) for f in ("weight", "bias")}
    _no_other_keys(arrays, used, "MLP")
    acts = [a or "identity" for a in acts]
    dt = np.result_type(*weights)
    weights = [w.astype(dt, copy=False) for w in weights]
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    bm = BlockMatrix(sizes, {(l + 1, l): w for l, w in enumerate(weights)})
    bias = None
    if any(b is not None for b in biases):
        bias = np.concatenate([np.zeros(sizes[0], dtype=dt)] +
                              [np.zeros(n, dt) if b is None else b.astype(dt, copy=False)
                               for b, n in zip(biases, sizes[1:])])
    return IterativeMap(bm, bias, ["identity"] + acts, input_block=0)


def _build_recurrent(arrays, kind, kwargs, dtype, form):
    name = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[kind]
    if any(k.endswith("_reverse") for k in arrays):
        raise ValueError(f"{name}: the weights are bidirectional (keys *_reverse); "
                         f"bidirectional RNNs are not supported")
    if any(k.startswith("weight_hr_l") for k in arrays):
        raise ValueError(f"{name}: the weights have weight_hr_l* (proj_size > 0); projected "
                         f"LSTMs are not supported")
    allowed = {"batch_first", "nonlinearity"} if kind == "rnn" else {"batch_first"}
    extra = set(kwargs) - allowed
    if extra:
        raise ValueError(f"{name}: unknown options {sorted(extra)}; known {sorted(allowed)}")
    cells = []
    L = 0
    while f"weight_ih_l{L}" in arrays:
        L += 1
    if L == 0:
        raise ValueError(f"{name}: the weights have no weight_ih_l0 (keys {sorted(arrays)[:4]}"
                         f"); for part of a larger model pass prefix= (e.g. prefix='rnn.')")
    extra_kw = {"nonlinearity": kwargs.get("nonlinearity", "tanh")} if kind == "rnn" else {}
    for l in range(L):
        where = f"{name} layer {l}"
        got = {k: _cast(_get(arrays, f"{k}_l{l}", where), dtype) for k in _RNN_KEYS
               if k.startswith("weight") or f"{k}_l{l}" in arrays}
        cells.append(_RECURRENT[kind](**got, name=where, **extra_kw))
    _no_other_keys(arrays, {f"{k}_l{l}" for l in range(L) for k in _RNN_KEYS}, name)
    m = RecurrentMap(cells, batch_first=bool(kwargs.get("batch_first", False)))
    if form == "iterative":
        return _as_iterative(m)
    return m


def _as_iterative(m):
    """A one-layer Elman RNN as the paper's ``f(W x + b)`` on the state ``[x; h]``."""
    if m.kind != "rnn" or m.num_layers != 1:
        raise ValueError("form='iterative' needs a one-layer nn.RNN: a GRU or an LSTM is not "
                         "of the form f(W x + b), and a deeper RNN is one sweep of its layers "
                         "per time step")
    c = m.layers[0]
    biases = [x for x in (c.bias_ih, c.bias_hh) if x is not None]
    return IterativeMap.from_rnn(c.weight_hh, c.weight_ih, sum(biases) if biases else None,
                                 activation=c.nonlinearity)


def _build_blocks(arrays, arch, dtype, activation, input_block):
    kind = arch.get("type")
    sizes = [int(s) for s in arch.get("sizes", [])]
    if not sizes:
        raise ValueError(f"architecture {kind}: needs 'sizes' (the block sizes)")
    if kind == "Sequential2D" and list(arch.get("out_sizes", sizes)) != sizes:
        raise ValueError(f"Sequential2D: in_features_list {sizes} and out_features_list "
                         f"{list(arch['out_sizes'])} differ; an iterated map needs them equal")
    n = len(sizes)
    found = {}
    for key in arrays:
        match = _BLOCK_KEY.match(key)
        if match:
            i, j, field = int(match.group(1)), int(match.group(2)), match.group(3)
            if not (0 <= i < n and 0 <= j < n):
                raise ValueError(f"{kind} block ({i}, {j}) is outside the {n} x {n} grid")
            found.setdefault((i, j), {})[field] = key
        elif key not in ("bias", "_extra_state"):
            raise ValueError(f"{kind}: unexpected weight {key!r}")
    sparse = {tuple(k) for k in arch.get("sparse", [])}
    blocks, masks = {}, {}
    bias = np.zeros(sum(sizes))
    off = np.concatenate([[0], np.cumsum(sizes)])
    dtypes = []
    for (i, j), fields in sorted(found.items()):
        where = f"{kind} block ({i}, {j})"
        shape = (sizes[j], sizes[i])  # input block i -> output block j: torch's (out, in)
        if "weight_0" in fields:
            w0 = _get(arrays, fields["weight_0"], where, shape)
            mask = (_get(arrays, fields["mask"], where, shape, pattern=True) if "mask" in fields
                    else np.zeros(shape))
            U = _get(arrays, fields["U"], where, shape) if "U" in fields else 0
            W = w0 + U * mask
            masks[(j, i)] = np.asarray(mask) != 0
        elif "weight" in fields:
            W = _get(arrays, fields["weight"], where, shape)
            masks[(j, i)] = np.ones(shape, dtype=bool)
        else:
            raise ValueError(f"{where}: has neither weight nor weight_0")
        W = _cast(W, dtype)
        dtypes.append(W.dtype)
        blocks[(j, i)] = sp.csr_matrix(W) if (j, i) in sparse else W
        if "bias" in fields:
            bias[off[j]:off[j + 1]] += _get(arrays, fields["bias"], where, (sizes[j],))
    for i, j in arch.get("identity", []):
        if sizes[i] != sizes[j]:
            raise ValueError(f"{kind} block ({i}, {j}): an Identity block needs equal sizes")
        blocks[(j, i)] = sp.identity(sizes[i], format="csr")
    dt = np.dtype(dtype) if dtype is not None else (np.result_type(*dtypes) if dtypes
                                                    else np.float64)
    blocks = {k: b.astype(dt) for k, b in blocks.items()}
    if "bias" in arrays:
        bias = bias + _get(arrays, "bias", kind, (sum(sizes),))
    acts = arch.get("activations", activation)
    if acts is None:
        raise ValueError(f"{kind}: name the activation (activation='relu', or one per block); "
                         f"it cannot be read from the weights")
    ib = arch.get("input_block", input_block)
    bm = BlockMatrix(sizes, blocks, trainable=masks)
    return IterativeMap(bm, bias.astype(dt), acts if isinstance(acts, str) else list(acts),
                        input_block=ib)


def _read_safetensors(path):
    """The arrays of a ``.safetensors`` file, its library's errors naming the file.

    bfloat16 tensors, which NumPy has no type for (``safetensors.numpy`` refuses them),
    come in as float32, exactly, as from a live module (:func:`tensor_to_numpy`)."""
    try:
        from safetensors import deserialize, safe_open
        from safetensors.numpy import load_file
    except ImportError:
        raise ImportError(f"reading {path} needs safetensors: {_INSTALL}") from None

    def read(path):
        try:
            return load_file(path)
        except TypeError:  # "data type 'bfloat16' not understood"
            with safe_open(path, framework="np") as f:
                keys = list(f.keys())
                bf16 = {k for k in keys if f.get_slice(k).get_dtype() == "BF16"}
                arrays = {k: f.get_tensor(k) for k in keys if k not in bf16}
            if not bf16:
                raise
        with open(path, "rb") as fh:
            raw = {k: v for k, v in deserialize(fh.read()) if k in bf16}
        for k in bf16:  # a bfloat16 is the high 16 bits of a float32
            bits = np.frombuffer(raw[k]["data"], dtype="<u2").astype(np.uint32) << 16
            arrays[k] = bits.view(np.float32).reshape(raw[k]["shape"])
        return {k: arrays[k] for k in keys}

    return _foreign_errors(read, path)


class _ArchiveArrays(Mapping):
    """The arrays of an ``.npz`` weights file under ``prefix``, each read when first used.

    Keys that are only listed (to refuse unexpected ones) are never decompressed.
    """

    def __init__(self, archive, prefix):
        self._archive = archive
        self._names = {m[len(prefix):]: m for m in archive.members() if m.startswith(prefix)}
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, key):
        if key not in self._arrays:
            self._arrays[key] = self._archive.read(self._names[key])
        return self._arrays[key]

    def __contains__(self, key):
        return key in self._names

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


def _foreign_errors(read, path):
    """``read(path)``, its library's own errors turned into a ValueError naming the file.

    safetensors raises ``SafetensorError`` and, from its Rust core, pyo3's
    ``PanicException``, a BaseException that ``except Exception`` misses.
    """
    try:
        return read(path)
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException as exc:
        name = type(exc).__name__
        if isinstance(exc, (ValueError, EOFError, UnicodeError)) or name in (
                "SafetensorError", "PanicException") or not isinstance(exc, Exception):
            raise ValueError(f"model: {path} is not a readable weights file ({name}: "
                             f"{exc})") from exc
        raise


def from_torch(model: Any, architecture: str | None = None, *, prefix: str = "",
               dtype: Any = None, activation: str | None = None, input_block: int | None = None,
               form: str = "map", seq_len: int | None = None, is_causal: bool = False,
               mask: Any = None, looped: bool = False) -> Map:
    """A PyTorch model as an itermap map that reproduces it exactly.

    Parameters
    ----------
    model : torch.nn.Module, mapping of arrays, or path
        A live module; or its ``state_dict`` as arrays (which need no torch), under
        torch's keys (``0.weight``, ``weight_ih_l0``, ``blocks.(0, 1).U``); or a
        ``.safetensors`` / ``.npz`` file of them. A ``torch.compile`` or ``DataParallel``
        wrapper is read as the module it runs; a pruned or parametrized (``weight_norm``)
        weight as its forward computes it.
    architecture : list, str or dict
        What the arrays stand for (a live module describes itself):

        - a list of layers in ``nn.Sequential`` order, named as torch names
          them, e.g. ``["Flatten", "Linear", "ELU(alpha=0.5)", "Linear"]``: an
          MLP (``Dropout`` in eval mode is skipped).
        - ``"RNN"``, ``"RNN(nonlinearity='relu')"``, ``"GRU"`` or ``"LSTM"``,
          with ``batch_first=True`` if so; the layers are counted from the keys.
        - ``{"type": "Sequential2D", "sizes": [...], "identity": [[i, j], ...]}``
          for the paper's Sequential2D (``activation`` and ``input_block``
          given as options, or as ``"activations"`` / ``"input_block"``
          here); ``IteratedModel.architecture`` for :func:`to_torch`'s module.
    prefix : str
        Read only the keys that start with it, without it: ``"rnn."`` takes
        the recurrent part out of a state dict that also holds a readout.
    dtype : numpy dtype, optional
        Cast the weights; by default they keep theirs (float32 stays float32).
    activation : str or sequence, optional
        Sequential2D: the activation of every block, or one per block.
    input_block : int, optional
        Sequential2D: the block the input overwrites.
    form : {"map", "iterative"}
        For a one-layer ``nn.RNN``, ``"iterative"`` gives the paper's
        ``f(W x + b)`` map on ``[x; h]`` (:meth:`IterativeMap.from_rnn`).
    seq_len : int, optional
        Transformers (``nn.TransformerEncoderLayer``, ``nn.TransformerEncoder`` with or
        without its final norm, ``nn.MultiheadAttention`` as self-attention, an
        ``nn.Sequential`` of these): the number of tokens ``T``, required. The map is
        :func:`itermap.transformer_map`'s; ``m.forward(X)`` takes ``X`` of shape
        ``(B, T, d)``. Dropout is refused unless inactive (eval mode, or p = 0).
    is_causal, mask :
        The attention mask, as torch's forward takes them: ``is_causal=True`` for a
        causal mask, or ``mask`` of shape ``(T, T)`` (bool, True where attention is not
        allowed, or float, added to the scores).
    looped : bool
        One layer applied again and again with the input injected:
        :class:`itermap.LoopedTransformerMap`, ``h_{k+1} = layer(h_k + e)``.

    Returns
    -------
    Map
        - MLP: an :class:`IterativeMap` (``from_mlp`` layout); ``m.forward(x)``
          is ``model(x)``.
        - RNN, GRU, LSTM: a :class:`RecurrentMap`; ``m.run(x, h0)`` gives
          torch's ``(output, h_n)``.
        - Sequential2D, IteratedModel: an :class:`IterativeMap` whose
          ``W[j, i]`` is the block mapping input block ``i`` to output ``j``
          (the transpose of ``blocks[i][j]``'s position), with a MaskedLinear
          weight ``weight_0 + U * mask`` and :attr:`BlockMatrix.trainable`
          from its mask. Biases of blocks into the same output block add up.

    Raises
    ------
    ImportError
        A live module, but no torch (``pip install "itermap[torch]"``).
    ValueError
        Naming the layer: unsupported layers (Conv2d, BatchNorm, Dropout in
        training mode), bidirectional or projected RNNs, mismatched shapes,
        NaN weights, missing keys.
    TypeError
        A model of a kind not read here.

    Examples
    --------
    Weights as arrays, no torch needed:

    >>> import itermap
    >>> rng = np.random.default_rng(0)
    >>> arrays = {"0.weight": rng.normal(size=(4, 3)), "0.bias": np.zeros(4),
    ...           "2.weight": rng.normal(size=(2, 4)), "2.bias": np.zeros(2)}
    >>> m = itermap.from_torch(arrays, ["Linear", "Tanh", "Linear"])
    >>> x = rng.normal(size=3)
    >>> y = m.readout(itermap.iterate(m, m.zeros(), m.settle_steps, inputs=x,
    ...                               keep="last").final)
    >>> bool(np.allclose(y, arrays["2.weight"] @ np.tanh(arrays["0.weight"] @ x)))
    True
    """
    if not isinstance(form, str) or form not in ("map", "iterative"):
        raise ValueError(f"form must be 'map' or 'iterative', got {form!r}")
    transformer = {"seq_len": seq_len, "is_causal": is_causal, "mask": mask, "looped": looped}
    if isinstance(model, (str, os.PathLike)):
        from ._io import NpzReader, check_regular_file

        path = os.fsdecode(os.fspath(model))
        if not path.endswith((".npz", ".safetensors")):
            raise ValueError(f"model: a path must name a .safetensors or .npz file, got "
                             f"{path!r}")
        path = check_regular_file(path, "model")
        if path.endswith(".npz"):  # members are read as the architecture asks for them
            with NpzReader(path, "model") as archive:
                lazy = _ArchiveArrays(archive, prefix)
                if not lazy:
                    raise ValueError(f"prefix: no key starts with {prefix!r} in {path}")
                _need_architecture(architecture)
                try:
                    return _build(lazy, architecture, dtype, activation, input_block, form,
                                  transformer)
                except ValueError as exc:  # a missing key, a bad shape: in which file
                    if path in str(exc):
                        raise
                    raise ValueError(f"{path}: {exc}") from None
        model = _read_safetensors(path)
    if isinstance(model, Mapping):
        _need_architecture(architecture)
        arrays = {str(k)[len(prefix):]: (tensor_to_numpy(v) if hasattr(v, "detach")
                                         else np.asarray(to_numpy(plain_array(str(k), v))))
                  for k, v in model.items() if str(k).startswith(prefix)}
        if not arrays:
            raise ValueError(f"prefix: no key starts with {prefix!r}")
    else:
        if type(model).__module__.split(".")[0] != "torch" and not hasattr(model, "state_dict"):
            raise TypeError(f"model must be a torch module, a mapping of arrays or a path, got "
                            f"{type(model).__name__}")
        torch = _require_torch("from_torch with a live module")
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, a mapping of arrays or a path, "
                            f"got {type(model).__name__}")
        while isinstance(getattr(model, _WRAPPERS.get(type(model).__name__, ""), None),
                         torch.nn.Module):  # torch.compile, (Distributed)DataParallel
            model = getattr(model, _WRAPPERS[type(model).__name__])
        from ._torch_transformer import describe_transformer, is_transformer

        if is_transformer(model, torch):
            arrays, described_transformer = describe_transformer(model, torch)
            architecture = described_transformer  # type: ignore[assignment]  # a dict
        else:
            arrays, described = _describe_module(model, torch)
            architecture = described if architecture is None else architecture
    return _build(arrays, architecture, dtype, activation, input_block, form, transformer)


def _need_architecture(architecture):
    if architecture is None:
        raise ValueError("architecture: weights given as arrays need their architecture "
                         "(a list of layers, 'GRU', ... ; see from_torch's docstring)")


def _build(arrays, architecture, dtype, activation, input_block, form, transformer):
    if isinstance(architecture, (list, tuple)):
        return _build_mlp(arrays, list(architecture), dtype)
    if isinstance(architecture, str):
        kind, kwargs = _parse_spec(architecture, "")
        if kind not in _RECURRENT:
            raise ValueError(f"architecture {architecture!r}: a string names 'RNN', 'GRU' or "
                             f"'LSTM'; an MLP is a list of layers")
        return _build_recurrent(arrays, kind, kwargs, dtype, form)
    if isinstance(architecture, Mapping) and architecture.get("type") == "Transformer":
        from ._torch_transformer import build_transformer

        return build_transformer(arrays, dict(architecture), dtype=dtype, **transformer)
    if isinstance(architecture, Mapping):
        if architecture.get("type") not in ("Sequential2D", "IteratedModel"):
            raise ValueError(f"architecture: a dict describes a 'Sequential2D' or an "
                             f"'IteratedModel', got type {architecture.get('type')!r}")
        return _build_blocks(arrays, architecture, dtype, activation, input_block)
    raise TypeError(f"architecture must be a list, a string or a dict, got "
                    f"{type(architecture).__name__}")


def to_torch(map: MapLike, *, dtype: Any = None) -> Any:
    """An ``nn.Module`` that runs ``map``, for training in torch.

    Parameters
    ----------
    map : IterativeMap or RecurrentMap
        A transformer map becomes ``nn.TransformerEncoder`` (``batch_first=True``, its
        final norm kept), or ``nn.MultiheadAttention`` for one attention layer (pass
        the map's ``mask`` or ``is_causal`` to its ``forward``). Another
        :class:`IterativeMap` becomes an ``IteratedModel``: the paper's step loop
        ``x <- f(W x + b)`` with masked blocks (a sparse block keeps its pattern:
        the mask is :attr:`BlockMatrix.trainable`), per-block activations and input
        insertion. A :class:`RecurrentMap` of one kind of layer with one hidden size
        becomes ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM``.
    dtype : torch dtype, optional
        Default: the map's (float64 stays float64).

    Returns
    -------
    torch.nn.Module
        ``from_torch(to_torch(m))`` equals ``m``: weights, biases,
        activations, input block, sparse blocks and trainable masks.

    Raises
    ------
    ImportError
        Without torch: ``pip install "itermap[torch]"``.
    TypeError, ValueError
        A map that is neither, or a RecurrentMap torch cannot hold (mixed
        layer kinds or hidden sizes).

    Examples
    --------
    >>> import itermap
    >>> m = itermap.random_rnn(50, gain=1.2, density=0.05, rng=0)   # sparse
    >>> module = itermap.to_torch(m)             # doctest: +SKIP
    >>> x = module(torch.zeros(8, 50, dtype=torch.float64), steps=10)  # doctest: +SKIP
    >>> back = itermap.from_torch(module)        # doctest: +SKIP
    >>> (back.block_matrix.to_dense() == m.block_matrix.to_dense()).all()  # doctest: +SKIP
    True
    """
    torch = _require_torch("to_torch")
    if isinstance(map, RecurrentMap):
        return _recurrent_to_torch(map, torch, dtype)
    if not isinstance(map, IterativeMap):
        raise TypeError(f"to_torch takes an IterativeMap or a RecurrentMap, got "
                        f"{type(map).__name__}")
    if map.leaky:
        raise ValueError(f"map: to_torch has no leaky module; this map has leak {list(map.leak)}")
    if map.backend != "numpy":
        map = map.to("numpy")
    if map.functions:
        from ._torch_transformer import transformer_to_torch

        return transformer_to_torch(map, torch, dtype)
    from ._torch_modules import IteratedModel, MaskedLinear

    bm = map.block_matrix
    tdtype = dtype or getattr(torch, np.dtype(bm.dtype).name)
    masks = bm.trainable
    blocks, sparse = {}, []
    for key in sorted(set(bm.blocks) | set(masks)):
        j, i = key  # W[j, i] maps block i to block j: Sequential2D's blocks[i][j]
        b, mask = bm.blocks.get(key), masks.get(key)
        if b is not None and is_sparse(b):
            sparse.append([j, i])
        dense = [np.zeros((bm.sizes[j], bm.sizes[i])) if a is None else
                 a.toarray() if is_sparse(a) else np.asarray(a) for a in (b, mask)]
        blocks[(i, j)] = MaskedLinear(*(torch.as_tensor(a, dtype=tdtype) for a in dense))
    bias = np.zeros(bm.dim) if map.bias is None else np.asarray(map.bias)
    return IteratedModel(bm.sizes, blocks, torch.as_tensor(bias, dtype=tdtype),
                         [a.name for a in map.activations], map.input_block, sparse)


def _recurrent_to_torch(m, torch, dtype):
    kind = m.kind
    if kind == "mixed":
        raise ValueError("map: torch holds layers of one kind; this map mixes "
                         f"{[c.kind for c in m.layers]}")
    H = m.layers[0].hidden
    if any(c.hidden != H for c in m.layers):
        raise ValueError(f"map: torch's layers share one hidden size; got "
                         f"{[c.hidden for c in m.layers]}")
    has_bias = any(c.bias_ih is not None or c.bias_hh is not None for c in m.layers)
    tdtype = dtype or getattr(torch, np.dtype(m.dtype).name)
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind]
    kw = {"nonlinearity": m.layers[0].nonlinearity} if kind == "rnn" else {}
    if kind == "rnn" and any(c.nonlinearity != kw["nonlinearity"] for c in m.layers):
        raise ValueError("map: torch's RNN has one nonlinearity for every layer")
    module = cls(m.input_size, H, num_layers=m.num_layers, bias=has_bias,
                 batch_first=m.batch_first, dtype=tdtype, **kw)
    with torch.no_grad():
        for l, c in enumerate(m.layers):
            for name in _RNN_KEYS if has_bias else _RNN_KEYS[:2]:
                arr = getattr(c, name)
                value = np.zeros(c.n_gates * H) if arr is None else np.asarray(arr)
                getattr(module, f"{name}_l{l}").copy_(torch.as_tensor(value, dtype=tdtype))
    return module

