"""One way to turn an ``rng`` argument into a NumPy Generator."""

from __future__ import annotations

import numbers

import numpy as np

from ._types import RngLike

__all__ = ["as_rng"]


def as_rng(rng: RngLike = None) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``rng``.

    The package's one convention for randomness: every function that draws takes
    a keyword ``rng`` and passes it here.

    Parameters
    ----------
    rng : int, numpy.random.Generator, numpy.random.SeedSequence or None
        A seed (the same seed, the same result), a generator (returned as is, so
        several calls share one stream), or None for fresh OS entropy.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValueError
        A negative seed.
    TypeError
        Anything else (a float, a string, the legacy ``RandomState``).

    Examples
    --------
    >>> from itermap import as_rng
    >>> float(as_rng(0).random()) == float(as_rng(0).random())
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng seed must be non-negative, got {rng}")
        return np.random.default_rng(int(rng))
    hint = ""
    if isinstance(rng, np.random.RandomState):
        hint = ("; the legacy RandomState draws another stream: pass an int seed, or "
                "numpy.random.default_rng(seed)")
    elif isinstance(rng, numbers.Real) and not isinstance(rng, bool) and float(rng).is_integer():
        hint = f"; pass the int {int(rng)}"
    raise TypeError(
        f"rng must be an int, a numpy.random.Generator or None, got {type(rng).__name__}{hint}"
    )
