"""Argument checks shared by the public API: every error names its parameter.

The analyses and the constructors parse their arguments through these, so a bad
value gets a ValueError or TypeError that starts with the parameter's name, never
``could not convert string to float`` from deep inside NumPy.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ._backend import namespace

__all__ = ["check_bool", "check_choice", "check_int", "check_memory", "check_real",
           "check_real_array", "named", "no_half", "one_namespace", "plain_array", "real_array"]


_INT64_MAX = 2 ** 63 - 1


def _show_int(value: int) -> str:
    """``value`` as text: its digits up to 16 of them, else its size, ``1.23e+400``.

    For error messages: CPython refuses ``str`` of an int of more than 4300 digits (and a
    message of 400 digits helps nobody).

    Examples
    --------
    >>> _show_int(12), _show_int(2 ** 63), _show_int(-(10 ** 5000))
    ('12', '9.22e+18', '-1e+5000')
    """
    value = int(value)
    if abs(value) < 10 ** 16:
        return str(value)
    exp = math.floor(math.log10(abs(value)))  # math.log10 takes ints of any size
    mantissa = abs(value) // 10 ** (exp - 5) / 10 ** 5
    if mantissa < 1:  # log10 rounded up at a power of ten
        mantissa, exp = mantissa * 10, exp - 1
    if float(f"{mantissa:.3g}") >= 10:
        mantissa, exp = mantissa / 10, exp + 1
    return f"{'-' if value < 0 else ''}{mantissa:.3g}e+{exp}"


def check_int(name: str, value: object, minimum: int | None = None, *,
              maximum: int | None = _INT64_MAX) -> int:
    """``value`` as an int, or a TypeError/ValueError that names ``name``.

    Parameters
    ----------
    name : str
        The parameter's name, for the messages.
    value : object
        An int (Python's, NumPy's, any ``numbers.Integral``; not a bool).
    minimum : int, optional
        The least value accepted.
    maximum : int or None, default 2**63 - 1
        The largest value accepted. By default ints outside the int64 range are refused at
        both ends: NumPy holds none of them (as a shape, an index or a count) and ``float``
        of one beyond ~1.8e308 raises OverflowError. None accepts any int, for a parameter
        that any size fits (a stride past the end of a run).

    Returns
    -------
    int

    Raises
    ------
    TypeError
        ``value`` is not an integer (a float, a bool, a string).
    ValueError
        ``value`` is below ``minimum`` or above ``maximum`` (or, by default, outside int64).

    Examples
    --------
    >>> check_int("steps", 3, 1)
    3
    >>> check_int("steps", 1.5, 1)
    Traceback (most recent call last):
    ...
    TypeError: steps must be an integer, got 1.5
    >>> check_int("steps", 10 ** 400, 1)
    Traceback (most recent call last):
    ...
    ValueError: steps must be < 2**63 (the int64 range), got 1e+400
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_show_int(value)}")
    if maximum == _INT64_MAX and not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        bound = "< 2**63" if value > 0 else ">= -2**63"
        raise ValueError(f"{name} must be {bound} (the int64 range), got {_show_int(value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {_show_int(value)}")
    return value


def check_real(name: str, value: Any, *, minimum: float | None = None,
               positive: bool = False, maximum: float | None = None) -> float:
    """``value`` as a finite float, or a TypeError/ValueError that names ``name``.

    Parameters
    ----------
    name : str
        The parameter's name, for the messages.
    value : object
        A real number: a Python or NumPy int or float, a ``Fraction``, a 0-d real array.
    minimum, maximum : float, optional
        Inclusive bounds.
    positive : bool, default False
        Ask for ``value > 0``.

    Returns
    -------
    float
        ``-0.0`` becomes ``0.0``.

    Raises
    ------
    TypeError
        Not a real number (a bool, a string, a complex number, an array of more than one
        value).
    ValueError
        NaN, infinite or beyond float range (an int of 400 digits), or out of bounds.

    Examples
    --------
    >>> check_real("gain", 2)
    2.0
    >>> check_real("gain", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: gain must be finite, got nan
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            value = value.item()
        else:
            raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        value = float(value) + 0.0  # -0.0 becomes 0.0: NumPy refuses a scale of -0.0
    except OverflowError:  # an int or Fraction beyond float range
        raise ValueError(f"{name} is beyond float range (|{name}| > 1.8e308)") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def is_sequence(value: object) -> bool:
    """Whether ``value`` is a sequence of items: iterable, but neither a string nor a 0-d
    array (which has ``__iter__`` and cannot be iterated).

    Parameters
    ----------
    value : object

    Returns
    -------
    bool

    Examples
    --------
    >>> is_sequence([1, 2]), is_sequence(np.arange(2)), is_sequence(np.array(3)), is_sequence("ab")
    (True, True, False, False)
    """
    return (not isinstance(value, str | bytes) and hasattr(value, "__iter__")
            and getattr(value, "ndim", 1) != 0)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool (NumPy's included), else a TypeError naming ``name``.

    An int is refused: ``progress=0`` is more often a slip than a choice.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object

    Returns
    -------
    bool
        A Python bool.

    Raises
    ------
    TypeError
        ``value`` is not a bool.

    Examples
    --------
    >>> check_bool("progress", np.True_)
    True
    >>> check_bool("progress", 1)
    Traceback (most recent call last):
    ...
    TypeError: progress must be True or False, got 1
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


@contextlib.contextmanager
def named(name: str) -> Iterator[None]:
    """Re-raise a ValueError or TypeError from the block with ``name`` in front.

    For parsing through other constructors, whose messages cannot know the caller's
    parameter name; messages that already name it pass unchanged.

    Parameters
    ----------
    name : str
        The parameter's name, put in front of the message.

    Returns
    -------
    contextmanager
        A context manager for a ``with`` block.

    Raises
    ------
    ValueError, TypeError
        Those of the block, of the same type, with ``name`` and a colon in front.

    Examples
    --------
    >>> with named("gains"):
    ...     float("abc")
    Traceback (most recent call last):
    ...
    ValueError: gains: could not convert string to float: 'abc'
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if msg.startswith(name) or f"{name}:" in msg or f"{name} " in msg:
            raise
        raise type(exc)(f"{name}: {msg}") from exc


def plain_array(name: str, value: Any) -> Any:
    """``value`` with what a plain array lacks taken off, or a TypeError naming ``name``.

    The door of every public array: a masked array with a mask is refused (SciPy's
    convention: some operations would ignore the mask); ``np.matrix`` and other ndarray
    subclasses become plain ndarrays, a non-native byte order native.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        An array of any library, or a list or tuple of arrays; anything else passes as is.

    Returns
    -------
    object
        ``value``, a plain native-order ndarray where it was a NumPy array (a list or tuple
        of them where it held masked arrays).

    Raises
    ------
    TypeError
        A masked array with a masked entry.

    Examples
    --------
    >>> plain_array("x", np.matrix([[1.0, 2.0]]))
    array([[1., 2.]])
    >>> plain_array("x", np.array([1.0], dtype=">f8")).dtype
    dtype('float64')
    >>> plain_array("x", np.ma.masked_array([1.0, 2.0], mask=[True, False]))
    Traceback (most recent call last):
    ...
    TypeError: x: masked arrays with a mask are not supported; pass x.filled(...) or \
x.compressed() instead
    """
    if isinstance(value, np.ma.MaskedArray):
        if np.ma.getmask(value) is not np.ma.nomask and bool(np.any(np.ma.getmaskarray(value))):
            raise TypeError(f"{name}: masked arrays with a mask are not supported; pass "
                            f"{name}.filled(...) or {name}.compressed() instead")
        value = np.ma.getdata(value)
    if isinstance(value, np.ndarray):
        if type(value) is not np.ndarray:
            value = np.asarray(value)
        if not value.dtype.isnative:
            value = value.astype(value.dtype.newbyteorder("="))
    elif isinstance(value, list | tuple) and any(isinstance(v, np.ma.MaskedArray)
                                                 for v in value):
        value = type(value)(plain_array(name, v) for v in value)
    return value


def no_half(name: str, x: Any) -> Any:
    """``x`` unless it is a half-precision float array: a TypeError naming ``name``.

    No LAPACK routine works in float16 (nor bfloat16): float32 is the least precision taken.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    x : object
        An array of any library (its ``dtype`` is read), or anything else.

    Returns
    -------
    object
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is a float16 or bfloat16 array (NumPy, torch, JAX...).

    Examples
    --------
    >>> no_half("x0", np.zeros(2, dtype=np.float16))
    Traceback (most recent call last):
    ...
    TypeError: x0: float16 arrays are not supported (no LAPACK routine works in half ...
    """
    dtype = getattr(x, "dtype", None)
    if isinstance(dtype, np.dtype):  # the inner loop's case: no str(dtype), which is slow
        if dtype.kind != "f" or dtype.itemsize != 2:
            return x
    elif dtype is None or str(dtype).split(".")[-1] not in ("float16", "bfloat16"):
        return x
    half = str(dtype).split(".")[-1]
    raise TypeError(f"{name}: {half} arrays are not supported (no LAPACK routine works in "
                    f"half precision); pass float32 or float64")


def _library(a) -> str | None:
    """The array library of ``a`` (None for scalars, sequences and None)."""
    if a is None or isinstance(a, numbers.Number | str | bytes | list | tuple | dict):
        return None
    if getattr(a, "_holds_arrays", False):  # a map whose arrays live in one library
        return str(a.backend)
    if isinstance(a, np.ndarray | np.generic):
        return "numpy"
    mod = type(a).__module__.split(".")[0]
    if mod in ("scipy",):  # sparse matrices live on the host, with NumPy
        return "numpy"
    if mod == "cupyx":
        return "cupy"
    return mod if hasattr(a, "shape") and hasattr(a, "dtype") else None


def one_namespace(*, movable: bool = False, **arrays: Any) -> None:
    """Refuse, with one TypeError up front, arrays that come from different libraries.

    Parameters
    ----------
    movable : bool, default False
        Let NumPy and CuPy arrays meet, for callers that move one to the other.
    **arrays
        Parameter names to arrays (None, numbers and sequences are ignored; a map counts
        as the library its arrays live in).

    Raises
    ------
    TypeError
        Two of ``arrays`` come from different libraries; the message names each one's.

    Examples
    --------
    >>> one_namespace(x=np.zeros(2), u=None)
    >>> class Foreign:  # an array of another library
    ...     __module__ = "otherlib"
    ...     shape, dtype = (2,), "float64"
    >>> one_namespace(x=np.zeros(2), W=Foreign())
    Traceback (most recent call last):
    ...
    TypeError: all arrays must come from one namespace: x is numpy, W is otherlib
    """
    seen = {name: lib for name, a in arrays.items() if (lib := _library(a)) is not None}
    libs = set(seen.values())
    if movable and libs <= {"numpy", "cupy"}:
        return
    if len(libs) > 1:
        parts = ", ".join(f"{name} is {lib}" for name, lib in seen.items())
        hint = ("; a torch tensor t becomes NumPy by t.detach().cpu().numpy()"
                if libs == {"numpy", "torch"} else "")
        raise TypeError(f"all arrays must come from one namespace: {parts}{hint}")


def check_real_array(name: str, value: Any, *, ndim: int | None = None,
                     allow_empty: bool = False) -> np.ndarray:
    """``value`` as a finite float64 NumPy array, or a TypeError/ValueError naming ``name``.

    A CuPy array is brought to the host.

    Parameters
    ----------
    name : str
        The parameter's name, for the messages.
    value : array_like
        Real numbers: ints, floats or bools, in an array or a (nested) list.
    ndim : int, optional
        The number of axes asked for.
    allow_empty : bool, default False
        Accept an array without elements.

    Returns
    -------
    numpy.ndarray
        float64.

    Raises
    ------
    TypeError
        None, a string, a ragged list, complex or object entries, a masked array with a
        mask.
    ValueError
        The wrong number of axes, no elements, NaN or inf.

    Examples
    --------
    >>> check_real_array("values", [1, 2.5], ndim=1)
    array([1. , 2.5])
    >>> check_real_array("values", [1j], ndim=1)
    Traceback (most recent call last):
    ...
    TypeError: values must be real numbers, got dtype complex128
    """
    if value is None or isinstance(value, str | bytes):
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}")
    if hasattr(value, "__cuda_array_interface__") or type(value).__module__.startswith("cupy"):
        value = value.get()
    value = plain_array(name, value)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of real numbers ({err})") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def real_array(name: str, a, shape=None, dtype=None):
    """``a`` as a finite real floating array of its own namespace (a sequence becomes NumPy
    float64, integers and booleans ``dtype`` or float64), of ``shape`` where given and cast
    to ``dtype`` where given; a TypeError/ValueError naming ``name`` otherwise.

    Examples
    --------
    >>> real_array("w", [1, 2])
    array([1., 2.])
    >>> real_array("w", [1.0, float("nan")])
    Traceback (most recent call last):
    ...
    ValueError: w contains NaN or inf
    """
    a = no_half(name, plain_array(name, a))
    if type(a).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} must be a dense array, got a scipy.sparse "
                        f"{type(a).__name__}: pass {name}.toarray()")
    if not hasattr(a, "shape"):
        if a is None or isinstance(a, str | bytes):
            raise TypeError(f"{name} must be an array, got {type(a).__name__}")
        try:
            a = np.asarray(a, dtype=float)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a real array ({err})") from None
    xp = namespace(a)
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {tuple(shape)}")
    if not xp.isdtype(a.dtype, "real floating"):
        if not xp.isdtype(a.dtype, ("integral", "bool")):
            raise TypeError(f"{name} must be real, got dtype {a.dtype}")
        a = xp.astype(a, xp.float64 if dtype is None else dtype)
    if dtype is not None and a.dtype != dtype:
        a = xp.astype(a, dtype)
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _physical_memory() -> int:
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX: assume a large workstation
        return 1 << 40


def check_memory(name: str, nbytes: float, what: str = "the arrays") -> None:
    """Refuse, naming ``name``, a request whose arrays exceed this machine's memory.

    Parameters
    ----------
    name : str
        The parameter that sets the size, for the message.
    nbytes : float or int
        The bytes the request would allocate; a Python int of any size (beyond float range
        too: the message gives its size, ``8e+391 GB``).
    what : str, default "the arrays"
        What would be allocated, for the message.

    Raises
    ------
    ValueError
        ``nbytes`` exceeds the physical memory of this machine.

    Examples
    --------
    >>> check_memory("n", 1e18, "the states")
    Traceback (most recent call last):
    ...
    ValueError: n: the states would take 1e+09 GB, more than this machine's ... GB of memory
    >>> check_memory("n", 8 * 10 ** 400, "the states")
    Traceback (most recent call last):
    ...
    ValueError: n: the states would take 8e+391 GB, more than this machine's ... GB of memory
    """
    total = _physical_memory()
    if nbytes > total:
        size = (_show_int(int(nbytes) // 10 ** 9) if isinstance(nbytes, numbers.Integral)
                and nbytes >= 1e300 else f"{nbytes / 1e9:.3g}")  # an int beyond float range
        raise ValueError(f"{name}: {what} would take {size} GB, more than this "
                         f"machine's {total / 1e9:.3g} GB of memory")


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """``value`` if it is one of the strings ``choices``, else an error naming ``name``.

    Parameters
    ----------
    name : str
        The parameter's name, for the messages.
    value : object
    choices : iterable of str
        The accepted strings (listed in the messages).

    Returns
    -------
    str

    Raises
    ------
    TypeError
        ``value`` is not a string.
    ValueError
        A string not among ``choices``.

    Examples
    --------
    >>> check_choice("keep", "last", ("all", "last"))
    'last'
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {list(choices)}, got {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value
