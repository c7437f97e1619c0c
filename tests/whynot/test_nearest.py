"""The nearest admissible SLO: every suggestion admits the query when it is re-planned alone
with the other queries' plans fixed, a slightly tighter bound does not, and a query no
relaxation helps says so. The queries here have replicas of their own: the guarantee is stated
for capacity that adds up plan by plan."""

from __future__ import annotations

import copy
import math
import random
import re
from typing import Any

import pytest

import circinus
from circinus.estimate import AnalyticEstimator
from circinus.planner import SEARCHES, PlanResult
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex
from circinus.spec.models import Query, Slo
from circinus.whynot import Relaxation

BASE: dict[str, Any] = {
    "name": "two-tier",
    "hardware": [{"name": "cpu"}, {"name": "gpu", "kind": "gpu"}],
    "sites": [{"name": "shop", "tier": "edge"}, {"name": "cloud", "tier": "cloud"}],
    "devices": [
        {"name": "box", "site": "shop", "hardware": "cpu", "units": 3, "price_per_unit_hour": 0.05},
        {"name": "pool", "site": "cloud", "hardware": "gpu", "units": 2,
         "price_per_unit_hour": 1.0},
    ],
    "links": [{"src": "shop", "dst": "cloud", "bandwidth_mbps": 50, "rtt_ms": 20,
               "price_per_gb": 0.05, "capacity_mbps": 30, "both_ways": True}],
    "operators": [
        {"name": "detect", "knobs": {"size": ["s", "m"]}, "accuracy": [
            {"when": {"size": "s"}, "value": 0.8}, {"when": {"size": "m"}, "value": 0.9}],
         "output_kb": 20, "profiles": [
            {"config": {"size": "s"}, "hardware": "cpu", "mean_ms": 40},
            {"config": {"size": "m"}, "hardware": "cpu", "mean_ms": 90},
            {"config": {"size": "s"}, "hardware": "gpu", "mean_ms": 5},
            {"config": {"size": "m"}, "hardware": "gpu", "mean_ms": 8, "batch_ms": {4: 20}}]},
        {"name": "classify", "knobs": {"model": ["small", "big"]}, "accuracy": [
            {"when": {"model": "small"}, "value": 0.7}, {"when": {"model": "big"}, "value": 0.85}],
         "output_kb": 1, "profiles": [
            {"config": {"model": "small"}, "hardware": "cpu", "mean_ms": 30},
            {"config": {"model": "big"}, "hardware": "cpu", "mean_ms": 120},
            {"config": {"model": "small"}, "hardware": "gpu", "mean_ms": 4, "units": 0.5},
            {"config": {"model": "big"}, "hardware": "gpu", "mean_ms": 10, "units": 0.5}]},
    ],
    "pipelines": [{"name": "vision", "sources": [{"name": "cam", "output_kb": 200}],
                   "stages": [{"name": "detect", "operator": "detect"},
                              {"name": "classify", "operator": "classify"}],
                   "edges": [["cam", "detect"], ["detect", "classify"]]}],
    "queries": [],
    "planner": {"sharing": "dedicated"},
}


def _world(seed: int) -> dict[str, Any]:
    """Six queries with SLOs drawn from a grid; some are rejected for every kind of reason."""
    rng = random.Random(seed)
    data = copy.deepcopy(BASE)
    for i in range(6):
        slo: dict[str, float] = {"latency_ms": rng.choice([40.0, 80.0, 150.0, 400.0]),
                                 "min_accuracy": rng.choice([0.6, 0.7, 0.75, 0.8])}
        if rng.random() < 0.5:
            slo["max_cost_per_hour"] = rng.choice([0.2, 0.6, 1.5])
        data["queries"].append({"name": f"q{i}", "pipeline": "vision", "sources": {"cam": "shop"},
                                "rate_rps": rng.choice([2.0, 5.0, 10.0, 20.0]), "slo": slo})
    return data


def _used(result: PlanResult) -> dict[tuple[str, str], float]:
    """What the admitted plans use, summed here from their estimates."""
    used: dict[tuple[str, str], float] = {}
    for o in result.outcomes:
        if o.estimate is not None:
            for res, amount in o.estimate.usage().items():
                used[res] = used.get(res, 0.0) + amount
    return used


def _admits(index: WorldIndex, search: str, query: Query,
            used: dict[tuple[str, str], float]) -> bool:
    """Whether ``query``, searched on its own by a fresh search, has a candidate that fits what
    the other queries leave (their plans fixed)."""
    engine = SEARCHES[search](estimator=AnalyticEstimator(index=index),
                              settings=index.world.planner)
    (found,) = engine.search([query])
    cap = index.capacities
    return any(all(used.get(r, 0.0) + v <= cap[r] + 1e-9 for r, v in
                   c.estimate.usage().items() if r in cap) for c in found.candidates)


def _with(query: Query, objective: str, bound: float | None) -> Query:
    return query.model_copy(update={"slo": query.slo.model_copy(update={objective: bound})})


def _tighter(r: Relaxation) -> float:
    """One unit of the 4th significant digit tighter than the suggestion (not past the SLO)."""
    assert r.nearest is not None
    step = 10.0 ** (math.floor(math.log10(abs(r.nearest))) - 3)
    if r.objective == "min_accuracy":
        return min(r.nearest + step, r.current)
    return max(r.nearest - step, r.current)


def _check(data: dict[str, Any], search: str = "circinus") -> tuple[int, int]:
    """Plan ``data`` and check every suggestion; returns (suggestions, objectives with none)."""
    index = build_index(parse_world(data))
    result = circinus.Planner(search=search, why_not=True).plan(index)
    used = _used(result)
    specs = {q.name: q for q in index.world.queries}
    helped = hopeless = 0
    for o in result.outcomes:
        if o.admitted:
            assert o.why_not is None
            continue
        assert o.why_not is not None
        if o.why_not.relaxations is None:  # kept out by the link check: no nearest SLO
            assert o.why_not.resource is not None and o.why_not.resource[0] == "link"
            assert o.reason is not None and o.reason.startswith("capacity: link ")
            continue
        query = specs[o.name]
        for r in o.why_not.relaxations:
            assert r.current == getattr(query.slo, r.objective)
            if r.nearest is None:
                hopeless += 1
                continue
            helped += 1
            assert _admits(index, search, _with(query, r.objective, r.nearest), used), (o, r)
            if r.nearest != r.current:
                assert not _admits(index, search, _with(query, r.objective, _tighter(r)), used), r
    return helped, hopeless


@pytest.mark.parametrize("seed", range(8))
def test_suggestions_admit_and_are_minimal(seed: int) -> None:
    _check(_world(seed))


def test_the_worlds_exercise_both_outcomes() -> None:
    helped = hopeless = 0
    for seed in range(8):
        h, n = _check(_world(seed))
        helped, hopeless = helped + h, hopeless + n
    assert helped >= 5 and hopeless >= 5


@pytest.mark.parametrize("search", ["exhaustive", "infaas"])
def test_other_searches(search: str) -> None:
    for seed in range(3):
        _check(_world(seed), search)


def test_a_full_world_says_nothing_helps() -> None:
    data = copy.deepcopy(BASE)
    data["queries"] = [{"name": f"q{i}", "pipeline": "vision", "sources": {"cam": "shop"},
                        "rate_rps": 10.0, "slo": {"latency_ms": 400.0, "min_accuracy": 0.6}}
                       for i in range(12)]
    index = build_index(parse_world(data))
    result = circinus.Planner(why_not=True).plan(index)
    used = _used(result)
    rejected = [o for o in result.outcomes if not o.admitted]
    assert rejected
    specs = {q.name: q for q in index.world.queries}
    for o in rejected:
        assert o.why_not is not None and o.why_not.admissible is False
        assert [r.objective for r in o.why_not.relaxations or ()] == ["latency_ms",
                                                                        "min_accuracy"]
        loosest = specs[o.name].model_copy(update={"slo": Slo()})
        assert not _admits(index, "circinus", loosest, used)


def test_binding_names_the_objective_or_resource() -> None:
    seen = set()
    for seed in range(8):
        result = circinus.Planner().plan(parse_world(_world(seed)))
        for o in result.outcomes:
            if o.admitted:
                continue
            assert o.why_not is not None and o.why_not.relaxations is None  # not asked for
            assert o.reason is not None
            assert o.reason.startswith(o.why_not.binding + ":") or (
                o.why_not.binding == "accuracy" and o.reason.startswith("search:"))
            seen.add(o.why_not.binding)
            if o.why_not.resource is not None:
                kind, name = o.why_not.resource
                assert re.match(rf"capacity: {kind} {re.escape(name)} (has|at)", o.reason)
    assert {"capacity", "latency"} <= seen


def test_deterministic() -> None:
    data = _world(3)
    a = circinus.Planner(why_not=True).plan(parse_world(data))
    b = circinus.Planner(why_not=True).plan(parse_world(data))
    assert [o.why_not for o in a.outcomes] == [o.why_not for o in b.outcomes]
