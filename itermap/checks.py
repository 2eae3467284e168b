"""Argument checks for code built on itermap: the analyses, a user's own maps.

Each check returns the value it accepts (converted where it says so) and
raises ``TypeError`` or ``ValueError`` whose message names the parameter, as
every public callable of itermap does.

Examples
--------
>>> from itermap.checks import check_int
>>> check_int("steps", 3, 0)
3
>>> check_int("steps", -1, 0)
Traceback (most recent call last):
...
ValueError: steps must be >= 0, got -1
"""

from ._core._checks import (
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
from ._maps._network_parts import _check_leak as check_leak

__all__ = ["check_bool", "check_choice", "check_int", "check_leak", "check_memory", "check_real",
           "check_real_array", "is_sequence", "named", "no_half", "one_namespace", "plain_array"]
