"""The public callables of itermap, for the docstring and type-hint checks.

Everything in the ``__all__`` of the public modules (MODULES: the package, its analyses and
plots, the systems, datasets and block functions, and the support modules that code built
on itermap uses) that can be called, and the public methods of the map classes a newcomer
calls on a map. A type alias (``itermap.typing``) and an instance of a public class
(``itermap.threads.pool``, documented by its class) are no calls of their own.
"""

from __future__ import annotations

import enum
import inspect
from pathlib import Path

import itermap
import itermap.analysis
import itermap.analysis.plots
import itermap.backends
import itermap.block_functions
import itermap.checks
import itermap.datasets
import itermap.files
import itermap.linalg
import itermap.progress
import itermap.systems
import itermap.threads
import itermap.typing

ROOT = Path(__file__).resolve().parent.parent

MODULES = {
    "itermap": itermap,
    "itermap.analysis": itermap.analysis,
    "itermap.analysis.plots": itermap.analysis.plots,
    "itermap.systems": itermap.systems,
    "itermap.backends": itermap.backends,
    "itermap.block_functions": itermap.block_functions,
    "itermap.linalg": itermap.linalg,
    "itermap.datasets": itermap.datasets,
    "itermap.files": itermap.files,
    "itermap.typing": itermap.typing,
    "itermap.checks": itermap.checks,
    "itermap.threads": itermap.threads,
    "itermap.progress": itermap.progress,
}
CLASSES_WITH_METHODS = (itermap.IterativeMap, itermap.BlockMatrix, itermap.Map,
                        itermap.FunctionMap, itermap.Result, itermap.Check)
# public methods of other classes that are more than the Map protocol
EXTRA_METHODS = {"itermap.LinearStateSpace.from_discrete":
                 vars(itermap.LinearStateSpace)["from_discrete"].__func__}


def _methods(cls):
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        fn = member.__func__ if isinstance(member, classmethod | staticmethod) else member
        if inspect.isfunction(fn):
            yield f"{cls.__module__.split('._')[0]}.{cls.__qualname__}.{name}", fn


def public_callables():
    """``{qualified name: callable}`` of every public function, class and method."""
    out = {}
    for modname, mod in MODULES.items():
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not callable(obj) or isinstance(obj, enum.EnumMeta):
                continue  # an enum (itermap.Status) is a set of constants, not a call
            if getattr(obj, "__module__", None) == "typing" or not (
                    inspect.isroutine(obj) or inspect.isclass(obj)):
                continue  # a type alias (Any), or an instance of a public class
            out.setdefault(f"{modname}.{name}", obj)
    for cls in CLASSES_WITH_METHODS:
        out.update(_methods(cls))
    out.update(EXTRA_METHODS)
    return out


def source_file(obj):
    """The file defining ``obj``, relative to the repository root (``analysis/...``)."""
    fn = inspect.unwrap(obj)
    path = Path(inspect.getsourcefile(fn)).resolve()
    return path.relative_to(ROOT).as_posix()
