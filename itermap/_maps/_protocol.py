"""The open map protocol: :func:`as_map`, :class:`FunctionMap` and :func:`check_map`.

Any object with ``dim``, a batched ``step(x)`` or ``step(x, u)``, and ``jacobian``
or ``tangent`` is a map: :func:`as_map`, the one adapter every analysis passes its
map through, wraps it in a :class:`FunctionMap` that supplies the rest of the
protocol. No subclass is required.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._core._backend import backend_of, namespace, to_backend, to_numpy
from .._core._checks import check_int, check_real, one_namespace, plain_array
from .._core._result import Result
from .._core._types import Array, MapLike, RngLike
from ._finite_difference import (
    FINITE_DIFFERENCES,
    central_tangent,
    modulo_periods,
    period_table,
)
from ._map import Map

__all__ = ["ConformanceError", "FunctionMap", "MapCheck", "as_map", "check_map"]


def _accepts_input(fn: Callable, n_before: int) -> bool:
    """Whether ``fn`` takes an argument ``u`` after its ``n_before`` positional ones."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: assume the full form
        return True
    positional = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
        if p.name == "u":
            return True
    return positional > n_before


class FunctionMap(Map):
    """A map from plain functions.

    Parameters
    ----------
    step : callable
        ``step(x)`` or ``step(x, u)``: the next state, batched (``x`` of shape
        ``(dim,)`` or ``(B, dim)``; the result has the same shape).
    dim : int
        Dimension of the state.
    jacobian : callable or "central", optional
        ``jacobian(x)`` or ``jacobian(x, u)``: ``dF/dx``, of shape ``(dim, dim)``
        or ``(B, dim, dim)``. ``"central"``: central differences of ``step``
        (``2 k`` batched evaluations for ``k`` directions, about ``1e-10``
        relative error in float64 [1]_), for a map whose derivative is not at
        hand, as ChaosTools.jl differentiates one automatically; on a map with
        ``periods`` the differences are taken modulo the periods.
    tangent : callable, optional
        ``tangent(x, v)`` or ``tangent(x, v, u)``: ``J(x) @ v`` for ``v`` of shape
        ``(dim, k)`` or ``(B, dim, k)``. At least one of ``jacobian`` and
        ``tangent`` is needed; each is derived from the other.
    vjp : callable, optional
        ``vjp(x, w)`` or ``vjp(x, w, u)``: ``w^T J(x)``; derived from ``jacobian``
        when missing.
    input_size : int
        Length of the input ``u`` of a driven map; 0 (the default) for an
        autonomous map.
    name : str, optional
        Shown in the ``repr``.
    periods : sequence of (float or None), optional
        For a map on a torus: the period of each coordinate (None where a
        coordinate does not wrap); see :attr:`Map.periods`.

    Notes
    -----
    The functions are the inner loop and pass NaN through; the analyses check
    inputs and results. Each result is checked for the protocol's shape (and not
    complex) as it comes, naming the map and the function. Functions in numba's
    subset run compiled where numba is installed (:meth:`Map.tangent_stepper`).
    ``to`` returns the map itself.

    Examples
    --------
    The Lozi map, from two functions:

    >>> from itermap import FunctionMap, check_map
    >>> def lozi(x, a=1.7, b=0.5):
    ...     return np.stack([1 - a * np.abs(x[..., 0]) + x[..., 1], b * x[..., 0]], -1)
    >>> def lozi_jac(x, a=1.7, b=0.5):
    ...     J = np.zeros(x.shape + (2,))
    ...     J[..., 0, 0] = -a * np.sign(x[..., 0])
    ...     J[..., 0, 1] = 1.0
    ...     J[..., 1, 0] = b
    ...     return J
    >>> m = FunctionMap(lozi, 2, jacobian=lozi_jac, name="lozi")
    >>> m.step(np.array([0.1, 0.2]))
    array([1.03, 0.05])
    >>> check_map(m).passed
    True

    Without the Jacobian, by central differences:

    >>> fd = FunctionMap(lozi, 2, jacobian="central")
    >>> bool(np.allclose(fd.jacobian(np.array([0.3, 0.1])),
    ...                  lozi_jac(np.array([0.3, 0.1])), atol=1e-9))
    True

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, "Numerical Optimization", 2nd ed., Springer
       2006, sec. 8.1 (finite-difference derivative approximations).
    """

    def __init__(self, step: Callable, dim: int, *, jacobian: Callable | str | None = None,
                 tangent: Callable | None = None, vjp: Callable | None = None,
                 input_size: int = 0, name: str | None = None,
                 periods: tuple | list | None = None):
        if not callable(step):
            raise TypeError(f"step must be callable, got {type(step).__name__}")
        if isinstance(jacobian, str):
            if jacobian not in FINITE_DIFFERENCES:
                raise ValueError(f"jacobian must be callable, None or one of "
                                 f"{FINITE_DIFFERENCES}, got {jacobian!r}")
            if tangent is not None:
                raise ValueError(f"jacobian={jacobian!r} differentiates step: give no tangent")
            jacobian = None
            tangent = central_tangent(step, _accepts_input(step, 1),
                                      check_periods(periods, check_int("dim", dim, 1)))
        for label, fn in (("jacobian", jacobian), ("tangent", tangent), ("vjp", vjp)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{label} must be callable or None, got {type(fn).__name__}")
        if jacobian is None and tangent is None:
            raise TypeError("a map needs jacobian or tangent (J @ v); neither was given "
                            "(jacobian='central' takes central differences of step)")
        self._dim = check_int("dim", dim, 1)
        self._input_size = check_int("input_size", input_size, 0)
        self._step, self._jac, self._tan, self._vjp = step, jacobian, tangent, vjp
        self._step_u = _accepts_input(step, 1)
        self._jac_u = jacobian is not None and _accepts_input(jacobian, 1)
        self._tan_u = tangent is not None and _accepts_input(tangent, 2)
        self._vjp_u = vjp is not None and _accepts_input(vjp, 2)
        if self._input_size and not self._step_u:
            raise TypeError(f"input_size={self._input_size} but step takes no input u")
        self.name = name or getattr(step, "__name__", "function")
        self._periods = check_periods(periods, self._dim)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def periods(self) -> tuple | None:
        return self._periods

    def _point_functions(self):
        if self._jac is None or self._input_size:
            return super()._point_functions()
        return self._step, self._jac, None

    @property
    def input_size(self) -> int:
        return self._input_size

    def _call(self, fn, takes_u, u, *args, names=("x",)):
        # the wrapped functions get plain arrays: no masks, np.matrix or foreign byte order
        args = tuple(a if type(a) is np.ndarray and a.dtype.isnative else plain_array(n, a)
                     for a, n in zip(args, names))
        if u is not None and (type(u) is not np.ndarray or not u.dtype.isnative):
            u = plain_array("u", u)
        if u is None or not takes_u:
            if u is not None:
                raise ValueError(f"{self.name} is autonomous: it takes no input u")
            return fn(*args)
        return fn(*args, u)

    def _out(self, member, y, like, shape):
        """What the user's ``member`` returned, checked: an array of ``shape``, not complex.

        A list, another shape or a complex dtype is named here, not deep inside an analysis
        (one shape comparison per call); ``like`` that is no array is not checked.
        """
        if shape is None:
            return y
        if not hasattr(y, "shape") or not hasattr(y, "dtype"):
            raise TypeError(f"map: its {member} returned a {type(y).__name__}, not an array "
                            f"of shape {tuple(shape)} (map {self.name}; a list of coordinates: "
                            f"np.stack them along the last axis)")
        if type(y) is not type(like) and backend_of(y) != backend_of(like):
            raise TypeError(f"map: its {member} returned a {backend_of(y)} "
                            f"{type(y).__name__} for a {backend_of(like)} argument; it must "
                            f"return an array of its argument's library (a torch tensor: "
                            f".detach().numpy()) (map {self.name})")
        if tuple(y.shape) != tuple(shape):
            batch = ("; the protocol's functions take a batch of states, shape (B, dim)"
                     if len(y.shape) != len(shape) else "")
            raise ValueError(f"map: its {member} returned shape {tuple(y.shape)} for an "
                             f"argument of shape {tuple(like.shape)}; expected {tuple(shape)} "
                             f"(map {self.name}{batch})")
        if y.dtype != like.dtype and namespace(y).isdtype(y.dtype, "complex floating"):
            raise TypeError(f"map: its {member} returned complex dtype {y.dtype}; the states "
                            f"of a map are real (map {self.name})")
        return y

    def step(self, x: Array, u: Array | None = None) -> Array:
        return self._out("step", self._call(self._step, self._step_u, u, x), x,
                         getattr(x, "shape", None))

    def jacobian(self, x: Array, u: Array | None = None) -> Array:
        if self._jac is None:
            return super().jacobian(x, u)
        shape = getattr(x, "shape", None)
        return self._out("jacobian", self._call(self._jac, self._jac_u, u, x), x,
                         None if shape is None else (*shape[:-1], self._dim, self._dim))

    def tangent(self, x: Array, v: Array, u: Array | None = None) -> Array:
        if self._tan is None:
            return super().tangent(x, v, u)
        return self._out("tangent", self._call(self._tan, self._tan_u, u, x, v,
                                               names=("x", "v")), v, getattr(v, "shape", None))

    def vjp(self, x: Array, w: Array, u: Array | None = None) -> Array:
        if self._vjp is None:
            return super().vjp(x, w, u)
        return self._out("vjp", self._call(self._vjp, self._vjp_u, u, x, w, names=("x", "w")),
                         w, getattr(w, "shape", None))

    def to(self, backend: str) -> FunctionMap:
        # plain functions follow the arrays they are given; nothing to move
        return self

    def __repr__(self) -> str:
        inp = f" input_size={self.input_size}" if self.input_size else ""
        return f"<FunctionMap {self.name} dim={self.dim}{inp}>"


def check_periods(periods, dim: int) -> tuple | None:
    """``periods`` as a tuple of ``dim`` positive floats or None, or None; errors name it."""
    if periods is None:
        return None
    if isinstance(periods, str | bytes) or not hasattr(periods, "__len__") \
            or getattr(periods, "ndim", 1) == 0:
        raise TypeError(f"periods must be a sequence of dim={dim} periods (float or None), "
                        f"got {type(periods).__name__}")
    if len(periods) != dim:
        raise ValueError(f"periods has {len(periods)} entries; the map has dim={dim}")
    out = [None if P is None else check_real(f"periods[{i}]", P, positive=True)
           for i, P in enumerate(periods)]
    return None if all(P is None for P in out) else tuple(out)


def as_map(obj: MapLike) -> Map:
    """The map protocol for ``obj``: the adapter at the entry of every analysis.

    Parameters
    ----------
    obj : Map or any object with ``dim``, ``step`` and ``jacobian`` or ``tangent``
        A :class:`~itermap.Map` is returned unchanged. Any other object is
        wrapped: its own ``input_size``, ``vjp``, ``backend`` and ``dtype`` are
        used where it has them.

    Returns
    -------
    Map

    Raises
    ------
    TypeError
        Naming what is missing: ``map is None``, ``object has no step``, a
        ``dim`` that is no positive integer, or ``needs jacobian or tangent``.

    Notes
    -----
    What the object's functions return is checked as they run (an array of the protocol's
    shape, not complex), but not its values: :func:`check_map` compares a hand-written
    ``jacobian`` with central differences of ``step``, and a step with itself (in place,
    deterministic, batched).

    Examples
    --------
    >>> import itermap
    >>> class Cubic:                       # x -> r x - x^3, a plain class
    ...     dim = 1
    ...     def step(self, x):
    ...         return 2.5 * x - x**3
    ...     def jacobian(self, x):
    ...         return (2.5 - 3 * x**2)[..., None]
    >>> m = itermap.as_map(Cubic())
    >>> m.input_size, m.tangent(np.array([1.0]), np.ones((1, 1)))
    (0, array([[-0.5]]))
    >>> itermap.as_map(None)
    Traceback (most recent call last):
    ...
    TypeError: map is None
    """
    if obj is None:
        raise TypeError("map is None")
    if isinstance(obj, Map):
        return obj
    kind = type(obj).__name__
    if not callable(getattr(obj, "step", None)):
        plain = ("; a plain function f is wrapped as itermap.FunctionMap(f, dim, "
                 "jacobian='central')" if callable(obj) else "")
        raise TypeError(f"{kind} object has no step: a map needs dim, step(x[, u]) and "
                        f"jacobian or tangent{plain}")
    if not hasattr(obj, "dim"):
        raise TypeError(f"{kind} object has no dim: a map needs dim, step(x[, u]) and "
                        f"jacobian or tangent")
    jac, tan = getattr(obj, "jacobian", None), getattr(obj, "tangent", None)
    given = [f"its {n} is a {type(f).__name__}" for n, f in (("jacobian", jac), ("tangent", tan))
             if f is not None and not callable(f)]  # a constant matrix, say
    jac = jac if callable(jac) else None
    tan = tan if callable(tan) else None
    if jac is None and tan is None:
        why = f" ({', '.join(given)}, not a function of x)" if given else ""
        raise TypeError(f"{kind} object needs jacobian or tangent (J @ v){why}; without them, "
                        f"itermap.FunctionMap(obj.step, obj.dim, jacobian='central') "
                        f"differentiates its step by central differences")
    vjp = getattr(obj, "vjp", None)
    try:
        dim = check_int("dim", obj.dim, 1)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{kind}.dim: {err}") from None
    input_size = getattr(obj, "input_size", 0) or 0
    try:
        periods = check_periods(getattr(obj, "periods", None), dim)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{kind}.periods: {err}") from None
    return FunctionMap(obj.step, dim, jacobian=jac, tangent=tan,
                       vjp=vjp if callable(vjp) else None, input_size=input_size, name=kind,
                       periods=periods)


class ConformanceError(AssertionError):
    """A map breaks the protocol; the message names the member that fails.

    Examples
    --------
    >>> from itermap import ConformanceError, FunctionMap, check_map
    >>> wrong = FunctionMap(lambda x: x ** 2, 1, jacobian=lambda x: np.ones(x.shape + (1,)))
    >>> try:
    ...     check_map(wrong, np.array([2.0]))
    ... except ConformanceError as err:
    ...     print(str(err).split(":")[0])
    jacobian
    """


@dataclass(frozen=True)
class MapCheck(Result):
    """What :func:`check_map` measured: the largest relative error per member.

    Attributes
    ----------
    errors : dict
        ``{member: largest relative error}`` for each member checked.
    tolerance : float
        The largest relative error accepted.
    passed : bool
        Whether every error is within the tolerance.

    Examples
    --------
    >>> from itermap import check_map, systems
    >>> result = check_map(systems.henon(), rng=0)
    >>> result.passed, sorted(result.errors)[:2]
    (True, ['jacobian', 'step'])
    """

    errors: dict
    tolerance: float

    @property
    def passed(self) -> bool:
        return all(e <= self.tolerance for e in self.errors.values())

    def __repr__(self) -> str:
        errs = ", ".join(f"{k}={v:.1e}" for k, v in self.errors.items())
        return f"MapCheck(passed={self.passed}, {errs})"


def _rel(a, b) -> float:
    a, b = to_numpy(a), to_numpy(b)
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1.0)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def _fail(member, message):
    raise ConformanceError(f"{member}: {message}")


def check_map(m: MapLike, x: Array | None = None, *, u: Array | None = None,
              rng: RngLike = None, tol: float = 1e-6) -> MapCheck:
    """Check that ``m`` keeps the map protocol, member by member.

    At a batch of states: ``step`` batched against row by row (shape, backend,
    dtype kept), ``jacobian`` against central differences of ``step``, and
    ``tangent``, ``vjp``, ``step_with_tangent`` against ``jacobian``.

    Parameters
    ----------
    m : map
        Anything :func:`as_map` accepts.
    x : array of shape (dim,) or (B, dim), optional
        Where to check; by default 3 states drawn from a standard normal.
    u : array, optional
        The input of a driven map (drawn when not given).
    rng : int, Generator or None
        Seeds the states, inputs and probe vectors.
    tol : float
        Largest relative error accepted (central differences give ~1e-8).

    Returns
    -------
    MapCheck
        The measured errors; ``passed`` is True.

    Raises
    ------
    ConformanceError
        Naming the member that fails (an ``AssertionError``).

    Examples
    --------
    >>> import itermap
    >>> check_map(itermap.systems.henon()).passed
    True
    """
    from .._core._rng import as_rng

    gen = as_rng(rng)
    m = as_map(m)
    tol = check_real("tol", tol, positive=True)
    dim = m.dim
    if x is None:
        x = gen.standard_normal((3, dim))
        if m.backend == "cupy":  # a map on the GPU takes no host states
            x = to_backend(x, "cupy")
    x = m._check_state(x, "x")
    xp = namespace(x)
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError("x contains NaN or inf: check a map at finite states")
    if x.ndim == 1:
        x = x[None, :]
    if m.dtype is not None and x.dtype != m.dtype:
        x = xp.astype(x, m.dtype)
    if m.input_size and u is None:     # drawn in the states' dtype: a float32 map stays so
        u = xp.astype(xp.asarray(gen.standard_normal((x.shape[0], m.input_size))), x.dtype)
    u = plain_array("u", u)
    one_namespace(x=x, u=u)
    if u is not None and not hasattr(u, "shape"):
        u = xp.asarray(np.asarray(u, dtype=float))
    B = x.shape[0]
    errors = {}
    kept = xp.asarray(x, copy=True)
    y = m.step(x, u)
    if not bool(xp.all(x == kept)):
        _fail("step", "changed its argument x in place; a step must leave the states it is "
                      "given unchanged (the analyses step the same states again)")
    if not hasattr(y, "shape") or tuple(y.shape) != tuple(x.shape):
        _fail("step", f"a batch of shape {tuple(x.shape)} gave "
                      f"{getattr(y, 'shape', type(y).__name__)}")
    if y.dtype != x.dtype:
        _fail("step", f"turned dtype {x.dtype} into {y.dtype}")
    if backend_of(y) != backend_of(x):
        _fail("step", f"moved the state from {backend_of(x)} to {backend_of(y)}")
    again = _rel(m.step(x, u), y)
    if again > tol:
        _fail("step", f"two calls on the same states differ by {again:.2e}; a step must be "
                      f"deterministic (noise enters a driven map as its input u)")
    rows = xp.stack([m.step(x[i, ...], u if u is None or u.ndim != 2 else u[i, ...])
                     for i in range(B)])
    errors["step"] = _rel(y, rows)
    if errors["step"] > tol:
        _fail("step", f"a batched step differs from row-by-row steps by {errors['step']:.2e}")
    J = m.jacobian(x, u)
    if tuple(J.shape) != (B, dim, dim):
        _fail("jacobian", f"shape {tuple(J.shape)} for a batch of {B}, want {(B, dim, dim)}")
    if backend_of(J) != backend_of(x):
        _fail("jacobian", f"is on {backend_of(J)}, the state on {backend_of(x)}")
    Jn, xn = to_numpy(J), to_numpy(x)
    fd = np.empty_like(Jn)
    table = period_table(m.periods)   # a step that wraps: differences modulo the periods
    for j in range(dim):
        h = 1e-6 * max(1.0, float(np.max(np.abs(xn[:, j]))))
        e = np.zeros(dim)
        e[j] = h
        diff = to_numpy(m.step(xp.asarray(xn + e), u)) - to_numpy(m.step(xp.asarray(xn - e), u))
        fd[:, :, j] = modulo_periods(diff, table) / (2 * h)
    errors["jacobian"] = _rel(Jn, fd)
    if not math.isfinite(errors["jacobian"]) or errors["jacobian"] > tol:
        _fail("jacobian", f"differs from central differences of step by "
                          f"{errors['jacobian']:.2e} (tolerance {tol:g})")

    k = 2
    v = xp.asarray(gen.standard_normal((B, dim, k)))
    tv = m.tangent(x, v, u)
    if tuple(tv.shape) != (B, dim, k):
        _fail("tangent", f"shape {tuple(tv.shape)} for v of shape {(B, dim, k)}")
    errors["tangent"] = _rel(tv, Jn @ to_numpy(v))
    if errors["tangent"] > tol:
        _fail("tangent", f"differs from jacobian @ v by {errors['tangent']:.2e}")

    w = xp.asarray(gen.standard_normal((B, dim)))
    wj = m.vjp(x, w, u)
    want = np.einsum("bi,bij->bj", to_numpy(w), Jn)
    if tuple(wj.shape) != (B, dim):
        _fail("vjp", f"shape {tuple(wj.shape)} for w of shape {(B, dim)}")
    errors["vjp"] = _rel(wj, want)
    if errors["vjp"] > tol:
        _fail("vjp", f"differs from w @ jacobian by {errors['vjp']:.2e}")

    y2, tv2 = m.step_with_tangent(x, v, u)
    errors["step_with_tangent"] = max(_rel(y2, y), _rel(tv2, tv))
    if errors["step_with_tangent"] > tol:
        _fail("step_with_tangent", f"differs from (step, tangent) by "
                                   f"{errors['step_with_tangent']:.2e}")
    return MapCheck(errors, tol)
