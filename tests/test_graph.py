"""Sparsity graphs and the structural FIR length (issue 5)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import BlockMatrix, IterativeMap
from itermap.analysis import fir_length, sparsity_graph


def _random_mlp(rng, depth=None):
    depth = int(rng.integers(1, 6)) if depth is None else depth
    sizes = rng.integers(1, 6, size=depth + 1).tolist()
    Ws = [rng.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    return IterativeMap.from_mlp(Ws, activation="tanh"), depth


def _reference_graph(W, sizes):
    """The unit graph by a plain loop over the dense matrix."""
    G = nx.DiGraph()
    block = 0
    for u in range(W.shape[0]):
        while u >= sum(sizes[:block + 1]):
            block += 1
        G.add_node(u, block=block)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            if W[i, j] != 0:
                G.add_edge(j, i, weight=W[i, j])
    return G


def _reference_fir(W, input_block_slice=None):
    """Nilpotency index of the 0/1 pattern by repeated boolean products."""
    A = (np.asarray(W) != 0).astype(np.int64)
    if input_block_slice is not None:
        A[input_block_slice, :] = 0
        A[:, input_block_slice] = 0
        keep = np.ones(A.shape[0], dtype=bool)
        keep[input_block_slice] = False
        A = A[keep][:, keep]
    n = A.shape[0]
    P = np.eye(n, dtype=np.int64)
    for k in range(n + 1):
        if not P.any():
            return k
        P = np.minimum(A @ P, 1)
    return None


def _pattern_matrix():
    return BlockMatrix.from_pattern([3, 4, 2], [["0", "R=0.5", "0"],
                                                ["W", "S=3", "0"],
                                                ["0", "Row=2", "D"]], rng=3)


def test_unit_graph_matches_plain_loop():
    bm = _pattern_matrix()
    W = bm.to_dense()
    G = sparsity_graph(bm)
    ref = _reference_graph(W, bm.sizes)
    assert dict(G.nodes(data=True)) == dict(ref.nodes(data=True))
    assert sorted(G.edges(data="weight")) == sorted(ref.edges(data="weight"))
    # successor and predecessor views agree (shared attribute dictionaries)
    for j, i, d in G.edges(data=True):
        assert G.pred[i][j] is d
    assert G.number_of_nodes() == bm.dim and G.number_of_edges() == bm.nnz
    assert G.graph["sizes"] == list(bm.sizes)
    assert nx.is_directed(G)


def test_graph_of_map_has_dim_nodes_and_nnz_edges():
    rng = np.random.default_rng(1)
    for _ in range(5):
        m, _ = _random_mlp(rng)
        G = sparsity_graph(m)
        assert G.number_of_nodes() == m.dim
        assert G.number_of_edges() == m.block_matrix.nnz
        assert G.graph["input_block"] == 0
    rnn = itermap.random_rnn(200, density=0.05, rng=0)
    G = sparsity_graph(rnn)
    assert (G.number_of_nodes(), G.number_of_edges()) == (200, rnn.block_matrix.nnz)


def test_same_graph_from_dense_sparse_blockmatrix_and_map():
    bm = _pattern_matrix()
    W = bm.to_dense()
    xs = pytest.importorskip("array_api_strict")
    graphs = [sparsity_graph(x) for x in (bm, W, sp.csr_matrix(W), sp.coo_matrix(W),
                                          sp.csr_array(W), xs.asarray(W), IterativeMap(bm))]
    edges = sorted(graphs[0].edges(data="weight"))
    for G in graphs[1:]:
        assert sorted(G.edges(data="weight")) == edges
    # a plain matrix is one block
    assert set(nx.get_node_attributes(graphs[1], "block").values()) == {0}


def test_edge_direction_is_column_to_row():
    W = np.zeros((3, 3))
    W[2, 0] = 5.0
    G = sparsity_graph(W)
    assert list(G.edges(data="weight")) == [(0, 2, 5.0)]


def test_block_graph_of_mlp_is_a_path():
    rng = np.random.default_rng(2)
    for _ in range(5):
        m, depth = _random_mlp(rng)
        B = sparsity_graph(m, level="block")
        assert B.number_of_nodes() == depth + 1
        assert sorted(B.edges()) == [(l, l + 1) for l in range(depth)]
        assert nx.is_isomorphic(B, nx.path_graph(depth + 1, create_using=nx.DiGraph))
        assert [B.nodes[i]["size"] for i in range(depth + 1)] == list(m.sizes)


def test_block_graph_attributes():
    bm = _pattern_matrix()
    B = sparsity_graph(bm, level="block")
    W = bm.to_dense()
    off = bm.offsets
    assert sorted(B.edges()) == sorted((j, i) for i, j in bm.blocks)
    for j, i, d in B.edges(data=True):
        blk = W[off[i]:off[i + 1], off[j]:off[j + 1]]
        assert d["nnz"] == np.count_nonzero(blk)
        assert d["norm"] == pytest.approx(np.linalg.norm(blk))


def test_fir_length_of_mlp_is_its_depth():
    rng = np.random.default_rng(3)
    for _ in range(10):
        m, depth = _random_mlp(rng)
        assert fir_length(m) == depth
        assert m.settle_steps == depth


def test_fir_length_of_a_chain_inside_one_block():
    # strictly lower triangular: the longest path visits all n units
    n = 7
    W = np.tril(np.ones((n, n)), -1)
    assert fir_length(W) == n
    assert fir_length(sp.csr_matrix(W)) == n
    W[0, n - 1] = 1.0  # close the loop
    assert fir_length(W) is None


def test_fir_length_with_recurrence_or_self_loop_is_none():
    rng = np.random.default_rng(4)
    m, depth = _random_mlp(rng, depth=3)
    bm = m.block_matrix
    blocks = bm.blocks
    blocks[(2, 2)] = sp.csr_matrix(([0.3], ([0], [0])), shape=(bm.sizes[2], bm.sizes[2]))
    rec = IterativeMap(BlockMatrix(bm.sizes, blocks), None, list(m.activations), input_block=0)
    assert fir_length(rec) is None
    assert fir_length(np.diag([0.0, 0.0, 1.0])) is None


def test_fir_length_ignores_the_input_block():
    # a loop through the input block is cut: the input overwrites that block every step
    W = np.zeros((3, 3))
    W[1, 0] = W[2, 1] = W[0, 2] = 1.0
    assert fir_length(W) is None
    assert fir_length(W, input_block=0) == 0  # one block: every unit is input
    bm = BlockMatrix([1, 1, 1], {(1, 0): [[1.0]], (2, 1): [[1.0]], (0, 2): [[1.0]]})
    assert fir_length(bm) is None
    assert fir_length(bm, input_block=0) == 2
    assert fir_length(IterativeMap(bm, input_block=0)) == 2


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.floats(0.05, 0.6), st.integers(0, 2**31 - 1), st.booleans())
def test_fir_length_equals_nilpotency_index(n, density, seed, with_input):
    rng = np.random.default_rng(seed)
    W = (rng.random((n, n)) < density) * rng.normal(size=(n, n))
    if rng.random() < 0.7:
        W = np.tril(W, -1)  # mostly acyclic patterns, where the index is finite
    if with_input:
        k = int(rng.integers(1, n))
        bm = BlockMatrix([k, n - k], {(0, 0): W[:k, :k], (0, 1): W[:k, k:],
                                      (1, 0): W[k:, :k], (1, 1): W[k:, k:]})
        assert fir_length(bm, input_block=0) == _reference_fir(W, slice(0, k))
    else:
        assert fir_length(W) == _reference_fir(W)


def test_fir_length_of_empty_graph_is_one_or_zero():
    # no edges: a state perturbation is gone after one step
    assert fir_length(np.zeros((4, 4))) == 1
    # every unit is input: nothing to remember
    assert fir_length(np.ones((2, 2)), input_block=0) == 0


def test_bad_input():
    with pytest.raises(ValueError, match="level"):
        sparsity_graph(np.eye(2), level="units")
    with pytest.raises(TypeError, match="no weight matrix"):
        sparsity_graph(itermap.systems.logistic(3.5))
    with pytest.raises(TypeError, match="must be a BlockMatrix"):
        sparsity_graph("W")
    with pytest.raises(ValueError, match="square"):
        sparsity_graph(np.ones((2, 3)))
    with pytest.raises(TypeError, match="no weight matrix"):
        fir_length(itermap.systems.henon())
    with pytest.raises(ValueError, match="does not exist"):
        fir_length(np.eye(3), input_block=1)
    with pytest.raises(TypeError, match="input_block"):
        fir_length(np.eye(3), input_block=0.5)
    m, _ = _random_mlp(np.random.default_rng(0), depth=2)
    with pytest.raises(ValueError, match="disagrees"):
        fir_length(m, input_block=1)
