"""Plain data built straight from YAML's event stream, in one pass and bounded.

NOTE: PyYAML's loader composes the whole document as a tree of nodes, each scalar with two
position marks, before it builds the first value: for a world of 1,000,000 queries (186 MB of
YAML, 94 million values counted as :data:`~circinus.spec.load.MAX_NODES` counts them) the
tree alone passed 9 GB. :func:`build_yaml` builds the values from the parser's events as they
come instead, so what it holds is the data built so far plus one open collection per level:

* scalars are resolved and built as the safe loader builds them (its resolver, its
  constructors: ``3`` an int, ``3.0`` a float, ``yes`` a bool, ``~`` null, quoted text a
  string);
* an alias is the very value its anchor built (as the loader shares it), and counts as the
  values it repeats;
* a key repeated within one mapping is refused, except over keys a merge brought in
  (``<<: *defaults``, resolved as the loader resolves it: explicit keys override merged ones,
  the first listed mapping of a merge overrides later ones);
* nesting deeper than ``max_depth``, more than ``max_nodes`` values with every alias
  expanded, and an alias of a value that contains it are refused at the event where the
  excess happens, before anything more is built;
* ``each_item(key)``, if given, rebuilds every item of the top-level mapping's list ``key``
  as soon as it is complete (the loader validates each query there, so the plain mapping of
  one query lives only until its model is made).

Errors carry the position of the offending event (``yaml.MarkedYAMLError``); a syntax error
stops the stream where the parser finds it. A key or scalar error found while building is
raised once the stream has parsed to its end, so that a syntax error further down is the one
reported, as by the loader (which parses the whole document before building it). A collection
with an explicit tag (``!!set``, ``!!omap``) is left to the loader: :class:`ExplicitTag` is
raised and the caller reads the document the loader's way.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import yaml
from yaml.constructor import ConstructorError

MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"


class ShapeError(yaml.MarkedYAMLError):
    """The document is too deep, too large or refers to itself (see module note)."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(problem=message, problem_mark=mark)


class ExplicitTag(Exception):
    """A collection has an explicit tag; build the document with the loader instead."""


class _Open:
    """A collection being built: its kind, anchor, start, values so far and the values it
    counts (with aliases expanded)."""

    __slots__ = ("anchor", "count", "each", "items", "keys", "mapping", "start")

    def __init__(self, mapping: bool, anchor: str | None, start: Any) -> None:
        self.mapping = mapping
        self.anchor = anchor
        self.start = start
        self.items: list[Any] = []  # a mapping: key, value, key, value ...
        self.count = 1
        self.each = False  # its items are rebuilt by each_item
        self.keys: list[tuple[Any, bool]] = []  # a mapping: per key, its mark and if a merge


def build_yaml(loader: Any, *, max_depth: int, max_nodes: int,
               each_item: tuple[str, Callable[[Any], Any]] | None = None) -> Any:
    """The single document of ``loader`` (a safe loader over the text) as plain data (module
    note); ``None`` for an empty stream.

    Raises:
        yaml.YAMLError: a syntax error, a repeated key, a scalar the safe loader refuses,
            :class:`ShapeError`; each with its position.
        ExplicitTag: a collection with an explicit tag.
    """
    anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, values it counts)
    stack: list[_Open] = []
    total = 0
    documents = 0
    first_start: Any = None
    root: Any = None
    pending: yaml.YAMLError | None = None  # the first building error, raised at the end
    # A world repeats few distinct scalars many times over (a site's name, an SLO class's
    # bounds, a rate of the snapped grid): each plain scalar's tag, and each plain value that
    # builds to an immutable one, is worked out once (reading 100,000 generated queries with
    # the collector off: 7.3 -> 6.6 s of CPU, medians of three).
    tags: dict[tuple[str, Any], str] = {}
    built: dict[tuple[str, str], Any] = {}
    while loader.check_event():
        event: Any = loader.get_event()
        merge = False
        if isinstance(event, yaml.ScalarEvent):
            tag = _tag(loader, event, tags)
            merge = tag == MERGE_TAG
            try:
                value = event.value if tag == STR_TAG or merge else _scalar(loader, event, tag,
                                                                           built)
            except yaml.YAMLError as exc:
                pending = pending or exc
                value = None
            except (ValueError, TypeError, OverflowError):  # e.g. !!int on a word
                pending = pending or ConstructorError(
                    None, None, f"cannot read {event.value!r} as {tag.rsplit(':', 1)[-1]}",
                    _mark(event))
                value = None
            count = 1
            if event.anchor is not None:
                anchors[event.anchor] = (value, 1)
            mark = event.start_mark
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise ShapeError(f"alias *{event.anchor} refers to a value that contains it or "
                                 "to no anchor", event.start_mark)
            value, count = anchors[event.anchor]
            mark = event.start_mark
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= max_depth:
                raise ShapeError(f"nested deeper than {max_depth} levels", event.start_mark)
            if event.tag is not None and not event.implicit and event.tag != "!":
                raise ExplicitTag(event.tag)
            frame = _Open(isinstance(event, yaml.MappingStartEvent), event.anchor,
                          event.start_mark)
            if (each_item is not None and not frame.mapping and len(stack) == 1
                    and stack[0].mapping and len(stack[0].items) % 2 == 1
                    and stack[0].items[-1] == each_item[0]):
                frame.each = True
            stack.append(frame)
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            frame = stack.pop()
            if frame.mapping:
                try:
                    value = _mapping(loader, frame)
                except yaml.YAMLError as exc:
                    pending = pending or exc
                    value = {}
            else:
                value = frame.items
            count = frame.count
            if frame.anchor is not None:
                anchors[frame.anchor] = (value, count)
            mark = event.start_mark
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents == 1:
                first_start = event.start_mark
            else:
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream", first_start,
                    "but found another document", _mark(event))
            continue
        else:
            continue
        total += count
        if total > max_nodes:
            raise ShapeError(f"expands to more than {max_nodes:,} values (aliases counted as "
                             "the values they repeat)", mark)
        if not stack:
            root = value
            continue
        parent = stack[-1]
        parent.count += count
        if parent.mapping and len(parent.items) % 2 == 0:  # a key
            parent.keys.append((mark, merge))
        elif parent.each and each_item is not None:
            value = each_item[1](value)
        parent.items.append(value)
    if pending is not None:
        raise pending
    return root


def _mark(event: Any) -> Any:
    return event.start_mark


def _tag(loader: Any, event: Any, memo: dict[tuple[str, Any], str]) -> str:
    """The tag of the scalar of ``event``, as the loader resolves it; ``memo`` holds the
    resolved ones (the safe loader resolves by the value and its implicitness alone)."""
    tag: str | None = event.tag
    if tag is None or tag == "!":
        key = (event.value, event.implicit)
        tag = memo.get(key)
        if tag is None:
            tag = memo[key] = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    assert tag is not None
    return tag


IMMUTABLE_TAGS = frozenset(f"tag:yaml.org,2002:{kind}" for kind in ("null", "bool", "int",
                                                                     "float"))
"""Tags whose values the safe loader builds as immutable ones (``None``, bool, int, float),
which one scalar may share with every other of the same tag and text."""


def _scalar(loader: Any, event: Any, tag: str, memo: dict[tuple[str, str], Any]) -> Any:
    """The value the safe loader builds for the scalar of ``event``, resolved as ``tag``;
    ``memo`` holds the immutable ones built (by tag and text)."""
    shared = tag in IMMUTABLE_TAGS
    if shared:
        key = (tag, event.value)
        if key in memo:
            return memo[key]
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark,
                           style=event.style)
    build = loader.yaml_constructors.get(tag) or loader.yaml_constructors[None]
    value = build(loader, node)
    if shared:
        memo[key] = value
    return value


def _mapping(loader: Any, frame: _Open) -> dict[Any, Any]:
    """The dict of a completed mapping: merges first (the first listed wins), then its own
    keys; a key repeated among its own keys, or one that cannot be a key, is an error."""
    merged: list[tuple[Any, Any]] = []
    own: list[tuple[Any, Any]] = []
    seen: set[Any] = set()
    for (mark, is_merge), key, value in zip(frame.keys, frame.items[0::2], frame.items[1::2],
                                            strict=True):
        if is_merge:
            parts = value if isinstance(value, list) else [value]
            if not all(isinstance(p, dict) for p in parts):
                raise ConstructorError("while constructing a mapping", frame.start,
                                       "expected a mapping or list of mappings for merging",
                                       mark)
            for part in reversed(parts):
                merged.extend(part.items())
            continue
        if not isinstance(key, Hashable):
            raise ConstructorError("while constructing a mapping", frame.start,
                                   "found unhashable key", mark)
        if key in seen:
            raise ConstructorError("while constructing a mapping", frame.start,
                                   f"duplicate key {key!r}; a key may appear only once in a "
                                   "mapping", mark)
        seen.add(key)
        own.append((key, value))
    return dict(merged + own) if merged else dict(own)
