"""Block functions: blocks of an iterative map that are functions (transformer layers, ...).

See :mod:`itermap._maps._block_functions` for the contract a block function of your own fulfils.
"""

from ._maps._block_functions import (
    BLOCK_FUNCTIONS,
    BlockFunction,
    Chain,
    FeedForward,
    LayerNorm,
    Residual,
    SelfAttention,
    transformer_layer,
)

__all__ = ["BLOCK_FUNCTIONS", "BlockFunction", "Chain", "FeedForward", "LayerNorm", "Residual",
           "SelfAttention", "transformer_layer"]
