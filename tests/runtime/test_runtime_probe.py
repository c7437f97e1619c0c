"""Calibration: the probe's latencies become a per-call overhead, written into the world."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from circinus.errors import SpecError
from circinus.estimate.queueing import quantile
from circinus.runtime.probe import (
    Observed,
    Predicted,
    Run,
    calls_of,
    falling_behind,
    fit_runs,
    identity,
    observed_of,
    overhead_of,
    residual_of,
    write_runtime,
)
from circinus.runtime.results import Record
from circinus.spec.load import load_world
from circinus.spec.models import RuntimeSettings

ROOT = Path(__file__).resolve().parents[2]


def test_identity_answers_its_inputs() -> None:
    assert identity({"model": "x"})([1, "a", None]) == [1, "a", None]


def test_the_probe_fit_reproduces_the_measured_tail_under_the_estimators_rule() -> None:
    # 3 stage calls, mean 30 ms, p95 42 ms: 10 ms a call, and a variance per call such that
    # the estimator's rule (k times the call's moments, a gamma's percentile) gives 42 ms again.
    obs = {"q": Observed(200, 30.0, 42.0, 95.0)}
    rt = overhead_of(obs, {"q": 3}, note="test")
    assert rt.hop_mean_ms == pytest.approx(10.0)
    assert quantile(3 * rt.hop_mean_ms, 3 * rt.hop_sd_ms ** 2, 0.95) == pytest.approx(42.0,
                                                                                    rel=1e-3)
    assert rt.samples == 200 and rt.note == "test"


def test_queries_are_pooled_by_their_weighted_median() -> None:
    obs = {"a": Observed(10, 10.0, 12.0, 95.0), "b": Observed(100, 20.0, 30.0, 95.0),
           "c": Observed(30, 90.0, 150.0, 95.0)}
    rt = overhead_of(obs, {"a": 1, "b": 1, "c": 1})
    assert rt.hop_mean_ms == pytest.approx(20.0)  # b holds most of the requests
    assert quantile(rt.hop_mean_ms, rt.hop_sd_ms ** 2, 0.95) == pytest.approx(30.0, rel=1e-3)
    assert rt.samples == 140


def test_several_runs_are_pooled_query_by_query() -> None:
    # one query, 2 stages predicted at 20 ms of operators; a slow run (mean 60: 20 ms a
    # call), then two ordinary ones (mean 40: 10 ms a call): the ordinary runs hold the
    # median, the slow one alone would have doubled the figure
    pred = {"q": Predicted(2, 20.0, 30.0)}
    slow = {"q": Observed(300, 60.0, 90.0, 95.0)}
    usual = {"q": Observed(300, 40.0, 60.0, 95.0)}
    assert residual_of([slow], pred, None).hop_mean_ms == pytest.approx(20.0)
    pooled = residual_of([slow, usual, usual], pred, None)
    assert pooled.hop_mean_ms == pytest.approx(10.0) and pooled.samples == 900
    # a query one run missed counts where it was answered
    assert residual_of([{}, usual], pred, None).samples == 300
    with pytest.raises(SpecError, match="no request of the plan was answered"):
        residual_of([{}, {}], pred, None)


def test_observed_reads_each_querys_own_percentile() -> None:
    recs = [Record("q", i * 0.1, (i + 1) / 1000, True) for i in range(100)]
    recs += [Record("r", 0.0, 0.010, True), Record("r", 0.1, math.inf, False)]
    recs += [Record("s", 0.0, 0.010, True)]
    obs = observed_of(recs, {"q": 95.0, "r": 99.0, "s": 50.0})
    assert obs["q"] == Observed(100, pytest.approx(50.5), 95.0, 95.0)
    assert "r" not in obs and "s" not in obs  # one answer is not enough


def test_no_answer_is_an_error() -> None:
    with pytest.raises(SpecError, match="no request of the probe was answered"):
        overhead_of({}, {"q": 3})


def test_write_runtime_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    world = tmp_path / "w.yaml"
    world.write_text((ROOT / "examples" / "tiny.yaml").read_text())
    before = world.read_text()
    write_runtime(world, RuntimeSettings(hop_mean_ms=2.5, hop_sd_ms=1.0, samples=10))
    write_runtime(world, RuntimeSettings(hop_mean_ms=3.0, hop_sd_ms=1.5, samples=20))
    after = world.read_text()
    assert after.startswith(before.rstrip("\n"))
    assert after.count("runtime:") == 1
    loaded = load_world(world)
    assert loaded.runtime == RuntimeSettings(hop_mean_ms=3.0, hop_sd_ms=1.5, samples=20)
    assert yaml.safe_load(after)["queries"] == yaml.safe_load(before)["queries"]


def test_write_runtime_json(tmp_path: Path) -> None:
    world = tmp_path / "w.json"
    import json

    world.write_text(json.dumps(yaml.safe_load((ROOT / "examples" / "tiny.yaml").read_text())))
    write_runtime(world, RuntimeSettings(hop_mean_ms=1.0))
    assert load_world(world).runtime == RuntimeSettings(hop_mean_ms=1.0)


def test_residual_refits_on_top_of_what_the_plan_predicts_of_the_operators() -> None:
    # q: 3 stages predicted at 40 ms mean with base 10 ms a call (10 ms of it the operators),
    # variance 85 = 10 of the operators + 3 x 25; measured mean 70, p95 100 ms.
    base = RuntimeSettings(hop_mean_ms=10.0, hop_sd_ms=5.0)
    obs = {"q": Observed(300, 70.0, 100.0, 95.0)}
    rt = residual_of(obs, {"q": Predicted(3, 40.0, 85.0)}, base, note="served")
    assert rt.hop_mean_ms == pytest.approx(20.0)
    # the re-planned prediction puts the 95th percentile on what was measured
    assert quantile(10.0 + 3 * rt.hop_mean_ms, 10.0 + 3 * rt.hop_sd_ms ** 2, 0.95) == (
        pytest.approx(100.0, rel=1e-3))
    assert rt.samples == 300
    # served faster than the operators alone were predicted: never below nothing
    faster = residual_of(obs, {"q": Predicted(3, 200.0, 1e6)}, None)
    assert faster.hop_mean_ms == 0.0 and faster.hop_sd_ms == 0.0
    with pytest.raises(SpecError, match="no request of the plan was answered"):
        residual_of({}, {"q": Predicted(3, 40.0, 10.0)}, base)


def test_an_engine_falling_behind_is_recognised() -> None:
    steady = [Record("q", i * 0.1, 0.020 + 0.001 * (i % 3), True) for i in range(90)]
    assert falling_behind(steady) is None
    queue = [Record("q", i * 0.1, 0.020 + 0.002 * i, True) for i in range(90)]
    assert "early in the run" in (falling_behind(queue) or "")
    lost = steady[:80] + [Record("q", 9.0 + i, math.inf, False) for i in range(10)]
    assert "unanswered" in (falling_behind(lost) or "")


def test_the_fit_reads_the_tail_the_way_the_estimator_does_with_a_third_moment() -> None:
    # operators predicted skewed (third moment 2000 ms^3): the fitted figures put the shifted
    # gamma's 99th percentile, with that third moment, on the measured one
    obs = {"q": Observed(500, 50.0, 120.0, 99.0)}
    rt = residual_of(obs, {"q": Predicted(2, 20.0, 30.0, 2000.0)}, None)
    assert rt.hop_mean_ms == pytest.approx(15.0)
    assert quantile(50.0, 30.0 + 2 * rt.hop_sd_ms ** 2, 0.99, 2000.0) == pytest.approx(
        120.0, rel=1e-3)


def _served(calls: dict[str, float], hop: dict[str, tuple[float, float]], requests: int,
            noise: float = 0.0) -> tuple[Predicted, Observed]:
    """A query predicted at 20 ms mean, 9 ms^2 of operators (p95), measured as if each call
    on a tier added that tier's ``hop`` (mean, sd), its figures off by ``noise`` (a fraction)."""
    k = round(sum(calls.values()))
    mean = 20.0 + sum(n * hop[t][0] for t, n in calls.items())
    var = 9.0 + sum(n * hop[t][1] ** 2 for t, n in calls.items())
    return (Predicted(k, 20.0, 9.0, calls=calls),
            Observed(requests, mean * (1 + noise), quantile(mean, var, 0.95) * (1 + noise),
                     95.0))


def test_the_tiers_are_fitted_back_from_queries_that_call_them_in_other_proportions() -> None:
    # edge calls add 5 +/- 1 ms, cloud calls 9 +/- 4 ms; two runs of plans that place the
    # queries' three stages otherwise, each query's figures off by up to 3 %
    hop = {"edge": (5.0, 1.0), "cloud": (9.0, 4.0)}
    mixes = [{"edge": 3.0}, {"edge": 2.0, "cloud": 1.0}, {"edge": 1.0, "cloud": 2.0},
             {"cloud": 3.0}, {"edge": 2.0, "cloud": 1.0}, {"cloud": 3.0}]
    noise = [0.0, 0.02, -0.03, 0.01, -0.01, 0.03]
    runs = []
    for first in (0, 3):
        pairs = {f"q{i}": _served(mixes[i], hop, 200 + 50 * i, noise[i])
                 for i in range(first, first + 3)}
        runs.append(Run({q: o for q, (_, o) in pairs.items()},
                        {q: p for q, (p, _) in pairs.items()}, None))
    rt = fit_runs(runs)
    assert rt.tiers is not None and rt.tiers.edge is not None and rt.tiers.cloud is not None
    assert rt.tiers.edge.hop_mean_ms == pytest.approx(5.0, rel=0.1)
    assert rt.tiers.cloud.hop_mean_ms == pytest.approx(9.0, rel=0.1)
    assert rt.tiers.edge.hop_sd_ms == pytest.approx(1.0, abs=0.5)
    assert rt.tiers.cloud.hop_sd_ms == pytest.approx(4.0, rel=0.15)
    assert rt.figures("cloud") == (rt.tiers.cloud.hop_mean_ms, rt.tiers.cloud.hop_sd_ms)
    # the world-wide figure pools every call: between the tiers
    assert 5.0 < rt.hop_mean_ms < 9.0
    assert rt.tiers.edge.samples == 200 + 250 + 300 + 400 and rt.samples == 1_950
    # without noise the fit is exact
    exact = [Run({"a": _served(m, hop, 100)[1]}, {"a": _served(m, hop, 100)[0]}, None)
             for m in mixes[:4]]
    rt = fit_runs(exact)
    assert rt.tiers is not None and rt.tiers.edge is not None and rt.tiers.cloud is not None
    assert (rt.tiers.edge.hop_mean_ms, rt.tiers.cloud.hop_mean_ms) == pytest.approx((5.0, 9.0))
    assert (rt.tiers.edge.hop_sd_ms, rt.tiers.cloud.hop_sd_ms) == pytest.approx((1.0, 4.0),
                                                                                rel=1e-3)


def test_a_tier_no_run_tells_apart_keeps_the_world_wide_figure() -> None:
    hop = {"edge": (5.0, 1.0), "cloud": (9.0, 4.0)}
    # edge only: the edge figure is the world-wide one; no query calls the cloud
    only = {f"q{i}": _served({"edge": 3.0}, hop, 100, 0.01 * i) for i in range(3)}
    rt = fit_runs([Run({q: o for q, (_, o) in only.items()},
                       {q: p for q, (p, _) in only.items()}, None)])
    assert rt.tiers is not None and rt.tiers.cloud is None and rt.tiers.edge is not None
    assert (rt.tiers.edge.hop_mean_ms, rt.tiers.edge.hop_sd_ms) == (rt.hop_mean_ms,
                                                                    rt.hop_sd_ms)
    assert rt.figures("cloud") == (rt.hop_mean_ms, rt.hop_sd_ms)
    # every query calls the tiers 2:1: they cannot be told apart, neither gets a figure
    same = {f"q{i}": _served({"edge": 2.0, "cloud": 1.0}, hop, 100) for i in range(3)}
    rt = fit_runs([Run({q: o for q, (_, o) in same.items()},
                       {q: p for q, (p, _) in same.items()}, None)])
    assert rt.tiers is None
    assert rt.hop_mean_ms == pytest.approx((2 * 5.0 + 9.0) / 3, abs=1e-4)
    assert "tiers" not in rt.document()


def test_each_run_is_fitted_on_top_of_its_own_figures() -> None:
    # the same query measured twice at 50 ms mean: once of a plan predicted with 10 ms a call
    # on the cloud (3 calls: 30 of its 50 ms predicted), once of a plan without figures
    hop = {"cloud": (10.0, 2.0)}
    pred, obs = _served({"cloud": 3.0}, hop, 100)
    with_base = Predicted(3, pred.mean_ms + 30.0, pred.var_ms2 + 12.0, calls={"cloud": 3.0})
    base = RuntimeSettings(hop_mean_ms=1.0, tiers={"cloud": {"hop_mean_ms": 10.0,
                                                             "hop_sd_ms": 2.0}})
    a = fit_runs([Run({"q": obs}, {"q": with_base}, base)])
    b = fit_runs([Run({"q": obs}, {"q": pred}, None)])
    assert a.tiers is not None and b.tiers is not None
    assert a.tiers.cloud == b.tiers.cloud
    assert a.tiers.cloud is not None and a.tiers.cloud.hop_mean_ms == pytest.approx(10.0)


def test_calls_are_counted_per_tier_from_the_route() -> None:
    from circinus.simulate import read_plan_file

    plan = read_plan_file(ROOT / "docs" / "serving" / "ocr-branches-serve-plan-probe.json")
    assert calls_of(plan, "labels-a") == {"edge": 2.0, "cloud": 1.0}
    assert calls_of(plan, "no-such-query") == {}
