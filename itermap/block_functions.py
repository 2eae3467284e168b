"""Block functions: blocks of an iterative map that are functions (transformer layers, ...).

A *block function* ``g`` carries block ``j``'s units to block ``i``'s: block ``i``'s new state
is ``f_i(sum_j W_ij x_j + sum_j g_ij(x_j) + b_i)``. The built-in ones are the layers of a
transformer, each with its exact tangent and transpose (vjp) written out.

To write your own, subclass :class:`BlockFunction` and provide

- ``in_size`` and ``out_size`` (ints) and ``name`` (a short label for figures and graphs);
- ``__call__(x)``: ``x`` of shape ``(..., in_size)`` (any leading batch axes) to
  ``(..., out_size)``;
- ``tangent_rows(x, V)``: the directional derivatives along the rows of ``V``, shape
  ``(..., k, in_size)`` to ``(..., k, out_size)``;
- ``vjp_rows(x, G)``: the cotangents pulled back, ``(..., k, out_size)`` to
  ``(..., k, in_size)``.

Use the array namespace of ``x`` (``itermap.backends.namespace``) so that CuPy inputs
stay on the device. :func:`itermap.check_map` checks the derivatives of the map a block
function sits in against finite differences. Built-in block functions save and load with
:func:`itermap.save` (their arrays and a JSON description, no pickle); a user's own needs
only to pickle (for sweeps).
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
