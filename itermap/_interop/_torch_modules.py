"""The torch side of :func:`itermap.to_torch`: modules that run an itermap map.

This module imports torch at the top; only :mod:`itermap._interop._torch` imports it, and
only inside its functions, so that ``import itermap`` never imports torch.
"""

from __future__ import annotations

import itertools
from typing import Any, cast

import torch
from torch import nn

__all__ = ["IteratedModel", "MaskedLinear", "activation_module"]


class MaskedLinear(nn.Module):
    """A linear block with weight ``weight_0 + U * mask``, as in the paper's code.

    ``U`` is the only trainable parameter; ``weight_0`` and ``mask`` are fixed
    (parameters with ``requires_grad=False``, under the paper's names, so
    state dicts read alike). Entries where ``mask`` is 0 keep ``weight_0``
    whatever the training: a sparse block keeps its pattern.
    """

    def __init__(self, weight_0: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.out_features, self.in_features = weight_0.shape
        self.weight_0 = nn.Parameter(weight_0.clone(), requires_grad=False)
        self.U = nn.Parameter(torch.zeros_like(weight_0))
        self.mask = nn.Parameter(mask.to(weight_0.dtype).clone(), requires_grad=False)
        self.bias = None

    @property
    def weight(self) -> torch.Tensor:
        return self.weight_0 + self.U * self.mask

    def forward(self, x):
        return nn.functional.linear(x, self.weight)


class _Elementwise(nn.Module):
    """An itermap activation with no torch.nn twin (sin, itermap's softplus)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def forward(self, x):
        if self.name == "sin":
            return torch.sin(x)
        if self.name == "softplus":
            return torch.logaddexp(x, torch.zeros_like(x))
        raise ValueError(f"no torch module for activation {self.name!r}")

    def extra_repr(self) -> str:
        return self.name


def activation_module(name: str) -> nn.Module:
    """The torch module computing itermap's activation ``name``."""
    from .._maps._activations import _CALL, get_activation

    name = get_activation(name).name
    match = _CALL.match(name)
    kind = match.group(1) if match else name
    params: dict[str, Any] = {}
    if match:
        for item in match.group(2).split(","):
            key, _, value = item.partition("=")
            value = value.strip().strip("'\"")
            params[key.strip()] = value if key.strip() == "approximate" else float(value)
    simple = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "identity": nn.Identity,
              "silu": nn.SiLU}
    if kind in simple:
        return simple[kind]()
    if kind == "elu":
        return nn.ELU(alpha=params.get("alpha", 1.0))
    if kind == "leaky_relu":
        return nn.LeakyReLU(negative_slope=params.get("negative_slope", 0.01))
    if kind == "gelu":
        return nn.GELU(approximate=params.get("approximate", "none"))
    if kind == "softplus" and params:
        return nn.Softplus(beta=params["beta"], threshold=params["threshold"])
    return _Elementwise(kind)


class IteratedModel(nn.Module):
    """The paper's iterated model: ``x <- f(W x + b)`` with input insertion.

    ``blocks["(i, j)"]`` (itermap's ``W[j, i]``, as in the paper's ``Sequential2D``)
    is a :class:`MaskedLinear` whose mask is the block's trainable mask; one
    activation per block; the input block is overwritten by the input every step.

    ``forward(x, u=None, steps=1)``: ``x`` of shape ``(dim,)`` or ``(B, dim)``;
    ``u`` one input ``([B,] n_in)`` held for every step, or a sequence
    ``(steps, [B,] n_in)``. Returns the state after ``steps`` steps.
    """

    def __init__(self, sizes, blocks: dict, bias: torch.Tensor, activations, input_block,
                 sparse=()):
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        self.input_block = input_block
        self.activation_names = list(activations)
        self.sparse = [list(k) for k in sparse]
        self.blocks = nn.ModuleDict({f"({i}, {j})": blk for (i, j), blk in blocks.items()})
        self.bias = nn.Parameter(bias.clone())
        self.activations = nn.ModuleList(activation_module(a) for a in self.activation_names)
        self.offsets = list(itertools.accumulate(self.sizes, initial=0))

    @property
    def dim(self) -> int:
        return self.offsets[-1]

    @property
    def architecture(self) -> dict:
        """What :func:`itermap.from_torch` needs beside the state dict's arrays."""
        return {"type": "IteratedModel", "sizes": list(self.sizes),
                "activations": list(self.activation_names), "input_block": self.input_block,
                "sparse": [list(k) for k in self.sparse]}

    def get_extra_state(self):
        return self.architecture

    def set_extra_state(self, state):
        if list(state["sizes"]) != self.sizes:
            raise ValueError(f"state dict for sizes {state['sizes']}, module has {self.sizes}")
        self.activation_names = list(state["activations"])
        self.activations = nn.ModuleList(activation_module(a) for a in self.activation_names)
        self.input_block = state["input_block"]
        self.sparse = [list(k) for k in state.get("sparse", [])]

    def weight(self) -> torch.Tensor:
        """The full ``dim x dim`` matrix ``W`` (rows are outputs)."""
        off = self.offsets
        W = torch.zeros((self.dim, self.dim), dtype=self.bias.dtype, device=self.bias.device)
        for key, blk in self.blocks.items():
            i, j = (int(t) for t in key.strip("()").split(","))
            W[off[j]:off[j + 1], off[i]:off[i + 1]] = cast(torch.Tensor, blk.weight)
        return W

    def _insert(self, x, u):
        ib = self.input_block
        if ib is None:
            return x
        off = self.offsets
        u = u.expand(*x.shape[:-1], u.shape[-1]) if u.dim() < x.dim() else u
        return torch.cat([x[..., :off[ib]], u, x[..., off[ib + 1]:]], dim=-1)

    def forward(self, x, u=None, steps: int = 1):
        if self.input_block is None and u is not None:
            raise ValueError("u: this model has no input block")
        if self.input_block is not None and u is None:
            raise ValueError("u: this model has an input block; pass its input")
        sequence = u is not None and u.dim() == x.dim() + 1
        if sequence and u.shape[0] != steps:
            raise ValueError(f"u: a sequence of {u.shape[0]} inputs for {steps} steps")
        W = self.weight()
        off = self.offsets
        for k in range(int(steps)):
            uk = u[k] if sequence else u
            z = nn.functional.linear(self._insert(x, uk), W, self.bias)
            parts = [act(z[..., off[b]:off[b + 1]]) for b, act in enumerate(self.activations)]
            x = self._insert(torch.cat(parts, dim=-1), uk)
        return x

    def extra_repr(self) -> str:
        return (f"sizes={self.sizes}, input_block={self.input_block}, "
                f"activations={self.activation_names}")
