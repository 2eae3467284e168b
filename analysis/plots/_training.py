"""Training histories and accuracy against the number of parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_choice
from ._common import (
    NEGATIVE,
    POSITIVE,
    _axes,
    _field,
    _np,
    _plt,
    _plural,
    _readable_log_axis,
    _two_line_xlabel,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def training_history(history: Any, *, ax: Axes | None = None, metric: str = "loss") -> Axes:
    """Loss or accuracy per epoch of a :class:`itermap.TrainHistory`, with validation.

    Parameters
    ----------
    history : TrainHistory or dict
        With ``loss``, ``accuracy`` and optionally ``val_loss``, ``val_accuracy``.
    ax : matplotlib Axes, optional
    metric : {"loss", "accuracy"}
        What to draw; the y label is ``"training loss"`` (or accuracy) without a
        validation curve, the metric's name with one. A positive loss is drawn on a
        log axis.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> ax = plots.training_history({"loss": np.array([1.0, 0.5]),
    ...                              "accuracy": np.array([0.5, 0.8])})
    >>> ax.get_ylabel()
    'training loss'
    """
    metric = check_choice("metric", metric, ("loss", "accuracy"))
    train = np.asarray(_np(_field(history, metric, param="history")), dtype=float)
    val = _field(history, f"val_{metric}", None, required=False)
    ax = _axes(ax)
    epochs = np.arange(1, train.size + 1)
    marker = "o" if train.size == 1 else None  # one epoch: a line of one point draws nothing
    ax.plot(epochs, train, color=NEGATIVE, label="train", marker=marker)
    both = val is not None and np.any(np.isfinite(np.asarray(_np(val), dtype=float)))
    if both:
        ax.plot(epochs, np.asarray(_np(val), dtype=float), color=POSITIVE, label="validation",
                marker=marker)
        ax.legend(frameon=False)
    if metric == "loss" and np.all(train > 0):
        ax.set_yscale("log")
        _readable_log_axis(ax.yaxis)  # 0.3, 0.6, 2 rather than 3 x 10^-1
    from matplotlib.ticker import MaxNLocator

    # whole epochs only (one epoch was ticked 0.96, 0.98, 1.00, ...)
    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, min_n_ticks=1))
    # with the validation curve on it the axis is not the training metric alone
    ax.set(xlabel="epoch", ylabel=metric if both else f"training {metric}")
    return ax


def accuracy_vs_parameters(result: Any, *, ax: Axes | None = None) -> Axes:
    """Test accuracy (mean ± std over seeds) against trainable parameters, one point per model.

    Models of near-equal size are dodged sideways so their error bars do not overlap.

    Parameters
    ----------
    result : ParameterComparison or dict
        With ``names``, ``params`` (n_models,) and ``accuracy`` (n_models, n_seeds).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For ``names``, ``params`` and ``accuracy`` of different lengths.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> ax = plots.accuracy_vs_parameters({"names": ["mlp", "sparse"],
    ...     "params": np.array([100.0, 100.0]), "accuracy": np.array([[0.9, 0.92], [0.88, 0.9]])})
    >>> ax.get_xlabel()
    'trainable parameters (near-equal sizes dodged sideways)'
    >>> ax.get_legend().get_title().get_text()
    'mean ± std over 2 seeds'
    """
    names = list(_field(result, "names", param="result"))
    params = np.asarray(_np(_field(result, "params", param="result")), dtype=float)
    acc = np.asarray(_np(_field(result, "accuracy", param="result")), dtype=float)
    acc = acc[:, None] if acc.ndim == 1 else acc
    if not (len(names) == params.shape[0] == acc.shape[0]):
        raise ValueError("names, params and accuracy need one entry per model")
    ax = _axes(ax)
    colors = _plt().rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    seeds = acc.shape[1]
    shift = _dodge(params)
    for k, name in enumerate(names):
        sd = acc[k].std(ddof=1) if seeds > 1 else 0.0
        ax.errorbar(params[k] * 10.0 ** shift[k], acc[k].mean(), yerr=sd, fmt="o", ms=4,
                    capsize=2.5, color=colors[k % len(colors)], label=name)
    ax.set_xscale("log")
    _readable_log_axis(ax.xaxis)
    label = ax.set_xlabel("trainable parameters" + (" (near-equal sizes dodged sideways)"
                                                    if np.any(shift != 0) else ""))
    _two_line_xlabel(ax, label.get_text().replace(" (", "\n("))
    ax.set_ylabel("test accuracy")
    what = (f"mean ± std over {_plural(seeds, 'seed')}" if seeds > 1
            else "1 seed: no error bars")
    ax.legend(frameon=False, fontsize="small", title=what, title_fontsize="small")
    return ax


def _dodge(values, *, close=0.03, step=0.012):
    """Offsets in decades that spread points within ``close`` decades (equal-parameter
    models), so that their error bars do not overlap."""
    logs = np.log10(np.maximum(np.asarray(values, dtype=float), 1e-300))
    order = np.argsort(logs, kind="stable")
    shift = np.zeros(logs.size)
    start = 0
    for i in range(1, logs.size + 1):
        if i == logs.size or logs[order[i]] - logs[order[i - 1]] > close:
            group = order[start:i]
            shift[group] = (np.arange(group.size) - (group.size - 1) / 2) * step
            start = i
    return shift
