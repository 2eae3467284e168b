"""Where itermap's private modules moved: old dotted names still import and still load.

Pickles and saved files store a class's module path (``itermap._iterate:Trajectory``).
When a module moves, :data:`MOVED` maps its old name to its new one: :func:`install`
adds an import hook that makes the old name import the new module (so pickles made
before the move unpickle), and :func:`current_module` is what the loader of
``itermap.save`` files asks. A layout script writes the table between its markers; this
module stays at the top of the package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# BEGIN MOVED (written by the layout script: {old dotted module: new dotted module})
MOVED: dict[str, str] = {
    "itermap._activations": "itermap._maps._activations",
    "itermap._affine_scan": "itermap._running._affine_scan",
    "itermap._attention_rnn": "itermap._maps._attention_rnn",
    "itermap._backend": "itermap._core._backend",
    "itermap._block_functions": "itermap._maps._block_functions",
    "itermap._block_patterns": "itermap._maps._block_patterns",
    "itermap._blocks": "itermap._maps._blocks",
    "itermap._bptt": "itermap._training._bptt",
    "itermap._checks": "itermap._core._checks",
    "itermap._codec": "itermap._interop._codec",
    "itermap._continuum": "itermap._maps._continuum",
    "itermap._fused_sparse": "itermap._running._fused_sparse",
    "itermap._fused_square": "itermap._running._fused_square",
    "itermap._fused_steppers": "itermap._running._fused_steppers",
    "itermap._gated": "itermap._maps._gated",
    "itermap._graphs": "itermap._maps._graphs",
    "itermap._io": "itermap._interop._io",
    "itermap._io_maps": "itermap._interop._io_maps",
    "itermap._iterate": "itermap._running._iterate",
    "itermap._linalg": "itermap._running._linalg",
    "itermap._log": "itermap._core._log",
    "itermap._map": "itermap._maps._map",
    "itermap._network": "itermap._maps._network",
    "itermap._network_build": "itermap._maps._network_build",
    "itermap._network_grad": "itermap._maps._network_grad",
    "itermap._network_parts": "itermap._maps._network_parts",
    "itermap._newton": "itermap._running._newton",
    "itermap._nogil_blas": "itermap._running._nogil_blas",
    "itermap._optim": "itermap._training._optim",
    "itermap._progress": "itermap._core._progress",
    "itermap._protocol": "itermap._maps._protocol",
    "itermap._prune": "itermap._maps._prune",
    "itermap._reorth": "itermap._running._reorth",
    "itermap._reservoir": "itermap._maps._reservoir",
    "itermap._result": "itermap._core._result",
    "itermap._rng": "itermap._core._rng",
    "itermap._schema": "itermap._interop._schema",
    "itermap._state_space": "itermap._maps._state_space",
    "itermap._stepper": "itermap._running._stepper",
    "itermap._stepper_kernels": "itermap._running._stepper_kernels",
    "itermap._systems": "itermap._maps._systems",
    "itermap._threads": "itermap._running._threads",
    "itermap._torch": "itermap._interop._torch",
    "itermap._torch_modules": "itermap._interop._torch_modules",
    "itermap._torch_transformer": "itermap._interop._torch_transformer",
    "itermap._train": "itermap._training._train",
    "itermap._transformer": "itermap._maps._transformer",
    "itermap._types": "itermap._core._types",
}
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
