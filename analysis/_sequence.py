"""Sequence models on the MLP-RNN continuum (an MLP, an RNN, a deep LSSL and attention),
measured with the same instruments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import itermap
from itermap.typing import Array, RngLike

from ._checks import check_int
from ._memory import impulse_response, memory_capacity
from .lyapunov import lyapunov_spectrum

__all__ = ["SequenceComparison", "compare_sequence_models", "sequence_models"]


def sequence_models(units: int = 16, *, rng: RngLike = None) -> dict[str, itermap.Map]:
    """Four driven maps on one scalar input, each with about ``units`` state entries.

    ``"mlp"``: ``mlp_continuum([1, units / 2, units / 2])``, tanh; ``"rnn"``: an Elman
    map of ``units`` tanh units, gain 0.9; ``"lssl"``: :func:`itermap.deep_lssl` of two
    HiPPO-LegS layers of ``units / 2`` states (``dt = 0.1``, ``0.02``); ``"attention"``:
    :class:`itermap.AttentionRNN` with ``d_v = units - 2``, ``d_k = 4``.

    Parameters
    ----------
    units : int
        The state size to aim at (>= 4).
    rng : int, Generator or None
        Source of every random weight.

    Returns
    -------
    dict
        ``{"mlp", "rnn", "lssl", "attention"}`` to maps.

    Raises
    ------
    ValueError
        ``units < 4``.
    TypeError
        A non-integer ``units``.

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak and S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks",
       arXiv:2404.00880 (2024).
    .. [2] A. Gu et al., "Combining recurrent, convolutional, and continuous-time models
       with linear state-space layers", arXiv:2110.13985 (2021).
    .. [3] L. Feng et al., "Attention as an RNN", arXiv:2405.13956 (2024).

    Examples
    --------
    >>> from itermap.analysis import sequence_models
    >>> {k: m.dim for k, m in sequence_models(16, rng=0).items()}
    {'mlp': 17, 'rnn': 17, 'lssl': 19, 'attention': 16}
    """
    units = check_int("units", units, 4)
    gen = itermap.as_rng(rng)
    half = units // 2
    mlp = itermap.mlp_continuum([1, half, half], activation="tanh", rng=gen)
    W = 0.9 * gen.normal(size=(units, units)) / np.sqrt(units)
    rnn = itermap.IterativeMap.from_rnn(W, gen.normal(size=(units, 1)), activation="tanh")
    A, B = itermap.systems.hippo("legs", half)
    C1, C2 = gen.normal(size=(1, half)) / np.sqrt(half), gen.normal(size=(1, half)) / np.sqrt(half)
    lssl = itermap.deep_lssl([itermap.LinearStateSpace(A, B, C1, dt=0.1),
                              itermap.LinearStateSpace(A, B, C2, dt=0.02)], activation="tanh")
    attention = itermap.AttentionRNN(gen.normal(size=(4, 1)), gen.normal(size=(units - 2, 1)),
                                     gen.normal(size=4))
    return {"mlp": mlp, "rnn": rnn, "lssl": lssl, "attention": attention}


@itermap.saveable
@dataclass
class SequenceComparison(itermap.Result):
    """Sequence models side by side (:func:`compare_sequence_models`).

    Attributes
    ----------
    names : list of str
        The models, in the order of the rows below.
    dims : list of int
        Their state sizes.
    impulse : array of shape (n_models, steps + 1)
        Norm of the response to an impulse in the first hidden block, over its value
        at ``k = 0``.
    r2 : array of shape (n_models, max_delay)
        Memory capacity per delay (Jaeger).
    capacity : list of float
        Its sum over delays.
    exponents : array of shape (n_models, k)
        The top ``k`` Lyapunov exponents along the driven trajectory.

    Examples
    --------
    >>> from itermap.analysis import compare_sequence_models
    >>> r = compare_sequence_models(units=8, steps=6, max_delay=4, mc_steps=400,
    ...                             lyapunov_steps=50, rng=0)
    >>> r.names, r.impulse.shape, r.r2.shape
    (['mlp', 'rnn', 'lssl', 'attention'], (4, 7), (4, 4))
    """

    _schema: ClassVar[dict[str, str]] = {
        "names": "list[str]",
        "dims": "list[int]",
        "impulse": "float[M, S]",
        "r2": "float[M, D]",
        "capacity": "list[float]",
        "exponents": "float[M, K]",
    }
    _table: ClassVar[tuple[str, ...]] = ("names", "dims", "capacity")
    _dims: ClassVar[dict[str, str]] = {"M": "model", "S": "step", "D": "delay",
                                       "K": "exponent"}
    _coords: ClassVar[dict[str, str]] = {"model": "names"}

    names: list
    dims: list
    impulse: Array
    r2: Array
    capacity: list
    exponents: Array


def _first_hidden(m) -> int:
    """The block after the input block (block 0 for a map without one)."""
    ib = getattr(m, "input_block", None)
    return 0 if ib is None else (ib + 1) % len(m.sizes)


def compare_sequence_models(maps: Mapping[str, itermap.Map] | None = None, *, units: int = 16,
                            steps: int = 40, max_delay: int = 20, mc_steps: int = 3000,
                            lyapunov_steps: int = 500, k: int = 4,
                            rng: RngLike = None) -> SequenceComparison:
    """Impulse response, memory capacity and spectrum of driven maps, side by side.

    Every map is driven by one i.i.d. signal ``U(-1, 1)``; after ``steps`` steps of
    washout, :func:`impulse_response` follows an impulse in the first hidden block and
    :func:`lyapunov_spectrum` runs ``lyapunov_steps``.

    Parameters
    ----------
    maps : mapping of str to map, optional
        Driven maps with one input each; :func:`sequence_models` by default.
    units : int
        The size passed to :func:`sequence_models` when ``maps`` is None.
    steps : int
        Steps of the impulse response (and of the washout).
    max_delay : int
        Largest delay of the memory capacity.
    mc_steps : int
        Length of the memory-capacity run.
    lyapunov_steps : int
        Length of the spectrum's run.
    k : int
        How many exponents (at most the state size).
    rng : int, Generator or None
        Source of the weights (when ``maps`` is None) and of the signals.

    Returns
    -------
    SequenceComparison

    Raises
    ------
    ValueError
        A map that is not driven by one input, an empty ``maps``, bad counts.
    TypeError
        Counts that are not integers, ``maps`` that is not a mapping of maps.

    References
    ----------
    .. [1] H. Jaeger, "Short term memory in echo state networks", GMD Report 152 (2002).
    .. [2] Q. Hershey, R. Paffenroth, H. Pathak and S. Tavener, arXiv:2404.00880 (2024).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import compare_sequence_models
    >>> r = compare_sequence_models(units=8, steps=6, max_delay=4, mc_steps=400,
    ...                             lyapunov_steps=50, rng=0)
    >>> bool(r.impulse[0, 2] == 0.0), bool(np.isneginf(r.exponents[0, 0]))   # the MLP forgets
    (True, True)
    """
    steps = check_int("steps", steps, 1)
    max_delay = check_int("max_delay", max_delay, 1)
    mc_steps = check_int("mc_steps", mc_steps, 1)
    lyapunov_steps = check_int("lyapunov_steps", lyapunov_steps, 1)
    k = check_int("k", k, 1)
    gen = itermap.as_rng(rng)
    maps = sequence_models(units, rng=gen) if maps is None else maps
    if not isinstance(maps, Mapping) or not maps:
        raise TypeError(f"maps must be a non-empty mapping of names to maps, got "
                        f"{type(maps).__name__}")
    maps = {str(name): _named_map(name, m) for name, m in maps.items()}
    for name, m in maps.items():
        if m.input_size != 1:
            raise ValueError(f"maps[{name!r}] takes {m.input_size} inputs: the comparison drives "
                             f"every map with one scalar signal")
    u = gen.uniform(-1.0, 1.0, size=(2 * steps + lyapunov_steps + 1, 1))
    mc_seed, frame_seed = (int(s) for s in gen.integers(2 ** 63, size=2))  # the same for all
    impulse, r2, capacity, exps = [], [], [], []
    for name, m in maps.items():
        x = itermap.iterate(m, m.zeros(), steps, inputs=u[:steps], keep="last").final
        r = impulse_response(m, x, steps, inputs=u[steps:2 * steps + 1],
                             blocks=[_first_hidden(m)])
        total = np.asarray(r.total)
        impulse.append(total / total[0])
        try:
            mc = memory_capacity(m, max_delay=max_delay, steps=mc_steps, rng=mc_seed)
        except ValueError as exc:  # its "steps" are mc_steps here
            raise ValueError(f"mc_steps: maps[{name!r}]: {exc}") from None
        r2.append(np.asarray(mc.r2))
        capacity.append(float(mc.capacity))
        kk = min(k, m.dim - m.forced_size)
        spec = lyapunov_spectrum(m, x, lyapunov_steps, k=kk,
                                 inputs=u[steps:steps + lyapunov_steps], rng=frame_seed)
        e = np.full(k, np.nan)
        e[:kk] = np.asarray(spec.exponents, dtype=float).ravel()[:kk]
        exps.append(e)
    return SequenceComparison(list(maps), [m.dim for m in maps.values()], np.array(impulse),
                              np.array(r2), capacity, np.array(exps))


def _named_map(name, m):
    try:
        return itermap.as_map(m)
    except TypeError as exc:  # as_map's message names no key of the mapping
        raise TypeError(f"maps[{name!r}]: {exc}") from exc
