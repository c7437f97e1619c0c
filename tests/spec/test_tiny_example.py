"""``examples/tiny.yaml`` (the example of ``docs/world-format.md``) is valid, plans as the
documentation says and is the same world as the ``tiny_world`` fixture."""

from __future__ import annotations

from pathlib import Path

from circinus.planner import Planner
from circinus.spec import load_indexed_world, parse_world
from tinyworld import make_tiny_world

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny.yaml"


def test_example_is_the_fixture_world() -> None:
    assert parse_world(make_tiny_world()) == load_indexed_world(EXAMPLE)[0], (
        "examples/tiny.yaml and make_tiny_world() in tests/tinyworld.py differ; change both "
        "(and docs/world-format.md, which shows the file)"
    )


def test_example_admits_both_queries_within_their_slos() -> None:
    _, index = load_indexed_world(EXAMPLE)
    result = Planner().plan(index)
    assert result.admitted == 2
    assert result.goodput == 3  # cam-1 (weight 1) + cam-2 (weight 2)
    for outcome in result.outcomes:
        assert outcome.estimate is not None
        slo = next(q.slo for q in index.world.queries if q.name == outcome.name)
        assert outcome.estimate.meets(slo)
