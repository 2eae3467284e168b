"""Elementwise activation functions and their derivatives, backend-agnostic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Activation", "ACTIVATIONS", "get_activation"]


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity ``f`` with its derivative.

    ``apply(z, xp)`` returns ``f(z)``; ``derivative(z, xp)`` returns ``f'(z)``,
    both evaluated at the pre-activation ``z`` with the array namespace ``xp``.
    ``numpy_inplace``, when given, overwrites a NumPy array with ``f(z)``: the
    simulator uses it on fresh pre-activations to save an allocation per step.
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


def _elu(z, xp):
    return xp.where(z > 0, z, xp.expm1(xp.minimum(z, _zeros(z, xp))))


def _elu_d(z, xp):
    return xp.where(z > 0, _ones(z, xp), xp.exp(xp.minimum(z, _zeros(z, xp))))


def _sigmoid(z, xp):
    # split by sign so neither branch overflows exp
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_d(z, xp):
    s = _sigmoid(z, xp)
    return s * (1.0 - s)


def _tanh_d(z, xp):
    t = xp.tanh(z)
    return 1.0 - t * t


def _softplus(z, xp):
    return xp.maximum(z, _zeros(z, xp)) + xp.log1p(xp.exp(-xp.abs(z)))


def _leaky_relu(z, xp):
    return xp.where(z > 0, z, 0.01 * z)


def _leaky_relu_d(z, xp):
    return xp.where(z > 0, _ones(z, xp), 0.01 * _ones(z, xp))


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


def get_activation(spec) -> Activation:
    """Look up an activation by name (or pass an :class:`Activation` through)."""
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"activation must be a name or an Activation, got {type(spec).__name__}")
    try:
        return ACTIVATIONS[spec.lower()]
    except KeyError:
        raise ValueError(
            f"unknown activation {spec!r}; known: {sorted(ACTIVATIONS)}"
        ) from None
