"""File helpers shared by everything in itermap and analysis that writes to disk."""

from ._codec import Writer, decode_value, encode_value, jsonable, register_codec
from ._io import apply_umask, write_npz_atomic

__all__ = ["apply_umask", "write_npz_atomic", "jsonable", "Writer", "encode_value", "decode_value",
           "register_codec"]
