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
           "check_real_array", "named", "no_half", "one_namespace", "plain_array"]
