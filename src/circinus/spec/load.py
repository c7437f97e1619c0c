"""Reading worlds from YAML or JSON files, with one-line errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from circinus.errors import SpecError
from circinus.spec.index import WorldIndex
from circinus.spec.models import World
from circinus.spec.validate import build_index


def load_world(path: str | Path) -> World:
    """Read, validate and cross-check the world in ``path`` (``.yaml``, ``.yml`` or ``.json``).

    Raises:
        SpecError: with the path of the first offending field and the way out.
    """
    world, _ = load_indexed_world(path)
    return world


def load_indexed_world(path: str | Path) -> tuple[World, WorldIndex]:
    """Like :func:`load_world`, also returning the :class:`WorldIndex` built while checking."""
    data = read_document(path)
    world = parse_world(data, origin=str(path))
    return world, build_index(world)


def read_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file into plain Python data.

    A ``.json`` suffix selects JSON, anything else YAML. A key repeated within one YAML mapping is
    an error (YAML loaders otherwise keep the last value and silently drop the first).

    Raises:
        SpecError: ``file: what is wrong`` or ``file:line:column: invalid YAML|JSON: problem``.
    """
    p = Path(path)
    if p.is_dir():
        raise SpecError(f"{p}: is a directory, not a world file; pass the .yaml or .json file")
    if not p.is_file():
        raise SpecError(f"{p}: no such file; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{p}: cannot be read as UTF-8 text ({exc})") from exc
    try:
        if p.suffix.lower() == ".json":
            return json.loads(text)
        return _load_yaml(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{p}{where}: invalid YAML: {' '.join(problem.split())}") from exc


def _load_yaml(text: str) -> Any:
    """``text`` parsed by libyaml where PyYAML was built with it (its wheels are): a world of
    10,000 queries takes about 2 s against 7 s with the pure-Python parser. Both build the data
    with the same safe constructor; a document libyaml refuses is parsed again by the
    pure-Python parser, whose messages say more ("expected ',' or ']', but got '<stream
    end>'" where libyaml has "did not find expected ',' or ']'")."""
    if _CUniqueKeyLoader is None:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    try:
        return yaml.load(text, Loader=_CUniqueKeyLoader)
    except yaml.YAMLError as fast:
        try:
            yaml.load(text, Loader=_UniqueKeyLoader)
        except yaml.YAMLError:
            raise
        raise fast from None


def _refuse_duplicates(loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.MappingNode) -> None:
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


class _UniqueKeyLoader(yaml.SafeLoader):
    """The pure-Python safe loader, refusing a key that appears twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _refuse_duplicates(self, node)
        return super().construct_mapping(node, deep=deep)


_CUniqueKeyLoader: type[yaml.SafeLoader | yaml.CSafeLoader] | None = None
if hasattr(yaml, "CSafeLoader"):
    class _CUniqueKeyLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        """libyaml's safe loader, refusing a key that appears twice in one mapping."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False
                              ) -> dict[Any, Any]:
            _refuse_duplicates(self, node)
            return super().construct_mapping(node, deep=deep)


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


def format_validation_error(exc: ValidationError, data: Any = None) -> str:
    """One line for the first error of ``exc``: ``path: what is wrong, got value``.

    ``data`` is the validated input; with it, dictionary keys that look like union branch tags
    (a knob named ``float``) are told apart from the tags. A field whose type is a union (``3.5``
    or a list of ``{when, value}``) fails once per branch; those failures count as one error,
    reported from the branch that got deepest into the input, or as "must be A or B" when none
    got past the field itself.
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
    # Union branches of one field count as one error in "(and N more)".
    fields = {_join(e[1] if e[2] is None else e[1][: e[2]]) for e in errors}
    others = len(fields - {_join(parts if anchor is None else parts[:anchor])})
    more = f" (and {others} more)" if others else ""
    return f"{_join(parts)}: {message or _describe(first)}{more}"


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
    "extra_forbidden": "unknown key; check the spelling against `circinus schema world`",
    "literal_error": "must be one of {expected}",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "takes at most {max_length} item(s)",
    "finite_number": "must be a finite number",
    "string_pattern_mismatch": "must be an identifier (letters, digits, _ . : @ / + -)",
}


def _describe(error: Any) -> str:
    kind = error["type"]
    ctx = {k: _number(v) for k, v in (error.get("ctx") or {}).items()}
    template = _TEMPLATES.get(kind)
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


def _number(value: Any) -> Any:
    """``0.0`` -> ``0`` so that bounds read as written (``must be > 0``); others unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
