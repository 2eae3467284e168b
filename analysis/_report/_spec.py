"""A spec: the top-level model, validation with messages that name the key, the JSON Schema,
and the example specs shipped in the package."""

from __future__ import annotations

import difflib
import json
import operator
import re
import sys
from functools import cache, reduce
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, create_model

from itermap.files import open_regular_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ._models import (
    _HOW_DRIVEN,
    NETWORK_MODELS,
    TAGS,
    InputDraw,
    Name,
    Network,
    NonNegative,
    SpecError,
    SpecModel,
)
from ._registry import KINDS

__all__ = ["spec_model", "validate_spec", "load_spec", "key_line", "spec_schema", "write_schema",
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
        # kinds that build their own models (sequence_models, transformer, zoo, train)
        # need no [networks] table
        networks=(dict[Name, Network], {}),
        analyses=(Annotated[list[analysis], Field(min_length=1)], ...),  # type: ignore[valid-type, arg-type]
    )


def spec_model():
    """The pydantic model of a spec, over the kinds registered now."""
    return _spec_model(tuple(KINDS))


# -- messages that name the key ---------------------------------------------------------------
_EXPECTED = {"int_type": "an integer", "int_parsing": "an integer", "int_from_float":
             "an integer", "float_type": "a finite number", "float_parsing": "a finite number",
             "finite_number": "a finite number", "string_type": "a string", "bool_type":
             "true or false", "list_type": "a list", "dict_type": "a table", "model_type":
             "a table", "model_attributes_type": "a table"}
_BOUNDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
           "less_than_equal": ("<=", "le")}


def _words(err) -> str:
    t, ctx, got = err["type"], err.get("ctx", {}), err.get("input")
    if t == "missing":
        return "missing (required)"
    if t in _EXPECTED:
        return f"expected {_EXPECTED[t]}, got {got!r}"
    if t in ("too_short", "too_long"):
        most, key = ("least", "min_length") if t == "too_short" else ("most", "max_length")
        return f"expected at {most} {ctx.get(key)} entries, got {len(got)}"
    if t in _BOUNDS:
        return f"must be {_BOUNDS[t][0]} {ctx[_BOUNDS[t][1]]}, got {got}"
    if t == "literal_error":
        return f"expected one of {ctx['expected']}, got {got!r}"
    if t == "string_pattern_mismatch":
        return ("a name must be an identifier (letters, digits and _, not starting with a "
                f"digit), got {got!r}")
    return str(ctx.get("error", err["msg"])) if t == "value_error" else err["msg"]


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


def _suggest(word, choices) -> str:
    """`` did you mean 'gain'?`` for the closest of ``choices`` (difflib), or nothing."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" did you mean {close[0]!r}?" if close else ""


def _allowed(loc):
    """The keys allowed in the table at ``loc`` (for an unknown-key message)."""
    if len(loc) == 1:
        return _TOP
    if loc[0] == "networks" and len(loc) >= 5 and loc[3] == "input":
        return tuple(InputDraw.model_fields)
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
    errors = exc.errors(include_url=False)
    # a misspelt key is also a missing one: name the misspelling, with its suggestion
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc, t = err["loc"], err["type"]
    where = _where(raw, loc)
    if t in ("union_tag_invalid", "union_tag_not_found"):
        names = NETWORK_MODELS if loc[0] == "networks" else KINDS
        got = err["ctx"].get("tag")
        what = "missing" if got is None else f"got {got!r};" + _suggest(got, names)
        return SpecError(f"{where}.kind: expected one of {', '.join(names)}, {what}".rstrip(";"))
    if t == "extra_forbidden":
        keys = sorted(k for k in _allowed(loc) if k != "kind")
        top = " top-level" if len(loc) == 1 else ""
        hint = _suggest(loc[-1], keys)
        return SpecError(f"{where}: unknown{top} key{',' if hint else ''}{hint} (allowed: "
                         f"{', '.join(keys)})")
    if t == "literal_error":
        got = err.get("input")
        options = [o.strip(" '\"") for o in str(err["ctx"]["expected"]).replace(" or ", ", ")
                   .split(",")]
        return SpecError(f"{where}: {_words(err)};{_suggest(got, options)}".rstrip(";"))
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
                hint = _suggest(name, out.networks)
                defined = (f"defined: {', '.join(out.networks)}" if out.networks
                           else "the spec has no [networks.NAME] table")
                raise SpecError(f"{where}.{key}: no network named {name!r}"
                                f"{';' + hint if hint else ''} ({defined})")
            kind = out.networks[name].kind
            if cfg.needs is not None and kind not in cfg.needs:
                raise SpecError(f"{where}.{key}: {_need_words(cfg)}, {name!r} is {kind}")
            if cfg.needs_input and out.networks[name].static_input_size() == 0:
                raise SpecError(driven_message(cfg, i, name, kind))
        cfg.check(out, where)
    if base is not None:
        for net in out.networks.values():
            if getattr(net, "path", None) and not Path(net.path).is_absolute():
                net.path = str(Path(base) / net.path)
    return out


def driven_message(cfg, i, name, net_kind=None):
    """The refusal of an analysis that needs a driven network, on one that is not."""
    key = "network" if hasattr(cfg, "network") else "networks"
    how = {"random_rnn": f"add inputs = 1 to [networks.{name}]",
           "pattern": f"give [networks.{name}] an input_block (input_block = 0)"}.get(
        net_kind, f"make it driven ({_HOW_DRIVEN})")
    return (f"analyses[{i}].{key}: {cfg.kind} needs a driven network (one with an input "
            f"block), and {name!r} is not driven: {how}")


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
    path = Path(path)
    text = read_spec_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise SpecError(f"{path}{':' + at.group(1) if at else ''}: not valid TOML: "
                        f"{exc}") from None
    except RecursionError:  # arrays or tables nested deeper than Python's stack
        raise SpecError(f"{path}: not valid TOML: nested too deeply") from None
    except ValueError as exc:  # an int of over 4300 digits
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    try:
        return validate_spec(raw, base=path.parent)
    except SpecError as exc:
        line = key_line(text, str(exc))
        if line is None:
            raise
        raise type(exc)(f"{path}:{line}: {exc}") from None


_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_\-.\s]+?)\s*\]\]?\s*(#.*)?$")
_WHERE = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\])?(?:\.[A-Za-z_]\w*(?:\[\d+\])?)*):")


def _path_of(where):
    """``analyses[2].gains.start`` -> ``("analyses", 2, "gains", "start")``."""
    parts = []
    for word in where.split("."):
        name, _, rest = word.partition("[")
        parts.append(name)
        if rest:
            parts.append(int(rest.rstrip("]")))
    return tuple(parts)


def key_line(text, message):
    r"""The line (from 1) of the TOML ``text`` where the key a ``message`` starts with is
    written, or of the table that holds it (a missing key); None where no line says (tomllib
    keeps no positions: headers and ``key = ...`` lines are traced line by line).

    Examples
    --------
    >>> key_line('[networks.a]\nkind = "random_rnn"\ngian = 2\n', "networks.a.gian: ...")
    3
    """
    m = _WHERE.match(message)
    if m is None:
        return None
    target = _path_of(m.group(1))
    table: tuple = ()
    counts: dict = {}
    best, best_len = None, 0
    for number, line in enumerate(text.splitlines(), 1):
        h = _HEADER.match(line)
        if h:
            names = tuple(w.strip() for w in h.group(2).split("."))
            if h.group(1) == "[[":
                counts[names] = counts.get(names, -1) + 1
                table = names + (counts[names],)
            else:
                table = names
            path = table
        else:
            k = _KEY.match(line)
            if k is None:
                continue
            path = table + tuple(w.strip() for w in k.group(1).split("."))
        if len(path) > best_len and target[:len(path)] == path:
            best, best_len = number, len(path)
    return best


# no spec comes near this; a bigger file is a mistake (or /dev/zero behind a link)
_MAX_SPEC_BYTES = 16 * 2 ** 20


def read_spec_text(path) -> str:
    """The text of the spec file ``path``: a regular file (a FIFO would block) of at most
    16 MiB, in UTF-8."""
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
    """The JSON Schema of a spec (for editors), ``data/spec.schema.json`` in the repository.

    Returns
    -------
    dict
        A JSON Schema (draft 2020-12).

    Examples
    --------
    >>> schema = spec_schema()
    >>> schema["required"], schema["properties"]["networks"]["additionalProperties"]
    (['analyses'], False)
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
    ['chaos_scan', 'dynamics', 'example', 'mlp_vs_rnn', 'reservoirs', 'sparse_continuum',
     'trained_networks']
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

