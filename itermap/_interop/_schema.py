"""Field schemas of saved results: what :func:`itermap.load` checks before it builds one.

A ``@saveable`` dataclass may declare ``_schema: ClassVar[dict[str, str]]``, one spec
per field; the codec checks every decoded field against it, so a file whose field
holds the wrong type, dtype or shape is refused with a ValueError naming the field,
instead of loading and failing later (or never). A spec is a small type expression:

- ``int``, ``float``, ``bool``, ``str``, ``dict``, ``None``: a plain value (``float``
  takes ints and NumPy scalars too; ``int`` refuses bools);
- ``list[SPEC]``: a list whose items match ``SPEC``; ``tuple[SPEC]`` the same of a
  tuple (the codec loads tuples as tuples);
- ``KIND[AXES]``: a NumPy array, ``KIND`` one of ``float`` (real floating), ``int``
  (signed or unsigned integers), ``bool``, ``complex`` (complex or real floating: an
  eigenvalue array is real when every eigenvalue is), and ``AXES`` a comma-separated
  list of axis names, sizes, ``*`` (any one axis) and at most one ``...`` (any number
  of axes). An axis name binds a size across the fields of one object, so that
  ``states: float[T, ..., D]`` and ``times: int[T]`` must agree on ``T``;
- ``A | B``: either.

Unicode, bytes, object, datetime and timedelta arrays match no kind.
"""

from __future__ import annotations

import functools
import numbers
import re

import numpy as np

__all__ = ["check_fields", "check_schema"]

_KINDS = {"float": "f", "int": "iu", "bool": "b", "complex": "fc"}
_KIND_WORDS = {"f": "real floating point", "iu": "integers", "b": "booleans",
               "fc": "complex or real floating point"}
_PLAIN = ("int", "float", "bool", "str", "dict", "None")
_ARRAY = re.compile(r"^(float|int|bool|complex)\[(.*)\]$")


class _Mismatch(Exception):
    """A value that does not fit its spec; ``shape`` marks a disagreement between fields."""

    def __init__(self, msg: str, shape: bool = False):
        super().__init__(msg)
        self.shape = shape


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "[") - (ch == "]")
        if ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


@functools.cache
def _parse(spec: str) -> tuple:
    """A parsed spec: ``("or", alts)``, ``("plain", name)``, ``("list" or "tuple", item)`` or
    ``("array", kinds, axes)``; a ValueError for a spec that is not one."""
    alts = _split_top(spec, "|")
    if len(alts) > 1:
        return ("or", tuple(_parse(a) for a in alts))
    spec = alts[0]
    if spec in _PLAIN:
        return ("plain", spec)
    for seq in ("list", "tuple"):
        if spec.startswith(seq + "[") and spec.endswith("]"):
            return (seq, _parse(spec[len(seq) + 1:-1]))
        if spec == seq:
            return (seq, None)
    m = _ARRAY.match(spec)
    if m is None:
        raise ValueError(f"not a field spec: {spec!r}")
    axes = tuple(a.strip() for a in m.group(2).split(",")) if m.group(2).strip() else ()
    if sum(a == "..." for a in axes) > 1 or not all(
            a in ("*", "...") or a.isdigit() or a.isidentifier() for a in axes):
        raise ValueError(f"not a field spec: {spec!r}")
    return ("array", _KINDS[m.group(1)], axes)


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, np.generic):
        return f"a NumPy {value.dtype} scalar"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _plain_ok(name: str, value) -> bool:
    if name == "None":
        return value is None
    if name == "bool":
        return isinstance(value, bool | np.bool_)
    if isinstance(value, bool | np.bool_):
        return False
    if name == "int":
        return isinstance(value, numbers.Integral)
    if name == "float":
        return isinstance(value, numbers.Real)
    if name == "str":
        return isinstance(value, str)
    return isinstance(value, dict)


def _match_axes(axes, shape, sizes, field) -> None:
    """Bind the named ``axes`` to ``shape`` in ``sizes`` (name -> (size, field))."""
    if "..." in axes:
        i = axes.index("...")
        head, tail = axes[:i], axes[i + 1:]
        if len(shape) < len(head) + len(tail):
            raise _Mismatch(f"expected at least {len(head) + len(tail)} axes, got shape {shape}")
        pairs = list(zip(head, shape[:len(head)])) + list(
            zip(tail, shape[len(shape) - len(tail):]))
    else:
        if len(shape) != len(axes):
            raise _Mismatch(f"expected {len(axes)} axes ({', '.join(axes)}), got shape {shape}")
        pairs = list(zip(axes, shape))
    for ax, n in pairs:
        if ax == "*":
            continue
        if ax.isdigit():
            if n != int(ax):
                raise _Mismatch(f"expected an axis of size {ax}, got shape {shape}")
            continue
        if ax in sizes and sizes[ax][0] != n:
            size, other = sizes[ax]
            raise _Mismatch(f"shape {shape} disagrees with field {other!r}: axis {ax} is "
                            f"{size} there, {n} here", shape=True)
        sizes.setdefault(ax, (n, field))


def _match(node, value, sizes, field):
    """``sizes`` updated with the axes ``value`` binds, or a _Mismatch."""
    kind = node[0]
    if kind == "or":
        shape_err = None
        for alt in node[1]:
            trial = dict(sizes)
            try:
                return _match(alt, value, trial, field)
            except _Mismatch as err:
                shape_err = err if err.shape else shape_err
        if shape_err is not None:
            raise shape_err
        raise _Mismatch(f"got {_describe(value)}")
    if kind == "plain":
        if not _plain_ok(node[1], value):
            raise _Mismatch(f"expected {node[1]}, got {_describe(value)}")
        return sizes
    if kind in ("list", "tuple"):
        if not isinstance(value, list if kind == "list" else tuple):
            raise _Mismatch(f"expected a {kind}, got {_describe(value)}")
        if node[1] is not None:
            for i, item in enumerate(value):
                try:
                    sizes = _match(node[1], item, sizes, field)
                except _Mismatch as err:
                    raise _Mismatch(f"item {i}: {err}", err.shape) from None
        return sizes
    _, kinds, axes = node
    if not isinstance(value, np.ndarray):
        raise _Mismatch(f"expected an array, got {_describe(value)}")
    if value.dtype.kind not in kinds or value.dtype.fields is not None:
        raise _Mismatch(f"got dtype {value.dtype}, expected {_KIND_WORDS[kinds]}")
    sizes = dict(sizes)
    _match_axes(axes, tuple(value.shape), sizes, field)
    return sizes


def check_schema(cls) -> None:
    """Refuse (TypeError) a class whose own ``_schema`` does not give one valid spec per
    field. A subclass that declares none keeps its parent's for the parent's fields."""
    import dataclasses

    schema = getattr(cls, "_schema", None)
    if schema is None:
        return
    names = [f.name for f in dataclasses.fields(cls)]
    own = "_schema" in cls.__dict__
    if not isinstance(schema, dict) or (sorted(schema) != sorted(names) if own
                                        else not set(schema) <= set(names)):
        raise TypeError(f"{cls.__qualname__}._schema must give one spec per field {names}, "
                        f"got {sorted(schema) if isinstance(schema, dict) else schema!r}")
    for name, spec in schema.items():
        try:
            _parse(spec)
        except ValueError as err:
            raise TypeError(f"{cls.__qualname__}._schema[{name!r}]: {err}") from None


def check_fields(cls, values: dict) -> None:
    """Check decoded field ``values`` against ``cls._schema`` (if it has one).

    Raises
    ------
    ValueError
        Naming the first field whose value does not fit its spec.

    Examples
    --------
    >>> from itermap import Trajectory
    >>> check_fields(Trajectory, {"states": np.zeros((3, 2)), "times": np.arange(3),
    ...                           "sizes": [2]})
    >>> check_fields(Trajectory, {"states": np.zeros((3, 2)), "times": np.arange(4),
    ...                           "sizes": [2]})
    Traceback (most recent call last):
    ...
    ValueError: field 'times' of Trajectory: shape (4,) disagrees with field 'states': ...
    """
    schema = getattr(cls, "_schema", None)
    if schema is None:
        return
    sizes: dict = {}
    for name, spec in schema.items():
        if name not in values:
            continue
        try:
            sizes = _match(_parse(spec), values[name], sizes, name)
        except _Mismatch as err:
            raise ValueError(f"field {name!r} of {cls.__qualname__}: {err}") from None
