"""The notebook gallery: each tutorial executed once, rendered with its figures.

The notebooks in notebooks/ are committed without outputs. tests/test_notebooks.py executes
every one (it must anyway, to check that none rots) and hands the executed copy to
:func:`save_executed`, which writes it to docs/gallery/ (git-ignored) stamped with the
SHA-256 of its source. The docs build calls :func:`prepare`: it executes only the notebooks
whose copy is missing or was made from another source, then writes the gallery's index
(a thumbnail of each notebook's first figure). myst-nb renders the copies with execution
off. So CI, which runs the tests before the docs, executes each notebook once.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

STAMP = "itermap_source_sha256"
TIMEOUT = 120  # seconds a cell may take, as in tests/test_notebooks.py


def source_hash(source: Path) -> str:
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()


def save_executed(nb, source: Path, gallery: Path) -> Path:
    """Write the executed notebook ``nb`` of ``source`` into ``gallery``, stamped."""
    import nbformat

    nb.metadata[STAMP] = source_hash(source)
    gallery.mkdir(parents=True, exist_ok=True)
    out = gallery / Path(source).name
    tmp = out.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, out)  # never a half-written notebook for the docs to render
    return out


def is_current(source: Path, gallery: Path) -> bool:
    import nbformat

    copy = gallery / Path(source).name
    if not copy.exists():
        return False
    return nbformat.read(copy, as_version=4).metadata.get(STAMP) == source_hash(source)


def execute(source: Path):
    """The notebook ``source`` executed in its own folder (it reads ../data)."""
    import nbclient
    import nbformat

    os.environ.setdefault("MPLBACKEND", "Agg")
    nb = nbformat.read(source, as_version=4)
    nbclient.NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(source).parent)}}
                            ).execute()
    return nb


def _title(nb, stem: str) -> str:
    """``NN · the notebook's first heading``, numbered by its file name (a heading's own
    number can lag behind a renumbering)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    title = re.sub(r"^\s*\d+\s*[.·:-]?\s*", "", line[2:]).strip()
                    return f"{stem[:2]} · {title}"
    return stem


def _first_png(nb) -> bytes | None:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                return base64.b64decode(png)
    return None


def prepare(notebooks: Path, gallery: Path) -> list[Path]:
    """Executed copies of every notebook in ``gallery`` and its index page."""
    import nbformat

    sources = sorted(Path(notebooks).glob("*.ipynb"))
    gallery.mkdir(parents=True, exist_ok=True)
    for source in sources:
        if not is_current(source, gallery):
            print(f"[itermap docs] executing {source.name} (no current copy from the tests)")
            save_executed(execute(source), source, gallery)
    thumbs = gallery / "_thumbs"
    thumbs.mkdir(exist_ok=True)
    rows = []
    for source in sources:
        nb = nbformat.read(gallery / source.name, as_version=4)
        png = _first_png(nb)
        image = ""
        if png is not None:
            (thumbs / f"{source.stem}.png").write_bytes(png)
            image = (f"```{{image}} _thumbs/{source.stem}.png\n:target: {source.stem}.html\n"
                     f":width: 220px\n:alt: {source.stem}\n```\n\n")
        rows.append(f"{image}{{doc}}`{_title(nb, source.stem)} <{source.stem}>` "
                    f"({{download}}`notebook <{source.name}>`)")
    cells = [rows[i:i + 3] + [""] * (3 - len(rows[i:i + 3])) for i in range(0, len(rows), 3)]
    lines = []
    for row in cells:
        for j, cell in enumerate(row):
            lines.append(("* - " if j == 0 else "  - ") + cell.replace("\n", "\n    "))
    table = "\n".join(lines)
    index = (
        "# Gallery\n\n"
        "The tutorial notebooks of `notebooks/`, executed by the test suite and rendered with "
        "their figures. Each \"notebook\" link downloads the executed copy; to run one, "
        "open it from `notebooks/` in a clone.\n\n"
        "````{list-table}\n:widths: 33 33 33\n:class: itermap-gallery\n\n"
        f"{table}\n````\n\n"
        "```{toctree}\n:hidden:\n:glob:\n\n[0-9]*\n```\n")
    (gallery / "index.md").write_text(index, encoding="utf-8")
    return sources
