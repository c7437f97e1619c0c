"""Hand-computed checks of :class:`AnalyticEstimator`: stage, transfer, accuracy and estimate().

The world below is small enough that every expected number is written out as arithmetic in the
test, with the formula it comes from in a comment; nothing is computed by calling the estimator
another way. Units: profiles in ms, sojourns in s, sizes in KB (1,024 B), bandwidth in Mbit/s.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy.integrate import quad
from scipy.special import gammainc
from scipy.stats import pearson3

import waitlaw
from circinus.estimate import AnalyticEstimator
from circinus.plan.records import Placement, QueryPlan, Replicas, StagePlan
from circinus.spec import Query, Slo, World, build_index

Z90 = 1.2815515655446004  # standard normal 90th percentile (tables)
KB_MBIT = 1024 * 8 / 1e6  # Mbit in one KB
KB_GB = 1 / 1024**2  # GB in one KB


def _chain(name: str, accuracy: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "sources": [{"name": "cam", "output_kb": 200}],
        "stages": [{"name": "det", "operator": "det"}, {"name": "cls", "operator": "cls"}],
        "edges": [["cam", "det"], ["det", "cls"]],
        "accuracy": accuracy,
    }


WORLD: dict[str, Any] = {
    "hardware": [{"name": "cpu"}, {"name": "gpu", "kind": "gpu"}],
    "sites": [
        # Edge LAN: 100 Mbit/s, 2 ms RTT. Cloud LAN: unlimited bandwidth, 1 ms RTT.
        {"name": "edge", "tier": "edge", "lan_bandwidth_mbps": 100, "lan_rtt_ms": 2},
        {"name": "cloud", "tier": "cloud", "lan_rtt_ms": 1},
        {"name": "far", "tier": "edge"},  # no link to or from anywhere
    ],
    "devices": [
        {"name": "box", "site": "edge", "hardware": "cpu", "units": 4, "price_per_unit_hour": 0.5},
        {"name": "box2", "site": "edge", "hardware": "cpu", "units": 4, "price_per_unit_hour": 0.5},
        {
            "name": "gpu1",
            "site": "cloud",
            "hardware": "gpu",
            "units": 8,
            "price_per_unit_hour": 2.0,
        },
        {
            "name": "gpu2",
            "site": "cloud",
            "hardware": "gpu",
            "units": 8,
            "price_per_unit_hour": 3.0,
        },
        {
            "name": "lonely",
            "site": "far",
            "hardware": "cpu",
            "units": 2,
            "price_per_unit_hour": 0.1,
        },
    ],
    "links": [
        {
            "src": "edge",
            "dst": "cloud",
            "bandwidth_mbps": 20,
            "rtt_ms": 40,
            "price_per_gb": 0.09,
            "both_ways": True,
        },
    ],
    "operators": [
        {
            "name": "det",
            "knobs": {"model": ["small", "big"]},
            "profiles": [
                {
                    "config": {"model": "small"},
                    "hardware": "cpu",
                    "mean_ms": 30,
                    "cv": 1.0,
                    "units": 1,
                    "memory_gb": 2,
                },
                {
                    "config": {"model": "small"},
                    "hardware": "gpu",
                    "mean_ms": 10,
                    "cv": 1.0,
                    "batch_ms": {4: 16},
                    "units": 2,
                    "memory_gb": 4,
                },
                {
                    "config": {"model": "big"},
                    "hardware": "gpu",
                    "mean_ms": 20,
                    "p90_ms": 30,
                    "units": 2,
                    "memory_gb": 6,
                },
            ],
            "output_kb": [{"when": {}, "value": 50}, {"when": {"model": "big"}, "value": 100}],
            "accuracy": [{"when": {}, "value": 0.8}, {"when": {"model": "big"}, "value": 0.9}],
        },
        {
            "name": "cls",
            "knobs": {"res": [224, 288]},
            "profiles": [
                {"config": {"res": 224}, "hardware": "cpu", "mean_ms": 20, "cv": 0.0},
                {"config": {"res": 224}, "hardware": "gpu", "mean_ms": 5, "cv": 0.0},
                {"config": {"res": 288}, "hardware": "gpu", "mean_ms": 8, "cv": 0.0},
            ],
            "output_kb": 1,
            "accuracy": [{"when": {}, "value": 0.7}, {"when": {"res": 288}, "value": 0.95}],
        },
        {
            "name": "fuse",
            "profiles": [{"hardware": "gpu", "mean_ms": 4, "cv": 0.0}],
            "output_kb": 1,
            "accuracy": 0.99,
        },
    ],
    "pipelines": [
        _chain("chain", {"rule": "product"}),
        _chain("chain-min", {"rule": "min"}),
        _chain("chain-mean", {"rule": "mean"}),
        _chain("chain-none", {"rule": "none"}),
        _chain(
            "chain-table",
            {
                "rule": "table",
                "table": [
                    {"config": {}, "accuracy": 0.5},
                    {"config": {"det": {"model": "big"}}, "accuracy": 0.85},
                    {"config": {"det": {"model": "big"}, "cls": {"res": 288}}, "accuracy": 0.93},
                    {"config": {"cls": {"res": 224}}, "accuracy": 0.6},
                ],
            },
        ),
        _chain(
            "chain-table-partial",
            {
                "rule": "table",
                "table": [
                    {"config": {"det": {"model": "big"}}, "accuracy": 0.85},
                ],
            },
        ),
        {
            "name": "join",
            "sources": [{"name": "video", "output_kb": 100}, {"name": "audio", "output_kb": 10}],
            "stages": [
                {"name": "v", "operator": "det"},
                {"name": "a", "operator": "cls"},
                {"name": "f", "operator": "fuse"},
            ],
            "edges": [["video", "v"], ["audio", "a"], ["v", "f"], ["a", "f"]],
            "accuracy": {"rule": "product"},
        },
    ],
    "queries": [],
}


@pytest.fixture(scope="module")
def world() -> World:
    return World.model_validate(WORLD)


@pytest.fixture
def est(world: World) -> AnalyticEstimator:
    return AnalyticEstimator(index=build_index(world))


def _query(
    rate: float,
    *,
    pipeline: str = "chain",
    sources: dict[str, str] | None = None,
    work_scale: dict[str, float] | None = None,
) -> Query:
    return Query(
        name="q",
        pipeline=pipeline,
        sources=sources or {"cam": "edge"},
        rate_rps=rate,
        slo=Slo(percentile=99),
        work_scale=work_scale or {},
    )


def _on(*groups: tuple[str, int]) -> Placement:
    return tuple(Replicas(device, count) for device, count in sorted(groups))


# ------------------------------------------------------------------------------------ stage


def test_stage_service_time_from_mean_ms(est: AnalyticEstimator) -> None:
    # det small on gpu: 10 ms, cv 1 -> M/M/1 with mu = 100/s, lam = 10/s:
    # sojourn ~ Exp(mu - lam): mean 1/90 s, variance 1/90^2; utilisation 10 * 0.010.
    st = est.stage(_query(10), "det", ("small",), 1, _on(("gpu1", 1)))
    assert st.mean_s == pytest.approx(1 / (100 - 10), rel=1e-12)
    assert st.var_s2 == pytest.approx(1 / (100 - 10) ** 2, rel=1e-9)
    assert st.utilization == pytest.approx(10 * 0.010, rel=1e-12)
    assert st.shares == (("gpu1", 1.0),)


def test_stage_deterministic_service_uses_pollaczek_khinchine(est: AnalyticEstimator) -> None:
    # cls 224 on gpu: 5 ms, cv 0 -> M/D/1 with mu = 200/s, lam = 10/s, rho = 0.05:
    # Wq = rho / (2 mu (1 - rho)) = 0.05 / (2 * 200 * 0.95) = 1/7600 s.
    st = est.stage(_query(10), "cls", (224,), 1, _on(("gpu1", 1)))
    assert st.mean_s == pytest.approx(0.005 + 0.05 / (2 * 200 * 0.95), rel=1e-12)
    assert st.utilization == pytest.approx(10 * 0.005, rel=1e-12)


def test_stage_batch_service_from_batch_ms(est: AnalyticEstimator) -> None:
    # det small on gpu, batch 4 takes 16 ms (not 4 * 10), cv 1, lam = 50/s:
    # fill (b-1)/(2 lam) = 3/100; batches lam_b = 12.5/s, a = 12.5 * 0.016 = 0.2 = C (1 server);
    # Wq = C / (1/0.016 - 12.5) * (1/4 + 1) / 2 = 0.2 / 50 * 0.625 = 0.0025.
    st = est.stage(_query(50), "det", ("small",), 4, _on(("gpu1", 1)))
    assert st.mean_s == pytest.approx(3 / 100 + 0.2 / (62.5 - 12.5) * 1.25 / 2 + 0.016, rel=1e-12)
    # Capacity = 1 replica * 4 requests / 0.016 s = 250/s; utilisation 50/250.
    assert st.utilization == pytest.approx(50 / (4 / 0.016), rel=1e-12)


def test_stage_unprofiled_batch_or_hardware_is_unservable(est: AnalyticEstimator) -> None:
    no_batch = est.stage(_query(10), "det", ("small",), 2, _on(("gpu1", 1)))  # no batch_ms[2]
    no_hw = est.stage(_query(10), "det", ("big",), 1, _on(("box", 1)))  # big has no cpu profile
    for st in (no_batch, no_hw):
        assert st.mean_s == math.inf
        assert st.utilization == math.inf


def test_stage_work_scale_multiplies_service_time(est: AnalyticEstimator) -> None:
    # work_scale 2: 10 ms -> 20 ms, mu = 50/s, lam = 10/s: M/M/1 mean 1/40, utilisation 0.2.
    st = est.stage(_query(10, work_scale={"det": 2.0}), "det", ("small",), 1, _on(("gpu1", 1)))
    assert st.mean_s == pytest.approx(1 / (50 - 10), rel=1e-12)
    assert st.var_s2 == pytest.approx(1 / (50 - 10) ** 2, rel=1e-9)
    assert st.utilization == pytest.approx(10 * 0.020, rel=1e-12)
    # A scale for another stage does not touch this one.
    other = est.stage(_query(10, work_scale={"cls": 2.0}), "det", ("small",), 1, _on(("gpu1", 1)))
    assert other.mean_s == pytest.approx(1 / (100 - 10), rel=1e-12)


def test_stage_units_memory_and_cost_are_replicas_times_profile(est: AnalyticEstimator) -> None:
    # 3 replicas of det small on gpu1: units 3 * 2, memory 3 * 4 GB, cost 3 * 2 units * $2.
    st = est.stage(_query(10), "det", ("small",), 1, _on(("gpu1", 3)))
    assert st.units == (("gpu1", 3 * 2.0),)
    assert st.memory_gb == (("gpu1", 3 * 4.0),)
    assert st.cost_per_hour == pytest.approx(3 * 2 * 2.0, rel=1e-12)
    # Two devices: 2 cpu replicas on box (1 unit, 2 GB, $0.5) + 1 gpu replica on gpu1.
    two = est.stage(_query(10), "det", ("small",), 1, _on(("box", 2), ("gpu1", 1)))
    assert two.units == (("box", 2 * 1.0), ("gpu1", 1 * 2.0))
    assert two.memory_gb == (("box", 2 * 2.0), ("gpu1", 1 * 4.0))
    assert two.cost_per_hour == pytest.approx(2 * 1 * 0.5 + 1 * 2 * 2.0, rel=1e-12)


def test_stage_two_devices_split_load_by_capacity(est: AnalyticEstimator) -> None:
    # det small: box (cpu, 30 ms) serves 1/0.030 = 33.3/s, gpu1 (10 ms) 100/s; total 133.3/s.
    # Shares 33.3/133.3 = 1/4 and 100/133.3 = 3/4. With lam = 40/s each device gets
    # box 10/s (rho = 10 * 0.03 = 0.3) and gpu1 30/s (rho = 30 * 0.01 = 0.3): equal.
    st = est.stage(_query(40), "det", ("small",), 1, _on(("box", 1), ("gpu1", 1)))
    (d1, s1), (d2, s2) = st.shares
    assert (d1, d2) == ("box", "gpu1")
    assert s1 == pytest.approx(0.25, rel=1e-12)
    assert s2 == pytest.approx(0.75, rel=1e-12)
    rho_box, rho_gpu = 40 * s1 * 0.030 / 1, 40 * s2 * 0.010 / 1
    assert rho_box == pytest.approx(0.3, rel=1e-12)
    assert rho_gpu == pytest.approx(0.3, rel=1e-12)
    assert st.utilization == pytest.approx(40 / (1 / 0.030 + 1 / 0.010), rel=1e-12)
    # Both M/M/1 (cv 1): box Exp(33.3 - 10) mean 3/70, gpu1 Exp(100 - 30) mean 1/70.
    # Mixture mean 1/4 * 3/70 + 3/4 * 1/70 = 3/140; second moment 2 m^2 each:
    # 1/4 * 18/4900 + 3/4 * 2/4900 = 6/4900; variance 6/4900 - (3/140)^2 = 15/19600.
    assert st.mean_s == pytest.approx(0.25 * 3 / 70 + 0.75 * 1 / 70, rel=1e-12)
    assert st.var_s2 == pytest.approx(15 / 19600, rel=1e-9)


def test_stage_cv_is_read_from_p90(est: AnalyticEstimator) -> None:
    # det big on gpu: mean 20 ms, p90 30 ms -> cv = (30 - 20) / (z90 * 20).
    # M/G/1 at lam = 10/s: rho = 0.2 = C; Wq = 0.2 / (50 - 10) * (1 + cv^2) / 2 (P-K);
    # variance = wait (M/G/1's exact law: waitlaw.mg1) + service (cv * 0.020)^2.
    cv = (30 - 20) / (Z90 * 20)
    wq = 0.2 / (50 - 10) * (1 + cv * cv) / 2
    st = est.stage(_query(10), "det", ("big",), 1, _on(("gpu1", 1)))
    assert st.mean_s == pytest.approx(0.020 + wq, rel=1e-12)
    wait_var = waitlaw.mg1(10.0, 0.020, cv)[1]
    assert st.var_s2 == pytest.approx(wait_var + (cv * 0.020) ** 2, rel=1e-9)


def test_stage_saturated_is_infinite(est: AnalyticEstimator) -> None:
    # det small on gpu1 serves 100/s; 100/s offered is saturation.
    st = est.stage(_query(100), "det", ("small",), 1, _on(("gpu1", 1)))
    assert st.mean_s == math.inf
    assert st.var_s2 == math.inf
    assert st.utilization == pytest.approx(100 * 0.010, rel=1e-12)


# --------------------------------------------------------------------------------- transfer


def test_transfer_on_the_same_device_is_free(est: AnalyticEstimator) -> None:
    tr = est.transfer(_query(10), 500.0, (("gpu1", 1.0),), (("gpu1", 1.0),))
    assert (tr.mean_s, tr.var_s2, tr.link_mbps, tr.cost_per_hour) == (0.0, 0.0, (), 0.0)


def test_transfer_inside_a_site_uses_its_lan(est: AnalyticEstimator) -> None:
    # Edge LAN: 200 KB * 8.192e-3 Mbit/KB / 100 Mbit/s + 2 ms / 2 = 0.016384 + 0.001 s.
    tr = est.transfer(_query(10), 200.0, (("box", 1.0),), (("box2", 1.0),))
    assert tr.mean_s == pytest.approx(200 * KB_MBIT / 100 + 0.002 / 2, rel=1e-12)
    assert tr.var_s2 == pytest.approx(0.0, abs=1e-15)
    assert tr.link_mbps == ()
    assert tr.cost_per_hour == 0.0
    # A source at the site ("@edge") to a device there travels the same LAN.
    src = est.transfer(_query(10), 200.0, (("@edge", 1.0),), (("box", 1.0),))
    assert src.mean_s == pytest.approx(200 * KB_MBIT / 100 + 0.002 / 2, rel=1e-12)
    # Cloud LAN has no bandwidth figure: only RTT/2 = 1 ms / 2, whatever the size.
    cloud = est.transfer(_query(10), 1e6, (("gpu1", 1.0),), (("gpu2", 1.0),))
    assert cloud.mean_s == pytest.approx(0.001 / 2, rel=1e-12)


def test_transfer_across_a_link_takes_time_bandwidth_and_money(est: AnalyticEstimator) -> None:
    # 50 KB per request at 10 req/s from edge to cloud over 20 Mbit/s, RTT 40 ms, $0.09/GB.
    tr = est.transfer(_query(10), 50.0, (("box", 1.0),), (("gpu1", 1.0),))
    # Time: 50 * 8.192e-3 / 20 + 0.040 / 2 = 0.02048 + 0.02.
    assert tr.mean_s == pytest.approx(50 * KB_MBIT / 20 + 0.040 / 2, rel=1e-12)
    # Link load: 10 * 50 KB/s * 8.192e-3 = 4.096 Mbit/s.
    ((pair, mbps),) = tr.link_mbps
    assert pair == ("edge", "cloud")
    assert mbps == pytest.approx(10 * 50 * 8.192e-3, rel=1e-12)
    # Cost: 500 KB/s * 3600 s/h / 1024^2 KB/GB * $0.09/GB = 162000 / 1048576 $/h.
    assert tr.cost_per_hour == pytest.approx(10 * 50 * 3600 / 1024**2 * 0.09, rel=1e-12)
    assert tr.cost_per_hour == pytest.approx(162000 / 1048576, rel=1e-12)


def test_transfer_without_a_link_is_unreachable(est: AnalyticEstimator) -> None:
    tr = est.transfer(_query(10), 50.0, (("box", 1.0),), (("lonely", 1.0),))
    assert tr.mean_s == math.inf
    assert tr.var_s2 == math.inf
    src = est.transfer(_query(10), 50.0, (("@far", 1.0),), (("gpu1", 1.0),))
    assert src.mean_s == math.inf


def test_transfer_mixes_every_pair_of_shares(est: AnalyticEstimator) -> None:
    # From box 1/4, gpu1 3/4 to box2 1/2, gpu2 1/2; 50 KB at 10 req/s. Pair weights:
    #   box  -> box2 1/8: edge LAN  50 * 8.192e-3 / 100 + 0.001 = 0.005096
    #   box  -> gpu2 1/8: link      50 * 8.192e-3 / 20 + 0.020  = 0.04048 (edge -> cloud)
    #   gpu1 -> box2 3/8: link      0.04048                             (cloud -> edge)
    #   gpu1 -> gpu2 3/8: cloud LAN 0.0005
    lan, wan, cloud = 50 * KB_MBIT / 100 + 0.001, 50 * KB_MBIT / 20 + 0.020, 0.0005
    tr = est.transfer(
        _query(10), 50.0, (("box", 0.25), ("gpu1", 0.75)), (("box2", 0.5), ("gpu2", 0.5))
    )
    mean = lan / 8 + wan / 8 + 3 * wan / 8 + 3 * cloud / 8
    second = lan**2 / 8 + wan**2 / 8 + 3 * wan**2 / 8 + 3 * cloud**2 / 8
    assert tr.mean_s == pytest.approx(mean, rel=1e-12)
    assert tr.var_s2 == pytest.approx(second - mean**2, rel=1e-9)
    # Traffic: 500 KB/s * 3/8 cloud -> edge and 500 KB/s * 1/8 edge -> cloud.
    assert [p for p, _ in tr.link_mbps] == [("cloud", "edge"), ("edge", "cloud")]
    assert tr.link_mbps[0][1] == pytest.approx(500 * 3 / 8 * KB_MBIT, rel=1e-12)
    assert tr.link_mbps[1][1] == pytest.approx(500 * 1 / 8 * KB_MBIT, rel=1e-12)
    # Both directions cost $0.09/GB: half of the 500 KB/s crosses.
    assert tr.cost_per_hour == pytest.approx(500 * (1 / 8 + 3 / 8) * 3600 * KB_GB * 0.09, rel=1e-12)


# --------------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize(
    ("pipeline", "det", "cls", "expected"),
    [
        ("chain", "small", 224, 0.8 * 0.7),
        ("chain", "big", 288, 0.9 * 0.95),
        ("chain-min", "big", 224, min(0.9, 0.7)),
        ("chain-min", "small", 288, min(0.8, 0.95)),
        ("chain-mean", "small", 224, (0.8 + 0.7) / 2),
        ("chain-mean", "big", 288, (0.9 + 0.95) / 2),
        # Table: the row naming the most knobs among those that match wins.
        ("chain-table", "small", 288, 0.5),  # only the empty default row matches
        ("chain-table", "small", 224, 0.6),  # default (0 knobs) vs cls 224 (1 knob)
        ("chain-table", "big", 288, 0.93),  # det big (1) vs det big + cls 288 (2)
        ("chain-table", "big", 224, 0.85),  # det big (1) ties cls 224 (1): first listed
        ("chain-table-partial", "big", 224, 0.85),
    ],
)
def test_accuracy_composition(
    est: AnalyticEstimator, pipeline: str, det: str, cls: int, expected: float
) -> None:
    got = est.accuracy(pipeline, {"det": (det,), "cls": (cls,)})
    assert got == pytest.approx(expected, rel=1e-12)


def test_accuracy_without_a_model_or_a_matching_row_is_none(est: AnalyticEstimator) -> None:
    assert est.accuracy("chain-none", {"det": ("big",), "cls": (288,)}) is None
    assert est.accuracy("chain-table-partial", {"det": ("small",), "cls": (288,)}) is None


# --------------------------------------------------------------------------------- estimate


def _plan(*stages: tuple[str, str | int, Placement]) -> QueryPlan:
    return QueryPlan(
        query="q",
        stages=tuple(
            StagePlan(stage=name, config=(cfg,), batch=1, placement=placement)
            for name, cfg, placement in stages
        ),
    )


def _plan_no_knobs(*stages: tuple[str, tuple[Any, ...], Placement]) -> QueryPlan:
    return QueryPlan(
        query="q",
        stages=tuple(
            StagePlan(stage=name, config=cfg, batch=1, placement=placement)
            for name, cfg, placement in stages
        ),
    )


def _pearson_q(mean: float, var: float, third: float, q: float) -> float:
    """The ``q``-quantile of Pearson's type III law with these three moments (scipy's)."""
    return float(pearson3.ppf(q, third / var**1.5, loc=mean, scale=math.sqrt(var)))


def _gamma_q(mean: float, var: float, q: float) -> float:
    """The q-quantile of a gamma with shape m^2/v and scale v/m, by bisection on its CDF.

    The CDF is the regularised lower incomplete gamma P(shape, x / scale); inverting it by
    bisection keeps this check independent of the kernel's closed-form inverse.
    """
    shape, scale = mean * mean / var, var / mean
    lo, hi = 0.0, mean + 50 * math.sqrt(var)
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gammainc(shape, mid / scale) < q else (lo, mid)
    return (lo + hi) / 2


def test_estimate_of_a_chain_sums_stages_and_transfers(est: AnalyticEstimator) -> None:
    # cam@edge -> det small on box (edge cpu) -> cls 224 on gpu1 (cloud gpu), 10 req/s.
    query = _query(10)
    plan = _plan(("det", "small", _on(("box", 1))), ("cls", 224, _on(("gpu1", 1))))
    got = est.estimate(query, plan)
    # cam -> det: 200 KB over the edge LAN: 200 * 8.192e-3 / 100 + 0.001.
    t_in = 200 * KB_MBIT / 100 + 0.001
    # det: M/M/1, mu = 1/0.030, lam = 10: Exp(100/3 - 10) -> mean 3/70, var (3/70)^2.
    det_m, det_v = 3 / 70, (3 / 70) ** 2
    # det -> cls: 50 KB over the edge->cloud link: 50 * 8.192e-3 / 20 + 0.040 / 2.
    t_mid = 50 * KB_MBIT / 20 + 0.020
    # cls: M/D/1, S = 5 ms, rho = 0.05 = C: Wq = 0.05 / (2 * 200 * 0.95) = 1/7600,
    # the wait's moments M/D/1's exact ones (waitlaw.mg1).
    wq = 0.05 / (2 * 200 * 0.95)
    _, cls_v, cls_t = waitlaw.mg1(10.0, 0.005, 0.0)
    cls_m = 0.005 + wq
    mean = t_in + det_m + t_mid + cls_m
    var = det_v + cls_v  # single-device transfers have no variance
    # Third central moments: the exponential's 2 m^3; the wait's from its law (waitlaw).
    third = 2 * det_m**3 + cls_t
    assert got.latency_mean_ms == pytest.approx(mean * 1e3, rel=1e-12)
    assert got.latency_var_ms2 == pytest.approx(var * 1e6, rel=1e-9)
    assert got.latency_third_ms3 == pytest.approx(third * 1e9, rel=1e-9)
    assert got.percentile == 99.0
    assert got.latency_ms == pytest.approx(_pearson_q(mean, var, third, 0.99) * 1e3,
                                           rel=1e-6)
    # Compute: det 1 replica * 1 unit * $0.5 + cls 1 replica * 1 unit * $2.0.
    assert got.compute_cost_per_hour == pytest.approx(1 * 1 * 0.5 + 1 * 1 * 2.0, rel=1e-12)
    # Network: only det -> cls crosses sites: 10 * 50 KB/s * 3600 / 1024^2 * $0.09.
    network = 10 * 50 * 3600 * KB_GB * 0.09
    assert got.network_cost_per_hour == pytest.approx(network, rel=1e-12)
    assert got.cost_per_hour == pytest.approx(0.5 + 2.0 + network, rel=1e-12)
    assert got.accuracy == pytest.approx(0.8 * 0.7, rel=1e-12)
    # Utilisation: det 10 * 0.030, cls 10 * 0.005.
    assert got.max_utilization == pytest.approx(max(10 * 0.030, 10 * 0.005), rel=1e-12)
    assert got.device_units == (("box", 1.0), ("gpu1", 1.0))
    assert got.device_memory_gb == (("box", 2.0), ("gpu1", 0.0))
    ((pair, mbps),) = got.link_mbps
    assert pair == ("edge", "cloud")
    assert mbps == pytest.approx(10 * 50 * KB_MBIT, rel=1e-12)


def test_estimate_of_a_join_takes_the_maximum_of_its_branches(est: AnalyticEstimator) -> None:
    # video@cloud -> v (det small, work_scale 3, gpu1) -> f (fuse, gpu1)
    # audio@edge  -> a (cls 224 on box, cpu)           -> f
    query = _query(
        10, pipeline="join", sources={"video": "cloud", "audio": "edge"}, work_scale={"v": 3.0}
    )
    plan = _plan_no_knobs(
        ("v", ("small",), _on(("gpu1", 1))),
        ("a", (224,), _on(("box", 1))),
        ("f", (), _on(("gpu1", 1))),
    )
    got = est.estimate(query, plan)
    # fuse: M/D/1, S = 4 ms, rho = 0.04 = C: Wq = 0.04 / (2 * 250 * 0.96); exact (waitlaw.mg1).
    wq_f = 0.04 / (2 * 250 * 0.96)
    _, f_v, f_t = waitlaw.mg1(10.0, 0.004, 0.0)
    f_m = 0.004 + wq_f
    # Video branch: cloud LAN 1 ms / 2; v: 10 ms * 3 = 30 ms, M/M/1 Exp(100/3 - 10): 3/70;
    # v -> f on the same device: 0.
    video_m, video_v = 0.0005 + 3 / 70, (3 / 70) ** 2
    # Audio branch: 10 KB over the edge LAN; a: M/D/1, S = 20 ms, rho = 0.2 = C,
    # Wq = 0.2 / (2 * 50 * 0.8) = 0.0025; a -> f: 1 KB over the link.
    wq_a = 0.2 / (2 * 50 * 0.8)
    audio_m = (10 * KB_MBIT / 100 + 0.001) + (0.020 + wq_a) + (1 * KB_MBIT / 20 + 0.020)
    _, audio_v, audio_t = waitlaw.mg1(10.0, 0.020, 0.0)
    video_t = 2 * (3 / 70) ** 3
    # f starts when both branches are in. Both sources emit at the request's arrival, so the
    # waits of v and a move together: with the part of each wait the arrivals drive (M/M/1:
    # 1/2; M/D/1: 1), a common component of variance 1/2 sd_v sd_a (at most the smaller wait
    # variance) and a third moment scaled from the waits is split off both branches
    # (join.common_wait) and added back after the maximum of what is left: the moments of the
    # maximum of two shifted gammas, E[M^k] = int k t^(k-1) (1 - F_v(t) F_a(t)) dt, by
    # quadrature.
    wq_v = 0.3 / (100 / 3 - 10)
    _, wv_v, wv_t = waitlaw.moments(wq_v, 100 / 3 - 10)  # M/M/1: exponential, mu - lam
    common_v = min(0.5 * math.sqrt(wv_v * audio_v), wv_v, audio_v)
    common_t = min(wv_t * (common_v / wv_v) ** 1.5, audio_t * (common_v / audio_v) ** 1.5)
    assert common_v > 0

    def cdf(t: float, m: float, v: float, third: float) -> float:
        if v <= 1e-15:  # all of a's variance is its wait, shared: what is left is a constant
            return float(t >= m)
        return float(pearson3.cdf(t, third / v**1.5, loc=m, scale=math.sqrt(v)))

    def tail_moment(k: int) -> float:
        return quad(lambda t: k * t ** (k - 1) * (
            1 - cdf(t, video_m, video_v - common_v, video_t - common_t)
            * cdf(t, audio_m, audio_v - common_v, audio_t - common_t)),
                    0, 1.0, limit=200, points=[video_m, audio_m])[0]

    m1, m2, m3 = tail_moment(1), tail_moment(2), tail_moment(3)
    max_m, max_v, max_t = m1, m2 - m1**2 + common_v, m3 - 3 * m1 * m2 + 2 * m1**3 + common_t
    # The maximum is slower than either branch on average.
    assert max_m > max(video_m, audio_m) + 1e-3
    mean, var, third = max_m + f_m, max_v + f_v, max_t + f_t
    assert got.latency_mean_ms == pytest.approx(mean * 1e3, rel=1e-4)
    assert got.latency_var_ms2 == pytest.approx(var * 1e6, rel=1e-2)
    assert got.latency_third_ms3 == pytest.approx(third * 1e9, rel=3e-2)
    assert got.latency_ms == pytest.approx(_pearson_q(mean, var, third, 0.99) * 1e3,
                                           rel=3e-3)
    # Costs add up over the three stages and the one crossing edge (a -> f, 1 KB at 10/s).
    compute = 1 * 2 * 2.0 + 1 * 1 * 0.5 + 1 * 1 * 2.0
    network = 10 * 1 * 3600 * KB_GB * 0.09
    assert got.compute_cost_per_hour == pytest.approx(compute, rel=1e-12)
    assert got.network_cost_per_hour == pytest.approx(network, rel=1e-12)
    assert got.accuracy == pytest.approx(0.8 * 0.7 * 0.99, rel=1e-12)
    assert got.device_units == (("box", 1.0), ("gpu1", 2.0 + 1.0))


def test_estimate_is_infinite_when_a_transfer_is_unreachable(est: AnalyticEstimator) -> None:
    query = _query(10, sources={"cam": "far"})
    plan = _plan(("det", "small", _on(("box", 1))), ("cls", 224, _on(("gpu1", 1))))
    got = est.estimate(query, plan)
    assert got.latency_mean_ms == math.inf
    assert got.latency_ms == math.inf
