"""Housekeeping of issue 12 §9: what a plain ``pip install .`` brings, the licence, the citation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(requirements):
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_tqdm_is_a_dependency_so_progress_works_after_a_plain_install():
    # the defect as filed: lyapunov_spectrum(..., progress=True) raised ModuleNotFoundError
    assert "tqdm" in _names(PYPROJECT["project"]["dependencies"])


def test_gpu_extras_cover_both_cuda_majors():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["gpu-cuda12"] == ["cupy-cuda12x"]
    assert extras["gpu-cuda13"] == ["cupy-cuda13x"]
    readme = (ROOT / "README.md").read_text()
    assert "gpu-cuda12" in readme and "gpu-cuda13" in readme and "nvidia-smi" in readme


def test_license_file_matches_pyproject():
    text = (ROOT / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == "BSD-3-Clause"
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026, the itermap developers" in text
    assert "Neither the name of the copyright holder" in text  # the third clause


def _version():
    """``__version__`` as written in itermap/__init__.py, read without importing it."""
    text = (ROOT / "itermap" / "__init__.py").read_text()
    (version,) = re.findall(r'^__version__ = "([^"]+)"$', text, re.M)
    return version


def test_the_version_is_written_once_and_pyproject_reads_it():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "itermap.__version__"}
    import itermap

    assert itermap.__version__ == _version()
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", _version())


def test_the_changelog_names_the_current_version_as_its_latest_release():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in text and "## [Unreleased]" in text
    releases = re.findall(r"^## \[(\d[^\]]*)\] - (\d{4}-\d{2}-\d{2})$", text, re.M)
    assert releases, "no dated release heading"
    assert releases[0][0] == _version()
    # newest first, no version twice
    keys = [tuple(int(p) for p in v.split(".")[:3]) for v, _ in releases]
    assert keys == sorted(set(keys), reverse=True)


def test_citation_cites_the_software_and_the_paper():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == _version()
    assert cff["license"] == PYPROJECT["project"]["license"]
    paper = cff["preferred-citation"]
    assert [a["family-names"] for a in paper["authors"]] == ["Hershey", "Paffenroth", "Pathak",
                                                            "Tavener"]
    assert paper["url"] == "https://arxiv.org/abs/2404.00880"
    assert paper["identifiers"][0]["value"] == "arXiv:2404.00880"
