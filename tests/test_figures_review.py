"""Figures that pass review (issue 24, section 1): each property a reviewer checked by
looking at the PNG, checked here on the drawn artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402

import itermap  # noqa: E402
from itermap.analysis import find_fixed_points, plots, sample_states, sparsity_graph  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _inside(fig, artist):
    """The artist's drawn extent lies within the figure (1 px of slack)."""
    fig.canvas.draw()
    bb = artist.get_window_extent(fig.canvas.get_renderer())
    return (bb.x0 >= -1 and bb.y0 >= -1 and bb.x1 <= fig.bbox.x1 + 1
            and bb.y1 <= fig.bbox.y1 + 1)


def _legends(ax):
    return [c for c in ax.get_children() if isinstance(c, Legend)]


def _odd_network_points():
    """Fixed points of a tanh network without bias: x* and -x* come in pairs."""
    net = itermap.random_rnn(40, gain=2.0, rng=3)
    x0 = sample_states(net, 24, steps=20, noise=0.5, rng=0)
    return find_fixed_points(net, x0, progress=False)


# -- fixed-point eigenvalues ---------------------------------------------------------------
def _pair_result():
    """Points p, -p (same spectrum) and q; p and q unstable, none stable."""
    ev_p = np.array([1.5, 0.3 + 0.4j, 0.3 - 0.4j])
    ev_q = np.array([0.9, -0.2, 1.2])
    p = np.array([0.4, -0.2, 0.7])
    return {"eigenvalues": np.array([ev_p, ev_p, ev_q]), "stable": np.array([False] * 3),
            "points": np.array([p, -p, np.array([0.1, 0.1, 0.1])])}


def test_eigenvalue_unit_circle_is_drawn_above_the_markers():
    ax = plots.eigenvalues(_odd_network_points())
    (circle,) = [ln for ln in ax.get_lines() if ln.get_label() == "unit circle"]
    markers = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert markers and circle.get_zorder() > max(c.get_zorder() for c in markers)


def test_eigenvalue_points_have_their_own_colours_and_pairs_are_drawn_once():
    res = _pair_result()
    ax = plots.eigenvalues(res)
    markers = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(markers) == 2                       # the ± pair once, the third point once
    np.testing.assert_allclose(np.sort(markers[0].get_offsets()[:, 0]),
                               np.sort(res["eigenvalues"][0].real))
    labels = [m.get_label() for m in markers]
    assert labels == ["#0 & #1 unstable (± pair)", "#2 unstable"]
    colours = [tuple(np.round(m.get_edgecolor()[0], 3)) for m in markers]
    assert len(set(colours)) == 2
    title = ax.get_legend().get_title().get_text()
    assert title.startswith("3 fixed points, 3 eigenvalues each")


def test_eigenvalue_pairs_of_a_real_odd_network():
    fp = _odd_network_points()
    pts = np.asarray(fp.points)
    # the pairs by hand: x* and -x* both found
    pairs = sum(np.any(np.linalg.norm(pts + p, axis=1) < 1e-6) for p in pts
                if np.linalg.norm(p) > 1e-6) // 2
    assert pairs >= 1
    ax = plots.eigenvalues(fp)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    if len(pts) - pairs <= 10:                     # per spectrum: each pair one entry
        assert sum("± pair" in t for t in texts) == pairs
        assert len(texts) == 1 + len(pts) - pairs
    else:                                          # by stability: the count is in the labels
        assert any(f"{int((~np.asarray(fp.stable)).sum())} points" in t for t in texts)


@pytest.mark.parametrize("n_points", [1, 5, 12])
def test_eigenvalue_legend_inside_the_figure_and_panels_keep_their_width(n_points):
    rng = np.random.default_rng(n_points)
    ev = rng.normal(size=(n_points, 30)) + 1j * rng.normal(size=(n_points, 30))
    with plots.paper_style(columns=2):
        fig, (a, b) = plt.subplots(1, 2)
        plots.eigenvalues({"eigenvalues": ev}, ax=a)
        plots.eigenvalues({"eigenvalues": ev[:1] * 0.5}, ax=b)
        fig.canvas.draw()
    for ax in (a, b):
        assert _inside(fig, ax.get_legend())
        # the legend is not wider than the panel's slot (half the figure)
        assert ax.get_legend().get_window_extent().width <= 0.5 * fig.bbox.width
        # no squeeze: each panel is at least 35 % of the figure wide
        assert ax.get_position().width >= 0.35
        lo, hi = ax.get_xlim()
        for label in ax.get_xticklabels():
            if lo <= label.get_position()[0] <= hi and label.get_text():
                assert _inside(fig, label)
    # no gap between the panels beyond the tick labels
    assert b.get_position().x0 - a.get_position().x1 < 0.12
    # a row of three (notebook 02): the tick labels of neighbours do not collide
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained")
    for ax in axes:
        plots.eigenvalues(ev[:1], ax=ax)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for left, right in zip(axes[:-1], axes[1:]):
        assert left.get_tightbbox(r).x1 <= right.get_tightbbox(r).x0 + 1


def test_eigenvalue_legend_counts_in_the_singular():
    ax = plots.eigenvalues({"eigenvalues": np.array([[0.5, 0.2]]), "stable": [True]})
    assert ax.get_legend().get_title().get_text() == "1 fixed point, 2 eigenvalues each"
    many = {"eigenvalues": np.linspace(0.1, 2.0, 24).reshape(12, 2)}
    texts = [t.get_text() for t in plots.eigenvalues(many).get_legend().get_texts()]
    stable = int(np.sum(np.abs(many["eigenvalues"]).max(axis=1) < 1))
    assert f"stable: {stable} points" in texts and "unstable: 12 points" not in texts


# -- impulse response -------------------------------------------------------------------------
def test_impulse_response_marks_where_a_finite_response_becomes_zero():
    from itermap.analysis import impulse_response

    mlp = itermap.mlp_continuum([2, 5, 5, 1], rng=0)
    ir = impulse_response(mlp, mlp.zeros(), 8, inputs=np.zeros(mlp.input_size))
    total = np.sqrt(np.sum(np.asarray(ir.norms) ** 2, axis=(1, 2)))
    # a 3-layer feedforward net: an impulse dies out after passing the three weight layers
    k0 = int(np.flatnonzero(total)[-1]) + 1
    assert np.all(total[k0:] == 0) and k0 == 3
    with plots.paper_style(columns=1):
        fig, ax = plt.subplots()
        plots.impulse_response(total[:, None], ax=ax, labels=["mlp"])
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == "v" and len(ln.get_xdata())]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [k0]
    assert [t.get_text() for t in ax.texts] == [f"0 from $k = {k0}$"]
    assert "exactly 0 from here on" in [t.get_text() for t in ax.get_legend().get_texts()]
    # the mark sits inside the Axes, above the bottom spine
    fig.canvas.draw()
    y = marks[0].get_transform().transform([[k0, marks[0].get_ydata()[0]]])[0, 1]
    assert ax.bbox.y0 < y < ax.bbox.y1
    # an infinite response (a recurrent map) gets no mark
    ax2 = plots.impulse_response(0.5 ** np.arange(6)[:, None])
    assert not ax2.texts


def test_impulse_response_says_response_in_block_and_keeps_its_y_label():
    norms = np.zeros((6, 2, 3))
    norms[:, 0, 1] = 2.0 ** -np.arange(6)
    norms[:, 1, 2] = 3.0 ** -np.arange(6)
    with plots.paper_style(columns=1):
        fig, ax = plt.subplots()
        plots.impulse_response({"norms": norms}, ax=ax)
        fig.canvas.draw()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["response in block 1", "response in block 2"]
    assert _inside(fig, ax.yaxis.label)


# -- sparsity graph ----------------------------------------------------------------------------
def test_sparsity_graph_is_drawn_by_block_above_a_few_hundred_edges():
    net = itermap.mlp_continuum([12, 30, 30, 4], rng=0)     # 76 units, 1,380 edges
    G = sparsity_graph(net)
    assert G.number_of_nodes() < 300 < G.number_of_edges()
    ax = plots.sparsity_graph(G)
    (nodes,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(nodes.get_offsets()) == 4
    small = sparsity_graph(itermap.mlp_continuum([2, 4, 4, 1], rng=0))  # 28 edges
    ax = plots.sparsity_graph(small, arrows=False)
    (nodes,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(nodes.get_offsets()) == 11


@pytest.mark.parametrize("level", ["unit", "block"])
def test_sparsity_graph_has_a_legend_for_the_node_colours(level):
    net = itermap.mlp_continuum([2, 4, 4, 1], rng=0)
    with plots.paper_style(columns=1):
        fig, ax = plt.subplots()
        plots.sparsity_graph(sparsity_graph(net), ax=ax, labels=["x", "h1", "h2", "y"],
                             level=level)
    (nodes,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    face = {tuple(np.round(c[:3], 3)) for c in nodes.get_facecolors()}
    (key,) = [leg for leg in _legends(ax) if leg.get_title().get_text().startswith("node")]
    entries = {t.get_text(): tuple(np.round(matplotlib.colors.to_rgb(h.get_color()), 3))
               for t, h in zip(key.get_texts(), key.legend_handles)}
    assert list(entries) == ["x", "h1", "h2", "y"]
    assert set(entries.values()) == face                   # one colour per block, all keyed
    assert _inside(fig, key)


# -- Lyapunov spectra --------------------------------------------------------------------
def test_lyapunov_spectrum_all_negative_says_why_dky_is_zero():
    from itermap.analysis import lyapunov_spectrum

    m = itermap.systems.linear(np.diag([0.5, 0.2]))
    res = lyapunov_spectrum(m, np.ones(2), 2000, transient=100, rng=0)
    np.testing.assert_allclose(res.exponents, np.log([0.5, 0.2]), atol=1e-3)
    assert res.kaplan_yorke_dimension == 0.0
    (text,) = plots.lyapunov_spectrum(res).texts
    assert "all $\\lambda_i < 0$" in text.get_text() and "fixed point" in text.get_text()
    (text,) = plots.lyapunov_spectrum({"exponents": [0.4, -1.6],
                                       "kaplan_yorke_dimension": 1.25}).texts
    assert text.get_text() == "$D_{KY} = 1.25$"


@pytest.mark.parametrize("k", [2, 7, 12, 30, 60, 100, 333])
def test_lyapunov_spectrum_index_ticks_start_at_one_as_integers(k):
    ax = plots.lyapunov_spectrum(-np.arange(1.0, k + 1))
    ticks = ax.get_xticks()
    assert ticks[0] == 1 and np.all(ticks == np.round(ticks)) and ticks[-1] <= k
    assert 2 <= len(ticks) <= 13 or k == 2 and len(ticks) == 2
    ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "1"


def test_lyapunov_minus_infinity_is_inside_the_axes_and_in_the_legend():
    with plots.paper_style(columns=1):
        fig, ax = plt.subplots()
        plots.lyapunov_spectrum({"exponents": np.array([0.18, -0.1, -np.inf])}, ax=ax)
        fig.canvas.draw()
    (mark,) = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
    assert list(mark.get_xdata()) == [3]
    # the whole triangle lies inside the Axes (on the spine, half of it was cut)
    bb = mark.get_window_extent(fig.canvas.get_renderer())
    assert bb.y0 >= ax.bbox.y0 and bb.y1 <= ax.bbox.y1
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "$-\\infty$ (exact collapse)" in texts


def test_lyapunov_panels_legend_stays_inside_the_figure():
    res = {"exponents": [0.42, -1.62], "history": [[0.5, -1.5], [0.42, -1.62]],
           "history_steps": [100, 1000], "kaplan_yorke_dimension": 1.26}
    fig = plots.lyapunov_panels(res)
    for ax in fig.axes:
        for leg in _legends(ax):
            assert _inside(fig, leg)
            # inside or below the Axes: not out to the right, past the figure's edge
            assert leg.get_window_extent().x1 <= ax.bbox.x1 + 1
    with plots.paper_style(columns=2):
        fig, (a, b) = plt.subplots(1, 2)
        plots.lyapunov_history(res, ax=a)
        plots.eigenvalues({"eigenvalues": [[0.5, 0.2]]}, ax=b)
    for ax in (a, b):
        assert _inside(fig, ax.get_legend())


# -- accuracy against parameters (notebook 06) -------------------------------------------------
def test_accuracy_error_bars_are_dodged_and_say_what_they_are():
    rng = np.random.default_rng(0)
    params = np.array([4810.0, 10286.0, 4783.0, 4776.0, 4750.0])
    acc = 0.98 + 0.005 * rng.normal(size=(5, 5))
    fig, ax = plt.subplots(layout="constrained")
    plots.accuracy_vs_parameters({"names": list("abcde"), "params": params, "accuracy": acc},
                                 ax=ax)
    fig.canvas.draw()
    xs = np.array([c.lines[0].get_xdata()[0] for c in ax.containers])
    # the bars of the four near-equal models are apart by more than a marker (display px)
    px = ax.transData.transform(np.column_stack([xs, np.full(5, 0.98)]))[:, 0]
    near = np.sort(px[[0, 2, 3, 4]])
    assert np.all(np.diff(near) > 4.0 * fig.dpi / 72)
    # they stay near their own size (within 5 %); the error bars are the sample std
    assert np.all(np.abs(xs / params - 1) < 0.05)
    for c, row in zip(ax.containers, acc):
        seg = c.lines[2][0].get_segments()[0]
        assert seg[1, 1] - seg[0, 1] == pytest.approx(2 * np.std(row, ddof=1))
    assert ax.get_legend().get_title().get_text() == "mean ± std over 5 seeds"


def test_two_spectra_on_one_axes_keep_both_notes_and_the_longer_index_axis():
    # notebook 08: a 24-exponent and a 16-exponent spectrum compared on one Axes
    fig, ax = plt.subplots()
    plots.lyapunov_spectrum({"exponents": -np.linspace(0.2, 1.8, 24),
                             "kaplan_yorke_dimension": 0.0}, ax=ax, label="rnn")
    plots.lyapunov_spectrum({"exponents": -np.linspace(0.05, 3.2, 16),
                             "kaplan_yorke_dimension": 0.0}, ax=ax, label="gru")
    assert ax.get_xlim() == (0.5, 24.5)
    assert ax.get_xticks()[0] == 1 and ax.get_xticks()[-1] <= 24
    # both notes kept, each in its spectrum's legend entry (round 21: boxes in the corner
    # sat over the data), and the entries do not overlap
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["rnn ($D_{KY} = 0$)", "gru ($D_{KY} = 0$)"] and not ax.texts
    fig.canvas.draw()
    a, b = (t.get_window_extent() for t in ax.get_legend().get_texts())
    assert not a.overlaps(b)


def test_finite_responses_drawn_one_call_each_share_one_mark_entry():
    # the report draws each network with its own call: one legend entry, one note per step
    fig, ax = plt.subplots()
    plots.impulse_response(np.array([[9.0], [5.0], [1.3], [0.0], [0.0]]), ax=ax, labels=["mlp"])
    plots.impulse_response(np.array([[9.0], [5.0], [1.8], [0.0], [0.0]]), ax=ax, labels=["skip"])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts.count("exactly 0 from here on") == 1
    assert [t.get_text() for t in ax.texts] == ["0 from $k = 3$"]


# -- properties ----------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(k=st.integers(1, 20000))
def test_index_ticks_property(k):
    ticks = plots._spectrum._index_ticks(k)
    assert ticks[0] == 1 and ticks[-1] <= k and len(ticks) <= 13
    assert all(isinstance(t, int) for t in ticks) and ticks == sorted(set(ticks))
    assert k <= 12 or len(ticks) >= 3


@settings(max_examples=30, deadline=None)
@given(distinct=st.integers(1, 6), copies=st.lists(st.integers(1, 3), min_size=6, max_size=6),
       dim=st.integers(2, 6), seed=st.integers(0, 10**6))
def test_equal_spectra_are_drawn_once_whatever_their_order(distinct, copies, dim, seed):
    # each distinct spectrum repeated 1-3 times, its eigenvalues permuted in each copy
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(distinct, dim)) + 1j * rng.normal(size=(distinct, dim))
    rows = [rng.permutation(base[i]) for i in range(distinct) for _ in range(copies[i])]
    order = rng.permutation(len(rows))
    ev = np.array(rows)[order]
    ax = plots.eigenvalues({"eigenvalues": ev})
    drawn = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(drawn) == distinct
    # every eigenvalue of every distinct spectrum is drawn, once
    pts = np.concatenate([c.get_offsets() for c in drawn])
    assert len(pts) == distinct * dim
    np.testing.assert_allclose(np.sort(pts[:, 0]), np.sort(base.real.ravel()))
    plt.close(ax.figure)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(1.0, 1e6), min_size=1, max_size=12))
def test_dodge_moves_only_close_neighbours(values):
    logs = np.log10(np.array(values))
    shift = plots._training._dodge(np.array(values))
    for i in range(len(logs)):
        others = np.delete(logs, i)
        if np.all(np.abs(others - logs[i]) > 0.03):        # nobody near: not moved
            assert shift[i] == 0
    for i in range(len(logs)):                              # equal sizes: set apart
        for j in range(i + 1, len(logs)):
            if logs[i] == logs[j]:
                assert abs(shift[i] - shift[j]) >= 0.012 - 1e-12


def test_eigenvalue_title_names_the_period_of_a_period_search():
    # the logistic map at r = 3.2: its 2-cycle (closed form below) and its two fixed points;
    # a period-2 search gives the eigenvalues of the Jacobian of F^2
    from itermap.analysis import find_fixed_points
    from itermap.systems import logistic

    r = 3.2
    fp = find_fixed_points(logistic(r), np.linspace(0.05, 0.95, 40)[:, None], period=2)
    cycle = (r + 1 + np.array([-1, 1]) * np.sqrt((r + 1) * (r - 3))) / (2 * r)
    assert all(np.min(np.abs(np.asarray(fp.points)[:, 0] - c)) < 1e-9 for c in cycle)
    ax = plots.eigenvalues(fp)
    title = ax.get_legend().get_title().get_text()
    assert title.startswith(f"{len(fp)} period-2 points"), title
    assert "fixed point" not in title
    plt.close("all")


def test_compared_spectra_carry_their_dky_in_the_legend_not_over_the_data():
    # two labelled spectra on one Axes: the D_KY notes sat in the upper right, over the
    # points of the flatter spectrum; each now ends its legend entry
    a = {"exponents": np.linspace(0.2, -3.0, 30), "kaplan_yorke_dimension": 5.78}
    b = {"exponents": np.linspace(0.3, -9.0, 30), "kaplan_yorke_dimension": 7.8}
    fig, ax = plt.subplots(layout="constrained")
    plots.lyapunov_spectrum(a, ax=ax, label="g=2")
    plots.lyapunov_spectrum(b, ax=ax, label="g=3")
    assert not ax.texts
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["g=2 ($D_{KY} = 5.78$)", "g=3 ($D_{KY} = 7.8$)"]
    plt.close(fig)


@pytest.mark.parametrize("markersize", [0.0, 3.0])
def test_block_matrix_keeps_a_given_marker_size(markersize):
    # only the default is sized to the cells at draw time; a size given is kept, 0 included
    W = itermap.mlp_continuum([4, 8, 8, 2], recurrent=0.3, rng=0).block_matrix
    fig, ax = plt.subplots(layout="constrained")
    plots.block_matrix(W, ax=ax, markersize=markersize)
    fig.canvas.draw()
    assert [ln.get_markersize() for ln in ax.lines[:2]] == [markersize, markersize]
    plt.close(fig)
