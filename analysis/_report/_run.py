"""Running a spec: budget, networks, one section per analysis, files swapped in atomically."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydantic

import itermap
from itermap import files as _io

from .. import plots
from . import _budget
from ._html import dumps, jsonable, render
from ._models import SpecError
from ._networks import (
    build_network,
    describe,
    drive_input,
    input_source,
    network_gain,
    rng_for,
    sizes_of,
    static_sizes,
)
from ._registry import KINDS, Context, Section
from ._spec import (
    driven_message,
    example_spec_path,
    examples,
    load_spec,
    read_spec_text,
    resolve_spec,
    schema_text,
    tomllib,
    validate_spec,
)

__all__ = ["run_report", "report_command", "blas_info", "FORMAT", "FORMAT_VERSION"]

FORMAT = "itermap-report"
FORMAT_VERSION = 2


def blas_info() -> list[dict]:
    """The BLAS libraries loaded and their thread counts (threadpoolctl).

    Examples
    --------
    >>> all(isinstance(b["threads"], int) for b in blas_info())
    True
    """
    from threadpoolctl import threadpool_info

    found = [{"library": d.get("internal_api"), "version": d.get("version"),
              "threads": d.get("num_threads"), "threading_layer": d.get("threading_layer"),
              "architecture": d.get("architecture")}
             for d in threadpool_info() if d.get("user_api") == "blas"]
    # threadpoolctl's order follows string hashing (it varies with PYTHONHASHSEED): sorted,
    # so that one spec and seed give one results.json
    return sorted(found, key=lambda b: [str(b[k]) for k in sorted(b)])


#: networks up to this dimension run with one BLAS thread by default: their products are
#: too small to gain from threads, which spin on a busy machine
SMALL_DIM = 512


def _blas_limit(blas_threads, nets):
    """The threadpoolctl context for the run (a no-op when the library default is kept)."""
    from threadpoolctl import threadpool_limits

    if blas_threads == "auto":
        small = all(int(m.dim) <= SMALL_DIM for m in nets.values())
        blas_threads = 1 if small else None
    if blas_threads is None:
        return contextlib.nullcontext()
    if isinstance(blas_threads, bool) or not isinstance(blas_threads, int) or blas_threads < 1:
        raise ValueError(f"blas_threads must be a positive integer, 'auto' or None, got "
                         f"{blas_threads!r}")
    return threadpool_limits(limits=blas_threads, user_api="blas")


def _versions():
    import jinja2
    import matplotlib
    import networkx
    import scipy

    return {"itermap": itermap.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "matplotlib": matplotlib.__version__, "networkx": networkx.__version__,
            "pydantic": pydantic.__version__, "jinja2": jinja2.__version__,
            "python": platform.python_version()}


def _looks_like_report(path: Path) -> bool:
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    try:
        with _io.open_regular_file(path / "results.json", "out") as fh:  # never a FIFO's wait
            return json.loads(fh.read(2 ** 26).decode("utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError, RecursionError):  # not ours, however deep
        return False


def _not_the_reports(path: Path) -> list[str]:
    """What an earlier report folder holds that no report writes (a user's notes, a
    notebook): the swap would delete it. Figures are ``figures/figNN_*.pdf`` and ``.png``."""
    if not path.is_dir():
        return []
    extra = [p.name for p in path.iterdir()
             if p.name not in ("report.html", "results.json", "figures", ".DS_Store")]
    figures = path / "figures"
    if figures.is_dir() and not figures.is_symlink():
        extra += [f"figures/{p.name}" for p in figures.iterdir() if p.name != ".DS_Store"
                  and not (p.is_file() and re.fullmatch(r"fig\d+_.*\.(pdf|png)", p.name))]
    return sorted(extra)


def _check_replaceable(out: Path, inputs: list[Path]) -> None:
    """Refuse an ``out`` the report's swap would lose something in: a folder that is no
    report, one holding an input of this report, or files no report writes."""
    if not _looks_like_report(out):
        raise FileExistsError(f"{out} exists and is not an itermap report; refusing to "
                              "replace it (choose another --out)")
    for p in inputs:
        if p.resolve().is_relative_to(out.resolve()):  # the swap would delete it
            raise FileExistsError(f"{out} holds {p}, an input of this report; refusing to "
                                  "replace it (choose another --out)")
    if extra := _not_the_reports(out):
        raise FileExistsError(f"{out} is an itermap report, but it also holds {extra[:3]}"
                              f"{' ...' if len(extra) > 3 else ''}, which no report writes; "
                              f"refusing to replace it (move them, or choose another --out)")


def _link_target(out: Path) -> Path:
    """Where a symbolic link ``out`` points (the report is written there and the link kept,
    as ``cp`` and ``tar`` follow one); a dangling or looping link is refused, since the
    swap would replace the link itself with a folder."""
    if not out.is_symlink():
        return out
    try:
        return out.resolve(strict=True)
    except (OSError, RuntimeError):  # missing target, or a loop (RuntimeError before 3.13)
        raise ValueError(f"out (--out): {out} is a symbolic link to {os.readlink(out)}, which "
                         "does not exist or loops; create its target or choose another "
                         "--out") from None


def _spec_and_text(spec, spec_text):
    if isinstance(spec, (str, os.PathLike)):
        path = resolve_spec(spec)
        loaded = load_spec(path)
        return loaded, read_spec_text(path) if spec_text is None else spec_text
    spec = validate_spec(spec)
    if spec_text is None:
        spec_text = json.dumps(spec.model_dump(mode="json"), indent=1)
    return spec, spec_text


def _save_figures(res, folder, number, plt):
    """Write a section's figures as figNN_stem.pdf/.png; NN counts figures in order shown."""
    figs = []
    for stem, fig, caption in res.figures:
        number += 1
        name = f"fig{number:02d}_{stem}"
        # tight bounding boxes: labels outside the axes are never clipped
        fig.savefig(folder / f"{name}.pdf", metadata={"CreationDate": None},
                    bbox_inches="tight", pad_inches=0.03)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=200, bbox_inches="tight", pad_inches=0.03)
        (folder / f"{name}.png").write_bytes(buf.getvalue())
        plt.close(fig)
        figs.append({"number": number, "caption": caption, "pdf": f"figures/{name}.pdf",
                     "png_bytes": buf.getvalue()})
    return figs, number


def section_rngs(analyses, seed) -> list[np.random.Generator]:
    """Each section's Generator, keyed by what the section is, not where it stands.

    The key is the section's kind, its networks and how many sections of the same kind on
    the same networks come before it. Adding or removing a section leaves every other
    section's draws (and so its numbers) as they were, unless it is of the same kind on the
    same networks and ahead of it; two identical sections still draw apart; a section with
    more steps draws the same start and frame (its run continues the shorter one's).
    """
    seen: dict[tuple, int] = {}
    out = []
    for cfg in analyses:
        key = (cfg.kind, json.dumps(cfg.network_names()))
        out.append(rng_for(seed, "analysis", *key, seen.get(key, 0)))
        seen[key] = seen.get(key, 0) + 1
    return out


def _run_one(rng, cfg, ctx_args):
    """One analysis into a Section; an exception becomes the section's error."""
    import matplotlib.pyplot as plt

    res = Section()
    ctx = Context(rng=rng, **ctx_args)
    before = set(plt.get_fignums())
    error = None
    try:
        with np.errstate(all="ignore"), plots.paper_style(1):
            KINDS[cfg.kind].run(cfg, ctx, res)
    except Exception as exc:  # reported in its own section; the others still run
        error = {"type": type(exc).__name__, "message": str(exc)}
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
        res.figures = []
    return res, error


def run_report(spec, out, *, spec_text=None, seed=None, progress=None,
               time_limit=_budget.DEFAULT_TIME_LIMIT, force=False, blas_threads="auto") -> dict:
    """Run the analyses of a spec and write the report to ``out`` atomically.

    Parameters
    ----------
    spec : dict, Spec or path
        A TOML spec's path (or the name of a shipped example, ``chaos_scan``), or a
        spec as a dict (relative paths in it are relative to the working directory).
    out : path
        The report folder, built next to ``out`` under a temporary name and swapped
        in only when complete; an earlier report there is replaced then, anything
        else there is refused. A symbolic link to a folder is followed (the report
        replaces its target, the link stays); a dangling one is refused.
    spec_text : str, optional
        The spec's source text, shown in the HTML.
    seed : int, optional
        Overrides the spec's seed.
    progress : file, optional
        Where progress lines go (default ``sys.stderr``); ``False`` for silence.
    time_limit : float
        Seconds the estimated run time may reach (see ``force``).
    force : bool
        Run a spec whose time estimate is over ``time_limit``; the memory estimate is
        always enforced.
    blas_threads : int, "auto" or None
        BLAS threads while the analyses run (recorded in ``results.json``). "auto": one
        when every network has at most 512 units, the library's default otherwise;
        None: the library's default.

    Returns
    -------
    dict
        The content of ``results.json``. An analysis that failed has an ``error``
        entry in place of its numbers; the others are complete.

    Raises
    ------
    SpecError
        A malformed spec, or one over the memory or time budget (``BudgetError``),
        before anything runs.
    FileExistsError
        ``out`` holds something that is not an itermap report, or a report with files
        that no report writes (the user's own, which the swap would delete).
    ValueError
        ``out`` is a symbolic link whose target does not exist, or a bad ``time_limit``.
    OSError
        The report cannot be written (a full disk, a read-only folder): a
        ``ReportWriteError`` whose message names the folder; nothing is left behind.

    Examples
    --------
    >>> import tempfile
    >>> spec = {"networks": {"net": {"kind": "random_rnn", "n": 20, "gain": 0.5}},
    ...         "analyses": [{"kind": "lyapunov", "network": "net", "steps": 200, "k": 2}]}
    >>> doc = run_report(spec, tempfile.mkdtemp() + "/report", progress=False)
    >>> bool(doc["analyses"][0]["numbers"]["exponents"][0] < 0), doc["failed"]
    (True, [])
    """
    progress = sys.stderr if progress is None else progress
    if isinstance(time_limit, bool) or not isinstance(time_limit, int | float) or not (
            math.isfinite(time_limit) and time_limit > 0):
        # nan would turn the limit off silently: every comparison with it is False
        raise ValueError(f"time_limit must be a positive, finite number of seconds, got "
                         f"{time_limit!r}")
    given = [resolve_spec(spec)] if isinstance(spec, str | os.PathLike) else []
    spec, spec_text = _spec_and_text(spec, spec_text)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SpecError(f"seed: expected a non-negative integer, got {seed!r}")
        spec = spec.model_copy(update={"seed": seed})
    sizes = {name: s for name, net in spec.networks.items()
             if (s := static_sizes(name, net, f"networks.{name}")) is not None}
    costs = _budget.check_budget(spec, sizes, time_limit=time_limit, force=force)
    out = _link_target(Path(out).absolute())
    _check_replaceable(out, given + [Path(n.path) for n in spec.networks.values()
                                     if getattr(n, "path", None)])

    def say(msg):
        if progress:
            print(msg, file=progress, flush=True)

    import matplotlib.pyplot as plt

    t_start = time.perf_counter()
    with _writing(out):
        tmp = _building_folder(out)
    try:
        with _writing(out):
            (tmp / "figures").mkdir()
        nets, inputs, described = {}, {}, {}
        for name, net in spec.networks.items():
            nets[name] = build_network(name, net, spec.seed)
            inputs[name] = drive_input(name, nets[name], spec.seed, net.input)
            described[name] = {**describe(nets[name], inputs[name]),
                               "gain": network_gain(net),
                               "input_source": None if inputs[name] is None
                               else input_source(net.input, spec.seed)}
        _check_driven(spec, inputs)
        if any(c is None for c in costs):  # saved networks: sized now, before any analysis
            costs = _budget.check_budget(spec, {n: sizes_of(m) for n, m in nets.items()},
                                         time_limit=time_limit, force=force)
        with _blas_limit(blas_threads, nets):
            blas = blas_info()
            ctx_args = {"spec": spec, "nets": nets, "inputs": inputs, "seed": spec.seed}
            n = len(spec.analyses)
            sections, results, n_figs = [], [], 0
            rngs = section_rngs(spec.analyses, spec.seed)
            for i, cfg in enumerate(spec.analyses):
                title = cfg.title()
                # whole lines only: an analysis' progress bar writes between them
                say(f"[{i + 1}/{n}] {title} ...")
                t0, c0 = time.perf_counter(), time.process_time()
                res, error = _run_one(rngs[i], cfg, ctx_args)
                try:
                    with _writing(out):
                        figs, n_figs = _save_figures(res, tmp / "figures", n_figs, plt)
                except ReportWriteError:
                    say(" not written")  # end the progress line before the error's
                    raise
                sections.append({"number": i + 1, "title": title, "error": error,
                                 "tables": res.tables, "notes": res.notes, "figures": figs})
                entry = {"kind": cfg.kind, "settings": cfg.model_dump(mode="json"),
                         "numbers": res.numbers, "notes": res.notes,
                         "tables": [{"caption": c, "columns": cols, "rows": rows}
                                    for c, cols, rows in res.tables],
                         "figures": [f["pdf"] for f in figs]}
                if error is not None:
                    entry["error"] = error
                results.append(entry)
                took, cpu = time.perf_counter() - t0, time.process_time() - c0
                # the estimates are of CPU time (the wall time of an idle machine): both shown
                say(f"[{i + 1}/{n}] done in {took:.1f} s, {cpu:.2g} s of CPU (estimated "
                    f"{_budget.human_seconds(costs[i].seconds)})"
                    + ("" if error is None else f" FAILED: {error['type']}: {error['message']}"))
            versions = _versions()
            doc = jsonable({"format": FORMAT, "format_version": FORMAT_VERSION,
                            "title": spec.title, "seed": spec.seed,
                            "spec": spec.model_dump(mode="json"), "versions": versions,
                            "blas": blas, "networks": described, "analyses": results,
                            "failed": [i for i, s in enumerate(sections) if s["error"]]})
        html = render(spec=spec, spec_text=spec_text, networks=described, sections=sections,
                      versions=versions, blas=blas, elapsed=time.perf_counter() - t_start)
        with _writing(out):
            (tmp / "results.json").write_text(dumps(doc), encoding="utf-8")
            (tmp / "report.html").write_text(html, encoding="utf-8")
            _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"report written to {out / 'report.html'} ({time.perf_counter() - t_start:.1f} s)")
    return doc


class ReportWriteError(OSError):
    """The report could not be written (a full disk, a read-only folder); names the folder."""

    def __str__(self):
        return self.args[0]


@contextlib.contextmanager
def _writing(out: Path):
    """Turn an OSError while writing into a ReportWriteError naming the folder."""
    try:
        yield
    except ReportWriteError:
        raise
    except OSError as exc:
        err = ReportWriteError(f"cannot write the report {out} in the folder {out.parent}: "
                               f"{exc.strerror or exc}")
        err.errno = exc.errno
        raise err from exc


def _temp_prefix(out: Path, what: str) -> str:
    """``.NAME.what-HOST-PID-``: whose temporary folder this is, for :func:`remove_stale`."""
    return f".{out.name}.{what}-{_io.host_name()}-{os.getpid()}-"


def _building_folder(out: Path) -> Path:
    """A new temporary folder beside ``out``, after removing those killed runs left (an
    ``old`` one only when ``out`` exists: else it holds the only copy of the report)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _io.remove_stale(out.parent, f".{out.name}.building-", folders=True)
    if out.exists():
        _io.remove_stale(out.parent, f".{out.name}.old-", folders=True)
    return Path(tempfile.mkdtemp(prefix=_temp_prefix(out, "building"), dir=out.parent))


def _check_driven(spec, inputs):
    """Refuse an analysis that needs a driven network on a loaded one that is not (a saved
    network's input block is known only once loaded; the others are refused earlier)."""
    for i, cfg in enumerate(spec.analyses):
        if cfg.needs_input:
            for name in cfg.network_names():
                if inputs[name] is None:
                    raise SpecError(driven_message(cfg, i, name))


def _swap_in(tmp: Path, out: Path):
    """Replace ``out`` by the finished ``tmp`` with renames (never a half-written ``out``)."""
    for p in [tmp, *tmp.rglob("*")]:  # mkdtemp makes 0700: follow the umask like any folder
        _io.apply_umask(p)
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=_temp_prefix(out, "old"), dir=out.parent))
    os.rmdir(old)
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)  # put the earlier report back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _list_examples(stream):
    for name, path in examples().items():
        title = tomllib.loads(path.read_text(encoding="utf-8")).get("title", "")
        print(f"{name:<18} {title}", file=stream)
    print("run one with: itermap report NAME --out DIR", file=stream)


def report_command(parser, args) -> int:
    """The ``itermap report`` subcommand.

    Exit status 0: the report is written; 1: it is written but an analysis failed
    (its section says why), or it could not be written (a full disk, a read-only
    folder: one line names the folder); 2: the spec was refused (nothing ran).
    """
    import matplotlib

    matplotlib.use("Agg")
    if args.list:
        _list_examples(sys.stdout)
        return 0
    if args.schema:
        sys.stdout.write(schema_text())
        return 0
    if args.example == (args.spec is not None):
        parser.error("report: give a SPEC.toml, an example's name (--list) or --example")
    path = example_spec_path() if args.example else args.spec
    try:
        threads = None if args.blas_threads == "default" else args.blas_threads
        doc = run_report(path, args.out, seed=args.seed, force=args.force,
                         time_limit=args.time_limit, blas_threads=threads)
    except (SpecError, FileExistsError, ValueError) as exc:
        print(f"itermap report: error: {exc}", file=sys.stderr)
        return 2
    except ReportWriteError as exc:  # a full disk, a read-only folder: one line, no traceback
        print(f"itermap report: error: {exc}", file=sys.stderr)
        return 1
    if doc["failed"]:
        kinds = ", ".join(f"{i + 1} ({doc['analyses'][i]['kind']})" for i in doc["failed"])
        print(f"itermap report: analyses {kinds} failed; their sections say why, the others "
              "are complete", file=sys.stderr)
        return 1
    return 0
