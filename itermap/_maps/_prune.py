"""Magnitude pruning of an iterative map's weights (Darji, arXiv 2407.20601)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .._core._backend import is_sparse, to_numpy
from .._core._checks import check_real
from ._blocks import BlockMatrix, _block_key
from ._network import IterativeMap

__all__ = ["prune"]


def _prune_blocks(bm, input_block, blocks):
    """The keys to prune: ``blocks`` checked, or every stored block outside the input rows."""
    stored = bm.blocks
    if blocks is None:
        return [key for key in stored if key[0] != input_block]
    if isinstance(blocks, str | bytes) or not isinstance(blocks, Sequence):
        raise TypeError(f"blocks must be a list of block keys (i, j) or None, got {blocks!r}")
    keys = []
    for key in blocks:
        key = _block_key("blocks", key)
        if key not in stored:
            raise ValueError(f"blocks: block {key} is not a stored block of the map "
                             f"(stored: {sorted(stored)})")
        if key in keys:
            raise ValueError(f"blocks: block {key} is named twice")
        keys.append(key)
    if not keys:
        raise ValueError("blocks must name at least one block")
    return sorted(keys)


def _entries(block):
    """(rows, cols, values) of a block's nonzeros, row-major."""
    if is_sparse(block):
        c = sp.coo_matrix(to_numpy(block))
        c.sum_duplicates()  # also sorts row-major
        keep = c.data != 0
        return c.row[keep], c.col[keep], c.data[keep]
    a = np.asarray(to_numpy(block))
    r, c = np.nonzero(a)
    return r, c, a[r, c]


def prune(map: IterativeMap, *, fraction: float | None = None, threshold: float | None = None,
          blocks: Sequence[tuple[int, int]] | None = None) -> IterativeMap:
    """Magnitude pruning: zero the smallest weights and train only the survivors.

    The nonzeros of the chosen blocks are pooled (global magnitude pruning across
    them); to prune each block to its own fraction, call once per block.

    Parameters
    ----------
    map : IterativeMap
        The map to prune. It is not changed.
    fraction : float, optional
        Fraction ``f`` in [0, 1] of the pooled nonzeros to remove: exactly
        ``round((1 - f) * nnz)`` entries are kept (rounded half up), those of
        largest ``|w|``. Ties in ``|w|`` are broken by position: the entry earlier
        in (block key, row, column) order is kept, so the result is deterministic.
    threshold : float, optional
        Instead of ``fraction``: remove every entry with ``|w| < threshold`` (>= 0).
    blocks : list of (i, j), optional
        The stored blocks to prune. Default: every stored block except the rows
        of the input block (which the input overwrites).

    Returns
    -------
    IterativeMap
        The pruned blocks stored as scipy.sparse CSR holding the survivors; the
        block matrix carries a ``trainable`` mask that is the survivors within
        the old mask, so :func:`itermap.train` retrains only them and the pruned
        entries stay exactly zero. Other blocks, the bias, activations, input
        block, leak and function blocks are kept (a map on CuPy comes back on CuPy).

    Raises
    ------
    TypeError
        ``map`` not an IterativeMap, ``blocks`` not a list of pairs.
    ValueError
        Both or neither of ``fraction`` and ``threshold``, ``fraction`` outside
        [0, 1], a negative ``threshold``, a block that is not stored.

    References
    ----------
    .. [1] S. Han, J. Pool, J. Tran, W. Dally, "Learning both weights and
       connections for efficient neural networks", NeurIPS (2015).
    .. [2] S. Darji, "Exploring the sparsity of recurrent neural networks through
       random graphs", arXiv:2407.20601 (2024).

    Examples
    --------
    >>> import itermap
    >>> m = itermap.IterativeMap(np.array([[0.1, -0.4], [0.3, 0.2]]))
    >>> p = itermap.prune(m, fraction=0.5)
    >>> p.block_matrix.to_dense()
    array([[ 0. , -0.4],
           [ 0.3,  0. ]])
    >>> itermap.trainable_count(p) - p.dim   # weights left to train (the bias trains too)
    2
    """
    if not isinstance(map, IterativeMap):
        raise TypeError(f"map must be an IterativeMap, got {type(map).__name__}")
    if (fraction is None) == (threshold is None):
        raise ValueError("give exactly one of fraction and threshold")
    if fraction is not None:
        fraction = check_real("fraction", fraction, minimum=0.0, maximum=1.0)
    else:
        threshold = check_real("threshold", threshold, minimum=0.0)
    backend = map.backend
    bm = map.block_matrix
    keys = _prune_blocks(bm, map.input_block, blocks)
    parts = [_entries(bm.blocks[key]) for key in keys]
    mags = np.concatenate([np.abs(p[2]) for p in parts]) if parts else np.zeros(0)
    keep = np.zeros(mags.size, dtype=bool)
    if fraction is not None:
        n_keep = int(np.floor((1.0 - fraction) * mags.size + 0.5))
        # stable sort of -|w|: equal magnitudes stay in position order
        keep[np.argsort(-mags, kind="stable")[:n_keep]] = True
    else:
        keep = mags >= float(threshold or 0.0)
    new_blocks = {key: to_numpy(b) for key, b in bm.blocks.items()}
    old_masks = bm.trainable  # a new dict: its masks are replaced below
    masks = dict(old_masks)
    pos = 0
    for key, (r, c, v) in zip(keys, parts):
        k = keep[pos:pos + v.size]
        pos += v.size
        shape = (bm.sizes[key[0]], bm.sizes[key[1]])
        new_blocks[key] = sp.csr_matrix((v[k], (r[k], c[k])), shape=shape)
        old = old_masks.get(key)
        if old is not None:  # the survivors, where the old mask lets them train
            survive = sp.csr_matrix((np.ones(int(k.sum()), dtype=bool), (r[k], c[k])), shape=shape)
            old = sp.csr_matrix(old if is_sparse(old) else np.asarray(old))
            masks[key] = survive.multiply(old).astype(bool).tocsr()
    out = IterativeMap(BlockMatrix(bm.sizes, new_blocks, trainable=masks),
                       None if map.bias is None else to_numpy(map.bias),
                       list(map.activations), input_block=map.input_block,
                       functions=map.functions, leak=map.leak)
    return out if backend == "numpy" else out.to(backend)
