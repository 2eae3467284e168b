"""The result of a fixed-point search, and what became of each start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import itermap
from itermap.backends import to_numpy
from itermap.typing import Array

__all__ = ["FixedPoints", "STATUS"]

#: What became of each start (``FixedPoints.status`` holds the index into this tuple).
STATUS = ("converged", "slow point", "gave up: max_iter reached",
          "gave up: stalled (patience spent)", "gave up: non-finite residual")
CONVERGED, SLOW_POINT, GAVE_UP_MAX_ITER, GAVE_UP_STALLED, GAVE_UP_NONFINITE = range(5)
_RUNNING = -1


def _n_final(fate, stall_final):
    """How many of the fates are final: converged, slow point, non-finite and, with
    ``stall_final``, stalled (else a stalled start wanders next)."""
    done = (fate == CONVERGED) | (fate == SLOW_POINT) | (fate == GAVE_UP_NONFINITE)
    return int(np.sum(done | (stall_final & (fate == GAVE_UP_STALLED))))


@itermap.saveable
@dataclass
class FixedPoints(itermap.Result):
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
        True where every eigenvalue has modulus < 1. A modulus within 1e-9 of 1
        (rounding: an area-preserving map's elliptic point) counts as 1, neither
        stable nor unstable.
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

    _table: ClassVar[tuple[str, ...]] = ("points", "residuals", "stable", "n_unstable", "orbit",
                                         "min_period", "eigenvalues")
    _dims: ClassVar[dict[str, str]] = {"M": "point", "D": "unit", "S": "slow_point",
                                       "N": "start"}
    _checks: ClassVar[tuple[itermap.Check, ...]] = (
        itermap.Check("status", itermap.Status.MAX_ITERATIONS, "{n} starts used up "
                      "max_iter: raise max_iter", count=itermap.Check.equal_to(2)),
        itermap.Check("status", itermap.Status.STALLED, "{n} starts stalled: raise "
                      "patience or give more starts", count=itermap.Check.equal_to(3)),
        itermap.Check("status", itermap.Status.NONFINITE, "{n} starts reached NaN or inf: "
                      "start nearer the attractor", count=itermap.Check.equal_to(4)))

    # what load checks in a file (itermap/_interop/_schema.py)
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
