"""Walking the MLP-RNN continuum: add_blocks and mlp_continuum (issue 5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import BlockMatrix, IterativeMap, add_blocks, mlp_continuum
from itermap.analysis import fir_length, impulse_response


def _dense(block):
    return block.toarray() if hasattr(block, "toarray") else np.asarray(block)


def _plain_mlp(sizes, seed):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) for o in sizes[1:]]
    return IterativeMap.from_mlp(Ws, bs, activation="tanh")


def test_plain_continuum_is_an_mlp():
    sizes = [3, 5, 4, 2]
    m = mlp_continuum(sizes, rng=0)
    L = len(sizes) - 1
    assert m.sizes == tuple(sizes) and m.input_block == 0
    expected = np.zeros((L + 1, L + 1), dtype=bool)
    expected[np.arange(1, L + 1), np.arange(L)] = True
    assert np.array_equal(m.block_matrix.block_pattern(), expected)
    assert m.block_matrix.nnz == sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert fir_length(m) == L
    # it computes the MLP it holds: a forward pass by hand
    Ws = [m.block_matrix.block(l + 1, l) for l in range(L)]
    x = np.random.default_rng(1).normal(size=3)
    h = x
    for l, W in enumerate(Ws):
        h = W @ h
        h = np.tanh(h) if l < L - 1 else h
    out = itermap.iterate(m, m.zeros(), L, inputs=x, keep="last").final
    assert np.allclose(m.readout(out), h, atol=1e-12)


def test_recurrent_and_skip_blocks_where_expected():
    sizes = [2, 4, 4, 3]
    rec = mlp_continuum(sizes, recurrent=0.5, rng=0)
    pat = rec.block_matrix.block_pattern()
    assert all(pat[l, l] for l in range(1, 4)) and not pat[0, 0]
    assert fir_length(rec) is None
    skip = mlp_continuum(sizes, skip=0.5, rng=0)
    pat = skip.block_matrix.block_pattern()
    assert pat[2, 0] and pat[3, 0] and pat[3, 1] and not pat[0, 2]
    # skips add shortcuts but no loops: the memory is still the depth
    assert fir_length(skip) == 3
    assert impulse_response(skip, np.full(skip.dim, 0.1), 6).length == 3


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=2, max_size=5), st.floats(0.0, 1.0),
       st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_equal_params_keeps_the_nonzero_count(sizes, recurrent, skip, seed):
    plain = mlp_continuum(sizes, rng=seed)
    extra = sum(int(round(recurrent * s * s)) or (1 if recurrent > 0 else 0) for s in sizes[1:])
    extra += sum(int(round(skip * sizes[i] * sizes[j])) or (1 if skip > 0 else 0)
                 for j in range(len(sizes)) for i in range(j + 2, len(sizes)))
    if extra > plain.block_matrix.nnz:
        with pytest.raises(ValueError, match="equal_params"):
            mlp_continuum(sizes, recurrent=recurrent, skip=skip, equal_params=True, rng=seed)
        return
    same = mlp_continuum(sizes, recurrent=recurrent, skip=skip, equal_params=True, rng=seed)
    assert same.block_matrix.nnz == plain.block_matrix.nnz
    more = mlp_continuum(sizes, recurrent=recurrent, skip=skip, rng=seed)
    assert more.block_matrix.nnz == plain.block_matrix.nnz + extra


def test_add_blocks_counts_values_and_keeps_the_map():
    m = _plain_mlp([3, 10, 10, 2], seed=0)
    out = add_blocks(m, {(2, 2): 0.3, (1, 2): 0.25}, rng=1, scale=2.0)
    bm = out.block_matrix
    assert bm.blocks[(2, 2)].nnz == 30 and bm.blocks[(1, 2)].nnz == 25
    # untouched blocks are the same arrays' values
    for key, block in m.block_matrix.blocks.items():
        assert np.array_equal(_dense(bm.block(*key)), block)
    assert np.array_equal(out.bias, m.bias)
    assert [a.name for a in out.activations] == [a.name for a in m.activations]
    assert out.input_block == m.input_block
    # values: N(0, scale^2 / k) with k = entries per row (3 for the (2, 2) block)
    big = add_blocks(_plain_mlp([2, 400, 1], seed=0), {(1, 1): 0.05}, rng=3, scale=2.0)
    vals = big.block_matrix.blocks[(1, 1)].data
    assert vals.std() == pytest.approx(2.0 / np.sqrt(20), rel=0.05)


def test_add_blocks_thins_existing_entries_uniformly():
    m = _plain_mlp([5, 20, 20, 5], seed=0)
    before = m.block_matrix.nnz
    out = add_blocks(m, {(1, 1): 0.5}, rng=2, equal_params=True)
    assert out.block_matrix.nnz == before
    removed = {k: m.block_matrix.blocks[k].size - np.count_nonzero(
        _dense(out.block_matrix.block(*k))) for k in m.block_matrix.blocks}
    assert sum(removed.values()) == 200
    # removed entries spread over the blocks about in proportion to their sizes
    # (100, 400, 100 entries: expected 33, 133, 33)
    assert removed[(2, 1)] > removed[(1, 0)] and removed[(2, 1)] > removed[(3, 2)]
    # kept entries keep their values
    for k, block in m.block_matrix.blocks.items():
        new = _dense(out.block_matrix.block(*k))
        mask = new != 0
        assert np.array_equal(new[mask], block[mask])


def test_add_blocks_on_a_block_matrix_and_determinism():
    bm = BlockMatrix([2, 3], {(1, 0): np.ones((3, 2))})
    a = add_blocks(bm, {(1, 1): 0.5, (0, 1): 1.0}, rng=5)
    b = add_blocks(bm, {(1, 1): 0.5, (0, 1): 1.0}, rng=np.random.default_rng(5))
    assert isinstance(a, BlockMatrix)
    assert np.array_equal(a.to_dense(), b.to_dense())
    assert a.nnz == 6 + 4 + 6  # round(0.5 * 9) = 4


def test_walk_along_the_continuum_memory_grows():
    # from MLP to RNN at equal parameter count: finite memory then infinite
    lengths = []
    for p in (0.0, 0.1, 0.5):
        m = mlp_continuum([2, 6, 6, 2], recurrent=p, equal_params=True, rng=0)
        lengths.append(fir_length(m))
    assert lengths == [3, None, None]


def test_bad_input():
    m = _plain_mlp([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="already stored"):
        add_blocks(m, {(1, 0): 0.5})
    with pytest.raises(ValueError, match="input block"):
        add_blocks(m, {(0, 1): 0.5})
    with pytest.raises(ValueError, match="does not exist"):
        add_blocks(m, {(3, 1): 0.5})
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        add_blocks(m, {(1, 1): 1.5})
    with pytest.raises(TypeError, match="number"):
        add_blocks(m, {(1, 1): "dense"})
    with pytest.raises(TypeError, match="pair"):
        add_blocks(m, {1: 0.5})
    with pytest.raises(TypeError, match="dict"):
        add_blocks(m, [((1, 1), 0.5)])
    with pytest.raises(TypeError, match="IterativeMap or a BlockMatrix"):
        add_blocks(np.eye(3), {(0, 0): 0.5})
    with pytest.raises(ValueError, match="finite"):
        add_blocks(m, {(1, 1): 0.5}, scale=np.inf)
    with pytest.raises(ValueError, match="equal_params"):
        add_blocks(m, {(1, 1): 1.0, (2, 2): 1.0, (2, 0): 1.0}, equal_params=True)
    with pytest.raises(ValueError, match="at least one layer"):
        mlp_continuum([3])
    with pytest.raises(ValueError, match="positive"):
        mlp_continuum([3, 0, 2])
    with pytest.raises(ValueError, match="recurrent"):
        mlp_continuum([3, 2], recurrent=-0.1)
    with pytest.raises(TypeError, match="sizes"):
        mlp_continuum(3)
