"""File helpers shared by everything in itermap and analysis that writes to disk."""

from ._io import apply_umask, write_npz_atomic

__all__ = ["apply_umask", "write_npz_atomic"]
