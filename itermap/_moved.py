"""Where itermap's private modules moved: old dotted names still import and still load.

Pickles and saved files store a class's module path (``itermap._iterate:Trajectory``).
When a module moves, :data:`MOVED` maps its old name to its new one: :func:`install`
adds an import hook that makes the old name import the new module (so pickles made
before the move unpickle), and :func:`current_module` is what the loader of
``itermap.save`` files asks. This module stays at the top of the package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# itermap's private modules that moved into its folders, keeping their names: the
# folder and what moved into it (itermap._gated is now itermap._maps._gated)
_INTO_FOLDERS = {
    "_core": ("_backend", "_checks", "_log", "_progress", "_result", "_rng", "_types"),
    "_interop": ("_codec", "_io", "_io_maps", "_schema", "_torch", "_torch_modules",
                 "_torch_transformer"),
    "_maps": ("_activations", "_attention_rnn", "_block_functions", "_block_patterns", "_blocks",
              "_continuum", "_gated", "_graphs", "_map", "_network", "_network_build",
              "_network_grad", "_network_parts", "_protocol", "_prune", "_reservoir",
              "_state_space", "_systems", "_transformer"),
    "_running": ("_affine_scan", "_fused_sparse", "_fused_square", "_fused_steppers", "_iterate",
                 "_linalg", "_newton", "_nogil_blas", "_reorth", "_stepper", "_stepper_kernels",
                 "_threads"),
    "_training": ("_bptt", "_optim", "_train"),
}
MOVED: dict[str, str] = {f"itermap.{name}": f"itermap.{folder}.{name}"
                         for folder, names in _INTO_FOLDERS.items() for name in names}

# itermap.analysis's modules that moved into its folders (files saved before still load)
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
