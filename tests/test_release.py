"""A release as PyPI and a user would see it: ``python -m build`` gives an sdist and a wheel
that pass ``twine check``, and the wheel, installed into a fresh virtual environment outside
the checkout, runs the README Quick start's first job (``itermap report --example``).

No network: the build runs without isolation (the test extra brings setuptools, build and
twine), and the fresh environment sees this one's packages (``--system-site-packages``) so
the wheel installs with ``--no-deps``. It runs in CI (marked slow, about 30 s)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from test_cli import _no_build_backend

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.search(r'^__version__ = "([^"]+)"$',
                    (ROOT / "itermap" / "__init__.py").read_text(), re.M).group(1)


def _run(*args, cwd, env=None):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    for module in ("build", "twine"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed; pip install '.[test]' brings it")
    reason = _no_build_backend()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT),
         cwd=out)
    return out


@pytest.mark.slow
def test_build_gives_an_sdist_and_a_wheel_that_pass_twine_check(dist):
    sdists = sorted(dist.glob("*.tar.gz"))
    wheels = sorted(dist.glob("*.whl"))
    assert [p.name for p in sdists] == [f"itermap-{VERSION}.tar.gz"]
    assert [p.name for p in wheels] == [f"itermap-{VERSION}-py3-none-any.whl"]
    done = _run(sys.executable, "-m", "twine", "check", "--strict", *map(str, sdists + wheels),
                cwd=dist)
    assert done.stdout.count("PASSED") == 2, done.stdout
    names = zipfile.ZipFile(wheels[0]).namelist()
    for needed in ("itermap/py.typed", "itermap/analysis/py.typed",
                   "itermap/analysis/data/example.toml", "itermap/analysis/paper.mplstyle"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "benchmarks/"))]
    meta = zipfile.ZipFile(wheels[0]).read(f"itermap-{VERSION}.dist-info/METADATA").decode()
    assert f"Version: {VERSION}\n" in meta and "Provides-Extra: docs" in meta


@pytest.mark.slow
def test_the_wheel_in_a_fresh_venv_runs_the_quick_start_report(dist, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    # --system-site-packages reaches the base interpreter's packages, not those of the venv
    # this test runs in (CI's .venv-ci): a .pth line puts this one's after the new env's own
    here = sysconfig.get_paths()
    lib = _run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
               cwd=tmp_path).stdout.strip()
    wheel = next(dist.glob("*.whl"))
    # this environment's pip installs into the new one: no pip bootstrap, no network; before
    # the .pth line, and --ignore-installed, or pip sees this environment's itermap (CI
    # installs one) and skips the wheel
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--ignore-installed", "-q", str(wheel), cwd=tmp_path)
    Path(lib, "_itermap_test_parent.pth").write_text(
        "\n".join(dict.fromkeys([here["purelib"], here["platlib"]])) + "\n")
    work = tmp_path / "work"  # outside the checkout: the source tree is not importable here
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(MPLBACKEND="Agg", PATH=f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}")
    where = _run(str(python), "-c", "import itermap; print(itermap.__file__, "
                 "itermap.__version__)", cwd=work, env=env).stdout.split()
    assert where[0].startswith(str(env_dir)) and where[1] == VERSION
    _run(str(env_dir / "bin" / "itermap"), "report", "--example", "--out", "report",
         cwd=work, env=env)
    assert (work / "report" / "report.html").is_file()
    results = json.loads((work / "report" / "results.json").read_text())
    assert results["analyses"] and results["failed"] == []
    assert results["versions"]["itermap"] == VERSION
    assert sorted((work / "report" / "figures").glob("*.png"))
