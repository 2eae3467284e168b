"""Checks and sparse helpers shared by :mod:`itermap._maps._network` and its derivatives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._core._backend import is_sparse, namespace, to_numpy
from .._core._checks import check_real, no_half, plain_array
from ._blocks import BlockMatrix


def _check_leak(leak: Any, n_blocks: int) -> tuple[float, ...]:
    """Leak rates, one per block, each finite and in (0, 1]; errors name ``leak``.

    A leaky network steps ``x -> (1 - a) x + a f(W x + b)`` block by block, ``a`` the
    block's rate; 1 is no leak.

    Parameters
    ----------
    leak : float or sequence of float
        One rate for every block, or one per block (a list, tuple or 1-d array).
    n_blocks : int
        The network's number of blocks.

    Returns
    -------
    tuple of float
        ``n_blocks`` rates.

    Raises
    ------
    TypeError
        A string, a bool, or a rate that is not a real number.
    ValueError
        A rate outside (0, 1] or not finite, or as many rates as there are not blocks.

    Examples
    --------
    >>> from itermap.checks import check_leak
    >>> check_leak(0.5, 3)
    (0.5, 0.5, 0.5)
    >>> check_leak([1.0, 0.0], 2)
    Traceback (most recent call last):
    ...
    ValueError: leak must lie in (0, 1], got 0.0
    """
    if isinstance(leak, str | bytes) or isinstance(leak, bool):
        raise TypeError(f"leak must be a real number or one per block, got {leak!r}")
    if hasattr(leak, "__cuda_array_interface__"):
        leak = to_numpy(leak)
    if isinstance(leak, np.ndarray) and leak.ndim == 0:
        leak = leak.item()
    if isinstance(leak, Sequence) or isinstance(leak, np.ndarray):
        rates = list(leak)
        if len(rates) != n_blocks:
            raise ValueError(f"leak: got {len(rates)} leak rates for {n_blocks} blocks (give one "
                             "rate, or one per block)")
    else:
        rates = [leak] * n_blocks
    out = []
    for r in rates:
        r = check_real("leak", r)
        if not 0.0 < r <= 1.0:
            raise ValueError(f"leak must lie in (0, 1], got {r}")
        out.append(r)
    return tuple(out)


def _arrays_equal(a, b) -> bool:
    """Same storage (dense or sparse), shape, dtype and values."""
    if is_sparse(a) != is_sparse(b) or tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
        return False
    if is_sparse(a):
        return (a != b).nnz == 0
    return bool(namespace(a).all(a == b))


def _check_matrix(name, w):
    """``w`` as a real, finite, non-empty 2-D array or sparse matrix; errors name ``name``."""
    if w is None or isinstance(w, str | bytes):
        raise TypeError(f"{name} must be a 2-D array or a sparse matrix, got {type(w).__name__}")
    w = no_half(name, plain_array(name, w))
    if is_sparse(w) and w.format in ("lil", "dok"):  # no array of values to check: as CSR
        w = w.tocsr()
    if not is_sparse(w) and not hasattr(w, "shape"):
        try:
            w = np.asarray(w, dtype=float)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a real 2-D array ({err})") from None
    if len(w.shape) != 2 or 0 in w.shape:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got shape {tuple(w.shape)}")
    return _check_values(name, w)


def _check_values(name, a):
    """``a`` (dense or sparse) if its entries are real and finite; errors name ``name``."""
    data = a.data if is_sparse(a) else a
    xp = namespace(data)
    if not xp.isdtype(data.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must be real, got dtype {data.dtype}")
    if not bool(xp.all(xp.isfinite(xp.astype(data, xp.float64)))):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _split(W, sizes):
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    if len(sizes) == 1:
        return BlockMatrix(sizes, {(0, 0): W})
    if is_sparse(W):
        W = W.tocsr()
    n = len(sizes)
    return BlockMatrix(sizes, {(i, j): W[off[i]:off[i + 1], off[j]:off[j + 1]]
                               for i in range(n) for j in range(n)})


def _keep_mask(n, s, xp, dtype):
    keep = np.ones(n)
    keep[s] = 0.0
    return xp.astype(xp.asarray(keep), dtype)


def _zero_rows(W, s, xp):
    return W * _keep_mask(W.shape[0], s, xp, W.dtype)[:, None]


def _zero_rows_cols(W, s, xp):
    keep = _keep_mask(W.shape[0], s, xp, W.dtype)
    return W * keep[:, None] * keep[None, :]  # stays C-ordered, unlike a transpose trick


def _csr_vector(S, x):
    """``S @ x`` for a SciPy CSR ``S`` and a 1-D NumPy ``x``: SciPy's own kernel without
    its per-call dispatch (a step of a small reservoir is mostly that dispatch)."""
    kernel = _matvec_kernel()
    if kernel is None or not isinstance(x, np.ndarray) or x.dtype != S.dtype or \
            S.dtype != np.float64 or not x.flags.c_contiguous or \
            not isinstance(S, sp.csr_matrix | sp.csr_array) or x.shape[0] != S.shape[1]:
        return S @ x
    y = np.zeros(S.shape[0], dtype=S.dtype)
    kernel(S.shape[0], S.shape[1], S.indptr, S.indices, S.data, x, y)
    return y


def _matvec_kernel():
    global _MATVEC
    if _MATVEC is False:
        try:
            from scipy.sparse._sparsetools import csr_matvec
        except ImportError:  # a SciPy without it: its public product
            csr_matvec = None
        _MATVEC = csr_matvec
    return _MATVEC


_MATVEC: Any = False  # scipy's csr_matvec once looked up (None: not available)


def _rows_times(X, ST):
    """``X @ ST`` for a dense (n,) or (B, n) ``X`` and a sparse CSR ``ST``."""
    return ST.T @ X if X.ndim == 1 else X @ ST


def _add(a, b, xp):
    """``a + b``, in place on NumPy arrays that ``a`` owns (a fresh product)."""
    if isinstance(a, np.ndarray) and a.flags.owndata and (
            a.shape == b.shape or a.shape == np.broadcast_shapes(a.shape, b.shape)) and \
            a.dtype == np.result_type(a, b):
        return np.add(a, b, out=a)
    return a + b


def _topological_order(pattern, input_block):
    """Blocks in an order where every non-input predecessor comes first."""
    n = pattern.shape[0]
    preds = {i: [j for j in range(n) if pattern[i, j] and j != input_block and i != input_block]
             for i in range(n)}
    order, done = [], set() if input_block is None else {input_block}
    while len(order) < n - (input_block is not None):
        ready = [i for i in range(n) if i not in done and all(j in done for j in preds[i])]
        if not ready:
            return None
        order += ready
        done.update(ready)
    return order


def _settle_depth(pattern, input_block):
    """Longest chain of blocks (counting blocks), ignoring edges into the input block."""
    order = _topological_order(pattern, input_block)
    if order is None:
        return None
    n = pattern.shape[0]
    level = {}
    for i in order:
        preds = [level[j] for j in range(n) if pattern[i, j] and j != input_block]
        level[i] = 1 + max(preds, default=0)
    return max(level.values(), default=1)


def function_output(y, want, key, g, what="__call__"):
    """What block function ``g`` at ``key`` returned, if of shape ``want``: another shape
    would broadcast into its block unseen (a user's function returning one column)."""
    if tuple(y.shape) != tuple(want):
        raise ValueError(f"functions[{key}] ({type(g).__name__}): its {what} returned shape "
                         f"{tuple(y.shape)}, expected {tuple(want)}")
    return y
