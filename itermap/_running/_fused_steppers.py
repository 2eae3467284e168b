"""The tangent steppers a network hands the Lyapunov analyses.

They share :meth:`itermap._running._stepper.SmallStepper.advance` (None: the caller
reruns on :class:`GeneralStepper`, which names the failure) and the current ``x`` and
``Q``; as context managers they set a loop's BLAS threads once.

- :class:`FusedStepper`: a dense map's full spectra kept as Householder reflectors
  (:mod:`._fused_square`) or one trajectory of a large sparse map fused over row
  blocks on the pool (:mod:`._fused_sparse`); records no ``R`` or frames.
- :class:`GeneralStepper`: any map, ``step_with_tangent`` and a batched
  reorthonormalisation, every QR checked.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from .._core._backend import namespace, to_numpy
from .._core._types import Array
from .._maps._map import DivergenceError, Map
from ._fused_sparse import FusedSparseStep
from ._fused_square import FusedSquareStep
from ._reorth import Reorthonormalizer, column_sq_norms

__all__ = ["FusedStepper", "GeneralStepper", "general_tangent_stepper"]


def _loss(norms_sq, logd) -> float:
    """``max_j ln(||y_j|| / |R_jj|)`` over a batch: the digits a QR lost (collapses left out)."""
    lost = np.where(logd == -np.inf, 0.0, 0.5 * np.log(norms_sq) - logd)
    return float(np.max(lost))


class _Stepper:
    """The loop both steppers share; a subclass supplies :meth:`_step` and the state."""

    reorth: Reorthonormalizer

    def __enter__(self):
        self._entered = True
        self.reorth.__enter__()
        self._hold()
        return self

    def __exit__(self, *exc) -> None:
        self._entered = False
        self.reorth.__exit__(*exc)

    def _hold(self) -> None:  # the loop's BLAS threads (inside the reorthonormaliser's with)
        pass

    def _within(self):
        return contextlib.nullcontext(self) if getattr(self, "_entered", False) else self

    def advance(self, n, *, every=1, acc=None, r_out=None, q_out=None, q_every=0):
        """Run ``n`` steps, a QR every ``every`` steps and at the last one (see the module)."""
        worst, esum = -math.inf, 0.0
        self.every = every
        with self._within(), np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for t in range(1, n + 1):
                qr = t % every == 0 or t == n
                out = self._step(qr, want_r=r_out is not None)
                if out is None:
                    return None
                if not qr:
                    continue
                logd, norms_sq, R, Q = out
                if acc is not None:
                    acc += logd
                if every > 1:
                    lost = _loss(norms_sq, logd)
                    worst, esum = max(worst, lost), esum + math.exp(min(lost, 700.0))
                if r_out is not None:
                    r_out[t - 1] = R
                if q_every and t % q_every == 0:
                    q_out[t // q_every - 1] = Q
        return (worst, esum) if every > 1 else (math.nan, math.nan)


class FusedStepper(_Stepper):
    """A float64 network's full spectra (square frames) or one sparse trajectory, fused."""

    def __init__(self, step):
        self.step = step
        self.reorth = step.reorth
        self.compiled = False
        # Householder frames give R_jj = 0 exactly where a direction collapses: -inf stands
        self.exact_collapse = isinstance(step, FusedSquareStep)

    @classmethod
    def build(cls, kind, W, bias, act, x, Q) -> FusedStepper | None:
        """The fused stepper of a ``"dense"`` or ``"sparse"`` ``W`` for ``(x, Q)``, or None."""
        # the sparse products run on the pool: BLAS at one thread beside them
        reorth = Reorthonormalizer(pool_products=kind == "sparse")
        step: FusedSparseStep | FusedSquareStep | None = None
        if kind == "dense":  # a full spectrum's square frames as Householder reflectors
            step = FusedSquareStep.maybe(W, bias, act, x, Q, reorth=reorth)
        elif kind == "sparse":
            step = FusedSparseStep.maybe(W, bias, act, x, Q, reorth=reorth)
        return None if step is None else cls(step)

    def _hold(self) -> None:
        self.step.hold_threads()

    @property
    def x(self):
        """The state, ``(1, dim)`` (a new array)."""
        return self.step.state()[0]

    @property
    def Q(self):
        """The orthonormal frame, ``(1, dim, k)`` (a new array)."""
        return self.step.state()[1]

    def advance(self, n, *, every=1, acc=None, r_out=None, q_out=None, q_every=0):
        if r_out is not None or q_out is not None:  # the caller's general path records them
            return None
        return super().advance(n, every=every, acc=acc)

    advance.__doc__ = _Stepper.advance.__doc__

    def _step(self, qr, want_r):
        logd, norms_sq, probe = self.step.advance(qr=qr)
        if not qr:
            return ()
        if self.exact_collapse:
            if not math.isfinite(probe) or np.isnan(logd).any() or np.isposinf(logd).any():
                return None  # the general path names it
        elif not math.isfinite(float(np.sum(logd)) + probe):
            return None  # inf, NaN or an exact collapse: the general path names it
        return logd, norms_sq, None, None


def _trajectories(mask) -> str:
    idx = np.flatnonzero(np.asarray(to_numpy(mask)).ravel())
    return f"{idx[:8].tolist()}{'...' if idx.size > 8 else ''}"


class GeneralStepper(_Stepper):
    """Any map's trajectories and frames, every QR checked (:func:`general_tangent_stepper`).

    An exact collapse gives ``log|R_jj| = -inf``; an overflow raises
    :class:`itermap.DivergenceError` naming the step (from ``offset``; "of the
    transient" within the first ``transient``) or the span since the last QR.
    """

    def __init__(self, map_, x, Q, u=None, *, inputs=None, offset=0, transient=0):
        self.map, self.u = map_, u
        self.x, self.Q = x, Q
        self.reorth = Reorthonormalizer()
        self.compiled = False
        self.inputs, self.offset, self.transient = inputs, offset, transient
        self.t = self.last_qr = 0
        self.every = 1
        self.on_torus = getattr(map_, "periods", None) is not None

    def _step(self, qr, want_r):
        u = self.u if self.inputs is None else self.inputs[self.t]
        self.t += 1
        self.x, Y = self.map.step_with_tangent(self.x, self.Q, u)
        if self.on_torus:  # as iterate and the small-map stepper: back onto [0, P)
            self.x = self.map.wrap(self.x)
        if not qr:
            self.Q = Y
            return ()
        xp = namespace(self.x)
        Q, logd, R = self.reorth(Y, want_r=want_r)
        if not math.isfinite(float(xp.sum(logd) + xp.sum(self.x))):
            self._diagnose(xp, Q, logd)  # raises, unless only an exact collapse
        self.Q, self.last_qr = Q, self.t
        norms = None  # the column norms before the QR: for the precision loss of spaced QRs
        if self.every > 1:
            norms = np.asarray(to_numpy(column_sq_norms(xp, Y)))
        host = to_numpy if want_r else (lambda a: a)  # recorded R and Q go to the host
        return np.asarray(to_numpy(logd), dtype=np.float64), norms, host(R), host(Q)

    def _diagnose(self, xp, Q, logd) -> None:
        """Raise the error that names why a step went wrong (or return: an exact collapse)."""
        step, last = self.offset + self.t, self.offset + self.last_qr
        span = f"between steps {last + 1} and {step}" if step - last > 1 else f"at step {step}"
        where = " of the transient" if self.t <= self.transient else ""
        bad = ~xp.all(xp.isfinite(self.x), axis=-1)
        if bool(xp.any(bad)):
            raise DivergenceError(f"the state overflowed to inf or NaN {span}{where} "
                                  f"(trajectories {_trajectories(bad)})")
        badq = ~xp.all(xp.isfinite(xp.reshape(Q, (Q.shape[0], -1))), axis=-1)
        badq = badq | xp.any(xp.isnan(logd) | (logd == xp.inf), axis=-1)
        if bool(xp.any(badq)):
            hint = (" (reorthonormalize more often: lower reorthonormalize_every)"
                    if self.every > 1 else "")
            raise DivergenceError(f"the tangent vectors overflowed to inf or NaN {span}{where} "
                                  f"(trajectories {_trajectories(badq)}){hint}")


def general_tangent_stepper(map: Any, x: Array, Q: Array, u: Array | None = None, *,
                            inputs: Array | None = None, offset: int = 0,
                            transient: int = 0) -> GeneralStepper:
    """The general tangent stepper of any map: ``step_with_tangent`` and a checked batched QR.

    What the Lyapunov analyses run where a map hands no stepper of its own or where
    its own stopped at a non-finite step: an exact collapse gives ``-inf``, an
    overflow raises :class:`itermap.DivergenceError` naming the step.

    Parameters
    ----------
    map : Map
        Any map of the itermap protocol (``step_with_tangent``).
    x : array of shape (B, dim)
        The starts, on any array backend (the stepper stays on it).
    Q : array of shape (B, dim, k)
        Orthonormal tangent frames.
    u : array, optional
        A constant input.
    inputs : array, optional
        One input per step, ``(steps, ...)``, instead of ``u``.
    offset : int
        Steps before this stepper's first, for the step numbers in messages.
    transient : int
        This stepper's first steps that are a transient, for the messages.

    Returns
    -------
    GeneralStepper
        With ``advance(n, every=..., acc=..., r_out=..., q_out=..., q_every=...)`` (as
        :meth:`itermap.Map.tangent_stepper`'s) and the current ``x`` and ``Q``.

    References
    ----------
    .. [1] Benettin, G., Galgani, L., Giorgilli, A. and Strelcyn, J.-M. (1980). Lyapunov
       characteristic exponents for smooth dynamical systems and for Hamiltonian systems; a
       method for computing all of them. Part 2: Numerical application. Meccanica 15, 21-30.

    Examples
    --------
    >>> from itermap.systems import linear
    >>> s = general_tangent_stepper(linear(np.diag([2.0, 0.0])), np.ones((1, 2)),
    ...                             np.eye(2)[None])
    >>> acc = np.zeros((1, 2))
    >>> s.advance(10, acc=acc) is not None, acc / 10      # an exact collapse: -inf
    (True, array([[0.69314718,       -inf]]))
    """
    return GeneralStepper(map, x, Q, u, inputs=inputs, offset=offset, transient=transient)


def network_tangent_stepper(self, x: Array, Q: Array, u: Array | None = None, *,
                            steps: int = 0) -> Any:
    """The stepper of trajectories and tangent frames that fits this network, or None.

    For a dense float64 NumPy network with one activation and no input block, leak
    or function blocks: full spectra keep their frames as Householder reflectors;
    one trajectory of sparse weights gets a fused stepper where the product splits;
    everything else :meth:`itermap.Map.tangent_stepper`.

    Parameters
    ----------
    x : array of shape (B, dim)
        The starts.
    Q : array of shape (B, dim, k)
        Orthonormal tangent frames.
    u : array, optional
        A constant input.
    steps : int
        How many steps the caller means to run.

    Returns
    -------
    stepper or None
        With ``advance(n, every=..., acc=...)`` and the current ``x`` and
        ``Q`` (as :meth:`itermap.Map.tangent_stepper`'s).

    Examples
    --------
    >>> import itermap
    >>> m = itermap.random_rnn(20, gain=0.5, rng=0)   # contracting: exponents < 0
    >>> s = m.tangent_stepper(np.full((1, 20), 0.1), np.eye(20)[None, :, :3])
    >>> acc = np.zeros((1, 3))
    >>> s.advance(200, acc=acc) is not None, bool(np.all(acc / 200 < 0))
    (True, True)
    """
    plain = (self.input_block is None and self._leak is None and self._uniform
             and self.backend == "numpy" and u is None)
    if plain and self._kind in ("dense", "sparse"):
        stepper = FusedStepper.build(self._kind, self._W, self.bias, self._act, x, Q)
        if stepper is not None:
            return stepper
    return Map.tangent_stepper(self, x, Q, u, steps=steps)
