"""Public view of the array backends (NumPy, CuPy, any array-API library).

Only the module behind this one imports CuPy; everything else in itermap asks it.
"""

from ._core._backend import (
    BACKENDS,
    backend_of,
    cupy_available,
    is_sparse,
    namespace,
    sparse_module,
    to_backend,
    to_numpy,
)

__all__ = ["BACKENDS", "backend_of", "cupy_available", "is_sparse", "namespace",
           "sparse_module", "to_backend", "to_numpy"]
