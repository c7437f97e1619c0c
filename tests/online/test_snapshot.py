"""A planner restored from a snapshot (through pickle, as the service stores it) has the same
present queries in the same order, the same admitted plans with the same estimates, the same
use of every capacity and the same shared deployments; only what changed between two snapshots
is reported changed."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from two_shops import make_world, query

from circinus.errors import SpecError
from circinus.online import OnlinePlanner
from circinus.online.snapshot import QueryRecord, changed
from circinus.spec import parse_world

_EVENTS = st.lists(st.one_of(
    st.tuples(st.just("arrive"), st.sampled_from([2.0, 5.0, 10.0, 20.0]),
              st.sampled_from(["shop-a", "shop-b"]), st.sampled_from([300.0, 400.0])),
    st.tuples(st.just("depart"), st.integers(0, 10)),
    st.tuples(st.just("resize"), st.sampled_from(["box-a", "pool"]), st.sampled_from([1, 2, 4])),
), min_size=1, max_size=8)


def _state(online: OnlinePlanner) -> dict[str, Any]:
    return {"queries": online.queries, "admitted": online.admitted,
            "plans": {n: online.plan_of(n) for n in online.admitted},
            "capacity": online.capacity(), "deployments": online.deployments()}


def _same(restored: OnlinePlanner, online: OnlinePlanner) -> None:
    """The same state; sums of use and cost to rounding (added up in another order)."""
    assert _state(restored) == _state(online)
    used = online.used()
    assert restored.used() == pytest.approx(used, rel=1e-12, abs=1e-12)
    assert restored.cost_per_hour == pytest.approx(online.cost_per_hour, rel=1e-12)


def _restored(online: OnlinePlanner) -> OnlinePlanner:
    snap = online.snapshot()
    records = pickle.loads(pickle.dumps(snap.records()))
    return OnlinePlanner.restore(snap.topology, records, why_not=False)


@pytest.mark.parametrize("sharing", ["dedicated", "shared"])
@settings(max_examples=15, deadline=None)
@given(events=_EVENTS)
def test_restore_rebuilds_the_same_state(sharing: str, events: list[Any]) -> None:
    online = OnlinePlanner(parse_world(make_world([query("a"), query("b", "shop-b", 10)],
                                                  sharing=sharing)), why_not=False)
    for i, event in enumerate(events):
        before = online.snapshot()
        if event[0] == "arrive":
            _, rate, site, latency = event
            online.arrive(query(f"e{i}", site, rate, latency_ms=latency))
        elif event[0] == "depart" and online.queries:
            online.depart(online.queries[event[1] % len(online.queries)])
        elif event[0] == "resize":
            online.set_capacity(device=event[1], units=event[2])
        diff = changed(before, online.snapshot())
        if event[0] == "arrive":
            assert f"e{i}" in {r.query.name for r in diff.upserted}
        assert (diff.topology is not None) == (event[0] == "resize")
        _same(_restored(online), online)


def test_an_unchanged_state_reports_no_change() -> None:
    online = OnlinePlanner(parse_world(make_world([query("a")])), why_not=False)
    assert changed(online.snapshot(), online.snapshot()).empty
    online.rebalance()
    snap = online.snapshot()
    online.depart("a")
    diff = changed(snap, online.snapshot())
    assert diff.departed == ("a",) and not diff.upserted and diff.topology is None


def test_restore_refuses_records_that_do_not_fit() -> None:
    online = OnlinePlanner(parse_world(make_world([query("a")])), why_not=False)
    snap = online.snapshot()
    (rec,) = snap.records()
    with pytest.raises(SpecError, match="runs candidate 99"):
        OnlinePlanner.restore(snap.topology, [QueryRecord(rec.query, rec.found, 99)])
    with pytest.raises(SpecError, match="two records"):
        OnlinePlanner.restore(snap.topology, [rec, rec])
    assert rec.chosen is not None
    (dev,) = {r.device for s in rec.found.candidates[rec.chosen].plan.stages for r in s.placement}
    small = snap.topology.model_copy(update={"devices": [
        d.model_copy(update={"units": 1}) if d.name == dev else d
        for d in snap.topology.devices]})
    with pytest.raises(SpecError, match="exceed a capacity"):
        OnlinePlanner.restore(small, [rec])
