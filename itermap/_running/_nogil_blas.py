"""SciPy's LAPACK ``dgeqrt`` and ``dgemqrt`` through its Cython API and ctypes, which
releases the GIL: Householder QR of a square tangent frame kept as block reflectors
(:func:`householder_frame`, :func:`apply_frame`, :func:`explicit_frame`), so that one
thread factors a frame while another applies its finished panels
(:mod:`._fused_square`). Where SciPy lacks the API, :func:`householder_available` is
False and the Lyapunov analyses run the general loop.

References
----------
.. [1] G. H. Golub and C. F. Van Loan, *Matrix Computations*, 4th ed., Johns Hopkins
   University Press, 2013, sections 5.1-5.2 (Householder QR, the compact WY form).
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

__all__ = ["PANEL", "apply_frame", "explicit_frame", "householder_available",
           "householder_frame"]


def _function(module, name, argtypes):
    capsule = module.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object,
                                                                  ctypes.c_char_p]
    address = get_pointer(capsule, get_name(capsule))
    return ctypes.CFUNCTYPE(None, *argtypes)(address)


#: columns per block reflector: dgeqrt's panels and the blocks of its ``T`` factors (one
#: LAPACK call at 32 or 64 costs the same at n = 256; 64 hands another thread 4 panels a step)
PANEL = 64


@functools.lru_cache(maxsize=1)
def _householder_routines():
    """SciPy's ``dgeqrt`` and ``dgemqrt`` as GIL-free ctypes functions, or None."""
    try:
        from scipy.linalg import cython_lapack

        i, p, c = ctypes.POINTER(ctypes.c_int), ctypes.c_void_p, ctypes.c_char_p
        geqrt = _function(cython_lapack, "dgeqrt", [i, i, i, p, i, p, i, p, i])
        gemqrt = _function(cython_lapack, "dgemqrt", [c, c, i, i, i, i, p, i, p, i, p, i, p, i])
    except (ImportError, AttributeError, KeyError, ValueError, TypeError):
        return None
    return geqrt, gemqrt


def householder_available() -> bool:
    """Whether :func:`householder_frame` and its companions can run (SciPy's Cython LAPACK)."""
    return _householder_routines() is not None


def _ref(value: int):
    return ctypes.byref(ctypes.c_int(value))


def _fortran(a, name: str) -> int:
    """The leading dimension of a Fortran-ordered float64 matrix or block of its rows."""
    ok = (isinstance(a, np.ndarray) and a.ndim == 2 and a.dtype == np.float64
          and a.flags.writeable and (a.strides[0] == 8 or a.shape[0] <= 1))
    # one column: NumPy may leave any stride between columns
    ld = (max(1, a.shape[0]) if a.shape[1] <= 1 else a.strides[1] // 8) if ok else 0
    if not (ok and (a.shape[1] <= 1 or a.strides[1] % 8 == 0) and ld >= max(1, a.shape[0])):
        raise ValueError(f"{name} must be a writeable Fortran-ordered float64 matrix (or a "
                         "block of rows of one)")
    return ld


def _call(fn, name, *args) -> None:
    info = ctypes.c_int(0)
    fn(*args, ctypes.byref(info))
    if info.value != 0:  # only a bad argument: these factorisations cannot fail
        raise ValueError(f"LAPACK {name} refused argument {-info.value}")


def _geqrt(A, T) -> None:
    """``dgeqrt`` of ``A`` (m, w) in place, ``T`` (>= nb, w) with ``nb = min(PANEL, m, w)``."""
    m, w = A.shape
    nb = max(1, min(PANEL, m, w))
    work = np.empty(nb * max(1, w))
    _call(_householder_routines()[0], "dgeqrt", _ref(m), _ref(w), _ref(nb), A.ctypes.data,
          _ref(_fortran(A, "F")), T.ctypes.data, _ref(_fortran(T, "T")), work.ctypes.data)


def _gemqrt(side: bytes, trans: bytes, V, T, C) -> None:
    """``C <- C op(Q)`` (``side`` R) or ``op(Q) C`` (L) for the block reflectors ``(V, T)``."""
    m, n = C.shape
    k = V.shape[1]
    nb = max(1, min(PANEL, k))
    work = np.empty(nb * max(1, n if side == b"L" else m))
    _call(_householder_routines()[1], "dgemqrt", side, trans, _ref(m), _ref(n), _ref(k),
          _ref(nb), V.ctypes.data, _ref(_fortran(V, "F")), T.ctypes.data,
          _ref(_fortran(T, "T")), C.ctypes.data, _ref(_fortran(C, "M")), work.ctypes.data)


def _check_t(T, k: int) -> None:
    nb = max(1, min(PANEL, k))
    if not (isinstance(T, np.ndarray) and T.shape == (nb, k)):
        raise ValueError(f"T must have shape ({nb}, {k}): min(PANEL, k) rows, k columns")
    _fortran(T, "T")


def householder_frame(F: np.ndarray, T: np.ndarray, panel_done=None) -> np.ndarray:
    """Householder QR of the Fortran-ordered frame ``F`` (n, k), ``k <= n``, in place
    (``dgeqrt``, without the GIL): ``log|R_jj|`` (k,) [1]_.

    ``R`` is left in the upper triangle, the reflectors below it and their blocks'
    triangular factors in ``T`` (``min(PANEL, k)``, k). ``panel_done(lo, hi)``, where
    given, is called as soon as columns ``lo:hi`` are final, so that another thread
    can apply them (``apply_frame(F, T, M, cols=(lo, hi))``) meanwhile.
    """
    _fortran(F, "F")
    n, k = F.shape
    if k > n:
        raise ValueError(f"F must have at most as many columns as rows, got shape {F.shape}")
    _check_t(T, k)
    if panel_done is None:
        if k:
            _geqrt(F, T)
    else:
        for lo in range(0, k, PANEL):
            hi = min(k, lo + PANEL)
            _geqrt(F[lo:, lo:hi], T[:, lo:hi])
            panel_done(lo, hi)
            if hi < k:
                _gemqrt(b"L", b"T", F[lo:, lo:hi], T[:, lo:hi], F[lo:, hi:])
    return np.log(np.abs(np.diagonal(F).copy()))


def apply_frame(F: np.ndarray, T: np.ndarray, M: np.ndarray, cols=None) -> None:
    """``M <- M Q`` in place for a square frame from :func:`householder_frame`.

    ``M`` (r, n) is Fortran-ordered or a block of its rows; ``cols=(lo, hi)``
    applies only the reflectors of those columns (whole ``PANEL`` blocks), which
    change ``M[:, lo:]`` alone.
    """
    _fortran(F, "F")
    _fortran(M, "M")
    n, k = F.shape
    if k != n or M.shape[-1] != n:
        raise ValueError(f"apply_frame takes a square frame and M with {n} columns")
    _check_t(T, k)
    lo, hi = (0, k) if cols is None else cols
    if hi > lo:
        _gemqrt(b"R", b"N", F[lo:, lo:hi], T[:, lo:hi], M[:, lo:])


def explicit_frame(F: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``Q`` (n, k), Fortran-ordered, from :func:`householder_frame`'s reflectors in ``F``."""
    _fortran(F, "F")
    n, k = F.shape
    _check_t(T, k)
    Q = np.eye(n, k, order="F")
    if k:
        _gemqrt(b"L", b"N", F, T, Q)
    return Q
