"""itermap: neural networks as discrete dynamical systems.

An MLP, an RNN and their sparse hybrids are one iterative map
``x_{k+1} = f(W x_k + b)`` on a stacked state ``x = [input; h1; ...; output]``
(Hershey, Paffenroth, Pathak and Tavener, arXiv:2404.00880). This package
holds the maps and how they run; the subpackage :mod:`itermap.analysis` holds
what we learn from them.
"""

# _log: the logger; _io_maps: the maps register their encoders with the codec
from . import backends, block_functions, datasets, systems
from ._core import _log  # noqa: F401
from ._core._result import Check, Result, Status
from ._core._rng import as_rng
from ._interop import _io_maps  # noqa: F401
from ._interop._io import load, save, saveable
from ._interop._torch import from_torch, to_torch
from ._maps._activations import ACTIVATIONS, Activation
from ._maps._attention_rnn import AttentionRNN, attention_scan
from ._maps._blocks import BlockMatrix
from ._maps._continuum import add_blocks, mlp_continuum
from ._maps._gated import ElmanRNNMap, GRUMap, LSTMMap, RecurrentMap
from ._maps._graphs import from_graph, random_graph_rnn
from ._maps._map import DivergenceError, Map
from ._maps._network import IterativeMap, random_rnn
from ._maps._protocol import ConformanceError, FunctionMap, MapCheck, as_map, check_map
from ._maps._prune import prune
from ._maps._reservoir import ReservoirMap, from_reservoirpy
from ._maps._state_space import LinearStateSpace, deep_lssl
from ._maps._transformer import LoopedTransformerMap, looped_transformer_map, transformer_map
from ._moved import install as _install_old_names
from ._running._affine_scan import affine_scan, linear_recurrence
from ._running._iterate import Trajectory, iterate, resolve_inputs
from ._running._newton import NewtonConvergenceError, NewtonTrajectory, newton_iterate
from ._training._train import (
    NonFiniteLossError,
    TrainHistory,
    TrainState,
    evaluate,
    loss_and_gradient,
    train,
    trainable_count,
)

__version__ = "0.1.0"

_install_old_names()  # old private module names (pickles, saved files) still import


def __getattr__(name: str):
    # PEP 562: ``itermap.analysis`` loads on first use, so ``import itermap`` stays light
    # (the analysis imports scipy, matplotlib, ...) and the analysis never loads unasked
    if name == "analysis":
        import importlib

        return importlib.import_module(".analysis", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"analysis"})

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "AttentionRNN",
    "BlockMatrix",
    "Check",
    "ConformanceError",
    "DivergenceError",
    "ElmanRNNMap",
    "FunctionMap",
    "GRUMap",
    "IterativeMap",
    "LSTMMap",
    "LinearStateSpace",
    "LoopedTransformerMap",
    "Map",
    "MapCheck",
    "NewtonConvergenceError",
    "NewtonTrajectory",
    "NonFiniteLossError",
    "RecurrentMap",
    "ReservoirMap",
    "Result",
    "Status",
    "TrainHistory",
    "TrainState",
    "Trajectory",
    "__version__",
    "add_blocks",
    "affine_scan",
    "as_map",
    "as_rng",
    "attention_scan",
    "backends",
    "block_functions",
    "check_map",
    "datasets",
    "deep_lssl",
    "evaluate",
    "from_graph",
    "from_reservoirpy",
    "from_torch",
    "iterate",
    "linear_recurrence",
    "load",
    "looped_transformer_map",
    "loss_and_gradient",
    "mlp_continuum",
    "newton_iterate",
    "prune",
    "random_graph_rnn",
    "random_rnn",
    "resolve_inputs",
    "save",
    "saveable",
    "systems",
    "to_torch",
    "train",
    "trainable_count",
    "transformer_map",
]
