"""The driver of the fixed-point search: input checks, the method registry, orbits.

:func:`find_fixed_points` checks its inputs into a :class:`~._common.Problem`,
runs the method named in :data:`METHODS` on it, and turns the method's
:class:`~._common.Solution` into :class:`FixedPoints` (stability, orbit labels,
least periods). The contract a method keeps is in the package docstring.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from array_api_compat import is_numpy_namespace

import itermap
from itermap.backends import to_numpy
from itermap.typing import Array, MapLike

from .._checks import check_batched_step, check_bool, check_real
from .._checks import check_int as _check_int
from ._clustering import _nearest_within, merge_within_error
from ._common import (
    Problem,
    Solution,
    _check_inputs,
    _check_reachable,
    _check_starts,
    _default_tol,
    _like,
    _norm,
    _Power,
    _stability,
    _take,
    _torus,
)
from ._homotopy import homotopy
from ._newton import newton
from ._newton_krylov import newton_krylov
from ._q import q
from ._result import GAVE_UP_MAX_ITER, FixedPoints

__all__ = ["METHODS", "find_fixed_points"]

# L-BFGS iterations on q before the Newton search (find_fixed_points' q_steps), for maps
# of more than _Q_MIN_DIM units: below that a Jacobian costs about as much as the
# gradient of q (dim vjps against one), and Newton from the starts themselves ends in
# fewer valleys of q than Newton from L-BFGS's minima of q
_Q_STEPS = 30
_Q_MIN_DIM = 3
# method="auto" takes Newton-Krylov past this dimension (on NumPy): one dense Newton
# system of dim 4096 is 128 MiB, and a batch of starts holds several
_KRYLOV_DIM = 4096


def auto(problem: Problem) -> Solution:
    """``newton`` up to ``dim = 4096`` (and on any backend but NumPy), ``newton-krylov``
    beyond: dense Newton systems cost ``dim^2`` memory each. There, the starts that
    Newton-Krylov leaves unconverged follow their gain homotopy (a map on R^n): from the
    states of a random network's dynamics Newton-Krylov seldom reaches a point, the path
    mostly does (sparse ``random_rnn(3000, 20/n, 1.5)``: 0 of 4 starts, 4 of 4)."""
    name = "q" if problem.slow_points else _auto_name(int(problem.x.shape[1]), problem.xp)
    if name != "newton-krylov" or problem.F.torus is not None:
        return METHODS[name](problem)
    sol = newton_krylov(dataclasses.replace(problem, stage="Newton-Krylov"))
    return _paths_for_unconverged(problem, sol)


def _paths_for_unconverged(problem: Problem, sol: Solution) -> Solution:
    """``sol`` with the starts it left unconverged run again by ``homotopy``: their
    status is the path's, and the points the paths reach join (within ``unique_tol``)."""
    rows = np.flatnonzero(sol.status != 0)
    if rows.size == 0:
        return sol
    # at these sizes a path takes minutes: its bar shows from the start (progress=None)
    paths = homotopy(dataclasses.replace(
        problem, x=problem.x[rows], method="homotopy",
        progress=True if problem.progress is None else problem.progress,
        stage="gain paths of Newton-Krylov's unconverged starts"))
    status = sol.status.copy()
    status[rows] = paths.status
    dim = int(problem.x.shape[1])
    P, Q = np.asarray(sol.points).reshape(-1, dim), np.asarray(paths.points).reshape(-1, dim)
    # the paths' points are distinct among themselves: those near none of sol's join
    new = np.flatnonzero(_nearest_within(np, Q, P, problem.unique_tol) < 0)
    k = paths.eigenvalues.shape[1]
    return dataclasses.replace(
        sol, status=status, points=np.concatenate([P, Q[new].astype(P.dtype, copy=False)]),
        residuals=np.concatenate([sol.residuals, paths.residuals[new]]),
        eigenvalues=np.concatenate([sol.eigenvalues.reshape(-1, k), paths.eigenvalues[new]]))


def _auto_name(dim, xp):
    return "newton-krylov" if dim > _KRYLOV_DIM and is_numpy_namespace(xp) else "newton"


#: The search's methods (``find_fixed_points(method=...)``): name -> the callable that
#: runs it, ``Problem -> Solution`` (the contract is in :mod:`itermap.analysis.fixed_points`).
METHODS = {
    "auto": auto,
    "newton": newton,
    "newton-krylov": newton_krylov,
    "homotopy": homotopy,
    "q": q,
}


# -- the driver ------------------------------------------------------------------------
def find_fixed_points(map: MapLike, x0: Array, *, inputs: Array | None = None, period: int = 1,
                      tol: float | None = None, max_iter: int = 600,
                      unique_tol: float | None = None,
                      slow_points: bool = False, method: str = "auto", patience: int = 1000,
                      q_steps: int | None = None, progress: bool | None = None,
                      deflation: bool | float | str | None = "auto") -> FixedPoints:
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
    follow the one of lower residual (these two mergers of running starts with
    each other only on maps of 4 units or more). Unless ``slow_points`` is asked for, a
    start whose residual has not halved within 6 iterations takes one
    undamped Newton step (to leave the flat valley of ``q`` it sits in), and
    when it stalls again it is given up and counted in ``n_unconverged``
    (other starts usually find the same points faster). A last Newton step on
    the distinct points takes their residuals to rounding level, after which
    they are merged once more. (3) The starts that stalled in (2) (and those
    merged into them, each from its own start) *wander*: undamped Newton
    steps cut to 0.6 times the mean max-norm of ``F(x0)`` (the map's range),
    accepted whatever they do to ``||G||``, which leaves the valleys of
    ``q`` where damped methods end. A start is given up after ``patience``
    wandering iterations, or once it is caught in a 2-cycle of the wandering
    step (back within 0.1 % of a wandering step of where it was two iterations
    ago, or within 1 % of its last step for 4 iterations running: a cycle
    that drifts); all wandering ends once no wandering start has reached a
    point for ``patience / 3`` times the share of the starts wandering iterations
    (at least 30). Where (2) reached no point at all (every start stalled,
    as at high gain on large networks) on a map not on a torus, the search
    also runs (2) on ``F(s x)`` for ``s = 0.75, 0.56, 0.42``; at the ``s`` with
    the most points off the origin, with ``deflation``, every start that led no
    point there (stalled or repeated) runs again as (4) below on ``F(s x)``,
    deflated by its points and (on an odd map, ``F(-x) = -F(x)``) their
    mirrors; each point found at that ``s`` is followed along ``x = F(s x)``
    to ``s = 1`` by batched pseudo-arclength continuation (through the folds
    where damped Newton stalls; Allgower and Georg 2003), on an odd map one
    path per mirror pair, the mirror's end the mirror of its end; a start
    whose point (reached, or found by its deflated run) has a path that
    reaches a point of ``F`` is converged. On an odd map the branches born at
    the origin are followed too: for each real eigenvalue ``mu > 1`` of
    ``DF(0)`` whose pitchfork opens towards larger ``s``, the point of
    ``F(s x)`` at ``s = 1.02 / mu`` (from the normal form along the
    eigenvector, then the damped search) to ``s = 1``. Where that rule ran (maps of
    up to 1024 units), each start still unconverged after it and wandering follows
    its own gain homotopy of ``method="homotopy"`` (below; ``patience`` steps at
    most) and is converged where that path ends at a point; above 500 units these
    paths run before wandering, and only the starts that neither path brought to a
    point wander. On maps of up to 500 units not on a torus whose wandering
    leaves more than half the starts unconverged, those starts follow their own
    gain homotopies in the same way even where that rule did not run. The paths
    stop once 4 have failed and failures outnumber twice the paths that reached a
    point (a map without fixed points gives up after 4). (4) With ``deflation``,
    the starts that converged onto a point
    another start reached (at most 8 per point) run again, all at once, from where
    they set out, as Newton on the deflated residual ``M(x) G(x)``,
    ``M(x) = prod_j (1 + (r / ||x - p_j||)^2)`` over every point ``p_j`` found
    (Farrell, Birkisson and Funke 2015): ``M`` blows up at the known points, so the
    runs converge to new ones, which join the
    deflation at once (a line search on ``M ||G||``, wandering where it
    stalls; 150 iterations at most, ended once 60 pass without a new point,
    30 before the first). Then the same deflated Newton runs from the
    midpoints of the nearest pairs of points found (twice as many as
    there are starts), where the saddles that separate two points lie. Every start
    ends with a ``status``: converged, slow point, or gave up (and why); a
    start re-run by deflation stays "converged" whether or not its deflated
    run finds a new point.

    Which to use when (the names are the keys of :data:`METHODS`):
    ``method="newton"`` finds fixed points, stable and unstable, to ``tol``;
    it is the one for counting points or for their linearizations, up to a
    few thousand units. ``method="newton-krylov"`` is for large maps: no
    ``dim x dim`` array is formed (memory O(nnz + dim m) for ``m`` Krylov
    vectors; see Notes). ``method="auto"`` (the default) takes the rule:
    ``"newton-krylov"`` when ``dim > 4096`` and the map is on NumPy, its
    unconverged starts then following their gain homotopy (``"homotopy"``) on a map
    on R^n, ``"newton"`` otherwise. ``method="q"`` (or ``slow_points=True``) is
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
    tol : float or None, default None
        Convergence threshold on the residual ``||F^p(x) - x||_2`` (the
        Euclidean norm); only points with residual ``<= tol`` are returned.
        None: ``1e-10`` for float64 starts, ``100 eps`` of a narrower dtype
        (``1.2e-5`` in float32), whose rounding no smaller residual survives.
    max_iter : int, default 600
        Newton iterations at most in phase (2) (and in (3), with
        ``patience``); L-BFGS steps at most with ``method="q"``; Newton-Krylov
        steps per start with ``method="newton-krylov"``.
    unique_tol : float or None, default None
        Points closer than this (Euclidean distance) are one point; the
        one with the least residual represents the group. None: ``1e-6``, or
        10 times ``tol`` where that is wider (``1.2e-4`` in float32 at the
        default ``tol``, where points meeting ``tol`` lie up to ~1e-5 apart).
        Two points are one also within their error bounds, ``r / min |1 - mu|``
        for a residual ``r`` and multipliers ``mu`` (at most ``10 unique_tol``
        each): in float32 near a multiplier 0.994 the points meeting ``tol``
        spread over ~2e-3.
    slow_points : bool, default False
        Also return the local minima of ``q = 1/2 ||F^p(x) - x||^2`` that are
        not zeros (slow points, Sussillo and Barak 2013); implies
        ``method="q"``.
    method : {"auto", "newton", "newton-krylov", "homotopy", "q"}, default "auto"
        See above and :data:`METHODS`: the three-phase dense Newton search,
        matrix-free Newton-Krylov, or L-BFGS on ``q`` (the gradient
        ``(J - I)^T G`` through the map's ``vjp``) then Newton; ``"auto"``
        picks ``"newton-krylov"`` past ``dim = 4096`` on NumPy (its unconverged starts
        then follow the homotopy), else ``"newton"``.
        ``"homotopy"`` follows each start's gain homotopy ``F(s x) + (1 - s) b - x``
        (``b`` half the start) from ``s = 0`` to 1, then polishes: dense LU solves
        for a dense map up to ``dim = 4096``, sparse LU or matrix-free IDR(s) for
        sparse weights; for networks where Newton from the starts stalls
        (``max_iter`` bounds its continuation steps; see
        :mod:`itermap.analysis.fixed_points`).
    patience : int, default 1000
        Wandering iterations a stalled start may take before it is given up
        (phase (3) runs ``max(max_iter, patience)`` iterations at most); 0
        gives stalled starts up at once (the fastest, the least thorough).
        Where points are rare (a strongly chaotic network) a wandering start
        reaches one at a low rate per iteration, so ``patience`` sets the
        converged fraction there.
    q_steps : int or None, default None
        L-BFGS steps on ``q`` before Newton (phase 1); 0 skips the phase.
        None: 30 for maps of more than 3 units, 0 for the smaller ones (where a
        Jacobian costs about as much as the gradient of ``q``, and Newton
        from the starts themselves is the faster search: L-BFGS's minima of
        ``q`` on a small chaotic map are valleys that Newton then leaves
        only by wandering).
    progress : bool or None, default None
        A tqdm bar over the starts finished (converged, slow point, or given
        up for good), left on screen with its final count: None shows it once
        the search has run 2 s, True at once, False never. With
        ``method="homotopy"`` or ``"newton-krylov"`` (one start of a large map
        can take hours) its postfix also says where the running start is:
        its path's gain ``s``, or its Newton step and residual.
    deflation : "auto", bool or float, default "auto"
        Phase (4) of ``method="newton"``: True deflates with radius
        ``r = 0.1`` times the starts' mean norm, a number > 0 is the radius
        ``r`` itself (in the state's units), False skips the phase; ``"auto"``
        (or None) is True on maps of at least 100 units not on a torus, False
        otherwise (smaller maps have few points, which the starts reach).
        It costs nothing where no start repeats a point, and finds more points
        where starts do, at a few times the search's cost (measured in
        benchmarks/RESULTS.md). ``method="newton-krylov"`` always deflates
        (start by start); ``method="q"`` does not.

    Returns
    -------
    FixedPoints
        ``points``, ``residuals``, ``jacobians``, ``eigenvalues`` (by modulus,
        descending), ``stable``, ``n_unstable``, ``n_unconverged``, ``orbit``,
        ``min_period``, ``status`` (per start) and, if asked for, the slow
        points with ``slow_q``. Arrays stay in the namespace of ``x0``, except
        ``eigenvalues``, ``stable`` and ``n_unstable`` which are NumPy arrays
        (computed on the host unless CuPy has ``linalg.eig``).

    Raises
    ------
    ValueError
        Starts of the wrong shape or with NaN, ``period < 1``, ``tol <= 0``,
        ``unique_tol <= 0``, a ``tol`` below the rounding of the starts' dtype at norm 1
        (``4 eps``: 4.8e-7 in float32), ``max_iter < 1``, ``patience < 0``, ``q_steps < 0``, an
        unknown ``method``, a ``deflation`` radius not finite and > 0 (or a string
        other than ``"auto"``), inputs that do not fit the map, or a map whose step
        fails on a batch of states or returns another shape (named ``map``).
    TypeError
        Starts that are not real floating point; a ``deflation`` that is not a
        string, a bool or a number.

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
    On NumPy maps of at most 512 units the dense search holds BLAS to one
    thread (through threadpoolctl): its products and factorisations are too
    small to split, and threads waiting on each other slow it on a busy machine.
    With ``method="newton-krylov"`` (the default past ``dim = 4096`` on
    NumPy) no dense Jacobian is formed: each start in turn runs Newton-Krylov
    (IDR(8) on the map's sparse Jacobian or its ``tangent``, solved to Eisenstat and
    Walker's forcing terms, ILU-preconditioned on the weights' pattern for an
    itermap network with sparse weights of at most 20,000 nonzeros, unpreconditioned
    beyond, after ``q_steps`` L-BFGS steps on ``q``, with Armijo backtracking, and
    wandering where Newton stalls; no Levenberg-Marquardt), deflated (Farrell,
    Birkisson and Funke 2015) by the points the starts before it found, so
    that it converges to a new point rather than to one found already.
    ``jacobians`` is None and ``eigenvalues`` holds the 6 leading
    multipliers (ARPACK, 4e6 / dim restarts, at least 20; NaN where it has not
    converged, and such a point is not called stable), so ``stable`` is exact and
    ``n_unstable`` counts among those 6. Its memory (IDR(s) vectors, ILU factors,
    starts) is estimated first and the call refused with the estimate if the machine
    lacks it. With ``method="newton"`` the Newton systems are dense,
    ``dim x dim`` per running start, even for a sparse map: starts run in
    batches holding at most about 1 GiB of Jacobians (and its work arrays),
    the points found by the batches are merged, and a ``dim`` whose one
    dense system exceeds the machine's memory is refused up front.
    On NumPy maps of at most 3 units phase (2) runs plain Newton from every start
    first (as pynamicalsys's per-start Newton, batched), then the damped iteration
    from the starts it leaves; each point found brings the rest of its orbit.

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
    .. [5] E. L. Allgower and K. Georg, "Introduction to Numerical Continuation
       Methods", SIAM 2003.

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
    map = itermap.as_map(map)
    problem = _problem(map, x0, inputs=inputs, period=period, tol=tol, max_iter=max_iter,
                       unique_tol=unique_tol, slow_points=slow_points, method=method,
                       patience=patience, q_steps=q_steps, progress=progress,
                       deflation=deflation)
    sol = (METHODS["auto"] if method == "auto" else METHODS[problem.method])(problem)
    x, xp, F = problem.x, problem.xp, problem.F
    sol = _merged(xp, sol, problem.unique_tol)
    stable, n_unstable = _stability(sol.eigenvalues)
    orbit, min_period = _orbits(map, F.u, xp, sol.points, F.p, problem.unique_tol)
    return FixedPoints(points=sol.points, residuals=xp.astype(_like(sol.residuals, xp), x.dtype),
                       jacobians=sol.jacobians, eigenvalues=sol.eigenvalues, stable=stable,
                       n_unstable=n_unstable,
                       n_unconverged=int(np.sum(sol.status >= GAVE_UP_MAX_ITER)),
                       period=F.p, orbit=orbit, min_period=min_period,
                       n_starts=int(x.shape[0]), status=sol.status, **(sol.slow or {}))


def _merged(xp, sol: Solution, unique_tol: float) -> Solution:
    """The solution with points within ``unique_tol`` plus their error bounds made one
    (:func:`._clustering.merge_within_error`), whatever the method."""
    keep = merge_within_error(xp, sol.points, sol.residuals, sol.eigenvalues, unique_tol)
    if keep.size == int(sol.points.shape[0]):
        return sol
    return dataclasses.replace(
        sol, points=_take(xp, sol.points, keep), residuals=np.asarray(sol.residuals)[keep],
        jacobians=None if sol.jacobians is None else _take(xp, sol.jacobians, keep),
        eigenvalues=np.asarray(sol.eigenvalues)[keep])


def _check_shapes(F, x, *, jacobian):
    """A map whose step (or, where the method forms Jacobians, whose ``jacobian``) returns
    arrays of other shapes than the protocol's is named here, not by a reshape inside a
    method: one evaluation at the first start, whose step it returns."""
    dim = int(x.shape[1])
    row = x[:1, :]
    y = check_batched_step(F.value, row, dim)
    if jacobian:
        got = tuple(F.jacobian_only(row).shape)
        if got != (1, dim, dim):
            raise ValueError(f"map: its jacobian returned shape {got} for a batch of 1 "
                             f"state of dim {dim}; expected (1, {dim}, {dim})")
    return y


def _residual_dtype(xp, starts, step):
    """The dtype whose rounding bounds the residuals: the starts', or the step's where it
    returns a coarser float; and whether it is the step's."""
    if xp.isdtype(step, "real floating") and xp.finfo(step).eps > xp.finfo(starts).eps:
        return step, True
    return starts, False


def _problem(map_, x0, *, inputs, period, tol, max_iter, unique_tol, slow_points, method,
             patience, q_steps, progress, deflation="auto") -> Problem:
    """The checked inputs, and the method that runs."""
    period = _check_int("period", period, 1)
    max_iter = _check_int("max_iter", max_iter, 1)
    patience = _check_int("patience", patience, 0)
    q_steps = None if q_steps is None else _check_int("q_steps", q_steps, 0)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if progress not in (None, True, False):
        raise TypeError(f"progress must be None, True or False, got {progress!r}")
    deflation = _check_deflation(deflation)
    slow_points = check_bool("slow_points", slow_points)
    x, xp = _check_starts(map_, x0)
    tol = None if tol is None else check_real("tol", tol, positive=True)
    unique_tol = None if unique_tol is None else check_real("unique_tol", unique_tol,
                                                            positive=True)
    u = _check_inputs(map_, inputs, xp)
    if u is not None:
        u = xp.astype(u, x.dtype)
    F = _Power(map_, period, u, xp, _torus(map_, x))
    # the dense search forms every start's Jacobian anyway; the others never one dim x dim
    y = _check_shapes(F, x, jacobian=method in ("auto", "newton", "q")
                      and int(x.shape[1]) <= _KRYLOV_DIM)
    # residuals stop at the rounding of the coarser of the starts and what the step returns
    # (a float32 model given float64 starts): the tolerance follows it
    dtype, coarser = _residual_dtype(xp, x.dtype, y.dtype)
    tol = _default_tol(xp, dtype) if tol is None else tol
    # copies of one point that each meet tol lie ~tol / sigma_min(I - J) apart
    unique_tol = max(1e-6, 10.0 * tol) if unique_tol is None else unique_tol
    _check_reachable(tol, xp, dtype, step=f"map: its step returns {dtype} for {x.dtype} "
                     f"starts; " if coarser else "")
    if q_steps is None:
        q_steps = _Q_STEPS if int(x.shape[1]) > _Q_MIN_DIM else 0
    method = _choose_method(method, slow_points, int(x.shape[1]), xp)
    logging.getLogger(__name__).info("find_fixed_points: method %r at dim %d", method,
                                     int(x.shape[1]))
    return Problem(map=map_, F=F, x=x, xp=xp, tol=tol, max_iter=max_iter,
                   unique_tol=unique_tol, patience=patience, q_steps=q_steps,
                   slow_points=method == "q", progress=progress, method=method,
                   deflation=deflation)


def _check_deflation(deflation):
    """``"auto"`` (or None), True, False, or a radius: a finite number > 0."""
    if deflation is None or isinstance(deflation, str) and deflation == "auto":
        return "auto"
    if isinstance(deflation, (bool, np.bool_)):
        return bool(deflation)
    if not isinstance(deflation, (int, float, np.integer, np.floating)):
        # a string other than "auto" is a bad value; anything else, a bad type
        error = ValueError if isinstance(deflation, str) else TypeError
        raise error(f"deflation must be 'auto', True, False or a radius > 0, got {deflation!r}")
    return check_real("deflation", deflation, positive=True)


def _choose_method(method, slow_points, dim, xp):
    """The method that runs: ``auto`` resolved by the stated rule, ``q`` for slow points."""
    if slow_points:
        if method in ("newton-krylov", "homotopy"):
            raise ValueError(f"method={method!r} finds no slow points: use "
                             "slow_points=True with method='q' (or 'auto')")
        return "q"
    if method == "auto":
        return _auto_name(dim, xp)
    if method in ("newton-krylov", "homotopy") and not is_numpy_namespace(xp):
        raise ValueError(f"method={method!r} runs on NumPy maps and starts; use "
                         "method='newton' on this backend")
    return method


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
