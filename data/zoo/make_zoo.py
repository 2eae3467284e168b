"""Make the shipped model zoo, ``itermap/data/zoo.npz`` (issue 29).

    python data/zoo/make_zoo.py [--workers 2] [--cache data/zoo/cache]

Graph RNNs (``itermap.random_graph_rnn``) trained on two tasks -- the 3-bit flip-flop and
sequential digits (the 8 x 8 digits read row by row) -- across graph kind, density, gain,
size and seed, through ``itermap.analysis.sweep``: with ``--cache`` an interrupted run
resumes where it stopped. Each network is stored with its hyperparameters, its training
curve (loss per epoch) and its test accuracy; ``itermap.datasets.zoo()`` loads it.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import itermap
from itermap import datasets
from itermap.analysis import probe, sweep

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "itermap", "data", "zoo.npz")

GRID = {
    "task": ["flip_flop", "digits"],
    "kind": ["er", "ws", "ba"],
    "density": [0.1, 0.25],
    "gain": [0.5, 1.0, 2.0],
    "size": [16, 32],
    "seed": [0, 1, 2],
}
EPOCHS = 8


def graph_options(kind, density, size):
    """The generator's parameter that gives about ``density`` of the hidden block."""
    if kind == "er":
        return {"p": density}
    if kind == "ws":
        return {"k": max(2, 2 * int(round(density * size / 2))), "p": 0.1}
    return {"m": max(1, int(round(density * size / 2)))}


def task_data(task):
    if task == "flip_flop":
        u, y = datasets.flip_flop(400, 30, p=0.1, rng=10)
        ut, yt = datasets.flip_flop(200, 30, p=0.1, rng=11)
        return u, y, ut, yt
    x, y, xt, yt = datasets.digits()
    return _rows(x[:600]), y[:600], _rows(xt), yt


def _rows(a):
    """Images as sequences of their rows: (8 steps, n, 8 pixels)."""
    return np.transpose(a.reshape(-1, 8, 8), (1, 0, 2))


def accuracy(task, m, ut, yt):
    if task == "digits":
        return float(itermap.evaluate(m, ut, yt)[1])
    out = np.transpose(probe(m, np.transpose(ut, (1, 0, 2))), (1, 0, 2))
    held = yt != 0   # the sign held by every channel once its first pulse came
    return float(np.mean(np.sign(out[held]) == yt[held]))


def train_one(task, kind, density, gain, size, seed):
    u, y, ut, yt = task_data(task)
    n_in, n_out = (3, 3) if task == "flip_flop" else (8, 10)
    m = itermap.random_graph_rnn(size, kind=kind, gain=gain, n_in=n_in, n_out=n_out, rng=seed,
                                 **graph_options(kind, density, size))
    loss, at = ("mse", "all") if task == "flip_flop" else ("cross_entropy", "last")
    trained, hist = itermap.train(m, u, y, loss=loss, at=at, epochs=EPOCHS, lr=0.02,
                                  batch_size=50, rng=seed, progress=False)
    hidden = trained.block_matrix.to_dense()[n_in:n_in + size, n_in:n_in + size]
    # arrays, not the map, so that the sweep's cache (and so resuming) can hold them
    return {"W": np.asarray(trained.block_matrix.to_dense()), "bias": np.asarray(trained.bias),
            "sizes": list(trained.sizes), "loss": np.asarray(hist.loss, dtype=float),
            "accuracy": accuracy(task, trained, ut, yt),
            "hidden_density": float(np.count_nonzero(hidden) / size ** 2)}


def pack(table):
    """One npz: the weights as COO triplets, float32, concatenated with offsets."""
    meta, rows, cols, vals, biases, curves = [], [], [], [], [], []
    for rec in table.records:
        W = rec["W"]
        r, c = np.nonzero(W)
        rows.append(r.astype(np.int16))
        cols.append(c.astype(np.int16))
        vals.append(W[r, c].astype(np.float32))
        biases.append(np.asarray(rec["bias"], dtype=np.float32))
        curves.append(rec["loss"].astype(np.float32))
        meta.append({k: rec[k] for k in GRID} | {
            "sizes": [int(v) for v in rec["sizes"]], "accuracy": rec["accuracy"],
            "hidden_density": rec["hidden_density"], "epochs": EPOCHS,
            "activations": ["identity", "tanh", "identity"]})
    off = np.concatenate([[0], np.cumsum([v.size for v in vals])])
    boff = np.concatenate([[0], np.cumsum([b.size for b in biases])])
    np.savez_compressed(OUT, meta=np.array(json.dumps(meta)), rows=np.concatenate(rows),
                        cols=np.concatenate(cols), values=np.concatenate(vals), offsets=off,
                        bias=np.concatenate(biases), bias_offsets=boff,
                        curves=np.stack(curves))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"))
    args = ap.parse_args()
    t = time.perf_counter()
    table = sweep(train_one, GRID, executor=args.workers, seed=0, cache=args.cache,
                  progress=True)
    if table.failures:
        raise SystemExit(f"{len(table.failures)} networks failed: {table.failures[:3]}")
    pack(table)
    print(f"{len(table)} networks in {time.perf_counter() - t:.0f} s -> {OUT} "
          f"({os.path.getsize(OUT) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
