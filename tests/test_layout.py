"""The import name is ``itermap.analysis``: nothing installs a top-level ``analysis``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_analysis_is_a_subpackage_of_itermap():
    import itermap.analysis

    assert itermap.analysis.__name__ == "itermap.analysis"
    assert callable(itermap.analysis.lyapunov_spectrum)


def test_a_users_own_analysis_folder_does_not_shadow_ours(tmp_path):
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "__init__.py").write_text("MINE = True\n")
    code = ("import analysis, itermap.analysis as ours; "
            "assert analysis.MINE; from itermap.analysis import plots; "
            "print(ours.__name__, plots.__name__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["itermap.analysis", "itermap.analysis.plots"]


def test_itermap_never_imports_its_analysis():
    code = "import sys, itermap; assert 'itermap.analysis' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_pyproject_installs_no_top_level_analysis():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {"itermap", "itermap.analysis"} <= set(cfg["packages"])
    assert all(p == "itermap" or p.startswith("itermap.") for p in cfg["packages"])
    assert cfg["package-dir"]["itermap.analysis"] == "analysis"
