"""Figures reviewed by looking at their PNGs (round 24): each defect found there, checked
here by geometry (window extents from the renderer), not by pixels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from itermap.analysis import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _points_px(ax, x, y):
    """Display coordinates of data points ``(x, y)``."""
    return ax.transData.transform(np.column_stack([x, y]))


# -- lyapunov_spectrum: the D_KY note ------------------------------------------------------
@pytest.mark.parametrize("exponents", [
    [-2.2, -2.2],                        # a contracting 2-unit network: a flat spectrum
    [-0.05, -0.06, -0.06, -0.07, -0.08],  # slow and flat
    [-np.inf] * 19,                      # an MLP: every exponent an exact collapse
])
def test_kaplan_yorke_note_covers_no_exponent(exponents):
    exps = np.array(exponents)
    with plots.paper_style(columns=1):
        ax = plots.lyapunov_spectrum({"exponents": exps, "kaplan_yorke_dimension": 0.0})
    r = _renderer(ax.figure)
    note = ax.texts[0].get_window_extent(r).expanded(1.0, 1.0)
    idx = np.arange(1, exps.size + 1)
    finite = np.isfinite(exps)
    pts = _points_px(ax, idx[finite], exps[finite])
    # -inf: triangles on the bottom edge (3.5% up the Axes)
    bottom = ax.transAxes.transform([[0.0, 0.035]])[0, 1]
    pts = np.vstack([pts, np.column_stack([ax.transData.transform(
        np.column_stack([idx[~finite], np.zeros((~finite).sum())]))[:, 0],
        np.full((~finite).sum(), bottom)])])
    assert not any(note.contains(x, y) for x, y in pts), (note, pts)
    if ax.get_legend() is not None:  # the key of the collapses stays off the note
        assert not ax.get_legend().get_window_extent(r).overlaps(note)


# -- save_figure: a stem with a dot ----------------------------------------------------------
def test_save_figure_keeps_a_dot_in_the_stem_and_replaces_a_format_suffix(tmp_path):
    fig, ax = plt.subplots()
    written = [plots.save_figure(fig, tmp_path / f"spectrum_gain{g}") for g in (1.5, 1.7)]
    names = sorted(p.name for p in tmp_path.iterdir())
    # each gain its own files (the stem lost ".5" and ".7": both wrote spectrum_gain1.*)
    assert names == ["spectrum_gain1.5.pdf", "spectrum_gain1.5.png",
                     "spectrum_gain1.7.pdf", "spectrum_gain1.7.png"], (names, written)
    paths = plots.save_figure(fig, tmp_path / "fig.pdf")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["fig.pdf", "fig.png"]
