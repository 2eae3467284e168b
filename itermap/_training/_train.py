"""Training an iterative map by backpropagation through time, on the map's backend.

Gradients run backwards through the map's own transpose product and its parameter
gradient (:meth:`IterativeMap.block_gradient`), so sparse blocks stay sparse.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._core._backend import namespace, sparse_module, to_backend, to_numpy
from .._core._checks import check_bool, check_choice, check_int, check_real
from .._core._progress import interactive, progress_bar
from .._core._result import Check, Result, Status
from .._core._rng import as_rng
from .._core._types import Array, MapLike, RngLike
from .._interop._io import _check_target, load, save, saveable
from .._maps._network import IterativeMap
from .._maps._protocol import as_map
from ._bptt import _blas_threads, _check_data, _layout, _run, _take
from ._optim import make_optimizer

__all__ = ["train", "TrainHistory", "TrainState", "NonFiniteLossError", "evaluate",
           "loss_and_gradient", "trainable_count"]


class NonFiniteLossError(FloatingPointError):
    """The training loss turned NaN or inf; the parameters are kept as attributes.

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

    ``accuracy`` is the fraction of correct argmax classes for cross-entropy,
    and the fraction of nonzero targets whose sign the output matches (bit
    accuracy) for MSE.

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
        The epoch (from 1) whose map was returned: the best validation loss
        with a split, else the last.
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
    >>> from itermap import IterativeMap, train
    >>> m = IterativeMap.from_mlp([np.eye(2)], activation="identity")
    >>> _, history = train(m, np.eye(2), np.array([0, 1]), epochs=3, progress=False, rng=0)
    >>> history.epochs, history.loss.shape, bool(np.all(np.isnan(history.val_loss)))
    (3, (3,), True)
    """

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
    >>> from itermap import IterativeMap, load, train
    >>> m = IterativeMap.from_mlp([np.eye(2)], activation="identity")
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> _ = train(m, np.eye(2), np.array([0, 1]), epochs=2, progress=False, rng=0,
    ...           save_state=path)
    >>> state = load(path)
    >>> type(state).__name__, state.epoch, len(state.history["loss"])
    ('TrainState', 2, 2)
    """

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


def trainable_count(m: MapLike) -> int:
    """Trainable parameters of ``m`` as :func:`train` counts them.

    Stored weights outside the input block's rows (honouring a ``trainable``
    mask on the block matrix, whose blocks that are zero now train too), plus
    the biases outside the input block.

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
    >>> from itermap import IterativeMap, trainable_count
    >>> mlp = IterativeMap.from_mlp([np.ones((5, 3)), np.ones((2, 5))])
    >>> trainable_count(mlp)     # 3*5 + 5 + 5*2 + 2
    32
    """
    if not isinstance(m, IterativeMap):
        raise TypeError(f"m must be an IterativeMap, got {type(m).__name__}")
    return _count(_layout(m, freeze_bias=False)[2])


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
    >>> import itermap
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 2)); y = (x[:, 0] * x[:, 1] > 0).astype(int)
    >>> mlp = itermap.IterativeMap.from_mlp([rng.normal(size=(16, 2)), rng.normal(size=(2, 16))
    ...                                      ], activation="tanh")
    >>> trained, hist = itermap.train(mlp, x, y, epochs=60, lr=0.05, rng=0, progress=False)
    >>> bool(hist.accuracy[-1] > 0.9), hist.loss.shape
    (True, (60,))
    """
    m = as_map(map)
    if not isinstance(m, IterativeMap):
        raise TypeError(f"map: train needs an IterativeMap (its weights are the parameters), "
                        f"got {type(map).__name__}")
    opts = _Options(lr=lr, epochs=epochs, batch_size=batch_size, clip_norm=clip_norm,
                    validation=validation, patience=patience, checkpoint=checkpoint,
                    weight_decay=weight_decay, momentum=momentum, freeze_bias=freeze_bias,
                    progress=progress, optimizer=optimizer, loss=loss, at=at, schedule=schedule,
                    save_state=save_state)
    if opts.save_state is not None:  # up front: a typo is an error, a full disk later a warning
        opts.save_state = _check_save_state(opts.save_state)
    data = _check_data(m, inputs, targets, steps, loss, at)
    run = _Training(m, data, opts, as_rng(rng), check_bool("train_leak", train_leak))
    if resume is not None:
        run.resume(resume)
    run.hold_out(validation_data)
    with progress_bar(total=opts.epochs, initial=run.start_epoch, desc="train", unit="epoch",
                      leave=False, disable=not opts.progress) as bar, \
            _blas_threads(m, opts.batch_size):
        for epoch in range(run.start_epoch, opts.epochs):
            run.epoch(epoch)
            bar.update(1)
            # the training set's numbers, not held-out ones
            bar.set_postfix({"train loss": f"{run.hist['loss'][-1]:.4g}",
                             "train acc": f"{run.hist['accuracy'][-1]:.3f}"})
            if opts.save_state is not None:
                _save_state(opts.save_state, epoch, run.state(epoch))
            if run.patience_spent():
                return run.result(stopped=True)
    return run.result(stopped=False)


@dataclass
class _Options:
    """The checked options of one :func:`train` run."""

    lr: float
    epochs: int
    batch_size: int
    clip_norm: float | None
    validation: float
    patience: int | None
    checkpoint: int | None
    weight_decay: float
    momentum: float
    freeze_bias: bool
    progress: bool | None  # None: shown in interactive sessions only
    optimizer: str
    loss: str
    at: str
    schedule: Any
    save_state: Any

    def __post_init__(self):
        """The options checked in turn; errors name the parameter."""
        self.lr = check_real("lr", self.lr, positive=True)
        self.epochs = check_int("epochs", self.epochs, 1)
        self.batch_size = check_int("batch_size", self.batch_size, 1)
        if self.clip_norm is not None:
            self.clip_norm = check_real("clip_norm", self.clip_norm, positive=True)
        self.validation = check_real("validation", self.validation, minimum=0.0)
        if self.validation >= 1.0:
            raise ValueError(f"validation must be a fraction in [0, 1), got {self.validation}")
        if self.patience is not None:
            self.patience = check_int("patience", self.patience, 1)
        if self.checkpoint is not None:
            self.checkpoint = check_int("checkpoint", self.checkpoint, 1)
        self.weight_decay = check_real("weight_decay", self.weight_decay, minimum=0.0)
        self.momentum = check_real("momentum", self.momentum, minimum=0.0, maximum=1.0)
        self.freeze_bias = check_bool("freeze_bias", self.freeze_bias)
        self.progress = interactive() if self.progress is None else check_bool(
            "progress", self.progress)
        self.optimizer = check_choice("optimizer", self.optimizer, ("adam", "sgd"))


class _Training:
    """The state of one :func:`train` run: data, parameters, optimizer, history, best epoch.

    :func:`train` drives it epoch by epoch; it holds everything a checkpoint
    (:class:`TrainState`) saves and a resumed run restores.
    """

    def __init__(self, m, data, opts, gen, train_leak):
        self.X, self.Yt, self.seq, self.T, self.n = data
        self.m, self.opts, self.gen = m, opts, gen
        self.backend = m.backend
        self.lay, self.theta, self.mask = _layout(m, opts.freeze_bias, train_leak)
        self.xp = namespace(self.theta)
        self.dtype = to_numpy(self.theta[:1]).dtype
        self.opt = make_optimizer(opts.optimizer, opts.lr, weight_decay=opts.weight_decay,
                                  momentum=opts.momentum)
        all_trainable = bool(to_numpy(self.xp.all(self.mask == 1)))
        self.step_mask = None if all_trainable else self.mask
        self.sample_axis = 1 if self.seq else 0
        self.target_axis = 1 if opts.at == "all" else 0
        self.hist: dict[str, list[Any]] = {k: [] for k in TrainHistory._table}
        self.start_epoch, self.best_theta, self.best_val, self.bad_epochs = 0, None, math.inf, 0
        self.val_index = None
        self.val = None  # (inputs, targets) held out, on the map's backend
        self.last_good = None

    def resume(self, resume):
        """Continue from a saved :class:`TrainState` (or its file)."""
        state = load(resume) if isinstance(resume, (str, os.PathLike)) else resume
        if not isinstance(state, TrainState):
            raise TypeError(f"resume must be a TrainState or its file, got {type(state).__name__}")
        if int(state.theta.shape[0]) != self.lay.size:
            raise ValueError("resume: the saved state does not fit this map's parameters")
        backend, xp = self.backend, self.xp
        self.theta = _on(state.theta, backend, xp)
        self.opt.load_state({"count": state.step_count, "m": _on(state.moment1, backend, xp),
                             "v": _on(state.moment2, backend, xp)})
        self.gen.bit_generator.state = state.rng_state
        self.start_epoch = int(state.epoch)
        self.hist = {k: list(v) for k, v in state.history.items()}
        self.best_theta = _on(state.best_theta, backend, xp)
        self.best_val, self.bad_epochs = float(state.best_val), int(state.bad_epochs)
        self.val_index = (None if state.validation_index is None
                          else np.asarray(state.validation_index))

    def hold_out(self, validation_data):
        """Set the validation data: given, or a ``validation`` fraction of the samples."""
        opts, n, sa, ta = self.opts, self.n, self.sample_axis, self.target_axis
        Xv = Yv = None
        if validation_data is not None:
            vx, vy = validation_data
            Xv, Yv, vseq, _, _ = _check_data(self.m, vx, vy, None if self.seq else self.T,
                                             opts.loss, opts.at)
            if vseq != self.seq:
                raise ValueError("validation_data: inputs must have the training inputs' form")
        elif opts.validation:
            if self.val_index is None:
                n_val = max(1, int(round(opts.validation * n)))
                if n_val >= n:
                    raise ValueError("validation: the split leaves no training samples")
                self.val_index = np.sort(self.gen.permutation(n)[:n_val])
            train_index = np.setdiff1d(np.arange(n), self.val_index)
            Xv, Yv = np.take(self.X, self.val_index, axis=sa), np.take(self.Yt, self.val_index,
                                                                       axis=ta)
            self.X, self.Yt = np.take(self.X, train_index, axis=sa), np.take(self.Yt, train_index,
                                                                             axis=ta)
            self.n = len(train_index)
        if Xv is not None and Yv is not None:  # set together
            self.val = (self._take(Xv, np.arange(Xv.shape[sa]), sa),
                        self._take(Yv, np.arange(Yv.shape[ta]), ta))

    def _take(self, arr, idx, axis):
        return _take(arr, idx, axis, self.backend, self.dtype, self.xp)

    def _pass(self, U, Y, checkpoint, want_grad=True):
        o = self.opts
        return _run(self.lay, self.theta, U, Y, self.seq, self.T, o.at, o.loss, checkpoint,
                    want_grad=want_grad)

    def epoch(self, epoch):
        """One pass over the training samples in a fresh order, then the validation loss."""
        tic = time.perf_counter()
        opts, xp = self.opts, self.xp
        lr_now = opts.lr * _schedule_factor(opts.schedule, epoch, opts.epochs)
        order = self.gen.permutation(self.n)
        if self.last_good is None:
            self.last_good = xp.asarray(self.theta, copy=True)
        ep_loss = ep_correct = ep_total = 0.0
        for b in range(0, self.n, opts.batch_size):
            idx = order[b:b + opts.batch_size]
            lv, c, tot = self._batch(epoch, b // opts.batch_size, idx, lr_now)
            ep_loss += lv * len(idx)
            ep_correct += c
            ep_total += tot
        self.hist["loss"].append(ep_loss / self.n)
        self.hist["accuracy"].append(ep_correct / max(ep_total, 1.0))
        self.hist["lr"].append(lr_now)
        self._validate(epoch)
        self.hist["seconds"].append(time.perf_counter() - tic)

    def _batch(self, epoch, b, idx, lr_now):
        """One optimizer step on the samples ``idx``: (loss, correct, total) of the batch."""
        xp, opts = self.xp, self.opts
        U = self._take(self.X, idx, self.sample_axis)
        Y = self._take(self.Yt, idx, self.target_axis)
        lv, c, tot, grad = self._pass(U, Y, opts.checkpoint)
        lv_host = float(to_numpy(lv))
        if not math.isfinite(lv_host) or not bool(to_numpy(xp.all(xp.isfinite(grad)))):
            raise NonFiniteLossError(
                f"the training loss became {lv_host} at epoch {epoch + 1}, step {b + 1}; "
                "the last map with a finite loss is attached as .map (lower lr, or "
                "clip_norm, may help)", epoch=epoch + 1, step=b + 1,
                map=self.lay.build(self.last_good, copy=True), history=self.history(0, False))
        self.last_good = xp.asarray(self.theta, copy=True)
        if self.step_mask is not None:
            grad = grad * self.step_mask
        if opts.clip_norm is not None:
            norm = float(to_numpy(xp.sqrt(xp.sum(grad * grad))))
            if norm > opts.clip_norm:
                grad = grad * (opts.clip_norm / norm)
        self.opt.step(self.theta, grad, lr=lr_now, mask=self.step_mask)
        return lv_host, float(to_numpy(c)), float(to_numpy(tot))

    def _validate(self, epoch):
        """The validation loss and accuracy of the epoch; the best parameters so far."""
        if self.val is None:
            self.hist["val_loss"].append(math.nan)
            self.hist["val_accuracy"].append(math.nan)
            return
        vl, vc, vt, _ = self._pass(*self.val, None, want_grad=False)
        vl = float(to_numpy(vl))
        self.hist["val_loss"].append(vl)
        self.hist["val_accuracy"].append(float(to_numpy(vc)) / max(float(to_numpy(vt)), 1.0))
        if vl < self.best_val:
            self.best_val, self.bad_epochs = vl, 0
            self.best_theta = self.xp.asarray(self.theta, copy=True)
            self.hist.setdefault("best", []).append(epoch + 1)
        else:
            self.bad_epochs += 1

    def patience_spent(self):
        """Whether early stopping ends the run after this epoch."""
        return (self.opts.patience is not None and self.val is not None
                and self.bad_epochs >= self.opts.patience)

    def state(self, epoch):
        """The checkpoint after ``epoch`` (counted from 0)."""
        opt = self.opt
        return TrainState(
            theta=to_numpy(self.theta), moment1=_host(opt.state()["m"]),
            moment2=_host(opt.state()["v"]), step_count=opt.count, epoch=epoch + 1,
            rng_state=dict(self.gen.bit_generator.state),
            history={k: list(v) for k, v in self.hist.items()},
            best_theta=_host(self.best_theta), best_val=self.best_val,
            bad_epochs=self.bad_epochs, validation_index=self.val_index)

    def history(self, best_epoch, stopped):
        return TrainHistory(**{k: np.asarray(self.hist[k], dtype=float)
                               for k in TrainHistory._table},
                            best_epoch=int(best_epoch), stopped_early=bool(stopped),
                            trainable_count=_count(self.mask), loss_name=self.opts.loss,
                            optimizer=self.opts.optimizer)

    def result(self, *, stopped):
        """The trained map (the best epoch's, with validation data) and the history."""
        final, best_epoch = self.theta, len(self.hist["loss"])
        if self.val is not None and self.best_theta is not None:
            final, best_epoch = self.best_theta, self.hist["best"][-1]
        return self.lay.build(final, copy=True), self.history(best_epoch, stopped)


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


def _count(mask):
    return int(round(float(to_numpy(namespace(mask).sum(mask)))))


def loss_and_gradient(map: MapLike, inputs: Array, targets: Array, *, steps: int | None = None,
                      loss: str = "cross_entropy", at: str = "last",
                      checkpoint: int | None = None
                      ) -> tuple[float, dict[tuple[int, int], Any], Array]:
    """The training loss of ``map`` on a batch and its gradient, as :func:`train` uses them.

    Parameters
    ----------
    map, inputs, targets, steps, loss, at
        As for :func:`train`.
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
    >>> from itermap import IterativeMap, loss_and_gradient
    >>> m = IterativeMap.from_mlp([np.zeros((2, 2))], activation="identity")
    >>> L, grads, gb = loss_and_gradient(m, np.ones((1, 2)), np.array([0]), steps=1)
    >>> round(L, 6), gb   # log 2; softmax (1/2, 1/2) minus the one-hot label
    (0.693147, array([ 0. ,  0. , -0.5,  0.5]))
    """
    if checkpoint is not None:
        checkpoint = check_int("checkpoint", checkpoint, 1)
    lay, theta, xp, seq, T, n, batch = _setup(map, inputs, targets, steps, loss, at)
    U, Y = batch(np.arange(n))
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
    map, inputs, targets, steps, loss, at
        As for :func:`train`.
    batch_size : int
        Samples evaluated at once (the result does not depend on it).

    Returns
    -------
    (loss, accuracy) : (float, float)

    Examples
    --------
    >>> from itermap import IterativeMap, evaluate
    >>> m = IterativeMap.from_mlp([np.eye(2)], activation="identity")
    >>> evaluate(m, np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))[1]
    1.0
    """
    batch_size = check_int("batch_size", batch_size, 1)
    lay, theta, _, seq, T, n, batch = _setup(map, inputs, targets, steps, loss, at)
    total_loss = correct = total = 0.0
    with _blas_threads(map, min(batch_size, n)):
        for s in range(0, n, batch_size):
            idx = np.arange(s, min(s + batch_size, n))
            U, Y = batch(idx)
            lv, c, t, _ = _run(lay, theta, U, Y, seq, T, at, loss, None, want_grad=False)
            total_loss += float(to_numpy(lv)) * len(idx)
            correct += float(to_numpy(c))
            total += float(to_numpy(t))
    return total_loss / n, correct / max(total, 1.0)


def _setup(map, inputs, targets, steps, loss, at):
    """The checked data, the parameters and ``batch(idx) -> (inputs, targets)`` on the map."""
    X, Yt, seq, T, n = _check_data(map, inputs, targets, steps, loss, at)
    lay, theta, _ = _layout(map, False)
    xp = namespace(theta)
    dtype = to_numpy(theta[:1]).dtype

    def batch(idx):
        return (_take(X, idx, 1 if seq else 0, map.backend, dtype, xp),
                _take(Yt, idx, 1 if at == "all" else 0, map.backend, dtype, xp))

    return lay, theta, xp, seq, T, n, batch
