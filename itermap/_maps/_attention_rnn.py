"""Softmax attention over a growing prefix as a driven map, and its parallel prefix scan.

Feng et al., "Attention as an RNN" (arXiv:2405.13956), section 3.
"""

from __future__ import annotations

import math

import numpy as np

from .._core._backend import backend_of, namespace, to_backend
from .._core._checks import check_real, one_namespace, real_array
from .._core._types import Array
from .._running._affine_scan import _scan, linear_recurrence
from ._map import Map

__all__ = ["AttentionRNN", "attention_scan"]


class AttentionRNN(Map):
    """Softmax attention of one query over a growing prefix of tokens, as a driven map.

    The state is ``x = [a; c; m]`` (``d_v + 2`` entries), the input a token ``u``;
    with the score ``s = scale * q . (Wk @ u)`` and value ``v = Wv @ u`` a step is
    Feng et al.'s update: ``m' = max(m, s)``, ``a' = a exp(m - m') + v exp(s - m')``,
    ``c' = c exp(m - m') + exp(s - m')``; :meth:`readout` gives ``o = a / c``.
    ``exp`` only sees arguments ``<= 0``, so any scores give finite states. The zero
    state is the empty prefix (``c == 0``: ``a`` and ``m`` dropped), from which
    ``T`` steps give exactly scaled dot-product attention over the ``T`` tokens.

    Parameters
    ----------
    Wk : array of shape (d_k, d_in)
        The key projection.
    Wv : array of shape (d_v, d_in)
        The value projection (its dtype is the map's; float32 or float64).
    q : array of shape (d_k,)
        The query.
    scale : float, optional
        Multiplies ``q . k``; ``1 / sqrt(d_k)`` by default (scaled dot-product
        attention).

    Notes
    -----
    Where the running maximum switches (``m = s``) the map is continuous but not
    differentiable in ``m``: the Jacobian returned is that of the branch keeping
    the old maximum. Both branches move only along ``(a e^t, c e^t, m - t)``, the
    same prefix, so ``o`` does not depend on the branch. The Jacobian is zero on
    the empty prefix, where the map is discontinuous.

    References
    ----------
    .. [1] L. Feng, F. Tung, H. Hajimirsadeghi, M. O. Ahmed, Y. Bengio and G. Mori,
       "Attention as an RNN", arXiv:2405.13956 (2024).
    .. [2] M. N. Rabe and C. Staats, "Self-attention does not need O(n^2) memory",
       arXiv:2112.05682 (2021).

    Examples
    --------
    After T steps from the empty prefix, the readout is softmax attention:

    >>> import itermap
    >>> rng = np.random.default_rng(0)
    >>> Wk, Wv, q = rng.normal(size=(4, 3)), rng.normal(size=(2, 3)), rng.normal(size=4)
    >>> m = itermap.AttentionRNN(Wk, Wv, q)
    >>> tokens = rng.normal(size=(6, 3))
    >>> x = itermap.iterate(m, m.zeros(), 6, inputs=tokens, keep="last").final
    >>> s = tokens @ Wk.T @ q / 2.0
    >>> p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    >>> bool(np.allclose(m.readout(x), p @ (tokens @ Wv.T)))
    True
    >>> itermap.check_map(m, rng=0).passed
    True
    """

    def __init__(self, Wk: Array, Wv: Array, q: Array, *, scale: float | None = None):
        one_namespace(Wk=Wk, Wv=Wv, q=q)
        Wv = real_array("Wv", Wv)
        if Wv.ndim != 2 or min(Wv.shape) < 1:
            raise ValueError(f"Wv must have shape (d_v, d_in) with d_v, d_in >= 1, got "
                             f"{tuple(Wv.shape)}")
        dtype = Wv.dtype
        Wk = real_array("Wk", Wk, dtype=dtype)
        if Wk.ndim != 2 or Wk.shape[0] < 1 or Wk.shape[1] != Wv.shape[1]:
            raise ValueError(f"Wk must have shape (d_k, d_in) with d_in = {Wv.shape[1]} "
                             f"(as Wv), got {tuple(Wk.shape)}")
        q = real_array("q", q, (Wk.shape[0],), dtype=dtype)
        xp = namespace(Wv)
        if namespace(Wk, Wv, q) is not xp:
            raise TypeError("Wk, Wv and q must live in one array namespace")
        scale = 1.0 / math.sqrt(Wk.shape[0]) if scale is None else check_real("scale", scale)
        self.Wk, self.Wv, self.q, self.scale = Wk, Wv, q, scale
        with np.errstate(over="ignore"):         # an overflow is refused just below
            self._w = self.scale * (q @ Wk)      # scores are u @ w
        if not bool(xp.all(xp.isfinite(self._w))):
            raise ValueError(f"scale: scale * q @ Wk overflows {dtype} (scale={scale:g})")
        self._WvT = xp.asarray(Wv.T, copy=True)

    # -- protocol -----------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.Wv.shape[0]) + 2

    @property
    def sizes(self) -> tuple[int, ...]:
        return (int(self.Wv.shape[0]), 1, 1)

    @property
    def input_size(self) -> int:
        return int(self.Wv.shape[1])

    @property
    def dtype(self):
        return self.Wv.dtype

    @property
    def backend(self) -> str:
        return backend_of(self.Wv)

    def _parts(self, x, u):
        """The pieces of one step: ``a, c, m, v, m', gamma, beta, keep, empty``."""
        xp = namespace(x)
        d = self.Wv.shape[0]
        a, c, m = x[..., :d], x[..., d], x[..., d + 1]
        w = xp.astype(self._w, x.dtype) if self._w.dtype != x.dtype else self._w
        WvT = xp.astype(self._WvT, x.dtype) if self._WvT.dtype != x.dtype else self._WvT
        s = xp.sum(u * w, axis=-1)
        v = u @ WvT
        empty = c == 0
        keep = (m >= s) & ~empty
        m_new = xp.where(keep, m, s)
        zero = xp.zeros_like(m_new)
        gamma = xp.where(empty, zero, xp.exp(xp.where(empty, zero, m - m_new)))
        beta = xp.exp(s - m_new)
        return a, c, m, v, m_new, gamma, beta, keep, empty

    def step(self, x: Array, u: Array | None = None) -> Array:
        """``[a'; c'; m']``: the prefix with the token ``u`` appended."""
        x, u = self._check_driven(x, u)
        xp = namespace(x)
        a, c, _, v, m_new, gamma, beta, _, _ = self._parts(x, u)
        a_new = gamma[..., None] * a + beta[..., None] * v
        c_new = gamma * c + beta
        return xp.concat([a_new, c_new[..., None], m_new[..., None]], axis=-1)

    def _m_column(self, x, u):
        """``gamma``, ``d[a'; c']/d m`` (..., d_v + 1) and ``d m'/d m`` (...)."""
        xp = namespace(x)
        a, c, _, v, _, gamma, beta, keep, empty = self._parts(x, u)
        zero = xp.zeros_like(gamma)
        g_sw = xp.where(keep | empty, zero, gamma)   # d gamma / d m: switch branch only
        b_kp = xp.where(keep, -beta, zero)            # d beta / d m: keep branch only
        dc = g_sw * c + b_kp
        col = xp.concat([g_sw[..., None] * a + b_kp[..., None] * v, dc[..., None]], axis=-1)
        return gamma, col, xp.astype(keep, x.dtype)

    def jacobian(self, x: Array, u: Array | None = None) -> Array:
        """``d[a'; c'; m'] / d[a; c; m]`` (the class notes give the branches at a switch)."""
        x, u = self._check_driven(x, u)
        xp = namespace(x)
        d = self.Wv.shape[0]
        gamma, col, dm = self._m_column(x, u)
        top = gamma[..., None, None] * xp.eye(d + 1, dtype=x.dtype)   # (.., d+1, d+1)
        upper = xp.concat([top, col[..., None]], axis=-1)
        zeros_row = xp.zeros(upper.shape[:-2] + (1, d + 1), dtype=x.dtype)
        last = xp.concat([zeros_row, dm[..., None, None]], axis=-1)
        return xp.concat([upper, last], axis=-2)

    def tangent(self, x: Array, v: Array, u: Array | None = None) -> Array:
        x, u = self._check_driven(x, u)
        v = self._check_tangent(x, v)
        xp = namespace(x)
        d = self.Wv.shape[0]
        gamma, col, dm = self._m_column(x, u)
        vm = v[..., d + 1:d + 2, :]                            # (.., 1, k)
        out_ac = gamma[..., None, None] * v[..., :d + 1, :] + col[..., :, None] * vm
        return xp.concat([out_ac, dm[..., None, None] * vm], axis=-2)

    def vjp(self, x: Array, w: Array, u: Array | None = None) -> Array:
        x, u = self._check_driven(x, u)
        w = self._check_cotangent(x, w)
        xp = namespace(x)
        d = self.Wv.shape[0]
        gamma, col, dm = self._m_column(x, u)
        if w.ndim > x.ndim:                                    # k cotangents per state
            gamma, col, dm = gamma[..., None], col[..., None, :], dm[..., None]
        w_ac, w_m = w[..., :d + 1], w[..., d + 1]
        out_m = xp.sum(w_ac * col, axis=-1) + w_m * dm
        return xp.concat([gamma[..., None] * w_ac, out_m[..., None]], axis=-1)

    # -- outputs ----------------------------------------------------------
    def readout(self, x: Array) -> Array:
        """The attention output ``o = a / c`` of state(s) ``x``.

        Parameters
        ----------
        x : array of shape (..., dim)
            States, with any leading axes (a trajectory's ``states``, say).

        Returns
        -------
        array of shape (..., d_v)
            NaN for the empty prefix (``c == 0``): no tokens, no output.

        Examples
        --------
        >>> import itermap
        >>> m = itermap.AttentionRNN(np.ones((1, 1)), np.ones((1, 1)), np.zeros(1))
        >>> m.readout(np.array([6.0, 3.0, 0.0]))
        array([2.])
        """
        d = self.Wv.shape[0]
        if not hasattr(x, "shape") or x.shape[-1:] != (d + 2,):
            raise ValueError(f"x: states must have shape (..., {d + 2}), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        return x[..., :d] / x[..., d:d + 1]

    def scores(self, tokens: Array) -> Array:
        """The scores ``s = scale * q . (Wk @ u)`` of tokens ``(..., d_in)``."""
        return namespace(tokens).sum(tokens * self._w, axis=-1)

    def values(self, tokens: Array) -> Array:
        """The values ``Wv @ u`` of tokens ``(..., d_in)``."""
        return tokens @ self._WvT

    def to(self, backend: str) -> AttentionRNN:
        return AttentionRNN(to_backend(self.Wk, backend), to_backend(self.Wv, backend),
                            to_backend(self.q, backend), scale=self.scale)

    def __repr__(self) -> str:
        return (f"AttentionRNN(d_k={self.Wk.shape[0]}, d_v={self.Wv.shape[0]}, "
                f"d_in={self.Wv.shape[1]}, scale={self.scale:.4g})")


def combine(left, right):
    """Feng et al.'s associative operator (section 3.2) on prefix summaries ``(m, a, c)``:
    the largest score, ``sum v exp(s - m)`` and ``sum exp(s - m)`` of tokens ``i .. j``."""
    m_l, a_l, c_l = left
    m_r, a_r, c_r = right
    xp = namespace(m_l, m_r)
    m = xp.maximum(m_l, m_r)
    g_l, g_r = xp.exp(m_l - m), xp.exp(m_r - m)
    return m, a_l * g_l[..., None] + a_r * g_r[..., None], c_l * g_l + c_r * g_r


def _combine_max(early, late, need_A):
    # the running maximum as an associative scan: (A is unused, carried along)
    return late[0], namespace(late[1]).maximum(early[1], late[1])


def _running_max(s, xp):
    """``max(s_0 .. s_k)`` along axis 0: NumPy's accumulate, else the odd/even scan."""
    if isinstance(s, np.ndarray):
        return np.maximum.accumulate(s, axis=0)
    return _scan(s, s, _combine_max, False, xp)[1]


def attention_scan(scores: Array, values: Array) -> Array:
    """Softmax attention over every prefix, ``o_k = softmax(s_{1..k}) @ V_{1..k}``, by a scan.

    A max-scan gives the running maximum ``m_k``; then ``[a; c]`` follow a diagonal
    affine recurrence that :func:`itermap.linear_recurrence` solves in ``O(log T)``
    rounds. Every exponent is ``<= 0``, so scores of any size give finite outputs.

    Parameters
    ----------
    scores : array of shape (T, ...)
        The scores, time first; axes after the first are batch axes.
    values : array of shape (T, ..., d_v)
        The values, with the same time and batch axes.

    Returns
    -------
    array of shape (T, ..., d_v)
        ``o_1 .. o_T``, in the dtype of ``values`` and scores promoted together.

    Raises
    ------
    ValueError
        ``T == 0``, shapes that disagree, scores or values that are NaN or inf.
    TypeError
        Arrays that are not real (or are half precision), or from different namespaces.

    References
    ----------
    .. [1] L. Feng, F. Tung, H. Hajimirsadeghi, M. O. Ahmed, Y. Bengio and G. Mori,
       "Attention as an RNN", arXiv:2405.13956 (2024).
    .. [2] G. E. Blelloch, "Prefix sums and their applications", CMU-CS-90-190 (1990).

    Examples
    --------
    >>> from itermap import attention_scan
    >>> s = np.array([0.0, 1e4, -1e4])              # huge scores stay finite
    >>> v = np.array([[1.0], [2.0], [3.0]])
    >>> attention_scan(s, v)[:, 0]
    array([1., 2., 2.])
    >>> attention_scan(np.zeros(4), np.arange(4.0)[:, None])[:, 0]   # the running mean
    array([0. , 0.5, 1. , 1.5])
    """
    one_namespace(scores=scores, values=values)
    scores, values = real_array("scores", scores), real_array("values", values)
    xp = namespace(scores)
    if namespace(values) is not xp:
        raise TypeError("values lives in another array namespace than scores")
    if scores.ndim < 1 or scores.shape[0] == 0:
        raise ValueError(f"scores must have shape (T, ...) with T >= 1, got "
                         f"{tuple(scores.shape)}")
    if tuple(values.shape[:-1]) != tuple(scores.shape) or values.ndim < 1 \
            or values.shape[-1] == 0:
        raise ValueError(f"values of shape {tuple(values.shape)} do not fit scores of shape "
                         f"{tuple(scores.shape)}: values must be scores.shape + (d_v,)")
    dtype = xp.result_type(scores.dtype, values.dtype)
    s = xp.astype(scores, dtype)
    values = xp.astype(values, dtype)
    m = _running_max(s, xp)
    m_prev = xp.concat([m[:1, ...], m[:-1, ...]], axis=0)
    decay = xp.exp(m_prev - m)                       # (T, ...), <= 1
    weight = xp.exp(s - m)                           # (T, ...), <= 1
    b = xp.concat([values * weight[..., None], weight[..., None]], axis=-1)
    A = xp.broadcast_to(decay[..., None], b.shape)
    x0 = xp.zeros(b.shape[1:], dtype=dtype)
    ac = linear_recurrence(A, b, x0, kind="diagonal")
    return ac[..., :-1] / ac[..., -1:]
