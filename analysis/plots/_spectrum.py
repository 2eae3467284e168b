"""Lyapunov spectra and their convergence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_int
from ._common import (
    EXPONENT_UNIT,
    _axes,
    _field,
    _finish,
    _floats,
    _legend_below,
    _minus_inf_markers,
    _np,
    _plt,
    _style,
    _zero_line,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# lyapunov_history keys each line up to this many exponents; past it, a colour ramp
_KEY_EACH = 10


def lyapunov_spectrum(result: Any, *, ax: Axes | None = None, label: str | None = None,
                      **kwargs: Any) -> Axes:
    """Lyapunov exponents against their index, with error bars and the zero line.

    Parameters
    ----------
    result : LyapunovSpectrum or array
        An object with ``exponents`` (k,) and optionally ``stderr`` (k,) and
        ``kaplan_yorke_dimension``, or the exponents themselves.
    ax : matplotlib Axes, optional
    label : str, optional
        Legend label of the exponents; the result's Kaplan-Yorke dimension
        ends the entry (spectra compared on one Axes), where without a label
        it is a note in the corner.

    Returns
    -------
    matplotlib.axes.Axes
        Exponents of ``-inf`` (exact collapses) are drawn as downward
        triangles on the bottom edge.

    Raises
    ------
    TypeError
        ``result`` without ``exponents``.
    ValueError
        Exponents that are not one-dimensional.

    Examples
    --------
    >>> from itermap.analysis import plots
    >>> ax = plots.lyapunov_spectrum({"exponents": [0.42, -1.62], "stderr": [0.01, 0.01]})
    >>> ax.get_ylabel()
    'exponent $\\\\lambda_i$ (nats/step)'
    """
    if hasattr(result, "ndim") or isinstance(result, (list, tuple)):
        exps, err, dky = _np(result), None, None
    else:
        exps = _np(_field(result, "exponents", param="result"))
        err = _np(_field(result, "stderr", None, required=False))
        dky = _field(result, "kaplan_yorke_dimension", None, required=False)
    exps = np.atleast_1d(exps).astype(float)
    if exps.ndim != 1:
        raise ValueError(f"result: exponents must be one-dimensional, got shape {exps.shape}")
    if err is not None and np.shape(err) != exps.shape:
        err = None
    idx = np.arange(1, exps.size + 1)
    ax = _axes(ax)
    kw = _style(dict(fmt="o", ms=3.5, capsize=2, lw=0.9), kwargs)
    finite = np.isfinite(exps)
    if err is not None:
        err = np.where(np.isfinite(err), err, np.nan)[finite]
    dky = None if dky is None else float(dky)
    has_note = dky is not None and bool(np.isfinite(dky))
    # no finite exponent (an MLP's): no key entry for markers that are not drawn
    name = label or ("exponents" if finite.any() else "_exponents")
    if label and has_note:   # spectra compared on one Axes: each D_KY in its legend entry
        name = f"{label} ($D_{{KY}} = {dky:.3g}$)"
    line = ax.errorbar(idx[finite], exps[finite], yerr=err, label=name, **kw)
    collapsed = _minus_inf_markers(ax, idx[~finite], color=line[0].get_color())
    if collapsed is not None and finite.any():
        # room under the finite exponents: the triangles on the bottom edge stay apart
        lo, hi = float(exps[finite].min()), float(exps[finite].max())
        ax.update_datalim(np.array([[1.0, lo - 0.15 * max(hi - lo, 1e-3)]]))
    _zero_line(ax)
    # spectra drawn before on these Axes (several maps compared): the index axis spans the
    # longest, and each D_KY note goes under the last one
    drawn = getattr(ax, "_itermap_spectra", [])
    longest = max([exps.size] + [k for k, _ in drawn])
    ax.set_xlim(0.5, longest + 0.5)
    _finish(ax, "index $i$", f"exponent $\\lambda_i$ ({EXPONENT_UNIT})")
    ax.set_xticks(_index_ticks(longest))
    notes = sum(note for _, note in drawn)
    boxed = has_note and not label
    corner = _free_corner(exps, longest) if boxed else "lower"
    if boxed and dky is not None:
        # lower left, inside: a sorted spectrum leaves that corner empty (above the Axes a
        # panel's title ran over it; at the upper right a flat spectrum ran under it); upper
        # left where the exponents fill the lower left (a flat spectrum, collapses); in
        # points: two small lines take the same room on any size of Axes
        up = corner == "upper"
        ax.annotate(_kaplan_yorke_text(dky, exps), (0, 1 if up else 0),
                    xycoords="axes fraction", xytext=(4, (-1 if up else 1) * (4 + 22 * notes)),
                    textcoords="offset points", ha="left", va="top" if up else "bottom",
                    fontsize="small", bbox=dict(fc="white", ec="none", alpha=0.85, pad=1.5))
    ax._itermap_spectra = drawn + [(exps.size, boxed)]  # type: ignore[union-attr]
    if label or collapsed is not None:   # "best" does not see the note
        # the exponents low (the note above them): the legend at mid-height, off the note
        ax.legend(fontsize="small", loc=("upper right" if corner == "lower" else
                                          "center right") if boxed else "best")
    return ax


def _free_corner(exps, longest: int) -> str:
    """``"lower"`` (left) for the D_KY note unless exponents fill that corner (the left
    40% of the index axis, the lowest 35% of the values; a ``-inf`` sits on the bottom
    edge), then ``"upper"``."""
    finite = exps[np.isfinite(exps)]
    lo = min(float(finite.min(initial=0.0)), 0.0)
    hi = max(float(finite.max(initial=0.0)), 0.0)
    span = max(hi - lo, 1e-12)
    height = np.where(np.isfinite(exps), (exps - lo) / span, 0.0) if finite.size else \
        np.zeros(exps.size)
    left = np.arange(1, exps.size + 1) <= 0.5 + 0.4 * longest
    return "upper" if np.any(left & (height < 0.35)) else "lower"


def _index_ticks(k: int) -> list[int]:
    """Integer ticks for indices 1..k that start at 1 (then multiples of a round step)."""
    if k <= 12:
        return list(range(1, k + 1))
    # the least round step (2, 5, 10, 20, 25, 50, 100, ...) with at most 8 steps up to k
    step = next(int(m * 10 ** e) for e in range(12) for m in (1, 2, 2.5, 5)
                if m * 10 ** e >= 2 and float(m * 10 ** e).is_integer() and k / (m * 10 ** e) <= 8)
    return list(range(1, k + 1, step)) if step <= 2 else [1] + list(range(step, k + 1, step))


def _kaplan_yorke_text(dky: float, exps) -> str:
    """The Kaplan-Yorke dimension, and why it is 0 when no exponent is positive."""
    finite = exps[np.isfinite(exps)]
    if dky == 0.0 and finite.size and np.max(finite) < 0.0:
        # two short lines: one long one ran past a panel of a 1x3 figure
        return "$D_{KY} = 0$ (all $\\lambda_i < 0$:\na fixed point or cycle)"
    return f"$D_{{KY}} = {dky:.3g}$"


def lyapunov_history(result: Any, *, ax: Axes | None = None,
                     max_exponents: int | None = None) -> Axes:
    """How the exponent estimates converge with the number of steps averaged.

    Parameters
    ----------
    result : LyapunovSpectrum
        An object with ``history`` (n_checkpoints, k) and ``history_steps``
        (n_checkpoints,).
    ax : matplotlib Axes, optional
    max_exponents : int, optional
        Draw at most the first this many exponents (all by default); when
        fewer than the computed ones are drawn, the legend says so. Up to 10
        lines the key names each; more run along a colour map (viridis, by
        index) and the key names the first, the middle and the last.

    Returns
    -------
    matplotlib.axes.Axes
        Estimates of ``-inf`` are drawn as small triangles on the bottom edge.

    Raises
    ------
    TypeError
        ``result`` without ``history`` or ``history_steps``, a non-integer
        ``max_exponents``.
    ValueError
        A history that does not match its steps, ``max_exponents < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> res = {"history": np.array([[0.5, -1.4], [0.42, -1.6]]), "history_steps": [10, 1000]}
    >>> plots.lyapunov_history(res).get_xscale()
    'log'
    """
    max_exponents = None if max_exponents is None else check_int("max_exponents", max_exponents, 1)
    hist = _floats(result, "history", "result")
    steps = _floats(result, "history_steps", "result")
    hist = hist[:, None] if hist.ndim == 1 else hist
    if hist.ndim != 2 or hist.shape[0] != steps.shape[0]:
        raise ValueError(f"history {hist.shape} does not match history_steps {steps.shape}")
    ax = _axes(ax)
    marker: dict[str, Any] = dict(marker=".", ms=3) if steps.size <= 30 else {}
    k = hist.shape[1]
    shown = k if max_exponents is None else min(k, max_exponents)
    # many exponents: colours run along a sequential map and the key names the ends
    # (a key of every line filled a page under the panel)
    ramp = _plt().get_cmap("viridis")(np.linspace(0.0, 0.9, shown)) \
        if shown > _KEY_EACH else None
    lines = []
    for i in range(shown):
        col = hist[:, i]
        colour = {} if ramp is None else {"color": ramp[i]}
        line, = ax.plot(steps, np.where(np.isfinite(col), col, np.nan),
                        label=f"$\\lambda_{{{i + 1}}}$", **marker, **colour)
        lines.append(line)
        _minus_inf_markers(ax, steps[np.isneginf(col)], color=line.get_color(), label=None)
    _zero_line(ax)
    if np.all(steps > 0) and steps.size > 1 and steps.max() / steps.min() > 20:
        ax.set_xscale("log")
    _finish(ax, "steps averaged", f"estimate ({EXPONENT_UNIT})")
    # under the Axes: a legend to the right ran past the edge of side-by-side panels
    if ramp is None:
        _legend_below(ax, ncol=min(shown, 6), handlelength=1.2,
                      title=None if shown == k else f"first {shown} of {k}")
    else:
        ends = [lines[0], lines[shown // 2], lines[-1]]
        _legend_below(ax, ends, ncol=3, handlelength=1.2,
                      title=f"{shown} exponents, coloured by index" if shown == k
                      else f"first {shown} of {k}, coloured by index")
    return ax


def lyapunov_panels(result: Any, *, fig: Figure | None = None) -> Figure:
    """Two panels: the spectrum and its convergence history.

    Parameters
    ----------
    result : LyapunovSpectrum
        An object with ``exponents``, ``history`` and ``history_steps``.
    fig : matplotlib Figure, optional
        The figure to draw into; a new one, two panels wide, by default.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError
        ``fig`` that is not a Figure or SubFigure (an Axes, say).

    Examples
    --------
    >>> from itermap.analysis import plots
    >>> res = {"exponents": [0.42, -1.62], "history": [[0.5, -1.5], [0.42, -1.62]],
    ...        "history_steps": [100, 1000]}
    >>> len(plots.lyapunov_panels(res).axes)
    2
    """
    plt = _plt()
    if fig is None:
        w, h = plt.rcParams["figure.figsize"]
        fig = plt.figure(figsize=(max(w, 2 * h * 1.1), h), layout="constrained")
    if not hasattr(fig, "subplots") or not hasattr(fig, "add_subplot"):
        raise TypeError(f"fig must be a matplotlib Figure or SubFigure, got {type(fig).__name__} "
                        f"(into one Axes draw lyapunov_spectrum or lyapunov_history)")
    ax1, ax2 = fig.subplots(1, 2)
    lyapunov_spectrum(result, ax=ax1)
    lyapunov_history(result, ax=ax2)
    return fig
