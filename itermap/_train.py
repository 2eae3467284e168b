"""Training an iterative map by backpropagation through time, on the map's backend.

The paper's IteratedModel loop: start from a state (zeros), overwrite the input
block with the input at each step (or one input held for every step, the MLP
case), apply the map, and take the loss on the readout block (the last block)
at the last step or at every step. Gradients run backwards through the map's own
transpose product (:meth:`IterativeMap.vjp`'s linear part) and its parameter
gradient (:meth:`IterativeMap.block_gradient`), so sparse blocks stay sparse and
only their stored entries train.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ._backend import is_sparse, namespace, sparse_module, to_backend, to_numpy
from ._blocks import BlockMatrix
from ._checks import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    one_namespace,
    plain_array,
)
from ._io import _check_target, load, save, saveable
from ._network import IterativeMap, _csr_coordinates, sampled_product
from ._optim import make_optimizer
from ._progress import interactive, progress_bar
from ._protocol import as_map
from ._result import Check, Result, Status
from ._rng import as_rng
from ._types import Array, MapLike, RngLike

__all__ = ["train", "TrainHistory", "TrainState", "NonFiniteLossError", "evaluate",
           "loss_and_gradient", "trainable_count"]


class NonFiniteLossError(FloatingPointError):
    """The training loss turned NaN or inf.

    Attributes ``epoch`` and ``step`` (both counted from 1) say where; ``map``
    holds the last map whose loss was finite, ``history`` the epochs done.

    Parameters
    ----------
    message : str
        What went wrong.
    epoch, step : int
        Where the loss turned non-finite (both counted from 1).
    map : IterativeMap
        The last map whose loss was finite.
    history : TrainHistory or None
        The epochs completed before.

    Examples
    --------
    >>> from itermap import NonFiniteLossError
    >>> err = NonFiniteLossError("loss is nan", epoch=2, step=5, map=None, history=None)
    >>> isinstance(err, FloatingPointError), err.epoch, err.step
    (True, 2, 5)
    """

    def __init__(self, message: str, *, epoch: int, step: int, map: Any,
                 history: TrainHistory | None):
        super().__init__(message)
        self.epoch, self.step, self.map, self.history = epoch, step, map, history


@saveable
@dataclass
class TrainHistory(Result):
    """Loss and accuracy per epoch of one :func:`train` run.

    ``val_loss`` and ``val_accuracy`` are NaN without a validation split.
    ``accuracy`` is the fraction of correct argmax classes for cross-entropy,
    and the fraction of nonzero targets whose sign the output matches (bit
    accuracy) for MSE. ``best_epoch`` (from 1) is the epoch whose map was
    returned: the best validation loss with a split, else the last.

    Attributes
    ----------
    loss, accuracy : ndarray of shape (epochs,)
        Training loss and accuracy per epoch.
    val_loss, val_accuracy : ndarray of shape (epochs,)
        The same on the validation data (NaN without it).
    lr : ndarray of shape (epochs,)
        The learning rate of each epoch (after the schedule).
    seconds : ndarray of shape (epochs,)
        Wall time per epoch.
    best_epoch : int
        The epoch (from 1) whose map was returned.
    stopped_early : bool
        Whether ``patience`` ended the run.
    trainable_count : int
        Trainable parameters, as :func:`trainable_count` counts them.
    loss_name, optimizer : str
        The loss and the optimizer used.
    epochs : int
        Epochs run (a property).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import IterativeMap, train
    >>> m = IterativeMap.from_mlp([np.eye(2)], activation="identity")
    >>> _, history = train(m, np.eye(2), np.array([0, 1]), epochs=3, progress=False, rng=0)
    >>> history.epochs, history.loss.shape, bool(np.all(np.isnan(history.val_loss)))
    (3, (3,), True)
    """

    # what load checks in a file (itermap/_schema.py)
    _schema: ClassVar[dict[str, str]] = {
        "loss": "float[E]",
        "accuracy": "float[E]",
        "val_loss": "float[E]",
        "val_accuracy": "float[E]",
        "lr": "float[E]",
        "seconds": "float[E]",
        "best_epoch": "int",
        "stopped_early": "bool",
        "trainable_count": "int",
        "loss_name": "str",
        "optimizer": "str",
    }
    _table: ClassVar[tuple[str, ...]] = ("loss", "accuracy", "val_loss", "val_accuracy", "lr",
                                         "seconds")
    _dims: ClassVar[dict[str, str]] = {"E": "epoch"}
    _checks: ClassVar[tuple[Check, ...]] = (Check(
        "loss", Status.NONFINITE, "the loss is NaN or inf in {n} epochs: lower lr",
        count=lambda v: int(np.sum(~np.isfinite(v)))),)

    loss: np.ndarray
    accuracy: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    lr: np.ndarray
    seconds: np.ndarray
    best_epoch: int = 0
    stopped_early: bool = False
    trainable_count: int = 0
    loss_name: str = "cross_entropy"
    optimizer: str = "adam"

    @property
    def epochs(self) -> int:
        return int(len(self.loss))


@saveable
@dataclass
class TrainState(Result):
    """Everything needed to resume a :func:`train` run where it stopped.

    Written by ``train(..., save_state=path)`` after every epoch and read back
    by ``train(..., resume=path)``; the map passed to the resumed call gives
    the structure (sizes, sparsity pattern, activations).

    Attributes
    ----------
    theta : ndarray
        The trainable parameters as one flat vector.
    moment1, moment2 : ndarray or None
        The optimizer's first and second moments (None where it keeps none).
    step_count : int
        Optimizer steps taken.
    epoch : int
        Epochs completed.
    rng_state : dict
        The state of the generator drawing the minibatch order.
    history : dict
        The per-epoch lists of :class:`TrainHistory` so far.
    best_theta : ndarray or None
        The parameters of the best validation epoch.
    best_val : float
        The best validation loss so far.
    bad_epochs : int
        Epochs since the best validation loss.
    validation_index : ndarray or None
        The samples held out for validation.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from itermap import IterativeMap, load, train
    >>> m = IterativeMap.from_mlp([np.eye(2)], activation="identity")
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> _ = train(m, np.eye(2), np.array([0, 1]), epochs=2, progress=False, rng=0,
    ...           save_state=path)
    >>> state = load(path)
    >>> type(state).__name__, state.epoch, len(state.history["loss"])
    ('TrainState', 2, 2)
    """

    # what load checks in a file (itermap/_schema.py)
    _schema: ClassVar[dict[str, str]] = {
        "theta": "float[P]",
        "moment1": "float[P] | None",
        "moment2": "float[P] | None",
        "step_count": "int",
        "epoch": "int",
        "rng_state": "dict",
        "history": "dict",
        "best_theta": "float[P] | None",
        "best_val": "float",
        "bad_epochs": "int",
        "validation_index": "int[V] | None",
    }
    _dims: ClassVar[dict[str, str]] = {"P": "parameter", "V": "sample"}

    theta: np.ndarray
    moment1: np.ndarray | None
    moment2: np.ndarray | None
    step_count: int
    epoch: int
    rng_state: dict
    history: dict
    best_theta: np.ndarray | None = None
    best_val: float = math.inf
    bad_epochs: int = 0
    validation_index: np.ndarray | None = None


# -- the parameters as one flat vector ---------------------------------------------
@dataclass
class _Layout:
    """Where each stored block and the bias live in the flat parameter vector."""

    template: IterativeMap
    entries: list = field(default_factory=list)  # (key, start, stop, sparse csr or None)
    bias_start: int = 0
    size: int = 0
    coords: dict = field(default_factory=dict)  # sparse key -> (rows, cols)
    densify: bool = False  # run sparse blocks as dense arrays (small, fairly full maps)
    leak_blocks: list = field(default_factory=list)  # blocks whose leak rate trains
    bias_stop: int = 0  # the leak rates follow the bias

    def leak_rates(self, theta):
        """The map's leak per block, the trained ones read from ``theta`` (kept in (0, 1])."""
        rates = list(self.template.leak)
        if self.leak_blocks:
            vals = to_numpy(theta[self.bias_stop:self.size])
            for i, v in zip(self.leak_blocks, vals):
                rates[i] = float(min(max(float(v), _MIN_LEAK), 1.0))
        return rates

    def build(self, theta, *, copy=False) -> IterativeMap:
        m = self.template
        xp = namespace(theta)
        blocks = {}
        for key, start, stop, pattern in self.entries:
            vals = theta[start:stop]
            if pattern is None:
                shape = (m.sizes[key[0]], m.sizes[key[1]])
                b = xp.reshape(vals, shape)
                blocks[key] = xp.asarray(b, copy=True) if copy else b
            elif self.densify:
                b = xp.zeros(pattern.shape, dtype=theta.dtype)
                b[self.coords[key]] = vals
                blocks[key] = b
            else:
                # copies: BlockMatrix drops explicit zeros in place
                blocks[key] = sparse_module(xp).csr_matrix(
                    (xp.asarray(vals, copy=True), pattern.indices.copy(), pattern.indptr.copy()),
                    shape=pattern.shape)
        bias = xp.asarray(theta[self.bias_start:self.bias_stop], copy=True)
        # the trained map keeps an explicit mask, for more training
        own = getattr(m.block_matrix, "_trainable", None) if copy else None
        bm = BlockMatrix(m.sizes, blocks, trainable=own)
        leak = self.leak_rates(theta) if self.leak_blocks else m._leak
        return IterativeMap(bm, bias, list(m.activations), input_block=m.input_block,
                            leak=leak)

    def gradient(self, m, G, Xin, xp):
        out = xp.zeros(self.size, dtype=G.dtype)
        for key, start, stop, pattern in self.entries:
            if key[0] == m.input_block:
                continue  # rows the input overwrites: never used, never trained
            if pattern is None:
                out[start:stop] = xp.reshape(m.block_gradient(key, G, Xin), (-1,))
            else:  # the gradient at the nonzeros only, however the step ran
                rows, cols = self.coords[key]
                out[start:stop] = sampled_product(G[:, m.block_slice(key[0])],
                                                  Xin[:, m.block_slice(key[1])], rows, cols)
        out[self.bias_start:self.bias_stop] = xp.sum(G, axis=0)
        return out


_DENSIFY_DIM = 1024
_DENSIFY_FILL = 0.02


def _layout(m: IterativeMap, freeze_bias: bool, train_leak: bool = False):
    """The flat layout of ``m``'s parameters, their values and the trainable mask."""
    bm = m.block_matrix
    xp = namespace(m.zeros(1))
    trainable, default = _trainable_masks(bm)
    if trainable is not None and not isinstance(trainable, dict):
        raise TypeError("block_matrix.trainable must be a dict keyed like blocks, got "
                        f"{type(trainable).__name__}")
    lay = _Layout(m)
    values, masks, pos = [], [], 0
    for key, b in bm.blocks.items():
        flag = _trainable_flag(key, b,
                               True if trainable is None else trainable.get(key, default))
        if is_sparse(b):
            c = b.tocsr().copy()
            c.sum_duplicates()
            c.sort_indices()
            vals = c.data
            lay.coords[key] = _csr_coordinates(c, xp)
            pattern = c
            if hasattr(flag, "shape"):  # an entrywise mask, read at the stored entries
                fm = flag.toarray() if is_sparse(flag) else flag
                fm = xp.asarray(to_backend(np.asarray(to_numpy(fm), dtype=bool), m.backend)
                                if m.backend == "cupy" else np.asarray(fm, dtype=bool))
                mk = xp.astype(fm[lay.coords[key]], vals.dtype)
            else:
                mk = xp.full(vals.shape, float(bool(flag)), dtype=vals.dtype)
        else:
            vals = xp.reshape(b, (-1,))
            pattern = None
            if hasattr(flag, "shape"):
                fm = flag.toarray() if is_sparse(flag) else flag
                mk = xp.astype(xp.reshape(xp.asarray(fm), (-1,)) != 0, vals.dtype)
                if tuple(mk.shape) != tuple(vals.shape):
                    raise ValueError(f"trainable mask of block {key} has the wrong shape")
            else:
                mk = xp.full(vals.shape, float(bool(flag)), dtype=vals.dtype)
        if key[0] == m.input_block:
            mk = xp.zeros_like(mk)
        lay.entries.append((key, pos, pos + int(vals.shape[0]), pattern))
        values.append(vals)
        masks.append(mk)
        pos += int(vals.shape[0])
    dtype = m.dtype
    bias = m.bias if m.bias is not None else xp.zeros(m.dim, dtype=dtype)
    bias_mask = xp.full((m.dim,), 0.0 if freeze_bias else 1.0, dtype=dtype)
    if m.input_block is not None:
        sl = m.block_slice(m.input_block)
        bias_mask = xp.concat([bias_mask[:sl.start], xp.zeros(sl.stop - sl.start, dtype=dtype),
                               bias_mask[sl.stop:]])
    lay.bias_start, lay.size = pos, pos + m.dim
    lay.bias_stop = lay.size
    extra, extra_mask = [], []
    if train_leak:  # one rate per non-input block, after the bias
        lay.leak_blocks = [i for i in range(len(m.sizes)) if i != m.input_block]
        lay.size += len(lay.leak_blocks)
        extra = [xp.asarray(np.asarray([m.leak[i] for i in lay.leak_blocks]), dtype=dtype)]
        extra_mask = [xp.ones(len(lay.leak_blocks), dtype=dtype)]
    # a small map steps faster as dense arrays than through scipy's per-call overhead; the
    # gradient is still taken at the stored entries only, so the zeros stay zero
    lay.densify = bool(lay.coords) and m.dim <= _DENSIFY_DIM and \
        bm.nnz >= _DENSIFY_FILL * m.dim ** 2
    theta = xp.concat([xp.astype(v, dtype) for v in values] + [xp.astype(bias, dtype)] + extra)
    mask = xp.concat([xp.astype(k, dtype) for k in masks] + [bias_mask] + extra_mask)
    return lay, theta, mask


def _trainable_masks(bm):
    """(masks or None, the flag of a block the masks leave out).

    A :class:`BlockMatrix` given masks (``trainable=``, ``from_description``) lists
    every block with a trainable entry, so a block it leaves out is frozen; without
    masks everything stored trains. Another object's own ``trainable`` dict may name
    only the blocks it restricts.
    """
    if isinstance(bm, BlockMatrix) and type(bm).trainable is BlockMatrix.trainable:
        return bm._trainable, False
    return getattr(bm, "trainable", None), True


def _trainable_flag(key, block, flag):
    """A block's trainable flag as a bool or an entrywise mask.

    ``True``/``"all"`` train every stored entry, ``False``/``"none"`` none, and
    ``"non-zero"`` only the nonzeros (the same as True for a sparse block).
    """
    if isinstance(flag, str):
        name = flag.lower().replace("_", "-")
        if name in ("all", "true"):
            return True
        if name in ("none", "false", "frozen"):
            return False
        if name in ("non-zero", "nonzero"):
            return True if is_sparse(block) else block != 0
        raise ValueError(f"trainable flag of block {key} must be a bool, 'all', 'none', "
                         f"'non-zero' or a mask, got {flag!r}")
    return flag


def trainable_count(m: MapLike) -> int:
    """Trainable parameters of ``m`` as :func:`train` counts them.

    Stored weights outside the input block's rows (honouring a ``trainable``
    mask on the block matrix), plus the biases outside the input block.

    Parameters
    ----------
    m : IterativeMap
        The map.

    Returns
    -------
    int
        The number of trainable parameters.

    Raises
    ------
    TypeError
        For ``m`` that is not an :class:`IterativeMap`.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import IterativeMap, trainable_count
    >>> mlp = IterativeMap.from_mlp([np.ones((5, 3)), np.ones((2, 5))])
    >>> trainable_count(mlp)     # 3*5 + 5 + 5*2 + 2
    32
    """
    if not isinstance(m, IterativeMap):
        raise TypeError(f"m must be an IterativeMap, got {type(m).__name__}")
    _, _, mask = _layout(m, freeze_bias=False)
    return int(round(float(to_numpy(namespace(mask).sum(mask)))))


# -- losses ------------------------------------------------------------------------
def _loss_grad(kind, y, t, xp, scale):
    """Loss (summed over the batch, times ``scale``), its gradient, and correct counts."""
    if kind == "cross_entropy":
        shift = y - xp.max(y, axis=1, keepdims=True)
        logz = xp.log(xp.sum(xp.exp(shift), axis=1, keepdims=True))
        logp = shift - logz
        p = xp.exp(logp)
        if t.ndim == 1:
            onehot = xp.astype(xp.arange(y.shape[1])[None, :] == t[:, None], y.dtype)
            label = t
        else:
            onehot = t
            label = xp.argmax(t, axis=1)
        loss = -xp.sum(onehot * logp)
        grad = (p * xp.sum(onehot, axis=1, keepdims=True) - onehot) * scale
        correct = xp.sum(xp.astype(xp.argmax(y, axis=1) == label, y.dtype))
        return loss * scale, grad, correct, y.shape[0]
    diff = y - t
    k = y.shape[1]
    loss = xp.sum(diff * diff) / k
    grad = (2.0 / k) * diff * scale
    held = t != 0
    correct = xp.sum(xp.astype(held & ((y > 0) == (t > 0)), y.dtype))
    return loss * scale, grad, correct, xp.sum(xp.astype(held, y.dtype))


# trained leak rates are kept at least this (a rate of 0 would freeze the block)
_MIN_LEAK = 1e-6


# -- forward and backward through time ------------------------------------------------
def _run(lay, theta, U, Y, seq, T, at, loss, checkpoint, want_grad=True):
    """Loss, correct count, total and (when wanted) the flat gradient of one batch."""
    m = lay.build(theta)
    xp = namespace(theta)
    B = U.shape[1] if seq else U.shape[0]
    out_slice = m.block_slice(len(m.sizes) - 1)
    loss_steps = set(range(T)) if at == "all" else {T - 1}
    scale = 1.0 / (B * len(loss_steps))
    seg = T if not checkpoint else int(checkpoint)
    starts = list(range(0, T, seg))
    x = m.zeros(B)
    saved, stored = {}, {}
    total_loss = xp.zeros((), dtype=theta.dtype)
    correct = total = 0.0
    cot = {}
    keep_all = want_grad and not checkpoint
    for t in range(T):
        u = U[t] if seq else U
        if t in starts:
            saved[t] = x
        if keep_all:
            xin, x, d = m.step_with_derivative(x, u)
            stored[t] = (xin, d, x)
        else:
            x = m.step(x, u)
        if t in loss_steps:
            target = Y[t] if at == "all" else Y
            lv, g, c, n = _loss_grad(loss, x[:, out_slice], target, xp, scale)
            total_loss = total_loss + lv
            correct, total = correct + c, total + n
            if want_grad:
                cot[t] = g
    if not want_grad:
        return total_loss, correct, total, None
    grad = xp.zeros(lay.size, dtype=theta.dtype)
    a = None  # dL/dx after step t
    for s in reversed(starts):
        e = min(s + seg, T)
        if not keep_all:  # recompute the segment from its stored start
            x = saved[s]
            for t in range(s, e):
                xin, x, d = m.step_with_derivative(x, U[t] if seq else U)
                stored[t] = (xin, d, x)
        gs = [None] * (e - s)
        for t in range(e - 1, s - 1, -1):
            if t in cot:
                a = _add_at(xp.zeros((B, m.dim), dtype=theta.dtype) if a is None else a,
                            out_slice, cot[t], xp)
            if a is None:
                gs[t - s] = xp.zeros((B, m.dim), dtype=theta.dtype)
                continue
            g = a * stored[t][1]
            gs[t - s] = g
            if lay.leak_blocks:
                grad = _leak_gradient(lay, m, a, stored[t], grad, xp)
            if t > 0:
                lin = m._linear_vjp(g, xp)
                # a leaky step carries (1 - a) of the old state straight through
                a = lin if m._leak is None else lin + a * m._keep_vec
        G = xp.concat(gs, axis=0) if len(gs) > 1 else gs[0]
        xins = [stored[t][0] for t in range(s, e)]
        grad = grad + lay.gradient(m, G, xp.concat(xins, axis=0) if len(xins) > 1 else xins[0],
                                   xp)
        for t in range(s, e):
            del stored[t]
    return total_loss, correct, total, grad


def _leak_gradient(lay, m, a, step, grad, xp):
    """``dL/d(leak)`` of one step: ``x' = x + r (f(z) - x)``, so ``dx'/dr = (x' - x) / r``."""
    xin, _, y = step
    parts = []
    for i in lay.leak_blocks:
        sl = m.block_slice(i)
        parts.append(xp.sum(a[:, sl] * (y[:, sl] - xin[:, sl])) / m.leak[i])
    return xp.concat([grad[:lay.bias_stop], grad[lay.bias_stop:] + xp.stack(parts)])


def _add_at(a, sl, v, xp):
    return xp.concat([a[:, :sl.start], a[:, sl] + v, a[:, sl.stop:]], axis=1)


def _schedule_factor(schedule, epoch, epochs):
    if schedule is None or schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
    if callable(schedule):
        f = float(schedule(epoch))
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"schedule({epoch}) gave {f}; it must return a positive factor")
        return f
    raise ValueError(f"schedule must be None, 'constant', 'cosine' or a callable epoch -> "
                     f"factor, got {schedule!r}")


# -- checking the data ----------------------------------------------------------------
def _check_data(m, inputs, targets, steps, loss, at):
    if not isinstance(m, IterativeMap):
        raise TypeError(f"map must be an IterativeMap, got {type(m).__name__}")
    if m.input_block is None:
        raise ValueError("map: train needs a driven map (an input_block) to feed the inputs")
    check_choice("loss", loss, ("cross_entropy", "mse"))
    check_choice("at", at, ("last", "all"))
    inputs, targets = plain_array("inputs", inputs), plain_array("targets", targets)
    one_namespace(map=m, inputs=inputs, targets=targets, movable=True)
    inputs = np.asarray(to_numpy(inputs))
    targets = np.asarray(to_numpy(targets))
    if inputs.dtype.kind not in "fiub" or inputs.ndim not in (2, 3):
        raise ValueError(f"inputs must be a real array (n, n_in) or (T, n, n_in), got shape "
                         f"{inputs.shape} and dtype {inputs.dtype}")
    seq = inputs.ndim == 3
    n = inputs.shape[1] if seq else inputs.shape[0]
    if n == 0 or (seq and inputs.shape[0] == 0):
        raise ValueError("inputs: the data set is empty")
    if inputs.shape[-1] != m.input_size:
        raise ValueError(f"inputs have {inputs.shape[-1]} features but the map's input block "
                         f"holds {m.input_size}")
    if not np.all(np.isfinite(inputs)):
        raise ValueError("inputs contain NaN or inf")
    if seq:
        if steps is not None and check_int("steps", steps, 1) != inputs.shape[0]:
            raise ValueError(f"steps={steps} disagrees with the {inputs.shape[0]} steps of the "
                             "input sequence")
        steps = inputs.shape[0]
    elif steps is None:
        steps = m.settle_steps
        if steps is None:
            raise ValueError("steps: the map has a cycle, so give the number of steps to hold "
                             "the input for")
    steps = check_int("steps", steps, 1)
    n_out = m.sizes[-1]
    lead = (steps, n) if at == "all" else (n,)
    if targets.dtype.kind not in "fiub":
        raise TypeError(f"targets must be numeric, got dtype {targets.dtype}")
    if not np.all(np.isfinite(targets)):
        raise ValueError("targets contain NaN or inf")
    labels = targets.shape == lead
    if labels:
        if loss != "cross_entropy":
            raise ValueError(f"targets: loss 'mse' needs arrays of shape {(*lead, n_out)}, got "
                             f"labels of shape {targets.shape}")
        if targets.dtype.kind == "f" and not np.all(targets == np.round(targets)):
            raise ValueError("targets: class labels must be whole numbers")
        if targets.min() < 0 or targets.max() >= n_out:
            raise ValueError(f"targets: class labels must lie in 0..{n_out - 1} (the readout "
                             f"block has {n_out} units), got {targets.min()}..{targets.max()}")
        targets = targets.astype(np.int64)
    elif targets.shape != (*lead, n_out):
        raise ValueError(f"targets have shape {targets.shape}; at={at!r} with {n} samples and "
                         f"a readout of {n_out} needs labels {lead} or arrays {(*lead, n_out)}")
    else:
        targets = targets.astype(np.float64)
    return inputs.astype(np.float64), targets, seq, steps, n


# below this many multiply-adds per step, BLAS threads cost more than they give (and on a
# loaded machine spinning OpenBLAS threads make small products 10-30x slower)
_SINGLE_THREAD_WORK = 1 << 25


def _blas_threads(m, batch):
    """A context holding NumPy's BLAS to one thread for small steps; a no-op otherwise."""
    import contextlib

    if m.backend != "numpy" or m.dim * m.dim * batch >= _SINGLE_THREAD_WORK:
        return contextlib.nullcontext()
    from ._threads import blas_limited

    return blas_limited(1)


def _take(arr, idx, axis, backend, dtype, xp):
    part = np.take(arr, idx, axis=axis)
    part = part if part.dtype.kind == "i" else part.astype(dtype)
    return to_backend(part, backend) if backend == "cupy" else xp.asarray(part)


# -- the entry point --------------------------------------------------------------------
def train(map: MapLike, inputs: Array, targets: Array, *, steps: int | None = None,
          loss: str = "cross_entropy", at: str = "last", epochs: int = 20,
          batch_size: int = 64, lr: float = 1e-2, rng: RngLike = None,
          optimizer: str = "adam", momentum: float = 0.9, weight_decay: float = 0.0,
          clip_norm: float | None = None, schedule: Any = None, validation: float = 0.0,
          validation_data: tuple[Array, Array] | None = None, patience: int | None = None,
          freeze_bias: bool = False, checkpoint: int | None = None, progress: bool | None = None,
          save_state: str | os.PathLike | None = None,
          resume: str | os.PathLike | TrainState | None = None, train_leak: bool = False
          ) -> tuple[IterativeMap, TrainHistory]:
    """Train the weights and biases of an iterative map by backpropagation through time.

    At each of ``steps`` steps from the zero state, the map's input block is
    overwritten with the input and the map is applied; the loss is read from
    the readout block (the last block) at the last step or at every step.
    Only stored weights train: a sparse block's zeros stay exactly zero, a
    ``trainable`` mask on the block matrix (``block_matrix.trainable``, a dict
    keyed like ``blocks`` of a bool or an entrywise mask) is honoured, and
    the rows of the input block, which the input overwrites, never change.

    Parameters
    ----------
    map : IterativeMap
        A driven map (with an ``input_block``). It is not changed.
    inputs : array of shape (n, n_in) or (T, n, n_in)
        One input per sample held for ``steps`` steps (the MLP case), or a
        sequence of ``T`` inputs per sample.
    targets : array
        For ``at="last"``: int labels ``(n,)`` (cross-entropy) or arrays
        ``(n, n_out)``; for ``at="all"``: ``(T, n)`` or ``(T, n, n_out)``.
    steps : int, optional
        Steps per sample; for held inputs defaults to ``map.settle_steps`` (the
        depth of an MLP). A sequence sets it.
    loss : {"cross_entropy", "mse"}
        Cross-entropy on the readout as logits, or the mean squared error.
    at : {"last", "all"}
        Where the loss is taken; with ``"all"`` it is the mean over steps.
    epochs, batch_size, lr : int, int, float
        Passes over the data, samples per minibatch, and the learning rate.
    rng : int, Generator or None
        Source of the minibatch order and the validation split.
    optimizer : {"adam", "sgd"}
        Adam, or SGD with ``momentum``; both as torch defines them.
    weight_decay : float
        L2 penalty added to the gradient of the trainable entries.
    clip_norm : float, optional
        Rescale the gradient to at most this Euclidean norm.
    schedule : None, "cosine" or callable
        Learning-rate factor per epoch: constant, a cosine decay to zero over
        ``epochs``, or ``schedule(epoch) -> factor`` (epoch from 0).
    validation : float
        Fraction of the samples held out for validation (drawn from ``rng``).
    validation_data : (inputs, targets), optional
        An explicit validation set instead.
    patience : int, optional
        Stop after this many epochs without a better validation loss. With
        validation data the map of the best epoch is returned.
    freeze_bias : bool
        Keep the biases fixed (a map without a bias then stays without one).
    checkpoint : int, optional
        Store states only every ``checkpoint`` steps and recompute the steps
        between on the way back: memory O((T/c + c) B dim) instead of O(T B dim).
    progress : bool or None
        A progress bar over the epochs, with the training set's loss and accuracy:
        None shows it in interactive sessions only (a Jupyter kernel, or standard
        error on a terminal) and never in scripts' logs; True always; False never.
    save_state : path, optional
        Write a :class:`TrainState` here (an ``.npz`` file in an existing
        folder) after every epoch. A write that fails (a full disk) warns
        and training goes on.
    resume : path or TrainState, optional
        Continue a run from a saved state (the same map, data and options).
    train_leak : bool
        Train the leak rate of every non-input block too (a leaky reservoir's
        ``a``; see :class:`IterativeMap`), kept in ``(1e-6, 1]``; otherwise the
        leak stays fixed. ``weight_decay`` shrinks the rates like the weights.

    Returns
    -------
    trained_map : IterativeMap
        A new map on the input map's backend.
    history : TrainHistory
        Loss and accuracy per epoch.

    Raises
    ------
    ValueError
        For inputs or targets of the wrong shape, labels outside the readout's
        classes, an empty data set, NaN in the data, ``lr <= 0`` or another
        option out of range.
    NonFiniteLossError
        When the loss turns NaN or inf; it names the epoch and step and holds
        the last map with a finite loss as ``.map``.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 2)); y = (x[:, 0] * x[:, 1] > 0).astype(int)
    >>> mlp = itermap.IterativeMap.from_mlp([rng.normal(size=(16, 2)), rng.normal(size=(2, 16))
    ...                                      ], activation="tanh")
    >>> trained, hist = itermap.train(mlp, x, y, epochs=60, lr=0.05, rng=0, progress=False)
    >>> bool(hist.accuracy[-1] > 0.9), hist.loss.shape
    (True, (60,))
    """
    # long: the epoch loop keeps the optimizer, early-stopping, checkpoint and resume state
    # in one place
    m = as_map(map)
    if not isinstance(m, IterativeMap):
        raise TypeError(f"map: train needs an IterativeMap (its weights are the parameters), "
                        f"got {type(map).__name__}")
    lr = check_real("lr", lr, positive=True)
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if clip_norm is not None:
        clip_norm = check_real("clip_norm", clip_norm, positive=True)
    validation = check_real("validation", validation, minimum=0.0)
    if validation >= 1.0:
        raise ValueError(f"validation must be a fraction in [0, 1), got {validation}")
    if patience is not None:
        patience = check_int("patience", patience, 1)
    if checkpoint is not None:
        checkpoint = check_int("checkpoint", checkpoint, 1)
    weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
    momentum = check_real("momentum", momentum, minimum=0.0, maximum=1.0)
    freeze_bias = check_bool("freeze_bias", freeze_bias)
    progress = interactive() if progress is None else check_bool("progress", progress)
    optimizer = check_choice("optimizer", optimizer, ("adam", "sgd"))
    if save_state is not None:  # up front: a typo is an error, a full disk later a warning
        save_state = _check_save_state(save_state)
    X, Yt, seq, T, n = _check_data(m, inputs, targets, steps, loss, at)
    gen = as_rng(rng)
    backend = m.backend
    train_leak = check_bool("train_leak", train_leak)
    lay, theta, mask = _layout(m, freeze_bias, train_leak)
    xp = namespace(theta)
    dtype = to_numpy(theta[:1]).dtype
    opt = make_optimizer(optimizer, lr, weight_decay=float(weight_decay), momentum=momentum)
    all_trainable = bool(to_numpy(xp.all(mask == 1)))
    step_mask = None if all_trainable else mask
    sample_axis = 1 if seq else 0
    target_axis = 1 if at == "all" else 0

    hist: dict[str, list[Any]] = {k: [] for k in ("loss", "accuracy", "val_loss",
                                                  "val_accuracy", "lr", "seconds")}
    start_epoch, best_theta, best_val, bad_epochs = 0, None, math.inf, 0
    val_index = None
    if resume is not None:
        state = load(resume) if isinstance(resume, (str, os.PathLike)) else resume
        if not isinstance(state, TrainState):
            raise TypeError(f"resume must be a TrainState or its file, got {type(state).__name__}")
        if int(state.theta.shape[0]) != lay.size:
            raise ValueError("resume: the saved state does not fit this map's parameters")
        theta = _on(state.theta, backend, xp)
        opt.load_state({"count": state.step_count, "m": _on(state.moment1, backend, xp),
                        "v": _on(state.moment2, backend, xp)})
        gen.bit_generator.state = state.rng_state
        start_epoch = int(state.epoch)
        hist = {k: list(v) for k, v in state.history.items()}
        best_theta = _on(state.best_theta, backend, xp)
        best_val, bad_epochs = float(state.best_val), int(state.bad_epochs)
        val_index = None if state.validation_index is None else np.asarray(state.validation_index)

    train_index = np.arange(n)
    Xv = Yv = None
    if validation_data is not None:
        vx, vy = validation_data
        Xv, Yv, vseq, _, _ = _check_data(m, vx, vy, None if seq else T, loss, at)
        if vseq != seq:
            raise ValueError("validation_data: inputs must have the training inputs' form")
    elif validation:
        if val_index is None:
            n_val = max(1, int(round(validation * n)))
            if n_val >= n:
                raise ValueError("validation: the split leaves no training samples")
            val_index = np.sort(gen.permutation(n)[:n_val])
        train_index = np.setdiff1d(np.arange(n), val_index)
        Xv, Yv = np.take(X, val_index, axis=sample_axis), np.take(Yt, val_index, axis=target_axis)
        X, Yt = np.take(X, train_index, axis=sample_axis), np.take(Yt, train_index,
                                                                   axis=target_axis)
        n = len(train_index)
    if Xv is not None and Yv is not None:  # set together
        Xv_b = _take(Xv, np.arange(Xv.shape[sample_axis]), sample_axis, backend, dtype, xp)
        Yv_b = _take(Yv, np.arange(Yv.shape[target_axis]), target_axis, backend, dtype, xp)

    def snapshot(th):
        return lay.build(th, copy=True)

    bar = None
    if progress:
        bar = progress_bar(total=epochs, initial=start_epoch, desc="train", unit="epoch",
                           leave=False)
    last_good = xp.asarray(theta, copy=True)
    stopped = False
    threads = _blas_threads(m, batch_size)
    threads.__enter__()
    try:
        for epoch in range(start_epoch, epochs):
            tic = time.perf_counter()
            lr_now = lr * _schedule_factor(schedule, epoch, epochs)
            order = gen.permutation(n)
            ep_loss = ep_correct = ep_total = 0.0
            n_batches = (n + batch_size - 1) // batch_size
            for b in range(n_batches):
                idx = order[b * batch_size:(b + 1) * batch_size]
                U = _take(X, idx, sample_axis, backend, dtype, xp)
                Y = _take(Yt, idx, target_axis, backend, dtype, xp)
                lv, c, tot, grad = _run(lay, theta, U, Y, seq, T, at, loss, checkpoint)
                lv_host = float(to_numpy(lv))
                if not math.isfinite(lv_host) or not bool(to_numpy(xp.all(xp.isfinite(grad)))):
                    raise NonFiniteLossError(
                        f"the training loss became {lv_host} at epoch {epoch + 1}, step {b + 1}; "
                        "the last map with a finite loss is attached as .map (lower lr, or "
                        "clip_norm, may help)", epoch=epoch + 1, step=b + 1,
                        map=snapshot(last_good), history=_history(hist, lay, mask, loss,
                                                                 optimizer, 0, False))
                last_good = xp.asarray(theta, copy=True)
                if step_mask is not None:
                    grad = grad * step_mask
                if clip_norm is not None:
                    norm = float(to_numpy(xp.sqrt(xp.sum(grad * grad))))
                    if norm > clip_norm:
                        grad = grad * (clip_norm / norm)
                opt.step(theta, grad, lr=lr_now, mask=step_mask)
                ep_loss += lv_host * len(idx)
                ep_correct += float(to_numpy(c))
                ep_total += float(to_numpy(tot))
            hist["loss"].append(ep_loss / n)
            hist["accuracy"].append(ep_correct / max(ep_total, 1.0))
            hist["lr"].append(lr_now)
            if Xv is not None:
                vl, vc, vt, _ = _run(lay, theta, Xv_b, Yv_b, seq, T, at, loss, None,
                                     want_grad=False)
                vl = float(to_numpy(vl))
                hist["val_loss"].append(vl)
                hist["val_accuracy"].append(float(to_numpy(vc)) / max(float(to_numpy(vt)), 1.0))
                if vl < best_val:
                    best_val, bad_epochs = vl, 0
                    best_theta = xp.asarray(theta, copy=True)
                    hist.setdefault("best", []).append(epoch + 1)
                else:
                    bad_epochs += 1
            else:
                hist["val_loss"].append(math.nan)
                hist["val_accuracy"].append(math.nan)
            hist["seconds"].append(time.perf_counter() - tic)
            if bar is not None:
                bar.update(1)
                # the training set's numbers, not held-out ones
                bar.set_postfix({"train loss": f"{hist['loss'][-1]:.4g}",
                                 "train acc": f"{hist['accuracy'][-1]:.3f}"})
            if save_state is not None:
                _save_state(save_state, epoch, TrainState(
                    theta=to_numpy(theta), moment1=_host(opt.state()["m"]),
                    moment2=_host(opt.state()["v"]), step_count=opt.count, epoch=epoch + 1,
                    rng_state=dict(gen.bit_generator.state),
                    history={k: list(v) for k, v in hist.items()},
                    best_theta=_host(best_theta), best_val=best_val, bad_epochs=bad_epochs,
                    validation_index=val_index))
            if patience is not None and Xv is not None and bad_epochs >= patience:
                stopped = True
                break
    finally:
        threads.__exit__(None, None, None)
        if bar is not None:
            bar.close()
    final = theta
    best_epoch = len(hist["loss"])
    if Xv is not None and best_theta is not None:
        final = best_theta
        best_epoch = hist["best"][-1]
    return snapshot(final), _history(hist, lay, mask, loss, optimizer, best_epoch, stopped)


def _save_state(path, epoch, state):
    """Write the checkpoint; a full disk costs the checkpoint, never the run."""
    try:
        save(state, path)
    except OSError as exc:
        warnings.warn(f"save_state: could not write {path} after epoch {epoch + 1} ({exc}); "
                      "training goes on, and the last checkpoint written (if any) stays",
                      RuntimeWarning, stacklevel=3)


def _check_save_state(path):
    path = _check_target(path, "save_state")
    if os.path.splitext(path)[1] != ".npz":
        raise ValueError(f"save_state {path!r} must end in .npz")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"save_state: the folder {folder!r} of {path!r} does not exist")
    return path


def _on(a, backend, xp):
    if a is None:
        return None
    a = np.asarray(a)
    return to_backend(a, backend) if backend == "cupy" else xp.asarray(a, copy=True)


def _host(a):
    return None if a is None else np.asarray(to_numpy(a))


def _history(hist, lay, mask, loss, optimizer, best_epoch, stopped):
    arr = {k: np.asarray(hist[k], dtype=float) for k in
           ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")}
    return TrainHistory(**arr, best_epoch=int(best_epoch), stopped_early=bool(stopped),
                        trainable_count=int(round(float(to_numpy(namespace(mask).sum(mask))))),
                        loss_name=loss, optimizer=optimizer)


def loss_and_gradient(map: MapLike, inputs: Array, targets: Array, *, steps: int | None = None,
                      loss: str = "cross_entropy", at: str = "last",
                      checkpoint: int | None = None
                      ) -> tuple[float, dict[tuple[int, int], Any], Array]:
    """The training loss of ``map`` on a batch and its gradient, as :func:`train` uses them.

    Parameters
    ----------
    map : IterativeMap
        A driven map (with an ``input_block``).
    inputs, targets : array
        Inputs and targets, as for :func:`train`.
    steps : int, optional
        Steps per sample, as for :func:`train`.
    loss : {"cross_entropy", "mse"}
        The loss, as for :func:`train`.
    at : {"last", "all"}
        Where the loss is taken, as for :func:`train`.
    checkpoint : int, optional
        Store states only every ``checkpoint`` steps, as for :func:`train`.

    Returns
    -------
    loss : float
        Mean over samples (and over steps for ``at="all"``).
    blocks : dict
        ``{(i, j): dL/dW_ij}``: dense arrays for dense blocks, for sparse blocks
        CSR matrices with the block's own pattern (gradients at the nonzeros).
    bias : array of shape (dim,)
        ``dL/db``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import IterativeMap, loss_and_gradient
    >>> m = IterativeMap.from_mlp([np.zeros((2, 2))], activation="identity")
    >>> L, grads, gb = loss_and_gradient(m, np.ones((1, 2)), np.array([0]), steps=1)
    >>> round(L, 6), gb   # log 2; softmax (1/2, 1/2) minus the one-hot label
    (0.693147, array([ 0. ,  0. , -0.5,  0.5]))
    """
    if checkpoint is not None:
        checkpoint = check_int("checkpoint", checkpoint, 1)
    X, Yt, seq, T, n = _check_data(map, inputs, targets, steps, loss, at)
    lay, theta, _ = _layout(map, False)
    xp = namespace(theta)
    dtype = to_numpy(theta[:1]).dtype
    U = _take(X, np.arange(n), 1 if seq else 0, map.backend, dtype, xp)
    Y = _take(Yt, np.arange(Yt.shape[1 if at == "all" else 0]), 1 if at == "all" else 0,
              map.backend, dtype, xp)
    lv, _, _, grad = _run(lay, theta, U, Y, seq, T, at, loss, checkpoint)
    blocks = {}
    for key, start, stop, pattern in lay.entries:
        g = grad[start:stop]
        if pattern is None:
            blocks[key] = xp.reshape(g, (map.sizes[key[0]], map.sizes[key[1]]))
        else:
            blocks[key] = sparse_module(xp).csr_matrix((g, pattern.indices, pattern.indptr),
                                                       shape=pattern.shape)
    return float(to_numpy(lv)), blocks, grad[lay.bias_start:]


def evaluate(map: MapLike, inputs: Array, targets: Array, *, steps: int | None = None,
             loss: str = "cross_entropy", at: str = "last",
             batch_size: int = 1024) -> tuple[float, float]:
    """Loss and accuracy of ``map`` on a data set, as :func:`train` measures them.

    Parameters
    ----------
    map : IterativeMap
        A driven map (with an ``input_block``).
    inputs, targets : array
        Inputs and targets, as for :func:`train`.
    steps : int, optional
        Steps per sample, as for :func:`train`.
    loss : {"cross_entropy", "mse"}
        The loss, as for :func:`train`.
    at : {"last", "all"}
        Where the loss is taken, as for :func:`train`.
    batch_size : int
        Samples evaluated at once (the result does not depend on it).

    Returns
    -------
    (loss, accuracy) : (float, float)

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import IterativeMap, evaluate
    >>> m = IterativeMap.from_mlp([np.eye(2)], activation="identity")
    >>> evaluate(m, np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))[1]
    1.0
    """
    batch_size = check_int("batch_size", batch_size, 1)
    X, Yt, seq, T, n = _check_data(map, inputs, targets, steps, loss, at)
    lay, theta, _ = _layout(map, False)
    xp = namespace(theta)
    dtype = to_numpy(theta[:1]).dtype
    total_loss = correct = total = 0.0
    sample_axis, target_axis = (1 if seq else 0), (1 if at == "all" else 0)
    with _blas_threads(map, min(batch_size, n)):
        for s in range(0, n, batch_size):
            total_loss, correct, total = _evaluate_batch(
                map, lay, theta, X, Yt, seq, T, at, loss, np.arange(s, min(s + batch_size, n)),
                sample_axis, target_axis, dtype, xp, total_loss, correct, total)
    return total_loss / n, correct / max(total, 1.0)


def _evaluate_batch(map, lay, theta, X, Yt, seq, T, at, loss, idx, sample_axis, target_axis,
                    dtype, xp, total_loss, correct, total):
    """The running sums of :func:`evaluate` with one more batch added."""
    U = _take(X, idx, sample_axis, map.backend, dtype, xp)
    Y = _take(Yt, idx, target_axis, map.backend, dtype, xp)
    lv, c, t, _ = _run(lay, theta, U, Y, seq, T, at, loss, None, want_grad=False)
    return (total_loss + float(to_numpy(lv)) * len(idx), correct + float(to_numpy(c)),
            total + float(to_numpy(t)))

