"""BlockMatrix.from_description (the paper's MaskedLinear language), trainable masks,
and the parametrised activations of torch.nn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itermap
from itermap import BlockMatrix
from itermap._maps._activations import get_activation


def dense(b):
    return b.toarray() if hasattr(b, "toarray") else np.asarray(b)


def one_block(token, init="G", train=True, m=6, n=6, rng=0):
    W = BlockMatrix.from_description([m, n], [m, n], [[0, 0], [token, 0]],
                                     [[0, 0], [init, 0]], [[False, False], [train, False]],
                                     rng=rng)
    return W, dense(W.block(1, 0))


def test_block_types_place_their_entries():
    _, b = one_block("W")
    assert np.count_nonzero(b) == 36
    _, b = one_block("D", m=4, n=6)
    assert np.array_equal(b != 0, np.eye(6, 4, dtype=bool))  # block (1, 0) is 6 x 4
    _, b = one_block("R=0.3", m=40, n=40)
    assert 0.2 < np.count_nonzero(b) / 1600 < 0.4
    _, b = one_block("Row=3", m=20, n=50)
    rows = np.count_nonzero(b, axis=1)
    assert rows.max() <= 3 and rows.min() >= 1


def test_s_and_row_draw_with_replacement():
    # 40 draws into a 3 x 3 block cannot give 40 entries: at most 9
    _, b = one_block("S=40", m=3, n=3)
    assert np.count_nonzero(b) <= 9
    # across seeds, Row=4 in 5 columns must sometimes repeat a column (fewer than 4)
    counts = [np.count_nonzero(one_block("Row=4", m=5, n=5, rng=s)[1], axis=1)
              for s in range(5)]
    assert min(c.min() for c in counts) < 4


def test_initializations():
    _, b = one_block("W", "C=0.25")
    assert np.all(b == 0.25)
    _, b = one_block("W", 1)
    assert np.all(b == 1)
    _, b = one_block("W", "U=2,3", m=30, n=30)
    assert b.min() >= 2 and b.max() <= 3
    _, b = one_block("W", "G=5,0.01", m=30, n=30)
    assert abs(b.mean() - 5) < 0.01 and abs(b.std() - 0.01) < 0.002
    arr = np.arange(1.0, 37.0).reshape(6, 6)
    _, b = one_block("D", arr)
    assert np.array_equal(b, np.diag(np.diag(arr)))


def test_trainable_masks_and_the_papers_count():
    W, b = one_block("R=0.3", train=True, m=10, n=10)
    assert W.trainable_count == 100  # the paper's quirk: every entry of the block
    W, b = one_block("R=0.3", train="non-zero", m=10, n=10)
    assert W.trainable_count == np.count_nonzero(b)
    assert np.array_equal(W.trainable[(1, 0)], b != 0)
    W, _ = one_block("W", train=False)
    assert W.trainable_count == 0 and W.trainable == {}
    # a block initialised to zeros is not stored, but stays trainable
    W, b = one_block("W", init=0, train=True)
    assert (1, 0) not in W.blocks and W.trainable_count == 36


def test_default_trainable_follows_the_stored_blocks():
    W = BlockMatrix.from_pattern([3, 4], [["0", "0"], ["W", "S=5"]], rng=0)
    assert W.trainable_count == 12 + 5
    W2 = W.to("numpy")
    assert W2.trainable_count == 17


def test_one_value_describes_the_non_zero_blocks():
    W = BlockMatrix.from_description([2, 3], [2, 3], [[0, 0], ["W", "D"]], "C=2", True)
    assert W.trainable_count == 6 + 9 and W.nnz == 6 + 3
    assert np.all(dense(W.block(1, 0)) == 2)


def test_same_seed_same_matrix():
    a = BlockMatrix.from_description([3, 4], [3, 4], [["D", "R=0.5"], ["S=4", "Row=2"]],
                                     "G", True, rng=7)
    b = BlockMatrix.from_description([3, 4], [3, 4], [["D", "R=0.5"], ["S=4", "Row=2"]],
                                     "G", True, rng=7)
    assert np.array_equal(a.to_dense(), b.to_dense())


@pytest.mark.parametrize("kwargs,match", [
    ({"col_sizes": [2, 4]}, "col_sizes"),
    ({"block_types": [["W", "X"], [0, 0]]}, r"block \(0, 1\).*unknown block type"),
    ({"block_types": [["R=2", 0], [0, 0]]}, r"block \(0, 0\).*probability"),
    ({"block_types": [["S", 0], [0, 0]]}, "needs '=value'"),
    ({"block_types": [["W"]]}, "block_types must be a 2 x 2 grid"),
    ({"initialization_types": [["Q", 0], [0, 0]]}, "unknown initialization"),
    ({"initialization_types": [["U=3,1", 0], [0, 0]]}, "a > b"),
    ({"initialization_types": [[np.ones((3, 3)), 0], [0, 0]]}, "has shape"),
    ({"trainable": [["maybe", False], [False, False]]}, "trainable must be"),
    ({"trainable": [[True, True], [False, False]]}, r"block \(0, 1\): a 0 block must not"),
    ({"initialization_types": [["G", "G"], [0, 0]]}, "must be initialised 0"),
])
def test_bad_descriptions_name_the_block(kwargs, match):
    args = {"row_sizes": [2, 3], "col_sizes": [2, 3], "block_types": [["W", 0], [0, 0]],
            "initialization_types": [["G", 0], [0, 0]],
            "trainable": [[True, False], [False, False]]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        BlockMatrix.from_description(**args)


def test_trainable_argument_is_checked():
    with pytest.raises(ValueError, match="has shape"):
        BlockMatrix([2, 3], {(1, 0): np.ones((3, 2))}, trainable={(1, 0): np.ones((2, 2))})
    with pytest.raises(ValueError, match="outside"):
        BlockMatrix([2, 3], trainable={(2, 0): np.ones((3, 2))})
    with pytest.raises(TypeError, match="trainable must be a dict"):
        BlockMatrix([2, 3], trainable=[1])


# -- parametrised activations -----------------------------------------------------
NAMES = ["elu(alpha=0.3)", "leaky_relu(negative_slope=0.2)", "softplus(beta=2.0, threshold=3.0)",
         "gelu", "gelu(approximate='tanh')", "silu"]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=30, deadline=None)
@given(z=st.floats(-8, 8).filter(lambda v: abs(v) > 1e-3 and abs(v - 1.5) > 1e-3))
def test_derivatives_match_central_differences(name, z):
    a = get_activation(name)
    h = 1e-6
    fd = (a.function(np.array(z + h), np) - a.function(np.array(z - h), np)) / (2 * h)
    assert abs(fd - a.derivative(np.array(z), np)) < 1e-6


def test_closed_forms():
    z = np.linspace(-3, 3, 13)
    from scipy.special import erf, expit

    np.testing.assert_allclose(get_activation("gelu").function(z, np),
                               z * 0.5 * (1 + erf(z / np.sqrt(2))), atol=1e-15)
    np.testing.assert_allclose(get_activation("silu").function(z, np), z * expit(z),
                               atol=1e-15)
    sp = get_activation("softplus(beta=2, threshold=3)").function(z, np)
    np.testing.assert_allclose(sp, np.where(2 * z > 3, z, np.log1p(np.exp(2 * z)) / 2),
                               atol=1e-15)


def test_parametrised_names_round_trip_through_save(tmp_path):
    m = itermap.IterativeMap(np.eye(3) * 0.5, activation=NAMES[0])
    itermap.save(m, tmp_path / "m.npz")
    back = itermap.load(tmp_path / "m.npz")
    assert back.activations[0].name == NAMES[0]


@pytest.mark.parametrize("spec,match", [
    ("elu(beta=1)", "unknown parameter"), ("tanh(a=1)", "takes no parameters"),
    ("elu(alpha=x)", "must be a number"), ("gelu(approximate='cubic')", "approximate"),
    ("softplus(beta=0)", "beta must not be 0"), ("swish", "unknown activation"),
])
def test_bad_activation_names(spec, match):
    with pytest.raises(ValueError, match=match):
        get_activation(spec)
