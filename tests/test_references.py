"""Every public analysis cites what it implements: a numpydoc References section (issue 25).

The check covers the callables in ``itermap.analysis.__all__``. A result class (a
dataclass) is documented with the function that returns it and cites nothing of
its own; the names below are the only other exemptions.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

import itermap.analysis

# Plain utilities: a driver over a grid and its table; nothing to cite.
UTILITIES = {"sweep", "SweepResult"}

# Names whose References are still to write (the stale check below says when one is done).
OTHER_BRANCHES: set[str] = set()

_TITLE = re.compile(r"^References\n-{3,}\n(.*?)(?=^[A-Z][A-Za-z ]+\n-{3,}\n|\Z)", re.M | re.S)
_ENTRY = re.compile(r"^\.\. \[(\w+)\] ", re.M)


def references(doc: str | None) -> list[str] | None:
    """The entries of the References section of ``doc`` (None when it has none).

    Each entry is the text after its ``.. [n]`` marker, its continuation lines joined.
    """
    m = _TITLE.search(doc or "")
    if m is None:
        return None
    body = m.group(1)
    marks = list(_ENTRY.finditer(body))
    out = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        out.append(" ".join(body[mark.end():end].split()))
    return out


def problems(obj) -> list[str]:
    """What is wrong with ``obj``'s References: absent, empty, misnumbered, with no year."""
    doc = inspect.getdoc(obj)
    entries = references(doc)
    if entries is None:
        return ["no References section"]
    if not entries:
        return ["a References section with no '.. [1]' entry"]
    bad = []
    labels = _ENTRY.findall(_TITLE.search(doc).group(1))
    if labels != [str(i) for i in range(1, len(labels) + 1)]:
        bad.append(f"entries numbered {labels}, not 1, 2, ...")
    for label, text in zip(labels, entries):
        if not re.search(r"\b(1[89]|20)\d\d\b", text):
            bad.append(f"entry [{label}] has no year: {text!r}")
    return bad


def _checked():
    for name in itermap.analysis.__all__:
        obj = getattr(itermap.analysis, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
            continue  # a result: cited by the function that returns it
        yield name, obj


def test_every_public_analysis_cites_its_papers():
    bad = {}
    for name, obj in _checked():
        if name in UTILITIES | OTHER_BRANCHES:
            continue
        found = problems(obj)
        if found:
            bad[name] = found
    assert not bad, f"References missing or malformed: {bad}"


def test_the_exemptions_are_current():
    checked = dict(_checked())
    for name in sorted(UTILITIES | OTHER_BRANCHES):
        assert name in checked, f"{name} is no longer a checked public callable: remove it"
    done = sorted(n for n in OTHER_BRANCHES if not problems(checked[n]))
    assert not done, f"these now cite their papers: remove them from OTHER_BRANCHES: {done}"
    assert not UTILITIES & OTHER_BRANCHES


def test_the_check_sees_missing_empty_misnumbered_and_undated_references():
    def cited():
        """Do something.

        References
        ----------
        .. [1] A. Author, "A title", Journal 1, 2-3 (1999).
        .. [2] B. Author, "Another title",
           arXiv:2404.00880 (2024).

        Examples
        --------
        >>> cited()
        """

    def bare():
        """Do something.

        Examples
        --------
        >>> bare()
        """

    def empty():
        """Do something.

        References
        ----------
        Some papers.
        """

    def misnumbered():
        """Do something.

        References
        ----------
        .. [2] A. Author, "A title" (2001).
        """

    def undated():
        """Do something.

        References
        ----------
        .. [1] A. Author, "A title", somewhere.
        """

    assert references(inspect.getdoc(cited)) == [
        'A. Author, "A title", Journal 1, 2-3 (1999).',
        'B. Author, "Another title", arXiv:2404.00880 (2024).']
    assert problems(cited) == []
    assert problems(bare) == ["no References section"]
    assert problems(empty) == ["a References section with no '.. [1]' entry"]
    assert problems(misnumbered) == ["entries numbered ['2'], not 1, 2, ..."]
    assert problems(undated) == ["entry [1] has no year: 'A. Author, \"A title\", somewhere.'"]
    for f in (cited, bare, empty, misnumbered, undated):
        assert f() is None
