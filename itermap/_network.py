"""Networks as iterative maps: ``x_{k+1} = f(W x_k + b)`` on a stacked state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._activations import get_activation
from ._backend import backend_of, is_sparse, namespace, sparse_module, to_backend, to_numpy
from ._block_functions import BlockFunction
from ._blocks import BlockMatrix, _check_sizes
from ._checks import check_int, check_real, named, no_half, one_namespace, plain_array
from ._fused_steppers import BatchedStepper, FusedStepper, frame_groups
from ._map import Map
from ._rng import as_rng
from ._sparse_product import csr_times, splits
from ._types import Array, RngLike

__all__ = ["IterativeMap", "random_rnn"]

# a BlockMatrix whose stored dense area exceeds this fraction of dim^2 runs as one dense matmul
_DENSE_FILL = 0.5
# a sparse map's input columns held dense (for one state) up to this many entries
_SMALL_INPUT_AREA = 1 << 16


class IterativeMap(Map):
    """The map ``x -> f(W x + b)`` on a state stacked from blocks.

    Parameters
    ----------
    weights : BlockMatrix, dense 2-D array or sparse matrix
        The square weight matrix ``W``, in the column-vector convention:
        ``W[i, j]`` carries unit ``j`` to unit ``i``. A plain matrix is one
        block unless ``sizes`` splits it.
    bias : array of shape (dim,), optional
        The bias ``b``; zero when omitted.
    activation : str, Activation, or a sequence of them
        One nonlinearity for every unit, or one per block (the paper's
        heterogeneous activations): ``"tanh"``, ``"relu"``, ``"elu"``,
        ``"sigmoid"``, ``"identity"``, ``"softplus"``, ``"leaky_relu"``, ``"sin"``.
    input_block : int, optional
        The block overwritten by the external input ``u`` before every step
        (the paper's data insertion). None for an autonomous map. The new
        state's input block holds ``u`` too, so under a constant input the
        fixed points carry the input; rows of ``W`` for the input block are
        therefore unused, and the Jacobian has zero rows and columns there.
    sizes : sequence of int, optional
        Block sizes that split a plain matrix ``weights``.
    functions : mapping of (i, j) to BlockFunction, optional
        Blocks that are functions rather than matrices (the paper's Sequential2D allows
        any module in a block): ``g_ij`` carries block ``j``'s units to block ``i``'s,
        and block ``i``'s new state is ``f_i(sum_j W_ij x_j + sum_j g_ij(x_j) + b_i)``.
        A block may hold a matrix and a function at once; they add. See
        :mod:`itermap.block_functions` for the built-in ones (transformer layers) and
        how to write your own. Function blocks are not trained: :func:`itermap.train`
        trains the matrix blocks around them.
    leak : float or sequence of float, optional
        The leak rate ``a`` of a leaky-integrator network, one for every block
        or one per block, each in (0, 1]: block ``i``'s new state is
        ``(1 - a_i) x_i + a_i f_i(sum_j W_ij x_j + b_i)`` (an echo state
        network's leaky reservoir, Jaeger et al. 2007). None or 1 everywhere is
        the plain map ``f(W x + b)``, computed exactly as without a leak. The
        input block's entry has no effect (the input overwrites that block) and
        reads back as 1.

    Notes
    -----
    States are rows: a batch has shape ``(B, dim)`` and one step computes
    ``f(X @ W.T + b)``. Dense weights run as one BLAS matmul (or one per
    stored block when fewer than half the blocks are filled); sparse weights
    stay sparse (scipy.sparse or cupyx.scipy.sparse).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import IterativeMap
    >>> m = IterativeMap(np.array([[0.5, 0.0], [0.0, 0.5]]), activation="identity")
    >>> m.step(np.array([1.0, 2.0]))
    array([0.5, 1. ])
    """

    def __init__(self, weights: Any, bias: Array | None = None,
                 activation: str | Sequence[str] = "tanh", *, input_block: int | None = None,
                 sizes: Sequence[int] | None = None,
                 functions: Mapping[tuple[int, int], BlockFunction] | None = None,
                 leak: float | Sequence[float] | None = None):
        if isinstance(weights, str | bytes) or weights is None:
            raise TypeError(f"weights must be a BlockMatrix, a 2-D array or a sparse matrix, "
                            f"got {type(weights).__name__}")
        if isinstance(weights, BlockMatrix):
            if sizes is not None and tuple(sizes) != weights.sizes:
                raise ValueError(f"sizes {list(sizes)} disagree with the BlockMatrix sizes "
                                 f"{list(weights.sizes)}")
            bm = weights
        elif is_sparse(weights) or hasattr(weights, "shape") or isinstance(weights, (list, tuple)):
            weights = _check_matrix("weights", weights)
            one_namespace(weights=weights, bias=bias, movable=True)
            if len(weights.shape) != 2 or weights.shape[0] != weights.shape[1]:
                raise ValueError(f"weights must be a square matrix, got shape "
                                 f"{tuple(weights.shape)}")
            n = weights.shape[0]
            sizes = (n,) if sizes is None else _check_sizes(sizes, "sizes")
            if sum(sizes) != n:
                raise ValueError(f"sizes: block sizes {list(sizes)} add up to {sum(sizes)}, "
                                 f"but weights is {n} x {n}")
            with named("weights"):
                bm = _split(weights, sizes)
        else:
            raise TypeError("weights must be a BlockMatrix, a 2-D array or a sparse matrix, got "
                            f"{type(weights).__name__}")
        self._bm = bm
        self._sizes = bm.sizes
        self._offsets = bm.offsets
        self._slices = tuple(slice(self._offsets[i], self._offsets[i + 1])
                             for i in range(len(self._sizes)))
        if input_block is not None:
            if isinstance(input_block, bool) or not isinstance(input_block, (int, np.integer)):
                raise TypeError(f"input_block must be an int or None, got {input_block!r}")
            if not 0 <= input_block < len(self._sizes):
                raise ValueError(f"input_block {input_block} does not exist: the map has "
                                 f"{len(self._sizes)} blocks")
            input_block = int(input_block)
        self.input_block = input_block
        self._functions = self._check_functions(functions)
        with named("activation"):
            self._set_activations(activation)
        self._plan()
        with named("bias"):
            self._set_bias(bias)
        self._set_leak(leak)
        self._depth = None if self._leak is not None else _settle_depth(self.block_pattern(),
                                                                        input_block)

    # -- construction helpers ---------------------------------------------
    def _check_functions(self, functions):
        if functions is None:
            return {}
        if not isinstance(functions, Mapping):
            raise TypeError(f"functions must be a mapping of (i, j) to block functions, got "
                            f"{type(functions).__name__}")
        n, out = len(self._sizes), {}
        for key, g in functions.items():
            if not (isinstance(key, tuple) and len(key) == 2
                    and all(isinstance(k, int | np.integer) and not isinstance(k, bool)
                            for k in key)):
                raise TypeError(f"functions: keys must be (i, j) pairs of ints, got {key!r}")
            i, j = int(key[0]), int(key[1])
            if not (0 <= i < n and 0 <= j < n):
                raise ValueError(f"functions: block ({i}, {j}) does not exist: the map has "
                                 f"{n} blocks")
            if i == self.input_block:
                raise ValueError(f"functions: block ({i}, {j}) feeds the input block {i}, "
                                 f"which the input overwrites")
            if not isinstance(g, BlockFunction):
                raise TypeError(f"functions[({i}, {j})] must be a BlockFunction (see "
                                f"itermap.block_functions), got {type(g).__name__}")
            if (g.in_size, g.out_size) != (self._sizes[j], self._sizes[i]):
                raise ValueError(f"functions[({i}, {j})] maps {g.in_size} units to "
                                 f"{g.out_size}, but block {j} has {self._sizes[j]} and block "
                                 f"{i} has {self._sizes[i]}")
            out[(i, j)] = g
        return out

    @property
    def functions(self) -> dict[tuple[int, int], BlockFunction]:
        """The function blocks, ``{(i, j): g_ij}`` (empty for a map of matrices only)."""
        return dict(self._functions)

    def block_pattern(self) -> np.ndarray:
        """Which blocks carry anything: a matrix block or a function block.

        Returns
        -------
        numpy.ndarray of bool, shape (n_blocks, n_blocks)
            ``[i, j]`` is True where block ``j`` feeds block ``i``.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> mlp = IterativeMap.from_mlp([np.ones((3, 2)), np.ones((1, 3))])
        >>> mlp.block_pattern().astype(int)
        array([[0, 0, 0],
               [1, 0, 0],
               [0, 1, 0]])
        """
        pattern = self._bm.block_pattern().copy()
        for i, j in self._functions:
            pattern[i, j] = True
        return pattern

    def _set_activations(self, activation):
        n = len(self._sizes)
        if isinstance(activation, (str,)) or not isinstance(activation, Sequence):
            acts = (get_activation(activation),) * n
        else:
            if len(activation) != n:
                raise ValueError(f"got {len(activation)} activations for {n} blocks")
            acts = tuple(get_activation(a) for a in activation)
        self.activations = acts
        # the input block's activation never acts (the input overwrites the block): a map
        # whose other blocks share one activation runs it on the whole pre-activation;
        # function blocks add to their target block's part: pre-activations go by block
        others = [a for i, a in enumerate(acts) if i != self.input_block] or list(acts)
        self._act = others[0]
        self._uniform = all(a is self._act for a in others) and not self._functions

    def _plan(self):
        bm = self._bm
        blocks = bm.blocks
        all_sparse = bool(blocks) and all(is_sparse(b) for b in blocks.values())
        dense_area = sum(b.shape[0] * b.shape[1] for b in blocks.values())
        ib = self.input_block
        if all_sparse:
            kind = "sparse"
        elif blocks and (len(self._sizes) == 1 or dense_area >= _DENSE_FILL * bm.dim ** 2):
            kind = "dense"  # sparse blocks of a mostly full matrix are densified
        else:
            kind = "blocks"
        self._kind = kind
        # the rows of the input block are never used: the input overwrites them
        used = {k: b for k, b in blocks.items() if k[0] != ib}
        self._incoming = {i: [(j, b) for (ii, j), b in used.items() if ii == i]
                          for i in range(len(self._sizes))}
        # states are rows, so steps multiply by W.T: keep sparse transposes as CSR, which
        # scipy multiplies from the left about twice as fast as `X @ S.T`
        self._incoming_T = {i: [(j, b.T.tocsr() if is_sparse(b) else b.T) for j, b in lst]
                            for i, lst in self._incoming.items()}
        if kind == "dense":
            W = bm.to_dense() if len(self._sizes) > 1 else blocks[(0, 0)]
            xp = namespace(W)
            if ib is not None:
                W = _zero_rows_cols(W, self._slices[ib], xp)
            self._W = W
        elif kind == "sparse":
            S = bm.to_sparse()
            if ib is not None:
                keep = np.ones(bm.dim, dtype=S.dtype)  # float64 would promote float32 weights
                keep[self._slices[ib]] = 0.0
                smod = sparse_module(namespace(S))
                mask = smod.diags(to_backend(keep, self.backend) if self.backend == "cupy"
                                  else keep)
                S = (mask @ S @ mask).tocsr()
                S.eliminate_zeros()
            self._W = S.tocsr()
            self._WT = self._W.T.tocsr()
        else:
            self._W = None
        self._Wdense_cache = None

    def _set_bias(self, bias):
        self._bias_blocks = None
        if bias is None:
            self.bias = None
            return
        bias = plain_array("bias", bias)
        if not hasattr(bias, "shape"):
            bias = np.asarray(bias, dtype=float)
        one_namespace(weights=self._W if self._W is not None else next(
            iter(self._bm.blocks.values()), None), bias=bias, movable=True)
        xp = namespace(bias)
        if bias.ndim != 1 or bias.shape[0] != self.dim:
            raise ValueError(f"bias must have shape ({self.dim},), got {tuple(bias.shape)}")
        if not xp.isdtype(bias.dtype, ("real floating", "integral")):
            raise TypeError(f"bias must be real, got dtype {bias.dtype}")
        if not bool(xp.all(xp.isfinite(xp.astype(bias, xp.float64)))):
            raise ValueError("bias contains NaN or inf")
        if backend_of(bias) != self.backend and self.backend in ("numpy", "cupy"):
            bias = to_backend(bias, self.backend)
            xp = namespace(bias)
        bias = xp.astype(bias, self.dtype) if self.dtype is not None else bias
        self.bias = bias
        self._bias_blocks = [bias[s] for s in self._slices]

    def _set_leak(self, leak):
        """Per-block leak rates; ``_leak`` stays None when every block has rate 1."""
        self._leak = self._leak_vec = self._keep_vec = None
        if leak is None:
            return
        rates = list(_check_leak(leak, len(self._sizes)))
        if self.input_block is not None:
            rates[self.input_block] = 1.0
        if all(r == 1.0 for r in rates):
            return  # today's map, on today's code path
        self._leak = tuple(rates)
        a = np.repeat(np.asarray(rates), self._sizes)
        dtype = self.dtype if self.dtype is not None else np.float64
        vec, keep = a.astype(dtype), (1.0 - a).astype(dtype)
        if self.backend == "cupy":
            vec, keep = to_backend(vec, "cupy"), to_backend(keep, "cupy")
        self._leak_vec, self._keep_vec = vec, keep

    @property
    def leak(self) -> tuple[float, ...]:
        """The leak rate of every block (1 for the input block and a map without leak)."""
        return self._leak if self._leak is not None else (1.0,) * len(self._sizes)

    @property
    def leaky(self) -> bool:
        """Whether some block has a leak rate below 1."""
        return self._leak is not None

    # -- protocol ---------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._bm.dim

    @property
    def sizes(self) -> tuple[int, ...]:
        return self._sizes

    @property
    def block_matrix(self) -> BlockMatrix:
        """The weights as a :class:`BlockMatrix`."""
        return self._bm

    @property
    def weights(self):
        """The weights as a :class:`BlockMatrix` (the same object as :attr:`block_matrix`)."""
        return self._bm

    @property
    def dtype(self):
        if self._functions and not self._bm.blocks:
            return next(iter(self._functions.values())).dtype
        return self._bm.dtype

    @property
    def backend(self) -> str:
        if self._functions and not self._bm.blocks:
            return next(iter(self._functions.values())).backend
        return self._bm.backend

    @property
    def settle_steps(self) -> int | None:
        """Steps after which, under a constant input, the state forgets its start.

        The longest chain of blocks in the block graph (ignoring edges into the
        input block, which is overwritten); None when that graph has a cycle.
        For an MLP with ``L`` layers this is ``L``.
        """
        return self._depth

    _holds_arrays = True

    def _coerce(self, x, name: str = "x"):
        x = self._check_state(x, name)
        if self.backend in ("numpy", "cupy") and backend_of(x) != self.backend:
            raise TypeError(f"{name}: the state is a {backend_of(x)} array but the map lives on "
                            f"{self.backend}; move one with map.to(...) or to_backend(...)")
        return x

    def _check_input(self, x, u):
        if self.input_block is None:
            if u is not None:
                raise ValueError("this map has no input_block, so it takes no input u")
            return None
        u = self._check_input_shape(x, u, f" for block {self.input_block}")
        xp = namespace(x)
        if not xp.isdtype(u.dtype, "real floating"):
            u = xp.astype(u, x.dtype)
        if u.ndim < x.ndim:
            u = xp.broadcast_to(u, (*x.shape[:-1], self.input_size))
        return u

    def _preactivation(self, x, u, trusted=False):
        """``W x' + b`` (x' = x with the input block set to u), and the input."""
        xp = namespace(x)
        if not trusted:
            u = self._check_input(x, u)
        ib = self.input_block
        if self._kind == "blocks":
            return self._add_functions(
                [self._block_pre(x, u, i, xp) for i in range(len(self._sizes))], x, u), u
        if self._kind == "dense":
            z = xp.matmul(x, self._W.T)
            if ib is not None:
                # the input columns of W: their product with u
                z = z + xp.matmul(u, self._bm_input_cols().T)
        elif x.ndim == 1 or x.shape[0] == 1:  # one state: W x from the CSR itself, no
            # transpose built per step (a batch of one is a trajectory's Lyapunov run)
            z = _csr_vector(self._W, x.reshape(-1))
            if ib is not None:
                z = _add(z, self._input_term(u.reshape(-1)), xp)
            z = z.reshape(x.shape)
        else:
            z = _rows_times(x, self._WT)
            if ib is not None:
                z = z + _rows_times(u, self._input_cols_sparse_T())
        if self.bias is not None:
            z = _add(z, self.bias, xp)
        if self._uniform:
            return [z], u
        return self._add_functions([z[..., s] for s in self._slices], x, u), u

    def _block_input(self, x, u, j):
        return u if j == self.input_block else x[..., self._slices[j]]

    def _add_functions(self, parts, x, u):
        for (i, j), g in self._functions.items():
            parts[i] = parts[i] + g(self._block_input(x, u, j))
        return parts

    def _function_tangents(self, Wv, x, v, xp):
        """``W' v`` plus the function blocks' tangents (the input block's columns are 0)."""
        parts = [Wv[..., s, :] for s in self._slices]
        for (i, j), g in self._functions.items():
            if j != self.input_block:
                parts[i] = parts[i] + g.tangent(x[..., self._slices[j]],
                                                v[..., self._slices[j], :])
        return xp.concat(parts, axis=-2) if len(parts) > 1 else parts[0]

    def _function_vjps(self, out, x, g, xp):
        """``g W'`` plus the function blocks' transposes (the input block's columns are 0)."""
        parts = [out[..., s] for s in self._slices]
        for (i, j), fn in self._functions.items():
            if j != self.input_block:
                parts[j] = parts[j] + fn.vjp(x[..., self._slices[j]], g[..., self._slices[i]])
        return xp.concat(parts, axis=-1) if len(parts) > 1 else parts[0]

    def _block_pre(self, x, u, i, xp):
        z = None
        for j, WT in self._incoming_T[i]:
            xj = u if j == self.input_block else x[..., self._slices[j]]
            term = _rows_times(xj, WT) if is_sparse(WT) else xp.matmul(xj, WT)
            z = term if z is None else _add(z, term, xp)
        if z is None:
            z = xp.zeros((*x.shape[:-1], self._sizes[i]), dtype=x.dtype)
        if self._bias_blocks is not None:
            z = _add(z, self._bias_blocks[i], xp)
        return z

    def _bm_input_cols(self):
        cache = getattr(self, "_in_cols_dense", None)
        if cache is None:
            W = self._bm.to_dense() if len(self._sizes) > 1 else self._bm.blocks[(0, 0)]
            xp = namespace(W)
            cache = W[:, self._slices[self.input_block]]
            cache = _zero_rows(cache, self._slices[self.input_block], xp)
            self._in_cols_dense = cache
        return cache

    def _input_cols_sparse_T(self):
        cache = getattr(self, "_in_cols_sparse_T", None)
        if cache is None:
            S = self._bm.to_sparse().tocsc()[:, self._slices[self.input_block]].tocsr()
            keep = np.ones(self.dim, dtype=S.dtype)
            keep[self._slices[self.input_block]] = 0.0
            smod = sparse_module(namespace(S))
            mask = smod.diags(to_backend(keep, self.backend) if self.backend == "cupy" else keep)
            cache = (mask @ S).T.tocsr()
            self._in_cols_sparse_T = cache
        return cache

    def _input_term(self, u):
        """``W'[:, input] u`` for one input vector ``u``: through the dense transpose
        ``(n_in, dim)`` when small (a sparse product's call overhead outweighs a few input
        columns' dense one), else through a CSR of the columns."""
        cache = getattr(self, "_in_cols_sparse", None)
        if cache is None:
            cache = self._input_cols_sparse_T()
            cache = cache.toarray() if cache.shape[0] * cache.shape[1] <= _SMALL_INPUT_AREA \
                else cache.T.tocsr()
            self._in_cols_sparse = cache
        if isinstance(cache, np.ndarray) and isinstance(u, np.ndarray):
            return np.dot(u, cache)
        if is_sparse(cache):
            return cache @ u
        return u @ cache  # CuPy: the dense transpose (n_in, dim) too

    def _activate(self, parts, u, xp, need_z=False, x=None):
        if len(parts) == 1:
            y = self._act.apply(parts[0], xp, inplace=not need_z)
            if self._leak is not None:
                y = self._mix(y, x)
            if self.input_block is None:
                return y
            if isinstance(y, np.ndarray) and y.flags.owndata and y.flags.writeable:
                y[..., self._slices[self.input_block]] = u  # a fresh array: in place
                return y
            parts = [y[..., s] for s in self._slices]
        else:
            parts = [a.apply(z, xp, inplace=not need_z) for a, z in zip(self.activations, parts)]
            if self._leak is not None:
                parts = [y if r == 1.0 else y * r + x[..., s] * (1.0 - r)
                         for y, r, s in zip(parts, self._leak, self._slices)]
        if self.input_block is not None:
            parts[self.input_block] = u
        return xp.concat(parts, axis=-1) if len(parts) > 1 else parts[0]

    def _mix(self, y, x):
        """``a * y + (1 - a) * x``: the leaky integration of the new state ``y``."""
        if isinstance(y, np.ndarray) and y.flags.owndata and y.flags.writeable and \
                y.dtype == np.result_type(y, x, self._leak_vec):  # a fresh array: in place
            np.multiply(y, self._leak_vec, out=y)
            y += x * self._keep_vec
            return y
        return y * self._leak_vec + x * self._keep_vec

    def _derivative(self, parts, xp):
        """``a * f'(z)``: the activation's derivative times the leak (zero on the input)."""
        if len(parts) == 1:
            d = self._act.derivative(parts[0], xp)
            if self._leak is not None:
                d = d * self._leak_vec
            if self.input_block is None:
                return d
            parts_d = [d[..., s] for s in self._slices]
        else:
            parts_d = [a.derivative(z, xp) for a, z in zip(self.activations, parts)]
            if self._leak is not None:
                parts_d = [d if r == 1.0 else d * r for d, r in zip(parts_d, self._leak)]
        if self.input_block is not None:
            parts_d[self.input_block] = xp.zeros_like(parts_d[self.input_block])
        return xp.concat(parts_d, axis=-1) if len(parts_d) > 1 else parts_d[0]

    def step(self, x: Array, u: Array | None = None) -> Array:
        """One step ``f(W x + b)`` for a state ``(dim,)`` or a batch ``(B, dim)``.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
            One state or a batch of states.
        u : array, optional
            The input of a driven map (``input_block`` set): ``(input_size,)``, or
            ``(B, input_size)`` for a batch. Required for a driven map, refused for an
            autonomous one.

        Returns
        -------
        array
            ``f(W x + b)``, of ``x``'s shape (the input block holds ``u``).

        Raises
        ------
        ValueError
            A state of the wrong shape, or a missing or unexpected input ``u``.
        TypeError
            A state that is not a real array.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.array([[0.0, 1.0], [0.5, 0.0]]), activation="identity")
        >>> m.step(np.array([1.0, 2.0]))
        array([2. , 0.5])
        """
        x = self._coerce(x)
        xp = namespace(x)
        parts, u = self._preactivation(x, u)
        return self._activate(parts, u, xp, x=x)

    def _unchecked_step(self):
        """The step ``iterate`` may call on states and inputs it has already checked (after
        a first checked step), or None where a subclass has its own ``step``."""
        return self._step_trusted if type(self).step is IterativeMap.step else None

    def _step_trusted(self, x, u):
        xp = namespace(x)
        if u is not None and u.ndim < x.ndim:
            u = xp.broadcast_to(u, (*x.shape[:-1], self.input_size))
        parts, u = self._preactivation(x, u, trusted=True)
        return self._activate(parts, u, xp, x=x)

    def _linear_tangent(self, v, xp):
        """``W' v`` where W' is W with the input block's rows and columns removed."""
        if self._kind == "dense":
            return xp.matmul(self._W, v)
        if self._kind == "sparse":
            return _sparse_cols(self._W, v, xp)
        parts = []
        ib = self.input_block
        for i in range(len(self._sizes)):
            acc = None
            if i != ib:
                for j, W in self._incoming[i]:
                    if j == ib:
                        continue
                    vj = v[..., self._slices[j], :]
                    term = _sparse_cols(W, vj, xp) if is_sparse(W) else xp.matmul(W, vj)
                    acc = term if acc is None else acc + term
            if acc is None:
                acc = xp.zeros((*v.shape[:-2], self._sizes[i], v.shape[-1]), dtype=v.dtype)
            parts.append(acc)
        return xp.concat(parts, axis=-2) if len(parts) > 1 else parts[0]

    def tangent(self, x: Array, v: Array, u: Array | None = None) -> Array:
        """``J(x) @ v`` without forming ``J``: ``f'(z) * (W v)``.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
            One state or a batch of states.
        v : array of shape (dim, k) or (B, dim, k)
            Tangent vectors, as columns.
        u : array, optional
            The input of a driven map (``input_block`` set): ``(input_size,)``, or
            ``(B, input_size)`` for a batch. Required for a driven map, refused for an
            autonomous one.

        Returns
        -------
        array
            ``J(x) @ v``, of ``v``'s shape.

        Raises
        ------
        ValueError
            A state of the wrong shape, or a missing or unexpected input ``u``.
        TypeError
            A state that is not a real array.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.array([[0.0, 1.0], [0.5, 0.0]]), activation="identity")
        >>> m.tangent(np.zeros(2), np.array([[1.0], [0.0]]))
        array([[0. ],
               [0.5]])
        """
        return self.step_with_tangent(x, v, u)[1]

    def step_with_tangent(self, x: Array, v: Array,
                          u: Array | None = None) -> tuple[Array, Array]:
        """``(step(x, u), J(x) @ v)`` from one pre-activation.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
            One state or a batch of states.
        v : array of shape (dim, k) or (B, dim, k)
            Tangent vectors, as columns.
        u : array, optional
            The input of a driven map (``input_block`` set): ``(input_size,)``, or
            ``(B, input_size)`` for a batch. Required for a driven map, refused for an
            autonomous one.

        Returns
        -------
        (array, array)
            The next state and ``J(x) @ v``.

        Raises
        ------
        ValueError
            A state of the wrong shape, or a missing or unexpected input ``u``.
        TypeError
            A state that is not a real array.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.array([[0.0, 1.0], [0.5, 0.0]]), activation="identity")
        >>> y, Jv = m.step_with_tangent(np.array([1.0, 2.0]), np.eye(2))
        >>> y, Jv
        (array([2. , 0.5]), array([[0. , 1. ],
               [0.5, 0. ]]))
        """
        x = self._coerce(x)
        v = self._check_tangent(x, v)
        xp = namespace(x)
        if self._kind == "sparse" and self.input_block is None and isinstance(x, np.ndarray) \
                and not self._functions:
            z, Wv = self._sparse_state_and_tangent(x, v)
            parts = [z] if self._uniform else [z[..., s] for s in self._slices]
            y = self._activate(parts, None, xp, need_z=True, x=x)
            # C order: Wv is a strided view, and a frame in its layout slows the QR's products
            Jv = np.multiply(self._derivative(parts, xp)[..., :, None], Wv, order="C")
            return y, self._leak_tangent(Jv, v)
        parts, u = self._preactivation(x, u)
        y = self._activate(parts, u, xp, need_z=True, x=x)
        d = self._derivative(parts, xp)
        Wv = self._linear_tangent(v, xp)
        if self._functions:
            Wv = self._function_tangents(Wv, x, v, xp)
        if isinstance(Wv, np.ndarray) and Wv.flags.owndata and Wv.flags.c_contiguous and \
                Wv.dtype == np.result_type(Wv, d):  # a fresh product: scaled in place
            return y, self._leak_tangent(np.multiply(Wv, d[..., :, None], out=Wv), v)
        return y, self._leak_tangent(d[..., :, None] * Wv, v)

    def _leak_tangent(self, Jv, v):
        """``Jv + diag(1 - a) v``: the leak's carry-over of the old state."""
        if self._leak is None:
            return Jv
        return Jv + self._keep_vec[:, None] * v

    def tangent_stepper(self, x: Array, Q: Array, u: Array | None = None, *,
                        steps: int = 0) -> Any:
        """The stepper of trajectories and tangent frames that fits this network, or None.

        One trajectory of a float64 NumPy network with one activation, no
        input block, leak or function blocks gets a fused stepper: each step's
        product, activation and Gram matrix split by rows over itermap's thread
        pool (dense weights from ``k = OPTIONS.fused_dense_min_k`` tangent
        vectors, sparse ones where the product splits, see
        :class:`itermap._threads.ThreadOptions`). Other runs of a sparse
        network whose products split get a batched stepper that holds BLAS to
        one thread beside them, and a batch of large frames of a dense one a
        batched stepper that runs groups of trajectories in threads; everything
        else gets :meth:`Map.tangent_stepper` (the small-map stepper up to 64
        units, else None).

        Parameters
        ----------
        x : array of shape (B, dim)
            The starts.
        Q : array of shape (B, dim, k)
            Orthonormal tangent frames.
        u : array, optional
            A constant input.
        steps : int
            How many steps the caller means to run.

        Returns
        -------
        stepper or None
            With ``advance(n, every=..., acc=...)`` and the current ``x`` and
            ``Q`` (see :mod:`itermap._fused_steppers`).

        Examples
        --------
        >>> import numpy as np
        >>> import itermap
        >>> m = itermap.random_rnn(20, gain=0.5, rng=0)   # contracting: exponents < 0
        >>> s = m.tangent_stepper(np.full((1, 20), 0.1), np.eye(20)[None, :, :3])
        >>> acc = np.zeros((1, 3))
        >>> s.advance(200, acc=acc) is not None, bool(np.all(acc / 200 < 0))
        (True, True)
        """
        plain = (self.input_block is None and self._leak is None and self._uniform
                 and self.backend == "numpy" and u is None)
        if plain and self._kind in ("dense", "sparse"):
            stepper = FusedStepper.build(self._kind, self._W, self.bias, self._act, x, Q)
            if stepper is not None:
                return stepper
        if (self._kind == "sparse" and self.backend == "numpy" and isinstance(Q, np.ndarray)
                and Q.ndim == 3 and splits(self._W.nnz, Q.shape[-1] + 1)):
            return BatchedStepper(self, x, Q, u, pool_products=True)
        groups = frame_groups(Q) if self._kind == "dense" and self.backend == "numpy" else 1
        if groups > 1:
            return BatchedStepper(self, x, Q, u, groups=groups)
        return super().tangent_stepper(x, Q, u, steps=steps)

    def _sparse_state_and_tangent(self, x, v):
        """``(W x + b, W v)`` in one pass over a SciPy CSR ``W``: ``[x | v]`` as columns."""
        if x.ndim == 1:
            cols = np.concatenate([x[:, None], v], axis=1)
        else:
            B, n, k = v.shape
            cols = np.concatenate([x.T, np.transpose(v, (1, 0, 2)).reshape(n, B * k)], axis=1)
        out = csr_times(self._W, cols)
        if x.ndim == 1:
            z, Wv = out[:, 0], out[:, 1:]
        else:
            z = np.ascontiguousarray(out[:, :B].T)
            Wv = np.transpose(out[:, B:].reshape(n, B, k), (1, 0, 2))
        if self.bias is not None:
            z = _add(np.ascontiguousarray(z), self.bias, np)
        return z, Wv

    def vjp(self, x: Array, w: Array, u: Array | None = None) -> Array:
        """``w^T J(x) = (w * f'(z)) W'``: a transpose product, so sparse weights stay sparse.

        ``w`` has shape ``(dim,)`` or ``(k, dim)`` for one state, ``(B, dim)`` or
        ``(B, k, dim)`` for a batch; the result has ``w``'s shape.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
            One state or a batch of states.
        w : array of shape (dim,), (k, dim), (B, dim) or (B, k, dim)
            Cotangent vectors, as rows.
        u : array, optional
            The input of a driven map (``input_block`` set): ``(input_size,)``, or
            ``(B, input_size)`` for a batch. Required for a driven map, refused for an
            autonomous one.

        Returns
        -------
        array
            ``w^T J(x)``, of ``w``'s shape.

        Raises
        ------
        ValueError
            A state of the wrong shape, or a missing or unexpected input ``u``.
        TypeError
            A state that is not a real array.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.array([[0.0, 1.0], [0.5, 0.0]]), activation="identity")
        >>> m.vjp(np.zeros(2), np.array([1.0, 0.0]))
        array([0., 1.])
        """
        x = self._coerce(x)
        w = self._check_cotangent(x, w)
        xp = namespace(x)
        parts, _ = self._preactivation(x, u)
        d = self._derivative(parts, xp)
        if w.ndim > x.ndim:  # k cotangents per state
            d = d[..., None, :]
        g = w * d
        out = self._linear_vjp(g, xp)
        if self._functions:
            out = self._function_vjps(out, x, g, xp)
        return out if self._leak is None else out + w * self._keep_vec

    def _linear_vjp(self, g, xp):
        """``g W'`` for ``g`` of shape ``(..., dim)``: W' without the input block."""
        lead = g.shape[:-1]
        g2 = xp.reshape(g, (-1, self.dim))
        if self._kind == "dense":
            out = xp.matmul(g2, self._W)
        elif self._kind == "sparse":
            out = _rows_times(g2, self._W)
        else:
            ib = self.input_block
            cols = [None] * len(self._sizes)
            for i in range(len(self._sizes)):
                if i == ib:
                    continue
                gi = g2[:, self._slices[i]]
                for j, W in self._incoming[i]:
                    if j == ib:
                        continue
                    term = (W.T @ gi.T).T if is_sparse(W) else xp.matmul(gi, W)
                    cols[j] = term if cols[j] is None else cols[j] + term
            out = xp.concat([c if c is not None else
                             xp.zeros((g2.shape[0], n), dtype=g2.dtype)
                             for c, n in zip(cols, self._sizes)], axis=-1)
        return xp.reshape(out, (*lead, self.dim))

    # -- gradients for training ---------------------------------------------
    def step_with_derivative(self, x: Array, u: Array | None = None
                             ) -> tuple[Array, Array, Array]:
        """``(x', step(x, u), f'(z))``: the state with its input block set to ``u``
        (what ``W`` multiplies), the next state, and the activation's derivative
        at the pre-activation ``z = W x' + b`` (zero on the input block).

        Training stores these for backpropagation through time, so the
        backward pass needs no second pre-activation.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
            The state(s) the step starts from.
        u : array, optional
            The input, for a driven map.

        Returns
        -------
        xin : array of the shape of ``x``
            ``x`` with its input block set to ``u`` (``x`` itself without ``u``).
        y : array of the shape of ``x``
            The next state, ``step(x, u)``.
        d : array of the shape of ``x``
            ``f'(z)`` at ``z = W xin + b``.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.array([[0.0, 0.0], [2.0, 0.0]]), sizes=(1, 1), input_block=0)
        >>> xin, y, d = m.step_with_derivative(np.zeros(2), np.array([1.0]))
        >>> xin, y, d
        (array([1., 0.]), array([1.        , 0.96402758]), array([0.        , 0.07065082]))
        """
        x = self._coerce(x)
        xp = namespace(x)
        parts, u = self._preactivation(x, u)
        y = self._activate(parts, u, xp, need_z=True, x=x)
        d = self._derivative(parts, xp)
        if u is None:
            return x, y, d
        xin = [x[..., s] for s in self._slices]
        xin[self.input_block] = u  # type: ignore[index]  # u is refused without one
        return xp.concat(xin, axis=-1), y, d

    def parameter_gradient(self, x: Array, w: Array, u: Array | None = None
                           ) -> tuple[dict[tuple[int, int], Any], Array]:
        """The gradient of ``L = sum(w * step(x, u))`` with respect to ``W`` and ``b``.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
            The state(s) the step starts from; a batch's gradients are summed.
        w : array of the shape of ``x``
            The cotangent on the next state (``dL/dstep``).
        u : array, optional
            The input, for a driven map.

        Returns
        -------
        blocks : dict
            ``{(i, j): dL/dW_ij}`` for every stored block: a dense array for a
            dense block; for a sparse block a CSR matrix with the block's own
            sparsity pattern, its values the gradient at the nonzeros only (a
            sampled dense-dense product, never the dense ``n_i x n_j`` product
            where that would be large). Blocks in the input block's rows, which
            the input overwrites, get zero gradients.
        bias : array of shape (dim,)
            ``dL/db``; zero on the input block.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.array([[0.5, 0.0], [1.0, 0.5]]), activation="identity")
        >>> grads, gb = m.parameter_gradient(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
        >>> grads[(0, 0)], gb
        (array([[1., 2.],
               [0., 0.]]), array([1., 0.]))

        Raises
        ------
        ValueError
            For ``w`` whose shape is not the state's.
        TypeError
            For a ``w`` that is not real (complex, say), or from another array library.
        """
        x = self._coerce(x)
        xp = namespace(x)
        w = plain_array("w", w)
        one_namespace(x=x, w=w)
        if hasattr(w, "dtype") and not xp.isdtype(w.dtype, ("real floating", "integral", "bool")):
            # a complex w would give complex gradients for the real weights
            raise TypeError(f"w must be real, got dtype {w.dtype}")
        if not hasattr(w, "shape") or tuple(w.shape) != tuple(x.shape):
            raise ValueError(f"w must have the state's shape {tuple(x.shape)}, got "
                             f"{tuple(getattr(w, 'shape', ()))}")
        xin, _, d = self.step_with_derivative(x, u)
        g = w * d
        if g.ndim == 1:
            g, xin = g[None, :], xin[None, :]
        out = {}
        for key, b in self._bm.blocks.items():
            vals = self.block_gradient(key, g, xin)
            if is_sparse(b):
                c = b.tocsr().copy()
                c.sort_indices()
                out[key] = sparse_module(xp).csr_matrix((vals, c.indices, c.indptr),
                                                        shape=c.shape)
            else:
                out[key] = vals
        return out, xp.sum(g, axis=0)

    def block_gradient(self, key: tuple[int, int], g: Array, xin: Array, *,
                       rows: Array | None = None, cols: Array | None = None) -> Array:
        """``dL/dW_ij`` of block ``key = (i, j)`` from ``g = dL/dz`` and ``x'``, both
        ``(n, dim)`` (rows summed). A dense block gives ``g_i^T x'_j``; a sparse
        block the values at its nonzeros, in sorted CSR order, or at ``rows, cols``
        when given (the nonzeros' coordinates, to save recomputing them).

        Parameters
        ----------
        key : (int, int)
            The block ``(i, j)``.
        g : array of shape (n, dim)
            ``dL/dz``, the cotangent on the pre-activation.
        xin : array of shape (n, dim)
            The states ``x'`` that ``W`` multiplied.
        rows, cols : arrays, optional
            The sparse block's nonzero coordinates, in sorted CSR order.

        Returns
        -------
        array
            ``(n_i, n_j)`` for a dense block, the values at the nonzeros for a
            sparse one.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.array([[0.5, 0.0], [1.0, 0.5]]), activation="identity")
        >>> m.block_gradient((0, 0), np.array([[1.0, 0.0]]), np.array([[1.0, 2.0]]))
        array([[1., 2.],
               [0., 0.]])
        """
        i, j = key
        gi, xj = g[:, self._slices[i]], xin[:, self._slices[j]]
        xp = namespace(g)
        b = self._bm.blocks[key]
        if not is_sparse(b):
            return xp.matmul(gi.T, xj)
        if rows is None:
            c = b.tocsr().copy()
            c.sort_indices()
            rows, cols = _csr_coordinates(c, xp)
        return sampled_product(gi, xj, rows, cols)

    def jacobian(self, x: Array, u: Array | None = None, *, sparse: bool = False) -> Any:
        """``diag(f'(z)) W'`` of shape ``(dim, dim)`` or ``(B, dim, dim)``.

        Dense by default. A map with sparse weights can give its Jacobian at one
        state as a sparse matrix with ``sparse=True`` (the same pattern as its
        weights); building a large dense Jacobian of a sparse map warns first,
        since ``tangent`` and ``vjp`` need no Jacobian at all.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
            One state or a batch of states.
        u : array, optional
            The input of a driven map (``input_block`` set): ``(input_size,)``, or
            ``(B, input_size)`` for a batch; refused for an autonomous map. Default: the
            state's own input block, which holds the input that drove it (``step`` and
            ``with_input`` write it there), so ``jacobian(state)`` at a state the map
            reached is the Jacobian under that input.
        sparse : bool
            Return a sparse matrix (CSR) at one state, with the weights' pattern.

        Returns
        -------
        array of shape (dim, dim) or (B, dim, dim), or a sparse matrix

        Raises
        ------
        ValueError
            A state of the wrong shape, or a missing or unexpected input ``u``.
        TypeError
            A state that is not a real array.
        ValueError
            ``sparse=True`` with a batch of states.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.array([[0.0, 1.0], [0.5, 0.0]]), activation="identity")
        >>> m.jacobian(np.zeros(2))
        array([[0. , 1. ],
               [0.5, 0. ]])
        """
        x = self._coerce(x)
        xp = namespace(x)
        if u is None and self.input_block is not None:
            u = x[..., self._slices[self.input_block]]
        if self._functions:
            if sparse:
                raise ValueError("sparse: a map with function blocks has no sparse Jacobian; "
                                 "use tangent or vjp")
            return Map.jacobian(self, x, u)  # the tangent of the identity
        parts, _ = self._preactivation(x, u)
        d = self._derivative(parts, xp)
        if sparse:
            if x.ndim != 1:
                raise ValueError("jacobian(..., sparse=True) takes one state of shape (dim,)")
            S = self._bm.to_sparse().tocsr()
            smod = sparse_module(namespace(S))
            if self.input_block is not None:
                keep = np.ones(self.dim, dtype=S.dtype)
                keep[self._slices[self.input_block]] = 0.0
                keep = to_backend(keep, self.backend) if self.backend == "cupy" else keep
                S = smod.diags(keep) @ S @ smod.diags(keep)
            J = smod.diags(d) @ S
            if self._leak is not None:
                J = J + smod.diags(self._keep_vec)
            return J.tocsr()
        if self._kind != "dense" and self.dim >= _WARN_DENSE_JACOBIAN:
            import warnings

            batch = x.shape[0] if x.ndim == 2 else 1
            warnings.warn(f"building {batch} dense {self.dim} x {self.dim} Jacobian(s) of a "
                          f"sparse map ({batch * self.dim ** 2 * 8 / 1e9:.2g} GB); tangent and "
                          f"vjp need none, and jacobian(x, sparse=True) keeps the pattern",
                          stacklevel=2)
        J = d[..., :, None] * self._dense_masked(xp)
        if self._leak is not None:
            J = J + _diag_matrix(self._keep_vec, xp)
        if isinstance(J, np.ndarray) and not J.flags.c_contiguous:
            # sparse products hand back F-ordered states; batched solvers want C order
            J = np.ascontiguousarray(J)
        return J

    def _dense_masked(self, xp):
        if self._Wdense_cache is None:
            if self._kind == "dense":
                W = self._W
            else:
                W = self._bm.to_dense()
                if self.input_block is not None:
                    W = _zero_rows_cols(W, self._slices[self.input_block], namespace(W))
            self._Wdense_cache = W
        return self._Wdense_cache

    def forward(self, x: Array) -> Array:
        """The settled output of an acyclic map (an MLP) for a batch of inputs.

        One sweep over the blocks in topological order: the network's forward
        pass, the same as iterating :attr:`settle_steps` steps with the input
        held and reading the last block.

        Parameters
        ----------
        x : array of shape (n_in,) or (B, n_in), or (B, T, d)
            Inputs for the input block; a batch of sequences of ``T`` tokens of width
            ``d`` (``T * d = n_in``, torch's ``batch_first`` layout) for a map whose
            blocks hold sequences token by token, such as a transformer's.

        Returns
        -------
        array of shape (n_out,) or (B, n_out), or (B, T, n_out / T)
            The last block of the settled state.

        Raises
        ------
        ValueError
            The map has no input block, or its block graph has a cycle (it
            never settles: run :func:`itermap.iterate` instead).

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> W1, W2 = np.array([[1.0, -1.0]]), np.array([[2.0]])
        >>> mlp = IterativeMap.from_mlp([W1, W2], activation="relu")
        >>> mlp.forward(np.array([[3.0, 1.0], [1.0, 3.0]]))
        array([[4.],
               [0.]])
        """
        if self.input_block is None:
            raise ValueError("forward needs a driven map with an input block (from_mlp makes "
                             "one)")
        if self._depth is None:
            raise ValueError("forward needs an acyclic block graph, but this map has a cycle: "
                             "it never settles; use itermap.iterate")
        if x is None or isinstance(x, str | bytes):
            raise TypeError(f"x must be an array of inputs, got {type(x).__name__}")
        x = no_half("x", plain_array("x", x))
        if not hasattr(x, "shape"):
            x = np.asarray(x, dtype=float)
        one_namespace(x=x, map=self, movable=True)
        xp = namespace(x)
        tokens = None
        if x.ndim == 3 and x.shape[1] * x.shape[2] == self.input_size \
                and self._sizes[-1] % x.shape[1] == 0:
            tokens = x.shape[1]  # a batch of sequences, token by token (a transformer's X)
            x = xp.reshape(x, (x.shape[0], self.input_size))
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"x must have shape ({self.input_size},) or (B, "
                             f"{self.input_size}), or (B, T, d) with T * d = "
                             f"{self.input_size}, got {tuple(x.shape)}")
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError("x contains NaN or inf")
        state = self.settled_state(self.zeros(None if x.ndim == 1 else x.shape[0]), x)
        out = self.readout(state)
        return out if tokens is None else xp.reshape(out, (x.shape[0], tokens, -1))

    # -- settling shortcut used by iterate ---------------------------------
    def settled_state(self, x: Array, u: Array | None = None) -> Array:
        """The state reached after :attr:`settle_steps` or more steps.

        For an acyclic block graph under a constant input this is one sweep
        over the blocks in topological order (Gauss-Seidel instead of Jacobi):
        the cost of one forward pass, however many steps it stands for.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
            One state or a batch of states.
        u : array, optional
            The input of a driven map (``input_block`` set): ``(input_size,)``, or
            ``(B, input_size)`` for a batch. Required for a driven map, refused for an
            autonomous one.

        Returns
        -------
        array
            Of ``x``'s shape: the fixed point the acyclic map reaches under ``u``.

        Raises
        ------
        ValueError
            When the block graph has a cycle (the map never settles), or for bad
            ``x`` or ``u``.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> Ws = [np.array([[2.0]]), np.array([[3.0]])]
        >>> mlp = IterativeMap.from_mlp(Ws, activation="identity")
        >>> mlp.settled_state(mlp.zeros(), np.array([1.0]))
        array([1., 2., 6.])
        """
        if self._depth is None:
            raise ValueError("the block graph has a cycle: the map never settles")
        x = self._coerce(x)
        xp = namespace(x)
        u = self._check_input(x, u)
        values = {i: x[..., s] for i, s in enumerate(self._slices)}
        if u is not None and self.input_block is not None:
            values[self.input_block] = u
        for i in self._topo:
            z = None
            for j, WT in self._incoming_T[i]:
                term = _rows_times(values[j], WT) if is_sparse(WT) else xp.matmul(values[j], WT)
                z = term if z is None else _add(z, term, xp)
            for (ii, j), g in self._functions.items():
                if ii == i:
                    term = g(values[j])
                    z = term if z is None else _add(z, term, xp)
            if z is None:
                z = xp.zeros((*x.shape[:-1], self._sizes[i]), dtype=x.dtype)
            if self._bias_blocks is not None:
                z = _add(z, self._bias_blocks[i], xp)
            values[i] = self.activations[i].apply(z, xp, inplace=True)
        parts = [values[i] for i in range(len(self._sizes))]
        return xp.concat(parts, axis=-1) if len(parts) > 1 else parts[0]

    @property
    def _topo(self):
        order = getattr(self, "_topo_cache", None)
        if order is None:
            order = _topological_order(self.block_pattern(), self.input_block)
            self._topo_cache = order
        return order

    # -- conveniences -------------------------------------------------------
    def with_input(self, x: Array, u: Array) -> Array:
        """``x`` with its input block replaced by ``u`` (a new array).

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
            One state or a batch of states.
        u : array of shape (input_size,) or (B, input_size)
            The input to write into the input block.

        Returns
        -------
        array
            A new array of ``x``'s shape.

        Raises
        ------
        ValueError
            When the map has no input block, or ``u`` does not fit it.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap.from_rnn(np.zeros((2, 2)), np.ones((2, 1)))
        >>> m.with_input(m.zeros(), np.array([7.0]))
        array([7., 0., 0.])
        """
        if self.input_block is None:
            raise ValueError("this map has no input_block")
        x = self._coerce(x)
        xp = namespace(x)
        u = self._check_input(x, u)
        parts = [x[..., s] for s in self._slices]
        parts[self.input_block] = u
        return xp.concat(parts, axis=-1)

    def to(self, backend: str) -> IterativeMap:
        """A copy of the map with its weights and bias on ``backend``.

        Parameters
        ----------
        backend : {"numpy", "cupy"}

        Returns
        -------
        IterativeMap
            An equal map whose weights and bias live on ``backend``.

        Raises
        ------
        ValueError
            An unknown backend, or ``"cupy"`` without cupy or a GPU.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap(np.array([[0.0, 1.0], [0.5, 0.0]]), activation="identity")
        >>> m.to("numpy") == m
        True
        """
        return IterativeMap(self._bm.to(backend),
                            None if self.bias is None else to_backend(self.bias, backend),
                            list(self.activations), input_block=self.input_block,
                            functions={k: g.to(backend) for k, g in self._functions.items()},
                            leak=self._leak)

    def __repr__(self) -> str:
        names = [a.name for a in self.activations]
        acts = names[0] if len(set(names)) == 1 else names
        fns = (f", functions={ {k: g.name for k, g in self._functions.items()} }"
               if self._functions else "")
        leak = "" if self._leak is None else f"leak={list(self._leak)}, "
        return (f"IterativeMap(dim={self.dim}, blocks={list(self._sizes)}, nnz={self._bm.nnz}, "
                f"activation={acts!r}, input_block={self.input_block}{fns}, {leak}"
                f"backend={self.backend!r})")

    # -- comparison and pickling -------------------------------------------
    def __eq__(self, other):
        """Equal content: block sizes, stored blocks (kind, dtype, values), bias,
        activations per block and input block. Maps on different backends differ."""
        if not isinstance(other, IterativeMap):
            return NotImplemented
        if type(self) is not type(other) or self.sizes != other.sizes or \
                self.input_block != other.input_block or \
                self.activations != other.activations or self.backend != other.backend or \
                self.leak != other.leak:
            return False
        if (self.bias is None) != (other.bias is None) or (
                self.bias is not None and not _arrays_equal(self.bias, other.bias)):
            return False
        if self._functions != other._functions:
            return False
        mine, theirs = self._bm.blocks, other._bm.blocks
        return mine.keys() == theirs.keys() and all(
            _arrays_equal(mine[k], theirs[k]) for k in mine)

    # content equality on a mutable-looking object: no hash, so maps are not dict keys
    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self):
        # the constructor's inputs only: the plan (transposes, dense copies, caches) is
        # rebuilt on unpickling, so a pickle holds each weight once
        extra = {k: v for k, v in self.__dict__.items() if k not in _DERIVED_ATTRS}
        return {"weights": self._bm, "bias": self.bias, "activations": self.activations,
                "input_block": self.input_block, "functions": self._functions,
                "leak": self._leak, "extra": extra}

    def __setstate__(self, state):
        IterativeMap.__init__(self, state["weights"], state["bias"], list(state["activations"]),
                              input_block=state["input_block"],
                              functions=state.get("functions"), leak=state.get("leak"))
        self.__dict__.update(state["extra"])

    # -- constructors -------------------------------------------------------
    @classmethod
    def from_mlp(cls, weights: Sequence[Array], biases: Sequence[Array] | None = None,
                 activation: str = "relu", output_activation: str = "identity") -> IterativeMap:
        """The MLP ``x -> W_L f(... f(W_1 x + b_1) ...) + b_L`` as an iterative map.

        Parameters
        ----------
        weights : sequence of 2-D arrays
            Layer weights in the ``(out, in)`` convention of ``torch.nn.Linear``.
        biases : sequence of 1-D arrays, optional
            Layer biases, one per layer.
        activation, output_activation : str
            Hidden and output nonlinearities.

        Returns
        -------
        IterativeMap
            Block 0 is the input (``input_block=0``); block ``l`` holds layer
            ``l``'s output; ``W`` holds the layer weights on the block
            sub-diagonal and nothing else. Iterating ``L = len(weights)`` steps
            from :meth:`zeros` with the input held at ``x`` leaves the MLP's
            output in :meth:`readout`.

        Raises
        ------
        ValueError
            Layer shapes that do not chain, biases that do not fit, an unknown
            activation.
        TypeError
            Weights that are not real matrices, biases that are not a list.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap, iterate
        >>> rng = np.random.default_rng(0)
        >>> Ws = [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))]
        >>> mlp = IterativeMap.from_mlp(Ws)
        >>> x = rng.normal(size=3)
        >>> state = iterate(mlp, mlp.zeros(), 2, inputs=x, keep="last").final
        >>> bool(np.allclose(mlp.readout(state), Ws[1] @ np.maximum(Ws[0] @ x, 0)))
        True
        """
        if isinstance(weights, str | bytes) or not hasattr(weights, "__iter__"):
            raise TypeError(f"weights must be a list of layer weight matrices, got "
                            f"{type(weights).__name__}")
        weights = list(weights)
        if not weights:
            raise ValueError("weights: an MLP needs at least one weight matrix")
        for label, act in (("activation", activation), ("output_activation",
                                                         output_activation)):
            with named(label):
                get_activation(act)
        if biases is not None and (isinstance(biases, str | bytes)
                                   or not hasattr(biases, "__iter__")):
            raise TypeError(f"biases must be a list of vectors or None, got "
                            f"{type(biases).__name__}")
        mats: list[Any] = []
        for l, w in enumerate(weights):
            w = _check_matrix(f"weights[{l}]", w)
            if len(w.shape) != 2:
                raise ValueError(f"layer {l} weight must be 2-D (out, in), got shape "
                                 f"{tuple(w.shape)}")
            if l > 0 and w.shape[1] != mats[-1].shape[0]:
                raise ValueError(f"layer {l} expects {w.shape[1]} inputs but layer {l - 1} "
                                 f"has {mats[-1].shape[0]} outputs")
            mats.append(w)
        one_namespace(**{f"weights[{l}]": w for l, w in enumerate(mats)})
        sizes = [mats[0].shape[1]] + [w.shape[0] for w in mats]
        bm = BlockMatrix(sizes, {(l + 1, l): w for l, w in enumerate(mats)})
        acts = ["identity"] + [activation] * (len(mats) - 1) + [output_activation]
        bias = None
        if biases is not None:
            biases = list(biases)
            if len(biases) != len(mats):
                raise ValueError(f"biases: got {len(biases)} biases for {len(mats)} layers")
            xp = namespace(mats[0])
            parts = [xp.zeros(sizes[0], dtype=xp.float64 if not hasattr(mats[0], "dtype")
                              else mats[0].dtype)]
            for l, b in enumerate(biases):
                b = _check_vector(f"biases[{l}]", b)
                # host biases for device weights are moved there, as IterativeMap's bias is
                one_namespace(**{"weights[0]": mats[0], f"biases[{l}]": b}, movable=True)
                if tuple(b.shape) != (sizes[l + 1],):
                    raise ValueError(f"bias {l} has shape {tuple(b.shape)}; expected "
                                     f"({sizes[l + 1]},)")
                parts.append(xp.astype(xp.asarray(b), parts[0].dtype))
            bias = xp.concat(parts)
        return cls(bm, bias, acts, input_block=0)

    @classmethod
    def from_rnn(cls, W_hh: Array, W_hx: Array, b: Array | None = None,
                 activation: str = "tanh", *, leak: float | None = 1.0) -> IterativeMap:
        """The Elman RNN ``h_{t+1} = f(W_hh h_t + W_hx x_{t+1} + b)`` as a driven map.

        With ``leak=a < 1`` the leaky-integrator network (an echo state network's
        reservoir): ``h_{t+1} = (1 - a) h_t + a f(W_hh h_t + W_hx x_{t+1} + b)``.

        The state is ``[x; h]`` with the input block 0 overwritten by ``x_{t+1}``
        at every step.

        Parameters
        ----------
        W_hh : array of shape (n_h, n_h)
            Recurrent weights.
        W_hx : array of shape (n_h, n_x)
            Input weights.
        b : array of shape (n_h,), optional
            Hidden bias.
        activation : str
            The hidden nonlinearity (a name in :data:`itermap.ACTIVATIONS`).
        leak : float
            The hidden units' leak rate, in (0, 1].

        Returns
        -------
        IterativeMap
            Blocks ``[n_x, n_h]``, ``input_block=0``.

        Raises
        ------
        ValueError
            Shapes that do not fit, or an unknown activation.
        TypeError
            Weights that are not real matrices.

        Examples
        --------
        >>> import numpy as np
        >>> from itermap import IterativeMap
        >>> m = IterativeMap.from_rnn(np.eye(2) * 0.5, np.ones((2, 1)))
        >>> m.sizes, m.input_block
        ((1, 2), 0)
        """
        W_hh, W_hx = _check_matrix("W_hh", W_hh), _check_matrix("W_hx", W_hx)
        one_namespace(W_hh=W_hh, W_hx=W_hx)
        one_namespace(W_hh=W_hh, b=b, movable=True)  # a host bias moves to device weights
        with named("activation"):
            get_activation(activation)
        n_h, n_x = W_hx.shape if hasattr(W_hx, "shape") else np.shape(W_hx)
        if tuple(getattr(W_hh, "shape", np.shape(W_hh))) != (n_h, n_h):
            raise ValueError(f"W_hh must have shape ({n_h}, {n_h}) to match W_hx's {n_h} rows")
        bm = BlockMatrix([n_x, n_h], {(1, 0): W_hx, (1, 1): W_hh})
        bias = None
        if b is not None:
            b = _check_vector("b", b)
            if tuple(b.shape) != (n_h,):
                raise ValueError(f"b must have shape ({n_h},), got {tuple(b.shape)}")
            xp = namespace(b)
            bias = xp.concat([xp.zeros(n_x, dtype=b.dtype), b])
        return cls(bm, bias, ["identity", activation], input_block=0, leak=leak)


def random_rnn(n: int, *, gain: float = 1.0, density: float = 1.0, activation: str = "tanh",
               rng: RngLike = None, dtype: Any = np.float64,
               leak: float = 1.0) -> IterativeMap:
    """A random recurrent network ``x -> f(W x)`` with ``n`` units.

    ``W_ij ~ N(0, gain^2 / (n * density))`` on a Bernoulli(density) mask, so
    the spectral radius is about ``gain`` whatever the density (the edge of
    chaos of a tanh network lies near ``gain = 1``). Stored as scipy.sparse
    CSR when ``density <= 0.1``, dense otherwise.

    Parameters
    ----------
    n : int
        Number of units (>= 1).
    gain : float
        Standard deviation of the weights times ``sqrt(n * density)`` (>= 0).
    density : float
        Fraction of nonzero weights, in (0, 1].
    activation : str
        The nonlinearity of every unit.
    rng : int, Generator or None
        Source of the weights (see :func:`itermap.as_rng`; None: fresh entropy).
    dtype : dtype
        A floating dtype of the weights.
    leak : float
        The leak rate ``a`` in (0, 1]: ``x -> (1 - a) x + a f(W x)``.

    Returns
    -------
    IterativeMap
        One block of ``n`` units, autonomous.

    Raises
    ------
    ValueError
        ``n < 1``, a negative ``gain``, a density outside (0, 1].
    TypeError
        A non-floating ``dtype``.

    Examples
    --------
    >>> from itermap import random_rnn
    >>> m = random_rnn(100, gain=0.5, density=0.05, rng=0)
    >>> m.dim, m.block_matrix.density < 0.1
    (100, True)
    """
    n = check_int("n", n, 1)
    _check_leak(leak, 1)
    gain = check_real("gain", gain, minimum=0.0)
    density = check_real("density", density, positive=True, maximum=1.0)
    with named("dtype"):
        dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating type, got {dtype}")
    gen = as_rng(rng)
    std = gain / np.sqrt(n * density)
    if density >= 1.0:
        W = gen.normal(0.0, std, size=(n, n)).astype(dtype)
    else:
        count = int(gen.binomial(n * n, density))
        flat = np.sort(gen.choice(n * n, size=count, replace=False))
        values = gen.normal(0.0, std, size=count).astype(dtype)
        W = sp.csr_matrix((values, (flat // n, flat % n)), shape=(n, n), dtype=dtype)
        if density > 0.1:
            W = W.toarray()
    return IterativeMap(W, activation=activation, leak=leak)


# a sparse map's dense Jacobian from this size on (200 MB) is worth a warning
_WARN_DENSE_JACOBIAN = 5000


# -- internals ----------------------------------------------------------------
# attributes IterativeMap.__init__ and its lazy caches set; a subclass's own are pickled
_DERIVED_ATTRS = frozenset({
    "_bm", "_sizes", "_offsets", "_slices", "input_block", "activations", "_uniform", "_act",
    "_kind", "_incoming", "_incoming_T", "_W", "_WT", "_Wdense_cache", "bias", "_bias_blocks",
    "_depth", "_in_cols_dense", "_in_cols_sparse_T", "_topo_cache", "_leak", "_leak_vec",
    "_in_cols_sparse", "_keep_vec", "_functions"})


def _check_leak(leak, n_blocks):
    """Leak rates, one per block, each finite and in (0, 1]; errors name ``leak``."""
    if isinstance(leak, str | bytes) or isinstance(leak, bool):
        raise TypeError(f"leak must be a real number or one per block, got {leak!r}")
    if hasattr(leak, "__cuda_array_interface__"):
        leak = to_numpy(leak)
    if isinstance(leak, np.ndarray) and leak.ndim == 0:
        leak = leak.item()
    if isinstance(leak, Sequence) or isinstance(leak, np.ndarray):
        rates = list(leak)
        if len(rates) != n_blocks:
            raise ValueError(f"leak: got {len(rates)} leak rates for {n_blocks} blocks (give one "
                             "rate, or one per block)")
    else:
        rates = [leak] * n_blocks
    out = []
    for r in rates:
        r = check_real("leak", r)
        if not 0.0 < r <= 1.0:
            raise ValueError(f"leak must lie in (0, 1], got {r}")
        out.append(r)
    return tuple(out)


def _diag_matrix(v, xp):
    """``diag(v)`` as a dense matrix on ``xp``."""
    n = v.shape[0]
    out = xp.zeros((n, n), dtype=v.dtype)
    idx = xp.arange(n)
    out[idx, idx] = v
    return out


def _arrays_equal(a, b) -> bool:
    """Same storage (dense or sparse), shape, dtype and values."""
    if is_sparse(a) != is_sparse(b) or tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
        return False
    if is_sparse(a):
        return (a != b).nnz == 0
    xp = namespace(a)
    return bool(xp.all(a == b))


def _check_matrix(name, w):
    """``w`` as a real, finite, non-empty 2-D array or sparse matrix; errors name ``name``."""
    w = _check_real_finite(name, w, "2-D array or a sparse matrix", "2-D array")
    if len(w.shape) != 2 or 0 in w.shape:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got shape {tuple(w.shape)}")
    return _check_values(name, w)


def _check_vector(name, b):
    """``b`` as a real, finite 1-D array (its shape is the caller's to check)."""
    return _check_values(name, _check_real_finite(name, b, "1-D array", "1-D array"))


def _check_real_finite(name, a, kind, real_kind):
    """``a`` as an array or sparse matrix, parsed from a sequence if need be."""
    if a is None or isinstance(a, str | bytes):
        raise TypeError(f"{name} must be a {kind}, got {type(a).__name__}")
    a = no_half(name, plain_array(name, a))
    if not is_sparse(a) and not hasattr(a, "shape"):
        try:
            a = np.asarray(a, dtype=float)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a real {real_kind} ({err})") from None
    return a


def _check_values(name, a):
    """``a`` (dense or sparse) if its entries are real and finite; errors name ``name``."""
    data = a.data if is_sparse(a) else a
    xp = namespace(data)
    if not xp.isdtype(data.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must be real, got dtype {data.dtype}")
    if not bool(xp.all(xp.isfinite(xp.astype(data, xp.float64)))):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _split(W, sizes):
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    if len(sizes) == 1:
        return BlockMatrix(sizes, {(0, 0): W})
    blocks = {}
    if is_sparse(W):
        W = W.tocsr()
    for i in range(len(sizes)):
        for j in range(len(sizes)):
            blocks[(i, j)] = W[off[i]:off[i + 1], off[j]:off[j + 1]]
    return BlockMatrix(sizes, blocks)


def _keep_mask(n, s, xp, dtype):
    keep = np.ones(n)
    keep[s] = 0.0
    return xp.astype(xp.asarray(keep), dtype)


def _zero_rows(W, s, xp):
    return W * _keep_mask(W.shape[0], s, xp, W.dtype)[:, None]


def _zero_rows_cols(W, s, xp):
    keep = _keep_mask(W.shape[0], s, xp, W.dtype)
    return W * keep[:, None] * keep[None, :]  # stays C-ordered, unlike a transpose trick


def _csr_vector(S, x):
    """``S @ x`` for a SciPy CSR ``S`` and a 1-D NumPy ``x``: SciPy's own kernel without
    its per-call dispatch (a step of a small reservoir is mostly that dispatch)."""
    kernel = _matvec_kernel()
    if kernel is None or not isinstance(x, np.ndarray) or x.dtype != S.dtype or \
            S.dtype != np.float64 or not x.flags.c_contiguous or \
            not isinstance(S, sp.csr_matrix | sp.csr_array) or x.shape[0] != S.shape[1]:
        return S @ x
    y = np.zeros(S.shape[0], dtype=S.dtype)
    kernel(S.shape[0], S.shape[1], S.indptr, S.indices, S.data, x, y)
    return y


def _matvec_kernel():
    global _MATVEC
    if _MATVEC is False:
        try:
            from scipy.sparse._sparsetools import csr_matvec
        except ImportError:  # a SciPy without it: its public product
            csr_matvec = None
        _MATVEC = csr_matvec
    return _MATVEC


_MATVEC: Any = False  # scipy's csr_matvec once looked up (None: not available)


def _rows_times(X, ST):
    """``X @ ST`` for a dense (n,) or (B, n) ``X`` and a sparse CSR ``ST``."""
    if X.ndim == 1:
        return ST.T @ X
    return X @ ST


def _add(a, b, xp):
    """``a + b``, in place on NumPy arrays that ``a`` owns (a fresh product)."""
    if isinstance(a, np.ndarray) and a.flags.owndata and (
            a.shape == b.shape or a.shape == np.broadcast_shapes(a.shape, b.shape)) and \
            a.dtype == np.result_type(a, b):
        return np.add(a, b, out=a)
    return a + b


def _sparse_cols(S, V, xp):
    """``S @ V`` for sparse ``S`` and dense ``V`` of shape (n, k) or (B, n, k)."""
    times = csr_times if isinstance(V, np.ndarray) else (lambda S, V: S @ V)
    if V.ndim == 2:
        return times(S, V)
    B, n, k = V.shape
    flat = xp.reshape(xp.permute_dims(V, (1, 0, 2)), (n, B * k))
    out = times(S, flat)
    return xp.permute_dims(xp.reshape(out, (S.shape[0], B, k)), (1, 0, 2))


def _topological_order(pattern, input_block):
    """Blocks in an order where every non-input predecessor comes first."""
    n = pattern.shape[0]
    preds = {i: [j for j in range(n) if pattern[i, j] and j != input_block and i != input_block]
             for i in range(n)}
    order, done = [], set()
    if input_block is not None:
        done.add(input_block)
    while len(order) < n - (input_block is not None):
        ready = [i for i in range(n) if i not in done and all(j in done for j in preds[i])]
        if not ready:
            return None
        for i in ready:
            order.append(i)
            done.add(i)
    return order


def _settle_depth(pattern, input_block):
    """Longest chain of blocks (counting blocks), ignoring edges into the input block."""
    order = _topological_order(pattern, input_block)
    if order is None:
        return None
    n = pattern.shape[0]
    level = {}
    for i in order:
        preds = [level[j] for j in range(n) if pattern[i, j] and j != input_block]
        level[i] = 1 + max(preds, default=0)
    return max(level.values(), default=1)


def _csr_coordinates(c, xp):
    """Row and column of each stored entry of a sorted CSR matrix, on ``xp``."""
    indptr = c.indptr
    if backend_of(indptr) == "cupy":  # cupy.repeat takes no array of repeats before 14.1
        host = to_numpy(indptr)
        rows = np.repeat(np.arange(c.shape[0], dtype=host.dtype), np.diff(host))
        return to_backend(rows, "cupy"), c.indices
    counts = indptr[1:] - indptr[:-1]
    rows = xp.repeat(xp.arange(c.shape[0], dtype=indptr.dtype), counts) if hasattr(
        xp, "repeat") else np.repeat(np.arange(c.shape[0]), np.diff(np.asarray(indptr)))
    return rows, c.indices


# the dense product g^T x is cheaper than gathering once a block is this full (BLAS runs
# ~30x more multiply-adds per second than a gather); used only while the product is small
_SAMPLED_DENSE_FILL = 1.0 / 32
_SAMPLED_DENSE_MAX_AREA = 1 << 24
_SAMPLED_CHUNK = 1 << 22  # entries of g[:, rows] gathered at once


def sampled_product(g, x, rows, cols):
    """``(g^T x)[rows, cols]``, the sampled dense-dense product (SDDMM).

    ``g`` is ``(n, m)``, ``x`` is ``(n, k)``; the result has one value per
    ``(rows[e], cols[e])``. Computed from gathered columns in chunks, so its cost
    is ``n * len(rows)`` and never ``m * k``, except for a small, fairly full
    pattern where the dense product through BLAS is cheaper.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap._network import sampled_product
    >>> g, x = np.arange(6.0).reshape(2, 3), np.ones((2, 2))
    >>> sampled_product(g, x, np.array([0, 2]), np.array([1, 0]))
    array([3., 7.])
    """
    xp = namespace(g)
    m, k = g.shape[1], x.shape[1]
    nnz = int(rows.shape[0])
    if nnz == 0:
        return xp.zeros(0, dtype=g.dtype)
    if m * k <= _SAMPLED_DENSE_MAX_AREA and nnz >= _SAMPLED_DENSE_FILL * m * k:
        return xp.matmul(g.T, x)[rows, cols]
    n = g.shape[0]
    step = max(1, _SAMPLED_CHUNK // max(n, 1))
    out = xp.empty(nnz, dtype=g.dtype)
    gT, xT = g.T, x.T  # gather rows of contiguous transposes: each is one run of n values
    if isinstance(gT, np.ndarray):
        gT, xT = np.ascontiguousarray(gT), np.ascontiguousarray(xT)
    for s in range(0, nnz, step):
        r, c = rows[s:s + step], cols[s:s + step]
        out[s:s + step] = xp.sum(gT[r] * xT[c], axis=1)
    return out
