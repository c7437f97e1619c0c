"""The nearest admissible SLO: every suggestion admits the query when it is re-planned alone
with the other queries' plans fixed, a slightly tighter bound does not, and a query no
relaxation helps says so.

Both ways of running stages are checked. With replicas of their own (``dedicated``) capacity
adds up plan by plan. On shared deployments (``shared``) a plan is admitted when adding it to
the final selection's exact ledger fits (:meth:`~circinus.select.deployments.Ledger.fits`: whole
replicas per deployment) and it meets its SLO at the state its deployments are then in."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import re
from collections.abc import Callable
from typing import Any

import pytest

import circinus
from circinus.estimate import AnalyticEstimator
from circinus.planner import SEARCHES, PlanResult
from circinus.search.base import Candidate, QueryCandidates
from circinus.select.base import SelectionProblem
from circinus.select.deployments import deployment_table, ledger
from circinus.select.sizing import states
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex
from circinus.spec.models import Query, Slo
from circinus.whynot import NearestSlo, Relaxation, Residual

SHARING = ["dedicated", "shared"]

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


def _world(seed: int, sharing: str = "dedicated") -> dict[str, Any]:
    """Six queries with SLOs drawn from a grid; some are rejected for every kind of reason."""
    rng = random.Random(seed)
    data = copy.deepcopy(BASE)
    data["planner"]["sharing"] = sharing
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


def _capacity(index: WorldIndex, result: PlanResult) -> dict[tuple[str, str], float]:
    """The capacities the planner kept the admitted plans within (links under the link
    check's ceilings)."""
    cap = dict(index.capacities)
    return cap if result.link_check is None else result.link_check.usable(cap)


def _admits(index: WorldIndex, search: str, query: Query, used: dict[tuple[str, str], float],
            cap: dict[tuple[str, str], float]) -> bool:
    """Whether ``query``, searched on its own by a fresh search, has a candidate that fits what
    the other queries leave of ``cap`` (their plans fixed)."""
    engine = SEARCHES[search](estimator=AnalyticEstimator(index=index),
                              settings=index.world.planner)
    (found,) = engine.search([query])
    return any(all(used.get(r, 0.0) + v <= cap[r] + 1e-9 for r, v in
                   c.estimate.usage().items() if r in cap) for c in found.candidates)


class _Fixed:
    """The admitted plans of a shared-mode result as a selection problem, each query with its
    plan as its one candidate, chosen: what a re-planned query is added to."""

    def __init__(self, index: WorldIndex, result: PlanResult) -> None:
        admitted = [o for o in result.outcomes if o.admitted]
        assert all(o.plan is not None and o.estimate is not None for o in admitted)
        specs = {q.name: q for q in index.world.queries}
        plans = [o.plan for o in admitted if o.plan is not None]
        cap = _capacity(index, result)
        self.index = index
        self.problem = SelectionProblem(
            tuple(QueryCandidates(o.name, (Candidate(o.plan, o.estimate),), None, 0)
                  for o in admitted if o.plan is not None and o.estimate is not None),
            (1.0,) * len(admitted), cap,
            deployment_table(index, plans, [specs[p.query].pipeline for p in plans]))
        self.chosen: tuple[int | None, ...] = (0,) * len(admitted)
        book = ledger(self.problem, self.chosen)
        assert {d.name: d.replicas for d in result.deployments} == {
            n: r for n, r in book.replicas.items() if r}

    def admits(self, search: str, query: Query) -> bool:
        """Whether ``query``, searched on its own by a fresh search, has a candidate that fits
        the ledger of the admitted plans and meets its SLO on its deployments as they are
        then."""
        index = self.index
        engine = SEARCHES[search](estimator=AnalyticEstimator(index=index),
                                  settings=index.world.planner)
        (found,) = engine.search([query])
        if not found.candidates:
            return False
        plans = [c.plan for c in found.candidates]
        table = dict(self.problem.deployments)
        table.update(deployment_table(index, plans, [query.pipeline] * len(plans)))
        base = self.problem
        book = ledger(SelectionProblem((*base.candidates, found), (*base.weights, 1.0),
                                       base.capacity, table), (*self.chosen, None))
        n = len(base.candidates)
        for k, cand in enumerate(found.candidates):
            if not book.fits(n, k):
                continue
            book.add(n, k)
            real = AnalyticEstimator(index=index).with_deployments(states(book))
            met = real.estimate(query, cand.plan).meets(query.slo)
            book.remove(n)
            if met:
                return True
        return False


def _admitter(index: WorldIndex, result: PlanResult, search: str) -> Callable[[Query], bool]:
    """Whether a query re-planned alone with ``result``'s admitted plans fixed is admitted, in
    the way its world runs stages."""
    if index.world.planner.sharing == "shared":
        fixed = _Fixed(index, result)
        return lambda query: fixed.admits(search, query)
    used, cap = _used(result), _capacity(index, result)
    return lambda query: _admits(index, search, query, used, cap)


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
    admits = _admitter(index, result, search)
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
            if r.nearest is None:  # not even without the bound
                assert not admits(_with(query, r.objective, None)), (o, r)
                hopeless += 1
                continue
            helped += 1
            assert admits(_with(query, r.objective, r.nearest)), (o, r)
            if r.nearest != r.current:
                assert not admits(_with(query, r.objective, _tighter(r))), r
    return helped, hopeless


@pytest.mark.parametrize("sharing", SHARING)
@pytest.mark.parametrize("seed", range(8))
def test_suggestions_admit_and_are_minimal(seed: int, sharing: str) -> None:
    _check(_world(seed, sharing))


@pytest.mark.parametrize("sharing", SHARING)
def test_the_worlds_exercise_both_outcomes(sharing: str) -> None:
    helped = hopeless = 0
    for seed in range(8):
        h, n = _check(_world(seed, sharing))
        helped, hopeless = helped + h, hopeless + n
    assert helped >= 5 and hopeless >= 5


@pytest.mark.parametrize("sharing", SHARING)
@pytest.mark.parametrize("search", ["exhaustive", "infaas"])
def test_other_searches(search: str, sharing: str) -> None:
    for seed in range(3):
        _check(_world(seed, sharing), search)


@pytest.mark.parametrize("sharing", SHARING)
def test_a_full_world_says_nothing_helps(sharing: str) -> None:
    data = copy.deepcopy(BASE)
    data["planner"]["sharing"] = sharing
    if sharing == "shared":
        # Shared deployments pack the box; a link too thin for the camera stream keeps the
        # cloud out of reach.
        data["links"][0]["capacity_mbps"] = 10
    data["queries"] = [{"name": f"q{i}", "pipeline": "vision", "sources": {"cam": "shop"},
                        "rate_rps": 10.0, "slo": {"latency_ms": 400.0, "min_accuracy": 0.6}}
                       for i in range(12)]
    index = build_index(parse_world(data))
    result = circinus.Planner(why_not=True).plan(index)
    rejected = [o for o in result.outcomes if not o.admitted]
    assert rejected
    specs = {q.name: q for q in index.world.queries}
    admits = _admitter(index, result, "circinus")
    for o in rejected:
        assert o.why_not is not None and o.why_not.admissible is False
        assert [r.objective for r in o.why_not.relaxations or ()] == ["latency_ms",
                                                                        "min_accuracy"]
        assert not admits(specs[o.name].model_copy(update={"slo": Slo()}))


@pytest.mark.parametrize("sharing", SHARING)
def test_alike_rejected_queries_are_explained_once(sharing: str) -> None:
    """Rejected queries equal but for their names share one search: once one is explained the
    others' class is known (at that residual only), and each gets what a search of its own
    gives; a query of another SLO is not of the class."""
    data = copy.deepcopy(BASE)
    data["planner"]["sharing"] = sharing
    data["links"][0]["capacity_mbps"] = 10
    data["queries"] = [{"name": f"q{i}", "pipeline": "vision", "sources": {"cam": "shop"},
                        "rate_rps": 10.0, "slo": {"latency_ms": 400.0, "min_accuracy": 0.6}}
                       for i in range(12)]
    index = build_index(parse_world(data))
    result = circinus.Planner().plan(index)
    assert result.problem is not None
    problem = result.problem if result.link_check is None else dataclasses.replace(
        result.problem, capacity=result.link_check.usable(result.problem.capacity))
    residual = Residual.of(problem, result.selection.chosen, index)
    rejected = [q for q, o in enumerate(result.outcomes) if not o.admitted]
    assert len(rejected) >= 2
    a, b = rejected[:2]
    queries = index.world.queries

    def engine() -> NearestSlo:
        return NearestSlo(search=SEARCHES["circinus"](
            estimator=AnalyticEstimator(index=index), settings=index.world.planner))

    def explain(nearest: NearestSlo, q: int) -> tuple[Relaxation, ...] | None:
        reason = result.outcomes[q].reason
        assert reason is not None
        return nearest.explain(queries[q], problem.candidates[q], reason,
                               residual=residual).relaxations

    shared = engine()
    assert not shared.knows(queries[b], residual)
    first = explain(shared, a)
    assert first is not None
    assert shared.knows(queries[b], residual)
    assert not shared.knows(queries[b], Residual.of(problem, result.selection.chosen, index))
    other = queries[b].model_copy(update={"slo": Slo(latency_ms=390.0, min_accuracy=0.6)})
    assert not shared.knows(other, residual)
    assert explain(shared, b) == first == explain(engine(), b)


def test_shared_capacity_is_named_in_whole_replicas() -> None:
    """In the full shared world the rejected queries lack the box, in the whole replicas
    their plans would add there; the reason and the binding resource say so."""
    data = copy.deepcopy(BASE)
    data["planner"]["sharing"] = "shared"
    data["links"][0]["capacity_mbps"] = 10
    data["queries"] = [{"name": f"q{i}", "pipeline": "vision", "sources": {"cam": "shop"},
                        "rate_rps": 10.0, "slo": {"latency_ms": 400.0, "min_accuracy": 0.6}}
                       for i in range(12)]
    result = circinus.Planner().plan(parse_world(data))
    for o in result.outcomes:
        if not o.admitted:
            assert o.why_not is not None and o.why_not.resource == ("device", "box")
            assert o.reason is not None and o.reason.startswith("capacity: device box has 0 ")
            assert o.reason.endswith("in the whole replicas of the shared deployments they "
                                     "join")


@pytest.mark.parametrize("sharing", SHARING)
def test_binding_names_the_objective_or_resource(sharing: str) -> None:
    seen = set()
    for seed in range(8):
        result = circinus.Planner().plan(parse_world(_world(seed, sharing)))
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


@pytest.mark.parametrize("sharing", SHARING)
def test_deterministic(sharing: str) -> None:
    data = _world(3, sharing)
    a = circinus.Planner(why_not=True).plan(parse_world(data))
    b = circinus.Planner(why_not=True).plan(parse_world(data))
    assert [o.why_not for o in a.outcomes] == [o.why_not for o in b.outcomes]


def test_a_rarely_taken_branch_is_sized_at_its_own_rate() -> None:
    # A fifth of the frames take a 100 ms model of 2 units a replica: 0.2 busy at 2 req/s, one
    # replica; at the frame rate (10 req/s) it would need two, more than the 3.5-unit box.
    # Rejected on its 50 ms p95, the query is admissible at a looser bound.
    op = {"output_kb": 1, "accuracy": 1.0}
    data = {
        "name": "branch", "hardware": [{"name": "cpu"}],
        "sites": [{"name": "shop", "tier": "edge"}],
        "devices": [{"name": "box", "site": "shop", "hardware": "cpu", "units": 3.5,
                     "price_per_unit_hour": 0.05}],
        "operators": [
            {"name": "route", "profiles": [{"hardware": "cpu", "mean_ms": 2, "units": 0.5}], **op},
            {"name": "slow", "profiles": [{"hardware": "cpu", "mean_ms": 100, "units": 2}], **op},
            {"name": "out", "profiles": [{"hardware": "cpu", "mean_ms": 1, "units": 0.5}], **op}],
        "pipelines": [{"name": "p", "sources": [{"name": "cam", "output_kb": 10}],
                       "stages": [{"name": "route", "operator": "route"},
                                  {"name": "slow", "operator": "slow"},
                                  {"name": "out", "operator": "out"}],
                       "edges": [["cam", "route"], ["route", "slow"], ["route", "out"],
                                 ["slow", "out"]],
                       "branches": [{"at": "route", "to": {"slow": 0.2}}]}],
        "queries": [{"name": "q", "pipeline": "p", "sources": {"cam": "shop"}, "rate_rps": 10,
                     "slo": {"latency_ms": 50.0, "percentile": 95}}],
        "planner": {"sharing": "dedicated"},
    }
    index = build_index(parse_world(data))
    (o,) = circinus.Planner(why_not=True).plan(index).outcomes
    assert not o.admitted and o.why_not is not None
    assert o.why_not.admissible is True
    (latency,) = [r for r in o.why_not.relaxations or () if r.objective == "latency_ms"]
    assert latency.nearest is not None and latency.nearest > 50.0
