"""Starts for the fixed-point search: states visited by trajectories, plus noise."""

from __future__ import annotations

import numpy as np

import itermap
from itermap.backends import namespace, to_backend
from itermap.typing import Array, MapLike, RngLike

from .._checks import check_int as _check_int
from .._checks import check_memory, check_real, check_states
from ._common import _check_inputs


def sample_states(map: MapLike, n: int, *, steps: int = 100, noise: float = 0.0,
                  rng: RngLike = None, x0: Array | None = None,
                  inputs: Array | None = None) -> Array:
    """Starts for :func:`find_fixed_points`: states visited by trajectories, plus noise.

    Runs ``n`` trajectories for ``steps`` steps and takes from each the state
    at a random time in ``0..steps``, then adds Gaussian noise of standard
    deviation ``noise``, as users of FixedPointFinder do.

    Parameters
    ----------
    map : itermap.Map
        The map.
    n : int
        Number of states.
    steps : int, default 100
        Length of the trajectories.
    noise : float, default 0.0
        Standard deviation of the Gaussian noise added to each state.
    rng : int, numpy.random.Generator or None
        Randomness for the initial states, times and noise.
    x0 : array of shape (dim,) or (n, dim), optional
        Initial states of the trajectories; standard normal draws by default
        (pass states in the map's domain for maps like the logistic map).
    inputs : array of shape (n_in,), optional
        Constant input of a driven map.

    Returns
    -------
    array of shape (n, dim)
        On the map's backend; on a torus (``map.periods``) reduced onto ``[0, P)``.

    Raises
    ------
    itermap.DivergenceError
        When trajectories overflow.

    Examples
    --------
    >>> import itermap
    >>> from itermap.analysis import sample_states
    >>> m = itermap.random_rnn(8, gain=1.2, rng=0)
    >>> sample_states(m, 16, steps=20, noise=0.01, rng=1).shape
    (16, 8)

    References
    ----------
    .. [1] D. Sussillo and O. Barak, "Opening the black box: low-dimensional dynamics in
       high-dimensional recurrent neural networks", Neural Computation 25(3), 626-649
       (2013): starts drawn from the states the network visits.
    .. [2] M. D. Golub and D. Sussillo, "FixedPointFinder: a TensorFlow toolbox for
       identifying and characterizing fixed points in recurrent neural networks",
       Journal of Open Source Software 3(31), 1003 (2018).
    """
    map = itermap.as_map(map)
    n = _check_int("n", n, 1)
    steps = _check_int("steps", steps, 0)
    noise = check_real("noise", noise, minimum=0.0)
    check_memory("n", 8 * 3 * n * map.dim, "the sampled states")
    gen = itermap.as_rng(rng)
    dtype = map.dtype if map.dtype is not None else np.float64
    if x0 is None:
        x = gen.standard_normal((n, map.dim)).astype(dtype)
    else:
        x = check_states("x0", x0)
        if x.shape not in ((map.dim,), (n, map.dim)):
            raise ValueError(f"x0 must have shape ({map.dim},) or ({n}, {map.dim}), got "
                             f"{tuple(np.shape(x0))}")
        x = np.array(np.broadcast_to(x, (n, map.dim)) if x.ndim == 1 else x, dtype=dtype)
    times = gen.integers(0, steps + 1, size=n)
    eps = gen.standard_normal((n, map.dim)).astype(dtype) * noise
    if map.backend == "cupy":
        x, t_dev, eps = (to_backend(a, "cupy") for a in (x, times, eps))
    else:
        t_dev = times
    xp = namespace(x)
    u = _check_inputs(map, inputs, xp)
    if u is not None:
        u = xp.broadcast_to(xp.astype(u, x.dtype), (n, u.shape[0]))
    out = x
    for k in range(1, steps + 1):
        x = map.wrap(map.step(x, u))   # on a torus, states on it (as iterate keeps them)
        out = xp.where((t_dev == k)[:, None], x, out)
    if not bool(xp.all(xp.isfinite(out))):
        raise itermap.DivergenceError(
            "sampled states overflowed to inf or NaN; pass initial states x0 in the "
            "map's domain or fewer steps")
    return map.wrap(out + eps)
