"""Transformers as iterative maps: layers as block functions on the block sub-diagonal."""

from __future__ import annotations

from collections.abc import Sequence

from ._block_functions import BlockFunction, Chain
from ._blocks import BlockMatrix
from ._network import IterativeMap

__all__ = ["transformer_map"]


def transformer_map(layers: Sequence[BlockFunction], *,
                    final_norm: BlockFunction | None = None) -> IterativeMap:
    """A stack of ``L`` transformer layers as an iterative map on ``[h_0; h_1; ...; h_L]``.

    Each ``h_l`` holds the ``T * d`` units of a sequence of ``T`` tokens of width ``d``.
    Block ``0`` takes the input (the token embeddings); block ``(l, l-1)`` is layer ``l``,
    a block function; every activation is the identity. Iterating ``L`` times from any
    start leaves the transformer's output in block ``L``: the map is the MLP's story
    with nonlinear blocks. Its Jacobian is strictly block lower triangular, so nilpotent:
    the finite impulse response has length ``L`` and every Lyapunov exponent is
    ``-inf``.

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

    References
    ----------
    .. [1] B. Hershey, R. Paffenroth, N. Pathak and S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).
    .. [2] A. Vaswani et al., "Attention is all you need", NeurIPS (2017).

    Examples
    --------
    Two LayerNorms as a 2-layer "transformer" on 3 tokens of width 2:

    >>> import numpy as np
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
        layers[-1] = Chain([layers[-1], final_norm], name=f"{layers[-1].name} -> "
                                                          f"{final_norm.name}")
    n = layers[0].in_size
    L = len(layers)
    return IterativeMap(BlockMatrix([n] * (L + 1)), None, "identity", input_block=0,
                        functions={(l + 1, l): g for l, g in enumerate(layers)})
