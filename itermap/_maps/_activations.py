"""Elementwise activation functions and their derivatives, backend-agnostic.

Besides the fixed names of :data:`ACTIVATIONS`, :func:`get_activation` reads torch's
parametrised activations by name (``"elu(alpha=0.5)"``, ``"softplus(beta=1.0,
threshold=20.0)"``, ``"gelu(approximate='tanh')"``, ...): the name is the whole
description, so they save, load and go to torch unchanged.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Activation", "ACTIVATIONS", "get_activation"]


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity ``f`` with its derivative.

    ``apply(z, xp)`` is ``f(z)``, ``derivative(z, xp)`` ``f'(z)``; ``numpy_inplace``,
    when given, overwrites a fresh NumPy pre-activation with ``f(z)``.

    Attributes
    ----------
    name : str
        The name it is registered under in :data:`itermap.ACTIVATIONS`.
    function : callable
        ``function(z, xp)``: ``f(z)`` with the array namespace ``xp``.
    derivative : callable
        ``derivative(z, xp)``: ``f'(z)``.
    numpy_inplace : callable or None
        ``numpy_inplace(z)``: ``f(z)`` written over a NumPy array ``z``.

    Examples
    --------
    >>> from itermap import ACTIVATIONS
    >>> tanh = ACTIVATIONS["tanh"]
    >>> tanh.apply(np.array([0.0]), np), tanh.derivative(np.array([0.0]), np)
    (array([0.]), array([1.]))
    """

    name: str
    function: Callable
    derivative: Callable
    numpy_inplace: Callable | None = None

    def apply(self, z, xp, inplace=False):
        """``f(z)``; with ``inplace=True`` a NumPy ``z`` may be overwritten."""
        if inplace and self.numpy_inplace is not None and isinstance(z, np.ndarray) \
                and z.flags.writeable and z.flags.owndata:
            return self.numpy_inplace(z)
        return self.function(z, xp)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"

    def __reduce__(self):
        # pickle a registered activation by name, so that unpickling hands back the
        # registry's own object (the one `is` checks and lookups expect)
        if ACTIVATIONS.get(self.name) is self:
            return _registered, (self.name, self.function, self.derivative,
                                 self.numpy_inplace)
        return Activation, (self.name, self.function, self.derivative, self.numpy_inplace)


def _registered(name, function, derivative, numpy_inplace):
    """The registered activation ``name``, or a fresh one if the registry lacks it."""
    act = Activation(name, function, derivative, numpy_inplace)
    found = ACTIVATIONS.get(name)
    return found if found == act else act


def _zeros(z, xp):
    return xp.zeros_like(z)


def _ones(z, xp):
    return xp.ones_like(z)


def _relu(z, xp):
    return xp.where(z > 0, z, _zeros(z, xp))


def _relu_d(z, xp):
    return xp.where(z > 0, _ones(z, xp), _zeros(z, xp))


def _elu(z, xp, alpha=1.0):
    return xp.where(z > 0, z, alpha * xp.expm1(xp.minimum(z, _zeros(z, xp))))


def _elu_d(z, xp, alpha=1.0):
    return xp.where(z > 0, _ones(z, xp), alpha * xp.exp(xp.minimum(z, _zeros(z, xp))))


def _sigmoid(z, xp):
    # split by sign so neither branch overflows exp
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_d(z, xp):
    # e^-|z| / (1 + e^-|z|)^2, even in z: s (1 - s) lost its digits for z > 0 and was 0 past
    # z ~ 37 (a saturated unit's exponent read -inf); the same one exp
    e = xp.exp(-xp.abs(z))
    return e / ((1.0 + e) * (1.0 + e))


# below this 1 - tanh^2 is recomputed as sech^2 (its rounding error grows as it falls)
_TANH_D_EXACT = 1e-8


def _tanh_d(z, xp):
    return _tanh_d_from(xp.tanh(z), z, xp)


def _tanh_d_from(t, z, xp):
    """tanh'(z) from ``t = tanh(z)`` (a caller that holds it saves one tanh)."""
    d = 1.0 - t * t
    # 1 - tanh^2 z loses its digits as |z| grows and is 0 past ~19 (a saturated unit's
    # exponent would read -inf): there sech^2 z from e = exp(-2|z|), exact to the underflow
    if isinstance(d, np.ndarray):
        # one reduction where nothing saturates (the common case): no mask (a NaN
        # fails the test and takes the masked path, which fixes the entries beside it)
        if d.min(initial=np.inf) >= _TANH_D_EXACT:
            return d
        low = d < _TANH_D_EXACT
        d[low] = _sech_sq(z[low], np)
        return d
    return xp.where(d < _TANH_D_EXACT, _sech_sq(z, xp), d)


def _sech_sq(z, xp):
    e = xp.exp(-2.0 * xp.abs(z))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


def _softplus(z, xp):
    return xp.maximum(z, _zeros(z, xp)) + xp.log1p(xp.exp(-xp.abs(z)))


def _leaky_relu(z, xp, negative_slope=0.01):
    return xp.where(z > 0, z, negative_slope * z)


def _leaky_relu_d(z, xp, negative_slope=0.01):
    return xp.where(z > 0, _ones(z, xp), negative_slope * _ones(z, xp))


def _sin_d(z, xp):
    return xp.cos(z)


# module-level functions rather than lambdas: an activation pickles by reference

def _tanh(z, xp):
    return xp.tanh(z)


def _tanh_np(z):
    return np.tanh(z, out=z)


def _relu_np(z):
    return np.maximum(z, 0.0, out=z)


def _identity(z, xp):
    return z


def _identity_np(z):
    return z


def _sin(z, xp):
    return xp.sin(z)


def _sin_np(z):
    return np.sin(z, out=z)


#: The named activations, ``name -> Activation`` (``"linear"`` is ``"identity"``).
ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("tanh", _tanh, _tanh_d, _tanh_np),
        Activation("relu", _relu, _relu_d, _relu_np),
        Activation("elu", _elu, _elu_d),
        Activation("sigmoid", _sigmoid, _sigmoid_d),
        Activation("identity", _identity, _ones, _identity_np),
        Activation("softplus", _softplus, _sigmoid),
        Activation("leaky_relu", _leaky_relu, _leaky_relu_d),
        Activation("sin", _sin, _sin_d, _sin_np),
    )
}
ACTIVATIONS["linear"] = ACTIVATIONS["identity"]


def _erf(z, xp):
    if isinstance(z, np.ndarray) or np.isscalar(z):
        from scipy.special import erf

        return erf(z)
    if "cupy" in type(z).__module__:
        from cupyx.scipy.special import erf

        return erf(z)
    return xp.asarray(_erf(np.asarray(z), np))


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu(z, xp):
    return 0.5 * z * (1.0 + _erf(z * _SQRT_HALF, xp))


def _gelu_d(z, xp):
    return 0.5 * (1.0 + _erf(z * _SQRT_HALF, xp)) + z * _INV_SQRT_2PI * xp.exp(-0.5 * z * z)


def _gelu_tanh(z, xp):
    return 0.5 * z * (1.0 + xp.tanh(_GELU_C * (z + 0.044715 * z * z * z)))


def _gelu_tanh_d(z, xp):
    t = xp.tanh(_GELU_C * (z + 0.044715 * z * z * z))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * z * z)


def _silu(z, xp):
    return z * _sigmoid(z, xp)


def _silu_d(z, xp):
    s = _sigmoid(z, xp)
    return s * (1.0 + z * (1.0 - s))


def _softplus_torch(beta, threshold):
    # torch.nn.Softplus: log(1 + exp(beta z)) / beta, and z itself where beta z > threshold
    def f(z, xp):
        bz = beta * z
        return xp.where(bz > threshold, z, _softplus(bz, xp) / beta)

    def d(z, xp):
        bz = beta * z
        return xp.where(bz > threshold, _ones(z, xp), _sigmoid(bz, xp))

    return f, d


def _with(params, function, derivative):
    """``(function, derivative)`` with ``params`` bound (module-level: they pickle)."""
    return functools.partial(function, **params), functools.partial(derivative, **params)


ACTIVATIONS["gelu"] = Activation("gelu", _gelu, _gelu_d)
ACTIVATIONS["silu"] = Activation("silu", _silu, _silu_d)

_Factory = Callable[[dict[str, Any]], tuple[Callable, Callable]]
_PARAMETRISED: dict[str, tuple[dict[str, Any], _Factory]] = {
    # name: (parameters with their defaults, factory of (function, derivative))
    "elu": ({"alpha": 1.0}, lambda p: _with(p, _elu, _elu_d)),
    "leaky_relu": ({"negative_slope": 0.01}, lambda p: _with(p, _leaky_relu, _leaky_relu_d)),
    "softplus": ({"beta": 1.0, "threshold": 20.0},
                 lambda p: _softplus_torch(p["beta"], p["threshold"])),
    "gelu": ({"approximate": "none"},
             lambda p: (_gelu, _gelu_d) if p["approximate"] == "none"
             else (_gelu_tanh, _gelu_tanh_d)),
}
_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.IGNORECASE)


def activation_name(kind: str, **params: Any) -> str:
    """The canonical name of a parametrised activation, e.g. ``"elu(alpha=0.5)"``.

    Parameters equal to the defaults of the plain name give the plain name
    (``elu`` with ``alpha=1.0`` is ``"elu"``); ``softplus`` always carries its
    parameters, since the plain ``"softplus"`` has no threshold.
    """
    defaults, _ = _PARAMETRISED[kind]
    full = {**defaults, **params}
    if kind != "softplus" and full == defaults:
        return kind
    parts = (f"{k}={full[k]!r}" if isinstance(full[k], str) else f"{k}={float(full[k])!r}"
             for k in defaults)
    return f"{kind}({', '.join(parts)})"


@functools.lru_cache(maxsize=256)  # one object per name: maps built from a name compare equal
def _parse_parametrised(spec: str) -> Activation:
    match = _CALL.match(spec)
    assert match is not None  # get_activation calls this only for a spec _CALL matches
    kind = match.group(1).lower()
    if kind not in _PARAMETRISED:
        raise ValueError(f"activation {spec!r}: {kind!r} takes no parameters; parametrised "
                         f"activations are {sorted(_PARAMETRISED)}")
    defaults, factory = _PARAMETRISED[kind]
    params = dict(defaults)
    for item in filter(None, (t.strip() for t in match.group(2).split(","))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in defaults:
            raise ValueError(f"activation {spec!r}: unknown parameter {key!r}; {kind} takes "
                             f"{sorted(defaults)}")
        if isinstance(defaults[key], str):
            value = value.strip("'\"")
            if value not in ("none", "tanh"):
                raise ValueError(f"activation {spec!r}: approximate must be 'none' or 'tanh'")
        else:
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"activation {spec!r}: {key} must be a number") from None
            if not math.isfinite(value):
                raise ValueError(f"activation {spec!r}: {key} must be finite")
            if kind == "softplus" and key == "beta" and value == 0:
                raise ValueError(f"activation {spec!r}: beta must not be 0")
        params[key] = value
    name = activation_name(kind, **params)
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    function, derivative = factory(params)
    return Activation(name, function, derivative)


def get_activation(spec) -> Activation:
    """Look up an activation by name (or pass an :class:`Activation` through).

    Examples
    --------
    >>> from itermap._maps._activations import get_activation
    >>> get_activation("leaky_relu(negative_slope=0.2)")
    Activation('leaky_relu(negative_slope=0.2)')
    >>> get_activation("elu(alpha=1)")
    Activation('elu')
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"activation must be a name or an Activation, got {type(spec).__name__}")
    if spec.lower() in ACTIVATIONS:
        return ACTIVATIONS[spec.lower()]
    if _CALL.match(spec):
        return _parse_parametrised(spec)
    raise ValueError(f"unknown activation {spec!r}; known: {sorted(ACTIVATIONS)} and the "
                     f"parametrised {sorted(_PARAMETRISED)}, e.g. 'elu(alpha=0.5)'")
