"""Layout: the import name is ``itermap.analysis`` (nothing installs a top-level
``analysis``), and no function runs over 100 lines of code without a written reason."""

from __future__ import annotations

import ast
import re
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


# -- function length ------------------------------------------------------------------------
MAX_LINES = 100  # of code: the docstring (Parameters, Examples, ...) does not count

# Long today, being split on their own branches; remove an entry when its branch lands
# (the test below fails on an entry that is no longer long, to say so).
LONG_ALLOWED: set[str] = set()  # every long function says why in its body


def _code_lines(node, lines):
    """Lines of a function without its docstring, and whether it says ``# long: <reason>``."""
    first = node.lineno
    body = node.body
    doc = (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
           and isinstance(body[0].value.value, str))
    n = node.end_lineno - first + 1
    if doc:
        n -= body[0].end_lineno - body[0].lineno + 1
    text = lines[first - 1:node.end_lineno]
    reason = any(re.search(r"#\s*long:\s*\S", line) for line in text)
    return n, reason


def _long_functions():
    out = {}
    for folder in ("itermap", "analysis"):
        for path in sorted((ROOT / folder).rglob("*.py")):  # subpackages too
            if path.relative_to(ROOT / folder).parts[0] == "analysis":
                continue  # itermap/analysis: the link to ../analysis
            source = path.read_text()
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    n, reason = _code_lines(node, lines)
                    if n > MAX_LINES and not reason:
                        out[f"{path.relative_to(ROOT).as_posix()}::{node.name}"] = n
    return out


def test_no_function_is_over_100_lines_without_a_reason():
    long = _long_functions()
    unexplained = {k: v for k, v in long.items() if k not in LONG_ALLOWED}
    assert not unexplained, (
        f"functions over {MAX_LINES} lines of code: {unexplained}; split them, or write "
        "the reason in the body as a comment '# long: <reason>'")
    stale = sorted(LONG_ALLOWED - set(long))
    assert not stale, f"no longer long (or gone): remove from LONG_ALLOWED: {stale}"


def test_the_length_check_sees_a_long_function_and_its_reason(tmp_path):
    body = "\n".join(f"    a{i} = {i}" for i in range(MAX_LINES + 1))
    node = ast.parse(f'def f():\n    """Doc.\n\n    More.\n    """\n{body}\n').body[0]
    n, reason = _code_lines(node, [""] * 200)
    assert n == MAX_LINES + 2 and not reason  # the def line and the body, not the docstring
    src = f"def f():\n    # long: one table, read top to bottom\n{body}\n"
    n, reason = _code_lines(ast.parse(src).body[0], src.splitlines())
    assert reason
