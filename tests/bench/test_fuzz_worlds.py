"""Property tests: any world, however mutated, is rejected with a SpecError or plans cleanly.

The outcomes and their classes are the campaign's (:mod:`circinus.bench.fuzz`): a mutated world
must end ``rejected`` (one SpecError), ``planned`` (every figure finite, the plan file read
back unchanged) or ``accepted`` (left for the profiler), never ``traceback``, ``changed``
(an accepted value held differently), ``nonfinite`` or ``hang``. The long seeded campaign is
``circinus bench fuzz`` (and ``test_campaign_sample`` below runs a slice of it).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from circinus.bench.fuzz import FAILURES, base_worlds, mutate, run_campaign, run_case
from circinus.errors import SpecError
from circinus.spec.load import read_document
from tinyworld import make_tiny_world

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORLDS = base_worlds(EXAMPLES)


def _numeric_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, bool):
        return []
    if isinstance(node, int | float):
        return [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(
        node, list) else []
    return [p for k, v in items for p in _numeric_paths(v, (*prefix, k))]


TINY_NUMBERS = _numeric_paths(make_tiny_world())


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _assert_kept(outcome: str, detail: str) -> None:
    assert outcome not in FAILURES, f"{outcome}: {detail}"


@settings(max_examples=150)
@given(path=st.sampled_from(TINY_NUMBERS),
       value=st.one_of(st.floats(), st.integers(min_value=-(10**400), max_value=10**400),
                       st.floats(min_value=0, max_value=1e-3), st.floats(min_value=1e5),
                       st.booleans(), st.text(max_size=20), st.none()))
def test_any_number_of_the_tiny_world_is_rejected_or_plans(path: tuple[Any, ...],
                                                           value: Any) -> None:
    data = make_tiny_world()
    _set(data, path, value)
    _assert_kept(*run_case(data))


@settings(max_examples=120)
@given(rng=st.randoms(use_true_random=False), example=st.sampled_from(sorted(WORLDS)),
       count=st.integers(1, 3))
def test_mutated_examples_are_rejected_or_plan(rng: random.Random, example: str,
                                               count: int) -> None:
    data = json.loads(json.dumps(WORLDS[example]))
    for _ in range(count):
        mutate(data, rng)
    _assert_kept(*run_case(data))


@settings(max_examples=150)
@given(text=st.text(max_size=400), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_text_is_a_document_or_a_spec_error(tmp_path_factory: pytest.TempPathFactory,
                                                 text: str, suffix: str) -> None:
    path = tmp_path_factory.mktemp("doc") / f"w{suffix}"
    path.write_text(text, encoding="utf-8")
    try:
        read_document(path)
    except SpecError as exc:
        assert "\n" not in str(exc).strip()


@settings(max_examples=60)
@given(cut=st.integers(0, 3000), insert=st.sampled_from(["\t", "\x00", "{", "]", "&a", "*a",
                                                          ": :", "'", "<<: *x", "\ufeff"]))
def test_broken_world_files_are_rejected_or_plan(tmp_path_factory: pytest.TempPathFactory,
                                                 cut: int, insert: str) -> None:
    text = yaml.safe_dump(make_tiny_world(), sort_keys=False)
    cut = min(cut, len(text))
    broken = text[:cut] + insert + text[cut:]
    _assert_kept(*run_case({}, broken, ".yaml"))


@pytest.mark.slow
def test_campaign_sample() -> None:
    """A slice of the seeded campaign, through its worker processes and hang detection."""
    report = run_campaign(EXAMPLES, cases=150, cli_cases=6, seed=14, jobs=2, timeout_s=120)
    assert sum(report.counts.values()) == 150 and sum(report.cli_counts.values()) == 6
    assert not report.failures, report.failures[:3]
    assert report.counts["rejected"] and report.counts["planned"]


def test_a_cli_case_whose_plan_file_cannot_be_made_in_time_is_a_hang_not_a_dead_worker(
) -> None:
    from circinus.bench.fuzz import run_cli_case

    world = (EXAMPLES / "tiny.yaml").read_text()
    outcome, detail = run_cli_case(["simulate", "w.yaml", "plan.json"],
                                   {"w.yaml": world, "plan.json": ""}, timeout_s=0.01)
    assert outcome == "hang" and "making plan.json" in detail
