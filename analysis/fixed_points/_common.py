"""What the fixed-point methods share: input checks, the map raised to the period
(on a torus too), batched linear algebra on the map's backend, and the progress bar."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import is_numpy_namespace

from itermap.backends import backend_of, namespace, to_backend, to_numpy
from itermap.linalg import (
    batched_eigvals,
    batched_solve,
    damped_normal_solve,
)
from itermap.progress import progress_bar

from .._checks import no_extended, no_half, one_namespace, plain_array


# -- the contract between the driver and a method (see the package docstring) ------------
@dataclass
class Problem:
    """What a method is given: the checked inputs of :func:`find_fixed_points`."""

    map: Any                 # the map (itermap.as_map'd)
    F: Any                   # _Power: F^p under the constant input, modulo the periods
    x: Any                   # the starts (B, dim), on the map's backend
    xp: Any                  # their array namespace
    tol: float
    max_iter: int
    unique_tol: float
    patience: int
    q_steps: int
    slow_points: bool
    progress: bool | None
    method: str              # the name the method runs under (for messages)
    deflation: Any = False   # "auto", True, False or a radius (find_fixed_points' option)
    stage: str = ""          # the progress bar's label where a method runs as a stage of auto


@dataclass
class Solution:
    """What a method returns; the driver adds stability, orbits and the result class."""

    points: Any              # (m, dim) distinct points, in the starts' namespace
    residuals: np.ndarray    # (m,) float64, ||F^p(x) - x|| at each
    status: np.ndarray       # (B,) int8 codes of STATUS, one per start
    jacobians: Any           # (m, dim, dim) D(F^p) at each point, or None (matrix-free)
    eigenvalues: np.ndarray  # (m, k) multipliers by modulus, descending (k = dim, or fewer)
    slow: dict | None = None  # slow_points, slow_residuals, slow_eigenvalues, slow_q


# -- the rules of the damped Newton iteration (_search, and _small on maps of <= 3 units) --
# Armijo constant and the step lengths tried (all at once, in one batched evaluation;
# the one of least residual among those passing wins) before Levenberg-Marquardt
_ARMIJO = 1e-4
_ALPHAS = (1.0, 0.5, 0.25, 0.125)
_ARMIJO_FACTORS = 1.0 - _ARMIJO * np.asarray(_ALPHAS)[:, None]
# stationarity of q (||A^T G|| small relative to ||A|| ||G||) that marks a slow point
_SLOW_GRAD = 1e-9
_SLOW_GRAD_FAILED = 1e-6
# a start whose residual has not fallen by the factor _STALL_DROP within _STALL_ITERS
# iterations takes an undamped Newton step (_ESCAPES times at most), then is given up
# (counted unconverged); neither happens when slow points are asked for
_STALL_ITERS = 6
_STALL_DROP = 0.5
_ESCAPES = 1
# running starts are compared with each other (for merging) once their residual is below
_CLOSING = 1e-2
# coarse merging: running starts closer than rho_k follow one representative, where
# rho_k = max(unique_tol, min(_MERGE_FRAC * scale, median residual of the rows compared))
# and scale is the mean norm of the starts; rows are compared once their residual is
# below _MERGE_CLOSING * scale
_MERGE_FRAC = 1e-2
_MERGE_CLOSING = 4e-2


def _armijo_pick(rt, r, forced):
    """The step length taken by each column of the trial residuals ``rt`` (one row per
    ``_ALPHAS``): the least residual passing Armijo's test against ``r``, the full step
    where ``forced`` (if finite). Returns (the row chosen, whether one passes)."""
    fin = np.isfinite(rt)
    ok = fin & (rt <= _ARMIJO_FACTORS * r[None, :])
    ok[0] |= fin[0] & forced
    best = np.argmin(np.where(ok, rt, np.inf), axis=0)
    best[forced & ok[0]] = 0
    return best, ok[best, np.arange(rt.shape[1])]


def _stationary(g_norm, diag, r, failed):
    """Rows where q is stationary (``_SLOW_GRAD``; ``r = ||G||``, ``diag`` that of ``A^T A``),
    or nearly so where the last damped step ``failed`` (q is flat to rounding there)."""
    a_norm = np.maximum(np.sqrt(np.sum(diag, axis=1)), 1.0)
    return (g_norm <= _SLOW_GRAD * a_norm * r) | (
        failed & (g_norm <= _SLOW_GRAD_FAILED * a_norm * r))


class MergeRadius:
    """The coarse merging radius ``rho_k`` above, for starts of mean norm ``scale``."""

    def __init__(self, scale: float, unique_tol: float):
        self.unique_tol = unique_tol
        self.rho_max = max(unique_tol, _MERGE_FRAC * scale)
        self.closing = max(_CLOSING, _MERGE_CLOSING * scale)

    def of(self, r):
        """``rho_k`` from the running rows' residuals ``r`` (host): the lower median of
        those below ``closing``, clamped to ``[unique_tol, rho_max]``."""
        close = r[r <= self.closing]
        if not close.size:
            return self.unique_tol
        mid = (close.size - 1) // 2
        return max(self.unique_tol, min(self.rho_max, float(np.partition(close, mid)[mid])))


# -- input checks ---------------------------------------------------------------------
def _check_starts(map_, x0):
    if x0 is None or isinstance(x0, (str, bytes)):
        raise TypeError(f"starts x0 must be an array of shape (B, {map_.dim}), got {x0!r}")
    for field in ("points", "states"):   # a result (FixedPoints, Trajectory) of an analysis
        if hasattr(x0, field) and not hasattr(x0, "shape"):
            raise TypeError(f"starts x0 must be an array of shape (B, {map_.dim}), got a "
                            f"{type(x0).__name__}: pass its .{field}")
    x0 = no_half("x0", plain_array("x0", x0))
    one_namespace(map=map_, x0=x0, movable=True)
    if not hasattr(x0, "shape") or not hasattr(x0, "dtype"):
        try:
            x0 = np.asarray(x0)
        except (TypeError, ValueError) as err:   # a ragged list
            raise TypeError(f"starts x0 must be a real array ({err})") from None
    xp = namespace(x0)
    if x0.ndim == 1:
        x0 = xp.reshape(x0, (1, -1))
    if x0.ndim != 2 or x0.shape[1] != map_.dim:
        raise ValueError(f"starts x0 must have shape (B, {map_.dim}) for a map of dim "
                         f"{map_.dim}, got shape {tuple(x0.shape)}")
    if x0.shape[0] == 0:
        raise ValueError("starts x0 is empty: give at least one start")
    if not xp.isdtype(x0.dtype, "real floating"):
        # integer and bool starts are cast, as map.check_start (iterate) and scipy's root do
        if not xp.isdtype(x0.dtype, ("integral", "bool")):
            raise TypeError(f"starts x0 must be real floating point (integers and bools are "
                            f"cast), got dtype {x0.dtype}")
        x0 = xp.astype(x0, map_.dtype if map_.dtype is not None else xp.float64)
    if not bool(xp.all(xp.isfinite(x0))):
        raise ValueError("starts x0 contain NaN or inf")
    # host starts go to a CuPy map's device; device starts stay there, since maps that
    # follow their inputs (Henon, logistic, FunctionMap, ...) report backend "numpy"
    if map_.backend == "cupy" and backend_of(x0) == "numpy":
        x0 = to_backend(x0, "cupy")
        xp = namespace(x0)
    if map_.dtype is not None and x0.dtype != map_.dtype:
        x0 = xp.astype(x0, map_.dtype)
    return no_extended("starts x0", x0), xp


def _check_inputs(map_, inputs, xp):
    if map_.input_size == 0:
        if inputs is not None:
            raise ValueError("inputs: the map is autonomous (input_size 0) but inputs were "
                             "given")
        return None
    if inputs is None:
        raise ValueError(f"inputs: the map is driven (input size {map_.input_size}): pass "
                         f"the constant input, a vector of length {map_.input_size}")
    if not hasattr(inputs, "shape"):
        try:
            inputs = np.asarray(inputs, dtype=float)
        except (TypeError, ValueError) as err:
            raise TypeError(f"inputs must be a real array ({err})") from None
    if tuple(inputs.shape) != (map_.input_size,):
        raise ValueError(f"inputs must be one constant input of shape ({map_.input_size},), "
                         f"got shape {tuple(inputs.shape)}")
    if backend_of(inputs) != backend_of(xp.zeros(1)):
        inputs = _like(to_numpy(inputs), xp)
    ixp = namespace(inputs)
    if not ixp.isdtype(inputs.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"inputs must be real, got dtype {inputs.dtype}")
    if ixp.isdtype(inputs.dtype, "bool"):   # 0/1, as resolve_inputs (iterate) takes them
        inputs = ixp.astype(inputs, ixp.float64)
    if not bool(ixp.all(ixp.isfinite(inputs))):
        raise ValueError("inputs contain NaN or inf")
    return inputs


def _like(a_np, xp):
    """A host array moved into namespace ``xp`` (and its device)."""
    if is_numpy_namespace(xp):
        return np.ascontiguousarray(a_np)
    ref = xp.zeros(1)
    if backend_of(ref) == "cupy":
        return to_backend(np.ascontiguousarray(a_np), "cupy")
    return xp.asarray(np.ascontiguousarray(a_np))


# -- maps on a torus: F^p(x) = x modulo the map's periods ---------------------------------
class _Torus:
    """The periods of a map on a torus (``map.periods``), as arrays of the states' namespace."""

    def __init__(self, periods, xp, dtype):
        mask = np.array([P is not None for P in periods])
        # NumPy's own functions: the array-API wrappers cost more than the arithmetic here
        self.xp = np if is_numpy_namespace(xp) else xp
        self.every = bool(mask.all())      # every coordinate: no masking
        self.mask = _like(mask, xp)
        self.per = xp.astype(_like(np.array([P or 1.0 for P in periods]), xp), dtype)

    def _where(self, a, b):
        return a if self.every else self.xp.where(self.mask, a, b)

    def reduce(self, x):
        """``x`` onto ``[0, P)``: the map is evaluated there, wherever Newton's iterates go."""
        return self._where(x - self.per * self.xp.floor(x / self.per), x)

    def nearest(self, y, x):
        """``y`` shifted by whole periods to the image nearest ``x``: ``y - x`` is the residual."""
        return y - self._where(self.per * self.xp.round((y - x) / self.per), 0.0)

    def canonical(self, x, tol):
        """``x`` onto ``[0, P)``, within ``tol`` below ``P`` to just below 0: one representative."""
        r = self.reduce(x)
        return self.xp.where(self.mask & (r > self.per - tol), r - self.per, r)


def _torus(map_, x):
    return None if map_.periods is None else _Torus(map_.periods, namespace(x), x.dtype)


# -- the map raised to the period ---------------------------------------------------------
# NumPy maps of at most this many units take the Jacobian of F^p from one call of the map's
# ``jacobian`` on the whole orbit (p x B rows of dim^2 numbers)
_STACKED_DIM = 8


class _Power:
    """``F^p`` under a constant input, batched over rows, with its Jacobian.

    On a torus ``value`` and ``jacobian`` return the image of ``F^p(x)`` nearest
    ``x``, so that every residual ``F^p(x) - x`` is taken modulo the periods.
    """

    def __init__(self, map_, period, u, xp, torus=None):
        self.map, self.p, self.u, self.xp = map_, period, u, xp
        self.torus = torus

    def _u(self, x):
        if self.u is None:
            return None
        return self.xp.broadcast_to(self.u, (x.shape[0], self.u.shape[0]))

    def _image(self, x, y, c):
        """``x`` plus the residual at ``c``, the reduced ``x``: ``F^p(c) - c`` modulo P."""
        return y if self.torus is None else x + (self.torus.nearest(y, c) - c)

    def value(self, x):
        u = self._u(x)
        c = y = x if self.torus is None else self.torus.reduce(x)
        for _ in range(self.p):
            y = self.map.step(y, u)
        return self._image(x, y, c)

    def jacobian(self, x):
        """``(F^p(x), D(F^p)(x))``; the chain rule along the orbit."""
        u = self._u(x)
        c = x if self.torus is None else self.torus.reduce(x)
        if self.p > 1 and isinstance(c, np.ndarray) and c.shape[-1] <= _STACKED_DIM:
            return self._stacked(x, c)
        J = self.map.jacobian(c, u)
        y = self.map.step(c, u)
        for _ in range(self.p - 1):
            y, J = self.map.step_with_tangent(y, J, u)
        return self._image(x, y, c), J

    def _stacked(self, x, c):
        """Small NumPy maps: the orbit by ``step``, the Jacobians along it in one call of
        ``jacobian`` and their product by ``matmul`` (fewer calls of the map than
        ``step_with_tangent`` at each point)."""
        ys = [c]
        for _ in range(self.p):
            ys.append(self.map.step(ys[-1], self._u(c)))
        on = np.concatenate(ys[:-1])
        Js = self.map.jacobian(on, self._u(on))
        n = c.shape[0]
        J = Js[:n]
        for k in range(1, self.p):
            J = np.matmul(Js[k * n:(k + 1) * n], J)
        return self._image(x, ys[-1], c), J

    def jacobian_only(self, x):
        if self.p == 1:
            return self.map.jacobian(x, self._u(x))
        return self.jacobian(x)[1]


def _minus_eye(xp, J, eye):
    """``J - I`` for a batch of Jacobians; in place when ``J`` is a fresh NumPy array."""
    if isinstance(J, np.ndarray) and J.flags.writeable and J.flags.owndata \
            and J.flags.c_contiguous:          # else reshape would copy
        n = J.shape[-1]
        J.reshape(J.shape[0], n * n)[:, ::n + 1] -= 1.0
        return J
    return J - eye


def _norm(xp, a):
    return xp.sqrt(xp.sum(a * a, axis=-1))


def _host_norm(xp, a):
    """Row norms of ``a`` on the host, as float64 (NumPy: no conversions)."""
    if isinstance(a, np.ndarray):
        return np.sqrt(np.add.reduce(a * a, axis=-1)).astype(np.float64, copy=False)
    return to_numpy(_norm(xp, a)).astype(np.float64)


def _map_range(Px):
    """The mean max-norm of the finite rows of ``Px``, the images of the starts (1 if
    none): the map's range, at most 1 for a tanh network, whatever the starts' noise."""
    img = np.max(np.abs(to_numpy(Px)), axis=1)
    img = img[np.isfinite(img)]
    return float(np.mean(img)) if img.size else 1.0


# NumPy systems of at most this many unknowns are solved in closed form (no LAPACK call:
# for 2-D maps its dispatch costs more than the arithmetic)
_SMALL_SOLVE = 3


def _small_solve(A, b):
    """``A[i]^{-1} b[i]`` by Cramer's rule for NumPy ``A`` of shape (k, n, n), n <= 3;
    NaN rows where ``det A[i] = 0``."""
    n = A.shape[-1]
    with np.errstate(all="ignore"):
        if n == 1:
            det, x = A[:, 0, 0], b.copy()
        elif n == 2:
            a, e, c, d = A[:, 0, 0], A[:, 0, 1], A[:, 1, 0], A[:, 1, 1]
            det = a * d - e * c
            x = np.empty_like(b)
            np.subtract(d * b[:, 0], e * b[:, 1], out=x[:, 0])
            np.subtract(a * b[:, 1], c * b[:, 0], out=x[:, 1])
        else:   # the columns of adj(A) are the cross products of A's rows
            r0, r1, r2 = A[:, 0, :], A[:, 1, :], A[:, 2, :]
            c0, c1, c2 = np.cross(r1, r2), np.cross(r2, r0), np.cross(r0, r1)
            det = np.sum(r0 * c0, axis=1)
            x = c0 * b[:, :1] + c1 * b[:, 1:2] + c2 * b[:, 2:]
        x /= det[:, None]
    x[det == 0] = np.nan
    return x


def _solve(xp, A, b):
    """Batched ``A^{-1} b`` for b of shape (k, n), or (k, n, m) for m right-hand sides;
    NaN rows where A is singular."""
    vec = b.ndim == 2
    B = b[..., None] if vec else b
    try:
        if isinstance(A, np.ndarray) and vec:
            if A.shape[-1] <= _SMALL_SOLVE:
                return _small_solve(A, b)
            return batched_solve(A, b)
        S = xp.linalg.solve(A, B)
    except Exception:  # numpy raises on any singular matrix: retry one by one
        out = []
        for i in range(A.shape[0]):
            try:
                out.append(xp.linalg.solve(A[i, ...], B[i, ...]))
            except Exception:
                out.append(xp.full(B.shape[1:], float("nan"), dtype=b.dtype))
        S = xp.stack(out)
    return S[..., 0] if vec else S


def _damped_solve(xp, A, lam, b, eye):
    """Batched ``(A^T A + lam I)^{-1} b`` (the Levenberg-Marquardt step); NaN rows where
    singular. On NumPy the products ``A^T A`` are formed in the solve threads."""
    if isinstance(A, np.ndarray):
        if A.shape[-1] <= _SMALL_SOLVE:
            AtA = np.einsum("kij,kil->kjl", A, A)
            n = A.shape[-1]
            AtA.reshape(AtA.shape[0], n * n)[:, ::n + 1] += np.asarray(lam, A.dtype)[:, None]
            return _small_solve(AtA, b)
        try:
            return damped_normal_solve(A, lam, b)
        except np.linalg.LinAlgError:
            pass
    AtA = xp.matmul(xp.permute_dims(A, (0, 2, 1)), A)
    lam_d = xp.astype(_like(np.asarray(lam, dtype=np.float64), xp), A.dtype)
    return _solve(xp, AtA + lam_d[:, None, None] * eye, b)


def _take(xp, a, idx):
    idx = np.asarray(idx, dtype=np.int64)
    if isinstance(a, np.ndarray):
        return a[idx]             # the same rows as xp.take, without the wrapper's checks
    return xp.take(a, _like(idx, xp), axis=0)


# -- eigenvalues -----------------------------------------------------------------------
def _eigenvalues(xp, J):
    """Eigenvalues of a batch of real matrices, sorted by modulus (descending), on the host.

    Uses the backend's ``linalg.eig`` where it has one (NumPy, recent CuPy), the
    host's otherwise; the matrices are small next to the search.
    """
    if J.shape[0] == 0:
        return np.zeros((0, J.shape[-1]), dtype=np.complex128)
    ev = None
    # CuPy is already imported when J lives there; look it up rather than import it
    cupy = sys.modules.get("cupy") if backend_of(J) == "cupy" else None
    eig = getattr(getattr(cupy, "linalg", None), "eig", None)
    if eig is not None:
        try:
            ev = to_numpy(eig(J)[0])
        except Exception:  # CuPy builds without a general eigensolver
            ev = None
    if ev is None:
        ev = batched_eigvals(to_numpy(J))
    ev = np.asarray(ev, dtype=np.complex128)
    # modulus descending; ties (conjugate pairs) by real part, then imaginary part
    order = np.lexsort((ev.imag, -ev.real, -np.round(np.abs(ev), 12)), axis=-1)
    return np.take_along_axis(ev, order, axis=-1)


# multipliers within this of the unit circle are on it, neither stable nor unstable: an
# area-preserving map's elliptic point has |mu| = 1 exactly, computed as 1 +- 2e-16
ON_CIRCLE = 1e-9


def _stability(ev):
    mod = np.abs(ev)
    return (np.all(mod < 1.0 - ON_CIRCLE, axis=-1),
            np.sum(mod > 1.0 + ON_CIRCLE, axis=-1).astype(np.int64))


def _resolved(xp, x, tol):
    """Rows whose residual can be told from rounding: floats near ``x`` must be closer
    than ``tol``. A Newton run that escapes to ``|x| ~ 1e20`` (a map with no fixed point,
    such as a pre-LN looped transformer, whose state grows every step) finds
    ``F(x) - x`` rounded to exactly 0 there: no point, however small its residual."""
    xh = x if isinstance(x, np.ndarray) else to_numpy(x)
    big = np.abs(xh).max(axis=-1, initial=0.0).astype(np.float64, copy=False)
    return big * np.finfo(xh.dtype).eps * 4 <= tol


def _default_tol(xp, dtype):
    """``find_fixed_points``' ``tol=None``: 1e-10, or 100 eps where the dtype's rounding
    alone exceeds it (float32)."""
    return max(1e-10, 100.0 * float(xp.finfo(dtype).eps))


def _check_reachable(tol, xp, dtype, step=""):
    """Refuse a ``tol`` that no point of norm about 1 meets in ``dtype`` (the rule of
    ``_resolved``): every such start would give up, with advice (raise patience) that
    does not help. ``step``: what the message says first where the dtype is the step's."""
    floor = 4.0 * float(xp.finfo(dtype).eps)
    fix = "a step that returns float64" if step else "float64 starts and map"
    if tol < floor:
        raise ValueError(f"{step}tol={tol:g} is below the rounding of {dtype} states of norm "
                         f"1 ({floor:.1e}): pass tol >= {floor:.1e} (1e-5 is usual in "
                         f"float32) or {fix}")


def _progress_bar(progress, total, dim, n_starts, stage=""):
    """itermap's bar over the starts finished, labelled with ``stage`` where one is given;
    with ``progress=None`` it appears once the search has run ``_BAR_DELAY`` seconds (a
    search of a few milliseconds shows none). It stays on screen with its final count."""
    label = f", {stage}" if stage else ""
    return progress_bar(total=total, desc=f"fixed points (dim {dim}, {n_starts} starts{label})",
                        unit="start", delay=0.0 if progress else _BAR_DELAY,
                        disable=progress is False)


# progress=None: the bar appears once the search has run this long (s)
_BAR_DELAY = 2.0


class _Running:
    """The running start's own progress on the bar's postfix, beside the count of points:
    one start of a large map can run for hours while the count of starts finished stays
    put. Drawn at most every ``_RUNNING_EVERY`` seconds, so a small map pays a clock read
    a step."""

    def __init__(self, bar, points):
        self.bar, self.points, self.next = bar, points, time.monotonic() + _RUNNING_EVERY
        # a redraw before the bar's delay would show the bar of a short search
        self.drawn_from = time.monotonic() + getattr(bar, "delay", 0.0)

    def __call__(self, **state):
        now = time.monotonic()
        if now >= self.next:
            self.next = now + _RUNNING_EVERY
            self.bar.set_postfix(refresh=now >= self.drawn_from, points=len(self.points),
                                 **state)


_RUNNING_EVERY = 1.0


def _settle(bar):
    """Before the bar closes: its line cleared, so that the last line drawn ends with its
    closing bracket (tqdm pads a line shorter than the one before it with spaces)."""
    if not bar.disable and bar.last_print_t >= bar.start_t + bar.delay:
        bar.clear()


class _Finished:
    """Counts the starts finished (converged, slow point or gave up for good) on a bar.

    ``base`` starts are finished by the phases before; :meth:`show` sets how many of
    the running phase's starts are, and the bar only moves forward, its count of points
    too (the most any phase has found: the result merges them).
    """

    def __init__(self, bar):
        self.bar, self.base, self.points = bar, 0, 0

    def show(self, n_phase, **postfix):
        target = min(self.base + int(n_phase), int(self.bar.total or 0))
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        if "points" in postfix:   # a later phase counts its own finds: never read fewer
            self.points = postfix["points"] = max(self.points, postfix["points"])
        if postfix and not getattr(self.bar, "disable", False):   # a disabled bar: no text
            self.bar.set_postfix(refresh=False, **postfix)

    def commit(self, n_phase):
        self.base += int(n_phase)
        self.show(0)


def _put_rows(xp, a, rows, values):
    """``a`` with ``a[rows] = values`` (in place on NumPy; ``rows`` ascending)."""
    if not len(rows):
        return a
    if isinstance(a, np.ndarray):
        a[rows] = values
        return a
    mask = np.zeros(int(a.shape[0]), dtype=bool)
    mask[rows] = True
    pos = np.cumsum(mask) - 1
    full = _take(xp, values, np.where(mask, pos, 0))
    return xp.where(_like(mask, xp)[:, None], full, a)


def _with_orbits(F, xp, pts, res):
    """The points with their orbits ``F(x), ..., F^{p-1}(x)`` (each solves ``F^p = x``
    too, and the docs promise each point of an orbit): the images stand in with their
    point's residual until the polish takes theirs."""
    imgs, y = [pts], pts
    for _ in range(F.p - 1):
        y = F.map.step(y, F._u(y))
        if F.torus is not None:
            y = F.torus.reduce(y)
        imgs.append(y)
    y = xp.concat(imgs, axis=0)
    ok = np.flatnonzero(to_numpy(xp.all(xp.isfinite(y), axis=1)))
    return _take(xp, y, ok), np.tile(res, F.p)[ok]
