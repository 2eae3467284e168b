"""Lyapunov spectra of iterative maps (Benettin / Shimada-Nagashima), batched.

``k`` tangent vectors ride along with the state; every
``reorthonormalize_every`` steps a QR factorisation turns them back into an
orthonormal frame, and the logarithms of ``|diag R|`` accumulate the
stretching along each direction. All ``B`` trajectories of a batch move
together: one batched tangent product (``map.step_with_tangent``, which for a
sparse ``W`` never forms the Jacobian) and one batched QR per
reorthonormalisation, on the array backend of the state (NumPy, CuPy, ...).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from itermap import DivergenceError, as_map, as_rng, resolve_inputs, saveable
from itermap.backends import backend_of, namespace, to_backend, to_numpy

from ._checks import check_bool
from ._checks import check_int as _check_int

__all__ = ["LyapunovSpectrum", "lyapunov_spectrum", "kaplan_yorke_dimension"]

_N_CHECKPOINTS = 100


@saveable
@dataclass
class LyapunovSpectrum:
    """The Lyapunov spectrum of a map along one or a batch of trajectories.

    Exponents are natural logarithms per step.

    Attributes
    ----------
    exponents : ndarray, shape (k,)
        The exponents, descending: the mean over trajectories of
        ``per_trajectory``.
    per_trajectory : ndarray, shape (B, k)
        Each trajectory's exponents, each row sorted descending.
    stderr : ndarray, shape (k,)
        Standard error of ``exponents`` from the spread between trajectories
        (``std / sqrt(B)``); NaN for a single trajectory.
    history : ndarray, shape (n_checkpoints, k)
        Running estimates of ``exponents`` at about 100 checkpoints per run
        (a continued run appends its own).
    history_steps : ndarray of int, shape (n_checkpoints,)
        The number of measured steps (after the transient) at each checkpoint.
    kaplan_yorke_dimension : float
        ``j + (l_1 + ... + l_j) / |l_{j+1}|`` for the largest ``j`` with a
        non-negative partial sum (see :func:`kaplan_yorke_dimension`).
    entropy_rate : float
        Sum of the positive exponents (Pesin's bound on the KS entropy, in nats
        per step). From a top-``k`` spectrum whose last exponent is still
        positive it is a lower bound.
    steps : int
        Measured steps (after the transient), over all continued pieces.
    transient : int
        Steps run before measuring, which orient the tangent vectors as well
        as the state.
    dim : int
        Dimension of the tangent space measured: ``map.dim`` minus the input
        block's size for a driven map.
    reorthonormalize_every : int
        Steps between QR factorisations in the latest piece.
    state : array, shape (B, dim)
        The final states (backend of the run; saved on the host). ``B = 1``
        when ``x0`` was a single state.
    tangents : array, shape (B, map.dim, k)
        The final orthonormal tangent frames, for ``continue_from``.
    log_stretch : ndarray, shape (B, k)
        Accumulated ``sum log|R_ii|`` per trajectory, in frame order.
    batched : bool
        Whether ``x0`` was a batch ``(B, dim)`` rather than one state.
    """

    exponents: object
    per_trajectory: object
    stderr: object
    history: object
    history_steps: object
    kaplan_yorke_dimension: float
    entropy_rate: float
    steps: int
    transient: int
    dim: int
    reorthonormalize_every: int
    state: object = None
    tangents: object = None
    log_stretch: object = None
    batched: bool = True

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


def kaplan_yorke_dimension(exponents, dim=None) -> float:
    """Kaplan-Yorke (Lyapunov) dimension of a descending spectrum.

    Parameters
    ----------
    exponents : array_like, shape (k,)
        Exponents, sorted descending.
    dim : int, optional
        Dimension of the system; defaults to ``k`` (a full spectrum).

    Returns
    -------
    float
        ``j + S_j / |l_{j+1}|`` with ``S_j = l_1 + ... + l_j`` and ``j`` the
        largest index with ``S_j >= 0``; 0 when ``l_1 < 0``; ``dim`` when every
        partial sum of a full spectrum is non-negative. For a top-``k``
        spectrum (``k < dim``) whose partial sums stay non-negative the
        dimension is at least ``k`` but not determined: NaN is returned.

    Examples
    --------
    >>> kaplan_yorke_dimension([0.4192, -1.6232])  # Henon attractor
    1.2582...
    >>> kaplan_yorke_dimension([-0.1, -0.5])
    0.0
    """
    lam = _check_spectrum(exponents)
    dim = lam.size if dim is None else _check_int("dim", dim, lam.size)
    return _ky_dimension(lam, dim)


def _ky_dimension(lam, dim) -> float:
    """Kaplan-Yorke dimension of a decreasing spectrum (NaN in, NaN out)."""
    k = lam.size
    if not np.all(np.isfinite(lam[lam != -np.inf])):
        return float("nan")
    if lam[0] < 0:
        return 0.0
    partial = np.cumsum(lam)
    nonneg = np.flatnonzero(partial >= 0)
    j = int(nonneg[-1]) + 1
    if j == k:
        return float(dim) if k >= dim else float("nan")
    return float(j + partial[j - 1] / abs(lam[j]))


def _check_spectrum(exponents):
    """Exponents as a non-empty, decreasing 1-D float array; -inf allowed, NaN not."""
    if exponents is None or isinstance(exponents, str | bytes):
        raise TypeError(f"exponents must be an array of real numbers, got "
                        f"{type(exponents).__name__}")
    try:
        lam = np.asarray(to_numpy(exponents) if hasattr(exponents, "shape") else exponents)
    except (TypeError, ValueError) as err:
        raise TypeError(f"exponents must be an array of real numbers ({err})") from None
    if lam.dtype.kind not in "iuf":
        raise TypeError(f"exponents must be real, got dtype {lam.dtype}")
    lam = lam.astype(np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"exponents must be a non-empty 1-D spectrum, got shape {lam.shape}")
    if np.any(np.isnan(lam)) or np.any(lam == np.inf):
        raise ValueError("exponents contain NaN or +inf: no dimension can be read from them")
    return np.sort(lam)[::-1]


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
    return xp.linalg.qr(V)[0]


def _trajectories(mask) -> str:
    idx = np.flatnonzero(np.asarray(to_numpy(mask)).ravel())
    return f"{idx[:8].tolist()}{'...' if idx.size > 8 else ''}"


def _diagnose(xp, x, Q, logd, step, last_qr, every, where):
    """Raise the error that names why a step went wrong (or return if nothing did)."""
    # states and tangents are checked at each QR: with several steps between QRs the
    # message names the span in which it happened
    span = f"between steps {last_qr + 1} and {step}" if step - last_qr > 1 else f"at step {step}"
    bad = ~xp.all(xp.isfinite(x), axis=-1)
    if bool(xp.any(bad)):
        raise DivergenceError(f"the state overflowed to inf or NaN {span}{where} "
                              f"(trajectories {_trajectories(bad)})")
    badq = ~xp.all(xp.isfinite(xp.reshape(Q, (Q.shape[0], -1))), axis=-1)
    badq = badq | xp.any(xp.isnan(logd) | (logd == xp.inf), axis=-1)
    if bool(xp.any(badq)):
        hint = (" (reorthonormalize more often: lower reorthonormalize_every)" if every > 1
                else "")
        raise DivergenceError(f"the tangent vectors overflowed to inf or NaN {span}{where} "
                              f"(trajectories {_trajectories(badq)}){hint}")
    zero = logd == -xp.inf
    if bool(xp.any(zero)):
        zb = xp.any(zero, axis=-1)
        cols = np.flatnonzero(np.asarray(to_numpy(xp.any(zero, axis=0))))
        raise ValueError(f"tangent vector {int(cols[0])} collapsed (R_ii = 0 in the QR "
                         f"factorisation) {span}{where} (trajectories "
                         f"{_trajectories(zb)}): the Jacobian is singular along the orbit, "
                         f"e.g. a zero derivative; start elsewhere or lower k")


def lyapunov_spectrum(map, x0, steps, *, k=None, transient=0, reorthonormalize_every=1,
                      inputs=None, continue_from=None, rng=0, progress=False):
    """Lyapunov spectrum (full or top-``k``) of a map along a batch of trajectories.

    The Benettin / Shimada-Nagashima method: ``k`` tangent vectors are
    propagated with ``map.step_with_tangent`` (``J(x) @ Q`` without forming
    ``J`` for sparse weights), re-orthonormalised by a QR factorisation every
    ``reorthonormalize_every`` steps, and ``log|R_ii|`` accumulated.

    Parameters
    ----------
    map : Map
        Any map of the itermap protocol.
    x0 : array of shape (dim,) or (B, dim), or None
        Start state, or a batch of ``B`` starts run together (batched matmul
        and batched QR, on the array's backend). None with ``continue_from``.
    steps : int
        Measured steps (>= 1), after the transient.
    k : int, optional
        Number of exponents: the top ``k``. Defaults to the full spectrum,
        ``map.dim`` (minus the input block's size for a driven map).
    transient : int
        Steps run first and not measured; they bring the state onto the
        attractor and orient the tangent vectors.
    reorthonormalize_every : int
        Steps between QR factorisations after the transient (the transient,
        which orients the frame, factorises every step). The product of the ``R`` factors is
        the same whatever the spacing (to rounding) as long as the vectors do
        not overflow or align within one spacing: the smallest directions keep a
        relative precision of about machine epsilon times the condition number
        of the Jacobian product over one spacing (saturated units or a nearly
        singular ``W`` raise it fast). Fewer QRs are cheaper.
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
        ``exponents`` (descending), ``per_trajectory``, ``stderr``,
        ``history`` / ``history_steps``, ``kaplan_yorke_dimension``,
        ``entropy_rate``, ``steps`` and the final states and frames.

    Raises
    ------
    ValueError
        ``k`` larger than the dimension, ``steps < 1``, bad inputs, or a tangent
        vector collapsing (``R_ii = 0``); the message names the step.
    DivergenceError
        When a state or tangent vector overflows to inf or NaN; the message
        names the step.

    Notes
    -----
    Precision: the product of the ``R`` factors does not depend on the
    spacing of the QRs, but a tangent vector that comes within about ``eps``
    of the span of the ones above it before a QR loses its ``R_ii``. Strongly
    contracting directions (a saturated tanh unit has ``f' ~ 1e-15``) make
    the bottom of a full spectrum sensitive to the spacing: for a random tanh
    network of gain 1.5 and N = 256 the smallest exponent moves by about 0.2
    between spacings 1 and 5, while at gain 1.2 the spectra agree to 1e-8.
    Compare two spacings before trusting the bottom exponents, and give
    spacings above 1 a transient: it aligns the frame with the Lyapunov
    vectors, whereas a random frame's columns all swing towards the top
    direction within a few steps.

    Cost per step: one tangent product (``2 B dim^2 k`` flops dense,
    ``2 B nnz k`` sparse) and, every ``reorthonormalize_every`` steps, one
    batched QR (about ``4 B dim k^2`` flops for the factor and the frame).

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
    """
    map = as_map(map)
    progress = check_bool("progress", progress)
    steps = _check_int("steps", steps, 1)
    transient = _check_int("transient", transient, 0)
    every = _check_int("reorthonormalize_every", reorthonormalize_every, 1)
    free = map.dim - map.forced_size
    if continue_from is not None:
        prev = continue_from
        if not isinstance(prev, LyapunovSpectrum):
            raise TypeError("continue_from must be a LyapunovSpectrum from an earlier run, got "
                            f"{type(prev).__name__}")
        if prev.state is None or prev.tangents is None or prev.log_stretch is None:
            raise ValueError("continue_from holds no final state and tangent frames to resume")
        if x0 is not None:
            raise ValueError("pass x0=None with continue_from: the run resumes from the "
                             "previous result's final states")
        if transient != 0:
            raise ValueError("transient must be 0 with continue_from: the previous run "
                             "already went through its transient")
        if tuple(prev.state.shape[1:]) != (map.dim,):
            raise ValueError(f"continue_from ran a map of dimension {prev.state.shape[-1]}, "
                             f"but this map has dim={map.dim}")
        prev_k = int(prev.tangents.shape[-1])
        if k is not None and k != prev_k:
            raise ValueError(f"k={k} differs from the k={prev_k} of continue_from")
        k = prev_k
        x, Q = prev.state, prev.tangents
        if map.backend == "cupy" and backend_of(x) != "cupy":
            x, Q = to_backend(x, "cupy"), to_backend(Q, "cupy")
        x = map._check_state(x)
        xp = namespace(x)
        Q = xp.astype(xp.asarray(Q), x.dtype)
        acc0 = np.asarray(to_numpy(prev.log_stretch), dtype=np.float64)
        done, transient = int(prev.steps), int(prev.transient)
        batched = bool(prev.batched)
        hist = list(np.asarray(prev.history, dtype=float).reshape(-1, k))
        hist_steps = [int(s) for s in np.asarray(prev.history_steps).ravel()]
        run_transient = 0
    else:
        if k is None:
            k = free
        k = _check_int("k", k, 1)
        if k > map.dim:
            raise ValueError(f"k={k} exceeds the map's dimension dim={map.dim}")
        if k > free:
            raise ValueError(f"k={k} exceeds the {free} free directions of the driven map "
                             f"(dim={map.dim} minus the input block of size {map.forced_size})")
        if x0 is None:
            raise TypeError("x0 is None: pass a start state (dim,) or a batch (B, dim)")
        x = map._check_state(x0, "x0")
        xp = namespace(x)
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError("x0 contains NaN or inf")
        batched = x.ndim == 2
        if not batched:
            x = xp.reshape(x, (1, map.dim))
        Q = None
        acc0 = np.zeros((x.shape[0], k))
        done = 0
        hist, hist_steps = [], []
        run_transient = transient
    B = x.shape[0]
    # the inputs cover the transient too; a single start runs as a batch of one
    constant, sequence = resolve_inputs(map, x if batched else x[0, ...], inputs,
                                        run_transient + steps)
    if Q is None:
        Q = _initial_frame(map, B, k, x, xp, rng)
    acc = xp.asarray(acc0)
    if backend_of(x) == "cupy" and backend_of(acc) != "cupy":
        acc = to_backend(acc, "cupy")
    offset = transient + done - run_transient  # absolute step number of this run's step 0

    # NumPy's own batched QR skips the array-API wrapper's per-call overhead (small maps)
    native = isinstance(x, np.ndarray)
    qr = np.linalg.qr if native else xp.linalg.qr
    diagonal = np.linalg.diagonal if native else xp.linalg.diagonal

    # checkpoints: about 100 over the whole measured run, on QR steps
    qr_per_chk = max(1, math.ceil(steps / every / _N_CHECKPOINTS))
    total = run_transient + steps
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="lyapunov", unit="step")
    last_qr, shown = 0, 0
    n_qr = 0
    try:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore",
                                                    over="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            for t in range(1, total + 1):
                u = constant if sequence is None else sequence[t - 1]
                x, Q = map.step_with_tangent(x, Q, u)
                measuring = t > run_transient
                # the transient orients the frame with a QR every step: a random frame is
                # squeezed towards the top direction, which several steps without a QR would
                # push beyond the floating-point precision
                if measuring and (t - run_transient) % every and t != total:
                    continue
                Q, R = qr(Q)
                logd = xp.log(xp.abs(diagonal(R)))
                flag = xp.sum(logd) + xp.sum(x)
                if not math.isfinite(float(flag)):
                    where = " of the transient" if not measuring else ""
                    _diagnose(xp, x, Q, logd, offset + t, offset + last_qr, every, where)
                last_qr = t
                if bar is not None and (t - shown >= max(1, total // 200) or t == total):
                    bar.update(t - shown)
                    shown = t
                if not measuring:
                    continue
                acc = acc + xp.astype(logd, xp.float64)
                n_qr += 1
                if n_qr % qr_per_chk == 0 or t == total:
                    n = done + t - run_transient
                    per = np.sort(np.asarray(to_numpy(acc)) / n, axis=1)[:, ::-1]
                    hist.append(per.mean(axis=0))
                    hist_steps.append(n)
    finally:
        if bar is not None:
            bar.close()

    n_total = done + steps
    log_stretch = np.asarray(to_numpy(acc), dtype=np.float64)
    per = np.sort(log_stretch / n_total, axis=1)[:, ::-1].copy()
    exps = per.mean(axis=0)
    stderr = (per.std(axis=0, ddof=1) / math.sqrt(B) if B > 1
              else np.full(k, np.nan))
    return LyapunovSpectrum(
        exponents=exps,
        per_trajectory=per,
        stderr=stderr,
        history=np.asarray(hist, dtype=float).reshape(-1, k),
        history_steps=np.asarray(hist_steps, dtype=np.int64),
        kaplan_yorke_dimension=_ky_dimension(np.sort(np.asarray(exps, dtype=float))[::-1],
                                             free),
        entropy_rate=float(exps[exps > 0].sum()),
        steps=n_total,
        transient=transient,
        dim=free,
        reorthonormalize_every=every,
        state=x,
        tangents=Q,
        log_stretch=log_stretch,
        batched=batched,
    )
