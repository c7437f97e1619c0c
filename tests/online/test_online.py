"""The online planner: every event keeps the capacities (checked with an independent sum of the
admitted plans' use) and the admitted queries' plans (unless listed as moved); departures free
room for waiting queries; its goodput lies between first-come-first-served and the global
optimum over the same candidates; the same events give the same state."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from two_shops import WORLD, make_world, query

import circinus
from circinus.errors import SpecError, UnknownNameError
from circinus.estimate import AnalyticEstimator
from circinus.online import OnlinePlanner
from circinus.plan.file import PlanFile
from circinus.spec import parse_world


def _check(online: OnlinePlanner) -> None:
    """No capacity exceeded (summed here from the plans' estimates); every admitted plan is
    one of its query's candidates and meets its SLO, also estimated anew at the utilisation of
    the shared links it crosses."""
    index = online.index()
    specs = {q.name: q for q in index.world.queries}
    used: dict[tuple[str, str], float] = {}
    for name in online.admitted:
        cand = online.plan_of(name)
        assert cand is not None and cand.estimate.meets(specs[name].slo)
        for res, amount in cand.estimate.usage().items():
            used[res] = used.get(res, 0.0) + amount
    for res, cap in index.capacities.items():
        assert used.get(res, 0.0) <= cap * (1 + 1e-9) + 1e-9, (res, used.get(res), cap)
    if not online.settings.link_check:
        return
    loads = {tuple(name.split("->")): used.get((kind, name), 0.0) / cap
             for (kind, name), cap in index.capacities.items() if kind == "link"}
    contended = AnalyticEstimator(index=index, link_load=loads)
    for name in online.admitted:
        cand = online.plan_of(name)
        assert cand is not None
        assert contended.estimate(specs[name], cand.plan).meets(specs[name].slo), name
    for res in used:
        if res[0] == "device":
            assert res[1] in index.devices  # nothing runs on a removed device


def _alone(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the link check off: plans estimated as if alone on their links."""
    data["planner"] = {**data["planner"], "link_check": False}
    return data


def _plans(online: OnlinePlanner) -> dict[str, Any]:
    return {n: c.plan for n in online.admitted if (c := online.plan_of(n)) is not None}


@pytest.mark.parametrize("specs", [
    [query(f"q{i}", site, rate) for i, (site, rate) in enumerate(
        [("shop-a", 5), ("shop-b", 10), ("shop-a", 20), ("shop-b", 2), ("shop-a", 10)])],
    # The link check drops a plan of "big" (20 req/s over shop-a's 40 Mbit/s uplink).
    [query("big", rate=20), query("s1", max_cost_per_hour=0.2),
     query("s2", max_cost_per_hour=0.2, latency_ms=300)],
])
def test_start_equals_the_batch_planner(specs: list[dict[str, Any]]) -> None:
    data = make_world(specs)
    batch = circinus.Planner().plan(parse_world(data))
    online = OnlinePlanner(parse_world(data), why_not=False)
    mine = online.result()
    assert mine.goodput == batch.goodput
    assert replace(mine.selection, seconds=0.0) == replace(batch.selection, seconds=0.0)
    assert [(o.name, o.admitted, o.plan, o.estimate, o.reason) for o in mine.outcomes] == [
        (o.name, o.admitted, o.plan, o.estimate, o.reason) for o in batch.outcomes]
    assert mine.resources == batch.resources
    assert mine.link_check is not None and batch.link_check is not None
    assert mine.link_check.ceilings == batch.link_check.ceilings
    _check(online)


def test_an_arrival_its_uplink_cannot_carry_waits() -> None:
    # s1 fills box-a; "big" would send 32.8 Mbit/s over shop-a's uplink (40 Mbit/s in all,
    # 50 per transfer): at 82 % its transfers take about seven times as long as alone.
    online = OnlinePlanner(parse_world(make_world([query("s1", max_cost_per_hour=0.2)])))
    big = online.arrive(query("big", rate=20))
    assert not big.admitted and online.waiting == ("big",)
    assert big.reason is not None and big.reason.startswith("capacity: link shop-a->cloud at 82%")
    assert big.why_not is not None and big.why_not.resource == ("link", "shop-a->cloud")
    assert big.why_not.relaxations is None
    (out,) = [o for o in online.result().outcomes if o.name == "big"]
    assert out.reason == big.reason
    _check(online)
    # Alone on its links it would have been admitted.
    alone = OnlinePlanner(parse_world(_alone(make_world([query("s1", max_cost_per_hour=0.2)]))))
    assert alone.arrive(query("big", rate=20)).admitted


def test_arrival_admits_with_the_cheapest_candidate_that_fits() -> None:
    online = OnlinePlanner(parse_world(make_world()))
    first = online.arrive(query("q1"))
    assert first.admitted and first.moved == () and first.reason is None
    cand = online.plan_of("q1")
    assert cand is not None and cand.plan == first.plan and first.estimate == cand.estimate
    assert first.estimate is not None and first.estimate.usage() == {("device", "box-a"): 2.0}
    assert online.queries == ("q1",) and online.admitted == ("q1",) and online.waiting == ()


def test_an_unrelated_arrival_keeps_every_plan() -> None:
    online = OnlinePlanner(parse_world(make_world([query("a1"), query("a2", rate=10)])))
    before = _plans(online)
    arrival = online.arrive(query("b1", "shop-b"))
    assert arrival.admitted and arrival.moved == ()
    assert {n: p for n, p in _plans(online).items() if n != "b1"} == before


def test_repair_moves_a_query_to_admit_another() -> None:
    online = OnlinePlanner(parse_world(make_world([query("q1")])))
    assert online.plan_of("q1") is not None
    # q2 can only afford the edge box, which q1 fills; q1 has a cloud candidate.
    arrival = online.arrive(query("q2", max_cost_per_hour=0.2))
    assert arrival.admitted and arrival.moved == ("q1",)
    moved = online.plan_of("q1")
    assert moved is not None and ("device", "box-a") not in moved.estimate.usage()
    _check(online)
    plain = OnlinePlanner(parse_world(make_world([query("q1")])), max_moves=0)
    waits = plain.arrive(query("q2", max_cost_per_hour=0.2))
    assert not waits.admitted and waits.reason is not None
    assert waits.reason.startswith("capacity: device box-a")
    assert waits.why_not is not None and waits.why_not.resource == ("device", "box-a")


def test_departure_frees_capacity_for_a_waiting_query() -> None:
    online = OnlinePlanner(parse_world(make_world([query("q1", max_cost_per_hour=0.2)])))
    waits = online.arrive(query("q2", max_cost_per_hour=0.2))
    assert not waits.admitted and online.waiting == ("q2",)
    assert waits.why_not is not None and waits.why_not.relaxations is not None
    nearest = {r.objective: r.nearest for r in waits.why_not.relaxations}
    assert nearest["max_cost_per_hour"] is not None and nearest["max_cost_per_hour"] > 1  # cloud
    gone = online.depart("q1")
    assert gone.was_admitted and gone.admitted == ("q2",)
    assert online.admitted == ("q2",) and online.queries == ("q2",)
    _check(online)
    again = online.depart("q2")
    assert again.admitted == () and online.queries == ()
    assert online.used() == {}


def test_a_resize_evicts_or_moves_and_a_grown_device_admits() -> None:
    online = OnlinePlanner(parse_world(make_world([
        query("q1", max_cost_per_hour=0.2), query("q2"), query("q3", "shop-b")])))
    _check(online)
    cut = online.set_capacity(device="pool", units=1)
    _check(online)
    assert cut.change == "device pool: 3 -> 1 units"
    assert set(cut.evicted) | set(cut.moved) and not set(cut.evicted) & set(cut.admitted)
    grown = online.set_capacity(device="pool", units=3)
    _check(online)
    assert set(cut.evicted) <= set(online.admitted) | set(grown.admitted) | set(online.waiting)
    assert set(grown.admitted) == set(cut.evicted)


def test_link_capacity_change() -> None:
    online = OnlinePlanner(parse_world(make_world([query(f"q{i}", rate=10) for i in range(4)])))
    change = online.set_capacity(link="shop-a->cloud", mbps=1.0)
    _check(online)
    assert change.change == "link shop-a->cloud: 40 Mbit/s -> 1 Mbit/s"
    assert online.capacity()["link", "shop-a->cloud"] == 1.0
    assert online.capacity()["link", "cloud->shop-a"] == 40.0  # the other direction keeps its
    online.set_capacity(link="shop-a->cloud", mbps=None)
    assert ("link", "shop-a->cloud") not in online.capacity()
    _check(online)


def test_removing_and_adding_a_device() -> None:
    online = OnlinePlanner(parse_world(make_world([query("q1"), query("q2"), query("q3")])))
    removed = online.remove_device("box-a")
    _check(online)
    assert "box-a" not in online.index().devices
    assert all(("device", "box-a") not in c.estimate.usage() for n in online.admitted
               if (c := online.plan_of(n)) is not None)
    waiting = online.waiting
    added = online.add_device({"name": "box-a2", "site": "shop-a", "hardware": "cpu",
                               "units": 8, "price_per_unit_hour": 0.05})
    _check(online)
    assert set(added.searched) == set(waiting)
    assert set(added.admitted) == set(waiting)  # the new box has room for them all
    assert removed.evicted or removed.moved


def test_rebalance_reaches_the_global_optimum() -> None:
    specs = [query("big", rate=20), query("s1", max_cost_per_hour=0.2),
             query("s2", max_cost_per_hour=0.2, latency_ms=300)]
    batch = circinus.Planner().plan(parse_world(make_world(specs)))
    online = OnlinePlanner(parse_world(make_world()), max_moves=0)
    for spec in specs:
        online.arrive(spec)
    before = online.result().goodput
    kept = online.rebalance()
    assert kept.goodput_after >= before
    full = online.rebalance(keep_admitted=False)
    assert online.result().goodput == pytest.approx(max(before, batch.goodput))
    assert full.goodput_after == pytest.approx(batch.goodput)
    _check(online)


_SLOS = st.fixed_dictionaries({
    "latency_ms": st.sampled_from([60.0, 150.0, 400.0]),
    "min_accuracy": st.sampled_from([0.5, 0.6, 0.7, 0.75]),
    "max_cost_per_hour": st.sampled_from([0.2, 0.6, 5.0]),
})
_QUERIES = st.lists(st.tuples(_SLOS, st.sampled_from([2.0, 5.0, 10.0, 20.0]),
                              st.sampled_from(["shop-a", "shop-b"])), min_size=1, max_size=6)


def _specs(drawn: list[tuple[dict[str, float], float, str]]) -> list[dict[str, Any]]:
    return [query(f"q{i}", site, rate, **slo) for i, (slo, rate, site) in enumerate(drawn)]


@settings(max_examples=25)
@given(_QUERIES)
def test_online_goodput_between_fcfs_and_the_optimum(drawn: list[Any]) -> None:
    # Without the link check: with it, the batch planner drops plans at the load of a whole
    # selection and the online one at the load of each admission, which may admit otherwise.
    specs = _specs(drawn)
    fcfs = circinus.Planner(selector="fcfs").plan(parse_world(_alone(make_world(specs))))
    best = circinus.Planner().plan(parse_world(_alone(make_world(specs))))
    greedy = OnlinePlanner(parse_world(_alone(make_world())), max_moves=0, why_not=False)
    repaired = OnlinePlanner(parse_world(_alone(make_world())), why_not=False)
    for spec in specs:
        greedy.arrive(spec)
        repaired.arrive(spec)
    # Without repair, arrivals in order admit exactly what first-come-first-served admits.
    assert [o.admitted for o in greedy.result().outcomes] == [o.admitted for o in fcfs.outcomes]
    assert [o.plan for o in greedy.result().outcomes] == [o.plan for o in fcfs.outcomes]
    got = repaired.result().goodput
    assert fcfs.goodput - 1e-9 <= got <= best.goodput + 1e-9
    _check(repaired)


@settings(max_examples=25)
@given(_QUERIES)
def test_arrivals_keep_every_plan_within_its_slo_at_the_link_load(drawn: list[Any]) -> None:
    online = OnlinePlanner(parse_world(make_world()), why_not=False)
    for spec in _specs(drawn):
        online.arrive(spec)
        _check(online)


_EVENTS = st.lists(st.one_of(
    st.tuples(st.just("arrive"), _SLOS, st.sampled_from([2.0, 5.0, 10.0, 20.0]),
              st.sampled_from(["shop-a", "shop-b"])),
    st.tuples(st.just("depart"), st.integers(0, 10)),
    st.tuples(st.just("device"), st.sampled_from(["box-a", "box-b", "pool"]),
              st.sampled_from([1.0, 2.0, 4.0])),
    st.tuples(st.just("link"), st.sampled_from(["shop-a->cloud", "cloud->shop-b"]),
              st.sampled_from([None, 0.5, 5.0, 40.0])),
    st.tuples(st.just("remove"), st.sampled_from(["box-a", "box-b", "pool"])),
    st.tuples(st.just("add"), st.sampled_from([1.0, 4.0])),
), min_size=1, max_size=12)


def _replay(events: list[Any]) -> OnlinePlanner:
    """Apply ``events``, checking the invariants after each; returns the final planner."""
    online = OnlinePlanner(parse_world(make_world()), why_not=False)
    removed: list[dict[str, Any]] = []
    for i, event in enumerate(events):
        before = _plans(online)
        if event[0] == "arrive":
            arrival = online.arrive(query(f"e{i}", event[3], event[2], **event[1]))
            untouched = set(before) - set(arrival.moved)
            assert {n: _plans(online)[n] for n in untouched} == {n: before[n] for n in untouched}
            assert arrival.admitted == (f"e{i}" in online.admitted)
        elif event[0] == "depart" and online.queries:
            name = online.queries[event[1] % len(online.queries)]
            gone = online.depart(name)
            assert {n: p for n, p in _plans(online).items() if n not in gone.admitted} == {
                n: p for n, p in before.items() if n != name}
        elif event[0] == "device" and event[1] in online.index().devices:
            change = online.set_capacity(device=event[1], units=event[2])
            assert set(change.admitted) | set(change.moved) | set(change.evicted) <= set(
                online.queries)
            assert {n: p for n, p in _plans(online).items()
                    if n not in change.moved and n not in change.admitted} == {
                n: p for n, p in before.items() if n not in change.evicted
                and n not in change.moved}
        elif event[0] == "link":
            online.set_capacity(link=event[1], mbps=event[2])
        elif event[0] == "remove" and event[1] in online.index().devices and (
                len(online.index().devices) > 1):
            change = online.remove_device(event[1])
            removed.append(next(d for d in WORLD["devices"] if d["name"] == event[1]))
            assert set(change.evicted) <= set(online.waiting)
        elif event[0] == "add" and removed:
            online.add_device({**removed.pop(), "units": event[1]})
        _check(online)
    return online


@settings(max_examples=40)
@given(_EVENTS)
def test_every_event_keeps_the_invariants(events: list[Any]) -> None:
    _replay(events)


def test_deterministic() -> None:
    events: list[Any] = [
        ("arrive", {"latency_ms": 150.0, "min_accuracy": 0.6, "max_cost_per_hour": 5.0}, 10.0,
         "shop-a"),
        ("arrive", {"latency_ms": 400.0, "min_accuracy": 0.7, "max_cost_per_hour": 0.6}, 20.0,
         "shop-a"),
        ("device", "pool", 1.0),
        ("arrive", {"latency_ms": 60.0, "min_accuracy": 0.5, "max_cost_per_hour": 5.0}, 5.0,
         "shop-b"),
        ("depart", 0),
        ("link", "shop-a->cloud", 0.5),
    ]
    a, b = _replay(events).result(), _replay(events).result()
    assert [(o.name, o.plan, o.reason) for o in a.outcomes] == [
        (o.name, o.plan, o.reason) for o in b.outcomes]


def test_plan_file_of_the_online_state() -> None:
    online = OnlinePlanner(parse_world(make_world([query("q1")])))
    online.arrive(query("q2", max_cost_per_hour=0.2))
    online.arrive(query("q3", max_cost_per_hour=0.2))
    plan = online.plan_file()
    assert isinstance(plan, PlanFile) and plan.total_queries == 3
    assert plan.solver.status == "greedy"
    waiting = [q for q in plan.queries if not q.admitted]
    assert [q.name for q in waiting] == list(online.waiting)
    assert all(q.why_not is not None and q.why_not.nearest_slo is not None for q in waiting)


def test_bad_requests_say_the_way_out() -> None:
    online = OnlinePlanner(parse_world(make_world([query("q1")])))
    with pytest.raises(SpecError, match="already planned"):
        online.arrive(query("q1"))
    with pytest.raises(SpecError, match=r"arrive: .*unknown pipeline"):
        online.arrive({**query("x"), "pipeline": "nope"})
    with pytest.raises(SpecError, match="arrive: rate_rps"):
        online.arrive({**query("x"), "rate_rps": -1})
    with pytest.raises(UnknownNameError, match="no query 'ghost'"):
        online.depart("ghost")
    with pytest.raises(UnknownNameError, match="no device 'ghost'"):
        online.set_capacity(device="ghost", units=2)
    with pytest.raises(UnknownNameError, match="no link 'a->b'"):
        online.set_capacity(link="a->b", mbps=2)
    with pytest.raises(SpecError, match="either one device"):
        online.set_capacity(units=2)
    with pytest.raises(SpecError, match="units"):
        online.set_capacity(device="pool", units=-1)
    with pytest.raises(SpecError, match=r"device pool: 3 -> 0\.5 units: .*largest 'gpu' device"):
        online.set_capacity(device="pool", units=0.5)
    with pytest.raises(SpecError, match="exists"):
        online.add_device({"name": "pool", "site": "cloud", "hardware": "gpu", "units": 1,
                           "price_per_unit_hour": 1})
    assert online.queries == ("q1",) and online.admitted == ("q1",)
