"""Block matrices: the weights of an iterative map on a stacked state."""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._backend import backend_of, is_sparse, namespace, sparse_module, to_backend, to_numpy
from ._checks import check_real, named, no_half, one_namespace, plain_array
from ._rng import as_rng
from ._types import Array, RngLike

__all__ = ["BlockMatrix"]

_TOKEN = re.compile(r"^\s*(0|I|D|W|R|S|Row)\s*(?:=\s*([^\s]+))?\s*$", re.IGNORECASE)


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
        the pattern of a stored sparse block; see :attr:`trainable`.

    Examples
    --------
    >>> import numpy as np
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
        if blocks is None:
            blocks = {}
        if not isinstance(blocks, dict):
            raise TypeError(f"blocks must be a dict {{(i, j): array}}, got {type(blocks).__name__}")
        stored = {}
        for key, block in blocks.items():
            if not (isinstance(key, tuple) and len(key) == 2) or any(
                    isinstance(k, bool | np.bool_) or not isinstance(k, numbers.Integral)
                    for k in key):
                raise TypeError(f"blocks: a block key must be a pair of ints (i, j), got "
                                f"{key!r}")
            i, j = (int(k) for k in key)
            if not (0 <= i < n and 0 <= j < n):
                raise ValueError(f"blocks: block ({i}, {j}) is outside the {n} x {n} block "
                                 f"grid")
            with named("blocks"):
                block = self._check_block(i, j, block)
            if block is not None:
                stored[(i, j)] = block
        with named("blocks"):
            one_namespace(**{f"block {k}": b for k, b in stored.items()})
        self._blocks = dict(sorted(stored.items()))
        self._trainable = None if trainable is None else self._check_trainable(trainable)

    def _check_trainable(self, trainable):
        if not isinstance(trainable, dict):
            raise TypeError(f"trainable must be a dict {{(i, j): boolean mask}}, got "
                            f"{type(trainable).__name__}")
        n = len(self._sizes)
        out = {}
        for key, mask in trainable.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise TypeError(f"trainable key must be a pair (i, j), got {key!r}")
            i, j = (int(k) for k in key)
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

    def _check_block(self, i, j, block):
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
            raise ValueError(
                f"block ({i}, {j}) has shape {tuple(block.shape)}, but sizes require {want}"
            )
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
            block.eliminate_zeros()
            if block.nnz == 0:
                return None
        elif not bool(xp.any(block != 0)):
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
        if (
            not isinstance(pattern, (list, tuple))
            or len(pattern) != n
            or any(not isinstance(row, (list, tuple)) or len(row) != n for row in pattern)
        ):
            raise ValueError(f"pattern must be a {n} x {n} list of lists of tokens")
        scale = check_real("scale", scale)
        gen = as_rng(rng)
        blocks = {}
        with named("pattern"):
            for i in range(n):
                for j in range(n):
                    blocks[(i, j)] = _block_from_token(pattern[i][j], sizes[i], sizes[j], gen,
                                                       scale, (i, j))
        return cls(sizes, blocks)

    # -- construction from the paper's description ---------------------
    @classmethod
    def from_description(cls, row_sizes: Sequence[int], col_sizes: Sequence[int],
                         block_types: Any, initialization_types: Any = None,
                         trainable: Any = None, *, rng: RngLike = None) -> BlockMatrix:
        """A block matrix from the description language of the paper's ``MaskedLinear``.

        Follows ``MaskedLinear.from_description`` of the authors' iterativenn /
        iterativennsimple code: ``block_types[i][j]`` describes block ``(i, j)``
        (rows are outputs, as in torch's ``(out, in)`` weights and in
        :class:`BlockMatrix`), ``initialization_types[i][j]`` its values and
        ``trainable[i][j]`` which of its entries training may change.

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
        Where this differs from :meth:`from_pattern` (which stays as it is):
        from_pattern gives exact counts (``S=n`` is ``n`` distinct entries,
        ``Row=n`` is ``n`` per row) and one scale, ``N(0, scale**2 / m)``
        per row fill ``m``; from_description draws with replacement and takes
        the values from ``initialization_types``. The paper's quirk is kept:
        ``"R=p"`` (and ``"D"``, ``"S"``, ``"Row"``) with ``trainable=True``
        leaves *every* entry of the block trainable, not only the drawn ones;
        use ``"non-zero"`` for the pattern.

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
        """The common dtype of the stored blocks (float64 when there are none)."""
        dtypes = [b.dtype for b in self._blocks.values()]
        if not dtypes:
            return np.dtype(np.float64)
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
        >>> import numpy as np
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
        >>> import numpy as np
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
        for b in self._blocks.values():
            return namespace(b)
        return namespace(None)

    def _dense_dtype(self):
        for b in self._blocks.values():
            if not is_sparse(b):
                return b.dtype
        return self.dtype

    # -- conversions ------------------------------------------------------
    def to_dense(self) -> Array:
        """The full ``dim x dim`` matrix as a dense array on the blocks' backend.

        Returns
        -------
        array of shape (dim, dim)

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix([2, 1], {(1, 0): np.array([[1.0, -2.0]])})
        >>> W.to_dense()
        array([[ 0.,  0.,  0.],
               [ 0.,  0.,  0.],
               [ 1., -2.,  0.]])
        """
        xp = self._xp()
        off = self.offsets
        dense_blocks = {}
        for (i, j), b in self._blocks.items():
            dense_blocks[(i, j)] = xp.asarray(b.toarray()) if is_sparse(b) else b
        dtype = self._dense_dtype()
        out = xp.zeros(self.shape, dtype=dtype)
        for (i, j), b in dense_blocks.items():
            out[off[i]:off[i + 1], off[j]:off[j + 1]] = xp.astype(b, dtype)
        return out

    def to_sparse(self) -> Any:
        """The full matrix as CSR (scipy.sparse, or cupyx.scipy.sparse on the GPU).

        Returns
        -------
        sparse matrix (CSR) of shape (dim, dim)

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix([2, 1], {(1, 0): np.array([[1.0, -2.0]])})
        >>> W.to_sparse().nnz
        2
        """
        if self.backend == "cupy":
            smod = sparse_module(self._xp())
        else:
            smod = sp
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
        >>> import numpy as np
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
        >>> import numpy as np
        >>> from itermap import BlockMatrix
        >>> W = BlockMatrix([2, 1], {(1, 0): np.array([[1.0, -2.0]])})
        >>> print(W.describe())  # doctest: +ELLIPSIS
        2 x 2 blocks, sizes [2, 1], nnz 2, density 0.222
        ...
        """
        lines = [f"{self.n_blocks} x {self.n_blocks} blocks, sizes {list(self._sizes)}, "
                 f"nnz {self.nnz}, density {self.density:.3g}"]
        for i in range(self.n_blocks):
            cells = []
            for j in range(self.n_blocks):
                b = self._blocks.get((i, j))
                cells.append("." if b is None else ("s" if is_sparse(b) else "#"))
            lines.append(f"  [{i}] " + " ".join(cells))
        return "\n".join(lines)


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
            try:
                p = float(value)
            except ValueError:
                raise ValueError(f"block {key}: {token!r} needs a probability") from None
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"block {key}: probability in {token!r} must be in [0, 1]")
            return ("R", p)
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
        k = min(m, n)
        r = c = np.arange(k)
    elif kind == "R":
        r, c = np.nonzero(gen.random((m, n)) < arg)
    elif kind == "S":
        r, c = gen.integers(0, m, size=arg), gen.integers(0, n, size=arg)
    else:  # Row: arg columns per row, with replacement
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


def _positive_int(value, token, key):
    try:
        f = float(value)
    except ValueError:
        raise ValueError(f"block {key}: {token!r} needs a whole number") from None
    if f != int(f) or f < 0:
        raise ValueError(f"block {key}: {token!r} needs a non-negative whole number")
    return int(f)


def _block_from_token(token, m, n, gen, scale, key):
    if not isinstance(token, str):
        raise TypeError(f"block {key}: pattern token must be a string, got {token!r}")
    match = _TOKEN.match(token)
    if match is None:
        raise ValueError(
            f"block {key}: unknown pattern token {token!r}; expected one of "
            "'0', 'I', 'D', 'W', 'R=p', 'S=n', 'Row=n'"
        )
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
        try:
            p = float(arg)
        except ValueError:
            raise ValueError(f"block {key}: {token!r} needs a probability") from None
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"block {key}: probability in {token!r} must be in [0, 1]")
        count = int(gen.binomial(m * n, p))
        flat = gen.choice(m * n, size=count, replace=False)
        std = scale / np.sqrt(max(p * n, 1e-300))
    elif kind == "S":
        count = _positive_int(arg, token, key)
        if count > m * n:
            raise ValueError(f"block {key}: {token!r} asks for more entries than the "
                             f"{m} x {n} block holds")
        flat = gen.choice(m * n, size=count, replace=False)
        std = scale / np.sqrt(max(count / m, 1e-300))
    else:  # ROW
        per_row = _positive_int(arg, token, key)
        if per_row > n:
            raise ValueError(f"block {key}: {token!r} asks for more entries per row than "
                             f"the block's {n} columns")
        cols = np.argsort(gen.random((m, n)), axis=1)[:, :per_row] if per_row else \
            np.zeros((m, 0), dtype=np.int64)
        flat = (np.arange(m)[:, None] * n + cols).ravel()
        std = scale / np.sqrt(max(per_row, 1))
    flat = np.sort(flat)
    values = gen.normal(0.0, std, size=flat.size)
    return sp.csr_matrix((values, (flat // n, flat % n)), shape=(m, n))
