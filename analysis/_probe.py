"""Representing trained networks: probe responses, weight statistics, canonical unit order
(Herrmann, Faccio and Schmidhuber, arXiv 2403.11998)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

import itermap
from itermap.backends import is_sparse, to_backend, to_numpy

from ._checks import block_list, check_int, check_memory, check_real_array, check_states, is_network

__all__ = ["WeightStatistics", "canonical_permutation", "permute_units", "probe",
           "weight_statistics"]


def _iterative_map(map):
    if not is_network(map):
        raise TypeError(f"map must be an IterativeMap, got {type(map).__name__}")
    return map


def probe(map: Any, probes: Any, *, block: int = -1, x0: Any = None) -> Any:
    """The stacked responses of a driven map to a fixed set of probe sequences.

    Each probe runs from the same start with input ``probes[p, t]`` at step ``t``;
    block ``block`` of each new state is recorded.

    Parameters
    ----------
    map : Map
        A driven map: an input block (an IterativeMap's ``input_block``) or an input
        outside the state (a GRU, a state-space layer).
    probes : array of shape (P, T, n_in) or (T, n_in)
        ``P`` probe sequences of ``T`` inputs (one sequence without the first axis).
    block : int
        The block read at every step; default the last (an LSTM's is its ``c``: its
        output ``h`` is block ``-2``).
    x0 : array of shape (dim,), optional
        The start of every probe; the zero state when omitted.

    Returns
    -------
    ndarray of shape (P, T, sizes[block])
        ``out[p, t]``: the block after step ``t + 1`` of probe ``p`` (NumPy).

    Raises
    ------
    ValueError
        Probes of the wrong shape or with NaN, an autonomous map, a block that
        does not exist.
    TypeError
        Something that is not a map, complex probes.

    Notes
    -----
    For a linear map (blocks ``[u; h; y]``) the responses to unit impulses are the
    Markov parameters ``C A^t B``.

    References
    ----------
    .. [1] V. Herrmann, F. Faccio, J. Schmidhuber, "Learning useful representations
       of recurrent neural network weight matrices", ICML (2024), arXiv:2403.11998.
    .. [2] B. L. Ho, R. E. Kalman, "Effective construction of linear state-variable
       models from input/output functions", Regelungstechnik 14, 545 (1966).

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import probe
    >>> m = itermap.IterativeMap.from_rnn(np.array([[0.5]]), np.array([[1.0]]),
    ...                                   activation="identity")
    >>> probe(m, np.array([[1.0], [0.0], [0.0]]))[0, :, 0]   # 1, 0.5, 0.25
    array([1.  , 0.5 , 0.25])
    """
    m = itermap.as_map(map)
    n_in = m.input_size  # an input block's size, or a GRU's or state-space layer's input
    if n_in == 0:
        raise ValueError("map must be driven (input_size > 0) to be probed")
    block = check_int("block", block)
    if not -len(m.sizes) <= block < len(m.sizes):
        raise ValueError(f"block {block} does not exist: the map has {len(m.sizes)} blocks")
    U = check_real_array("probes", probes)
    U = U[None] if U.ndim == 2 else U
    if U.ndim != 3 or U.shape[-1] != n_in or U.shape[0] == 0 or U.shape[1] == 0:
        raise ValueError(f"probes must have shape (P, T, {n_in}) or (T, {n_in}) with P, T "
                         f">= 1, got {tuple(np.shape(probes))}")
    if x0 is None:
        x = m.zeros(U.shape[0])
    else:
        x0 = check_states("x0", x0, ndim=1)
        if x0.shape != (m.dim,):
            raise ValueError(f"x0 must have shape ({m.dim},), got {x0.shape}")
        x = np.repeat(x0[None], U.shape[0], axis=0)
    backend = getattr(m, "backend", "numpy")
    if backend != "numpy":  # the probes go where the map's weights are
        U, x = to_backend(U, backend), to_backend(np.asarray(to_numpy(x)), backend)
    out = []
    for t in range(U.shape[1]):
        x = m.step(x, U[:, t])
        out.append(m.read_block(x, block))
    return np.stack([np.asarray(to_numpy(o)) for o in out], axis=1)


STAT_NAMES = ("nnz", "mean", "std", "min", "q25", "median", "q75", "max", "mean_abs", "norm")


@itermap.saveable
@dataclass(frozen=True)
class WeightStatistics(itermap.Result):
    """Per-block statistics of a map's weights (see :func:`weight_statistics`).

    Attributes
    ----------
    keys : tuple of (int, int)
        The blocks, in key order.
    names : tuple of str
        The statistics: ``nnz``, ``mean``, ``std``, ``min``, ``q25``, ``median``,
        ``q75``, ``max``, ``mean_abs``, ``norm`` (Frobenius).
    values : ndarray of shape (len(keys), len(names))
        ``values[b, s]``: statistic ``s`` of block ``keys[b]``.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import weight_statistics
    >>> s = weight_statistics(itermap.IterativeMap(np.array([[1.0, -3.0], [0.0, 2.0]])))
    >>> dict(zip(s.names, s.values[0]))["median"], s.vector.shape
    (np.float64(1.0), (10,))
    """

    _schema: ClassVar[dict[str, str]] = {
        "keys": "tuple[tuple[int]]", "names": "tuple[str]", "values": "float[B, S]"}

    keys: tuple
    names: tuple
    values: np.ndarray

    @property
    def vector(self) -> np.ndarray:
        """All statistics as one flat vector (blocks in key order)."""
        return self.values.reshape(-1)


def _nonzeros(block):
    if is_sparse(block):
        c = sp.csr_matrix(to_numpy(block))
        data = c.data
    else:
        data = np.asarray(to_numpy(block)).ravel()
    return np.asarray(data[data != 0], dtype=float)


def weight_statistics(map: Any) -> WeightStatistics:
    """Per-block statistics of the nonzero weights (invariant under unit permutations).

    Parameters
    ----------
    map : IterativeMap
        The map. Blocks in the input block's rows (which the input overwrites)
        are left out.

    Returns
    -------
    WeightStatistics
        One row per stored block, of its nonzero entries.

    Raises
    ------
    TypeError
        Something that is not an IterativeMap.

    References
    ----------
    .. [1] V. Herrmann, F. Faccio, J. Schmidhuber, arXiv:2403.11998 (2024).
    .. [2] T. Unterthiner, D. Keysers, S. Gelly, O. Bousquet, I. Tolstikhin,
       "Predicting neural network accuracy from weights", arXiv:2002.11448 (2020).

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import weight_statistics
    >>> m = itermap.IterativeMap.from_mlp([np.ones((3, 2)), np.full((1, 3), -2.0)])
    >>> s = weight_statistics(m)
    >>> s.keys, s.values[:, s.names.index("mean")]
    (((1, 0), (2, 1)), array([ 1., -2.]))
    """
    m = _iterative_map(map)
    keys, rows = [], []
    for key, b in m.block_matrix.blocks.items():
        if key[0] == m.input_block:
            continue
        v = _nonzeros(b)
        q = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0])
        rows.append([v.size, v.mean(), v.std(), q[0], q[1], q[2], q[3], q[4],
                     np.abs(v).mean(), np.sqrt(np.sum(v * v))])
        keys.append(key)
    values = np.asarray(rows, dtype=float).reshape(len(keys), len(STAT_NAMES))
    return WeightStatistics(tuple(keys), STAT_NAMES, values)


def _check_permutation(m, perm):
    p = np.asarray(perm)
    if p.dtype.kind not in "iu" or p.shape != (m.dim,):
        raise ValueError(f"perm must be an integer array of shape ({m.dim},), got "
                         f"{p.dtype} {p.shape}")
    if not np.array_equal(np.sort(p), np.arange(m.dim)):
        raise ValueError("perm must be a permutation of 0 .. dim - 1")
    off = m.block_matrix.offsets
    fixed = _function_blocks(m)
    for b in range(len(m.sizes)):
        part = p[off[b]:off[b + 1]]
        if part.size and (part.min() < off[b] or part.max() >= off[b + 1]):
            raise ValueError(f"perm must keep every unit in its block; it moves units of "
                             f"block {b} out of it")
        if b in fixed and not np.array_equal(part, np.arange(off[b], off[b + 1])):
            raise ValueError(f"perm reorders block {b}, which a function block reads or "
                             f"writes: a function's units cannot be permuted")
    return p.astype(np.int64)


def _function_blocks(m) -> set:
    """The blocks a function block of ``m`` reads or writes (their unit order is fixed)."""
    return {b for key in (getattr(m, "functions", None) or {}) for b in key}


def permute_units(map: Any, perm: Any) -> itermap.IterativeMap:
    """The map with its units reordered: ``W -> P W P^T``, ``b -> P b``.

    Parameters
    ----------
    map : IterativeMap
        The map.
    perm : array of int, shape (dim,)
        New unit ``k`` is old unit ``perm[k]``; units stay in their blocks.

    Returns
    -------
    IterativeMap
        The permuted map (and ``trainable`` masks), with the same leak and function blocks.

    Raises
    ------
    ValueError
        ``perm`` not a permutation, or one that moves units between blocks or reorders
        a block that a function block reads or writes.
    TypeError
        Something that is not an IterativeMap.

    References
    ----------
    .. [1] R. Hecht-Nielsen, "On the algebraic structure of feedforward network
       weight spaces", in Advanced Neural Computers (1990).

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import permute_units
    >>> m = itermap.IterativeMap(np.array([[0.0, 1.0], [2.0, 0.0]]))
    >>> permute_units(m, [1, 0]).block_matrix.to_dense()
    array([[0., 2.],
           [1., 0.]])
    """
    m = _iterative_map(map)
    p = _check_permutation(m, perm)
    bm = m.block_matrix
    off = bm.offsets
    local = [p[off[b]:off[b + 1]] - off[b] for b in range(len(m.sizes))]

    def reorder(key, a):
        i, j = key
        if is_sparse(a):
            return sp.csr_matrix(to_numpy(a))[local[i]][:, local[j]]
        return np.asarray(to_numpy(a))[np.ix_(local[i], local[j])]

    blocks = {k: reorder(k, b) for k, b in bm.blocks.items()}
    own = bm._trainable
    masks = None if own is None else {k: reorder(k, v) for k, v in own.items()}
    bias = None if m.bias is None else np.asarray(to_numpy(m.bias))[p]
    out = itermap.IterativeMap(itermap.BlockMatrix(m.sizes, blocks, trainable=masks), bias,
                               list(m.activations), input_block=m.input_block,
                               functions=m.functions, leak=m.leak)
    return out if m.backend == "numpy" else out.to(m.backend)


def canonical_permutation(map: Any, *, blocks: Sequence[int] | None = None) -> np.ndarray:
    """The order of hidden units that makes maps differing by a permutation identical.

    Units are sorted within each chosen block by a signature no permutation changes
    (bias, self-weight, and per block the sorted weights in and out).

    Parameters
    ----------
    map : IterativeMap
        The map.
    blocks : list of int, optional
        The blocks whose units are reordered. Default: every block but the
        input block, the last (readout) block and the blocks a function block reads
        or writes; for a one-block map, that block.

    Returns
    -------
    ndarray of int, shape (dim,)
        A permutation for :func:`permute_units`; identity outside ``blocks``.

    Raises
    ------
    ValueError
        Blocks that do not exist or that a function block reads or writes, a map whose
        dense weights would not fit in memory.
    TypeError
        Something that is not an IterativeMap.

    Notes
    -----
    Unique when no two units of a block share a signature; tied units keep their
    order. ``O(dim^2 log dim)`` on the dense weights.

    References
    ----------
    .. [1] V. Herrmann, F. Faccio, J. Schmidhuber, arXiv:2403.11998 (2024).
    .. [2] R. Hecht-Nielsen (1990); see :func:`permute_units`.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import canonical_permutation, permute_units
    >>> m = itermap.random_rnn(4, rng=0)
    >>> m2 = permute_units(m, [2, 0, 3, 1])
    >>> c, c2 = canonical_permutation(m), canonical_permutation(m2)
    >>> permute_units(m, c) == permute_units(m2, c2)
    True
    """
    m = _iterative_map(map)
    n = len(m.sizes)
    fixed = _function_blocks(m)
    chosen = block_list(blocks, n) if blocks is not None else [
        b for b in range(n) if b != m.input_block and (b != n - 1 or n == 1) and b not in fixed]
    if fixed & set(chosen):
        raise ValueError(f"blocks: block {min(fixed & set(chosen))} is read or written by a "
                         f"function block, whose units cannot be reordered")
    check_memory("map", 8 * m.dim ** 2, "the dense weights")
    W = np.asarray(to_numpy(m.block_matrix.to_dense()), dtype=float)
    bias = np.zeros(m.dim) if m.bias is None else np.asarray(to_numpy(m.bias), dtype=float)
    off = m.block_matrix.offsets
    perm = np.arange(m.dim)
    for b in chosen:
        units = np.arange(off[b], off[b + 1])
        feats = [bias[units], W[units, units]]
        for c in range(len(m.sizes)):
            cols = np.arange(off[c], off[c + 1])
            into = W[np.ix_(units, cols)].copy()
            out = W[np.ix_(cols, units)].T.copy()
            if c == b:  # the self-weight is a feature of its own
                idx = np.arange(units.size)
                into[idx, idx] = np.inf
                out[idx, idx] = np.inf
            feats += [np.sort(into, axis=1), np.sort(out, axis=1)]
        F = np.column_stack([f.reshape(units.size, -1) for f in feats])
        perm[units] = units[np.lexsort(F.T[::-1])]
    return perm
