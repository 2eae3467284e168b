"""Parallel-in-time evaluation against predictability (Gonzalez et al., arXiv:2508.16817)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import itermap
from itermap import NewtonConvergenceError, NewtonTrajectory, as_rng, iterate, random_rnn, saveable
from itermap.typing import Array, RngLike

from ._checks import check_choice, check_real_array
from ._checks import check_int as _check_int
from .lyapunov import lyapunov_spectrum

__all__ = ["NewtonLyapunovScan", "newton_lyapunov_scan"]


@saveable
@dataclass
class NewtonLyapunovScan(itermap.Result):
    """Newton iterations to convergence against the largest Lyapunov exponent.

    Attributes
    ----------
    gains : ndarray, shape (G,)
        The gains of the random tanh networks.
    lyapunov : ndarray, shape (G, trials)
        The largest Lyapunov exponent of each network (nats per step).
    iterations : ndarray of int, shape (G, trials)
        Newton iterations to convergence (``steps``, the bound, where it did not).
    converged : ndarray of bool, shape (G, trials)
        Whether Newton met its tolerance.
    steps : int
        Length ``T`` of the trajectories solved.
    n : int
        Units per network.
    jacobian : str
        ``"full"`` (DEER) or ``"diagonal"`` (quasi-DEER).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import NewtonLyapunovScan
    >>> NewtonLyapunovScan(gains=np.array([0.5]), lyapunov=np.array([[-0.7]]),
    ...                    iterations=np.array([[5]]), converged=np.array([[True]]),
    ...                    steps=64, n=16)
    NewtonLyapunovScan(gains=1, trials=1, steps=64, n=16, jacobian='full', converged=1/1)
    """

    _schema: ClassVar[dict[str, str]] = {
        "gains": "float[G]",
        "lyapunov": "float[G, R]",
        "iterations": "int[G, R]",
        "converged": "bool[G, R]",
        "steps": "int",
        "n": "int",
        "jacobian": "str",
    }
    _table: ClassVar[tuple[str, ...]] = ("gains", "lyapunov", "iterations", "converged")
    _dims: ClassVar[dict[str, str]] = {"G": "gain", "R": "trial"}
    _coords: ClassVar[dict[str, str]] = {"gain": "gains"}
    _checks: ClassVar[tuple[itermap.Check, ...]] = (itermap.Check(
        "converged", itermap.Status.MAX_ITERATIONS, "Newton did not converge within steps "
        "iterations in {n} runs (expected where lyapunov > 0): raise steps"),)

    gains: Array
    lyapunov: Array
    iterations: Array
    converged: Array
    steps: int
    n: int
    jacobian: str = "full"

    def __repr__(self) -> str:
        return (f"NewtonLyapunovScan(gains={len(np.atleast_1d(self.gains))}, "
                f"trials={np.shape(self.iterations)[-1]}, steps={self.steps}, n={self.n}, "
                f"jacobian={self.jacobian!r}, converged={int(np.sum(self.converged))}/"
                f"{np.size(self.converged)})")


def newton_lyapunov_scan(gains: Array | None = None, *, n: int = 32, steps: int = 256,
                         trials: int = 2,
                         jacobian: str = "full", lyapunov_steps: int = 2000,
                         transient: int = 200, rng: RngLike = None) -> NewtonLyapunovScan:
    """Newton iterations over a trajectory against the largest Lyapunov exponent.

    For each gain, ``trials`` random tanh networks run from a random start by Newton
    over ``steps`` steps (``iterate(..., method="newton")``, DEER, ``max_iter=steps``)
    and by :func:`lyapunov_spectrum` (``k=1``).

    Parameters
    ----------
    gains : array_like, optional
        Gains of the networks; default 10 gains from 0.3 to 3.0.
    n : int
        Units per network.
    steps : int
        Length of the trajectory solved by Newton.
    trials : int
        Networks per gain.
    jacobian : {"full", "diagonal"}
        Newton (DEER) or quasi-Newton (quasi-DEER).
    lyapunov_steps, transient : int
        Measured steps and transient of the Lyapunov exponent.
    rng : int, Generator or None
        Seeds the networks and the starts.

    Returns
    -------
    NewtonLyapunovScan

    Raises
    ------
    ValueError
        Non-positive sizes, gains that are negative or not finite, or an
        unknown ``jacobian``.
    TypeError
        Sizes that are not integers, a ``jacobian`` that is not a string.

    Notes
    -----
    Gonzalez et al. bound the iterations of a contracting system by ``O(log T)``;
    a positive exponent makes the linearised error grow like ``exp(lambda t)``.

    References
    ----------
    .. [1] X. Gonzalez, L. Kozachkov, D. M. Zoltowski, K. L. Clarkson, S. W.
       Linderman, "Predictability enables parallelization of nonlinear state space
       models", NeurIPS (2025), arXiv:2508.16817.
    .. [2] Y. H. Lim, Q. Zhu, J. Selfridge, M. F. Kasim, "Parallelizing non-linear
       sequential models over the sequence length", ICLR (2024), arXiv:2309.12252.
    .. [3] G. Benettin, L. Galgani, A. Giorgilli, J.-M. Strelcyn, "Lyapunov
       characteristic exponents for smooth dynamical systems and for Hamiltonian
       systems; a method for computing all of them", Meccanica 15, 9-30 (1980).

    Examples
    --------
    >>> from itermap.analysis import newton_lyapunov_scan
    >>> scan = newton_lyapunov_scan([0.5, 3.0], n=16, steps=64, trials=1,
    ...                             lyapunov_steps=300, rng=0)
    >>> bool(scan.lyapunov[0, 0] < 0 < scan.lyapunov[1, 0])
    True
    >>> bool(scan.iterations[0, 0] < 10 < scan.iterations[1, 0])
    True
    """
    gains = np.atleast_1d(np.linspace(0.3, 3.0, 10) if gains is None
                          else check_real_array("gains", gains, allow_empty=True))
    if gains.ndim != 1 or gains.size == 0 or not np.all(np.isfinite(gains)) \
            or np.any(gains < 0):
        raise ValueError("gains must be a non-empty 1-D array of finite non-negative numbers")
    n = _check_int("n", n, 1)
    steps = _check_int("steps", steps, 1)
    trials = _check_int("trials", trials, 1)
    lyapunov_steps = _check_int("lyapunov_steps", lyapunov_steps, 1)
    transient = _check_int("transient", transient, 0)
    jacobian = check_choice("jacobian", jacobian, ("full", "diagonal"))
    gen = as_rng(rng)
    shape = (gains.size, trials)
    lyap = np.empty(shape)
    iters = np.empty(shape, dtype=np.int64)
    conv = np.empty(shape, dtype=bool)
    for i, g in enumerate(gains):
        for j in range(trials):
            m = random_rnn(n, gain=float(g), rng=gen)
            x0 = gen.normal(size=n)
            spec = lyapunov_spectrum(m, x0, lyapunov_steps, k=1, transient=transient, rng=gen)
            lyap[i, j] = float(spec.exponents[0])
            try:
                traj = iterate(m, x0, steps, method="newton", jacobian=jacobian,
                               max_iter=steps)
                assert isinstance(traj, NewtonTrajectory)  # what method="newton" returns
                iters[i, j], conv[i, j] = traj.iterations, True
            except NewtonConvergenceError as err:
                iters[i, j], conv[i, j] = max(err.iterations, steps), False
    return NewtonLyapunovScan(gains=gains, lyapunov=lyap, iterations=iters, converged=conv,
                              steps=steps, n=n, jacobian=jacobian)
