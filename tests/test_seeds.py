"""Every function that draws random numbers takes ``rng`` and is bitwise reproducible."""

import numpy as np
import pytest

import itermap
import itermap.analysis as analysis


def _arrays(obj):
    """The arrays inside a result, for bitwise comparison."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if hasattr(obj, "block_matrix"):
        return [np.asarray(obj.block_matrix.to_dense())]
    if hasattr(obj, "__dataclass_fields__"):
        out = []
        for name in obj.__dataclass_fields__:
            value = getattr(obj, name)
            if isinstance(value, np.ndarray):
                out.append(value)
            elif isinstance(value, float):
                out.append(np.array([value]))
        return out
    return [np.asarray(obj)]


def _rnn():
    return itermap.random_rnn(12, gain=1.3, rng=0)


CASES = {
    "from_pattern": lambda rng: itermap.BlockMatrix.from_pattern(
        [5, 4], [["0", "R=0.4"], ["Row=2", "S=3"]], rng=rng).to_dense(),
    "random_rnn": lambda rng: itermap.random_rnn(30, density=0.2, rng=rng),
    "random_rnn_sparse": lambda rng: itermap.random_rnn(200, density=0.01, rng=rng),
    "mlp_continuum": lambda rng: itermap.mlp_continuum([3, 5, 4], recurrent=0.3, rng=rng),
    "add_blocks": lambda rng: itermap.add_blocks(
        itermap.IterativeMap.from_mlp([np.ones((5, 3)), np.ones((4, 5))]), {(1, 1): 0.4},
        rng=rng),
    "sample_states": lambda rng: analysis.sample_states(_rnn(), 6, steps=10, noise=0.1, rng=rng),
    "memory_capacity": lambda rng: analysis.memory_capacity(
        itermap.mlp_continuum([1, 6, 6], recurrent=0.5, rng=3), input_block=0, max_delay=4,
        steps=300, rng=rng),
}
if hasattr(analysis, "lyapunov_spectrum"):
    CASES["lyapunov_spectrum"] = lambda rng: analysis.lyapunov_spectrum(
        _rnn(), np.full((2, 12), 0.1), 50, k=3, rng=rng)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_same_bits(name):
    make = CASES[name]
    a, b = _arrays(make(7)), _arrays(make(np.random.default_rng(7)))
    assert len(a) == len(b) and a
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = _arrays(make(8))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c)), "the seed is ignored"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_rng_is_a_type_error(name):
    with pytest.raises(TypeError, match="rng"):
        CASES[name]("not a seed")
