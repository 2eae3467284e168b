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


def test_citation_cites_the_software_and_the_paper():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == PYPROJECT["project"]["version"]
    assert cff["license"] == PYPROJECT["project"]["license"]
    paper = cff["preferred-citation"]
    assert [a["family-names"] for a in paper["authors"]] == ["Hershey", "Paffenroth", "Pathak",
                                                            "Tavener"]
    assert paper["url"] == "https://arxiv.org/abs/2404.00880"
    assert paper["identifiers"][0]["value"] == "arXiv:2404.00880"
