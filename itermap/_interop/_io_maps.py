"""How the maps and the block matrix are saved: encoders and decoders in the codec's registry.

Each class registers an encoder and a decoder (which treats a file's fields as
untrusted) with :func:`itermap._interop._codec.register_codec`. The type names
("IterativeMap", "HenonMap", ...) are the file format: they never change.
"""

from __future__ import annotations

from .._maps import _gated
from .._maps._activations import get_activation
from .._maps._attention_rnn import AttentionRNN
from .._maps._block_functions import rebuild
from .._maps._blocks import BlockMatrix
from .._maps._gated import RecurrentMap, _ElmanCell, _GRUCell, _LSTMCell
from .._maps._network import IterativeMap
from .._maps._reservoir import ReservoirMap
from .._maps._state_space import LinearStateSpace
from .._maps._systems import HenonMap, LinearMap, LogisticMap, StandardMap
from .._maps._transformer import LoopedTransformerMap
from ._codec import _get_array, _is_count, _json_list, decode_object, encode_object, register_codec

__all__: list[str] = []

# the one-layer recurrent map classes and the kind of their layer
_ONE_LAYER_MAPS = {"ElmanRNNMap": "rnn", "GRUMap": "gru", "LSTMMap": "lstm"}
_CELLS = {"rnn": _ElmanCell, "gru": _GRUCell, "lstm": _LSTMCell}


def _activation_named(name):
    """The activation a file would read back for ``name`` (None if none)."""
    try:
        return get_activation(name)
    except (TypeError, ValueError):
        return None


def _keyed_refs(items, writer, prefix, what):
    return [[i, j, writer.ref(f"{prefix}_{i}_{j}", a, f"{what} ({i}, {j})")]
            for (i, j), a in items]


def _keyed_arrays(entries, arrays, what, listed):
    out = {}
    for entry in _json_list(entries, listed):
        i, j, ref = _json_list(entry, f"a {what} entry")
        if not (_is_count(i) and _is_count(j)):
            raise ValueError(f"{what} keys must be non-negative ints, got ({i!r}, {j!r})")
        out[(i, j)] = _get_array(arrays, ref)
    return out


def _encode_blocks(obj, writer):
    fields = {"sizes": list(obj.sizes),
              "blocks": _keyed_refs(obj.blocks.items(), writer, "block", "block")}
    if obj._trainable is not None:  # an explicit mask; the default follows the blocks
        fields["trainable"] = _keyed_refs(obj._trainable.items(), writer, "trainable",
                                          "trainable mask")
    return fields


def _decode_blocks(fields, arrays):
    blocks = _keyed_arrays(fields["blocks"], arrays, "block", "blocks")
    trainable = (_keyed_arrays(fields["trainable"], arrays, "trainable", "trainable")
                 if "trainable" in fields else None)
    return BlockMatrix(fields["sizes"], blocks, trainable=trainable)


def _encode_network(obj, writer):
    for a in obj.activations:
        if _activation_named(a.name) != a:
            raise TypeError(f"cannot save activation {a.name!r}: it is not in "
                            "itermap.ACTIVATIONS, and a file stores activations by name")
    _, bm = encode_object(obj.block_matrix, writer)
    fields = {"weights": bm, "activation": [a.name for a in obj.activations],
              "input_block": obj.input_block,
              "bias": None if obj.bias is None else writer.ref("bias", obj.bias, "bias")}
    if obj.functions:
        fields["functions"] = [_encode_function(i, j, g, writer)
                               for (i, j), g in obj.functions.items()]
    if obj.leaky:  # written only when set, so maps without leak keep their files
        fields["leak"] = list(obj.leak)
    if getattr(obj, "readout_weights", None) is not None:  # a ReservoirMap's readout
        fields["readout"] = [writer.ref("readout_weights", obj.readout_weights,
                                        "readout weights"),
                             writer.ref("readout_bias", obj.readout_bias, "readout bias")]
    return fields


def _decode_network(fields, arrays):
    bm = decode_object("BlockMatrix", fields["weights"], arrays)
    bias = None if fields["bias"] is None else _get_array(arrays, fields["bias"])
    acts = _json_list(fields["activation"], "activation")
    if not all(isinstance(a, str) for a in acts):
        raise ValueError(f"activations must be names, got {acts!r}")
    functions = (_decode_functions(fields["functions"], arrays)
                 if fields.get("functions") is not None else None)
    leak = fields.get("leak")
    if leak is not None and not (isinstance(leak, list) and all(
            isinstance(r, int | float) and not isinstance(r, bool) for r in leak)):
        raise ValueError(f"leak must be a list of numbers, got {leak!r}")
    m = IterativeMap(bm, bias, acts, input_block=fields["input_block"],
                     functions=functions, leak=leak)
    if fields.get("readout") is not None:
        return _reservoir_map(m, _json_list(fields["readout"], "readout"), arrays)
    return m


def _encode_function(i, j, g, writer):
    """``[i, j, config, {name: array ref}]`` for a built-in block function."""
    try:
        config = g.config()
    except TypeError as e:
        raise TypeError(f"cannot save function block ({i}, {j}): {e}") from None
    refs = {k: writer.ref(f"function_{i}_{j}.{k}", a, f"function block ({i}, {j}) {k}")
            for k, a in g.arrays().items()}
    return [i, j, config, refs]


def _decode_functions(entries, arrays):
    out = {}
    for entry in _json_list(entries, "functions"):
        i, j, config, refs = _json_list(entry, "a function block entry")
        if not (_is_count(i) and _is_count(j)) or not isinstance(refs, dict):
            raise ValueError(f"a function block entry must be [i, j, config, arrays], got "
                             f"{entry!r}")
        got = {k: _get_array(arrays, ref) for k, ref in refs.items()}
        try:
            out[(i, j)] = rebuild(config, got)
        except TypeError as e:  # a file's wrong types are a bad file, not a bad call
            raise ValueError(f"function block ({i}, {j}): {e}") from None
    return out


def _reservoir_map(m, refs, arrays):
    """The ReservoirMap of a decoded map ``[input, reservoir]`` and its readout's arrays."""
    if len(refs) != 2 or len(m.sizes) != 2 or m.input_block != 0 or \
            set(m.block_matrix.blocks) - {(1, 0), (1, 1)}:
        raise ValueError("readout: a file's readout belongs to a map [input, reservoir]")
    W, W_in = m.block_matrix.blocks.get((1, 1)), m.block_matrix.blocks.get((1, 0))
    if W is None or W_in is None:
        raise ValueError("readout: a reservoir map needs both its input and recurrent blocks")
    bias = None if m.bias is None else m.bias[m.block_slice(1)]
    return ReservoirMap(W, W_in, bias, m.activations[1].name, leak=m.leak[1],
                        readout_weights=_get_array(arrays, refs[0]),
                        readout_bias=_get_array(arrays, refs[1]))


def _encode_recurrent(obj, writer):
    layers = [{"kind": c.kind, "arrays": {k: writer.ref(f"layer{l}_{k}", v, f"layer {l} {k}")
                                          for k, v in c.arrays().items()},
               "nonlinearity": getattr(c, "nonlinearity", None)} for l, c in enumerate(obj.layers)]
    fields = {"layers": layers, "batch_first": obj.batch_first}
    if type(obj).__name__ in _ONE_LAYER_MAPS:  # so that load gives back an LSTMMap, say
        fields["class"] = type(obj).__name__
    return fields


def _decode_recurrent(fields, arrays):
    layers = []
    for spec in _json_list(fields["layers"], "layers"):
        if not isinstance(spec, dict) or spec.get("kind") not in _CELLS \
                or not isinstance(spec.get("arrays"), dict):
            raise ValueError(f"a recurrent layer must name its kind (rnn, gru, lstm) and "
                             f"arrays, got {spec!r}")
        got = {k: _get_array(arrays, ref) for k, ref in spec["arrays"].items()}
        kw = {"nonlinearity": spec.get("nonlinearity")} if spec["kind"] == "rnn" else {}
        layers.append(_CELLS[spec["kind"]](**got, **kw))
    name = fields.get("class", "RecurrentMap")
    if name != "RecurrentMap" and (name not in _ONE_LAYER_MAPS or len(layers) != 1
                                   or layers[0].kind != _ONE_LAYER_MAPS[name]):
        raise ValueError(f"a recurrent map of class {name!r} must be one layer of its kind")
    rec_cls = getattr(_gated, name) if name != "RecurrentMap" else RecurrentMap
    rec = rec_cls.__new__(rec_cls)  # the layers are built: skip the subclass's weights
    RecurrentMap.__init__(rec, layers, batch_first=bool(fields["batch_first"]))
    return rec


def _array_fields(names):
    """(encode, decode helpers) for a class saved as some named arrays plus plain values."""
    def encode(obj, writer):
        return {k: writer.ref(k, getattr(obj, k), k) for k in names}

    def arrays_of(fields, arrays):
        return [_get_array(arrays, fields[k]) for k in names]
    return encode, arrays_of


_attention_enc, _attention_arrays = _array_fields(("Wk", "Wv", "q"))
_lss_enc, _lss_arrays = _array_fields(("A", "B", "C", "D"))
_linear_enc, _linear_arrays = _array_fields(("A",))

register_codec(BlockMatrix, "BlockMatrix", _encode_blocks, _decode_blocks)
register_codec(IterativeMap, "IterativeMap", _encode_network, _decode_network)
register_codec(RecurrentMap, "RecurrentMap", _encode_recurrent, _decode_recurrent)
register_codec(LogisticMap, "LogisticMap",  # r: a float, or an array (one rate per state)
               lambda m, w: {"r": m.r if isinstance(m.r, float) else w.ref("r", m.r, "r")},
               lambda f, a: LogisticMap(_get_array(a, f["r"]) if isinstance(f["r"], dict)
                                        else f["r"]))
register_codec(HenonMap, "HenonMap", lambda m, w: {"a": m.a, "b": m.b},
               lambda f, a: HenonMap(f["a"], f["b"]))
register_codec(StandardMap, "StandardMap", lambda m, w: {"k": m.k},
               lambda f, a: StandardMap(f["k"]))
register_codec(LinearMap, "LinearMap", _linear_enc,
               lambda f, a: LinearMap(*_linear_arrays(f, a)))
register_codec(AttentionRNN, "AttentionRNN",
               lambda m, w: _attention_enc(m, w) | {"scale": m.scale},
               lambda f, a: AttentionRNN(*_attention_arrays(f, a), scale=f["scale"]))
register_codec(LoopedTransformerMap, "LoopedTransformerMap",
               lambda m, w: {"layer": _encode_function(0, 0, m.layer, w)},
               lambda f, a: LoopedTransformerMap(_decode_functions([f["layer"]], a)[(0, 0)]))
register_codec(LinearStateSpace, "LinearStateSpace",
               lambda m, w: _lss_enc(m, w) | {"dt": m.dt, "method": m.method},
               lambda f, a: LinearStateSpace(*_lss_arrays(f, a), dt=f["dt"],
                                             method=f["method"]))
