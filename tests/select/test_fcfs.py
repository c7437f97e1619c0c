"""First-come-first-served admission: order decides, capacity is never exceeded."""

from __future__ import annotations

from hypothesis import given, settings
from tests.select.test_milp import _problem, instance

from circinus.select import FcfsSelector


def test_earlier_query_keeps_the_unit_even_if_a_heavier_one_comes_later() -> None:
    problem = _problem([[(1.0, {"pool": 1.0}, 0.0)], [(1.0, {"pool": 1.0}, 0.0)]],
                       [1.0, 2.0, 1.0, 1.0, 1.0], (1, 1, 1), None)
    sel = FcfsSelector().select(problem, time_limit_s=1)
    assert sel.chosen == (0, None)
    assert sel.goodput == 1.0 and sel.goodput_bound == 3.0 and sel.status == "greedy"


def test_falls_back_to_the_next_candidate_that_fits() -> None:
    problem = _problem([[(1.0, {"pool": 1.0}, 0.0)],
                        [(1.0, {"pool": 1.0}, 0.0), (5.0, {"edge-a": 1.0}, 0.0)]],
                       [1.0] * 5, (1, 1, 1), None)
    sel = FcfsSelector().select(problem, time_limit_s=1)
    assert sel.chosen == (0, 1)
    assert sel.cost_per_hour == 6.0


@settings(max_examples=60)
@given(instance)
def test_never_over_capacity(inst) -> None:  # type: ignore[no-untyped-def]
    problem = _problem(*inst)
    sel = FcfsSelector().select(problem, time_limit_s=1)
    assert sel.fits(problem)
    assert sel.goodput <= sel.goodput_bound + 1e-9
