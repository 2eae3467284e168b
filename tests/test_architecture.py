"""Architecture (issue 25, targets): no import cycle between modules, no module over
about 800 lines without a written reason, no private itermap import from the analysis,
and every concrete map class in the one conformance test.

The import graph is built from the source (the AST of every module, function-level
imports included; imports under ``if TYPE_CHECKING:`` never run and do not count).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 800

# Long modules allowed for a while (each with its reason); the test fails on an entry
# that is no longer long (or gone), to say so.
LONG_MODULES_ALLOWED: set[str] = set()

# Cycles allowed, each with its reason (the test below fails on an edge no longer there).
CYCLE_EDGES_ALLOWED: set[tuple[str, str]] = {
    # save() writes the package's version into each file: a function-level import of the
    # package, which imports _io (harmless: the package has finished loading by then)
    ("itermap._interop._io", "itermap"),
}


# -- the module graph ----------------------------------------------------------------------
def _modules() -> dict[str, Path]:
    """``{dotted name: file}`` of every module of itermap and itermap.analysis."""
    out = {}
    for folder, prefix in (("itermap", "itermap"), ("analysis", "itermap.analysis")):
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base)
            if folder == "itermap" and rel.parts[0] == "analysis":
                continue  # the link to ../analysis
            parts = [prefix, *rel.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _type_checking_only(tree) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip = _type_checking_only(tree)
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            # `from pkg import sub` imports the module pkg.sub; `from mod import name`, mod
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import itermap.analysis.plots` -> that module
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _without_allowed(graph):
    return {a: {b for b in bs if (a, b) not in CYCLE_EDGES_ALLOWED} for a, bs in graph.items()}


def test_no_import_cycle_between_modules():
    cycle = find_cycle(_without_allowed(import_graph()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_allowed_cycle_edges_are_still_there():
    graph = import_graph()
    stale = sorted(e for e in CYCLE_EDGES_ALLOWED if e[1] not in graph.get(e[0], set()))
    # an edge can go while its module is split: only say so when no allowed edge of that
    # source is left (its owner broke the cycle)
    sources_left = {a for a, b in CYCLE_EDGES_ALLOWED if b in graph.get(a, set())}
    gone = [e for e in stale if e[0] not in sources_left]
    assert not gone, f"cycle broken: remove from CYCLE_EDGES_ALLOWED: {gone}"


def test_the_cycle_check_sees_a_cycle_through_a_function_level_import(tmp_path):
    a = tmp_path / "a.py"
    a.write_text("from .b import f\n")
    b = tmp_path / "b.py"
    b.write_text("def f():\n    from .a import g\n    return g\n")
    c = tmp_path / "c.py"
    c.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import g\n")
    known = {"p.a", "p.b", "p.c"}
    graph = {"p.a": _imports("p.a", a, known), "p.b": _imports("p.b", b, known),
             "p.c": _imports("p.c", c, known)}
    assert graph == {"p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": set()}
    assert find_cycle(graph) == ["p.a", "p.b", "p.a"]
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": set()}) is None


def test_the_two_cycles_of_this_round_are_gone():
    graph = import_graph()
    assert "itermap._running._iterate" not in graph["itermap._running._newton"] or \
        "itermap._running._newton" not in graph["itermap._running._iterate"]
    kinds = "itermap.analysis._report._kinds"
    assert not {m for m in graph[kinds] if m.startswith(kinds + "_")}
    assert all(kinds not in graph[m] or m not in graph[kinds] for m in graph)


# -- module size ---------------------------------------------------------------------------
def _long_modules() -> dict[str, int]:
    out = {}
    for path in _modules().values():
        text = path.read_text()
        n = text.count("\n")
        if n > MAX_MODULE_LINES and not re.search(r"^\s*#\s*long module:\s*\S", text, re.M):
            out[path.relative_to(ROOT).as_posix()] = n
    return out


def test_no_module_over_800_lines_without_a_reason():
    long = _long_modules()
    unexplained = {k: v for k, v in long.items() if k not in LONG_MODULES_ALLOWED}
    assert not unexplained, (
        f"modules over {MAX_MODULE_LINES} lines: {unexplained}; split them, or write the "
        "reason in the module as a comment '# long module: <reason>'")
    stale = sorted(LONG_MODULES_ALLOWED - set(long))
    assert not stale, f"no longer long (or gone): remove from LONG_MODULES_ALLOWED: {stale}"


# -- the analysis uses itermap's public names only -----------------------------------------
def _is_private_itermap(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "itermap" and len(parts) > 1 and parts[1] != "analysis" and any(
        p.startswith("_") for p in parts[1:])


def private_imports(path: Path, name: str) -> list[str]:
    """``'line: module'`` of each private itermap module that ``path`` imports."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{source}" if source else base
            mods = [source] + [f"{source}.{a.name}" for a in node.names
                               if source == "itermap" and a.name.startswith("_")]
        else:
            continue
        out += [f"{node.lineno}: {m}" for m in mods if _is_private_itermap(m)]
    return out


def test_the_analysis_imports_no_private_itermap_module():
    found = {}
    for name, path in _modules().items():
        if name.startswith("itermap.analysis"):
            hits = private_imports(path, name)
            if hits:
                found[path.relative_to(ROOT).as_posix()] = hits
    assert not found, (f"private itermap imports in the analysis: {found}; import the public "
                       "name (itermap.typing, itermap.checks, itermap.threads, itermap.files, "
                       "itermap.progress, itermap.backends, ...)")


def test_the_private_import_check_sees_every_form(tmp_path):
    # names of no real module (the layout script rewrites real ones in this file)
    src = ("import itermap\nfrom itermap import _aa\nfrom itermap._bb import Array\n"
           "import itermap._cc._dd as c\nfrom itermap.typing import MapLike\n"
           "from ... import _ee\nfrom .. import plots\nfrom itermap.analysis import _ff\n"
           "def f():\n    from itermap._gg import progress_bar\n")
    path = tmp_path / "m.py"
    path.write_text(src)
    hits = private_imports(path, "itermap.analysis._report.m")
    assert hits == ["2: itermap._aa", "3: itermap._bb", "4: itermap._cc._dd", "6: itermap._ee",
                    "10: itermap._gg"]



# -- no private member read by name from the analysis --------------------------------------
# getattr(m, "_kind") is a private read that the attribute scan (tests/test_small_maps.py)
# cannot see. Every private name (dunders aside) the analysis hands to getattr, hasattr,
# setattr, delattr, attrgetter or __getattribute__, or reads from vars(obj) or
# obj.__dict__, is listed here with its reason; any other fails, and so does an entry no
# longer used.
NAMED_PRIVATE_ALLOWED = {
    ("plots/_spectrum.py", "_itermap_spectra"):
        "the analysis's own mark on a matplotlib Axes: the spectra drawn on it before",
    ("_sweep_pool.py", "_itermap_quiet"):
        "the analysis's own mark on the threading.excepthook it installs",
    ("_sweep_pool.py", "_executor_manager_thread"):
        "loky's executor manager thread, silenced on an interrupt (loky has no public handle)",
}
_BY_NAME = {"getattr", "hasattr", "setattr", "delattr", "attrgetter", "__getattribute__"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_names_by_string(source: str) -> list[tuple[int, str]]:
    """``(line, name)`` of each private member named by a string literal in ``source``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        lits = []
        if isinstance(node, ast.Call):
            f = node.func
            fn = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) \
                else None
            if fn in _BY_NAME:
                lits = node.args if fn == "attrgetter" else node.args[1:2]
            elif fn == "get" and isinstance(f, ast.Attribute) and _namespace(f.value):
                lits = node.args[:1]                    # vars(m).get("_x")
        elif isinstance(node, ast.Subscript) and _namespace(node.value):
            lits = [node.slice]                          # m.__dict__["_x"]
        for a in lits:
            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                out += [(node.lineno, p) for p in a.value.split(".") if _private(p)]
    return sorted(out)


def _namespace(node) -> bool:
    """Whether ``node`` is ``vars(...)`` or ``....__dict__``."""
    return (isinstance(node, ast.Attribute) and node.attr == "__dict__") or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        and node.func.id == "vars")


def test_the_analysis_reads_no_private_member_by_name():
    found, used = [], set()
    for path in sorted((ROOT / "analysis").rglob("*.py")):
        rel = path.relative_to(ROOT / "analysis").as_posix()
        for line, name in private_names_by_string(path.read_text()):
            if (rel, name) in NAMED_PRIVATE_ALLOWED:
                used.add((rel, name))
            else:
                found.append(f"{rel}:{line} {name}")
    assert not found, (f"private members read by name in the analysis: {found}; ask the map "
                       "through the protocol (itermap.Map), or list the use with its reason")
    stale = sorted(set(NAMED_PRIVATE_ALLOWED) - used)
    assert not stale, f"no longer used: remove from NAMED_PRIVATE_ALLOWED: {stale}"


def test_the_by_name_scan_sees_every_form():
    src = ('getattr(m, "_kind", "dense")\nhasattr(m, "_W")\nsetattr(m, "_a", 1)\n'
           'delattr(m, "_b")\noperator.attrgetter("bm._c", "d")(m)\n'
           'object.__getattribute__(m, "_e")\nvars(m)["_f"]\nm.__dict__.get("_g")\n'
           'getattr(m, "__class__")\ngetattr(m, "dim")\nd["_h"]\ngetattr(m, name)\n')
    assert private_names_by_string(src) == [
        (1, "_kind"), (2, "_W"), (3, "_a"), (4, "_b"), (5, "_c"), (6, "_e"), (7, "_f"),
        (8, "_g")]

def test_the_public_homes_are_the_private_objects():
    import itermap
    import itermap.checks
    import itermap.files
    import itermap.progress
    import itermap.threads
    import itermap.typing

    checks = importlib.import_module("itermap._core._checks")
    assert itermap.checks.check_int is checks.check_int
    assert itermap.typing.RngLike is importlib.import_module("itermap._core._types").RngLike
    for mod in (itermap.checks, itermap.files, itermap.progress, itermap.threads,
                itermap.typing):
        assert sorted(mod.__all__) == sorted(n for n in vars(mod) if not n.startswith("_")
                                             and not inspect.ismodule(getattr(mod, n))), mod


# -- analysis/__init__.py reads as one list ------------------------------------------------
def test_the_analysis_names_are_one_list():
    tree = ast.parse((ROOT / "analysis" / "__init__.py").read_text())
    assigns = [n for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign)
               and "__all__" in ast.unparse(n.target if not isinstance(n, ast.Assign)
                                            else n.targets[0])]
    assert len(assigns) == 1 and isinstance(assigns[0], ast.Assign), "one `__all__ = [...]`"
    listed = ast.literal_eval(assigns[0].value)
    imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
                for a in n.names}
    assert len(listed) == len(set(listed))
    assert set(listed) == {n for n in imported if not n.startswith("_")}


# -- every map kind in the conformance test ------------------------------------------------
def _import_everything():
    import itermap

    for info in pkgutil.walk_packages(itermap.__path__, "itermap."):
        if info.name.startswith("itermap.analysis"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra (torch, ...) that is not installed
            if "itermap" in str(getattr(exc, "name", "") or ""):
                raise


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_concrete_map_class_is_in_the_conformance_test():
    import numpy as np

    import itermap
    from tests import test_conformance

    _import_everything()
    concrete = {c for c in _subclasses(itermap.Map) if not inspect.isabstract(c)
                and c.__module__.startswith("itermap.")
                and not c.__module__.startswith("itermap.analysis")}
    assert len(concrete) >= 14  # the walk saw the map modules
    maps = test_conformance._maps(np)
    covered = {type(maps[name][0]) for name in test_conformance.MAP_NAMES}
    missing = sorted(f"{c.__module__}.{c.__qualname__}" for c in concrete - covered)
    assert not missing, f"map classes missing from tests/test_conformance.py: {missing}"


@pytest.mark.parametrize("name", ["itermap._running._iterate", "itermap._maps._network"])
def test_a_module_that_moved_still_imports_under_its_old_name(name, monkeypatch):
    """Pickles store module paths: itermap._moved maps an old name to the module now."""
    import sys

    import itermap._moved as moved

    new = importlib.import_module(name)
    parent, _, leaf = name.rpartition(".")
    old = f"{parent}._old_name_of{leaf}"  # in a package that exists, as any old name is
    monkeypatch.setitem(moved.MOVED, old, name)
    monkeypatch.delitem(sys.modules, old, raising=False)
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path])
    moved.install()
    assert importlib.import_module(old) is new
    assert moved.current_module(old) == name and moved.current_module(name) == name


def test_a_pickle_and_a_file_from_before_a_move_still_load(monkeypatch):
    """A pickle names the module of its class; so does a saved result's type."""
    import pickle
    import sys

    import numpy as np

    import itermap
    import itermap._moved as moved

    traj = itermap.iterate(itermap.systems.logistic(3.7), np.array([0.2]), 5)
    data = pickle.dumps(traj)
    real = type(traj).__module__
    assert real.encode() in data
    old = real[:-1] + "0"  # as long as the real name: the pickle's framing stays valid
    monkeypatch.setitem(moved.MOVED, old, real)
    monkeypatch.delitem(sys.modules, old, raising=False)
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path])
    moved.install()
    back = pickle.loads(data.replace(real.encode(), old.encode()))
    assert type(back) is itermap.Trajectory
    np.testing.assert_array_equal(back.states, traj.states)
    io = importlib.import_module("itermap._interop._codec")
    assert io._saved_class(f"{old}:Trajectory") is itermap.Trajectory
    with pytest.raises(ValueError, match="no module"):
        io._saved_class("itermap._never_was:Trajectory")
