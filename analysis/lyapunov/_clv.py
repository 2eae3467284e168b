"""Covariant Lyapunov vectors (Ginelli et al., PRL 99, 130601, 2007), batched: a forward
pass stores every ``R`` factor (and ``Q`` at the saved times), a backward pass iterates
``C_{t-1} = R_t^{-1} C_t`` with normalised columns, and ``V_t = Q_t C_t``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import itermap
from itermap import as_map, resolve_inputs, saveable
from itermap.backends import namespace, to_numpy
from itermap.typing import Array, MapLike, RngLike

from .._checks import check_int as _check_int
from .._checks import check_real_array, no_extended
from ._spectrum import _entered, _own_or_general, _start

__all__ = ["CovariantVectors", "covariant_lyapunov_vectors", "clv_angles",
           "participation_ratio"]

_MAX_STORED_BYTES = 8 * 2 ** 30


@saveable
@dataclass
class CovariantVectors(itermap.Result):
    """Covariant Lyapunov vectors along one or a batch of trajectories.

    Attributes
    ----------
    vectors : ndarray, shape (n_saved, dim, k) or (n_saved, B, dim, k)
        The CLVs as unit columns, ordered like the exponents (``j = 0`` the
        most expanding), at the saved times; the sign of each is arbitrary.
    times : ndarray of int, shape (n_saved,)
        The measured step (``1 .. steps``, after the transient) of each
        saved frame: the vectors sit at the state after that step.
    angles : ndarray, shape (n_saved, k, k) or (n_saved, B, k, k)
        Angle in radians, in ``[0, pi/2]``, between the lines of vectors ``i``
        and ``j`` (0 on the diagonal): near 0 is a near-tangency of the
        expanding and contracting directions.
    participation_ratio : ndarray, shape (n_saved, k) or (n_saved, B, k)
        ``1 / sum_i v_i^4`` of each unit vector: from 1 (one component) to
        ``dim`` (spread evenly), a measure of localisation.
    exponents : ndarray, shape (k,)
        Lyapunov exponents from the forward pass (mean over trajectories).
    covariant_exponents : ndarray, shape (k,)
        The mean log-growth of each covariant vector over the measured steps,
        from the backward pass; it converges to ``exponents``.
    steps, transient, backward_transient, save_every : int
        As passed to :func:`covariant_lyapunov_vectors`.
    batched : bool
        Whether ``x0`` was a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import covariant_lyapunov_vectors
    >>> from itermap.systems import linear
    >>> clv = covariant_lyapunov_vectors(linear(np.diag([2.0, 0.5])), np.ones(2), 10,
    ...                                  transient=10)
    >>> clv.vectors.shape, clv.angles.shape, clv.batched
    ((10, 2, 2), (10, 2, 2), False)
    """

    _schema: ClassVar[dict[str, str]] = {
        "vectors": "float[T, ..., D, K]",
        "times": "int[T]",
        "angles": "float[T, ..., K, K]",
        "participation_ratio": "float[T, ..., K]",
        "exponents": "float[K]",
        "covariant_exponents": "float[K]",
        "steps": "int",
        "transient": "int",
        "backward_transient": "int",
        "save_every": "int",
        "batched": "bool",
    }
    _dims: ClassVar[dict[str, str]] = {"T": "time", "D": "unit", "K": "exponent"}
    _coords: ClassVar[dict[str, str]] = {"time": "times"}

    vectors: Array
    times: Array
    angles: Array
    participation_ratio: Array
    exponents: Array
    covariant_exponents: Array
    steps: int
    transient: int
    backward_transient: int
    save_every: int
    batched: bool

    def __repr__(self) -> str:
        return (f"CovariantVectors(vectors shape={tuple(np.shape(self.vectors))}, "
                f"exponents={np.round(np.asarray(self.exponents), 4).tolist()}, "
                f"steps={self.steps})")


def clv_angles(vectors: Array | CovariantVectors) -> Array:
    """Angles in ``[0, pi/2]`` between the lines of the columns of ``vectors`` (..., dim, k).

    Parameters
    ----------
    vectors : array of shape (dim, k), (n_saved, dim, k) or (n_saved, B, dim, k)
        Frames of nonzero column vectors (normalised here); or a
        :class:`CovariantVectors`, whose ``vectors`` are taken.

    Returns
    -------
    ndarray of shape (..., k, k)
        The angle in radians between columns ``i`` and ``j``; 0 on the diagonal.

    Raises
    ------
    ValueError
        For ``vectors`` of another shape, non-finite, or with a zero column.

    References
    ----------
    .. [1] Ginelli, F., Poggi, P., Turchi, A., Chate, H., Livi, R. and Politi, A. (2007).
       Characterizing dynamics with covariant Lyapunov vectors. Physical Review Letters 99,
       130601.
    .. [2] Kuptsov, P. V. and Parlitz, U. (2012). Theory and computation of covariant
       Lyapunov vectors. Journal of Nonlinear Science 22, 727-762.

    Examples
    --------
    >>> import numpy as np
    >>> a = clv_angles(np.array([[1.0, 1.0], [0.0, 1.0]]) / [1.0, np.sqrt(2.0)])
    >>> round(float(a[0, 1]), 6), round(float(np.pi / 4), 6)
    (0.785398, 0.785398)
    """
    V = _vector_frames(vectors)
    V = V / np.abs(V).max(axis=-2, keepdims=True)  # scale-free: the norms neither under-
    V = V / np.linalg.norm(V, axis=-2, keepdims=True)  # flow (NaN) nor overflow (pi/2)
    cos = np.abs(np.swapaxes(V, -1, -2) @ V)
    ang = np.arccos(np.clip(cos, 0.0, 1.0))
    # arccos reads every angle below 1e-8 as 0: the near-parallel pairs (i < j) by Kahan's
    # 2 atan2(|u - v|, |u + v|), accurate to rounding at any angle
    k = V.shape[-1]
    iu, ju = np.triu_indices(k, 1)
    *at, p = np.nonzero(cos[..., iu, ju] > 0.9)
    U = np.swapaxes(V, -1, -2)
    a, b = U[(*at, iu[p])], U[(*at, ju[p])]
    b = b * np.where(np.sum(a * b, axis=-1) < 0, -1.0, 1.0)[:, None]
    ang[(*at, iu[p], ju[p])] = ang[(*at, ju[p], iu[p])] = 2.0 * np.arctan2(
        np.linalg.norm(a - b, axis=-1), np.linalg.norm(a + b, axis=-1))
    ang[..., np.arange(k), np.arange(k)] = 0.0
    return ang


def _vector_frames(vectors):
    """``vectors`` as finite frames (..., dim, k) with nonzero columns; errors name it."""
    if not hasattr(vectors, "shape") and hasattr(vectors, "vectors"):  # CovariantVectors
        vectors = vectors.vectors
    V = check_real_array("vectors", to_numpy(vectors) if hasattr(vectors, "shape")
                         else vectors)
    if V.ndim not in (2, 3, 4):
        raise ValueError(f"vectors must have shape (dim, k), (n_saved, dim, k) or "
                         f"(n_saved, B, dim, k), got {V.shape}")
    if not np.all(np.any(V != 0, axis=-2)):
        raise ValueError("vectors has a zero column: a covariant vector has a direction")
    return V


def participation_ratio(vectors: Array | CovariantVectors) -> Array:
    """``(sum v^2)^2 / sum v^4`` of each column of ``vectors`` (..., dim, k): 1 to ``dim``.

    Parameters
    ----------
    vectors : array of shape (dim, k), (n_saved, dim, k) or (n_saved, B, dim, k)
        Frames of nonzero column vectors; or a :class:`CovariantVectors`, whose
        ``vectors`` are taken.

    Returns
    -------
    ndarray of shape (..., k)
        The participation ratio of each column.

    Raises
    ------
    ValueError
        For ``vectors`` of another shape, non-finite, or with a zero column.

    References
    ----------
    .. [1] Bell, R. J. and Dean, P. (1970). Atomic vibrations in vitreous silica.
       Discussions of the Faraday Society 50, 55-61.
    .. [2] Ginelli, F., Poggi, P., Turchi, A., Chate, H., Livi, R. and Politi, A. (2007).
       Characterizing dynamics with covariant Lyapunov vectors. Physical Review Letters 99,
       130601.

    Examples
    --------
    >>> import numpy as np
    >>> participation_ratio(np.array([[1.0, 0.5], [0.0, 0.5], [0.0, 0.5], [0.0, 0.5]]))
    array([1., 4.])
    """
    V = _vector_frames(vectors)
    sq = (V / np.abs(V).max(axis=-2, keepdims=True)) ** 2  # scale-free: v^4 stays finite
    return sq.sum(axis=-2) ** 2 / (sq * sq).sum(axis=-2)


def _stepper_forward(stepper, n_total, orient, save_every, steps):
    """The R factors, the frames every ``save_every`` and ``sum log|R_ii|`` of the steps
    after ``orient``; None where the stepper stopped (the general one reruns)."""
    B, dim, k = stepper.Q.shape
    Rs = np.zeros((n_total, B, k, k))
    Qs = np.empty((n_total // save_every, B, dim, k))  # the backward transient's too
    acc, first = np.zeros((B, k)), np.zeros((B, k))
    with _entered(stepper):
        if orient and stepper.advance(orient, acc=first) is None:
            return None
        if stepper.advance(n_total, acc=acc, r_out=Rs, q_out=Qs, q_every=save_every) is None:
            return None
    dead = (np.isneginf(acc) | np.isneginf(first)).any(axis=0)
    if dead[0]:     # the leading direction: all of them (a nilpotent map, an MLP)
        raise ValueError("every tangent direction collapsed exactly (R_11 = 0): the map "
                         "forgets every perturbation in finitely many steps (nilpotent "
                         "Jacobian products, as a feed-forward network such as an MLP has), "
                         "so every exponent is -inf and no covariant vector exists")
    if dead.any():
        raise ValueError(f"a tangent direction collapsed exactly (R_ii = 0): its exponent is "
                         f"-inf and its covariant vector undefined; lower k to at most "
                         f"{int(np.argmax(dead))}")
    return Rs, Qs[:steps // save_every], acc


def _backward(Rs, Qs, steps, save_every, rng):
    """``C_{t-1} = R_t^{-1} C_t`` from the last step down; ``V_t = Q_t C_t`` at the saved
    times (the R factors inverted in batches: a LAPACK call a step dominates for small k)."""
    _, B, k, _ = Rs.shape
    C = np.triu(np.random.default_rng(rng).standard_normal((B, k, k))) + np.eye(k)
    C /= np.linalg.norm(C, axis=-2, keepdims=True)
    chunk = max(1, (1 << 22) // (B * k * k))  # steps whose inverses are held at once
    Cs, log_norms = np.empty((len(Qs), B, k, k)), np.zeros((B, k))
    for stop in range(len(Rs), 0, -chunk):
        start = max(0, stop - chunk)
        inverses = np.linalg.inv(Rs[start:stop])
        for t in range(stop, start, -1):
            if t <= steps and t % save_every == 0:
                Cs[t // save_every - 1] = C
            C = inverses[t - 1 - start] @ C
            norms = np.sqrt(np.einsum("bij,bij->bj", C, C))
            C /= norms[..., None, :]
            if t <= steps:  # measured steps: J V_{t-1} = V_t / norms
                log_norms += np.log(norms)
    return Qs @ Cs, -log_norms


def covariant_lyapunov_vectors(map: MapLike, x0: Array, steps: int, *, k: int | None = None,
                               transient: int = 100, backward_transient: int | None = None,
                               save_every: int = 1, inputs: Array | None = None,
                               rng: RngLike = None) -> CovariantVectors:
    """Covariant Lyapunov vectors along one or a batch of trajectories (Ginelli's method).

    Parameters
    ----------
    map : Map
        Any map of the itermap protocol.
    x0 : array of shape (dim,) or (B, dim)
        Start state or batch of starts, run together.
    steps : int
        Measured steps (>= 1): the vectors are computed at steps ``1..steps``
        after the transient.
    k : int, optional
        Number of vectors: the ``k`` most expanding. Defaults to the full
        set (``map.dim`` minus a driven map's input block).
    transient : int
        Forward steps first (QR every step), which align the frame with the
        backward Lyapunov vectors.
    backward_transient : int, optional
        Forward steps past ``steps`` whose ``R`` factors only serve the
        backward pass to converge onto the covariant vectors. Default
        ``max(transient, 100)``.
    save_every : int
        Keep the vectors every this many steps (every ``R`` factor is stored
        either way).
    inputs : array, optional
        For a driven map, as in :func:`lyapunov_spectrum`: constant, or a
        sequence covering ``transient + steps + backward_transient`` steps.
    rng : int, Generator or None
        Seed of the random initial frame and of the backward pass's start.

    Returns
    -------
    CovariantVectors
        ``vectors`` of shape (n_saved, dim, k), or (n_saved, B, dim, k) for a batch.

    Raises
    ------
    ValueError
        Bad sizes, a stored history over 8 GiB, or a direction that
        collapses exactly (its covariant vector is undefined).
    DivergenceError
        When a state or tangent vector overflows.

    Notes
    -----
    Cost: a forward pass like :func:`lyapunov_spectrum` at a QR every step,
    plus ``k^3 / 3`` flops per step and trajectory for the backward
    triangular solves and ``2 dim k^2`` per saved frame.

    References
    ----------
    .. [1] Ginelli, F., Poggi, P., Turchi, A., Chate, H., Livi, R. and Politi, A. (2007).
       Characterizing dynamics with covariant Lyapunov vectors. Physical Review Letters 99,
       130601.
    .. [2] Kuptsov, P. V. and Parlitz, U. (2012). Theory and computation of covariant
       Lyapunov vectors. Journal of Nonlinear Science 22, 727-762.
    .. [3] Engelken, R., Wolf, F. and Abbott, L. F. (2023). Lyapunov spectra of chaotic
       recurrent neural networks. Physical Review Research 5, 043044.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.systems import linear
    >>> A = np.array([[2.0, 1.0], [0.0, 0.5]])  # eigenvectors (1, 0) and (-2, 3) / sqrt(13)
    >>> clv = covariant_lyapunov_vectors(linear(A), np.ones(2), 50, transient=50)
    >>> v = clv.vectors[-1]
    >>> np.round(np.abs(v[:, 1]) * np.sqrt(13), 6)
    array([2., 3.])
    >>> np.round(clv.exponents, 6)
    array([ 0.693147, -0.693147])
    """
    map = as_map(map)
    steps = _check_int("steps", steps, 1)
    transient = _check_int("transient", transient, 0)
    bt = max(transient, 100) if backward_transient is None else backward_transient
    bt = _check_int("backward_transient", bt, 0)
    save_every = _check_int("save_every", save_every, 1)
    run = _start(map, x0, k, transient, rng)
    k, x, Q = run["k"], run["x"], run["Q"]
    xp = namespace(x)
    B = x.shape[0]
    n_saved = steps // save_every
    if n_saved < 1:
        raise ValueError(f"save_every={save_every} exceeds steps={steps}: nothing to save")
    stored = (xp.finfo(x.dtype).bits // 8) * B * k * (k * (steps + bt) + map.dim * n_saved)
    if stored > _MAX_STORED_BYTES:
        raise ValueError(f"steps={steps}, k={k}, B={B} would store {stored / 2**30:.1f} GiB "
                         "of R factors and frames (limit 8 GiB): lower steps or k, or raise "
                         "save_every")
    constant, sequence = resolve_inputs(map, x if run["batched"] else x[0, ...],
                                        no_extended("inputs", inputs),
                                        transient + steps + bt)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # the map's own stepper, else (or to name a divergence or a collapse) the general one
        out = _own_or_general(lambda s: _stepper_forward(s, steps + bt, transient, save_every,
                                                         steps),
                              map, x, Q, constant, sequence, transient, transient + steps + bt)
        Rs, Qs, acc = out  # on the host
        V, growth = _backward(Rs, Qs, steps, save_every, rng)
    times = save_every * np.arange(1, n_saved + 1, dtype=np.int64)
    # the vectors keep the map's precision (float32 in, float32 out)
    real = np.dtype(str(x.dtype)) if str(x.dtype) in ("float32", "float64") else np.float64
    V = V.astype(real, copy=False)
    fwd = np.asarray(to_numpy(acc), dtype=float) / (steps + bt)
    cov = np.asarray(to_numpy(growth), dtype=float) / steps
    if not run["batched"]:
        V = V[:, 0]
    return CovariantVectors(
        vectors=V, times=times, angles=clv_angles(V), participation_ratio=participation_ratio(V),
        exponents=fwd.mean(axis=0), covariant_exponents=cov.mean(axis=0), steps=steps,
        transient=transient, backward_transient=bt, save_every=save_every,
        batched=run["batched"])
