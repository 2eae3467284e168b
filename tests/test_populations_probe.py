"""Probing trained networks: probes, weight statistics, canonical unit order (issue 29, s. 4)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap.analysis import (
    canonical_permutation,
    permute_units,
    probe,
    weight_statistics,
)


def _driven(kind, n, seed):
    g = np.random.default_rng(seed)
    if kind == "rnn":  # [u; h; y], the hidden block dense
        bm = itermap.BlockMatrix([2, n, 3], {(1, 0): g.normal(size=(n, 2)),
                                             (1, 1): g.normal(size=(n, n)) / np.sqrt(n),
                                             (2, 1): g.normal(size=(3, n))})
        return itermap.IterativeMap(bm, g.normal(size=n + 5) * 0.1,
                                    ["identity", "tanh", "identity"], input_block=0)
    if kind == "graph":  # sparse hidden block
        return itermap.random_graph_rnn(n, kind="ws", k=2, p=0.3, n_in=2, n_out=3, rng=seed)
    # an MLP with two hidden blocks, each permuted on its own
    return itermap.IterativeMap.from_mlp([g.normal(size=(n, 2)), g.normal(size=(n + 1, n)),
                                          g.normal(size=(3, n + 1))], activation="tanh")


def _hidden_permutation(m, g):
    """A random permutation of every block but the input and the readout."""
    perm = np.arange(m.dim)
    off = m.block_matrix.offsets
    for b in range(1, len(m.sizes) - 1):
        perm[off[b]:off[b + 1]] = off[b] + g.permutation(m.sizes[b])
    return perm


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["rnn", "graph", "mlp"]), st.integers(3, 12), st.integers(0, 10 ** 6))
def test_a_permuted_map_answers_probes_alike_and_canonical_order_undoes_it(kind, n, seed):
    m = _driven(kind, n, seed)
    g = np.random.default_rng(seed + 1)
    P = _hidden_permutation(m, g)
    m2 = permute_units(m, P)
    W, W2 = m.block_matrix.to_dense(), m2.block_matrix.to_dense()
    np.testing.assert_array_equal(W2, np.asarray(W)[np.ix_(P, P)])    # P W P^T
    if not np.array_equal(P, np.arange(m.dim)):
        assert not np.array_equal(W, W2)                             # raw weights differ
    probes = g.normal(size=(4, 6, 2))
    np.testing.assert_allclose(probe(m2, probes), probe(m, probes), rtol=1e-12, atol=1e-12)
    s, s2 = weight_statistics(m), weight_statistics(m2)
    assert s.keys == s2.keys
    np.testing.assert_allclose(s2.values, s.values, rtol=1e-12, atol=1e-14)
    c, c2 = canonical_permutation(m), canonical_permutation(m2)
    assert permute_units(m, c) == permute_units(m2, c2)             # exactly equal
    np.testing.assert_array_equal(P[c2], c)                          # the permutation, undone
    recovered = c[np.argsort(c2)]
    np.testing.assert_array_equal(recovered, P)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10 ** 6))
def test_unit_impulses_probe_out_the_markov_parameters(n, n_in, n_out, seed):
    g = np.random.default_rng(seed)
    A = g.normal(size=(n, n)) / np.sqrt(n)
    B, C = g.normal(size=(n, n_in)), g.normal(size=(n_out, n))
    m = itermap.IterativeMap(itermap.BlockMatrix([n_in, n, n_out],
                                                 {(1, 0): B, (1, 1): A, (2, 1): C}),
                             activation="identity", input_block=0)
    T = 7
    impulses = np.zeros((n_in, T, n_in))
    impulses[np.arange(n_in), 0, np.arange(n_in)] = 1.0
    out = probe(m, impulses)
    assert out.shape == (n_in, T, n_out)
    np.testing.assert_array_equal(out[:, 0], 0.0)  # the readout lags the hidden state by one
    for t in range(T - 1):
        markov = C @ np.linalg.matrix_power(A, t) @ B                # (n_out, n_in)
        np.testing.assert_allclose(out[:, t + 1].T, markov, rtol=1e-10, atol=1e-12)


def test_weight_statistics_match_numpy_on_each_block():
    g = np.random.default_rng(5)
    S = sp.random(20, 20, density=0.2, random_state=5, data_rvs=g.standard_normal).tocsr()
    bm = itermap.BlockMatrix([2, 20, 1], {(1, 0): g.normal(size=(20, 2)), (1, 1): S,
                                          (2, 1): g.normal(size=(1, 20))})
    m = itermap.IterativeMap(bm, input_block=0)
    s = weight_statistics(m)
    row = dict(zip(s.names, s.values[s.keys.index((1, 1))]))
    v = S.data[S.data != 0]
    assert row["nnz"] == v.size
    assert row["mean"] == pytest.approx(v.mean()) and row["std"] == pytest.approx(v.std())
    assert row["median"] == pytest.approx(np.median(v)) and row["max"] == v.max()
    assert row["norm"] == pytest.approx(sp.linalg.norm(S))
    assert s.vector.shape == (3 * len(s.names),)


def test_different_maps_answer_probes_differently():
    probes = np.random.default_rng(0).normal(size=(3, 5, 2))
    a, b = _driven("rnn", 6, 0), _driven("rnn", 6, 1)
    assert not np.allclose(probe(a, probes), probe(b, probes))
    assert not np.allclose(weight_statistics(a).values, weight_statistics(b).values)


def test_probe_and_permutation_arguments_are_checked():
    m = _driven("rnn", 4, 0)
    with pytest.raises(ValueError, match="driven"):
        probe(itermap.random_rnn(3, rng=0), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="probes"):
        probe(m, np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="block"):
        probe(m, np.zeros((2, 3, 2)), block=7)
    with pytest.raises(ValueError, match="perm"):
        permute_units(m, np.arange(m.dim)[::-1])          # moves units between blocks
    with pytest.raises(ValueError, match="perm"):
        permute_units(m, np.zeros(m.dim, dtype=int))
    with pytest.raises(TypeError, match="map"):
        weight_statistics(np.eye(3))


def test_a_start_state_is_used_by_every_probe():
    m = itermap.IterativeMap.from_rnn(np.array([[0.5]]), np.array([[1.0]]),
                                      activation="identity")
    out = probe(m, np.zeros((2, 3, 1)), x0=np.array([0.0, 8.0]))
    np.testing.assert_allclose(out[:, :, 0], [[4, 2, 1], [4, 2, 1]])
