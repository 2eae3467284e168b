"""Where itermap's private modules moved: old dotted names still import and still load.

Pickles and saved files store a class's module path (``itermap._iterate:Trajectory``).
When a module moves, :data:`MOVED` maps its old name to its new one: :func:`install`
adds an import hook that makes the old name import the new module (so pickles made
before the move unpickle), and :func:`current_module` is what the loader of
``itermap.save`` files asks. A layout script writes the table between its markers; this module stays at the
top of the package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# BEGIN MOVED (written by layout_move.py: {old dotted module: new dotted module})
MOVED: dict[str, str] = {}
# END MOVED

# itermap.analysis's modules that moved into its folders (round 9): files saved before
MOVED.update({
    "itermap.analysis._fixed_points": "itermap.analysis.fixed_points._result",
    "itermap.analysis._basins": "itermap.analysis.fixed_points._basins",
    "itermap.analysis._continuation": "itermap.analysis.fixed_points._continuation",
    "itermap.analysis._lyapunov": "itermap.analysis.lyapunov._spectrum",
    "itermap.analysis._clv": "itermap.analysis.lyapunov._clv",
    "itermap.analysis._finite_time": "itermap.analysis.lyapunov._finite_time",
    "itermap.analysis._scan": "itermap.analysis.lyapunov._scan",
})


def current_module(name: str) -> str:
    """The dotted name ``name`` has now: itself, or where it moved."""
    return MOVED.get(name, name)


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module it moved to (one module object)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module) -> None:
        pass  # the new module ran already


_FINDER = _OldNames()


def install() -> None:
    """Put the hook first: an old name is always the module it moved to, never a stale
    copy that a path or an editable install still has (two copies, two sets of classes)."""
    if MOVED and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
