"""``S @ V`` for a SciPy CSR matrix and a dense block of columns, by row blocks on the pool
(SciPy's kernel releases the GIL) from ``OPTIONS.sparse_min_work`` per thread."""

from __future__ import annotations

import weakref

import numpy as np

from ._threads import OPTIONS, n_threads, pool

__all__ = ["accumulate", "csr_times", "splits"]

_PARTS: dict[int, tuple] = {}  # id(S) -> (weakref to S, nnz, parts, blocks); S is unhashable


def _parts(nnz: int, columns: int) -> int:
    """Threads a product of ``nnz`` nonzeros by ``columns`` columns is split over."""
    return min(n_threads(), nnz * max(1, columns) // max(1, OPTIONS.sparse_min_work))


def _row_blocks(S, parts: int):
    """``parts`` CSR views of consecutive rows of ``S`` with about equal nonzeros."""
    cached = _PARTS.get(id(S))
    if cached is not None and cached[0]() is S and cached[1:3] == (S.nnz, parts):
        return cached[3]
    import scipy.sparse as sp

    indptr = S.indptr
    cuts = np.searchsorted(indptr, np.linspace(0, S.nnz, parts + 1)[1:-1])
    edges = [0, *sorted(set(int(c) for c in cuts)), S.shape[0]]
    blocks = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        p0, p1 = int(indptr[lo]), int(indptr[hi])
        part = sp.csr_matrix((S.data[p0:p1], S.indices[p0:p1], indptr[lo:hi + 1] - p0),
                             shape=(hi - lo, S.shape[1]), copy=False)
        # the constructor's prune copies a slice of a larger array: set the views back
        part.data, part.indices = S.data[p0:p1], S.indices[p0:p1]
        blocks.append((lo, hi, part))
    key = id(S)

    def forget(_ref, key=key):
        _PARTS.pop(key, None)

    _PARTS[key] = (weakref.ref(S, forget), S.nnz, parts, blocks)
    return blocks


def _kernel():
    """SciPy's CSR-times-dense kernel ``Y += A X`` (private; None where it moved)."""
    try:
        from scipy.sparse._sparsetools import csr_matvecs
    except ImportError:
        return None
    return csr_matvecs


def accumulate(kernel, part, V: np.ndarray, out: np.ndarray) -> None:
    """``out = part @ V`` in place through SciPy's ``kernel`` (``V`` and ``out``
    C-ordered, of one dtype with ``part``)."""
    out.fill(0.0)  # the kernel adds to out
    kernel(part.shape[0], part.shape[1], V.shape[1], part.indptr, part.indices, part.data,
           V.reshape(-1), out.reshape(-1))


def csr_times(S, V: np.ndarray) -> np.ndarray:
    """``S @ V`` for a SciPy CSR matrix ``S`` (m, n) and a NumPy array ``V`` (n, c).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> S = sp.random(50, 40, density=0.2, format="csr", random_state=0)
    >>> V = np.ones((40, 3))
    >>> bool(np.allclose(csr_times(S, V), S.toarray() @ V))
    True
    """
    parts = _parts(S.nnz, V.shape[-1])
    if parts < 2 or V.ndim != 2 or S.format != "csr":
        return S @ V
    blocks = _row_blocks(S, parts)
    dtype = np.result_type(S.dtype, V.dtype)
    same = S.dtype == dtype == V.dtype and S.indptr.dtype == S.indices.dtype
    kernel = _kernel() if same else None
    if kernel is not None:
        V = np.ascontiguousarray(V)
    out = np.empty((S.shape[0], V.shape[1]), dtype=dtype)

    def run(block):
        lo, hi, part = block
        if kernel is None:
            out[lo:hi] = part @ V
        else:  # into the rows of out in place: no temporary, no copy
            accumulate(kernel, part, V, out[lo:hi])

    pool.run_parts(run, blocks)
    return out


def splits(nnz: int, columns: int = 1) -> bool:
    """Whether a CSR product with ``nnz`` nonzeros by ``columns`` columns runs on the pool.

    Examples
    --------
    >>> from itermap._running._threads import n_threads
    >>> splits(400_000, 11) == (n_threads() > 1)
    True
    >>> splits(1_000, 1)
    False
    """
    return _parts(nnz, columns) >= 2
