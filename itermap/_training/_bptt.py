"""The parameters of an IterativeMap as one flat vector, and one batch through time.

What :func:`itermap.train`, :func:`itermap.loss_and_gradient` and
:func:`itermap.evaluate` share: the parameter layout, the loss and its gradient by
backpropagation through time (with checkpointing), and the checks of the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._core._backend import is_sparse, namespace, sparse_module, to_backend, to_numpy
from .._core._checks import check_choice, check_int, one_namespace, plain_array
from .._maps._blocks import BlockMatrix
from .._maps._network import IterativeMap
from .._maps._network_grad import _csr_coordinates, sampled_product


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
                            functions=m.functions, leak=leak)

    def gradient(self, m, G, Xin, xp):
        out = xp.zeros(self.size, dtype=G.dtype)
        for key, start, stop, pattern in self.entries:
            if key[0] == m.input_block:
                continue  # rows the input overwrites: never used, never trained
            if pattern is None:  # g_i^T x_j, also for a block that is zero in this step's map
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
    blocks = bm.blocks
    for key, flag in (trainable.items() if trainable is not None else ()):
        # a masked block that is zero now is not stored: it trains from zeros (on the
        # mask's pattern if sparse: a large one is not densified)
        if key not in blocks and key[0] != m.input_block and hasattr(flag, "shape"):
            if is_sparse(flag):
                f = to_numpy(flag).tocsr()
                blocks[key] = to_backend(type(f)((np.zeros(f.nnz, m.dtype), f.indices,
                                                  f.indptr), shape=f.shape), m.backend)
            else:
                blocks[key] = xp.zeros((m.sizes[key[0]], m.sizes[key[1]]), dtype=m.dtype)
    for key, b in blocks.items():
        flag = _trainable_flag(key, b,
                               True if trainable is None else trainable.get(key, default))
        if is_sparse(b):
            pattern = b.tocsr().copy()
            pattern.sum_duplicates()
            pattern.sort_indices()
            vals = pattern.data
            lay.coords[key] = _csr_coordinates(pattern, xp)
        else:
            vals, pattern = xp.reshape(b, (-1,)), None
        if not hasattr(flag, "shape"):
            mk = xp.full(vals.shape, float(bool(flag)), dtype=vals.dtype)
        elif pattern is not None:  # an entrywise mask, read at the stored entries
            fm = flag.toarray() if is_sparse(flag) else flag
            fm = xp.asarray(to_backend(np.asarray(to_numpy(fm), dtype=bool), m.backend)
                            if m.backend == "cupy" else np.asarray(fm, dtype=bool))
            mk = xp.astype(fm[lay.coords[key]], vals.dtype)
        else:
            fm = flag.toarray() if is_sparse(flag) else flag
            mk = xp.astype(xp.reshape(xp.asarray(fm), (-1,)) != 0, vals.dtype)
            if tuple(mk.shape) != tuple(vals.shape):
                raise ValueError(f"trainable mask of block {key} has the wrong shape")
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
    slices = {i: m.block_slice(i) for i in lay.leak_blocks}
    parts = [xp.sum(a[:, s] * (y[:, s] - xin[:, s])) / m.leak[i] for i, s in slices.items()]
    return xp.concat([grad[:lay.bias_stop], grad[lay.bias_stop:] + xp.stack(parts)])


def _add_at(a, sl, v, xp):
    return xp.concat([a[:, :sl.start], a[:, sl] + v, a[:, sl.stop:]], axis=1)


# below this many multiply-adds per step, BLAS threads cost more than they give
_SINGLE_THREAD_WORK = 1 << 25


def _blas_threads(m, batch):
    """A context holding NumPy's BLAS to one thread for small steps; a no-op otherwise."""
    import contextlib

    if m.backend != "numpy" or m.dim * m.dim * batch >= _SINGLE_THREAD_WORK:
        return contextlib.nullcontext()
    from .._running._threads import blas_limited

    return blas_limited(1)


def _take(arr, idx, axis, backend, dtype, xp):
    part = np.take(arr, idx, axis=axis)
    part = part if part.dtype.kind == "i" else part.astype(dtype)
    return to_backend(part, backend) if backend == "cupy" else xp.asarray(part)


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
