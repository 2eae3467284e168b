"""The README as a newcomer reads it: every Python block runs as written in a fresh process,
the Quick start is two commands, Install and Cite say what they should, and the test recipe
it gives runs the installed-wheel test."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang):
    """The README's fenced blocks of ``lang``, each with the line it starts on."""
    out = []
    for m in re.finditer(rf"^```{lang}\n(.*?)^```", README, re.S | re.M):
        out.append((README.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


PYTHON = _blocks("python")


def test_the_readme_has_its_python_blocks():
    assert len(PYTHON) >= 5  # a first look, torch, your own map, training, a paper figure


@pytest.mark.parametrize("line, code", PYTHON, ids=[f"line{ln}" for ln, _ in PYTHON])
def test_every_python_block_runs_as_written_in_a_fresh_process(tmp_path, line, code):
    if re.search(r"^\s*import torch", code, re.M) and importlib.util.find_spec("torch") is None:
        pytest.skip(f"the block at README line {line} needs torch (pip install '.[torch]')")
    # a fresh interpreter in an empty folder: nothing imported or defined beforehand
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"README line {line}:\n{done.stderr[-3000:]}"


def test_quick_start_is_two_commands():
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", quick, re.S)
    assert block.strip().splitlines() == [
        "pip install . && itermap report --example --out report",
        'pip install ".[test]" && python -m pytest']


def test_install_section_says_which_pythons_and_from_where():
    install = README.split("## Install\n", 1)[1].split("\n## ", 1)[0]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    low = pyproject["project"]["requires-python"].removeprefix(">=")
    assert f"Python {low} and newer" in install
    assert "pip install ." in install and "clone" in install
    for extra in pyproject["project"]["optional-dependencies"]:
        if extra != "gpu":  # the old name of gpu-cuda12
            assert extra in install, extra


def test_cite_section_points_at_citation_cff_and_the_paper():
    cite = README.split("## Cite\n", 1)[1].split("\n## ", 1)[0]
    assert "CITATION.cff" in cite and (ROOT / "CITATION.cff").exists()
    assert "arXiv:2404.00880" in cite and "Hershey" in cite


def test_readme_says_which_tests_need_torch_or_a_gpu():
    for needs in ("tests/test_torch_live.py", "torch", "CuPy", "GPU"):
        assert needs in README
    assert "runs every test" not in README  # not true where torch or a GPU is missing


def test_the_test_extra_brings_the_build_backend_of_the_wheel_test():
    # tests/test_cli.py builds the wheel without build isolation, with the environment's own
    # setuptools: a fresh venv has setuptools 65, which rejects the license field, and the
    # test skipped in the README's own recipe. The test extra brings the backend pyproject
    # names.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    backend = pyproject["build-system"]["requires"]
    assert set(backend) <= set(pyproject["project"]["optional-dependencies"]["test"])


def test_pytest_reports_why_each_test_skipped():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    opts = pyproject["tool"]["pytest"]["ini_options"]["addopts"].split()
    assert any(o.startswith("-r") and ("s" in o or "a" in o) for o in opts)


def test_the_wheel_test_says_why_it_skips(monkeypatch):
    import importlib.metadata

    from test_cli import _no_build_backend

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "65.5.0")
    reason = _no_build_backend()
    assert "setuptools 65.5.0" in reason and "setuptools>=77" in reason and "[test]" in reason
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "80.9.0")
    assert _no_build_backend() == ""
