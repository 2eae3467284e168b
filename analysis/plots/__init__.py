"""Figures for iterative maps and their analyses.

Every function takes the data or a result object (anything with the named
fields works: results are read by attribute, or by key for a dict), an
optional Matplotlib ``ax`` to draw into, and returns the Axes it drew on, or
the Figure for multi-panel plots. None calls ``plt.show()``.

States and exponents are dimensionless; exponents are in nats per step
(natural logarithm per iteration of the map), and time is counted in steps.

:func:`paper_style` sets sizes and fonts for paper figures (one or two
columns) and vector PDF output with embedded TrueType fonts;
:func:`save_figure` writes a figure as PDF and PNG.

Examples
--------
>>> import numpy as np
>>> from itermap import iterate, systems
>>> from itermap.analysis import plots
>>> traj = iterate(systems.henon(), np.array([0.1, 0.1]), 2000)
>>> ax = plots.trajectory(traj)
>>> ax.get_xlabel()
'state $x_{0}$'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._checks import check_bool, check_choice, check_int, check_real, check_real_array

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "trajectory",
    "lyapunov_spectrum",
    "lyapunov_history",
    "lyapunov_panels",
    "eigenvalues",
    "impulse_response",
    "memory_capacity",
    "block_matrix",
    "sparsity_graph",
    "orbit_diagram",
    "lyapunov_scan",
    "paper_style",
    "save_figure",
    "STYLE",
    "COLUMN_WIDTHS",
]

#: The shipped paper style sheet.
STYLE = str(Path(__file__).with_name("paper.mplstyle"))

#: Figure widths in inches for one- and two-column layouts (typical two-column journals).
COLUMN_WIDTHS = {1: 3.4, 2: 7.0}

POSITIVE = "#c0392b"  # red: excitatory / positive weights
NEGATIVE = "#2e6db4"  # blue: inhibitory / negative weights
EXPONENT_UNIT = "nats/step"


# -- helpers --------------------------------------------------------------------
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, figsize=None):
    if ax is None:
        _, ax = _plt().subplots(figsize=figsize)
    return ax


def _figure_width(ax) -> float:
    """Width in inches of the figure ``ax`` is drawn in (through any subfigures)."""
    fig: Any = ax.figure
    while not hasattr(fig, "get_figwidth"):  # a SubFigure: up to the Figure it sits in
        fig = fig.figure
    return float(fig.get_figwidth())


def _field(obj, name, default=None, *, required=True, param="the argument"):
    """``obj.name`` or ``obj[name]``; a TypeError naming ``param`` and the field when absent."""
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
    elif hasattr(obj, name):
        return getattr(obj, name)
    if required:
        raise TypeError(f"{param} must be an object with a field {name!r}, got "
                        f"{type(obj).__name__}")
    return default


def _np(a):
    if a is None:
        return None
    from itermap.backends import to_numpy

    return np.asarray(to_numpy(a)) if hasattr(a, "shape") else np.asarray(a)


def _finite_positive(a):
    """Copy of ``a`` with zeros and non-finite values as NaN (they cannot sit on a log axis)."""
    a = np.array(a, dtype=float)
    a[~(np.isfinite(a) & (a > 0))] = np.nan
    return a


def _readable_log_axis(axis):
    """Plain numbers (0.3, 2, 40) on a log axis that spans few decades, 10^k otherwise."""
    from matplotlib.ticker import Formatter, LogFormatterSciNotation

    class _Plain(Formatter):
        def __init__(self, minor):
            self.minor = minor
            self.sci = LogFormatterSciNotation(labelOnlyBase=not minor)

        def __call__(self, v, pos=None):
            lo, hi = sorted(self.axis.get_view_interval())
            if not (lo > 0 and v > 0 and hi / lo < 1e4 and lo >= 1e-4 and hi <= 1e5):
                self.sci.axis = self.axis
                return "" if self.minor else self.sci(v, pos)
            if self.minor:
                lead = round(v / 10 ** np.floor(np.log10(v)))
                return f"{v:g}" if hi / lo < 30 and lead in (2, 5) else ""
            return f"{v:g}"

    axis.set_major_formatter(_Plain(False))
    axis.set_minor_formatter(_Plain(True))


def _minus_inf_markers(ax, x, *, color=None, label="$-\\infty$ (exact collapse)"):
    """Downward triangles along the bottom edge of ``ax`` at the positions ``x`` (data units)."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return None
    # just inside the bottom edge (on the spine, half of it would be clipped or hidden)
    return ax.plot(x, np.full_like(x, 0.035), ls="none", marker="v", ms=5, color=color,
                   clip_on=False, transform=ax.get_xaxis_transform(), zorder=3,
                   label=label or "_")[0]


def _style(defaults, kwargs):
    """The plot style: ``defaults`` overridden by the caller's ``kwargs``."""
    style = dict(defaults)
    style.update(kwargs)
    return style


def _floats(obj, name, param):
    """Field ``name`` of ``obj`` as a float NumPy array (TypeError naming ``param``)."""
    return _np(_field(obj, name, param=param)).astype(float)


def _finish(ax, xlabel, ylabel, *, integer_x=False, log_y=False, legend=None):
    """The axis setup every figure shares: labels, integer steps, a log axis, a legend.

    ``legend``: None (none), ``"small"`` (small font, best place) or ``"if_any"``
    (small, only when something is labelled).
    """
    if log_y:
        ax.set_yscale("log")
        _readable_log_axis(ax.yaxis)
    if integer_x:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend == "small" or (legend == "if_any" and ax.get_legend_handles_labels()[0]):
        ax.legend(fontsize="small")
    return ax


def _key(ax, handles, *, y, ncol, **kwargs):
    """A colour or width key centred above (``y > 1``, its bottom at y) or below (``y < 0``)."""
    return ax.legend(handles=handles, loc="lower center" if y > 1 else "upper center",
                     bbox_to_anchor=(0.5, y), ncol=ncol,
                     frameon=False, fontsize="small", borderaxespad=0.0, **kwargs)


def _square(ax, lo, hi, *, invert_y=False, adjustable=None):
    """Equal-aspect Axes showing ``[lo, hi]`` on both axes (y from hi to lo if inverted)."""
    ax.set_xlim(lo, hi)
    ax.set_ylim((hi, lo) if invert_y else (lo, hi))
    if adjustable is None:
        ax.set_aspect("equal")
    else:
        ax.set_aspect("equal", adjustable=adjustable)


def _zero_line(ax, *, orientation="h"):
    # dotted and grey: dashed black lines are predictions (the mean field)
    kw = dict(color="0.45", lw=0.8, ls=":", zorder=0, label="_zero")
    return ax.axhline(0.0, **kw) if orientation == "h" else ax.axvline(0.0, **kw)


# -- trajectories -------------------------------------------------------------------
def trajectory(traj: Any, *, dims: Sequence[int] = (0, 1), ax: Axes | None = None,
               time: bool = False, max_lines: int = 20, **kwargs: Any) -> Axes:
    """A phase portrait (or a time series) of a trajectory.

    Parameters
    ----------
    traj : Trajectory or array
        An :class:`itermap.Trajectory` (``states`` of shape ``(n, dim)`` or
        ``(n, B, dim)`` and ``times``) or the states array itself.
    dims : pair of int
        The two state components of the phase portrait. A one-dimensional
        map is drawn as its return plot ``x_{k+1}`` against ``x_k``.
    ax : matplotlib Axes, optional
    time : bool
        Plot the components ``dims`` against the step instead.
    max_lines : int
        At most this many trajectories of a batch are drawn.
    **kwargs
        Passed to ``ax.plot`` (default: small points, no lines, for the
        phase portrait).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``traj`` without ``states``, or ``dims`` that is not a pair of ints.
    ValueError
        States of the wrong shape, a component that does not exist, or not two
        components for a phase portrait.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import iterate, systems
    >>> from itermap.analysis import plots
    >>> traj = iterate(systems.logistic(3.9), np.array([0.3]), 200)
    >>> ax = plots.trajectory(traj)          # a 1-D map: x_{k+1} against x_k
    >>> ax.get_ylabel()
    'next state $x_{k+1}$'
    """
    states = _np(_field(traj, "states", param="traj") if not hasattr(traj, "ndim") else traj)
    if states.ndim == 2:
        states = states[:, None, :]
    if states.ndim != 3:
        raise ValueError(f"traj: states must have shape (n, dim) or (n, B, dim), got "
                         f"{states.shape}")
    n, B, dim = states.shape
    times = _field(traj, "times", None, required=False) if not hasattr(traj, "ndim") else None
    times = np.arange(n) if times is None else _np(times)
    if dims is None or isinstance(dims, str | bytes):
        raise TypeError(f"dims must be a pair of component indices, got {dims!r}")
    if np.ndim(dims) == 0:
        dims = [dims.item() if hasattr(dims, "item") else dims]  # type: ignore[list-item]
    dims = tuple(check_int("dims", d) for d in dims)
    if dim == 1 and not time:
        dims = ()  # the return plot
    for d in dims:
        if not -dim <= d < dim:
            raise ValueError(f"dims: component {d} does not exist: the state has dim {dim}")
    ax = _axes(ax)
    B = min(B, int(max_lines))
    if time:
        for c, d in enumerate(dims):  # one colour per component, one line per trajectory
            for b in range(B):
                style = _style(dict(color=f"C{c}", lw=0.8, alpha=1.0 if B == 1 else 0.7),
                               kwargs)
                ax.plot(times, states[:, b, d], label=f"$x_{{{d % dim}}}$" if b == 0 else "_",
                        **style)
        _finish(ax, "step $k$", "state component")
        if len(dims) > 1:
            ax.legend()
        return ax
    style = _style(dict(ls="none", marker=".", ms=1.5, alpha=0.7), kwargs)
    if dim == 1:
        for b in range(B):
            ax.plot(states[:-1, b, 0], states[1:, b, 0], label="_", **style)
        return _finish(ax, "state $x_k$", "next state $x_{k+1}$")
    if len(dims) != 2:
        raise ValueError(f"a phase portrait needs two components, got dims={dims}")
    i, j = dims
    for b in range(B):
        ax.plot(states[:, b, i], states[:, b, j], label="_", **style)
    return _finish(ax, f"state $x_{{{i % dim}}}$", f"state $x_{{{j % dim}}}$")


# -- Lyapunov spectra -------------------------------------------------------------------
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
        Legend label of the exponents.

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
    'Lyapunov exponent $\\\\lambda_i$ (nats/step)'
    """
    if hasattr(result, "ndim") or isinstance(result, (list, tuple)):
        exps, err, dky = _np(result), None, None
    else:
        exps = _np(_field(result, "exponents", param="result"))
        err = _field(result, "stderr", None, required=False)
        err = None if err is None else _np(err)
        dky = _field(result, "kaplan_yorke_dimension", None, required=False)
    exps = np.atleast_1d(exps).astype(float)
    if exps.ndim != 1:
        raise ValueError(f"result: exponents must be one-dimensional, got shape {exps.shape}")
    if err is not None and np.shape(err) != exps.shape:
        err = None
    idx = np.arange(1, exps.size + 1)
    ax = _axes(ax)
    kw: dict[str, Any] = dict(fmt="o", ms=3.5, capsize=2, lw=0.9)
    kw.update(kwargs)
    finite = np.isfinite(exps)
    if err is not None:
        err = np.where(np.isfinite(err), err, np.nan)[finite]
    line = ax.errorbar(idx[finite], exps[finite], yerr=err, label=label or "exponents", **kw)
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
    _finish(ax, "index $i$", f"Lyapunov exponent $\\lambda_i$ ({EXPONENT_UNIT})")
    ax.set_xticks(_index_ticks(longest))
    notes = sum(has_note for _, has_note in drawn)
    has_note = dky is not None and bool(np.isfinite(float(dky)))
    if dky is not None and has_note:
        text = _kaplan_yorke_text(float(dky), exps)
        ax.text(0.97, 0.95 - 0.11 * notes, text if not label else f"{label}: {text}",
                transform=ax.transAxes, ha="right", va="top",
                bbox=dict(fc="white", ec="none", alpha=0.85, pad=1.5))
    ax._itermap_spectra = drawn + [(exps.size, has_note)]  # type: ignore[union-attr]
    if label or collapsed is not None:
        ax.legend(fontsize="small", loc="best")
    return ax


def _index_ticks(k: int) -> list[int]:
    """Integer ticks for indices 1..k that start at 1 (then multiples of a round step)."""
    if k <= 12:
        return list(range(1, k + 1))
    # the least round step (2, 5, 10, 20, 25, 50, 100, ...) with at most 8 steps up to k
    step = next(int(m * 10 ** e) for e in range(12) for m in (1, 2, 2.5, 5)
                if m * 10 ** e >= 2 and float(m * 10 ** e).is_integer() and k / (m * 10 ** e) <= 8)
    if step <= 2:
        return list(range(1, k + 1, step))
    return [1] + list(range(step, k + 1, step))


def _kaplan_yorke_text(dky: float, exps) -> str:
    """The Kaplan-Yorke dimension, and why it is 0 when no exponent is positive."""
    finite = exps[np.isfinite(exps)]
    if dky == 0.0 and finite.size and np.max(finite) < 0.0:
        return "$D_{KY} = 0$ (all $\\lambda_i < 0$: a stable fixed point or cycle)"
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
        fewer than the computed ones are drawn, the legend says so.

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
    if max_exponents is not None:
        max_exponents = check_int("max_exponents", max_exponents, 1)
    hist = _floats(result, "history", "result")
    steps = _floats(result, "history_steps", "result")
    if hist.ndim == 1:
        hist = hist[:, None]
    if hist.ndim != 2 or hist.shape[0] != steps.shape[0]:
        raise ValueError(f"history {hist.shape} does not match history_steps {steps.shape}")
    ax = _axes(ax)
    marker: dict[str, Any] = dict(marker=".", ms=3) if steps.size <= 30 else {}
    k = hist.shape[1]
    shown = k if max_exponents is None else min(k, max_exponents)
    for i in range(shown):
        col = hist[:, i]
        line, = ax.plot(steps, np.where(np.isfinite(col), col, np.nan),
                        label=f"$\\lambda_{{{i + 1}}}$", **marker)
        _minus_inf_markers(ax, steps[np.isneginf(col)], color=line.get_color(), label=None)
    _zero_line(ax)
    if np.all(steps > 0) and steps.size > 1 and steps.max() / steps.min() > 20:
        ax.set_xscale("log")
    _finish(ax, "steps averaged", f"estimate ({EXPONENT_UNIT})")
    # under the Axes: a legend to the right ran past the edge of side-by-side panels
    _legend_below(ax, ncol=min(shown, 6), handlelength=1.2,
                  title=None if shown == k else f"first {shown} of {k}")
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
    ax1, ax2 = fig.subplots(1, 2)
    lyapunov_spectrum(result, ax=ax1)
    lyapunov_history(result, ax=ax2)
    return fig


# -- fixed points ---------------------------------------------------------------------
def _plural(n: int, word: str, plural: str | None = None) -> str:
    """``"1 fixed point"``, ``"3 fixed points"``."""
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _eigen_input(fixed_points):
    """``(eigenvalues (m, dim), stable (m,), points (m, dim) or None, bare)``.

    ``bare``: the argument is the eigenvalues themselves, not a result.
    """
    bare = hasattr(fixed_points, "ndim") or isinstance(fixed_points, (list, tuple))
    if bare:
        ev = np.asarray(_np(fixed_points), dtype=complex)
        stable, points = None, None
    else:
        ev = _field(fixed_points, "eigenvalues", param="fixed_points")
        ev = np.asarray(_np(ev), dtype=complex)
        stable = _field(fixed_points, "stable", None, required=False)
        points = _field(fixed_points, "points", None, required=False)
    if ev.ndim not in (1, 2):
        raise ValueError(f"fixed_points: eigenvalues must have shape (dim,) or (n_points, dim), "
                         f"got {ev.shape}")
    ev2 = ev.reshape(-1, ev.shape[-1]) if ev.size else ev.reshape(0, 1)
    if stable is None:
        stable = np.abs(ev2).max(axis=1, initial=0.0) < 1.0
    stable = np.asarray(_np(stable), dtype=bool).reshape(-1)
    if stable.shape[0] != ev2.shape[0]:
        raise ValueError(f"stable has {stable.shape[0]} entries for {ev2.shape[0]} fixed points")
    if points is not None:
        points = np.asarray(_np(points), dtype=float)
        if points.ndim != 2 or points.shape[0] != ev2.shape[0]:
            points = None
    return ev2, stable, points, bare


def _spectrum_groups(ev2, points):
    """Points with the same spectrum, drawn once: ``[(indices, is_pm_pair), ...]``.

    Two spectra are the same when their sorted real parts, imaginary parts and
    moduli agree to 1e-6 of the largest modulus (a multiset test). A group of
    two whose points are negatives of each other (x* and -x* of an odd
    activation; shared coordinates such as a held input may agree) is a ± pair.
    """
    m = ev2.shape[0]
    tol = 1e-6 * (1.0 + float(np.abs(ev2).max(initial=0.0)))
    keys = np.concatenate([np.sort(ev2.real, axis=1), np.sort(ev2.imag, axis=1),
                           np.sort(np.abs(ev2), axis=1)], axis=1) if m else np.zeros((0, 0))
    seen = np.zeros(m, dtype=bool)
    groups = []
    for i in range(m):
        if seen[i]:
            continue
        same = np.flatnonzero(~seen & (np.abs(keys - keys[i]).max(axis=1, initial=0.0) <= tol))
        seen[same] = True
        pm = False
        if points is not None and same.size == 2:
            p, q = points[same[0]], points[same[1]]
            ptol = 1e-6 * (1.0 + float(np.abs(points).max(initial=0.0)))
            opposite = np.abs(p + q) <= ptol
            shared = np.abs(p - q) <= ptol
            pm = bool(np.all(opposite | shared) and np.any(opposite & ~shared))
        groups.append((same, pm))
    return groups


def _group_label(idx, pm, stable):
    kind = "stable" if stable else "unstable"
    if idx.size == 1:
        return f"#{int(idx[0])} {kind}"
    names = " & ".join(f"#{int(i)}" for i in idx[:3]) + (" & ..." if idx.size > 3 else "")
    return f"{names} {kind} ({'± pair' if pm else 'same spectrum'})"


def _legend_below(ax, handles=None, *, ncol=2, title=None, **kwargs):
    """A legend centred under the Axes, below its tick labels and x label."""
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties
    from matplotlib.transforms import ScaledTranslation

    rc = mpl.rcParams
    size = FontProperties(size=rc["xtick.labelsize"]).get_size_in_points()
    label = FontProperties(size=rc["axes.labelsize"]).get_size_in_points()
    drop = (rc["xtick.major.size"] + rc["xtick.major.pad"] + 1.25 * size + rc["axes.labelpad"]
            + 1.3 * label + 2.0) / 72.0
    shift = ax.transAxes + ScaledTranslation(0.0, -drop, ax.figure.dpi_scale_trans)
    kw: dict[str, Any] = dict(loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=shift,
                              ncols=ncol, frameon=False, fontsize="small", borderaxespad=0.0,
                              handletextpad=0.3, columnspacing=1.0, title=title,
                              title_fontsize="small")
    kw.update(kwargs)
    return ax.legend(**kw) if handles is None else ax.legend(handles=handles, **kw)


def eigenvalues(fixed_points: Any, *, ax: Axes | None = None) -> Axes:
    """Jacobian eigenvalues of fixed points in the complex plane, with the unit circle.

    Up to ten spectra, each has its own colour, with a hollow circle for a
    stable point and a cross for an unstable one; more spectra share a colour
    per stability (blue stable, red unstable). Points with the same spectrum
    (the two points ``x*`` and ``-x*`` of an odd activation) are drawn once
    and labelled as a ``± pair``. The unit circle is drawn above the markers;
    the legend sits under the Axes, so panels side by side keep their width
    (a constrained layout, as in :func:`paper_style`, or ``bbox_inches="tight"``
    keeps it in the saved figure). The data limits widen along one axis to
    fill the panel, the circle staying round.

    Parameters
    ----------
    fixed_points : FixedPoints or array
        An object with ``eigenvalues`` (m, dim) and optionally ``stable``
        (m,) and ``points`` (m, dim), or the complex eigenvalues themselves
        (any shape).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``fixed_points`` without ``eigenvalues``.
    ValueError
        Eigenvalues of the wrong shape, or ``stable`` that does not match them.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> fp = {"eigenvalues": np.array([[0.5 + 0.5j, 0.5 - 0.5j]]), "stable": [True]}
    >>> ax = plots.eigenvalues(fp)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['unit circle', '#0 stable']
    >>> ax.get_legend().get_title().get_text()
    '1 fixed point, 2 eigenvalues each'
    """
    ev2, stable, points, bare = _eigen_input(fixed_points)
    if ax is None:
        _, ax = _plt().subplots(layout="constrained")
    t = np.linspace(0, 2 * np.pi, 400)
    # above the markers: eigenvalues on or near the circle must not hide it
    ax.plot(np.cos(t), np.sin(t), color="0.2", lw=0.8, ls="--", label="unit circle", zorder=4)
    groups = _spectrum_groups(ev2, points)
    if len(groups) <= 10:
        cmap = _plt().get_cmap("tab10")
        for g, (idx, pm) in enumerate(groups):
            row, st = ev2[idx[0]], bool(stable[idx[0]])
            style: dict[str, Any] = (dict(marker="o", facecolors="none", edgecolors=cmap(g), s=16)
                                     if st else dict(marker="x", color=cmap(g), s=18))
            ax.scatter(row.real, row.imag, lw=0.9, zorder=3, label=_group_label(idx, pm, st),
                       **style)
    else:
        drawn = np.zeros(ev2.shape[0], dtype=bool)
        drawn[[int(idx[0]) for idx, _ in groups]] = True
        styles: list[tuple[Any, str, dict[str, Any]]] = [
            (stable, "stable", dict(marker="o", facecolors="none", edgecolors=NEGATIVE, s=14)),
            (~stable, "unstable", dict(marker="x", color=POSITIVE, s=18))]
        for mask, name, style in styles:
            pts = ev2[mask & drawn].reshape(-1)
            if pts.size:
                ax.scatter(pts.real, pts.imag, lw=0.9, zorder=3,
                           label=f"{name}: {_plural(int(mask.sum()), 'point')}", **style)
    r = max(1.1, 1.1 * float(np.abs(ev2).max(initial=0.0)))
    # the square [-r, r]^2 as data limits, widened along x or y to fill the slot: side by
    # side panels keep no gaps (fixed limits would shrink the Axes to a square)
    ax.update_datalim(np.array([[-r, -r], [r, r]]))
    ax.margins(0.0)
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    ax.axhline(0, color="0.8", lw=0.5, zorder=0)
    ax.axvline(0, color="0.8", lw=0.5, zorder=0)
    _finish(ax, r"Re $\mu$", r"Im $\mu$")
    if bare and ev2.shape[0] == 1:  # a spectrum, not necessarily of a fixed point
        title = _plural(ev2.shape[1], "eigenvalue")
    else:
        title = f"{_plural(ev2.shape[0], 'fixed point')}, {ev2.shape[1]} eigenvalues each"
    if any(idx.size > 1 for idx, _ in groups):
        title += "; equal spectra drawn once"
    n = len(ax.get_legend_handles_labels()[0])
    _legend_below(ax, ncol=min(n, 2), title=title)
    return ax


# -- impulse response ---------------------------------------------------------------------
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
    Exact zeros cannot sit on a log axis: where a response becomes exactly
    zero and stays so (a finite impulse response, an MLP's), its line ends and
    a triangle on the bottom edge marks the first zero step; the last of
    these is annotated ``0 from k = ...``.
    """
    norms, length = _impulse_norms(ir, index)
    if norms.ndim == 2:
        norms = norms[:, None, :]
    if norms.ndim != 3:
        raise ValueError(f"norms must have shape (steps+1, targets) or (steps+1, sources, "
                         f"targets), got {norms.shape}")
    if source is None:  # every source at once: root-sum-square over the sources
        per_target = np.sqrt(np.sum(norms ** 2, axis=1))
    else:
        source = check_int("source", source)
        if not -norms.shape[1] <= source < norms.shape[1]:
            raise ValueError(f"source block {source} does not exist: there are "
                             f"{norms.shape[1]}")
        per_target = norms[:, source, :]
    n_t = per_target.shape[1]
    if labels is None:
        labels = [f"response in block {t}" for t in range(n_t)]
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
        whole = np.sqrt(np.sum(per_target ** 2, axis=1))
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
    if ax.get_legend_handles_labels()[0]:  # on a white ground: the length line may cross it
        ax.legend(fontsize="small", title=f"unit impulses in {where}", title_fontsize="small",
                  frameon=True, framealpha=0.85, edgecolor="none", facecolor="white")
    return ax


def _mark_exact_zeros(ax, curves):
    """A triangle on the bottom edge where a response becomes exactly zero and stays so.

    A log axis cannot show zeros: without a mark, a finite impulse response (an
    MLP's) looks like a line that merely stops. The first zero step of each
    curve is marked in its colour, the last of them annotated, and the legend
    gets one entry for the marks.
    """
    ends = []
    for y, colour in curves:
        y = np.asarray(y, dtype=float)
        nonzero = np.flatnonzero(y != 0.0)
        if nonzero.size and nonzero[-1] < y.size - 1:
            ends.append((int(nonzero[-1]) + 1, colour, float(abs(y[nonzero[-1]]))))
    for k0, colour, _ in ends:
        _minus_inf_markers(ax, [k0], color=colour, label=None)
    marked = len(ends)
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
    if marked and entry not in ax.get_legend_handles_labels()[1]:
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
    return _finish(ax, "delay $d$ (steps)", r"$r^2$ of $u_{t-d}$ read from $x_t$",
                   integer_x=True, legend="small")


# -- block matrix and graph ----------------------------------------------------------------
def _block_matrix_of(W, sizes):
    import scipy.sparse as sp

    from itermap import BlockMatrix

    bm = getattr(W, "block_matrix", W)
    if isinstance(bm, BlockMatrix):
        S = bm.to_sparse()
        if not sp.issparse(S):  # cupyx.scipy.sparse: copy to the host
            S = S.get()
        S = S.tocoo()
        return S, bm.sizes
    if sp.issparse(W):
        S = W.tocoo()
    else:
        A = check_real_array("W", W, ndim=2) if W is not None else None
        if A is None or A.shape[0] != A.shape[1]:
            raise ValueError(f"W must be a square weight matrix, got "
                             f"{'None' if A is None else A.shape}")
        S = sp.coo_matrix(A)
    n = S.shape[0]
    sizes = (n,) if sizes is None else tuple(int(s) for s in sizes)
    if sum(sizes) != n:
        raise ValueError(f"block sizes {list(sizes)} add up to {sum(sizes)}, not {n}")
    return S, sizes


def block_matrix(W: Any, *, ax: Axes | None = None, sizes: Sequence[int] | None = None,
                 labels: Sequence[str] | None = None, markersize: float | None = None) -> Axes:
    """A spy plot of a block weight matrix with the block boundaries and labels.

    Positive entries are red, negative ones blue; row ``i`` receives from
    column ``j`` (``W[i, j]`` carries unit ``j`` to unit ``i``).

    Parameters
    ----------
    W : IterativeMap, BlockMatrix, 2-D array or sparse matrix
    ax : matplotlib Axes, optional
    sizes : sequence of int, optional
        Block sizes of a plain matrix (a BlockMatrix knows its own).
    labels : sequence of str, optional
        Block names (default ``0``, ``1``, ...).
    markersize : float, optional
        Marker size in points (default: about one matrix cell).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        A matrix that is not square, block sizes that do not add up to its size,
        labels that do not match the blocks.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import IterativeMap
    >>> from itermap.analysis import plots
    >>> mlp = IterativeMap.from_mlp([np.ones((3, 2)), -np.ones((1, 3))])
    >>> ax = plots.block_matrix(mlp, labels=["x", "h", "y"])
    >>> [line.get_label() for line in ax.get_lines()[:2]]
    ['positive (6)', 'negative (3)']
    """
    S, sizes = _block_matrix_of(W, sizes)
    S.sum_duplicates()
    n = S.shape[0]
    keep = S.data != 0
    rows, cols, vals = S.row[keep], S.col[keep], S.data[keep]
    ax = _axes(ax)
    if markersize is None:
        width_pt = ax.get_position().width * _figure_width(ax) * 72
        markersize = float(np.clip(0.9 * width_pt / max(n, 1), 0.3, 8.0))
    for mask, color, name in ((vals > 0, POSITIVE, "positive"), (vals < 0, NEGATIVE, "negative")):
        ax.plot(cols[mask], rows[mask], ls="none", marker="s", ms=markersize, mew=0,
                color=color, label=f"{name} ({int(mask.sum())})")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for o in offsets[1:-1]:
        ax.axhline(o - 0.5, color="0.3", lw=0.6, label="_boundary")
        ax.axvline(o - 0.5, color="0.3", lw=0.6, label="_boundary")
    _square(ax, -0.5, n - 0.5, invert_y=True)
    for spine in ax.spines.values():
        spine.set_visible(True)
    centers = (offsets[:-1] + offsets[1:]) / 2 - 0.5
    if labels is None:
        labels = [str(i) for i in range(len(sizes))]
    if len(labels) != len(sizes):
        raise ValueError(f"got {len(labels)} labels for {len(sizes)} blocks")
    ax.set_xticks(centers, labels)
    ax.set_yticks(centers, labels)
    ax.tick_params(length=0)
    _finish(ax, "from block $j$ (columns: units)", "to block $i$ (rows: units)")
    ax.set_title(f"$W$: {n}$\\times${n}, nnz {len(vals)}, density {len(vals) / n**2:.2g}")
    # the colour key travels with the figure (a PDF on its own has no caption)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    key: list[Any] = [Line2D([], [], ls="none", marker="s", ms=6, mew=0, color=c,
                             label=f"{name} weight ({int(np.sum(m))})")
                      for m, c, name in ((vals > 0, POSITIVE, "positive"),
                                         (vals < 0, NEGATIVE, "negative"))]
    functions = getattr(W, "functions", None) or {}
    for (i, j), g in functions.items():  # a block that is a function has no entries to draw
        ax.add_patch(Rectangle((offsets[j] - 0.5, offsets[i] - 0.5), sizes[j], sizes[i],
                               facecolor="0.85", edgecolor="0.3", hatch="//", lw=0.6,
                               zorder=0.5, label="_function"))
        ax.text(offsets[j] - 0.5 + sizes[j] / 2, offsets[i] - 0.5 + sizes[i] / 2,
                g.name.replace("(", "\n(").replace(" -> ", "\n-> "), ha="center",
                va="center", fontsize="xx-small", clip_on=True,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
    if functions:
        key.append(Rectangle((0, 0), 1, 1, facecolor="0.85", edgecolor="0.3", hatch="//",
                             label=f"function block ({len(functions)})"))
    _key(ax, key, y=-0.14, ncol=2, handletextpad=0.2)
    return ax


def _graph_layout(G):
    """Node positions: the units of each block on a ring, the rings left to right.

    A ring shows recurrent structure (chords within a block, arcs between
    blocks) where a column of units collapses onto one line. A block-level
    graph puts each block at the centre of its ring.
    """
    blocks = {}
    for node, data in G.nodes(data=True):
        # unit graphs: attribute ``block``; block graphs: the node is the block
        b = data.get("block", node if "size" in data and isinstance(node, (int, np.integer))
                     else 0)
        blocks.setdefault(int(b), []).append(node)
    pos, centre = {}, {}
    for b, nodes in blocks.items():
        nodes = sorted(nodes, key=lambda v: (str(type(v)), v))
        m = len(nodes)
        centre[b] = (float(b), 0.0)
        if m == 1:
            pos[nodes[0]] = centre[b]
            continue
        angle = np.pi / 2 - 2 * np.pi * np.arange(m) / m  # clockwise from the top
        for node, t in zip(nodes, angle):
            pos[node] = (float(b) + _RING * np.cos(t), _RING * np.sin(t))
    return pos, sorted(blocks), centre


_RING = 0.36            # ring radius, in units of the spacing between blocks
_AUTO_BLOCK_LEVEL = 300  # above this many units or edges a unit-level graph is drawn by block


def _collapse_to_blocks(G):
    """The block-level graph of a unit-level one: nnz and Frobenius norm per block pair."""
    import networkx as nx

    H = nx.DiGraph()
    sizes = {}
    for _, d in G.nodes(data=True):
        sizes[int(d.get("block", 0))] = sizes.get(int(d.get("block", 0)), 0) + 1
    H.add_nodes_from((b, {"size": n}) for b, n in sizes.items())
    acc = {}
    for u, v, d in G.edges(data=True):
        key = (int(G.nodes[u].get("block", 0)), int(G.nodes[v].get("block", 0)))
        nnz, sq = acc.get(key, (0, 0.0))
        acc[key] = (nnz + 1, sq + float(d.get("weight", 1.0)) ** 2)
    for (bu, bv), (nnz, sq) in acc.items():
        H.add_edge(bu, bv, nnz=nnz, norm=float(np.sqrt(sq)))
    return H


def _self_loops(ax, G, pos, centre, color_of, width_of, alpha):
    """Small circles just outside each node that feeds itself (networkx hides them)."""
    from matplotlib.patches import Circle

    for u, v, d in G.edges(data=True):
        if u != v:
            continue
        x, y = pos[u]
        b = int(G.nodes[u].get("block", u if "size" in G.nodes[u] else 0))
        cx, cy = centre.get(b, (x, y))
        direction = np.array([x - cx, y - cy])
        norm = float(np.hypot(*direction))
        direction = np.array([0.0, 1.0]) if norm < 1e-12 else direction / norm
        r = 0.045 if "size" not in G.nodes[u] else 0.09
        c = np.array([x, y]) + (r + 0.02) * direction
        ax.add_patch(Circle(tuple(c), r, fill=False, lw=width_of(d), ec=color_of(d),
                            alpha=alpha, zorder=1))


def sparsity_graph(G: Any, *, ax: Axes | None = None, arrows: bool | None = None,
                   node_size: float | None = None, labels: Sequence[str] | None = None,
                   level: str = "auto") -> Axes:
    """Draw a sparsity graph: each block's units on a ring, the blocks left to right.

    Edges are red for positive weights, blue for negative ones (unit-level
    graphs, edge attribute ``weight``); block-level graphs (edge attributes
    ``nnz`` and ``norm``) draw edges in grey with a width growing with
    ``norm``, and a legend gives the scale. Self-loops (a unit or a block that
    feeds itself, the recurrent part of a map) are drawn as small circles.

    Parameters
    ----------
    G : networkx.DiGraph
        From :func:`itermap.analysis.sparsity_graph`: nodes carry the
        attribute ``block`` (unit level) or ``size`` (block level).
    ax : matplotlib Axes, optional
    arrows : bool, optional
        Draw arrow heads (default: when the graph has at most 150 edges).
    node_size : float, optional
    labels : sequence of str, optional
        Block names shown under the rings.
    level : {"auto", "unit", "block"}
        ``"auto"`` draws a unit-level graph of more than 300 units or more
        than 300 edges by block, where single units and edges can no longer
        be told apart.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``G`` that is not a networkx graph.
    ValueError
        An unknown ``level``.

    Examples
    --------
    >>> import networkx as nx
    >>> from itermap.analysis import plots
    >>> G = nx.DiGraph()
    >>> G.add_nodes_from([(0, {"block": 0}), (1, {"block": 1}), (2, {"block": 1})])
    >>> G.add_edge(0, 1, weight=0.5); G.add_edge(0, 2, weight=-1.0); G.add_edge(2, 2, weight=1)
    >>> ax = plots.sparsity_graph(G, labels=["x", "h"])
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['x', 'h']
    >>> from matplotlib.patches import Circle
    >>> sum(isinstance(p, Circle) for p in ax.patches)     # the self-loop of unit 2
    1
    """
    import networkx as nx

    if not isinstance(G, nx.Graph):
        raise TypeError(f"G must be a networkx graph, got {type(G).__name__}")
    level = check_choice("level", level, ("auto", "unit", "block"))
    unit_level = any("block" in d for _, d in G.nodes(data=True))
    crowded = max(G.number_of_nodes(), G.number_of_edges()) > _AUTO_BLOCK_LEVEL
    if unit_level and (level == "block" or (level == "auto" and crowded)):
        G, unit_level = _collapse_to_blocks(G), False
    pos, blocks, centre = _graph_layout(G)
    ax = _axes(ax)
    if node_size is None:
        if unit_level:  # about 0.6 of the spacing of the units on the largest ring
            largest = max(np.unique([G.nodes[v].get("block", 0) for v in G.nodes],
                                    return_counts=True)[1], default=1)
            spacing_pt = (2 * np.pi * _RING / max(largest, 1) * ax.get_position().width
                          * _figure_width(ax) * 72 / max(len(blocks), 1))
            node_size = float(np.clip((0.6 * spacing_pt) ** 2, 1.0, 120.0))
        else:
            node_size = 120.0
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10"]
    nodes = list(G.nodes)
    block_of = {v: int(G.nodes[v].get("block", v if not unit_level else 0)) for v in nodes}
    nx.draw_networkx_nodes(G, pos, nodelist=nodes, node_size=node_size, ax=ax, linewidths=0,
                           node_color=[cmap(block_of[v] % 10) for v in nodes])
    edges = [(u, v, d) for u, v, d in G.edges(data=True) if u != v]
    loops = G.number_of_edges() - len(edges)
    n_edges = G.number_of_edges()
    if arrows is None:
        arrows = n_edges <= 150
    alpha = float(np.clip(30.0 / np.sqrt(max(n_edges, 1)), 0.15, 0.9))
    top = max((float(d.get("norm", 1.0)) for _, _, d in G.edges(data=True)), default=1.0)

    def width_of(d):
        if unit_level:
            return 0.6 if n_edges > 300 else 1.0
        return 0.6 + 2.4 * float(d.get("norm", 1.0)) / max(top, 1e-300)

    def color_of(d):
        if unit_level:
            return POSITIVE if d.get("weight", 1.0) > 0 else NEGATIVE
        return "0.35"

    if edges:
        kw = dict(arrowstyle="-|>", arrowsize=6, node_size=node_size,
                  connectionstyle="arc3,rad=0.15") if arrows else {}
        nx.draw_networkx_edges(G, pos, edgelist=[(u, v) for u, v, _ in edges], ax=ax,
                               edge_color=[color_of(d) for _, _, d in edges],
                               width=[width_of(d) for _, _, d in edges], alpha=alpha,
                               arrows=arrows, **kw)
    if loops:
        _self_loops(ax, G, pos, centre, color_of, width_of, alpha)
    from matplotlib.lines import Line2D

    if unit_level:
        handles = [Line2D([], [], color=POSITIVE, label="positive weight"),
                   Line2D([], [], color=NEGATIVE, label="negative weight")]
    else:
        handles = [Line2D([], [], color="0.35", lw=0.6 + 2.4 * f,
                          label=f"$\\|W_{{ij}}\\|_F$ = {f * top:.3g}") for f in (0.25, 1.0)]
    if loops:
        handles.append(Line2D([], [], color="0.35", marker="o", ls="", mfc="none", ms=6,
                              label=f"self-loop ({loops})"))
    if labels is None:
        labels = [f"block {b}" for b in blocks]
    # the node colours, under the x label: one entry per block (the colours repeat after ten)
    nodes_key = [Line2D([], [], color=cmap(b % 10), marker="o", ls="", ms=5, label=name)
                 for b, name in list(zip(blocks, labels))[:10]]
    key = ax.add_artist(_legend_below(ax, nodes_key, ncol=min(len(nodes_key), 5),
                                      title="node colour: block"))
    key.set_clip_on(False)  # add_artist clips to the Axes: layouts would leave the key out
    if G.number_of_edges():  # the edge key above the Axes stays ax.get_legend()
        _key(ax, handles, y=1.02, ncol=len(handles))
    ax.set_xticks([float(b) for b in blocks], labels[:len(blocks)])
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", length=0, labelbottom=True)
    ax.set_xlim(min(blocks, default=0) - 0.55, max(blocks, default=0) + 0.55)
    ax.set_ylim(-0.55, 0.55)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("block (units on a ring)" if unit_level else
                  "block (edge width: norm of the block)")
    return ax


# -- parameter scans ---------------------------------------------------------------------
def orbit_diagram(od: Any, *, ax: Axes | None = None, component: int = 0,
                  xlabel: str = "parameter", **kwargs: Any) -> Axes:
    """A bifurcation (orbit) diagram: the states kept after the transient per parameter.

    Parameters
    ----------
    od : OrbitDiagram
        An object with ``values`` (P,) and ``states`` (P, keep, dim), as
        returned by :func:`itermap.analysis.orbit_diagram`.
    ax : matplotlib Axes, optional
    component : int
        The state component on the vertical axis.
    xlabel : str
        Name of the parameter.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``od`` without ``values`` or ``states``, a non-integer ``component``.
    ValueError
        States that do not match the values, a component that does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import systems
    >>> from itermap.analysis import orbit_diagram, plots
    >>> od = orbit_diagram(systems.logistic, np.linspace(3.0, 4.0, 50), np.array([0.3]),
    ...                    transient=100, keep=20)
    >>> ax = plots.orbit_diagram(od, xlabel="$r$")
    >>> ax.get_lines()[0].get_xdata().shape
    (1000,)
    """
    values = _floats(od, "values", "od")
    states = _floats(od, "states", "od")
    if states.ndim == 2:
        states = states[..., None]
    if states.ndim != 3 or states.shape[0] != values.shape[0]:
        raise ValueError(f"states {states.shape} do not match values {values.shape}")
    component = check_int("component", component)
    if not -states.shape[2] <= component < states.shape[2]:
        raise ValueError(f"component {component} does not exist: the state has dim "
                         f"{states.shape[2]}")
    keep = states.shape[1]
    x = np.repeat(values, keep)
    y = states[:, :, component].reshape(-1)
    # a pixel per point for many points, small dots for fewer
    marker = dict(marker=".", ms=0.8) if x.size < 20000 else dict(marker=",")
    style = _style(dict(ls="none", color="k", alpha=0.6, **marker), kwargs)
    ax = _axes(ax)
    ax.plot(x, y, **style)
    _finish(ax, xlabel, f"state $x_{{{component % states.shape[2]}}}$ (after transient)")
    ax.set_xlim(values.min(), values.max())
    return ax


def lyapunov_scan(scan: Any, *, ax: Axes | None = None, xlabel: str = "gain $g$",
                  reference: Any = None, reference_label: str = "theory",
                  reference_values: Any = None, all_exponents: bool = False,
                  **kwargs: Any) -> Axes:
    """The largest Lyapunov exponent against a parameter, with the zero line.

    Parameters
    ----------
    scan : LyapunovScan
        An object with ``values`` (P,), ``exponents`` (P, k) and optionally
        ``stderr`` (P, k), as returned by :func:`itermap.analysis.lyapunov_scan`.
    ax : matplotlib Axes, optional
    xlabel : str
        Name of the parameter.
    reference : array, optional
        A prediction to draw as a dashed black line (e.g. the mean-field
        exponent): shape (P,) at the scan's values, or any length with
        ``reference_values``.
    reference_label : str
    reference_values : array, optional
        The parameter values of ``reference``, for a curve on a finer grid
        than the scan (a kink, such as the mean field's at gain 1, then shows).
    all_exponents : bool
        Also draw the other exponents (lighter).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``scan`` without ``values`` or ``exponents``.
    ValueError
        Exponents that do not match the values, a ``reference`` that matches
        neither the values nor ``reference_values``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import mean_field_exponent, plots
    >>> g = np.array([0.5, 1.0, 2.0])
    >>> scan = {"values": g, "exponents": np.log(g)[:, None]}
    >>> ax = plots.lyapunov_scan(scan, reference=mean_field_exponent(g))
    >>> ax.get_xlabel()
    'gain $g$'
    """
    values = _floats(scan, "values", "scan")
    exps = _floats(scan, "exponents", "scan")
    if exps.ndim == 1:
        exps = exps[:, None]
    if exps.ndim != 2 or exps.shape[0] != values.shape[0]:
        raise ValueError(f"exponents {exps.shape} do not match values {values.shape}")
    err = _field(scan, "stderr", None, required=False)
    err = None if err is None else _np(err).reshape(exps.shape)
    ax = _axes(ax)
    if all_exponents:
        for i in range(1, exps.shape[1]):
            ax.plot(values, exps[:, i], color="0.6", lw=0.7,
                    label="other exponents" if i == 1 else "_")
    ax.errorbar(values, exps[:, 0], yerr=None if err is None else err[:, 0],
                label=r"largest exponent $\lambda_1$",
                **_style(dict(marker="o", ms=3, lw=1.0), kwargs))
    if reference is not None:
        ref = np.asarray(_np(reference), dtype=float)
        ref_x = values if reference_values is None else np.asarray(_np(reference_values),
                                                                   dtype=float)
        if ref.shape != ref_x.shape:
            raise ValueError(f"reference has shape {ref.shape}; expected {ref_x.shape} "
                             f"(the scan's values, or reference_values)")
        ax.plot(ref_x, ref, ls="--", color="k", lw=1.0, label=reference_label)
    _zero_line(ax)
    return _finish(ax, xlabel, f"Lyapunov exponent ({EXPONENT_UNIT})", legend="small")


# -- style and output -------------------------------------------------------------------------
def paper_style(columns: int = 1, *,
                height: float | None = None) -> contextlib.AbstractContextManager:
    """Context manager: the shipped paper style, sized for one or two columns.

    Inside it new figures are ``COLUMN_WIDTHS[columns]`` inches wide, fonts
    are 7-8 pt, and PDFs embed TrueType fonts (``pdf.fonttype: 42``).

    Parameters
    ----------
    columns : {1, 2}
    height : float, optional
        Figure height in inches (default: 0.68 x width for one column, 2.6
        inches for two).

    Returns
    -------
    context manager
        Entering it yields ``(width, height)`` in inches.

    Raises
    ------
    ValueError
        ``columns`` other than 1 or 2, a height that is not positive.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from itermap.analysis.plots import paper_style
    >>> with paper_style(columns=1):
    ...     fig, ax = plt.subplots()
    >>> float(fig.get_figwidth())
    3.4
    >>> plt.close(fig)
    """
    if isinstance(columns, bool) or not isinstance(columns, int) or columns not in COLUMN_WIDTHS:
        raise ValueError(f"columns must be 1 or 2, got {columns!r}")
    width = COLUMN_WIDTHS[columns]
    if height is None:
        height = 0.68 * width if columns == 1 else 2.6
    height = check_real("height", height, positive=True)
    # checked here, not on entering the block: a bad argument fails at the call
    return _styled(width, height)


@contextlib.contextmanager
def _styled(width, height):
    plt = _plt()
    with plt.style.context(STYLE), plt.rc_context({"figure.figsize": (width, height)}):
        yield (width, height)


def save_figure(fig: Any, path: str | os.PathLike, *, formats: Sequence[str] = ("pdf", "png"),
                dpi: float = 200) -> list[str]:
    """Save ``fig`` as ``path.pdf`` and ``path.png`` (the suffix of ``path`` is replaced).

    Parameters
    ----------
    fig : matplotlib Figure or Axes
        What to save (an Axes saves its figure).
    path : str or path-like
        The file name stem; a suffix is replaced by each format's.
    formats : sequence of str
        File formats, ``("pdf", "png")`` by default.
    dpi : float
        Resolution of raster formats.

    Returns
    -------
    list of str
        The written files.

    Raises
    ------
    TypeError
        ``fig`` that is neither a Figure nor an Axes, a ``path`` that is not a
        non-empty path.
    ValueError
        A ``path`` that is a folder.

    Examples
    --------
    >>> import os, tempfile
    >>> import matplotlib.pyplot as plt
    >>> from itermap.analysis.plots import save_figure
    >>> fig, ax = plt.subplots()
    >>> paths = save_figure(fig, os.path.join(tempfile.mkdtemp(), "fig"))
    >>> [os.path.basename(p) for p in paths]
    ['fig.pdf', 'fig.png']
    """
    if not hasattr(fig, "savefig"):  # an Axes: save its figure
        if not hasattr(getattr(fig, "figure", None), "savefig"):
            raise TypeError(f"fig must be a matplotlib Figure or Axes, got {type(fig).__name__}")
        fig = fig.figure
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise TypeError(f"path must be a non-empty file path, got {path!r}")
    if Path(path).is_dir():
        raise ValueError(f"path {os.fspath(path)!r} is a folder: give a file name stem")
    stem = os.fspath(Path(path).with_suffix(""))
    out = []
    for fmt in formats:
        target = f"{stem}.{fmt}"
        meta = {"CreationDate": None} if fmt == "pdf" else {}
        fig.savefig(target, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta or None)
        out.append(target)
    return out


# -- training (issue 14) ----------------------------------------------------------------
def training_history(history: Any, *, ax: Axes | None = None, metric: str = "loss") -> Axes:
    """Loss or accuracy per epoch of a :class:`itermap.TrainHistory`, with validation.

    Parameters
    ----------
    history : TrainHistory or dict
        With ``loss``, ``accuracy`` and optionally ``val_loss``, ``val_accuracy``.
    ax : matplotlib Axes, optional
    metric : {"loss", "accuracy"}

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
    ax.plot(epochs, train, color=NEGATIVE, label="train")
    if val is not None and np.any(np.isfinite(np.asarray(_np(val), dtype=float))):
        ax.plot(epochs, np.asarray(_np(val), dtype=float), color=POSITIVE, label="validation")
        ax.legend(frameon=False)
    if metric == "loss" and np.all(train > 0):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"training {metric}")
    return ax


def accuracy_vs_parameters(result: Any, *, ax: Axes | None = None) -> Axes:
    """Test accuracy (mean ± std over seeds) against trainable parameters, one point per model.

    The legend title says what the error bars are (the sample standard
    deviation over the seeds, and how many); models of near-equal size are
    dodged sideways so that their error bars do not overlap.

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
    if acc.ndim == 1:
        acc = acc[:, None]
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
    ax.set_xlabel("trainable parameters" + (" (near-equal sizes dodged sideways)"
                                            if np.any(shift != 0) else ""))
    ax.set_ylabel("test accuracy")
    what = (f"mean ± std over {_plural(seeds, 'seed')}" if seeds > 1
            else "1 seed: no error bars")
    ax.legend(frameon=False, fontsize="small", title=what, title_fontsize="small")
    return ax


def _dodge(values, *, close=0.03, step=0.012):
    """Offsets in decades that spread points whose values lie within ``close`` decades.

    Equal-parameter models sit at nearly one x: without a dodge their error
    bars are drawn on top of each other.
    """
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


def fixed_points_pca(fixed_points: Any, states: Any, *, ax: Axes | None = None,
                     components: Sequence[int] = (0, 1), max_lines: int = 50) -> Axes:
    """Fixed points in the top principal components of trajectories, by stability.

    The principal axes are those of ``states``; trajectories are drawn thin and grey
    behind, stable points as filled blue dots, points with one unstable direction
    (saddles) as red crosses, others as open red circles.

    Parameters
    ----------
    fixed_points : FixedPoints or dict
        With ``points`` (m, dim) and ``n_unstable`` (m,).
    states : array of shape (T, n, dim) or (N, dim)
        States along trajectories; a 3-D array is drawn as ``n`` lines.
    ax : matplotlib Axes, optional
    components : pair of int
        The principal components on the axes.
    max_lines : int
        At most this many trajectories drawn.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For points whose dimension is not that of ``states``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> rng = np.random.default_rng(0)
    >>> ax = plots.fixed_points_pca({"points": rng.normal(size=(3, 4)),
    ...                              "n_unstable": np.array([0, 1, 2])},
    ...                             rng.normal(size=(10, 5, 4)))
    >>> ax.get_xlabel()
    'PC 1'
    """
    pts = np.asarray(_np(_field(fixed_points, "points", param="fixed_points")), dtype=float)
    n_unstable = _field(fixed_points, "n_unstable", param="fixed_points")
    n_unstable = np.asarray(_np(n_unstable), dtype=int)
    S = np.asarray(_np(states), dtype=float)
    flat = S.reshape(-1, S.shape[-1])
    if pts.ndim != 2 or pts.shape[1] != flat.shape[1]:
        raise ValueError(f"points of shape {pts.shape} do not match states of dim "
                         f"{flat.shape[1]}")
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    axes = vt[list(components)].T
    ax = _axes(ax)
    if S.ndim == 3:
        for i in range(min(S.shape[1], max_lines)):
            p = (S[:, i] - mean) @ axes
            ax.plot(p[:, 0], p[:, 1], color="0.8", lw=0.5, zorder=1)
    else:
        p = (flat - mean) @ axes
        ax.scatter(p[:, 0], p[:, 1], s=2, color="0.8", zorder=1)
    q = (pts - mean) @ axes
    for mask, name, style in (
            (n_unstable == 0, "stable", dict(marker="o", color=NEGATIVE, s=30)),
            (n_unstable == 1, "saddle (1 unstable)", dict(marker="x", color=POSITIVE, s=30)),
            (n_unstable > 1, "unstable (>1)", dict(marker="o", facecolors="none",
                                                   edgecolors=POSITIVE, s=30))):
        if mask.any():
            ax.scatter(q[mask, 0], q[mask, 1], label=f"{name} ({int(mask.sum())})", zorder=3,
                       **style)  # type: ignore[arg-type]
    ax.set_xlabel(f"PC {components[0] + 1}")
    ax.set_ylabel(f"PC {components[1] + 1}")
    ax.legend(frameon=False, fontsize="small")
    return ax


__all__ += ["training_history", "accuracy_vs_parameters", "fixed_points_pca"]


# -- covariant vectors and finite-time exponents ----------------------------------------
def clv_angles(result: Any, *, ax: Axes | None = None, pair: Sequence[int] = (0, 1),
               bins: int = 60, log: bool = True, label: str | None = None) -> Axes:
    """Histogram of the angle between two covariant Lyapunov vectors.

    Near-tangencies (angles near 0) of the expanding and contracting
    directions mark a non-hyperbolic attractor (Henon's, for one).

    Parameters
    ----------
    result : CovariantVectors or dict
        An object with ``angles`` of shape (n_saved, [B,] k, k).
    ax : matplotlib Axes, optional
    pair : (int, int)
        The vectors compared (0-based, most expanding first).
    bins : int
        Bins over ``[0, pi/2]``.
    log : bool
        Logarithmic density axis (the tail near 0 is what matters).
    label : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For angles not of shape ``(n_saved, [B,] k, k)``, or a ``pair`` that does
        not name two different vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> ang = np.zeros((100, 2, 2)); ang[:, 0, 1] = np.linspace(0.01, 1.5, 100)
    >>> plots.clv_angles({"angles": ang}).get_xlabel()
    'angle $\\\\theta_{12}$ (rad)'
    """
    ang = _np(_field(result, "angles", param="result")).astype(float)
    bins = check_int("bins", bins, 1)
    log = check_bool("log", log)
    if ang.ndim < 3 or ang.shape[-1] != ang.shape[-2]:
        raise ValueError(f"angles must have shape (n_saved, [B,] k, k), got {ang.shape}")
    i, j = (int(p) for p in pair)
    k = ang.shape[-1]
    if not (0 <= i < k and 0 <= j < k) or i == j:
        raise ValueError(f"pair must name two different vectors in 0..{k - 1}, got {pair}")
    a = ang[..., i, j].ravel()
    ax = _axes(ax)
    ax.hist(a, bins=int(bins), range=(0.0, np.pi / 2), density=True, histtype="stepfilled",
            alpha=0.75, label=label, log=bool(log))
    ax.set_xlim(0.0, np.pi / 2)
    ax.set_xlabel(f"angle $\\theta_{{{i + 1}{j + 1}}}$ (rad)")
    ax.set_ylabel("density")
    if label:
        ax.legend()
    return ax


def finite_time_histogram(result: Any, *, ax: Axes | None = None, max_exponents: int = 4,
                          bins: int = 50) -> Axes:
    """Histograms of the finite-time exponents, one per exponent, with their means.

    Parameters
    ----------
    result : FiniteTimeExponents or dict
        An object with ``exponents`` (n_windows, [B,] k) and optionally
        ``window``.
    ax : matplotlib Axes, optional
    max_exponents : int
        Draw at most the first this many exponents.
    bins : int

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For exponents not of shape ``(n_windows, [B,] k)``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> ex = np.random.default_rng(0).normal([0.4, -1.6], 0.1, size=(500, 2))
    >>> len(plots.finite_time_histogram({"exponents": ex, "window": 20}).patches) > 0
    True
    """
    ex = _np(_field(result, "exponents", param="result")).astype(float)
    bins = check_int("bins", bins, 1)
    max_exponents = check_int("max_exponents", max_exponents, 1)
    if ex.ndim not in (2, 3):
        raise ValueError(f"exponents must have shape (n_windows, [B,] k), got {ex.shape}")
    ex = ex.reshape(-1, ex.shape[-1])
    window = _field(result, "window", None, required=False)
    ax = _axes(ax)
    for i in range(min(ex.shape[1], int(max_exponents))):
        col = ex[:, i][np.isfinite(ex[:, i])]
        if col.size == 0:
            continue
        patches = ax.hist(col, bins=int(bins), density=True, histtype="step", lw=1.2,
                          label=f"$\\lambda_{{{i + 1}}}$")[2]
        ax.axvline(col.mean(), color=patches[0].get_edgecolor(),  # type: ignore[index,union-attr]
                   lw=0.8, ls=":")
    _zero_line(ax, orientation="v")
    title = "" if window is None else f" over {int(window)} steps"
    ax.set_xlabel(f"finite-time exponent{title} ({EXPONENT_UNIT})")
    ax.set_ylabel("density")
    ax.legend()
    return ax
__all__ += ["clv_angles", "finite_time_histogram"]


# -- basins and continuation -------------------------------------------------------------
def basins(result: Any, shape: Sequence[int], *,
           extent: tuple[float, float, float, float] | None = None,
           ax: Axes | None = None, labels: Sequence[str] | None = None) -> Axes:
    """A 2-D slice of state space coloured by basin, with escape and non-periodic starts.

    Each attractor (a fixed point or periodic orbit) has a colour; bounded
    starts on no periodic orbit (the basin of a strange attractor) are dark
    violet, starts that escape to infinity pale. The legend gives each
    share of the slice.

    Parameters
    ----------
    result : Basins
        From :func:`itermap.analysis.basins` over starts on a grid, in
        row-major order (``np.meshgrid(xs, ys)`` raveled).
    shape : (int, int)
        The grid's shape ``(len(ys), len(xs))``.
    extent : (x0, x1, y0, y1), optional
        The slice's coordinates, for the axes.
    ax : matplotlib Axes, optional
    labels : list of str, optional
        A name per attractor for the legend (default: the point's index and period).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        When ``shape`` does not hold one cell per start, or ``labels`` does
        not name every attractor.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import basins, plots
    >>> m = itermap.IterativeMap(np.array([[2.0, 0.0], [0.0, 2.0]]))
    >>> g = np.linspace(-1, 1, 21)
    >>> X, Y = np.meshgrid(g, g)
    >>> b = basins(m, np.column_stack([X.ravel(), Y.ravel()]), steps=100)
    >>> ax = plots.basins(b, X.shape, extent=(-1, 1, -1, 1))
    >>> len(ax.images)
    1

    The Hénon map's strange attractor against escape:

    >>> b = basins(itermap.systems.henon(), 2 * np.column_stack([X.ravel(), Y.ravel()]),
    ...            steps=200)
    >>> ax = plots.basins(b, X.shape, extent=(-2, 2, -2, 2))
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['bounded, no periodic orbit: 39.5%', 'escape: 60.5%']
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    lab = np.asarray(_np(_field(result, "labels", param="result")))
    periods = np.asarray(_np(_field(result, "periods", param="result")))
    if shape is None or isinstance(shape, str | bytes) or not hasattr(shape, "__iter__") \
            or getattr(shape, "ndim", 1) == 0:  # a 0-d array has __iter__ but cannot iterate
        raise TypeError(f"shape must be a pair of ints (rows, columns), got {shape!r}")
    shape = tuple(check_int("shape", s, 1) for s in shape)
    if len(shape) != 2 or shape[0] * shape[1] != lab.size:
        raise ValueError(f"shape {shape} does not hold the {lab.size} starts of the result")
    k = periods.size
    if labels is not None and len(labels) != k:
        raise ValueError(f"labels: got {len(labels)} names for {k} attractors")
    base = _plt().get_cmap("tab10" if k <= 10 else "tab20")
    # image values: 0 escaped (-2), 1 bounded on no listed attractor (-1), 2 + i attractor i
    colours = [_ESCAPE_COLOUR, _APERIODIC_COLOUR] + [base(i % base.N) for i in range(k)]
    ax = _axes(ax)
    ax.imshow(np.clip(lab, -2, None).reshape(shape) + 2, origin="lower",
              cmap=ListedColormap(colours), vmin=-0.5, vmax=k + 1.5, extent=extent,
              aspect="auto", interpolation="nearest")
    share = [float(np.mean(lab == i)) for i in range(k)]
    names = list(labels) if labels is not None else [
        f"attractor {i} (period {int(p)})" for i, p in enumerate(periods)]
    handles = [Patch(color=colours[i + 2], label=f"{names[i]}: {share[i]:.1%}")
               for i in range(k) if share[i] > 0]
    bounded = float(np.mean(lab == -1))
    if bounded > 0:
        aperiodic = _field(result, "aperiodic_fraction", None, required=False)
        what = ("bounded, no periodic orbit" if aperiodic is not None
                and abs(float(aperiodic) - bounded) < 1e-12 else "bounded, other")
        handles.append(Patch(color=colours[1], label=f"{what}: {bounded:.1%}"))
    escaped = float(np.mean(lab == -2))
    if escaped > 0:
        handles.append(Patch(fc=colours[0], ec="0.6", lw=0.5, label=f"escape: {escaped:.1%}"))
    _legend_below(ax, handles, ncol=min(len(handles), 2), handlelength=1.0,
                  title="fate of the starts in the slice")
    ax.set_xlabel("slice coordinate 1")
    ax.set_ylabel("slice coordinate 2")
    return ax


_ESCAPE_COLOUR = "#f4f1e8"     # pale: the starts that go to infinity
_APERIODIC_COLOUR = "#4b2a6e"  # dark violet: a bounded non-periodic (strange) attractor


def continuation(result: Any, *, component: int = 0, ax: Axes | None = None,
                 xlabel: str = "parameter", color: str = "k") -> Axes:
    """A branch of fixed points: stable solid, unstable dashed, bifurcations marked.

    Parameters
    ----------
    result : Continuation
        From :func:`itermap.analysis.continuation`.
    component : int, default 0
        The state coordinate drawn against the parameter.
    ax : matplotlib Axes, optional
    xlabel : str, default "parameter"
    color : colour of the branch

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    TypeError
        ``result`` is not a continuation result, or ``component`` is not an int.
    ValueError
        ``component`` names no component of the points.

    Examples
    --------
    >>> import numpy as np
    >>> import itermap
    >>> from itermap.analysis import continuation, plots
    >>> make = lambda u: itermap.IterativeMap(np.array([[2.0]]), bias=np.array([u]))
    >>> c = continuation(make, np.linspace(1.0, -1.0, 41), np.array([0.99]))
    >>> ax = plots.continuation(c)
    >>> sorted({line.get_linestyle() for line in ax.lines})
    ['-', '--']
    """
    lam = np.asarray(_np(_field(result, "parameters", param="result")), dtype=float)
    pts = np.asarray(_np(_field(result, "points", param="result")), dtype=float)
    stable = np.asarray(_np(_field(result, "stable", param="result")), dtype=bool)
    component = check_int("component", component)
    if not -pts.shape[1] <= component < pts.shape[1]:
        raise ValueError(f"component {component} does not exist: the points have dim "
                         f"{pts.shape[1]}")
    bifs = _field(result, "bifurcations", [], required=False) or []
    ax = _axes(ax)
    y = pts[:, component]
    # runs of equal stability, each drawn with its neighbour point so the line is unbroken
    start = 0
    for i in range(1, lam.size + 1):
        if i == lam.size or stable[i] != stable[start]:
            stop = min(i + 1, lam.size)
            ax.plot(lam[start:stop], y[start:stop], color=color, lw=1.2,
                    ls="-" if stable[start] else "--")
            start = i
    markers = {"fold": ("o", POSITIVE), "period doubling": ("s", NEGATIVE),
               "Neimark-Sacker": ("D", "#27ae60")}
    seen = set()
    for b in bifs:
        mk, col = markers.get(b["kind"], ("x", "0.3"))
        ax.scatter([b["parameter"]], [b["point"][component]], marker=mk, color=col, zorder=3,
                   s=28, label=None if b["kind"] in seen else b["kind"])
        seen.add(b["kind"])
    if seen:
        ax.legend(fontsize="small", frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"fixed point $x_{{{component}}}$")
    return ax
__all__ += ["basins", "continuation"]


# -- parallel-in-time evaluation ----------------------------------------------------------------
def newton_lyapunov(scan: Any, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Newton iterations to convergence against the largest Lyapunov exponent.

    Converged runs are filled markers, runs that did not converge within
    ``steps`` iterations open ones on the dotted line at ``T``; colour is the
    gain. Gonzalez et al. (arXiv:2508.16817): few iterations while the
    exponent is negative, about ``T`` once it is positive.

    Parameters
    ----------
    scan : NewtonLyapunovScan
        An object with ``gains`` (G,), ``lyapunov`` (G, trials), ``iterations``
        (G, trials), ``converged`` (G, trials) and ``steps``, as returned by
        :func:`itermap.analysis.newton_lyapunov_scan`.
    ax : matplotlib Axes, optional
    **kwargs
        Passed to ``ax.scatter``.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For ``lyapunov``, ``iterations`` and ``converged`` of different shapes, or
        not ``(gains, trials)``.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> scan = {"gains": np.array([0.5, 2.5]), "lyapunov": np.array([[-0.6], [0.2]]),
    ...         "iterations": np.array([[4], [128]]), "converged": np.array([[True], [False]]),
    ...         "steps": 128}
    >>> ax = plots.newton_lyapunov(scan)
    >>> ax.get_ylabel()
    'Newton iterations'
    """
    gains = _np(_field(scan, "gains", param="scan")).astype(float).ravel()
    lyap = _np(_field(scan, "lyapunov", param="scan")).astype(float)
    iters = _np(_field(scan, "iterations", param="scan")).astype(float)
    conv = _np(_field(scan, "converged", param="scan")).astype(bool)
    steps = int(_field(scan, "steps", param="scan"))
    if lyap.ndim == 1:
        lyap, iters, conv = lyap[:, None], iters[:, None], conv[:, None]
    if not (lyap.shape == iters.shape == conv.shape) or lyap.shape[0] != gains.size:
        raise ValueError(f"lyapunov {lyap.shape}, iterations {iters.shape} and converged "
                         f"{conv.shape} must share the shape (gains={gains.size}, trials)")
    ax = _axes(ax)
    g = np.broadcast_to(gains[:, None], lyap.shape)
    vmin, vmax = float(gains.min()), float(gains.max())
    kw: dict[str, Any] = dict(s=18, cmap="viridis", vmin=vmin,
                              vmax=vmax if vmax > vmin else vmin + 1)
    kw.update(kwargs)
    points = ax.scatter(lyap[conv], iters[conv], c=g[conv], label="converged", **kw)
    if np.any(~conv):
        open_kw = {k: v for k, v in kw.items() if k not in ("cmap", "vmin", "vmax", "c")}
        ax.scatter(lyap[~conv], iters[~conv], facecolors="none", edgecolors="k",
                   label=f"not converged in T={steps}", **open_kw)
    ax.axhline(steps, color="0.5", ls="--", lw=0.8, label=f"T = {steps} (exact after T)")
    _zero_line(ax, orientation="v")
    ax.set_yscale("log")
    ax.set_xlabel(rf"largest Lyapunov exponent $\lambda_1$ ({EXPONENT_UNIT})")
    ax.set_ylabel("Newton iterations")
    if np.any(conv):
        ax.figure.colorbar(points, ax=ax, label="gain $g$")
    # a framed legend above the data, so its marker is not read as a point
    ax.legend(fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 1.02), ncols=2,
              frameon=True, borderaxespad=0.0)
    return ax


__all__ += ["newton_lyapunov"]


# -- sequence models on the continuum -----------------------------------------------------
_SEQUENCE_PANELS = ("impulse", "memory", "spectrum")


def sequence_comparison(result: Any, panel: str = "impulse", *,
                        ax: Axes | None = None) -> Axes:
    """One panel of a :class:`~itermap.analysis.SequenceComparison`, one line per model.

    Parameters
    ----------
    result : SequenceComparison
        From :func:`itermap.analysis.compare_sequence_models`.
    panel : {"impulse", "memory", "spectrum"}
        The impulse responses (log scale; an exact zero is not drawn), the memory
        capacity per delay, or the top Lyapunov exponents (``-inf`` drawn at the
        bottom edge, as open markers).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        An unknown ``panel``.
    TypeError
        A result without the comparison's fields.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> r = {"names": ["a", "b"], "impulse": np.array([[1.0, 0.5], [1.0, 0.0]]),
    ...      "r2": np.ones((2, 3)), "capacity": [3.0, 3.0],
    ...      "exponents": np.array([[-0.1], [-np.inf]])}
    >>> ax = plots.sequence_comparison(r, "spectrum")
    >>> ax.get_xlabel()
    'exponent index $i$'
    """
    panel = check_choice("panel", panel, _SEQUENCE_PANELS)
    names = list(_field(result, "names", param="result"))
    ax = _axes(ax)
    if panel == "impulse":
        rows = np.asarray(_np(_field(result, "impulse", param="result")), dtype=float)
        for name, row in zip(names, rows):
            k = np.arange(row.size)
            keep = row > 0
            ax.semilogy(k[keep], row[keep], marker=".", ms=3, label=name)
        return _finish(ax, "steps $k$ after the impulse", "response (relative to $k = 0$)",
                       integer_x=True, legend="small")
    if panel == "memory":
        rows = np.asarray(_np(_field(result, "r2", param="result")), dtype=float)
        caps = list(_field(result, "capacity", param="result"))
        for name, row, c in zip(names, rows, caps):
            ax.plot(np.arange(1, row.size + 1), row, marker=".", ms=4,
                    label=f"{name} (MC = {float(c):.2f})")
        ax.set_ylim(-0.03, 1.03)
        return _finish(ax, "delay $d$ (steps)", r"$r^2$ of $u_{t-d}$ read from $x_t$",
                       integer_x=True, legend="small")
    rows = np.asarray(_np(_field(result, "exponents", param="result")), dtype=float)
    finite = rows[np.isfinite(rows)]
    low = float(finite.min()) if finite.size else -1.0
    bottom = low - 0.1 * max(1.0, abs(low))
    for name, row in zip(names, rows):
        i = np.arange(1, row.size + 1)
        line, = ax.plot(i[np.isfinite(row)], row[np.isfinite(row)], marker="o", ms=4,
                        label=name)
        ninf = np.isneginf(row)
        if ninf.any():
            ax.plot(i[ninf], np.full(ninf.sum(), bottom), marker="o", ms=5, ls="none",
                    mfc="none", color=line.get_color())
    ax.axhline(0.0, color="0.6", lw=0.8)
    return _finish(ax, "exponent index $i$", r"$\lambda_i$ (open: $-\infty$)",
                   integer_x=True, legend="small")


__all__ += ["sequence_comparison"]
