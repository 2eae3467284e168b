"""itermap: neural networks as discrete dynamical systems.

An MLP, an RNN and their sparse hybrids are one iterative map
``x_{k+1} = f(W x_k + b)`` on a stacked state ``x = [input; h1; ...; output]``
(Hershey, Paffenroth, Pathak and Tavener, arXiv:2404.00880). This package
holds the maps and how they run; the subpackage :mod:`itermap.analysis` holds
what we learn from them.
"""

from . import backends, datasets, systems
from ._activations import ACTIVATIONS, Activation
from ._affine_scan import affine_scan, linear_recurrence
from ._attention_rnn import AttentionRNN, attention_scan
from ._blocks import BlockMatrix
from ._continuum import add_blocks, mlp_continuum
from ._gated import ElmanRNNMap, GRUMap, LSTMMap, RecurrentMap
from ._graphs import from_graph, random_graph_rnn
from ._io import load, save, saveable
from ._iterate import Trajectory, iterate, resolve_inputs
from ._map import DivergenceError, Map
from ._network import IterativeMap, random_rnn
from ._newton import NewtonConvergenceError, NewtonTrajectory, newton_iterate
from ._protocol import ConformanceError, FunctionMap, MapCheck, as_map, check_map
from ._prune import prune
from ._rng import as_rng
from ._state_space import LinearStateSpace, deep_lssl
from ._torch import from_torch, to_torch
from ._train import (
    NonFiniteLossError,
    TrainHistory,
    TrainState,
    evaluate,
    loss_and_gradient,
    train,
    trainable_count,
)

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "BlockMatrix",
    "ConformanceError",
    "FunctionMap",
    "MapCheck",
    "as_map",
    "check_map",
    "DivergenceError",
    "ElmanRNNMap",
    "GRUMap",
    "LSTMMap",
    "RecurrentMap",
    "IterativeMap",
    "Map",
    "Trajectory",
    "NewtonConvergenceError",
    "NewtonTrajectory",
    "add_blocks",
    "affine_scan",
    "linear_recurrence",
    "newton_iterate",
    "as_rng",
    "backends",
    "datasets",
    "evaluate",
    "loss_and_gradient",
    "NonFiniteLossError",
    "TrainHistory",
    "TrainState",
    "train",
    "trainable_count",
    "iterate",
    "load",
    "mlp_continuum",
    "random_rnn",
    "from_torch",
    "to_torch",
    "resolve_inputs",
    "save",
    "saveable",
    "systems",
    "__version__",
    "AttentionRNN",
    "attention_scan",
    "LinearStateSpace",
    "deep_lssl",
    "from_graph",
    "prune",
    "random_graph_rnn",
]
