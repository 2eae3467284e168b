"""itermap: neural networks as discrete dynamical systems.

An MLP, an RNN and their sparse hybrids are one iterative map
``x_{k+1} = f(W x_k + b)`` on a stacked state ``x = [input; h1; ...; output]``
(Hershey, Paffenroth, Pathak and Tavener, arXiv:2404.00880). This package
holds the maps and how they run; the sibling package :mod:`analysis` holds
what we learn from them.
"""

from . import systems
from ._activations import ACTIVATIONS, Activation
from ._map import DivergenceError, Map

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "DivergenceError",
    "Map",
    "systems",
    "__version__",
]
