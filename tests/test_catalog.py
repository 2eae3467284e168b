"""A catalog of bad inputs across the public API: the error type and a message naming it."""

import numpy as np
import pytest

import itermap
import itermap.analysis as analysis
from itermap import BlockMatrix, IterativeMap, iterate
from itermap.systems import henon, linear, logistic

RNN = itermap.random_rnn(6, rng=0)
MLP = IterativeMap.from_mlp([np.ones((3, 2)), np.ones((1, 3))])

CATALOG = [
    # block matrices
    ("BlockMatrix wrong block shape", lambda: BlockMatrix([2, 3], {(1, 0): np.ones((2, 2))}),
     ValueError, r"block \(1, 0\) has shape \(2, 2\)"),
    ("BlockMatrix NaN weights", lambda: BlockMatrix([2], {(0, 0): np.full((2, 2), np.nan)}),
     ValueError, "NaN or inf"),
    ("from_pattern unknown token", lambda: BlockMatrix.from_pattern([2], [["Q"]]),
     ValueError, "unknown pattern token 'Q'"),
    ("from_pattern non-square identity", lambda: BlockMatrix.from_pattern(
        [2, 3], [["0", "I"], ["0", "0"]]), ValueError, "identity block must be square"),
    ("from_pattern wrong grid", lambda: BlockMatrix.from_pattern([2, 3], [["0"]]),
     ValueError, "2 x 2"),
    # maps
    ("IterativeMap non-square", lambda: IterativeMap(np.ones((2, 3))), ValueError, "square"),
    ("IterativeMap unknown activation", lambda: IterativeMap(np.eye(2), activation="gelu2"),
     ValueError, "unknown activation 'gelu2'"),
    ("IterativeMap mismatched sizes", lambda: IterativeMap(np.eye(4), sizes=[1, 2]),
     ValueError, "add up to 3"),
    ("from_mlp layer mismatch", lambda: IterativeMap.from_mlp([np.ones((3, 2)),
                                                               np.ones((1, 4))]),
     ValueError, "layer 1 expects 4 inputs but layer 0 has 3 outputs"),
    ("random_rnn density", lambda: itermap.random_rnn(5, density=2.0), ValueError, "density"),
    ("linear non-square", lambda: linear(np.ones((2, 3))), ValueError, "square"),
    ("logistic NaN r", lambda: logistic(float("nan")), ValueError, "finite"),
    ("step wrong dimension", lambda: henon().step(np.zeros(3)), ValueError,
     "dimension 3, but the map has dim=2"),
    ("step complex state", lambda: RNN.step(np.zeros(6, dtype=complex)), TypeError,
     "real floating"),
    ("tangent wrong shape", lambda: RNN.tangent(np.zeros(6), np.zeros(6)), ValueError,
     "tangent vectors v must have shape"),
    # iterate
    ("iterate x0 wrong dimension", lambda: iterate(RNN, np.zeros(5), 3), ValueError,
     "dimension 5"),
    ("iterate negative steps", lambda: iterate(RNN, np.zeros(6), -2), ValueError,
     "steps must be >= 0"),
    ("iterate inputs wrong shape", lambda: iterate(MLP, MLP.zeros(), 3, inputs=np.zeros(4)),
     ValueError, "input block has size 2"),
    ("iterate divergence", lambda: iterate(linear(np.array([[1e200]])), np.ones(1), 5),
     itermap.DivergenceError, "step 2"),
    # save / load
    ("save unsupported object", lambda: itermap.save(object(), "/tmp/never-written.npz"),
     TypeError, "cannot save"),
    ("save other suffix", lambda: itermap.save(RNN, "/tmp/never-written.txt"), ValueError,
     "must end in .npz"),
    ("save empty path", lambda: itermap.save(RNN, ""), ValueError, "path is empty"),
    ("save into a folder", lambda: itermap.save(RNN, "/tmp"), ValueError, "is a folder"),
    # analyses
    ("impulse in a missing block", lambda: analysis.impulse_response(
        MLP, MLP.zeros(), 5, inputs=np.ones(2), blocks=[7]), ValueError,
     "block 7, which does not exist"),
    ("impulse steps < 1", lambda: analysis.impulse_response(RNN, np.zeros(6), 0), ValueError,
     "steps must be >= 1"),
    ("fixed points wrong dimension", lambda: analysis.find_fixed_points(RNN, np.zeros((3, 5))),
     ValueError, r"shape \(B, 6\)"),
    ("fixed points period < 1", lambda: analysis.find_fixed_points(
        RNN, np.zeros((3, 6)), period=0), ValueError, "period must be >= 1"),
    ("fixed points tol <= 0", lambda: analysis.find_fixed_points(RNN, np.zeros((3, 6)), tol=0),
     ValueError, "tol must be > 0"),
    ("fixed points complex starts", lambda: analysis.find_fixed_points(
        RNN, np.zeros((3, 6), dtype=complex)), TypeError, "real floating"),
    ("sparsity_graph level", lambda: analysis.sparsity_graph(RNN, level="node"), ValueError,
     r"level must be one of \['unit', 'block'\]"),
    ("fir_length not a map", lambda: analysis.fir_length("x"), TypeError, "map must be"),
    ("memory_capacity autonomous map", lambda: analysis.memory_capacity(
        RNN, max_delay=3, steps=100, rng=0), ValueError, "needs a driven map"),
    ("sweep grid value not a list", lambda: analysis.sweep(abs, {"a": 3}), TypeError,
     r"grid\['a'\] must be a list"),
    ("add_blocks onto a stored block", lambda: itermap.add_blocks(MLP, {(1, 0): 0.5}),
     ValueError, r"block \(1, 0\) is already stored"),
]
if hasattr(analysis, "lyapunov_spectrum"):
    CATALOG += [
        ("lyapunov k > dim", lambda: analysis.lyapunov_spectrum(henon(), np.zeros(2), 10, k=3,
                                                                rng=0),
         ValueError, "k=3 exceeds"),
        ("lyapunov steps < 1", lambda: analysis.lyapunov_spectrum(henon(), np.zeros(2), 0, rng=0),
         ValueError, "steps must be >= 1"),
        ("lyapunov divergence", lambda: analysis.lyapunov_spectrum(
            linear(np.array([[1e200]])), np.ones(1), 10, rng=0), itermap.DivergenceError,
         "overflowed to inf or NaN"),
    ]


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in CATALOG],
                         ids=[c[0] for c in CATALOG])
@pytest.mark.filterwarnings("ignore:overflow")
def test_bad_input_gets_a_named_error(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
