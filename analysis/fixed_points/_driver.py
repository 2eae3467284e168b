"""Fixed points, periodic orbits and their stability, by batched damped Newton.

FixedPointFinder (Golub and Sussillo 2018) minimizes ``q(x) = 1/2 ||F(x) - x||^2``
with Adam for thousands of iterations. Here every start runs one damped
Newton iteration on ``G(x) = F^p(x) - x`` together with all the others
(one batched linear solve per iteration on the map's backend): near a
point, Newton converges quadratically, so a start there reaches machine
precision in a handful of steps. Converged starts leave the active set at
once, and starts that come within ``unique_tol`` of a point already found
(or of each other) are merged while they run.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from array_api_compat import is_numpy_namespace

import itermap
from itermap._threads import blas_limited
from itermap._types import Array
from itermap.backends import backend_of, namespace, to_backend, to_numpy

from ._checks import check_bool, check_memory, check_real_array, no_half, one_namespace, plain_array
from ._checks import check_int as _check_int
from ._lapack_threads import (
    batched_eigvals,
    batched_solve,
    blas_single_threaded,
    damped_normal_solve,
)

__all__ = ["FixedPoints", "METHODS", "STATUS", "find_fixed_points", "sample_states"]

#: The search's methods (``find_fixed_points(method=...)``): name -> what it runs.
METHODS = {
    "auto": "'newton' up to dim 4096 (and on any backend but NumPy), 'newton-krylov' beyond",
    "newton": "batched damped Newton on dense Jacobians: L-BFGS on q, Newton with line "
              "search and Levenberg-Marquardt, then wandering from the stalled starts",
    "newton-krylov": "matrix-free Newton-Krylov (NumPy): GMRES on map.tangent, ILU "
                     "preconditioned for small sparse networks, each start deflated by "
                     "the points found before it",
    "q": "Sussillo and Barak: batched L-BFGS on q, slow points kept, minima near zero "
         "polished by Newton",
}

#: What became of each start (``FixedPoints.status`` holds the index into this tuple).
STATUS = ("converged", "slow point", "gave up: max_iter reached",
          "gave up: stalled (patience spent)", "gave up: non-finite residual")
CONVERGED, SLOW_POINT, GAVE_UP_MAX_ITER, GAVE_UP_STALLED, GAVE_UP_NONFINITE = range(5)
_RUNNING = -1

# Armijo constant and the step lengths tried (all at once, in one batched evaluation;
# the one of least residual among those passing wins) before Levenberg-Marquardt
_ARMIJO = 1e-4
_ALPHAS = (1.0, 0.5, 0.25, 0.125)
# stationarity of q (||A^T G|| small relative to ||A|| ||G||) that marks a slow point
_SLOW_GRAD = 1e-9
_SLOW_GRAD_FAILED = 1e-6
# rows of the pairwise distance matrices computed at once
_CHUNK = 2048
# running starts are compared with each other (for merging) once their residual is below
_CLOSING = 1e-2
# coarse merging: running starts closer than rho_k follow one representative, where
# rho_k = max(unique_tol, min(_MERGE_FRAC * scale, median residual of the rows compared))
# and scale is the mean norm of the starts; rows are compared once their residual is
# below _MERGE_CLOSING * scale
_MERGE_FRAC = 1e-2
_MERGE_CLOSING = 4e-2
# early merging of running starts, whatever their residual: two starts within
# _CONVERGE_FRAC * scale whose distance shrank by the factor _CONVERGE at each of the last
# two iterations are being drawn together, and follow one representative from then on
_CONVERGE_FRAC = 0.1
_CONVERGE = 0.5
# a start's candidate partners: its nearest few running starts (all-pairs distances
# up to _DENSE_ROWS starts, a k-d tree beyond where dim <= _KDTREE_DIM)
_PARTNERS = 16
_DENSE_ROWS = 4096
_KDTREE_DIM = 16
# a start whose residual has not fallen by the factor _STALL_DROP within _STALL_ITERS
# iterations takes an undamped Newton step (_ESCAPES times at most), then is given up
# (counted unconverged); neither happens when slow points are asked for
_STALL_ITERS = 6
_STALL_DROP = 0.5
_ESCAPES = 1
# a stalled start then wanders: undamped Newton steps cut to this fraction of the starts'
# map's range, accepted whatever the residual, for ``patience`` iterations
_WANDER_STEP = 0.6
# ... and all wandering ends once no start has reached a point for twice as many
# iterations as it took to reach the last one, clipped to [_WANDER_IDLE_MIN, _WANDER_IDLE].
# At gain 3 the first point is reached after 30-150 wandering iterations: counting idle
# iterations from 0 ended the wandering of every start before any found one (0-2 %)
_WANDER_IDLE = 300
_WANDER_IDLE_MIN = 30
# ... or, before any wandering start has reached a point, after _WANDER_FIRST iterations
_WANDER_FIRST = 150
# bytes of dense Jacobians (times 4 for the work arrays) that one batch may hold
_MEM_BUDGET = 2 ** 30


@itermap.saveable
@dataclass
class FixedPoints:
    """Fixed points (or period-p points) of a map and their linear stability.

    Attributes
    ----------
    points : array of shape (m, dim)
        The distinct points ``x`` with ``F^p(x) = x`` (``p = period``).
    residuals : array of shape (m,)
        ``||F^p(x) - x||_2`` at each point (Euclidean norm), all ``<= tol``.
    jacobians : array of shape (m, dim, dim)
        ``D(F^p)(x)``: the product of the map's Jacobians along the orbit.
    eigenvalues : complex array of shape (m, dim)
        Eigenvalues of ``jacobians`` (the orbit's multipliers), sorted by
        modulus, largest first.
    stable : bool array of shape (m,)
        True where every eigenvalue has modulus < 1.
    n_unstable : int array of shape (m,)
        The number of eigenvalues of modulus > 1 (unstable directions).
    n_unconverged : int
        How many starts reached neither a point with residual <= tol nor
        (when asked for) a slow point: the starts given up, for any reason.
    period : int
        The ``p`` searched for.
    orbit : int array of shape (m,)
        An orbit label: points of the same periodic orbit share it (all
        labels are distinct for ``period=1``).
    min_period : int array of shape (m,)
        The least ``k`` (a divisor of ``period``) with ``F^k(x) = x`` within
        ``unique_tol``: a search for period 2 also finds the fixed points.
    n_starts : int
        The number of starts.
    slow_points, slow_residuals, slow_eigenvalues : arrays or None
        With ``slow_points=True``: local minima of ``q`` that are not zeros
        (``(k, dim)``), ``||F^p(x) - x||`` there (``(k,)``, all > tol) and the
        eigenvalues of ``D(F^p)`` there (``(k, dim)``). None otherwise.
    status : int8 array of shape (n_starts,) or None
        What became of each start, an index into :data:`STATUS`: 0 converged
        (to a point, or merged into a start that did), 1 slow point, 2 gave
        up at ``max_iter``, 3 gave up stalled (after its ``patience``), 4
        gave up on a non-finite residual.
    slow_q : array of shape (k,) or None
        ``q = 1/2 ||F^p(x) - x||^2`` at the slow points.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import find_fixed_points
    >>> fp = find_fixed_points(itermap.IterativeMap(np.array([[2.0]])),
    ...                        np.linspace(-1, 1, 9)[:, None])
    >>> len(fp), np.sort(np.round(fp.points[:, 0], 4)), fp.n_unstable.tolist()
    (3, array([-0.9575,  0.    ,  0.9575]), ...)
    """

    # what load checks in a file (itermap/_schema.py)
    _schema: ClassVar[dict[str, str]] = {
        "points": "float[M, D]",
        "residuals": "float[M]",
        "jacobians": "float[M, D, D] | None",
        "eigenvalues": "complex[M, *]",
        "stable": "bool[M]",
        "n_unstable": "int[M]",
        "n_unconverged": "int",
        "period": "int",
        "orbit": "int[M] | None",
        "min_period": "int[M] | None",
        "n_starts": "int",
        "slow_points": "float[S, D] | None",
        "slow_residuals": "float[S] | None",
        "slow_eigenvalues": "complex[S, *] | None",
        "status": "int[N] | None",
        "slow_q": "float[S] | None",
    }

    points: Array
    residuals: Array
    jacobians: Array
    eigenvalues: Array
    stable: Array
    n_unstable: Array
    n_unconverged: int
    period: int = 1
    orbit: Array | None = None
    min_period: Array | None = None
    n_starts: int = 0
    slow_points: Array | None = None
    slow_residuals: Array | None = None
    slow_eigenvalues: Array | None = None
    status: Array | None = None
    slow_q: Array | None = None

    @property
    def n_converged(self) -> int:
        """Starts that ended at a point (status 0)."""
        return 0 if self.status is None else int(np.sum(np.asarray(self.status) == CONVERGED))

    @property
    def n_slow(self) -> int:
        """Starts that ended at a slow point (status 1)."""
        return 0 if self.status is None else int(np.sum(np.asarray(self.status) == SLOW_POINT))

    def status_counts(self) -> dict:
        """``{reason: number of starts}`` over :data:`STATUS` (zeros included)."""
        st = np.zeros(0, dtype=np.int8) if self.status is None else np.asarray(self.status)
        return {name: int(np.sum(st == k)) for k, name in enumerate(STATUS)}

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __repr__(self) -> str:
        n_stable = int(np.sum(to_numpy(self.stable))) if len(self) else 0
        slow = "" if self.slow_points is None else f", slow={int(self.slow_points.shape[0])}"
        return (f"FixedPoints(period={self.period}, found={len(self)}, stable={n_stable}, "
                f"unconverged={self.n_unconverged}/{self.n_starts}{slow})")


# L-BFGS iterations on q before the Newton search, ended early where ||G|| <= _Q_SWITCH
_Q_STEPS = 30
_Q_SWITCH = 1e-3


# -- input checks ---------------------------------------------------------------------
def _check_positive(name, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def _check_starts(map_, x0):
    if x0 is None or isinstance(x0, (str, bytes)):
        raise TypeError(f"starts x0 must be an array of shape (B, {map_.dim}), got {x0!r}")
    x0 = no_half("x0", plain_array("x0", x0))
    one_namespace(map=map_, x0=x0, movable=True)
    if not hasattr(x0, "shape") or not hasattr(x0, "dtype"):
        x0 = np.asarray(x0)
    xp = namespace(x0)
    if x0.ndim == 1:
        x0 = xp.reshape(x0, (1, -1))
    if x0.ndim != 2 or x0.shape[1] != map_.dim:
        raise ValueError(f"starts x0 must have shape (B, {map_.dim}) for a map of dim "
                         f"{map_.dim}, got shape {tuple(x0.shape)}")
    if x0.shape[0] == 0:
        raise ValueError("starts x0 is empty: give at least one start")
    if not xp.isdtype(x0.dtype, "real floating"):
        raise TypeError(f"starts x0 must be real floating point, got dtype {x0.dtype}")
    if not bool(xp.all(xp.isfinite(x0))):
        raise ValueError("starts x0 contain NaN or inf")
    # host starts go to a CuPy map's device; device starts stay there, since maps that
    # follow their inputs (Henon, logistic, FunctionMap, ...) report backend "numpy"
    if map_.backend == "cupy" and backend_of(x0) == "numpy":
        x0 = to_backend(x0, "cupy")
        xp = namespace(x0)
    if map_.dtype is not None and x0.dtype != map_.dtype:
        x0 = xp.astype(x0, map_.dtype)
    return x0, xp


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
        inputs = np.asarray(inputs, dtype=float)
    if tuple(inputs.shape) != (map_.input_size,):
        raise ValueError(f"inputs must be one constant input of shape ({map_.input_size},), "
                         f"got shape {tuple(inputs.shape)}")
    if backend_of(inputs) != backend_of(xp.zeros(1)):
        inputs = _like(to_numpy(inputs), xp)
    ixp = namespace(inputs)
    if not ixp.isdtype(inputs.dtype, ("real floating", "integral")):
        raise TypeError(f"inputs must be real, got dtype {inputs.dtype}")
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
        self.xp = xp
        self.mask = xp.asarray(mask)
        self.per = xp.asarray(np.array([P or 1.0 for P in periods]), dtype=dtype)

    def reduce(self, x):
        """``x`` onto ``[0, P)``: the map is evaluated there, wherever Newton's iterates go."""
        xp = self.xp
        return xp.where(self.mask, x - self.per * xp.floor(x / self.per), x)

    def nearest(self, y, x):
        """``y`` shifted by whole periods to the image nearest ``x``: ``y - x`` is the residual."""
        d = y - x
        return y - self.xp.where(self.mask, self.per * self.xp.round(d / self.per), 0.0)

    def canonical(self, x, tol):
        """``x`` onto ``[0, P)``, within ``tol`` below ``P`` to just below 0: one representative."""
        r = self.reduce(x)
        return self.xp.where(self.mask & (r > self.per - tol), r - self.per, r)


def _torus(map_, x):
    return None if map_.periods is None else _Torus(map_.periods, namespace(x), x.dtype)


# -- the map raised to the period ---------------------------------------------------------
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
        J = self.map.jacobian(c, u)
        y = self.map.step(c, u)
        for _ in range(self.p - 1):
            y, J = self.map.step_with_tangent(y, J, u)
        return self._image(x, y, c), J

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


def _solve(xp, A, b):
    """Batched ``A^{-1} b`` for b of shape (k, n); NaN rows where A is singular."""
    try:
        if isinstance(A, np.ndarray):
            return batched_solve(A, b)
        return xp.linalg.solve(A, b[..., None])[..., 0]
    except Exception:  # numpy raises on any singular matrix: retry one by one
        out = []
        for i in range(A.shape[0]):
            try:
                out.append(xp.linalg.solve(A[i, ...], b[i, :][:, None])[:, 0])
            except Exception:
                out.append(xp.full((A.shape[1],), float("nan"), dtype=b.dtype))
        return xp.stack(out)


def _damped_solve(xp, A, lam, b, eye):
    """Batched ``(A^T A + lam I)^{-1} b`` (the Levenberg-Marquardt step); NaN rows where
    singular. On NumPy the products ``A^T A`` are formed in the solve threads."""
    if isinstance(A, np.ndarray):
        try:
            return damped_normal_solve(A, lam, b)
        except np.linalg.LinAlgError:
            pass
    AtA = xp.matmul(xp.permute_dims(A, (0, 2, 1)), A)
    lam_d = xp.astype(_like(np.asarray(lam, dtype=np.float64), xp), A.dtype)
    return _solve(xp, AtA + lam_d[:, None, None] * eye, b)


# -- merging points closer than a tolerance ------------------------------------------------
def _sq_dist(xp, a, b):
    """Squared Euclidean distances (len(a), len(b)) through one matmul."""
    d2 = (xp.sum(a * a, axis=1)[:, None] + xp.sum(b * b, axis=1)[None, :]
          - 2.0 * xp.matmul(a, b.T))
    if isinstance(d2, np.ndarray):            # skip the array-API wrapper of clip
        return np.maximum(d2, 0.0, out=d2)
    return xp.clip(d2, 0.0, None) if hasattr(xp, "clip") else xp.maximum(d2, 0.0)


def _nearest_within(xp, a, b, tol):
    """For each row of ``a``: the index of the nearest row of ``b`` within ``tol``, or -1."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.full(a.shape[0], -1, dtype=np.int64)
    center = xp.mean(b, axis=0)
    a, b = a - center, b - center
    out = []
    n_rows = a.shape[0]
    for s in range(0, n_rows, _CHUNK):
        d2 = _sq_dist(xp, a[s:min(s + _CHUNK, n_rows), :], b)
        j = to_numpy(xp.argmin(d2, axis=1)).astype(np.int64)
        dmin = to_numpy(xp.min(d2, axis=1))
        out.append(np.where(dmin <= tol * tol, j, -1))
    return np.concatenate(out)


def _cluster(xp, x, tol):
    """Leaders of groups of rows within ``tol``: returns (leader of each row, leader rows).

    Leaders are rows with no earlier row within ``tol``; the others join the
    nearest leader within ``tol``; rows left over (only chains lead there)
    repeat the procedure. Leaders end up more than ``tol`` apart.
    """
    n = x.shape[0]
    leader = np.full(n, -1, dtype=np.int64)
    rest = np.arange(n)
    leaders = np.zeros(0, dtype=np.int64)
    center = xp.mean(x, axis=0) if n else None
    while rest.size:
        xr = _take(xp, x, rest) - center
        first = np.empty(rest.size, dtype=np.int64)
        n_rows = rest.size
        for s in range(0, n_rows, _CHUNK):
            close = _sq_dist(xp, xr[s:min(s + _CHUNK, n_rows), :], xr) <= tol * tol
            first[s:s + _CHUNK] = to_numpy(xp.argmax(xp.astype(close, xp.int8), axis=1))
        new = rest[first == np.arange(rest.size)]
        leader[new] = new
        leaders = np.concatenate([leaders, new])
        others = rest[first != np.arange(rest.size)]
        if others.size:
            near = _nearest_within(xp, _take(xp, x, others), _take(xp, x, new), tol)
            joined = near >= 0
            leader[others[joined]] = new[near[joined]]
            others = others[~joined]
        rest = others
    return leader, leaders


def _least_in_groups(lead, res):
    """Per group (rows sharing ``lead``): the row of least residual.

    Returns (the chosen rows in increasing order, the chosen row of each row's group).
    """
    order = np.lexsort((res, lead))
    sl = lead[order]
    first = np.concatenate([[True], sl[1:] != sl[:-1]])
    chosen = order[first]
    groups = sl[first]
    rep = chosen[np.searchsorted(groups, lead)]
    return np.sort(chosen), rep


def _near_pairs(xp, x, radius):
    """Directed pairs (i, j): j among the ``_PARTNERS`` nearest other rows of i within ``radius``.

    Dense distances (one matmul per chunk of rows) up to ``_DENSE_ROWS`` rows; a
    k-d tree on the host beyond, where ``dim <= _KDTREE_DIM``; none otherwise
    (the all-pairs cost would outgrow the Newton step's).
    """
    n, dim = int(x.shape[0]), int(x.shape[1])
    k = min(_PARTNERS, n - 1)
    if k < 1:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if n <= _DENSE_ROWS:
        xc = x - xp.mean(x, axis=0)
        ii, jj = [], []
        for s in range(0, n, _CHUNK):
            d2 = np.array(to_numpy(_sq_dist(xp, xc[s:min(s + _CHUNK, n), :], xc)),
                          dtype=np.float64)
            rows = np.arange(d2.shape[0])
            d2[rows, rows + s] = np.inf
            near = (np.argpartition(d2, k - 1, axis=1)[:, :k] if k < n - 1
                    else np.argsort(d2, axis=1)[:, :k])
            within = np.take_along_axis(d2, near, axis=1) <= radius * radius
            ii.append(np.repeat(rows + s, k)[within.ravel()])
            jj.append(near[within])
        return np.concatenate(ii), np.concatenate(jj)
    if dim > _KDTREE_DIM:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    from scipy.spatial import cKDTree

    pts = np.asarray(to_numpy(x), dtype=np.float64)
    dist, near = cKDTree(pts).query(pts, k=k + 1, distance_upper_bound=np.nextafter(
        radius, np.inf))
    rows = np.repeat(np.arange(n)[:, None], k + 1, axis=1)
    valid = (near < n) & (near != rows)
    valid &= np.cumsum(valid, axis=1) <= k        # self missing among duplicates: k others
    return rows[valid], near[valid]


def _drawn_together(xp, x, prev1, prev2, res, radius):
    """Per row: the row it follows (itself if none): the least residual among its partners.

    Partners are near rows (see :func:`_near_pairs`, either way round) within
    ``radius`` whose distance shrank by the factor ``_CONVERGE`` at each of the
    last two iterations (``prev1`` and ``prev2`` are the rows one and two
    iterations back). Chains resolve through the caller's ``follows`` (each
    row follows one of lower residual).
    """
    n = x.shape[0]
    lead = np.arange(n)
    ii, jj = _near_pairs(xp, x, radius)
    if ii.size == 0:
        return lead

    def sq_dists(a):
        d = _take(xp, a, ii) - _take(xp, a, jj)
        return to_numpy(xp.sum(d * d, axis=1)).astype(np.float64)

    d0, d1, d2 = sq_dists(x), sq_dists(prev1), sq_dists(prev2)
    k2 = _CONVERGE * _CONVERGE
    pair = (d0 <= radius * radius) & (d0 <= k2 * d1) & (d1 <= k2 * d2)
    ii, jj = ii[pair], jj[pair]
    if ii.size == 0:
        return lead
    # each row follows the partner of least residual (ties: lower index), or itself
    rows = np.concatenate([ii, jj, np.arange(n)])
    cand = np.concatenate([jj, ii, np.arange(n)])
    order = np.lexsort((cand, res[cand], rows))
    rows, cand = rows[order], cand[order]
    first = np.concatenate([[True], rows[1:] != rows[:-1]])
    lead[rows[first]] = cand[first]
    return lead


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
        Jh = to_numpy(J)
        with blas_single_threaded(Jh.shape[0], Jh.shape[-1]):
            ev = batched_eigvals(Jh)
    ev = np.asarray(ev, dtype=np.complex128)
    # modulus descending; ties (conjugate pairs) by real part, then imaginary part
    order = np.lexsort((ev.imag, -ev.real, -np.round(np.abs(ev), 12)), axis=-1)
    return np.take_along_axis(ev, order, axis=-1)


def _stability(ev):
    mod = np.abs(ev)
    return np.all(mod < 1.0, axis=-1), np.sum(mod > 1.0, axis=-1).astype(np.int64)


# -- the solver ------------------------------------------------------------------------
def find_fixed_points(map, x0, *, inputs=None, period=1, tol=1e-10, max_iter=600,
                      unique_tol=1e-6, slow_points=False, method="auto", patience=1000,
                      q_steps=_Q_STEPS, progress=None) -> FixedPoints:
    """Fixed points (or points of period ``p``) of a map, with their stability.

    The search has three phases, all starts advancing together. (1) ``q_steps``
    batched L-BFGS steps on ``q = 1/2 ||G||^2`` bring the starts nearer points
    (cheap: one ``vjp`` per step, no Jacobian). (2) Every start runs a damped
    Newton iteration on ``G(x) = F^p(x) - x``, one batched linear solve per
    iteration on the map's backend. The Newton step and its halves, quarters and eighths are
    evaluated in one batch and the one of least ``||G||`` among those that
    lower it enough (Armijo) is taken; where none does, or where
    ``A = D(F^p) - I`` is singular, a Levenberg-Marquardt step
    ``(A^T A + lam I) dx = -A^T G`` is taken, with a damping ``lam`` kept
    per start (divided by 3 after a step that lowers ``||G||``, times 4
    after one that does not). Starts with residual
    ``<= tol`` leave the active set, and running starts that come within
    a radius ``rho_k`` of a point already found, or of each other, are
    merged into it: they follow one representative, and count as converged
    or not by its fate. The radius is coarse early and shrinks with the
    residuals: ``rho_k = max(unique_tol, min(0.01 s, median ||G||))`` over the
    running starts with ``||G|| <= max(0.01, 0.04 s)``, where ``s`` is the mean
    norm of the starts (a heuristic: two starts that close almost always
    head to the same point; a point reached only by merged starts would be
    missed). Running starts are also merged earlier, at any residual, once
    they are being drawn together: two starts within ``0.1 s`` of each other
    whose distance halved (at least) in each of the last two iterations
    follow the one of lower residual. Unless ``slow_points`` is asked for, a
    start whose residual has not halved within 6 iterations takes one
    undamped Newton step (to leave the flat valley of ``q`` it sits in), and
    when it stalls again it is given up and counted in ``n_unconverged``
    (other starts usually find the same points faster). A last Newton step on
    the distinct points takes their residuals to rounding level, after which
    they are merged once more. (3) The starts that stalled in (2) (and those
    merged into them, each from its own start) *wander*: undamped Newton
    steps cut to 0.6 times the mean max-norm of ``F(x0)`` (the map's range),
    accepted whatever they do to ``||G||``, which leaves the valleys of
    ``q`` where damped methods end (in a random network of gain 2 they are
    many more than the points). A start is given up only after ``patience``
    wandering iterations, or when no wandering start has reached a point
    for twice as many iterations as it took to reach the last one (at least
    30, at most 300; 150 before the first point is reached). Every start
    ends with a ``status``: converged, slow point, or gave up (and why).

    Which to use when (the names are the keys of :data:`METHODS`):
    ``method="newton"`` finds fixed points, stable and unstable, to ``tol``;
    it is the one for counting points or for their linearizations, up to a
    few thousand units. ``method="newton-krylov"`` is for large maps: no
    ``dim x dim`` array is formed (memory O(nnz + dim m) for ``m`` Krylov
    vectors; see Notes). ``method="auto"`` (the default) takes the rule:
    ``"newton-krylov"`` when ``dim > 4096`` and the map is on NumPy,
    ``"newton"`` otherwise. ``method="q"`` (or ``slow_points=True``) is
    Sussillo and Barak's method: batched L-BFGS on ``q`` from every start
    (``max_iter`` steps at most), the minima near zero polished by Newton
    into fixed points, the others returned as slow points with their
    ``q``, speeds and eigenvalues; use it where the slow regions of the
    dynamics matter (a trained RNN's line attractors and ghosts). Its q
    minima are found to ``||grad q|| <= 1e-9 max(||G||, tol)``.

    Parameters
    ----------
    map : itermap.Map
        Any map of the protocol (``step``, ``jacobian``, ``step_with_tangent``).
    x0 : array of shape (B, dim)
        Starts, real floating point, on the map's backend (NumPy starts are
        moved to a CuPy map's device). :func:`sample_states` draws them.
    inputs : array of shape (n_in,), optional
        The constant input of a driven map (one with an ``input_block``):
        the points found are fixed points of ``x -> F(x, u)``, and hold ``u``
        in their input block.
    period : int, default 1
        Find the solutions of ``F^p(x) = x``: the points of periodic orbits
        whose period divides ``p``. Each point of an orbit is returned, with
        an ``orbit`` label shared by the points of one orbit and its least
        period in ``min_period``.
    tol : float, default 1e-10
        Convergence threshold on the residual ``||F^p(x) - x||_2`` (the
        Euclidean norm); only points with residual ``<= tol`` are returned.
    max_iter : int, default 600
        Newton iterations at most in phase (2) (and in (3), with
        ``patience``); L-BFGS steps at most with ``method="q"``; Newton-Krylov
        steps per start with ``method="newton-krylov"``.
    unique_tol : float, default 1e-6
        Points closer than this (Euclidean distance) are one point; the
        one with the least residual represents the group.
    slow_points : bool, default False
        Also return the local minima of ``q = 1/2 ||F^p(x) - x||^2`` that are
        not zeros (slow points, Sussillo and Barak 2013); implies
        ``method="q"``.
    method : {"auto", "newton", "newton-krylov", "q"}, default "auto"
        See above and :data:`METHODS`: the three-phase dense Newton search,
        matrix-free Newton-Krylov, or L-BFGS on ``q`` (the gradient
        ``(J - I)^T G`` through the map's ``vjp``) then Newton; ``"auto"``
        picks ``"newton-krylov"`` past ``dim = 4096`` on NumPy, else ``"newton"``.
    patience : int, default 1000
        Wandering iterations a stalled start may take before it is given up
        (phase (3) runs ``max(max_iter, patience)`` iterations at most); 0
        gives stalled starts up at once (the fastest, the least thorough). In
        a random tanh network of gain 3 a wandering start reaches a point at a
        rate of about 1e-3 per iteration, so ``patience`` sets the converged
        fraction there (about 35 % at 500, 75 % at 1200 for N = 200).
    q_steps : int, default 30
        L-BFGS steps on ``q`` before Newton (phase 1); 0 skips the phase.
    progress : bool or None, default None
        A tqdm bar over the starts finished (converged, slow point, or given
        up for good), left on screen with its final count: None shows it once
        the search has run 2 s, True at once, False never.

    Returns
    -------
    FixedPoints
        ``points``, ``residuals``, ``jacobians``, ``eigenvalues`` (by modulus,
        descending), ``stable``, ``n_unstable``, ``n_unconverged``, ``orbit``,
        ``min_period``, ``status`` (per start) and, if asked for, the slow
        points with ``slow_q``. Arrays stay in the
        namespace of ``x0``, except ``eigenvalues``, ``stable`` and
        ``n_unstable`` which are NumPy arrays (computed on the host unless
        CuPy has ``linalg.eig``).

    Raises
    ------
    ValueError
        Starts of the wrong shape or with NaN, ``period < 1``, ``tol <= 0``,
        ``unique_tol <= 0``, ``max_iter < 1``, ``patience < 0``, ``q_steps < 0``, an
        unknown ``method``, or inputs that do not fit the map.
    TypeError
        Starts that are not real floating point.

    Notes
    -----
    Not converging is not an error: such starts are counted in
    ``n_unconverged``. The Jacobian of ``F^p`` is the product of the map's
    Jacobians along the orbit (computed with ``map.step_with_tangent``), so
    a period-``p`` search costs ``p`` times a fixed-point search per iteration.
    For a map on a torus (``map.periods``, the standard map's ``2 pi``) the
    equation is solved modulo the periods: the map is evaluated at the point
    reduced onto ``[0, P)`` and ``F^p(x) - x`` is taken to the nearest image, so
    orbits that close only modulo ``P`` are found; the points are reported on
    ``[0, P)`` (a coordinate within ``unique_tol`` below ``P`` just below 0).
    On NumPy the batched solves are split across CPU threads (LAPACK works
    on one small matrix at a time, outside the GIL), with BLAS held to one
    thread meanwhile through threadpoolctl.
    With ``method="newton-krylov"`` (the default past ``dim = 4096`` on
    NumPy) no dense Jacobian is formed: each start in turn runs Newton-Krylov
    (restarted GMRES with 100 vectors on ``map.tangent``, ILU-preconditioned
    on the weights' pattern for an itermap network with sparse weights of at
    most 20,000 nonzeros, unpreconditioned beyond, after ``q_steps`` L-BFGS
    steps on ``q``, with Armijo backtracking, and wandering where Newton
    stalls; no Levenberg-Marquardt), deflated (Farrell,
    Birkisson and Funke 2015) by the points the starts before it found, so
    that it converges to a new point rather than to one found already.
    ``jacobians`` is None and ``eigenvalues`` holds the 6 leading
    multipliers (ARPACK), so ``stable`` is exact and ``n_unstable`` counts
    among those 6. Its memory (GMRES basis, ILU factors, starts) is
    estimated first and the call refused with the estimate if the machine
    lacks it. With ``method="newton"`` the Newton systems are dense,
    ``dim x dim`` per running start, even for a sparse map: starts run in
    batches holding at most about 1 GiB of Jacobians (and its work arrays),
    the points found by the batches are merged, and a ``dim`` whose one
    dense system exceeds the machine's memory is refused up front.

    References
    ----------
    .. [1] D. Sussillo and O. Barak, "Opening the black box: low-dimensional
       dynamics in high-dimensional recurrent neural networks", Neural
       Computation 25(3), 2013.
    .. [2] M. D. Golub and D. Sussillo, "FixedPointFinder: a TensorFlow toolbox
       for identifying and characterizing fixed points in recurrent neural
       networks", JOSS 3(31), 2018.
    .. [3] D. A. Knoll and D. E. Keyes, "Jacobian-free Newton-Krylov methods: a
       survey of approaches and applications", J. Comput. Phys. 193, 2004.
    .. [4] P. E. Farrell, A. Birkisson and S. W. Funke, "Deflation techniques for
       finding distinct solutions of nonlinear partial differential equations",
       SIAM J. Sci. Comput. 37(4), 2015.

    Examples
    --------
    The map ``x -> tanh(2 x)`` has three fixed points: the unstable origin and
    two stable points ``+-0.9575``.

    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import find_fixed_points
    >>> m = itermap.IterativeMap(np.array([[2.0]]))
    >>> fp = find_fixed_points(m, np.linspace(-2, 2, 9)[:, None])
    >>> order = np.argsort(fp.points[:, 0])
    >>> np.round(fp.points[order, 0], 4)
    array([-0.9575,  0.    ,  0.9575])
    >>> fp.stable[order]
    array([ True, False,  True])
    >>> fp.n_unconverged
    0
    """
    # long: the argument checks, the chunked search and the final polish, read in order
    map = itermap.as_map(map)
    period = _check_int("period", period, 1)
    max_iter = _check_int("max_iter", max_iter, 1)
    patience = _check_int("patience", patience, 0)
    q_steps = _check_int("q_steps", q_steps, 0)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if progress not in (None, True, False):
        raise TypeError(f"progress must be None, True or False, got {progress!r}")
    tol = _check_positive("tol", tol)
    unique_tol = _check_positive("unique_tol", unique_tol)
    slow_points = check_bool("slow_points", slow_points)
    x, xp = _check_starts(map, x0)
    u = _check_inputs(map, inputs, xp)
    if u is not None:
        u = xp.astype(u, x.dtype)
    torus = _torus(map, x)
    F = _Power(map, period, u, xp, torus)
    n_starts, dim = int(x.shape[0]), int(x.shape[1])
    method = _choose_method(method, slow_points, dim, xp)
    if method == "newton-krylov":
        return _krylov_fixed_points(map, F, x, u, xp, tol=tol, max_iter=max_iter,
                                    unique_tol=unique_tol, progress=progress,
                                    q_steps=q_steps)
    itemsize = np.dtype(to_numpy(x[:1, :1]).dtype).itemsize
    # one start's Newton system and its work arrays, and the identity: refuse up front
    check_memory("method", 6.0 * dim * dim * itemsize,
                 f"method={method!r}: the dense {dim} x {dim} Newton systems (use "
                 f"method='newton-krylov', matrix-free)")
    eye = xp.eye(dim, dtype=x.dtype)
    # the dense Jacobians of the active rows bound the batch: run chunks of starts
    chunk = max(1, _MEM_BUDGET // (4 * dim * dim * itemsize))
    found_x, found_r, slow_x, slow_r, statuses = [], [], [], [], []
    # NumPy solves run in threads of their own, with BLAS held to one thread meanwhile
    blas_limit = (blas_single_threaded(min(chunk, n_starts), dim)
                  if isinstance(x, np.ndarray) else contextlib.nullcontext())
    use_q = slow_points or method == "q"
    slow_points = use_q
    merge_again = chunk < n_starts       # chunks (or the global phase) find points twice
    # a bar over the starts finished, shown once the search has run 2 s (progress=None)
    bar = _progress_bar(progress, n_starts, dim, n_starts)
    done = _Finished(bar)
    with blas_limit, bar:
        for s0 in range(0, n_starts, chunk):
            xc = x if chunk >= n_starts else x[s0:min(s0 + chunk, n_starts), :]
            # trial steps may overflow: they are rejected as non-finite, without warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                search = _q_search if use_q else _search
                # the global phase: a few L-BFGS steps on q bring the starts nearer points
                if q_steps and not use_q:
                    xc, _, _ = _lbfgs_q(F, xc, xp, tol=_Q_SWITCH, max_iter=q_steps)
                fx, fr, st, sx, sr = search(F, xc, xp, eye, tol=tol, max_iter=max_iter,
                                            unique_tol=unique_tol, slow_points=slow_points,
                                            patience=0, bar=done, stall_final=not patience)
                # the starts that stalled (and those merged into them) wander from where
                # the global phase left them, each on its own
                again: np.ndarray | list[int] = (np.flatnonzero(st == GAVE_UP_STALLED) if patience
                                                 else [])
                done.commit(len(st) - len(again))
                if len(again):
                    fx2, fr2, st[again], _, _ = _search(
                        F, _take(xp, xc, again), xp, eye, tol=tol,
                        max_iter=max(max_iter, patience), unique_tol=unique_tol,
                        slow_points=False, patience=patience, bar=done, wander=True)
                    fx, fr = fx + fx2, fr + fr2
                    merge_again = True
                    done.commit(len(again))
            found_x += fx
            found_r += fr
            slow_x += sx
            slow_r += sr
            statuses.append(st)
    status = np.concatenate(statuses).astype(np.int8)
    n_unconverged = int(np.sum(status >= GAVE_UP_MAX_ITER))

    # the distinct points, their Jacobians and stability
    if found_x:
        pts = xp.concat(found_x, axis=0)
        res = np.concatenate(found_r)
        if torus is not None:  # one representative of each point on the torus; its residual
            # anew: iterates that wandered far off lose the residual's digits in x + G - x
            pts, merge_again = torus.canonical(pts, unique_tol), True
            res = to_numpy(_norm(xp, F.value(pts) - pts)).astype(np.float64)
        if merge_again:
            lead, _ = _cluster(xp, pts, unique_tol)
            keep_rows, _ = _least_in_groups(lead, res)
            pts, res = _take(xp, pts, keep_rows), res[keep_rows]
    else:
        pts = xp.zeros((0, dim), dtype=x.dtype)
        res = np.zeros(0)
    # outside the search's BLAS limit: the polish's split solves get one of their own
    polish_limit = (blas_single_threaded(int(pts.shape[0]), dim)
                    if isinstance(x, np.ndarray) else contextlib.nullcontext())
    with polish_limit:
        pts, res, jac = _polish(F, xp, eye, pts, res, unique_tol)
    if torus is not None:  # the polish may bring two representatives together
        pts = torus.canonical(pts, unique_tol)
        lead, heads = _cluster(xp, pts, unique_tol)
        if heads.size < int(pts.shape[0]):
            keep_rows, _ = _least_in_groups(lead, res)
            pts, res, jac = _take(xp, pts, keep_rows), res[keep_rows], _take(xp, jac, keep_rows)
    ev = _eigenvalues(xp, jac)
    stable, n_unstable = _stability(ev)
    orbit, min_period = _orbits(map, u, xp, pts, period, unique_tol)

    slow_fields = {}
    if slow_points:
        if slow_x:
            sx = xp.concat(slow_x, axis=0)
            sr = np.concatenate(slow_r)
            lead, _ = _cluster(xp, sx, unique_tol)
            heads = np.unique(lead)
            sx, sr = _take(xp, sx, heads), sr[heads]
            _, sj = F.jacobian(sx)
            sev = _eigenvalues(xp, sj)
        else:
            sx, sr = xp.zeros((0, dim), dtype=x.dtype), np.zeros(0)
            sev = np.zeros((0, dim), dtype=np.complex128)
        slow_fields = {"slow_points": sx, "slow_residuals": _like(sr, xp),
                       "slow_eigenvalues": sev, "slow_q": _like(0.5 * sr * sr, xp)}
    return FixedPoints(points=pts, residuals=xp.astype(_like(res, xp), x.dtype),
                       jacobians=jac, eigenvalues=ev, stable=stable, n_unstable=n_unstable,
                       n_unconverged=n_unconverged, period=period, orbit=orbit,
                       min_period=min_period, n_starts=n_starts, status=status,
                       **slow_fields)


def _resolved(xp, x, tol):
    """Rows whose residual can be told from rounding: floats near ``x`` must be closer
    than ``tol``. A Newton run that escapes to ``|x| ~ 1e20`` (a map with no fixed point,
    such as a pre-LN looped transformer, whose state grows every step) finds
    ``F(x) - x`` rounded to exactly 0 there: no point, however small its residual."""
    big = np.max(np.abs(to_numpy(x)), axis=-1).astype(np.float64)
    return big * np.finfo(to_numpy(x[:1, :1]).dtype).eps * 4 <= tol


def _polish(F, xp, eye, pts, res, unique_tol):
    """One last Newton step on the distinct points (to machine precision), merged again.

    Returns (points, residuals, Jacobians of ``F^p`` there).
    """
    m = int(pts.shape[0])
    if m == 0:
        return pts, res, xp.zeros((0, pts.shape[1], pts.shape[1]), dtype=pts.dtype)
    Pp, jac = F.jacobian(pts)
    d = _solve(xp, _minus_eye(xp, jac, eye), pts - Pp)
    cand = pts + xp.where(xp.isfinite(d), d, xp.zeros_like(d))
    rc = to_numpy(_norm(xp, F.value(cand) - cand)).astype(np.float64)
    better = np.isfinite(rc) & (rc < res)
    if better.any():
        pts = xp.where(_like(better, xp)[:, None], cand, pts)
        res = np.where(better, rc, res)
        # near-singular points can come together only now: merge them again
        lead, heads = _cluster(xp, pts, unique_tol)
        if heads.size < m:
            keep_rows, _ = _least_in_groups(lead, res)
            pts, res = _take(xp, pts, keep_rows), res[keep_rows]
    _, jac = F.jacobian(pts)
    return pts, res, jac


def _followers(follows, fate, roots, active):
    """Starts not running (not in ``active``) whose chain of ``follows`` ends in ``roots``."""
    root = follows.copy()
    for _ in range(64):
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    idle = np.ones(follows.size, dtype=bool)
    idle[active] = False
    idle[roots] = False
    return np.flatnonzero(idle & np.isin(root, roots) & (fate == _RUNNING))


def _progress_bar(progress, total, dim, n_starts):
    """A tqdm bar over the starts finished (a no-op one when progress=False); it stays
    on screen with its final count."""
    if progress is False:
        # plain tqdm: importing tqdm.auto warns in a kernel without ipywidgets
        from tqdm import tqdm as disabled
        return disabled(total=total, disable=True)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"fixed points (dim {dim}, {n_starts} starts)",
                unit="start", leave=True, delay=0.0 if progress else 2.0)


class _Finished:
    """Counts the starts finished (converged, slow point or gave up for good) on a bar.

    ``base`` starts are finished by the phases before; :meth:`show` sets how many of
    the running phase's starts are, and the bar only moves forward.
    """

    def __init__(self, bar):
        self.bar, self.base = bar, 0

    def show(self, n_phase, **postfix):
        target = min(self.base + int(n_phase), int(self.bar.total or 0))
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        if postfix:
            self.bar.set_postfix(refresh=False, **postfix)

    def commit(self, n_phase):
        self.base += int(n_phase)
        self.show(0)


def _n_finished(follows, fate, stall_final):
    """Starts whose fate is final: their own, or that of the start they follow."""
    root = follows
    for _ in range(64):
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    f = fate[root]
    done = (f == CONVERGED) | (f == SLOW_POINT) | (f == GAVE_UP_NONFINITE)
    if stall_final:
        done |= f == GAVE_UP_STALLED
    return int(np.sum(done))


def _search(F, x, xp, eye, *, tol, max_iter, unique_tol, slow_points, scale=None,
            patience=0, bar=None, wander=False, stall_final=True):
    """The batched damped Newton iteration over the starts ``x``.

    ``bar`` (a :class:`_Finished`) is shown the starts whose fate is final; a start
    given up stalled counts as final only with ``stall_final`` (else it wanders next).

    Returns (converged points, their residuals, the status of each start (see
    :data:`STATUS`), slow points, their residuals), the points as lists of
    device arrays.
    """
    # long: one batched loop whose phases (L-BFGS, damped Newton, wandering) share the
    # per-start bookkeeping (status, histories, merging); pieces would pass a dozen arrays
    n_starts = int(x.shape[0])
    # bookkeeping on the host: which start each active row is, and whom merged starts follow
    ids = np.arange(n_starts)
    follows = np.arange(n_starts)          # a merged start follows another start's fate
    fate = np.full(n_starts, _RUNNING, dtype=np.int8)  # codes of STATUS; -1 running
    # the iteration a start began wandering (-1: not yet)
    wander_from = np.full(n_starts, 0 if wander else -1, dtype=np.int64)
    # starts that followed a wanderer set out again from x_start
    x_start, revive, last_found = x, [], 0
    found_x, found_r, found_ids = [], [], []  # converged points, grouped leaders only
    slow_x, slow_r = [], []
    lam = np.zeros(n_starts)               # Levenberg-Marquardt damping per start
    lm_mode = np.zeros(n_starts, dtype=bool)  # lam initialized
    lm_failed = np.zeros(n_starts, dtype=bool)

    Px = F.value(x)
    G = Px - x
    r_h = to_numpy(_norm(xp, G)).astype(np.float64)
    # the wandering step's scale: the mean max-norm of the images of the starts (the
    # map's range, for a tanh network at most 1; the noise on the starts does not count)
    img = np.max(np.abs(to_numpy(Px)), axis=1)
    img = img[np.isfinite(img)]
    wander_step = _WANDER_STEP * max(float(np.mean(img)) if img.size else 1.0, 1e-12)
    if scale is None:
        scale = float(np.mean(to_numpy(_norm(xp, x))))
    rho_max = max(unique_tol, _MERGE_FRAC * scale)
    closing = max(_CLOSING, _MERGE_CLOSING * scale)
    # per start: the residual to beat, and the iteration it was set
    mark_r = r_h.copy()
    mark_it = np.zeros(n_starts, dtype=np.int64)
    escapes = np.zeros(n_starts, dtype=np.int64)
    force = np.zeros(n_starts, dtype=bool)
    leaders_x = None  # converged points so far (one per group), on the device
    prev1 = prev2 = x  # the rows one and two iterations back
    converge_radius = _CONVERGE_FRAC * scale

    for it in range(max_iter + 1):
        finite = np.isfinite(r_h)
        if not finite.all():
            fate[ids[~finite]] = GAVE_UP_NONFINITE
        done = finite & (r_h <= tol) & _resolved(xp, x, tol)
        keep = finite & ~done
        if bar is not None:
            bar.show(_n_finished(follows, fate, stall_final), running=int(keep.sum()),
                     points=sum(len(f) for f in found_r) if found_r else 0)
        # 1. converged rows: record them, merged with what was found before
        if done.any():
            last_found = it
            xd = _take(xp, x, np.flatnonzero(done))
            rd, idd = r_h[done], ids[done]
            fate[idd] = CONVERGED
            if leaders_x is not None:
                near = _nearest_within(xp, xd, leaders_x, unique_tol)
                old = near >= 0
                follows[idd[old]] = np.concatenate(found_ids)[near[old]]
                xd, rd, idd = _take(xp, xd, np.flatnonzero(~old)), rd[~old], idd[~old]
            if idd.size:
                lead, _ = _cluster(xp, xd, unique_tol)
                heads, rep = _least_in_groups(lead, rd)
                follows[idd] = idd[rep]
                found_x.append(_take(xp, xd, heads))
                found_r.append(rd[heads])
                found_ids.append(idd[heads])
                leaders_x = xp.concat(found_x, axis=0)
        # 2. running rows that reached a point already found, or each other: merge
        if keep.any() and it > 0:
            k_idx = np.flatnonzero(keep)
            # 2a. starts that have stalled (no halving of the residual for a while)
            if not slow_points:
                rid = ids[k_idx]
                better = r_h[k_idx] <= _STALL_DROP * mark_r[rid]
                mark_r[rid[better]] = r_h[k_idx[better]]
                mark_it[rid[better]] = it
                wandering = wander_from[rid] >= 0
                stalled = (it - mark_it[rid] >= _STALL_ITERS) & ~wandering
                # first time: one undamped Newton step out of the valley instead
                escape = stalled & (escapes[rid] < _ESCAPES)
                if escape.any():
                    escapes[rid[escape]] += 1
                    force[rid[escape]] = True
                    mark_r[rid[escape]] = np.inf
                    stalled &= ~escape
                # then it wanders (undamped Newton steps of bounded length) for
                # ``patience`` iterations, and is given up only after that
                start = stalled & (patience > 0)
                wander_from[rid[start]] = it
                revive.append(rid[start])
                stalled = (stalled & ~start) | (wandering & (it - wander_from[rid] >= patience))
                if stalled.any():
                    fate[rid[stalled]] = GAVE_UP_STALLED
                    keep[k_idx[stalled]] = False
                    k_idx = k_idx[~stalled]
            xk = _take(xp, x, k_idx)
            close = np.flatnonzero(r_h[k_idx] <= closing)
            rho = unique_tol
            if close.size:
                rho = max(unique_tol, min(rho_max, float(np.median(r_h[k_idx[close]]))))
            if leaders_x is not None and k_idx.size:
                near = _nearest_within(xp, xk, leaders_x, rho)
                hit = near >= 0
                if hit.any():
                    idh = ids[k_idx[hit]]
                    follows[idh] = np.concatenate(found_ids)[near[hit]]
                    keep[k_idx[hit]] = False
                    k_idx, xk = k_idx[~hit], _take(xp, xk, np.flatnonzero(~hit))
            # rows being drawn together head to the same point: one leads, the others follow
            if it >= 2 and k_idx.size > 1:
                lead = _drawn_together(xp, xk, _take(xp, prev1, k_idx),
                                       _take(xp, prev2, k_idx), r_h[k_idx], converge_radius)
                dup = lead != np.arange(k_idx.size)
                if dup.any():
                    follows[ids[k_idx[dup]]] = ids[k_idx[lead[dup]]]
                    keep[k_idx[dup]] = False
                    k_idx, xk = k_idx[~dup], _take(xp, xk, np.flatnonzero(~dup))
            # only rows closing in on a point can sit within unique_tol of each other
            close = np.flatnonzero(r_h[k_idx] <= closing)   # k_idx may have shrunk
            if close.size > 1:
                k_idx, xk = k_idx[close], _take(xp, xk, close)
                lead, _ = _cluster(xp, xk, rho)
                dup = lead != np.arange(k_idx.size)
                if dup.any():
                    follows[ids[k_idx[dup]]] = ids[k_idx[lead[dup]]]
                    keep[k_idx[dup]] = False
        # wandering ends, for all, once it has brought no start to a point for a while
        idle = (min(_WANDER_IDLE, max(_WANDER_IDLE_MIN, 2 * last_found)) if found_x
                else _WANDER_FIRST)
        if wander and it - last_found >= idle:
            fate[ids[keep]] = GAVE_UP_STALLED
            break
        if it == max_iter or not keep.any():
            break
        sel = np.flatnonzero(keep)
        if sel.size < x.shape[0]:
            x, Px, G, prev1, prev2 = (_take(xp, a, sel) for a in (x, Px, G, prev1, prev2))
            ids = ids[sel]
            r_h = r_h[sel]
        # the starts merged into one that now wanders set out again, from their starts:
        # wandering paths part, so they reach other points
        if revive:
            back = _followers(follows, fate, np.concatenate(revive), ids)
            revive = []
            if back.size:
                follows[back] = back
                wander_from[back] = it
                xb = _take(xp, x_start, back)
                Pb = F.value(xb)
                x, Px, prev1, prev2 = (xp.concat([a, b], axis=0)
                                       for a, b in ((x, xb), (Px, Pb), (prev1, xb), (prev2, xb)))
                G = Px - x
                ids = np.concatenate([ids, back])
                r_h = np.concatenate([r_h, to_numpy(_norm(xp, Pb - xb)).astype(np.float64)])
        # 3. Jacobian of F^p at the active rows (F^p itself is known)
        A = _minus_eye(xp, F.jacobian_only(x), eye)
        r_new = r_h.copy()
        accepted = np.zeros(ids.size, dtype=bool)
        dropped = np.zeros(ids.size, dtype=bool)
        new_parts = {}
        # 4. Newton step with a line search on ||G||: the full and the shorter steps at
        # once (one batched evaluation), the one of least residual passing Armijo
        pending = np.arange(ids.size)
        if pending.size:
            dx = _solve(xp, A, -G)                # all rows: no copies of A
            dx_h = to_numpy(dx)
            dx_ok = np.all(np.isfinite(dx_h), axis=1)
            pos = np.full(ids.size, -1)
            pos[pending] = np.arange(pending.size)
            # wandering rows take the Newton step cut to length wander_step (max norm),
            # whatever it does to the residual: it leaves the valleys of q
            wand = dx_ok & (wander_from[ids] >= 0)
            if wand.any():
                w = np.flatnonzero(wand)
                step = np.max(np.abs(dx_h[w]), axis=1)
                cut = np.minimum(1.0, wander_step / np.maximum(step, 1e-300))
                xt = _take(xp, x, w) + _like(cut, xp)[:, None] * _take(xp, dx, w)
                Pt = F.value(xt)
                rt = to_numpy(_norm(xp, Pt - xt)).astype(np.float64)
                fin = np.isfinite(rt)
                o = np.flatnonzero(fin)
                new_parts["wander"] = (w[o], _take(xp, xt, o), _take(xp, Pt, o))
                r_new[w[o]] = rt[o]
                accepted[w[o]] = True
            pending = pending[dx_ok & ~wand]
        for alphas in (_ALPHAS,):
            if pending.size == 0:
                break
            na, npd = len(alphas), pending.size
            xs, dxs = _take(xp, x, pending), _take(xp, dx, pos[pending])
            xt = xp.concat([xs + a * dxs for a in alphas], axis=0)
            Pt = F.value(xt)
            rt = to_numpy(_norm(xp, Pt - xt)).astype(np.float64).reshape(na, npd)
            a_col = np.asarray(alphas)[:, None]
            ok = np.isfinite(rt) & (rt <= (1.0 - _ARMIJO * a_col) * r_h[pending][None, :])
            if alphas[0] == 1.0:
                ok[0] |= np.isfinite(rt[0]) & force[ids[pending]]
            # the step of least residual among those passing; the full one when forced
            best = np.argmin(np.where(ok, rt, np.inf), axis=0)
            best[force[ids[pending]] & ok[0]] = 0
            good = ok[best, np.arange(npd)]
            if good.any():
                o = np.flatnonzero(good)
                flat = best[o] * npd + o
                new_parts[alphas[0]] = (pending[o], _take(xp, xt, flat), _take(xp, Pt, flat))
                r_new[pending[o]] = rt[best[o], o]
                accepted[pending[o]] = True
            pending = pending[~good]
        force[ids] = False
        # 5. Levenberg-Marquardt where Newton failed: (A^T A + lam I) dx = -A^T G, with a
        # damping lam kept per start (divided by 3 after a success, times 4 after a failure)
        lm = np.flatnonzero(~accepted)
        if lm.size:
            Al, Gl = (A, G) if lm.size == ids.size else (_take(xp, A, lm), _take(xp, G, lm))
            g = xp.matmul(Gl[:, None, :], Al)[:, 0, :]          # A^T G
            # diag(A^T A): column sums of squares (A^T A itself is formed with the solve)
            diag = to_numpy(xp.sum(Al * Al, axis=1)).astype(np.float64)
            rid = ids[lm]
            # 6. slow points: q stationary (A^T G = 0) but not zero
            g_h = to_numpy(_norm(xp, g)).astype(np.float64)
            a_norm = np.maximum(np.sqrt(np.sum(diag, axis=1)), 1.0)
            # stationary; or nearly so where the last damped step could not lower q
            # (q is flat to rounding there)
            stalled = (g_h <= _SLOW_GRAD * a_norm * r_h[lm]) | (
                lm_failed[rid] & (g_h <= _SLOW_GRAD_FAILED * a_norm * r_h[lm]))
            if stalled.any():
                if slow_points:
                    fate[rid[stalled]] = SLOW_POINT
                    slow_x.append(_take(xp, x, lm[stalled]))
                    slow_r.append(r_h[lm[stalled]])
                    dropped[lm[stalled]] = True
                else:   # a local minimum of q: wander off it, or give up
                    start = stalled & (wander_from[rid] < 0) & (patience > 0)
                    wander_from[rid[start]] = it
                    revive.append(rid[start])
                    out = stalled & ~start & (wander_from[rid] < 0)
                    fate[rid[out]] = GAVE_UP_STALLED
                    dropped[lm[out]] = True
            first = ~lm_mode[rid]
            scale = np.maximum(np.max(diag, axis=1), 1e-300)
            lam[rid[first]] = 1e-3 * scale[first]
            lm_mode[rid] = True
            dl = _damped_solve(xp, Al, lam[rid], -g, eye)
            xt = _take(xp, x, lm) + dl
            Pt = F.value(xt)
            rt = to_numpy(_norm(xp, Pt - xt)).astype(np.float64)
            ok = np.isfinite(rt) & (rt < r_h[lm]) & ~stalled
            lam[rid[ok]] /= 3.0
            lam[rid[~ok]] *= 4.0
            lm_failed[rid] = ~ok
            if ok.any():
                o = np.flatnonzero(ok)
                new_parts["lm"] = (lm[o], _take(xp, xt, o), _take(xp, Pt, o))
                r_new[lm[o]] = rt[o]
        # 7. assemble the new iterate (rows in their old order, stalled rows dropped)
        live = np.flatnonzero(~dropped)
        prev2, prev1 = _take(xp, prev1, live), _take(xp, x, live)
        if new_parts:
            moved = np.concatenate([p[0] for p in new_parts.values()])
            still = np.zeros(ids.size, dtype=bool)
            still[live] = True
            still[moved] = False
            stay = np.flatnonzero(still)
            order = np.argsort(np.concatenate([moved, stay]))
            xs = xp.concat([p[1] for p in new_parts.values()] + [_take(xp, x, stay)], axis=0)
            Ps = xp.concat([p[2] for p in new_parts.values()] + [_take(xp, Px, stay)], axis=0)
            x, Px = _take(xp, xs, order), _take(xp, Ps, order)
        elif live.size < ids.size:
            x, Px = _take(xp, x, live), _take(xp, Px, live)
        ids, r_h = ids[live], r_new[live]
        G = Px - x
        if ids.size == 0:
            break

    # fates of merged starts follow their representatives (chains resolve by iteration)
    for _ in range(64):
        nxt = follows[follows]
        if np.array_equal(nxt, follows):
            break
        follows = nxt
    fate[fate == _RUNNING] = GAVE_UP_MAX_ITER
    return found_x, found_r, fate[follows], slow_x, slow_r


def _orbits(map_, u, xp, pts, period, unique_tol):
    """Orbit labels and least periods of period-``p`` points (host int arrays)."""
    m = int(pts.shape[0])
    orbit = np.arange(m, dtype=np.int64)
    min_period = np.full(m, period, dtype=np.int64)
    if m == 0 or period == 1:
        return orbit, np.ones(m, dtype=np.int64)
    uu = None if u is None else xp.broadcast_to(u, (m, u.shape[0]))
    y = pts
    unset = np.ones(m, dtype=bool)
    torus = _torus(map_, pts)
    for k in range(1, period):
        y = map_.step(y, uu)
        if torus is not None:
            y = torus.canonical(y, unique_tol)
        back = to_numpy(_norm(xp, (y if torus is None else torus.nearest(y, pts)) - pts)) \
            <= unique_tol
        newly = back & unset & (period % k == 0)
        min_period[newly] = k
        unset &= ~newly
        near = _nearest_within(xp, y, pts, unique_tol)
        hit = near >= 0
        # union: the orbit label is the least index reached along the orbit
        orbit[hit] = np.minimum(orbit[hit], near[hit])
    # propagate the least label through the orbit
    for _ in range(period):
        orbit = np.minimum(orbit, orbit[orbit])
    return orbit, min_period


# -- starts -------------------------------------------------------------------------
def sample_states(map, n, *, steps=100, noise=0.0, rng=None, x0=None, inputs=None):
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
        On the map's backend.

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
    """
    map = itermap.as_map(map)
    n = _check_int("n", n, 1)
    steps = _check_int("steps", steps, 0)
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        raise TypeError(f"noise must be a number, got {noise!r}") from None
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be finite and >= 0, got {noise}")
    check_memory("n", 8.0 * 3 * n * map.dim, "the sampled states")
    gen = itermap.as_rng(rng)
    dtype = map.dtype if map.dtype is not None else np.float64
    if x0 is None:
        x = gen.standard_normal((n, map.dim)).astype(dtype)
    else:
        x = check_real_array("x0", to_numpy(x0) if hasattr(x0, "shape") else x0)
        if x.shape not in ((map.dim,), (n, map.dim)):
            raise ValueError(f"x0 must have shape ({map.dim},) or ({n}, {map.dim}), got "
                             f"{tuple(np.shape(x0))}")
        x = np.array(np.broadcast_to(x, (n, map.dim)) if x.ndim == 1 else x, dtype=dtype)
        if x.shape != (n, map.dim):
            raise ValueError(f"x0 must have shape ({map.dim},) or ({n}, {map.dim}), got "
                             f"{tuple(np.shape(x0))}")
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
        x = map.step(x, u)
        out = xp.where((t_dev == k)[:, None], x, out)
    if not bool(xp.all(xp.isfinite(out))):
        raise itermap.DivergenceError(
            "sampled states overflowed to inf or NaN; pass initial states x0 in the "
            "map's domain or fewer steps")
    return out + eps


# -- slow points: batched L-BFGS on q ---------------------------------------------------
# L-BFGS memory, the Armijo constant and the step lengths tried at once along d
_LBFGS_MEMORY = 10
_LBFGS_STEPS = (1.0, 0.25, 0.05, 0.01)
# stationary: ||grad q|| <= _Q_GRAD_TOL * max(||G||, tol); a row whose line search failed
# _Q_FAILS times in a row is at q's rounding floor and stops there
_Q_GRAD_TOL = 1e-9
_Q_FAILS = 3
# a minimum with ||G|| <= _ZERO_CANDIDATE is polished by Newton as a possible zero
_ZERO_CANDIDATE = 1e-4


def _rowdot(xp, a, b):
    """Row-wise dot products of two (k, n) arrays, on the host as float64."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.einsum("ij,ij->i", a, b).astype(np.float64, copy=False)
    return to_numpy(xp.sum(a * b, axis=1)).astype(np.float64)


def _axpy(xp, a, y, d):
    """``d + a[:, None] * y`` for host coefficients ``a`` (in place on a NumPy ``d``)."""
    if isinstance(d, np.ndarray) and isinstance(y, np.ndarray):
        d += a[:, None] * y
        return d
    return d + _like(a, xp)[:, None] * y


def _q_and_grad(F, xp, x, Px=None):
    """``(G, q, grad q)`` at rows x: ``G = F^p(x) - x``, ``grad = D(F^p)^T G - G`` by vjps.

    ``Px``, when given, is ``F(x)`` already evaluated (period 1 only).
    """
    u = F._u(x)
    if Px is not None and F.p == 1:
        orbit = [x, Px]
    else:
        orbit = [x if F.torus is None else F.torus.reduce(x)]
        for _ in range(F.p):
            orbit.append(F.map.step(orbit[-1], u))
    G = orbit[-1] - orbit[0] if F.torus is None else F.torus.nearest(orbit[-1], orbit[0]) \
        - orbit[0]
    w = G
    for k in range(F.p - 1, -1, -1):
        w = F.map.vjp(orbit[k], w, u)
    return G, 0.5 * _rowdot(xp, G, G), w - G


def _lbfgs_direction(xp, g, gn, S, Y, rho, slot):
    """The L-BFGS direction of every row and its slope ``g . d``, by the two-loop recursion
    over the rows' memory (slot ``j`` in ``S[j], Y[j]``; empty where ``rho = 0``; the
    newest is ``slot - 1``). Rows where it is not a descent direction forget their memory
    (``rho`` zeroed in place) and go down the gradient."""
    m = len(S)
    d = -g
    alpha = np.zeros((g.shape[0], m))
    order = [(slot - 1 - j) % m for j in range(m)]
    last = order[0]
    order = [j for j in order if rho[:, j].any()]     # slots empty in every row: skip
    for j in order:
        alpha[:, j] = -rho[:, j] * _rowdot(xp, S[j], d)
        d = _axpy(xp, alpha[:, j], Y[j], d)
    yy = _rowdot(xp, Y[last], Y[last])
    gamma = np.where((rho[:, last] > 0) & (yy > 0),
                     1.0 / np.maximum(rho[:, last] * yy, 1e-300), 0.0)
    # no memory yet: a gradient step of length at most 0.1 (in the state's units)
    short = np.minimum(1.0, 0.1 / np.maximum(gn, 1e-300))
    gamma = np.where(gamma > 0, gamma, short)
    d = _like(gamma, xp)[:, None] * d
    for j in reversed(order):
        beta = -rho[:, j] * _rowdot(xp, Y[j], d)
        d = _axpy(xp, beta - alpha[:, j], S[j], d)
    slope = _rowdot(xp, g, d)
    uphill = ~(slope < 0)
    if uphill.any():   # not a descent direction: forget the memory, go down the gradient
        d = xp.where(_like(uphill, xp)[:, None], -g * _like(short, xp)[:, None], d)
        slope = _rowdot(xp, g, d)
        rho[uphill] = 0.0
    return d, slope


def _lbfgs_q(F, x, xp, *, tol, max_iter, bar=None):
    """Batched L-BFGS on ``q = 1/2 ||F^p(x) - x||^2`` from the rows of ``x``.

    Returns (end points, their q, status per row): status ``CONVERGED`` where
    ``||G|| <= tol``, ``SLOW_POINT`` where q is stationary, ``GAVE_UP_MAX_ITER``
    or ``GAVE_UP_NONFINITE``.
    """
    # the working arrays hold the running rows only (rows that end leave them): ``idx``
    # maps them to the starts; memory slot j of every row is S[j], Y[j] (rows, n)
    B, n = int(x.shape[0]), int(x.shape[1])
    m = _LBFGS_MEMORY
    x_out = xp.asarray(x, copy=True)    # rows are updated in place: not the caller's
    q_out = np.zeros(B)
    status = np.full(B, _RUNNING, dtype=np.int8)
    idx = np.arange(B)
    xw = x_out
    G, q, g = _q_and_grad(F, xp, xw)
    S = [xp.zeros((B, n), dtype=x.dtype) for _ in range(m)]
    Y = [xp.zeros((B, n), dtype=x.dtype) for _ in range(m)]
    rho = np.zeros((B, m))
    fails = np.zeros(B, dtype=np.int64)
    slot = 0
    for _it in range(max_iter + 1):
        r = np.sqrt(2.0 * q)
        gn = np.sqrt(_rowdot(xp, g, g))
        st = np.full(idx.size, _RUNNING, dtype=np.int8)
        st[(fails >= _Q_FAILS) | (gn <= _Q_GRAD_TOL * np.maximum(r, tol))] = SLOW_POINT
        st[(r <= tol) & _resolved(xp, xw, tol)] = CONVERGED
        st[~(np.isfinite(q) & np.isfinite(gn))] = GAVE_UP_NONFINITE
        if _it == max_iter:
            st[st == _RUNNING] = GAVE_UP_MAX_ITER
        end = st != _RUNNING
        if end.any():
            e = np.flatnonzero(end)
            status[idx[e]] = st[e]
            q_out[idx[e]] = q[e]
            x_out = _put_rows(xp, x_out, idx[e], _take(xp, xw, e))
            if bar is not None:
                bar.show(int(np.sum(status != _RUNNING)))
            live = np.flatnonzero(~end)
            if live.size == 0:
                break
            idx, q, r, gn, rho, fails = idx[live], q[live], r[live], gn[live], rho[live], \
                fails[live]
            xw, g = _take(xp, xw, live), _take(xp, g, live)
            S = [_take(xp, a, live) for a in S]
            Y = [_take(xp, a, live) for a in Y]
        k = idx.size
        d, slope = _lbfgs_direction(xp, g, gn, S, Y, rho, slot)
        # backtracking: the step lengths in turn, each tried only by the rows the longer
        # ones failed (the longest passing Armijo wins)
        pending = np.arange(k)
        o_parts, x_parts, p_parts = [], [], []
        for a in _LBFGS_STEPS:
            xt = (xw + a * d) if pending.size == k else (
                _take(xp, xw, pending) + a * _take(xp, d, pending))
            Pt = F.value(xt)
            Gt = Pt - xt
            qt = 0.5 * _rowdot(xp, Gt, Gt)
            ok = np.isfinite(qt) & (qt <= q[pending] + _ARMIJO * a * slope[pending])
            if ok.all():
                o_parts.append(pending)
                x_parts.append(xt)
                p_parts.append(Pt)
            elif ok.any():
                o = np.flatnonzero(ok)
                o_parts.append(pending[o])
                x_parts.append(_take(xp, xt, o))
                p_parts.append(_take(xp, Pt, o))
            pending = pending[~ok]
            if pending.size == 0:
                break
        fails[pending] += 1
        if not o_parts:
            continue
        rows = np.concatenate(o_parts)
        fails[rows] = 0
        x_new = xp.concat(x_parts, axis=0) if len(x_parts) > 1 else x_parts[0]
        P_new = xp.concat(p_parts, axis=0) if len(p_parts) > 1 else p_parts[0]
        G_new, q_new, g_new = _q_and_grad(F, xp, x_new, P_new)
        every = rows.size == k and bool(np.all(rows == np.arange(k)))
        s_vec = x_new - (xw if every else _take(xp, xw, rows))
        y_vec = g_new - (g if every else _take(xp, g, rows))
        sy = _rowdot(xp, s_vec, y_vec)
        curv = sy > 1e-12 * np.sqrt(_rowdot(xp, s_vec, s_vec) * _rowdot(xp, y_vec, y_vec))
        rho[:, slot] = 0.0
        rho[rows, slot] = np.where(curv, 1.0 / np.where(curv, sy, 1.0), 0.0)
        if every:
            S[slot], Y[slot], xw, g = s_vec, y_vec, x_new, g_new
            q = q_new
        else:
            S[slot] = _put_rows(xp, S[slot], rows, s_vec)     # rho = 0 masks the others
            Y[slot] = _put_rows(xp, Y[slot], rows, y_vec)
            xw = _put_rows(xp, xw, rows, x_new)
            g = _put_rows(xp, g, rows, g_new)
            q[rows] = q_new
        slot = (slot + 1) % m
    return x_out, q_out, status


def _q_search(F, x, xp, eye, *, tol, max_iter, unique_tol, bar=None, **_):
    """Slow points and fixed points: L-BFGS on q, then Newton on the minima near zero.

    Returns what :func:`_search` returns.
    """
    xe, qe, status = _lbfgs_q(F, x, xp, tol=tol, max_iter=max_iter, bar=bar)
    r = np.sqrt(2.0 * qe)
    found_x, found_r = [], []
    cand = np.flatnonzero((status == CONVERGED) |
                          ((status == SLOW_POINT) & (r <= _ZERO_CANDIDATE)))
    if cand.size:
        found_x, found_r, st_c, _, _ = _search(F, _take(xp, xe, cand), xp, eye, tol=tol,
                                               max_iter=30, unique_tol=unique_tol,
                                               slow_points=False, patience=0)
        status[cand] = np.where(st_c == CONVERGED, CONVERGED, SLOW_POINT)
    slow = np.flatnonzero((status == SLOW_POINT) & (r > tol))
    slow_x = [_take(xp, xe, slow)] if slow.size else []
    return found_x, found_r, status, slow_x, [r[slow]] if slow.size else []


def _put_rows(xp, a, rows, values):
    """``a`` with ``a[rows] = values`` (in place on NumPy)."""
    if isinstance(a, np.ndarray):
        a[rows] = values
        return a
    mask = np.zeros(int(a.shape[0]), dtype=bool)
    mask[rows] = True
    full = xp.zeros_like(a)
    pos = np.cumsum(mask) - 1
    full = _take(xp, values, np.where(mask, pos, 0))
    return xp.where(_like(mask, xp)[:, None], full, a)


# -- large maps: Newton-Krylov, matrix-free --------------------------------------------
# method="auto" solves the Newton systems by GMRES on the map's tangent past this
# dimension (no dense Jacobian is formed), and the stability comes from the leading
# multipliers
_KRYLOV_DIM = 4096
_KRYLOV_EIGS = 6


def _choose_method(method, slow_points, dim, xp):
    """The method that runs: ``auto`` resolved by the stated rule, ``q`` for slow points."""
    if slow_points:
        if method == "newton-krylov":
            raise ValueError("method='newton-krylov' finds no slow points: use "
                             "slow_points=True with method='q' (or 'auto')")
        return "q"
    if method == "auto":
        return "newton-krylov" if dim > _KRYLOV_DIM and is_numpy_namespace(xp) else "newton"
    if method == "newton-krylov" and not is_numpy_namespace(xp):
        raise ValueError("method='newton-krylov' runs on NumPy maps and starts; use "
                         "method='newton' on this backend")
    return method


def _krylov_fixed_points(map_, F, x, u, xp, *, tol, max_iter, unique_tol, progress,
                         q_steps):
    """``find_fixed_points`` by Newton-Krylov (see :mod:`._newton_krylov`)."""
    from ._newton_krylov import krylov_memory, krylov_search, leading_multipliers

    n_starts, dim = int(x.shape[0]), int(x.shape[1])
    check_memory("method", krylov_memory(map_, n_starts, dim),
                 f"method='newton-krylov' on {n_starts} starts of dim {dim} (GMRES basis, "
                 f"ILU factors and starts)")
    bar = _progress_bar(progress, n_starts, dim, n_starts)
    # GMRES works on single vectors: threaded BLAS only adds contention (0.25 s per
    # iteration at N = 20000 on a loaded 2-core machine, 4 ms with one thread)
    with bar, blas_limited(1), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        P, R, status, _ = krylov_search(F, np.asarray(x), tol=tol, max_iter=max_iter,
                                        unique_tol=unique_tol, bar=bar, q_steps=q_steps,
                                        lbfgs=_lbfgs_q)
    ev = leading_multipliers(F, P, _KRYLOV_EIGS)
    stable, n_unstable = _stability(ev)
    orbit, min_period = _orbits(map_, u, xp, P, F.p, unique_tol)
    return FixedPoints(points=P, residuals=R, jacobians=None, eigenvalues=ev,
                       stable=stable, n_unstable=n_unstable,
                       n_unconverged=int(np.sum(status >= GAVE_UP_MAX_ITER)),
                       period=F.p, orbit=orbit, min_period=min_period,
                       n_starts=n_starts, status=status)
