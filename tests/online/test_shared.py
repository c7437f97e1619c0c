"""The online planner with shared deployments: the start is the batch planner's; an arrival
joins a deployment's headroom for its own costs alone, or adds the replicas the deployment's
load then needs; a departure shrinks its deployments; and after every event the ledger's use,
recomputed here from scratch in whole replicas, is within every capacity, and every admitted
query meets its SLO estimated anew at its deployments' real state and its links' load."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from two_shops import make_world, query

import circinus
from circinus.estimate import AnalyticEstimator
from circinus.online import OnlinePlanner
from circinus.search.base import QueryCandidates
from circinus.select.base import SelectionProblem
from circinus.select.deployments import ledger, replicas
from circinus.select.sizing import states
from circinus.spec import parse_world


def _shared(specs: list[dict[str, Any]], **planner: Any) -> dict[str, Any]:
    data = make_world(specs, sharing="shared")
    data["planner"].update(planner)
    return data


def _check(online: OnlinePlanner) -> None:
    """The ledger equals the use of the admitted plans recomputed in whole replicas, within
    every capacity; its cost is theirs and the sum of the reported estimates; every admitted
    plan meets its SLO estimated anew at the deployments' real state and the links' load."""
    index = online.index()
    specs = {q.name: q for q in index.world.queries}
    names = list(online.admitted)
    runs = [online.plan_of(n) for n in names]
    problem = SelectionProblem.build(index, [
        QueryCandidates(n, (c,), None, 0) for n, c in zip(names, runs, strict=True)
        if c is not None])
    chosen = (0,) * len(names)
    fresh, used = problem.use(chosen), online.used()
    for res in set(fresh) | set(used):
        assert used.get(res, 0.0) == pytest.approx(fresh.get(res, 0.0), abs=1e-9), res
    for res, cap in index.capacities.items():
        assert used.get(res, 0.0) <= cap * (1 + 1e-9) + 1e-9, (res, used.get(res), cap)
    assert online.cost_per_hour == pytest.approx(problem.cost(chosen), abs=1e-9)
    result = online.result(why_not=False)
    assert result.cost_per_hour == pytest.approx(online.cost_per_hour, abs=1e-9)
    book = ledger(problem, chosen)
    assert online.deployments() == {d: n for d, n in book.replicas.items() if n}
    assert {d.name: d.replicas for d in result.deployments} == online.deployments()
    loads = {tuple(name.split("->")): used.get((kind, name), 0.0) / cap
             for (kind, name), cap in index.capacities.items() if kind == "link"}
    real = AnalyticEstimator(index=index, link_load=loads if online.settings.link_check else None
                             ).with_deployments(states(book))
    for name, cand in zip(names, runs, strict=True):
        assert cand is not None
        assert real.estimate(specs[name], cand.plan).meets(specs[name].slo), name


def _loads(online: OnlinePlanner) -> dict[str, float]:
    """Load on every shared deployment, summed from the admitted plans' estimates."""
    out: dict[str, float] = {}
    for name in online.admitted:
        cand = online.plan_of(name)
        assert cand is not None
        for d, load in cand.estimate.deployment_load:
            out[d] = out.get(d, 0.0) + load
    return out


_FIVE = [query(f"q{i}", site, rate) for i, (site, rate) in enumerate(
    [("shop-a", 5), ("shop-b", 10), ("shop-a", 20), ("shop-b", 2), ("shop-a", 10)])]


@pytest.mark.parametrize(("specs", "sharing"), [
    (_FIVE, "shared"),
    ([query("big", "shop-b", 20), query("c1", max_cost_per_hour=0.2), query("x0", rate=10)],
     "shared"),
    (_FIVE, "mixed"),  # a stage may also take replicas of its own
    # Five rejected, for the whole replicas they would add to the pool.
    ([query(f"q{i}", ("shop-b", "shop-a")[i % 2], 40) for i in range(12)], "shared"),
])
def test_start_equals_the_batch_planner(specs: list[dict[str, Any]], sharing: str) -> None:
    data = _shared(specs, sharing=sharing)
    batch = circinus.Planner().plan(parse_world(data))
    online = OnlinePlanner(parse_world(data), why_not=False)
    mine = online.result()
    assert [o.admitted for o in mine.outcomes] == [o.admitted for o in batch.outcomes]
    assert mine.cost_per_hour == pytest.approx(batch.cost_per_hour)
    assert online.cost_per_hour == pytest.approx(batch.selection.cost_per_hour)
    assert replace(mine.selection, seconds=0.0) == replace(batch.selection, seconds=0.0)
    assert [(o.name, o.plan, o.estimate, o.reason) for o in mine.outcomes] == [
        (o.name, o.plan, o.estimate, o.reason) for o in batch.outcomes]
    assert mine.resources == batch.resources
    assert batch.deployments and mine.deployments == batch.deployments
    _check(online)


def test_an_arrival_that_would_need_a_replica_more_than_fits_waits_and_says_so() -> None:
    online = OnlinePlanner(parse_world(_shared(
        [query(f"q{i}", ("shop-b", "shop-a")[i % 2], 40) for i in range(12)])))
    late = online.arrive(query("late", "shop-b", 40))
    assert not late.admitted and late.reason is not None and late.why_not is not None
    assert late.reason.startswith("capacity: device pool has 0 of 3 units left")
    assert late.reason.endswith("in the whole replicas of the shared deployments they join")
    assert late.why_not.resource == ("device", "pool")
    _check(online)


def test_an_arrival_joins_a_deployment_with_headroom_for_its_network_cost() -> None:
    online = OnlinePlanner(parse_world(_shared([query("q1")])), why_not=False)
    before, loads, cost = online.deployments(), _loads(online), online.cost_per_hour
    arrival = online.arrive(query("q2"))
    assert arrival.admitted and arrival.moved == ()
    assert arrival.plan is not None and all(s.shared for s in arrival.plan.stages)
    assert arrival.estimate is not None
    joined = dict(arrival.estimate.deployment_load)
    assert set(joined) <= set(before)  # every deployment it joins has room for it
    for d, load in joined.items():
        level = float(d.rpartition("/u")[2])
        assert replicas(loads[d] + load, level) <= before[d]
    assert online.deployments() == before
    assert online.cost_per_hour - cost == pytest.approx(arrival.estimate.network_cost_per_hour)
    _check(online)


def test_an_arrival_that_would_slow_a_co_tenant_past_its_slo_runs_elsewhere() -> None:
    # q1 (250 ms) shares nothing yet; a newcomer like it joins its deployments, one whose
    # requests take eight times as long would slow q1 past its SLO there, so it runs on
    # deployments of its own although that costs more.
    heavy = {**query("q2", "shop-b"), "work_scale": {"detect": 8.0, "classify": 8.0}}
    for spec, joins in ((query("q2", "shop-b"), True), (heavy, False)):
        online = OnlinePlanner(parse_world(_shared([query("q1", latency_ms=250.0)])),
                               why_not=False)
        before = online.deployments()
        arrival = online.arrive(spec)
        assert arrival.admitted and arrival.estimate is not None
        assert bool(set(dict(arrival.estimate.deployment_load)) & set(before)) == joins
        _check(online)


def _busy_box() -> OnlinePlanner:
    """q1 (40 req/s) on 2 replicas of a detector on a 4-unit box-a, sized for 80 %."""
    data = _shared([query("q1", rate=40)], utilization_levels=1)
    data["devices"][0]["units"] = 4
    return OnlinePlanner(parse_world(data), why_not=False)


def test_an_arrival_beyond_the_headroom_adds_the_replicas_its_load_needs() -> None:
    online = _busy_box()
    before, loads, cost = online.deployments(), _loads(online), online.cost_per_hour
    arrival = online.arrive(query("q2", rate=40))
    assert arrival.admitted and arrival.estimate is not None
    table = online.result(why_not=False).deployments
    specs = {d.name: d.spec for d in table}
    added = extra = 0.0
    for d, load in arrival.estimate.deployment_load:
        need = replicas(loads.get(d, 0.0) + load, specs[d].level)
        assert online.deployments()[d] == need
        added += need - before.get(d, 0)
        extra += (need - before.get(d, 0)) * specs[d].price_per_hour
    assert added == 2  # 1.6 + 1.6 busy replicas at 80 %: 4 replicas, 2 of them new
    assert online.cost_per_hour - cost == pytest.approx(
        arrival.estimate.network_cost_per_hour + extra)
    _check(online)


def test_a_departure_frees_the_replicas_the_rest_does_not_need() -> None:
    online = _busy_box()
    before, cost = online.deployments(), online.cost_per_hour
    online.arrive(query("q2", rate=40))
    assert sum(online.deployments().values()) > sum(before.values())
    gone = online.depart("q2")
    assert gone.was_admitted and gone.evicted == () and gone.moved == ()
    assert online.deployments() == before
    assert online.cost_per_hour == pytest.approx(cost)
    _check(online)
    online.depart("q1")
    assert online.deployments() == {} and online.used() == {} and online.cost_per_hour == 0.0


def test_a_co_tenant_left_over_its_cost_bound_by_a_departure_waits() -> None:
    # c1 shares both deployments of its plan; once "big" leaves, its share of their replicas
    # costs more than its bound of 0.2 $/h.
    online = OnlinePlanner(parse_world(_shared([
        query("big", "shop-b", 20), query("c1", max_cost_per_hour=0.2), query("x0", rate=10)])),
        why_not=False)
    assert set(online.admitted) == {"big", "c1", "x0"}
    gone = online.depart("big")
    assert gone.evicted == ("c1",) and online.waiting == ("c1",)
    (out,) = [o for o in online.result().outcomes if o.name == "c1"]
    assert out.reason is not None and "shared deployment" in out.reason
    _check(online)


def test_plan_file_lists_the_shared_deployments_and_routes() -> None:
    online = OnlinePlanner(parse_world(_shared([query("q1"), query("q2", "shop-b")])))
    online.arrive(query("q3"))
    plan = online.plan_file()
    shared = {d.name: d for d in plan.deployments if d.sharing == "shared"}
    assert sum(d.replicas for d in shared.values()) == sum(online.deployments().values())
    for q in plan.queries:
        assert q.admitted and q.route
        assert all(step.deployment in shared for r in q.route for step in r.deployments)
    assert sorted(shared["classify@pool"].queries) == ["q1", "q2", "q3"]


def test_rebalance_and_capacity_changes_keep_the_ledger_exact() -> None:
    specs = _FIVE
    batch = circinus.Planner().plan(parse_world(_shared(specs)))
    online = OnlinePlanner(parse_world(_shared([])), max_moves=0, why_not=False)
    for spec in specs:
        online.arrive(spec)
        _check(online)
    full = online.rebalance(keep_admitted=False)
    assert full.goodput_after == pytest.approx(batch.goodput)
    _check(online)
    cut = online.set_capacity(device="box-a", units=1)
    _check(online)
    assert set(cut.evicted) | set(cut.moved)
    online.remove_device("box-a")
    _check(online)
    online.add_device({"name": "box-a2", "site": "shop-a", "hardware": "cpu", "units": 4,
                       "price_per_unit_hour": 0.05})
    _check(online)


def test_a_long_run_of_arrivals_and_departures_keeps_the_ledger_exact() -> None:
    # Enough departures for the ledger to drop the slots of the queries gone (twice).
    online = OnlinePlanner(parse_world(_shared([query("stay", "shop-b")])), why_not=False)
    for i in range(160):
        online.arrive(query(f"q{i}", rate=(2.0, 5.0, 10.0)[i % 3]))
        if i % 4 != 3:
            online.depart(f"q{i}")
    assert len(online.queries) == 41
    _check(online)
    online.rebalance()
    for name in online.queries[:20]:
        online.depart(name)
    _check(online)


_SLOS = st.fixed_dictionaries({
    "latency_ms": st.sampled_from([150.0, 400.0]),
    "min_accuracy": st.sampled_from([0.5, 0.6, 0.7]),
    "max_cost_per_hour": st.sampled_from([0.2, 0.6, 5.0]),
})
_EVENTS = st.lists(st.one_of(
    st.tuples(st.just("arrive"), _SLOS, st.sampled_from([2.0, 5.0, 10.0, 20.0]),
              st.sampled_from(["shop-a", "shop-b"]), st.sampled_from([1.0, 1.5])),
    st.tuples(st.just("depart"), st.integers(0, 10)),
), min_size=1, max_size=10)


@settings(max_examples=25, deadline=None)
@given(_EVENTS)
def test_arrivals_and_departures_keep_the_ledger_exact_and_every_slo(events: list[Any]) -> None:
    # Work multipliers differ, so co-tenants of a deployment may slow each other past an SLO.
    online = OnlinePlanner(parse_world(_shared([])), why_not=False)
    for i, event in enumerate(events):
        if event[0] == "arrive":
            _, slo, rate, site, scale = event
            arrival = online.arrive({**query(f"e{i}", site, rate, **slo),
                                     "work_scale": {"classify": scale}})
            assert arrival.admitted == (f"e{i}" in online.admitted)
        elif online.queries:
            name = online.queries[event[1] % len(online.queries)]
            gone = online.depart(name)
            assert set(gone.evicted) <= set(online.waiting)
        _check(online)


@settings(max_examples=20, deadline=None)
@given(_EVENTS)
def test_a_departure_tries_every_waiting_query_that_may_now_fit(events: list[Any]) -> None:
    # The planner skips the waiting queries whose blocking capacities a departure did not
    # relieve; one that tries every waiting query the departure touches admits the same.
    def planner() -> OnlinePlanner:
        return OnlinePlanner(parse_world(_shared([query("a", rate=20), query("b", "shop-b")])),
                             why_not=False)

    online, plain = planner(), planner()
    tries_all = plain._state.refill
    plain._state.refill = lambda freed, relieved=None: tries_all(freed)  # type: ignore[method-assign]
    for i, event in enumerate(events):
        for one in (online, plain):
            if event[0] == "arrive":
                _, slo, rate, site, scale = event
                one.arrive({**query(f"e{i}", site, rate, **slo),
                            "work_scale": {"classify": scale}})
            elif one.queries:
                one.depart(one.queries[event[1] % len(one.queries)])
        assert _plans(online) == _plans(plain)


def _plans(online: OnlinePlanner) -> dict[str, Any]:
    return {n: c.plan for n in online.admitted if (c := online.plan_of(n)) is not None}


_CHANGES = st.lists(st.one_of(
    st.tuples(st.just("arrive"), _SLOS, st.sampled_from([2.0, 5.0, 10.0, 20.0]),
              st.sampled_from(["shop-a", "shop-b"]), st.sampled_from([1.0, 1.5])),
    st.tuples(st.just("depart"), st.integers(0, 10)),
    st.tuples(st.just("device"), st.sampled_from(["box-a", "box-b", "pool"]),
              st.sampled_from([1.0, 2.0, 4.0])),
    st.tuples(st.just("link"), st.sampled_from(["shop-a->cloud", "cloud->shop-b"]),
              st.sampled_from([None, 5.0, 40.0])),
    st.tuples(st.just("remove"), st.sampled_from(["box-a", "box-b"])),
    st.tuples(st.just("rebalance"), st.booleans()),
), min_size=1, max_size=10)


@settings(max_examples=15, deadline=None)
@given(_CHANGES)
def test_capacity_changes_and_rebalances_keep_the_ledger_exact_and_every_slo(
        events: list[Any]) -> None:
    online = OnlinePlanner(parse_world(_shared([query("a", rate=10), query("b", "shop-b")])),
                           why_not=False)
    for i, event in enumerate(events):
        devices = online.index().devices
        if event[0] == "arrive":
            _, slo, rate, site, scale = event
            online.arrive({**query(f"e{i}", site, rate, **slo),
                           "work_scale": {"classify": scale}})
        elif event[0] == "depart" and online.queries:
            online.depart(online.queries[event[1] % len(online.queries)])
        elif event[0] == "device" and event[1] in devices:
            online.set_capacity(device=event[1], units=event[2])
        elif event[0] == "link":
            online.set_capacity(link=event[1], mbps=event[2])
        elif event[0] == "remove" and event[1] in devices:
            online.remove_device(event[1])
        elif event[0] == "rebalance":
            online.rebalance(keep_admitted=event[1])
        _check(online)
