"""Transformers as iterative maps: layers as block functions on the block sub-diagonal."""

from __future__ import annotations

from collections.abc import Sequence

from .._core._types import Array
from ._block_functions import BlockFunction, Chain
from ._blocks import BlockMatrix
from ._map import Map
from ._network import IterativeMap

__all__ = ["LoopedTransformerMap", "looped_transformer_map", "transformer_map"]


def transformer_map(layers: Sequence[BlockFunction], *,
                    final_norm: BlockFunction | None = None) -> IterativeMap:
    """A stack of ``L`` transformer layers as an iterative map on ``[h_0; h_1; ...; h_L]``.

    Each ``h_l`` holds ``T`` tokens of width ``d``; block ``0`` takes the embeddings and
    block ``(l, l-1)`` is layer ``l``, a block function (identity activations). ``L``
    steps from any start leave the output in block ``L``; the Jacobian is nilpotent,
    so every Lyapunov exponent is ``-inf``.

    Parameters
    ----------
    layers : sequence of BlockFunction
        The layers in order (:func:`itermap.block_functions.transformer_layer`, or any
        block functions of equal in and out sizes).
    final_norm : BlockFunction, optional
        A last normalisation (``nn.TransformerEncoder``'s ``norm``), folded into the last
        layer's block.

    Returns
    -------
    IterativeMap
        Driven (``input_block=0``), with ``L + 1`` blocks of ``T * d`` units and no matrix
        blocks; ``forward(X)`` takes ``X`` of shape ``(B, T, d)``.

    Raises
    ------
    TypeError
        Layers that are not block functions.
    ValueError
        No layers, or layers whose sizes differ.

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak and S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).
    .. [2] A. Vaswani et al., "Attention is all you need", NeurIPS (2017).

    Examples
    --------
    Two LayerNorms as a 2-layer "transformer" on 3 tokens of width 2:

    >>> import itermap
    >>> from itermap.block_functions import LayerNorm
    >>> ln = LayerNorm(np.ones(2), np.zeros(2), seq_len=3, eps=0.0)
    >>> m = itermap.transformer_map([ln, ln])
    >>> m.sizes, m.settle_steps
    ((6, 6, 6), 2)
    >>> m.forward(np.array([[[1.0, 3.0], [2.0, 0.0], [5.0, 5.5]]]))
    array([[[-1.,  1.],
            [ 1., -1.],
            [-1.,  1.]]])
    """
    if isinstance(layers, BlockFunction) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of block functions, got "
                        f"{type(layers).__name__}")
    layers = list(layers)
    if not layers:
        raise ValueError("layers: a transformer needs at least one layer")
    for l, g in enumerate(layers):
        if not isinstance(g, BlockFunction):
            raise TypeError(f"layers[{l}] must be a BlockFunction, got {type(g).__name__}")
        if g.in_size != g.out_size or g.in_size != layers[0].in_size:
            raise ValueError(f"layers[{l}] maps {g.in_size} units to {g.out_size}; every "
                             f"layer must keep the block size {layers[0].in_size}")
    if final_norm is not None:
        if not isinstance(final_norm, BlockFunction):
            raise TypeError(f"final_norm must be a BlockFunction, got "
                            f"{type(final_norm).__name__}")
        layers[-1] = Chain([layers[-1], final_norm], name=f"{layers[-1].name} -> {final_norm.name}")
    return IterativeMap(BlockMatrix([layers[0].in_size] * (len(layers) + 1)), None, "identity",
                        input_block=0, functions={(l + 1, l): g for l, g in enumerate(layers)})


class LoopedTransformerMap(Map):
    """One transformer layer applied again and again with the input injected every time.

    ``h_{k+1} = layer(h_k + e)`` (Dehghani et al.'s universal, Giannou et al.'s looped
    transformer): a recurrent map in depth driven by the embeddings ``e``
    (``input_size = T * d``, not part of the state). A post-LN layer bounds the state
    (small weights: one fixed point); a pre-LN layer's stream grows by about ``e``
    every loop, so it has no fixed point.

    Parameters
    ----------
    layer : BlockFunction
        The layer (equal in and out sizes), e.g.
        :func:`itermap.block_functions.transformer_layer`.

    References
    ----------
    .. [1] M. Dehghani, S. Gouws, O. Vinyals, J. Uszkoreit and L. Kaiser, "Universal
       transformers", ICLR (2019).
    .. [2] A. Giannou, S. Rajput, J. Sohn, K. Lee, J. D. Lee and D. Papailiopoulos,
       "Looped transformers as programmable computers", ICML (2023).

    Examples
    --------
    >>> import itermap
    >>> from itermap.block_functions import LayerNorm
    >>> m = itermap.LoopedTransformerMap(LayerNorm(np.ones(2), np.zeros(2), seq_len=1))
    >>> m.dim, m.input_size
    (2, 2)
    >>> m.step(np.array([1.0, 0.0]), np.array([0.0, 2.0]))   # LayerNorm of [1, 2]
    array([-0.99998,  0.99998])
    """

    def __init__(self, layer: BlockFunction):
        if not isinstance(layer, BlockFunction):
            raise TypeError(f"layer must be a BlockFunction, got {type(layer).__name__}")
        if layer.in_size != layer.out_size:
            raise ValueError(f"layer maps {layer.in_size} units to {layer.out_size}: a loop "
                             f"needs equal sizes")
        self.layer = layer

    @property
    def dim(self) -> int:
        return self.layer.in_size

    @property
    def input_size(self) -> int:
        return self.layer.in_size

    @property
    def dtype(self):
        return self.layer.dtype

    @property
    def backend(self) -> str:
        return self.layer.backend

    def _inputs(self, x, u):
        x, u = self._check_driven(x, u)
        return x, x + u

    def step(self, x: Array, u: Array | None = None) -> Array:
        """``layer(x + u)``."""
        _, z = self._inputs(x, u)
        return self.layer(z)

    def tangent(self, x: Array, v: Array, u: Array | None = None) -> Array:
        """``J(x) v`` with ``J = layer'(x + u)``."""
        x, z = self._inputs(x, u)
        return self.layer.tangent(z, self._check_tangent(x, v))

    def step_with_tangent(self, x: Array, v: Array, u: Array | None = None):
        x, z = self._inputs(x, u)
        return self.layer(z), self.layer.tangent(z, self._check_tangent(x, v))

    def vjp(self, x: Array, w: Array, u: Array | None = None) -> Array:
        """``w J(x)``."""
        x, z = self._inputs(x, u)
        return self.layer.vjp(z, self._check_cotangent(x, w))

    def __repr__(self) -> str:
        return f"LoopedTransformerMap(dim={self.dim}, layer={self.layer.name!r})"


def looped_transformer_map(layer: BlockFunction) -> LoopedTransformerMap:
    """``LoopedTransformerMap(layer)``: ``h_{k+1} = layer(h_k + e)`` (see the class).

    Parameters
    ----------
    layer : BlockFunction

    Returns
    -------
    LoopedTransformerMap

    Raises
    ------
    TypeError
        A layer that is not a block function.
    ValueError
        A layer whose in and out sizes differ.

    Examples
    --------
    >>> import itermap
    >>> from itermap.block_functions import LayerNorm
    >>> itermap.looped_transformer_map(LayerNorm(np.ones(2), np.zeros(2), seq_len=1)).dim
    2
    """
    return LoopedTransformerMap(layer)
