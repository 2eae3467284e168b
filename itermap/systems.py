"""Classic maps: logistic, Henon, linear and the standard map; the HiPPO matrices."""

from ._maps._state_space import hippo
from ._maps._systems import (
    HenonMap,
    LinearMap,
    LogisticMap,
    StandardMap,
    henon,
    linear,
    logistic,
    standard_map,
)

__all__ = ["logistic", "henon", "linear", "standard_map",
           "LogisticMap", "HenonMap", "LinearMap", "StandardMap", "hippo"]
