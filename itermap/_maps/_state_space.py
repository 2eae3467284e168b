"""Linear state-space layers (LSSL, Gu et al., arXiv:2110.13985) as driven maps.

:func:`hippo` gives the HiPPO matrices, :class:`LinearStateSpace` one discretised
layer, :func:`deep_lssl` a stack of them as one :class:`~itermap.IterativeMap`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg

from .._core._backend import backend_of, namespace, to_backend, to_numpy
from .._core._checks import (
    check_choice,
    check_int,
    check_real,
    no_half,
    one_namespace,
    plain_array,
    real_array,
)
from .._core._types import Array
from ._blocks import BlockMatrix
from ._map import Map
from ._network import IterativeMap

__all__ = ["LinearStateSpace", "deep_lssl", "hippo"]

HIPPO_KINDS = ("legs", "legt", "lagt")
METHODS = ("bilinear", "zoh", "discrete")


def hippo(kind: str, N: int) -> tuple[np.ndarray, np.ndarray]:
    """The HiPPO matrices ``(A, B)`` of the continuous system ``x' = A x + B u``.

    As the HiPPO paper defines them (section 2 and appendix D; window ``theta = 1``
    for LegT, ``beta = 1`` for LagT), with ``n, k = 0 .. N - 1``:

    - ``"legs"`` (scaled Legendre): ``A_nk = -sqrt(2n+1) sqrt(2k+1)`` for ``n > k``,
      ``-(n+1)`` on the diagonal, 0 above it; ``B_n = sqrt(2n+1)``. (The
      time-invariant form the LSSL uses: the paper's ``x' = -A x / t + B u / t``
      without the ``1/t``.)
    - ``"legt"`` (translated Legendre): ``A_nk = -(2n+1)`` for ``n < k`` and
      ``-(2n+1) (-1)^(n-k)`` for ``n >= k``; ``B_n = (2n+1) (-1)^n``.
    - ``"lagt"`` (translated Laguerre): ``A = -L`` with ``L`` lower triangular of
      ones (diagonal included); ``B_n = 1``.

    Parameters
    ----------
    kind : {"legs", "legt", "lagt"}
        The measure.
    N : int
        The state size (>= 1).

    Returns
    -------
    (A, B)
        ``A`` of shape ``(N, N)`` and ``B`` of shape ``(N, 1)``, float64.

    Raises
    ------
    ValueError
        An unknown ``kind``, ``N < 1``, or an ``N`` whose matrices exceed the memory.
    TypeError
        A non-integer ``N``.

    References
    ----------
    .. [1] A. Gu, T. Dao, S. Ermon, A. Rudra and C. Re, "HiPPO: Recurrent memory with
       optimal polynomial projections", NeurIPS 2020, arXiv:2008.07669.
    .. [2] A. Gu, I. Johnson, K. Goel, K. Saab, T. Dao, A. Rudra and C. Re, "Combining
       recurrent, convolutional, and continuous-time models with linear state-space
       layers", NeurIPS 2021, arXiv:2110.13985.

    Examples
    --------
    >>> from itermap.systems import hippo
    >>> A, B = hippo("legs", 3)
    >>> np.round(A, 4)
    array([[-1.    ,  0.    ,  0.    ],
           [-1.7321, -2.    ,  0.    ],
           [-2.2361, -3.873 , -3.    ]])
    >>> np.round(B[:, 0] ** 2, 12)
    array([1., 3., 5.])
    """
    from .._core._checks import check_memory

    kind = check_choice("kind", kind, HIPPO_KINDS)
    N = check_int("N", N, 1)
    check_memory("N", 5 * 8 * N * N, f"the {N} x {N} matrices")  # A and its temporaries
    n = np.arange(N, dtype=np.float64)
    row, col = n[:, None], n[None, :]
    if kind == "legs":
        r = np.sqrt(2 * n + 1)
        A = -np.where(row > col, r[:, None] * r[None, :], 0.0) - np.diag(n + 1)
        B = r[:, None]
    elif kind == "legt":
        sign = np.where(row >= col, (-1.0) ** (row - col), 1.0)
        A = -(2 * row + 1) * sign
        B = ((2 * n + 1) * (-1.0) ** n)[:, None]
    else:
        A = -np.tril(np.ones((N, N)))
        B = np.ones((N, 1))
    return A, B


def _is_complex(a) -> bool:
    """Whether ``a`` (an array of any library, or a nested list) holds complex numbers."""
    if isinstance(a, np.ndarray):
        return a.dtype.kind == "c"
    if hasattr(a, "dtype") and hasattr(a, "shape"):
        try:
            return bool(namespace(a).isdtype(a.dtype, "complex floating"))
        except (TypeError, ValueError, AttributeError):
            return False
    if a is None or isinstance(a, str | bytes):
        return False
    try:
        return np.asarray(a).dtype.kind == "c"
    except (TypeError, ValueError):  # ragged: real_array's message says why
        return False


def _matrix(name, a, *, ndim_hint, dtype=None, complex_ok=False):
    """``a`` as a finite 2-d array (a vector becomes ``ndim_hint``: column or row), real
    unless ``complex_ok`` (complex entries then kept, cast to ``dtype`` where given)."""
    if complex_ok and _is_complex(a):
        a = no_half(name, plain_array(name, a))
        if not hasattr(a, "shape"):
            a = np.asarray(a, dtype=np.complex128)
        xp = namespace(a)
        if dtype is not None and a.dtype != dtype:
            a = xp.astype(a, dtype)
        if not bool(xp.all(xp.isfinite(a))):
            raise ValueError(f"{name} contains NaN or inf")
    else:
        a = real_array(name, a, dtype=dtype)
    xp = namespace(a)
    if a.ndim == 0:
        a = xp.reshape(a, (1, 1))
    elif a.ndim == 1:
        a = a[:, None] if ndim_hint == "column" else a[None, :]
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"{name} must be a non-empty matrix, got shape {tuple(a.shape)}")
    return a


def discretize(A: np.ndarray, B: np.ndarray, dt: float, method: str):
    """``(Abar, Bbar)`` on the host in ``A``'s dtype, float64 or complex128 (``method``
    "bilinear", "zoh", or "discrete": ``A`` and ``B`` as they are)."""
    N = A.shape[0]
    if method == "discrete":
        return A, B
    if method == "bilinear":
        M = np.eye(N) - 0.5 * dt * A
        if np.linalg.cond(M) > 1e14:
            raise ValueError(f"dt={dt}: I - dt A / 2 is singular (dt A has an eigenvalue 2), "
                             f"so the bilinear discretisation does not exist")
        return np.linalg.solve(M, np.eye(N) + 0.5 * dt * A), np.linalg.solve(M, dt * B)
    P = B.shape[1]
    big = np.zeros((N + P, N + P), dtype=A.dtype)
    big[:N, :N], big[:N, N:] = A, B
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by the caller
        E = scipy.linalg.expm(dt * big)
    return E[:N, :N], E[:N, N:]


def _realify(Ab, Bb, C):
    """The real form of ``h' = Ab h + Bb u``, ``y = Re(C h)`` on ``[Re h; Im h]``."""
    return (np.block([[Ab.real, -Ab.imag], [Ab.imag, Ab.real]]),
            np.concatenate([Bb.real, Bb.imag]), np.concatenate([C.real, -C.imag], axis=1))


class LinearStateSpace(Map):
    """A linear state-space layer: ``x' = A x + B u``, ``y = C x + D u``, discretised.

    With step ``dt``: ``method="bilinear"`` (Tustin, the LSSL's default),
    ``Abar = (I - dt A / 2)^-1 (I + dt A / 2)``, ``Bbar = (I - dt A / 2)^-1 dt B``;
    ``"zoh"``, ``Abar = exp(dt A)``, ``Bbar = A^-1 (exp(dt A) - I) B`` (by the
    exponential of ``[[A, B], [0, 0]] dt``: a singular ``A`` is fine). The map is
    ``x_k = Abar x_{k-1} + Bbar u_k``; :meth:`readout` gives ``y_k = C x_k + D u_k``
    (``C``, ``D`` as given, as in the LSSL). From the zero state it is the
    convolution ``y_k = sum_j K_j u_{k-j} + D u_k``, ``K_j = C Abar^j Bbar``
    (:meth:`kernel`, :meth:`convolve`).

    ``A``, ``B`` and ``C`` may be complex (the diagonal layers S4D, S5 and the LRU,
    :meth:`from_discrete`): the system is discretised in complex arithmetic and the
    map realified, so its state stays real: ``h = a + i b`` is ``[a; b]`` (dimension
    ``2N``), ``Abar -> [[Re Abar, -Im Abar], [Im Abar, Re Abar]]``,
    ``Bbar -> [Re Bbar; Im Bbar]``, and :meth:`readout` gives ``Re(C h) + D u`` (by
    ``[Re C, -Im C]``), the kernel ``K_j = Re(C Abar^j Bbar)``.

    Parameters
    ----------
    A : array of shape (N, N)
        The continuous state matrix, real or complex.
    B : array of shape (N, P) or (N,)
        The input matrix (a vector is one input), real or complex.
    C : array of shape (Q, N) or (N,)
        The output matrix (a vector is one output), real or complex.
    D : array of shape (Q, P), optional
        The feedthrough, real; zero by default.
    dt : float
        The step (positive and finite).
    method : {"bilinear", "zoh", "discrete"}
        The discretisation; ``"discrete"`` takes ``A`` and ``B`` as ``Abar`` and
        ``Bbar`` already (what :meth:`from_discrete` records).

    Attributes
    ----------
    A, B, C, D : arrays
        As given (complex where given complex).
    Abar, Bbar : arrays of shape (dim, dim) and (dim, P)
        The map's real matrices (realified for a complex system: ``dim = 2N``).
    is_complex : bool
        Whether ``A``, ``B`` or ``C`` is complex.

    Raises
    ------
    ValueError
        Shapes that disagree, NaN or inf entries, a ``dt`` that is not positive or
        whose discretisation does not exist or overflows, an unknown ``method``.
    TypeError
        A complex ``D``, arrays that are not numeric, arrays of two libraries.

    Notes
    -----
    ``A``'s namespace is the map's, and its precision: float64 (complex128 inputs) or
    float32 (complex64). Discretised on the host in float64 or complex128.
    Channels (the ``H`` features of an LSSL layer) are a batch: inputs ``(L, H, P)``.

    References
    ----------
    .. [1] A. Gu, I. Johnson, K. Goel, K. Saab, T. Dao, A. Rudra and C. Re, "Combining
       recurrent, convolutional, and continuous-time models with linear state-space
       layers", NeurIPS 2021, arXiv:2110.13985.
    .. [2] A. Gu, T. Dao, S. Ermon, A. Rudra and C. Re, "HiPPO: Recurrent memory with
       optimal polynomial projections", NeurIPS 2020, arXiv:2008.07669.
    .. [3] A. Gu, K. Goel, A. Gupta and C. Re, "On the parameterization and
       initialization of diagonal state space models", NeurIPS 2022, arXiv:2206.11893.
    .. [4] J. T. H. Smith, A. Warrington and S. W. Linderman, "Simplified state space
       layers for sequence modeling", ICLR 2023, arXiv:2208.04933.

    Examples
    --------
    The recurrence (:func:`itermap.iterate`) and the convolution agree:

    >>> import itermap
    >>> A, B = itermap.systems.hippo("legs", 4)
    >>> m = itermap.LinearStateSpace(A, B, np.ones(4), dt=0.1)
    >>> u = np.random.default_rng(0).normal(size=(50, 1))
    >>> traj = itermap.iterate(m, m.zeros(), 50, inputs=u)
    >>> y_rec = m.readout(traj.states[1:], u)
    >>> bool(np.allclose(y_rec, m.convolve(u)))
    True
    >>> m.kernel(3).shape                     # (L, Q, P)
    (3, 1, 1)

    A complex diagonal layer (S5's form) is a real map of twice the size:

    >>> s5 = itermap.LinearStateSpace(np.diag([-0.5 + 1j, -0.5 - 1j]), np.ones(2),
    ...                               [1.0, 1.0j], dt=0.1, method="zoh")
    >>> s5
    LinearStateSpace(N=2 complex, dim=4, inputs=1, outputs=1, dt=0.1, method='zoh')
    """

    def __init__(self, A: Array, B: Array, C: Array, D: Array | None = None, *,
                 dt: float, method: str = "bilinear"):
        method = check_choice("method", method, METHODS)
        an, bn = ("Abar", "Bbar") if method == "discrete" else ("A", "B")
        one_namespace(**{an: A, bn: B}, C=C, D=D)
        if D is not None and _is_complex(D):
            raise TypeError("D must be real: the output y = Re(C h) + D u of a real input u "
                            "sees only Re(D); pass D.real")
        is_complex = _is_complex(A) or _is_complex(B) or _is_complex(C)
        A = _matrix(an, A, ndim_hint="column", complex_ok=True)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"{an} must be square, got shape {tuple(A.shape)}")
        xp = namespace(A)
        if is_complex:   # A's precision: complex64 (or float32) -> float32 and complex64
            single = A.dtype in (xp.float32, xp.complex64)
            dtype = xp.float32 if single else xp.float64
            cdtype = xp.complex64 if single else xp.complex128
            A = xp.astype(A, cdtype)
        else:
            dtype = cdtype = A.dtype
        N = A.shape[0]
        B = _matrix(bn, B, ndim_hint="column", dtype=cdtype, complex_ok=True)
        C = _matrix("C", C, ndim_hint="row", dtype=cdtype, complex_ok=True)
        if B.shape[0] != N:
            raise ValueError(f"{bn} has {B.shape[0]} rows, {an} is {N} x {N}")
        if C.shape[1] != N:
            raise ValueError(f"C has {C.shape[1]} columns, {an} is {N} x {N}")
        if D is None:
            D = xp.zeros((C.shape[0], B.shape[1]), dtype=dtype)
        D = _matrix("D", D, ndim_hint="row", dtype=dtype)
        if tuple(D.shape) != (C.shape[0], B.shape[1]):
            raise ValueError(f"D must have shape {(C.shape[0], B.shape[1])} (outputs, inputs), "
                             f"got {tuple(D.shape)}")
        for name, a in ((bn, B), ("C", C), ("D", D)):
            if namespace(a) is not xp:
                raise TypeError(f"{name} lives in another array namespace than {an}")
        self.dt = check_real("dt", dt, positive=True)
        self.method = method
        host = np.complex128 if is_complex else np.float64
        Ab, Bb = discretize(np.asarray(to_numpy(A), dtype=host),
                            np.asarray(to_numpy(B), dtype=host), self.dt, self.method)
        if not (np.all(np.isfinite(Ab)) and np.all(np.isfinite(Bb))):
            raise ValueError(f"dt={self.dt}: the discretised system overflows")
        self.A, self.B, self.C, self.D = A, B, C, D
        self.is_complex = is_complex
        Cr = C
        if is_complex:
            Ab, Bb, Cr = _realify(Ab, Bb, np.asarray(to_numpy(C), dtype=np.complex128))
            Cr = xp.asarray(Cr, dtype=dtype)
        self._C = Cr                 # the readout of the (real) state: C, or [Re C, -Im C]
        self.Abar = xp.asarray(Ab, dtype=dtype)
        self.Bbar = xp.asarray(Bb, dtype=dtype)
        self._AbarT = xp.asarray(self.Abar.T, copy=True)
        self._BbarT = xp.asarray(self.Bbar.T, copy=True)

    @classmethod
    def from_discrete(cls, Abar: Array, Bbar: Array, C: Array,
                      D: Array | None = None) -> LinearStateSpace:
        """A layer from already-discrete parameters: ``h_k = Abar h_{k-1} + Bbar u_k``.

        The LRU's form (Orvieto et al. 2023): a trained complex diagonal
        ``Abar = diag(Lambda)`` and ``Bbar = diag(gamma) B`` (the normalisation folded
        into ``Bbar``), ``y_k = Re(C h_k) + D u_k``. Nothing is discretised: the map's
        ``Abar`` and ``Bbar`` are these (realified when complex, as in
        :class:`LinearStateSpace`); ``dt`` is recorded as 1 (one sample), ``method``
        as ``"discrete"``.

        Parameters
        ----------
        Abar : array of shape (N, N)
            The discrete state matrix, real or complex (a diagonal ``diag(Lambda)``).
        Bbar : array of shape (N, P) or (N,)
            The discrete input matrix, real or complex.
        C : array of shape (Q, N) or (N,)
            The output matrix, real or complex.
        D : array of shape (Q, P), optional
            The real feedthrough; zero by default.

        Returns
        -------
        LinearStateSpace

        Raises
        ------
        ValueError
            Shapes that disagree, NaN or inf entries.
        TypeError
            A complex ``D``, arrays that are not numeric, arrays of two libraries.

        References
        ----------
        .. [1] A. Orvieto, S. L. Smith, A. Gu, A. Fernando, C. Gulcehre, R. Pascanu and
           S. De, "Resurrecting recurrent neural networks for long sequences", ICML 2023,
           arXiv:2303.06349.

        Examples
        --------
        An LRU layer of two complex modes is a real map of dimension 4:

        >>> import itermap
        >>> lam = np.array([0.9 * np.exp(0.3j), 0.5 * np.exp(-1.2j)])
        >>> m = itermap.LinearStateSpace.from_discrete(np.diag(lam), np.ones(2), [1.0, 1j])
        >>> m.dim, m.dtype
        (4, dtype('float64'))
        >>> bool(np.allclose(m.kernel(3)[:, 0, 0], [(np.array([1, 1j]) @ lam ** j).real
        ...                                          for j in range(3)]))
        True
        """
        return cls(Abar, Bbar, C, D, dt=1.0, method="discrete")

    # -- protocol -----------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.Abar.shape[0])

    @property
    def input_size(self) -> int:
        return int(self.B.shape[1])

    @property
    def output_size(self) -> int:
        """``Q``, the number of outputs."""
        return int(self.C.shape[0])

    @property
    def dtype(self):
        return self.Abar.dtype

    @property
    def backend(self) -> str:
        return backend_of(self.A)

    def _cast(self, a, x):
        return a if a.dtype == x.dtype else namespace(x).astype(a, x.dtype)

    def step(self, x: Array, u: Array | None = None) -> Array:
        x, u = self._check_driven(x, u)
        return x @ self._cast(self._AbarT, x) + u @ self._cast(self._BbarT, x)

    def jacobian(self, x: Array, u: Array | None = None) -> Array:
        x, u = self._check_driven(x, u)
        xp = namespace(x)
        Ab = self._cast(self.Abar, x)
        if x.ndim == 1:
            return xp.asarray(Ab, copy=True)
        return xp.broadcast_to(Ab, (x.shape[0], self.dim, self.dim))

    def tangent(self, x: Array, v: Array, u: Array | None = None) -> Array:
        x, u = self._check_driven(x, u)
        v = self._check_tangent(x, v)
        return self._cast(self.Abar, x) @ v

    def vjp(self, x: Array, w: Array, u: Array | None = None) -> Array:
        x, u = self._check_driven(x, u)
        w = self._check_cotangent(x, w)
        return w @ self._cast(self.Abar, x)

    # -- outputs, kernel, convolution ---------------------------------------
    def readout(self, x: Array, u: Array | None = None) -> Array:
        """The output ``y = C x + D u`` (``C x`` without ``u``; ``Re(C h)`` if complex).

        Parameters
        ----------
        x : array of shape (..., dim)
            States, with any leading axes (``traj.states[1:]``, say).
        u : array of shape (..., P), optional
            The inputs of the same steps: ``y_k = C x_k + D u_k`` where ``x_k``
            is the state after ``u_k``.

        Returns
        -------
        array of shape (..., Q)

        Raises
        ------
        ValueError
            States or inputs of the wrong width.

        Examples
        --------
        >>> import itermap
        >>> m = itermap.LinearStateSpace(-np.eye(2), np.ones(2), [1.0, 2.0], [[3.0]], dt=0.1)
        >>> m.readout(np.array([1.0, 1.0]), np.array([1.0]))
        array([6.])
        """
        if not hasattr(x, "shape") or x.shape[-1:] != (self.dim,):
            raise ValueError(f"x: states must have shape (..., {self.dim}), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        y = x @ self._cast(self._C, x).T
        if u is None:
            return y
        if not hasattr(u, "shape") or u.shape[-1:] != (self.input_size,):
            raise ValueError(f"u: inputs must have shape (..., {self.input_size}), got "
                             f"{getattr(u, 'shape', type(u).__name__)}")
        return y + u @ self._cast(self.D, x).T

    def kernel(self, L: int) -> Array:
        """The convolution kernel ``K_j = C Abar^j Bbar`` (its real part if complex).

        Built by doubling the Krylov block ``[V, Abar^n V]`` (``ceil(log2 L)`` products).

        Parameters
        ----------
        L : int
            The kernel length (>= 1).

        Returns
        -------
        array of shape (L, Q, P)

        Raises
        ------
        ValueError
            ``L < 1``.
        TypeError
            A non-integer ``L``.

        Examples
        --------
        >>> import itermap
        >>> m = itermap.LinearStateSpace(np.zeros((1, 1)), [1.0], [1.0], dt=0.5)
        >>> m.kernel(3)[:, 0, 0]                   # Abar = 1, Bbar = dt
        array([0.5, 0.5, 0.5])
        """
        L = check_int("L", L, 1)
        return namespace(self.Abar).permute_dims(self._kernel_qpl(L), (2, 0, 1))

    def _kernel_qpl(self, L):
        """The kernel as (Q, P, L), time last: one 2-d product per doubling."""
        xp = namespace(self.Abar)
        P = self.input_size
        V = self.Bbar                                      # (N, n P): blocks Abar^j Bbar
        power, n = self.Abar, 1
        while n < L:
            V = xp.concat([V, power @ V], axis=1)
            n *= 2
            if n < L:
                power = power @ power
        K = self._C @ V[:, :L * P]                            # (Q, L P), column j P + p
        return xp.permute_dims(xp.reshape(K, (self.output_size, L, P)), (0, 2, 1))

    def convolve(self, u: Array) -> Array:
        """The outputs ``y_0 .. y_{L-1}`` from the zero state, by FFT convolution.

        Parameters
        ----------
        u : array of shape (L, P) or (L, B, P)
            The inputs, time first (a batch of ``B`` sequences, or channels, in the
            middle), as :func:`itermap.iterate` takes them.

        Returns
        -------
        array of shape (L, Q) or (L, B, Q)
            ``y_k = sum_{j <= k} K_j u_{k-j} + D u_k``: what the recurrence gives.

        Raises
        ------
        ValueError
            Inputs of the wrong shape, or NaN or inf.
        TypeError
            Inputs that are not real.

        Examples
        --------
        >>> import itermap
        >>> m = itermap.LinearStateSpace(np.zeros((1, 1)), [1.0], [1.0], dt=0.5)
        >>> m.convolve(np.ones((4, 1)))[:, 0]      # a running sum, times dt
        array([0.5, 1. , 1.5, 2. ])
        """
        u = real_array("u", u)
        xp = namespace(self.Abar)
        if backend_of(u) != self.backend:
            u = to_backend(u, self.backend)
        if u.ndim not in (2, 3) or u.shape[0] == 0 or u.shape[-1] != self.input_size \
                or 0 in u.shape:
            raise ValueError(f"u must have shape (L, {self.input_size}) or "
                             f"(L, B, {self.input_size}) with L, B >= 1, got {tuple(u.shape)}")
        u = xp.astype(u, self.dtype)
        if not bool(xp.all(xp.isfinite(u))):  # a float64 input may overflow the map's float32
            raise ValueError("u contains NaN or inf")
        L = u.shape[0]
        n = 1 << (2 * L - 1).bit_length()                     # >= 2L - 1: no wrap-around
        Kf = xp.fft.rfft(self._kernel_qpl(L), n=n, axis=-1)   # (Q, P, F), time last
        batch = u if u.ndim == 3 else u[:, None, :]
        Uf = xp.fft.rfft(xp.permute_dims(batch, (1, 2, 0)), n=n, axis=-1)   # (B, P, F)
        Q, P = self.output_size, self.input_size
        if P * Q <= 64:   # few channels: a broadcast product beats F tiny matmuls
            Yf = xp.sum(Uf[:, None, :, :] * Kf[None, ...], axis=2)         # (B, Q, F)
        else:
            Yf = xp.permute_dims(xp.matmul(xp.permute_dims(Uf, (2, 0, 1)),
                                           xp.permute_dims(Kf, (2, 1, 0))), (1, 2, 0))
        y = xp.permute_dims(xp.fft.irfft(Yf, n=n, axis=-1)[..., :L], (2, 0, 1))   # (L, B, Q)
        y = xp.astype(y, self.dtype) + batch @ self.D.T
        return y if u.ndim == 3 else y[:, 0, :]

    def to(self, backend: str) -> LinearStateSpace:
        return LinearStateSpace(to_backend(self.A, backend), to_backend(self.B, backend),
                                to_backend(self.C, backend), to_backend(self.D, backend),
                                dt=self.dt, method=self.method)

    def __repr__(self) -> str:
        N = f"N={self.A.shape[0]} complex, dim={self.dim}" if self.is_complex else f"N={self.dim}"
        return (f"LinearStateSpace({N}, inputs={self.input_size}, "
                f"outputs={self.output_size}, dt={self.dt:g}, method={self.method!r})")


def deep_lssl(layers: Sequence[LinearStateSpace], *, activation: str = "tanh",
              output_activation: str = "identity") -> IterativeMap:
    """A deep LSSL as one iterative map: linear recurrent blocks between nonlinear ones.

    Layer ``l`` contributes its state ``h_l' = Abar_l h_l + Bbar_l z_{l-1}`` (identity
    activation) and its output ``z_l' = f(C_l Abar_l h_l + (C_l Bbar_l + D_l) z_{l-1})``,
    ``z_0 = u``: each layer adds one step of delay, and ``z_L`` after step ``t + L`` is
    the stack's output for ``u_t``. The block matrix is an MLP's pattern with the
    linear recurrent blocks ``Abar_l`` on the diagonal.

    Parameters
    ----------
    layers : sequence of LinearStateSpace
        Bottom layer first; each layer's ``input_size`` is the ``output_size`` of
        the layer below. On NumPy. A complex layer's block ``h_l`` is its real state
        ``[Re h; Im h]``.
    activation : str
        The position-wise nonlinearity of the hidden outputs ``z_1 .. z_{L-1}``
        (a name in :data:`itermap.ACTIVATIONS`).
    output_activation : str
        That of the last output ``z_L``.

    Returns
    -------
    IterativeMap
        Blocks ``[u, h_1, z_1, ..., h_L, z_L]``, input block 0.

    Raises
    ------
    ValueError
        No layers, sizes that do not chain, an unknown activation.
    TypeError
        A layer that is not a :class:`LinearStateSpace`.

    References
    ----------
    .. [1] A. Gu, I. Johnson, K. Goel, K. Saab, T. Dao, A. Rudra and C. Re, "Combining
       recurrent, convolutional, and continuous-time models with linear state-space
       layers", NeurIPS 2021, arXiv:2110.13985.
    .. [2] Q. Hershey, R. Paffenroth, H. Pathak and S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).

    Examples
    --------
    >>> import itermap
    >>> A, B = itermap.systems.hippo("legs", 3)
    >>> one = itermap.LinearStateSpace(A, B, np.ones(3), dt=0.1)
    >>> net = itermap.deep_lssl([one, one])
    >>> net.sizes
    (1, 3, 1, 3, 1)
    >>> net.block_matrix.block_pattern().astype(int)
    array([[0, 0, 0, 0, 0],
           [1, 1, 0, 0, 0],
           [1, 1, 0, 0, 0],
           [0, 0, 1, 1, 0],
           [0, 0, 1, 1, 0]])
    """
    if isinstance(layers, LinearStateSpace) or isinstance(layers, str | bytes) \
            or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of LinearStateSpace, got "
                        f"{type(layers).__name__}")
    layers = list(layers)
    if not layers:
        raise ValueError("layers: a deep LSSL needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, LinearStateSpace):
            raise TypeError(f"layers[{i}] is a {type(layer).__name__}, not a LinearStateSpace")
        if i and layer.input_size != layers[i - 1].output_size:
            raise ValueError(f"layers[{i}] takes {layer.input_size} inputs, but layers[{i - 1}] "
                             f"has {layers[i - 1].output_size} outputs")
    from ._activations import get_activation

    for name, act in (("activation", activation), ("output_activation", output_activation)):
        try:
            get_activation(act)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{name}: {err}") from None
    sizes = [layers[0].input_size]
    blocks: dict[tuple[int, int], np.ndarray] = {}
    acts = ["identity"]
    for i, layer in enumerate(layers):
        h, z, prev = 2 * i + 1, 2 * i + 2, 2 * i
        sizes += [layer.dim, layer.output_size]
        Ab, Bb, C, D = (np.asarray(to_numpy(a), dtype=np.float64)
                        for a in (layer.Abar, layer.Bbar, layer._C, layer.D))
        blocks[(h, h)], blocks[(h, prev)] = Ab, Bb
        blocks[(z, h)], blocks[(z, prev)] = C @ Ab, C @ Bb + D
        acts += ["identity", output_activation if i == len(layers) - 1 else activation]
    # products in float64, the network in the layers' dtype (float32 layers: a float32 map)
    dtype = np.result_type(*(layer.dtype for layer in layers))
    blocks = {k: b.astype(dtype, copy=False) for k, b in blocks.items()}
    return IterativeMap(BlockMatrix(sizes, blocks), None, acts, input_block=0)
