"""The API pages as a reader meets them (round 22, issue 25).

A public constant is documented under the public module that re-exports it, where autodoc
finds no ``#:`` comment and shows the docstring of the value's type instead ("Built-in
immutable sequence." for ``itermap.analysis.STATUS``). docs/_autodoc_data.py gives each
its own comment from the module that defines it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path

import pytest
from test_docs import _public_modules

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _autodoc_data():
    pytest.importorskip("sphinx")
    spec = importlib.util.spec_from_file_location("_autodoc_data", DOCS / "_autodoc_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _builtin_constants():
    """``(qualified name, value)`` of every public constant whose value is a builtin."""
    for modname in _public_modules():
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            if name.startswith("_"):  # no page (docs/_templates/autosummary/module.rst)
                continue
            obj = getattr(mod, name)
            if not (inspect.ismodule(obj) or inspect.isclass(obj) or callable(obj)) \
                    and type(obj).__module__ == "builtins":
                yield f"{modname}.{name}", obj


def test_there_are_public_constants_to_check():
    names = {n for n, _ in _builtin_constants()}
    assert {"itermap.ACTIVATIONS", "itermap.analysis.STATUS", "itermap.backends.BACKENDS",
            "itermap.files.MAX_EXPANSION", "itermap.typing.RngLike"} <= names


@pytest.mark.parametrize("name, obj", list(_builtin_constants()),
                         ids=[n for n, _ in _builtin_constants()])
def test_a_public_constant_shows_its_own_comment_not_its_types_docstring(name, obj):
    data = _autodoc_data()
    type_doc = inspect.cleandoc(type(obj).__doc__).splitlines()
    lines = list(type_doc)  # what autodoc hands over where the page's module has no comment
    data.process_docstring(None, "data", name, obj, {}, lines)
    assert lines and lines != type_doc, name
    assert type_doc[0] not in lines, name
    assert lines == data.defining_comment(name.rsplit(".", 1)[1], obj)
    # the comment is where the constant is defined, written for a reader
    assert len(" ".join(lines)) > 20, lines


def test_a_constant_without_a_comment_shows_nothing_rather_than_its_types_docstring():
    data = _autodoc_data()
    lines = inspect.cleandoc(tuple.__doc__).splitlines()
    data.process_docstring(None, "data", "itermap.NO_SUCH_CONSTANT", ("a", "b"), {}, lines)
    assert lines == []
    mine = ["A comment of the page's own module."]
    data.process_docstring(None, "data", "itermap.NO_SUCH_CONSTANT", ("a", "b"), {}, mine)
    assert mine == ["A comment of the page's own module."]
    kept = ["A class docstring."]
    data.process_docstring(None, "function", "itermap.iterate", print, {}, kept)
    assert kept == ["A class docstring."]


def test_the_built_api_pages_show_no_builtin_types_docstring_and_no_build_path():
    from test_docs import _built

    build = _built()
    root = str(DOCS.parent)
    for page in (build / "api").glob("*.html"):
        html = page.read_text(encoding="utf-8")
        for type_doc in ("Built-in immutable sequence", "int([x]) -&gt; integer",
                         "str(object=", "dict() -&gt; new empty dictionary"):
            assert type_doc not in html, (page.name, type_doc)
        assert root not in html, page.name  # STYLE's value is a path on the building machine
    status = (build / "api" / "itermap.analysis.STATUS.html").read_text(encoding="utf-8")
    assert "What became of each start" in status


def test_the_gallery_index_offers_each_executed_notebook_for_download(tmp_path):
    # a notebook's own page has no download (only "Show Source", a .txt), so the index links it
    nbformat = pytest.importorskip("nbformat")
    spec = importlib.util.spec_from_file_location("_gallery", DOCS / "_gallery.py")
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    source = tmp_path / "notebooks" / "01_first.ipynb"
    source.parent.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A first look")])
    nbformat.write(nb, source)
    gallery.save_executed(nb, source, tmp_path / "gallery")  # current: nothing executes
    gallery.prepare(source.parent, tmp_path / "gallery")
    index = (tmp_path / "gallery" / "index.md").read_text(encoding="utf-8")
    assert "{doc}`01 · A first look <01_first>`" in index
    assert "{download}`notebook <01_first.ipynb>`" in index
    assert "from its page" not in index
