"""SciPy's ``dsyrk``, ``dpotrf`` and ``dtrsm`` through its Cython API and ctypes, which
releases the GIL, so that factorisations in threads run in parallel. In place on
C-ordered float64 rows: ``Y`` (n, k) is Fortran's ``k x n`` matrix ``Y^T``.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

__all__ = ["available", "gram_upper", "cholesky_upper", "solve_upper_transposed"]

_c = ctypes.c_char_p
_int = ctypes.POINTER(ctypes.c_int)
_ptr = ctypes.c_void_p


def _function(module, name, argtypes):
    capsule = module.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object,
                                                                  ctypes.c_char_p]
    address = get_pointer(capsule, get_name(capsule))
    return ctypes.CFUNCTYPE(None, *argtypes)(address)


@functools.lru_cache(maxsize=1)
def _routines():
    """``(dsyrk, dpotrf, dtrsm)`` as ctypes functions, or None where SciPy lacks them."""
    try:
        from scipy.linalg import cython_blas, cython_lapack

        dsyrk = _function(cython_blas, "dsyrk", [_c, _c, _int, _int, _ptr, _ptr, _int, _ptr,
                                                  _ptr, _int])
        dtrsm = _function(cython_blas, "dtrsm", [_c, _c, _c, _c, _int, _int, _ptr, _ptr, _int,
                                                  _ptr, _int])
        dpotrf = _function(cython_lapack, "dpotrf", [_c, _int, _ptr, _int, _int])
    except (ImportError, AttributeError, KeyError, ValueError, TypeError):
        return None
    return dsyrk, dpotrf, dtrsm


def available() -> bool:
    """Whether the routines could be found (a SciPy with its Cython BLAS API)."""
    return _routines() is not None


def _i(value: int):
    return ctypes.byref(ctypes.c_int(value))


def _d(value: float):
    return ctypes.byref(ctypes.c_double(value))


def _leading(a: np.ndarray, name: str) -> int:
    """The Fortran leading dimension of ``a`` (rows of a C-ordered 2-D layout: the
    row stride, which may exceed the row's length for a view of wider rows)."""
    if not (isinstance(a, np.ndarray) and a.ndim == 2 and a.dtype == np.float64
            and a.flags.writeable and (a.strides[1] == 8 or a.shape[1] <= 1)
            and a.strides[0] % 8 == 0 and a.strides[0] // 8 >= max(1, a.shape[1])):
        raise ValueError(f"{name} must be a writeable C-ordered float64 array (or a view of "
                         "whole rows' leading columns of one)")
    return a.strides[0] // 8


def _square(G, k: int) -> None:
    if not (isinstance(G, np.ndarray) and G.shape == (k, k) and G.dtype == np.float64
            and G.flags.c_contiguous and G.flags.writeable):
        raise ValueError(f"G must be a writeable C-ordered float64 array of shape ({k}, {k})")


def gram_upper(Y: np.ndarray, G: np.ndarray, *, add: bool = False) -> None:
    """``G <- Y^T Y`` (``G + Y^T Y`` with ``add``); ``np.tril(G)`` holds it."""
    ld = _leading(Y, "Y")
    _square(G, Y.shape[1])
    n, k = Y.shape
    dsyrk = _routines()[0]
    dsyrk(b"U", b"N", _i(k), _i(n), _d(1.0), Y.ctypes.data, _i(ld), _d(1.0 if add else 0.0),
          G.ctypes.data, _i(k))


def cholesky_upper(G: np.ndarray) -> int:
    """Factor ``G = R^T R`` in place (``R = np.triu(G.T)``); LAPACK's ``info``."""
    k = G.shape[0] if isinstance(G, np.ndarray) and G.ndim == 2 else -1
    _square(G, k)
    info = ctypes.c_int(0)
    _routines()[1](b"U", _i(k), G.ctypes.data, _i(k), ctypes.byref(info))
    return int(info.value)


def solve_upper_transposed(G: np.ndarray, Y: np.ndarray) -> None:
    """``Y <- Y R^-1`` in place, with ``R`` the factor :func:`cholesky_upper` left in ``G``.

    Examples
    --------
    >>> Y = np.random.default_rng(0).normal(size=(50, 4))
    >>> G = np.zeros((4, 4))
    >>> gram_upper(Y, G); cholesky_upper(G)
    0
    >>> Q = Y.copy(); solve_upper_transposed(G, Q)
    >>> bool(np.allclose(Q.T @ Q, np.eye(4))), bool(np.allclose(Q @ np.triu(G.T), Y))
    (True, True)
    """
    ld = _leading(Y, "Y")
    _square(G, Y.shape[1])
    n, k = Y.shape
    _routines()[2](b"L", b"U", b"T", b"N", _i(k), _i(n), _d(1.0), G.ctypes.data, _i(k),
                   Y.ctypes.data, _i(ld))
