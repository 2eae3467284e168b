"""intersphinx that never fails a ``-W`` build for want of the internet.

Each project's ``objects.inv`` is fetched once into a cache folder (docs/_inventories/,
git-ignored) and read from there. A project whose inventory cannot be fetched and is not
cached is left out of the mapping: its names render as plain text, where Sphinx would
otherwise warn "failed to reach any of the inventories" and ``-W`` make that an error.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path


def _download(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def mapping(projects: dict[str, str], cache: Path, *, timeout: float = 3.0,
            fetch: Callable[[str, float], bytes] = _download) -> dict[str, tuple[str, str]]:
    """``intersphinx_mapping`` of the ``{name: base url}`` whose inventory is at hand."""
    out = {}
    for name, url in projects.items():
        inv = Path(cache) / f"{name}.inv"
        if not inv.exists():
            try:
                data = fetch(url + "objects.inv", timeout)
            except OSError:
                continue
            if not data.startswith(b"# Sphinx inventory version"):
                continue  # a captive portal's page, say: not an inventory
            inv.parent.mkdir(parents=True, exist_ok=True)
            inv.write_bytes(data)
        out[name] = (url, str(inv))
    return out
