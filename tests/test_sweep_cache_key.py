"""The sweep cache key covers every global the function reads (issue 23, item 4).

Each case defines ``point`` in a user module (a file on ``sys.path``, or a notebook-like
namespace), sweeps it with ``cache=``, changes one thing the function reads without
touching its own code, and sweeps again: the second sweep must compute afresh and give
the new numbers (checked against a closed form), and a third, unchanged, must read them
back from the cache.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import threading
import types

import numpy as np
import pytest

import itermap
from itermap.analysis import sweep

# name: (the main module's source, a helper module's source (or None), the two values,
#        the point's value at x for a value)
CASES = {
    "module list": (
        "WEIGHTS = [1.0, {v}]\ndef point(x):\n    return x * sum(WEIGHTS)", None, (2.0, 3.0),
        lambda x, v: x * (1.0 + v)),
    "module dict": (
        "CFG = {{'k': {v}}}\ndef point(x):\n    return x * CFG['k']", None, (2.0, 5.0),
        lambda x, v: x * v),
    "class attribute": (
        "class Cfg:\n    table = {{'s': {v}}}\ndef point(x):\n    return x * Cfg.table['s']", None,
        (2.0, 7.0), lambda x, v: x * v),
    "bound map's class attribute": (
        "import functools\nclass M:\n    gain = [{v}]\n    def step(self, x):\n"
        "        return self.gain[0] * x\ndef _point(x, m):\n    return m.step(x)\n"
        "point = functools.partial(_point, m=M())", None, (1.5, 2.5), lambda x, v: x * v),
    "helper imported from another module": (
        "from {helper} import helper\ndef point(x):\n    return helper(x)",
        "def helper(x):\n    return x + {v}", (1.0, 4.0), lambda x, v: x + v),
    "attribute of another module": (
        "import {helper} as h\ndef point(x):\n    return x * h.SCALE",
        "SCALE = {v}", (3.0, 0.5), lambda x, v: x * v),
    "list another module's helper reads": (
        "from {helper} import helper\ndef point(x):\n    return helper(x)",
        "TABLE = [0.0, {v}]\ndef helper(x):\n    return x * TABLE[-1]", (2.0, 9.0),
        lambda x, v: x * v),
    "module imported inside the function": (
        "def point(x):\n    import {helper}\n    return {helper}.OFFSET + x",
        "OFFSET = {v}", (1.0, -2.0), lambda x, v: x + v),
    "module-level object": (
        "class Params:\n    def __init__(self, a):\n        self.a = a\nP = Params({v})\n"
        "def point(x):\n    return x * P.a", None, (2.0, 6.0), lambda x, v: x * v),
    "module-level partial": (
        "import functools\ndef mul(x, k):\n    return x * k\nscaled = functools.partial(mul, "
        "k={v})\ndef point(x):\n    return scaled(x)", None, (2.0, 3.0), lambda x, v: x * v),
}


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Write and (re)import modules from ``tmp_path``, as a user editing files would."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    made = []

    def write(name, source):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source) + "\n")
        importlib.invalidate_caches()
        if name in sys.modules:
            return importlib.reload(sys.modules[name])
        made.append(name)
        return importlib.import_module(name)

    yield write
    for name in made:
        sys.modules.pop(name, None)


def _run(function, cache):
    return sweep(function, {"x": [1.0, 2.0]}, executor="serial", cache=cache, progress=False)


@pytest.mark.parametrize("case", list(CASES))
def test_stale_cache_changed_global_is_computed_afresh(tmp_path, user_modules, case):
    main_src, helper_src, (v1, v2), expect = CASES[case]
    tag = "".join(c if c.isalnum() else "_" for c in case)
    helper = f"ck_helper_{tag}"

    def define(v):
        if helper_src is not None:  # the helper module changes, the main one does not
            user_modules(helper, helper_src.format(v=v))
            return user_modules(f"ck_main_{tag}", main_src.format(helper=helper)).point
        return user_modules(f"ck_main_{tag}", main_src.format(v=v, helper=helper)).point

    cache = tmp_path / "cache"
    first = _run(define(v1), cache)
    assert first["result"].tolist() == [expect(1.0, v1), expect(2.0, v1)]
    changed = _run(define(v2), cache)
    assert changed.n_cached == 0, "the old result came back from the cache"
    assert changed["result"].tolist() == [expect(1.0, v2), expect(2.0, v2)]
    again = _run(define(v2), cache)  # nothing changed: read back
    assert again.n_cached == 2 and again.equals(changed)
    back = _run(define(v1), cache)  # and the first version's points are still there
    assert back.n_cached == 2 and back.equals(first)


NOTEBOOK = """
import numpy as np
import itermap
NET = itermap.random_rnn(3, rng={rng})

def point(x):
    return float(NET.step(np.full(3, x))[0])
"""


def _notebook_cell(rng):
    # a notebook's functions live in __main__, a module without a file
    module = types.ModuleType("__notebook_main__")
    exec(NOTEBOOK.format(rng=rng), module.__dict__)
    return module.point


def _by_hand(rng, x):
    net = itermap.random_rnn(3, rng=rng)
    return float(np.tanh(net.block_matrix.to_dense() @ np.full(3, x))[0])


def test_stale_cache_notebook_module_level_net_changed_rng(tmp_path):
    cache = tmp_path / "cache"
    a = _run(_notebook_cell(0), cache)
    b = _run(_notebook_cell(1), cache)
    assert b.n_cached == 0
    np.testing.assert_allclose(b["result"], [_by_hand(1, 1.0), _by_hand(1, 2.0)], rtol=1e-14)
    np.testing.assert_allclose(a["result"], [_by_hand(0, 1.0), _by_hand(0, 2.0)], rtol=1e-14)
    assert not np.any(a["result"] == b["result"])
    assert _run(_notebook_cell(1), cache).n_cached == 2  # the same net built again: a hit


def test_stale_cache_unhashable_global_warns_and_does_not_cache(tmp_path, user_modules):
    mod = user_modules("ck_lock", "import threading\nLOCK = threading.Lock()\n"
                                  "def point(x):\n    with LOCK:\n        return x + 1")
    cache = tmp_path / "cache"
    with pytest.warns(RuntimeWarning, match=r"global LOCK .*cannot be hashed.*without its "
                                            r"cache"):
        res = _run(mod.point, cache)
    assert res["result"].tolist() == [2.0, 3.0] and res.n_cached == 0
    assert not cache.exists() or not any(cache.glob("*.npz"))
    # a class attribute that cannot be hashed is a global read too
    mod = user_modules("ck_lock2", "import threading\nclass C:\n    lock = threading.Lock()\n"
                                   "def point(x):\n    return x * 2 if C.lock else 0")
    with pytest.warns(RuntimeWarning, match=r"C\.lock"):
        assert _run(mod.point, cache).n_cached == 0


def test_stale_cache_key_is_stable_and_library_code_counts_by_name(user_modules):
    from itermap.analysis._function_identity import function_identity, is_library_module

    mod = user_modules("ck_stable", "import numpy as np\nimport math\nfrom scipy import linalg\n"
                                    "def point(x):\n    return float(np.sum(linalg.norm("
                                    "np.ones(2) * x)) + math.pi)")
    assert function_identity(mod.point) == function_identity(mod.point)
    assert is_library_module("numpy") and is_library_module("scipy.linalg")
    assert is_library_module("itermap.analysis") and is_library_module("os.path")
    assert not is_library_module("ck_stable") and not is_library_module("__main__") \
        or getattr(sys.modules["__main__"], "__file__", "").startswith(sys.prefix)
    assert not is_library_module("no_such_module_anywhere")


def test_stale_cache_bound_unhashable_value_is_still_an_error(tmp_path):
    import functools

    def point(x, lock):
        return x

    with pytest.raises(TypeError, match="holds a value that cannot be hashed"):
        _run(functools.partial(point, lock=threading.Lock()), tmp_path / "c")


def test_stale_cache_relative_import_inside_the_function(tmp_path, monkeypatch):
    pkg = tmp_path / "ck_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text("def point(x):\n    from . import helpers\n"
                                 "    return x * helpers.K\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    try:
        helpers = importlib.import_module("ck_pkg.helpers") if (pkg / "helpers.py").write_text(
            "K = 2.0\n") else None
        main = importlib.import_module("ck_pkg.main")
        cache = tmp_path / "cache"
        assert _run(main.point, cache)["result"].tolist() == [2.0, 4.0]
        (pkg / "helpers.py").write_text("K = 3.5\n")
        importlib.reload(helpers)
        changed = _run(main.point, cache)
        assert changed.n_cached == 0 and changed["result"].tolist() == [3.5, 7.0]
        assert _run(main.point, cache).n_cached == 2
    finally:
        for name in ("ck_pkg", "ck_pkg.main", "ck_pkg.helpers"):
            sys.modules.pop(name, None)


def test_stale_cache_closed_over_user_module_is_followed(tmp_path, user_modules):
    helpers = user_modules("ck_closed", "SCALE = 2.0")

    def make(h):
        return lambda x: x * h.SCALE

    cache = tmp_path / "cache"
    assert _run(make(helpers), cache)["result"].tolist() == [2.0, 4.0]
    helpers = user_modules("ck_closed", "SCALE = 5.0")
    changed = _run(make(helpers), cache)
    assert changed.n_cached == 0 and changed["result"].tolist() == [5.0, 10.0]
    assert _run(make(helpers), cache).n_cached == 2
