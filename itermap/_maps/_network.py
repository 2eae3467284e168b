"""Networks as iterative maps: ``x_{k+1} = f(W x_k + b)`` on a stacked state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._core._backend import backend_of, is_sparse, namespace, sparse_module, to_backend
from .._core._checks import check_int, check_memory, check_real, named, one_namespace, real_array
from .._core._rng import as_rng
from .._core._types import Array, RngLike
from .._running import _fused_steppers
from . import _network_build, _network_grad
from ._activations import get_activation
from ._block_functions import BlockFunction
from ._blocks import BlockMatrix, _block_key, _check_sizes
from ._map import Map
from ._network_parts import (
    _add,
    _arrays_equal,
    _check_leak,
    _check_matrix,
    _csr_vector,
    _rows_times,
    _settle_depth,
    _split,
    _topological_order,
    _zero_rows,
    _zero_rows_cols,
    function_output,
)

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
        ``"sigmoid"``, ``"identity"``, ``"softplus"``, ``"leaky_relu"``, ``"sin"``,
        ``"gelu"``, ``"silu"`` (:data:`itermap.ACTIVATIONS`).
    input_block : int, optional
        The block overwritten by the external input ``u`` before every step
        (the paper's data insertion). None for an autonomous map. The new
        state's input block holds ``u`` too, so under a constant input the
        fixed points carry the input; rows of ``W`` for the input block are
        therefore unused, and the Jacobian has zero rows and columns there.
    sizes : sequence of int, optional
        Block sizes that split a plain matrix ``weights``.
    functions : mapping of (i, j) to BlockFunction, optional
        Blocks that are functions rather than matrices (see
        :mod:`itermap.block_functions`): block ``i``'s new state is
        ``f_i(sum_j W_ij x_j + sum_j g_ij(x_j) + b_i)``. Function blocks are not
        trained: :func:`itermap.train` trains the matrix blocks around them.
    leak : float or sequence of float, optional
        The leak rate ``a`` of a leaky-integrator network (Jaeger et al. 2007), one
        for every block or one per block, each in (0, 1]: block ``i``'s new state is
        ``(1 - a_i) x_i + a_i f_i(sum_j W_ij x_j + b_i)``. None or 1 everywhere is
        the plain map. The input block's entry has no effect and reads back as 1.

    Notes
    -----
    States are rows: a batch has shape ``(B, dim)`` and one step computes
    ``f(X @ W.T + b)``. Dense weights run as one BLAS matmul (or one per
    stored block when fewer than half the blocks are filled); sparse weights
    stay sparse (scipy.sparse or cupyx.scipy.sparse).

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).

    Examples
    --------
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
            input_block = check_int("input_block", input_block)
            if not 0 <= input_block < len(self._sizes):
                raise ValueError(f"input_block {input_block} does not exist: the map has "
                                 f"{len(self._sizes)} blocks")
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
            i, j = _block_key("functions", key)
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
                mask = self._sparse_keep(S)
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
        bias = real_array("bias", bias)
        one_namespace(weights=self._W if self._W is not None else next(
            iter(self._bm.blocks.values()), None), bias=bias, movable=True)
        xp = namespace(bias)
        if bias.ndim != 1 or bias.shape[0] != self.dim:
            raise ValueError(f"bias must have shape ({self.dim},), got {tuple(bias.shape)}")
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
        xp = namespace(self.bias)  # the map's own namespace (NumPy, CuPy, any array API)
        vec, keep = xp.asarray(a), xp.asarray(1.0 - a)
        if self.dtype is not None:
            vec, keep = xp.astype(vec, self.dtype), xp.astype(keep, self.dtype)
        self._leak_vec, self._keep_vec = vec, keep

    @property
    def leak(self) -> tuple[float, ...]:
        """The leak rate of every block (1 for the input block and a map without leak)."""
        return self._leak if self._leak is not None else (1.0,) * len(self._sizes)

    @property
    def leaky(self) -> bool:
        """Whether some block has a leak rate below 1."""
        return self._leak is not None

    @property
    def jacobian_nnz(self) -> int | None:
        """Nonzeros of :meth:`sparse_jacobian` at most (the weights' and the leak's
        diagonal), for memory estimates; None for dense weights or function blocks."""
        if self._kind == "dense" or self._functions:
            return None
        return int(self._bm.nnz) + (self.dim if self._leak is not None else 0)

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
        if u.dtype != x.dtype:  # the state's precision, as the recurrent maps keep it
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
            values = [self._block_input(x, u, j) for j in range(len(self._sizes))]
            parts = [self._block_pre(values, i, x, xp) for i in range(len(self._sizes))]
            return self._add_functions(parts, x, u), u
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
            v = self._block_input(x, u, j)
            parts[i] = parts[i] + function_output(g(v), (*v.shape[:-1], self._sizes[i]),
                                                  (i, j), g)
        return parts

    def _block_pre(self, values, i, x, xp, functions=False):
        """Block ``i``'s pre-activation from the blocks' ``values`` (and its function blocks)."""
        z = None
        for j, WT in self._incoming_T[i]:
            term = _rows_times(values[j], WT) if is_sparse(WT) else xp.matmul(values[j], WT)
            z = term if z is None else _add(z, term, xp)
        for (ii, j), g in self._functions.items() if functions else ():
            if ii == i:
                y = function_output(g(values[j]), (*values[j].shape[:-1], self._sizes[i]),
                                    (i, j), g)
                z = y if z is None else _add(z, y, xp)
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

    def _sparse_keep(self, S):
        """The sparse diagonal, in ``S``'s dtype and backend, that zeroes the input block."""
        keep = np.ones(self.dim, dtype=S.dtype)  # float64 would promote float32 weights
        keep[self._slices[self.input_block]] = 0.0
        smod = sparse_module(namespace(S))
        return smod.diags(to_backend(keep, self.backend) if self.backend == "cupy" else keep)

    def _input_cols_sparse_T(self):
        cache = getattr(self, "_in_cols_sparse_T", None)
        if cache is None:
            S = self._bm.to_sparse().tocsc()[:, self._slices[self.input_block]].tocsr()
            cache = (self._sparse_keep(S) @ S).T.tocsr()
            self._in_cols_sparse_T = cache
        return cache

    def _input_term(self, u):
        """``W'[:, input] u`` for one input ``u``: dense when small (no sparse call overhead)."""
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

    def step(self, x: Array, u: Array | None = None) -> Array:
        """One step ``f(W x + b)`` for a state ``(dim,)`` or a batch ``(B, dim)``.

        Parameters
        ----------
        x : array of shape (dim,) or (B, dim)
        u : array, optional
            The input of a driven map (``input_block`` set): ``(input_size,)``, or
            ``(B, input_size)`` for a batch; refused for an autonomous one.

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
        """The step ``iterate`` may call on checked states and inputs (None in a subclass)."""
        return self._step_trusted if type(self).step is IterativeMap.step else None

    def _step_trusted(self, x, u):
        xp = namespace(x)
        if u is not None and u.ndim < x.ndim:
            u = xp.broadcast_to(u, (*x.shape[:-1], self.input_size))
        parts, u = self._preactivation(x, u, trusted=True)
        return self._activate(parts, u, xp, x=x)

    # defined in itermap/_maps/_network_grad.py (the map's derivatives)
    _function_tangents = _network_grad._function_tangents
    _function_vjps = _network_grad._function_vjps
    _derivative = _network_grad._derivative
    _linear_tangent = _network_grad._linear_tangent
    tangent = _network_grad.tangent
    step_with_tangent = _network_grad.step_with_tangent
    _leak_tangent = _network_grad._leak_tangent
    _sparse_state_and_tangent = _network_grad._sparse_state_and_tangent
    vjp = _network_grad.vjp
    _linear_vjp = _network_grad._linear_vjp
    step_with_derivative = _network_grad.step_with_derivative
    parameter_gradient = _network_grad.parameter_gradient
    block_gradient = _network_grad.block_gradient
    jacobian = _network_grad.jacobian
    sparse_jacobian = _network_grad.sparse_jacobian
    approximate_jacobian = _network_grad.approximate_jacobian
    _dense_masked = _network_grad._dense_masked
    # defined in itermap/_maps/_network_build.py (the layered view)
    forward = _network_build.forward
    settled_state = _network_build.settled_state

    # defined in itermap/_running/_fused_steppers.py (beside the steppers it picks from)
    tangent_stepper = _fused_steppers.network_tangent_stepper

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
        """Equal content: sizes, blocks, bias, activations, input block, leak and backend."""
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

    # defined in itermap/_maps/_network_build.py (the layered view)
    from_mlp = classmethod(_network_build.from_mlp)
    from_rnn = classmethod(_network_build.from_rnn)


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

    References
    ----------
    .. [1] H. Sompolinsky, A. Crisanti, H. J. Sommers, "Chaos in random neural
       networks", Physical Review Letters 61(3), 259-262 (1988).

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
    num, den = density.as_integer_ratio()  # exact ints: n * n * density overflows a float
    check_memory("n", n * n * num // den * dtype.itemsize, "the n x n weights")
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


# -- internals ----------------------------------------------------------------
# attributes IterativeMap.__init__ and its lazy caches set; a subclass's own are pickled
_DERIVED_ATTRS = frozenset({
    "_bm", "_sizes", "_offsets", "_slices", "input_block", "activations", "_uniform", "_act",
    "_kind", "_incoming", "_incoming_T", "_W", "_WT", "_Wdense_cache", "bias", "_bias_blocks",
    "_depth", "_in_cols_dense", "_in_cols_sparse_T", "_topo_cache", "_leak", "_leak_vec",
    "_in_cols_sparse", "_keep_vec", "_functions"})
