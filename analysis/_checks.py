"""Argument checks and small helpers shared by the analyses."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from itermap.backends import to_numpy
from itermap.checks import (
    check_bool,
    check_choice,
    check_int,
    check_memory,
    check_real,
    check_real_array,
    is_sequence,
    named,
    no_half,
    one_namespace,
    plain_array,
)

__all__ = ["block_list", "check_batched_step", "check_bool", "check_choice", "check_int",
           "check_memory", "check_real", "check_real_array", "check_states", "is_network",
           "is_sequence", "named", "no_extended", "no_half", "one_namespace", "plain_array",
           "state_units", "machine_eps"]


def check_states(name: str, value, **kwargs) -> np.ndarray:
    """States ``value`` as ``check_real_array`` gives them (finite float64, on the host), bool
    states cast to 0/1 as well as integer ones, as ``map.check_start`` (``iterate``) does."""
    value = plain_array(name, value)
    if hasattr(value, "shape") and not isinstance(value, np.ndarray):
        value = to_numpy(value)
    dtype = getattr(value, "dtype", None)
    if dtype is None and isinstance(value, list | tuple):
        with contextlib.suppress(TypeError, ValueError):  # ragged: check_real_array names it
            dtype = np.asarray(value).dtype
    if dtype == np.bool_:
        value = np.asarray(value, dtype=np.float64)
    return check_real_array(name, value, **kwargs)


def no_extended(name: str, x):
    """``x`` unless it is a long double (float96/float128) array: a TypeError naming ``name``,
    for analyses that factor matrices (no LAPACK routine works in extended precision)."""
    dtype = getattr(x, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize > 8:
        raise TypeError(f"{name}: {dtype} arrays are not supported (no LAPACK routine works in "
                        f"extended precision); pass float32 or float64")
    return x


def is_network(map_) -> bool:
    """Whether ``map_`` is a network map ``x -> f(W x + b)``: it has the members an analysis
    of networks reads (``block_matrix``, ``activations``), whatever its class."""
    return hasattr(map_, "block_matrix") and hasattr(map_, "activations")


def block_list(blocks, n: int) -> list[int]:
    """``blocks`` as distinct block indices below ``n``; TypeError/ValueError naming it."""
    if isinstance(blocks, str | bytes) or not isinstance(blocks, Sequence):
        raise TypeError(f"blocks must be a list of block indices or None, got {blocks!r}")
    out = [check_int("blocks", b, 0) for b in blocks]
    if any(b >= n for b in out) or len(set(out)) != len(out):
        raise ValueError(f"blocks must name distinct blocks of the map's {n}, got {list(blocks)}")
    return out


def state_units(map_) -> np.ndarray:
    """A boolean mask of the units outside ``map_``'s input block (all of an autonomous one)."""
    keep = np.ones(map_.dim, dtype=bool)
    if map_.input_block is not None:
        keep[map_.block_slice(map_.input_block)] = False
    return keep


def machine_eps(dtype) -> float:
    """The rounding unit of a float32 or (otherwise) float64 dtype."""
    return float(np.finfo(np.float32 if "32" in str(dtype) else np.float64).eps)


def check_batched_step(step, row, dim: int) -> Any:
    """A map whose step is written for one state at a time is named here (ValueError
    naming ``map`` and the batched protocol), not by NumPy's error inside the user's code:
    ``step`` (a callable of the states) is run on ``row``, a batch of states (one, or the
    run's own where the map's parameters are per batch row). Returns the step of ``row``."""
    want = (int(row.shape[0]), dim)
    # a step written for one state maps B = dim states to shape (dim,)... or (B, dim) when
    # it indexes states by their first axis: a batch of one tells it apart
    rows = (row, row[:1, ...]) if want[0] == dim > 1 else (row,)
    for r in rows:
        shape = (int(r.shape[0]), dim)
        try:
            y = step(r)
            got = tuple(y.shape)
        except Exception as err:    # a map written for one state at a time fails in its code
            if str(err).startswith("map: its "):       # named already (FunctionMap's checks)
                raise
            if r is not row:
                raise ValueError(f"map: its step failed on a batch of 1 state "
                                 f"({type(err).__name__}: {err}), though it returned shape "
                                 f"{want} for {want[0]} states: a step written for one state "
                                 f"reads a batch of B = dim states as one state; the protocol's "
                                 f"step takes a batch of states, shape (B, dim)") from err
            raise ValueError(f"map: its step failed on a batch of states, shape {shape} "
                             f"({type(err).__name__}: {err}); the protocol's step takes a "
                             f"batch of states, shape (B, dim) (itermap.check_map tests a "
                             f"map)") from err
        if got != shape:
            raise ValueError(f"map: its step returned shape {got} for a batch of states of "
                             f"shape {shape}; expected {shape}")
        if r is row:
            out = y
    return out
