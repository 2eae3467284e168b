"""Sphinx configuration of itermap's documentation site (see docs/README.md for the design).

Build: ``python -m sphinx -W -b html docs docs/_build`` (warnings are errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))      # the checkout's itermap, as the tests import it
sys.path.insert(0, str(DOCS))

import _autodoc_data  # noqa: E402  (docs/_autodoc_data.py, next to this file)
import _gallery  # noqa: E402  (docs/_gallery.py, next to this file)
import _intersphinx  # noqa: E402

import itermap  # noqa: E402

project = "itermap"
author = "the itermap developers"
copyright = "2026, the itermap developers"  # noqa: A001
version = release = itermap.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "sphinx_copybutton",
]

exclude_patterns = ["_build", "README.md", "**.ipynb_checkpoints", "jupyter_execute"]
templates_path = ["_templates"]
html_static_path: list[str] = []

# ---- API: one page per public name, from the public modules' __all__ only --------------
# Private paths never appear: other branches move private modules into folders freely.
PUBLIC_MODULES = [
    "itermap",
    "itermap.analysis",
    "itermap.analysis.plots",
    "itermap.systems",
    "itermap.datasets",
    "itermap.files",
    "itermap.backends",
    "itermap.block_functions",
    "itermap.typing",
    "itermap.checks",
    "itermap.linalg",
    "itermap.threads",
    "itermap.progress",
]
autosummary_generate = True
autosummary_ignore_module_all = False   # a module's members are its __all__
autosummary_imported_members = True
autosummary_context = {
    "submodules": [m.rsplit(".", 1)[1] for m in PUBLIC_MODULES[1:]],
    # constants whose value is a path on the building machine: the page shows no value
    "hide_value": ["itermap.analysis.plots.STYLE"],
}
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"              # numpydoc's Parameters section says the types
numpydoc_show_class_members = False     # the class template lists the methods itself
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()   # tests/test_docstrings.py checks sections
add_module_names = False

# ---- intersphinx: offline-safe (docs/_intersphinx.py) ----------------------------------
# CI reaches only PyPI: there, projects without a cached inventory are left out and their
# names render as plain text; a build with the network links them.
intersphinx_mapping = _intersphinx.mapping({
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "networkx": "https://networkx.org/documentation/stable/",
    "matplotlib": "https://matplotlib.org/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
    "pandas": "https://pandas.pydata.org/docs/",
    "xarray": "https://docs.xarray.dev/en/stable/",
}, DOCS / "_inventories")
intersphinx_timeout = 3
# named in docstrings, with no Sphinx inventory to link to: a nitpicky build (-n) skips them
nitpick_ignore = [("py:mod", "cloudpickle"), ("py:mod", "loky"), ("py:mod", "tqdm")]

# ---- notebooks: executed once, by the tests or here ------------------------------------
# tests/test_notebooks.py writes each notebook it executes to docs/gallery/ (git-ignored)
# with the hash of its source; _gallery executes here only those missing or stale, and
# myst-nb renders them with execution off.
_gallery.prepare(ROOT / "notebooks", DOCS / "gallery")
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]

# ---- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"itermap {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True


def setup(app):
    # a re-exported constant's page shows its own #: comment, not its type's docstring
    app.connect("autodoc-process-docstring", _autodoc_data.process_docstring)
