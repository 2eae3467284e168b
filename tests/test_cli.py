import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from itermap.analysis.cli import main


def test_demo_checks_the_equivalence(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "equivalence checks: PASSED" in out
    assert "[3] . . # ." in out  # the MLP's last block row: one sub-diagonal block


def test_console_module_runs():
    done = subprocess.run([sys.executable, "-m", "itermap.analysis.cli", "demo", "--seed", "3"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "PASSED" in done.stdout


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package as ``pip install .`` leaves it: a wheel installed into a folder of its own."""
    base = tmp_path_factory.mktemp("installed")
    reason = _no_build_backend()
    if reason:
        pytest.skip(reason)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(base / "wheel")],
                           capture_output=True, text=True, check=False)
    if build.returncode != 0:
        said = [ln for ln in build.stderr.splitlines() if "rror" in ln] or \
            build.stderr.strip().splitlines()[-5:]
        pytest.skip("cannot build a wheel here: " + " | ".join(said)[-400:])
    wheel = next((base / "wheel").glob("itermap-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(base / "site"), str(wheel)], check=True, capture_output=True)
    return base


def _no_build_backend():
    """Why the wheel cannot be built without build isolation here ("" if it can): the
    build backend [build-system] names must be installed (the [test] extra brings it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        have = version("setuptools")
    except PackageNotFoundError:
        return "setuptools is not installed; pip install '.[test]' brings setuptools>=77"
    if tuple(int(p) for p in have.split(".")[:1]) < (77,):
        return (f"setuptools {have} is too old to build the wheel (the license field needs "
                "setuptools>=77); pip install '.[test]' brings a new enough one")
    return ""


def _itermap(installed, *args, cwd):
    # the installed copy first on the path, and a working directory outside the source tree
    env = dict(os.environ, PYTHONPATH=str(installed / "site"), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "itermap.analysis.cli", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_installed_package_lists_and_runs_its_examples(installed, tmp_path):
    where = _itermap(installed, "report", "--list", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    names = [line.split()[0] for line in where.stdout.splitlines()[:-1]]
    assert names == ["chaos_scan", "dynamics", "example", "mlp_vs_rnn", "reservoirs",
                     "sparse_continuum", "trained_networks"]
    check = subprocess.run([sys.executable, "-c", "import itermap.analysis._report as r; "
                            "print(r.__file__)"], cwd=tmp_path, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(installed / "site")))
    assert check.stdout.startswith(str(installed / "site"))  # not the source tree
    done = _itermap(installed, "report", "chaos_scan", "--out", "chaos", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "chaos" / "results.json").read_text())
    assert doc["title"] == "Random tanh networks: the transition to chaos"
    assert (tmp_path / "chaos" / "report.html").read_text().count("<figure") == 4


def test_report_exit_code_two_names_the_key(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[networks.r]\nkind = "random_rnn"\nn = 1000000\n'
                    '[[analyses]]\nkind = "lyapunov"\nnetwork = "r"\n')
    done = subprocess.run([sys.executable, "-m", "itermap.analysis.cli", "report", str(spec),
                           "--out", str(tmp_path / "o"), "--force"], capture_output=True,
                          text=True, check=False, cwd=ROOT)
    assert done.returncode == 2
    assert "networks.r.n: the network needs about" in done.stderr
    assert not (tmp_path / "o").exists()


def test_report_schema_option_prints_the_published_schema(capsys):
    assert main(["report", "--schema"]) == 0
    assert capsys.readouterr().out == (ROOT / "data" / "spec.schema.json").read_text()


def test_report_interrupted_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    # Ctrl-C during a report: exit 130 (128 + SIGINT) and one line on stderr, not a traceback
    import itermap.analysis._report as report

    def interrupted(parser, args):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "report_command", interrupted)
    out = tmp_path / "r"
    assert main(["report", "--example", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err and str(out) in err
    assert not out.exists()
