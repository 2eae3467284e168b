"""The small-map tangent stepper: trajectories of a small map and their tangent frames.

The general :meth:`Map.tangent_stepper` for NumPy float64 maps of up to
:data:`MAX_DIM` units without inputs: the map's point functions on one state
once a step, ``J @ Q``, and Gram-Schmidt (twice where needed) on the QR steps,
every check hoisted out of the loop. Its loops:

- compiled with numba (the extra ``itermap[numba]``) where the point functions
  are in numba's subset (a user's object becomes a jitclass of its numeric
  attributes, read when the stepper is built). The compiled functions must give
  the plain calls' numbers at the first start (1e-12); whatever numba refuses
  runs the plain loop (logged at INFO). ``ITERMAP_NUMBA``: ``0`` never, ``1``
  whenever it can, ``auto`` (default) from :data:`COMPILE_MIN_STEPS`
  trajectory-steps or once compiled, never for a batch of a 2-D map;
- plain Python otherwise: one trajectory on preallocated arrays, or on floats
  for a 2-D map, whose QR has a closed form (``R_00 = |J q|``,
  ``R_11 = |det J| / R_00``); the built-in maps write their step into that loop
  (:class:`ScalarSource`); a batched ``jacobian`` is called once a chunk.
"""

from __future__ import annotations

import math
import os
from math import isfinite

import numpy as np

from ._stepper_kernels import (
    _COMPILED,
    ScalarSource,
    _float_loops,
    _is_f64,
    _point_key,
    compiled_kernel,
    one_state_only,
)

__all__ = ["MAX_DIM", "COMPILE_MIN_STEPS", "ScalarSource", "SmallStepper", "numba_available",
           "wrap_periodic"]

#: The largest ``dim`` the general small-map stepper takes (larger maps use the batched path).
MAX_DIM = 64
#: Trajectory-steps from which ``ITERMAP_NUMBA=auto`` compiles a new pair of point functions.
COMPILE_MIN_STEPS = 200_000

_CHUNK = 256   # states of a trajectory whose Jacobians the plain loop asks for in one call


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
    """:meth:`itermap.Map.wrap` for ``periods``, a period or None per coordinate (or None)."""
    if periods is None:
        return x
    from .._core._backend import namespace

    xp = namespace(x)
    cols = []
    for i, P in enumerate(periods):
        c = x[..., i]
        if P is not None:
            c = c - P * xp.floor(c / P)
            c = xp.where(c < 0, c + P, c)  # c / P underflows to -0 for c = -5e-324
            c = xp.where(c < P, c, c - P)  # -1e-17 rounds to P itself: that is 0
        cols.append(c)
    return xp.stack(cols, axis=-1)


def _period_array(periods, dim):
    per = np.full(dim, np.inf)
    if periods is not None:
        for i, P in enumerate(periods):
            if P is not None:
                per[i] = float(P)
    return per


def _record(acc, a0, ad, acc_out):
    """``acc`` (1, k) plus a 2-D loop's running sums at its checkpoints, onto ``acc_out``."""
    snaps = np.repeat(acc[None], len(a0), 0)
    snaps[:, 0, 0] += a0
    if acc.shape[1] == 2:
        snaps[:, 0, 1] += np.asarray(ad) - a0
    acc_out.extend(snaps)


# -- the compiled loop -----------------------------------------------------------------
# one step of trajectory b: Y = J Q; on the QR steps, modified Gram-Schmidt twice
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
        self.x = np.array(x, dtype=np.float64, order="C")
        self.Q = np.array(Q, dtype=np.float64, order="C")
        self._per = _period_array(periods, self.x.shape[1])
        fin = np.isfinite(self._per)  # which coordinates wrap: None (none), True (all), a mask
        self._fin = None if not fin.any() else True if fin.all() else fin
        self._kernel, self._kp = compiled, params if params is not None else 0.0
        self.compiled = compiled is not None
        self._loop = self._det = None
        if isinstance(scalar, ScalarSource):  # the map's statements, written into a loop
            scalar, self._loop, self._det = _float_loops(scalar, tuple(self._per))
        self._scalar = scalar
        # one trajectory on the map's statements, k <= 2: the float loop (_advance_closed)
        self._closed = (self._loop is not None and compiled is None and self.x.shape[0] == 1
                        and self.Q.shape[-1] <= 2)
        self._batches = False  # whether jacobian takes a batch: one call per chunk of states

    @classmethod
    def build(cls, step, jacobian, x, Q, *, params=None, periods=None, u=None,
              total_steps=0, scalar=None):
        """A stepper for the point functions, or None where the general path must run (not
        NumPy float64, a driven map, above :data:`MAX_DIM`, or a batch numba cannot take)."""
        if u is not None or not isinstance(x, np.ndarray) or not isinstance(Q, np.ndarray):
            return None
        if x.dtype != np.float64 or Q.dtype != np.float64 or x.ndim != 2 or Q.ndim != 3:
            return None
        B, dim = x.shape
        if dim > MAX_DIM or Q.shape[:2] != (B, dim):
            return None
        mode = _numba_mode()
        kernel = kp = None
        # auto leaves a batch of a 2-D map to the closed form in place over the batch (as
        # fast as the compiled loop, without its compile time)
        batch2 = B > 1 and dim == 2 and Q.shape[2] <= 2
        if mode != "never" and numba_available():
            key, values = _point_key(step, jacobian, params)
            # a batch of a step on one state only: compiled row by row, or not at all
            if key is not None and (mode == "always" or (not batch2 and (
                    (key, B > 1) in _COMPILED or total_steps * B >= COMPILE_MIN_STEPS))
                    or (B > 1 and one_state_only(step, params, x))):
                kernel, kp = compiled_kernel(step, jacobian, params, x, Q, key, values)
        if kernel is None and B > 1 and (dim != 2 or Q.shape[2] > 2):
            return None  # a batch without numba: in closed form for 2-D maps only
        self = cls(step, jacobian, x, Q, params=params, periods=periods, compiled=kernel,
                   scalar=scalar if dim == 2 else None)
        if kp is not None:
            self._kp = kp  # the kernel's p: the parameters, or the object's jitclass
        # a map's statements (ScalarSource) are its own; a user's functions are probed
        if kernel is None and self._loop is None and not self._shapes_ok():
            return None
        return self

    def _shapes_ok(self) -> bool:
        """Whether the point functions give the shapes the loops assume at the start (and
        whether ``jacobian`` takes a batch of states too)."""
        B, dim = self.x.shape
        x = self.x.copy() if B > 1 else self.x[0].copy()
        try:
            y, J = self._call(self._step, x), self._call(self._jac, x)
        except Exception:  # noqa: BLE001 -- the general path raises it, with its context
            return False
        if not (_is_f64(y, x.shape) and _is_f64(J, x.shape + (dim,))):
            return False
        if B == 1:
            with np.errstate(all="ignore"):
                try:
                    X = np.stack([x, self._wrap(y)])
                    JB = self._call(self._jac, X)
                    one = np.stack([J, self._call(self._jac, X[1].copy())])
                except Exception:  # noqa: BLE001 -- then it is called on one state a step
                    return True
            self._batches = bool(_is_f64(JB, (2, dim, dim)) and np.all(np.isfinite(one))
                                 and np.allclose(JB, one, rtol=1e-13, atol=0.0))
        return True

    def _call(self, f, x):
        return f(x) if self._p is None else f(x, self._p)

    #: :meth:`advance` takes ``acc_out`` (the history is recorded by one call)
    records_acc = True

    def advance(self, n, *, every=1, acc=None, r_out=None, q_out=None, q_every=0,
                acc_out=None, acc_every=0):
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
        acc_out : list, optional
            Receives a copy of ``acc`` after every ``acc_every`` steps and after
            the last one.
        acc_every : int
            The spacing of ``acc_out``.

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
        plain = r_out is None and q_out is None
        if self._closed and every == 1 and plain:
            return self._advance_closed(n, acc, acc_out, acc_every)  # floats only
        # a user's 2-D map whose jacobian takes a batch: Jacobians a chunk of states a call
        chunks = (self._kernel is None and B == 1 and dim == 2 and k <= 2 and every == 1
                  and plain and self._scalar is None and self._batches)
        # the compiled loop records the history itself where a QR closes every step
        one_call = self._kernel is not None and every == 1 and plain and acc_every > 0
        if acc_out is not None and not (chunks and acc_every <= 1 << 14) and not one_call:
            worst, esum = -math.inf, 0.0
            for start in range(0, n, acc_every):
                loss = self.advance(min(acc_every, n - start), every=every, acc=acc)
                if loss is None:
                    return None
                worst, esum = max(worst, loss[0]), esum + loss[1]
                acc_out.append(acc.copy())
            return (worst, esum) if every > 1 else (math.nan, math.nan)
        if self._kernel is not None:
            stats = np.zeros((B, 2))
            stats[:, 0] = -np.inf
            r = r_out if r_out is not None else np.zeros((1, B, k, k))
            if r_out is not None:
                r[:] = 0.0
            q = q_out if q_out is not None else np.zeros((1, B, dim, k))
            h_every = int(acc_every) if acc_out is not None else 0
            h = np.empty((-(-n // h_every) if h_every else 1, B, k))
            status = self._kernel(self._kp, self.x, self.Q, int(n), int(every), self._per, acc,
                                  stats, r, q, int(q_every), h, h_every)
            if status:
                return None
            if h_every:
                acc_out.extend(h)
            worst = float(stats[:, 0].max())
            return (worst, float(stats[:, 1].sum())) if every > 1 else (math.nan, math.nan)
        with np.errstate(all="ignore"):  # a divergence is found at the end, not warned
            if B > 1:
                if every == 1 and plain:
                    return self._advance_batch2(n, acc)
                return self._advance_batch(n, every, acc, r_out, q_out, q_every)
            if dim == 2 and k <= 2:
                if chunks:
                    return self._advance_2d_chunks(n, acc, acc_out, acc_every)
                return self._advance_floats(n, every, acc, r_out, q_out, q_every)
            return self._advance_plain(n, every, acc, r_out, q_out, q_every)

    def _wrap(self, x):
        # x - P floor(x / P), as iterate and the compiled loop wrap (np.mod rounds otherwise)
        fin = self._fin
        if fin is None:
            return x
        per = self._per
        if fin is True:
            return x - per * np.floor(x / per)
        x = x.copy()
        x[..., fin] = x[..., fin] - per[fin] * np.floor(x[..., fin] / per[fin])
        return x

    def _states(self, x, n):
        """``n`` steps from ``x``: the states before each step ``(n, dim)`` and the last one."""
        step, p = self._step, self._p
        X = np.empty((n,) + x.shape)
        wrap = self._fin is not None
        for t in range(n):
            X[t] = x
            x = step(x) if p is None else step(x, p)
            if wrap:
                x = self._wrap(x)
        return X, x

    def _jacobians(self, x, n, chunk=0):
        """Yields ``(J, x)``: the Jacobians ``(m, dim, dim)`` of the next ``m`` steps from ``x``
        and the state after them (one ``jacobian`` call a chunk where it takes a batch)."""
        jac, p = self._jac, self._p
        chunk = chunk or max(8, min(_CHUNK, (1 << 16) // x.shape[0] ** 2))
        done = 0
        while done < n:
            m = min(chunk, n - done)
            X, x = self._states(x, m)
            if self._batches:
                J = jac(X) if p is None else jac(X, p)
            else:  # copied as it comes: a jacobian may hand back one array it refills
                J = np.empty((m,) + x.shape * 2)
                for i, xi in enumerate(X):
                    J[i] = jac(xi) if p is None else jac(xi, p)
            done += m
            yield J, x

    def _advance_plain(self, n, every, acc, r_out, q_out, q_every):
        """The loop on NumPy arrays, one trajectory of any small dimension."""
        x, Q = self.x[0].copy(), self.Q[0].copy()
        row = acc[0]
        worst, esum = -math.inf, 0.0
        # LAPACK's geqrf and orgqr called directly: numpy.linalg.qr costs ~4x more on a
        # frame this small (its gufunc set-up, not the arithmetic)
        from scipy.linalg.lapack import dgeqrf, dorgqr

        log, absolute, diag, triu = np.log, np.abs, np.diagonal, np.triu
        t = 0
        for Js, x_end in self._jacobians(x, n):
            x = x_end
            for J in Js:
                t += 1
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

    # -- 2-D, a QR every step, in closed form ----------------------------------------------
    # With Q = [q, s q_perp] (q_perp = (-q_1, q_0), s = det Q = +-1), J Q = Q' R has
    # q' = J q / |J q|, R_00 = |J q|, R_11 = |det J| / R_00 and s' = s sign(det J): only q
    # is carried, and the second exponent is the mean log|det J| less the first.
    def _frame2(self, b=0):
        Q = self.Q[b]
        k = Q.shape[-1]
        s = 1.0 if k == 1 or Q[0, 0] * Q[1, 1] - Q[0, 1] * Q[1, 0] >= 0 else -1.0
        return float(Q[0, 0]), float(Q[1, 0]), s, k

    def _store2(self, b, x, u0, u1, s, a0, ad, acc):
        self.x[b] = x
        self.Q[b, :, 0] = (u0, u1)
        acc[b, 0] += a0
        if self.Q.shape[-1] == 2:
            self.Q[b, :, 1] = (-s * u1, s * u0)
            acc[b, 1] += ad - a0

    def _advance_closed(self, n, acc, acc_out=None, acc_every=0):
        """The map's own statements written into a float loop (:class:`ScalarSource`)."""
        u0, u1, s, k = self._frame2()
        x0, x1 = self.x[0].tolist()
        det = self._det
        out = []
        try:
            x0, x1, u0, u1, a0, ad, s = self._loop(n, x0, x1, u0, u1, 0.0, 0.0, s,
                                                   k == 2 and det is None, acc_every or n, out)
        except (ZeroDivisionError, ValueError, OverflowError):
            return None  # a collapse or a divergence: the general path names it
        if k == 2 and det is not None:
            if det == 0.0:
                return None
            ad = n * math.log(abs(det))
            s = s * (-1.0 if det < 0 and n % 2 else 1.0)
        if not isfinite(x0 + x1 + a0 + ad):  # a sum of finite floats overflows only past 1e308
            return None
        if acc_out is not None:  # acc at each recorded step: (steps, a0, ad) from the loop
            rec = np.array(out)
            if det is not None:
                rec[:, 2] = rec[:, 0] * math.log(abs(det))
            _record(acc, rec[:, 1], rec[:, 2], acc_out)
        self._store2(0, (x0, x1), u0, u1, s, a0, ad, acc)
        return (math.nan, math.nan)

    def _advance_2d_chunks(self, n, acc, acc_out=None, acc_every=0):
        """A 2-D map without statements: its Jacobians a chunk at a time, the QR on floats
        (a chunk of ``acc_every`` states where ``acc_out`` records after each)."""
        u0, u1, s, k = self._frame2()
        log, sqrt = math.log, math.sqrt
        a0 = ad = 0.0
        x = self.x[0].copy()
        rec = []
        try:
            for J, x_end in self._jacobians(x, n, acc_every if acc_out is not None else 0):
                x = x_end
                for j00, j01, j10, j11 in zip(*(J[:, i, j].tolist() for i in (0, 1)
                                                for j in (0, 1))):
                    u0, u1 = j00 * u0 + j01 * u1, j10 * u0 + j11 * u1
                    r = sqrt(u0 * u0 + u1 * u1)
                    u0, u1 = u0 / r, u1 / r
                    a0 += log(r)
                if k == 2:
                    d = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
                    ad += float(np.log(np.abs(d)).sum())
                    s = -s if np.count_nonzero(d < 0) % 2 else s
                rec.append((a0, ad))
        except (ZeroDivisionError, ValueError, OverflowError):
            return None
        if not (np.isfinite(x).all() and math.isfinite(a0) and math.isfinite(ad)):
            return None
        if acc_out is not None:
            rec = np.array(rec)
            _record(acc, rec[:, 0], rec[:, 1], acc_out)
        self._store2(0, x, u0, u1, s, a0, ad, acc)
        return (math.nan, math.nan)

    def _advance_batch2(self, n, acc):
        """A batch of a 2-D map, a QR every step in closed form, in place over the batch."""
        step, jac, p = self._step, self._jac, self._p
        B, k = self.x.shape[0], self.Q.shape[-1]
        x = self.x.copy()
        Q = self.Q
        u0, u1 = Q[:, 0, 0].copy(), Q[:, 1, 0].copy()
        s = np.where(Q[:, 0, 0] * Q[:, 1, -1] - Q[:, 0, -1] * Q[:, 1, 0] < 0, -1.0, 1.0)
        m = min(n, _CHUNK)
        r, d = np.empty((m, B)), np.empty((m, B))
        tmp = np.empty(B)
        a0, ad = np.zeros(B), np.zeros(B)
        mul, add = np.multiply, np.add
        done = 0
        while done < n:
            c = min(m, n - done)
            for i in range(c):
                J = jac(x) if p is None else jac(x, p)
                x = self._wrap(step(x) if p is None else step(x, p))
                j00, j01, j10, j11 = J[:, 0, 0], J[:, 0, 1], J[:, 1, 0], J[:, 1, 1]
                if k == 2:
                    mul(j00, j11, out=d[i])
                    d[i] -= mul(j01, j10, out=tmp)
                v0 = add(mul(j00, u0, out=tmp), mul(j01, u1), out=tmp)
                mul(j10, u0, out=u0)
                add(u0, mul(j11, u1, out=u1), out=u1)
                np.hypot(v0, u1, out=r[i])
                np.divide(v0, r[i], out=u0)
                u1 /= r[i]
            a0 += np.log(r[:c]).sum(axis=0)
            if k == 2:
                ad += np.log(np.abs(d[:c])).sum(axis=0)
                s *= np.where(np.count_nonzero(d[:c] < 0, axis=0) % 2, -1.0, 1.0)
            done += c
        if not (np.isfinite(x).all() and np.isfinite(a0).all() and np.isfinite(ad).all()):
            return None
        self.x[:] = x
        Q[:, 0, 0], Q[:, 1, 0] = u0, u1
        acc[:, 0] += a0
        if k == 2:
            Q[:, 0, 1], Q[:, 1, 1] = -s * u1, s * u0
            acc[:, 1] += ad - a0
        return (math.nan, math.nan)

    def _advance_batch(self, n, every, acc, r_out, q_out, q_every):
        """A batch of a 2-D map with spaced QRs or stored factors: matmul and numpy's QR."""
        step, jac, p = self._step, self._jac, self._p
        x, Q = self.x.copy(), self.Q.copy()
        worst, esum = -math.inf, 0.0
        for t in range(1, n + 1):
            J = jac(x) if p is None else jac(x, p)
            x = self._wrap(step(x) if p is None else step(x, p))
            Y = J @ Q
            if t % every and t != n:
                Q = Y
                continue
            Q, R = np.linalg.qr(Y)
            d = np.diagonal(R, axis1=-2, axis2=-1)
            sg = np.where(d < 0, -1.0, 1.0)  # diag R > 0, as the other loops give it
            Q, R = Q * sg[:, None, :], R * sg[:, :, None]
            logs = np.log(np.abs(d))
            if not np.isfinite(logs).all():
                return None
            acc += logs
            if every > 1:
                lost = (0.5 * np.log(np.einsum("bij,bij->bj", Y, Y)) - logs).max(axis=1)
                worst = max(worst, float(lost.max()))
                esum += float(np.exp(np.minimum(lost, 700.0)).sum())
            if r_out is not None:
                r_out[t - 1] = R
            if q_out is not None and q_every and t % q_every == 0:
                q_out[t // q_every - 1] = Q
        if not np.isfinite(x).all():
            return None
        self.x[:], self.Q[:] = x, Q
        return (worst, esum) if every > 1 else (math.nan, math.nan)

    def _point_kernel(self):
        """The map's point functions as ``f(x0, x1) -> (y0, y1, J00, J01, J10, J11)``."""
        step, jac, p = self._step, self._jac, self._p

        def kernel(x0, x1):
            x = np.array((x0, x1))
            (j00, j01), (j10, j11) = (jac(x) if p is None else jac(x, p)).tolist()
            y0, y1 = (step(x) if p is None else step(x, p)).tolist()
            return y0, y1, j00, j01, j10, j11
        return kernel

    def _advance_floats(self, n, every, acc, r_out=None, q_out=None, q_every=0):
        """One trajectory of a 2-D map, k = 1 or 2, on floats (Gram-Schmidt, twice where needed)."""
        rs, qs = ([] if r_out is not None else None), ([] if q_out is not None else None)
        kernel = self._scalar or self._point_kernel()
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
                    r01b = u00 * u01 + u10 * u11
                    u01, u11 = u01 - r01b * u00, u11 - r01b * u10
                    r01, r11 = r01 + r01b, sqrt(u01 * u01 + u11 * u11)
                if not (isfinite(r11) and r11 > 0.0):
                    return None
                u01, u11 = u01 / r11, u11 / r11
                a1 += log(r11)
                if every > 1:
                    lost = log(n1 / r11)
                    worst = max(worst, lost)
                    esum += math.exp(min(lost, 700.0))
            if rs is not None:
                rs.append((r00, r01, 0.0, r11) if k == 2 else (r00,))
            if qs is not None and q_every and t % q_every == 0:
                qs.append((u00, u01, u10, u11) if k == 2 else (u00, u10))
        if not (isfinite(x0) and isfinite(x1)):
            return None
        if rs:
            r_out[:n, 0] = np.reshape(rs, (n, k, k))
        if qs:
            q_out[:len(qs), 0] = np.reshape(qs, (len(qs), 2, k))
        self.x[0] = (x0, x1)
        self.Q[0, :, 0] = (u00, u10)
        acc[0, 0] = a0
        if k == 2:
            self.Q[0, :, 1] = (u01, u11)
            acc[0, 1] = a1
        return (worst, esum) if every > 1 else (math.nan, math.nan)
