"""The paper's experiment (an MLP against sparse maps at equal trainable parameters, on the
digits) and the flip-flop RNN's fixed points."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import itermap
from itermap import BlockMatrix, IterativeMap, datasets, saveable, trainable_count
from itermap.typing import RngLike

from ._checks import (
    check_bool,
    check_choice,
    check_int,
    check_memory,
    check_real,
    check_real_array,
    is_network,
    is_sequence,
)
from .fixed_points import find_fixed_points

__all__ = ["FlipFlopAnalysis", "ParameterComparison", "digits_model",
           "equal_parameter_comparison", "flip_flop_analysis", "sparse_hidden_width"]


@saveable
@dataclass
class ParameterComparison(itermap.Result):
    """Test accuracy of each model and seed, with trainable parameters and time.

    Attributes
    ----------
    names : list of str
        The models.
    params : ndarray of shape (n_models,)
        Trainable parameters of each model (the mean over seeds).
    hidden : ndarray of shape (n_models,)
        Hidden width of each model.
    accuracy : ndarray of shape (n_models, n_seeds)
        Test accuracy.
    seconds : ndarray of shape (n_models, n_seeds)
        Training time.
    seeds : list of int
        The seeds.
    epochs, steps : int
        Training epochs, and steps per sample.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import ParameterComparison
    >>> res = ParameterComparison(names=["mlp"], params=np.array([100.0]),
    ...                           hidden=np.array([8.0]), accuracy=np.array([[0.9, 0.8]]),
    ...                           seconds=np.array([[1.0, 1.0]]), seeds=[0, 1], epochs=1,
    ...                           steps=3)
    >>> print(res.table().splitlines()[-1])
    | mlp | 8 | 100 | 0.8500 ± 0.0707 | 1.00 |
    """

    _schema: ClassVar[dict[str, str]] = {
        "names": "list[str]",
        "params": "float[M] | int[M]",
        "hidden": "float[M] | int[M]",
        "accuracy": "float[M, S]",
        "seconds": "float[M, S]",
        "seeds": "list[int]",
        "epochs": "int",
        "steps": "int",
    }
    _table: ClassVar[tuple[str, ...]] = ("names", "params", "hidden", "accuracy", "seconds")
    _dims: ClassVar[dict[str, str]] = {"M": "model", "S": "seed"}
    _coords: ClassVar[dict[str, str]] = {"model": "names", "seed": "seeds"}

    names: list
    params: np.ndarray
    hidden: np.ndarray
    accuracy: np.ndarray
    seconds: np.ndarray
    seeds: list
    epochs: int
    steps: int

    def table(self) -> str:
        """A Markdown table: model, hidden width, trainable parameters, accuracy, time."""
        lines = ["| model | hidden | trainable | test accuracy | train time (s) |",
                 "|---|---:|---:|---|---:|"]
        for k, name in enumerate(self.names):
            acc = self.accuracy[k]
            lines.append(f"| {name} | {int(self.hidden[k])} | {int(self.params[k])} | "
                         f"{acc.mean():.4f} ± {acc.std(ddof=1) if acc.size > 1 else 0.0:.4f} | "
                         f"{self.seconds[k].mean():.2f} |")
        return "\n".join(lines)


def _count(h, n_in, n_out, density):
    """Trainable parameters of the all-``R=p`` map with hidden width ``h`` (expected)."""
    weights = density * (h * n_in + h * h + h * n_out + n_out * n_in + n_out * h + n_out ** 2)
    return weights + h + n_out


def sparse_hidden_width(target: int, density: float, *, n_in: int = 64, n_out: int = 10) -> int:
    """The hidden width whose all-``R=p`` map has about ``target`` trainable parameters.

    Parameters
    ----------
    target : int
        The trainable parameters to match (>= 1).
    density : float
        The density ``p`` of every trainable block, in (0, 1].
    n_in, n_out : int
        Widths of the input and output blocks.

    Returns
    -------
    int
        The largest width whose expected parameter count is at most ``target``
        (at least 1).

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).

    Examples
    --------
    >>> from itermap.analysis import sparse_hidden_width
    >>> sparse_hidden_width(4810, 1.0)   # a full map needs a narrower hidden layer than 64
    34
    """
    target = check_int("target", target, 1)
    density = check_real("density", density, positive=True, maximum=1.0)
    n_in, n_out = check_int("n_in", n_in, 1), check_int("n_out", n_out, 1)
    # the count grows with h: bracket the width by doubling, then bisect (a step at a time
    # took ~1e9 steps for target 1e18 at density 1e-18)
    lo, hi = 1, 2
    while _count(hi, n_in, n_out, density) <= target:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # _count(lo) <= target < _count(hi), or lo = 1
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _count(mid, n_in, n_out, density) <= target else (lo, mid)
    return lo


def digits_model(kind: str, *, hidden: int = 64, density: float = 1.0,
                 rng: RngLike = None) -> IterativeMap:
    """A fresh digits model ``[64, hidden, 10]`` as an iterative map.

    Parameters
    ----------
    kind : {"mlp", "continuum", "sparse"}
        The MLP (layer weights only); the continuum (every block outside the
        input's rows dense: lateral, recurrent and feedback weights added); or
        every such block ``R=density``.
    hidden : int
        Width of the hidden block.
    density : float
        Density of the sparse blocks (``kind="sparse"``).
    rng : int, Generator or None
        Source of the weights.

    Returns
    -------
    IterativeMap
        The driven map, input block 0, activations identity, relu, identity.

    Raises
    ------
    ValueError
        For an unknown ``kind``, or ``hidden`` or ``density`` out of range.
    TypeError
        For a ``hidden`` that is not an integer or a ``density`` that is not a number.

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).
    .. [2] E. Alpaydin, C. Kaynak, "Optical recognition of handwritten digits", UCI
       Machine Learning Repository (1998).

    Examples
    --------
    >>> from itermap.analysis import digits_model
    >>> digits_model("mlp", hidden=8, rng=0).sizes
    (64, 8, 10)
    """
    kind = check_choice("kind", kind, ("mlp", "continuum", "sparse"))
    sizes = [64, check_int("hidden", hidden, 1), 10]
    check_memory("hidden", 8 * 74 * sizes[1], "the layer weights")  # before a float overflows
    density = check_real("density", density, positive=True, maximum=1.0)
    if kind == "mlp":
        pattern = [["0", "0", "0"], ["W", "0", "0"], ["0", "W", "0"]]
    elif kind == "continuum":
        pattern = [["0", "0", "0"], ["W", "W", "W"], ["W", "W", "W"]]
    else:  # "sparse"
        tok = f"R={float(density)}"
        pattern = [["0", "0", "0"], [tok] * 3, [tok] * 3]
    # a gain below one keeps the recurrent blocks of the continuum and sparse maps tame
    bm = BlockMatrix.from_pattern(sizes, pattern, rng=rng, scale=1.0 if kind == "mlp" else 0.7)
    return IterativeMap(bm, np.zeros(sum(sizes)), ["identity", "relu", "identity"],
                        input_block=0)


def equal_parameter_comparison(*, hidden: int = 64,
                               densities: Sequence[float] = (0.5, 0.25, 0.1),
                               seeds: int | Sequence[int] = 5,
                               epochs: int = 30, steps: int = 3, lr: float = 3e-3,
                               batch_size: int = 64, progress: bool = False
                               ) -> ParameterComparison:
    """Train the MLP, the continuum and equal-parameter sparse maps on the digits.

    Every model runs ``steps`` steps with the input held, trains with Adam (a seed
    draws the weights and batches) and is scored on the digits' test split.

    Parameters
    ----------
    hidden : int
        Hidden width of the MLP and the continuum.
    densities : sequence of float
        Densities of the sparse maps, each with the MLP's trainable parameters.
    seeds : int or sequence of int
        The seeds ``0 .. seeds-1``, or the seeds themselves.
    epochs, steps, lr, batch_size : int, int, float, int
        Training options, as for :func:`itermap.train`.
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    ParameterComparison

    Raises
    ------
    ValueError
        For no seeds, a negative seed, a density outside (0, 1], or a width, epoch
        count, step count or batch size below 1.
    TypeError
        For a value of the wrong type (``seeds="3"``, a float width, ...).

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).
    .. [2] D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR
       (2015), arXiv:1412.6980.

    Examples
    --------
    >>> from itermap.analysis import equal_parameter_comparison
    >>> res = equal_parameter_comparison(hidden=8, densities=(0.5,), seeds=1, epochs=1)
    >>> res.names, res.accuracy.shape
    (['mlp', 'continuum', 'sparse R=0.5'], (3, 1))
    """
    hidden = check_int("hidden", hidden, 1)
    dens = check_real_array("densities", densities, ndim=1, allow_empty=True)
    if np.any(dens <= 0) or np.any(dens > 1):
        raise ValueError(f"densities must lie in (0, 1], got {dens.tolist()}")
    seed_list = _seed_list(seeds)
    epochs, steps = check_int("epochs", epochs, 1), check_int("steps", steps, 1)
    lr = check_real("lr", lr, positive=True)
    batch_size = check_int("batch_size", batch_size, 1)
    progress = check_bool("progress", progress)
    x_train, y_train, x_test, y_test = datasets.digits()
    target = trainable_count(digits_model("mlp", hidden=hidden, rng=0))
    specs = [("mlp", "mlp", hidden, 1.0), ("continuum", "continuum", hidden, 1.0)]
    specs += [(f"sparse R={p}", "sparse", sparse_hidden_width(target, p), p)
              for p in dens.tolist()]
    acc = np.zeros((len(specs), len(seed_list)))
    secs = np.zeros_like(acc)
    params = np.zeros(len(specs))
    for k, (_, kind, h, p) in enumerate(specs):
        counts = []
        for s, seed in enumerate(seed_list):
            model = digits_model(kind, hidden=h, density=p, rng=seed)
            counts.append(trainable_count(model))
            tic = time.perf_counter()
            net, _ = itermap.train(model, x_train, y_train, steps=steps, epochs=epochs, lr=lr,
                                   batch_size=batch_size, rng=seed, progress=progress)
            secs[k, s] = time.perf_counter() - tic
            acc[k, s] = itermap.evaluate(net, x_test, y_test, steps=steps)[1]
        params[k] = float(np.mean(counts))
    return ParameterComparison(names=[s[0] for s in specs], params=params,
                               hidden=np.array([s[2] for s in specs], dtype=float),
                               accuracy=acc, seconds=secs, seeds=seed_list, epochs=int(epochs),
                               steps=int(steps))


def _seed_list(seeds) -> list[int]:
    """``seeds`` (a count, or the seeds themselves) as a non-empty list of seeds."""
    if isinstance(seeds, dict) or not is_sequence(seeds):
        count = check_int("seeds", seeds, 1)  # "3" is no count of seeds
        check_memory("seeds", 64 * count, "the seeds and results")  # 2**64: no OverflowError
        seed_list = list(range(count))
    else:
        seed_list = [check_int(f"seeds[{i}]", s, 0, maximum=None) for i, s in enumerate(seeds)]
    if not seed_list:
        raise ValueError("seeds: need at least one seed")
    return seed_list


@saveable
@dataclass
class FlipFlopAnalysis(itermap.Result):
    """A flip-flop RNN's bit accuracy and its fixed points at zero input.

    Attributes
    ----------
    points : ndarray of shape (m, dim)
        The fixed points found.
    n_unstable : ndarray of shape (m,)
        Unstable directions of each point.
    stable : ndarray of shape (m,)
        Whether each point is stable.
    patterns : ndarray of shape (m, bits)
        The sign of the readout at each point.
    n_patterns : int
        Distinct patterns among the stable points.
    bit_accuracy : float
        Fraction of held bits the readout's sign matches.
    hidden : ndarray of shape (steps, trials, n_hidden)
        Hidden states of the first trials, for the figure.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import FlipFlopAnalysis
    >>> res = FlipFlopAnalysis(points=np.zeros((2, 3)), n_unstable=np.array([0, 1]),
    ...                        stable=np.array([True, False]), patterns=np.ones((2, 1)),
    ...                        n_patterns=1, bit_accuracy=1.0, hidden=np.zeros((5, 2, 1)))
    >>> int(res.stable.sum()), res.n_patterns
    (1, 1)
    """

    _schema: ClassVar[dict[str, str]] = {
        "points": "float[M, D]",
        "n_unstable": "int[M]",
        "stable": "bool[M]",
        "patterns": "float[M, *]",
        "n_patterns": "int",
        "bit_accuracy": "float",
        "hidden": "float[*, *, *]",
    }
    _table: ClassVar[tuple[str, ...]] = ("points", "n_unstable", "stable")
    _dims: ClassVar[dict[str, str]] = {"M": "point", "D": "unit"}

    points: np.ndarray
    n_unstable: np.ndarray
    stable: np.ndarray
    patterns: np.ndarray
    n_patterns: int
    bit_accuracy: float
    hidden: np.ndarray


def flip_flop_analysis(net: IterativeMap, *, trials: int = 64, steps: int = 300,
                       starts: int = 1024, noise: float = 0.02, keep_trials: int = 20,
                       rng: RngLike = None) -> FlipFlopAnalysis:
    """Run a flip-flop RNN on fresh trials and find its fixed points at zero input.

    Starts for :func:`find_fixed_points` are states along the trajectories plus noise.

    Parameters
    ----------
    net : IterativeMap
        The driven flip-flop RNN, state ``[input; hidden; readout]`` (as
        ``data/trained/flip_flop_rnn.npz``).
    trials, steps : int
        Fresh flip-flop trials (>= 1), and steps per trial (>= 2: the readout lags
        a step).
    starts : int
        Starts of the fixed-point search (at most the states visited).
    noise : float
        Standard deviation of the noise added to the starts.
    keep_trials : int
        Trials whose hidden states are kept for the figure (>= 1).
    rng : int, Generator or None
        Source of the trials, the starts and the noise.

    Returns
    -------
    FlipFlopAnalysis

    Raises
    ------
    TypeError
        ``net`` not a driven IterativeMap ``[input, hidden, ..., readout]``, or an
        option of the wrong type.
    ValueError
        An option out of range (``keep_trials < 1``, ``noise < 0``, ...).

    References
    ----------
    .. [1] D. Sussillo, O. Barak, "Opening the black box: low-dimensional dynamics
       in high-dimensional recurrent neural networks", Neural Computation 25(3),
       626-649 (2013).
    .. [2] M. D. Golub, D. Sussillo, "FixedPointFinder: a Tensorflow toolbox for
       identifying and characterizing fixed points in recurrent neural networks",
       Journal of Open Source Software 3(31), 1003 (2018).

    Examples
    --------
    >>> import itermap
    >>> from itermap.analysis import flip_flop_analysis
    >>> net = itermap.load("data/trained/flip_flop_rnn.npz")  # doctest: +SKIP
    >>> res = flip_flop_analysis(net)                         # doctest: +SKIP
    >>> int(res.stable.sum()), res.n_patterns                 # doctest: +SKIP
    (8, 8)
    """
    if not is_network(net) or net.input_block != 0 or len(net.sizes) < 3:
        raise TypeError(f"net must be a driven IterativeMap with blocks [input, hidden, ..., "
                        f"readout] and input_block 0, got {net!r}")
    trials, steps = check_int("trials", trials, 1), check_int("steps", steps, 2)
    starts, keep_trials = check_int("starts", starts, 1), check_int("keep_trials", keep_trials, 1)
    noise = check_real("noise", noise, minimum=0.0)
    # the states of every trial, their inputs and targets, and a copy of the states
    check_memory("trials, steps", 8 * steps * trials * (2 * net.dim + 2 * net.input_size),
                 "the trials' states")
    gen = itermap.as_rng(rng)
    bits = net.input_size
    u, y = datasets.flip_flop(trials, steps, bits=bits, rng=gen)
    x = net.zeros(trials)
    rows = []
    for t in range(steps):
        x = net.step(x, u[t])
        rows.append(x)
    states = np.stack(rows)
    out = net.readout(states)[1:]
    held = y[:-1] != 0
    accuracy = float(np.mean(np.sign(out)[held] == y[:-1][held]))
    flat = states.reshape(-1, net.dim)
    x0 = flat[gen.choice(len(flat), min(starts, len(flat)), replace=False)]
    x0 = x0 + gen.normal(scale=noise, size=x0.shape)
    fp = find_fixed_points(net, x0, inputs=np.zeros(bits))
    patterns = np.sign(net.readout(fp.points))
    n_patterns = len({tuple(p) for p in patterns[fp.stable]})
    return FlipFlopAnalysis(points=fp.points, n_unstable=np.asarray(fp.n_unstable),
                            stable=np.asarray(fp.stable), patterns=patterns,
                            n_patterns=int(n_patterns), bit_accuracy=accuracy,
                            hidden=np.asarray(net.read_block(states[:, :keep_trials], 1)))
