"""A spec: the top-level model, validation with messages that name the key, the JSON Schema,
and the example specs shipped in the package."""

from __future__ import annotations

import json
import operator
from functools import cache, reduce
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, create_model

from ._kinds import KINDS
from ._models import NETWORK_MODELS, TAGS, Name, Network, NonNegative, SpecError, SpecModel

__all__ = ["spec_model", "validate_spec", "load_spec", "spec_schema", "write_schema",
           "example_spec_path", "examples", "resolve_spec", "DATA"]

DATA = Path(__file__).resolve().parent.parent / "data"
_TOP = ("title", "seed", "networks", "analyses")


@cache
def _spec_model(kinds: tuple[str, ...]):
    models = tuple(KINDS[k].model for k in kinds)
    # the union of the kinds registered, built at run time (a type mypy cannot see)
    analysis = Annotated[reduce(operator.or_, models), Field(discriminator="kind")]  # type: ignore[valid-type]
    return create_model(
        "Spec", __base__=SpecModel, __doc__="An itermap report spec (TOML).",
        title=(str, "itermap report"),
        seed=(NonNegative, 0),
        networks=(Annotated[dict[Name, Network], Field(min_length=1)], ...),
        analyses=(Annotated[list[analysis], Field(min_length=1)], ...),  # type: ignore[valid-type, arg-type]
    )


def spec_model():
    """The pydantic model of a spec, over the kinds registered now."""
    return _spec_model(tuple(KINDS))


# -- messages that name the key ---------------------------------------------------------------
def _words(err) -> str:
    t, ctx, got = err["type"], err.get("ctx", {}), err.get("input")
    if t == "missing":
        return "missing (required)"
    if t in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {got!r}"
    if t in ("float_type", "float_parsing", "finite_number"):
        return f"expected a finite number, got {got!r}"
    if t in ("string_type",):
        return f"expected a string, got {got!r}"
    if t in ("bool_type",):
        return f"expected true or false, got {got!r}"
    if t in ("list_type",):
        return f"expected a list, got {got!r}"
    if t in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a table, got {got!r}"
    if t == "too_short":
        return f"expected at least {ctx.get('min_length')} entries, got {len(got)}"
    if t == "too_long":
        return f"expected at most {ctx.get('max_length')} entries, got {len(got)}"
    if t == "greater_than_equal":
        return f"must be >= {ctx['ge']}, got {got}"
    if t == "greater_than":
        return f"must be > {ctx['gt']}, got {got}"
    if t == "less_than_equal":
        return f"must be <= {ctx['le']}, got {got}"
    if t == "literal_error":
        return f"expected one of {ctx['expected']}, got {got!r}"
    if t == "string_pattern_mismatch":
        return ("a name must be an identifier (letters, digits and _, not starting with a "
                f"digit), got {got!r}")
    if t == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"]


def _where(raw, loc):
    """``networks.a.gian`` / ``analyses[0].steps`` from a pydantic location, with the
    union tags pydantic inserts (the kind after a network or analysis, TAGS) dropped."""
    parts = []
    for i, key in enumerate(loc):
        if key == "[key]" or key in TAGS:  # a failed dict key: the name itself is the place
            continue
        if i == 2 and loc[0] in ("networks", "analyses") and key == _kind_at(raw, loc):
            continue
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(parts).lstrip(".")


def _kind_at(raw, loc):
    try:
        return raw[loc[0]][loc[1]].get("kind")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def _allowed(raw, loc):
    """The keys allowed in the table at ``loc`` (for an unknown-key message)."""
    if len(loc) == 1:
        return _TOP
    if loc[0] == "networks" and len(loc) >= 3:
        model = NETWORK_MODELS.get(loc[2])
    elif loc[0] == "analyses" and len(loc) >= 3:
        model = KINDS[loc[2]].model if loc[2] in KINDS else None
        if len(loc) >= 5 and loc[3] == "gains":
            return ("num", "start", "stop")
    else:
        model = None
    return () if model is None else tuple(model.model_fields)


def _translate(exc: ValidationError, raw) -> SpecError:
    err = exc.errors(include_url=False)[0]
    loc, t = err["loc"], err["type"]
    where = _where(raw, loc)
    if t in ("union_tag_invalid", "union_tag_not_found"):
        tags = ", ".join(NETWORK_MODELS if loc[0] == "networks" else KINDS)
        got = err["ctx"].get("tag")
        what = "missing" if got is None else f"got {got!r}"
        return SpecError(f"{where}.kind: expected one of {tags}, {what}")
    if t == "extra_forbidden":
        allowed = ", ".join(sorted(k for k in _allowed(raw, loc) if k != "kind"))
        top = " top-level" if len(loc) == 1 else ""
        return SpecError(f"{where}: unknown{top} key (allowed: {allowed})")
    if where == "seed":
        return SpecError(f"seed: expected a non-negative integer, got {err.get('input')!r}")
    if not where:
        return SpecError(f"the spec must be a table, got {type(raw).__name__}")
    if t == "too_short" and where in ("networks", "analyses"):
        table = "[networks.NAME]" if where == "networks" else "[[analyses]]"
        return SpecError(f"{where}: missing or empty (add at least one {table} table)")
    return SpecError(f"{where}: {_words(err)}")


def validate_spec(spec, *, base=None):
    """Check a parsed spec and fill in the defaults; nothing is built or allocated.

    Parameters
    ----------
    spec : dict or Spec
        The parsed TOML (a validated spec passes unchanged).
    base : path, optional
        The folder relative ``path`` keys are resolved against.

    Returns
    -------
    Spec
        A pydantic model: ``title``, ``seed``, ``networks`` (name -> settings) and
        ``analyses`` (a list of each kind's settings, defaults filled in).

    Raises
    ------
    SpecError
        Naming the key (``networks.rnn.gain``, ``analyses[2].steps``) and what is wrong.

    Examples
    --------
    >>> spec = validate_spec({"networks": {"a": {"kind": "random_rnn", "n": 10}},
    ...                       "analyses": [{"kind": "lyapunov", "network": "a"}]})
    >>> spec.analyses[0].k
    8
    >>> validate_spec({"networks": {"a": {"kind": "random_rnn", "n": -1}}, "analyses": []})
    Traceback (most recent call last):
    ...
    itermap.analysis._report._models.SpecError: networks.a.n: must be >= 1, got -1
    """
    model = spec_model()
    if isinstance(spec, model):
        return spec
    if isinstance(spec, SpecModel):  # a spec of an older registry: revalidate its data
        spec = spec.model_dump(mode="python")
    try:
        out = model.model_validate(spec)
    except ValidationError as exc:
        raise _translate(exc, spec) from None
    for name, net in out.networks.items():
        net.check(f"networks.{name}")
    for i, cfg in enumerate(out.analyses):
        where = f"analyses[{i}]"
        key = "network" if hasattr(cfg, "network") else "networks"
        for name in cfg.network_names():
            if name not in out.networks:
                raise SpecError(f"{where}.{key}: no network named {name!r} (defined: "
                                f"{', '.join(out.networks)})")
            kind = out.networks[name].kind
            if cfg.needs is not None and kind not in cfg.needs:
                raise SpecError(f"{where}.{key}: {_need_words(cfg)}, {name!r} is {kind}")
        cfg.check(out, where)
    if base is not None:
        for net in out.networks.values():
            if getattr(net, "path", None) and not Path(net.path).is_absolute():
                net.path = str(Path(base) / net.path)
    return out


def _need_words(cfg):
    if cfg.kind == "equivalence":
        return "the equivalence check is for an mlp network"
    if cfg.kind in ("lyapunov_scan", "orbit_diagram"):
        return "a gain scan needs a random_rnn network"
    return f"{cfg.kind} needs a network of kind {' or '.join(cfg.needs)}"


def load_spec(path):
    """Read and validate a TOML spec; relative paths inside it are resolved against its folder.

    Parameters
    ----------
    path : path
        The ``.toml`` file.

    Returns
    -------
    Spec

    Raises
    ------
    SpecError
        A missing file, invalid TOML, or a spec :func:`validate_spec` refuses.

    Examples
    --------
    >>> spec = load_spec(examples()["chaos_scan"])
    >>> spec.analyses[0].kind, spec.analyses[0].seeds
    ('lyapunov_scan', 12)
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    path = Path(path)
    text = read_spec_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # arrays or tables nested deeper than Python's stack
        raise SpecError(f"{path}: not valid TOML: nested too deeply") from None
    return validate_spec(raw, base=path.parent)


# no spec comes near this; a bigger file is a mistake (or /dev/zero behind a link)
_MAX_SPEC_BYTES = 16 * 2 ** 20


def read_spec_text(path) -> str:
    """The text of the spec file ``path``: a regular file of at most 16 MiB, in UTF-8.

    A folder, a FIFO or a device is refused before it is opened (a FIFO would block,
    ``/dev/zero`` would never end).
    """
    from itermap._io import open_regular_file

    try:
        with open_regular_file(path, "spec") as fh:
            data = fh.read(_MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(f"spec file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"spec file {path}: {exc}") from None
    if len(data) > _MAX_SPEC_BYTES:
        raise SpecError(f"spec file {path} is larger than {_MAX_SPEC_BYTES} bytes; a spec is "
                        "a short TOML file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec file {path} is not UTF-8 text ({exc})") from None


# -- the schema ----------------------------------------------------------------------------------
def spec_schema() -> dict:
    """The JSON Schema of a spec (for editors that validate and complete TOML).

    ``data/spec.schema.json`` in the repository is this, written by :func:`write_schema`
    (``itermap report --schema > data/spec.schema.json``).

    Returns
    -------
    dict
        A JSON Schema (draft 2020-12).

    Examples
    --------
    >>> schema = spec_schema()
    >>> schema["required"], schema["properties"]["networks"]["additionalProperties"]
    (['networks', 'analyses'], False)
    """
    schema = spec_model().model_json_schema()
    schema["properties"]["networks"]["additionalProperties"] = False  # names: identifiers
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://github.com/itermap/itermap/data/spec.schema.json", **schema}


def schema_text() -> str:
    return json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path) -> None:
    """Write :func:`spec_schema` to ``path`` (as the repository's ``data/spec.schema.json``)."""
    Path(path).write_text(schema_text(), encoding="utf-8")


# -- the shipped examples ------------------------------------------------------------------------
def examples() -> dict[str, Path]:
    """``{name: path}`` of the example specs shipped in the package.

    Examples
    --------
    >>> list(examples())
    ['chaos_scan', 'dynamics', 'example', 'mlp_vs_rnn', 'sparse_continuum', 'trained_networks']
    """
    return {p.stem: p for p in sorted(DATA.glob("*.toml"))}


def example_spec_path() -> str:
    """Path of the embedded default spec (``itermap report --example``)."""
    return str(DATA / "example.toml")


def resolve_spec(name_or_path) -> Path:
    """A spec file, or the shipped example of that name (``chaos_scan``).

    Raises
    ------
    SpecError
        Neither a file nor an example's name.

    Examples
    --------
    >>> resolve_spec("mlp_vs_rnn").name
    'mlp_vs_rnn.toml'
    """
    p = Path(name_or_path)
    if p.exists() or p.suffix == ".toml" or len(p.parts) > 1:
        return p
    shipped = examples()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise SpecError(f"no spec file {name_or_path!r} and no example of that name (examples: "
                    f"{', '.join(shipped)}; itermap report --list)")

