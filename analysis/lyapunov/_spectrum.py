"""Lyapunov spectra of iterative maps (Benettin / Shimada-Nagashima), batched."""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import itermap
from itermap import as_map, as_rng, resolve_inputs, saveable
from itermap.backends import backend_of, namespace, to_backend, to_numpy
from itermap.linalg import Reorthonormalizer, general_tangent_stepper
from itermap.progress import progress_bar
from itermap.typing import Array, MapLike, RngLike

from .._checks import (
    check_batched_step,
    check_bool,
    is_network,
    machine_eps,
    no_extended,
    plain_array,
)
from .._checks import check_int as _check_int
from .._graph import fir_length

__all__ = ["LyapunovSpectrum", "lyapunov_spectrum", "kaplan_yorke_dimension", "entropy_rate"]

_N_CHECKPOINTS = 100
_QR_ERROR_LIMIT = 1e-6  # nats per step: the warning threshold of spaced QRs
@saveable
@dataclass
class LyapunovSpectrum(itermap.Result):
    """The Lyapunov spectrum of a map along one or a batch of trajectories.

    Exponents are natural logarithms per step.

    Attributes
    ----------
    exponents : ndarray, shape (k,)
        The exponents, descending: the mean over trajectories of
        ``per_trajectory``.
    per_trajectory : ndarray, shape (B, k)
        Each trajectory's exponents, each row sorted descending; ``-inf``
        where a direction collapsed exactly in that trajectory.
    stderr : ndarray, shape (k,)
        ``std / sqrt(B)`` over the trajectories; NaN for a single one, 0 where every
        trajectory collapsed exactly (``-inf``), ``inf`` where only some did.
    history : ndarray, shape (n_checkpoints, k)
        Running estimates of ``exponents`` at about 100 checkpoints per run.
    history_steps : ndarray of int, shape (n_checkpoints,)
        The number of measured steps (after the transient) at each checkpoint.
    kaplan_yorke_dimension : float
        ``j + (l_1 + ... + l_j) / |l_{j+1}|`` for the largest ``j`` with a
        non-negative partial sum (see :func:`kaplan_yorke_dimension`).
    entropy_rate : float
        Sum of the positive exponents (:func:`entropy_rate`).
    steps : int
        Measured steps (after the transient), over all continued pieces.
    transient : int
        Steps run before measuring.
    dim : int
        Dimension of the tangent space measured: ``map.dim`` minus the input
        block's size for a driven map.
    reorthonormalize_every : int
        Steps between QR factorisations in the latest piece.
    state : array, shape (B, dim)
        The final states (``B = 1`` when ``x0`` was a single state).
    tangents : array, shape (B, map.dim, k)
        The final orthonormal tangent frames, for ``continue_from``.
    log_stretch : ndarray, shape (B, k)
        Accumulated ``sum log|R_ii|`` per trajectory, in frame order.
    batched : bool
        Whether ``x0`` was a batch ``(B, dim)`` rather than one state.
    n_collapsed : int
        How many of ``exponents`` are ``-inf`` (exact collapses, ``R_ii = 0``); a collapse
        that is not exact keeps its finite, very negative value.
    precision_loss : float
        The largest ``ln(||y_j|| / |R_jj|)`` over the measured QRs (``y_j`` the ``j``-th
        tangent vector before the QR): that ``R_jj`` has a relative error of about
        ``eps * exp(precision_loss)``.
    qr_error : float
        The bound those errors put on the exponents (nats per step): ``eps`` times the
        sum of ``exp(precision_loss)`` over the QRs, over the steps. Both are NaN with
        ``reorthonormalize_every=1``, where they are not tracked.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import lyapunov_spectrum
    >>> from itermap.systems import linear
    >>> res = lyapunov_spectrum(linear(np.diag([2.0, 0.5])), np.ones(2), 50, transient=50)
    >>> np.round(res.exponents, 6), res.steps
    (array([ 0.693147, -0.693147]), 50)
    """

    _schema: ClassVar[dict[str, str]] = {
        "exponents": "float[K]",
        "per_trajectory": "float[B, K]",
        "stderr": "float[K]",
        "history": "float[H, K]",
        "history_steps": "int[H]",
        "kaplan_yorke_dimension": "float",
        "entropy_rate": "float",
        "steps": "int",
        "transient": "int",
        "dim": "int",
        "reorthonormalize_every": "int",
        "state": "float[B, D] | None",
        "tangents": "float[B, D, K] | None",
        "log_stretch": "float[B, K] | None",
        "batched": "bool",
        "n_collapsed": "int",
        "precision_loss": "float",
        "qr_error": "float",
    }
    _table: ClassVar[tuple[str, ...]] = ("per_trajectory",)
    _dims: ClassVar[dict[str, str]] = {"B": "trajectory", "K": "exponent", "H": "step",
                                       "D": "unit"}
    _coords: ClassVar[dict[str, str]] = {"step": "history_steps"}
    _checks: ClassVar[tuple[itermap.Check, ...]] = (itermap.Check(
        "qr_error", itermap.Status.IMPRECISE, "with reorthonormalize_every="
        "{reorthonormalize_every} rounding bounds the exponents only to {qr_error:.1e} "
        "per step (> 1e-6): lower reorthonormalize_every", count=lambda e: e > 1e-6),)

    exponents: Array
    per_trajectory: Array
    stderr: Array
    history: Array
    history_steps: Array
    kaplan_yorke_dimension: float
    entropy_rate: float
    steps: int
    transient: int
    dim: int
    reorthonormalize_every: int
    state: Array | None = None
    tangents: Array | None = None
    log_stretch: Array | None = None
    batched: bool = True
    n_collapsed: int = 0
    precision_loss: float = float("nan")
    qr_error: float = float("nan")

    @property
    def k(self) -> int:
        """Number of exponents computed."""
        return int(np.shape(self.exponents)[0])

    def __repr__(self) -> str:
        ex = np.array2string(np.asarray(self.exponents)[:6], precision=4, separator=", ")
        more = ", ..." if self.k > 6 else ""
        return (f"LyapunovSpectrum(exponents={ex[:-1]}{more}], k={self.k}, "
                f"B={np.shape(self.per_trajectory)[0]}, steps={self.steps}, "
                f"transient={self.transient})")


def _spectrum_array(exponents, name="exponents"):
    if hasattr(exponents, "exponents"):      # a result, not its exponents
        raise TypeError(f"{name} must be an array of exponents, got a "
                        f"{type(exponents).__name__}: pass its .exponents")
    exponents = plain_array(name, exponents)
    lam = np.asarray(to_numpy(exponents) if hasattr(exponents, "shape") else exponents)
    if lam.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real numbers, got dtype {lam.dtype}")
    lam = lam.astype(float)
    if lam.ndim != 1:
        raise ValueError(f"{name} must be one spectrum, shape (k,), got {lam.shape}")
    if lam.size == 0:
        raise ValueError(f"{name} is empty")
    if np.any(np.isnan(lam)) or np.any(lam == np.inf):
        raise ValueError(f"{name} contains NaN or +inf (only -inf, an exact collapse, is "
                         "an exponent)")
    return lam


def kaplan_yorke_dimension(exponents: Array, dim: int | None = None) -> float:
    """Kaplan-Yorke (Lyapunov) dimension of a descending spectrum.

    Parameters
    ----------
    exponents : array_like, shape (k,)
        Exponents, in any order (sorted descending here); ``-inf`` (an exact
        collapse) allowed.
    dim : int, optional
        Dimension of the system; defaults to ``k`` (a full spectrum).

    Returns
    -------
    float
        ``j + S_j / |l_{j+1}|`` with ``S_j = l_1 + ... + l_j`` and ``j`` the
        largest index with ``S_j >= 0``; 0 when ``l_1 < 0``; ``dim`` when every
        partial sum of a full spectrum is non-negative. A ``-inf`` exponent
        ``l_{j+1}`` adds nothing: the dimension is then ``j``. For a top-``k``
        spectrum (``k < dim``) whose partial sums stay non-negative the
        dimension is at least ``k`` but not determined: NaN is returned.

    Raises
    ------
    ValueError
        ``exponents`` empty, or containing NaN or ``+inf``.

    References
    ----------
    .. [1] Kaplan, J. L. and Yorke, J. A. (1979). Chaotic behavior of multidimensional
       difference equations. In Functional Differential Equations and Approximation of Fixed
       Points, Lecture Notes in Mathematics 730, 204-227. Springer.

    Examples
    --------
    >>> kaplan_yorke_dimension([0.4192, -1.6232])  # Henon attractor
    1.2582...
    >>> kaplan_yorke_dimension([-0.1, -0.5])
    0.0
    >>> kaplan_yorke_dimension([0.3, -float("inf")])
    1.0
    """
    lam = -np.sort(-_spectrum_array(exponents))
    k = lam.size
    dim = k if dim is None else _check_int("dim", dim, k)
    if lam[0] < 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        partial = np.cumsum(lam)
    j = int(np.flatnonzero(partial >= 0)[-1]) + 1
    if j == k:
        return float(dim) if k >= dim else float("nan")
    return float(j + partial[j - 1] / abs(lam[j]))


def entropy_rate(exponents: Array) -> float:
    """Sum of the positive exponents: Pesin's bound on the KS entropy (nats per step).

    Parameters
    ----------
    exponents : array_like, shape (k,)
        Lyapunov exponents (any order; ``-inf`` allowed).

    Returns
    -------
    float
        ``sum(l_i for l_i > 0)``; a lower bound when a top-``k`` spectrum's
        last exponent is still positive.

    Raises
    ------
    ValueError
        ``exponents`` empty, or containing NaN or ``+inf``.

    References
    ----------
    .. [1] Ruelle, D. (1978). An inequality for the entropy of differentiable maps.
       Boletim da Sociedade Brasileira de Matematica 9, 83-87.
    .. [2] Pesin, Ya. B. (1977). Characteristic Lyapunov exponents and smooth ergodic
       theory. Russian Mathematical Surveys 32(4), 55-114.

    Examples
    --------
    >>> entropy_rate([0.4192, -1.6232])
    0.4192
    >>> entropy_rate([-0.5, -float("inf")])
    0.0
    """
    lam = _spectrum_array(exponents)
    return float(lam[lam > 0].sum())


def _initial_frame(map_, B, k, x, xp, rng):
    """Random orthonormal k-frames (B, dim, k), zero on a driven map's input block."""
    gen = as_rng(rng)
    V = gen.standard_normal((B, map_.dim, k))
    if map_.input_block is not None:
        V[:, map_.block_slice(map_.input_block), :] = 0.0
    V = xp.asarray(V)
    if backend_of(x) == "cupy" and backend_of(V) != "cupy":
        V = to_backend(V, "cupy")
    V = xp.astype(V, x.dtype)
    # a small map's frame: one LAPACK QR costs less than the reorthonormaliser's several calls
    if isinstance(V, np.ndarray) and map_.dim <= 64:
        Qf, R = np.linalg.qr(V)
        Qf *= np.where(np.diagonal(R, axis1=1, axis2=2) < 0, -1.0, 1.0)[:, None, :]
        return Qf
    # CholeskyQR on itermap's pool: BLAS threads left spinning by this one-off factorisation
    # would slow the first steps of the loop
    with Reorthonormalizer(pool_products=True) as reorth:
        return reorth(V)[0]


# -- the map's own stepper: one or a batch of trajectories of a small map ----------------
def _entered(stepper):
    """The stepper as a context around a loop where it is one (it sets the loop's threads)."""
    return stepper if hasattr(stepper, "__enter__") else contextlib.nullcontext(stepper)


def _own_or_general(run, map_, x, Q, constant, sequence, transient, total, offset=0):
    """``run(stepper)`` on the map's own tangent stepper, or on the general one where the map
    hands none (none for an input sequence) or ``run`` stopped on it (None): the general
    stepper names a divergence (its step counted from ``offset``)."""
    own = map_.tangent_stepper(x, Q, constant, steps=total) if sequence is None else None
    out = None if own is None else run(own)
    if out is not None:
        return out
    if own is not None and constant is None and sequence is None:
        map_ = _batched(map_, x)
    return run(general_tangent_stepper(
        map_, x, Q, constant, inputs=sequence, offset=offset, transient=transient))


def _batched(map_, x):
    """``map_``, or, where its step takes one state at a time (a user's class that the
    small-map stepper runs), the map called row by row: the general stepper that names a
    divergence or an exact collapse steps batches."""
    with np.errstate(all="ignore"):
        try:
            y = map_.step(x)
            if tuple(y.shape) == tuple(x.shape):
                # a one-state step gives rubbish rows, a batched one rows off by rounding
                row, one = to_numpy(y[0]), to_numpy(map_.step(x[0]))
                scale = float(np.max(np.abs(one), initial=1.0))
                if np.allclose(row, one, rtol=1e-8, atol=1e-8 * scale):
                    return map_
        except Exception:  # noqa: BLE001 -- the row-by-row map raises it again, if at all
            pass
    xp = namespace(x)

    def rows(f):
        return lambda X: xp.stack([f(X[i]) for i in range(X.shape[0])])

    return itermap.FunctionMap(rows(map_.step), map_.dim, jacobian=rows(map_.jacobian),
                               periods=map_.periods, name=getattr(map_, "name", None))


def _window_sums(stepper, lengths, transient):
    """The sums of ``log|R_jj|`` (len(lengths), B, k) over consecutive windows of the given
    lengths after ``transient`` steps, a QR every step; None where the stepper stopped or
    left a non-finite sum (the general one then reruns and names it)."""
    B, k = stepper.Q.shape[0], stepper.Q.shape[-1]
    sums = np.zeros((len(lengths), B, k))
    with _entered(stepper), np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if transient and stepper.advance(transient, acc=np.zeros((B, k))) is None:
            return None
        for i, n in enumerate(lengths):
            if n > 0 and stepper.advance(int(n), acc=sums[i]) is None:
                return None
    return None if np.isnan(sums).any() or np.isposinf(sums).any() else sums


def _stepper_run(stepper, *, total, orient, every, done, qr_per_chk, acc, bar=None):
    """Steps ``1..total`` on a stepper, a QR every step up to ``orient`` then every ``every``:
    ``(x, Q, acc, history, history_steps, (worst loss, sum of exp(loss)))``, or None where
    the stepper stopped (the general one then reruns and names it)."""
    if bar is not None:
        bar.reset()
    acc = np.array(acc, dtype=np.float64)
    snaps, hist_steps = [], []  # acc at each checkpoint: the history is formed at the end
    worst, exp_sum = -math.inf, 0.0
    measured, pos, chunk = total - orient, 0, qr_per_chk * every
    with _entered(stepper):
        if orient and stepper.advance(orient, every=1, acc=np.zeros_like(acc)) is None:
            return None
        if bar is None and getattr(stepper, "records_acc", False):  # one call records them
            loss = stepper.advance(measured, every=every, acc=acc, acc_out=snaps,
                                   acc_every=chunk)
            if loss is None:
                return None
            (worst, exp_sum), pos = loss, measured
            hist_steps = [done + min(i * chunk, measured) for i in range(1, len(snaps) + 1)]
        while pos < measured:
            n = min(chunk, measured - pos)
            loss = stepper.advance(n, every=every, acc=acc)
            if loss is None:
                return None
            if every > 1:
                worst, exp_sum = max(worst, loss[0]), exp_sum + loss[1]
            pos += n
            snaps.append(acc.copy())
            hist_steps.append(done + pos)
            if bar is not None:
                bar.update(n + (orient if pos == n else 0))
        x, Q = stepper.x, stepper.Q
    if np.isnan(acc).any() or np.isposinf(acc).any():
        return None
    per = np.sort(np.array(snaps) / np.array(hist_steps)[:, None, None], axis=2)[:, :, ::-1]
    loss = (worst, exp_sum) if every > 1 else (math.nan, math.nan)
    return x, Q, acc, list(per.mean(axis=1)), hist_steps, loss


def _nilpotent_length(map_, sums):
    """``L`` where the map is a network whose pattern is nilpotent (an MLP: its
    :func:`fir_length`), else None: ``J_{t+L-1} ... J_t = 0`` exactly, so every exponent
    over ``L`` steps or more is -inf, where rounding leaves the QR eps-sized ``R_jj`` (log
    eps, -36) in place of the zeros. The units no block feeds collapse exactly anyway:
    only where ``sums`` holds a -inf is the pattern looked at."""
    return fir_length(map_) if is_network(map_) and np.isneginf(sums).any() else None


def _resume(map_, prev, x0, k, transient):
    """Check ``continue_from`` and unpack it into the state of a run."""
    if not isinstance(prev, LyapunovSpectrum):
        raise TypeError("continue_from must be a LyapunovSpectrum from an earlier run, got "
                        f"{type(prev).__name__}")
    if prev.state is None or prev.tangents is None or prev.log_stretch is None:
        raise ValueError("continue_from holds no final state and tangent frames to resume")
    if not prev.steps >= 1 or not prev.transient >= 0:  # a damaged or edited file
        raise ValueError(f"continue_from ran steps={prev.steps} after transient="
                         f"{prev.transient}: no run does; resume a result of a run")
    if x0 is not None:
        raise ValueError("pass x0=None with continue_from: the run resumes from the "
                         "previous result's final states")
    if transient != 0:
        raise ValueError("transient must be 0 with continue_from: the previous run "
                         "already went through its transient")
    if tuple(prev.state.shape[1:]) != (map_.dim,):
        raise ValueError(f"continue_from ran a map of dimension {prev.state.shape[-1]}, "
                         f"but this map has dim={map_.dim}")
    prev_k = int(prev.tangents.shape[-1])
    if k is not None and k != prev_k:
        raise ValueError(f"k={k} differs from the k={prev_k} of continue_from")
    x, Q = prev.state, prev.tangents
    if map_.backend == "cupy" and backend_of(x) != "cupy":
        x, Q = to_backend(x, "cupy"), to_backend(Q, "cupy")
    x = map_.check_start(x, "continue_from")
    xp = namespace(x)
    Q = xp.astype(xp.asarray(Q), x.dtype)
    hist = list(np.asarray(prev.history, dtype=float).reshape(-1, prev_k))
    hist_steps = [int(s) for s in np.asarray(prev.history_steps).ravel()]
    return dict(x=x, Q=Q, k=prev_k, acc=np.asarray(to_numpy(prev.log_stretch), dtype=np.float64),
                done=int(prev.steps), transient=int(prev.transient), batched=bool(prev.batched),
                hist=hist, hist_steps=hist_steps, orient=0)


def _start(map_, x0, k, transient, rng):
    """Check a fresh run's ``x0`` and ``k``; draw its initial frame from ``rng``."""
    free = map_.dim - map_.forced_size
    k = free if k is None else _check_int("k", k, 1)
    if k > map_.dim:
        raise ValueError(f"k={k} exceeds the map's dimension dim={map_.dim}")
    if k > free:
        raise ValueError(f"k={k} exceeds the {free} free directions of the driven map "
                         f"(dim={map_.dim} minus the input block of size {map_.forced_size})")
    if x0 is None:
        raise TypeError("x0 is None: pass a start state (dim,) or a batch (B, dim)")
    x = no_extended("x0", map_.check_start(x0))
    xp = namespace(x)
    batched = x.ndim == 2
    if not batched:
        x = xp.reshape(x, (1, map_.dim))
    return dict(x=x, Q=_initial_frame(map_, x.shape[0], k, x, xp, rng), k=k,
                acc=np.zeros((x.shape[0], k)), done=0, transient=transient, batched=batched,
                hist=[], hist_steps=[], orient=transient)


def _result(run, x, Q, acc, steps, every, free, loss, eps):
    """Assemble the :class:`LyapunovSpectrum` of a finished run."""
    k = run["k"]
    n_total = run["done"] + steps
    log_stretch = np.asarray(to_numpy(acc), dtype=np.float64)
    per = np.sort(log_stretch / n_total, axis=1)[:, ::-1].copy()
    B = per.shape[0]
    with np.errstate(invalid="ignore"):
        exps = per.mean(axis=0)
        stderr = (per.std(axis=0, ddof=1) / math.sqrt(B) if B > 1 else np.full(k, np.nan))
    # -inf in every trajectory is exact; in some of them, an unbounded spread
    collapsed = np.isneginf(per)
    stderr[collapsed.all(axis=0)] = 0.0
    stderr[collapsed.any(axis=0) & ~collapsed.all(axis=0)] = np.inf
    return LyapunovSpectrum(
        exponents=exps, per_trajectory=per, stderr=stderr,
        history=np.asarray(run["hist"], dtype=float).reshape(-1, k),
        history_steps=np.asarray(run["hist_steps"], dtype=np.int64),
        kaplan_yorke_dimension=kaplan_yorke_dimension(exps, free),
        entropy_rate=entropy_rate(exps), steps=n_total, transient=run["transient"],
        dim=free, reorthonormalize_every=every, state=x, tangents=Q, log_stretch=log_stretch,
        batched=run["batched"], n_collapsed=int(np.isneginf(exps).sum()),
        precision_loss=float(loss[0]), qr_error=float(eps * loss[1] / steps))


def _warn_unresolved(qr_error, worst, every, eps):
    """Warn when spaced QRs leave the exponents a rounding error above 1e-6 per step."""
    if every > 1 and qr_error > _QR_ERROR_LIMIT:
        safe = max(1, int(every * math.log(_QR_ERROR_LIMIT / eps) / max(worst, 1e-300)))
        logging.getLogger(__name__).info("spaced QRs: error %.1e/step, every=%d", qr_error, every)
        warnings.warn(
            f"with reorthonormalize_every={every} the QRs bound the exponents' rounding error "
            f"only to {qr_error:.1e} per step (> {_QR_ERROR_LIMIT:.0e}; a tangent vector lost "
            f"e^{worst:.1f} of its norm to the ones above it within one spacing): the "
            f"smallest exponents are not reliable; use reorthonormalize_every <= {safe}",
            RuntimeWarning, stacklevel=3)


def lyapunov_spectrum(map: MapLike, x0: Array | None, steps: int, *, k: int | None = None,
                      transient: int = 0, reorthonormalize_every: int = 1,
                      inputs: Array | None = None,
                      continue_from: LyapunovSpectrum | None = None, rng: RngLike = None,
                      progress: bool = False) -> LyapunovSpectrum:
    """Lyapunov spectrum (full or top-``k``) of a map along a batch of trajectories.

    The Benettin / Shimada-Nagashima method: ``k`` tangent vectors propagated by the
    map's tangent stepper, re-orthonormalised by a QR every ``reorthonormalize_every``
    steps, ``log|R_ii|`` accumulated.

    Parameters
    ----------
    map : Map
        Any map of the itermap protocol.
    x0 : array of shape (dim,) or (B, dim), or None
        Start state, or a batch of ``B`` starts run together. None with
        ``continue_from``.
    steps : int
        Measured steps (>= 1), after the transient.
    k : int, optional
        Number of exponents: the top ``k``. Defaults to the full spectrum,
        ``map.dim`` (minus the input block's size for a driven map).
    transient : int
        Steps run first and not measured; they bring the state onto the
        attractor and orient the tangent vectors.
    reorthonormalize_every : int
        Steps between QR factorisations after the transient (which factorises every
        step). ``qr_error`` in the result bounds the rounding error this spacing
        costs; above 1e-6 nats per step a ``RuntimeWarning`` names a safe spacing.
    inputs : array, optional
        For a driven map (``input_block`` set): one input ``(n_in,)`` or
        ``(B, n_in)`` held constant, or a sequence ``(transient + steps, n_in)``
        or ``(transient + steps, B, n_in)``. The exponents are then the
        conditional exponents of the driven system, over the state outside the
        input block.
    continue_from : LyapunovSpectrum, optional
        A previous result: run ``steps`` more steps from its final states and
        tangent frames; the result is that of one run of the total length (to
        rounding). ``x0`` must then be None and ``transient`` 0.
    rng : int, Generator or None
        Seed for the random initial tangent frames.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    LyapunovSpectrum
        A direction that collapses exactly (``R_ii = 0``: a nilpotent MLP map,
        units a ReLU has killed) has the exponent ``-inf``.

    Raises
    ------
    ValueError
        ``k`` larger than the dimension, ``steps < 1`` or bad inputs.
    DivergenceError
        When a state or tangent vector overflows to inf or NaN; the message
        names the step.

    Notes
    -----
    A tangent vector that comes within about ``eps`` of the span of the ones above it
    before a QR loses its ``R_ii``: strongly contracting directions (a saturated tanh
    unit) make the bottom of a full spectrum depend on the spacing (about 0.2 between
    spacings 1 and 5 for a random tanh network of gain 1.5, N = 256). Compare two
    spacings before trusting the bottom exponents, and give spacings above 1 a transient.

    Cost per step: one tangent product (``2 B dim^2 k`` flops dense, ``2 B nnz k``
    sparse) and per QR about ``3 B dim k^2`` flops a CholeskyQR pass.

    References
    ----------
    .. [1] Benettin, G., Galgani, L., Giorgilli, A. and Strelcyn, J.-M. (1980). Lyapunov
       characteristic exponents for smooth dynamical systems and for Hamiltonian systems; a
       method for computing all of them. Part 1: Theory; Part 2: Numerical application.
       Meccanica 15, 9-20 and 21-30.
    .. [2] Shimada, I. and Nagashima, T. (1979). A numerical approach to ergodic problem of
       dissipative dynamical systems. Progress of Theoretical Physics 61(6), 1605-1616.
    .. [3] Engelken, R., Wolf, F. and Abbott, L. F. (2023). Lyapunov spectra of chaotic
       recurrent neural networks. Physical Review Research 5, 043044.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import lyapunov_spectrum
    >>> from itermap.systems import henon, logistic
    >>> res = lyapunov_spectrum(logistic(2.6), np.array([0.3]), 500, transient=100)
    >>> round(float(res.exponents[0]), 6), round(float(np.log(0.6)), 6)
    (-0.510826, -0.510826)
    >>> x0 = np.random.default_rng(0).uniform(-0.1, 0.1, size=(8, 2))
    >>> res = lyapunov_spectrum(henon(), x0, 2000, transient=100)
    >>> res.exponents.shape, res.per_trajectory.shape
    ((2,), (8, 2))
    >>> bool(abs(res.exponents.sum() - np.log(0.3)) < 1e-10)
    True
    >>> from itermap.systems import linear
    >>> res = lyapunov_spectrum(linear([[0.0, 0.0], [1.0, 0.0]]), np.ones(2), 10)
    >>> res.exponents, res.n_collapsed          # nilpotent: both directions collapse
    (array([-inf, -inf]), 2)
    """
    map = as_map(map)
    progress = check_bool("progress", progress)
    steps = _check_int("steps", steps, 1)
    transient = _check_int("transient", transient, 0)
    every = _check_int("reorthonormalize_every", reorthonormalize_every, 1)
    free = map.dim - map.forced_size
    run = (_resume(map, continue_from, x0, k, transient) if continue_from is not None
           else _start(map, x0, k, transient, rng))
    x, Q, orient = run["x"], run["Q"], run["orient"]
    # the inputs cover the transient too; a single start runs as a batch of one
    constant, sequence = resolve_inputs(map, x if run["batched"] else x[0, ...],
                                        no_extended("inputs", inputs),
                                        orient + steps)
    total = orient + steps
    opts = dict(total=total, orient=orient, every=every, done=run["done"],
                # checkpoints: about 100 over the whole measured run, on QR steps
                qr_per_chk=max(1, math.ceil(steps / every / _N_CHECKPOINTS)), acc=run["acc"])
    bar = progress_bar(total=total, desc="lyapunov", unit="step") if progress else None
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore",
                                                over="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            out = _own_or_general(lambda s: _stepper_run(s, bar=bar, **opts), map, x, Q,
                                  constant, sequence, orient, total,
                                  offset=run["transient"] + run["done"] - orient)
        except (ValueError, TypeError, IndexError) as err:
            # a step that is not batched fails deep in the stepper: name it instead (a
            # divergence is named already, by a map stepped row by row where it must be)
            if not isinstance(err, itermap.DivergenceError):
                u = constant if sequence is None else sequence[0]
                check_batched_step(lambda row: map.step(row, u), x, map.dim)
            raise
        finally:
            if bar is not None:
                bar.close()
    x, Q, acc, hist, hist_steps, loss = out
    L = _nilpotent_length(map, acc)
    if L is not None:
        hist = [np.full_like(h, -np.inf) if s >= L else h for h, s in zip(hist, hist_steps)]
        if run["done"] + steps >= L:
            acc = np.full_like(acc, -np.inf)
    run["hist"] += hist
    run["hist_steps"] += hist_steps
    eps = machine_eps(x.dtype)
    _warn_unresolved(eps * loss[1] / steps, loss[0], every, eps)
    return _result(run, x, Q, acc, steps, every, free, loss, eps)

