"""YAML built from the parser's events: the same data as the safe loader, bounded, one pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from circinus.errors import SpecError
from circinus.spec import load_indexed_world, parse_world, read_document
from circinus.spec.events import ExplicitTag, build_yaml
from circinus.spec.load import _UniqueKeyLoader
from circinus.spec.models import Query

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def _build(text: str, **kw: Any) -> Any:
    loader = _UniqueKeyLoader(text)
    try:
        return build_yaml(loader, max_depth=kw.pop("max_depth", 64),
                          max_nodes=kw.pop("max_nodes", 10**6), **kw)
    finally:
        loader.dispose()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_build_as_the_safe_loader_builds_them(path: Path) -> None:
    text = path.read_text()
    assert _build(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text", [
    "",
    "# nothing\n",
    "a: 1\nb: 1.0\nc: yes\nd: ~\ne: '1'\nf: 2001-12-14\ng: 0x1f\nh: .inf\ni: [1, 'x', null]\n",
    "base: &b {x: 1, y: 2}\nuse: *b\nmore: {<<: *b, y: 3}\n",
    "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc: {<<: [*a, *b], w: 0}\n",
    "- &s text\n- *s\n- {k: *s}\n",
    "k: [[1, 2], {a: [3]}]\n",
    "x: !!str 12\ny: !!float 3\n",
    "---\na: 1\n...\n",
])
def test_documents_build_as_the_safe_loader_builds_them(text: str) -> None:
    built = _build(text)
    assert built == yaml.safe_load(text)
    assert repr(built) == repr(yaml.safe_load(text))  # 1 stays 1, 1.0 stays 1.0


def test_an_alias_is_the_anchored_value_itself() -> None:
    data = _build("a: &x [1, 2]\nb: *x\n")
    assert data["a"] is data["b"]


@pytest.mark.parametrize(("text", "problem", "line"), [
    ("a: 1\nb: 2\na: 3\n", "duplicate key 'a'", 3),
    ("a: {x: 1, x: 2}\n", "duplicate key 'x'", 1),
    ("? [a, b]\n: 1\n", "found unhashable key", 1),
    ("a: *nope\n", "alias *nope refers to a value that contains it or to no anchor", 1),
    ("a: &x [1, *x]\n", "alias *x refers to a value that contains it", 1),
    ("a: 1\nb: !!int nope\n", "cannot read 'nope' as int", 2),
    ("a: !custom 3\n", "could not determine a constructor", 1),
    ("a: 1\n---\nb: 2\n", "but found another document", 2),
    ("m: {<<: 3}\n", "expected a mapping or list of mappings for merging", 1),
])
def test_bad_documents_name_the_problem_and_the_line(text: str, problem: str,
                                                     line: int) -> None:
    with pytest.raises(yaml.YAMLError) as info:
        _build(text)
    assert problem in str(info.value)
    mark = getattr(info.value, "problem_mark", None)
    assert mark is not None and mark.line + 1 == line


def test_a_syntax_error_below_a_repeated_key_is_the_one_reported() -> None:
    with pytest.raises(yaml.YAMLError) as info:
        _build("a: 1\na: 2\nb: [1, 2\n")
    assert "duplicate" not in str(info.value)


def test_limits_are_checked_as_the_document_streams() -> None:
    with pytest.raises(yaml.YAMLError, match="nested deeper than 3 levels"):
        _build("a: [[[1]]]\n", max_depth=3)
    bomb = "a: &a [1, 1, 1, 1]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\n"
    with pytest.raises(yaml.YAMLError, match="expands to more than 50 values"):
        _build(bomb, max_nodes=50)


def test_a_tagged_collection_is_left_to_the_loader(tmp_path: Path) -> None:
    with pytest.raises(ExplicitTag):
        _build("a: !!set {x, y}\n")
    path = tmp_path / "w.yaml"
    path.write_text("a: !!set {x, y}\nb: 1\n")
    assert read_document(path) == {"a": {"x", "y"}, "b": 1}


def test_each_query_is_rebuilt_as_soon_as_it_is_read() -> None:
    seen: list[Any] = []

    def each(item: Any) -> Any:
        seen.append(item)
        return ("done", item["n"])

    data = _build("queries:\n- {n: 1}\n- {n: 2}\nother: [{n: 3}]\nnested: {queries: [{n: 4}]}\n",
                  each_item=("queries", each))
    assert data["queries"] == [("done", 1), ("done", 2)]
    assert data["other"] == [{"n": 3}] and data["nested"] == {"queries": [{"n": 4}]}
    assert seen == [{"n": 1}, {"n": 2}]


def test_a_world_file_loads_its_queries_as_models(tmp_path: Path) -> None:
    world, _ = load_indexed_world(EXAMPLES[0])
    assert world.queries and all(type(q) is Query for q in world.queries)
    # Bad queries are reported by the world's validation as from the plain data: the first
    # with its position, and how many more.
    data = yaml.safe_load(EXAMPLES[0].read_text())
    data["queries"][1]["rate_rps"] = -1
    data["queries"][-1]["slo"] = {"latency_ms": "soon"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SpecError) as streamed:
        load_indexed_world(bad)
    with pytest.raises(SpecError) as whole:
        parse_world(data)
    assert str(streamed.value) == str(whole.value)
    assert str(whole.value).startswith("queries[1].rate_rps: must be >=")
    assert "(and 1 more)" in str(whole.value)
