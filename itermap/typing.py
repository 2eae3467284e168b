"""Type aliases of itermap's public signatures, for code built on itermap.

Arrays come from any backend (NumPy, CuPy, an array-API namespace) and maps are
anything :func:`itermap.as_map` accepts, so both are ``Any`` to a type checker;
the names say what is meant.

Examples
--------
>>> from itermap.typing import Array, MapLike, RngLike
>>> def first_state(map: MapLike, x0: Array, *, rng: RngLike = None) -> Array:
...     return x0
"""

from ._core._types import Array, MapLike, RngLike

__all__ = ["Array", "MapLike", "RngLike"]
