"""The small-map tangent stepper: trajectories of a small map and their tangent frames.

A map hands the Lyapunov analyses a stepper through :meth:`Map.tangent_stepper`;
this module holds the general one, for maps of up to :data:`MAX_DIM` units on
NumPy float64 without inputs. The loop calls the map's own point functions
(``step(x)`` and ``jacobian(x)`` on one state of shape ``(dim,)``, no checks)
once a step, forms ``J @ Q`` and, on the QR steps, reorthonormalises the frame
by modified Gram-Schmidt applied twice; every check is hoisted out of the loop
(shapes once at the start, finiteness once per call of :meth:`SmallStepper.advance`
and at each QR).

Two loops run it:

- compiled with numba (the optional extra ``itermap[numba]``), for maps whose
  point functions numba compiles: the built-in classic maps, and a user's plain
  functions (or numba-jitted ones) written in numba's subset. A batch of starts
  then runs in the same compiled loop, one trajectory after the other;
- plain Python otherwise (and when numba is missing): one trajectory, a loop on
  preallocated arrays (on Python floats for ``dim = 2``).

``ITERMAP_NUMBA`` chooses: ``0`` never compiles, ``1`` compiles whenever it can,
and ``auto`` (the default) compiles for runs of at least :data:`COMPILE_MIN_STEPS`
trajectory-steps, or when the functions are compiled already: a compile costs
about a second, which a short run does not earn back.
"""

from __future__ import annotations

import logging
import math
import os
import types

import numpy as np

__all__ = ["MAX_DIM", "COMPILE_MIN_STEPS", "SmallStepper", "numba_available", "wrap_periodic"]

#: The largest ``dim`` the general small-map stepper takes (larger maps use the batched path).
MAX_DIM = 64
#: Trajectory-steps from which ``ITERMAP_NUMBA=auto`` compiles a new pair of point functions.
COMPILE_MIN_STEPS = 200_000

_COMPILED: dict = {}   # (step, jacobian) -> compiled kernel, or None when numba refused them


def numba_available() -> bool:
    """Whether numba can be imported (the optional extra ``itermap[numba]``)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _numba_mode() -> str:
    mode = os.environ.get("ITERMAP_NUMBA", "auto").strip().lower()
    return {"0": "never", "false": "never", "no": "never", "off": "never",
            "1": "always", "true": "always", "yes": "always", "on": "always"}.get(mode, "auto")


def wrap_periodic(x, periods):
    """``x`` reduced onto ``[0, P)`` along the coordinates with a period ``P`` (others kept).

    Parameters
    ----------
    x : array of shape (..., dim)
        States (NumPy or any array-API namespace).
    periods : tuple of (float or None), or None
        A period per coordinate (None: not periodic); None for none at all.

    Returns
    -------
    array
        Of ``x``'s shape; ``x`` itself when nothing is periodic.
    """
    if periods is None:
        return x
    from ._backend import namespace

    xp = namespace(x)
    cols = []
    for i, P in enumerate(periods):
        c = x[..., i]
        cols.append(c if P is None else c - P * xp.floor(c / P))
    return xp.stack(cols, axis=-1)


def _period_array(periods, dim):
    per = np.full(dim, np.inf)
    if periods is not None:
        for i, P in enumerate(periods):
            if P is not None:
                per[i] = float(P)
    return per


# -- the compiled loop -----------------------------------------------------------------
# one step of trajectory b: Y = J Q; on the QR steps, modified Gram-Schmidt twice
_BODY = '''
            for i in range(dim):
                for j in range(k):
                    s = 0.0
                    for m in range(dim):
                        s += J[i, m] * Q[m, j]
                    Y[i, j] = s
            if t % every != 0 and t != n:
                for i in range(dim):
                    for j in range(k):
                        Q[i, j] = Y[i, j]
            else:
                lost = -np.inf
                for j in range(k):
                    n0 = 0.0
                    if every > 1:
                        for i in range(dim):
                            n0 += Y[i, j] * Y[i, j]
                    for rep in range(2):
                        for m in range(j):
                            r = 0.0
                            for i in range(dim):
                                r += Q[i, m] * Y[i, j]
                            for i in range(dim):
                                Y[i, j] -= r * Q[i, m]
                            if store_r:
                                r_out[t - 1, b, m, j] += r
                    rjj = 0.0
                    for i in range(dim):
                        rjj += Y[i, j] * Y[i, j]
                    rjj = np.sqrt(rjj)
                    if not (rjj > 0.0 and rjj < np.inf):
                        return 1 + b
                    for i in range(dim):
                        Q[i, j] = Y[i, j] / rjj
                    if store_r:
                        r_out[t - 1, b, j, j] = rjj
                    logs[j] = np.log(rjj)
                    if every > 1:
                        lost = max(lost, 0.5 * np.log(n0) - logs[j])
                for j in range(k):
                    acc[b, j] += logs[j]
                if every > 1:
                    stats[b, 0] = max(stats[b, 0], lost)
                    stats[b, 1] += np.exp(min(lost, 700.0))
                if q_every > 0 and t % q_every == 0:
                    for i in range(dim):
                        for j in range(k):
                            q_out[t // q_every - 1, b, i, j] = Q[i, j]
'''

_HEAD = '''
def kernel(p, X, Qs, n, every, per, acc, stats, r_out, q_out, q_every):
    """Advance each row of X (and its frame in Qs) n steps; 0, or 1 + a failed row."""
    B, dim = X.shape
    k = Qs.shape[2]
    store_r = r_out.shape[0] == n and n > 0
    Y = np.empty((dim, k))
    logs = np.empty(k)
'''

# one trajectory after the other: the point functions on one state (dim,)
_KERNEL_ROWS = _HEAD + '''
    for b in range(B):
        x = X[b].copy()
        Q = Qs[b]
        for t in range(1, n + 1):
            J = jac(x, p)
            x = step(x, p)
            for i in range(dim):
                if per[i] < np.inf:
                    x[i] = x[i] - per[i] * np.floor(x[i] / per[i])
''' + _BODY + '''
        for i in range(dim):
            if not (abs(x[i]) < np.inf):
                return 1 + b
        X[b] = x
    return 0
'''

# the batch together: the point functions called on all of it, (B, dim), once a step
_KERNEL_BATCH = _HEAD + '''
    x = X.copy()
    for t in range(1, n + 1):
        JB = jac(x, p)
        x = step(x, p)
        for b in range(B):
            for i in range(dim):
                if per[i] < np.inf:
                    x[b, i] = x[b, i] - per[i] * np.floor(x[b, i] / per[i])
        for b in range(B):
            J = JB[b]
            Q = Qs[b]
''' + _BODY + '''
    for b in range(B):
        for i in range(dim):
            if not (abs(x[b, i]) < np.inf):
                return 1 + b
    X[:] = x
    return 0
'''



def _compile(step, jac, params, x, Q, batch):
    """The compiled kernel (one row at a time, or ``batch``) for ``step`` and ``jac``, or None."""
    key = (step, jac, batch)
    if key in _COMPILED:
        return _COMPILED[key]
    kernel = None
    try:
        import numba

        def jitted(f):
            return f if isinstance(f, numba.core.registry.CPUDispatcher) else numba.njit(f)

        s1, j1 = jitted(step), jitted(jac)
        if params is None:  # f(x): called as f(x, p) by the kernel
            @numba.njit
            def s2(x, p):
                return s1(x)

            @numba.njit
            def j2(x, p):
                return j1(x)

            ns = {"np": np, "step": s2, "jac": j2}
        else:
            ns = {"np": np, "step": s1, "jac": j1}
        exec(compile(_KERNEL_BATCH if batch else _KERNEL_ROWS, "<itermap small-map kernel>",
                     "exec"), ns)
        kernel = numba.njit(ns["kernel"])
        # numba compiles at the first call: one of no steps, on arrays of the loop's types
        dim, k = x.shape[1], Q.shape[2]
        B = 2 if batch else 1
        kernel(params if params is not None else 0.0, np.repeat(x[:1], B, 0),
               np.repeat(Q[:1], B, 0), 0, 1, np.full(dim, np.inf), np.zeros((B, k)),
               np.zeros((B, 2)), np.zeros((1, B, k, k)), np.zeros((1, B, dim, k)), 0)
    except Exception:  # noqa: BLE001 -- anything numba refuses runs the plain loop
        kernel = None
        logging.getLogger(__name__).info("numba refused %r: the plain loop runs", step)
    _COMPILED[key] = kernel
    return kernel


def _compilable(f) -> bool:
    if isinstance(f, types.FunctionType):
        return True
    return type(f).__name__ == "CPUDispatcher"


class SmallStepper:
    """One trajectory (or, compiled, a batch) of a small map with its tangent frame.

    Built by :meth:`itermap.Map.tangent_stepper`; the analyses call
    :meth:`advance` and read :attr:`x` and :attr:`Q`.

    Parameters
    ----------
    step, jacobian : callable
        Point functions: ``f(x)`` (or ``f(x, p)`` with ``params``) on one state
        of shape ``(dim,)``, without checks.
    x : ndarray of shape (B, dim)
        The starts (float64); copied.
    Q : ndarray of shape (B, dim, k)
        Orthonormal tangent frames; copied.
    params : ndarray, optional
        The parameters ``p`` passed to ``f(x, p)``.
    periods : tuple, optional
        A period per coordinate (None where not periodic): states are wrapped
        onto ``[0, P)`` after each step.
    compiled : callable, optional
        The numba kernel (from :meth:`build`).
    """

    def __init__(self, step, jacobian, x, Q, *, params=None, periods=None, compiled=None,
                 scalar=None):
        self._step, self._jac, self._p = step, jacobian, params
        self._scalar = scalar
        self.x = np.array(x, dtype=np.float64, order="C")
        self.Q = np.array(Q, dtype=np.float64, order="C")
        self._per = _period_array(periods, self.x.shape[1])
        self._kernel = compiled
        self.compiled = compiled is not None

    @classmethod
    def build(cls, step, jacobian, x, Q, *, params=None, periods=None, u=None,
              total_steps=0, compilable=None, scalar=None):
        """A stepper for the point functions, or None where the general path must run.

        None for a non-NumPy or non-float64 state, a driven map (``u`` given), a
        dimension above :data:`MAX_DIM`, or a batch of starts that cannot be
        compiled.
        """
        if u is not None or not isinstance(x, np.ndarray) or not isinstance(Q, np.ndarray):
            return None
        if x.dtype != np.float64 or Q.dtype != np.float64 or x.ndim != 2 or Q.ndim != 3:
            return None
        B, dim = x.shape
        if dim > MAX_DIM or Q.shape[:2] != (B, dim):
            return None
        mode = _numba_mode()
        compilable = (_compilable(step) and _compilable(jacobian)) if compilable is None \
            else compilable
        kernel = None
        if mode != "never" and compilable and numba_available() and (
                mode == "always" or (step, jacobian, B > 1) in _COMPILED
                or total_steps * B >= COMPILE_MIN_STEPS):
            # a batch calls the point functions on all of it where they take (B, dim)
            kernel = ((_compile(step, jacobian, params, x, Q, True) if B > 1 else None)
                      or _compile(step, jacobian, params, x, Q, False))
        if kernel is None and B > 1:
            return None
        self = cls(step, jacobian, x, Q, params=params, periods=periods, compiled=kernel,
                   scalar=scalar if dim == 2 else None)
        if kernel is None and not self._shapes_ok():
            return None
        return self

    def _shapes_ok(self) -> bool:
        """One call of each point function at the start: the shapes the loop assumes."""
        x = self.x[0].copy()
        dim = x.shape[0]
        try:
            y, J = self._call(self._step, x), self._call(self._jac, x)
        except Exception:  # noqa: BLE001 -- the general path raises it, with its context
            return False
        return (isinstance(y, np.ndarray) and y.shape == (dim,) and y.dtype == np.float64
                and isinstance(J, np.ndarray) and J.shape == (dim, dim)
                and J.dtype == np.float64)

    def _call(self, f, x):
        return f(x) if self._p is None else f(x, self._p)

    def advance(self, n, *, every=1, acc=None, r_out=None, q_out=None, q_every=0):
        """Run ``n`` steps, a QR every ``every`` steps and at the last one.

        Parameters
        ----------
        n : int
            Steps.
        every : int
            Steps between QRs.
        acc : ndarray of shape (B, k), optional
            ``log R_jj`` of each QR is added to it in place.
        r_out : ndarray of shape (n, B, k, k), optional
            Receives each step's ``R`` (``every`` must be 1).
        q_out : ndarray of shape (n // q_every, B, dim, k), optional
            Receives the frame after every ``q_every``-th step.
        q_every : int
            The spacing of ``q_out``.

        Returns
        -------
        (float, float) or None
            The largest precision loss of a QR and the sum of its exponentials
            (NaN where ``every == 1``), or None when a state or a direction
            went non-finite or collapsed exactly: the general path then reruns
            and names it.
        """
        B, dim = self.x.shape
        k = self.Q.shape[-1]
        if acc is None:
            acc = np.zeros((B, k))
        if self._kernel is not None:
            stats = np.zeros((B, 2))
            stats[:, 0] = -np.inf
            r = r_out if r_out is not None else np.zeros((1, B, k, k))
            if r_out is not None:
                r[:] = 0.0
            q = q_out if q_out is not None else np.zeros((1, B, dim, k))
            p = self._p if self._p is not None else 0.0
            status = self._kernel(p, self.x, self.Q, int(n), int(every), self._per, acc, stats,
                                  r, q, int(q_every))
            if status:
                return None
            worst = float(stats[:, 0].max())
            return (worst, float(stats[:, 1].sum())) if every > 1 else (math.nan, math.nan)
        if dim == 2 and k <= 2 and r_out is None and q_out is None:
            if self._scalar is not None:
                return self._advance_floats(n, every, acc)
            return self._advance_2d(n, every, acc)
        return self._advance_plain(n, every, acc, r_out, q_out, q_every)

    def _wrap(self, x):
        per = self._per
        if np.isinf(per).all():
            return x
        fin = np.isfinite(per)
        if fin.all():
            return np.mod(x, per)
        x = x.copy()
        x[fin] = np.mod(x[fin], per[fin])
        return x

    def _advance_plain(self, n, every, acc, r_out, q_out, q_every):
        """The loop on NumPy arrays, one trajectory of any small dimension."""
        step, jac, p = self._step, self._jac, self._p
        wrap = not np.isinf(self._per).all()
        x, Q = self.x[0].copy(), self.Q[0].copy()
        row = acc[0]
        worst, esum = -math.inf, 0.0
        # LAPACK's geqrf and orgqr called directly: numpy.linalg.qr costs ~4x more on a
        # frame this small (its gufunc set-up, not the arithmetic)
        from scipy.linalg.lapack import dgeqrf, dorgqr

        log, absolute, diag, triu = np.log, np.abs, np.diagonal, np.triu
        for t in range(1, n + 1):
            J = jac(x) if p is None else jac(x, p)
            x = step(x) if p is None else step(x, p)
            if wrap:
                x = self._wrap(x)
            Y = J @ Q
            if t % every and t != n:
                Q = Y
                continue
            qr, tau, _, info = dgeqrf(Y)
            Q, _, info2 = dorgqr(qr, tau)
            d = diag(qr)
            logs = log(absolute(d))
            if info or info2 or not np.isfinite(logs.sum()):
                return None
            row += logs
            if every > 1:
                lost = float((0.5 * log(np.einsum("ij,ij->j", Y, Y)) - logs).max())
                worst = max(worst, lost)
                esum += math.exp(min(lost, 700.0))
            if r_out is not None or q_out is not None:
                s = np.where(d < 0, -1.0, 1.0)  # diag R > 0, as the batched QR gives it
                Q = Q * s
                if r_out is not None:
                    r_out[t - 1, 0] = triu(qr[:Q.shape[1]]) * s[:, None]
                if q_every and t % q_every == 0:
                    q_out[t // q_every - 1, 0] = Q
        if not np.isfinite(x).all():
            return None
        self.x[0], self.Q[0] = x, Q
        return (worst, esum) if every > 1 else (math.nan, math.nan)

    def _advance_2d(self, n, every, acc):
        """The loop on Python floats for a 2-D map: one trajectory, k = 1 or 2."""
        step, jac, p = self._step, self._jac, self._p
        wrap = not np.isinf(self._per).all()
        k = self.Q.shape[-1]
        x = self.x[0].copy()
        Q = self.Q[0]
        u00, u10 = float(Q[0, 0]), float(Q[1, 0])
        u01, u11 = (float(Q[0, -1]), float(Q[1, -1]))
        a0, a1 = float(acc[0, 0]), float(acc[0, -1])
        log, sqrt, isfinite = math.log, math.sqrt, math.isfinite
        worst, esum = -math.inf, 0.0
        l1 = 0.0
        for t in range(1, n + 1):
            J = jac(x) if p is None else jac(x, p)
            x = step(x) if p is None else step(x, p)
            if wrap:
                x = self._wrap(x)
            (j00, j01), (j10, j11) = J.tolist()
            u00, u10 = j00 * u00 + j01 * u10, j10 * u00 + j11 * u10
            if k == 2:
                u01, u11 = j00 * u01 + j01 * u11, j10 * u01 + j11 * u11
            if t % every and t != n:
                continue
            r00 = sqrt(u00 * u00 + u10 * u10)
            if not (isfinite(r00) and r00 > 0.0):
                return None
            u00, u10 = u00 / r00, u10 / r00
            l0 = log(r00)
            if k == 2:  # Gram-Schmidt, twice where the first pass may leave an error
                n1 = sqrt(u01 * u01 + u11 * u11)
                r01 = u00 * u01 + u10 * u11
                u01, u11 = u01 - r01 * u00, u11 - r01 * u10
                r11 = sqrt(u01 * u01 + u11 * u11)
                if r11 < 1e-3 * n1:
                    r01 = u00 * u01 + u10 * u11
                    u01, u11 = u01 - r01 * u00, u11 - r01 * u10
                    r11 = sqrt(u01 * u01 + u11 * u11)
                if not (isfinite(r11) and r11 > 0.0):
                    return None
                u01, u11 = u01 / r11, u11 / r11
                l1 = log(r11)
                a1 += l1
                if every > 1:
                    lost = log(n1) - l1
                    worst = max(worst, lost)
                    esum += math.exp(min(lost, 700.0))
            a0 += l0
        if not np.isfinite(x).all():
            return None
        self.x[0] = x
        self.Q[0, :, 0] = (u00, u10)
        acc[0, 0] = a0
        if k == 2:
            self.Q[0, :, 1] = (u01, u11)
            acc[0, 1] = a1
        return (worst, esum) if every > 1 else (math.nan, math.nan)

    def _advance_floats(self, n, every, acc):
        """:meth:`_advance_2d` on a map's scalar kernel: no arrays at all in the loop."""
        kernel = self._scalar
        k = self.Q.shape[-1]
        x0, x1 = (float(v) for v in self.x[0])
        Q = self.Q[0]
        u00, u10, u01, u11 = float(Q[0, 0]), float(Q[1, 0]), float(Q[0, -1]), float(Q[1, -1])
        a0, a1 = float(acc[0, 0]), float(acc[0, -1])
        P0, P1 = (float(P) if math.isfinite(P) else 0.0 for P in self._per)
        log, sqrt, isfinite, floor = math.log, math.sqrt, math.isfinite, math.floor
        worst, esum = -math.inf, 0.0
        for t in range(1, n + 1):
            x0, x1, j00, j01, j10, j11 = kernel(x0, x1)
            if P0:
                x0 -= P0 * floor(x0 / P0)
            if P1:
                x1 -= P1 * floor(x1 / P1)
            u00, u10 = j00 * u00 + j01 * u10, j10 * u00 + j11 * u10
            u01, u11 = j00 * u01 + j01 * u11, j10 * u01 + j11 * u11
            if t % every and t != n:
                continue
            r00 = sqrt(u00 * u00 + u10 * u10)
            if not (isfinite(r00) and r00 > 0.0):
                return None
            u00, u10 = u00 / r00, u10 / r00
            a0 += log(r00)
            if k == 2:  # Gram-Schmidt, twice where the first pass may leave an error
                n1 = sqrt(u01 * u01 + u11 * u11)
                r01 = u00 * u01 + u10 * u11
                u01, u11 = u01 - r01 * u00, u11 - r01 * u10
                r11 = sqrt(u01 * u01 + u11 * u11)
                if r11 < 1e-3 * n1:
                    r01 = u00 * u01 + u10 * u11
                    u01, u11 = u01 - r01 * u00, u11 - r01 * u10
                    r11 = sqrt(u01 * u01 + u11 * u11)
                if not (isfinite(r11) and r11 > 0.0):
                    return None
                u01, u11 = u01 / r11, u11 / r11
                a1 += log(r11)
                if every > 1:
                    lost = log(n1 / r11)
                    worst = max(worst, lost)
                    esum += math.exp(min(lost, 700.0))
        if not (isfinite(x0) and isfinite(x1)):
            return None
        self.x[0] = (x0, x1)
        self.Q[0, :, 0] = (u00, u10)
        acc[0, 0] = a0
        if k == 2:
            self.Q[0, :, 1] = (u01, u11)
            acc[0, 1] = a1
        return (worst, esum) if every > 1 else (math.nan, math.nan)
