"""The identity of a function for :func:`sweep`'s cache: a content hash of what it computes.

What it covers is listed under ``cache`` in :func:`sweep`. What no key can see, so what a
cached result can be stale for: anything outside Python objects (environment variables,
files); globals reached by computed names (``getattr``, ``eval``); an installed library
changed without a new version, or at run time; the user's compiled extensions; state an
object's pickling leaves out; a user module bound as a ``partial`` argument (by name).
"""

from __future__ import annotations

import builtins
import dis
import importlib.util
import logging
import os
import pickle
import site
import sys
import sysconfig
import types
import warnings
from functools import lru_cache

__all__ = ["function_identity", "is_library_module"]

_STDLIB = frozenset(sys.stdlib_module_names) | {"builtins", "__future__"}
_OURS = frozenset({"itermap"})
_EMPTY_CELL = "<empty closure cell>"
_HASH_ERRORS = (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError)


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    paths: set = {p for key, p in sysconfig.get_paths().items()
                  if key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(getattr(site, "getsitepackages", list)())  # absent in some virtualenvs
    paths.add(getattr(site, "getusersitepackages", lambda: None)())
    return tuple(sorted({os.path.realpath(p) + os.sep for p in paths if p}))


def is_library_module(name) -> bool:
    """True for the standard library, installed packages and itermap; False for the user's.

    A module that is not imported (a namespace made by ``exec``) or has no file (a
    notebook's ``__main__``) is the user's.
    """
    if not isinstance(name, str):
        return False
    top = name.partition(".")[0]
    if top in _STDLIB or top in _OURS:
        return True
    module = sys.modules.get(name) or sys.modules.get(top)
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):
        return False
    return os.path.realpath(path).startswith(_library_roots())


def _library_token(kind, obj):
    module = getattr(obj, "__module__", None)
    top = module.partition(".")[0] if isinstance(module, str) else ""
    version = getattr(sys.modules.get(top), "__version__", None)
    return [kind, module, getattr(obj, "__qualname__", None), str(version)]


@lru_cache(maxsize=4096)
def _code_reads(code):
    """(globals read, attribute names, modules imported) by ``code`` and its nested code."""
    names, attrs, imports = set(), set(), set()
    consts: list = [None, None]
    try:
        for ins in dis.get_instructions(code):
            op = ins.opname
            if op in ("LOAD_GLOBAL", "LOAD_NAME", "DELETE_GLOBAL"):
                names.add(ins.argval)
            elif "ATTR" in op or "METHOD" in op or op == "IMPORT_FROM":
                attrs.add(ins.argval)
            elif op == "IMPORT_NAME":  # (name, level): the level is loaded two constants back
                level = consts[-2] if isinstance(consts[-2], int) else 0
                imports.add((ins.argval, level))
            if op == "LOAD_CONST":
                consts.append(ins.argval)
    except Exception:  # an interpreter whose bytecode dis cannot read: every name counts
        names |= set(code.co_names)
        attrs |= set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            n, a, i = _code_reads(const)
            names |= n
            attrs |= a
            imports |= i
    return frozenset(names), frozenset(a for a in attrs if isinstance(a, str)), frozenset(imports)


class _Global:
    """A global's value, hashed apart so that one that cannot be hashed is only noted."""

    __slots__ = ("name", "value")

    def __init__(self, name, value):
        self.name, self.value = name, value


class _Shared:
    """State of one identity computation, shared by the hashers of its globals."""

    def __init__(self):
        self.digests: dict[int, tuple[object, str]] = {}
        self.in_progress: set[int] = set()
        self.unhashable: list[str] = []


def _module_token(module, attrs, seen):
    """A user module, by the values of the attributes the code names (recursively)."""
    if is_library_module(module.__name__):
        return ["module", module.__name__]
    if module.__name__ in seen:
        return ["module (again)", module.__name__]
    seen = seen | {module.__name__}
    values = {}
    for attr in sorted(attrs):
        if attr.startswith("__") or attr not in vars(module):
            continue
        values[attr] = _read_value(f"{module.__name__}.{attr}", vars(module)[attr], attrs, seen)
    return ["user module", module.__name__, values]


def _read_value(name, value, attrs, seen):
    if isinstance(value, types.ModuleType):
        return _module_token(value, attrs, seen)
    # functions and classes too: the hasher turns them into their code and what it reads,
    # and one that holds a value that cannot be hashed is then only noted
    return _Global(name, value)


def _function_token(f):
    names, attrs, imports = _code_reads(f.__code__)
    closure: list = []
    for cell in f.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:
            value = _EMPTY_CELL
        # a closed-over user module counts by the attributes the code reads, as a global
        closure.append(_module_token(value, attrs, frozenset())
                       if isinstance(value, types.ModuleType) else value)
    reads = {}
    for name in sorted(names):
        if name in f.__globals__:
            reads[name] = _read_value(name, f.__globals__[name], attrs, frozenset())
        elif not hasattr(builtins, name):
            reads[name] = ["undefined"]
    for name, level in sorted(imports):  # ``import helpers`` inside the function
        try:
            name = importlib.util.resolve_name("." * level + name,
                                               f.__globals__.get("__package__")) if level else name
        except (ImportError, ValueError, TypeError):
            continue
        module = sys.modules.get(name)
        if isinstance(module, types.ModuleType) and not is_library_module(name):
            reads[f"import {name}"] = _module_token(module, attrs, frozenset())
    # lists, not tuples: pickle memoizes a list before its items, so cycles (a recursive
    # closure, a method naming its own class) end in a back-reference
    return ["function", f.__module__, f.__qualname__, f.__code__, f.__defaults__,
            f.__kwdefaults__, closure, reads]


_SKIPPED_CLASS_ATTRS = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__",
                                  "__doc__", "__slots__", "__annotations__",
                                  "__dataclass_fields__", "__dataclass_params__",
                                  "__match_args__", "__parameters__", "__orig_bases__"})


def _class_token(cls):
    members = {}
    for name, value in vars(cls).items():
        if name in _SKIPPED_CLASS_ATTRS:
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            value = [value.fget, value.fset, value.fdel]
        elif isinstance(value, (types.MemberDescriptorType, types.GetSetDescriptorType)):
            continue  # slots: the values live on the instances
        elif not isinstance(value, types.FunctionType):
            value = _Global(f"{cls.__qualname__}.{name}", value)  # class data, by value
        members[name] = value
    return ["class", cls.__module__, cls.__qualname__, list(cls.__bases__), members]


@lru_cache(maxsize=1)
def _hasher_class():
    from joblib.hashing import NumpyHasher

    class IdentityHasher(NumpyHasher):
        """joblib's content hash, with the user's functions (code, defaults, closure, globals
        read) and classes (methods, attributes) hashed by content, not by name."""

        def __init__(self, shared):
            super().__init__(hash_name="sha1")
            self._tokens = {}
            self.shared = shared

        def save(self, obj):
            if isinstance(obj, _Global):
                return super().save(self._global_digest(obj))
            token = self._tokens.get(id(obj))
            if token is None:
                token = self._token(obj)
                if token is not None:
                    self._tokens[id(obj)] = token = (obj, token)  # keeps obj alive: ids stay
            super().save(obj if token is None else token[1])

        def _token(self, obj):
            if isinstance(obj, types.FunctionType):
                return _library_token("library function", obj) if is_library_module(
                    obj.__module__) else _function_token(obj)
            if isinstance(obj, types.MethodType):
                return ["method", obj.__func__, obj.__self__]
            if isinstance(obj, types.CodeType):
                # no file name or line numbers: moving a function does not change it
                return ["code", obj.co_code, obj.co_consts, obj.co_names, obj.co_varnames,
                        obj.co_freevars, obj.co_cellvars, obj.co_argcount,
                        obj.co_posonlyargcount, obj.co_kwonlyargcount, obj.co_flags]
            if isinstance(obj, type):
                return None if is_library_module(obj.__module__) else _class_token(obj)
            if isinstance(obj, frozenset):  # joblib sorts sets, not frozensets
                return ["frozenset", set(obj)]
            if isinstance(obj, types.ModuleType):  # e.g. a bound array namespace
                return ["module", obj.__name__]
            wrapped = getattr(obj, "__wrapped__", None)
            if callable(obj) and isinstance(wrapped, types.FunctionType) and \
                    not is_library_module(wrapped.__module__):  # lru_cache and the like
                return ["wrapped", type(obj).__module__, type(obj).__qualname__, wrapped]
            return None

        def _global_digest(self, g):
            shared, key = self.shared, id(g.value)
            if key in shared.digests:
                return ["global", g.name, shared.digests[key][1]]
            if key in shared.in_progress:  # data that reaches itself through a function
                return ["global (cycle)", g.name]
            shared.in_progress.add(key)
            try:
                digest = type(self)(shared).hash(g.value)
            except _HASH_ERRORS as exc:
                shared.unhashable.append(f"{g.name} ({type(g.value).__name__}: {exc})")
                digest = "unhashable"
            finally:
                shared.in_progress.discard(key)
            shared.digests[key] = (g.value, digest)
            return ["global", g.name, digest]

    return IdentityHasher


def function_identity(function) -> str | None:
    """Content hash of what ``function`` computes; None (with a warning) when a global it
    reads cannot be hashed.

    Raises
    ------
    TypeError
        A value bound to ``function`` itself (a closure variable, a default, a
        ``functools.partial`` argument) cannot be hashed.
    """
    shared = _Shared()
    try:
        digest = _hasher_class()(shared).hash(function)
    except _HASH_ERRORS as exc:
        raise TypeError(
            f"cache= keys each point by the content of function and of the values bound to "
            f"it, and function {function!r} holds a value that cannot be hashed ({exc}); "
            "bind only arrays, numbers, maps and other picklable values, or run without "
            "cache=") from exc
    if shared.unhashable:
        logging.getLogger(__name__).info("sweep: cache off, %s is unhashable", shared.unhashable[0])
        warnings.warn(
            f"cache=: function reads the global {shared.unhashable[0]}, whose value cannot be "
            "hashed, so a cached result could not be told from a stale one; this sweep runs "
            "without its cache", RuntimeWarning, stacklevel=3)
        return None
    return digest
