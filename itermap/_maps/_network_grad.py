"""Derivatives and training gradients of an :class:`~itermap.IterativeMap`.

Each function takes the map as ``self``; :mod:`itermap._maps._network` binds it
into the class as a method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._core._backend import backend_of, is_sparse, namespace, sparse_module, to_backend, to_numpy
from .._core._checks import one_namespace, plain_array
from .._core._types import Array
from ._map import Map
from ._network_parts import _add, _rows_times, _zero_rows_cols, function_output

if TYPE_CHECKING:
    from ._network import IterativeMap


def _function_tangents(self, Wv, x, v, xp):
    """``W' v`` plus the function blocks' tangents (the input block's columns are 0)."""
    parts = [Wv[..., s, :] for s in self._slices]
    for (i, j), g in self._functions.items():
        if j != self.input_block:
            vj = v[..., self._slices[j], :]
            parts[i] = parts[i] + function_output(
                g.tangent(x[..., self._slices[j]], vj),
                (*vj.shape[:-2], self._sizes[i], vj.shape[-1]), (i, j), g,
                "tangent (tangent_rows transposed)")
    return xp.concat(parts, axis=-2) if len(parts) > 1 else parts[0]


def _function_vjps(self, out, x, g, xp):
    """``g W'`` plus the function blocks' transposes (the input block's columns are 0)."""
    parts = [out[..., s] for s in self._slices]
    for (i, j), fn in self._functions.items():
        if j != self.input_block:
            parts[j] = parts[j] + fn.vjp(x[..., self._slices[j]], g[..., self._slices[i]])
    return xp.concat(parts, axis=-1) if len(parts) > 1 else parts[0]


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


def tangent(self: IterativeMap, x: Array, v: Array, u: Array | None = None) -> Array:
    """``J(x) @ v`` without forming ``J``: ``f'(z) * (W v)``.

    Parameters
    ----------
    x : array of shape (dim,) or (B, dim)
    v : array of shape (dim, k) or (B, dim, k)
        Tangent vectors, as columns.
    u : array, optional
        The input of a driven map, as for :meth:`step`.

    Returns
    -------
    array
        ``J(x) @ v``, of ``v``'s shape.

    Examples
    --------
    >>> from itermap import IterativeMap
    >>> m = IterativeMap(np.array([[0.0, 1.0], [0.5, 0.0]]), activation="identity")
    >>> m.tangent(np.zeros(2), np.array([[1.0], [0.0]]))
    array([[0. ],
           [0.5]])
    """
    return self.step_with_tangent(x, v, u)[1]


def step_with_tangent(self: IterativeMap, x: Array, v: Array,
                      u: Array | None = None) -> tuple[Array, Array]:
    """``(step(x, u), J(x) @ v)`` from one pre-activation.

    Parameters
    ----------
    x : array of shape (dim,) or (B, dim)
    v : array of shape (dim, k) or (B, dim, k)
        Tangent vectors, as columns.
    u : array, optional
        The input of a driven map, as for :meth:`step`.

    Returns
    -------
    (array, array)
        The next state and ``J(x) @ v``.

    Examples
    --------
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


def _sparse_state_and_tangent(self, x, v):
    """``(W x + b, W v)`` in one pass over a SciPy CSR ``W``: ``[x | v]`` as columns."""
    if x.ndim == 1:
        cols = np.concatenate([x[:, None], v], axis=1)
    else:
        B, n, k = v.shape
        cols = np.concatenate([x.T, np.transpose(v, (1, 0, 2)).reshape(n, B * k)], axis=1)
    out = self._W @ cols
    if x.ndim == 1:
        z, Wv = out[:, 0], out[:, 1:]
    else:
        z = np.ascontiguousarray(out[:, :B].T)
        Wv = np.transpose(out[:, B:].reshape(n, B, k), (1, 0, 2))
    if self.bias is not None:
        z = _add(np.ascontiguousarray(z), self.bias, np)
    return z, Wv


def vjp(self: IterativeMap, x: Array, w: Array, u: Array | None = None) -> Array:
    """``w^T J(x) = (w * f'(z)) W'``: a transpose product, so sparse weights stay sparse.

    Parameters
    ----------
    x : array of shape (dim,) or (B, dim)
    w : array of shape (dim,), (k, dim), (B, dim) or (B, k, dim)
        Cotangent vectors, as rows.
    u : array, optional
        The input of a driven map, as for :meth:`step`.

    Returns
    -------
    array
        ``w^T J(x)``, of ``w``'s shape.

    Examples
    --------
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
def step_with_derivative(self: IterativeMap, x: Array, u: Array | None = None
                         ) -> tuple[Array, Array, Array]:
    """``(x', step(x, u), f'(z))``, which training stores for backpropagation through time.

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


def parameter_gradient(self: IterativeMap, x: Array, w: Array, u: Array | None = None
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


def block_gradient(self: IterativeMap, key: tuple[int, int], g: Array, xin: Array, *,
                   rows: Array | None = None, cols: Array | None = None) -> Array:
    """``dL/dW_ij`` of block ``key = (i, j)`` from ``g = dL/dz`` and ``x'`` (rows summed).

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
        ``g_i^T x'_j`` of shape ``(n_i, n_j)`` for a dense block; for a sparse one
        the values at its nonzeros, in sorted CSR order.

    Examples
    --------
    >>> from itermap import IterativeMap
    >>> m = IterativeMap(np.array([[0.5, 0.0], [1.0, 0.5]]), activation="identity")
    >>> m.block_gradient((0, 0), np.array([[1.0, 0.0]]), np.array([[1.0, 2.0]]))
    array([[1., 2.],
           [0., 0.]])
    """
    i, j = key
    gi, xj = g[:, self._slices[i]], xin[:, self._slices[j]]
    xp = namespace(g)
    b = self._bm.blocks.get(key)   # None: zero now (not stored), dense in its gradient
    if b is None or not is_sparse(b):
        return xp.matmul(gi.T, xj)
    if rows is None:
        c = b.tocsr().copy()
        c.sort_indices()
        rows, cols = _csr_coordinates(c, xp)
    return sampled_product(gi, xj, rows, cols)


def jacobian(self: IterativeMap, x: Array, u: Array | None = None, *, sparse: bool = False) -> Any:
    """``diag(f'(z)) W'`` of shape ``(dim, dim)`` or ``(B, dim, dim)``.

    Dense by default. A map with sparse weights can give its Jacobian at one
    state as a sparse matrix with ``sparse=True`` (the same pattern as its
    weights); building a large dense Jacobian of a sparse map warns first,
    since ``tangent`` and ``vjp`` need no Jacobian at all.

    Parameters
    ----------
    x : array of shape (dim,) or (B, dim)
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
        A state of the wrong shape, a missing or unexpected input ``u``, or
        ``sparse=True`` with a batch of states.
    TypeError
        A state that is not a real array.

    Examples
    --------
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
        return _sparse_product(self, d)
    if self._kind != "dense" and self.dim >= _WARN_DENSE_JACOBIAN:
        import warnings

        batch = x.shape[0] if x.ndim == 2 else 1
        warnings.warn(f"building {batch} dense {self.dim} x {self.dim} Jacobian(s) of a "
                      f"sparse map ({batch * self.dim ** 2 * 8 / 1e9:.2g} GB); tangent and "
                      f"vjp need none, and jacobian(x, sparse=True) keeps the pattern",
                      stacklevel=2)
    J = d[..., :, None] * self._dense_masked(xp)
    if self._leak is not None:  # + diag(1 - a); the array API has no fancy-index assignment
        J = J + xp.eye(self.dim, dtype=self._keep_vec.dtype) * self._keep_vec[None, :]
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


def sparse_jacobian(self: IterativeMap, x: Array, u: Array | None = None) -> Any:
    """``dF/dx`` at one state as a sparse matrix (CSR), where the weights are sparse.

    The map's answer to :meth:`Map.sparse_jacobian`, as ``jacobian(x, u, sparse=True)``
    (the leak's diagonal, the input block's rows and columns zero), for a map whose
    weights are stored sparse; None for dense weights (a dense matrix factors faster
    than its sparse copy) and for function blocks (no sparse form: use ``tangent``).

    Parameters
    ----------
    x : array of shape (dim,)
        One state.
    u : array, optional
        The input of a driven map, as for :meth:`jacobian`.

    Returns
    -------
    sparse matrix of shape (dim, dim), or None
        With at most :attr:`jacobian_nnz` nonzeros.

    Raises
    ------
    ValueError
        A batch of states, a state of the wrong shape, or a missing or unexpected ``u``.

    Examples
    --------
    >>> import itermap
    >>> m = itermap.random_rnn(50, density=0.1, leak=0.5, rng=0)
    >>> x = np.full(50, 0.1)
    >>> J = m.sparse_jacobian(x)
    >>> bool(J.count_nonzero() <= m.jacobian_nnz), bool(np.allclose(J.toarray(), m.jacobian(x)))
    (True, True)
    """
    _, d = _one_state_derivative(self, x, u, "sparse_jacobian", self.jacobian_nnz is None)
    return None if d is None else _sparse_product(self, d)


def _one_state_derivative(self, x, u, name, no_matrix):
    """``(x, d)`` for the sparse Jacobians at one state: ``x`` coerced and checked, ``d``
    the activations' derivative there; ``d`` None (nothing computed, but ``x`` and ``u``
    refused all the same where bad) where the caller returns no matrix (``no_matrix``)."""
    x = self._coerce(x)
    if x.ndim != 1:
        raise ValueError(f"x: {name} takes one state of shape ({self.dim},), got "
                         f"shape {tuple(x.shape)}")
    if no_matrix:
        if u is not None or self.input_block is None:
            self._check_input(x, u)     # bad arguments are refused here too
        return x, None
    if u is None and self.input_block is not None:
        u = x[self._slices[self.input_block]]
    parts, _ = self._preactivation(x, u)
    return x, self._derivative(parts, namespace(x))


def approximate_jacobian(self: IterativeMap, x: Array, u: Array | None = None, *,
                         max_nnz: int | None = None) -> Any:
    """``dF/dx`` at one state as a sparse matrix, function blocks included.

    The map's answer to :meth:`Map.approximate_jacobian`: :meth:`sparse_jacobian` where
    it has no function blocks; with function blocks (sparse weights), the weights'
    pattern plus each function block's Jacobian as a dense block (from its
    ``tangent`` on the unit vectors of its input: ``in_size`` directions). The matrix
    is then exact, with ``nnz(W) + sum(in_size * out_size) + dim`` nonzeros at most;
    None for dense weights.

    Parameters
    ----------
    x : array of shape (dim,)
        One state.
    u : array, optional
        The input of a driven map, as for :meth:`jacobian`.
    max_nnz : int, optional
        None is returned (nothing built) where the matrix could hold more nonzeros.

    Returns
    -------
    sparse matrix of shape (dim, dim), or None

    Raises
    ------
    ValueError
        A batch of states, a state of the wrong shape, or a missing or unexpected ``u``.

    Examples
    --------
    >>> import itermap
    >>> import scipy.sparse as sp
    >>> from itermap.block_functions import FeedForward
    >>> g = FeedForward(np.full((3, 4), 0.1), None, np.full((4, 3), 0.2), None, seq_len=1)
    >>> W = itermap.BlockMatrix([4, 4], {(0, 0): sp.identity(4, format="csr") * 0.5})
    >>> m = itermap.IterativeMap(W, functions={(1, 0): g})
    >>> x = np.linspace(-1.0, 1.0, 8)
    >>> bool(np.allclose(m.approximate_jacobian(x).toarray(), m.jacobian(x)))
    True
    """
    if not self._functions:
        return Map.approximate_jacobian(self, x, u, max_nnz=max_nnz)
    fns = [(i, j, g) for (i, j), g in self._functions.items() if j != self.input_block]
    nnz = int(self._bm.nnz) + sum(g.in_size * g.out_size for _, _, g in fns) + self.dim
    x, d = _one_state_derivative(self, x, u, "approximate_jacobian", self._kind == "dense"
                                 or (max_nnz is not None and nnz > max_nnz))
    if d is None:
        return None
    xp = namespace(x)
    S = self._bm.to_sparse().tocsr()
    smod = sparse_module(namespace(S))
    eye = xp.eye(max((g.in_size for _, _, g in fns), default=0), dtype=x.dtype)
    for i, j, g in fns:     # the function's Jacobian: its tangent on the unit vectors,
        xj = x[self._slices[j]]     # _JAC_CHUNK at a time (a tangent's work arrays scale)
        for c in range(0, g.in_size, _JAC_CHUNK):
            cols = eye[:g.in_size, c:c + _JAC_CHUNK]
            Jg = smod.coo_matrix(g.tangent(xj, cols))
            r0, c0 = self._slices[i].start, self._slices[j].start + c
            S = S + smod.coo_matrix((Jg.data, (Jg.row + r0, Jg.col + c0)), shape=S.shape)
    return _sparse_product(self, d, S.tocsr())


# directions per call of a function block's tangent in approximate_jacobian
_JAC_CHUNK = 256


def _sparse_product(self, d, S=None):
    """``diag(d) W' + diag(1 - a)`` as CSR, W' the weights (or ``S``) without the input
    block."""
    S = self._bm.to_sparse().tocsr() if S is None else S
    smod = sparse_module(namespace(S))
    if self.input_block is not None:
        mask = self._sparse_keep(S)
        S = mask @ S @ mask
    J = smod.diags(d) @ S
    if self._leak is not None:
        J = J + smod.diags(self._keep_vec)
    return J.tocsr()


# a sparse map's dense Jacobian from this size on (200 MB) is worth a warning
_WARN_DENSE_JACOBIAN = 5000


def _sparse_cols(S, V, xp):
    """``S @ V`` for sparse ``S`` and dense ``V`` of shape (n, k) or (B, n, k)."""
    if V.ndim == 2:
        return S @ V
    B, n, k = V.shape
    flat = xp.reshape(xp.permute_dims(V, (1, 0, 2)), (n, B * k))
    return xp.permute_dims(xp.reshape(S @ flat, (S.shape[0], B, k)), (1, 0, 2))


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
    >>> from itermap._maps._network_grad import sampled_product
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
