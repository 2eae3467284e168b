"""Maps, block matrices and results travel through pickle and cloudpickle bit for bit.

Issue 12 §3: ``pickle.dumps(itermap.random_rnn(50, rng=0))`` failed because the
activations were lambdas, so a sweep over ``partial(f, net=net)`` failed on its
default executor. Arrays are compared exactly; maps by stepping them.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from functools import partial

import cloudpickle
import numpy as np
import pytest

import itermap
from itermap import ACTIVATIONS, Activation, BlockMatrix, FunctionMap, IterativeMap, systems
from itermap.analysis import (
    find_fixed_points,
    impulse_response,
    lyapunov_scan,
    lyapunov_spectrum,
    memory_capacity,
    orbit_diagram,
    sweep,
)

PICKLERS = [pytest.param(pickle, id="pickle"), pytest.param(cloudpickle, id="cloudpickle")]


def _round_trip(obj, module):
    return pickle.loads(module.dumps(obj))


def _same(a, b) -> bool:
    """Exact equality of plain values, arrays (dtype and bits) and nested containers."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            _same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def _mlp():
    rng = np.random.default_rng(1)
    Ws = [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))]
    bs = [rng.normal(size=4), rng.normal(size=2)]
    return IterativeMap.from_mlp(Ws, bs, activation="elu", output_activation="sigmoid")


def _blocks_map():
    bm = BlockMatrix.from_pattern([6, 5, 4], [["0", "0", "0"], ["W", "R=0.5", "0"],
                                              ["0", "Row=2", "D"]], rng=2)
    return IterativeMap(bm, np.linspace(-0.2, 0.2, 15), ["identity", "tanh", "relu"],
                        input_block=0)


MAPS = {
    "dense": lambda: itermap.random_rnn(50, rng=0),
    "sparse": lambda: itermap.random_rnn(60, density=0.05, gain=1.3, rng=0),
    "mlp": _mlp,
    "blocks": _blocks_map,
    "leaky_sin": lambda: IterativeMap(np.eye(4) * 0.3 + 0.1, activation="sin"),
    "logistic": lambda: systems.logistic(3.7),
    "logistic_batch": lambda: systems.logistic(np.array([3.5, 3.7, 3.9])),
    "henon": lambda: systems.henon(),
    "linear": lambda: systems.linear([[0.5, 0.1], [0.0, 0.3]]),
    "standard": lambda: systems.standard_map(0.9),
}


def _probe(m):
    """States, inputs and the outputs of step and jacobian that identify a map."""
    rng = np.random.default_rng(5)
    B = 3
    x = rng.uniform(0.1, 0.9, size=(B, m.dim))
    u = rng.normal(size=(B, m.input_size)) if m.input_size else None
    out = [m.step(x, u), m.jacobian(x, u)]
    if not isinstance(getattr(m, "r", None), np.ndarray):  # a batch of r needs a batch
        out.append(m.step(x[0], None if u is None else u[0]))
    return out


@pytest.mark.parametrize("module", PICKLERS)
@pytest.mark.parametrize("kind", sorted(MAPS))
def test_maps_round_trip_and_step_bit_for_bit(kind, module):
    m = MAPS[kind]()
    m2 = _round_trip(m, module)
    assert type(m2) is type(m)
    assert m2.dim == m.dim and m2.input_block == m.input_block
    for a, b in zip(_probe(m), _probe(m2)):
        assert _same(np.asarray(a), np.asarray(b))
    if isinstance(m, IterativeMap):
        assert [a.name for a in m2.activations] == [a.name for a in m.activations]


def test_random_rnn_pickles_with_the_standard_library():
    # the defect as filed: the activations held lambdas
    data = pickle.dumps(itermap.random_rnn(50, rng=0))
    assert isinstance(pickle.loads(data), IterativeMap)


@pytest.mark.parametrize("module", PICKLERS)
@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS)))
def test_registered_activation_unpickles_as_the_registered_object(name, module):
    act = ACTIVATIONS[name]
    assert _round_trip(act, module) is act
    z = np.linspace(-3, 3, 13)
    assert _same(_round_trip(act, module).function(z, np), act.function(z, np))


@pytest.mark.parametrize("module", PICKLERS)
def test_unpickled_map_uses_the_registered_activation(module):
    m2 = _round_trip(_blocks_map(), module)
    assert all(a is ACTIVATIONS[a.name] for a in m2.activations)


def test_user_activation_from_a_lambda_travels_with_cloudpickle():
    cube = Activation("cube", lambda z, xp: z ** 3, lambda z, xp: 3 * z ** 2)
    m = IterativeMap(np.eye(3) * 0.5, activation=cube)
    m2 = _round_trip(m, cloudpickle)
    x = np.array([0.3, -0.2, 0.1])
    assert np.array_equal(m2.step(x), (0.5 * x) ** 3)
    assert m2.activations[0].name == "cube"


def test_pickle_holds_each_weight_once():
    # the plan (transposes, dense copies) is rebuilt on unpickling, not stored
    m = itermap.random_rnn(200, rng=0)
    m.jacobian(np.zeros(200))  # fills the dense cache
    assert len(pickle.dumps(m)) < 1.1 * m.block_matrix.to_dense().nbytes


def test_subclass_attributes_survive_pickling():
    m = _round_trip(_Tagged(np.eye(2) * 0.5, tag="mine"), pickle)
    assert isinstance(m, _Tagged) and m.tag == "mine"
    assert np.array_equal(m.step(np.ones(2)), np.tanh(np.full(2, 0.5)))


class _Tagged(IterativeMap):
    def __init__(self, weights, *, tag):
        super().__init__(weights)
        self.tag = tag


@pytest.mark.parametrize("module", PICKLERS)
def test_block_matrix_round_trips(module):
    bm = _blocks_map().block_matrix
    bm2 = _round_trip(bm, module)
    assert bm2.sizes == bm.sizes and bm2.blocks.keys() == bm.blocks.keys()
    assert _same(bm2.to_dense(), bm.to_dense())
    for k, b in bm.blocks.items():
        assert type(bm2.blocks[k]) is type(b)


def _lozi(x, a=1.7, b=0.5):
    return np.stack([1 - a * np.abs(x[..., 0]) + x[..., 1], b * x[..., 0]], -1)


def _lozi_jac(x, a=1.7, b=0.5):
    J = np.zeros(x.shape + (2,))
    J[..., 0, 0] = -a * np.sign(x[..., 0])
    J[..., 0, 1] = 1.0
    J[..., 1, 0] = b
    return J


@pytest.mark.parametrize("module", PICKLERS)
def test_function_map_with_module_functions_round_trips(module):
    m = FunctionMap(_lozi, 2, jacobian=_lozi_jac, name="lozi")
    m2 = _round_trip(m, module)
    for a, b in zip(_probe(m), _probe(m2)):
        assert _same(a, b)
    assert repr(m2) == repr(m)


def test_function_map_from_lambdas_round_trips_with_cloudpickle():
    m = FunctionMap(lambda x: 0.5 * x, 3, jacobian=lambda x: 0.5 * np.eye(3))
    m2 = _round_trip(m, cloudpickle)
    assert np.array_equal(m2.step(np.ones(3)), np.full(3, 0.5))


def _results():
    rnn = itermap.random_rnn(12, gain=1.5, rng=3)
    driven = IterativeMap.from_rnn(np.eye(4) * 0.4, np.ones((4, 1)))
    return {
        "trajectory": itermap.iterate(rnn, np.full(12, 0.1), 20),
        "fixed_points": find_fixed_points(itermap.random_rnn(6, gain=0.5, rng=0),
                                          np.random.default_rng(0).normal(size=(4, 6))),
        "lyapunov": lyapunov_spectrum(rnn, np.full(12, 0.1), 200, k=3, rng=0),
        "impulse": impulse_response(_mlp(), _mlp().zeros(), 5, inputs=np.ones(3)),
        "memory": memory_capacity(driven, max_delay=4, steps=300, rng=0),
        "orbit": orbit_diagram(systems.logistic, np.linspace(3.4, 3.9, 4), np.array([0.3]),
                               transient=50, keep=8),
        "scan": lyapunov_scan(systems.logistic, np.linspace(3.4, 3.9, 4), np.array([0.3]),
                              200, transient=20),
    }


@pytest.fixture(scope="module")
def results():
    return _results()


@pytest.mark.parametrize("module", PICKLERS)
@pytest.mark.parametrize("kind", ["trajectory", "fixed_points", "lyapunov", "impulse",
                                  "memory", "orbit", "scan"])
def test_results_round_trip_bit_for_bit(results, kind, module):
    res = results[kind]
    res2 = _round_trip(res, module)
    assert _same(res, res2)


def _square(x, *, net):
    return {"y": float(net.step(np.full(net.dim, x))[0])}


@pytest.mark.parametrize("module", PICKLERS)
def test_sweep_result_round_trips(module):
    net = itermap.random_rnn(5, rng=0)
    table = sweep(partial(_square, net=net), {"x": [0.1, 0.2]}, executor="serial",
                  progress=False)
    table2 = _round_trip(table, module)
    assert table2.equals(table) and table2.params == table.params
    assert table2["y"].tolist() == [float(np.tanh(net.block_matrix.to_dense()
                                                  @ np.full(5, x))[0]) for x in (0.1, 0.2)]


def test_partial_over_a_map_runs_on_the_process_pool():
    # the defect as filed: every point failed with the same pickling error
    net = itermap.random_rnn(5, rng=0)
    table = sweep(partial(_square, net=net), {"x": [0.1, 0.2, 0.3]}, executor=2,
                  progress=False)
    assert not table.failures
    W = net.block_matrix.to_dense()
    assert table["y"].tolist() == [float(np.tanh(W @ np.full(5, x))[0]) for x in (0.1, 0.2, 0.3)]
