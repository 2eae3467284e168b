"""Classic low-dimensional maps, with the same protocol as the networks.

They are the reference points of the analyses: their exponents, fixed points
and orbits are known in closed form or from the literature.
"""

from __future__ import annotations

import math

import numpy as np

from .._core._backend import backend_of, namespace, to_backend, to_numpy
from .._core._checks import check_real, check_real_array, real_array
from .._core._types import Array
from .._running._stepper import ScalarSource
from ._map import Map

__all__ = ["LogisticMap", "HenonMap", "LinearMap", "StandardMap",
           "logistic", "henon", "linear", "standard_map"]


# -- point functions: states (dim,) or (B, dim), unchecked, in numba's subset (_stepper) --
def _logistic_point(x, p):
    return p[0] * x * (1.0 - x)


def _logistic_point_jac(x, p):
    J = np.empty(x.shape + (1,))
    J[..., 0, 0] = p[0] * (1.0 - 2.0 * x[..., 0])
    return J


def _henon_point(x, p):
    y = np.empty_like(x)
    y[..., 0] = 1.0 - p[0] * x[..., 0] * x[..., 0] + x[..., 1]
    y[..., 1] = p[1] * x[..., 0]
    return y


def _henon_point_jac(x, p):
    J = np.empty(x.shape + (2,))
    J[..., 0, 0] = -2.0 * p[0] * x[..., 0]
    J[..., 0, 1] = 1.0
    J[..., 1, 0] = p[1]
    J[..., 1, 1] = 0.0
    return J


def _standard_point(x, p):
    y = np.empty_like(x)
    y[..., 1] = x[..., 1] + p[0] * np.sin(x[..., 0])
    y[..., 0] = x[..., 0] + y[..., 1]
    return y


def _standard_point_jac(x, p):
    J = np.empty(x.shape + (2,))
    J[..., 1, 0] = p[0] * np.cos(x[..., 0])
    J[..., 0, 0] = 1.0 + J[..., 1, 0]
    J[..., 0, 1] = 1.0
    J[..., 1, 1] = 1.0
    return J


def _linear_point(x, A):
    return x @ A.T


def _linear_point_jac(x, A):
    return A.copy()


def _plain2(x) -> bool:
    """Whether ``x`` is a NumPy float64 state (2,) or batch (B, 2), B > 0: the 2-D maps then
    skip the general checks and write their results in place (no stacks; the same numbers)."""
    return (type(x) is np.ndarray and x.dtype == np.float64 and 0 < x.ndim < 3
            and x.shape[-1] == 2 and x.size > 0)


class LogisticMap(Map):
    """``x -> r x (1 - x)`` on ``[0, 1]``.

    ``r`` is a float, or an array of shape ``(B,)`` giving each trajectory of a
    batch its own parameter (for orbit diagrams).

    Parameters
    ----------
    r : float or array of shape (B,)
        The growth rate; an array gives each state of a batch its own.

    Examples
    --------
    >>> from itermap.systems import LogisticMap
    >>> LogisticMap(np.array([2.0, 4.0])).step(np.array([[0.5], [0.5]]))
    array([[0.5],
           [1. ]])
    """

    def __init__(self, r: float | Array = 4.0):
        try:
            arr = to_numpy(r) if hasattr(r, "shape") else np.asarray(r)
        except ValueError:     # a ragged sequence
            raise ValueError("r must be a finite float or a finite, non-empty 1-D "
                             "array") from None
        if arr.ndim == 0:
            self.r = check_real("r", r)
        else:
            check_real_array("r", arr, ndim=1)
            self.r = r

    @property
    def dim(self):
        return 1

    def _r(self, x):
        if isinstance(self.r, float):
            return self.r
        xp = namespace(x)
        r = xp.asarray(self.r, dtype=x.dtype)
        if x.ndim != 2 or x.shape[0] != r.shape[0]:
            raise ValueError(
                f"x: this LogisticMap has r of shape ({r.shape[0]},), one growth rate per "
                f"batch row, so its states have shape ({r.shape[0]}, 1); got shape "
                f"{tuple(x.shape)} (give r as a float for any other batch)")
        return xp.reshape(r, (-1, 1))

    def step(self, x, u=None):
        x = self._autonomous_state(x, u)
        return self._r(x) * x * (1.0 - x)

    def jacobian(self, x, u=None):
        x = self._autonomous_state(x, u)
        return (self._r(x) * (1.0 - 2.0 * x))[..., None]

    def tangent(self, x, v, u=None):
        x = self._autonomous_state(x, u)
        v = self._check_tangent(x, v)
        return (self._r(x) * (1.0 - 2.0 * x))[..., None] * v

    def vjp(self, x, w, u=None):
        """``w^T J(x)``: ``w`` times ``r (1 - 2x)``, exactly."""
        x = self._autonomous_state(x, u)
        w = self._check_cotangent(x, w)
        d = self._r(x) * (1.0 - 2.0 * x)
        return w * (d[..., None, :] if w.ndim > x.ndim else d)

    def _point_functions(self):
        if not isinstance(self.r, float):
            return super()._point_functions()
        return _logistic_point, _logistic_point_jac, np.array([self.r])

    def to(self, backend):
        r = self.r if isinstance(self.r, float) else to_backend(self.r, backend)
        return LogisticMap(r)

    def __repr__(self):
        return f"LogisticMap(r={self.r!r})"


class HenonMap(Map):
    """The Henon map ``(x, y) -> (1 - a x^2 + y, b x)``.

    Its Jacobian determinant is ``-b`` everywhere, so its Lyapunov exponents
    sum to ``ln|b|``.

    Parameters
    ----------
    a, b : float
        The parameters (Henon's classic values 1.4 and 0.3 give the strange attractor).

    Examples
    --------
    >>> from itermap.systems import HenonMap
    >>> m = HenonMap(1.4, 0.3)
    >>> float(np.linalg.det(m.jacobian(np.array([0.7, 0.1]))))
    -0.3
    """

    def __init__(self, a: float = 1.4, b: float = 0.3):
        self.a = check_real("a", a)
        self.b = check_real("b", b)

    @property
    def dim(self):
        return 2

    def step(self, x, u=None):
        self._no_input(u)
        if _plain2(x):
            y = np.empty_like(x)
            x0 = x[..., 0]
            y[..., 0] = 1.0 - self.a * x0 * x0 + x[..., 1]
            np.multiply(self.b, x0, out=y[..., 1])
            return y
        x = self._check_state(x)
        xp = namespace(x)
        x0, x1 = x[..., 0], x[..., 1]
        return xp.stack([1.0 - self.a * x0 * x0 + x1, self.b * x0], axis=-1)

    def jacobian(self, x, u=None):
        self._no_input(u)
        if _plain2(x):
            J = np.empty(x.shape + (2,))
            np.multiply(-2.0 * self.a, x[..., 0], out=J[..., 0, 0])
            J[..., 0, 1] = 1.0
            J[..., 1, 0] = self.b
            J[..., 1, 1] = 0.0
            return J
        x = self._check_state(x)
        xp = namespace(x)
        x0 = x[..., 0]
        one = xp.ones_like(x0)
        row0 = xp.stack([-2.0 * self.a * x0, one], axis=-1)
        row1 = xp.stack([self.b * one, 0.0 * one], axis=-1)
        return xp.stack([row0, row1], axis=-2)

    def tangent(self, x, v, u=None):
        x = self._autonomous_state(x, u)
        v = self._check_tangent(x, v)
        xp = namespace(x)
        x0 = x[..., 0][..., None]
        v0, v1 = v[..., 0, :], v[..., 1, :]
        return xp.stack([-2.0 * self.a * x0 * v0 + v1, self.b * v0], axis=-2)

    def vjp(self, x, w, u=None):
        """``w^T J(x) = (-2 a x w_0 + b w_1, w_0)``, exactly."""
        x = self._autonomous_state(x, u)
        w = self._check_cotangent(x, w)
        xp = namespace(x)
        x0 = x[..., 0][..., None] if w.ndim > x.ndim else x[..., 0]
        w0, w1 = w[..., 0], w[..., 1]
        return xp.stack([-2.0 * self.a * x0 * w0 + self.b * w1, w0], axis=-1)

    def _point_functions(self):
        return _henon_point, _henon_point_jac, np.array([self.a, self.b])

    def _scalar_kernel(self):
        # the same operations, in the same order, as _henon_point (the compiled loop)
        return ScalarSource("y0 = 1.0 - A * x0 * x0 + x1\ny1 = B * x0",
                            ("-2.0 * A * x0", "1.0", "B", "0.0"),
                            (("A", self.a), ("B", self.b)), det="-B")

    def to(self, backend):
        return HenonMap(self.a, self.b)

    def __repr__(self):
        return f"HenonMap(a={self.a}, b={self.b})"


class StandardMap(Map):
    """Chirikov's standard map on the torus, ``p' = p + K sin(theta)``, ``theta' = theta + p'``.

    Area-preserving (``det J = 1``): its two exponents sum to zero. Both
    coordinates are periodic with period ``2 pi`` (:attr:`periods`):
    :func:`~itermap.iterate` and the Lyapunov analyses wrap them onto
    ``[0, 2 pi)``, and :func:`~itermap.analysis.find_fixed_points` finds the
    orbits that close modulo ``2 pi``. ``step`` itself is the smooth lift to
    the plane, so its Jacobian holds everywhere.

    Parameters
    ----------
    k : float
        The kick strength ``K`` (chaos spreads over the torus above about 0.97).

    Examples
    --------
    >>> from itermap.systems import StandardMap
    >>> m = StandardMap(1.2)
    >>> round(float(np.linalg.det(m.jacobian(np.array([0.3, 1.0])))), 12)
    1.0
    """

    def __init__(self, k: float = 1.0):
        self.k = check_real("k", k)

    @property
    def dim(self):
        return 2

    def step(self, x, u=None):
        self._no_input(u)
        if _plain2(x):
            y = np.empty_like(x)
            theta = x[..., 0]
            np.add(x[..., 1], self.k * np.sin(theta), out=y[..., 1])
            np.add(theta, y[..., 1], out=y[..., 0])
            return y
        x = self._check_state(x)
        xp = namespace(x)
        theta, p = x[..., 0], x[..., 1]
        p_new = p + self.k * xp.sin(theta)
        return xp.stack([theta + p_new, p_new], axis=-1)

    def jacobian(self, x, u=None):
        self._no_input(u)
        if _plain2(x):
            J = np.empty(x.shape + (2,))
            np.multiply(self.k, np.cos(x[..., 0]), out=J[..., 1, 0])
            np.add(1.0, J[..., 1, 0], out=J[..., 0, 0])
            J[..., :, 1] = 1.0
            return J
        x = self._check_state(x)
        xp = namespace(x)
        c = self.k * xp.cos(x[..., 0])
        one = xp.ones_like(c)
        return xp.stack([xp.stack([1.0 + c, one], axis=-1),
                         xp.stack([c, one], axis=-1)], axis=-2)

    def step_with_tangent(self, x, v, u=None):
        # one validation and elementwise products: a batch's tangent step without matmuls
        x = self._autonomous_state(x, u)
        v = self._check_tangent(x, v)
        xp = namespace(x)
        theta, p = x[..., 0], x[..., 1]
        p_new = p + self.k * xp.sin(theta)
        c = (self.k * xp.cos(theta))[..., None]
        v0, v1 = v[..., 0, :], v[..., 1, :]
        w1 = c * v0 + v1
        return xp.stack([theta + p_new, p_new], axis=-1), xp.stack([v0 + w1, w1], axis=-2)

    def vjp(self, x, w, u=None):
        """``w^T J(x) = (w_0 (1 + c) + w_1 c, w_0 + w_1)`` with ``c = K cos(theta)``."""
        x = self._autonomous_state(x, u)
        w = self._check_cotangent(x, w)
        xp = namespace(x)
        c = self.k * xp.cos(x[..., 0])
        if w.ndim > x.ndim:
            c = c[..., None]
        w0, w1 = w[..., 0], w[..., 1]
        return xp.stack([w0 * (1.0 + c) + w1 * c, w0 + w1], axis=-1)

    @property
    def periods(self):
        """``(2 pi, 2 pi)``: theta and p live on a circle each."""
        return (2.0 * math.pi, 2.0 * math.pi)

    def _point_functions(self):
        return _standard_point, _standard_point_jac, np.array([self.k])

    def _scalar_kernel(self):
        # the same operations, in the same order, as _standard_point (the compiled loop)
        return ScalarSource("c = K * cos(x0)\ny1 = x1 + K * sin(x0)\ny0 = x0 + y1",
                            ("1.0 + c", "1.0", "c", "1.0"), (("K", self.k),), det="1.0")

    def to(self, backend):
        return StandardMap(self.k)

    def __repr__(self):
        return f"StandardMap(k={self.k})"


class LinearMap(Map):
    """``x -> A x``: exponents are ``ln|eig(A)|``.

    Parameters
    ----------
    A : array of shape (n, n)
        A real square matrix.

    Examples
    --------
    >>> from itermap.systems import LinearMap
    >>> LinearMap(np.array([[0.0, 1.0], [-1.0, 0.0]])).step(np.array([1.0, 0.0]))
    array([ 0., -1.])
    """

    _holds_arrays = True

    def __init__(self, A: Array):
        A = real_array("A", A)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
            raise ValueError(f"A must be a square matrix, got shape {tuple(A.shape)}")
        self.A = A

    @property
    def dim(self):
        return self.A.shape[0]

    @property
    def dtype(self):
        return self.A.dtype

    @property
    def backend(self):
        return backend_of(self.A)

    def step(self, x, u=None):
        x = self._autonomous_state(x, u)
        return namespace(x).matmul(x, self.A.T)

    def jacobian(self, x, u=None):
        x = self._autonomous_state(x, u)
        xp = namespace(x)
        if x.ndim == 1:
            return xp.asarray(self.A, copy=True)
        return xp.broadcast_to(self.A, (x.shape[0], self.dim, self.dim))

    def tangent(self, x, v, u=None):
        x = self._autonomous_state(x, u)
        v = self._check_tangent(x, v)
        return namespace(x).matmul(self.A, v)

    def vjp(self, x, w, u=None):
        """``w^T A`` (the Jacobian is ``A`` everywhere)."""
        x = self._autonomous_state(x, u)
        w = self._check_cotangent(x, w)
        return namespace(x).matmul(w, self.A)

    def _point_functions(self):
        if not isinstance(self.A, np.ndarray) or self.A.dtype != np.float64:
            return super()._point_functions()
        return _linear_point, _linear_point_jac, np.ascontiguousarray(self.A)

    def to(self, backend):
        return LinearMap(to_backend(self.A, backend))

    def __repr__(self):
        return f"LinearMap(dim={self.dim})"


def logistic(r: float | Array = 4.0) -> LogisticMap:
    """The logistic map ``x -> r x (1 - x)``.

    Parameters
    ----------
    r : float or array of shape (B,)
        The growth rate; an array gives each state of a batch its own.

    Returns
    -------
    LogisticMap

    Raises
    ------
    TypeError
        A parameter that is not a real number.
    ValueError
        A parameter that is NaN or infinite.

    Examples
    --------
    >>> from itermap.systems import logistic
    >>> logistic(4.0).step(np.array([0.25]))
    array([0.75])
    """
    return LogisticMap(r)


def henon(a: float = 1.4, b: float = 0.3) -> HenonMap:
    """The Henon map ``(x, y) -> (1 - a x^2 + y, b x)``.

    Parameters
    ----------
    a, b : float
        The parameters (Henon's classic values 1.4 and 0.3 give the strange attractor).

    Returns
    -------
    HenonMap

    Raises
    ------
    TypeError
        A parameter that is not a real number.
    ValueError
        A parameter that is NaN or infinite.

    Examples
    --------
    >>> from itermap.systems import henon
    >>> henon().step(np.array([0.0, 0.0]))
    array([1., 0.])
    """
    return HenonMap(a, b)


def linear(A: Array) -> LinearMap:
    """The linear map ``x -> A x``.

    Parameters
    ----------
    A : array of shape (n, n)
        A real square matrix.

    Returns
    -------
    LinearMap

    Raises
    ------
    TypeError
        ``A`` that is not a real matrix.
    ValueError
        ``A`` that is not square, empty, or not finite.

    Examples
    --------
    >>> from itermap.systems import linear
    >>> linear(np.diag([2.0, 0.5])).step(np.array([1.0, 1.0]))
    array([2. , 0.5])
    """
    return LinearMap(A)


def standard_map(k: float = 1.0) -> StandardMap:
    """Chirikov's standard map with kick strength ``k``: the state is
    ``(theta, p)``, ``p' = p + K sin(theta)``, ``theta' = theta + p'``, both
    taken modulo ``2 pi`` by the analyses (see :class:`StandardMap`).

    Parameters
    ----------
    k : float
        The kick strength ``K`` (chaos spreads over the torus above about 0.97).

    Returns
    -------
    StandardMap

    Raises
    ------
    TypeError
        A parameter that is not a real number.
    ValueError
        A parameter that is NaN or infinite.

    Examples
    --------
    >>> from itermap.systems import standard_map
    >>> standard_map(1.0).step(np.array([0.0, 0.5]))
    array([0.5, 0.5])
    """
    return StandardMap(k)
