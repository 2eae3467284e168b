"""The dense runner of ``method="newton"`` and ``"q"``: starts in batches whose dense
Jacobians fit a memory budget, the points of the batches merged, polished by one
last Newton step and linearised."""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
from array_api_compat import is_numpy_namespace

from itermap.backends import to_numpy
from itermap.threads import blas_limited

from .._checks import check_memory
from ._clustering import _cluster, _least_in_groups
from ._common import (
    _SMALL_SOLVE,
    Solution,
    _eigenvalues,
    _Finished,
    _progress_bar,
    _settle,
    _take,
    _with_orbits,
)
from ._search import _polish
from ._slow_points import slow_point_fields

# bytes of dense Jacobians (times 4 for the work arrays) that one batch may hold
_MEM_BUDGET = 2 ** 30
# NumPy searches of at most this many units hold BLAS to one thread (as reports do: their
# SMALL_DIM): their batched products and factorisations are too small to split, and BLAS
# threads waiting on each other slow them (benchmarks/RESULTS.md, rounds 16 and 20)
_ONE_THREAD_DIM = 512


def run_dense(problem, search_batch) -> Solution:
    """Run ``search_batch(problem, x_batch, eye, done)`` over batches of the starts.

    ``search_batch`` returns (points, residuals, status per start, slow points, their
    residuals, whether its points may repeat: they are merged in any case); ``done``
    (a ``_Finished``) counts the starts finished on the progress bar.
    """
    problem = _plain_numpy(problem)
    x, xp = problem.x, problem.xp
    n_starts, dim = int(x.shape[0]), int(x.shape[1])
    itemsize = np.dtype(to_numpy(x[:1, :1]).dtype).itemsize
    # one start's Newton system and its work arrays, and the identity: refuse up front
    check_memory("method", 6.0 * dim * dim * itemsize,
                 f"method={problem.method!r}: the dense {dim} x {dim} Newton systems (use "
                 f"method='newton-krylov', matrix-free)")
    eye = xp.eye(dim, dtype=x.dtype)
    # the dense Jacobians of the active rows bound the batch: run chunks of starts
    chunk = max(1, _MEM_BUDGET // (4 * dim * dim * itemsize))
    found_x, found_r, slow_x, slow_r, statuses = [], [], [], [], []
    # a bar over the starts finished, shown once the search has run 2 s (progress=None)
    bar = _progress_bar(problem.progress, n_starts, dim, n_starts, problem.stage)
    done = _Finished(bar)
    small = dim <= _ONE_THREAD_DIM and is_numpy_namespace(xp)
    with bar, blas_limited(1) if small else contextlib.nullcontext():
        for s0 in range(0, n_starts, chunk):
            xc = x if chunk >= n_starts else x[s0:min(s0 + chunk, n_starts), :]
            # trial steps may overflow: they are rejected as non-finite, without warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                fx, fr, st, sx, sr, _ = search_batch(problem, xc, eye, done)
            found_x += fx
            found_r += fr
            slow_x += sx
            slow_r += sr
            statuses.append(st)
        status = np.concatenate(statuses).astype(np.int8)
        pts, res, jac = _distinct(problem, eye, found_x, found_r)
        # the last postfix drawn is the result's, not the last phase's running count
        bar.set_postfix(points=int(pts.shape[0]), refresh=False)
        _settle(bar)
        slow = (slow_point_fields(problem.F, xp, slow_x, slow_r, problem.unique_tol, dim,
                                  x.dtype) if problem.slow_points else None)
        ev = _eigenvalues(xp, jac)
    return Solution(points=pts, residuals=res, status=status, jacobians=jac,
                    eigenvalues=ev, slow=slow)


def _plain_numpy(problem):
    """The problem in NumPy's own namespace where it is NumPy >= 2.1 (an array-API
    namespace itself): its functions skip array_api_compat's wrappers, whose checks
    cost more than the arithmetic on small states."""
    if is_numpy_namespace(problem.xp) and hasattr(np, "astype"):
        return dataclasses.replace(problem, xp=np)
    return problem


def _distinct(problem, eye, found_x, found_r):
    """The distinct points of the batches, polished, with their Jacobians."""
    x, xp, F, unique_tol = problem.x, problem.xp, problem.F, problem.unique_tol
    torus = F.torus
    if not found_x:
        return _polish(F, xp, eye, xp.zeros((0, int(x.shape[1])), dtype=x.dtype))
    pts = xp.concat(found_x, axis=0)
    res = np.concatenate(found_r)
    if F.p > 1 and int(pts.shape[1]) > _SMALL_SOLVE:   # (the lean loop completes its own)
        pts, res = _with_orbits(F, xp, pts, res)
    if torus is not None:  # one representative of each point on the torus
        pts = torus.canonical(pts, unique_tol)
    # merged always (cheap on distinct points): batches and phases find points twice
    if int(pts.shape[0]) > 1:
        lead, _ = _cluster(xp, pts, unique_tol)
        keep_rows, _ = _least_in_groups(lead, res)
        pts = _take(xp, pts, keep_rows)
    before = pts
    pts, res, jac = _polish(F, xp, eye, pts)
    if torus is not None and pts is not before:  # the polish may step across the boundary
        pts = torus.canonical(pts, unique_tol)
    # points the polish brought together are merged by the driver, as any method's
    return pts, res, jac
