"""Block functions: blocks of an :class:`~itermap.IterativeMap` that are functions, not matrices.

The paper's Sequential2D lets any module sit in a block. A *block function* ``g`` carries
block ``j``'s units to block ``i``'s: block ``i``'s new state is
``f_i(sum_j W_ij x_j + sum_j g_ij(x_j) + b_i)``. The built-in ones are the layers of a
transformer (self-attention, LayerNorm, the position-wise feed-forward network, residual
connections and their chains), each with its exact tangent and transpose (vjp) written out.

How to write your own (the contract a block function fulfils) is the docstring of the
public module, :mod:`itermap.block_functions`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._core._backend import backend_of, namespace, to_backend, to_numpy
from .._core._checks import (
    check_bool,
    check_int,
    check_real,
    one_namespace,
    plain_array,
    real_array,
)
from ._activations import get_activation

__all__ = ["BlockFunction", "Chain", "FeedForward", "LayerNorm", "Residual", "SelfAttention",
           "transformer_layer"]

Array = Any


class BlockFunction:
    """A block of an iterative map that is a function ``g`` from one block to another.

    :mod:`itermap.block_functions` says what a subclass provides.

    Examples
    --------
    A LayerNorm over 2 tokens of width 3 as a block function:

    >>> from itermap.block_functions import LayerNorm
    >>> g = LayerNorm(np.ones(3), np.zeros(3), seq_len=2)
    >>> g.in_size, g.out_size
    (6, 6)
    >>> y = g(np.arange(6.0))
    >>> np.round(y, 3)
    array([-1.225,  0.   ,  1.225, -1.225,  0.   ,  1.225])
    """

    name: str = "function"
    in_size: int
    out_size: int

    def __call__(self, x: Array) -> Array:
        raise NotImplementedError

    def tangent_rows(self, x: Array, V: Array) -> Array:
        raise NotImplementedError

    def vjp_rows(self, x: Array, G: Array) -> Array:
        raise NotImplementedError

    # -- the map protocol's layout: tangents as columns, cotangents as rows --------------
    def tangent(self, x: Array, v: Array) -> Array:
        """``J_g(x) @ v`` for ``v`` of shape ``(..., in_size, k)``."""
        xp = namespace(x, v)
        return xp.moveaxis(self.tangent_rows(x, xp.moveaxis(v, -1, -2)), -1, -2)

    def vjp(self, x: Array, w: Array) -> Array:
        """``w @ J_g(x)`` for ``w`` of shape ``(..., out_size)`` or ``(..., k, out_size)``."""
        if w.ndim == x.ndim:
            return self.vjp_rows(x, w[..., None, :])[..., 0, :]
        return self.vjp_rows(x, w)

    # -- saving and moving ---------------------------------------------------------------
    def arrays(self) -> dict[str, Array]:
        """The parameter arrays, by name (empty for a function without any)."""
        return {}

    def config(self) -> dict:
        """Everything but the arrays that rebuilds the function, as JSON values."""
        raise TypeError(f"{type(self).__name__} is not a built-in block function: it pickles, "
                        f"but save() stores built-in block functions only")

    @property
    def dtype(self):
        arrays = list(self.arrays().values())
        return arrays[0].dtype if arrays else None

    @property
    def backend(self) -> str:
        arrays = list(self.arrays().values())
        return backend_of(arrays[0]) if arrays else "numpy"

    def to(self, backend: str) -> BlockFunction:
        """The same function with its arrays on ``backend``."""
        return type(self)._rebuild(self.config(), {k: to_backend(v, backend)
                                                   for k, v in self.arrays().items()})

    @classmethod
    def _rebuild(cls, config: dict, arrays: Mapping[str, Array]) -> BlockFunction:
        raise NotImplementedError

    def __eq__(self, other):
        if type(self) is not type(other):
            return NotImplemented
        try:
            mine, theirs = self.config(), other.config()
        except TypeError:
            return self is other
        a, b = self.arrays(), other.arrays()
        return mine == theirs and a.keys() == b.keys() and all(
            a[k].shape == b[k].shape and a[k].dtype == b[k].dtype
            and bool(np.array_equal(np.asarray(to_numpy(a[k])), np.asarray(to_numpy(b[k]))))
            for k in a)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}: {self.in_size} -> {self.out_size})"


def _tokens(a, T):
    """``(..., T * d)`` as ``(..., T, d)``."""
    return namespace(a).reshape(a, (*a.shape[:-1], T, a.shape[-1] // T))


def _linear(a, weight, bias=None):
    """``a @ weight.T (+ bias)`` over the last axis, as one 2-D matmul (one BLAS call,
    where a stacked matmul of 3-D by 2-D loops over the leading axes)."""
    xp = namespace(a)
    lead = a.shape[:-1]
    out = xp.matmul(xp.reshape(a, (-1, a.shape[-1])), weight.T)
    if bias is not None:
        out = out + bias
    return xp.reshape(out, (*lead, weight.shape[0]))


def _flat(a):
    return namespace(a).reshape(a, (*a.shape[:-2], a.shape[-2] * a.shape[-1]))


# -- LayerNorm ----------------------------------------------------------------------------
class LayerNorm(BlockFunction):
    """LayerNorm over the width of each of ``seq_len`` tokens (torch's ``nn.LayerNorm(d)``).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per token, with the biased
    variance, as torch computes it.

    Parameters
    ----------
    weight, bias : arrays of shape (d,)
        The elementwise affine parameters (torch's ``weight`` and ``bias``).
    seq_len : int
        Tokens per block: the block has ``seq_len * d`` units, token by token.
    eps : float
        Added to the variance.

    References
    ----------
    .. [1] J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer normalization",
       arXiv:1607.06450 (2016).

    Examples
    --------
    >>> from itermap.block_functions import LayerNorm
    >>> g = LayerNorm(np.ones(2), np.zeros(2), seq_len=1, eps=0.0)
    >>> g(np.array([1.0, 3.0]))
    array([-1.,  1.])
    """

    name = "layer_norm"

    def __init__(self, weight: Array, bias: Array, *, seq_len: int, eps: float = 1e-5):
        one_namespace(weight=weight, bias=bias)
        shape = tuple(getattr(weight, "shape", ()))
        if len(shape) != 1 or shape[0] < 1:
            raise ValueError(f"weight must be a 1-D array of the width d, got shape {shape}")
        d = shape[0]
        self.weight = real_array("weight", weight, (d,))
        if tuple(getattr(bias, "shape", ())) != (d,):
            raise ValueError(f"bias must have the shape of weight, ({d},), got "
                             f"{tuple(getattr(bias, 'shape', ()))}")
        self.bias = real_array("bias", bias, (d,))
        if self.bias.dtype != self.weight.dtype:
            raise TypeError(f"bias has dtype {self.bias.dtype}, weight {self.weight.dtype}")
        self.seq_len = check_int("seq_len", seq_len, 1)
        self.eps = check_real("eps", eps, minimum=0.0)
        self.width = d
        self.in_size = self.out_size = self.seq_len * d

    def _normalised(self, x):
        xp = namespace(x)
        X = _tokens(x, self.seq_len)
        centred = X - xp.mean(X, axis=-1, keepdims=True)
        inv = 1.0 / xp.sqrt(xp.mean(centred * centred, axis=-1, keepdims=True) + self.eps)
        return centred * inv, inv

    def __call__(self, x):
        xhat, _ = self._normalised(x)
        return _flat(xhat * self.weight + self.bias)

    def _pull(self, x, G, scale_first):
        # the normalisation's derivative is symmetric: one formula serves both directions
        xp = namespace(x)
        xhat, inv = self._normalised(x)
        xhat, inv = xhat[..., None, :, :], inv[..., None, :, :]
        D = _tokens(G, self.seq_len)
        if scale_first:
            D = D * self.weight
        out = inv * (D - xp.mean(D, axis=-1, keepdims=True)
                     - xhat * xp.mean(D * xhat, axis=-1, keepdims=True))
        return out if scale_first else out * self.weight

    def tangent_rows(self, x, V):
        return _flat(self._pull(x, V, scale_first=False))

    def vjp_rows(self, x, G):
        return _flat(self._pull(x, G, scale_first=True))

    def arrays(self):
        return {"weight": self.weight, "bias": self.bias}

    def config(self):
        return {"kind": "layer_norm", "seq_len": self.seq_len, "eps": self.eps}

    @classmethod
    def _rebuild(cls, config, arrays):
        return cls(arrays["weight"], arrays["bias"], seq_len=config["seq_len"],
                   eps=config["eps"])


# -- the position-wise feed-forward network ----------------------------------------------
class FeedForward(BlockFunction):
    """The position-wise feed-forward network ``linear2(act(linear1(x)))`` of each token.

    Parameters
    ----------
    weight1 : array (f, d)
    bias1 : array (f,) or None
    weight2 : array (d_out, f)
    bias2 : array (d_out,) or None
        torch's ``linear1`` and ``linear2`` (``(out, in)`` layout).
    seq_len : int
        Tokens per block.
    activation : str
        ``"relu"``, ``"gelu"`` (exact) or ``"gelu(approximate='tanh')"``; any name of
        :data:`itermap.ACTIVATIONS` works.

    References
    ----------
    .. [1] A. Vaswani et al., "Attention is all you need", NeurIPS (2017).

    Examples
    --------
    >>> from itermap.block_functions import FeedForward
    >>> g = FeedForward(np.eye(2), None, 2 * np.eye(2), None, seq_len=1)
    >>> g(np.array([1.0, -1.0]))
    array([2., 0.])
    """

    name = "feed_forward"

    def __init__(self, weight1: Array, bias1: Array | None, weight2: Array,
                 bias2: Array | None, *, seq_len: int, activation: str = "relu"):
        one_namespace(weight1=weight1, bias1=bias1, weight2=weight2, bias2=bias2)
        if not hasattr(weight1, "shape") or len(weight1.shape) != 2 or 0 in weight1.shape:
            raise ValueError("weight1 must be a non-empty 2-D array (hidden, width)")
        f, d = weight1.shape
        self.weight1 = real_array("weight1", weight1, (f, d))
        if not hasattr(weight2, "shape") or len(weight2.shape) != 2 or weight2.shape[1] != f \
                or weight2.shape[0] == 0:
            raise ValueError(f"weight2 must have shape (d_out, {f}) with d_out >= 1")
        self.weight2 = real_array("weight2", weight2, tuple(weight2.shape))
        d_out = weight2.shape[0]
        self.bias1 = None if bias1 is None else real_array("bias1", bias1, (f,))
        self.bias2 = None if bias2 is None else real_array("bias2", bias2, (d_out,))
        self.seq_len = check_int("seq_len", seq_len, 1)
        self.activation = get_activation(activation)
        self.in_size, self.out_size = self.seq_len * d, self.seq_len * d_out

    def _hidden_pre(self, x):
        return _linear(_tokens(x, self.seq_len), self.weight1, self.bias1)

    def __call__(self, x):
        xp = namespace(x)
        X = _tokens(x, self.seq_len)
        z = xp.matmul(xp.reshape(X, (-1, X.shape[-1])), self.weight1.T)  # a fresh array,
        if self.bias1 is not None:                                       # activated in place
            z = z + self.bias1
        h = self.activation.apply(z, xp, inplace=True)
        return _flat(_linear(xp.reshape(h, (*X.shape[:-1], h.shape[-1])), self.weight2,
                             self.bias2))

    def tangent_rows(self, x, V):
        xp = namespace(x)
        d = self.activation.derivative(self._hidden_pre(x), xp)[..., None, :, :]
        dz = _linear(_tokens(V, self.seq_len), self.weight1)
        return _flat(_linear(d * dz, self.weight2))

    def vjp_rows(self, x, G):
        xp = namespace(x)
        d = self.activation.derivative(self._hidden_pre(x), xp)[..., None, :, :]
        gz = _linear(_tokens(G, self.seq_len), self.weight2.T) * d
        return _flat(_linear(gz, self.weight1.T))

    def arrays(self):
        out = {"weight1": self.weight1, "bias1": self.bias1, "weight2": self.weight2,
               "bias2": self.bias2}
        return {k: v for k, v in out.items() if v is not None}

    def config(self):
        return {"kind": "feed_forward", "seq_len": self.seq_len,
                "activation": self.activation.name}

    @classmethod
    def _rebuild(cls, config, arrays):
        return cls(arrays["weight1"], arrays.get("bias1"), arrays["weight2"], arrays.get("bias2"),
                   seq_len=config["seq_len"], activation=config["activation"])


# -- multi-head self-attention -----------------------------------------------------------
class SelfAttention(BlockFunction):
    """Multi-head scaled dot-product self-attention over ``seq_len`` tokens.

    torch's ``nn.MultiheadAttention(d, num_heads)`` called as ``mha(x, x, x)``: the
    projections ``q, k, v = x W_q^T + b_q, ...`` (``in_proj_weight`` stacks ``W_q, W_k,
    W_v``), per head ``softmax(q k^T / sqrt(d / num_heads) + mask) v``, then
    ``out_proj``.

    Parameters
    ----------
    in_proj_weight : array (3 d, d)
    in_proj_bias : array (3 d,) or None
    out_proj_weight : array (d, d)
    out_proj_bias : array (d,) or None
    num_heads : int
        Must divide ``d``.
    seq_len : int
        Tokens per block.
    causal : bool
        Each token attends to itself and the tokens before it only.
    mask : array (seq_len, seq_len), optional
        torch's ``attn_mask``: boolean, True where a token may *not* attend, or a float
        mask added to the scores. Combined with ``causal``. Every token must be left at
        least one token to attend to.

    References
    ----------
    .. [1] A. Vaswani et al., "Attention is all you need", NeurIPS (2017).

    Examples
    --------
    With one token, attention returns the projected value:

    >>> from itermap.block_functions import SelfAttention
    >>> d = 2
    >>> W = np.vstack([np.eye(d), np.eye(d), 3 * np.eye(d)])
    >>> g = SelfAttention(W, None, np.eye(d), None, num_heads=1, seq_len=1)
    >>> g(np.array([1.0, 2.0]))
    array([3., 6.])
    """

    name = "self_attention"

    def __init__(self, in_proj_weight: Array, in_proj_bias: Array | None,
                 out_proj_weight: Array, out_proj_bias: Array | None, *, num_heads: int,
                 seq_len: int, causal: bool = False, mask: Array | None = None):
        one_namespace(in_proj_weight=in_proj_weight, in_proj_bias=in_proj_bias,
                      out_proj_weight=out_proj_weight, out_proj_bias=out_proj_bias, mask=mask)
        if not hasattr(in_proj_weight, "shape") or len(in_proj_weight.shape) != 2 \
                or in_proj_weight.shape[0] != 3 * in_proj_weight.shape[1]:
            raise ValueError("in_proj_weight must have shape (3 d, d)")
        d = in_proj_weight.shape[1]
        self.in_proj_weight = real_array("in_proj_weight", in_proj_weight, (3 * d, d))
        self.in_proj_bias = None if in_proj_bias is None else real_array("in_proj_bias",
                                                                     in_proj_bias, (3 * d,))
        self.out_proj_weight = real_array("out_proj_weight", out_proj_weight, (d, d))
        self.out_proj_bias = None if out_proj_bias is None else real_array("out_proj_bias",
                                                                       out_proj_bias, (d,))
        self.num_heads = check_int("num_heads", num_heads, 1)
        if d % self.num_heads:
            raise ValueError(f"num_heads: the width {d} is not divisible by {num_heads} heads")
        self.seq_len = T = check_int("seq_len", seq_len, 1)
        self.causal = check_bool("causal", causal)
        self.width = d
        self.in_size = self.out_size = T * d
        self.user_mask = None if mask is None else self._check_mask(mask)
        self._mask = self._additive_mask()

    def _check_mask(self, mask):
        mask = plain_array("mask", mask)
        T = self.seq_len
        if isinstance(mask, str | bytes) or not hasattr(mask, "shape"):
            raise TypeError(f"mask must be an array of shape ({T}, {T}), got "
                            f"{type(mask).__name__}")
        if tuple(mask.shape) != (T, T):
            raise ValueError(f"mask must have shape ({T}, {T}) for seq_len={T}, got "
                             f"{tuple(mask.shape)}")
        xp = namespace(mask)
        if mask.dtype == xp.bool:
            return mask
        if not xp.isdtype(mask.dtype, "real floating"):
            raise TypeError(f"mask must be bool or real floating, got dtype {mask.dtype}")
        if bool(xp.any(xp.isnan(mask))) or bool(xp.any(mask == xp.inf)):
            raise ValueError("mask contains NaN or +inf")
        return mask

    def _additive_mask(self):
        T = self.seq_len
        xp = namespace(self.in_proj_weight)
        dtype = self.in_proj_weight.dtype
        add = np.zeros((T, T))
        if self.causal:
            add[np.triu_indices(T, 1)] = -np.inf
        if self.user_mask is not None:
            user = np.asarray(to_numpy(self.user_mask))
            add = add + (np.where(user, -np.inf, 0.0) if user.dtype == bool else user)
        if not np.all(np.any(np.isfinite(add), axis=1)):
            raise ValueError("mask: some token may attend to no token at all")
        if not add.any():
            return None
        out = xp.asarray(add, dtype=dtype)
        return to_backend(out, self.backend) if self.backend == "cupy" else out

    def _heads(self, a):
        """``(..., T, d)`` to ``(..., H, T, d / H)``."""
        xp = namespace(a)
        H = self.num_heads
        a = xp.reshape(a, (*a.shape[:-1], H, a.shape[-1] // H))
        return xp.moveaxis(a, -2, -3)

    def _merge(self, a):
        xp = namespace(a)
        a = xp.moveaxis(a, -3, -2)
        return xp.reshape(a, (*a.shape[:-2], a.shape[-2] * a.shape[-1]))

    def _project(self, X, bias=True):
        qkv = _linear(X, self.in_proj_weight, self.in_proj_bias if bias else None)
        d = self.width
        return (self._heads(qkv[..., :d]), self._heads(qkv[..., d:2 * d]),
                self._heads(qkv[..., 2 * d:]))

    def _forward(self, x):
        """q, k, v by head, and the attention weights P."""
        xp = namespace(x)
        q, k, v = self._project(_tokens(x, self.seq_len))
        scale = 1.0 / math.sqrt(self.width // self.num_heads)
        s = xp.matmul(q, xp.moveaxis(k, -1, -2)) * scale
        if self._mask is not None:
            s = s + self._mask
        s = s - xp.max(s, axis=-1, keepdims=True)
        p = xp.exp(s)
        p = p / xp.sum(p, axis=-1, keepdims=True)
        return q, k, v, p, scale

    def _out(self, heads):
        return _linear(self._merge(heads), self.out_proj_weight)

    def __call__(self, x):
        xp = namespace(x)
        _, _, v, p, _ = self._forward(x)
        y = self._out(xp.matmul(p, v))
        return _flat(y if self.out_proj_bias is None else y + self.out_proj_bias)

    def tangent_rows(self, x, V):
        xp = namespace(x)
        q, k, v, p, scale = (a[..., None, :, :, :] if hasattr(a, "shape") else a
                             for a in self._forward(x))
        dq, dk, dv = self._project(_tokens(V, self.seq_len), bias=False)
        ds = (xp.matmul(dq, xp.moveaxis(k, -1, -2)) + xp.matmul(q, xp.moveaxis(dk, -1, -2))) \
            * scale
        dp = p * (ds - xp.sum(p * ds, axis=-1, keepdims=True))
        return _flat(self._out(xp.matmul(dp, v) + xp.matmul(p, dv)))

    def vjp_rows(self, x, G):
        xp = namespace(x)
        q, k, v, p, scale = (a[..., None, :, :, :] if hasattr(a, "shape") else a
                             for a in self._forward(x))
        g_heads = self._heads(_linear(_tokens(G, self.seq_len), self.out_proj_weight.T))
        gp = xp.matmul(g_heads, xp.moveaxis(v, -1, -2))
        gv = xp.matmul(xp.moveaxis(p, -1, -2), g_heads)
        gs = p * (gp - xp.sum(gp * p, axis=-1, keepdims=True)) * scale
        gq = xp.matmul(gs, k)
        gk = xp.matmul(xp.moveaxis(gs, -1, -2), q)
        g_qkv = xp.concat([self._merge(gq), self._merge(gk), self._merge(gv)], axis=-1)
        return _flat(_linear(g_qkv, self.in_proj_weight.T))

    def arrays(self):
        out = {"in_proj_weight": self.in_proj_weight, "in_proj_bias": self.in_proj_bias,
               "out_proj_weight": self.out_proj_weight, "out_proj_bias": self.out_proj_bias,
               "mask": self.user_mask}
        return {k: v for k, v in out.items() if v is not None}

    def config(self):
        return {"kind": "self_attention", "num_heads": self.num_heads, "seq_len": self.seq_len,
                "causal": self.causal}

    @classmethod
    def _rebuild(cls, config, arrays):
        return cls(arrays["in_proj_weight"], arrays.get("in_proj_bias"),
                   arrays["out_proj_weight"], arrays.get("out_proj_bias"),
                   num_heads=config["num_heads"], seq_len=config["seq_len"],
                   causal=config["causal"], mask=arrays.get("mask"))


# -- combinators -------------------------------------------------------------------------
class Residual(BlockFunction):
    """``x + g(x)``: a residual connection around a block function of equal sizes.

    Parameters
    ----------
    inner : BlockFunction
        ``g``, with equal in and out sizes.

    Examples
    --------
    >>> from itermap.block_functions import FeedForward, Residual
    >>> g = Residual(FeedForward(np.eye(1), None, np.eye(1), None, seq_len=1))
    >>> g(np.array([2.0])), g(np.array([-2.0]))
    (array([4.]), array([-2.]))
    """

    def __init__(self, inner: BlockFunction):
        if not isinstance(inner, BlockFunction):
            raise TypeError(f"inner must be a BlockFunction, got {type(inner).__name__}")
        if inner.in_size != inner.out_size:
            raise ValueError(f"inner: a residual connection needs equal sizes, got "
                             f"{inner.in_size} -> {inner.out_size}")
        self.inner = inner
        self.in_size = self.out_size = inner.in_size
        self.name = f"residual({inner.name})"

    def __call__(self, x):
        return x + self.inner(x)

    def tangent_rows(self, x, V):
        return V + self.inner.tangent_rows(x, V)

    def vjp_rows(self, x, G):
        return G + self.inner.vjp_rows(x, G)

    def arrays(self):
        return {f"inner.{k}": v for k, v in self.inner.arrays().items()}

    def config(self):
        return {"kind": "residual", "inner": self.inner.config()}

    @classmethod
    def _rebuild(cls, config, arrays):
        return cls(rebuild(config["inner"], _sub(arrays, "inner."), config.get("_depth", 0)))


class Chain(BlockFunction):
    """``g_n(...(g_2(g_1(x))))``: block functions applied in turn.

    Parameters
    ----------
    parts : sequence of BlockFunction
        Each one's ``out_size`` is the next one's ``in_size``.
    name : str, optional
        A label for figures and graphs (default: the parts' names joined).

    Examples
    --------
    >>> from itermap.block_functions import Chain, FeedForward
    >>> double = FeedForward(np.eye(1), None, 2 * np.eye(1), None, seq_len=1)
    >>> Chain([double, double])(np.array([1.5]))
    array([6.])
    """

    def __init__(self, parts: Sequence[BlockFunction], *, name: str | None = None):
        if isinstance(parts, BlockFunction | str | bytes) or not isinstance(parts, Sequence):
            raise TypeError(f"parts must be a sequence of block functions, got "
                            f"{type(parts).__name__}")
        parts = tuple(parts)
        if not parts:
            raise ValueError("parts: a chain needs at least one block function")
        for n, g in enumerate(parts):
            if not isinstance(g, BlockFunction):
                raise TypeError(f"parts[{n}] must be a BlockFunction, got {type(g).__name__}")
            if n and g.in_size != parts[n - 1].out_size:
                raise ValueError(f"parts[{n}] takes {g.in_size} units, but parts[{n - 1}] "
                                 f"gives {parts[n - 1].out_size}")
        self.parts = parts
        self.in_size, self.out_size = parts[0].in_size, parts[-1].out_size
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name or " -> ".join(g.name for g in parts)

    def _inputs(self, x):
        xs = [x]
        for g in self.parts[:-1]:
            xs.append(g(xs[-1]))
        return xs

    def __call__(self, x):
        for g in self.parts:
            x = g(x)
        return x

    def tangent_rows(self, x, V):
        for g, xi in zip(self.parts, self._inputs(x)):
            V = g.tangent_rows(xi, V)
        return V

    def vjp_rows(self, x, G):
        for g, xi in zip(reversed(self.parts), reversed(self._inputs(x))):
            G = g.vjp_rows(xi, G)
        return G

    def arrays(self):
        return {f"{n}.{k}": v for n, g in enumerate(self.parts) for k, v in g.arrays().items()}

    def config(self):
        return {"kind": "chain", "name": self.name, "parts": [g.config() for g in self.parts]}

    @classmethod
    def _rebuild(cls, config, arrays):
        parts = config["parts"]
        if not isinstance(parts, list):
            raise ValueError(f"a chain's parts must be a list, got {type(parts).__name__}")
        return cls([rebuild(c, _sub(arrays, f"{n}."), config.get("_depth", 0))
                    for n, c in enumerate(parts)], name=config["name"])


def transformer_layer(attention: SelfAttention, feed_forward: FeedForward, norm1: LayerNorm,
                      norm2: LayerNorm, *, norm_first: bool = False) -> Chain:
    """One transformer encoder layer (torch's ``nn.TransformerEncoderLayer``) as a block function.

    Post-LN (``norm_first=False``, torch's default and the original):
    ``h = norm1(x + attention(x))``, ``y = norm2(h + feed_forward(h))``.
    Pre-LN (``norm_first=True``, as GPT-2): ``h = x + attention(norm1(x))``,
    ``y = h + feed_forward(norm2(h))``.

    Parameters
    ----------
    attention : SelfAttention
    feed_forward : FeedForward
    norm1, norm2 : LayerNorm
    norm_first : bool

    Returns
    -------
    Chain
        Named ``"encoder_layer(post-LN)"`` or ``"encoder_layer(pre-LN)"``.

    Raises
    ------
    TypeError
        Parts of the wrong kind, or a ``norm_first`` that is not a bool.
    ValueError
        Parts whose sizes do not chain.

    References
    ----------
    .. [1] A. Vaswani et al., "Attention is all you need", NeurIPS (2017).
    .. [2] R. Xiong et al., "On layer normalization in the transformer architecture",
       ICML (2020).

    Examples
    --------
    >>> from itermap.block_functions import (FeedForward, LayerNorm, SelfAttention,
    ...                                      transformer_layer)
    >>> rng = np.random.default_rng(0)
    >>> T, d = 3, 4
    >>> layer = transformer_layer(
    ...     SelfAttention(rng.normal(size=(3 * d, d)), None, rng.normal(size=(d, d)), None,
    ...                   num_heads=2, seq_len=T),
    ...     FeedForward(rng.normal(size=(8, d)), None, rng.normal(size=(d, 8)), None, seq_len=T),
    ...     LayerNorm(np.ones(d), np.zeros(d), seq_len=T),
    ...     LayerNorm(np.ones(d), np.zeros(d), seq_len=T))
    >>> layer.name, layer.in_size
    ('encoder_layer(post-LN)', 12)
    """
    for name, g, cls in (("attention", attention, SelfAttention),
                         ("feed_forward", feed_forward, FeedForward),
                         ("norm1", norm1, LayerNorm), ("norm2", norm2, LayerNorm)):
        if not isinstance(g, cls):
            raise TypeError(f"{name} must be a {cls.__name__}, got {type(g).__name__}")
    if check_bool("norm_first", norm_first):
        parts: list[BlockFunction] = [Residual(Chain([norm1, attention])),
                                      Residual(Chain([norm2, feed_forward]))]
        return Chain(parts, name="encoder_layer(pre-LN)")
    return Chain([Residual(attention), norm1, Residual(feed_forward), norm2],
                 name="encoder_layer(post-LN)")


# -- rebuilding from a description (save / load) -----------------------------------------
#: The built-in block functions by the name a saved file records, ``name -> class``.
BLOCK_FUNCTIONS: dict[str, type[BlockFunction]] = {
    "layer_norm": LayerNorm, "feed_forward": FeedForward, "self_attention": SelfAttention,
    "residual": Residual, "chain": Chain}


def _sub(arrays, prefix):
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


_MAX_NESTING = 32  # chains of chains in a file: deeper is a crafted file, not a model


def rebuild(config: Any, arrays: Mapping[str, Array], _depth: int = 0) -> BlockFunction:
    """A built-in block function from its :meth:`~BlockFunction.config` and arrays."""
    if _depth > _MAX_NESTING:
        raise ValueError(f"block functions nested more than {_MAX_NESTING} deep")
    if not isinstance(config, dict) or config.get("kind") not in BLOCK_FUNCTIONS:
        raise ValueError(f"a block function must name its kind, one of "
                         f"{sorted(BLOCK_FUNCTIONS)}; got {config!r}")
    config = dict(config, _depth=_depth + 1)  # how deep a chain's parts are rebuilt
    try:
        return BLOCK_FUNCTIONS[config["kind"]]._rebuild(config, arrays)
    except KeyError as e:
        raise ValueError(f"block function {config['kind']!r}: missing {e}") from None
