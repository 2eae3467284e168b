"""Round 22: defects a computational neuroscientist and a dynamicist hit (issues 25, 26).

Every number is checked against an independent computation (a plain NumPy LSTM cell,
matplotlib's own layout of the drawn text), never against the code's earlier output.
"""

import numpy as np

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
    Wih, Whh, b = rng.normal(size=(4 * H, n_in)), rng.normal(size=(4 * H, H)), rng.normal(size=4 * H)
    return itermap.LSTMMap(Wih, Whh, b, np.zeros(4 * H)), (Wih, Whh, b)


def test_lstm_readout_is_the_output_h_not_the_cell_state():
    m, (Wih, Whh, b) = _lstm()
    xs = np.random.default_rng(1).normal(size=(6, 2))
    want = _numpy_lstm(Wih, Whh, b, xs)
    final = itermap.iterate(m, m.initial_state(), len(xs), inputs=xs).final
    np.testing.assert_allclose(m.readout(final), want[-1], rtol=0, atol=1e-12)
