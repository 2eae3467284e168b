"""Fuzzing the public API with bad input (the catalogue in tests/fuzz_api.py).

Every outcome is a correct result, or a ValueError/TypeError whose message names the
parameter. A value that must be refused (a complex array, NaN, a float where an int
goes, ...) is never silently accepted, and no result carries an undocumented NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import itermap
import itermap.analysis as analysis
from itermap.analysis import plots
from tests import fuzz_api

CASES = fuzz_api.cases()
BAD = ("unnamed", "accepted", "nonfinite", "other")


def _public(module):
    return [(module.__name__, name, getattr(module, name)) for name in module.__all__]


def test_the_catalogue_covers_every_public_name():
    covered = {id(c.fn) for c in CASES.values()}
    covered |= {id(getattr(c.fn, "__func__", None)) for c in CASES.values()}
    missing = []
    for mod, name, obj in _public(itermap) + _public(analysis) + _public(plots) + \
            _public(itermap.systems):
        if name in fuzz_api.EXEMPT or id(obj) in covered:
            continue
        missing.append(f"{mod}.{name}")
    assert not missing, f"add these to tests/fuzz_api.py (or EXEMPT, with a reason): {missing}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_with_a_named_error(case):
    rows = fuzz_api.run(select={case})
    assert rows, "the case tried no bad value"
    findings = [f"{r['param']}={r['bad']}: {r['outcome']}: {r['detail'][:160]}"
                for r in rows if r["outcome"] in BAD]
    assert not findings, "\n".join(findings)


# -- hypothesis: arbitrary values, not only the catalogued ones --------------------------
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-10 ** 6, 10 ** 6),
    st.floats(allow_nan=True, allow_infinity=True), st.complex_numbers(max_magnitude=10),
    st.text(max_size=5), st.lists(st.floats(-5, 5), max_size=4),
    hnp.arrays(dtype=st.sampled_from([np.float64, np.float32, np.int64, np.complex128,
                                      np.bool_]),
               shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
    # the array kinds of issue 23: big-endian and half precision, masked, np.matrix
    hnp.arrays(dtype=st.sampled_from([">f8", ">i4", np.float16]),
               shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)),
    hnp.arrays(dtype=np.float64, shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
               elements=st.floats(-2, 2)).map(lambda a: np.ma.masked_array(a, mask=a > 0)),
    hnp.arrays(dtype=np.float64, shape=hnp.array_shapes(min_dims=2, max_dims=2, max_side=4),
               elements=st.floats(-2, 2)).map(fuzz_api._matrix),
)
# parameters where any value is cheap to try (no unbounded loops or allocations)
CHEAP = [(c, p) for c, case in sorted(CASES.items()) for p, spec in case.params.items()
         if spec.kind not in ("figure",) and not spec.size_like and not case.slow
         and p not in ("executor", "steps", "transient", "keep", "max_iter", "washout", "max_delay",
                       "quadrature", "every", "reorthonormalize_every", "period", "epochs",
                       "mc_steps", "lyapunov_steps", "max_points")]


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CHEAP), ANY_VALUE)
def test_any_value_gives_a_result_or_a_named_error(where, value):
    case_name, param = where
    case = CASES[case_name]
    outcome, detail = fuzz_api.classify(case, param, "hypothesis", value, must_refuse=False)
    assert outcome in ("ok", "named"), f"{case_name}({param}={value!r}): {outcome}: {detail}"
