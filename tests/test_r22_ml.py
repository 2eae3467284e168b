"""Round 22: an ML researcher and an attacker with untrusted input (issues 25, 26).

Each test is checked against something independent of the code under test (Python's own
arithmetic, a plain NumPy loop, torch); defects in files this round's helper does not own
are strict xfails naming the file."""

import numpy as np
import pytest

import itermap
import itermap.analysis as analysis

BIG = 10 ** 400  # a Python int: float(BIG) raises OverflowError


# -- numbers too large for a float: a ValueError naming the parameter, not OverflowError --

@pytest.mark.parametrize("call, name", [
    (lambda: itermap.random_rnn(5, gain=BIG), "gain"),
    (lambda: itermap.random_rnn(5, density=-BIG), "density"),
    (lambda: itermap.prune(itermap.random_rnn(5, rng=0), fraction=BIG), "fraction"),
    (lambda: itermap.iterate(itermap.random_rnn(5, rng=0), np.zeros(5), BIG), "steps"),
])
def test_a_number_beyond_float_range_is_a_value_error_naming_it(call, name):
    with pytest.raises(OverflowError):
        float(BIG)  # the premise: Python cannot hold it as a float
    with pytest.raises(ValueError, match=name):
        call()
