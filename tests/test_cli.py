import subprocess
import sys

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
