"""Round 24, lead: defects found and fixed by the lead (each test failed before its fix)."""

from __future__ import annotations

import numpy as np
import pytest

import itermap

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _render(fig):
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255.0


@pytest.mark.parametrize("dpi", [100, 150, 300])
def test_block_matrix_draws_a_dense_block_without_white_seams(dpi):
    # markers of 0.9 of a cell, snapped by Agg to whole pixels, left a white line every
    # few cells across a dense block (a figure for a paper showed a grid that W lacks)
    import matplotlib.pyplot as plt

    from itermap.analysis import plots
    from itermap.analysis.plots._common import POSITIVE

    mlp = itermap.IterativeMap.from_mlp([np.ones((60, 50)), np.ones((10, 60))])
    fig, ax = plt.subplots(figsize=(3.3, 3.3), dpi=dpi)
    plots.block_matrix(mlp, ax=ax)
    img = _render(fig)
    # the first weight block: rows 50-109 (block 1), columns 0-49 (block 0), in pixels
    to_px = ax.transData.transform
    (x0, y0), (x1, y1) = to_px((-0.5, 49.5)), to_px((49.5, 109.5))
    h = img.shape[0]
    rows = slice(int(h - y0) + 3, int(h - y1) - 3)   # display y runs upwards
    cols = slice(int(x0) + 3, int(x1) - 3)
    block = img[rows, cols]
    assert block.size > 0
    red = np.array(matplotlib.colors.to_rgb(POSITIVE))
    worst = np.abs(block - red).max(axis=-1).max()
    plt.close(fig)
    assert worst < 0.05, f"a pixel of the dense block is {worst:.2f} off its colour"


def test_block_matrix_image_holds_each_entry_in_its_cell():
    # the image that draws the cells: entry W[i, j] is the pixel (row i, column j)
    import matplotlib.pyplot as plt

    from itermap.analysis import plots

    W = np.zeros((7, 7))
    W[2, 5], W[6, 0], W[3, 3] = 1.5, -2.0, 0.25
    fig, ax = plt.subplots()
    plots.block_matrix(W, ax=ax)
    (image,) = ax.get_images()
    rgba = np.asarray(image.get_array())
    alpha = rgba[..., 3]
    assert set(zip(*np.nonzero(alpha))) == {(2, 5), (6, 0), (3, 3)}
    assert rgba[2, 5, 0] > rgba[2, 5, 2] and rgba[6, 0, 2] > rgba[6, 0, 0]
    # the lines that hold the entries stay (counts, data) but are not drawn twice
    pos, neg = ax.get_lines()[:2]
    assert not pos.get_visible() and not neg.get_visible()
    assert pos.get_label() == "positive (2)" and neg.get_label() == "negative (1)"
    plt.close(fig)


def test_lyapunov_history_of_many_exponents_keys_the_ends_not_every_line():
    # 64 exponents gave a key of 64 entries under the panel, taller than the panel itself,
    # which squeezed a multi-panel figure's Axes to nothing under tight_layout
    import matplotlib.pyplot as plt

    from itermap.analysis import plots

    k = 64
    res = {"history": np.linspace(0.2, -5.0, k)[None, :] * np.ones((12, 1)),
           "history_steps": np.arange(1, 13) * 25}
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    ax = plots.lyapunov_history(res, ax=axes[1])
    fig.tight_layout()
    fig.canvas.draw()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["$\\lambda_{1}$", "$\\lambda_{33}$", "$\\lambda_{64}$"]
    assert ax.get_legend().get_window_extent().height < 0.5 * ax.bbox.height
    assert ax.bbox.height > 0.4 * fig.bbox.height     # the panel keeps its room
    # every exponent is still drawn, each its own colour along the ramp
    lines = [ln for ln in ax.get_lines() if ln.get_label().startswith("$\\lambda")]
    assert len(lines) == k
    colours = {matplotlib.colors.to_hex(ln.get_color()) for ln in lines}
    assert len(colours) > k // 2
    plt.close(fig)


def test_lyapunov_history_of_a_few_exponents_keys_each():
    from itermap.analysis import plots

    res = {"history": np.array([[0.5, -1.4, -2.0], [0.42, -1.6, -2.1]]),
           "history_steps": [10, 1000]}
    ax = plots.lyapunov_history(res)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "$\\lambda_{1}$", "$\\lambda_{2}$", "$\\lambda_{3}$"]


def test_zeros_of_a_map_on_another_array_library_is_on_that_library():
    # Map.zeros built a NumPy array of the map's dtype: an array_api_strict map's dtype is
    # no NumPy dtype ("Cannot interpret 'array_api_strict.float64' as a data type")
    xs = pytest.importorskip("array_api_strict")
    m = itermap.LinearStateSpace(xs.asarray(-np.eye(2)), xs.asarray(np.ones(2)),
                                 xs.asarray(np.ones(2)), dt=0.1)
    for z, shape in ((m.zeros(), (2,)), (m.zeros(3), (3, 2))):
        assert type(z).__module__.startswith("array_api_strict")
        assert z.dtype == m.dtype and tuple(z.shape) == shape
        assert not bool(xs.any(z != 0))
    x1 = m.step(m.zeros(), xs.asarray([1.0]))
    np.testing.assert_allclose(np.asarray(x1), np.asarray(m.Bbar)[:, 0])


def test_find_fixed_points_from_a_result_says_which_field_to_pass():
    # a FixedPoints result (say, to polish its points again) or an iterate trajectory as
    # the starts said "got shape ()"
    from itermap.analysis import find_fixed_points

    m = itermap.random_rnn(6, gain=1.5, rng=0)
    fp = find_fixed_points(m, np.random.default_rng(1).normal(size=(4, 6)), progress=False)
    with pytest.raises(TypeError, match=r"x0 .*FixedPoints: pass its \.points"):
        find_fixed_points(m, fp, progress=False)
    traj = itermap.iterate(m, m.zeros() + 0.1, 5)
    with pytest.raises(TypeError, match=r"x0 .*: pass its \.states"):
        find_fixed_points(m, traj, progress=False)
    again = find_fixed_points(m, fp.points, progress=False)   # what the message says works
    assert len(again) == len(fp)


def test_as_rng_says_what_to_pass_for_a_random_state_or_a_whole_float():
    # the legacy RandomState (what older scripts and scikit-learn pass) and a seed read
    # from a JSON file as 0.0 were refused without the fix
    with pytest.raises(TypeError, match=r"RandomState.*default_rng"):
        itermap.as_rng(np.random.RandomState(0))
    with pytest.raises(TypeError, match=r"pass the int 7"):
        itermap.as_rng(7.0)
    with pytest.raises(TypeError, match=r"got float$"):
        itermap.as_rng(0.5)
    assert itermap.as_rng(7).random() == np.random.default_rng(7).random()


def test_from_torch_of_a_module_on_the_meta_device_says_to_load_its_weights():
    # a module built under torch.device("meta") (accelerate's init_empty_weights) has
    # shapes but no values: from_torch raised torch's "Cannot copy out of meta tensor"
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"meta device.*load them first"):
        itermap.from_torch(torch.nn.Sequential(torch.nn.Linear(3, 4, device="meta")))
    net = torch.nn.Sequential(torch.nn.Linear(3, 4, device="meta"))
    net.to_empty(device="cpu")           # what the message says, then real weights
    with torch.no_grad():
        net[0].weight.copy_(torch.arange(12.0).reshape(4, 3))
        net[0].bias.zero_()
    m = itermap.from_torch(net)
    W = np.asarray(m.block_matrix.to_dense())
    np.testing.assert_array_equal(W[3:, :3], np.arange(12.0).reshape(4, 3))
