"""Saving and loading maps, trajectories and analysis results; files read as untrusted input.

One file per object: a NumPy ``.npz`` archive whose entry ``__itermap__``
holds JSON metadata (format version, library version, object type, its plain
fields, and the dtype and shape of every array entry) next to the arrays. Files
are written atomically (:func:`write_npz_atomic`); how an object becomes fields
is the codec's (``itermap/_interop/_codec.py``).

A file is untrusted input: :func:`load` reads the metadata first, checks
every archive entry against it (names, sizes, dtypes and shapes) before
reading the entry, and validates every sparse structure before SciPy sees it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import zipfile
import zlib
from typing import Any, BinaryIO

import numpy as np

from .._core._checks import _physical_memory
from ._codec import (
    _REGISTRY,
    Writer,
    _array_dtype_ok,
    _is_count,
    _referenced,
    decode_object,
    encode_object,
    saveable,
)

__all__ = ["save", "load", "saveable", "write_npz_atomic", "apply_umask", "FORMAT_VERSION",
           "NpzReader", "check_regular_file", "open_regular_file", "remove_stale"]

#: Version 2 records each array entry's dtype and shape, and tags tuples,
#: non-string dict keys and NumPy scalars; version 1 files still load.
FORMAT_VERSION = 2
_META = "__itermap__"
# an .npy header is at most 65535 bytes plus its 12-byte preamble
_NPY_HEADER_MAX = 65535 + 12
_MAX_META_BYTES = 64 * 2 ** 20
_READ_CHUNK = 2 ** 18  # as np.load: chunks that stay in cache
#: np.savez stores entries uncompressed; a compressed entry may expand at most this much.
_MAX_EXPANSION = 100
_ = _REGISTRY  # the registry of saveable classes, here too for tests and older code


# ----------------------------------------------------------------------------- writing
def _check_target(path, what="path") -> str:
    path = _as_path(path, what)
    if not path:
        raise ValueError(f"{what} is empty: name the .npz file to write")
    if path.endswith((os.sep, "/")) or os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a folder: name the .npz file to write in it")
    return path


def save(obj: Any, path: str | os.PathLike) -> str:
    """Save a map, block matrix, trajectory or result to the ``.npz`` file ``path``, atomically.

    Parameters
    ----------
    obj : IterativeMap, classic map, BlockMatrix, Trajectory or @saveable dataclass
        What to save.
    path : str or os.PathLike
        The file to write, ending in ``.npz``; it is written exactly there.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ValueError
        When ``path`` is empty, a folder, or does not end in ``.npz``.
    FileNotFoundError
        When the folder of ``path`` does not exist.
    TypeError
        When ``obj`` (or one of its fields) is of a kind that cannot be saved;
        nothing is written then.

    Examples
    --------
    >>> import os, tempfile
    >>> import itermap
    >>> m = itermap.random_rnn(5, rng=0)
    >>> path = itermap.save(m, os.path.join(tempfile.mkdtemp(), "net.npz"))
    >>> itermap.load(path) == m
    True
    """
    from .. import __version__

    path = _check_target(path)
    if os.path.splitext(path)[1] != ".npz":
        raise ValueError(f"path {path!r} must end in .npz: save writes exactly the path it "
                         "is given")
    writer = Writer()
    try:
        type_name, fields = encode_object(obj, writer)
    except RecursionError:  # a list that holds itself, say
        raise TypeError(f"cannot save a {type(obj).__name__}: a field is nested too deeply "
                        "(or holds itself)") from None
    meta = {"format": "itermap", "format_version": FORMAT_VERSION,
            "itermap_version": __version__, "type": type_name, "fields": fields,
            "arrays": writer.table()}
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot save a {type(obj).__name__}: {exc}") from exc
    arrays = {_META: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **writer.arrays}
    write_npz_atomic(path, arrays)
    return path


_TMP_SUFFIX = ".npz.tmp"
_last_sweep: dict[tuple[str, str], float] = {}
# a folder is searched for stale temporaries at most this often (seconds) per process
_SWEEP_EVERY = 10.0


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # the portable way: set and restore
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike) -> None:
    """Give ``path`` the permissions a new file or folder gets under the umask.

    :func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` create private
    (``0o600`` / ``0o700``) entries; call this on one before moving it into
    place, so that what a user sees follows their umask like any other file.

    Parameters
    ----------
    path : str or os.PathLike
        A file (gets ``0o666 & ~umask``) or a folder (``0o777 & ~umask``).

    Examples
    --------
    >>> import os, stat, tempfile
    >>> from itermap.files import apply_umask
    >>> old = os.umask(0o022)
    >>> folder = tempfile.mkdtemp()
    >>> apply_umask(folder)
    >>> oct(stat.S_IMODE(os.stat(folder).st_mode))
    '0o755'
    >>> _ = os.umask(old)
    """
    base = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, base & ~_umask())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # a PermissionError: alive, another user's
        pass
    return True


def _host() -> str:
    """This machine's host name, safe in a file name: ``[A-Za-z0-9_.]``, at most 40 characters.

    Temporary files carry it (with the process id) so that :func:`remove_stale` removes
    only what a dead process of this host left, never a live one's on a shared disk.

    Returns
    -------
    str
        Every other character replaced by ``_``; ``"host"`` where the name is empty.

    Examples
    --------
    >>> import re
    >>> from itermap.files import host_name
    >>> bool(re.fullmatch(r"[A-Za-z0-9_.]{1,40}", host_name()))
    True
    """
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "host"


def write_npz_atomic(path: str | os.PathLike, arrays: dict[str, Any], *,
                     prefix: str = ".itermap-") -> None:
    """Write ``arrays`` to the ``.npz`` file ``path`` all at once or not at all.

    A temporary file beside ``path``, flushed (``fsync``) and moved into place: a
    failed write leaves neither a half-written file nor a damaged earlier one. One
    left by a killed process is removed by the next write into that folder; the
    file gets the permissions the umask gives a new file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    arrays : dict of str to array
        The archive's entries.
    prefix : str
        Start of the temporary file's name.

    Raises
    ------
    FileNotFoundError
        When the folder of ``path`` does not exist (the message names ``path``).

    Examples
    --------
    >>> import os, tempfile
    >>> from itermap.files import write_npz_atomic
    >>> folder = tempfile.mkdtemp()
    >>> write_npz_atomic(os.path.join(folder, "a.npz"), {"x": np.arange(3)})
    >>> os.listdir(folder)
    ['a.npz']
    """
    path = _check_target(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path!r}: its folder "
                                f"{directory!r} does not exist", path)
    remove_stale(directory, prefix, _TMP_SUFFIX)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{_host()}-{os.getpid()}-", suffix=_TMP_SUFFIX,
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(directory)


def _fsync_folder(directory):
    # make the rename itself durable; not every platform opens folders
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- reading
# files load does not read, by suffix: what does
_OTHER_FILES = {".safetensors": "a network's weights are read by itermap.from_torch(path, "
                                "architecture)",
                ".pt": "torch.load it, then pass the module to itermap.from_torch",
                ".pth": "torch.load it, then pass the module to itermap.from_torch",
                ".json": "a report's results.json is JSON (json.load)",
                ".npy": "one array is read by numpy.load",
                ".toml": "a report spec is run by itermap report SPEC"}


def load(path: str | os.PathLike) -> Any:
    """Load an object written by :func:`save`, reading the file as untrusted input.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    object
        The saved map, block matrix, trajectory or result.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When ``path`` is not a regular file (a folder, a FIFO, a device), or
        the file is truncated, corrupt, not an itermap file, from a newer
        format version, or inconsistent with its own metadata; the message
        names the file and the entry.

    Examples
    --------
    >>> import os, tempfile
    >>> import itermap
    >>> path = itermap.save(itermap.systems.henon(), os.path.join(tempfile.mkdtemp(), "h.npz"))
    >>> itermap.load(path)
    HenonMap(a=1.4, b=0.3)
    """
    try:
        reader = NpzReader(path, "path", expansion=_MAX_EXPANSION, kind="itermap file")
    except ValueError as exc:  # another kind of file: say what reads it
        suffix = os.path.splitext(str(path))[1].lower()
        if suffix not in _OTHER_FILES:
            raise
        raise ValueError(f"path: {path} is a {suffix} file, not an itermap file (load reads "
                         f"the .npz files of itermap.save): {_OTHER_FILES[suffix]}") from exc
    with reader as archive:
        path = archive.path
        try:
            type_name, fields, arrays = _read_archive(archive, path)
        except _ZIP_ERRORS as exc:
            raise ValueError(f"{path} is not a readable itermap file (truncated or corrupt: "
                             f"{exc})") from exc
        except RecursionError:  # metadata nested deeper than Python's stack
            raise ValueError(f"{path}: corrupt itermap metadata (nested too deeply)") from None
    try:
        return decode_object(type_name, fields, arrays)
    except KeyError as exc:
        raise ValueError(f"{path}: itermap file is missing entry {exc}") from exc
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except RecursionError:
        raise ValueError(f"{path}: the metadata's fields are nested too deeply") from None


def _read_archive(archive, path):
    """(type, fields, arrays) of an opened archive, every entry checked against the metadata."""
    meta_info = archive.infos.get(_META + ".npy")
    if meta_info is None:
        raise ValueError(f"{path} is an .npz file but not an itermap file (no metadata): "
                         f"arrays of numpy.savez are read by numpy.load, a network's weights "
                         f"by itermap.from_torch(path, architecture)")
    raw = archive.read_info(meta_info, {"dtype": "|u1", "shape": None}, _MAX_META_BYTES)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as exc:  # bad UTF-8 or JSON, an int of over 4300 digits
        raise ValueError(f"{path}: corrupt itermap metadata ({exc})") from exc
    except RecursionError:  # JSON nested deeper than Python's stack
        raise ValueError(f"{path}: corrupt itermap metadata (nested too deeply)") from None
    type_name, fields, table = _check_meta(meta, path)
    wanted = _referenced(fields)
    if table is None:  # format 1: no table; the fields name the entries
        table = dict.fromkeys(wanted)
    else:
        missing = sorted(wanted - set(table))
        if missing:
            raise ValueError(f"{path}: the fields refer to entry {missing[0]!r}, which the "
                             "metadata's array table does not describe")
    for name in archive.infos:
        if name != meta_info.filename and (not name.endswith(".npy") or name[:-4] not in table):
            raise ValueError(f"{path}: archive entry {name!r} is not named by the metadata")
    arrays = {}
    for name, spec in table.items():
        info = archive.infos.get(name + ".npy")
        if info is None:
            raise ValueError(f"{path}: itermap file is missing entry {name!r}")
        arrays[name] = archive.read_info(info, spec, None)
    return type_name, fields, arrays


def _check_meta(meta, path):
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: itermap metadata must be a JSON object, got "
                         f"{type(meta).__name__}")
    if meta.get("format") != "itermap" or "type" not in meta:
        raise ValueError(f"{path}: not an itermap file")
    version = meta.get("format_version")
    if not _is_count(version) or version < 1:
        raise ValueError(f"{path}: format_version must be a positive int, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} uses itermap file format {version}; this version reads "
                         f"up to {FORMAT_VERSION}")
    type_name, fields = meta["type"], meta.get("fields")
    if not isinstance(type_name, str):
        raise ValueError(f"{path}: metadata type must be a string, got {type_name!r}")
    if not isinstance(fields, dict):
        raise ValueError(f"{path}: metadata fields must be a JSON object, got "
                         f"{type(fields).__name__}")
    if version < 2:
        return type_name, fields, None
    table = meta.get("arrays")
    if not isinstance(table, dict):
        raise ValueError(f"{path}: metadata arrays must be a JSON object, got "
                         f"{type(table).__name__}")
    for name, spec in table.items():
        if not (isinstance(spec, dict) and isinstance(spec.get("dtype"), str)
                and isinstance(spec.get("shape"), list) and len(spec["shape"]) <= 64
                and all(_is_count(s) for s in spec["shape"])):
            raise ValueError(f"{path}: metadata for entry {name!r} must give a dtype string "
                             f"and a shape of non-negative ints, got {spec!r}")
    return type_name, fields, table


def _read_entry(zf, info, path, spec, limit, expansion=_MAX_EXPANSION):
    """One ``.npy`` entry, its zip and npy headers checked before any data is read.

    ``spec`` is the metadata's ``{"dtype", "shape"}`` for it (None for a
    format-1 file or a foreign archive); ``limit`` caps its size in bytes;
    ``expansion`` (None: any) caps its uncompressed size over its compressed one.
    """
    where = f"{path}: entry {info.filename!r}"
    if info.flag_bits & 0x1:
        raise ValueError(f"{where} is encrypted")
    if expansion is not None and \
            info.file_size > expansion * max(info.compress_size, 1) + _NPY_HEADER_MAX:
        raise ValueError(f"{where} expands from {info.compress_size} to {info.file_size} "
                         "bytes: more than any itermap file does")
    want_dtype = want_shape = None
    if spec is not None:
        try:
            want_dtype = np.dtype(spec["dtype"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: the metadata gives a bad dtype {spec['dtype']!r}") from exc
        if not _array_dtype_ok(want_dtype):
            raise ValueError(f"{where}: the metadata gives dtype {want_dtype}, which itermap "
                             "never writes")
        if spec["shape"] is not None:
            want_shape = tuple(spec["shape"])
            implied = math.prod(want_shape) * want_dtype.itemsize + _NPY_HEADER_MAX
            if info.file_size > implied:
                raise ValueError(f"{where} holds {info.file_size} bytes uncompressed, more "
                                 f"than the {want_dtype} array of shape {want_shape} that "
                                 "the metadata describes")
    if limit is not None and info.file_size > limit:
        raise ValueError(f"{where} holds {info.file_size} bytes, more than the {limit} "
                         "allowed")
    with zf.open(info) as fh:
        shape, fortran, dtype = _npy_header(fh, where)
        if not _array_dtype_ok(dtype):
            raise ValueError(f"{where} holds dtype {dtype}, which itermap never writes")
        if want_dtype is not None and (dtype != want_dtype or (
                want_shape is not None and tuple(shape) != want_shape)):
            raise ValueError(f"{where} is a {dtype} array of shape {tuple(shape)}, but the "
                             f"metadata describes {want_dtype} of shape {want_shape}")
        nbytes = math.prod(shape) * dtype.itemsize
        if fh.tell() + nbytes != info.file_size:  # before allocating: a header may declare 2**34
            raise ValueError(f"{where}: its header describes {nbytes} bytes of data, but the "
                             f"entry holds {info.file_size - fh.tell()}")
        order = "F" if fortran else "C"
        out = np.empty(shape, dtype=dtype, order=order)
        if nbytes:
            flat = out.reshape(-1, order="A").view(np.uint8)
            got = 0
            while got < nbytes:
                chunk = fh.read(min(nbytes - got, _READ_CHUNK))
                if not chunk:
                    raise ValueError(f"{where} is truncated")
                flat[got:got + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                got += len(chunk)
        fh.read(1)  # reach the end, so that zipfile checks the CRC
    return out


def _npy_header(fh, where):
    """(shape, fortran, dtype) from the ``.npy`` header at the start of ``fh``."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fh)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(fh)
        raise ValueError(f"npy format version {version}")
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{where} is not a readable array ({type(exc).__name__}: "
                         f"{exc})") from exc


# ----------------------------------------------------------------------------- untrusted files
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error,
               NotImplementedError, OverflowError)
_FILE_KINDS = ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO (named pipe)"),
               (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
               (stat.S_ISSOCK, "socket"))


def _as_path(path, what) -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a str or os.PathLike, got {type(path).__name__}")
    return os.fsdecode(path)


def _refuse_special(path, st, what):
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _FILE_KINDS if test(st.st_mode)), "special file")
        raise ValueError(f"{what}: {path} is a {kind}, not a regular file")


def check_regular_file(path, what: str = "path") -> str:
    """``path`` as a str, if it names an existing regular file.

    A folder, a FIFO (opening blocks), ``/dev/zero`` (reading never ends) or a socket
    is refused before anything opens it, with a ValueError naming ``what``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a regular file, or one that cannot be examined.
    """
    path = _as_path(path, what)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"{what}: no such file", path) from None
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise
        raise ValueError(f"{what}: cannot examine {path} ({exc.strerror or exc})") from None
    _refuse_special(path, st, what)
    return path


def open_regular_file(path: str | os.PathLike, what: str = "path") -> BinaryIO:
    """A binary file object for the regular file ``path``.

    A folder, a FIFO, a device or a socket is refused with a ValueError naming ``what``.
    Opened without blocking and checked again through the open descriptor, so
    a FIFO swapped in after the first check neither blocks nor gets read.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    what : str, default "path"
        The parameter that named it, for the messages.

    Returns
    -------
    BinaryIO
        Open for reading; close it (a ``with`` block).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is a folder, a FIFO, a device or a socket.
    TypeError
        ``path`` is not a path.

    Examples
    --------
    >>> import os, tempfile
    >>> from itermap.files import open_regular_file
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "a.txt"), "wb") as fh:
    ...     _ = fh.write(b"abc")
    >>> with open_regular_file(os.path.join(folder, "a.txt")) as fh:
    ...     fh.read()
    b'abc'
    >>> open_regular_file(folder, "spec")
    Traceback (most recent call last):
    ...
    ValueError: spec: ... is a folder, not a regular file
    """
    path = check_regular_file(path, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        _refuse_special(path, os.fstat(fd), what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _memory_cap() -> int:
    return _physical_memory()


class NpzReader:
    """An ``.npz`` archive from an untrusted file, read one member at a time.

    Opening reads only the zip directory of a regular file; :meth:`read` reads one
    member after checking its declared size against ``expansion`` times its
    compressed size (when given) and, with all read before, this machine's memory.
    Every failure is a ValueError that names the file (and the member).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        The parameter that named it, for messages.
    expansion : float, optional
        Largest uncompressed/compressed ratio accepted (None: any).
    kind : str
        What the file should be, for messages.

    Examples
    --------
    >>> import os, tempfile
    >>> from itermap.files import NpzReader, write_npz_atomic
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> write_npz_atomic(path, {"x": np.arange(3.0)})
    >>> with NpzReader(path, expansion=100) as archive:
    ...     archive.members(), archive.header("x"), archive.read("x")
    (['x'], ((3,), dtype('float64')), array([0., 1., 2.]))
    """

    def __init__(self, path: str | os.PathLike, what: str = "path", *,
                 expansion: float | None = None, kind: str = ".npz file"):
        self.what = what
        self.expansion = expansion
        self.path = path = _as_path(path, what)
        self._fh = open_regular_file(path, what)
        self.budget = _memory_cap()
        try:
            self.zf = zipfile.ZipFile(self._fh)
            infos = self.zf.infolist()
        except (*_ZIP_ERRORS, MemoryError) as exc:  # a directory that declares too much
            self._fh.close()
            raise ValueError(f"{what}: {path} is not a readable {kind} (truncated or corrupt: "
                             f"{type(exc).__name__}: {exc})") from exc
        except BaseException:
            self._fh.close()
            raise
        names = [i.filename for i in infos]
        self.infos = {i.filename: i for i in infos}
        if len(self.infos) != len(names):
            self.close()
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"{path}: the archive holds entry {dup[0]!r} more than once")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.zf.close()
        self._fh.close()

    def members(self) -> list[str]:
        """The names of the archive's arrays (its ``.npy`` members, without the suffix)."""
        return [n[:-4] for n in self.infos if n.endswith(".npy")]

    def _info(self, name):
        info = self.infos.get(name + ".npy")
        if info is None:
            raise ValueError(f"{self.what}: {self.path} holds no array {name!r}")
        return info

    def header(self, name):
        """(shape, dtype) of the array ``name``, from its header alone."""
        info = self._info(name)
        try:
            with self.zf.open(info) as fh:
                shape, _, dtype = _npy_header(fh, f"{self.path}: entry {info.filename!r}")
        except _ZIP_ERRORS as exc:
            raise ValueError(f"{self.path}: entry {info.filename!r} is truncated or corrupt "
                             f"({type(exc).__name__}: {exc})") from exc
        return tuple(shape), dtype

    def read(self, name, spec=None):
        """The array ``name``, checked before it is decompressed (``spec``: see load)."""
        return self.read_info(self._info(name), spec, None)

    def read_info(self, info, spec, limit):
        if info.file_size > self.budget:
            raise ValueError(f"{self.path}: entry {info.filename!r} declares "
                             f"{info.file_size} bytes uncompressed, more than the "
                             f"{self.budget} bytes of memory left for this file")
        limit = self.budget if limit is None else min(limit, self.budget)
        try:
            out = _read_entry(self.zf, info, self.path, spec, limit, self.expansion)
        except _ZIP_ERRORS as exc:
            raise ValueError(f"{self.path}: entry {info.filename!r} is truncated or corrupt "
                             f"({type(exc).__name__}: {exc})") from exc
        self.budget -= info.file_size
        return out


def remove_stale(directory: str | os.PathLike[str], prefix: str, suffix: str = "", *,
                 folders: bool = False) -> None:
    """Remove what a killed process of this host left in ``directory``.

    Temporaries are named ``{prefix}{host}-{pid}-...{suffix}``; an entry of
    this host whose process is gone is removed (a folder with its content
    when ``folders``). Searched at most every few seconds per folder.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder to search (one that cannot be listed is left alone).
    prefix, suffix : str
        The start and end of the temporaries' names, around ``{host}-{pid}-``.
    folders : bool, default False
        Remove folders (with their content) as well as files.

    Examples
    --------
    >>> import os, tempfile
    >>> from itermap.files import host_name, remove_stale
    >>> folder = tempfile.mkdtemp()
    >>> left = os.path.join(folder, f".doc-{host_name()}-999999999-x.tmp")  # no such pid
    >>> open(left, "w").close()
    >>> remove_stale(folder, ".doc-", ".tmp")
    >>> os.listdir(folder)
    []
    """
    key = (os.fspath(directory), prefix + "\0" + suffix)
    now = time.monotonic()
    if now - _last_sweep.get(key, -math.inf) < _SWEEP_EVERY:
        return
    _last_sweep[key] = now
    pattern = re.compile(re.escape(f"{prefix}{_host()}-") + r"(\d+)-.*" + re.escape(suffix)
                         + "$")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            if folders and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            elif not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
