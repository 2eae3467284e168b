"""The report's files: results.json (json's own formatting) and report.html (a Jinja2 template)."""

from __future__ import annotations

import base64
import json

import numpy as np

from itermap.files import jsonable  # the codec's plain form: one encoder of numbers

from ._spec import DATA

__all__ = ["jsonable", "dumps", "render"]

TEMPLATE = "report.html.j2"


def dumps(doc) -> str:
    """Sorted keys, one value per line: the same results give the same bytes."""
    return json.dumps(doc, indent=1, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


def _table(caption, columns, rows):
    return {"caption": caption, "columns": list(columns), "rows": [list(r) for r in rows]}


def activations_per_block(d) -> str:
    """``x: identity, h1: relu, ...``: each block's activation, named by block (one name
    for a network of one block)."""
    acts = d.get("activations") or []
    if len(acts) <= 1:
        return acts[0] if acts else "-"
    labels = d.get("block_labels") or [str(i) for i in range(len(acts))]
    return ", ".join(f"{b}: {a}" for b, a in zip(labels, acts))


def _input_summary(u):
    head = ", ".join(f"{v:.3g}" for v in u[:4]) + (", ..." if len(u) > 4 else "")
    return f"[{head}] (|u| = {float(np.linalg.norm(u)):.3g})"


def render(*, spec, spec_text, networks, sections, versions, blas, elapsed) -> str:
    """report.html: the template filled in (figures embedded as PNG, autoescaped)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(DATA), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    nets = _table("Networks", ["name", "type", "dim", "block sizes", "nnz", "density",
                               "gain", "input block", "|u|", "activations"],
                  [[n, d["type"], d["dim"], d["sizes"], d.get("nnz", "-"),
                    f"{d['density']:.3g}" if "density" in d else "-",
                    "-" if d.get("gain") is None else f"{d['gain']:.3g}",
                    "-" if d["input_block"] is None else d["input_block"],
                    "-" if d["input"] is None else f"{d['input_norm']:.3g}",
                    activations_per_block(d)]
                   for n, d in networks.items()])
    inputs = _table("The input of each driven network (held at every step)",
                    ["network", "size", "set", "u"],
                    [[n, len(d["input"]), d.get("input_source") or "-",
                      _input_summary(d["input"])]
                     for n, d in networks.items() if d["input"] is not None])
    shown = [{"number": sec["number"], "title": sec["title"], "error": sec["error"],
              "notes": sec["notes"], "tables": [_table(*t) for t in sec["tables"]],
              "figures": [{"number": f["number"], "caption": f["caption"], "pdf": f["pdf"],
                           "png": base64.b64encode(f["png_bytes"]).decode("ascii")}
                          for f in sec["figures"]]} for sec in sections]
    return env.get_template(TEMPLATE).render(
        title=spec.title, seed=spec.seed, elapsed=elapsed, versions=versions,
        failed=sum(s["error"] is not None for s in sections), networks=nets, inputs=inputs,
        sections=shown, spec_text=spec_text,
        versions_table=_table("Library versions", ["library", "version"],
                              sorted(versions.items())),
        blas_table=_table("BLAS (threadpoolctl)", ["library", "version", "threads",
                                                    "threading layer"],
                          [[b["library"], b["version"], b["threads"], b["threading_layer"]]
                           for b in blas] or [["-", "-", "-", "-"]]))
