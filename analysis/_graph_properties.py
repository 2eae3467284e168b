"""Darji's graph measures of a map's recurrent structure, computed by networkx."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import networkx as nx
import numpy as np
import scipy.sparse as sp

import itermap

from ._checks import block_list, check_bool, check_int
from ._graph import _as_block_matrix, _functions_of, _host_csr

__all__ = ["GraphProperties", "graph_properties"]

# all-pairs measures are O(n m): about a second at 1,000 nodes, minutes at 5,000
DEFAULT_MAX_NODES = 2000


@itermap.saveable
@dataclass(frozen=True)
class GraphProperties(itermap.Result):
    """Darji's measures of a graph (see :func:`graph_properties`).

    Attributes
    ----------
    nodes, edges : int
        Size of the graph (an undirected edge counts once).
    density : float
        ``nx.density``: edges over the possible ``n (n - 1)`` (halved if undirected).
    diameter, average_shortest_path : float
        Of the largest (strongly) connected component, of ``component_nodes`` nodes.
    degree_mean, degree_var, eccentricity_mean, eccentricity_var : float
        Mean and population variance over the nodes (eccentricity: over the
        component).
    closeness_mean, closeness_var, betweenness_mean, betweenness_var : float
        Of ``nx.closeness_centrality`` and ``nx.betweenness_centrality``
        (normalised).
    edge_betweenness_mean, edge_betweenness_var : float
        Of ``nx.edge_betweenness_centrality`` over the edges.
    component_nodes : int
        Nodes of the largest (strongly) connected component.
    directed : bool
        Whether the measures are those of the directed graph.

    Examples
    --------
    >>> import networkx as nx
    >>> import itermap
    >>> from itermap.analysis import graph_properties
    >>> graph_properties(itermap.from_graph(nx.complete_graph(4)), blocks=[1]).density
    1.0
    """

    _schema: ClassVar[dict[str, str]] = {
        **{name: "float" for name in (
            "density", "diameter", "average_shortest_path", "degree_mean", "degree_var",
            "eccentricity_mean", "eccentricity_var", "closeness_mean", "closeness_var",
            "betweenness_mean", "betweenness_var", "edge_betweenness_mean",
            "edge_betweenness_var")},
        "nodes": "int", "edges": "int", "component_nodes": "int", "directed": "bool"}

    nodes: int
    edges: int
    density: float
    diameter: float
    average_shortest_path: float
    degree_mean: float
    degree_var: float
    eccentricity_mean: float
    eccentricity_var: float
    closeness_mean: float
    closeness_var: float
    betweenness_mean: float
    betweenness_var: float
    edge_betweenness_mean: float
    edge_betweenness_var: float
    component_nodes: int
    directed: bool


def _graph_of(weights, blocks, directed, max_nodes):
    """The networkx graph of the units of ``blocks`` (self-loops dropped)."""
    bm, input_block = _as_block_matrix(weights, "map")
    n_blocks = len(bm.sizes)
    if blocks is None:
        keep = [i for i in range(n_blocks) if i != input_block]
        if not keep:
            raise ValueError("blocks: the map has no block besides its input block")
    elif not (keep := block_list(blocks, n_blocks)):
        raise ValueError("blocks must name at least one block")
    off = bm.offsets
    units = np.concatenate([np.arange(off[b], off[b + 1]) for b in sorted(keep)])
    if units.size > max_nodes:  # refused before any graph is built
        raise ValueError(f"max_nodes: the graph has {units.size} nodes, more than "
                         f"max_nodes={max_nodes}; all-pairs measures cost O(n m) and are "
                         f"refused, not sampled (raise max_nodes to wait for them)")
    S = sp.coo_matrix(_host_csr(bm)[units][:, units])
    cls = nx.DiGraph if directed else nx.Graph
    G = cls()
    G.add_nodes_from(range(units.size))
    G.add_edges_from((int(j), int(i)) for i, j in zip(S.row, S.col) if i != j)
    node = {int(u): k for k, u in enumerate(units)}
    for i, j in _functions_of(weights):     # a function of block j: any unit may drive any
        if i in keep and j in keep:
            G.add_edges_from((node[a], node[b]) for a in range(off[j], off[j + 1])
                             for b in range(off[i], off[i + 1]) if a != b)
    return G


def graph_properties(map: Any, *, blocks: Sequence[int] | None = None, directed: bool = False,
                     max_nodes: int = DEFAULT_MAX_NODES) -> GraphProperties:
    """Darji's graph measures of a map's recurrent structure, computed by networkx.

    One node per unit of ``blocks``, an edge ``j -> i`` per nonzero ``W[i, j]``
    (self-loops dropped, as in Darji's graphs). A function block ``(i, j)``
    has no unit-level weights: every unit of block ``j`` gets an edge to every
    unit of block ``i`` (the structure of a general function's Jacobian).

    Parameters
    ----------
    map : IterativeMap, BlockMatrix or square matrix
        The weights.
    blocks : list of int, optional
        The blocks whose units form the graph; default every block but the input
        block (``blocks=[1]``: the hidden graph of :func:`itermap.from_graph`).
    directed : bool
        The directed graph (degrees in + out), or (default) the undirected one with
        an edge where either direction is nonzero.
    max_nodes : int
        The largest graph measured (all-pairs measures cost ``O(n m)``: a larger
        graph is refused, not sampled).

    Returns
    -------
    GraphProperties
        Distance measures are on the largest (strongly) connected component; for
        a graph with no edge they are 0.

    Raises
    ------
    ValueError
        More than ``max_nodes`` nodes, blocks that do not exist.
    TypeError
        Something without a weight matrix, options of the wrong type.

    References
    ----------
    .. [1] S. Darji, "Exploring the sparsity of recurrent neural networks through
       random graphs", arXiv:2407.20601 (2024).
    .. [2] A. Hagberg, D. Schult, P. Swart, "Exploring network structure, dynamics,
       and function using NetworkX", SciPy (2008).

    Examples
    --------
    >>> import networkx as nx
    >>> import itermap
    >>> from itermap.analysis import graph_properties
    >>> m = itermap.from_graph(nx.cycle_graph(8), rng=0)
    >>> g = graph_properties(m, blocks=[1])
    >>> g.nodes, g.edges, g.diameter, g.degree_mean
    (8, 8, 4.0, 2.0)
    """
    directed = check_bool("directed", directed)
    max_nodes = check_int("max_nodes", max_nodes, 1)
    G = _graph_of(map, blocks, directed, max_nodes)
    n = G.number_of_nodes()
    comps = nx.strongly_connected_components(G) if directed else nx.connected_components(G)
    H = G.subgraph(max(comps, key=len))
    if H.number_of_nodes() > 1:
        ecc = nx.eccentricity(H)
        diameter, aspl = float(max(ecc.values())), float(nx.average_shortest_path_length(H))
    else:
        ecc, diameter, aspl = {0: 0}, 0.0, 0.0
    deg = [d for _, d in G.degree()]
    return GraphProperties(
        nodes=n, edges=G.number_of_edges(), density=float(nx.density(G)),
        diameter=diameter, average_shortest_path=aspl, **_pairs("degree", deg),
        **_pairs("eccentricity", ecc.values()),
        **_pairs("closeness", nx.closeness_centrality(G).values()),
        **_pairs("betweenness", nx.betweenness_centrality(G).values()),
        **_pairs("edge_betweenness", nx.edge_betweenness_centrality(G).values()),
        component_nodes=H.number_of_nodes(), directed=directed)


def _pairs(name, values):
    """``{name_mean, name_var}``: the mean and population variance (0 for no values)."""
    a = np.asarray(list(values), dtype=float)
    return {f"{name}_mean": float(a.mean()) if a.size else 0.0,
            f"{name}_var": float(a.var()) if a.size else 0.0}
