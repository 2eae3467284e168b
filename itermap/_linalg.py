"""Batched dense solves on NumPy, split across CPU threads.

``np.linalg.solve`` on a stack of small matrices loops over them on one core
(LAPACK is called once per matrix). NumPy releases the GIL around that loop,
so parts of the batch solved in threads run in parallel. While they do, the
BLAS library is held to one thread: OpenBLAS threads that spin after a
multithreaded call would otherwise compete with them for the cores.
"""

from __future__ import annotations

import contextlib

import numpy as np

from itermap._threads import ProcessLocalPool, n_threads

__all__ = ["batched_eigvals", "batched_solve", "blas_single_threaded", "damped_normal_solve",
           "n_parts"]

# a thread pays for its handoff from about this much work (rows * dim**3): 32 matrices
# of 48 x 48, 108 of 32 x 32 (measured on 2 cores: smaller parts ran slower split)
_MIN_WORK_PER_THREAD = 32 * 48 ** 3


def _n_threads() -> int:
    return n_threads()


_pool = ProcessLocalPool("itermap-lapack")  # _pool(): made anew in a forked child


def n_parts(n_rows: int, dim: int) -> int:
    """Into how many parts (threads) a batch of ``n_rows`` ``dim x dim`` solves is split."""
    return max(1, min(_n_threads(), n_rows, n_rows * dim ** 3 // _MIN_WORK_PER_THREAD))


def batched_solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A[i]^{-1} b[i]`` for ``A`` of shape (k, n, n) and ``b`` of shape (k, n).

    Raises ``numpy.linalg.LinAlgError`` when any matrix is singular, as
    ``np.linalg.solve`` does.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.stack([2.0 * np.eye(3), 4.0 * np.eye(3)])
    >>> batched_solve(A, np.ones((2, 3)))
    array([[0.5 , 0.5 , 0.5 ],
           [0.25, 0.25, 0.25]])
    """
    return _split_rows(lambda lo, hi: np.linalg.solve(A[lo:hi], b[lo:hi, :, None])[..., 0],
                       A.shape[0], A.shape[-1])


def _split_rows(solve, k_rows: int, dim: int) -> np.ndarray:
    """``solve(lo, hi)`` over ``n_parts`` row ranges in the pool, concatenated.

    Every part is collected before a ``LinAlgError`` is raised, so none is left
    running.
    """
    parts = n_parts(k_rows, dim)
    if parts < 2:
        return solve(0, k_rows)
    cuts = np.linspace(0, k_rows, parts + 1).astype(int)
    return np.concatenate(_pool.run_parts(lambda span: solve(*span), zip(cuts[:-1], cuts[1:])))


def _damped_normal_part(A, lam, b):
    AtA = np.matmul(np.swapaxes(A, 1, 2), A)
    n = A.shape[-1]
    AtA.reshape(AtA.shape[0], n * n)[:, ::n + 1] += lam[:, None]
    return np.linalg.solve(AtA, b[..., None])[..., 0]


def damped_normal_solve(A: np.ndarray, lam: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(A[i]^T A[i] + lam[i] I)^{-1} b[i]`` for ``A`` of shape (k, n, n), parts in threads.

    The products ``A^T A`` (the larger cost) are formed in the threads too.
    Raises ``numpy.linalg.LinAlgError`` when any system is singular.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.stack([np.eye(2), 2.0 * np.eye(2)])
    >>> damped_normal_solve(A, np.array([1.0, 0.0]), np.ones((2, 2)))
    array([[0.5 , 0.5 ],
           [0.25, 0.25]])
    """
    lam = np.asarray(lam, dtype=A.dtype)
    return _split_rows(lambda lo, hi: _damped_normal_part(A[lo:hi], lam[lo:hi], b[lo:hi]),
                       A.shape[0], A.shape[-1])


def batched_eigvals(J: np.ndarray) -> np.ndarray:
    """``np.linalg.eigvals`` of a stack ``J`` of shape (k, n, n), parts in threads.

    Call it with BLAS held to one thread (:func:`blas_single_threaded`) where
    the stack is split: LAPACK's eigensolver makes many small BLAS calls, and
    OpenBLAS threads spinning between them cost more than they bring.

    Examples
    --------
    >>> import numpy as np
    >>> batched_eigvals(np.stack([np.diag([1.0, 2.0]), np.diag([3.0, 4.0])]))
    array([[1.+0.j, 2.+0.j],
           [3.+0.j, 4.+0.j]])
    """
    return _split_rows(
        lambda lo, hi: np.asarray(np.linalg.eigvals(J[lo:hi]), dtype=np.complex128),
        J.shape[0], J.shape[-1])


def blas_single_threaded(n_rows: int, dim: int):
    """A context holding BLAS to one thread while ``batched_solve`` splits such batches.

    A no-op where batches of ``n_rows`` ``dim x dim`` solves are not split, or
    without threadpoolctl.
    """
    if n_parts(n_rows, dim) < 2:
        return contextlib.nullcontext()
    from itermap._threads import blas_limited

    return blas_limited(1)
