"""File helpers shared by everything in itermap and analysis that writes to disk."""

from ._io import write_npz_atomic

__all__ = ["write_npz_atomic"]
