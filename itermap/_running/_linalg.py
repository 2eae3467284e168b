"""Batched dense solves and eigenvalues on NumPy stacks.

Each is one NumPy call on the whole stack (LAPACK once per matrix, the GIL
released around the loop).
"""

from __future__ import annotations

import numpy as np

__all__ = ["batched_eigvals", "batched_solve", "damped_normal_solve"]


def batched_solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A[i]^{-1} b[i]`` for ``A`` of shape (k, n, n) and ``b`` of shape (k, n).

    Parameters
    ----------
    A : ndarray, shape (k, n, n)
        The matrices.
    b : ndarray, shape (k, n)
        One right-hand side per matrix.

    Returns
    -------
    ndarray, shape (k, n)
        The solutions.

    Raises
    ------
    numpy.linalg.LinAlgError
        When any matrix is singular, as ``np.linalg.solve`` does.

    Examples
    --------
    >>> A = np.stack([2.0 * np.eye(3), 4.0 * np.eye(3)])
    >>> batched_solve(A, np.ones((2, 3)))
    array([[0.5 , 0.5 , 0.5 ],
           [0.25, 0.25, 0.25]])
    """
    return np.linalg.solve(A, b[..., None])[..., 0]


def damped_normal_solve(A: np.ndarray, lam: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(A[i]^T A[i] + lam[i] I)^{-1} b[i]`` for ``A`` of shape (k, n, n).

    Parameters
    ----------
    A : ndarray, shape (k, n, n)
        The matrices.
    lam : ndarray, shape (k,)
        The damping of each system (Levenberg-Marquardt's ``lambda``).
    b : ndarray, shape (k, n)
        One right-hand side per system.

    Returns
    -------
    ndarray, shape (k, n)
        The solutions.

    Raises
    ------
    numpy.linalg.LinAlgError
        When any system is singular.

    Examples
    --------
    >>> A = np.stack([np.eye(2), 2.0 * np.eye(2)])
    >>> damped_normal_solve(A, np.array([1.0, 0.0]), np.ones((2, 2)))
    array([[0.5 , 0.5 ],
           [0.25, 0.25]])
    """
    lam = np.asarray(lam, dtype=A.dtype)
    AtA = np.matmul(np.swapaxes(A, 1, 2), A)
    n = A.shape[-1]
    AtA.reshape(AtA.shape[0], n * n)[:, ::n + 1] += lam[:, None]
    return np.linalg.solve(AtA, b[..., None])[..., 0]


def batched_eigvals(J: np.ndarray) -> np.ndarray:
    """``np.linalg.eigvals`` of a stack ``J`` of shape (k, n, n), as complex128.

    Parameters
    ----------
    J : ndarray, shape (k, n, n)
        The matrices.

    Returns
    -------
    ndarray of complex128, shape (k, n)
        The eigenvalues of each matrix, in LAPACK's order.

    Examples
    --------
    >>> batched_eigvals(np.stack([np.diag([1.0, 2.0]), np.diag([3.0, 4.0])]))
    array([[1.+0.j, 2.+0.j],
           [3.+0.j, 4.+0.j]])
    """
    return np.asarray(np.linalg.eigvals(J), dtype=np.complex128)
