"""Array backends: the one module in itermap that imports cupy.

Numerics elsewhere ask :func:`namespace` for the array namespace of their
inputs (through array-api-compat), so a computation stays on the device its
inputs live on. Sparse matrices are scipy.sparse on the host and
cupyx.scipy.sparse on the GPU.
"""

from __future__ import annotations

import functools
from typing import Any

import array_api_compat
import numpy as np
import scipy.sparse as sp

__all__ = [
    "BACKENDS",
    "cupy_available",
    "is_sparse",
    "namespace",
    "backend_of",
    "to_backend",
    "to_numpy",
    "sparse_module",
]

#: The backends a map moves between with ``map.to(name)``.
BACKENDS = ("numpy", "cupy")


@functools.lru_cache(maxsize=1)
def _cupy():
    """Return the cupy module, or None when it (or a GPU) is unavailable."""
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception:  # ImportError, or CUDA present without a usable device
        return None
    return cupy


@functools.lru_cache(maxsize=1)
def _cupy_sparse():
    if _cupy() is None:
        return None
    import cupyx.scipy.sparse

    return cupyx.scipy.sparse


def cupy_available() -> bool:
    """True when cupy imports and sees at least one GPU.

    Returns
    -------
    bool
        Whether the ``"cupy"`` backend can be used on this machine.

    Examples
    --------
    >>> from itermap.backends import cupy_available
    >>> isinstance(cupy_available(), bool)
    True
    """
    return _cupy() is not None


def is_sparse(a: Any) -> bool:
    """True for scipy.sparse and cupyx.scipy.sparse matrices and arrays.

    Parameters
    ----------
    a : object
        Anything.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from itermap.backends import is_sparse
    >>> is_sparse(sp.eye(3, format="csr")), is_sparse(np.eye(3))
    (True, False)
    """
    if sp.issparse(a):
        return True
    csp = _cupy_sparse() if "cupy" in type(a).__module__ else None
    return csp is not None and csp.issparse(a)


@functools.cache
def _numpy_namespace():
    return array_api_compat.array_namespace(np.empty(0))


def namespace(*arrays: Any) -> Any:
    """The array-API namespace shared by ``arrays`` (None entries are ignored).

    Sparse matrices count as their dense counterpart's namespace.

    Parameters
    ----------
    *arrays : arrays, sparse matrices or None
        The arrays an operation combines.

    Returns
    -------
    module
        The array-API namespace (``array_api_compat``'s wrapper of NumPy, CuPy, ...).

    Raises
    ------
    TypeError
        When the arrays come from different libraries.

    Examples
    --------
    >>> from itermap.backends import namespace
    >>> xp = namespace(np.zeros(2), None)
    >>> bool(xp.sum(xp.ones(3)) == 3)
    True
    """
    if len(arrays) == 1 and type(arrays[0]) is np.ndarray:  # the per-step common case
        return _numpy_namespace()
    dense = []
    for a in arrays:
        if a is None:
            continue
        if is_sparse(a):
            dense.append(_cupy().empty(0) if "cupy" in type(a).__module__ else np.empty(0))
        else:
            dense.append(a)
    if not dense:
        return array_api_compat.array_namespace(np.empty(0))
    return array_api_compat.array_namespace(*dense)


def backend_of(a: Any) -> str:
    """``"cupy"`` for arrays on a CUDA device, ``"numpy"`` for host arrays.

    Other array-API libraries (array_api_strict, ...) report their module name.

    Parameters
    ----------
    a : array, sparse matrix, scalar or None
        None and Python or NumPy scalars count as ``"numpy"``.

    Returns
    -------
    str

    Examples
    --------
    >>> from itermap.backends import backend_of
    >>> backend_of(np.zeros(3)), backend_of(None)
    ('numpy', 'numpy')
    """
    if a is None:
        return "numpy"
    mod = type(a).__module__.split(".")[0]
    if mod in ("cupy", "cupyx"):
        return "cupy"
    if mod in ("numpy", "scipy") or isinstance(a, (float, int, np.generic)):
        return "numpy"
    return mod


def _check_backend(name: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
    if name == "cupy" and _cupy() is None:
        raise ValueError("backend 'cupy' requested but cupy or a CUDA GPU is not available")


def to_backend(a: Any, name: str) -> Any:
    """Move a dense or sparse array to backend ``name`` ("numpy" or "cupy").

    Parameters
    ----------
    a : array, sparse matrix or None
        What to move (None is returned as is).
    name : {"numpy", "cupy"}
        The target backend.

    Returns
    -------
    array or sparse matrix
        ``a`` on ``name`` (the same object when it is there already).

    Raises
    ------
    ValueError
        An unknown backend, or ``"cupy"`` without cupy or a GPU.

    Examples
    --------
    >>> from itermap.backends import to_backend
    >>> to_backend([1.0, 2.0], "numpy")
    array([1., 2.])
    """
    _check_backend(name)
    if a is None:
        return None
    if name == "numpy":
        return to_numpy(a)
    cp = _cupy()
    if is_sparse(a):
        if "cupy" in type(a).__module__:
            return a
        return _cupy_sparse().csr_matrix(sp.csr_matrix(a))
    return cp.asarray(to_numpy(a) if backend_of(a) not in ("numpy", "cupy") else a)


def to_numpy(a: Any) -> Any:
    """A host copy (or view) of ``a``: numpy array or scipy.sparse CSR matrix.

    Parameters
    ----------
    a : array, sparse matrix, scalar or None
        From any backend.

    Returns
    -------
    numpy.ndarray, scipy.sparse matrix or None
        A host copy (or ``a`` itself when it already lives on the host).

    Examples
    --------
    >>> from itermap.backends import to_numpy
    >>> to_numpy([0.5, 1.5]).dtype
    dtype('float64')
    """
    if a is None:
        return None
    if is_sparse(a):
        if "cupy" in type(a).__module__:
            return sp.csr_matrix(a.get())
        return a
    if backend_of(a) == "cupy":
        return a.get()
    if isinstance(a, np.ndarray):
        return a
    try:
        return np.asarray(a)
    except Exception:  # array_api_strict refuses __array__; go through DLPack
        return np.from_dlpack(a)


def sparse_module(xp: Any) -> Any:
    """scipy.sparse, or cupyx.scipy.sparse when ``xp`` is cupy.

    Parameters
    ----------
    xp : module
        An array namespace, as :func:`namespace` returns.

    Returns
    -------
    module
        ``scipy.sparse`` for NumPy, ``cupyx.scipy.sparse`` for CuPy.

    Examples
    --------
    >>> from itermap.backends import namespace, sparse_module
    >>> sparse_module(namespace(np.zeros(1))).__name__
    'scipy.sparse'
    """
    if "cupy" in getattr(xp, "__name__", ""):
        return _cupy_sparse()
    return sp
