"""Shared fixtures: the array namespaces every dense code path is tested over."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

os.environ.setdefault("MPLBACKEND", "Agg")

# CI replays the same examples every run, so a red build always reproduces;
# locally hypothesis keeps exploring new ones
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _cupy_or_skip():
    from itermap.backends import cupy_available

    if not cupy_available():
        pytest.skip("cupy with a CUDA GPU is not available")
    import cupy

    return cupy


@pytest.fixture(params=["numpy", "array_api_strict", "cupy"])
def xp(request):
    """numpy, array_api_strict (catches NumPy-only calls) and cupy (GPU only)."""
    if request.param == "numpy":
        return np
    if request.param == "array_api_strict":
        return pytest.importorskip("array_api_strict")
    return _cupy_or_skip()


def to_np(a):
    """A NumPy copy of any array (for assertions)."""
    from itermap.backends import to_numpy

    return np.asarray(to_numpy(a))


def count_calls(monkeypatch, owner, name, *also):
    """Wrap ``owner.name`` so that its calls are counted; returns the counter, ``{"n": 0}``.

    ``also`` names more ``(module, attribute)`` places that imported the same function
    and get the counting wrapper too.
    """
    calls = {"n": 0}
    fn = getattr(owner, name)

    def counted(*args, **kwargs):
        calls["n"] += 1
        return fn(*args, **kwargs)

    for target, attr in ((owner, name), *also):
        monkeypatch.setattr(target, attr, counted)
    return calls


try:
    import numba  # noqa: F401
    HAVE_NUMBA = True
except ImportError:
    HAVE_NUMBA = False

# the small maps' plain loop always; the compiled one where numba is installed
MODES = ["0", pytest.param("1", marks=pytest.mark.skipif(not HAVE_NUMBA,
                                                         reason="numba not installed"))]
