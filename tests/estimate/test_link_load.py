"""The estimator at a given link load: transfers over a shared link slowed by the link's
processor-sharing slowdown, and nothing else changed.

Expected values are hand arithmetic from the slowdown worked out in ``test_queueing.py``
(``c = 1.5, rho = 0.5`` gives 1.6; ``c = 0.5, rho = 0`` gives 2).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from test_analytic import KB_MBIT, WORLD, _on, _plan, _query

from circinus.estimate import AnalyticEstimator
from circinus.spec import World, build_index
from circinus.spec.index import WorldIndex


def _index(capacity_mbps: float = 30.0) -> WorldIndex:
    """The analytic tests' world with edge <-> cloud (20 Mbit/s, RTT 40 ms) shared: capacity
    ``capacity_mbps`` (30: one and a half transfers' worth)."""
    data: dict[str, Any] = copy.deepcopy(WORLD)
    data["links"][0]["capacity_mbps"] = capacity_mbps
    return build_index(World.model_validate(data))


def _ps_var(slowdown: float, wire: float) -> float:
    """Variance of an M/M/1-PS sojourn of a job of size ``wire`` (mean job size ``wire``) at
    the load giving ``slowdown`` (Coffman, Muntz and Trotter 1970)."""
    r = 1 - 1 / slowdown
    u = 1 - r
    return wire**2 * (2 * r / u**3 - 2 * r * (1 - math.exp(-u)) / u**4)


def test_without_a_load_nothing_changes() -> None:
    index = _index()
    plan = _plan(("det", "small", _on(("box", 1))), ("cls", 224, _on(("gpu1", 1))))
    alone = AnalyticEstimator(index=index).estimate(_query(10), plan)
    assert AnalyticEstimator(index=index, link_load={}).estimate(_query(10), plan) == alone
    # A link with many transfers' worth of capacity at a low load: negligible, none.
    wide = _index(capacity_mbps=2000.0)
    loaded = AnalyticEstimator(index=wide, link_load={("edge", "cloud"): 0.1})
    assert loaded.slowdown("edge", "cloud") == 1.0
    assert loaded.estimate(_query(10), plan) == AnalyticEstimator(index=wide).estimate(
        _query(10), plan)


def test_a_loaded_link_slows_the_wire_time_by_the_slowdown() -> None:
    # 50 KB over 20 Mbit/s: wire 50 * 8.192e-3 / 20 = 0.02048 s, plus RTT/2 0.02 s. At
    # rho = 0.5 with c = 30 / 20 = 1.5 the slowdown is 1.6: 0.6 * 0.02048 s more, with the
    # variance of M/M/1-PS at the load r = 1 - 1/1.6 giving that slowdown.
    index = _index()
    alone = AnalyticEstimator(index=index)
    loaded = AnalyticEstimator(index=index, link_load={("edge", "cloud"): 0.5})
    assert loaded.slowdown("edge", "cloud") == pytest.approx(1.6, rel=1e-12)
    assert loaded.slowdown("cloud", "edge") == 1.0  # the other direction carries no load
    src, dst = (("box", 1.0),), (("gpu1", 1.0),)
    before = alone.transfer(_query(10), 50.0, src, dst)
    after = loaded.transfer(_query(10), 50.0, src, dst)
    wire = 50 * KB_MBIT / 20
    extra = 0.6 * wire
    assert after.mean_s == pytest.approx(wire + 0.020 + extra, rel=1e-12)
    assert after.mean_s - before.mean_s == pytest.approx(extra, rel=1e-9)
    assert after.var_s2 == pytest.approx(_ps_var(1.6, wire), rel=1e-9)
    assert after.var_s2 > extra**2  # heavier than an exponential delay of the same mean
    assert after.link_mbps == before.link_mbps
    assert after.cost_per_hour == before.cost_per_hour
    # The way back is not loaded.
    back = loaded.transfer(_query(10), 50.0, dst, src)
    assert back == alone.transfer(_query(10), 50.0, dst, src)


def test_only_the_pairs_that_cross_the_link_are_slowed() -> None:
    # From box 1/2, gpu1 1/2 to gpu2: box -> gpu2 crosses edge -> cloud (weight 1/2), gpu1 ->
    # gpu2 stays in the cloud LAN (1 ms RTT, no bandwidth limit: 0.0005 s).
    loaded = AnalyticEstimator(index=_index(), link_load={("edge", "cloud"): 0.5})
    tr = loaded.transfer(_query(10), 50.0, (("box", 0.5), ("gpu1", 0.5)), (("gpu2", 1.0),))
    wire = 50 * KB_MBIT / 20
    t, extra, lan = wire + 0.020, 0.6 * wire, 0.0005
    mean = 0.5 * (t + extra) + 0.5 * lan
    second = 0.5 * ((t + extra) ** 2 + _ps_var(1.6, wire)) + 0.5 * lan * lan
    assert tr.mean_s == pytest.approx(mean, rel=1e-12)
    assert tr.var_s2 == pytest.approx(second - mean * mean, rel=1e-9)


def test_a_capacity_below_the_bandwidth_slows_a_lone_transfer() -> None:
    # capacity 10 < bandwidth 20: even alone a transfer gets 10 Mbit/s, twice its wire time.
    loaded = AnalyticEstimator(index=_index(capacity_mbps=10.0),
                               link_load={("edge", "cloud"): 0.0})
    tr = loaded.transfer(_query(10), 50.0, (("box", 1.0),), (("gpu1", 1.0),))
    wire = 50 * KB_MBIT / 20
    assert tr.mean_s == pytest.approx(2 * wire + 0.020, rel=1e-12)


def test_a_saturated_link_is_unbounded() -> None:
    loaded = AnalyticEstimator(index=_index(), link_load={("edge", "cloud"): 1.0})
    plan = _plan(("det", "small", _on(("box", 1))), ("cls", 224, _on(("gpu1", 1))))
    got = loaded.estimate(_query(10), plan)
    assert got.latency_mean_ms == math.inf and got.latency_ms == math.inf
    assert not got.meets(_query(10).slo.model_copy(update={"latency_ms": 1e9}))


def test_the_estimate_grows_with_the_load() -> None:
    index = _index()
    plan = _plan(("det", "small", _on(("box", 1))), ("cls", 224, _on(("gpu1", 1))))
    latencies = [AnalyticEstimator(index=index, link_load={("edge", "cloud"): rho})
                 .estimate(_query(10), plan).latency_ms for rho in (0.0, 0.3, 0.6, 0.9)]
    assert latencies == sorted(latencies) and latencies[-1] > latencies[0]


def test_with_link_load_shares_the_stage_memo() -> None:
    index = _index()
    plan = _plan(("det", "small", _on(("box", 1))), ("cls", 224, _on(("gpu1", 1))))
    base = AnalyticEstimator(index=index)
    base.estimate(_query(10), plan)
    loaded = base.with_link_load({("edge", "cloud"): 0.5})
    got = loaded.estimate(_query(10), plan)
    assert loaded.kernel_evaluations == 2  # its two transfers; the stages were known
    assert got == AnalyticEstimator(index=index, link_load={("edge", "cloud"): 0.5}).estimate(
        _query(10), plan)
    assert loaded.link_load == {("edge", "cloud"): 0.5} and base.link_load == {}


def test_one_link_changed_is_the_same_as_the_whole_load_given() -> None:
    """with_link_at(pair, rho) is with_link_load of the loads with that link at rho: the same
    slowdowns and estimates, the other links kept, the base unchanged."""
    data: dict[str, Any] = copy.deepcopy(WORLD)
    data["links"][0]["capacity_mbps"] = 30.0
    data["links"][0]["both_ways"] = False
    data["links"].append({**data["links"][0], "src": "cloud", "dst": "edge",
                          "capacity_mbps": 45.0})
    index = build_index(World.model_validate(data))
    plan = _plan(("det", "small", _on(("box", 1))), ("cls", 224, _on(("gpu1", 1))))
    base = AnalyticEstimator(index=index, link_load={("edge", "cloud"): 0.2,
                                                     ("cloud", "edge"): 0.7})
    for rho in (0.0, 0.5, 0.93):
        one = base.with_link_at(("edge", "cloud"), rho)
        whole = base.with_link_load({("edge", "cloud"): rho, ("cloud", "edge"): 0.7})
        assert one.link_load == whole.link_load
        assert [one.slowdown(*p) for p in whole.link_load] == \
            [whole.slowdown(*p) for p in whole.link_load]
        assert one.estimate(_query(10), plan) == whole.estimate(_query(10), plan)
    assert base.link_load == {("edge", "cloud"): 0.2, ("cloud", "edge"): 0.7}
    with pytest.raises(ValueError, match="must be >= 0"):
        base.with_link_at(("edge", "cloud"), -0.1)
    with pytest.raises(ValueError, match="there is no link edge->far"):
        base.with_link_at(("edge", "far"), 0.5)


@pytest.mark.parametrize(("load", "message"), [
    ({("edge", "far"): 0.5}, "there is no link edge->far"),
    ({("edge", "cloud"): -0.1}, "must be >= 0"),
])
def test_a_bad_load_is_refused(load: dict[tuple[str, str], float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AnalyticEstimator(index=_index(), link_load=load)


def test_a_load_on_an_unlimited_link_is_refused() -> None:
    unlimited = build_index(World.model_validate(WORLD))
    with pytest.raises(ValueError, match="has no capacity_mbps"):
        AnalyticEstimator(index=unlimited, link_load={("edge", "cloud"): 0.5})

