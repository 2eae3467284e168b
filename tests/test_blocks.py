import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from itermap import BlockMatrix
from tests.conftest import to_np


def test_column_vector_convention():
    # block (1, 0) carries block 0 (size 2) into block 1 (size 3)
    A = np.arange(6.0).reshape(3, 2) + 1
    W = BlockMatrix([2, 3], {(1, 0): A})
    x = np.array([1.0, -1.0, 0.0, 0.0, 0.0])
    y = W.to_dense() @ x
    np.testing.assert_array_equal(y[2:], A @ x[:2])
    np.testing.assert_array_equal(y[:2], 0.0)
    assert W.shape == (5, 5) and W.sizes == (2, 3) and W.nnz == 6
    assert W.density == pytest.approx(6 / 25)


def test_dense_and_sparse_views_agree(xp):
    rng = np.random.default_rng(0)
    blocks = {(0, 0): xp.asarray(rng.normal(size=(2, 2))),
              (2, 1): xp.asarray(rng.normal(size=(4, 3)))}
    W = BlockMatrix([2, 3, 4], blocks)
    dense = to_np(W.to_dense())
    ref = np.zeros((9, 9))
    ref[:2, :2] = to_np(blocks[(0, 0)])
    ref[5:, 2:5] = to_np(blocks[(2, 1)])
    np.testing.assert_array_equal(dense, ref)
    if getattr(xp, "__name__", "") in ("numpy", "cupy"):  # scipy.sparse or cupyx.scipy.sparse
        np.testing.assert_array_equal(to_np(W.to_sparse().toarray()), ref)


def test_missing_and_zero_blocks_are_not_stored():
    W = BlockMatrix([2, 2], {(0, 1): np.zeros((2, 2)), (1, 0): sp.csr_matrix((2, 2))})
    assert W.blocks == {} and W.nnz == 0
    np.testing.assert_array_equal(W.block(1, 1), np.zeros((2, 2)))


def test_pattern_tokens_have_their_structure():
    sizes = [6, 5, 4]
    pattern = [["I", "0", "0"],
               ["S=7", "D", "0"],
               ["R=0.5", "Row=2", "W"]]
    W = BlockMatrix.from_pattern(sizes, pattern, rng=3)
    np.testing.assert_array_equal(W.block(0, 0).toarray(), np.eye(6))
    assert W.block(1, 0).nnz == 7
    d = W.block(1, 1).toarray()
    np.testing.assert_array_equal(d, np.diag(np.diag(d)))
    row = W.block(2, 1).toarray()
    np.testing.assert_array_equal((row != 0).sum(axis=1), 2)
    assert np.count_nonzero(W.block(2, 2)) == 16
    assert (0, 1) not in W.blocks
    np.testing.assert_array_equal(W.block_pattern(),
                                  [[1, 0, 0], [1, 1, 0], [1, 1, 1]])


def test_pattern_is_reproducible_from_seed():
    p = [["0", "R=0.3"], ["W", "Row=1"]]
    a = BlockMatrix.from_pattern([20, 10], p, rng=11).to_dense()
    b = BlockMatrix.from_pattern([20, 10], p, rng=np.random.default_rng(11)).to_dense()
    c = BlockMatrix.from_pattern([20, 10], p, rng=12).to_dense()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pattern_scale_gives_unit_gain_rows():
    # entries ~ N(0, scale^2 / m) with m nonzeros per row: each row's squared norm ~ scale^2
    W = BlockMatrix.from_pattern([400, 400], [["0", "0"], ["R=0.1", "0"]], rng=0, scale=2.0)
    rows = W.block(1, 0).toarray()
    assert np.mean(np.sum(rows ** 2, axis=1)) == pytest.approx(4.0, rel=0.05)
    assert W.block(1, 0).nnz / 400 ** 2 == pytest.approx(0.1, rel=0.05)


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       seed=st.integers(0, 2 ** 16), data=st.data())
def test_random_patterns_are_consistent(sizes, seed, data):
    n = len(sizes)
    tokens = st.sampled_from(["0", "W", "D", "R=0.5", "S=1", "Row=1"])
    pattern = [[data.draw(tokens) for _ in range(n)] for _ in range(n)]
    W = BlockMatrix.from_pattern(sizes, pattern, rng=seed)
    dense = W.to_dense()
    assert dense.shape == (sum(sizes),) * 2
    assert np.count_nonzero(dense) == W.nnz
    np.testing.assert_array_equal(W.to_sparse().toarray(), dense)
    assert np.all(np.isfinite(dense))
    for (i, j) in W.blocks:
        assert pattern[i][j] != "0"


@pytest.mark.parametrize("sizes, blocks, exc, words", [
    ([2, 3], {(1, 0): np.ones((2, 2))}, ValueError, "shape"),
    ([2, 3], {(2, 0): np.ones((2, 2))}, ValueError, "outside"),
    ([2, 3], {(1, 0): np.full((3, 2), np.nan)}, ValueError, "NaN"),
    ([2, 3], {(1, 0): np.full((3, 2), np.inf)}, ValueError, "inf"),
    ([2, 0], {}, ValueError, "positive"),
    ([2, 1.5], {}, TypeError, "positive integers"),
    ([], {}, ValueError, "at least one"),
    ([2], [np.ones((2, 2))], TypeError, "dict"),
    ([2], {0: np.ones((2, 2))}, TypeError, "pair"),
    ([2], {(0, 0): np.ones((2, 2)) * 1j}, TypeError, "real"),
])
def test_bad_blocks(sizes, blocks, exc, words):
    with pytest.raises(exc, match=words):
        BlockMatrix(sizes, blocks)


@pytest.mark.parametrize("pattern, words", [
    ([["0", "I"], ["0", "0"]], "identity block must be square"),
    ([["X", "0"], ["0", "0"]], "unknown pattern token 'X'"),
    ([["R=2", "0"], ["0", "0"]], r"probability .* \[0, 1\]"),
    ([["S=100", "0"], ["0", "0"]], "more entries"),
    ([["Row=9", "0"], ["0", "0"]], "more entries per row"),
    ([["W=3", "0"], ["0", "0"]], "malformed"),
    ([["R", "0"], ["0", "0"]], "malformed"),
    ([["S=1.5", "0"], ["0", "0"]], "whole number"),
    ([["0"]], "2 x 2"),
])
def test_bad_patterns(pattern, words):
    with pytest.raises(ValueError, match=words):
        BlockMatrix.from_pattern([2, 3], pattern, rng=0)


def test_bad_rng():
    with pytest.raises(TypeError, match="rng"):
        BlockMatrix.from_pattern([2], [["W"]], rng="seed")
