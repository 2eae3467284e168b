"""Round 23: ints beyond what a parameter can use, and check_memory's message.

``check_int`` refuses, by default, ints outside the int64 range (|n| >= 2**63): NumPy holds
none of them, and ``float`` of one beyond ~1.8e308 raises OverflowError. Every int parameter
of the public API (the catalogue of tests/fuzz_api.py) given one gives a ValueError naming
it, never an OverflowError or NumPy's unnamed message from deep inside."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itermap.checks import check_int, check_memory
from tests import fuzz_api

CASES = fuzz_api.cases()
INT_PARAMS = [(c, p) for c, case in sorted(CASES.items()) for p, spec in case.params.items()
              if spec.kind.startswith("int")]
# a stride past the run is documented to keep the start alone: any int is valid there
UNBOUNDED = {("iterate", "every")}
HUGE = [2 ** 63, 10 ** 400, -(2 ** 63) - 1, -(10 ** 400)]


def _short(value):
    return f"{value:.3g}" if abs(value) < 1e300 else ("-" if value < 0 else "") + "10**400+"


def _refused_by_name(case_name, param, value):
    case = CASES[case_name]
    if (case_name, param) in UNBOUNDED and value > 0:
        outcome, detail = fuzz_api.classify(case, param, "huge int", value, must_refuse=False)
        assert outcome == "ok", f"{case_name}({param}={_short(value)}): {outcome}: {detail}"
        return
    outcome, detail = fuzz_api.classify(case, param, "huge int", value, must_refuse=True)
    assert outcome == "named", f"{case_name}({param}={_short(value)}): {outcome}: {detail[:300]}"
    # the message shows the size, not 400 digits (nor fails, past 4300 of them)
    assert len(detail) < 300, detail


def test_the_catalogue_has_the_int_parameters():
    assert len(INT_PARAMS) >= 100 and UNBOUNDED <= set(INT_PARAMS)


@pytest.mark.parametrize("value", HUGE, ids=["2**63", "10**400", "-2**63-1", "-10**400"])
@pytest.mark.parametrize("where", INT_PARAMS, ids=lambda w: f"{w[0]}.{w[1]}")
def test_every_int_parameter_refuses_an_int_beyond_int64_naming_itself(where, value):
    _refused_by_name(*where, value)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.sampled_from(INT_PARAMS),
       st.one_of(st.integers(min_value=2 ** 63), st.integers(max_value=-(2 ** 63) - 1),
                 st.integers(2 ** 63, 10 ** 400), st.integers(-(10 ** 5000), -(2 ** 63) - 1)))
def test_any_huge_int_is_refused_naming_the_parameter(where, value):
    _refused_by_name(*where, value)


# -- check_int itself -------------------------------------------------------------------

def test_check_int_bounds_at_the_int64_range_by_default():
    assert check_int("n", 2 ** 63 - 1) == 2 ** 63 - 1
    assert check_int("n", -(2 ** 63)) == -(2 ** 63)
    for bad in (2 ** 63, -(2 ** 63) - 1, 10 ** 400):
        with pytest.raises(ValueError, match=r"^n must be .*2\*\*63"):
            check_int("n", bad)


def test_check_int_maximum_is_a_keyword_and_none_lifts_the_bound():
    assert check_int("every", 10 ** 400, 1, maximum=None) == 10 ** 400
    assert check_int("k", 5, 1, maximum=5) == 5
    with pytest.raises(ValueError, match=r"^k must be <= 5, got 6$"):
        check_int("k", 6, 1, maximum=5)
    with pytest.raises(TypeError):
        check_int("k", 6, 1, 5)  # keyword only: a third positional is a mistake


def test_a_huge_int_is_shown_by_its_size_even_past_python_s_digit_limit():
    # str() of an int of more than 4300 digits raises ValueError (CPython's limit): the
    # message must neither fail nor print the digits
    with pytest.raises(ValueError, match=r"^steps must be >= 0, got -1e\+5000$"):
        check_int("steps", -(10 ** 5000), 0)
    with pytest.raises(ValueError, match=r"got 1\.23e\+400$"):
        check_int("steps", 123 * 10 ** 398)
    with pytest.raises(ValueError, match=r"got 9\.22e\+18$"):
        check_int("steps", 2 ** 63)


# -- check_memory's message -------------------------------------------------------------

def test_check_memory_names_the_size_of_an_int_beyond_float_range():
    with pytest.raises(OverflowError):
        float(8 * 10 ** 400)  # the premise: no float holds it
    with pytest.raises(ValueError) as err:
        check_memory("n", 8 * 10 ** 400, "the states")
    msg = str(err.value)
    assert msg.startswith("n: the states would take 8e+391 GB"), msg
    assert "inf" not in msg
    with pytest.raises(ValueError, match=r"^n: the states would take 1e\+09 GB"):
        check_memory("n", 1e18, "the states")  # a float: as before
    with pytest.raises(ValueError, match=r"would take 1e\+09 GB"):
        check_memory("n", 10 ** 18, "the states")
    assert math.isfinite(float(re.search(r"take (\S+) GB", msg).group(1)[:4]))


def test_check_real_says_beyond_float_range_not_infinite():
    from itermap.checks import check_real

    for big in (10 ** 400, -(10 ** 400)):
        with pytest.raises(ValueError, match=r"^gain is beyond float range"):
            check_real("gain", big)
    with pytest.raises(ValueError, match=r"^gain must be finite, got inf$"):
        check_real("gain", float("inf"))  # a float inf: as before


def test_seeds_given_as_a_list_take_any_non_negative_int():
    # NumPy seeds a generator from any non-negative int: the int64 bound is for counts
    import numpy as np

    from itermap.analysis._training import _seed_list

    assert _seed_list([2 ** 64, 10 ** 30]) == [2 ** 64, 10 ** 30]
    assert np.random.default_rng(2 ** 64).random() != np.random.default_rng(0).random()
    with pytest.raises(ValueError, match=r"^seeds must be < 2\*\*63"):
        _seed_list(2 ** 64)  # a count of seeds: no machine holds them
