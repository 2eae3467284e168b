"""Clustering for the fixed-point search: points within a tolerance are one point, and
running starts that head to the same point follow one representative."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from itermap.backends import to_numpy

from ._common import _take

# rows of the pairwise distance matrices computed at once; rows that may lead in one
# pass of the clustering
_CHUNK = 2048
_HEAD = 256
# ... the first pass takes this many, each next pass twice as many (many rows at few
# points, as the lean loop on small maps returns them: one cheap pass)
_HEAD_FIRST = 32
# blocks of distances up to this many entries (rows x rows x dim) are taken directly
_DIRECT = 2 ** 15
# a start's candidate partners: its nearest few running starts (see _near_pairs)
_PARTNERS = 16
_DENSE_ROWS = 4096
_KDTREE_DIM = 16
_TREE_ROWS = 128
# a point's error bound r / min |1 - mu| widens its merging radius by at most this many
# unique_tol (merge_within_error)
_ERROR_RADIUS_CAP = 10.0
# two rows are being drawn together when their distance shrank by this factor at each of
# the last two iterations
_CONVERGE = 0.5


def _sq_dist(xp, a, b):
    """Squared Euclidean distances (len(a), len(b)): by differences for small blocks (no
    rounding), else through one matmul on rows centred on ``b``'s mean."""
    if a.shape[0] * b.shape[0] * a.shape[1] <= _DIRECT:
        d = a[:, None, :] - b[None, :, :]
        return xp.sum(d * d, axis=2)
    if a.dtype != xp.float64:   # float32 rounds |a|^2 by ~eps |a|^2: above its tolerances
        a, b = xp.astype(a, xp.float64), xp.astype(b, xp.float64)
    center = xp.mean(b, axis=0)
    a, b = a - center, b - center
    d2 = (xp.sum(a * a, axis=1)[:, None] + xp.sum(b * b, axis=1)[None, :]
          - 2.0 * xp.matmul(a, b.T))
    if isinstance(d2, np.ndarray):            # skip the array-API wrapper of clip
        return np.maximum(d2, 0.0, out=d2)
    return xp.clip(d2, 0.0, None) if hasattr(xp, "clip") else xp.maximum(d2, 0.0)


def _nearest_within(xp, a, b, tol):
    """For each row of ``a``: the index of the nearest row of ``b`` within ``tol``, or -1."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.full(a.shape[0], -1, dtype=np.int64)
    n_rows = a.shape[0]
    if n_rows <= _CHUNK:        # one block: no list to join (called every iteration)
        return _nearest_in(to_numpy(_sq_dist(xp, a, b)), tol)
    return np.concatenate([_nearest_in(to_numpy(_sq_dist(xp, a[s:min(s + _CHUNK, n_rows), :],
                                                          b)), tol)
                           for s in range(0, n_rows, _CHUNK)])


def _nearest_in(d2, tol):
    """Per row of the squared distances ``d2``: the nearest column within ``tol``, or -1."""
    j = np.argmin(d2, axis=1)
    return np.where(d2[np.arange(j.size), j] <= tol * tol, j, -1)


def _cluster(xp, x, tol, d2=None):
    """Leaders of groups of rows within ``tol``: returns (leader of each row, leader rows).

    In passes over the rows not yet placed: the first 32 of them (64, 128, then
    ``_HEAD`` in the passes after) with no earlier one of those within ``tol`` lead;
    every row within ``tol`` of a leader joins its nearest. Leaders end up more than
    ``tol`` apart, and a pass costs ``_HEAD`` distances a row at most, not all pairs
    (2,000 starts at 2 points: one pass). ``d2``: the squared distances of the rows
    to each other (host), when known.
    """
    n = x.shape[0]
    leader = np.full(n, -1, dtype=np.int64)
    rest = np.arange(n)
    size = _HEAD_FIRST
    while rest.size:
        head = rest[:size]
        size = min(2 * size, _HEAD)
        xh = None if d2 is not None else _take(xp, x, head)
        dh = d2[np.ix_(head, head)] if xh is None else to_numpy(_sq_dist(xp, xh, xh))
        # the first row within tol of each (itself, unless an earlier one is); a row's
        # distance to itself by the matmul form rounds to up to ~eps |x|^2, which can
        # exceed tol^2: each row counts as within tol of itself, and a leader leads itself
        within = dh <= tol * tol
        np.fill_diagonal(within, True)
        lead_at = np.flatnonzero(np.argmax(within, axis=1) == np.arange(head.size))
        new = head[lead_at]
        near = (_nearest_in(d2[np.ix_(rest, new)], tol) if xh is None else
                _nearest_within(xp, _take(xp, x, rest), _take(xp, x, new), tol))
        near[lead_at] = np.arange(new.size)     # head is rest[:size]
        joined = near >= 0
        leader[rest[joined]] = new[near[joined]]
        rest = rest[~joined]
    return leader, np.flatnonzero(leader == np.arange(n))


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


def _near_pairs(xp, x, radius, d2=None):
    """Pairs (i, j): j among the ``_PARTNERS`` nearest other rows of i within ``radius``
    (where that holds either way round, one of the two).

    A k-d tree on the host past ``_TREE_ROWS`` rows where ``dim <= _KDTREE_DIM``; else
    dense distances (a matmul per chunk of rows, or ``d2``, those of ``x`` to itself) up
    to ``_DENSE_ROWS`` rows; none beyond (the all-pairs cost would outgrow the Newton
    step's).
    """
    n, dim = int(x.shape[0]), int(x.shape[1])
    k = min(_PARTNERS, n - 1)
    tree = dim <= _KDTREE_DIM and n > _TREE_ROWS
    if k < 1 or not (tree or n <= _DENSE_ROWS):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if not tree:
        ii, jj = [], []
        for s in range(0, n, _CHUNK):
            d = (d2[s:s + _CHUNK] if d2 is not None else to_numpy(_sq_dist(
                xp, x[s:min(s + _CHUNK, n), :], x)))
            d = np.array(d, dtype=np.float64)
            rows = np.arange(d.shape[0])
            d[rows, rows + s] = np.inf
            within = d <= radius * radius
            if within.sum(axis=1).max(initial=0) <= k:    # each row's k nearest hold them:
                i, j = np.nonzero(within)        # the pairs either way round, each once
                once = j > i + s
                ii.append(i[once] + s)
                jj.append(j[once])
                continue
            near = (np.argpartition(d, k - 1, axis=1)[:, :k] if k < n - 1
                    else np.argsort(d, axis=1)[:, :k])
            within = np.take_along_axis(within, near, axis=1)
            ii.append(np.repeat(rows + s, k)[within.ravel()])
            jj.append(near[within])
        return np.concatenate(ii), np.concatenate(jj)
    from scipy.spatial import cKDTree

    pts = np.asarray(to_numpy(x), dtype=np.float64)
    _, near = cKDTree(pts).query(pts, k=k + 1, distance_upper_bound=np.nextafter(
        radius, np.inf))
    rows = np.repeat(np.arange(n)[:, None], k + 1, axis=1)
    valid = (near < n) & (near != rows)
    valid &= np.cumsum(valid, axis=1) <= k        # self missing among duplicates: k others
    return rows[valid], near[valid]


def _all_pairs(n, dim):
    """Whether :func:`_near_pairs` finds the partners of ``n`` rows from one matrix of all
    their distances (not a k-d tree, nor chunks of rows)."""
    return n <= _CHUNK and not (dim <= _KDTREE_DIM and n > _TREE_ROWS)


def _drawn_together(xp, x, prev1, prev2, res, radius, *, rows=None, d2=None):
    """Per row: the row it follows (itself if none): the least residual among its partners.

    Partners are near rows (see :func:`_near_pairs`, either way round) within
    ``radius`` whose distance shrank by the factor ``_CONVERGE`` at each of the
    last two iterations (``prev1`` and ``prev2`` are the rows one and two
    iterations back; with ``rows``, the rows ``rows`` of them). ``d2``: the squared
    distances of ``x`` to itself, when known. Chains resolve through the caller's
    ``follows`` (each row follows one of lower residual).
    """
    n = x.shape[0]
    lead = np.arange(n)
    ii, jj = _near_pairs(xp, x, radius, d2)
    if ii.size == 0:
        return lead
    at = (lambda i: i) if rows is None else (lambda i: rows[i])

    def sq_dists(a, i, j):
        d = _take(xp, a, i) - _take(xp, a, j)
        return to_numpy(xp.sum(d * d, axis=1)).astype(np.float64)

    d0 = sq_dists(x, ii, jj)
    k2 = _CONVERGE * _CONVERGE
    pair = d0 <= radius * radius
    d1 = sq_dists(prev1, at(ii), at(jj))
    pair &= d0 <= k2 * d1
    if pair.any():
        pair &= d1 <= k2 * sq_dists(prev2, at(ii), at(jj))
    ii, jj = ii[pair], jj[pair]
    if ii.size == 0:
        return lead
    # each row follows the partner of least residual (ties: lower index), or itself
    rows_, cand = np.concatenate([ii, jj, np.arange(n)]), np.concatenate([jj, ii, np.arange(n)])
    order = np.lexsort((cand, res[cand], rows_))
    rows_, cand = rows_[order], cand[order]
    first = np.concatenate([[True], rows_[1:] != rows_[:-1]])
    lead[rows_[first]] = cand[first]
    return lead


def merge_within_error(xp, points, residuals, eigenvalues, unique_tol):
    """The rows (ascending) that stand for the points once any two within ``unique_tol``
    plus their error bounds are one (single linkage; the least residual stands for each).

    A point found to residual ``r`` is known to ``r / min |1 - mu|`` over its multipliers
    ``mu`` (the smallest singular value of ``J - I`` is at most that gap): near a
    multiplier 1 in float32 the points meeting ``tol`` spread over ~1e-3 (a 2-layer LSTM:
    ten points for one). The bound counts up to ``_ERROR_RADIUS_CAP * unique_tol``: on a
    line of fixed points (a multiplier exactly 1) the points stay apart. Single linkage
    also keeps the least-residual members of two leader groups (:func:`_cluster`) from
    standing within ``unique_tol`` of each other.
    """
    m = int(points.shape[0])
    if m < 2:
        return np.arange(m)
    res = np.asarray(residuals, dtype=np.float64)
    rho = np.zeros(m)
    if eigenvalues is not None and np.size(eigenvalues):
        with np.errstate(invalid="ignore"):
            gap = np.min(np.abs(1.0 - np.asarray(to_numpy(eigenvalues))), axis=1)
            rho = np.minimum(res / np.maximum(gap, 1e-300), _ERROR_RADIUS_CAP * unique_tol)
        rho[~np.isfinite(rho)] = 0.0
    rows, cols = [], []
    block = max(1, _CHUNK * _CHUNK // m)
    for s in range(0, m, block):
        d2 = to_numpy(_sq_dist(xp, _take(xp, points, np.arange(s, min(s + block, m))),
                               points))
        reach = unique_tol + rho[s:s + block, None] + rho[None, :]
        i, j = np.nonzero(d2 <= reach * reach)
        rows.append(i + s)
        cols.append(j)
    i, j = np.concatenate(rows), np.concatenate(cols)
    n, label = connected_components(coo_matrix((np.ones(i.size), (i, j)), shape=(m, m)),
                                    directed=False)
    if n == m:
        return np.arange(m)
    keep, _ = _least_in_groups(label, res)
    return keep
