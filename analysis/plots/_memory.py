"""Impulse responses and memory capacity curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_int
from ._common import (
    _axes,
    _field,
    _finish,
    _finite_positive,
    _legend_below,
    _minus_inf_markers,
    _np,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _impulse_norms(ir, index):
    """``(norms, length)`` of one state's response: row ``index`` of a batch."""
    if hasattr(ir, "ndim"):
        norms, length, batched = _np(ir), None, None
    else:
        norms = _np(_field(ir, "norms", param="ir"))
        length = _field(ir, "length", None, required=False)
        batched = _field(ir, "batched", None, required=False)
    norms = np.asarray(norms, dtype=float)
    if batched is None:  # a bare array: four axes are a batch
        batched = norms.ndim == 4
    if not batched:
        if index is not None:
            raise ValueError("index: the impulse response is of one state, not a batch")
        return norms, length
    if index is None:
        raise ValueError(f"ir is the response of a batch of {norms.shape[0]} states: pick one "
                         "with index=i (or plot ir.row(i))")
    index = check_int("index", index)
    if norms.ndim != 4 or not -norms.shape[0] <= index < norms.shape[0]:
        raise ValueError(f"index {index} is out of range for a batch of norms of shape "
                         f"{norms.shape}")
    if isinstance(length, list | tuple):
        length = length[index]
    return norms[index], length


def impulse_response(ir: Any, *, ax: Axes | None = None, source: int | None = None,
                     labels: Sequence[str] | None = None, label: str | None = None,
                     mark_length: bool = True, total: bool = False, index: int | None = None,
                     **kwargs: Any) -> Axes:
    """Norm of the response in each block against the step, on a log axis.

    Parameters
    ----------
    ir : ImpulseResponse or array
        An object with ``norms`` of shape ``(steps + 1, n_sources, n_targets)``
        (optionally ``length``), or the norms array itself, ``(steps + 1,
        n_targets)`` or ``(steps + 1, n_sources, n_targets)``.
    ax : matplotlib Axes, optional
        The Axes to draw into; a new figure by default.
    source : int, optional
        The row of ``norms`` (source block) to show; by default each target
        block shows its response to impulses in every source at once (the
        root-sum-square over the sources).
    total : bool
        Also draw the norm of the whole response (all target blocks) in black.
    labels : sequence of str, optional
        Names of the target blocks (default ``response in block 0``, ...).
    label : str, optional
        A prefix for the legend entries (to compare several networks on one Axes).
    mark_length : bool
        Draw a dotted vertical line at a finite ``length``.
    index : int, optional
        For the response of a batch of states (``ir.batched``, or norms of
        shape ``(B, steps + 1, n_sources, n_targets)``): the state to show.
        Required for a batch, refused otherwise.
    **kwargs
        Passed to ``ax.plot``.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        Norms of the wrong shape, a source that does not exist, labels that
        do not match the target blocks, a batch without ``index`` (or an
        ``index`` out of range), an ``index`` for one state.
    TypeError
        ``ir`` without ``norms``, or a non-integer ``source`` or ``index``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> norms = np.array([[1.0, 0.0], [0.0, 0.5], [0.0, 0.0]])   # (steps + 1, targets)
    >>> ax = plots.impulse_response(norms, labels=["h1", "h2"])
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['h1', 'h2', 'exactly 0 from here on']
    >>> [float(k) for line in ax.get_lines() if line.get_marker() == "v"
    ...  for k in line.get_xdata()]                         # the first zero steps
    [1.0, 2.0]
    >>> [t.get_text() for t in ax.texts]     # h1 is 0 from step 1 on, h2 from step 2 on
    ['0 from $k = 2$']

    Notes
    -----
    Where a response becomes exactly zero for good (an MLP's), its line ends
    and a triangle on the bottom edge marks the first zero step.
    """
    norms, length = _impulse_norms(ir, index)
    norms = norms[:, None, :] if norms.ndim == 2 else norms
    if norms.ndim != 3:
        raise ValueError(f"norms must have shape (steps+1, targets) or (steps+1, sources, "
                         f"targets), got {norms.shape}")
    if source is None:  # every source at once: root-sum-square over the sources (hypot:
        per_target = np.hypot.reduce(norms, axis=1)  # a norm below 1e-154 squares to 0)
    else:
        source = check_int("source", source)
        if not -norms.shape[1] <= source < norms.shape[1]:
            raise ValueError(f"source block {source} does not exist: there are "
                             f"{norms.shape[1]}")
        per_target = norms[:, source, :]
    n_t = per_target.shape[1]
    labels = [f"response in block {t}" for t in range(n_t)] if labels is None else labels
    if len(labels) != n_t:
        raise ValueError(f"got {len(labels)} labels for {n_t} target blocks")
    steps = np.arange(per_target.shape[0])
    ax = _axes(ax)
    zeros = []
    for t in range(n_t):
        y = _finite_positive(per_target[:, t])
        if np.all(np.isnan(y)):
            continue
        name = labels[t] if label is None else f"{label}: {labels[t]}"
        line, = ax.plot(steps, y, marker=".", ms=3, label=name, **kwargs)
        zeros.append((per_target[:, t], line.get_color()))
    if total:
        whole = np.hypot.reduce(per_target, axis=1)
        line, = ax.plot(steps, _finite_positive(whole), color="k", lw=1.2, marker=".", ms=3,
                        label="total" if label is None else f"{label}: total")
        zeros.append((whole, "k"))
    _mark_exact_zeros(ax, zeros)
    if mark_length and length is not None:
        ax.axvline(float(length), color="0.3", ls=":", lw=0.9,
                   label=("" if label is None else f"{label}: ") + f"length {int(length)}")
    # say what is plotted: the Frobenius norm of the response to a unit impulse in every
    # unit of the source block(s), and that k = 0 is the impulse itself
    where = "every block" if source is None else f"block {source}"
    _finish(ax, "step $k$ ($k = 0$: the impulse)", r"response $\|\partial x_k / \partial x_0\|_F$",
            integer_x=True, log_y=True)
    n = len(ax.get_legend_handles_labels()[0])
    if n:  # under the Axes: inside, it covered the curves of a panel of a row
        _legend_below(ax, ncol=min(n, 2), fit=True, title=f"unit impulses in {where}")
    return ax


def _mark_exact_zeros(ax, curves):
    """A triangle in each curve's colour where it becomes exactly zero for good (a log axis
    cannot show zeros), the last one annotated, one legend entry for them all."""
    ends = []
    for y, colour in curves:
        y = np.asarray(y, dtype=float)
        nonzero = np.flatnonzero(y != 0.0)
        if nonzero.size and nonzero[-1] < y.size - 1:
            ends.append((int(nonzero[-1]) + 1, colour, float(abs(y[nonzero[-1]]))))
    for k0, colour, _ in ends:
        _minus_inf_markers(ax, [k0], color=colour, label=None)
    if ends:  # one annotation, where the last of them ends (more would collide)
        k0, colour, y_end = max(ends, key=lambda e: e[0])
        text = f"0 from $k = {k0}$"
        before = [t for t in ax.texts if t.get_text() == text]  # a curve drawn earlier
        if before:
            before[0].set_color("0.3")
        else:
            ax.annotate(text, xy=(k0, 0.035), xycoords=ax.get_xaxis_transform(),
                        xytext=(5, 0), textcoords="offset points", ha="left", va="center",
                        fontsize="small", color=colour if len(ends) == 1 else "0.3")
        # room for the text right of the mark: the data limits reach past it (not fixed
        # limits, so that curves drawn later still autoscale the axis)
        ax.update_datalim(np.array([[k0 + max(1.0, 0.3 * k0), y_end]]))
    entry = "exactly 0 from here on"
    if ends and entry not in ax.get_legend_handles_labels()[1]:
        # one legend entry for the marks, in grey: each mark has its line's colour
        ax.plot([], [], ls="none", marker="v", ms=5, color="0.4", label=entry)


def memory_capacity(results: Any, *, ax: Axes | None = None,
                    labels: Sequence[str] | None = None, **kwargs: Any) -> Axes:
    """Jaeger's memory capacity per delay, one line per map, the total in the legend.

    Parameters
    ----------
    results : MemoryCapacity, or a sequence or dict of them
        From :func:`itermap.analysis.memory_capacity`; a dict's keys label the
        lines (maps along the MLP-RNN continuum, say).
    ax : matplotlib Axes, optional
    labels : sequence of str, optional
        One label per result (default: the dict's keys, or ``map 0``, ...).
    **kwargs
        Passed to ``ax.plot``.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        A result without ``r2`` or ``delays``.
    ValueError
        No results, labels that do not match them, ``r2`` that does not match
        ``delays``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> mc = {"delays": np.arange(1, 4), "r2": np.array([1.0, 0.5, 0.0]), "capacity": 1.5}
    >>> ax = plots.memory_capacity({"rnn": mc})
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['rnn (MC = 1.50)']
    """
    if isinstance(results, dict) and "r2" not in results:
        names, items = list(results), list(results.values())
    elif isinstance(results, list | tuple):
        names, items = None, list(results)
    else:
        names, items = None, [results]
    if not items:
        raise ValueError("results is empty: give at least one MemoryCapacity")
    if labels is not None:
        if len(labels) != len(items):
            raise ValueError(f"got {len(labels)} labels for {len(items)} results")
        names = list(labels)
    if names is None:
        names = [f"map {i}" for i in range(len(items))] if len(items) > 1 else ["map"]
    ax = _axes(ax)
    for name, mc in zip(names, items):
        r2 = np.asarray(_np(_field(mc, "r2", param="results")), dtype=float)
        delays = np.asarray(_np(_field(mc, "delays", param="results")), dtype=float)
        if r2.shape != delays.shape or r2.ndim != 1:
            raise ValueError(f"results: r2 {r2.shape} does not match delays {delays.shape}")
        total = float(_field(mc, "capacity", r2.sum(), required=False))
        ax.plot(delays, r2, marker=".", ms=4, label=f"{name} (MC = {total:.2f})", **kwargs)
    ax.set_ylim(-0.03, 1.03)
    _finish(ax, "delay $d$ (steps)", r"$r^2$ of $u_{t-d}$ read from $x_t$", integer_x=True)
    # under the Axes: inside, the key of four maps covered their curves in a panel of a row
    _legend_below(ax, ncol=min(len(items), 2), fit=True)
    return ax
