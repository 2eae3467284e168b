"""Associative scans of affine maps: the parallel solve of a linear recurrence.

``(A, b) o (A', b') = (A A', A b' + b)`` is associative, so the prefix
compositions of ``T`` maps come out of a work-efficient scan (Blelloch's odd/even
recursion) in ``O(log T)`` rounds: the inner solve of DEER's Newton step over a
trajectory (Lim et al., arXiv:2309.12252).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from .._core._backend import namespace
from .._core._checks import one_namespace, plain_array
from .._core._types import Array

__all__ = ["affine_scan", "linear_recurrence"]

KINDS = ("full", "diagonal", "block")


def _combine_full(early, late, need_A):
    # late o early: (A_l A_e, A_l b_e + b_l)
    A_e, b_e = early
    A_l, b_l = late
    xp = namespace(A_l)
    b = xp.matmul(A_l, b_e[..., None])[..., 0] + b_l
    return (xp.matmul(A_l, A_e) if need_A else None), b


def _combine_diagonal(early, late, need_A):
    A_e, b_e = early
    A_l, b_l = late
    return (A_l * A_e if need_A else None), A_l * b_e + b_l


def _interleave(even, odd, xp):
    """``[even_0, odd_0, even_1, odd_1, ...]`` along axis 0 (``len(even) - len(odd)`` is 0 or 1)."""
    n_odd = odd.shape[0]
    pairs = xp.reshape(xp.stack([even[:n_odd, ...], odd], axis=1),
                       (2 * n_odd, *odd.shape[1:]))
    if even.shape[0] == n_odd:
        return pairs
    return xp.concat([pairs, even[n_odd:, ...]], axis=0)


def _scan(A, b, combine, need_A, xp):
    """Inclusive prefix compositions along axis 0; ``need_A=False`` forms only the offsets
    (half the matrix products)."""
    n = b.shape[0]
    if n < 2:
        return A, b
    # pair up neighbours (0, 1), (2, 3), ...: the reduced sequence's prefixes are the odd ones
    A_red, b_red = combine((A[0:n - 1:2, ...], b[0:n - 1:2, ...]),
                           (A[1::2, ...], b[1::2, ...]), True)
    A_odd, b_odd = _scan(A_red, b_red, combine, need_A, xp)
    # the even prefixes past the first: an odd prefix, then the element after it
    n_even_rest = (n - 1) // 2
    A_rest, b_rest = combine(
        (None if A_odd is None else A_odd[:n_even_rest, ...], b_odd[:n_even_rest, ...]),
        (A[2::2, ...], b[2::2, ...]), need_A)
    b_even = xp.concat([b[0:1, ...], b_rest], axis=0)
    b_out = _interleave(b_even, b_odd, xp)
    if not need_A:
        return None, b_out
    A_even = xp.concat([A[0:1, ...], A_rest], axis=0)
    return _interleave(A_even, A_odd, xp), b_out


def _plain(A, b):
    """``A`` (an array or a sequence of blocks) and ``b`` as plain arrays."""
    if isinstance(A, list | tuple):
        A = type(A)(plain_array(f"A[{i}]", a) for i, a in enumerate(A))
    else:
        A = plain_array("A", A)
    return A, plain_array("b", b)


def _check(A, b, kind):
    """The namespace and the block sizes; shapes and dtypes only (NaN passes, as in a step)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not hasattr(b, "shape") or b.ndim < 2:
        raise ValueError(f"b must be an array of shape (T, ..., d), got "
                         f"{getattr(b, 'shape', type(b).__name__)}")
    T, d = b.shape[0], b.shape[-1]
    xp = namespace(b)
    if not xp.isdtype(b.dtype, "real floating"):
        raise TypeError(f"b must be real floating point, got dtype {b.dtype}")
    if kind == "block":
        if isinstance(A, (str, bytes)) or not isinstance(A, Sequence) or not A:
            raise TypeError("A must be a non-empty sequence of blocks (T, ..., s, s) for "
                            f"kind='block', got {type(A).__name__}")
        blocks = list(A)
    else:
        if not hasattr(A, "shape"):
            raise TypeError(f"A must be an array, got {type(A).__name__}")
        blocks = [A]
    sizes = []
    for i, Ai in enumerate(blocks):
        label = "A" if kind != "block" else f"A[{i}]"
        one_namespace(**{label: Ai, "b": b})
        if not xp.isdtype(Ai.dtype, "real floating"):
            raise TypeError(f"{label} must be real floating point, got dtype {Ai.dtype}")
        square = kind != "diagonal"
        want = Ai.ndim == b.ndim + (1 if square else 0)
        if not want or Ai.shape[0] != T or (square and Ai.shape[-1] != Ai.shape[-2]):
            form = "(T, ..., d, d)" if kind == "full" else "(T, ..., d)" if kind == "diagonal" \
                else "(T, ..., s, s)"
            raise ValueError(f"{label} of shape {tuple(Ai.shape)} does not fit b of shape "
                             f"{tuple(b.shape)}: kind={kind!r} wants {form} with T={T}")
        batch = Ai.shape[1:-2] if square else Ai.shape[1:-1]
        if tuple(batch) != tuple(b.shape[1:-1]):
            raise ValueError(f"{label} has batch shape {tuple(batch)}, b has "
                             f"{tuple(b.shape[1:-1])}")
        sizes.append(int(Ai.shape[-1]))
    if sum(sizes) != d:
        raise ValueError(f"A covers {sum(sizes)} state entries, b has d={d}")
    return xp, sizes


def affine_scan(A: Array, b: Array, *, kind: str = "full") -> tuple[Array, Array]:
    """All prefix compositions of the affine maps ``f_t(x) = A_t x + b_t``.

    Parameters
    ----------
    A : array or sequence of arrays
        ``(T, ..., d, d)`` for ``kind="full"``, ``(T, ..., d)`` for
        ``"diagonal"``, a sequence of blocks ``(T, ..., s_i, s_i)`` with
        ``sum s_i = d`` for ``"block"``. Axes between time and state are batch
        axes.
    b : array of shape (T, ..., d)
        The offsets.
    kind : {"full", "diagonal", "block"}
        The structure of ``A``.

    Returns
    -------
    (A_cum, b_cum)
        Element ``t`` is ``f_t o f_{t-1} o ... o f_0``, in the structure of the
        input (a list of blocks for ``"block"``): so ``A_cum[t] x0 + b_cum[t]``
        is ``x_{t+1}`` of the recurrence ``x_{t+1} = A_t x_t + b_t``.

    Raises
    ------
    ValueError
        Unknown ``kind``, or shapes that do not fit (the message names ``A`` or ``b``).
    TypeError
        Non-float arrays, arrays from different namespaces.

    References
    ----------
    .. [1] G. E. Blelloch, "Prefix sums and their applications", Technical Report
       CMU-CS-90-190, Carnegie Mellon University (1990).
    .. [2] E. Martin, C. Cundy, "Parallelizing linear recurrent neural nets over
       sequence length", ICLR (2018), arXiv:1709.04057.

    Examples
    --------
    >>> from itermap import affine_scan
    >>> A = np.array([2.0, 3.0, 0.5])[:, None]      # diagonal, d = 1
    >>> b = np.array([1.0, 0.0, 1.0])[:, None]
    >>> A_cum, b_cum = affine_scan(A, b, kind="diagonal")
    >>> A_cum[:, 0], b_cum[:, 0]       # 2x+1; 3(2x+1); 0.5*3(2x+1)+1
    (array([2., 6., 3.]), array([1. , 3. , 2.5]))
    """
    A, b = _plain(A, b)
    xp, sizes = _check(A, b, kind)
    if kind != "block":
        return _scan(A, b, _combine_full if kind == "full" else _combine_diagonal, True, xp)
    starts = itertools.accumulate(sizes, initial=0)
    scans = [_scan(Ai, b[..., o:o + s], _combine_full, True, xp)
             for Ai, o, s in zip(A, starts, sizes)]
    return [Ac for Ac, _ in scans], xp.concat([bc for _, bc in scans], axis=-1)


def linear_recurrence(A: Array, b: Array, x0: Array, *, kind: str = "full") -> Array:
    """The states ``x_1, ..., x_T`` of ``x_{t+1} = A_t x_t + b_t`` from ``x_0``, by a parallel scan.

    Only the offsets of the prefix compositions are formed (the start is
    folded into the first offset), about ``T`` matrix products for a full
    ``A`` instead of the ``2 T`` of :func:`affine_scan`.

    Parameters
    ----------
    A, b, kind
        As for :func:`affine_scan`.
    x0 : array of shape (..., d)
        The start (batch axes as in ``b``).

    Returns
    -------
    array of shape (T, ..., d)
        ``x_1, ..., x_T``.

    Raises
    ------
    ValueError, TypeError
        As for :func:`affine_scan`; and an ``x0`` whose shape is not ``b.shape[1:]``.

    References
    ----------
    .. [1] G. E. Blelloch, "Prefix sums and their applications", Technical Report
       CMU-CS-90-190, Carnegie Mellon University (1990).
    .. [2] E. Martin, C. Cundy, "Parallelizing linear recurrent neural nets over
       sequence length", ICLR (2018), arXiv:1709.04057.

    Examples
    --------
    >>> from itermap import linear_recurrence
    >>> A = np.full((4, 1, 1), 0.5)
    >>> b = np.ones((4, 1))
    >>> linear_recurrence(A, b, np.zeros(1))[:, 0]      # x -> x/2 + 1 from 0
    array([1.   , 1.5  , 1.75 , 1.875])
    """
    A, b = _plain(A, b)
    x0 = plain_array("x0", x0)
    xp, sizes = _check(A, b, kind)
    if not hasattr(x0, "shape") or tuple(x0.shape) != tuple(b.shape[1:]):
        raise ValueError(f"x0 must have shape {tuple(b.shape[1:])} (b without its time "
                         f"axis), got {getattr(x0, 'shape', type(x0).__name__)}")
    one_namespace(x0=x0, b=b)
    if not xp.isdtype(x0.dtype, "real floating"):
        raise TypeError(f"x0 must be real floating point, got dtype {x0.dtype}")
    if b.shape[0] == 0:
        return b
    if kind == "diagonal":
        first = A[0, ...] * x0 + b[0, ...]
        b = xp.concat([first[None, ...], b[1:, ...]], axis=0)
        return _scan(A, b, _combine_diagonal, False, xp)[1]
    blocks = [A] if kind == "full" else list(A)
    outs = []
    for Ai, o, s in zip(blocks, itertools.accumulate(sizes, initial=0), sizes):
        bi = b[..., o:o + s]
        first = xp.matmul(Ai[0, ...], x0[..., o:o + s, None])[..., 0] + bi[0, ...]
        bi = xp.concat([first[None, ...], bi[1:, ...]], axis=0)
        outs.append(_scan(Ai, bi, _combine_full, False, xp)[1])
    return outs[0] if len(outs) == 1 else xp.concat(outs, axis=-1)
