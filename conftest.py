"""Collection rules for the whole repository (doctests over itermap/ and tests/ included)."""

import importlib.util

import numpy
import pytest

# these import an optional package at their top (itermap itself imports them only lazily);
# without it, as in CI, the doctest collector must not import them
_NEEDS = {
    "torch": ["itermap/_interop/_torch_modules.py", "tests/fixtures/make_torch_fixtures.py",
              "tests/fixtures/make_transformer_fixtures.py"],
    "reservoirpy": ["tests/fixtures/make_reservoirpy_fixtures.py"],
}
collect_ignore = [path for package, paths in _NEEDS.items()
                  if importlib.util.find_spec(package) is None for path in paths]


@pytest.fixture(autouse=True)
def _numpy_in_doctests(doctest_namespace):
    # numpydoc's convention: an Examples section assumes ``import numpy as np``
    doctest_namespace["np"] = numpy
