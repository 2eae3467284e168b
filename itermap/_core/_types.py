"""Type aliases for the public signatures (public as :mod:`itermap.typing`, which says why
they are ``Any``)."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np

__all__ = ["Array", "MapLike", "RngLike"]

#: An array of any backend, or anything ``numpy.asarray`` takes.
Array: TypeAlias = Any

#: A :class:`itermap.Map`, or any object :func:`itermap.as_map` adapts.
MapLike: TypeAlias = Any

#: What :func:`itermap.as_rng` takes: a seed, a Generator, a SeedSequence or None.
RngLike: TypeAlias = "int | np.random.Generator | np.random.SeedSequence | None"
