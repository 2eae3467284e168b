"""Sparsity graphs of a network, unit by unit or block by block."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_choice
from ._common import NEGATIVE, POSITIVE, _axes, _figure_width, _legend_below, _two_line_xlabel

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _graph_layout(G):
    """Node positions: each block's units on a ring (a block node at its centre), the rings
    left to right."""
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
    sizes = Counter(int(d.get("block", 0)) for _, d in G.nodes(data=True))
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

    Unit-level edges are red for positive weights, blue for negative ones; block-level
    edges grey, wider with ``norm`` (a legend gives the scale); self-loops small circles.

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
        ``"auto"`` draws a unit-level graph of more than 300 units or edges by block.

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
    arrows = n_edges <= 150 if arrows is None else arrows
    alpha = float(np.clip(30.0 / np.sqrt(max(n_edges, 1)), 0.15, 0.9))
    top = max((float(d.get("norm", 1.0)) for _, _, d in G.edges(data=True)), default=1.0)

    def width_of(d):
        if unit_level:
            return 0.6 if n_edges > 300 else 1.0
        return 0.6 + 2.4 * float(d.get("norm", 1.0)) / max(top, 1e-300)

    def color_of(d):
        return (POSITIVE if d.get("weight", 1.0) > 0 else NEGATIVE) if unit_level else "0.35"

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
    ax.set_xlabel("block (units on a ring)" if unit_level else
                  "block (edge width: norm of the block)")
    drop = _two_line_xlabel(ax, "block\n(units on a ring)" if unit_level else
                            "block\n(edge width: block norm)")
    # the x label says "block": the bare index ("block 0" ran into "block 1" in a narrow panel)
    labels = [str(b) for b in blocks] if labels is None else labels
    # the node colours, under the x label: one entry per block (the colours repeat after ten)
    nodes_key = [Line2D([], [], color=cmap(b % 10), marker="o", ls="", ms=5, label=name)
                 for b, name in list(zip(blocks, labels))[:10]]
    key = ax.add_artist(_legend_below(ax, nodes_key, ncol=min(len(nodes_key), 5),
                                      title="node colour: block", fit=True,
                                      below=drop))
    key.set_clip_on(False)  # add_artist clips to the Axes: layouts would leave the key out
    if G.number_of_edges():  # the edge key (ax.get_legend()) under the node key: above the
        # Axes a title would sit on it (titles do not move above legends); a key's height in
        # inches is set by its fonts, not by the layout
        height = key.get_window_extent().height / key.figure.dpi
        _legend_below(ax, handles, ncol=len(handles), below=height + 0.04 + drop,
                      fit=True)
    ax.set_xticks([float(b) for b in blocks], labels[:len(blocks)])
    ax.set_yticks([])
    ax.spines[["left", "right", "top"]].set_visible(False)
    ax.tick_params(axis="x", length=0, labelbottom=True)
    ax.set_xlim(min(blocks, default=0) - 0.55, max(blocks, default=0) + 0.55)
    ax.set_ylim(-0.55, 0.55)
    ax.set_aspect("equal", adjustable="box")
    return ax
