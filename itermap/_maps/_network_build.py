"""The layered view of an :class:`~itermap.IterativeMap`: ``from_mlp``, ``from_rnn``,
``forward`` and ``settled_state``, bound into the class by :mod:`itermap._maps._network`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core._backend import namespace
from .._core._checks import is_sequence, named, one_namespace, real_array
from .._core._types import Array
from ._activations import get_activation
from ._blocks import BlockMatrix
from ._network_parts import _check_matrix

if TYPE_CHECKING:
    from ._network import IterativeMap


def forward(self: IterativeMap, x: Array) -> Array:
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
    x = real_array("x", x)
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
    state = self.settled_state(self.zeros(None if x.ndim == 1 else x.shape[0]), x)
    out = self.readout(state)
    return out if tokens is None else xp.reshape(out, (x.shape[0], tokens, -1))


# -- settling shortcut used by iterate ---------------------------------
def settled_state(self: IterativeMap, x: Array, u: Array | None = None) -> Array:
    """The state reached after :attr:`settle_steps` or more steps.

    For an acyclic block graph under a constant input this is one sweep
    over the blocks in topological order (Gauss-Seidel instead of Jacobi):
    the cost of one forward pass, however many steps it stands for.

    Parameters
    ----------
    x : array of shape (dim,) or (B, dim)
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
        z = self._block_pre(values, i, x, xp, functions=True)
        values[i] = self.activations[i].apply(z, xp, inplace=True)
    parts = [values[i] for i in range(len(self._sizes))]
    return xp.concat(parts, axis=-1) if len(parts) > 1 else parts[0]


# -- constructors -------------------------------------------------------
def from_mlp(cls: type[IterativeMap], weights: Sequence[Array],
             biases: Sequence[Array] | None = None, activation: str = "relu",
             output_activation: str = "identity") -> IterativeMap:
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
        from :meth:`~itermap.Map.zeros` with the input held at ``x`` leaves the MLP's
        output in :meth:`~itermap.Map.readout`.

    Raises
    ------
    ValueError
        Layer shapes that do not chain, biases that do not fit, an unknown
        activation.
    TypeError
        Weights that are not real matrices, biases that are not a list.

    Examples
    --------
    >>> from itermap import IterativeMap, iterate
    >>> rng = np.random.default_rng(0)
    >>> Ws = [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))]
    >>> mlp = IterativeMap.from_mlp(Ws)
    >>> x = rng.normal(size=3)
    >>> state = iterate(mlp, mlp.zeros(), 2, inputs=x, keep="last").final
    >>> bool(np.allclose(mlp.readout(state), Ws[1] @ np.maximum(Ws[0] @ x, 0)))
    True
    """
    if not is_sequence(weights):
        raise TypeError(f"weights must be a list of layer weight matrices, got "
                        f"{type(weights).__name__}")
    weights = list(weights)
    if not weights:
        raise ValueError("weights: an MLP needs at least one weight matrix")
    for label, act in (("activation", activation), ("output_activation", output_activation)):
        with named(label):
            get_activation(act)
    if biases is not None and not is_sequence(biases):
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
            b = real_array(f"biases[{l}]", b)
            # host biases for device weights are moved there, as IterativeMap's bias is
            one_namespace(**{"weights[0]": mats[0], f"biases[{l}]": b}, movable=True)
            if tuple(b.shape) != (sizes[l + 1],):
                raise ValueError(f"bias {l} has shape {tuple(b.shape)}; expected "
                                 f"({sizes[l + 1]},)")
            parts.append(xp.astype(xp.asarray(b), parts[0].dtype))
        bias = xp.concat(parts)
    return cls(bm, bias, acts, input_block=0)


def from_rnn(cls: type[IterativeMap], W_hh: Array, W_hx: Array, b: Array | None = None,
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
        b = real_array("b", b)
        if tuple(b.shape) != (n_h,):
            raise ValueError(f"b must have shape ({n_h},), got {tuple(b.shape)}")
        xp = namespace(b)
        bias = xp.concat([xp.zeros(n_x, dtype=b.dtype), b])
    return cls(bm, bias, ["identity", activation], input_block=0, leak=leak)
