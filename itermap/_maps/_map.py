"""The base class of every map: ``x -> F(x, u)`` on states ``(dim,)`` or ``(B, dim)``.

``step``, ``jacobian``, ``tangent`` and ``vjp`` are the inner loop: they pass NaN
through; the analyses check their starts, inputs and results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core._backend import backend_of, namespace
from .._core._checks import check_int, no_half, one_namespace, plain_array
from .._core._types import Array

__all__ = ["Map", "DivergenceError"]


def _vectors(x, v, name, what):
    """Tangent or cotangent vectors ``v`` as a real array of ``x``'s namespace."""
    if not hasattr(v, "shape"):
        raise TypeError(f"{what} vectors {name} must be an array")
    v = plain_array(name, v)
    one_namespace(**{"x": x, name: v})
    if not namespace(v).isdtype(v.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must be real, got dtype {v.dtype}")
    return v


def block_slice(sizes, i: int, owner: str) -> slice:
    """The slice of a stacked state with blocks ``sizes`` that holds block ``i``."""
    if not -len(sizes) <= i < len(sizes):
        raise ValueError(f"block {i} does not exist: the {owner} has {len(sizes)} blocks")
    i %= len(sizes)
    start = int(sum(sizes[:i]))
    return slice(start, start + int(sizes[i]))


class DivergenceError(ValueError):
    """A state or tangent vector overflowed to inf or NaN.

    Examples
    --------
    >>> import itermap
    >>> from itermap.systems import linear
    >>> try:
    ...     with np.errstate(over="ignore"):
    ...         itermap.iterate(linear(np.array([[1e200]])), np.array([1e200]), 3)
    ... except itermap.DivergenceError as err:
    ...     print("diverged:", "step 1" in str(err))
    diverged: True
    """


class Map:
    """Base class for discrete maps ``x_{k+1} = F(x_k, u_k)``.

    Subclasses implement :meth:`step` and at least one of :meth:`jacobian`
    and :meth:`tangent`; each default is written in terms of the other.

    Examples
    --------
    A map needs ``dim``, ``step`` and one of ``jacobian`` and ``tangent``:

    >>> import itermap
    >>> class Doubling(itermap.Map):
    ...     dim = 1
    ...     def step(self, x, u=None):
    ...         return 2.0 * x
    ...     def jacobian(self, x, u=None):
    ...         return np.full(x.shape[:-1] + (1, 1), 2.0)
    >>> m = Doubling()
    >>> m.step(np.array([1.5])), m.tangent(np.array([1.5]), np.ones((1, 3)))
    (array([3.]), array([[2., 2., 2.]]))
    """

    #: Index of the block overwritten by the external input, or None.
    input_block: int | None = None

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def sizes(self) -> tuple[int, ...]:
        """Block sizes of the state; a single block for the classic maps."""
        return (self.dim,)

    @property
    def input_size(self) -> int:
        """Length of the input vector ``u`` (0 for an autonomous map)."""
        return self.forced_size

    @property
    def forced_size(self) -> int:
        """How many state entries the input overwrites (the input block), 0 if none."""
        return 0 if self.input_block is None else self.sizes[self.input_block]

    @property
    def dtype(self):
        return None

    @property
    def backend(self) -> str:
        return "numpy"

    @property
    def periods(self) -> tuple | None:
        """The period of each coordinate of a map on a torus, or None (the default).

        A period or None (no wrap) per coordinate: :func:`~itermap.iterate` and the
        Lyapunov steppers wrap onto ``[0, P)`` after each step, fixed points are
        solved modulo the periods; ``step`` may stay the smooth lift.

        Examples
        --------
        >>> from itermap.systems import henon, standard_map
        >>> henon().periods is None, standard_map().periods == (2 * 3.141592653589793,) * 2
        (True, True)
        """
        return None

    def wrap(self, x: Array) -> Array:
        """``x`` with each periodic coordinate reduced onto ``[0, P)``; ``x`` on a plane.

        Parameters
        ----------
        x : array of shape (..., dim)
            States, with any leading axes.

        Returns
        -------
        array
            Of ``x``'s shape (``x`` itself where :attr:`periods` is None).

        Examples
        --------
        >>> from itermap.systems import standard_map
        >>> np.round(standard_map().wrap(np.array([7.0, -1.0])), 4)
        array([0.7168, 5.2832])
        """
        from .._running._stepper import wrap_periodic

        return wrap_periodic(x, self.periods)

    def _point_functions(self):
        """``(step, jacobian, params)`` on one state, for the stepper (numba compiles them)."""
        return self.step, self.jacobian, None

    def _scalar_kernel(self):
        """A 2-D map's step and Jacobian on floats (a ``ScalarSource`` or function), or None."""
        return None

    def tangent_stepper(self, x: Array, Q: Array, u: Array | None = None, *,
                        steps: int = 0) -> Any:
        """A stepper that advances trajectories and their tangent frames, or None.

        The Lyapunov analyses loop over it (None: the general batched path). The
        default is the small-map stepper (NumPy float64, up to 64 units, no input);
        a network returns its fused steppers. A context manager is entered around
        the loop.

        Parameters
        ----------
        x : array of shape (B, dim)
            The starts.
        Q : array of shape (B, dim, k)
            Orthonormal tangent frames.
        u : array, optional
            A constant input (the default stepper takes none: None is returned).
        steps : int
            How many steps the caller means to run (a compiled loop pays its
            compile time back only on long runs).

        Returns
        -------
        SmallStepper or None
            With ``advance(n, every=..., acc=..., r_out=..., q_out=...)`` and
            the current ``x`` and ``Q``.

        Examples
        --------
        >>> from itermap.systems import linear
        >>> s = linear(np.diag([2.0, 0.5])).tangent_stepper(np.ones((1, 2)), np.eye(2)[None])
        >>> acc = np.zeros((1, 2))
        >>> s.advance(10, acc=acc) is not None, np.round(acc / 10, 6)
        (True, array([[ 0.693147, -0.693147]]))
        """
        from .._running._stepper import SmallStepper

        step, jac, params = self._point_functions()
        return SmallStepper.build(step, jac, x, Q, params=params, periods=self.periods, u=u,
                                  total_steps=steps, scalar=self._scalar_kernel())

    @property
    def jacobian_nnz(self) -> int | None:
        """Nonzeros of :meth:`sparse_jacobian` at most (for memory estimates), or None.

        Examples
        --------
        >>> from itermap.systems import henon
        >>> henon().jacobian_nnz is None
        True
        """
        return None

    def sparse_jacobian(self, x: Array, u: Array | None = None) -> Any:
        """``dF/dx`` at one state as a sparse matrix, or None: the map has none.

        The large-map solvers (Newton-Krylov, the homotopy) factor it where the map
        gives one, and work with :meth:`tangent` products where it does not. The
        default is None; a map whose Jacobian is sparse (a network with sparse
        weights) returns it, with at most :attr:`jacobian_nnz` nonzeros.

        Parameters
        ----------
        x : array of shape (dim,)
            One state.
        u : array, optional
            The input of a driven map, as for :meth:`step`.

        Returns
        -------
        sparse matrix of shape (dim, dim), or None
            CSR (SciPy, or CuPy's on the GPU); None on the base class.

        Examples
        --------
        >>> from itermap.systems import henon
        >>> henon().sparse_jacobian(np.zeros(2)) is None
        True
        """
        return None

    def approximate_jacobian(self, x: Array, u: Array | None = None, *,
                             max_nnz: int | None = None) -> Any:
        """A sparse matrix near ``dF/dx`` at one state, to precondition solves, or None.

        Newton-Krylov factors it (complete or incomplete LU) to precondition its IDR(s)
        on :meth:`tangent` products, so it needs to be near the Jacobian, not equal to
        it. The default is :meth:`sparse_jacobian`; a map with no sparse Jacobian but a
        sparse approximation of one (a network with function blocks) returns that.

        Parameters
        ----------
        x : array of shape (dim,)
            One state.
        u : array, optional
            The input of a driven map, as for :meth:`step`.
        max_nnz : int, optional
            None is returned where the matrix would hold more nonzeros (it is then
            not built).

        Returns
        -------
        sparse matrix of shape (dim, dim), or None
            CSR (SciPy, or CuPy's on the GPU).

        Raises
        ------
        ValueError
            Where :meth:`sparse_jacobian` raises.

        Examples
        --------
        >>> import itermap
        >>> m = itermap.random_rnn(50, density=0.1, rng=0)
        >>> x = np.full(50, 0.1)
        >>> bool(np.allclose(m.approximate_jacobian(x).toarray(), m.jacobian(x)))
        True
        >>> m.approximate_jacobian(x, max_nnz=10) is None
        True
        """
        nnz = self.jacobian_nnz
        if nnz is not None and max_nnz is not None and nnz > max_nnz:
            return None
        return self.sparse_jacobian(x, u)

    # -- protocol ---------------------------------------------------------
    def step(self, x: Array, u: Array | None = None) -> Array:
        """The next state ``F(x, u)``.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
        u : array, optional
            The input of a driven map: ``(input_size,)``, or ``(B, input_size)`` for a
            batch; None for an autonomous map.

        Returns
        -------
        array
            ``F(x, u)``, of ``x``'s shape.

        Raises
        ------
        ValueError
            An input ``u`` given to an autonomous map, or none to a driven one.
        NotImplementedError
            On the base class: subclasses implement it.

        Examples
        --------
        >>> from itermap.systems import henon
        >>> henon().step(np.array([0.0, 0.0]))
        array([1., 0.])
        """
        raise NotImplementedError

    def jacobian(self, x: Array, u: Array | None = None) -> Array:
        """``dF/dx`` at ``x``: shape ``(dim, dim)`` or ``(B, dim, dim)``.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
        u : array, optional
            The input of a driven map, as for :meth:`step`.

        Returns
        -------
        array of shape (dim, dim) or (B, dim, dim)

        Examples
        --------
        >>> from itermap.systems import henon
        >>> henon().jacobian(np.array([0.5, 0.0]))
        array([[-1.4,  1. ],
               [ 0.3,  0. ]])
        """
        x = self._check_state(x)
        xp = namespace(x)
        eye = xp.eye(self.dim, dtype=x.dtype)
        if x.ndim == 2:
            eye = xp.broadcast_to(eye, (x.shape[0], self.dim, self.dim))
        return self.tangent(x, eye, u)

    def tangent(self, x: Array, v: Array, u: Array | None = None) -> Array:
        """``J(x) @ v`` for ``v`` of shape ``(dim, k)`` or ``(B, dim, k)``.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
        v : array of shape (dim, k) or (B, dim, k)
            Tangent vectors, as columns.
        u : array, optional
            The input of a driven map, as for :meth:`step`.

        Returns
        -------
        array
            ``J(x) @ v``, of ``v``'s shape.

        Examples
        --------
        >>> from itermap.systems import linear
        >>> linear(np.array([[0.0, 1.0], [2.0, 0.0]])).tangent(np.zeros(2), np.eye(2)[:, :1])
        array([[0.],
               [2.]])
        """
        x = self._check_state(x)
        v = self._check_tangent(x, v)
        return namespace(x).matmul(self.jacobian(x, u), v)

    def vjp(self, x: Array, w: Array, u: Array | None = None) -> Array:
        """``w^T J(x)``: ``w`` of shape ``(dim,)`` or ``(k, dim)`` for one state,
        ``(B, dim)`` or ``(B, k, dim)`` for a batch; the result has ``w``'s shape.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
        w : array of shape (dim,), (k, dim), (B, dim) or (B, k, dim)
            Cotangent vectors, as rows.
        u : array, optional
            The input of a driven map, as for :meth:`step`.

        Returns
        -------
        array
            ``w^T J(x)``, of ``w``'s shape.

        Examples
        --------
        >>> from itermap.systems import linear
        >>> linear(np.array([[0.0, 1.0], [2.0, 0.0]])).vjp(np.zeros(2), np.array([1.0, 0.0]))
        array([0., 1.])
        """
        x = self._check_state(x)
        w = self._check_cotangent(x, w)
        xp = namespace(x)
        J = self.jacobian(x, u)
        if x.ndim == 2 and w.ndim == 2:
            return xp.matmul(w[:, None, :], J)[:, 0, :]
        return xp.matmul(w, J)

    def step_with_tangent(self, x: Array, v: Array,
                          u: Array | None = None) -> tuple[Array, Array]:
        """``(step(x, u), tangent(x, v, u))``; subclasses share work between them.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
        v : array of shape (dim, k) or (B, dim, k)
            Tangent vectors, as columns.
        u : array, optional
            The input of a driven map, as for :meth:`step`.

        Returns
        -------
        (array, array)
            The next state and the propagated tangent vectors.

        Examples
        --------
        >>> from itermap.systems import linear
        >>> x, v = linear(np.array([[0.5]])).step_with_tangent(np.array([2.0]), np.ones((1, 1)))
        >>> x, v
        (array([1.]), array([[0.5]]))
        """
        return self.step(x, u), self.tangent(x, v, u)

    # -- helpers ----------------------------------------------------------
    def zeros(self, batch: int | None = None) -> Array:
        """The zero state, ``(dim,)`` or ``(batch, dim)``, on the map's backend.

        Parameters
        ----------
        batch : int, optional
            The number of states of a batch; one state by default.

        Returns
        -------
        array of shape (dim,) or (batch, dim)

        Raises
        ------
        TypeError
            ``batch`` that is not an integer (a shape tuple, say).
        ValueError
            A negative ``batch``.

        Examples
        --------
        >>> from itermap.systems import henon
        >>> henon().zeros(3).shape
        (3, 2)
        """
        shape = (self.dim,) if batch is None else (check_int("batch", batch, 0), self.dim)
        if self.backend not in ("numpy", "cupy"):   # another array API library's map
            import importlib

            from array_api_compat import array_namespace

            xp = array_namespace(importlib.import_module(self.backend).asarray(0.0))
            return xp.zeros(shape, dtype=self.dtype)
        z = np.zeros(shape, dtype=self.dtype or np.float64)
        if self.backend == "cupy":
            from .._core._backend import to_backend

            return to_backend(z, "cupy")
        return z

    def block_slice(self, i: int) -> slice:
        """The slice of the state vector that holds block ``i``.

        Parameters
        ----------
        i : int
            The block (negative counts from the end).

        Returns
        -------
        slice

        Raises
        ------
        ValueError
            When the block does not exist.

        Examples
        --------
        >>> from itermap import IterativeMap
        >>> IterativeMap(np.zeros((6, 6)), sizes=[1, 3, 2]).block_slice(-1)
        slice(4, 6, None)
        """
        return block_slice(self.sizes, i, "map")

    def read_block(self, x: Array, i: int) -> Array:
        """Block ``i`` of state(s) ``x`` (works on any leading batch/time axes).

        Parameters
        ----------
        x : array of shape (..., dim)
            States, with any leading axes.
        i : int
            The block.

        Returns
        -------
        array of shape (..., sizes[i])

        Examples
        --------
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.zeros((3, 3)), sizes=[1, 2])
        >>> m.read_block(np.arange(3.0), 1)
        array([1., 2.])
        """
        return x[..., self.block_slice(i)]

    def readout(self, x: Array) -> Array:
        """The last block of ``x``: an MLP map's output.

        Parameters
        ----------
        x : array of shape (..., dim)
            States, with any leading axes.

        Returns
        -------
        array of shape (..., sizes[-1])

        Examples
        --------
        >>> from itermap import IterativeMap
        >>> IterativeMap(np.zeros((3, 3)), sizes=[2, 1]).readout(np.arange(3.0))
        array([2.])
        """
        return self.read_block(x, -1)

    # True for maps whose NumPy or CuPy arrays (weights, a matrix) meet the state
    _holds_arrays = False

    def _check_state(self, x, name: str = "x"):
        """``x`` as a real floating state (dim,) or batch (B, dim); errors name ``name``.

        Masked arrays with a mask, 0-d and float16 arrays (no LAPACK routine works in half
        precision) are refused; ``np.matrix``, big-endian and integer states are converted.
        """
        if x is None:
            raise TypeError(f"{name}: the state is None")
        if type(x) is not np.ndarray or not x.dtype.isnative:
            x = plain_array(name, x)
        # the inner loop skips this; a list or tuple becomes NumPy of the map's dtype below
        if self._holds_arrays and type(x) is not np.ndarray and hasattr(x, "shape"):
            lib, home = backend_of(x), self.backend
            if lib != home and not {lib, home} <= {"numpy", "cupy"}:
                raise TypeError(f"{name}: all arrays must come from one namespace: the state "
                                f"is {lib}, the map's arrays are {home}; move one with "
                                f"map.to(...) or to_backend(...)")
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            if isinstance(x, str | bytes):
                raise TypeError(f"{name}: a state must be an array, got {type(x).__name__}")
            try:
                dtype = self.dtype if isinstance(self.dtype, np.dtype) else float
                x = np.asarray(x, dtype=dtype)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{name}: a state must be a real array ({err})") from None
        xp = namespace(x)
        if x.ndim not in (1, 2):
            raise ValueError(f"{name}: a state must have shape (dim,) or (B, dim), got shape "
                             f"{tuple(x.shape)}")
        if x.shape[-1] != self.dim:
            raise ValueError(f"{name}: the state has dimension {x.shape[-1]}, but the map has "
                             f"dim={self.dim}")
        if x.ndim == 2 and x.shape[0] == 0:
            raise ValueError(f"{name}: an empty batch of states (shape {tuple(x.shape)})")
        if not xp.isdtype(x.dtype, "real floating"):
            if xp.isdtype(x.dtype, ("integral", "bool")):
                x = xp.astype(x, self.dtype if self.dtype is not None else xp.float64)
            else:
                raise TypeError(f"{name}: a state must be real floating point, got dtype "
                                f"{x.dtype}")
        return no_half(name, x)

    def check_start(self, x0: Array, name: str = "x0") -> Array:
        """``x0`` checked as the start of a run: a finite real state or batch of this map.

        Parameters
        ----------
        x0 : array of shape (dim,) or (B, dim)
            One state or a batch of states.
        name : str
            The parameter name the error messages give.

        Returns
        -------
        array
            ``x0`` as a real floating array of its namespace (integer states
            converted to the map's dtype).

        Raises
        ------
        ValueError
            A shape other than ``(dim,)`` or ``(B, dim)``, or NaN or inf.
        TypeError
            Not a real array.

        Examples
        --------
        >>> from itermap.systems import henon
        >>> henon().check_start([0, 1])
        array([0., 1.])
        """
        return self._check_start(x0, name)

    def _check_start(self, x0, name: str = "x0"):
        """``x0`` checked as a state that is also finite: the start of a run."""
        x = self._check_state(x0, name)
        xp = namespace(x)
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError(f"{name} contains NaN or inf")
        return x

    def _check_tangent(self, x, v):
        v = _vectors(x, v, "v", "tangent")
        if v.ndim != x.ndim + 1:
            want = "(dim, k)" if x.ndim == 1 else "(B, dim, k)"
            raise ValueError(f"tangent vectors v must have shape {want} for a state x of shape "
                             f"{tuple(x.shape)}, got {tuple(v.shape)}")
        if v.shape[-2] != self.dim or (x.ndim == 2 and v.shape[0] != x.shape[0]):
            raise ValueError(f"tangent vectors v of shape {tuple(v.shape)} do not match state "
                             f"shape {tuple(x.shape)} (dim={self.dim})")
        return v

    def _check_cotangent(self, x, w):
        w = _vectors(x, w, "w", "cotangent")
        ok_ndim = (1, 2) if x.ndim == 1 else (2, 3)
        if w.ndim not in ok_ndim or w.shape[-1] != self.dim or \
                (x.ndim == 2 and w.shape[0] != x.shape[0]):
            want = "(dim,) or (k, dim)" if x.ndim == 1 else "(B, dim) or (B, k, dim)"
            raise ValueError(f"cotangent vectors w must have shape {want} for a state x of shape "
                             f"{tuple(x.shape)} (dim={self.dim}), got {tuple(w.shape)}")
        return w

    def _no_input(self, u):
        if u is not None:
            raise ValueError(f"{type(self).__name__} is autonomous: it takes no input u")

    def _autonomous_state(self, x, u):
        """The checked state ``x`` of an autonomous map (an input ``u`` refused first)."""
        self._no_input(u)
        return self._check_state(x)

    def _check_input_shape(self, x, u, where: str = ""):
        """A driven map's input ``u`` as an array of shape ``(input_size,)`` or ``(B, input_size)``
        for the checked state ``x``; ``where`` ends the message of a missing ``u``."""
        if u is None:
            raise ValueError(f"this map is driven: step needs an input u of length "
                             f"{self.input_size}{where}")
        u = plain_array("u", u)
        if not hasattr(u, "shape"):
            u = namespace(x).asarray(np.asarray(u, dtype=float))
        if u.shape[-1:] != (self.input_size,) or u.ndim > x.ndim or (
                u.ndim == 2 and x.ndim == 2 and u.shape[0] != x.shape[0]):
            raise ValueError(f"input u has shape {tuple(u.shape)}; expected ({self.input_size},)"
                             + (f" or ({x.shape[0]}, {self.input_size})" if x.ndim == 2 else ""))
        return u

    def _check_driven(self, x, u):
        """The checked state and input of a driven map whose input enters ``F(x, u)``."""
        x = self._check_state(x)
        u = self._check_input_shape(x, u)
        if u.dtype != x.dtype:
            u = namespace(x).astype(u, x.dtype)
        return x, u

    def to(self, backend: str) -> Map:
        """A copy of the map on ``backend`` ("numpy" or "cupy").

        Parameters
        ----------
        backend : {"numpy", "cupy"}

        Returns
        -------
        Map
            A copy of the map whose arrays live on ``backend``.

        Raises
        ------
        NotImplementedError
            On the base class; ValueError (in subclasses) for an unknown or unavailable backend.

        Examples
        --------
        >>> from itermap.systems import henon
        >>> henon().to("numpy").backend
        'numpy'
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} dim={self.dim}>"

