"""reservoirpy's reservoirs as maps: against fixtures that reservoirpy made (CI has no
reservoirpy; tests/fixtures/make_reservoirpy_fixtures.py), and live where it is installed."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import itermap
from itermap import IterativeMap, ReservoirMap, load, save
from itermap.analysis import effective_spectral_radius, memory_capacity

FIX = Path(__file__).resolve().parent / "fixtures"
NAMES = ["leaky_sparse", "bias_full_leak", "sigmoid_dense", "esn"]


def fixture(name):
    return np.load(FIX / f"reservoirpy_{name}.npz")


def map_of(d):
    """The map from_reservoirpy builds, from the weights as reservoirpy stored them."""
    bias = d["bias"] if np.any(d["bias"]) else None
    return IterativeMap.from_rnn(d["W"], d["Win"], bias, str(d["activation"]),
                                 leak=float(d["lr"]))


@pytest.mark.parametrize("name", NAMES)
def test_states_equal_reservoirpys_to_1e12(name):
    d = fixture(name)
    m = map_of(d)
    traj = itermap.iterate(m, m.zeros(), d["u"].shape[0], inputs=d["u"]).states[1:]
    np.testing.assert_allclose(m.read_block(traj, 1), d["states"], rtol=0, atol=1e-12)
    assert m.leak[1] == float(d["lr"])


def test_the_fitted_readout_gives_reservoirpys_outputs_and_survives_save(tmp_path):
    d = fixture("esn")
    bias = d["bias"] if np.any(d["bias"]) else None
    m = ReservoirMap(d["W"], d["Win"], bias, str(d["activation"]), leak=float(d["lr"]),
                     readout_weights=d["Wout"], readout_bias=d["bout"])
    traj = itermap.iterate(m, m.zeros(), d["u"].shape[0], inputs=d["u"]).states[1:]
    np.testing.assert_allclose(m.readout(traj), d["outputs"], rtol=0, atol=1e-12)
    save(m, tmp_path / "esn.npz")
    back = load(tmp_path / "esn.npz")
    assert isinstance(back, ReservoirMap) and back == m
    assert np.array_equal(back.readout(traj), m.readout(traj))
    again = pickle.loads(pickle.dumps(m))
    assert isinstance(again, ReservoirMap) and again == m
    assert m.to("numpy") == m
    other = ReservoirMap(d["W"], d["Win"], bias, str(d["activation"]), leak=float(d["lr"]),
                         readout_weights=d["Wout"] * 2, readout_bias=d["bout"])
    assert other != m


def test_readout_shapes_are_checked_naming_them():
    with pytest.raises(ValueError, match="readout_weights"):
        ReservoirMap(np.eye(3), np.ones((3, 1)), readout_weights=np.ones((2, 1)))
    with pytest.raises(ValueError, match="readout_bias"):
        ReservoirMap(np.eye(3), np.ones((3, 1)), readout_weights=np.ones((3, 2)),
                     readout_bias=np.ones(3))
    with pytest.raises(ValueError, match="readout_weights"):
        ReservoirMap(np.eye(3), np.ones((3, 1)), readout_weights=np.full((3, 1), np.nan))


def test_memory_capacity_at_ridge_0_reproduces_reservoirpys_within_its_error():
    d = fixture("mc")
    m = map_of(d)
    k = int(d["k_max"])
    n = int(d["n_steps"])
    runs = np.array([memory_capacity(m, max_delay=k, steps=n, rng=seed, input_scale=0.8,
                                     convention="lag").r2 for seed in range(3)])
    theirs = d["mc"]
    # reservoirpy scores 20 % of n steps, this half of them: its spread is sqrt(2.5) ours
    spread = runs.sum(axis=1).std(ddof=1) * np.sqrt(1 / 3 + 2.5)
    assert abs(runs.sum(axis=1).mean() - theirs.sum()) <= 4 * spread + 0.02
    per_lag = runs.std(axis=0, ddof=1).max() * np.sqrt(1 / 3 + 2.5)
    assert np.max(np.abs(runs.mean(axis=0) - theirs)) <= 4 * per_lag + 0.01
    # itermap's own delays: the same numbers one step later, and the latest input first
    delay = memory_capacity(m, max_delay=k + 1, steps=n, rng=0, input_scale=0.8)
    lag = memory_capacity(m, max_delay=k, steps=n, rng=0, input_scale=0.8, convention="lag")
    assert lag.convention == "lag" and lag.delays.tolist() == list(range(1, k + 1))
    np.testing.assert_allclose(lag.r2, delay.r2[1:], atol=0.02)
    assert delay.r2[0] > 0.99


def test_a_ridge_readout_is_reservoirpys_ridge():
    """A tiny ridge changes little; a large one loses the weakly held delays."""
    d = fixture("mc")
    m = map_of(d)
    base = memory_capacity(m, max_delay=20, steps=4000, rng=1)
    tiny = memory_capacity(m, max_delay=20, steps=4000, rng=1, ridge=1e-12)
    big = memory_capacity(m, max_delay=20, steps=4000, rng=1, ridge=10.0)
    np.testing.assert_allclose(tiny.r2, base.r2, atol=1e-6)
    assert big.capacity < base.capacity - 0.5
    with pytest.raises(ValueError, match="ridge"):
        memory_capacity(m, max_delay=3, steps=400, ridge=-1.0)
    with pytest.raises(ValueError, match="convention"):
        memory_capacity(m, max_delay=3, steps=400, convention="lags")


def test_ridge_readout_against_the_augmented_least_squares():
    from itermap.analysis._memory import _ridge_predict

    rng = np.random.default_rng(0)
    X, Y, Xt = rng.normal(size=(50, 4)), rng.normal(size=(50, 2)), rng.normal(size=(7, 4))
    lam = 0.7
    # ridge with an unpenalised intercept = lstsq on [X 1; sqrt(lam) I 0]
    A = np.block([[X, np.ones((50, 1))], [np.sqrt(lam) * np.eye(4), np.zeros((4, 1))]])
    B = np.vstack([Y, np.zeros((4, 2))])
    coef = np.linalg.lstsq(A, B, rcond=None)[0]
    np.testing.assert_allclose(_ridge_predict(X, Y, Xt, lam), np.column_stack(
        [Xt, np.ones(7)]) @ coef, rtol=1e-10, atol=1e-12)


# -- live: reservoirpy installed ----------------------------------------------------------
def test_without_reservoirpy_from_reservoirpy_says_what_to_install(monkeypatch):
    import importlib

    real = importlib.import_module

    def no_rpy(name, *args):
        if name.startswith("reservoirpy"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_rpy)
    with pytest.raises(ImportError, match=r"itermap\[reservoir\]"):
        itermap.from_reservoirpy(object())


@pytest.fixture
def rpy():
    return pytest.importorskip("reservoirpy")


LIVE = [dict(lr=0.3, sr=0.9), dict(lr=1.0, sr=1.2, bias="bernoulli"),
        dict(lr=0.05, sr=0.5, activation="sigmoid", rc_connectivity=1.0,
             input_connectivity=1.0, input_scaling=0.3),
        dict(lr=0.7, sr=0.95, activation="relu", bias=0.1), dict(lr=0.5, activation="identity",
                                                               sr=0.7)]


@pytest.mark.parametrize("kw", LIVE)
@pytest.mark.parametrize("seed", [0, 1])
def test_live_states_equal_reservoirpys(rpy, kw, seed):
    from reservoirpy.nodes import Reservoir

    kw = dict(kw)
    if kw.get("bias") == "bernoulli":
        kw["bias"] = rpy.mat_gen.bernoulli
    res = Reservoir(150, seed=seed, **kw)
    u = np.random.default_rng(seed).normal(size=(400, 3))
    states = res.run(u)
    m = itermap.from_reservoirpy(res)
    traj = itermap.iterate(m, m.zeros(), 400, inputs=u).states[1:]
    np.testing.assert_allclose(m.read_block(traj, 1), states, rtol=0, atol=1e-12)
    assert effective_spectral_radius(m) == pytest.approx(
        rpy.observables.effective_spectral_radius(res.W, lr=kw["lr"]), rel=1e-6)


def test_live_esn_and_model_readouts(rpy):
    from reservoirpy.nodes import Reservoir, Ridge

    u = np.random.default_rng(3).normal(size=(300, 1))
    y = np.sin(np.cumsum(u, axis=0) / 5)
    esn = rpy.ESN(units=60, sr=0.9, lr=0.4, ridge=1e-6, seed=2)
    esn.fit(u, y, warmup=10)
    for model in (esn, None):
        if model is None:
            res = Reservoir(50, lr=0.6, sr=0.8, seed=5)
            model = res >> Ridge(ridge=1e-4)
            model.fit(u, y)
            res.reset()
        else:
            model.reservoir.reset()
        out = model.run(u)
        m = itermap.from_reservoirpy(model)
        assert isinstance(m, ReservoirMap)
        traj = itermap.iterate(m, m.zeros(), 300, inputs=u).states[1:]
        np.testing.assert_allclose(m.readout(traj), out, rtol=0, atol=1e-12)
    # an unfitted ESN: its reservoir alone, a plain map
    fresh = rpy.ESN(units=20, lr=0.5, seed=0)
    fresh.reservoir.initialize(u)
    assert type(itermap.from_reservoirpy(fresh)) is IterativeMap


def test_live_refusals_name_what_cannot_be_represented(rpy):
    from reservoirpy.nodes import IPReservoir, Reservoir, Ridge

    u = np.zeros((5, 1))
    with pytest.raises(ValueError, match="initialise"):
        itermap.from_reservoirpy(Reservoir(10, seed=0))
    r = Reservoir(10, lr=np.linspace(0.1, 1.0, 10), seed=0)
    r.run(u)
    with pytest.raises(ValueError, match="lr"):
        itermap.from_reservoirpy(r)
    r = Reservoir(10, activation="softmax", seed=0)
    r.run(u)
    with pytest.raises(TypeError, match="activation"):
        itermap.from_reservoirpy(r)
    r = Reservoir(10, activation=lambda z: np.tanh(2 * z), seed=0)
    r.run(u)
    with pytest.raises(TypeError, match="activation"):
        itermap.from_reservoirpy(r)
    ip = IPReservoir(10, seed=0)
    ip.run(u)
    with pytest.raises(TypeError, match="IPReservoir"):
        itermap.from_reservoirpy(ip)
    with pytest.raises(ValueError, match="feedback"):
        itermap.from_reservoirpy(rpy.ESN(units=10, feedback=True, seed=0))
    with pytest.raises(ValueError, match="input_to_readout"):
        itermap.from_reservoirpy(rpy.ESN(units=10, input_to_readout=True, seed=0))
    with pytest.raises(TypeError, match="node"):
        itermap.from_reservoirpy(np.eye(3))
    with pytest.raises(ValueError, match="node"):
        itermap.from_reservoirpy(Reservoir(10, seed=0) >> Reservoir(10, seed=1) >> Ridge())
