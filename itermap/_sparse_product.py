"""``S @ V`` for a SciPy CSR matrix and a dense block of columns, on all cores.

SciPy's CSR product runs on one core; it releases the GIL, so row blocks of
``S`` multiplied in threads run in parallel (N = 20000, 4e5 nonzeros, 11
columns on 2 cores: 1.0 ms against 1.7 ms). The row blocks are views of
``S``'s arrays (only their ``indptr`` is copied), made once per matrix.
"""

from __future__ import annotations

import weakref

import numpy as np

from ._threads import ProcessLocalPool, n_threads

__all__ = ["accumulate", "csr_times", "pool", "uses_thread_pool"]

# a thread pays for its handoff from about this many multiply-adds (nnz * columns)
_MIN_WORK_PER_THREAD = 1 << 20
pool = ProcessLocalPool("itermap-spmm")  # pool(): the executor itermap's products share
_PARTS: dict[int, tuple] = {}  # id(S) -> (weakref to S, nnz, parts, blocks); S is unhashable


def _parts(nnz: int, columns: int) -> int:
    """Threads a product of ``nnz`` nonzeros by ``columns`` columns is split over."""
    return min(n_threads(), nnz * max(1, columns) // _MIN_WORK_PER_THREAD)


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


def uses_thread_pool(map_, columns: int = 1) -> bool:
    """Whether ``map_``'s tangent products with ``columns`` vectors run on this pool.

    True for an :class:`~itermap.IterativeMap` with sparse weights on NumPy whose
    product is large enough to split; a loop around it does well to hold BLAS to
    one thread, so that BLAS threads spinning after its own small products do not
    compete with the pool for the cores.

    Examples
    --------
    >>> import itermap
    >>> uses_thread_pool(itermap.random_rnn(20000, density=1e-3, rng=0), columns=10)
    True
    >>> uses_thread_pool(itermap.random_rnn(50, rng=0))
    False
    """
    from ._network import IterativeMap

    if not isinstance(map_, IterativeMap) or map_._kind == "dense" or map_.backend != "numpy":
        return False
    return _parts(map_.block_matrix.nnz, columns + 1) >= 2  # + 1: the state's column
