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
    "ReservoirMap",
    "from_reservoirpy",
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
    "block_functions",
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
    "transformer_map",
    "LoopedTransformerMap",
    "looped_transformer_map",
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
    "Result",
    "Status",
    "Check",
]
