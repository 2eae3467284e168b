"""Collection rules for the whole repository (doctests over itermap/ and tests/ included)."""

import importlib.util

# these import torch at their top (itermap itself imports it only lazily); without torch,
# as in CI, the doctest collector must not import them
collect_ignore = [] if importlib.util.find_spec("torch") else [
    "itermap/_torch_modules.py", "tests/fixtures/make_torch_fixtures.py"]
