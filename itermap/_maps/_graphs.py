"""Networks whose recurrent structure is a (networkx) graph (Darji, arXiv 2407.20601)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._core._checks import check_bool, check_choice, check_int, check_memory, check_real, named
from .._core._rng import as_rng
from .._core._types import RngLike
from ._activations import get_activation
from ._blocks import BlockMatrix
from ._network import IterativeMap

__all__ = ["from_graph", "random_graph_rnn"]

# graphs above this many hidden units are refused by from_graph's dense block level
_MAX_BLOCK_UNITS = 20_000


def _check_graph(G):
    import networkx as nx

    if not isinstance(G, nx.Graph):
        raise TypeError(f"G must be a networkx Graph or DiGraph, got {type(G).__name__}")
    if G.is_multigraph():
        raise TypeError("G must be a simple Graph or DiGraph, not a multigraph")
    if G.number_of_nodes() == 0:
        raise ValueError("G has no nodes")
    return G


def _node_subset(name, nodes, index):
    """Positions of ``nodes`` (None: every node) in the graph's node order."""
    if nodes is None:
        return np.arange(len(index))
    if isinstance(nodes, np.ndarray) and nodes.ndim == 1:
        nodes = nodes.tolist()
    if isinstance(nodes, str | bytes) or not isinstance(nodes, Sequence):
        raise TypeError(f"{name} must be a list of nodes of G or None, got {nodes!r}")
    out = []
    for v in nodes:
        try:
            out.append(index[v])
        except (KeyError, TypeError):
            raise ValueError(f"{name}: {v!r} is not a node of G") from None
    if not out:
        raise ValueError(f"{name} must name at least one node")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} names a node twice")
    return np.asarray(out)


def _edge_values(G, rows, cols, edges, weight, gen, std):
    """Values of the hidden weights: the edges' ``weight`` attribute, or random normals."""
    if weight is None:
        return gen.normal(0.0, std, size=len(rows))
    vals = []
    for u, v, d in edges:
        if weight not in d:
            raise ValueError(f"weight: edge ({u!r}, {v!r}) has no attribute {weight!r}")
        w = d[weight]
        if isinstance(w, numbers.Real) and not isinstance(w, bool):
            try:
                w = float(w)
            except OverflowError:  # an int beyond float range
                w = np.inf
        if not isinstance(w, float) or not np.isfinite(w):
            raise ValueError(f"weight: edge ({u!r}, {v!r}) has {weight}={w!r}, not a finite "
                             f"real number")
        vals.append(w)
    return np.asarray(vals, dtype=float)


def _unit_pattern(G, index):
    """(rows, cols, edges): ``W[row, col]`` carries node ``col`` to node ``row``."""
    rows, cols, edges = [], [], []
    for u, v, d in G.edges(data=True):
        rows.append(index[v])
        cols.append(index[u])
        edges.append((u, v, d))
        if not G.is_directed() and u != v:
            rows.append(index[u])
            cols.append(index[v])
            edges.append((v, u, d))
    return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), edges


def from_graph(G: Any, *, level: str = "unit", block_size: int = 1, n_in: int = 1,
               n_out: int = 1, input_nodes: Sequence[Any] | None = None,
               output_nodes: Sequence[Any] | None = None, weight: str | None = None,
               gain: float = 1.0, activation: str = "tanh", rng: RngLike = None
               ) -> IterativeMap:
    """A driven recurrent map whose hidden weights lie on the edges of a graph.

    The state is ``[input (n_in); hidden; output (n_out)]`` with ``input_block=0``
    and the readout in the last block, so :func:`itermap.train` trains it as it
    is. Hidden units come in the order of ``list(G.nodes)`` (with ``level="layers"``, of
    ``nx.topological_generations(G)``).

    Parameters
    ----------
    G : networkx.Graph or networkx.DiGraph
        The recurrent structure. A directed edge ``u -> v`` carries node ``u`` to
        node ``v`` (``W[v, u]`` is nonzero); an undirected edge carries both ways.
        A self-loop is a self-connection.
    level : {"unit", "block", "layers"}
        ``"unit"``: a node is a hidden unit, one nonzero per directed edge (CSR
        blocks at most 10% full, dense otherwise), a ``trainable`` mask on the
        edges. ``"block"``: a node is a block of ``block_size`` units, an edge a
        dense random block. ``"layers"`` (Darji's layered construction of a DAG):
        a node is a unit, each topological generation a block masked to its edges;
        the input drives the first layer and the output reads the last.
    block_size : int
        Units per node with ``level="block"`` (must be 1 with ``level="unit"``).
    n_in, n_out : int
        Sizes of the input and output blocks.
    input_nodes, output_nodes : list of nodes of G, optional
        The nodes the input drives and the output reads (dense random weights);
        None: every node.
    weight : str, optional
        With ``level="unit"`` or ``"layers"``: the edge attribute holding each weight (every
        edge must have it; an undirected edge gives the same value both ways).
        None draws ``N(0, gain^2 / d)`` values, ``d`` the mean in-degree, so the
        spectral radius is about ``gain``: above it on sparse or hub-heavy graphs (at
        ``n = 300``, about 1.1 ``gain`` for ER with ``p = 0.05``, 1.3 for WS with ``k = 10``,
        1.4 for BA with ``m = 5``), so compare kinds by their measured radius.
    gain : float
        Scale of the random hidden weights (>= 0); with ``level="block"`` the
        values are ``N(0, gain^2 / (d * block_size))``. With ``weight`` the edges give
        the weights: a gain other than 1 is refused.
    activation : str
        The hidden nonlinearity; input and output blocks are linear.
    rng : int, Generator or None
        Source of the random weights.

    Returns
    -------
    IterativeMap
        Sizes ``[n_in, n, n_out]`` (unit level), ``[n_in, block_size, ...,
        block_size, n_out]`` (block level) or ``[n_in, layer widths..., n_out]``
        (layers), ``input_block=0``.

    Raises
    ------
    TypeError
        ``G`` not a networkx graph (or a multigraph), options of the wrong type.
    ValueError
        An empty graph, unknown ``level``, ``block_size != 1`` at the unit level,
        nodes not in ``G``, ``weight`` with ``level="block"`` or missing on an edge.

    References
    ----------
    .. [1] S. Darji, "Exploring the sparsity of recurrent neural networks through
       random graphs", arXiv:2407.20601 (2024).
    .. [2] L. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).

    Examples
    --------
    >>> import networkx as nx
    >>> import itermap
    >>> m = itermap.from_graph(nx.cycle_graph(5), n_in=2, n_out=3, rng=0)
    >>> m.sizes, m.input_block, int((m.block_matrix.to_dense()[2:7, 2:7] != 0).sum())
    ((2, 5, 3), 0, 10)
    >>> b = itermap.from_graph(nx.path_graph(3, create_using=nx.DiGraph), level="block",
    ...                        block_size=4, rng=0)
    >>> b.sizes, sorted(k for k in b.block_matrix.blocks if 0 not in k and 4 not in k)
    ((1, 4, 4, 4, 1), [(2, 1), (3, 2)])
    """
    G = _check_graph(G)
    level = check_choice("level", level, ("unit", "block", "layers"))
    block_size = check_int("block_size", block_size, 1)
    n_in, n_out = check_int("n_in", n_in, 1), check_int("n_out", n_out, 1)
    gain = check_real("gain", gain, minimum=0.0)
    with named("activation"):
        get_activation(activation)
    if weight is not None and not isinstance(weight, str):
        raise TypeError(f"weight must be an edge attribute name or None, got {weight!r}")
    if level != "block" and block_size != 1:
        raise ValueError(f"block_size must be 1 with level={level!r}, got {block_size}")
    if weight is not None and gain != 1.0:  # it would be ignored: the edges give the weights
        raise ValueError(f"gain={gain:g} scales random hidden weights; with weight={weight!r} "
                         f"the edges' values are the weights: scale them, or leave gain at 1")
    if level == "block" and weight is not None:
        raise ValueError("weight: edge weights are not read with level='block'")
    layers = _layers(G) if level == "layers" else None
    nodes = list(G.nodes) if layers is None else [v for layer in layers for v in layer]
    n = len(nodes)
    if n * block_size > _MAX_BLOCK_UNITS and level == "block":
        raise ValueError(f"block_size: {n} nodes x {block_size} units is above "
                         f"{_MAX_BLOCK_UNITS} dense block units")
    units = n * block_size
    check_memory("n_in", 8 * units * n_in, "the input weights")
    check_memory("n_out", 8 * units * n_out, "the output weights")
    index = {v: i for i, v in enumerate(nodes)}
    if layers is not None:  # Darji: the input drives the first layer, the last one is read
        input_nodes = layers[0] if input_nodes is None else input_nodes
        output_nodes = layers[-1] if output_nodes is None else output_nodes
    ins = _node_subset("input_nodes", input_nodes, index)
    outs = _node_subset("output_nodes", output_nodes, index)
    gen = as_rng(rng)
    rows, cols, edges = _unit_pattern(G, index)
    mean_in = max(len(rows) / n, 1.0)
    if level != "block":
        vals = _edge_values(G, rows, cols, edges, weight, gen, gain / np.sqrt(mean_in))
        hidden = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
        B = np.zeros((n, n_in))
        B[ins] = gen.normal(0.0, 1.0 / np.sqrt(n_in), size=(len(ins), n_in))
        C = np.zeros((n_out, n))
        C[:, outs] = gen.normal(0.0, 1.0 / np.sqrt(len(outs)), size=(n_out, len(outs)))
        if layers is not None:
            edges_on = sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n, n))
            return _layer_map([len(layer) for layer in layers], hidden.toarray(),
                              edges_on.toarray(), B, C, activation)
        # like random_rnn: sparse up to 10% filled; then every block sparse, so the map
        # steps as one sparse matrix rather than being densified around a sparse block
        if hidden.nnz > 0.1 * n * n:
            blocks = {(1, 0): B, (1, 1): hidden.toarray(), (2, 1): C}
        else:
            blocks = {(1, 0): sp.csr_matrix(B), (1, 1): hidden, (2, 1): sp.csr_matrix(C)}
        # training keeps the graph: only edges and the attached nodes' weights train
        mask_b, mask_c = np.zeros(B.shape, bool), np.zeros(C.shape, bool)
        mask_b[ins], mask_c[:, outs] = True, True
        trainable = {(1, 0): mask_b, (2, 1): mask_c,
                     (1, 1): sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n, n))}
        bm = BlockMatrix([n_in, n, n_out], blocks, trainable=trainable)
        return IterativeMap(bm, None, ["identity", activation, "identity"], input_block=0)
    return _block_level(n, block_size, rows, cols, ins, outs, n_in, n_out, gain, mean_in,
                        activation, gen)


def _layers(G):
    import networkx as nx

    if not G.is_directed() or not nx.is_directed_acyclic_graph(G):
        raise ValueError("level='layers' needs a directed acyclic graph G (its topological "
                         "generations are the layers)")
    return [list(layer) for layer in nx.topological_generations(G)]


def _layer_map(widths, H, E, B, C, activation):
    """Layers as blocks: ``H`` (units in layer order) split, each block masked to its edges
    ``E`` (an edge of weight 0 is still an edge: it stays, and trains)."""
    n_in, n_out, L = B.shape[1], C.shape[0], len(widths)
    off = np.concatenate([[0], np.cumsum(widths)])
    parts = {(1 + i, 1 + j): (H[off[i]:off[i + 1], off[j]:off[j + 1]],
                              E[off[i]:off[i + 1], off[j]:off[j + 1]])
             for i in range(L) for j in range(L)}
    parts.update({(1 + i, 0): (B[off[i]:off[i + 1]], B[off[i]:off[i + 1]] != 0)
                  for i in range(L)})
    parts.update({(L + 1, 1 + j): (C[:, off[j]:off[j + 1]], C[:, off[j]:off[j + 1]] != 0)
                  for j in range(L)})
    blocks = {k: v for k, (v, on) in parts.items() if np.any(on)}
    masks = {k: on for k, (_, on) in parts.items() if np.any(on)}
    bm = BlockMatrix([n_in, *widths, n_out], blocks, trainable=masks)
    return IterativeMap(bm, None, ["identity"] + [activation] * L + ["identity"], input_block=0)


def _block_level(n, s, rows, cols, ins, outs, n_in, n_out, gain, mean_in, activation, gen):
    """The block-level map: node ``i`` is state block ``i + 1``."""
    check_memory("block_size", 8 * len(rows) * s * s, "the hidden blocks")
    blocks: dict = {}
    std = gain / np.sqrt(mean_in * s)
    for r, c in zip(rows.tolist(), cols.tolist()):
        blocks[(r + 1, c + 1)] = gen.normal(0.0, std, size=(s, s))
    for i in ins.tolist():
        blocks[(i + 1, 0)] = gen.normal(0.0, 1.0 / np.sqrt(n_in), size=(s, n_in))
    for i in outs.tolist():
        blocks[(n + 1, i + 1)] = gen.normal(0.0, 1.0 / np.sqrt(len(outs) * s), size=(n_out, s))
    sizes = [n_in] + [s] * n + [n_out]
    acts = ["identity"] + [activation] * n + ["identity"]
    return IterativeMap(BlockMatrix(sizes, blocks), None, acts, input_block=0)


_KINDS = ("er", "ws", "ba")


def _draw_graph(n, kind, p, k, m, directed, seed):
    import networkx as nx

    if kind == "er":
        return nx.fast_gnp_random_graph(n, p, seed=seed, directed=directed)
    if directed:
        raise ValueError(f"directed: networkx draws {kind!r} graphs undirected; use kind='er'")
    if kind == "ws":
        if not 2 <= k < n:
            raise ValueError(f"k must be in [2, n) for a Watts-Strogatz graph, got k={k}, n={n}")
        return nx.watts_strogatz_graph(n, k, p, seed=seed)
    if not 1 <= m < n:
        raise ValueError(f"m must be in [1, n) for a Barabasi-Albert graph, got m={m}, n={n}")
    return nx.barabasi_albert_graph(n, m, seed=seed)


def random_graph_rnn(n: int, *, kind: str = "er", p: float = 0.1, k: int = 4, m: int = 2,
                     directed: bool = False, n_in: int = 1, n_out: int = 1, gain: float = 1.0,
                     activation: str = "tanh", rng: RngLike = None) -> IterativeMap:
    """A driven recurrent map on a random graph drawn by networkx.

    The graph is ``nx.<generator>(..., seed=as_rng(rng).integers(2**32))``; the same
    generator then draws the weights (:func:`from_graph`, ``level="unit"``).

    Parameters
    ----------
    n : int
        Hidden units, one per node (>= 2).
    kind : {"er", "ws", "ba"}
        Erdos-Renyi ``fast_gnp_random_graph(n, p)`` (G(n, p) in O(n + m)), Watts-Strogatz
        ``watts_strogatz_graph(n, k, p)`` (a ring of ``k`` nearest neighbours, each
        edge rewired with probability ``p``) or Barabasi-Albert
        ``barabasi_albert_graph(n, m)`` (preferential attachment, ``m`` edges per
        new node).
    p : float
        Edge probability (ER) or rewiring probability (WS), in [0, 1].
    k : int
        Neighbours in the WS ring (even; an odd ``k`` is rounded down by networkx).
    m : int
        Edges per new node (BA).
    directed : bool
        Draw a directed ER graph (WS and BA are undirected in networkx).
    n_in, n_out, gain, activation
        As in :func:`from_graph`.
    rng : int, Generator or None
        Source of the graph's seed and of the weights.

    Returns
    -------
    IterativeMap
        Sizes ``[n_in, n, n_out]``, ``input_block=0``, hidden block sparse.

    Raises
    ------
    ValueError
        ``n < 2``, an unknown ``kind``, ``p`` outside [0, 1], ``k`` or ``m`` out of
        their generator's range, ``directed`` with WS or BA.
    TypeError
        Arguments of the wrong type.

    References
    ----------
    .. [1] S. Darji, arXiv:2407.20601 (2024).
    .. [2] D. J. Watts, S. H. Strogatz, "Collective dynamics of small-world
       networks", Nature 393, 440 (1998).
    .. [3] A.-L. Barabasi, R. Albert, "Emergence of scaling in random networks",
       Science 286, 509 (1999).

    Examples
    --------
    >>> import itermap
    >>> m = itermap.random_graph_rnn(30, kind="ws", k=4, p=0.1, rng=0)
    >>> m.sizes, int((m.block_matrix.to_dense()[1:31, 1:31] != 0).sum())  # 30 * 4 entries
    ((1, 30, 1), 120)
    """
    n = check_int("n", n, 2)
    kind = check_choice("kind", kind, _KINDS)
    p = check_real("p", p, minimum=0.0, maximum=1.0)
    k, m = check_int("k", k, 2), check_int("m", m, 1)
    directed = check_bool("directed", directed)
    edges = {"er": p * n * (n - 1) / (1 if directed else 2), "ws": n * k / 2, "ba": m * n}[kind]
    # networkx holds a graph as dicts: a few hundred bytes per node and edge
    check_memory("n", 500 * (n + edges), "the networkx graph")
    check_memory("n_in", 8 * n * check_int("n_in", n_in, 1), "the input weights")
    check_memory("n_out", 8 * n * check_int("n_out", n_out, 1), "the output weights")
    gen = as_rng(rng)
    seed = int(gen.integers(2 ** 32))
    G = _draw_graph(n, kind, p, k, m, directed, seed)
    return from_graph(G, n_in=n_in, n_out=n_out, gain=gain, activation=activation, rng=gen)
