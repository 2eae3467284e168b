"""Scripted analysis reports: ``itermap report SPEC.toml --out DIR``.

A spec (TOML) names the networks and the analyses to run with their settings;
:func:`run_report` checks it, estimates its memory and time, runs it and writes,
atomically,

- ``DIR/report.html``: self-contained (figures embedded as PNG), the numbers in tables;
- ``DIR/figures/figNN_*.pdf`` and ``.png``, numbered in the order the report shows them;
- ``DIR/results.json``: every number, the spec with its defaults, the seed, each driven
  network's input, the library versions and the BLAS threads. The same spec and seed
  give an identical file (no timestamps, no timings in it). Each analysis draws from its
  own stream, keyed by its kind, its networks and how many such analyses come before it,
  not by its place in the list: adding or removing an analysis leaves the others' numbers
  as they were.

Spec layout (the JSON Schema is ``data/spec.schema.json``; ``itermap report --schema``)::

    title = "..."            # optional
    seed = 0                 # optional, default 0

    [networks.NAME]          # one table per network; NAME is an identifier (none where
                             # every analysis builds its own models: sequence_models, ...)
    kind = "mlp"             # widths = [...] (random weights) or path = "w.npz"
    kind = "random_rnn"      # n, gain, density, activation, inputs (0: autonomous)
    kind = "pattern"         # sizes, pattern (BlockMatrix.from_pattern tokens), scale, ...
    kind = "saved"           # path = "map.npz" (itermap.save)
    input = 0.5              # a driven network's held input: a number per unit, a list,
                             # or { scale = 1.0, seed = 0 } (the default: drawn, shared)

    [[analyses]]             # run in order; at least one
    kind = "lyapunov"        # any name in KINDS
    network = "NAME"         # (impulse_response: networks = ["A", "B"])
    ...                      # the kind's settings (its model's fields)

Relative paths are relative to the spec file. Examples ship in the package:
``itermap report --list``, ``itermap report chaos_scan --out DIR``.

Layout
------
``_models``   the value types, the network models, :class:`AnalysisModel` and ``Cost``;
``_registry`` the registry ``KINDS``, :func:`report_kind` and what a kind gets (``Context``,
              ``Section``);
``_kinds``    the report kinds (settings model + function), one ``_kinds_<topic>`` module
              per further topic, each registering its kinds on import;
``_spec``     the top-level model, messages that name the key, the schema, the examples;
``_networks`` building the networks and drawing each driven network's one input;
``_budget``   memory and time estimates, checked before anything runs;
``_starts``   starts on maps whose basin is bounded (escaping trajectories drawn again);
``_html``     results.json and the Jinja2 template ``data/report.html.j2``;
``_run``      :func:`run_report` and the ``itermap report`` command.

Adding a report kind
--------------------
A kind is one model, one function and the decorator that registers them, in
``_kinds.py`` or a ``_kinds_<topic>.py`` (a new module goes in this package's list of
kind modules, which it imports; kind modules never import each other)::

    class MemoryCapacityKind(AnalysisModel):
        \"\"\"Memory capacity per delay (shown in the kind list and the schema).\"\"\"
        kind: Literal["memory_capacity"]
        network: Name                       # or networks: list[Name]
        max_delay: Count = 20
        needs = None                        # or ("random_rnn",): network kinds it takes

        def cost(self, sizes):              # sizes[name]: dim, nnz, driven (nothing built)
            s = sizes[self.network]
            return Cost(bytes=..., seconds=..., memory_key="max_delay")

        def check(self, spec, where):       # optional cross-checks; raise SpecError
            ...

    @report_kind(MemoryCapacityKind)
    def memory_capacity(cfg, ctx, out):
        m, u = ctx.nets[cfg.network], ctx.inputs[cfg.network]   # the one input (or None)
        ...                                 # compute with ctx.rng (the section's own stream)
        out.numbers.update(total=...)       # -> results.json
        out.table("caption", ["col", ...], rows)
        out.note("a paragraph the reader needs")
        out.figure("memory_capacity_" + cfg.network, fig, "caption")

Then regenerate the schema (``itermap report --schema > data/spec.schema.json``;
a test compares them) and add the kind to a spec in ``data/`` if it tells a story.
The function may raise: the report shows the error in that kind's section and
writes the others. Settings are validated strictly (no unknown keys, counts are
integers, ``>= 1`` where declared) and the messages name the key.
"""

# every kind module registers its kinds on import, in the order the kinds are listed
from . import (  # noqa: F401
    _kinds,
    _kinds_dynamics,
    _kinds_reservoir,
    _kinds_sequence,
    _kinds_training,
    _kinds_transformer,
    _kinds_zoo,
)
from ._budget import DEFAULT_TIME_LIMIT, BudgetError, check_budget, memory_limit
from ._html import dumps, jsonable
from ._models import NETWORK_MODELS, AnalysisModel, Cost, SpecError
from ._networks import build_network, drive_input, rng_for
from ._registry import KINDS, Context, ReportKind, Section, report_kind
from ._run import FORMAT, blas_info, report_command, run_report
from ._spec import (
    DATA,
    example_spec_path,
    examples,
    load_spec,
    resolve_spec,
    schema_text,
    spec_model,
    spec_schema,
    validate_spec,
    write_schema,
)

__all__ = ["SpecError", "BudgetError", "load_spec", "validate_spec", "run_report",
           "example_spec_path", "examples", "resolve_spec", "spec_model", "spec_schema",
           "schema_text", "write_schema", "report_command", "blas_info", "KINDS",
           "ReportKind", "report_kind", "AnalysisModel", "Context", "Section", "Cost",
           "NETWORK_MODELS", "check_budget", "memory_limit", "DEFAULT_TIME_LIMIT",
           "build_network", "drive_input", "rng_for", "dumps", "jsonable", "DATA", "FORMAT"]
