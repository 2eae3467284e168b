"""A new user's first hour and a paper's figures (round 23): what they hit, checked on the
drawn artists' geometry (window extents after a draw), not on pixels."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402

import itermap  # noqa: E402
from itermap.analysis import basins, plots, sparsity_graph  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _box(fig, artist):
    """The artist's extent in pixels; the figure drawn once (its layout done) first."""
    if not getattr(fig, "_r23_drawn", False):
        fig.canvas.draw()
        fig._r23_drawn = True
    return artist.get_window_extent(fig.canvas.get_renderer())


def _inside(fig, artist):
    bb = _box(fig, artist)
    return bb.x0 >= -1 and bb.y0 >= -1 and bb.x1 <= fig.bbox.x1 + 1 and bb.y1 <= fig.bbox.y1 + 1


def _legends(ax):
    return [c for c in ax.get_children() if isinstance(c, Legend)]


def _overlap(a, b):
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


def _two_basins():
    m = itermap.IterativeMap(np.array([[2.0, 0.0], [0.0, 2.0]]))   # tanh(2x): two attractors
    g = np.linspace(-1, 1, 10)                                       # no start on 0
    X, Y = np.meshgrid(g, g)
    return basins(m, np.column_stack([X.ravel(), Y.ravel()]), steps=100), X.shape


_NEWTON = {"gains": np.array([0.5, 1.5, 2.5]), "lyapunov": np.array([[-0.6], [0.01], [0.2]]),
           "iterations": np.array([[4], [40], [128]]),
           "converged": np.array([[True], [True], [False]]), "steps": 128}


def _draw_alone(kind):
    """Each plot with a key under its Axes, on the figure it makes itself (ax=None)."""
    if kind == "basins":
        b, shape = _two_basins()
        return plots.basins(b, shape, extent=(-1, 1, -1, 1))
    if kind == "block_matrix":
        return plots.block_matrix(itermap.mlp_continuum([3, 6, 2], rng=0))
    if kind == "sparsity_graph":
        return plots.sparsity_graph(sparsity_graph(itermap.mlp_continuum([2, 4, 4, 1], rng=0)))
    if kind == "newton_lyapunov":
        return plots.newton_lyapunov(_NEWTON)
    res = {"exponents": np.linspace(0.3, -1.0, 8), "history_steps": np.arange(1, 11) * 100,
           "history": np.linspace(0.3, -1.0, 8)[None, :] * np.ones((10, 1))}
    return plots.lyapunov_history(res)


@pytest.mark.parametrize("kind", ["basins", "block_matrix", "sparsity_graph",
                                  "lyapunov_history", "newton_lyapunov"])
def test_a_figure_the_plot_makes_itself_keeps_its_keys_in_a_plain_savefig(kind):
    # ax=None: `ax.figure.savefig("fig.png")` (no bbox_inches="tight") used to cut the key
    # under the Axes off (the basins' colours, the block matrix's signs lost entirely)
    ax = _draw_alone(kind)
    fig = ax.figure
    assert _legends(ax)
    for leg in _legends(ax):
        assert _inside(fig, leg), kind
    for label in (ax.xaxis.label, ax.yaxis.label):
        assert not label.get_text() or _inside(fig, label)


def _grid_with_titles(draw):
    fig, axes = plt.subplots(2, 2, figsize=(8, 6), layout="constrained")
    for ax in axes.flat:
        assert draw(ax) is ax
        ax.set_title("(a) a panel title set after the plot")
    return fig, axes


@pytest.mark.parametrize("level", ["unit", "block"])
def test_sparsity_graph_keys_stay_clear_of_a_panel_title(level):
    G = sparsity_graph(itermap.mlp_continuum([3, 5, 5, 2], recurrent=0.2, rng=0))
    fig, axes = _grid_with_titles(lambda ax: plots.sparsity_graph(G, ax=ax, level=level))
    for ax in axes.flat:
        title = _box(fig, ax.title)
        keys = _legends(ax)
        assert len(keys) == 2                     # node colours and edges
        boxes = [_box(fig, k) for k in keys]
        for bb in boxes:
            assert not _overlap(bb, title)
            assert _inside(fig, keys[0]) and _inside(fig, keys[1])
        assert not _overlap(*boxes)               # the two keys stacked, not on each other
    # the edge key keeps being ax.get_legend(), with the sign (unit) or width (block) entries
    texts = [t.get_text() for t in axes[0, 0].get_legend().get_texts()]
    if level == "unit":
        assert texts[:2] == ["positive weight", "negative weight"]
    else:
        assert all(t.startswith("$\\|W_{ij}\\|_F$ = ") for t in texts[:2])


def test_newton_lyapunov_key_stays_clear_of_a_title_and_the_colour_bar_near_its_axes():
    fig, axes = _grid_with_titles(lambda ax: plots.newton_lyapunov(_NEWTON, ax=ax))
    for ax in axes.flat:
        leg = _box(fig, ax.get_legend())
        assert not _overlap(leg, _box(fig, ax.title))
        assert not _overlap(leg, _box(fig, ax.xaxis.label))    # under the x label
        assert leg.y1 <= _box(fig, ax.xaxis.label).y0 + 1
    # each colour bar right beside its own panel: a key wider than the Axes pushed it away
    for ax in axes.flat:
        (bar,) = ax.child_axes
        gap = bar.get_window_extent().x0 - ax.get_window_extent().x1
        assert 0 < gap < 0.3 * fig.dpi, gap
    # a figure it makes itself takes plt.tight_layout() without a word (a constrained one with
    # a figure-level colour bar refused: "Colorbar layout of new layout engine not compatible")
    ax = plots.newton_lyapunov(_NEWTON)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax.figure.tight_layout()


def test_continuation_legend_is_framed_so_its_marker_is_not_read_as_a_point():
    make = lambda u: itermap.IterativeMap(np.array([[2.0]]), bias=np.array([u]))  # noqa: E731
    c = itermap.analysis.continuation(make, np.linspace(1.0, -1.0, 41), np.array([0.99]))
    ax = plots.continuation(c)
    leg = ax.get_legend()
    assert [t.get_text() for t in leg.get_texts()] == ["fold"]
    assert leg.get_frame_on() and leg.get_frame().get_alpha() != 0


_SPEC = {"exponents": np.array([0.1, -0.2]), "history_steps": np.array([10, 20]),
         "history": np.array([[0.1, -0.2], [0.1, -0.2]])}


@pytest.mark.parametrize("draw", [
    lambda ax: plots.lyapunov_spectrum(_SPEC, ax=ax),
    lambda ax: plots.lyapunov_history(_SPEC, ax=ax),
    lambda ax: plots.eigenvalues(np.array([0.5, -0.2]), ax=ax),
    lambda ax: plots.trajectory(np.zeros((5, 2)), ax=ax),
    lambda ax: plots.impulse_response(np.ones((4, 1)), ax=ax),
    lambda ax: plots.newton_lyapunov(_NEWTON, ax=ax),
], ids=["spectrum", "history", "eigenvalues", "trajectory", "impulse", "newton"])
def test_a_grid_of_axes_or_a_string_for_ax_is_a_type_error_naming_ax(draw):
    _, axes = plt.subplots(1, 2)          # the whole array instead of axes[0]
    with pytest.raises(TypeError, match=r"ax must be one matplotlib Axes.*ndarray"):
        draw(axes)
    with pytest.raises(TypeError, match="ax must be"):
        draw("left")


def test_a_misspelled_axes_keyword_says_ax():
    _, ax = plt.subplots()
    with pytest.raises(TypeError, match="as ax="):
        plots.lyapunov_spectrum(_SPEC, axes=ax)
    with pytest.raises(TypeError, match="as ax="):
        plots.trajectory(np.zeros((5, 2)), axes=ax)


def test_lyapunov_panels_given_an_axes_is_a_type_error_naming_fig():
    _, ax = plt.subplots()
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        plots.lyapunov_panels(_SPEC, fig=ax)
    fig = plt.figure()
    assert plots.lyapunov_panels(_SPEC, fig=fig.subfigures(1, 2)[1]) is not None


def test_trajectory_takes_a_list_of_states_like_an_array():
    states = [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]]
    ax = plots.trajectory(states)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [0.1, 0.3, 0.5])
    np.testing.assert_array_equal(line.get_ydata(), [0.2, -0.4, 0.6])
    ax = plots.trajectory(states, time=True, dims=(1,))
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [0, 1, 2])


def test_eigenvalues_with_nan_is_a_value_error_naming_the_argument():
    # it crashed with an IndexError inside the grouping of equal spectra
    with pytest.raises(ValueError, match="fixed_points: the eigenvalues contain NaN"):
        plots.eigenvalues(np.array([[0.5, np.nan]]))
    with pytest.raises(ValueError, match="fixed_points"):
        plots.eigenvalues({"eigenvalues": np.array([[np.inf, 0.1]]), "stable": [False]})


def test_training_history_names_its_axis_for_both_curves_and_reads_its_log_ticks():
    hist = {"loss": np.array([2.0, 1.3, 0.8, 0.5, 0.35]),
            "val_loss": np.array([1.6, 0.9, 0.52, 0.35, 0.27])}
    ax = plots.training_history(hist)
    assert ax.get_ylabel() == "loss"          # the validation loss is on it too
    assert ax.get_yscale() == "log"
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels(which="both") if t.get_text()]
    assert labels and not any("times" in s or "^" in s for s in labels), labels
    # plain numbers that name their ticks (0.3 is 0.3)
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels(which="both")
             if t.get_text()}
    for text, y in ticks.items():
        assert float(text) == pytest.approx(y)
    ax = plots.training_history({"loss": np.array([2.0, 1.0])})
    assert ax.get_ylabel() == "training loss"


def test_training_history_of_one_epoch_draws_a_visible_point():
    ax = plots.training_history({"loss": np.array([0.7]), "val_loss": np.array([0.9])})
    for line in ax.get_lines():
        assert line.get_marker() not in (None, "None", "", " ")


def test_a_misspelled_report_option_is_named_under_the_report_usage_with_the_one_meant(capsys):
    from itermap.analysis.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["report", "--exmaple", "--out", "x"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "usage: itermap report" in err        # the options a student can use here
    assert "unrecognized arguments: --exmaple (did you mean --example?)" in err
    with pytest.raises(SystemExit):
        main(["demo", "--sed", "1"])
    assert "did you mean --seed?" in capsys.readouterr().err


def test_sparsity_graphs_in_a_row_keep_their_ticks_and_keys_to_their_own_panel():
    G = sparsity_graph(itermap.mlp_continuum([3, 5, 5, 2], recurrent=0.2, rng=0))
    assert any(u == v for u, v in G.edges)                # a self-loop: three edge entries
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), layout="constrained")
    for ax in axes:
        plots.sparsity_graph(G, ax=ax)
    width = fig.bbox.width / 3
    for i, ax in enumerate(axes):
        ticks = [_box(fig, t) for t in ax.get_xticklabels() if t.get_text()]
        assert len(ticks) == 4
        assert not any(_overlap(a, b) for a, b in zip(ticks, ticks[1:]))   # "block 0block 1"
        for key in _legends(ax):              # not under the next panel
            bb = _box(fig, key)
            assert i * width - 2 <= bb.x0 and bb.x1 <= (i + 1) * width + 2, (i, bb)
            assert _inside(fig, key)
