"""torch's transformer encoders as iterative maps (the transformer side of ``from_torch``).

A live module is described as arrays plus a JSON-able architecture, as the other kinds
are, so that the same builder serves arrays saved without torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core._checks import check_bool, check_int
from .._maps._block_functions import (
    BlockFunction,
    FeedForward,
    LayerNorm,
    SelfAttention,
    transformer_layer,
)
from ._tensors import tensor_to_numpy

__all__ = ["TRANSFORMER_KINDS", "build_transformer", "describe_transformer", "is_transformer"]

TRANSFORMER_KINDS = ("TransformerEncoderLayer", "TransformerEncoder", "MultiheadAttention")


def is_transformer(model: Any, torch: Any) -> bool:
    """A module of a kind read here, or an ``nn.Sequential`` of them."""
    nn = torch.nn
    kinds = (nn.TransformerEncoderLayer, nn.TransformerEncoder, nn.MultiheadAttention)
    if isinstance(model, kinds):
        return True
    return isinstance(model, nn.Sequential) and len(model) > 0 and \
        all(isinstance(m, kinds) for m in model)


def _no_dropout(p: float, where: str, training: bool) -> None:
    if training and p > 0:
        raise ValueError(f"{where} has dropout p={p} and is in training mode: dropout is "
                         f"random, no map; call model.eval() first (or set p=0)")


def _attention(mha: Any, prefix: str, where: str) -> dict:
    if not mha._qkv_same_embed_dim:
        raise ValueError(f"{where}: keys and values of other widths (kdim, vdim) are not "
                         f"self-attention")
    if mha.bias_k is not None or mha.add_zero_attn:
        raise ValueError(f"{where}: add_bias_kv and add_zero_attn are not supported")
    _no_dropout(mha.dropout, where, mha.training)
    return {"kind": "attention", "prefix": prefix, "num_heads": int(mha.num_heads)}


def _activation_name(layer: Any, torch: Any, where: str) -> str:
    act = layer.activation
    F = torch.nn.functional
    if act is F.relu or isinstance(act, torch.nn.ReLU):
        return "relu"
    if act is F.gelu:
        return "gelu"
    if isinstance(act, torch.nn.GELU):
        return "gelu" if act.approximate == "none" else "gelu(approximate='tanh')"
    raise ValueError(f"{where}: activation {act!r} is not read here; ReLU and GELU (exact or "
                     f"tanh) are")


def _norm_params(norm: Any) -> list[str]:
    """The affine parameters a LayerNorm has (none with ``bias=False`` or no affine)."""
    return [name for name in ("weight", "bias") if getattr(norm, name, None) is not None]


def _encoder_layer(layer: Any, prefix: str, where: str, torch: Any) -> dict:
    for name in ("dropout", "dropout1", "dropout2"):
        _no_dropout(getattr(layer, name).p, f"{where}.{name}", layer.training)
    spec = _attention(layer.self_attn, prefix + "self_attn.", f"{where}.self_attn")
    return {"kind": "encoder_layer", "prefix": prefix, "num_heads": spec["num_heads"],
            "norm_first": bool(layer.norm_first),
            "activation": _activation_name(layer, torch, where),
            "eps": [float(layer.norm1.eps), float(layer.norm2.eps)],
            "norm_params": [_norm_params(layer.norm1), _norm_params(layer.norm2)]}


def _describe_one(module: Any, prefix: str, where: str, torch: Any) -> tuple[list, Any]:
    nn = torch.nn
    if isinstance(module, nn.MultiheadAttention):
        return [_attention(module, prefix, where)], None
    if isinstance(module, nn.TransformerEncoderLayer):
        return [_encoder_layer(module, prefix, where, torch)], None
    layers = [_encoder_layer(layer, f"{prefix}layers.{n}.", f"{where}.layers[{n}]", torch)
              for n, layer in enumerate(module.layers)]
    norm = None if module.norm is None else {"prefix": prefix + "norm.",
                                             "eps": float(module.norm.eps),
                                             "params": _norm_params(module.norm)}
    return layers, norm


def describe_transformer(model: Any, torch: Any) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, architecture) of a transformer module, for :func:`build_transformer`."""
    arrays = {k: tensor_to_numpy(v) for k, v in model.state_dict().items()}
    modules = list(model) if isinstance(model, torch.nn.Sequential) else [model]
    layers: list = []
    final_norm = None
    for n, module in enumerate(modules):
        prefix = f"{n}." if isinstance(model, torch.nn.Sequential) else ""
        where = f"model[{n}]" if prefix else "model"
        if final_norm is not None:
            raise ValueError(f"{where}: a TransformerEncoder with a final norm must come last")
        got, final_norm = _describe_one(module, prefix, where, torch)
        layers += got
    return arrays, {"type": "Transformer", "layers": layers, "final_norm": final_norm}


def _get(arrays: dict, key: str, dtype: Any, required: bool = True) -> Any:
    if key not in arrays:
        if required:
            raise ValueError(f"model: missing the weight {key!r}")
        return None
    a = np.asarray(arrays[key])
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"model: weight {key!r} must be real floating, got dtype {a.dtype}")
    return a.astype(dtype, copy=False) if dtype is not None else a


def _mask_array(mask: Any, dtype: Any) -> Any:
    if mask is None:
        return None
    if hasattr(mask, "detach"):
        mask = tensor_to_numpy(mask)
    mask = np.asarray(mask)
    if mask.dtype != bool and not np.issubdtype(mask.dtype, np.floating):
        # as torch: 0/1 integers are neither a bool mask nor the scores' additive mask
        raise TypeError(f"mask must be a bool mask (True: not attended) or a float additive "
                        f"mask, as torch takes, got dtype {mask.dtype}")
    return mask if mask.dtype == bool else mask.astype(np.float64 if dtype is None else dtype)


def _layer_norm(arrays: dict, prefix: str, params: Any, eps: float, seq_len: int,
                width: int, fill: Any, dtype: Any) -> LayerNorm:
    """A LayerNorm; a weight or bias the module lacks (``bias=False``, no affine) is ones or
    zeros of ``width`` (in the other's dtype, else ``fill``)."""
    if not isinstance(params, list) or not set(params) <= {"weight", "bias"}:
        raise ValueError(f"architecture: the parameters of the norm {prefix!r} must be a list "
                         f"of 'weight' and 'bias', got {params!r}")
    w, b = (_get(arrays, prefix + name, dtype) if name in params else None
            for name in ("weight", "bias"))
    dt = next((a.dtype for a in (w, b) if a is not None), fill)
    return LayerNorm(np.ones(width, dt) if w is None else w,
                     np.zeros(width, dt) if b is None else b, seq_len=seq_len, eps=eps)


def _build_layer(arrays: dict, spec: dict, seq_len: int, causal: bool, mask: Any,
                 dtype: Any) -> BlockFunction:
    p = spec["prefix"]
    att_p = p + "self_attn." if spec["kind"] == "encoder_layer" else p
    attention = SelfAttention(_get(arrays, att_p + "in_proj_weight", dtype),
                              _get(arrays, att_p + "in_proj_bias", dtype, False),
                              _get(arrays, att_p + "out_proj.weight", dtype),
                              _get(arrays, att_p + "out_proj.bias", dtype, False),
                              num_heads=spec["num_heads"], seq_len=seq_len, causal=causal,
                              mask=_mask_array(mask, dtype))
    if spec["kind"] == "attention":
        return attention
    ff = FeedForward(_get(arrays, p + "linear1.weight", dtype),
                     _get(arrays, p + "linear1.bias", dtype, False),
                     _get(arrays, p + "linear2.weight", dtype),
                     _get(arrays, p + "linear2.bias", dtype, False), seq_len=seq_len,
                     activation=spec["activation"])
    eps1, eps2 = spec["eps"]
    params = spec.get("norm_params", [["weight", "bias"]] * 2)  # older descriptions: both
    norms = [_layer_norm(arrays, f"{p}{name}.", ps, eps, seq_len, attention.width,
                         attention.dtype, dtype)
             for name, eps, ps in zip(("norm1", "norm2"), (eps1, eps2), params)]
    return transformer_layer(attention, ff, *norms, norm_first=spec["norm_first"])


def build_transformer(arrays: dict, architecture: dict, *, seq_len: Any, is_causal: bool,
                      mask: Any, looped: bool, dtype: Any) -> Any:
    """The map of a described transformer (see ``from_torch``)."""
    from .._maps._transformer import looped_transformer_map, transformer_map

    if seq_len is None:
        raise ValueError("seq_len: a transformer is a map on a fixed number of tokens; "
                         "give seq_len=T")
    seq_len, is_causal = check_int("seq_len", seq_len, 1), check_bool("is_causal", is_causal)
    specs = architecture.get("layers")
    if not isinstance(specs, list) or not specs:
        raise ValueError("architecture: a transformer needs a list of layers")
    layers = []
    for n, spec in enumerate(specs):
        if not isinstance(spec, dict) or spec.get("kind") not in ("encoder_layer", "attention"):
            raise ValueError(f"architecture: layer {n} must be an 'encoder_layer' or an "
                             f"'attention', got {spec!r}")
        layers.append(_build_layer(arrays, spec, int(seq_len), bool(is_causal), mask, dtype))
    norm = architecture.get("final_norm")
    final = None
    if norm is not None:
        final = _layer_norm(arrays, norm["prefix"], norm.get("params", ["weight", "bias"]),
                            norm["eps"], int(seq_len), layers[0].in_size // int(seq_len),
                            layers[0].dtype, dtype)
    if looped:
        if len(layers) != 1 or final is not None:
            raise ValueError("looped: a looped transformer applies one layer again and again; "
                             "give one TransformerEncoderLayer (or MultiheadAttention)")
        return looped_transformer_map(layers[0])
    return transformer_map(layers, final_norm=final)


# -- back to torch -----------------------------------------------------------------------
def _torch_activation(name: str, nn: Any) -> Any:
    if name in ("relu", "gelu"):
        return name
    if name == "gelu(approximate='tanh')":
        return nn.GELU(approximate="tanh")
    raise TypeError(f"map: a feed-forward activation {name!r} has no torch encoder layer; "
                    f"ReLU and GELU (exact or tanh) have")


def _split_layer(g: BlockFunction) -> tuple[str, dict]:
    """The parts of a built-in layer: ("attention", {...}) or ("encoder_layer", {...})."""
    from .._maps._block_functions import Chain, Residual

    if isinstance(g, SelfAttention):
        return "attention", {"attention": g}
    parts: tuple = getattr(g, "parts", ())
    if isinstance(g, Chain) and g.name == "encoder_layer(post-LN)" and len(parts) == 4:
        att, n1, ff, n2 = parts
        if isinstance(att, Residual) and isinstance(ff, Residual):
            return "encoder_layer", {"attention": att.inner, "feed_forward": ff.inner,
                                     "norm1": n1, "norm2": n2, "norm_first": False}
    if isinstance(g, Chain) and g.name == "encoder_layer(pre-LN)" and len(parts) == 2:
        first, second = (getattr(p, "inner", None) for p in parts)
        if isinstance(first, Chain) and isinstance(second, Chain) \
                and len(first.parts) == len(second.parts) == 2:
            n1, att = first.parts
            n2, ff = second.parts
            return "encoder_layer", {"attention": att, "feed_forward": ff, "norm1": n1,
                                     "norm2": n2, "norm_first": True}
    raise TypeError(f"map: a block function {g.name!r} is not a torch transformer layer")


def _tensor(torch, a, dtype, shape=None):
    a = np.zeros(shape) if a is None else np.asarray(a)
    return torch.as_tensor(a, dtype=dtype)


def _load_attention(mha: Any, att: SelfAttention, torch: Any, dtype: Any) -> None:
    d = att.width
    with torch.no_grad():
        mha.in_proj_weight.copy_(_tensor(torch, att.in_proj_weight, dtype))
        mha.out_proj.weight.copy_(_tensor(torch, att.out_proj_weight, dtype))
        if mha.in_proj_bias is not None:  # a module without biases has none to fill
            mha.in_proj_bias.copy_(_tensor(torch, att.in_proj_bias, dtype, (3 * d,)))
            mha.out_proj.bias.copy_(_tensor(torch, att.out_proj_bias, dtype, (d,)))


def _encoder_layer_module(parts: dict, torch: Any, dtype: Any) -> Any:
    nn = torch.nn
    att, ff = parts["attention"], parts["feed_forward"]
    n1, n2 = parts["norm1"], parts["norm2"]
    layer = nn.TransformerEncoderLayer(
        att.width, att.num_heads, ff.weight1.shape[0], dropout=0.0,
        activation=_torch_activation(ff.activation.name, nn), layer_norm_eps=n1.eps,
        batch_first=True, norm_first=parts["norm_first"], dtype=dtype)
    _load_attention(layer.self_attn, att, torch, dtype)
    with torch.no_grad():
        for mod, w, b in ((layer.linear1, ff.weight1, ff.bias1),
                          (layer.linear2, ff.weight2, ff.bias2),
                          (layer.norm1, n1.weight, n1.bias), (layer.norm2, n2.weight, n2.bias)):
            mod.weight.copy_(_tensor(torch, w, dtype))
            mod.bias.copy_(_tensor(torch, b, dtype, (w.shape[0],)))  # a missing bias is 0
        layer.norm1.eps, layer.norm2.eps = n1.eps, n2.eps
    return layer.eval()


def transformer_to_torch(m: Any, torch: Any, dtype: Any) -> Any:
    """torch's module for a transformer map (see ``to_torch``)."""
    from .._maps._block_functions import Chain

    L = len(m.sizes) - 1
    if m.block_matrix.blocks or m.input_block != 0 or m.bias is not None \
            or set(m.functions) != {(l + 1, l) for l in range(L)} \
            or any(a.name != "identity" for a in m.activations):
        raise TypeError("map: to_torch takes a transformer map (itermap.transformer_map or "
                        "from_torch's): layers on the block sub-diagonal and nothing else")
    layers = [m.functions[(l + 1, l)] for l in range(L)]
    final: Any = None
    last = layers[-1]
    if isinstance(last, Chain) and len(last.parts) == 2 and isinstance(last.parts[1], LayerNorm):
        try:
            _split_layer(last)
        except TypeError:  # a layer followed by the encoder's final norm
            layers[-1], final = last.parts
    split = [_split_layer(g) for g in layers]
    tdtype = dtype or getattr(torch, np.dtype(m.dtype).name)
    if len(split) == 1 and split[0][0] == "attention" and final is None:
        att = split[0][1]["attention"]
        has_bias = att.in_proj_bias is not None or att.out_proj_bias is not None
        mha = torch.nn.MultiheadAttention(att.width, att.num_heads, batch_first=True,
                                          bias=has_bias, dtype=tdtype)
        _load_attention(mha, att, torch, tdtype)
        return mha.eval()
    if any(kind != "encoder_layer" for kind, _ in split):
        raise TypeError("map: torch has no module for attention layers stacked on their own; "
                        "to_torch takes encoder layers, or one attention layer")
    modules = [_encoder_layer_module(parts, torch, tdtype) for _, parts in split]
    norm = None
    if final is not None:
        norm = torch.nn.LayerNorm(final.width, eps=final.eps, dtype=tdtype)
        with torch.no_grad():
            norm.weight.copy_(_tensor(torch, final.weight, tdtype))
            norm.bias.copy_(_tensor(torch, final.bias, tdtype))
    encoder = torch.nn.TransformerEncoder(modules[0], L, norm=norm, enable_nested_tensor=False)
    encoder.layers = torch.nn.ModuleList(modules)  # each layer its own weights
    return encoder.eval()
