"""The public constants' own ``#:`` comments on their API pages.

A constant's page names the public module that re-exports it (``itermap.analysis.STATUS``),
so autodoc looks for its ``#:`` comment there, finds none (the comment sits where the
constant is defined, a private module), and shows the docstring of the value's type
instead: ``tuple``'s "Built-in immutable sequence." on the page and in the module's table.
:func:`process_docstring` takes the comment from the module that defines the name,
and drops a builtin type's docstring where there is no comment.
"""

from __future__ import annotations

import sys

from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer


def defining_comment(name: str, obj: object) -> list[str] | None:
    """The ``#:`` comment of the itermap module that binds ``name`` (or ``_name``) to ``obj``."""
    for modname, module in sorted(sys.modules.items()):
        if modname != "itermap" and not modname.startswith("itermap."):
            continue
        for attr in (name, "_" + name):
            if attr not in vars(module) or vars(module)[attr] is not obj:
                continue
            try:
                analyzer = ModuleAnalyzer.for_module(modname)
                analyzer.analyze()
            except PycodeError:
                continue
            comment = analyzer.attr_docs.get(("", attr))
            if comment:
                return list(comment)
    return None


def process_docstring(app, what, name, obj, options, lines):
    if what != "data":
        return
    comment = defining_comment(name.rsplit(".", 1)[-1], obj)
    if comment:
        lines[:] = comment
    elif type(obj).__module__ == "builtins" and lines and type(obj).__doc__ and \
            lines[0].strip() == type(obj).__doc__.strip().splitlines()[0].strip():
        lines[:] = []
