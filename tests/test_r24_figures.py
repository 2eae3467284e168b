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


# -- continuation: stability changes at the bifurcation --------------------------------------
def test_continuation_splits_a_coarse_branch_at_its_bifurcation():
    # the logistic map's fixed point 1 - 1/r over [2.5, 3.6] in one step (what continuation
    # returns with its default step here): stable, then unstable past the doubling at r = 3
    res = {"parameters": np.array([2.5, 3.6]), "points": np.array([[0.6], [1 - 1 / 3.6]]),
           "stable": np.array([True, False]),
           "bifurcations": [{"kind": "period doubling", "parameter": 3.0, "point": [2 / 3],
                             "index": 0}]}
    ax = plots.continuation(res)
    r = _renderer(ax.figure)
    solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(solid) == 1 and len(dashed) == 1
    # the unstable part is drawn (more than a point wide), from the bifurcation on
    assert dashed[0].get_window_extent(r).width > 0.3 * ax.bbox.width
    assert solid[0].get_xdata()[-1] == dashed[0].get_xdata()[0] == 3.0
    # the marker sits on the line
    marker = ax.transData.transform([[3.0, 2 / 3]])[0]
    end = ax.transData.transform([[solid[0].get_xdata()[-1], solid[0].get_ydata()[-1]]])[0]
    assert np.hypot(*(marker - end)) < 1.0


# -- eigenvalues: the legend's title in a row of panels --------------------------------------
def _many_points(m=24, dim=64, seed=0):
    rng = np.random.default_rng(seed)
    ev = rng.normal(size=(m, dim)) + 1j * rng.normal(size=(m, dim))
    ev[1] = ev[0]  # x* and -x* of an odd network: equal spectra
    return {"eigenvalues": ev, "stable": np.zeros(m, dtype=bool)}


@pytest.mark.parametrize("layout", ["tight", "constrained"])
def test_eigenvalue_legend_stays_under_its_own_panel_in_a_row(layout):
    spectrum = {"history": np.cumsum(np.ones((20, 64)), axis=0) * -0.01,
                "history_steps": np.geomspace(10, 1000, 20)}
    with plots.paper_style(columns=2):
        fig, axes = plt.subplots(1, 3, layout=layout)
        plots.lyapunov_history(spectrum, ax=axes[1])
        plots.eigenvalues(_many_points(), ax=axes[2])
    r = _renderer(fig)
    left, right = axes[1].get_legend(), axes[2].get_legend()
    assert "equal spectra" in right.get_title().get_text()
    # the two keys side by side do not run into each other (the title ran 1 cm under the
    # middle panel's key), and the right one stays in the figure
    assert not left.get_window_extent(r).overlaps(right.get_window_extent(r))
    assert right.get_window_extent(r).x1 <= fig.bbox.x1 + 1


# -- x labels wider than their panel ----------------------------------------------------------
def _block_graph():
    import networkx as nx

    G = nx.DiGraph()
    G.add_nodes_from((b, {"size": 16}) for b in range(4))
    G.add_edges_from([(0, 1, {"norm": 1.0}), (1, 2, {"norm": 4.2}), (2, 3, {"norm": 2.0}),
                      (1, 1, {"norm": 2.0})])
    return G


@pytest.mark.parametrize("layout", ["tight", "constrained"])
def test_sparsity_graph_x_label_stays_clear_of_the_next_panel(layout):
    with plots.paper_style(columns=2):
        fig, axes = plt.subplots(1, 3, layout=layout)
        axes[0].plot([0, 1])
        plots.sparsity_graph(_block_graph(), ax=axes[1])
        # a basin slice fills its panel
        axes[2].imshow(np.zeros((4, 4)), aspect="auto", extent=(-2, 2, -2, 2))
        axes[2].set_ylabel("slice coordinate 2")
    r = _renderer(fig)
    label = axes[1].xaxis.label.get_window_extent(r)
    # within its own Axes' width (wider, it ended 2 px short of the next panel's y label,
    # and ran into it with a legend under that panel)
    assert label.width <= axes[1].bbox.width + 1
    assert not label.overlaps(axes[2].yaxis.label.get_window_extent(r))
    assert not label.overlaps(axes[2].get_tightbbox(r))
    # the keys under it moved down with its second line
    keys = [c for c in axes[1].get_children() if isinstance(c, matplotlib.legend.Legend)]
    assert len(keys) == 2
    assert not any(k.get_window_extent(r).overlaps(label) for k in keys)


def test_accuracy_x_label_fits_a_one_column_figure():
    result = {"names": ["MLP", "sparse 0.5", "RNN"], "params": np.array([1000., 1010., 4000.]),
              "accuracy": np.array([[0.90, 0.91], [0.89, 0.90], [0.92, 0.90]])}
    with plots.paper_style(columns=1):
        ax = plots.accuracy_vs_parameters(result)
    r = _renderer(ax.figure)
    assert "dodged" in ax.get_xlabel()
    label = ax.xaxis.label.get_window_extent(r)
    assert label.x0 >= -1 and label.x1 <= ax.figure.bbox.x1 + 1


# -- training_history: whole epochs ----------------------------------------------------------
def _drawn_ticks(ax, axis="x"):
    """The tick locations inside the view (those drawn)."""
    ax.figure.canvas.draw()
    a = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = sorted(a.get_view_interval())
    return [t for t in a.get_majorticklocs() if lo - 1e-9 <= t <= hi + 1e-9]


@pytest.mark.parametrize("epochs", [1, 3, 120])
@pytest.mark.parametrize("metric", ["loss", "accuracy"])
def test_training_history_ticks_whole_epochs(epochs, metric):
    rng = np.random.default_rng(0)
    history = {"loss": np.geomspace(0.7, 0.05, epochs), "accuracy": rng.uniform(0.5, 1, epochs)}
    with plots.paper_style(columns=2):
        fig, axes = plt.subplots(1, 3, layout="constrained")
        ax = plots.training_history(history, metric=metric, ax=axes[0])
    ticks = _drawn_ticks(ax)
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert not _tick_labels_overlap(ax.xaxis)


def _tick_labels_overlap(axis):
    r = _renderer(axis.figure)
    lo, hi = sorted(axis.get_view_interval())
    boxes = [t.label1.get_window_extent(r) for t in axis.get_major_ticks()
             if lo - 1e-9 <= t.get_loc() <= hi + 1e-9 and t.label1.get_text()]
    return any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))


# -- fixed_points_pca: the key off the points --------------------------------------------------
def test_fixed_points_pca_key_covers_no_fixed_point():
    rng = np.random.default_rng(0)
    # states spread over the plane of the first two components; fixed points all over it
    states = rng.uniform(-1, 1, size=(2000, 3)) * np.array([3.0, 2.0, 0.1])
    gx, gy = np.meshgrid(np.linspace(-2.7, 2.7, 7), np.linspace(-1.8, 1.8, 6))
    points = np.column_stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)])
    fps = {"points": points, "n_unstable": np.arange(gx.size) % 3}
    with plots.paper_style(columns=2):
        fig, axes = plt.subplots(1, 3, layout="constrained")
        ax = plots.fixed_points_pca(fps, states, ax=axes[2])
    r = _renderer(fig)
    key = ax.get_legend().get_window_extent(r)
    centres = np.vstack([c.get_offset_transform().transform(c.get_offsets())
                         for c in ax.collections if c.get_label() and
                         not c.get_label().startswith("_")])
    assert not any(key.contains(x, y) for x, y in centres)
    assert key.x0 >= -1 and key.x1 <= fig.bbox.x1 + 1 and key.y0 >= -1


# -- finite_time_histogram and clv_angles ------------------------------------------------------
def _finite_time(k, seed=0):
    rng = np.random.default_rng(seed)
    return {"exponents": rng.normal(-0.05 * np.arange(k), 0.03, size=(250, k)), "window": 20}


def test_finite_time_histograms_side_by_side_keep_labels_and_keys_apart():
    with plots.paper_style(columns=2):
        fig, axes = plt.subplots(1, 3, layout="constrained")
        plots.finite_time_histogram(_finite_time(2), ax=axes[0])
        plots.finite_time_histogram(_finite_time(10), ax=axes[1], max_exponents=10)
    r = _renderer(fig)
    first, second = (a.xaxis.label.get_window_extent(r) for a in axes[:2])
    assert not first.overlaps(second)  # "...(nats/ste" ran into "finite-time ..."
    for ax in axes[:2]:
        key = ax.get_legend().get_window_extent(r)
        # the key of ten exponents covered their histograms inside the Axes
        assert key.y1 <= ax.bbox.y0 and not key.overlaps(ax.xaxis.label.get_window_extent(r))
        assert key.y0 >= -1


def test_clv_angle_density_ticks_are_plain_numbers():
    rng = np.random.default_rng(0)
    theta = np.abs(rng.normal(0.9, 0.4, size=3000)) % (np.pi / 2)
    angles = np.zeros((theta.size, 2, 2))
    angles[:, 0, 1] = angles[:, 1, 0] = theta
    ax = plots.clv_angles({"angles": angles})
    ax.figure.canvas.draw()
    texts = [t.label1.get_text() for t in ax.yaxis.get_major_ticks() + ax.yaxis.get_minor_ticks()
             if t.label1.get_text()]
    assert texts and not any("times" in t or "^" in t for t in texts), texts


# -- trajectory: x ticks in a one-column figure -------------------------------------------------
@pytest.mark.parametrize("dim", [1, 64])
def test_phase_portrait_x_tick_labels_do_not_overlap_in_one_column(dim, tmp_path):
    rng = np.random.default_rng(0)
    states = np.tanh(3 * rng.normal(size=(500, dim)))  # a chaotic tanh network's states
    with plots.paper_style(columns=1):  # saved in the style, as a paper's figure is
        ax = plots.trajectory(states)
        plots.save_figure(ax, tmp_path / "phase")
        assert not _tick_labels_overlap(ax.xaxis)


# -- impulse_response and memory_capacity: keys off the curves ----------------------------------
def _vertices_px(ax):
    pts = [ln.get_transform().transform(np.column_stack([ln.get_xdata(), ln.get_ydata()]))
           for ln in ax.get_lines() if ln.get_visible() and len(ln.get_xdata())
           and not str(ln.get_label()).startswith("_")]
    pts = np.vstack(pts)
    return pts[np.all(np.isfinite(pts), axis=1)]


def test_impulse_and_memory_keys_cover_no_curve_in_a_row_of_panels():
    k = np.arange(41.0)
    norms = np.stack([np.exp(-0.3 * k), 1.2 * np.exp(-0.28 * k), 0.8 * np.exp(0.2 * k)], axis=1)
    d = np.arange(1, 41)
    memory = {name: {"delays": d, "r2": np.clip(1.3 - d / tau, 0, 1)}
              for name, tau in [("mlp", 2), ("rnn", 12), ("lssl", 30), ("attention", 1e9)]}
    with plots.paper_style(columns=2):
        fig, axes = plt.subplots(1, 3, layout="tight")
        plots.impulse_response(norms, ax=axes[0], total=True)
        plots.memory_capacity(memory, ax=axes[1])
    r = _renderer(fig)
    for ax in axes[:2]:
        key = ax.get_legend().get_window_extent(r)
        assert not any(key.contains(x, y) for x, y in _vertices_px(ax)), ax
        assert key.y0 >= -1 and key.x0 >= -1 and key.x1 <= fig.bbox.x1 + 1


# -- block_matrix: the keys of panels side by side -------------------------------------------
@pytest.mark.parametrize("layout", ["tight", "constrained"])
def test_block_matrix_keys_side_by_side_stay_apart_and_in_the_figure(layout):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(600, 600)) * (rng.random((600, 600)) < 0.01)
    with plots.paper_style(columns=2):
        fig, axes = plt.subplots(1, 3, layout=layout)
        plots.block_matrix(W, sizes=[100, 400, 100], ax=axes[0])
        plots.block_matrix(np.array([[1.0, -0.5], [0.3, 0.0]]), ax=axes[1])
    r = _renderer(fig)
    first, second = (ax.get_legend().get_window_extent(r) for ax in axes[:2])
    assert not first.overlaps(second)
    assert first.x0 >= -1 and second.x1 <= fig.bbox.x1 + 1


# -- orbit_diagram: one parameter value --------------------------------------------------------
def test_orbit_diagram_of_one_value_shows_its_orbit_without_a_warning(recwarn):
    states = np.array([[[0.38], [0.83], [0.50], [0.87]] * 5])  # r = 3.5: a 4-cycle
    ax = plots.orbit_diagram({"values": np.array([3.5]), "states": states})
    r = _renderer(ax.figure)
    assert not [w for w in recwarn if "singular" in str(w.message)]
    lo, hi = ax.get_xlim()
    assert lo < 3.5 < hi
    line = ax.get_lines()[0]
    assert ax.bbox.contains(*line.get_window_extent(r).get_points().mean(axis=0))


def test_dense_large_block_matrix_shows_both_signs_in_their_share():
    from matplotlib.colors import to_rgb

    rng = np.random.default_rng(0)
    W = rng.normal(size=(800, 800))  # dense, half the weights positive
    ax = plots.block_matrix(W)
    fig = ax.figure
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    box = ax.bbox
    h = img.shape[0]
    inside = img[int(h - box.y1) + 3:int(h - box.y0) - 3, int(box.x0) + 3:int(box.x1) - 3]
    near = [np.sum(np.abs(inside - np.array(to_rgb(c))).max(axis=-1) < 0.1)
            for c in (plots.POSITIVE, plots.NEGATIVE)]
    share = near[0] / max(sum(near), 1)
    # markers of the negative entries, drawn last, covered the positive ones: 2% red
    assert 0.3 < share < 0.7, (near, share)


# -- basins: many attractors ---------------------------------------------------------------------
def test_basin_key_of_many_attractors_is_no_taller_than_its_panel():
    rng = np.random.default_rng(0)
    labels = rng.integers(-2, 15, size=60 * 60)  # 15 attractors, escape and bounded starts
    with plots.paper_style(columns=2):
        fig, axes = plt.subplots(1, 3, layout="constrained")
        ax = plots.basins({"labels": labels, "periods": np.arange(1, 16)}, (60, 60), ax=axes[0])
    r = _renderer(fig)
    key = ax.get_legend()
    assert key.get_window_extent(r).height <= ax.bbox.height
    texts = [t.get_text() for t in key.get_texts()]
    shares = [float(t.rsplit(": ", 1)[1].rstrip("%")) for t in texts]
    assert any("more attractors" in t for t in texts)
    assert abs(sum(shares) - 100.0) < 0.5  # every start counted once


# -- the report's scan figure: its key off the band and the curves ------------------------------
def test_report_scan_key_covers_no_curve_or_interval(tmp_path, monkeypatch):
    import itermap.analysis._report._run as run
    from itermap.analysis._report import run_report

    measured = []
    save = run._save_figures

    def spy(res, *args, **kwargs):  # the Figure, before it is saved and closed
        for stem, fig, _ in res.figures:
            if stem.startswith("lyapunov_scan"):
                ax = fig.axes[0]
                r = _renderer(fig)
                key = ax.get_legend().get_window_extent(r)
                bands = [p.get_window_extent(r) for p in ax.patches]
                inside = [key.contains(x, y) for x, y in _along_lines(ax)
                          if ax.bbox.contains(x, y)]
                measured.append((any(inside), [key.overlaps(b) for b in bands]))
        return save(res, *args, **kwargs)

    monkeypatch.setattr(run, "_save_figures", spy)
    spec = tmp_path / "spec.toml"
    spec.write_text('seed = 3\n[networks.rnn]\nkind = "random_rnn"\nn = 12\n'
                    '[[analyses]]\nkind = "lyapunov_scan"\nnetwork = "rnn"\n'
                    'gains = {start = 0.5, stop = 2.0, num = 7}\nsteps = 100\n'
                    'transient = 20\nseeds = 4\n')
    run_report(spec, tmp_path / "rep", progress=False)
    assert measured
    for on_curve, on_band in measured:
        assert not on_curve and not any(on_band)


def _along_lines(ax, per_segment=20):
    """Display points along every line of ``ax`` (vertices and between them)."""
    out = []
    for ln in ax.get_lines():
        v = ln.get_transform().transform(np.column_stack([ln.get_xdata(), ln.get_ydata()]))
        v = v[np.all(np.isfinite(v), axis=1)]
        out.append(v)
        if len(v) > 1 and ln.get_linestyle() not in ("None", "none", ""):
            t = np.linspace(0, 1, per_segment)[:, None, None]
            out.append((v[:-1] + t * (v[1:] - v[:-1])).reshape(-1, 2))
    return np.vstack(out)


def test_spectrum_of_collapses_only_keys_only_what_is_drawn():
    ax = plots.lyapunov_spectrum({"exponents": np.full(19, -np.inf),
                                  "kaplan_yorke_dimension": 0.0})
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["$-\\infty$ (exact collapse)"], texts
