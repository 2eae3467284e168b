"""Block matrices: the weights of an iterative map on a stacked state."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._core._backend import backend_of, is_sparse, namespace, sparse_module, to_backend, to_numpy
from .._core._checks import check_memory, check_real, named, no_half, one_namespace, plain_array
from .._core._rng import as_rng
from .._core._types import Array, RngLike
from ._block_patterns import (
    _block_from_token,
    _described_block,
    _description_kind,
    _grid,
    _initializer,
    token_bytes,
)

__all__ = ["BlockMatrix"]


def _check_sizes(sizes, name: str = "sizes") -> tuple[int, ...]:
    if isinstance(sizes, str | bytes) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"{name} must be a sequence of ints, got {sizes!r}")
    try:
        raw = list(sizes)
    except TypeError as err:
        raise TypeError(f"{name} must be a sequence of ints, got {sizes!r} ({err})") from None
    if not raw:
        raise ValueError(f"{name} must name at least one block")
    for s in raw:
        if isinstance(s, bool | np.bool_) or not isinstance(s, numbers.Integral):
            raise TypeError(f"{name}: block sizes must be positive integers, got {raw}")
        if s <= 0:
            raise ValueError(f"{name}: block sizes must be positive integers, got {raw}")
    return tuple(int(s) for s in raw)


def _block_key(name: str, key) -> tuple[int, int]:
    """``key`` as a pair of ints ``(i, j)``, or a TypeError naming ``name``."""
    if not (isinstance(key, tuple) and len(key) == 2) or any(
            isinstance(k, bool | np.bool_) or not isinstance(k, numbers.Integral) for k in key):
        raise TypeError(f"{name}: a block key must be a pair of ints (i, j), got {key!r}")
    return int(key[0]), int(key[1])


def _keys(csr):
    """Rows, columns and flat index ``row * n_cols + col`` of the stored entries (the
    flat index sorted if ``csr`` is canonical)."""
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    return rows, csr.indices, rows * csr.shape[1] + csr.indices


def _in_sorted(a, b):
    """Which entries of ``a`` occur in the sorted array ``b``."""
    if b.size == 0:
        return np.zeros(a.shape, bool)
    return b[np.minimum(np.searchsorted(b, a), b.size - 1)] == a


def _with_mask(block, mask):
    """Sparse ``block`` stored on its nonzeros and every entry ``mask`` marks trainable
    (explicit zeros kept, missing entries added as zeros): training updates stored entries
    only, so the pattern must hold the mask. Unchanged blocks are returned as given."""
    host = to_numpy(block).tocsr()
    if not host.has_canonical_format:  # a copy: the caller's matrix stays as it is
        host = host.copy()
        host.sum_duplicates()
    if is_sparse(mask) and mask.has_canonical_format and mask.nnz == host.nnz and \
            np.array_equal(mask.indptr, host.indptr) and \
            np.array_equal(mask.indices, host.indices) and bool(np.all(mask.data)):
        return block  # the mask is the pattern (from_graph's, prune's): all of it trains
    mask = sp.csr_matrix(mask, dtype=bool, copy=True)  # the stored mask stays as given
    mask.eliminate_zeros()
    mask.sum_duplicates()
    (rows, cols, have), (mrows, mcols, want) = _keys(host), _keys(mask)
    keep = np.asarray(host.data != 0)
    zero = np.flatnonzero(~keep)
    keep[zero] = _in_sorted(have[zero], want)
    extra = ~_in_sorted(want, have)
    if keep.all() and not extra.any():
        return block
    data = np.concatenate([host.data[keep], np.zeros(int(extra.sum()), host.dtype)])
    out = sp.csr_matrix((data, (np.concatenate([rows[keep], mrows[extra]]),
                                np.concatenate([cols[keep], mcols[extra]]))), shape=host.shape)
    return to_backend(out, "cupy") if "cupy" in type(block).__module__ else out


class BlockMatrix:
    """A square matrix made of blocks, on a state stacked as ``[x_0; x_1; ...]``.

    Parameters
    ----------
    sizes : sequence of int
        The size of each block of the state.
    blocks : dict
        ``{(i, j): block}`` where ``block`` is a dense array (NumPy, CuPy or any
        array-API array) or a sparse matrix (scipy.sparse, cupyx.scipy.sparse) of
        shape ``(sizes[i], sizes[j])``. Block ``(i, j)`` maps input block ``j``
        to output block ``i``: ``(W x)[i] = sum_j W[i, j] @ x[j]`` (the
        column-vector convention). PyTorch-style ``Sequential2D`` code stores
        the transpose, ``(in, out)``; pass ``block.T`` from there. Missing blocks
        are zero, and blocks without a nonzero entry are dropped.
    trainable : dict, optional
        ``{(i, j): mask}``: which entries training may change, a boolean array
        of block ``(i, j)``'s shape (dense, or a sparse boolean matrix). Keys
        may name blocks that are zero now (a block initialised to zeros that
        training fills). By default every entry of a stored dense block and
        the pattern of a stored sparse block; see :attr:`trainable`. A stored
        sparse block holds every entry its mask marks (as an explicit zero if
        need be), so they train; its other zeros are dropped.

    Examples
    --------
    >>> from itermap import BlockMatrix
    >>> W = BlockMatrix([2, 3], {(1, 0): np.ones((3, 2))})
    >>> W.shape, W.nnz
    ((5, 5), 6)
    >>> W.to_dense()[2:, :2]
    array([[1., 1.],
           [1., 1.],
           [1., 1.]])
    """

    def __init__(self, sizes: Sequence[int], blocks: Mapping[tuple[int, int], Any] | None = None,
                 *, trainable: Mapping[tuple[int, int], Any] | None = None):
        self._sizes = _check_sizes(sizes)
        n = len(self._sizes)
        blocks = {} if blocks is None else blocks
        if not isinstance(blocks, dict):
            raise TypeError(f"blocks must be a dict {{(i, j): array}}, got {type(blocks).__name__}")
        stored = {}
        self._zero_dtype = None      # the dtype of dropped zero blocks (a map keeps it)
        self._trainable = None if trainable is None else self._check_trainable(trainable)
        masks = self._trainable or {}
        for key, block in blocks.items():
            i, j = _block_key("blocks", key)
            if not (0 <= i < n and 0 <= j < n):
                raise ValueError(f"blocks: block ({i}, {j}) is outside the {n} x {n} block "
                                 f"grid")
            with named("blocks"):
                block = self._check_block(i, j, block, masks.get((i, j)))
            if block is not None:
                stored[(i, j)] = block
        with named("blocks"):
            one_namespace(**{f"block {k}": b for k, b in stored.items()})
        self._blocks = dict(sorted(stored.items()))

    def _check_trainable(self, trainable):
        if not isinstance(trainable, dict):
            raise TypeError(f"trainable must be a dict {{(i, j): boolean mask}}, got "
                            f"{type(trainable).__name__}")
        n = len(self._sizes)
        out = {}
        for key, mask in trainable.items():
            i, j = _block_key("trainable", key)
            if not (0 <= i < n and 0 <= j < n):
                raise ValueError(f"trainable block ({i}, {j}) is outside the {n} x {n} grid")
            want = (self._sizes[i], self._sizes[j])
            if is_sparse(mask):
                mask = mask.astype(bool).tocsr()
            else:
                mask = np.asarray(to_numpy(mask))
                if mask.dtype != bool:
                    if not np.all((mask == 0) | (mask == 1)):
                        raise ValueError(f"trainable block ({i}, {j}) must be a boolean mask")
                    mask = mask.astype(bool)
            if tuple(mask.shape) != want:
                raise ValueError(f"trainable block ({i}, {j}) has shape {tuple(mask.shape)}, "
                                 f"but sizes require {want}")
            if (mask.nnz if is_sparse(mask) else mask.any()):
                out[(i, j)] = mask
        return dict(sorted(out.items()))

    def _check_block(self, i, j, block, mask=None):
        if block is None:
            return None
        want = (self._sizes[i], self._sizes[j])
        if is_sparse(block):
            block = block.tocsr()
            data = block.data
        else:
            block = plain_array(f"block ({i}, {j})", block)
            if not hasattr(block, "shape"):
                block = np.asarray(block)
            data = block
        if tuple(block.shape) != want:
            raise ValueError(f"block ({i}, {j}) has shape {tuple(block.shape)}, but sizes "
                             f"require {want}")
        xp = namespace(data)
        if not xp.isdtype(data.dtype, "real floating"):
            if xp.isdtype(data.dtype, ("integral", "bool")):
                data = xp.astype(data, xp.float64)
                block = block.astype(np.float64) if is_sparse(block) else data
            else:
                raise TypeError(f"block ({i}, {j}) must be real, got dtype {data.dtype}")
        no_half(f"block ({i}, {j})", data)  # a half-precision map could run no analysis
        if not bool(xp.all(xp.isfinite(data))):
            raise ValueError(f"block ({i}, {j}) contains NaN or inf")
        if is_sparse(block):
            if not bool(xp.any(block.data != 0)):
                self._zero_dtype = data.dtype
                return None
            if mask is not None:
                block = _with_mask(block, mask)
            elif not bool(xp.all(block.data != 0)):  # from a copy: the caller's matrix
                block = block.copy()                 # keeps its explicit zeros (a pattern)
                block.eliminate_zeros()
        elif not bool(xp.any(block != 0)):
            self._zero_dtype = data.dtype
            return None
        return block

    # -- construction from a pattern --------------------------------------
    @classmethod
    def from_pattern(cls, sizes: Sequence[int], pattern: Any, *, rng: RngLike = None,
                     scale: float = 1.0) -> BlockMatrix:
        """Build a random block matrix from a grid of block tokens.

        Parameters
        ----------
        sizes : sequence of int
            Block sizes.
        pattern : list of list of str
            ``pattern[i][j]`` describes block ``(i, j)``:

            - ``"0"``: zero (not stored);
            - ``"I"``: identity (square blocks only);
            - ``"D"``: random diagonal;
            - ``"W"``: dense random;
            - ``"R=p"``: each entry present with probability ``p``;
            - ``"S=n"``: exactly ``n`` random entries in the block;
            - ``"Row=n"``: exactly ``n`` random entries in every row.
        rng : int, Generator or None
            Source of the random values and positions.
        scale : float
            Random values are drawn from ``N(0, scale**2 / m)`` where ``m`` is
            the expected number of nonzeros per row of the block, so every
            random block has a gain of about ``scale`` whatever its sparsity.
            Identity blocks are exact ones.

        Returns
        -------
        BlockMatrix

        Raises
        ------
        ValueError
            A pattern that is not ``n x n`` for ``n`` blocks, an unknown token, an
            identity on a block that is not square, a bad ``scale``.
        TypeError
            Sizes that are not integers.

        Examples
        --------
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix.from_pattern([4, 3, 2], [["0", "0", "0"],
        ...                                          ["W", "0", "0"],
        ...                                          ["0", "Row=1", "I"]], rng=0)
        >>> W.block_pattern().astype(int)
        array([[0, 0, 0],
               [1, 0, 0],
               [0, 1, 1]])
        >>> W.nnz
        16
        """
        sizes = _check_sizes(sizes)
        n = len(sizes)
        if not isinstance(pattern, (list, tuple)) or len(pattern) != n or any(
                not isinstance(row, (list, tuple)) or len(row) != n for row in pattern):
            raise ValueError(f"pattern must be a {n} x {n} list of lists of tokens")
        scale = check_real("scale", scale)
        check_memory("sizes", sum(token_bytes(pattern[i][j], sizes[i], sizes[j])
                                  for i in range(n) for j in range(n)), "the pattern's blocks")
        gen = as_rng(rng)
        with named("pattern"):
            blocks = {(i, j): _block_from_token(pattern[i][j], sizes[i], sizes[j], gen, scale,
                                                (i, j))
                      for i in range(n) for j in range(n)}
        return cls(sizes, blocks)

    # -- construction from the paper's description ---------------------
    @classmethod
    def from_description(cls, row_sizes: Sequence[int], col_sizes: Sequence[int],
                         block_types: Any, initialization_types: Any = None,
                         trainable: Any = None, *, rng: RngLike = None) -> BlockMatrix:
        """A block matrix from the description language of the paper's ``MaskedLinear``.

        As ``MaskedLinear.from_description`` of the authors' iterativenn code:
        ``block_types[i][j]`` describes block ``(i, j)`` (rows are outputs),
        ``initialization_types[i][j]`` its values, ``trainable[i][j]`` its trainable
        entries.

        Parameters
        ----------
        row_sizes, col_sizes : sequence of int
            Block sizes; a BlockMatrix is square, so they must be equal.
        block_types : 2-D grid
            ``0`` (or ``"0"``): zeros; ``"W"``: every entry; ``"D..."`` (any
            token starting with D): the diagonal; ``"R=p"``: each entry with
            probability ``p``; ``"S=n"``: ``n`` entries drawn *with
            replacement*; ``"Row=n"``: ``n`` columns per row drawn *with
            replacement*. S and Row may therefore give fewer than ``n``
            entries, as the paper's code does.
        initialization_types : 2-D grid or one value, optional
            (One value describes every non-zero block.)
            ``0``, ``1``, ``"C=v"`` (the constant v), ``"G"`` / ``"G=mu,sigma"``
            (normal, default ``0, 1``), ``"U"`` / ``"U=a,b"`` (uniform, default
            ``-1, 1``) or an array of the block's shape (its entries are
            taken where the block type puts one). Default ``"G"`` for every
            non-zero block.
        trainable : 2-D grid or one value, optional
            ``True`` (every entry of the block, zeros included), ``False``, or
            ``"non-zero"`` (the block's nonzero entries). Default ``True``
            for every non-zero block. A ``0`` block must be initialised 0 and
            not trainable.
        rng : int, Generator or None
            Source of the random positions and values.

        Returns
        -------
        BlockMatrix
            With :attr:`trainable` set from ``trainable``; :attr:`trainable_count`
            counts the trainable entries.

        Raises
        ------
        ValueError
            Naming the block and the token it cannot read.

        Notes
        -----
        Unlike :meth:`from_pattern` (exact counts, one scale), positions are drawn
        with replacement and values come from ``initialization_types``. The paper's
        quirk is kept: ``trainable=True`` on a sparse block type leaves *every*
        entry trainable; use ``"non-zero"`` for the pattern.

        Examples
        --------
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix.from_description(
        ...     [2, 3], [2, 3], [[0, 0], ["W", "D"]],
        ...     [[0, 0], ["C=0.5", "U=-1,1"]], [[False, False], [True, "non-zero"]], rng=0)
        >>> W.to_dense()[2:, :2]
        array([[0.5, 0.5],
               [0.5, 0.5],
               [0.5, 0.5]])
        >>> W.trainable_count      # 6 in the dense block, 3 on the diagonal
        9
        """
        rows = _check_sizes(row_sizes)
        cols = _check_sizes(col_sizes)
        if rows != cols:
            raise ValueError(f"col_sizes {list(cols)} differ from row_sizes {list(rows)}: a "
                             f"BlockMatrix is square")
        n = len(rows)
        types = _grid("block_types", block_types, n, broadcast=False)
        inits = _grid("initialization_types", initialization_types, n)
        trains = _grid("trainable", trainable, n)
        # one value for the whole grid describes the non-zero blocks; 0 blocks keep theirs
        one_init = not isinstance(initialization_types, (list, tuple, np.ndarray)) or \
            getattr(initialization_types, "ndim", 2) != 2
        one_train = not isinstance(trainable, (list, tuple, np.ndarray))
        gen = as_rng(rng)
        blocks, masks = {}, {}
        for i in range(n):
            for j in range(n):
                key = (i, j)
                kind = _description_kind(types[i][j], key)
                zero = kind[0] == "0"
                init = inits[i][j] if inits[i][j] is not None and not (zero and one_init) \
                    else (0 if zero else "G")
                train = trains[i][j] if trains[i][j] is not None and not (zero and one_train) \
                    else (not zero)
                if zero:
                    if train is not False:
                        raise ValueError(f"block {key}: a 0 block must not be trainable, got "
                                         f"trainable={train!r}")
                    if not (isinstance(init, (int, float)) and not isinstance(init, bool)
                            and init == 0):
                        raise ValueError(f"block {key}: a 0 block must be initialised 0, got "
                                         f"{init!r}")
                    continue
                draw = _initializer(init, rows[i], cols[j], gen, key)
                block = _described_block(kind, rows[i], cols[j], draw, gen, key)
                if train is True:
                    masks[key] = np.ones(block.shape, dtype=bool)
                elif train == "non-zero":
                    masks[key] = (block.toarray() if is_sparse(block) else block) != 0
                elif train is not False:
                    raise ValueError(f"block {key}: trainable must be True, False or "
                                     f"'non-zero', got {train!r}")
                blocks[key] = block
        return cls(rows, blocks, trainable=masks)

    # -- properties -------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        return self._sizes

    @property
    def n_blocks(self) -> int:
        return len(self._sizes)

    @property
    def dim(self) -> int:
        return sum(self._sizes)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    @property
    def blocks(self) -> dict:
        """The stored (nonzero) blocks, ``{(i, j): block}``, sorted by key."""
        return dict(self._blocks)

    @property
    def trainable(self) -> dict:
        """Which entries training may change: ``{(i, j): boolean mask}``, keyed like
        :attr:`blocks`.

        A mask is a boolean NumPy array of the block's shape, or a sparse
        boolean matrix for a sparse block whose mask was not given. A block
        missing from the dict has no trainable entry. Unless given (the
        ``trainable`` argument, or :meth:`from_description`), every entry of a
        stored dense block and the nonzero pattern of a stored sparse block.
        """
        if self._trainable is not None:
            return dict(self._trainable)
        out = {}
        for key, b in self._blocks.items():
            if is_sparse(b):
                # masks live on the host: a cupyx matrix cannot hold NumPy data
                pattern = to_numpy(b).copy() if self.backend == "cupy" else b.copy()
                pattern.data = np.ones(pattern.nnz, dtype=bool)
                out[key] = pattern.astype(bool)
            else:
                out[key] = np.ones(b.shape, dtype=bool)
        return out

    @property
    def trainable_count(self) -> int:
        """Number of trainable entries, counted as the paper counts parameters
        (``count_nonzero`` of each block's mask; no biases here)."""
        return int(sum(int(m.count_nonzero()) if is_sparse(m) else int(np.count_nonzero(m))
                       for m in self.trainable.values()))

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start index of each block in the stacked state, plus the total."""
        return tuple(int(v) for v in np.concatenate([[0], np.cumsum(self._sizes)]))

    @property
    def dtype(self):
        """The common dtype of the stored blocks (with none: that of the zero blocks
        given, else float64)."""
        dtypes = [b.dtype for b in self._blocks.values()]
        if not dtypes:
            zero = getattr(self, "_zero_dtype", None)     # (pickles from before it)
            return np.dtype(np.float64) if zero is None else np.dtype(zero)
        if all(d == dtypes[0] for d in dtypes):
            return dtypes[0]
        return np.result_type(*dtypes)

    @property
    def backend(self) -> str:
        for b in self._blocks.values():
            return "cupy" if "cupy" in type(b).__module__ else backend_of(b)
        return "numpy"

    @property
    def nnz(self) -> int:
        """Number of nonzero entries."""
        total = 0
        for b in self._blocks.values():
            if is_sparse(b):
                total += int(b.count_nonzero())
            else:
                xp = namespace(b)
                total += int(xp.count_nonzero(b)) if hasattr(xp, "count_nonzero") else int(
                    xp.sum(xp.astype(b != 0, xp.int64)))
        return total

    @property
    def density(self) -> float:
        """Fraction of nonzero entries of the full ``dim x dim`` matrix."""
        return self.nnz / float(self.dim) ** 2

    def block(self, i: int, j: int) -> Array | None:
        """Block ``(i, j)``: the stored array, or zeros of the blocks' kind.

        Parameters
        ----------
        i, j : int
            Output block and input block (negative counts from the end).

        Returns
        -------
        array or sparse matrix of shape (sizes[i], sizes[j])

        Raises
        ------
        ValueError
            A block outside the grid.

        Examples
        --------
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix([2, 1], {(1, 0): np.array([[1.0, -2.0]])})
        >>> W.block(1, 0), W.block(0, 0)
        (array([[ 1., -2.]]), array([[0., 0.],
               [0., 0.]]))
        """
        n = self.n_blocks
        if not (-n <= i < n and -n <= j < n):
            raise ValueError(f"block ({i}, {j}) is outside the {n} x {n} block grid")
        i, j = i % n, j % n
        if (i, j) in self._blocks:
            return self._blocks[(i, j)]
        shape = (self._sizes[i], self._sizes[j])
        if any(is_sparse(b) for b in self._blocks.values()):
            return sparse_module(self._xp()).csr_matrix(shape, dtype=self.dtype)
        return self._xp().zeros(shape, dtype=self._dense_dtype())

    def block_pattern(self) -> np.ndarray:
        """Boolean ``(n_blocks, n_blocks)`` array, True where a block is stored.

        Returns
        -------
        numpy.ndarray of bool, shape (n_blocks, n_blocks)

        Examples
        --------
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix([2, 1], {(1, 0): np.array([[1.0, -2.0]])})
        >>> W.block_pattern()
        array([[False, False],
               [ True, False]])
        """
        mask = np.zeros((self.n_blocks, self.n_blocks), dtype=bool)
        for i, j in self._blocks:
            mask[i, j] = True
        return mask

    def _xp(self):
        return namespace(next(iter(self._blocks.values()), None))

    def _dense_dtype(self):
        return next((b.dtype for b in self._blocks.values() if not is_sparse(b)), self.dtype)

    # -- conversions ------------------------------------------------------
    def to_dense(self) -> Array:
        """The full ``dim x dim`` matrix as a dense array on the blocks' backend.

        Returns
        -------
        array of shape (dim, dim)

        Examples
        --------
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix([2, 1], {(1, 0): np.array([[1.0, -2.0]])})
        >>> W.to_dense()
        array([[ 0.,  0.,  0.],
               [ 0.,  0.,  0.],
               [ 1., -2.,  0.]])
        """
        xp = self._xp()
        off = self.offsets
        dtype = self._dense_dtype()
        out = xp.zeros(self.shape, dtype=dtype)
        for (i, j), b in self._blocks.items():
            b = xp.asarray(b.toarray()) if is_sparse(b) else b
            out[off[i]:off[i + 1], off[j]:off[j + 1]] = xp.astype(b, dtype)
        return out

    def to_sparse(self) -> Any:
        """The full matrix as CSR (scipy.sparse, or cupyx.scipy.sparse on the GPU).

        Returns
        -------
        sparse matrix (CSR) of shape (dim, dim)

        Examples
        --------
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix([2, 1], {(1, 0): np.array([[1.0, -2.0]])})
        >>> W.to_sparse().nnz
        2
        """
        smod = sparse_module(self._xp()) if self.backend == "cupy" else sp
        n = self.n_blocks
        grid = [[None] * n for _ in range(n)]
        for (i, j), b in self._blocks.items():
            if is_sparse(b):
                grid[i][j] = b
            elif self.backend in ("numpy", "cupy"):
                grid[i][j] = smod.csr_matrix(b)
            else:
                grid[i][j] = sp.csr_matrix(to_numpy(b))
        # bmat needs the size of every block row and column: pin them with empty diagonals
        for k in range(n):
            if grid[k][k] is None:
                grid[k][k] = smod.csr_matrix((self._sizes[k], self._sizes[k]), dtype=self.dtype)
        return smod.bmat(grid, format="csr")

    def to(self, backend: str) -> BlockMatrix:
        """A copy with every block moved to ``backend`` ("numpy" or "cupy").

        Parameters
        ----------
        backend : {"numpy", "cupy"}

        Returns
        -------
        BlockMatrix

        Raises
        ------
        ValueError
            An unknown backend, or ``"cupy"`` without cupy or a GPU.

        Examples
        --------
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix([2, 1], {(1, 0): np.array([[1.0, -2.0]])})
        >>> W.to("numpy").backend
        'numpy'
        """
        return BlockMatrix(self._sizes,
                           {k: to_backend(b, backend) for k, b in self._blocks.items()},
                           trainable=self._trainable)

    def __repr__(self) -> str:
        return (f"BlockMatrix(sizes={list(self._sizes)}, blocks={len(self._blocks)}, "
                f"nnz={self.nnz}, density={self.density:.3g})")

    def describe(self) -> str:
        """A text table of the block structure: one row per block row.

        Each cell shows ``.`` for a zero block, ``#`` for a dense block and
        ``s`` for a sparse one.

        Returns
        -------
        str

        Examples
        --------
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix([2, 1], {(1, 0): np.array([[1.0, -2.0]])})
        >>> print(W.describe())  # doctest: +ELLIPSIS
        2 x 2 blocks, sizes [2, 1], nnz 2, density 0.222
        ...
        """
        lines = [f"{self.n_blocks} x {self.n_blocks} blocks, sizes {list(self._sizes)}, "
                 f"nnz {self.nnz}, density {self.density:.3g}"]
        kinds = {k: "s" if is_sparse(b) else "#" for k, b in self._blocks.items()}
        for i in range(self.n_blocks):
            lines.append(f"  [{i}] " + " ".join(kinds.get((i, j), ".")
                                               for j in range(self.n_blocks)))
        return "\n".join(lines)
