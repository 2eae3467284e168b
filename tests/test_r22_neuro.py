"""Round 22: defects a computational neuroscientist and a dynamicist hit (issues 25, 26).

Every number is checked against an independent computation (a plain NumPy LSTM cell,
matplotlib's own layout of the drawn text), never against the code's earlier output.
"""

import numpy as np
import pytest

import itermap
from itermap import analysis


def _numpy_lstm(Wih, Whh, b, xs):
    """torch's LSTM cell (gates i, f, g, o), one sequence, from the zero state."""
    H = Whh.shape[1]
    h, c, out = np.zeros(H), np.zeros(H), []
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    for x in xs:
        i, f, g, o = np.split(Wih @ x + Whh @ h + b, 4)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.array(out)


def _lstm(seed=0, n_in=2, H=3):
    rng = np.random.default_rng(seed)
    Wih, Whh = rng.normal(size=(4 * H, n_in)), rng.normal(size=(4 * H, H))
    b = rng.normal(size=4 * H)
    return itermap.LSTMMap(Wih, Whh, b, np.zeros(4 * H)), (Wih, Whh, b)


def test_lstm_readout_is_the_output_h_not_the_cell_state():
    m, (Wih, Whh, b) = _lstm()
    xs = np.random.default_rng(1).normal(size=(6, 2))
    want = _numpy_lstm(Wih, Whh, b, xs)
    final = itermap.iterate(m, m.initial_state(), len(xs), inputs=xs).final
    np.testing.assert_allclose(m.readout(final), want[-1], rtol=0, atol=1e-12)


def test_kaplan_yorke_note_stays_inside_a_panel_of_a_three_panel_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from itermap.analysis import plots
    from itermap.systems import linear

    res = analysis.lyapunov_spectrum(linear(np.diag([0.5, 0.25, 0.2])), np.ones(3), 20, rng=0)
    fig, axs = plt.subplots(1, 3, figsize=(10, 3), layout="constrained")
    for ax in axs:
        plots.lyapunov_spectrum(res, ax=ax)
    fig.canvas.draw()
    try:
        for ax in axs:
            box = ax.get_window_extent()
            for t in ax.texts:
                ext = t.get_window_extent()
                assert box.x0 <= ext.x0 and ext.x1 <= box.x1, t.get_text()
    finally:
        plt.close(fig)


def test_run_of_stacked_layers_of_different_hidden_sizes_returns_each_layers_h_n():
    # the constructor takes layers whose hidden sizes differ (each layer's input is the
    # hidden size of the one below); run crashed stacking their h_n into one array
    rng = np.random.default_rng(4)
    low = itermap.GRUMap(rng.normal(size=(9, 2)), rng.normal(size=(9, 3)))
    top = itermap.GRUMap(rng.normal(size=(15, 3)), rng.normal(size=(15, 5)))
    m = itermap.RecurrentMap(low.layers + top.layers)
    x = rng.normal(size=(6, 2))
    output, h_n = m.run(x)
    low_out, low_h = low.run(x)                      # layer by layer, as torch stacks them
    top_out, top_h = top.run(low_out)
    np.testing.assert_allclose(output, top_out, rtol=0, atol=1e-12)
    assert len(h_n) == 2
    np.testing.assert_allclose(h_n[0], low_h[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n[1], top_h[0], rtol=0, atol=1e-12)


def test_run_of_stacked_lstm_layers_of_different_hidden_sizes():
    rng = np.random.default_rng(5)
    low = itermap.LSTMMap(rng.normal(size=(12, 2)), rng.normal(size=(12, 3)))
    top = itermap.LSTMMap(rng.normal(size=(20, 3)), rng.normal(size=(20, 5)))
    x = rng.normal(size=(4, 2))
    output, (h_n, c_n) = itermap.RecurrentMap(low.layers + top.layers).run(x)
    low_out, (low_h, low_c) = low.run(x)
    top_out, (top_h, top_c) = top.run(low_out)
    np.testing.assert_allclose(output, top_out, rtol=0, atol=1e-12)
    for got, want in zip((*h_n, *c_n), (low_h[0], top_h[0], low_c[0], top_c[0])):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_lyapunov_spectrum_names_a_step_that_drops_the_state_axis():
    m = itermap.FunctionMap(lambda x: 4 * x[..., 0] * (1 - x[..., 0]), 1, jacobian="central")
    with pytest.raises(ValueError, match="step returned shape"):
        itermap.iterate(m, np.array([0.3]), 3)          # what iterate says
    with pytest.raises(ValueError, match="step returned shape"):
        analysis.lyapunov_spectrum(m, np.array([0.3]), 100)


def test_run_names_x_when_the_sequence_comes_from_another_library():
    # a torch user passes torch's own tensor; the refusal blamed the state run builds
    # ("x is numpy, inputs is torch"), not the argument x given
    xp = pytest.importorskip("array_api_strict")
    m = itermap.GRUMap(np.ones((9, 2)), np.ones((9, 3)))
    with pytest.raises(TypeError, match=r"^x: .*array_api_strict"):
        m.run(xp.asarray(np.ones((4, 2))))
    with pytest.raises(TypeError, match=r"^x: .*torch"):
        m.run(pytest.importorskip("torch").ones(4, 2))


def test_kaplan_yorke_note_clears_a_panels_title():
    # above the Axes the note ran over a panel's centred title
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from itermap.analysis import plots
    from itermap.systems import linear

    res = analysis.lyapunov_spectrum(linear(np.diag([0.9, 0.5, 0.25, 0.2])), np.ones(4), 20,
                                     rng=0)
    fig, axs = plt.subplots(1, 3, figsize=(10, 3), layout="constrained")
    try:
        for ax in axs:
            ax.set_title("(a) a linear map")
            plots.lyapunov_spectrum(res, ax=ax)
        fig.canvas.draw()
        for ax in axs:
            title = ax.title.get_window_extent()
            (note,) = ax.texts
            assert not note.get_window_extent().overlaps(title)
    finally:
        plt.close(fig)
