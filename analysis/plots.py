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
from pathlib import Path

import numpy as np

__all__ = [
    "trajectory",
    "lyapunov_spectrum",
    "lyapunov_history",
    "lyapunov_panels",
    "eigenvalues",
    "impulse_response",
    "block_matrix",
    "sparsity_graph",
    "orbit_diagram",
    "lyapunov_scan",
    "paper_style",
    "save_figure",
    "newton_lyapunov",
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


def _field(obj, name, default=None, *, required=True):
    """``obj.name`` or ``obj[name]``; a ValueError naming the field when required and absent."""
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
    elif hasattr(obj, name):
        return getattr(obj, name)
    if required:
        raise TypeError(f"expected an object with a field {name!r}, got {type(obj).__name__}")
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


def _zero_line(ax, *, orientation="h"):
    kw = dict(color="0.45", lw=0.8, ls="--", zorder=0, label="_zero")
    return ax.axhline(0.0, **kw) if orientation == "h" else ax.axvline(0.0, **kw)


# -- trajectories -------------------------------------------------------------------
def trajectory(traj, *, dims=(0, 1), ax=None, time=False, max_lines=20, **kwargs):
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
    states = _np(_field(traj, "states") if not hasattr(traj, "ndim") else traj)
    if states.ndim == 2:
        states = states[:, None, :]
    if states.ndim != 3:
        raise ValueError(f"states must have shape (n, dim) or (n, B, dim), got {states.shape}")
    n, B, dim = states.shape
    times = _field(traj, "times", None, required=False) if not hasattr(traj, "ndim") else None
    times = np.arange(n) if times is None else _np(times)
    dims = tuple(int(d) for d in np.atleast_1d(dims))
    if dim == 1 and not time:
        dims = ()  # the return plot
    for d in dims:
        if not -dim <= d < dim:
            raise ValueError(f"component {d} does not exist: the state has dim {dim}")
    ax = _axes(ax)
    B = min(B, int(max_lines))
    if time:
        for c, d in enumerate(dims):  # one colour per component, one line per trajectory
            for b in range(B):
                style = dict(color=f"C{c}", lw=0.8, alpha=1.0 if B == 1 else 0.7)
                style.update(kwargs)
                ax.plot(times, states[:, b, d], label=f"$x_{{{d % dim}}}$" if b == 0 else "_",
                        **style)
        ax.set_xlabel("step $k$")
        ax.set_ylabel("state component")
        if len(dims) > 1:
            ax.legend()
        return ax
    style = dict(ls="none", marker=".", ms=1.5, alpha=0.7)
    style.update(kwargs)
    if dim == 1:
        for b in range(B):
            ax.plot(states[:-1, b, 0], states[1:, b, 0], label="_", **style)
        ax.set_xlabel("state $x_k$")
        ax.set_ylabel("next state $x_{k+1}$")
        return ax
    if len(dims) != 2:
        raise ValueError(f"a phase portrait needs two components, got dims={dims}")
    i, j = dims
    for b in range(B):
        ax.plot(states[:, b, i], states[:, b, j], label="_", **style)
    ax.set_xlabel(f"state $x_{{{i % dim}}}$")
    ax.set_ylabel(f"state $x_{{{j % dim}}}$")
    return ax


# -- Lyapunov spectra -------------------------------------------------------------------
def lyapunov_spectrum(result, *, ax=None, label=None, **kwargs):
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
        exps = _np(_field(result, "exponents"))
        err = _field(result, "stderr", None, required=False)
        err = None if err is None else _np(err)
        dky = _field(result, "kaplan_yorke_dimension", None, required=False)
    exps = np.atleast_1d(exps).astype(float)
    if exps.ndim != 1:
        raise ValueError(f"exponents must be one-dimensional, got shape {exps.shape}")
    if err is not None and np.shape(err) != exps.shape:
        err = None
    idx = np.arange(1, exps.size + 1)
    ax = _axes(ax)
    kw = dict(fmt="o", ms=3.5, capsize=2, lw=0.9)
    kw.update(kwargs)
    ax.errorbar(idx, exps, yerr=err, label=label or "exponents", **kw)
    _zero_line(ax)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, exps.size + 0.5)
    ax.set_xlabel("index $i$")
    ax.set_ylabel(f"Lyapunov exponent $\\lambda_i$ ({EXPONENT_UNIT})")
    if dky is not None and np.isfinite(float(dky)):
        ax.text(0.97, 0.95, f"$D_{{KY}} = {float(dky):.3g}$", transform=ax.transAxes,
                ha="right", va="top", bbox=dict(fc="white", ec="none", alpha=0.85, pad=1.5))
    if label:
        ax.legend()
    return ax


def lyapunov_history(result, *, ax=None, max_exponents=6):
    """How the exponent estimates converge with the number of steps averaged.

    Parameters
    ----------
    result : LyapunovSpectrum
        An object with ``history`` (n_checkpoints, k) and ``history_steps``
        (n_checkpoints,).
    ax : matplotlib Axes, optional
    max_exponents : int
        Draw at most the first this many exponents.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> res = {"history": np.array([[0.5, -1.4], [0.42, -1.6]]), "history_steps": [10, 1000]}
    >>> plots.lyapunov_history(res).get_xscale()
    'log'
    """
    hist = _np(_field(result, "history")).astype(float)
    steps = _np(_field(result, "history_steps")).astype(float)
    if hist.ndim == 1:
        hist = hist[:, None]
    if hist.ndim != 2 or hist.shape[0] != steps.shape[0]:
        raise ValueError(f"history {hist.shape} does not match history_steps {steps.shape}")
    ax = _axes(ax)
    marker = dict(marker=".", ms=3) if steps.size <= 30 else {}
    for i in range(min(hist.shape[1], int(max_exponents))):
        ax.plot(steps, hist[:, i], label=f"$\\lambda_{{{i + 1}}}$", **marker)
    _zero_line(ax)
    if np.all(steps > 0) and steps.size > 1 and steps.max() / steps.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel("steps averaged")
    ax.set_ylabel(f"estimate ({EXPONENT_UNIT})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              handlelength=1.2)
    return ax


def lyapunov_panels(result, *, fig=None):
    """Two panels: the spectrum and its convergence history.

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
def eigenvalues(fixed_points, *, ax=None):
    """Jacobian eigenvalues of fixed points in the complex plane, with the unit circle.

    Eigenvalues of stable fixed points are drawn as blue dots, those of
    unstable ones as red crosses.

    Parameters
    ----------
    fixed_points : FixedPoints or array
        An object with ``eigenvalues`` (m, dim) and optionally ``stable``
        (m,), or the complex eigenvalues themselves (any shape).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> ax = plots.eigenvalues(np.array([[0.5 + 0.5j, 0.5 - 0.5j]]))
    >>> sorted(c.get_label() for c in ax.collections)
    ['stable (1)']
    """
    if hasattr(fixed_points, "ndim") or isinstance(fixed_points, (list, tuple)):
        ev = np.asarray(_np(fixed_points), dtype=complex)
        stable = None
    else:
        ev = np.asarray(_np(_field(fixed_points, "eigenvalues")), dtype=complex)
        stable = _field(fixed_points, "stable", None, required=False)
    ev2 = ev.reshape(-1, ev.shape[-1]) if ev.ndim >= 1 and ev.size else ev.reshape(0, 1)
    if stable is None:
        stable = np.abs(ev2).max(axis=1, initial=0.0) < 1.0
    stable = np.asarray(_np(stable), dtype=bool).reshape(-1)
    if stable.shape[0] != ev2.shape[0]:
        raise ValueError(f"stable has {stable.shape[0]} entries for {ev2.shape[0]} fixed points")
    ax = _axes(ax)
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(t), np.sin(t), color="0.45", lw=0.8, ls="--", label="unit circle")
    for mask, name, style in ((stable, "stable", dict(marker="o", color=NEGATIVE, s=14)),
                              (~stable, "unstable", dict(marker="x", color=POSITIVE, s=18))):
        pts = ev2[mask].reshape(-1)
        if pts.size:
            ax.scatter(pts.real, pts.imag, label=f"{name} ({int(mask.sum())})", lw=0.9,
                       zorder=3, **style)
    r = max(1.1, 1.1 * float(np.abs(ev2).max(initial=0.0)))
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.8", lw=0.5, zorder=0)
    ax.axvline(0, color="0.8", lw=0.5, zorder=0)
    ax.set_xlabel(r"Re $\mu$")
    ax.set_ylabel(r"Im $\mu$")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False,
              handletextpad=0.3, borderaxespad=0.0)
    return ax


# -- impulse response ---------------------------------------------------------------------
def impulse_response(ir, *, ax=None, source=None, labels=None, label=None, mark_length=True,
                     total=False, **kwargs):
    """Norm of the response in each block against the step, on a log axis.

    Parameters
    ----------
    ir : ImpulseResponse or array
        An object with ``norms`` of shape ``(steps + 1, n_sources, n_targets)``
        (optionally ``length``), or the norms array itself, ``(steps + 1,
        n_targets)`` or ``(steps + 1, n_sources, n_targets)``.
    ax : matplotlib Axes, optional
    source : int, optional
        The row of ``norms`` (source block) to show; by default each target
        block shows its response to impulses in every source at once (the
        root-sum-square over the sources).
    total : bool
        Also draw the norm of the whole response (all target blocks) in black.
    labels : sequence of str, optional
        Names of the target blocks (default ``block 0``, ``block 1``, ...).
    label : str, optional
        A prefix for the legend entries (to compare several networks on one Axes).
    mark_length : bool
        Draw a dotted vertical line at a finite ``length``.
    **kwargs
        Passed to ``ax.plot``.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from itermap.analysis import plots
    >>> norms = np.array([[1.0, 0.0], [0.0, 0.5], [0.0, 0.0]])   # (steps + 1, targets)
    >>> ax = plots.impulse_response(norms, labels=["h1", "h2"])
    >>> [line.get_label() for line in ax.get_lines()]
    ['h1', 'h2']

    Notes
    -----
    Exact zeros cannot sit on a log axis: a finite impulse response (an MLP)
    shows as lines that end.
    """
    if hasattr(ir, "ndim"):
        norms, length = _np(ir), None
    else:
        norms = _np(_field(ir, "norms"))
        length = _field(ir, "length", None, required=False)
    norms = np.asarray(norms, dtype=float)
    if norms.ndim == 2:
        norms = norms[:, None, :]
    if norms.ndim != 3:
        raise ValueError(f"norms must have shape (steps+1, targets) or (steps+1, sources, "
                         f"targets), got {norms.shape}")
    if source is None:  # every source at once: root-sum-square over the sources
        per_target = np.sqrt(np.sum(norms ** 2, axis=1))
    else:
        if not -norms.shape[1] <= source < norms.shape[1]:
            raise ValueError(f"source block {source} does not exist: there are "
                             f"{norms.shape[1]}")
        per_target = norms[:, source, :]
    n_t = per_target.shape[1]
    if labels is None:
        labels = [f"block {t}" for t in range(n_t)]
    if len(labels) != n_t:
        raise ValueError(f"got {len(labels)} labels for {n_t} target blocks")
    steps = np.arange(per_target.shape[0])
    ax = _axes(ax)
    for t in range(n_t):
        y = _finite_positive(per_target[:, t])
        if np.all(np.isnan(y)):
            continue
        name = labels[t] if label is None else f"{label}: {labels[t]}"
        ax.plot(steps, y, marker=".", ms=3, label=name, **kwargs)
    if total:
        y = _finite_positive(np.sqrt(np.sum(per_target ** 2, axis=1)))
        ax.plot(steps, y, color="k", lw=1.2, marker=".", ms=3,
                label="total" if label is None else f"{label}: total")
    ax.set_yscale("log")
    _readable_log_axis(ax.yaxis)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if mark_length and length is not None:
        ax.axvline(float(length), color="0.3", ls=":", lw=0.9,
                   label=("" if label is None else f"{label}: ") + f"length {int(length)}")
    ax.set_xlabel("step $k$ after the impulse")
    ax.set_ylabel(r"response norm $\|\delta x_k\|$ (log)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return ax


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
        A = _np(W)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"weights must be a square matrix, got shape {A.shape}")
        S = sp.coo_matrix(A)
    n = S.shape[0]
    sizes = (n,) if sizes is None else tuple(int(s) for s in sizes)
    if sum(sizes) != n:
        raise ValueError(f"block sizes {list(sizes)} add up to {sum(sizes)}, not {n}")
    return S, sizes


def block_matrix(W, *, ax=None, sizes=None, labels=None, markersize=None):
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
        fig = ax.figure
        width_pt = ax.get_position().width * fig.get_figwidth() * 72
        markersize = float(np.clip(0.9 * width_pt / max(n, 1), 0.3, 8.0))
    for mask, color, name in ((vals > 0, POSITIVE, "positive"), (vals < 0, NEGATIVE, "negative")):
        ax.plot(cols[mask], rows[mask], ls="none", marker="s", ms=markersize, mew=0,
                color=color, label=f"{name} ({int(mask.sum())})")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for o in offsets[1:-1]:
        ax.axhline(o - 0.5, color="0.3", lw=0.6, label="_boundary")
        ax.axvline(o - 0.5, color="0.3", lw=0.6, label="_boundary")
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_aspect("equal")
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
    ax.set_xlabel("from block $j$ (columns: units)")
    ax.set_ylabel("to block $i$ (rows: units)")
    ax.set_title(f"$W$: {n}$\\times${n}, nnz {len(vals)}, density {len(vals) / n**2:.2g}")
    return ax


def _graph_layout(G):
    blocks = {}
    for node, data in G.nodes(data=True):
        # unit graphs: attribute ``block``; block graphs: the node is the block
        b = data.get("block", node if "size" in data and isinstance(node, (int, np.integer))
                     else 0)
        blocks.setdefault(int(b), []).append(node)
    largest = max((len(v) for v in blocks.values()), default=1)
    pos = {}
    for b, nodes in blocks.items():
        nodes = sorted(nodes, key=lambda v: (str(type(v)), v))
        m = len(nodes)
        half = 0.5 * (m / largest)
        ys = np.linspace(half, -half, m) if m > 1 else np.zeros(1)
        for node, y in zip(nodes, ys):
            pos[node] = (float(b), float(y))
    return pos, sorted(blocks)


def sparsity_graph(G, *, ax=None, arrows=None, node_size=None, labels=None):
    """Draw a sparsity graph laid out by block: one column of nodes per block.

    Edges are red for positive weights, blue for negative ones (unit-level
    graphs, edge attribute ``weight``); block-level graphs (edge attributes
    ``nnz`` and ``norm``) draw edges in grey with a width growing with ``norm``.

    Parameters
    ----------
    G : networkx.DiGraph
        Nodes carry the attribute ``block``.
    ax : matplotlib Axes, optional
    arrows : bool, optional
        Draw arrow heads (default: when the graph has at most 150 edges).
    node_size : float, optional
    labels : sequence of str, optional
        Block names shown under the columns.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import networkx as nx
    >>> from itermap.analysis import plots
    >>> G = nx.DiGraph()
    >>> G.add_nodes_from([(0, {"block": 0}), (1, {"block": 1}), (2, {"block": 1})])
    >>> G.add_edge(0, 1, weight=0.5); G.add_edge(0, 2, weight=-1.0)
    >>> ax = plots.sparsity_graph(G, labels=["x", "h"])
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['x', 'h']
    """
    import networkx as nx

    if not isinstance(G, nx.Graph):
        raise TypeError(f"expected a networkx graph, got {type(G).__name__}")
    pos, blocks = _graph_layout(G)
    ax = _axes(ax)
    if node_size is None:  # about 0.6 of the vertical spacing of the largest block
        counts = np.unique([round(p[0]) for p in pos.values()], return_counts=True)[1]
        largest = int(counts.max(initial=1))
        height_pt = ax.get_position().height * ax.figure.get_figheight() * 72
        node_size = float(np.clip((0.6 * height_pt / 1.24 / max(largest, 1)) ** 2, 1.0, 200.0))
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10"]
    nodes = list(G.nodes)
    column = {v: int(round(pos[v][0])) for v in nodes}
    colors = [cmap(column[v] % 10) for v in nodes]
    nx.draw_networkx_nodes(G, pos, nodelist=nodes, node_color=colors, node_size=node_size,
                           ax=ax, linewidths=0)
    edges = list(G.edges(data=True))
    if arrows is None:
        arrows = len(edges) <= 150
    if edges:
        if all("weight" in d for _, _, d in edges):
            ecolors = [POSITIVE if d["weight"] > 0 else NEGATIVE for _, _, d in edges]
            widths = 0.6 if len(edges) > 300 else 1.0
        else:
            norms = np.array([float(d.get("norm", 1.0)) for _, _, d in edges])
            ecolors = ["0.35"] * len(edges)
            widths = list(0.6 + 2.4 * norms / max(norms.max(), 1e-300))
        alpha = float(np.clip(30.0 / np.sqrt(len(edges)), 0.15, 0.9))
        kw = dict(arrowstyle="-|>", arrowsize=6, node_size=node_size,
                  connectionstyle="arc3,rad=0.15") if arrows else {}
        nx.draw_networkx_edges(G, pos, edgelist=[(u, v) for u, v, _ in edges], ax=ax,
                               edge_color=ecolors, width=widths, alpha=alpha, arrows=arrows,
                               **kw)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=POSITIVE, label="positive weight"),
               Line2D([], [], color=NEGATIVE, label="negative weight")]
    if edges and all("weight" in d for _, _, d in edges):
        ax.legend(handles=handles, loc="upper center", ncol=2, fontsize="small",
                  frameon=False, borderaxespad=0.0)
    if labels is None:
        labels = [f"block {b}" for b in blocks]
    ax.set_xticks([float(b) for b in blocks], labels[:len(blocks)])
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", length=0, labelbottom=True)
    ax.set_xlim(min(blocks, default=0) - 0.5, max(blocks, default=0) + 0.5)
    ax.set_ylim(-0.62, 0.78)  # headroom above the nodes for the legend
    unit_level = any("block" in d for _, d in G.nodes(data=True))
    ax.set_xlabel("layer / block (units stacked vertically)" if unit_level else "block")
    return ax


# -- parameter scans ---------------------------------------------------------------------
def orbit_diagram(od, *, ax=None, component=0, xlabel="parameter", **kwargs):
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
    values = _np(_field(od, "values")).astype(float)
    states = _np(_field(od, "states")).astype(float)
    if states.ndim == 2:
        states = states[..., None]
    if states.ndim != 3 or states.shape[0] != values.shape[0]:
        raise ValueError(f"states {states.shape} do not match values {values.shape}")
    if not -states.shape[2] <= component < states.shape[2]:
        raise ValueError(f"component {component} does not exist: the state has dim "
                         f"{states.shape[2]}")
    keep = states.shape[1]
    x = np.repeat(values, keep)
    y = states[:, :, component].reshape(-1)
    style = dict(ls="none", marker=",", color="k", alpha=0.6)
    if x.size < 20000:
        style.update(marker=".", ms=0.8)
    style.update(kwargs)
    ax = _axes(ax)
    ax.plot(x, y, **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"state $x_{{{component % states.shape[2]}}}$ (after transient)")
    ax.set_xlim(values.min(), values.max())
    return ax


def lyapunov_scan(scan, *, ax=None, xlabel="gain $g$", reference=None, reference_label="theory",
                  all_exponents=False, **kwargs):
    """The largest Lyapunov exponent against a parameter, with the zero line.

    Parameters
    ----------
    scan : LyapunovScan
        An object with ``values`` (P,), ``exponents`` (P, k) and optionally
        ``stderr`` (P, k), as returned by :func:`itermap.analysis.lyapunov_scan`.
    ax : matplotlib Axes, optional
    xlabel : str
        Name of the parameter.
    reference : array of shape (P,), optional
        A prediction to draw as a dashed line (e.g. the mean-field exponent).
    reference_label : str
    all_exponents : bool
        Also draw the other exponents (lighter).

    Returns
    -------
    matplotlib.axes.Axes

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
    values = _np(_field(scan, "values")).astype(float)
    exps = _np(_field(scan, "exponents")).astype(float)
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
    kw = dict(marker="o", ms=3, lw=1.0)
    kw.update(kwargs)
    ax.errorbar(values, exps[:, 0], yerr=None if err is None else err[:, 0],
                label=r"largest exponent $\lambda_1$", **kw)
    if reference is not None:
        ref = np.asarray(_np(reference), dtype=float)
        if ref.shape != values.shape:
            raise ValueError(f"reference has shape {ref.shape}; expected {values.shape}")
        ax.plot(values, ref, ls="--", color="k", lw=1.0, label=reference_label)
    _zero_line(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"Lyapunov exponent ({EXPONENT_UNIT})")
    ax.legend(fontsize="small")
    return ax


# -- style and output -------------------------------------------------------------------------
@contextlib.contextmanager
def paper_style(columns=1, *, height=None):
    """Context manager: the shipped paper style, sized for one or two columns.

    Inside it new figures are ``COLUMN_WIDTHS[columns]`` inches wide, fonts
    are 7-8 pt, and PDFs embed TrueType fonts (``pdf.fonttype: 42``).

    Parameters
    ----------
    columns : {1, 2}
    height : float, optional
        Figure height in inches (default: 0.68 x width for one column, 2.6
        inches for two).

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
    if columns not in COLUMN_WIDTHS:
        raise ValueError(f"columns must be 1 or 2, got {columns!r}")
    width = COLUMN_WIDTHS[columns]
    if height is None:
        height = 0.68 * width if columns == 1 else 2.6
    height = float(height)
    if not np.isfinite(height) or height <= 0:
        raise ValueError(f"height must be a positive number of inches, got {height}")
    plt = _plt()
    with plt.style.context(STYLE), plt.rc_context({"figure.figsize": (width, height)}):
        yield (width, height)


def save_figure(fig, path, *, formats=("pdf", "png"), dpi=200):
    """Save ``fig`` as ``path.pdf`` and ``path.png`` (the suffix of ``path`` is replaced).

    Returns
    -------
    list of str
        The written files.

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
        fig = fig.figure
    stem = os.fspath(Path(path).with_suffix(""))
    out = []
    for fmt in formats:
        target = f"{stem}.{fmt}"
        meta = {"CreationDate": None} if fmt == "pdf" else {}
        fig.savefig(target, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta or None)
        out.append(target)
    return out


# -- parallel-in-time evaluation ----------------------------------------------------------------
def newton_lyapunov(scan, *, ax=None, **kwargs):
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
    gains = _np(_field(scan, "gains")).astype(float).ravel()
    lyap = _np(_field(scan, "lyapunov")).astype(float)
    iters = _np(_field(scan, "iterations")).astype(float)
    conv = _np(_field(scan, "converged")).astype(bool)
    steps = int(_field(scan, "steps"))
    if lyap.ndim == 1:
        lyap, iters, conv = lyap[:, None], iters[:, None], conv[:, None]
    if not (lyap.shape == iters.shape == conv.shape) or lyap.shape[0] != gains.size:
        raise ValueError(f"lyapunov {lyap.shape}, iterations {iters.shape} and converged "
                         f"{conv.shape} must share the shape (gains={gains.size}, trials)")
    ax = _axes(ax)
    g = np.broadcast_to(gains[:, None], lyap.shape)
    vmin, vmax = float(gains.min()), float(gains.max())
    kw = dict(s=18, cmap="viridis", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1)
    kw.update(kwargs)
    points = ax.scatter(lyap[conv], iters[conv], c=g[conv], label="converged", **kw)
    if np.any(~conv):
        open_kw = {k: v for k, v in kw.items() if k not in ("cmap", "vmin", "vmax", "c")}
        ax.scatter(lyap[~conv], iters[~conv], facecolors="none", edgecolors="k",
                   label=f"not converged in T={steps}", **open_kw)
    ax.axhline(steps, color="0.5", ls=":", lw=0.8)
    _zero_line(ax, orientation="v")
    ax.set_yscale("log")
    ax.set_xlabel(rf"largest Lyapunov exponent $\lambda_1$ ({EXPONENT_UNIT})")
    ax.set_ylabel("Newton iterations")
    if np.any(conv):
        ax.figure.colorbar(points, ax=ax, label="gain $g$")
    ax.legend(fontsize="small", loc="upper left")
    return ax
