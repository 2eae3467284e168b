"""Argument checks shared by the analyses."""

from __future__ import annotations

from itermap._checks import check_bool, check_int, check_real, named

__all__ = ["check_bool", "check_int", "check_real", "named"]
