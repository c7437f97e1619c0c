"""Conformance of every per-query search, baselines and exhaustive reference alike.

One suite, run against each search on small variations of the tiny world: candidates meet their
SLO and fit on their own, come cheapest first, are reproducible for a fixed seed, a query without
candidates says why, and no baseline beats the oracle (exhaustive search + exact MILP) on
goodput. A few tests then pin each baseline's own contract (its budget, its tiers).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import pytest

import circinus
from circinus.baselines import MultiTierSearch, OnlineBayesOptSearch, RandomSearch
from circinus.baselines.space import plan_space
from circinus.estimate import AnalyticEstimator
from circinus.planner import SEARCHES
from circinus.search.base import QueryCandidates
from circinus.search.exhaustive import RAISED_SHARE
from circinus.search.placements import eligible_devices
from circinus.select.base import SelectionProblem
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex
from tinyworld import make_tiny_world

PAIRED = {"exhaustive": "milp", "vulcan": "fcfs", "vulcan-alone": "milp", "jellybean": "fcfs",
          "jellybean-alone": "milp", "infaas": "fcfs", "nexus": "fcfs", "random": "milp"}
"""Each search under test with the selector it is meant to run with."""


def _tight(data: dict[str, Any]) -> None:
    """Latency bounds that rule out most plans."""
    data["queries"][0]["slo"]["latency_ms"] = 110
    data["queries"][1]["slo"]["latency_ms"] = 90


def _scarce(data: dict[str, Any]) -> None:
    """Fewer units than the queries want, and a third camera competing for them."""
    data["devices"][0]["units"] = 3
    data["devices"][1]["units"] = 1
    extra = copy.deepcopy(data["queries"][0])
    extra["name"] = "cam-3"
    data["queries"].append(extra)


def _picky(data: dict[str, Any]) -> None:
    """An unattainable accuracy, a tight budget and a camera no device can reach."""
    data["queries"][0]["slo"]["min_accuracy"] = 0.99
    data["queries"][1]["slo"]["max_cost_per_hour"] = 0.02
    data["sites"].append({"name": "kiosk", "tier": "edge"})
    data["queries"].append({"name": "cam-far", "pipeline": "vision",
                            "sources": {"camera": "kiosk"}, "rate_rps": 1})


def _spread(data: dict[str, Any]) -> None:
    """A second, smaller edge box and stages allowed on two devices."""
    data["devices"].insert(1, {"name": "shop-box-2", "site": "shop", "hardware": "arm-cpu",
                               "units": 2, "price_per_unit_hour": 0.02})
    data["planner"]["max_devices_per_operator"] = 2


def _world(*changes: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = make_tiny_world()
    for change in changes:
        change(data)
    return data


WORLDS = {
    "tiny": _world(),
    "tight": _world(_tight),
    "scarce": _world(_scarce),
    "picky": _world(_picky),
    "spread": _world(_spread),
    "scarce-tight": _world(_scarce, _tight),
}


def _search(key: str, data: dict[str, Any]) -> tuple[WorldIndex, list[QueryCandidates]]:
    index = build_index(parse_world(data))
    search = SEARCHES[key](estimator=AnalyticEstimator(index=index),
                           settings=index.world.planner)
    return index, search.search(index.world.queries)


@pytest.mark.parametrize("world", sorted(WORLDS))
@pytest.mark.parametrize("key", sorted(PAIRED))
def test_candidates_meet_their_slo_fit_and_come_cheapest_first(key: str, world: str) -> None:
    index, found = _search(key, WORLDS[world])
    estimator = AnalyticEstimator(index=index)
    assert [qc.query for qc in found] == [q.name for q in index.world.queries]
    for query, qc in zip(index.world.queries, found, strict=True):
        most = index.world.planner.candidates_per_query
        if key in ("circinus", "exhaustive"):  # raised plans beside them (search/exhaustive.py)
            most += max(1, most // RAISED_SHARE)
        assert len(qc.candidates) <= most
        assert (qc.reason is None) == bool(qc.candidates), (qc.query, qc.reason)
        costs = [c.estimate.cost_per_hour for c in qc.candidates]
        assert costs == sorted(costs)
        assert len({c.plan for c in qc.candidates}) == len(qc.candidates)
        for cand in qc.candidates:
            assert cand.plan.query == query.name
            assert [s.stage for s in cand.plan.stages] == list(
                index.pipelines[query.pipeline].order)
            assert cand.estimate.meets(query.slo), (qc.query, cand.estimate)
            assert cand.estimate == estimator.estimate(query, cand.plan)
            assert cand.estimate.max_utilization <= index.world.planner.max_utilization + 1e-9
            for dev, units in cand.estimate.device_units:
                assert units <= index.devices[dev].units + 1e-9, (qc.query, dev)
            for dev, gb in cand.estimate.device_memory_gb:
                cap = index.devices[dev].memory_gb
                assert cap is None or gb <= cap + 1e-9, (qc.query, dev)


@pytest.mark.parametrize("world", ["tiny", "scarce-tight", "spread"])
@pytest.mark.parametrize("key", sorted(PAIRED))
def test_same_seed_same_candidates(key: str, world: str) -> None:
    _, first = _search(key, WORLDS[world])
    _, second = _search(key, WORLDS[world])
    assert first == second


@pytest.mark.parametrize("key", sorted(PAIRED))
def test_a_query_without_candidates_says_why(key: str) -> None:
    _, found = _search(key, WORLDS["picky"])
    reasons = {qc.query: qc.reason for qc in found}
    assert reasons["cam-1"] is not None and reasons["cam-1"].startswith("accuracy:")
    assert reasons["cam-far"] is not None
    if key != "exhaustive":
        assert reasons["cam-far"].startswith("placement:")


# Not "spread": there JellyBean's spill-over placements (several replicas on each of two
# devices) lie outside the exhaustive search's option space, which is then no oracle.
@pytest.mark.parametrize("world", ["tiny", "tight", "scarce", "picky", "scarce-tight"])
@pytest.mark.parametrize("key", sorted(PAIRED))
def test_planner_runs_and_no_baseline_beats_the_oracle(key: str, world: str) -> None:
    data = parse_world(WORLDS[world])
    result = circinus.Planner(search=key, selector=PAIRED[key]).plan(data)
    oracle_settings = data.planner.model_copy(update={"candidates_per_query": 64})
    oracle = circinus.Planner(search="exhaustive", selector="milp",
                              settings=oracle_settings).plan(data)
    assert oracle.selection.status == "optimal"
    assert result.goodput <= oracle.goodput + 1e-9
    for outcome, query in zip(result.outcomes, data.queries, strict=True):
        assert (outcome.estimate is not None) == outcome.admitted
        if outcome.estimate is not None:
            assert outcome.estimate.meets(query.slo)
        else:
            assert outcome.reason


# -- each baseline's own contract ---------------------------------------------------------------


def test_vulcan_runs_its_trial_budget_over_the_accuracy_feasible_space() -> None:
    from circinus.baselines.vulcan import _feasible_tree

    data = _world()
    data["queries"][0]["slo"]["min_accuracy"] = 0.85  # only the large detector reaches it
    for key in ("vulcan", "vulcan-alone"):
        index, found = _search(key, data)
        vectors = AnalyticEstimator(index=index)
        for query, qc in zip(index.world.queries, found, strict=True):
            space = plan_space(index, index.world.planner, query,
                               eligible_devices(index, query, index.world.planner.tiers))
            feasible = [v for v in itertools.product(*[[c for c, _ in ch]
                                                      for ch in space.choices])
                        if (vectors.accuracy(query.pipeline, dict(zip(space.stages, v,
                                                                      strict=True))) or 0)
                        >= (query.slo.min_accuracy or 0) - 1e-9]
            _, plans = _feasible_tree([space], feasible)
            if query.name == "cam-1":
                assert plans < space.size()  # the filter removes the small detector
            assert qc.evaluations == min(OnlineBayesOptSearch.trials, plans)
            for cand in qc.candidates:
                assert cand.estimate.accuracy is not None
                assert cand.estimate.accuracy >= (query.slo.min_accuracy or 0) - 1e-9


def test_vulcan_and_random_depend_on_the_seed_only() -> None:
    data = _world(_tight)
    for key in ("vulcan-alone", "random"):
        data["planner"]["seed"] = 0
        _, zero = _search(key, data)
        data["planner"]["seed"] = 7
        _, seven = _search(key, data)
        assert [qc.evaluations for qc in zero] == [qc.evaluations for qc in seven]
        assert zero != seven, key  # the tried plans differ, hence the candidates


def _small_edge(data: dict[str, Any]) -> None:
    """An edge box with room for two replicas and busier cameras: the first takes it."""
    data["devices"][0]["units"] = 2
    for q in data["queries"]:
        q["rate_rps"] = 20


@pytest.mark.parametrize("key", ["vulcan", "jellybean"])
def test_online_baselines_plan_each_query_on_the_capacity_left(key: str) -> None:
    data = _world(_scarce, _small_edge)
    index, found = _search(key, data)
    _, alone = _search(f"{key}-alone", data)
    used: dict[tuple[str, str], float] = {}
    for qc in found:
        assert len(qc.candidates) <= 1
        if qc.candidates:
            for r, amount in qc.candidates[0].estimate.usage().items():
                used[r] = used.get(r, 0.0) + amount
    for r, amount in used.items():
        if r in index.capacities:
            assert amount <= index.capacities[r] + 1e-9, r
    # In whole replicas per shared deployment too (what the selection counts).
    problem = SelectionProblem.build(index, found)
    exact = problem.use([0 if qc.candidates else None for qc in found])
    for r, amount in exact.items():
        if r in index.capacities:
            assert amount <= index.capacities[r] + 1e-9, r
    # Alone, each camera's cheapest plan uses the edge box; online, the later ones find it
    # taken and get another plan or a capacity reason.
    moved = 0
    for qc, own in zip(found, alone, strict=True):
        if own.candidates and (not qc.candidates or qc.candidates[0] != own.candidates[0]):
            moved += 1
            assert qc.candidates or (qc.reason or "").startswith("capacity:"), qc.reason
    assert moved >= 1


def test_random_draws_its_samples() -> None:
    _, found = _search("random", WORLDS["tiny"])
    assert [qc.evaluations for qc in found] == [RandomSearch.samples] * len(found)


@pytest.mark.parametrize("key", ["jellybean", "jellybean-alone"])
def test_jellybean_sends_nothing_to_a_lower_tier_and_serves_batch_1(key: str) -> None:
    index, found = _search(key, WORLDS["spread"])
    rank = {"edge": 0, "cloud": 1}
    beam = MultiTierSearch.beam_width * MultiTierSearch.best_assignments
    assert any(qc.candidates for qc in found)
    for query, qc in zip(index.world.queries, found, strict=True):
        pipe = index.pipelines[query.pipeline]
        assert qc.evaluations <= beam * len(found)
        for cand in qc.candidates:
            tiers = {src: {rank[index.sites[site].tier]} for src, site in query.sources.items()}
            for stage in cand.plan.stages:
                assert stage.batch == 1 and stage.level in (0.8, 0.4)
                tiers[stage.stage] = {rank[index.sites[index.devices[d].site].tier]
                                      for d in stage.devices}
                assert all(min(tiers[stage.stage]) >= max(tiers[p])
                           for p in pipe.preds[stage.stage])


def test_jellybean_plans_queries_of_one_workflow_together() -> None:
    data = _world()
    data["queries"].append({**copy.deepcopy(data["queries"][0]), "name": "cam-1b"})
    data["queries"][2]["rate_rps"] = 3
    _, found = _search("jellybean", data)
    plans = {qc.query: qc.candidates[0].plan for qc in found if qc.candidates}
    assert {"cam-1", "cam-1b"} <= set(plans)
    # One workflow (same pipeline, sources, accuracy floor and work): the same workers, the
    # same variants, joined as shared deployments; its work billed once.
    same = [[(s.config, s.batch, s.devices, s.level) for s in plans[q].stages]
            for q in ("cam-1", "cam-1b")]
    assert same[0] == same[1]
    assert found[2].evaluations == 0 < found[0].evaluations
    dedicated = copy.deepcopy(data)
    dedicated["planner"]["sharing"] = "dedicated"
    _, alone = _search("jellybean", dedicated)
    assert all(s.level is None for qc in alone for c in qc.candidates for s in c.plan.stages)
    assert all(qc.evaluations > 0 for qc in alone)


def test_infaas_plans_use_one_tier_and_one_device_per_stage() -> None:
    index, found = _search("infaas", WORLDS["spread"])
    for query, qc in zip(index.world.queries, found, strict=True):
        assert qc.candidates
        for cand in qc.candidates:
            sites = {index.devices[d].site for s in cand.plan.stages for d in s.devices}
            tiers = {index.sites[site].tier for site in sites}
            assert all(len(s.placement) == 1 for s in cand.plan.stages)
            assert tiers == {"cloud"} or sites <= set(query.sources.values())
