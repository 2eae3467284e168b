"""Argument checks shared by the analyses."""

from __future__ import annotations

from itermap.checks import (
    check_bool,
    check_choice,
    check_int,
    check_memory,
    check_real,
    check_real_array,
    named,
    no_half,
    one_namespace,
    plain_array,
)

__all__ = ["check_bool", "check_choice", "check_int", "check_memory", "check_real",
           "check_real_array", "is_network", "named", "no_half", "one_namespace", "plain_array"]


def is_network(map_) -> bool:
    """Whether ``map_`` is a network map ``x -> f(W x + b)``: it has the public weights
    (``block_matrix``) and ``activations`` that an analysis of networks reads.

    The analyses ask the protocol, not a class: a user's map with these members
    is a network too.
    """
    return hasattr(map_, "block_matrix") and hasattr(map_, "activations")
