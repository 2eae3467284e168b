"""Walking the MLP-RNN continuum: an MLP's block matrix plus recurrent or skip blocks.

An MLP is an iterative map whose block matrix is strictly lower
block-triangular (the layer weights on the sub-diagonal); adding blocks on or
above the diagonal makes it recurrent, adding blocks further below makes skip
connections. The paper compares such models at equal numbers of trainable
parameters (nonzero weights), which :func:`add_blocks` can keep.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import scipy.sparse as sp

from .._core._backend import is_sparse, to_numpy
from .._core._checks import check_bool, check_memory, check_real
from .._core._rng import as_rng
from .._core._types import RngLike
from ._block_patterns import _random_block
from ._blocks import BlockMatrix, _block_key, _check_sizes
from ._network import IterativeMap

__all__ = ["add_blocks", "mlp_continuum"]


def _fraction(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    p = float(value)
    if not 0.0 <= p <= 1.0:  # NaN fails this too
        raise ValueError(f"{name} must be in [0, 1], got {p}")
    return p


def _thin(blocks, remove, gen):
    """Zero ``remove`` entries chosen uniformly among the nonzeros of ``blocks``."""
    keys = list(blocks)
    coo = {k: sp.coo_matrix(to_numpy(blocks[k]) if not is_sparse(blocks[k]) else blocks[k])
           for k in keys}
    for c in coo.values():
        c.sum_duplicates()
        c.eliminate_zeros()
    counts = np.array([coo[k].nnz for k in keys], dtype=np.int64)
    total = int(counts.sum())
    if remove > total:
        raise ValueError(f"equal_params: the new blocks add {remove} weights, more than the "
                         f"{total} existing ones that could be removed to compensate")
    drop = np.sort(gen.choice(total, size=remove, replace=False))
    out = dict(blocks)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for k, c, lo, hi in zip(keys, coo.values(), starts[:-1], starts[1:]):
        mine = drop[(drop >= lo) & (drop < hi)] - lo
        if mine.size == 0:
            continue
        keep = np.ones(c.nnz, dtype=bool)
        keep[mine] = False
        out[k] = sp.csr_matrix((c.data[keep], (c.row[keep], c.col[keep])), shape=c.shape)
    return out


def add_blocks(base: Any, blocks: Mapping[tuple[int, int], float], *, rng: RngLike = None,
               scale: float = 1.0, equal_params: bool = False) -> IterativeMap | BlockMatrix:
    """Add random sparse blocks to a map's block matrix.

    Parameters
    ----------
    base : IterativeMap or BlockMatrix
        The starting point, e.g. ``IterativeMap.from_mlp(...)``.
    blocks : dict
        ``{(i, j): density}``: a new block from block ``j`` to block ``i``
        holding ``round(density * size_i * size_j)`` random entries (at least
        one for a positive density), drawn like ``BlockMatrix.from_pattern``'s
        ``"S=n"`` token (values ``N(0, scale**2 / k)``, ``k`` the mean number
        of entries per row). Blocks that are already stored, or rows of the
        input block (which the input overwrites), are refused.
    rng : int, Generator or None
        Source of positions and values.
    scale : float
        Gain of the new blocks.
    equal_params : bool
        Keep the number of nonzero weights (the trainable parameters) equal:
        remove as many entries, uniformly at random, from the existing blocks
        as the new blocks add.

    Returns
    -------
    IterativeMap or BlockMatrix
        The same kind as ``base``; a map keeps its bias, activations, input
        block, leak and function blocks.

    Raises
    ------
    TypeError
        ``base`` that is neither an IterativeMap nor a BlockMatrix, ``blocks``
        that is not a dict of ``(i, j)`` pairs, a density that is not a number.
    ValueError
        A block that does not exist, is already stored or is a row of the input
        block; a density outside [0, 1]; a map not on NumPy; ``equal_params``
        asked to remove more weights than the map has.

    Examples
    --------
    >>> from itermap import IterativeMap, add_blocks
    >>> rng = np.random.default_rng(0)
    >>> mlp = IterativeMap.from_mlp([rng.normal(size=(4, 3)), rng.normal(size=(2, 4))],
    ...                             activation="tanh")
    >>> rnn = add_blocks(mlp, {(1, 1): 0.5}, rng=1)
    >>> rnn.block_matrix.block_pattern().astype(int)
    array([[0, 0, 0],
           [1, 1, 0],
           [0, 1, 0]])
    >>> rnn.block_matrix.nnz - mlp.block_matrix.nnz
    8
    >>> add_blocks(mlp, {(1, 1): 0.5}, rng=1, equal_params=True).block_matrix.nnz
    20
    """
    if isinstance(base, IterativeMap):
        bm, input_block = base.block_matrix, base.input_block
    elif isinstance(base, BlockMatrix):
        bm, input_block = base, None
    else:
        raise TypeError(f"base must be an IterativeMap or a BlockMatrix, got "
                        f"{type(base).__name__}")
    if not isinstance(blocks, dict):
        raise TypeError(f"blocks must be a dict {{(i, j): density}}, got {type(blocks).__name__}")
    scale = check_real("scale", scale)
    equal_params = check_bool("equal_params", equal_params)
    if bm.backend != "numpy":
        raise ValueError("add_blocks works on NumPy maps; build on the CPU, then move with .to()")
    gen = as_rng(rng)
    sizes = bm.sizes
    n = len(sizes)
    stored = bm.blocks
    new = {}
    for key, density in blocks.items():
        i, j = _block_key("blocks", key)
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"blocks: block ({i}, {j}) does not exist: the map has {n} x {n} "
                             f"blocks")
        if (i, j) in stored:
            raise ValueError(f"blocks: block ({i}, {j}) is already stored; add_blocks only "
                             f"adds new ones")
        if i == input_block:
            raise ValueError(f"blocks: block ({i}, {j}) is a row of the input block "
                             f"{input_block}, which the input overwrites: it would have no "
                             f"effect")
        p = _fraction(density, f"blocks: density of block ({i}, {j})")
        m_i, n_j = sizes[i], sizes[j]
        count = max(int(round(p * m_i * n_j)), 1 if p > 0 else 0)
        if count:
            new[(i, j)] = _random_block(m_i, n_j, count, gen, scale)
    added = sum(b.nnz for b in new.values())
    merged = dict(stored)
    if equal_params and added:
        merged = _thin(merged, added, gen)
    merged.update(new)
    out = BlockMatrix(sizes, merged)
    if isinstance(base, BlockMatrix):
        return out
    return IterativeMap(out, base.bias, list(base.activations), input_block=input_block,
                        functions=base.functions, leak=base._leak)


def mlp_continuum(sizes: Sequence[int], *, recurrent: float = 0.0, skip: float = 0.0,
                  equal_params: bool = False, activation: str = "tanh",
                  output_activation: str = "identity", rng: RngLike = None,
                  scale: float = 1.0) -> IterativeMap:
    """A random MLP map with recurrent and skip blocks at given densities.

    ``recurrent = skip = 0`` is a plain MLP; a positive ``recurrent`` closes loops.
    ``equal_params=True`` thins the layer weights to the plain MLP's nonzero count.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_in, n_1, ..., n_L]``: the input and the width of every layer.
    recurrent : float in [0, 1]
        Density of the diagonal blocks ``(l, l)``, ``l = 1 .. L``.
    skip : float in [0, 1]
        Density of the skip blocks ``(i, j)`` with ``i >= j + 2`` (from the
        input or an earlier layer to a later layer).
    equal_params : bool
        Keep the nonzero count equal to the plain MLP's.
    activation, output_activation : str
        Hidden and output nonlinearities.
    rng : int, Generator or None
        Source of every weight.
    scale : float
        Gain of every block: layer weights ``N(0, scale**2 / n_in_layer)``.

    Returns
    -------
    IterativeMap
        Input block 0, block ``l`` the output of layer ``l``.

    Raises
    ------
    ValueError
        ``sizes`` with fewer than two entries, a density outside [0, 1], and
        whatever :func:`add_blocks` refuses.
    TypeError
        Sizes or densities of the wrong type.

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).

    Examples
    --------
    >>> from itermap import mlp_continuum
    >>> mlp = mlp_continuum([3, 5, 5, 2], rng=0)
    >>> mlp.block_matrix.nnz
    50
    >>> hybrid = mlp_continuum([3, 5, 5, 2], recurrent=0.2, equal_params=True, rng=0)
    >>> hybrid.block_matrix.nnz, bool(hybrid.block_matrix.block_pattern()[1, 1])
    (50, True)
    """
    sizes = list(_check_sizes(sizes, "sizes"))
    if len(sizes) < 2:
        raise ValueError(f"sizes needs the input and at least one layer, got {sizes}")
    recurrent = _fraction(recurrent, "recurrent")
    skip = _fraction(skip, "skip")
    scale = check_real("scale", scale)
    L = len(sizes) - 1
    blocks = list(zip(sizes[:-1], sizes[1:])) + [(n, n) for n in sizes[1:] if recurrent > 0]
    blocks += [(sizes[j], sizes[i]) for j in range(L + 1) for i in range(j + 2, L + 1) if skip > 0]
    check_memory("sizes", 2 * 8 * sum(a * b for a, b in blocks), "the weight blocks")
    gen = as_rng(rng)
    weights = [gen.normal(0.0, float(scale) / np.sqrt(n_in), size=(n_out, n_in))
               for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    mlp = IterativeMap.from_mlp(weights, activation=activation,
                                output_activation=output_activation)
    extra = {}
    if recurrent > 0:
        extra.update({(l, l): recurrent for l in range(1, L + 1)})
    if skip > 0:
        extra.update({(i, j): skip for j in range(L + 1) for i in range(j + 2, L + 1)})
    if not extra:
        return mlp
    out = add_blocks(mlp, extra, rng=gen, scale=scale, equal_params=equal_params)
    return cast(IterativeMap, out)  # a map in, a map out
