"""The equal-parameter comparison (issue 14, section 5) and the training figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import itermap  # noqa: E402
from itermap.analysis import (  # noqa: E402
    ParameterComparison,
    digits_model,
    equal_parameter_comparison,
    plots,
    sparse_hidden_width,
)


def test_mlp_trainable_count_is_the_layer_weights_and_biases():
    # 64*64 + 64 + 64*10 + 10, counted by hand
    assert itermap.trainable_count(digits_model("mlp", hidden=64, rng=0)) == 4810


@pytest.mark.parametrize("density", [0.5, 0.25, 0.1])
def test_sparse_maps_match_the_mlp_count_within_a_few_percent(density):
    width = sparse_hidden_width(4810, density)
    counts = [itermap.trainable_count(digits_model("sparse", hidden=width, density=density,
                                                   rng=s)) for s in range(3)]
    assert abs(np.mean(counts) - 4810) / 4810 < 0.05
    pattern = digits_model("sparse", hidden=width, density=density, rng=0).block_matrix
    assert pattern.block_pattern()[1:].all() and not pattern.block_pattern()[0].any()


def test_continuum_adds_every_block_outside_the_input_rows():
    m = digits_model("continuum", hidden=8, rng=0)
    assert m.block_matrix.block_pattern().astype(int).tolist() == [[0, 0, 0], [1, 1, 1],
                                                                   [1, 1, 1]]


def test_comparison_result_saves_tabulates_and_plots(tmp_path):
    res = equal_parameter_comparison(hidden=8, densities=(0.5,), seeds=2, epochs=2)
    assert res.accuracy.shape == (3, 2) and np.all((res.accuracy > 0.1) & (res.accuracy <= 1))
    back = itermap.load(itermap.save(res, str(tmp_path / "cmp.npz")))
    assert isinstance(back, ParameterComparison)
    np.testing.assert_array_equal(back.accuracy, res.accuracy)
    assert res.table().count("\n") == 4 and "sparse R=0.5" in res.table()
    ax = plots.accuracy_vs_parameters(back)
    assert len(ax.get_legend().get_texts()) == 3


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="kind"):
        digits_model("cnn")
    with pytest.raises(ValueError, match="density"):
        sparse_hidden_width(100, 0.0)
    with pytest.raises(ValueError, match="seeds"):
        equal_parameter_comparison(seeds=[])


def test_fixed_points_pca_projects_on_the_leading_axis():
    # states spread along e0 only: the first principal component is e0
    rng = np.random.default_rng(0)
    states = np.zeros((50, 4, 3))
    states[..., 0] = rng.normal(size=(50, 4)) * 5
    states[..., 1] = rng.normal(size=(50, 4)) * 0.1
    pts = {"points": np.array([[2.0, 0.0, 0.0]]), "n_unstable": np.array([0])}
    ax = plots.fixed_points_pca(pts, states)
    mean = states.reshape(-1, 3).mean(axis=0)
    x = ax.collections[-1].get_offsets()[0, 0]
    assert abs(abs(x) - abs(2.0 - mean[0])) < 1e-2
    with pytest.raises(ValueError, match="dim"):
        plots.fixed_points_pca({"points": np.zeros((1, 2)), "n_unstable": [0]}, states)


def test_flip_flop_analysis_finds_the_eight_memories(tmp_path):
    from pathlib import Path

    from itermap.analysis import flip_flop_analysis

    net = itermap.load(Path(__file__).resolve().parent.parent / "data" / "trained"
                       / "flip_flop_rnn.npz")
    res = flip_flop_analysis(net, trials=32, steps=200, starts=512, rng=0)
    assert res.bit_accuracy >= 0.99
    assert int(res.stable.sum()) == 8 and res.n_patterns == 8
    # saddles with one unstable direction sit between the memories (Sussillo and Barak)
    assert np.sum(res.n_unstable == 1) >= 3
    # each stable point is a fixed point of the map at zero input, independently checked
    pts = res.points[res.stable]
    np.testing.assert_allclose(net.step(pts, np.zeros((8, 3))), pts, atol=1e-9)
    back = itermap.load(itermap.save(res, str(tmp_path / "ff.npz")))
    assert back.n_patterns == 8
