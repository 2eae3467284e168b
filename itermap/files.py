"""File helpers shared by everything in itermap and analysis that writes to disk."""

from ._interop._codec import Writer, decode_value, encode_value, jsonable, register_codec
from ._interop._io import _MAX_EXPANSION as MAX_EXPANSION
from ._interop._io import NpzReader, apply_umask, open_regular_file, remove_stale, write_npz_atomic
from ._interop._io import _host as host_name

__all__ = ["MAX_EXPANSION", "NpzReader", "Writer", "apply_umask", "decode_value", "encode_value",
           "host_name", "jsonable", "open_regular_file", "register_codec", "remove_stale",
           "write_npz_atomic"]
