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
