"""Train the networks shipped in data/trained/ (run from the repository root).

    python data/trained/make_trained.py [flip_flop] [digits_mlp] [digits_sparse]
                                        [equal_parameters]

Each network is trained with a fixed seed and saved with ``itermap.save``:

- ``flip_flop_rnn.npz``: an Elman RNN (N = 64 tanh units) on the 3-bit flip-flop,
  state ``[input (3); h (64); readout (3)]``, input block 0. The readout block
  reads ``h`` one step late (every block updates at once), so the target of step
  ``t`` is the flip-flop's output at step ``t - 1``.
- ``digits_mlp.npz``: the MLP [64, 64, 10] (relu) as an iterative map, 2 steps.
- ``digits_sparse.npz``: a sparse map on the same widths, ``R=p`` blocks in the
  continuum pattern, its trainable parameters matched to the MLP's.
- ``equal_parameters.npz``: the :class:`itermap.analysis.ParameterComparison` of the
  MLP, the continuum and sparse maps at equal trainable parameters (5 seeds).
"""

from __future__ import annotations

import os
import sys

import numpy as np

import itermap
from itermap import datasets

HERE = os.path.dirname(os.path.abspath(__file__))
FLIP_FLOP_N = 64
DIGITS_HIDDEN = 64


def flip_flop_data(n, steps, *, rng):
    """Flip-flop inputs and targets lagged by one step (the readout's own lag)."""
    u, y = datasets.flip_flop(n, steps, rng=rng)
    lagged = np.concatenate([np.zeros_like(y[:1]), y[:-1]], axis=0)
    return u, lagged


def flip_flop_rnn(*, rng=0):
    """A freshly initialised Elman RNN with a linear readout, for the flip-flop."""
    n = FLIP_FLOP_N
    bm = itermap.BlockMatrix.from_pattern(
        [3, n, 3], [["0", "0", "0"], ["W", "W", "0"], ["0", "W", "0"]], rng=rng, scale=0.9)
    return itermap.IterativeMap(bm, np.zeros(n + 6), ["identity", "tanh", "identity"],
                                input_block=0)


def train_flip_flop():
    u, y = flip_flop_data(2000, 100, rng=1)
    net, hist = itermap.train(flip_flop_rnn(rng=0), u, y, loss="mse", at="all", epochs=30,
                              batch_size=64, lr=5e-3, clip_norm=1.0, rng=2)
    ut, yt = flip_flop_data(500, 200, rng=3)
    loss, acc = itermap.evaluate(net, ut, yt, loss="mse", at="all")
    print(f"flip-flop: train bit accuracy {hist.accuracy[-1]:.4f}, test loss {loss:.4g}, "
          f"test bit accuracy {acc:.4f}")
    itermap.save(net, os.path.join(HERE, "flip_flop_rnn.npz"))
    return net, hist, acc


def train_digits(kind):
    """The digits MLP (``kind="mlp"``) or the sparse map at density 0.25 with the
    MLP's trainable count (``kind="sparse"``); 3 steps, Adam, 30 epochs, seed 0."""
    from itermap.analysis import digits_model, sparse_hidden_width

    x_train, y_train, x_test, y_test = datasets.digits()
    mlp = digits_model("mlp", hidden=DIGITS_HIDDEN, rng=0)
    if kind == "mlp":
        model = mlp
    else:
        width = sparse_hidden_width(itermap.trainable_count(mlp), 0.25)
        model = digits_model("sparse", hidden=width, density=0.25, rng=0)
    net, hist = itermap.train(model, x_train, y_train, steps=3, epochs=30, lr=3e-3, rng=0)
    _, acc = itermap.evaluate(net, x_test, y_test, steps=3)
    print(f"digits {kind}: sizes {net.sizes}, trainable {hist.trainable_count}, "
          f"test accuracy {acc:.4f}")
    itermap.save(net, os.path.join(HERE, f"digits_{kind}.npz"))
    return net, hist, acc


def equal_parameters():
    """The paper's comparison (issue 14, section 5): 5 seeds, saved with its table."""
    from itermap.analysis import equal_parameter_comparison

    res = equal_parameter_comparison(seeds=5, epochs=30, progress=False)
    itermap.save(res, os.path.join(HERE, "equal_parameters.npz"))
    print(res.table())
    return res


if __name__ == "__main__":
    which = sys.argv[1:] or ["flip_flop", "digits_mlp", "digits_sparse"]
    for name in which:
        jobs = {"flip_flop": train_flip_flop, "digits_mlp": lambda: train_digits("mlp"),
                "digits_sparse": lambda: train_digits("sparse"),
                "equal_parameters": equal_parameters}
        jobs[name]()
