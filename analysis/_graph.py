"""Structure of a map: the sparsity graph of its weights and its structural memory."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp

import itermap
from itermap.backends import is_sparse, to_numpy
from itermap.typing import MapLike

from ._checks import check_choice, check_int
from ._checks import named as check_named

__all__ = ["sparsity_graph", "fir_length"]


def _as_block_matrix(weights, what="weights"):
    """(BlockMatrix, input_block) from a BlockMatrix, a matrix or a map."""
    if isinstance(weights, itermap.BlockMatrix):
        return weights, None
    if isinstance(weights, itermap.Map):
        bm = getattr(weights, "block_matrix", None)
        if bm is None:
            raise TypeError(f"{what}: {type(weights).__name__} has no weight matrix "
                            "(only maps with a block_matrix, such as IterativeMap, have a graph)")
        return bm, weights.input_block
    if is_sparse(weights) or hasattr(weights, "shape"):
        if len(weights.shape) != 2 or weights.shape[0] != weights.shape[1]:
            raise ValueError(f"{what} must be a square matrix, got shape {tuple(weights.shape)}")
        if not is_sparse(weights):
            weights = np.asarray(to_numpy(weights))
        with check_named(what):
            return itermap.BlockMatrix([weights.shape[0]], {(0, 0): weights}), None
    raise TypeError(f"{what} must be a BlockMatrix, a 2-D array, a sparse matrix or an "
                    f"IterativeMap, got {type(weights).__name__}")


def _functions_of(weights) -> dict:
    """A map's function blocks, ``{(i, j): g}`` (empty for weights and matrix-only maps)."""
    return dict(getattr(weights, "functions", None) or {}) if isinstance(weights, itermap.Map) \
        else {}


def _host_csr(bm):
    """The whole matrix as a SciPy CSR with sorted indices and no explicit zeros."""
    S = bm.to_sparse()
    if not isinstance(S, sp.spmatrix | sp.sparray):  # cupyx: bring it home
        S = S.get()
    S = sp.csr_matrix(S)
    S.sum_duplicates()
    S.eliminate_zeros()
    S.sort_indices()
    return S


def sparsity_graph(weights: Any, *, level: str = "unit") -> nx.DiGraph:
    """The directed graph of the nonzero pattern of a weight matrix.

    Parameters
    ----------
    weights : BlockMatrix, dense or sparse square matrix, or IterativeMap
        The weights ``W`` (``W[i, j]`` carries unit ``j`` to unit ``i``).
    level : {"unit", "block"}
        ``"unit"``: a node per unit (attribute ``block``), an edge ``j -> i`` with
        attribute ``weight`` per nonzero ``W[i, j]``. ``"block"``: a node per block
        (``size``), an edge ``j -> i`` per stored block with ``nnz`` and ``norm``; a
        function block is an edge with attribute ``function``. A leaky block's units
        (or the block) have a self-loop with attribute ``leak = 1 - a``.

    Returns
    -------
    networkx.DiGraph
        The graph; ``graph.graph`` holds ``sizes``, for a map ``input_block``, and
        for a map with function blocks ``functions`` (``{(i, j): name}``).

    Raises
    ------
    ValueError
        A weight matrix that is not square, or an unknown ``level``.
    TypeError
        Something that holds no weight matrix.

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).
    .. [2] A. Hagberg, D. Schult, P. Swart, "Exploring network structure, dynamics,
       and function using NetworkX", Proceedings of the 7th Python in Science
       Conference (SciPy 2008), 11-15 (2008).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import IterativeMap
    >>> from itermap.analysis import sparsity_graph
    >>> mlp = IterativeMap.from_mlp([np.ones((3, 2)), np.ones((1, 3))])
    >>> G = sparsity_graph(mlp)
    >>> G.number_of_nodes(), G.number_of_edges(), G.nodes[4]["block"]
    (6, 9, 1)
    >>> B = sparsity_graph(mlp, level="block")
    >>> sorted(B.edges(data="nnz"))
    [(0, 1, 6), (1, 2, 3)]
    """
    level = check_choice("level", level, ("unit", "block"))
    bm, input_block = _as_block_matrix(weights)
    sizes = bm.sizes
    G = nx.DiGraph(sizes=list(sizes))
    if input_block is not None:
        G.graph["input_block"] = input_block
    functions = _functions_of(weights)
    if functions:
        G.graph["functions"] = {k: g.name for k, g in functions.items()}
    if level == "block":
        for i, size in enumerate(sizes):
            G.add_node(i, size=int(size))
        for (i, j), block in bm.blocks.items():
            data = np.asarray(to_numpy(block.data if is_sparse(block) else block), dtype=float)
            nnz = int(block.count_nonzero()) if is_sparse(block) else int(np.count_nonzero(data))
            G.add_edge(j, i, nnz=nnz, norm=float(np.sqrt(np.sum(data * data))))
        for (i, j), g in functions.items():
            if G.has_edge(j, i):
                G.edges[j, i]["function"] = g.name
            else:
                G.add_edge(j, i, nnz=0, norm=0.0, function=g.name)
        for i, r in _leaky_blocks(weights):
            if not G.has_edge(i, i):
                G.add_edge(i, i, nnz=0, norm=0.0)
            G.edges[i, i]["leak"] = 1.0 - r
        return G

    S = _host_csr(bm).tocoo()
    block_of = np.repeat(np.arange(len(sizes)), sizes).tolist()
    G.add_nodes_from((u, {"block": b}) for u, b in enumerate(block_of))
    # W[i, j] carries unit j to unit i: edge j -> i
    G.add_edges_from(zip(S.col.tolist(), S.row.tolist(),
                         ({"weight": w} for w in S.data.tolist())))
    offsets = bm.offsets
    for i, r in _leaky_blocks(weights):
        for unit in range(offsets[i], offsets[i + 1]):
            if not G.has_edge(unit, unit):
                G.add_edge(unit, unit, weight=1.0 - r)
            G.edges[unit, unit]["leak"] = 1.0 - r
    return G


def _leaky_blocks(weights):
    """(block, leak rate) for every block of a leaky map whose rate is below 1."""
    if not getattr(weights, "leaky", False):
        return []
    return [(i, r) for i, r in enumerate(weights.leak) if r < 1.0]


def _longest_weighted_chain(A, weight):
    """The heaviest path of the graph ``j -> i`` (``A[i, j] != 0``), nodes weighing ``weight``
    (None for a cycle): Kahn's algorithm, one vectorised pass per frontier."""
    n = A.shape[0]
    if n == 0:
        return 0
    indeg = np.diff(A.indptr).astype(np.int64)
    succ = A.T.tocsr()
    best = np.zeros(n, dtype=np.int64)  # the heaviest path ending at a predecessor
    frontier = np.flatnonzero(indeg == 0)
    seen, heaviest = 0, 0
    while frontier.size:
        seen += frontier.size
        level = best[frontier] + weight[frontier]
        heaviest = max(heaviest, int(level.max()))
        starts = succ.indptr[frontier]
        counts = succ.indptr[frontier + 1] - starts
        total = int(counts.sum())
        if total == 0:
            break
        offs = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        targets = succ.indices[offs + np.arange(total)]
        np.maximum.at(best, targets, np.repeat(level, counts))
        uniq, hits = np.unique(targets, return_counts=True)
        indeg[uniq] -= hits
        frontier = uniq[indeg[uniq] == 0]
    return None if seen < n else heaviest


def _with_function_hubs(S, bm, functions, input_block):
    """``S`` with a weightless hub node per function block ``(i, j)``, from ``j`` to ``i``."""
    off = bm.offsets
    rows, cols = [S.tocoo().row], [S.tocoo().col]
    n = S.shape[0]
    hubs = [k for k in functions if k[1] != input_block]
    for h, (i, j) in enumerate(hubs):
        hub = n + h
        rows += [np.full(off[j + 1] - off[j], hub), np.arange(off[i], off[i + 1])]
        cols += [np.arange(off[j], off[j + 1]), np.full(off[i + 1] - off[i], hub)]
    total = n + len(hubs)
    r, c = np.concatenate(rows), np.concatenate(cols)
    A = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(total, total))
    A.sum_duplicates()
    weight = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(len(hubs), dtype=np.int64)])
    return A, weight


def fir_length(map: MapLike, *, input_block: int | None = None) -> int | None:
    """Structural memory length: steps after which every impulse is forgotten.

    The smallest ``L`` such that, whatever the weights' values, a perturbation at step
    0 has no effect ``L`` steps later: the units on the longest path of the sparsity
    graph of the non-input units, or None when that graph has a cycle.

    Parameters
    ----------
    map : IterativeMap, BlockMatrix, or dense or sparse square matrix
        The map or its weights.
    input_block : int, optional
        The block overwritten by the input, for weights given without a map.

    Returns
    -------
    int or None
        The FIR length; None for an infinite impulse response.

    Raises
    ------
    ValueError
        An ``input_block`` that does not exist or disagrees with the map's.
    TypeError
        A non-integer ``input_block``, or weights of an unknown kind.

    Notes
    -----
    Kahn's topological sort on the sparse pattern; ``L`` for an MLP of ``L`` layers,
    an upper bound on :func:`impulse_response`'s length. A function block joins every
    unit of its source block to every unit of its target.

    References
    ----------
    .. [1] Q. Hershey, R. Paffenroth, H. Pathak, S. Tavener, "Rethinking the
       relationship between recurrent and non-recurrent neural networks: a study in
       sparsity", arXiv:2404.00880 (2024).
    .. [2] A. B. Kahn, "Topological sorting of large networks", Communications of
       the ACM 5(11), 558-562 (1962).

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import IterativeMap
    >>> from itermap.analysis import fir_length
    >>> rng = np.random.default_rng(0)
    >>> mlp = IterativeMap.from_mlp([rng.normal(size=(4, 3)), rng.normal(size=(4, 4)),
    ...                              rng.normal(size=(2, 4))])
    >>> fir_length(mlp)
    3
    >>> fir_length(np.array([[0.0, 0.5], [0.5, 0.0]])) is None
    True
    """
    bm, own_input = _as_block_matrix(map, what="map")
    input_block = None if input_block is None else check_int("input_block", input_block, 0)
    if isinstance(map, itermap.Map):
        if input_block is not None and input_block != own_input:
            raise ValueError(f"input_block={input_block} disagrees with the map's input block "
                             f"{own_input}")
        input_block = own_input
        if _leaky_blocks(map):
            return None  # a leaky unit keeps part of its state: a self-loop, never forgotten
    elif input_block is not None and input_block >= bm.n_blocks:
        raise ValueError(f"input_block {input_block} does not exist: the weights have "
                         f"{bm.n_blocks} blocks")
    S = _host_csr(bm)
    functions = _functions_of(map)
    keep = np.ones(bm.dim, dtype=bool)
    if input_block is not None:
        off = bm.offsets
        keep[off[input_block]:off[input_block + 1]] = False
    if functions:  # hubs for the function blocks, then the input block's units dropped
        A, weight = _with_function_hubs(S, bm, functions, input_block)
        idx = np.flatnonzero(np.concatenate([keep, np.ones(A.shape[0] - bm.dim, dtype=bool)]))
        return _longest_weighted_chain(A[idx][:, idx].tocsr(), weight[idx])
    if input_block is not None:
        idx = np.flatnonzero(keep)
        S = S[idx][:, idx].tocsr()
    return _longest_weighted_chain(S, np.ones(S.shape[0], dtype=np.int64))
