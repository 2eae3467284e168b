"""Each plot function puts the expected data on its axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402

import itermap  # noqa: E402
from itermap import iterate, systems  # noqa: E402
from itermap.analysis import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lines(ax, label=None):
    return [ln for ln in ax.get_lines() if label is None or ln.get_label() == label]


def test_trajectory_phase_portrait_plots_the_states():
    traj = iterate(systems.henon(), np.array([0.1, 0.1]), 100)
    ax = plots.trajectory(traj)
    (line,) = _lines(ax)
    np.testing.assert_array_equal(line.get_xdata(), traj.states[:, 0])
    np.testing.assert_array_equal(line.get_ydata(), traj.states[:, 1])
    assert ax.get_xlabel() and ax.get_ylabel()


def test_trajectory_one_dimensional_is_a_return_plot():
    traj = iterate(systems.logistic(3.7), np.array([0.3]), 50)
    ax = plots.trajectory(traj)
    (line,) = _lines(ax)
    x = traj.states[:, 0]
    np.testing.assert_array_equal(line.get_xdata(), x[:-1])
    # independent check: the points lie on the parabola r x (1 - x)
    np.testing.assert_allclose(line.get_ydata(), 3.7 * x[:-1] * (1 - x[:-1]), rtol=1e-12)


def test_trajectory_time_series_and_batches():
    traj = iterate(systems.henon(), np.array([[0.1, 0.1], [0.2, 0.0], [0.0, 0.0]]), 10)
    fig, ax = plt.subplots()
    assert plots.trajectory(traj, ax=ax, time=True, dims=(1,), max_lines=2) is ax
    lines = _lines(ax)
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[1].get_xdata(), np.arange(11))
    np.testing.assert_array_equal(lines[1].get_ydata(), traj.states[:, 1, 1])


def test_trajectory_rejects_bad_input():
    with pytest.raises(ValueError, match="component 5"):
        plots.trajectory(np.zeros((4, 2)), dims=(0, 5))
    with pytest.raises(ValueError, match="shape"):
        plots.trajectory(np.zeros(4))
    with pytest.raises(TypeError, match="states"):
        plots.trajectory(object())


def test_lyapunov_spectrum_errorbars_and_zero_line():
    res = {"exponents": np.array([0.42, 0.0, -1.62]), "stderr": np.array([0.01, 0.02, 0.03]),
           "kaplan_yorke_dimension": 2.26}
    ax = plots.lyapunov_spectrum(res)
    (container,) = ax.containers
    data_line = container.lines[0]
    np.testing.assert_array_equal(data_line.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(data_line.get_ydata(), res["exponents"])
    # the error bar segments span exponent +- stderr
    segs = container.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segs], 2 * res["stderr"])
    (zero,) = _lines(ax, "_zero")
    assert list(zero.get_ydata()) == [0, 0]
    assert "nats/step" in ax.get_ylabel()
    assert any("2.26" in t.get_text() for t in ax.texts)


def test_lyapunov_spectrum_plain_array():
    ax = plots.lyapunov_spectrum([0.1, -0.5])
    np.testing.assert_array_equal(ax.containers[0].lines[0].get_ydata(), [0.1, -0.5])


def test_lyapunov_history_and_panels():
    res = {"exponents": np.array([0.4, -1.6]), "history": np.array([[0.5, -1.4], [0.41, -1.59]]),
           "history_steps": np.array([100, 10000])}
    ax = plots.lyapunov_history(res)
    l1, l2 = _lines(ax, "$\\lambda_{1}$"), _lines(ax, "$\\lambda_{2}$")
    np.testing.assert_array_equal(l1[0].get_ydata(), [0.5, 0.41])
    np.testing.assert_array_equal(l2[0].get_xdata(), [100, 10000])
    assert ax.get_xscale() == "log"
    fig = plots.lyapunov_panels(res)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="history"):
        plots.lyapunov_history({"history": np.zeros((3, 2)), "history_steps": np.zeros(2)})


def test_eigenvalues_with_unit_circle():
    # Henon fixed points: eigenvalues of the Jacobian in closed form
    a, b = 1.4, 0.3
    xs = [(-(1 - b) + s * np.sqrt((1 - b) ** 2 + 4 * a)) / (2 * a) for s in (1, -1)]
    ev = np.array([np.roots([1.0, 2 * a * x, -b]) for x in xs])
    ax = plots.eigenvalues({"eigenvalues": ev, "stable": np.array([False, False])})
    (circle,) = _lines(ax, "unit circle")
    np.testing.assert_allclose(np.hypot(circle.get_xdata(), circle.get_ydata()), 1.0)
    per_point = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(per_point) == 2  # one marker style per fixed point
    for i, pts in enumerate(per_point):
        off = pts.get_offsets()
        np.testing.assert_allclose(off[:, 0], ev[i].real)
        np.testing.assert_allclose(off[:, 1], ev[i].imag)
        assert pts.get_label() == f"#{i} unstable"
    # the two points are told apart by colour
    assert not np.allclose(per_point[0].get_edgecolor()[0], per_point[1].get_edgecolor()[0])
    assert ax.get_xlim()[1] >= 1.1 * np.abs(ev).max() - 1e-12


def test_eigenvalues_stability_default_and_errors():
    ev = np.array([[0.5 + 0.5j, 0.5 - 0.5j], [1.5, 0.1]])
    ax = plots.eigenvalues(ev)
    labels = sorted(c.get_label() for c in ax.collections)
    assert labels == ["#0 stable", "#1 unstable"]
    with pytest.raises(ValueError, match="stable"):
        plots.eigenvalues({"eigenvalues": ev, "stable": np.array([True])})


def test_impulse_response_lines_per_block_and_zeros_dropped():
    norms = np.zeros((6, 2, 3))
    norms[:, 0, 1] = 2.0 ** -np.arange(6)
    norms[:3, 1, 2] = [1.0, 0.1, 0.01]
    ax = plots.impulse_response({"norms": norms, "length": 3}, labels=["x", "h", "y"])
    assert ax.get_yscale() == "log"
    (h,) = _lines(ax, "h")
    np.testing.assert_allclose(h.get_ydata(), 2.0 ** -np.arange(6))
    (y,) = _lines(ax, "y")
    assert np.all(np.isnan(y.get_ydata()[3:])) and y.get_ydata()[1] == 0.1
    assert not _lines(ax, "x")  # block 0 never responds: no line
    (length,) = _lines(ax, "length 3")
    assert list(length.get_xdata()) == [3, 3]
    ax2 = plots.impulse_response(norms, source=1, label="net")
    assert {ln.get_label() for ln in _lines(ax2) if not ln.get_label().startswith("_")} == {
        "net: response in block 2", "exactly 0 from here on"}   # block 2 is 0 from k = 3


def test_impulse_response_of_a_batch_shows_the_row_asked_for():
    from itermap.analysis import impulse_response
    from itermap.systems import linear

    r = impulse_response(linear(np.array([[0.5]])), np.array([[1.0], [1.0]]), 4)
    with pytest.raises(ValueError, match="index=i"):
        plots.impulse_response(r)
    with pytest.raises(ValueError, match="out of range"):
        plots.impulse_response(r, index=2)
    with pytest.raises(ValueError, match="not a batch"):
        plots.impulse_response(r.row(0), index=0)
    ax = plots.impulse_response(r, index=1)
    (line,) = _lines(ax, "response in block 0")
    np.testing.assert_allclose(line.get_ydata(), 0.5 ** np.arange(5))
    ax = plots.impulse_response(np.stack([np.ones((3, 1, 1)), 2 * np.ones((3, 1, 1))]), index=-1)
    np.testing.assert_allclose(_lines(ax, "response in block 0")[0].get_ydata(), [2, 2, 2])


def test_impulse_response_errors():
    with pytest.raises(ValueError, match="norms"):
        plots.impulse_response(np.zeros(3))
    with pytest.raises(ValueError, match="source block 4"):
        plots.impulse_response(np.ones((3, 2, 2)), source=4)
    with pytest.raises(ValueError, match="labels"):
        plots.impulse_response(np.ones((3, 2)), labels=["a"])


def test_block_matrix_spy_marks_every_nonzero():
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(5, 3)), rng.normal(size=(2, 5))]
    mlp = itermap.IterativeMap.from_mlp(Ws)
    ax = plots.block_matrix(mlp, labels=["x", "h", "y"])
    W = np.zeros((10, 10))
    W[3:8, 0:3] = Ws[0]
    W[8:10, 3:8] = Ws[1]
    pos = _lines(ax)[0]
    neg = _lines(ax)[1]
    got_pos = set(zip(pos.get_ydata().tolist(), pos.get_xdata().tolist()))
    got_neg = set(zip(neg.get_ydata().tolist(), neg.get_xdata().tolist()))
    assert got_pos == set(zip(*np.nonzero(W > 0)))
    assert got_neg == set(zip(*np.nonzero(W < 0)))
    bounds = sorted({float(ln.get_xdata()[0]) for ln in _lines(ax, "_boundary")
                     if ln.get_xdata()[0] == ln.get_xdata()[1]})
    assert bounds == [2.5, 7.5]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "h", "y"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # row 0 on top


def test_block_matrix_plain_and_sparse_and_errors():
    import scipy.sparse as sp

    A = np.array([[0.0, 1.0], [-2.0, 0.0]])
    for W in (A, sp.csr_matrix(A)):
        ax = plots.block_matrix(W, sizes=[1, 1])
        assert len(_lines(ax, "positive (1)")) == 1 and len(_lines(ax, "negative (1)")) == 1
    with pytest.raises(ValueError, match="add up"):
        plots.block_matrix(A, sizes=[1, 2])
    with pytest.raises(ValueError, match="square"):
        plots.block_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="labels"):
        plots.block_matrix(A, sizes=[1, 1], labels=["a"])


def _unit_graph():
    G = nx.DiGraph()
    for u, blk in enumerate([0, 0, 1, 1, 1, 2]):
        G.add_node(u, block=blk)
    G.add_edge(0, 2, weight=1.0)
    G.add_edge(1, 3, weight=-0.5)
    G.add_edge(1, 4, weight=0.3)
    G.add_edge(4, 5, weight=-2.0)
    return G


def test_sparsity_graph_layout_by_block_and_sign_colours():
    G = _unit_graph()
    ax = plots.sparsity_graph(G, arrows=False)
    (nodes,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    off = np.asarray(nodes.get_offsets())
    block = np.array([G.nodes[v]["block"] for v in G.nodes])
    size = {b: int(np.sum(block == b)) for b in set(block.tolist())}
    # each block's units sit on a ring around x = block (one unit: at the centre)
    radius = np.hypot(off[:, 0] - block, off[:, 1])
    want = np.array([0.0 if size[b] == 1 else plots._graph._RING for b in block])
    np.testing.assert_allclose(radius, want, atol=1e-12)
    (edges,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    colors = [tuple(np.round(c[:3], 3)) for c in edges.get_colors()]
    red = tuple(np.round(matplotlib.colors.to_rgb(plots.POSITIVE), 3))
    blue = tuple(np.round(matplotlib.colors.to_rgb(plots.NEGATIVE), 3))
    expected = [red if d["weight"] > 0 else blue for _, _, d in G.edges(data=True)]
    assert colors == expected
    # each edge starts at its source's position and ends at its target's
    where = {v: tuple(p) for v, p in zip(G.nodes, off)}
    for seg, (u, v) in zip(edges.get_segments(), G.edges):
        np.testing.assert_allclose(seg[0], where[u], atol=1e-12)
        np.testing.assert_allclose(seg[-1], where[v], atol=1e-12)


def test_sparsity_graph_draws_self_loops_and_collapses_large_graphs():
    from matplotlib.patches import Circle

    import itermap
    from itermap.analysis import sparsity_graph

    net = itermap.random_rnn(12, density=0.5, rng=3)
    G = sparsity_graph(net)
    loops = [u for u, v in G.edges if u == v]
    ax = plots.sparsity_graph(G, arrows=False)
    assert len([p for p in ax.patches if isinstance(p, Circle)]) == len(loops) > 0
    big = itermap.mlp_continuum([40, 300, 10], recurrent=0.01, rng=0)   # 350 units
    ax = plots.sparsity_graph(sparsity_graph(big))
    (nodes,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(nodes.get_offsets()) == 3           # drawn by block
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("W_{ij}" in t for t in labels)      # the legend gives the width scale
    ax = plots.sparsity_graph(sparsity_graph(big), level="unit", arrows=False)
    (nodes,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(nodes.get_offsets()) == 350


def test_sparsity_graph_block_level_with_arrows():
    H = nx.DiGraph()
    for b in range(3):
        H.add_node(b, size=4)  # block-level graphs: nodes are blocks
    H.add_edge(0, 1, nnz=10, norm=2.0)
    H.add_edge(1, 1, nnz=5, norm=1.0)
    H.add_edge(1, 2, nnz=4, norm=0.5)
    ax = plots.sparsity_graph(H, labels=["x", "h", "y"])
    assert len(ax.patches) == 3  # one arrow per edge
    (nodes,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_array_equal(np.asarray(nodes.get_offsets())[:, 0], [0, 1, 2])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "h", "y"]
    with pytest.raises(TypeError, match="networkx"):
        plots.sparsity_graph(np.eye(3))


def test_orbit_diagram_points():
    od = {"values": np.array([2.5, 3.2]), "states": np.array([[[0.6], [0.6]], [[0.5], [0.8]]])}
    ax = plots.orbit_diagram(od, xlabel="r")
    (line,) = _lines(ax)
    np.testing.assert_array_equal(line.get_xdata(), [2.5, 2.5, 3.2, 3.2])
    np.testing.assert_array_equal(line.get_ydata(), [0.6, 0.6, 0.5, 0.8])
    assert ax.get_xlabel() == "r"
    with pytest.raises(ValueError, match="component 1"):
        plots.orbit_diagram(od, component=1)
    with pytest.raises(ValueError, match="do not match"):
        plots.orbit_diagram({"values": np.ones(3), "states": np.ones((2, 2, 1))})


def test_lyapunov_scan_plot_with_reference():
    scan = {"values": np.array([0.5, 1.0, 2.0]),
            "exponents": np.array([[-0.7, -0.9], [0.0, -0.1], [0.15, 0.1]]),
            "stderr": np.full((3, 2), 0.01)}
    ref = np.log([0.5, 1.0, 2.0])
    ax = plots.lyapunov_scan(scan, reference=ref, reference_label="mean field",
                             all_exponents=True)
    (container,) = ax.containers
    np.testing.assert_array_equal(container.lines[0].get_ydata(), [-0.7, 0.0, 0.15])
    (mf,) = _lines(ax, "mean field")
    np.testing.assert_array_equal(mf.get_ydata(), ref)
    (other,) = _lines(ax, "other exponents")
    np.testing.assert_array_equal(other.get_ydata(), [-0.9, -0.1, 0.1])
    assert _lines(ax, "_zero")
    with pytest.raises(ValueError, match="reference"):
        plots.lyapunov_scan(scan, reference=np.ones(2))


def test_paper_style_sizes_and_embedded_fonts(tmp_path):
    with plots.paper_style(columns=2) as (w, h):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("step $k$")
        assert matplotlib.rcParams["pdf.fonttype"] == 42
        paths = plots.save_figure(ax, tmp_path / "fig")
    assert (w, h) == (7.0, 2.6)
    assert tuple(fig.get_size_inches()) == (7.0, 2.6)
    assert list(matplotlib.rcParams["figure.figsize"]) != [7.0, 2.6]  # restored on exit
    pdf = (tmp_path / "fig.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"FontFile2" in pdf  # TrueType fonts embedded
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(paths) == sorted([str(tmp_path / "fig.pdf"), str(tmp_path / "fig.png")])
    with pytest.raises(ValueError, match="columns"):
        with plots.paper_style(columns=3):
            pass
    with pytest.raises(ValueError, match="height"):
        with plots.paper_style(height=-1):
            pass


def test_no_plot_function_calls_show(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("plt.show called")

    monkeypatch.setattr(plt, "show", boom)
    plots.trajectory(np.zeros((3, 2)))
    plots.lyapunov_spectrum([0.1])
    plots.eigenvalues(np.array([0.5]))
    plots.block_matrix(np.eye(2))
    plots.sparsity_graph(_unit_graph())


def test_memory_capacity_plot_draws_r2_per_delay_and_the_total():
    import itermap
    from itermap.analysis import memory_capacity

    line = itermap.IterativeMap.from_rnn(np.diag([0.0, 0.0]) + np.eye(2, k=-1), np.eye(2, 1))
    mc = memory_capacity(line, max_delay=4, steps=800, rng=0)   # a delay line of length 2
    ax = plots.memory_capacity({"delay line": mc, "twice": mc})
    lines = _lines(ax)
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), mc.r2)
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3, 4])
    text = [t.get_text() for t in ax.get_legend().get_texts()]
    assert text[0] == f"delay line (MC = {mc.capacity:.2f})"
    with pytest.raises(ValueError, match="results is empty"):
        plots.memory_capacity([])


def test_every_figure_of_the_family_modules_is_exported_from_plots():
    # plots/ holds one module per figure family; a figure added to one must reach plots.__all__
    import importlib
    import inspect
    import pkgutil
    from pathlib import Path

    found = {}
    for info in pkgutil.iter_modules(plots.__path__):
        mod = importlib.import_module(f"{plots.__name__}.{info.name}")
        for name, obj in vars(mod).items():
            if inspect.isfunction(obj) and obj.__module__ == mod.__name__ \
                    and not name.startswith("_"):
                found[name] = info.name
    assert len(set(found.values())) >= 10  # the families, each in its own module
    assert sorted(found) == sorted(n for n in plots.__all__ if callable(getattr(plots, n)))
    assert all(getattr(plots, name) is getattr(importlib.import_module(
        f"{plots.__name__}.{m}"), name) for name, m in found.items())
    assert len(plots.__all__) == len(set(plots.__all__)) == 24
    assert Path(plots.STYLE).name == "paper.mplstyle" and Path(plots.STYLE).is_file()
