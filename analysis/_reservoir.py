"""Reservoirs as maps: the effective spectral radius of a leaky network (Jaeger 2007) and
the edge of chaos of an ensemble of leaky reservoirs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

import itermap
from itermap.backends import is_sparse, to_numpy
from itermap.checks import check_leak

from ._checks import (
    check_choice,
    check_int,
    check_real,
    check_real_array,
    is_network,
    plain_array,
    state_units,
)

__all__ = ["EdgeOfChaosScan", "edge_of_chaos_scan", "effective_spectral_radius"]

# from this size on a sparse matrix's largest eigenvalue comes from ARPACK, not a dense solve
_ARNOLDI_DIM = 400
# the scan holds dense n x n weights and one input per step: beyond these it cannot finish
_MAX_UNITS = 20_000
_MAX_RUN = 10 ** 8
# below this tanh' = 1 - tanh^2 has lost half its digits (the library's activation switches
# to sech^2 at the same value)
_TANH_D_EXACT = 1e-8


def effective_spectral_radius(map: Any, *, leak: float | None = None,
                              method: str = "auto") -> float:
    """The spectral radius of ``(1 - a) I + a W``, a leaky reservoir's linearisation.

    ``(1 - a) I + a W`` is the Jacobian of ``x -> (1 - a) x + a tanh(W x)`` at the
    origin (``a`` diagonal with a leak per block).

    Parameters
    ----------
    map : IterativeMap, or a square dense or sparse matrix
        A map contributes its weights outside the input block and its leak; a
        matrix is ``W`` itself.
    leak : float, optional
        The leak rate in (0, 1] of a matrix ``map`` (default 1); refused with a map.
    method : {"auto", "dense", "arnoldi"}
        All eigenvalues (LAPACK) or the largest by ARPACK; ``"auto"``: ARPACK for
        a sparse matrix of at least 400 units.

    Returns
    -------
    float
        ``max |eig((1 - a) I + a W)|``.

    Raises
    ------
    TypeError
        A map with no weight matrix, or a ``map`` that is no matrix.
    ValueError
        A matrix that is not square, a bad ``leak`` or ``method``, ``leak`` with
        a map, a map with function blocks, or one with no unit outside its input block.

    References
    ----------
    .. [1] H. Jaeger, M. Lukosevicius, D. Popovici, U. Siewert, "Optimization and
       applications of echo state networks with leaky-integrator neurons",
       Neural Networks 20(3), 335-352 (2007).
    .. [2] H. Jaeger, "The 'echo state' approach to analysing and training recurrent
       neural networks", GMD Report 148, German National Research Center for
       Information Technology (2001).
    .. [3] M. Lukosevicius, "A practical guide to applying echo state networks", in
       Neural Networks: Tricks of the Trade, 2nd ed., LNCS 7700, Springer (2012).

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import effective_spectral_radius
    >>> W = np.array([[0.0, 0.9], [0.9, 0.0]])          # eigenvalues +-0.9
    >>> round(effective_spectral_radius(W), 12)
    0.9
    >>> round(effective_spectral_radius(itermap.IterativeMap(W, leak=0.5)), 12)  # 0.5 + 0.45
    0.95
    """
    method = check_choice("method", method, ("auto", "dense", "arnoldi"))
    W, a = _effective_parts(map, leak)
    n = W.shape[0]
    M = (sp.diags(1.0 - a) + sp.diags(a) @ W).tocsr() if is_sparse(W) else \
        np.diag(1.0 - a) + a[:, None] * W
    if method == "auto":
        method = "arnoldi" if is_sparse(M) and n >= _ARNOLDI_DIM else "dense"
    if method == "arnoldi" and n > 2:
        from scipy.sparse.linalg import eigs

        # several of the largest: a random matrix's outermost eigenvalues crowd the circle's
        # edge; a fixed start vector keeps the result the same from run to run
        v0 = np.random.default_rng(0).standard_normal(n)
        vals = eigs(M, k=min(8, n - 2), which="LM", return_eigenvectors=False, tol=1e-12,
                    maxiter=max(1000, 20 * n), v0=v0)
        return float(np.max(np.abs(vals)))
    dense = M.toarray() if is_sparse(M) else M
    return float(np.max(np.abs(np.linalg.eigvals(dense))))


def _effective_parts(map, leak):
    """(W on the non-input units, leak per unit) as NumPy/SciPy float64."""
    map = plain_array("map", map)
    if hasattr(map, "shape") and not is_sparse(map) and not isinstance(map, np.ndarray) \
            and itermap.backends.backend_of(map) != "cupy":
        raise TypeError(f"map must be a map or a NumPy, CuPy or sparse matrix, got a "
                        f"{type(map).__module__.split('.')[0]} array")
    if is_network(map):
        if leak is not None:
            raise ValueError("leak: a map carries its own leak; pass leak only with a matrix")
        if getattr(map, "functions", None):
            raise ValueError(f"map: its function blocks {sorted(map.functions)} are part of its "
                             f"linearisation, which (1 - a) I + a W leaves out")
        bm = map.block_matrix
        W = bm.to_sparse() if any(is_sparse(b) for b in bm.blocks.values()) else bm.to_dense()
        W = sp.csr_matrix(W.get() if hasattr(W, "get") else W) if is_sparse(W) else \
            np.asarray(to_numpy(W), dtype=float)
        a = np.repeat(np.asarray(map.leak, dtype=float), map.sizes)
        keep = state_units(map)
        if not keep.any():
            raise ValueError("map: every unit is in the input block; there is no recurrent part")
        idx = np.flatnonzero(keep)
        W = W[idx][:, idx]
        return (W.astype(float).tocsr() if is_sparse(W) else W), a[idx]
    if isinstance(map, itermap.Map):
        raise TypeError(f"map: a {type(map).__name__} has no weight matrix; pass an "
                        "IterativeMap or a matrix")
    if not is_sparse(map):
        W = check_real_array("map", map, ndim=2)
    elif np.dtype(map.dtype).kind not in "biuf":
        raise TypeError(f"map must be a real matrix, got dtype {map.dtype}")
    else:
        W = sp.csr_matrix(map.get() if hasattr(map, "get") else map, dtype=float)
        if not np.all(np.isfinite(W.data)):
            raise ValueError("map contains NaN or inf")
    if W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"map must be a non-empty square matrix, got shape {W.shape}")
    rate = 1.0 if leak is None else check_leak(leak, 1)[0]
    return W, np.full(W.shape[0], rate)


@itermap.saveable
@dataclass
class EdgeOfChaosScan(itermap.Result):
    """The largest Lyapunov exponent of leaky tanh reservoirs over spectral radius and leak.

    Attributes
    ----------
    radii : array of shape (R,)
        Spectral radii ``rho`` of ``W``.
    leaks : array of shape (L,)
        Leak rates ``a``.
    exponents : array of shape (seeds, L, R)
        The largest exponent (nats/step) of each reservoir of the ensemble.
    mean, stderr : arrays of shape (L, R)
        Their mean over the ensemble and its standard error.
    effective_radius : array of shape (seeds, L, R)
        ``max |eig((1 - a) I + a rho W)|`` of each reservoir.
    edge : array of shape (L,)
        Per leak, the radius where the mean exponent first rises above 0 going up in
        radius (linear interpolation; NaN where it never does inside the scan).
    n : int
        Units per reservoir.
    input_scale : float
        Amplitude of the i.i.d. input (0: undriven).

    Examples
    --------
    >>> from itermap.analysis import edge_of_chaos_scan
    >>> scan = edge_of_chaos_scan([0.5, 3.0], [1.0], n=40, density=0.3, seeds=2, steps=300,
    ...                           rng=0)
    >>> scan.exponents.shape, bool(scan.mean[0, 0] < 0 < scan.mean[0, 1])
    ((2, 1, 2), True)
    """

    _schema: ClassVar[dict[str, str]] = {
        "radii": "float[R]",
        "leaks": "float[L]",
        "exponents": "float[S, L, R]",
        "mean": "float[L, R]",
        "stderr": "float[L, R]",
        "effective_radius": "float[S, L, R]",
        "edge": "float[L]",
        "n": "int",
        "input_scale": "float",
    }
    _dims: ClassVar[dict[str, str]] = {"S": "seed", "L": "leak", "R": "radius"}
    _long: ClassVar[tuple[str, ...]] = ("mean", "stderr")
    _coords: ClassVar[dict[str, str]] = {"radius": "radii", "leak": "leaks"}

    radii: np.ndarray
    leaks: np.ndarray
    exponents: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    effective_radius: np.ndarray
    edge: np.ndarray
    n: int
    input_scale: float


def edge_of_chaos_scan(radii: Sequence[float], leaks: Sequence[float], *, n: int = 100,
                       density: float = 0.1, seeds: int = 4, steps: int = 500,
                       transient: int = 200, input_scale: float = 0.0,
                       rng: Any = None) -> EdgeOfChaosScan:
    """The edge of chaos of leaky tanh reservoirs: the largest exponent over radius and leak.

    Each of ``seeds`` reservoirs draws a sparse Gaussian ``W`` of spectral radius 1; for
    every radius ``rho`` and leak ``a`` (one batch) the largest exponent of ``x -> (1 -
    a) x + a tanh(rho W x + input_scale w_in u_t)``, ``u_t ~ U(-1, 1)``, is measured.

    Parameters
    ----------
    radii : sequence of float
        Spectral radii of ``W`` (> 0).
    leaks : sequence of float
        Leak rates in (0, 1].
    n : int
        Units per reservoir (>= 2).
    density : float
        Fraction of nonzero recurrent weights, in (0, 1].
    seeds : int
        Reservoirs in the ensemble (>= 1).
    steps, transient : int
        Steps measured (>= 1) and discarded first (>= 0).
    input_scale : float
        Amplitude of the input (>= 0).
    rng : int, Generator or None
        Source of the weights, inputs and starts.

    Returns
    -------
    EdgeOfChaosScan

    Raises
    ------
    ValueError
        Empty, non-finite or out-of-range ``radii`` or ``leaks``, or a bad count.
    TypeError
        Values that are not real numbers.

    References
    ----------
    .. [1] N. Bertschinger, T. Natschlaeger, "Real-time computation at the edge of
       chaos in recurrent neural networks", Neural Computation 16(7), 1413-1436 (2004).
    .. [2] H. Jaeger, M. Lukosevicius, D. Popovici, U. Siewert, "Optimization and
       applications of echo state networks with leaky-integrator neurons",
       Neural Networks 20(3), 335-352 (2007).
    .. [3] G. Benettin, L. Galgani, A. Giorgilli, J.-M. Strelcyn, "Lyapunov
       characteristic exponents for smooth dynamical systems", Meccanica 15, 9-30 (1980).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import edge_of_chaos_scan
    >>> scan = edge_of_chaos_scan([0.5, 0.8], [0.3], n=30, seeds=1, steps=400, rng=1)
    >>> bool(np.allclose(scan.mean, np.log(scan.effective_radius[0]), atol=1e-2))
    True
    """
    rad = check_real_array("radii", radii, ndim=1)
    lks = check_real_array("leaks", leaks, ndim=1)
    if np.any(rad <= 0):
        raise ValueError("radii must be > 0")
    if np.any((lks <= 0) | (lks > 1)):
        raise ValueError("leaks must lie in (0, 1]")
    n = check_int("n", n, 2)
    density = check_real("density", density, positive=True, maximum=1.0)
    seeds = check_int("seeds", seeds, 1)
    steps = check_int("steps", steps, 1)
    transient = check_int("transient", transient, 0)
    input_scale = check_real("input_scale", input_scale, minimum=0.0)
    for name, value, most in (("n", n, _MAX_UNITS), ("seeds", seeds, _MAX_RUN),
                              ("steps", steps, _MAX_RUN), ("transient", transient, _MAX_RUN)):
        if value > most:  # refused before anything is allocated
            raise ValueError(f"{name}={value} is more than this scan runs (at most {most})")
    gen = itermap.as_rng(rng)
    R, L = rad.size, lks.size
    rho = np.tile(rad, L)[:, None]   # batch row p = (leak l, radius r), l major
    a = np.repeat(lks, R)[:, None]
    exps = np.empty((seeds, L, R))
    eff = np.empty((seeds, L, R))
    for s in range(seeds):
        W, lam = _unit_radius_reservoir(n, density, gen)
        w_in = gen.uniform(-1.0, 1.0, n)
        u = gen.uniform(-1.0, 1.0, steps + transient) * input_scale
        x0 = gen.normal(0.0, 0.5, n)
        exps[s] = _largest_exponents(W, w_in, u, x0, rho, a, transient).reshape(L, R)
        eff[s] = np.max(np.abs((1 - a) + a * rho * lam[None, :]), axis=1).reshape(L, R)
    mean = exps.mean(axis=0)
    stderr = exps.std(axis=0, ddof=1) / np.sqrt(seeds) if seeds > 1 else np.full((L, R), np.nan)
    up = np.argsort(rad, kind="stable")  # the edge is along increasing radius, in any order given
    edge = np.array([first_crossing(rad[up], row[up]) for row in mean], dtype=float)  # None: NaN
    return EdgeOfChaosScan(rad, lks, exps, mean, stderr, eff, edge, n, input_scale)


def _unit_radius_reservoir(n, density, gen):
    """A sparse Gaussian ``W`` scaled to spectral radius 1, and its eigenvalues."""
    mask = gen.random((n, n)) < density
    W = np.where(mask, gen.normal(size=(n, n)), 0.0)
    lam = np.linalg.eigvals(W)
    r = float(np.max(np.abs(lam)))
    # a nilpotent draw (tiny, very sparse): nothing to scale
    return (W, lam) if r == 0.0 else (W / r, lam / r)


def _largest_exponents(W, w_in, u, x0, rho, a, transient):
    """Benettin's largest exponent of every batch row ``(rho_p, a_p)`` at once."""
    P, n = rho.shape[0], W.shape[0]
    X = np.broadcast_to(x0, (P, n)).copy()
    V = np.ones((P, n)) / np.sqrt(n)
    total = np.zeros(P)
    WT = np.ascontiguousarray(W.T)
    tanh = itermap.ACTIVATIONS["tanh"]
    keep, a_rho = 1 - a, a * rho
    for t in range(u.size):
        Z = rho * (X @ WT) + u[t] * w_in
        T = np.tanh(Z)
        D = 1 - T * T
        # 1 - T^2 loses its digits in saturation and is 0 past |z| ~ 19: there the
        # activation's own (exact) derivative, from Z
        if D.min() < _TANH_D_EXACT:
            low = D < _TANH_D_EXACT
            D[low] = tanh.derivative(Z[low], np)
        V = keep * V + (a_rho * D) * (V @ WT)
        X = keep * X + a * T
        norm = np.linalg.norm(V, axis=1)
        V /= norm[:, None]
        if t >= transient:
            total += np.log(norm)
    return total / (u.size - transient)


def first_crossing(x, y, threshold=0.0):
    """The ``x`` where ``y`` first rises above ``threshold`` (linear interpolation); None
    where it never does inside."""
    above = np.flatnonzero(y > threshold)
    if not above.size or above[0] == 0:
        return None
    i = above[0]
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return float(x0 + (x1 - x0) * (threshold - y0) / (y1 - y0))
