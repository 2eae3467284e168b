"""The two small languages that write a block matrix down.

Pattern tokens (``"0"``, ``"W"``, ``"R=0.5"``, ``"Row=2"``, ...) of
:meth:`BlockMatrix.from_pattern`, and the block types and initialisations of
:meth:`BlockMatrix.from_description` (the paper's description of a network).
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp

from .._core._backend import to_numpy
from .._core._checks import check_memory

_TOKEN = re.compile(r"^\s*(0|I|D|W|R|S|Row)\s*(?:=\s*([^\s]+))?\s*$", re.IGNORECASE)


def _grid(name, grid, n, broadcast=True):
    """A ``n x n`` list of lists from ``grid`` (or one value repeated, when allowed)."""
    if grid is None:
        return [[None] * n for _ in range(n)]
    is_grid = isinstance(grid, (list, tuple)) or (isinstance(grid, np.ndarray) and grid.ndim == 2
                                                  and grid.dtype == object)
    if not is_grid:
        if broadcast and not hasattr(grid, "shape"):
            return [[grid] * n for _ in range(n)]
        raise ValueError(f"{name} must be a {n} x {n} grid (list of lists)")
    if len(grid) != n or any(not isinstance(row, (list, tuple, np.ndarray)) or len(row) != n
                             for row in grid):
        raise ValueError(f"{name} must be a {n} x {n} grid (list of lists)")
    return [list(row) for row in grid]


_DESC_TOKEN = re.compile(r"^\s*(Row|R|S|W|D|0)(.*)$")


def _description_kind(token, key):
    if isinstance(token, (int, np.integer)) and not isinstance(token, bool) and token == 0:
        return ("0", None)
    if not isinstance(token, str):
        raise ValueError(f"block {key}: block type must be 0 or a string, got {token!r}")
    match = _DESC_TOKEN.match(token)
    if match is None:
        raise ValueError(f"block {key}: unknown block type {token!r}; expected 0, 'W', "
                         f"'D', 'R=p', 'S=n' or 'Row=n'")
    kind, rest = match.group(1), match.group(2).strip()
    if kind in ("0", "W") and rest:
        raise ValueError(f"block {key}: block type {token!r} takes no value")
    if kind == "D":
        return ("D", None)
    if kind in ("R", "S", "Row"):
        if not rest.startswith("="):
            raise ValueError(f"block {key}: block type {token!r} needs '=value'")
        value = rest[1:].strip()
        if kind == "R":
            return ("R", _probability(value, token, key))
        return (kind, _positive_int(value, token, key))
    return (kind, None)


def _initializer(init, m, n, gen, key):
    """``draw(rows, cols)``: the initial values at the given positions."""
    if hasattr(init, "shape"):
        arr = np.asarray(to_numpy(init), dtype=float)
        if arr.shape != (m, n):
            raise ValueError(f"block {key}: initialization array has shape {arr.shape}, the "
                             f"block is {(m, n)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"block {key}: initialization array contains NaN or inf")
        return lambda r, c: arr[r, c]
    if isinstance(init, (int, float, np.integer, np.floating)) and not isinstance(init, bool) \
            and init in (0, 1):
        value = float(init)
        return lambda r, c: np.full(np.shape(r), value)
    if not isinstance(init, str) or not init.strip():
        raise ValueError(f"block {key}: unknown initialization {init!r}; expected 0, 1, "
                         f"'C=v', 'G', 'G=mu,sigma', 'U', 'U=a,b' or an array")
    kind, eq, rest = init.strip().partition("=")
    try:
        values = [float(v) for v in rest.split(",")] if eq else []
    except ValueError:
        raise ValueError(f"block {key}: initialization {init!r} needs numbers after '='") \
            from None
    if not all(np.isfinite(values)):
        raise ValueError(f"block {key}: initialization {init!r} must be finite")
    if kind == "C" and len(values) == 1:
        return lambda r, c: np.full(np.shape(r), values[0])
    if kind == "G" and len(values) in (0, 2):
        mu, sigma = values or (0.0, 1.0)
        if sigma < 0:
            raise ValueError(f"block {key}: initialization {init!r} has a negative sigma")
        return lambda r, c: gen.normal(mu, sigma, size=np.shape(r))
    if kind == "U" and len(values) in (0, 2):
        lo, hi = values or (-1.0, 1.0)
        if hi < lo:
            raise ValueError(f"block {key}: initialization {init!r} has a > b")
        return lambda r, c: gen.uniform(lo, hi, size=np.shape(r))
    raise ValueError(f"block {key}: unknown initialization {init!r}; expected 0, 1, 'C=v', "
                     f"'G', 'G=mu,sigma', 'U', 'U=a,b' or an array")


def _described_block(kind, m, n, draw, gen, key):
    kind, arg = kind
    if kind == "W":
        r, c = np.indices((m, n))
        return np.asarray(draw(r, c), dtype=float).reshape(m, n)
    if kind == "D":
        r = c = np.arange(min(m, n))
    elif kind == "R":
        r, c = np.nonzero(gen.random((m, n)) < arg)
    elif kind == "S":
        # the draws, their positions and values: refused by name before numpy runs out
        check_memory("block_types", 48.0 * arg, f"block {key}'s {arg:.3g} draws")
        r, c = gen.integers(0, m, size=arg), gen.integers(0, n, size=arg)
    else:  # Row: arg columns per row, with replacement
        check_memory("block_types", 48.0 * m * arg, f"block {key}'s {m} x {arg:.3g} draws")
        r = np.repeat(np.arange(m), arg)
        c = gen.integers(0, n, size=m * arg)
    values = np.asarray(draw(r, c), dtype=float)
    # a position drawn twice keeps its last value, as assignment in the paper's loop does
    flat = r * n + c
    _, last = np.unique(flat[::-1], return_index=True)
    keep = np.sort(flat.size - 1 - last)
    block = sp.csr_matrix((values[keep], (r[keep], c[keep])), shape=(m, n))
    block.eliminate_zeros()
    return block


def _distinct_columns(m, n, k, gen):
    """``k`` distinct columns out of ``n`` for each of ``m`` rows, sorted, every k-subset
    equally likely: O(m k) memory, O(m k log k) time.

    Draws with replacement and redraws the repeats until none are left: what is kept and
    what is redrawn depends only on which draws are equal, so the law of the set is the
    same under every relabelling of the columns, hence uniform. Past ``k = n / 2`` the
    ``n - k`` columns left out are drawn instead (repeats would be common).
    """
    if 2 * k > n:
        out = np.ones((m, n), dtype=bool)
        out[np.arange(m)[:, None], _distinct_columns(m, n, n - k, gen)] = False
        return np.nonzero(out)[1].reshape(m, k)
    cols = gen.integers(0, n, size=(m, k))
    while True:
        cols.sort(axis=1)
        repeat = np.zeros(cols.shape, dtype=bool)
        np.equal(cols[:, 1:], cols[:, :-1], out=repeat[:, 1:])
        count = int(np.count_nonzero(repeat))
        if not count:
            return cols
        cols[repeat] = gen.integers(0, n, size=count)


def _positive_int(value, token, key):
    try:
        f = float(value)
    except ValueError:
        raise ValueError(f"block {key}: {token!r} needs a whole number") from None
    if not np.isfinite(f) or f != int(f) or f < 0:  # int(inf) is an OverflowError
        raise ValueError(f"block {key}: {token!r} needs a non-negative whole number")
    return int(f)


def _random_block(m, n, count, gen, scale):
    """``count`` random entries in an ``m x n`` block, gain about ``scale`` per row."""
    flat = np.sort(gen.choice(m * n, size=count, replace=False))
    std = scale / np.sqrt(max(count / m, 1e-300))
    values = gen.normal(0.0, std, size=count)
    return sp.csr_matrix((values, (flat // n, flat % n)), shape=(m, n))


def _probability(value, token, key):
    try:
        p = float(value)
    except ValueError:
        raise ValueError(f"block {key}: {token!r} needs a probability") from None
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"block {key}: probability in {token!r} must be in [0, 1]")
    return p


def token_bytes(token, m, n) -> float:
    """About the memory drawing an ``m x n`` block from ``token`` takes at its peak: a
    dense ``"W"`` block, ``"Row=k"``'s ``m k`` entries, ``"R=p"``'s positions
    (0 for the small ones, and for a token ``_block_from_token`` will refuse)."""
    match = _TOKEN.match(token) if isinstance(token, str) else None
    if match is None:
        return 0.0
    kind = match.group(1).upper()
    if kind == "W":
        return 8.0 * m * n
    if kind == "ROW":  # the entries, their rows and columns, the CSR matrix built from them
        try:
            k = min(max(float(match.group(2)), 0.0), n)
        except (TypeError, ValueError):
            return 0.0
        return 56.0 * m * k + (m * n if 2 * k > n else 0)
    if kind == "R":
        try:
            return 24.0 * m * n * min(max(float(match.group(2)), 0.0), 1.0)
        except (TypeError, ValueError):
            return 0.0
    return 0.0


def _block_from_token(token, m, n, gen, scale, key):
    if not isinstance(token, str):
        raise TypeError(f"block {key}: pattern token must be a string, got {token!r}")
    match = _TOKEN.match(token)
    if match is None:
        raise ValueError(f"block {key}: unknown pattern token {token!r}; expected one of "
                         "'0', 'I', 'D', 'W', 'R=p', 'S=n', 'Row=n'")
    kind, arg = match.group(1).upper(), match.group(2)
    takes_arg = kind in ("R", "S", "ROW")
    if takes_arg != (arg is not None):
        raise ValueError(f"block {key}: token {token!r} is malformed "
                         f"({'needs' if takes_arg else 'takes no'} '=value')")
    if kind == "0":
        return None
    if kind == "I":
        if m != n:
            raise ValueError(f"block {key}: identity block must be square, got {m} x {n}")
        return sp.identity(m, format="csr", dtype=np.float64)
    if kind == "D":
        k = min(m, n)
        return sp.csr_matrix((gen.normal(0.0, scale, size=k), (np.arange(k), np.arange(k))),
                             shape=(m, n))
    if kind == "W":
        return gen.normal(0.0, scale / np.sqrt(n), size=(m, n))
    if kind == "R":
        p = _probability(arg, token, key)
        count = int(gen.binomial(m * n, p))
        flat = gen.choice(m * n, size=count, replace=False)
        std = scale / np.sqrt(max(p * n, 1e-300))
    elif kind == "S":
        count = _positive_int(arg, token, key)
        if count > m * n:
            raise ValueError(f"block {key}: {token!r} asks for more entries than the "
                             f"{m} x {n} block holds")
        return _random_block(m, n, count, gen, scale)
    else:  # ROW
        per_row = _positive_int(arg, token, key)
        if per_row > n:
            raise ValueError(f"block {key}: {token!r} asks for more entries per row than "
                             f"the block's {n} columns")
        flat = (np.arange(m)[:, None] * n + _distinct_columns(m, n, per_row, gen)).ravel()
        std = scale / np.sqrt(max(per_row, 1))
    flat = np.sort(flat)
    values = gen.normal(0.0, std, size=flat.size)
    return sp.csr_matrix((values, (flat // n, flat % n)), shape=(m, n))
