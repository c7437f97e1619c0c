"""Reading worlds from YAML or JSON files, with one-line errors that name the field."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from circinus.errors import SpecError
from circinus.forks import beside, forking
from circinus.spec.events import ExplicitTag, ShapeError, build_yaml
from circinus.spec.index import WorldIndex
from circinus.spec.models import Query, World
from circinus.spec.validate import build_index

_Model = TypeVar("_Model", bound=BaseModel)


def load_world(path: str | Path) -> World:
    """Read, validate and cross-check the world in ``path`` (``.yaml``, ``.yml`` or ``.json``).

    Raises:
        SpecError: with the path of the first offending field and the way out.
    """
    world, _ = load_indexed_world(path)
    return world


def load_indexed_world(path: str | Path, *, workers: int = 1) -> tuple[World, WorldIndex]:
    """Like :func:`load_world`, also returning the :class:`WorldIndex` built while checking.

    A YAML world's queries are validated one by one as they are read, so that each query's
    plain data lives only until its model is made (:mod:`circinus.spec.events`); a query that
    fails is kept as data, for the world's validation to report with every other error. With
    ``workers`` above 1 a large YAML world is read in two halves, one on a forked copy
    (:func:`read_document`).
    """
    data = read_document(path, each_query=_query_model, workers=workers)
    world = parse_world(data, origin=str(path))
    return world, build_index(world, validated=True)  # (its queries too: _query_model)


def _query_model(data: Any) -> Any:
    """``data`` validated as a :class:`Query`, or as it is if it is not one."""
    if not isinstance(data, dict):
        return data
    try:
        return Query.model_validate(data)
    except ValidationError:
        return data


MAX_FILE_BYTES = 384 * 1024 * 1024
"""Largest world or plan file read, in bytes (``circinus gen``'s 1,000,000 queries, its
largest world, take 186 MB as YAML)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists a document may have (a world needs about 8)."""
MAX_NODES = 120_000_000
"""Most values (scalars, mappings, lists) a document may expand to, each YAML alias counted as
the whole value it repeats: a few aliases that repeat each other (a "billion laughs") would
otherwise expand to more values than memory holds. ``circinus gen``'s 1,000,000 queries count
94.4 million (a collection's values count again in each collection around it)."""


def read_document(path: str | Path, *, each_query: Callable[[Any], Any] | None = None,
                  workers: int = 1) -> Any:
    """Parse a YAML or JSON file into plain Python data.

    A ``.json`` suffix selects JSON, anything else YAML. A key repeated within one mapping is an
    error (YAML and JSON loaders otherwise keep the last value and silently drop the first). The
    work is bounded: a file above :data:`MAX_FILE_BYTES`, nested deeper than :data:`MAX_DEPTH`
    or expanding to more than :data:`MAX_NODES` values is refused before it is built. YAML is
    built from the parser's events in one pass (:mod:`circinus.spec.events`); ``each_query``,
    if given, rebuilds each item of a YAML document's top-level ``queries`` list as soon as it
    is read. With ``workers`` above 1, a YAML document of :data:`SPLIT_FROM_BYTES` or more
    whose queries are a plain list is read in two parts at once where this process can fork
    onto a second core (:func:`_in_two`); the data is the same.

    Raises:
        SpecError: ``file: what is wrong`` or ``file:line:column: invalid YAML|JSON: problem``.
    """
    p = Path(path)
    shown = short_path(p)
    try:
        if p.is_dir():
            raise SpecError(f"{shown}: is a directory, not a world file; pass the .yaml or .json "
                            "file")
        if not p.is_file():
            raise SpecError(f"{shown}: no such file; check the path")
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(f"{shown}: {size:,} bytes, above the limit of {MAX_FILE_BYTES:,}; "
                            "split the queries over several worlds")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError(f"{shown}: cannot be read as UTF-8 text ({why})") from exc
    if p.suffix.lower() == ".json":
        return _read_json(text, shown)
    if workers > 1 and len(text) >= SPLIT_FROM_BYTES and forking():
        data = _in_two(text, each_query)
        if data is not None:
            return data
    return _read_yaml(text, shown, each_query)


SPLIT_FROM_BYTES = 4 * 1024 * 1024
"""Smallest YAML document :func:`read_document` reads in two parts with ``workers`` (about
20,000 queries of ``circinus gen``; a smaller one reads in a second or less)."""
SPLIT_SHARE = 0.5
"""Share of the list's text this process reads itself when a document is read in two parts;
it validates its own queries as it reads them and then the copy's, which come back as plain
data (pickled back as models they took longer to unpickle than to make). At 100,000
generated queries, with the collector paused as ``circinus plan`` reads: 3.2 and 3.4 s at
half, 3.9 and 3.6 s at 0.44, 3.5 and 3.6 s at 0.55, against 4.6 s in one part."""
_QUERIES = re.compile(r"^queries:[ \t]*\n", re.M)
_ITEM = re.compile(r"^- ", re.M)
_OUTSIDE = re.compile(r"^(?!- |#|[ \t]*$|[ \t])", re.M)
_PLAIN = re.compile(r"[^&*!|>\"'`%@?\t\r\\]*")


def _halves(text: str) -> tuple[str, str] | None:
    """``text`` cut into two YAML documents, the first with everything but the second part of
    the top-level ``queries`` list and the second with only that part (``queries:`` and its
    items), where the cut is sure to fall between two items; else ``None``.

    NOTE: the cut is made only where the list is a block sequence at the left margin (``- ``
    opening each item), up to the next line at the margin, and the list holds none of the
    characters that open an anchor, alias, tag, block or quoted scalar, directive or escape:
    plain items, whose lines past the first are indented (in flow collections too, as YAML
    wants them), so every ``- `` at the margin opens an item. A cut that nonetheless parts
    something leaves a part that fails to parse, and the caller reads the whole document."""
    heads = list(_QUERIES.finditer(text))
    if len(heads) != 1:
        return None
    start = heads[0].end()
    outside = _OUTSIDE.search(text, start)
    end = outside.start() if outside else len(text)
    # (a line at the margin after the list must be a key: an item written "-" alone on its
    # line, or a "---", would leave items after it, out of order, in the first part)
    if (not _PLAIN.fullmatch(text, start, end) or not text.startswith("- ", start)
            or text.startswith("-", end)):
        return None
    cut = _ITEM.search(text, start + int(SPLIT_SHARE * (end - start)), end)
    if cut is None:
        return None
    return (text[:cut.start()] + text[end:],
            text[heads[0].start():start] + text[cut.start():end])


def _in_two(text: str, each_query: Callable[[Any], Any] | None) -> Any | None:
    """The document ``text`` read in two parts (:func:`_halves`), the second on a forked
    copy (:func:`~circinus.forks.beside`) as plain data that ``each_query`` then rebuilds
    here; ``None`` when it cannot be cut or a part fails (the caller reads it whole, for the
    error's place). A copy that ends without answering has its part read here."""
    parts = _halves(text)
    if parts is None:
        return None
    first, second = parts

    def read_second() -> Any:
        try:
            return _built(second, None, MAX_NODES // 2)
        except Exception:  # the whole document is read again, for the message
            return None

    with beside(read_second, name="circinus-read") as rest:
        try:
            data = _built(first, each_query, MAX_NODES // 2)
        except Exception:
            return None
        more = rest()
    if not (isinstance(data, dict) and isinstance(data.get("queries"), list)
            and isinstance(more, dict) and list(more) == ["queries"]
            and isinstance(more["queries"], list)):
        return None
    data["queries"].extend(more["queries"] if each_query is None else
                           [each_query(q) for q in more["queries"]])
    return data


def short_path(path: str | Path, limit: int = 120) -> str:
    """``path`` as text, its middle elided past ``limit`` characters (a message stays short)."""
    text = str(path)
    if len(text) <= limit:
        return text
    keep = (limit - 3) // 2
    return f"{text[:keep]}...{text[-keep:]}"


def _read_json(text: str, shown: str) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{shown}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except _DuplicateKey as exc:
        raise SpecError(f"{shown}: invalid JSON: duplicate key {exc.key!r} in one object; a key "
                        "may appear only once in an object") from exc
    except RecursionError as exc:
        raise SpecError(f"{shown}: invalid JSON: nested deeper than {MAX_DEPTH} levels") from exc
    _check_json_shape(data, shown)
    return data


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _check_json_shape(data: Any, shown: str) -> None:
    """Refuse JSON nested deeper than :data:`MAX_DEPTH` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SpecError(f"{shown}: invalid JSON: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))


def _read_yaml(text: str, shown: str, each_query: Callable[[Any], Any] | None = None) -> Any:
    try:
        try:
            try:
                return _built(text, each_query)
            except ExplicitTag:  # a tagged collection (!!set): the loader's way
                _check_yaml_shape(text)
                return yaml.load(text, Loader=_UniqueKeyLoader)  # a safe loader
        except yaml.YAMLError as exc:
            if (_Parser is yaml.SafeLoader or len(text) > _RETELL_BYTES
                    or isinstance(exc, ShapeError)):
                raise
            # PyYAML's own parser says more ("expected ',' or ']', but got '<stream end>'"
            # where libyaml has "did not find expected ',' or ']'"); the shape check has
            # bounded the document up to the error, where both parsers stop.
            yaml.load(text, Loader=_PyUniqueKeyLoader)
            raise
    except _ShapeError as exc:
        raise SpecError(f"{shown}{exc.where}: invalid YAML: {exc}") from exc
    except RecursionError as exc:  # the retelling parser on a deep document
        raise SpecError(f"{shown}: invalid YAML: nested deeper than {MAX_DEPTH} levels"
                        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{shown}{where}: invalid YAML: {' '.join(problem.split())}") from exc


def _built(text: str, each_query: Callable[[Any], Any] | None,
           max_nodes: int = MAX_NODES) -> Any:
    """The YAML document ``text`` built from its events (:func:`~circinus.spec.events.
    build_yaml`), with the safe loader's resolver and constructors."""
    loader = _UniqueKeyLoader(text)
    try:
        return build_yaml(loader, max_depth=MAX_DEPTH, max_nodes=max_nodes,
                          each_item=None if each_query is None else ("queries", each_query))
    finally:
        loader.dispose()


class _ShapeError(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML has it (ten times faster), else PyYAML's own."""


def _check_yaml_shape(text: str) -> None:
    """Walk the YAML event stream once, refusing nesting deeper than :data:`MAX_DEPTH`, an
    alias of a value that contains it, and more than :data:`MAX_NODES` values with every alias
    expanded.

    NOTE: this runs before the document is built, and stops at the first excess: libyaml's
    builder recurses in C (nesting ten thousand deep crashes the process) and slows
    quadratically with depth, and an alias bomb is cheap to parse but not to expand.
    """
    sizes: dict[str, int] = {}  # anchor -> values its node expands to
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, values so far) per open collection
    total = 0
    for event in yaml.parse(text, Loader=_Parser):
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                raise _ShapeError(f"alias *{event.anchor} refers to a value that contains it "
                                  "or to no anchor", event.start_mark)
            count = sizes[event.anchor]
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(open_nodes) >= MAX_DEPTH:
                raise _ShapeError(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            open_nodes.append((event.anchor, 1))
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, count = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = count
        elif isinstance(event, yaml.ScalarEvent):
            count = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        else:
            continue
        if open_nodes:
            anchor, so_far = open_nodes[-1]
            open_nodes[-1] = (anchor, so_far + count)
        total += count
        if total > MAX_NODES:
            raise _ShapeError(f"expands to more than {MAX_NODES:,} values (aliases counted "
                              "as the values they repeat)", event.start_mark)


_RETELL_BYTES = 1024 * 1024
"""Largest malformed YAML document parsed a second time, by PyYAML's own (slower) parser, for
its more telling message."""


def _refuse_duplicates(loader: Any, node: yaml.MappingNode) -> None:
    """Raise if a key appears twice in the mapping ``node``; keys brought in by a merge
    (``<<: *defaults``) may be overridden, as YAML intends."""
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # unhashable: the base class reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"duplicate key {key!r}; a key may appear only once in a mapping",
                key_node.start_mark)
        seen.add(key)


class _PyUniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's own safe loader, refusing a key that appears twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _refuse_duplicates(self, node)
        return super().construct_mapping(node, deep=deep)


class _UniqueKeyLoader(_Parser):  # type: ignore[misc]
    """The safe YAML loader on libyaml where PyYAML has it, refusing a key that appears twice
    in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _refuse_duplicates(self, node)
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def parse_world(data: Any, *, origin: str = "world") -> World:
    """Validate plain data as a :class:`World` (field-level checks only).

    Raises:
        SpecError: naming the first offending field, e.g.
            ``queries[3].slo.latency_ms: must be > 0, got -5``.
    """
    if data is None:
        raise SpecError(
            f"{origin}: the document is empty; a world needs at least 'hardware', 'sites', "
            "'devices', 'operators', 'pipelines' and 'queries' (see `circinus schema world`)"
        )
    if not isinstance(data, dict):
        raise SpecError(
            f"{origin}: the top level must be a mapping with keys such as 'devices' and "
            f"'queries', got a {type(data).__name__}"
        )
    try:
        return World.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, data)) from exc


def validate_document(model: type[_Model], data: Any, origin: str, *,
                      hint: str | None = None) -> _Model:
    """``model`` validated from ``data`` (a parsed file or request body); otherwise a
    :class:`SpecError` of one line, ``origin: path: what is wrong[; hint]``, naming the first
    bad field (:func:`format_validation_error`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        tail = f"; {hint}" if hint else ""
        raise SpecError(f"{origin}: {format_validation_error(exc, data, model=model)}{tail}"
                        ) from None


def format_validation_error(exc: ValidationError, data: Any = None, *,
                            model: type[BaseModel] = World) -> str:
    """One line for the first error of ``exc``: ``path: what is wrong, got value``.

    ``data`` is the validated input; with it, dictionary keys that look like union branch tags
    (a knob named ``float``) are told apart from the tags. A field whose type is a union (``3.5``
    or a list of ``{when, value}``) fails once per branch; those failures count as one error,
    reported from the branch that got deepest into the input, or as "must be A or B" when none
    got past the field itself. ``model`` is the model validated (the world by default; the
    ranges of its fields are quoted).
    """
    errors = [(err, *_split_loc(err["loc"], data)) for err in exc.errors(include_url=False)]
    first, parts, anchor = errors[0][:3]
    message = None
    if anchor is not None:
        branches = [e for e in errors if e[2] is not None and e[1][: e[2]] == parts[:anchor]]
        deepest = max(len(e[1]) for e in branches)
        first, parts = next(e[:2] for e in branches if len(e[1]) == deepest)
        finite = [e for e in branches if e[0]["type"] == "finite_number"]
        if finite:  # a number that is NaN or infinite: say that, not "must be A or B"
            first, parts = finite[0][:2]
        elif deepest == anchor and len(branches) > 1:
            kinds = _union_names([e[3][0] for e in branches])
            message = f"must be {kinds}, got {_short(first.get('input'))}"
    bounds = _field_bounds(first["loc"], model)
    # Union branches of one field count as one error in "(and N more)".
    fields = {_join(e[1] if e[2] is None else e[1][: e[2]]) for e in errors}
    others = len(fields - {_join(parts if anchor is None else parts[:anchor])})
    more = f" (and {others} more)" if others else ""
    described = message or _describe(first, bounds)
    if first["type"] == "extra_forbidden" and model is World:
        described += " against `circinus schema world`"
    return f"{_join(parts)}: {described}{more}"


def format_loc(loc: tuple[int | str, ...], data: Any = None) -> str:
    """``('queries', 3, 'slo', 'latency_ms')`` -> ``queries[3].slo.latency_ms``.

    Union branch tags (``float``, ``list[ConfigValue]``) are left out; given the validated
    ``data``, a part that is a real key of the input is always kept.
    """
    return _join(_split_loc(loc, data)[0])


def _split_loc(loc: tuple[int | str, ...], data: Any
               ) -> tuple[tuple[int | str, ...], int | None, tuple[str, ...]]:
    """``(parts, anchor, tags)`` of a pydantic error location.

    ``parts`` are the field names, keys and indices; ``tags`` the union branch tags met; and
    ``anchor`` the number of parts before the first tag (the field whose type is the union),
    ``None`` without a tag.
    """
    node = data
    parts: list[int | str] = []
    tags: list[str] = []
    anchor: int | None = None
    for part in loc:
        is_key = isinstance(node, dict) and part in node
        is_index = isinstance(node, list | tuple) and isinstance(part, int) and part < len(node)
        if is_key or is_index:
            node = node[part]
        elif isinstance(part, str) and (part in _UNION_TAGS or "[" in part):
            anchor = len(parts) if anchor is None else anchor
            tags.append(part)
            continue
        else:
            node = None
        parts.append(part)
    return tuple(parts), anchor, tuple(tags)


def _join(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_UNION_TAGS = frozenset({"float", "int", "str", "bool", "none", "dict", "list"})
_TAG_NAMES = {
    "str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean",
    "none": "null", "dict": "a mapping", "list": "a list",
    "list[ConfigValue]": "a list of {when, value} entries",
}


def _union_names(tags: list[str]) -> str:
    if "float" in tags and "int" in tags:
        tags = [t for t in tags if t != "int"]
    names = [_TAG_NAMES.get(t, t) for t in dict.fromkeys(tags)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


_TEMPLATES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "is required",
    "extra_forbidden": "unknown key; check the spelling",
    "literal_error": "must be one of {expected}",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "takes at most {max_length} item(s)",
    "finite_number": "must be a finite number",
    "string_pattern_mismatch": "must be an identifier (letters, digits, _ . : @ / + -)",
}


def _describe(error: Any, bounds: list[str] | None = None) -> str:
    kind = error["type"]
    ctx = {k: _number(v) for k, v in (error.get("ctx") or {}).items()}
    template = _TEMPLATES.get(kind)
    if kind in _BOUND_KINDS and bounds:
        return f"must be {' and '.join(bounds)}, got {_short(error.get('input'))}"
    if kind.startswith("value_error"):
        # Our own validators word the whole message, naming the offending value themselves.
        return str(ctx.get("error", error["msg"]))
    if template is not None:
        try:
            text = template.format(**ctx)
        except (KeyError, IndexError):
            text = error["msg"]
    else:
        text = error["msg"][:1].lower() + error["msg"][1:]
    if kind in ("missing", "extra_forbidden"):
        return text
    return f"{text}, got {_short(error.get('input'))}"


_BOUND_KINDS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _field_bounds(loc: tuple[int | str, ...], root: type[BaseModel] = World) -> list[str]:
    """Both ends of the range of the model field at ``loc`` (``[">= 0.001", "<= 1000000"]``),
    so that a value out of range is told the whole range; ``[]`` for no model field."""
    return [f"{sign} {_plain(value)}" for sign, value in field_range(loc, root)]


def field_range(loc: tuple[int | str, ...], root: type[BaseModel] = World
                ) -> list[tuple[str, float]]:
    """The bounds of the field at ``loc`` (``("queries", 0, "rate_rps")``) of ``root`` (the
    world by default), as ``(">=", 0.000001)``, ``("<=", 1000000)`` pairs; ``[]`` for no
    bounded model field."""
    model: Any = root
    info = None
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            if part in _UNION_TAGS or "[" in part:
                continue
            return []
        info = fields[part]
        model = _inner_model(info.annotation)
    if info is None:
        return []
    out: list[tuple[str, float]] = []
    for item in info.metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            value = getattr(item, attr, None)
            if value is not None:
                out.append((sign, float(value)))
    return out


def _inner_model(annotation: Any) -> Any:
    """The spec model inside ``annotation`` (``list[Query]`` -> ``Query``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _plain(value: float) -> str:
    """A bound as written by hand: ``1e-06`` -> ``0.000001``, ``10000000.0`` -> ``10000000``."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.12f}".rstrip("0").rstrip(".")


def _number(value: Any) -> Any:
    """``0.0`` -> ``0`` so that bounds read as written (``must be > 0``); others unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
