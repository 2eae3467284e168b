"""Graph-drawn recurrent maps, magnitude pruning and graph measures (issue 29, section 1)."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import graph_properties


def _hidden(m, n, n_in=1):
    return np.asarray(m.block_matrix.to_dense())[n_in:n_in + n, n_in:n_in + n]


# -- from_graph -----------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(st.integers(2, 30), st.floats(0.0, 1.0), st.integers(0, 10 ** 6), st.booleans())
def test_unit_level_pattern_is_the_transposed_adjacency(n, p, seed, directed):
    G = nx.gnp_random_graph(n, p, seed=seed, directed=directed)
    m = itermap.from_graph(G, n_in=2, n_out=3, rng=seed)
    A = nx.to_numpy_array(G, nodelist=list(G.nodes)) != 0
    assert m.sizes == (2, n, 3) and m.input_block == 0
    # an edge u -> v carries u to v: W[v, u] != 0
    np.testing.assert_array_equal(_hidden(m, n, 2) != 0, A.T)


def test_edge_weights_are_read_both_ways_on_an_undirected_graph():
    G = nx.Graph()
    G.add_weighted_edges_from([("a", "b", 0.5), ("b", "c", -2.0), ("c", "c", 0.25)])
    m = itermap.from_graph(G, weight="weight", rng=0)
    W = _hidden(m, 3)
    np.testing.assert_array_equal(W, [[0, 0.5, 0], [0.5, 0, -2.0], [0, -2.0, 0.25]])
    D = nx.DiGraph([(0, 1, {"w": 3.0})])
    np.testing.assert_array_equal(_hidden(itermap.from_graph(D, weight="w"), 2), [[0, 0], [3, 0]])
    with pytest.raises(ValueError, match="weight"):
        itermap.from_graph(nx.path_graph(3), weight="weight")


def test_block_level_puts_one_block_per_node_and_one_per_edge():
    G = nx.gnp_random_graph(6, 0.4, seed=3, directed=True)
    m = itermap.from_graph(G, level="block", block_size=3, n_in=2, n_out=1, rng=0)
    assert m.sizes == (2,) + (3,) * 6 + (1,)
    pattern = m.block_matrix.block_pattern()
    A = nx.to_numpy_array(G, nodelist=range(6)) != 0
    np.testing.assert_array_equal(pattern[1:7, 1:7], A.T)
    assert pattern[1:7, 0].all() and pattern[7, 1:7].all()
    for (i, j), b in m.block_matrix.blocks.items():
        if 1 <= i <= 6 and 1 <= j <= 6:
            assert np.count_nonzero(np.asarray(b)) == 9  # dense blocks


def test_input_and_output_nodes_restrict_the_attached_blocks():
    m = itermap.from_graph(nx.path_graph(5), input_nodes=[0], output_nodes=[3, 4], rng=1)
    W = np.asarray(m.block_matrix.to_dense())
    assert np.flatnonzero(W[1:6, 0]).tolist() == [0]
    assert np.flatnonzero(W[6, 1:6]).tolist() == [3, 4]
    with pytest.raises(ValueError, match="input_nodes"):
        itermap.from_graph(nx.path_graph(5), input_nodes=[9])


def test_random_weights_give_the_variance_profile_spectral_radius():
    ratios = []
    for seed, gain in zip(range(4), (0.5, 1.0, 1.5, 2.0)):
        G = nx.gnp_random_graph(300, 0.05, seed=seed)
        m = itermap.from_graph(G, gain=gain, rng=seed)
        A = nx.to_numpy_array(G)
        d = A.sum() / 300
        # independent entries of variance gain^2 A_ij / d: radius^2 -> rho(gain^2 A / d)
        expected = gain * np.sqrt(np.abs(np.linalg.eigvalsh(A)).max() / d)
        ratios.append(np.abs(np.linalg.eigvals(_hidden(m, 300))).max() / expected)
    # the largest |eigenvalue| of a finite sparse matrix lies a little outside the bulk edge
    assert np.all((np.array(ratios) > 0.95) & (np.array(ratios) < 1.2)), ratios


# -- random_graph_rnn --------------------------------------------------------------------
@pytest.mark.parametrize("kind,make", [
    ("er", lambda n, s: nx.fast_gnp_random_graph(n, 0.2, seed=s)),
    ("ws", lambda n, s: nx.watts_strogatz_graph(n, 4, 0.2, seed=s)),
    ("ba", lambda n, s: nx.barabasi_albert_graph(n, 2, seed=s)),
])
@pytest.mark.parametrize("rng", [0, 7, 123])
def test_random_graph_rnn_draws_networkx_graph_from_the_documented_seed(kind, make, rng):
    n = 25
    m = itermap.random_graph_rnn(n, kind=kind, p=0.2, k=4, m=2, rng=rng)
    seed = int(np.random.default_rng(rng).integers(2 ** 32))
    A = nx.to_numpy_array(make(n, seed), nodelist=range(n)) != 0
    np.testing.assert_array_equal(_hidden(m, n) != 0, A.T)
    again = itermap.random_graph_rnn(n, kind=kind, p=0.2, k=4, m=2, rng=rng)
    np.testing.assert_array_equal(np.asarray(m.block_matrix.to_dense()),
                                  np.asarray(again.block_matrix.to_dense()))


def test_graph_kinds_have_their_closed_form_edge_counts():
    n = 60
    ws = itermap.random_graph_rnn(n, kind="ws", k=6, p=0.0, rng=0)
    assert (_hidden(ws, n) != 0).sum(axis=1).tolist() == [6] * n   # the ring lattice
    ba = itermap.random_graph_rnn(n, kind="ba", m=3, rng=0)
    assert (_hidden(ba, n) != 0).sum() == 2 * 3 * (n - 3)           # m (n - m) edges
    er = itermap.random_graph_rnn(n, kind="er", p=1.0, directed=True, rng=0)
    assert (_hidden(er, n) != 0).sum() == n * (n - 1)
    with pytest.raises(ValueError, match="directed"):
        itermap.random_graph_rnn(n, kind="ws", directed=True)
    with pytest.raises(ValueError, match="kind"):
        itermap.random_graph_rnn(n, kind="sbm")


def test_graph_maps_train():
    m = itermap.random_graph_rnn(12, kind="ws", k=4, p=0.1, n_in=2, n_out=2, rng=0)
    g = np.random.default_rng(0)
    x = g.normal(size=(5, 40, 2))
    y = (x[-1, :, 0] > 0).astype(int)
    before = _hidden(m, 12, 2) != 0
    out, hist = itermap.train(m, x, y, epochs=3, lr=0.05, rng=0, progress=False)
    assert np.isfinite(hist.loss).all()
    np.testing.assert_array_equal(_hidden(out, 12, 2) != 0, before)


# -- prune -------------------------------------------------------------------------------
def _weights(m):
    return np.asarray(m.block_matrix.to_dense())


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.floats(0.0, 1.0), st.integers(0, 10 ** 6), st.booleans())
def test_prune_keeps_exactly_the_rounded_count_of_largest_entries(n, f, seed, sparse):
    m = itermap.random_rnn(n, gain=1.0, density=0.05 if sparse else 1.0, rng=seed)
    W = _weights(m)
    nnz = int(np.count_nonzero(W))
    p = itermap.prune(m, fraction=f)
    P = _weights(p)
    kept = P != 0
    assert kept.sum() == int(np.floor((1 - f) * nnz + 0.5))
    np.testing.assert_array_equal(P[kept], W[kept])           # survivors unchanged
    removed = (W != 0) & ~kept
    if kept.any() and removed.any():
        assert np.abs(W[kept]).min() >= np.abs(W[removed]).max()


def test_prune_breaks_ties_by_position():
    W = np.array([[1.0, -1.0, 1.0], [-1.0, 2.0, 1.0], [1.0, 1.0, -1.0]])
    p = itermap.prune(itermap.IterativeMap(W), fraction=0.5)   # keep round(4.5) = 5
    np.testing.assert_array_equal(_weights(p) != 0, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    q = itermap.prune(itermap.IterativeMap(W), fraction=0.5)
    np.testing.assert_array_equal(_weights(p), _weights(q))


def test_prune_by_threshold_and_by_block():
    g = np.random.default_rng(4)
    mlp = itermap.IterativeMap.from_mlp([g.normal(size=(6, 4)), g.normal(size=(3, 6))])
    W = _weights(mlp)
    t = itermap.prune(mlp, threshold=0.7)
    np.testing.assert_array_equal(_weights(t), np.where(np.abs(W) >= 0.7, W, 0))
    b = itermap.prune(mlp, fraction=0.5, blocks=[(2, 1)])
    Wb = _weights(b)
    np.testing.assert_array_equal(Wb[4:10, :4], W[4:10, :4])   # block (1, 0) untouched
    assert np.count_nonzero(Wb[10:, 4:10]) == 9
    with pytest.raises(ValueError, match="fraction"):
        itermap.prune(mlp)
    with pytest.raises(ValueError, match="blocks"):
        itermap.prune(mlp, fraction=0.5, blocks=[(0, 2)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_a_pruned_map_moves_only_the_survivors(seed):
    g = np.random.default_rng(seed)
    mlp = itermap.IterativeMap.from_mlp([g.normal(size=(8, 4)), g.normal(size=(3, 8))],
                                        activation="tanh")
    p = itermap.prune(mlp, fraction=0.6)
    kept = _weights(p) != 0
    assert itermap.trainable_count(p) == kept.sum() + p.dim - 4   # and the non-input biases
    x, y = g.normal(size=(60, 4)), g.integers(0, 3, size=60)
    out, _ = itermap.train(p, x, y, epochs=5, lr=0.05, rng=seed, progress=False)
    after = _weights(out)
    assert np.all(after[~kept] == 0)
    assert np.mean(after[kept] != _weights(p)[kept]) > 0.5   # (a unit cut off stays put)
    again, _ = itermap.train(out, x, y, epochs=2, lr=0.05, rng=seed, progress=False)
    assert np.all(_weights(again)[~kept] == 0)                 # the mask travels on


def test_prune_keeps_a_frozen_block_frozen():
    bm = itermap.BlockMatrix([2, 3], {(1, 0): np.ones((3, 2)), (1, 1): np.eye(3) * 0.5},
                             trainable={(1, 1): np.ones((3, 3), bool)})
    p = itermap.prune(itermap.IterativeMap(bm, input_block=0), fraction=0.2)
    assert set(p.block_matrix.trainable) == {(1, 1)}


# -- graph_properties ------------------------------------------------------------------------
def _graph_map(G):
    return itermap.from_graph(G, rng=0)


@pytest.mark.parametrize("n", [5, 8, 13])
def test_ring_and_complete_graph_closed_forms(n):
    ring = graph_properties(_graph_map(nx.cycle_graph(n)), blocks=[1])
    assert ring.nodes == n and ring.edges == n and ring.diameter == n // 2
    assert ring.density == pytest.approx(2 / (n - 1))
    # mean distance on a cycle: sum_d d * (#nodes at d) / (n - 1)
    dists = [min(d, n - d) for d in range(1, n)]
    assert ring.average_shortest_path == pytest.approx(np.mean(dists))
    assert ring.degree_mean == 2 and ring.degree_var == 0 and ring.eccentricity_var == 0
    full = graph_properties(_graph_map(nx.complete_graph(n)), blocks=[1])
    assert full.density == 1 and full.diameter == 1 and full.average_shortest_path == 1
    assert full.betweenness_mean == 0 and full.closeness_mean == 1
    path = graph_properties(_graph_map(nx.path_graph(n)), blocks=[1])
    assert path.diameter == n - 1 and path.edges == n - 1


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("directed", [False, True])
def test_graph_properties_match_networkx_on_the_graph(seed, directed):
    G = nx.gnp_random_graph(40, 0.15, seed=seed, directed=directed)
    g = graph_properties(_graph_map(G), blocks=[1], directed=directed)
    comp = max((nx.strongly_connected_components(G) if directed else
                nx.connected_components(G)), key=len)
    H = G.subgraph(comp)
    assert (g.nodes, g.edges) == (40, G.number_of_edges())
    assert g.density == pytest.approx(nx.density(G))
    assert g.diameter == nx.diameter(H)
    assert g.average_shortest_path == pytest.approx(nx.average_shortest_path_length(H))
    bc = np.array(list(nx.betweenness_centrality(G).values()))
    eb = np.array(list(nx.edge_betweenness_centrality(G).values()))
    cc = np.array(list(nx.closeness_centrality(G).values()))
    assert g.betweenness_mean == pytest.approx(bc.mean())
    assert g.betweenness_var == pytest.approx(bc.var())
    assert g.edge_betweenness_mean == pytest.approx(eb.mean())
    assert g.closeness_var == pytest.approx(cc.var())
    deg = np.array([d for _, d in G.degree()])
    assert g.degree_var == pytest.approx(deg.var())


def test_a_5000_node_graph_is_refused_at_once():
    m = itermap.random_graph_rnn(5000, p=0.001, rng=0)
    t = time.perf_counter()
    with pytest.raises(ValueError, match="max_nodes.*refused"):
        graph_properties(m)
    assert time.perf_counter() - t < 5.0
    with pytest.raises(ValueError, match="blocks"):
        graph_properties(m, blocks=[7])


@pytest.mark.parametrize("make", [
    lambda rng: itermap.from_graph(nx.cycle_graph(6), rng=rng),
    lambda rng: itermap.from_graph(nx.path_graph(3), level="block", block_size=2, rng=rng),
    lambda rng: itermap.random_graph_rnn(20, kind="ba", m=2, rng=rng),
])
def test_same_seed_same_bits_and_a_bad_seed_is_refused(make):
    a = np.asarray(make(7).block_matrix.to_dense())
    b = np.asarray(make(np.random.default_rng(7)).block_matrix.to_dense())
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.asarray(make(8).block_matrix.to_dense()))
    with pytest.raises(TypeError, match="rng"):
        make("not a seed")


def _layered_dag(widths, p, seed):
    """Random edges between consecutive layers only (every node keeps one in-edge)."""
    g = np.random.default_rng(seed)
    G = nx.DiGraph()
    names = [[f"{i}.{k}" for k in range(w)] for i, w in enumerate(widths)]
    G.add_nodes_from(names[0])
    for lo, hi in zip(names[:-1], names[1:]):
        for v in hi:
            G.add_edge(lo[int(g.integers(len(lo)))], v, weight=float(g.normal()))
            G.add_edges_from((u, v, {"weight": float(g.normal())}) for u in lo
                             if g.random() < p)
    return G, names


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_layers_of_a_dag_become_the_blocks_of_a_sparse_mlp(seed):
    widths = [3, 5, 4, 2]
    G, names = _layered_dag(widths, 0.5, seed)
    m = itermap.from_graph(G, level="layers", n_in=2, n_out=3, weight="weight", rng=seed)
    assert m.sizes == (2, 3, 5, 4, 2, 3)
    mlp = itermap.IterativeMap.from_mlp([np.ones((o, i)) for i, o in
                                         zip([2] + widths, widths + [3])])
    np.testing.assert_array_equal(m.block_matrix.block_pattern(),
                                  mlp.block_matrix.block_pattern())
    assert m.settle_steps == len(widths) + 1
    # every edge's weight lands where its layer block puts it; nothing else is nonzero
    order = [v for layer in nx.topological_generations(G) for v in layer]   # as documented
    assert [sorted(layer) for layer in nx.topological_generations(G)] == names
    pos = {v: 2 + i for i, v in enumerate(order)}
    W = np.asarray(m.block_matrix.to_dense())
    H = np.zeros_like(W)
    for u, v, w in G.edges(data="weight"):
        H[pos[v], pos[u]] = w
    hidden = slice(2, 2 + sum(widths))
    np.testing.assert_array_equal(W[hidden, hidden], H[hidden, hidden])
    # training keeps the DAG's pattern
    x, y = np.random.default_rng(seed).normal(size=(40, 2)), np.arange(40) % 3
    out, _ = itermap.train(m, x, y, epochs=2, rng=0, progress=False)
    np.testing.assert_array_equal(np.asarray(out.block_matrix.to_dense())[hidden, hidden] != 0,
                                  H[hidden, hidden] != 0)


def test_layers_need_a_directed_acyclic_graph():
    with pytest.raises(ValueError, match="acyclic"):
        itermap.from_graph(nx.cycle_graph(4, create_using=nx.DiGraph), level="layers")
    with pytest.raises(ValueError, match="acyclic"):
        itermap.from_graph(nx.path_graph(4), level="layers")
