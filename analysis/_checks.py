"""Argument checks shared by the analyses."""

from __future__ import annotations

import numpy as np

__all__ = ["check_int"]


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int, or a TypeError/ValueError that names ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
