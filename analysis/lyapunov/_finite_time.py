"""Finite-time (local) Lyapunov exponents: ``sum log|R_ii| / window`` over windows that
tile one run, so their mean is the asymptotic estimate and their spread the fluctuation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import itermap
from itermap import as_map, resolve_inputs, saveable
from itermap.typing import Array, MapLike, RngLike

from .._checks import check_int as _check_int
from .._checks import no_extended
from ._spectrum import _nilpotent_length, _own_or_general, _start, _window_sums

__all__ = ["FiniteTimeExponents", "finite_time_exponents"]


@saveable
@dataclass
class FiniteTimeExponents(itermap.Result):
    """Lyapunov exponents over consecutive windows of a run.

    Attributes
    ----------
    exponents : ndarray, shape (n_windows, k) or (n_windows, B, k)
        Each window's exponents (nats per step) in the order of the QR frame
        (descending on average, not in every window).
    window : int
        Steps per window.
    mean : ndarray, shape (k,)
        Mean over windows and trajectories: the asymptotic estimate.
    std : ndarray, shape (k,)
        Standard deviation over windows and trajectories.
    steps, transient : int
        Measured steps (``n_windows * window``) and the steps run first.
    batched : bool
        Whether ``x0`` was a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import finite_time_exponents
    >>> from itermap.systems import linear
    >>> fte = finite_time_exponents(linear(np.diag([2.0, 0.5])), np.ones(2), 5, 20)
    >>> fte.n_windows, np.round(fte.mean, 6)
    (4, array([ 0.693147, -0.693147]))
    """

    _schema: ClassVar[dict[str, str]] = {
        "exponents": "float[W, ..., K]",
        "window": "int",
        "mean": "float[K]",
        "std": "float[K]",
        "steps": "int",
        "transient": "int",
        "batched": "bool",
    }
    _dims: ClassVar[dict[str, str]] = {"W": "window", "K": "exponent"}

    exponents: Array
    window: int
    mean: Array
    std: Array
    steps: int
    transient: int
    batched: bool

    @property
    def n_windows(self) -> int:
        return int(np.shape(self.exponents)[0])

    def __repr__(self) -> str:
        return (f"FiniteTimeExponents(n_windows={self.n_windows}, window={self.window}, "
                f"mean={np.round(np.asarray(self.mean), 4).tolist()}, "
                f"std={np.round(np.asarray(self.std), 4).tolist()})")


def finite_time_exponents(map: MapLike, x0: Array, window: int, steps: int, *,
                          k: int | None = None, transient: int = 100,
                          inputs: Array | None = None, rng: RngLike = None) -> FiniteTimeExponents:
    """The distribution of the Lyapunov exponents over windows of ``window`` steps.

    Parameters
    ----------
    map : Map
        Any map of the itermap protocol.
    x0 : array of shape (dim,) or (B, dim)
        Start state or a batch of starts, run together.
    window : int
        Steps per window (>= 1).
    steps : int
        Measured steps; ``steps // window`` windows are formed (a remainder
        is not run).
    k : int, optional
        Number of exponents (the top ``k``; default the full spectrum).
    transient : int
        Steps run first, which bring the state onto the attractor and align
        the frame.
    inputs : array, optional
        A constant input ``(n_in,)`` or ``(B, n_in)`` for a driven map.
    rng : int, Generator or None
        Seed of the random initial frame.

    Returns
    -------
    FiniteTimeExponents
        ``exponents`` (n_windows, k), or (n_windows, B, k) for a batch.

    Raises
    ------
    ValueError
        ``window < 1`` or ``steps < window``, and as :func:`lyapunov_spectrum`.

    References
    ----------
    .. [1] Abarbanel, H. D. I., Brown, R. and Kennel, M. B. (1991). Variation of Lyapunov
       exponents on a strange attractor. Journal of Nonlinear Science 1, 175-199.
    .. [2] Kuptsov, P. V. and Parlitz, U. (2012). Theory and computation of covariant
       Lyapunov vectors. Journal of Nonlinear Science 22, 727-762.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.systems import henon
    >>> fte = finite_time_exponents(henon(), np.array([0.1, 0.1]), 20, 4000)
    >>> fte.exponents.shape
    (200, 2)
    >>> bool(np.allclose(fte.exponents.sum(axis=1), np.log(0.3)))  # det J = -0.3
    True
    """
    map = as_map(map)
    window = _check_int("window", window, 1)
    steps = _check_int("steps", steps, 1)
    transient = _check_int("transient", transient, 0)
    if steps < window:
        raise ValueError(f"steps={steps} is shorter than one window (window={window})")
    n_windows = steps // window
    run = _start(map, x0, k, transient, rng)
    x = run["x"]
    # the run's length: a whole sequence is then refused as not constant, not as too long
    constant, sequence = resolve_inputs(map, x if run["batched"] else x[0, ...],
                                        no_extended("inputs", inputs),
                                        transient + n_windows * window)
    if sequence is not None:
        raise ValueError("inputs must be constant here, (n_in,) or (B, n_in)")
    # the map's own stepper, window after window; else (or to name a divergence) the general one
    per = _own_or_general(lambda s: _window_sums(s, [window] * n_windows, transient), map, x,
                          run["Q"], constant, None, transient, transient + steps) / window
    L = _nilpotent_length(map, per)  # an MLP's windows of its depth or more: all -inf
    if L is not None and window >= L:
        per = np.full_like(per, -np.inf)
    flat = per.reshape(-1, per.shape[-1])
    with np.errstate(invalid="ignore"):
        mean = flat.mean(axis=0)
        std = flat.std(axis=0) if flat.shape[0] > 1 else np.full(flat.shape[-1], np.nan)
    collapsed = np.isneginf(flat)  # -inf in some window: the spread is unbounded
    std[collapsed.any(axis=0)] = np.inf
    std[collapsed.all(axis=0)] = 0.0
    batched = run["batched"]
    if not batched:
        per = per[:, 0]
    return FiniteTimeExponents(exponents=per, window=window, mean=mean, std=std,
                               steps=n_windows * window, transient=transient,
                               batched=batched)
