"""Hand-computed checks of the profiling kernels: statistics, stop rules, allocation, strata."""

from __future__ import annotations

import math

import numpy as np
import pytest

from circinus.profile.allocate import Arm, allocate, priority
from circinus.profile.stats import (
    RunningStats,
    clopper_pearson_interval,
    t_interval,
    wilson_interval,
)
from circinus.profile.stop import AnyStopRule, CIStopRule, DominatedStopRule, Target
from circinus.profile.strata import kmeans_strata, stratified_order


def test_running_stats_match_the_textbook() -> None:
    s = RunningStats().extend([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s.n == 8 and s.mean == pytest.approx(5.0)
    # Sum of squared deviations 32, sample variance 32 / 7.
    assert s.variance == pytest.approx(32 / 7)


def test_t_interval_by_hand() -> None:
    values = [18.0, 22.0] * 5  # mean 20, sample sd sqrt(40/9)
    ci = t_interval(RunningStats().extend(values), alpha=0.05)
    half = 2.2621571627 * math.sqrt(40 / 9) / math.sqrt(10)  # t(0.975, 9) from tables
    assert (ci.low, ci.high) == pytest.approx((20 - half, 20 + half), rel=1e-6)
    assert t_interval(RunningStats().add(1.0)).width == math.inf


def test_wilson_and_clopper_pearson() -> None:
    w = wilson_interval(8, 10)
    # z = 1.959964: centre (0.8 + z^2/20) / (1 + z^2/10), half-width as in Wilson (1927).
    z = 1.959963985
    centre = (0.8 + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(0.8 * 0.2 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (w.low, w.high) == pytest.approx((centre - half, centre + half), rel=1e-6)
    cp = clopper_pearson_interval(0, 10)
    assert cp.low == 0.0 and cp.high == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-6)
    assert wilson_interval(0, 0).width == 1.0


def test_ci_rule_sides() -> None:
    from circinus.profile.stats import Interval

    latency = Target(100.0, lower_is_better=True)
    rule = CIStopRule()
    assert rule.decide(Interval(90, 80, 95, 5), latency).verdict == "meets"
    assert rule.decide(Interval(110, 101, 130, 5), latency).verdict == "misses"
    assert not rule.decide(Interval(100, 90, 110, 5), latency).stop
    accuracy = Target(0.7, lower_is_better=False)
    assert rule.decide(Interval(0.8, 0.72, 0.9, 50), accuracy).verdict == "meets"
    assert rule.decide(Interval(0.5, 0.4, 0.69, 50), accuracy).verdict == "misses"


def test_dominated_and_any_rule() -> None:
    from circinus.profile.stats import Interval

    cost = Target(10.0, lower_is_better=True)
    best = Interval(3.0, 2.5, 3.5, 10)
    dominated = DominatedStopRule()
    assert dominated.decide(Interval(5, 4, 6, 10), cost, best).verdict == "dominated"
    assert not dominated.decide(Interval(4, 3.4, 6, 10), cost, best).stop
    assert not dominated.decide(Interval(5, 4, 6, 10), cost, None).stop
    both = AnyStopRule([CIStopRule(), dominated])
    assert both.decide(Interval(5, 4, 6, 10), cost, best).verdict == "meets"  # CI rule first


def test_allocation_priority_by_hand() -> None:
    arm = Arm("a", n=4, half_width=10.0)
    expected = 10 * (1 - math.sqrt(4 / 8)) + 0.1 * math.sqrt(math.log(100) / 4)
    assert priority(arm, round_size=4, total=100, exploration=0.1) == pytest.approx(expected)
    arms = [Arm("tight", 50, 0.1), Arm("wide", 4, 10.0), Arm("new", 0, math.inf)]
    assert allocate(arms, slots=2, round_size=4) == ["new", "wide"]


def test_strata_cover_every_kind_of_input_early() -> None:
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0, 0.1, (90, 2)), rng.normal(5, 0.1, (10, 2))])
    labels = kmeans_strata(features, 2, seed=0)
    assert sorted(np.bincount(labels)) == [10, 90]
    order = stratified_order(labels, seed=0)
    assert sorted(order) == list(range(100))
    first = labels[order[:10]]
    assert set(first) == {0, 1}  # the small stratum appears within the first ten
    assert stratified_order(np.array([0, 0, 0, 1]), seed=1)[:2] != []
    two = np.array([0, 0, 0, 1])[stratified_order(np.array([0, 0, 0, 1]), seed=1)[:2]]
    assert set(two) == {0, 1}
    assert stratified_order(labels, seed=0) == order  # deterministic
