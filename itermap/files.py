"""File helpers shared by everything in itermap and analysis that writes to disk."""

from ._io import _MAX_EXPANSION as MAX_EXPANSION
from ._io import NpzReader, apply_umask, open_regular_file, remove_stale, write_npz_atomic
from ._io import _host as host_name

__all__ = ["MAX_EXPANSION", "NpzReader", "apply_umask", "host_name", "open_regular_file",
           "remove_stale", "write_npz_atomic"]
