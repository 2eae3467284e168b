"""The documentation site (issue 30 §1).

- Every page's Python blocks run as written, in order, in one fresh process per page (the
  blocks of a page build on each other, as a reader runs them).
- The API pages come from the public modules' ``__all__``: docs/conf.py lists every module
  tests/public_api.py checks.
- The built site (``python -m sphinx -W -b html docs docs/_build``, the step .ci/run runs
  after the tests) has a page for every public name, and each notebook's page shows its
  figures. Those checks skip, saying so, where the site was not built.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from public_api import MODULES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUILD = DOCS / "_build"
PAGES = sorted(p for p in DOCS.rglob("*.md") if not p.relative_to(DOCS).parts[0].startswith(
    ("_", "gallery", "api")) and p.name != "README.md")


def _python_blocks(page):
    text = page.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def _public_modules():
    tree = ast.parse((DOCS / "conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(getattr(t, "id", None) == "PUBLIC_MODULES" for t in targets):
                return ast.literal_eval(node.value)
    raise AssertionError("docs/conf.py has no PUBLIC_MODULES")


def test_every_guide_has_a_runnable_snippet():
    guides = sorted((DOCS / "guides").glob("*.md"))
    assert len(guides) >= 15
    for page in guides:
        assert _python_blocks(page), f"{page.name} has no Python block"


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_the_python_blocks_of_a_page_run_as_written(page, tmp_path):
    blocks = _python_blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no Python block")
    code = "\n".join(blocks)
    if re.search(r"^\s*import torch", code, re.M) and importlib.util.find_spec("torch") is None:
        pytest.skip(f"{page.name} needs torch (pip install '.[torch]')")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg",
           "ITERMAP_ROOT": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{page.relative_to(DOCS)}:\n{done.stderr[-3000:]}"


def test_the_api_pages_cover_every_public_module():
    listed = _public_modules()
    assert set(MODULES) <= set(listed)
    assert all(not part.startswith("_") for m in listed for part in m.split("."))
    api = (DOCS / "api.rst").read_text()
    for module in listed:
        assert re.search(rf"^   {re.escape(module)}$", api, re.M), module


def _public_names():
    for modname in _public_modules():
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if name.startswith("_") or (hasattr(obj, "__path__") or type(obj).__name__ ==
                                        "module"):
                continue
            yield f"{modname}.{name}"


def _built():
    if not (BUILD / "index.html").exists():
        pytest.skip("the site is not built: python -m sphinx -W -b html docs docs/_build "
                    "(.ci/run builds it after the tests, then runs this file again)")
    return BUILD


def test_the_built_site_has_a_page_for_every_public_name():
    build = _built()
    missing = [n for n in _public_names() if not (build / "api" / f"{n}.html").exists()]
    assert not missing, f"no API page for {missing}"
    # no page and no documented object under a private path (they move between rounds)
    assert not [p.name for p in (build / "api").glob("*.html") if "._" in p.stem]
    for page in (build / "api").glob("*.html"):
        ids = re.findall(r'<dt class="sig[^"]*" id="([^"]+)"', page.read_text(encoding="utf-8"))
        assert not [i for i in ids if "._" in i], page.name


def test_the_built_site_shows_every_notebooks_figures():
    build = _built()
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    nbformat = pytest.importorskip("nbformat")
    for source in notebooks:
        page = build / "gallery" / f"{source.stem}.html"
        assert page.exists(), f"no page for {source.name}"
        html = page.read_text(encoding="utf-8")
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
        executed = nbformat.read(DOCS / "gallery" / source.name, as_version=4)
        figures = sum("image/png" in o.get("data", {}) for c in executed.cells
                      for o in c.get("outputs", []))
        assert figures and len(images) >= figures, (source.name, len(images), figures)
        for src in images:
            assert (page.parent / src).resolve().is_file(), (source.name, src)
    gallery = (build / "gallery" / "index.html").read_text(encoding="utf-8")
    assert all(f"{p.stem}.html" in gallery for p in notebooks)
