"""A large world read in two parts at once: the same data as read whole, or read whole."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from circinus.errors import SpecError
from circinus.forks import forking
from circinus.spec import load
from circinus.spec.load import _halves, read_document

HEAD = "version: 1\nname: w\n"
TAIL = "planner: {time_limit_s: 5}\n"


def _items(n: int) -> str:
    return "".join(f"- name: q{i}\n  rate_rps: {i % 7 + 1}.0\n  sources: {{cam: s{i % 3}}}\n"
                   f"  slo: {{latency_ms: {100 + i}, percentile: 95.0}}\n" for i in range(n))


def _read(path: Path, workers: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, bool]:
    """The document read with ``workers``, and whether it was read in two parts."""
    monkeypatch.setattr(load, "SPLIT_FROM_BYTES", 1)
    split = []
    real = load._in_two

    def spy(text: str, each: Any) -> Any:
        out = real(text, each)
        split.append(out is not None)
        return out

    monkeypatch.setattr(load, "_in_two", spy)
    return read_document(path, workers=workers), any(split)


def test_a_world_read_in_two_parts_is_the_world_read_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(HEAD + "queries:\n" + _items(40) + TAIL)
    whole, split_whole = _read(path, 1, monkeypatch)
    two, split = _read(path, 2, monkeypatch)
    assert (split_whole, split) == (False, forking())
    assert two == whole == yaml.safe_load(path.read_text())
    assert [q["name"] for q in two["queries"]] == [f"q{i}" for i in range(40)]  # in order


def test_each_query_is_rebuilt_in_both_parts(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(HEAD + "queries:\n" + _items(10))
    monkeypatch.setattr(load, "SPLIT_FROM_BYTES", 1)
    got = read_document(path, each_query=lambda q: ("built", q["name"]), workers=2)
    assert got["queries"] == [("built", f"q{i}") for i in range(10)]


@pytest.mark.parametrize("text", [
    HEAD + "queries:\n" + _items(6).replace("rate_rps: 1.0", "rate_rps: &r 1.0"),  # anchor
    HEAD + "defaults: &d {percentile: 95}\nqueries:\n- {name: a, slo: *d}\n- {name: b}\n",
    HEAD + "queries:\n- name: 'a'\n- name: b\n- name: c\n",  # quoted
    HEAD + "queries:\n- name: !!str a\n- name: b\n- name: c\n",  # tagged
    HEAD + "queries:\n  - name: a\n  - name: b\n  - name: c\n",  # indented list
    HEAD + "queries:\n- name: a\n-\n  name: b\n- name: c\n",  # an item opened by "-" alone
    HEAD + "queries:\n- name: a\n- name: b\n- name: c\n---\nother: 1\n",
    HEAD + "queries: [{name: a}, {name: b}]\n",
    HEAD + "queries:\r\n- name: a\r\n- name: b\r\n",
    HEAD + "queries:\n- name: a\n- name: b\nqueries:\n- name: c\n",  # twice
    HEAD + "queries:\n- description: |\n    - x\n- name: b\n- name: c\n",  # a block scalar
])
def test_a_list_that_may_not_be_cut_safely_is_read_whole(text: str) -> None:
    assert _halves(text) is None


def test_a_cut_falls_between_two_items() -> None:
    text = HEAD + "queries:\n" + _items(8) + TAIL
    halves = _halves(text)
    assert halves is not None
    first, second = halves
    assert second.startswith("queries:\n- name: q")
    assert first.endswith(TAIL) and "- name: q0\n" in first
    both = yaml.safe_load(first)["queries"] + yaml.safe_load(second)["queries"]
    assert both == yaml.safe_load(text)["queries"]


@pytest.mark.parametrize("bad", [
    "- name: q30\n  name: again\n",  # a key twice, in the copy's part
    "- name: q30\n  rate_rps: [1\n",  # a syntax error there
])
def test_an_error_in_a_part_is_reported_as_when_read_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(HEAD + "queries:\n" + _items(30) + bad + _items(4) + TAIL)
    with pytest.raises(SpecError) as whole:
        read_document(path)
    monkeypatch.setattr(load, "SPLIT_FROM_BYTES", 1)
    with pytest.raises(SpecError) as two:
        read_document(path, workers=2)
    assert str(two.value) == str(whole.value)


_PLAIN_WORDS = st.from_regex(r"[a-z][a-z0-9_.-]{0,8}", fullmatch=True)
_WORDS = st.one_of(_PLAIN_WORDS, _PLAIN_WORDS, _PLAIN_WORDS,
                   st.text(string.ascii_letters + " -_.:#,[]{}'\"&*!|>\n", max_size=12))
_VALUES = st.one_of(_WORDS, st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.booleans(), st.none(), st.lists(_WORDS, max_size=3))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["name", "rate_rps", "slo", "note", "k"]),
                                _VALUES, min_size=1), min_size=2, max_size=12),
       st.booleans())
def test_any_list_reads_the_same_in_two_parts(items: list[dict[str, Any]], flow: bool) -> None:
    text = yaml.safe_dump({"version": 1, "queries": items, "z": 1}, sort_keys=False,
                          default_flow_style=None if flow else False)
    whole = yaml.safe_load(text)
    halves = _halves(text)
    if halves is not None:
        first, second = halves
        assert set(yaml.safe_load(second)) == {"queries"}
        got = yaml.safe_load(first)
        got["queries"] += yaml.safe_load(second)["queries"]
        assert got == whole
