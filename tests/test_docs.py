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
import importlib.util
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


def _python_blocks(page):
    text = page.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


# the pages written by hand (not the generated API pages and gallery) that hold Python
PAGES = sorted(p for p in DOCS.rglob("*.md") if not p.relative_to(DOCS).parts[0].startswith(
    ("_", "gallery", "api", "jupyter_execute")) and p.name != "README.md" and _python_blocks(p))


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
    assert len(guides) >= 15 and len(PAGES) >= 18
    for page in guides:
        assert _python_blocks(page), f"{page.name} has no Python block"


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_the_python_blocks_of_a_page_run_as_written(page, tmp_path):
    code = "\n".join(_python_blocks(page))
    if re.search(r"^\s*import torch", code, re.M) and importlib.util.find_spec("torch") is None:
        pytest.skip(f"{page.name} needs torch (pip install '.[torch]')")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
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


def _docs_module(name):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_intersphinx_leaves_out_what_it_cannot_reach_and_keeps_what_it_has(tmp_path):
    inter = _docs_module("_intersphinx")
    projects = {"numpy": "https://numpy.org/doc/stable/", "scipy": "https://scipy/"}
    calls = []

    def offline(url, timeout):
        calls.append((url, timeout))
        raise OSError("no route to host")

    assert inter.mapping(projects, tmp_path, fetch=offline) == {}  # no warning to fail -W
    assert calls[0] == ("https://numpy.org/doc/stable/objects.inv", 3.0)
    inventory = b"# Sphinx inventory version 2\n# Project: numpy\n"
    got = inter.mapping(projects, tmp_path, fetch=lambda url, t: inventory if "numpy" in url
                        else b"<html>a portal</html>")
    assert got == {"numpy": (projects["numpy"], str(tmp_path / "numpy.inv"))}
    assert (tmp_path / "numpy.inv").read_bytes() == inventory
    assert not (tmp_path / "scipy.inv").exists()
    calls.clear()  # cached now: read without the network
    assert inter.mapping(projects, tmp_path, fetch=offline)["numpy"][1].endswith("numpy.inv")
    assert [u for u, _ in calls] == ["https://scipy/objects.inv"]


def test_a_notebook_copy_is_reused_only_while_its_source_is_unchanged(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    gallery = _docs_module("_gallery")
    source = tmp_path / "01_x.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(nb, source)
    assert not gallery.is_current(source, tmp_path / "g")
    gallery.save_executed(nb, source, tmp_path / "g")
    assert gallery.is_current(source, tmp_path / "g")
    nb.cells.append(nbformat.v4.new_code_cell("2 + 2"))
    nbformat.write(nb, source)  # the notebook was edited: its copy is stale
    assert not gallery.is_current(source, tmp_path / "g")


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
