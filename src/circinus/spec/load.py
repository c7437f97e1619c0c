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
    """Parse a YAML or JSON file into plain Python data."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: no such file; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{p}: cannot be read as UTF-8 text ({exc})") from exc
    try:
        if p.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{p}{where}: invalid YAML: {problem}") from exc


def parse_world(data: Any, *, origin: str = "world") -> World:
    """Validate plain data as a :class:`World` (field-level checks only)."""
    if not isinstance(data, dict):
        raise SpecError(
            f"{origin}: the top level must be a mapping with keys such as 'devices' and "
            f"'queries', got {type(data).__name__}"
        )
    try:
        return World.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from exc


def format_validation_error(exc: ValidationError) -> str:
    """One line for the first error of ``exc``: ``path: what is wrong, got value``."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = format_loc(first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {_describe(first)}{more}"


def format_loc(loc: tuple[int | str, ...]) -> str:
    """``('queries', 3, 'slo', 'latency_ms')`` -> ``queries[3].slo.latency_ms``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS or "[" in part:
            continue  # union branch tags (``float``, ``list[ConfigValue]``) are not fields
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_UNION_TAGS = frozenset({"float", "int", "str", "bool", "none", "dict", "list"})

_TEMPLATES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "is required",
    "extra_forbidden": "unknown key; check the spelling against `circinus schema`",
    "literal_error": "must be one of {expected}",
    "too_short": "needs at least {min_length} item(s)",
    "string_pattern_mismatch": "must be an identifier (letters, digits, _ . : @ / + -)",
}


def _describe(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {}) or {}
    template = _TEMPLATES.get(kind)
    if kind.startswith("value_error"):
        text = str(ctx.get("error", error["msg"]))
    elif template is not None:
        try:
            text = template.format(**ctx)
        except (KeyError, IndexError):
            text = error["msg"]
    else:
        text = error["msg"][:1].lower() + error["msg"][1:]
    if kind in ("missing", "extra_forbidden"):
        return text
    return f"{text}, got {_short(error.get('input'))}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
