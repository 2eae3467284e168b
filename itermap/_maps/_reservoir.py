"""reservoirpy's reservoirs as leaky iterative maps, with a fitted readout kept."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._core._backend import is_sparse, namespace
from .._core._checks import one_namespace, real_array
from .._core._types import Array
from ._network import IterativeMap
from ._network_parts import _check_matrix

__all__ = ["ReservoirMap", "from_reservoirpy"]

# reservoirpy's elementwise activations (reservoirpy.activationsfunc), itermap's names too
_ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity", "softplus")


class ReservoirMap(IterativeMap):
    """A driven leaky reservoir ``[u; x]`` whose :meth:`~itermap.ReservoirMap.readout` is linear.

    The map is :meth:`IterativeMap.from_rnn`'s (block 0 the input, block 1 the
    reservoir, a leak on the reservoir); :meth:`readout` gives
    ``x @ readout_weights + readout_bias`` (reservoirpy's ``Ridge`` convention,
    weights of shape ``(units, outputs)``) instead of the last block.

    Parameters
    ----------
    W : array or sparse matrix of shape (units, units)
        Recurrent weights.
    W_in : array or sparse matrix of shape (units, inputs)
        Input weights.
    bias : array of shape (units,), optional
        The reservoir's bias.
    activation : str
        The reservoir's nonlinearity.
    leak : float, optional
        The leak rate in (0, 1] (None: 1).
    readout_weights : array of shape (units, outputs)
        The readout's weights.
    readout_bias : array of shape (outputs,), optional
        The readout's bias (zero when omitted).

    References
    ----------
    .. [1] H. Jaeger, "The 'echo state' approach to analysing and training recurrent
       neural networks", GMD Report 148, German National Research Center for
       Information Technology (2001).
    .. [2] H. Jaeger, M. Lukosevicius, D. Popovici, U. Siewert, "Optimization and
       applications of echo state networks with leaky-integrator neurons",
       Neural Networks 20(3), 335-352 (2007).
    .. [3] M. Lukosevicius, "A practical guide to applying echo state networks", in
       Neural Networks: Tricks of the Trade, 2nd ed., LNCS 7700, Springer (2012).

    Examples
    --------
    >>> from itermap import ReservoirMap
    >>> m = ReservoirMap(np.eye(2) * 0.5, np.ones((2, 1)), leak=0.5,
    ...                  readout_weights=np.array([[1.0], [2.0]]))
    >>> x = m.step(m.zeros(), np.array([1.0]))       # each unit: 0.5 * tanh(1)
    >>> bool(np.isclose(m.readout(x)[0], 3 * 0.5 * np.tanh(1.0)))
    True
    """

    def __init__(self, W: Array, W_in: Array, bias: Array | None = None,
                 activation: str = "tanh", *, leak: float | None = 1.0, readout_weights: Array,
                 readout_bias: Array | None = None):
        one_namespace(W=W, W_in=W_in, bias=bias, readout_weights=readout_weights,
                      readout_bias=readout_bias)
        base = IterativeMap.from_rnn(W, W_in, bias, activation, leak=leak)
        IterativeMap.__init__(self, base.block_matrix, base.bias, list(base.activations),
                              input_block=0, leak=base.leak)
        units = self.sizes[1]
        Wout = _check_matrix("readout_weights", readout_weights)
        if is_sparse(Wout):
            Wout = Wout.toarray()
        if Wout.shape[0] != units:
            raise ValueError(f"readout_weights must have shape ({units}, outputs), got "
                             f"{tuple(Wout.shape)}")
        xp = namespace(Wout)
        if readout_bias is None:
            bout = xp.zeros(Wout.shape[1], dtype=Wout.dtype)
        else:
            bout = real_array("readout_bias", readout_bias)
            if tuple(bout.shape) != (Wout.shape[1],):
                raise ValueError(f"readout_bias must have shape ({Wout.shape[1]},), got "
                                 f"{tuple(bout.shape)}")
        self.readout_weights, self.readout_bias = Wout, bout

    def __repr__(self) -> str:
        return IterativeMap.__repr__(self).replace("IterativeMap(", "ReservoirMap(", 1)[:-1] + \
            f", outputs={self.readout_weights.shape[1]})"

    def readout(self, x: Array) -> Array:
        """The linear readout ``x_res @ readout_weights + readout_bias`` of states ``x``.

        Parameters
        ----------
        x : array of shape (..., dim)
            States of the map, with any leading axes.

        Returns
        -------
        array of shape (..., outputs)

        Examples
        --------
        >>> from itermap import ReservoirMap
        >>> m = ReservoirMap(np.zeros((2, 2)), np.ones((2, 1)),
        ...                  readout_weights=np.ones((2, 1)), readout_bias=np.array([0.5]))
        >>> m.readout(np.array([9.0, 1.0, 2.0]))
        array([3.5])
        """
        if not hasattr(x, "shape") or x.shape[-1:] != (self.dim,):
            raise ValueError(f"x: states must have shape (..., {self.dim}), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        return self.read_block(x, 1) @ self.readout_weights + self.readout_bias

    def to(self, backend: str) -> ReservoirMap:
        """A copy on ``backend`` (the readout stays a NumPy array)."""
        moved = IterativeMap.to(self, backend)
        b = None if moved.bias is None else moved.bias[moved.block_slice(1)]
        W, W_in = moved.block_matrix.blocks[(1, 1)], moved.block_matrix.blocks[(1, 0)]
        return ReservoirMap(W, W_in, b, self.activations[1].name, leak=self.leak[1],
                            readout_weights=self.readout_weights,
                            readout_bias=self.readout_bias)

    def __eq__(self, other):
        same = IterativeMap.__eq__(self, other)
        if same is not True:
            return same
        return bool(np.array_equal(np.asarray(self.readout_weights),
                                   np.asarray(other.readout_weights))
                    and np.array_equal(np.asarray(self.readout_bias),
                                       np.asarray(other.readout_bias)))

    __hash__ = None


def from_reservoirpy(node: Any) -> IterativeMap:
    """A reservoirpy reservoir as an exact leaky iterative map (reservoirpy is optional).

    reservoirpy's ``Reservoir`` runs
    ``x[t+1] = (1 - lr) x[t] + lr f(W_in u[t+1] + W x[t] + bias)`` from ``x = 0``.
    The map is :meth:`IterativeMap.from_rnn`'s on ``[u; x]`` with leak ``lr``: from
    ``map.zeros()`` its states equal reservoirpy's to rounding. Sparse weights stay
    sparse.

    Parameters
    ----------
    node : reservoirpy Reservoir, ESN, or a Model ``reservoir >> readout``
        An initialised reservoir (one that has run, or ``node.initialize(u)``);
        an ESN or a two-node model contributes its reservoir, and its readout
        when fitted: then the result is a :class:`ReservoirMap` whose
        :meth:`~ReservoirMap.readout` is the ridge readout
        ``x @ Wout + bias``.

    Returns
    -------
    IterativeMap or ReservoirMap
        Blocks ``[inputs, units]``, ``input_block=0``, ``leak=(1, lr)``.

    Raises
    ------
    ImportError
        reservoirpy is not installed (``pip install "itermap[reservoir]"``).
    TypeError
        Something that is not a reservoirpy reservoir or ESN, a reservoir of
        another kind (a subclass with its own update: intrinsic plasticity,
        local plasticity, ES2N), or an activation that is not elementwise
        (softmax) or not reservoirpy's own.
    ValueError
        A reservoir not yet initialised, a leak rate that differs between units
        or is 0, feedback from the readout into the reservoir, the input fed
        straight to the readout, or a model of other nodes.

    References
    ----------
    .. [1] N. Trouvain, L. Pedrelli, T. T. Dinh, X. Hinaut, "ReservoirPy: an
       efficient and user-friendly library to design echo state networks",
       ICANN 2020, 494-505.
    .. [2] H. Jaeger, M. Lukosevicius, D. Popovici, U. Siewert, "Optimization and
       applications of echo state networks with leaky-integrator neurons",
       Neural Networks 20(3), 335-352 (2007).

    Examples
    --------
    >>> import itermap
    >>> from reservoirpy.nodes import Reservoir        # doctest: +SKIP
    >>> res = Reservoir(100, lr=0.3, sr=0.9, seed=0)   # doctest: +SKIP
    >>> u = np.random.default_rng(0).normal(size=(50, 1))
    >>> states = res.run(u)                            # doctest: +SKIP
    >>> m = itermap.from_reservoirpy(res)              # doctest: +SKIP
    >>> traj = itermap.iterate(m, m.zeros(), 50, inputs=u).states[1:]  # doctest: +SKIP
    >>> bool(np.allclose(m.read_block(traj, 1), states, atol=1e-12))  # doctest: +SKIP
    True
    """
    try:
        rpy = importlib.import_module("reservoirpy")
        nodes = importlib.import_module("reservoirpy.nodes")
    except ImportError:
        raise ImportError('from_reservoirpy needs reservoirpy: pip install "itermap[reservoir]" '
                          '(or pip install reservoirpy)') from None
    reservoir, readout = _split_model(node, rpy, nodes)
    W, W_in, bias, act, lr = _reservoir_parts(reservoir, nodes)
    if readout is None:
        return IterativeMap.from_rnn(W, W_in, bias, act, leak=lr)
    return ReservoirMap(W, W_in, bias, act, leak=lr, readout_weights=np.asarray(readout.Wout),
                        readout_bias=np.asarray(readout.bias, dtype=float).reshape(-1))


def _split_model(node, rpy, nodes):
    """(the Reservoir, the fitted Ridge or None) of a reservoir, an ESN or a model."""
    Reservoir, Ridge = nodes.Reservoir, nodes.Ridge
    if isinstance(node, Reservoir):
        return node, None
    if isinstance(node, rpy.ESN):
        if node.feedback:
            raise ValueError("node: this ESN feeds its readout back into the reservoir "
                             "(feedback=True); the map has no feedback connection")
        if node.input_to_readout:
            raise ValueError("node: this ESN feeds the input straight to the readout "
                             "(input_to_readout=True); not representable as a readout of "
                             "the reservoir")
        reservoir, readout = node.reservoir, node.readout
    elif isinstance(node, rpy.Model):
        kinds = sorted(type(n).__name__ for n in node.nodes)
        res = [n for n in node.nodes if isinstance(n, Reservoir)]
        out = [n for n in node.nodes if isinstance(n, Ridge)]
        if len(node.nodes) != 2 or len(res) != 1 or len(out) != 1 or \
                [(e[0], e[2]) for e in node.edges] != [(res[0], out[0])] or node.edges[0][1]:
            raise ValueError(f"node: a model must be reservoir >> ridge readout, got nodes "
                             f"{kinds} and edges {len(node.edges)}")
        reservoir, readout = res[0], out[0]
    else:
        raise TypeError(f"node must be a reservoirpy Reservoir, ESN or reservoir >> readout "
                        f"model, got {type(node).__name__}")
    if not isinstance(reservoir, Reservoir):
        raise TypeError(f"node: the ESN's reservoir is a {type(reservoir).__name__}, not a "
                        "Reservoir")
    fitted = isinstance(readout, Ridge) and getattr(readout, "initialized", False) and \
        hasattr(readout.Wout, "shape")
    return reservoir, readout if fitted else None


def _reservoir_parts(res, nodes):
    """(W, W_in, bias, activation name, leak) of an initialised Reservoir."""
    if type(res)._step is not nodes.Reservoir._step:
        raise TypeError(f"node: a {type(res).__name__} has its own update rule; "
                        "from_reservoirpy takes reservoirpy's Reservoir")
    for name in ("noise_rc", "noise_in", "noise_fb"):  # reservoirpy < 0.4 had noise
        if getattr(res, name, 0.0):
            raise ValueError(f"node: {name}={getattr(res, name)!r}; the map has no noise")
    if getattr(res, "Wfb", None) is not None and not callable(res.Wfb):
        raise ValueError("node: the reservoir has feedback weights Wfb; the map has no "
                         "feedback connection")
    if not getattr(res, "initialized", False) or callable(res.W) or callable(res.Win):
        raise ValueError("node: the reservoir is not initialised; run it once or call "
                         "node.initialize(u) first")
    funcs = importlib.import_module("reservoirpy.activationsfunc")
    act = next((name for name in _ACTIVATIONS if res.activation is getattr(funcs, name, None)),
               None)
    if act is None:
        raise TypeError(f"node: activation {getattr(res.activation, '__name__', res.activation)!r}"
                        f" is not one of reservoirpy's elementwise activations "
                        f"{sorted(_ACTIVATIONS)}")
    lr = np.asarray(res.lr, dtype=float).reshape(-1)
    if lr.size == 0 or not np.all(lr == lr[0]):
        raise ValueError("node: lr differs between units; the map takes one leak rate per "
                         "block")
    if not 0.0 < lr[0] <= 1.0:
        raise ValueError(f"node: lr must lie in (0, 1] for a map (leak), got {lr[0]}")
    W = sp.csr_matrix(res.W) if is_sparse(res.W) else np.asarray(res.W)
    W_in = sp.csr_matrix(res.Win) if is_sparse(res.Win) else np.asarray(res.Win)
    units = W.shape[0]
    b = np.asarray(res.bias.toarray() if is_sparse(res.bias) else res.bias, dtype=W.dtype)
    bias = None if b.size == 1 and float(b.reshape(-1)[0]) == 0.0 else \
        np.broadcast_to(b.reshape(-1), (units,)).copy()
    return W, W_in, bias, act, float(lr[0])
