"""What every figure module shares: the colours, reading results by field, Axes set-up."""

from __future__ import annotations

from typing import Any

import numpy as np

POSITIVE = "#c0392b"  # red: excitatory / positive weights
NEGATIVE = "#2e6db4"  # blue: inhibitory / negative weights
EXPONENT_UNIT = "nats/step"


# -- helpers --------------------------------------------------------------------
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, figsize=None):
    if ax is None:  # a layout keeps the keys under or beside the Axes in the figure; tight,
        # not constrained: a later plt.tight_layout() then neither warns nor refuses
        _, ax = _plt().subplots(figsize=figsize, layout="tight")
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):  # the whole array from plt.subplots, a Figure, ...
        raise TypeError(f"ax must be one matplotlib Axes (axes[i] of a grid), got "
                        f"{type(ax).__name__}")
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
    if "axes" in kwargs:  # matplotlib's own error for it speaks of resetting an artist
        raise TypeError("axes= is no style option: pass the Axes to draw on as ax=")
    return {**defaults, **kwargs}


def _floats(obj, name, param):
    """Field ``name`` of ``obj`` as a float NumPy array (TypeError naming ``param``)."""
    return _np(_field(obj, name, param=param)).astype(float)


def _finish(ax, xlabel, ylabel, *, integer_x=False, log_y=False, legend=None):
    """Labels, integer steps, a log axis and a small legend (``legend="small"``)."""
    if log_y:
        ax.set_yscale("log")
        _readable_log_axis(ax.yaxis)
    if integer_x:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if legend == "small":
        ax.legend(fontsize="small")
    return ax


def _square(ax, lo, hi, *, invert_y=False):
    """Equal-aspect Axes showing ``[lo, hi]`` on both axes (y from hi to lo if inverted)."""
    ax.set_xlim(lo, hi)
    ax.set_ylim((hi, lo) if invert_y else (lo, hi))
    ax.set_aspect("equal")


def _zero_line(ax, *, orientation="h"):
    # dotted and grey: dashed black lines are predictions (the mean field)
    kw = dict(color="0.45", lw=0.8, ls=":", zorder=0, label="_zero")
    return ax.axhline(0.0, **kw) if orientation == "h" else ax.axvline(0.0, **kw)


# -- fixed points ---------------------------------------------------------------------
def _plural(n: int, word: str, plural: str | None = None) -> str:
    """``"1 fixed point"``, ``"3 fixed points"``."""
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _legend_below(ax, handles=None, *, ncol=2, title=None, below=0.0, fit=False, **kwargs):
    """A legend centred under the Axes, below its tick labels and x label (and ``below``
    inches lower still: under another key); ``fit``: fewer columns while it is wider than
    the Axes' column of the grid (it would run under the next panel of a row)."""
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties
    from matplotlib.transforms import ScaledTranslation

    rc = mpl.rcParams
    size = FontProperties(size=rc["xtick.labelsize"]).get_size_in_points()
    label = FontProperties(size=rc["axes.labelsize"]).get_size_in_points()
    drop = (rc["xtick.major.size"] + rc["xtick.major.pad"] + 1.25 * size + rc["axes.labelpad"]
            + 1.3 * label + 2.0) / 72.0 + below
    shift = ax.transAxes + ScaledTranslation(0.0, -drop, ax.figure.dpi_scale_trans)
    kw = _style(dict(loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=shift,
                     ncols=ncol, frameon=False, fontsize="small", borderaxespad=0.0,
                     handletextpad=0.3, columnspacing=1.0, title=title, title_fontsize="small"),
                kwargs)
    legend = ax.legend(**kw) if handles is None else ax.legend(handles=handles, **kw)
    while fit and kw["ncols"] > 1 and legend.get_window_extent().width > _slot_width(ax):
        kw["ncols"] -= 1
        legend = ax.legend(**kw) if handles is None else ax.legend(handles=handles, **kw)
    return legend


def _two_line_xlabel(ax, two_lines: str) -> float:
    """The x label as ``two_lines`` where on one line it is wider than the Axes (before a
    layout narrows them it ran past the figure or into the next panel's y label); returns
    the height the second line adds, in inches (0 where one line fits): keys under the
    Axes go that much lower."""
    label = ax.xaxis.label
    if label.get_window_extent().width <= ax.bbox.width:
        return 0.0
    one = label.get_window_extent().height
    label.set_text(two_lines)
    return (label.get_window_extent().height - one) / ax.figure.dpi


def _slot_width(ax) -> float:
    """Pixels across the grid columns ``ax`` spans (less a margin): the room under it."""
    spec = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
    if spec is None:
        return float(ax.bbox.width)
    columns = spec.get_gridspec().get_geometry()[1]
    return 0.95 * float(ax.figure.bbox.width) * len(spec.colspan) / columns
