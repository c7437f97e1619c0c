"""The MIP solve through highspy and its stall stop (circinus.select.highs)."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from scipy.sparse import csr_array

from circinus.select.highs import StallRule, StallWatch, solve_mip


def test_stall_watch_counts_nodes_since_the_last_improvement() -> None:
    watch = StallWatch(StallRule(nodes=10))
    assert not watch.see(math.inf, 0)  # no incumbent yet: never stalled
    assert not watch.see(math.inf, 50)
    assert not watch.see(-3.0, 52)  # an incumbent at node 52
    assert not watch.see(-3.0, 61)
    assert not watch.see(-4.0, 61)  # better: the count restarts at 61
    assert not watch.see(-4.0, 70)
    assert not watch.see(-4.0 + 1e-12, 70)  # no worse, no better: not an improvement
    assert watch.see(-4.0, 71) and watch.stalled
    assert watch.best == -4.0


def test_stall_watch_at_the_root_counts_from_node_zero() -> None:
    watch = StallWatch(StallRule(nodes=1))
    assert not watch.see(5.0, 0)
    assert not watch.see(4.0, 0)  # improvements at the root node never stall it
    assert not watch.see(4.0, 0)
    assert watch.see(4.0, 1)


def test_stall_rule_needs_a_node() -> None:
    with pytest.raises(ValueError, match="nodes >= 1"):
        StallRule(nodes=0)


def _knapsack(items: int, dims: int, seed: int) -> tuple[np.ndarray, csr_array, np.ndarray]:
    """A multi-dimensional 0/1 knapsack (maximise value: ``c`` is minus the values)."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(5, 60, size=(dims, items)).astype(float)
    values = weights.sum(axis=0) + rng.integers(0, 20, size=items)
    return -values.astype(float), csr_array(weights), weights.sum(axis=1) * 0.4


def test_solve_mip_is_exact_without_a_stall_rule() -> None:
    c, a, cap = _knapsack(12, 3, seed=1)
    res = solve_mip(c, a, cap, np.zeros(12), np.ones(12), deadline=time.monotonic() + 60,
                    rel_gap=1e-9)
    assert res is not None and res.status == "optimal" and res.x is not None
    dense = a.toarray()
    best = min(float(c @ x) for x in map(np.array, itertools.product((0, 1), repeat=12))
               if np.all(dense @ x <= cap + 1e-9))
    assert float(c @ np.round(res.x)) == pytest.approx(best)
    assert res.dual_bound <= best + 1e-6


def test_solve_mip_stops_when_it_stalls_with_a_feasible_answer() -> None:
    """A knapsack HiGHS branches on (118 nodes to prove its optimum): with a stall of one node
    it stops at the first node after the root, where it already holds the optimum (HiGHS is
    deterministic: the same problem and options give the same search)."""
    c, a, cap = _knapsack(25, 4, seed=4)
    lower, upper = np.zeros(25), np.ones(25)
    exact = solve_mip(c, a, cap, lower, upper, deadline=time.monotonic() + 120, rel_gap=1e-9)
    stalled = solve_mip(c, a, cap, lower, upper, deadline=time.monotonic() + 120,
                        rel_gap=1e-9, stall=StallRule(nodes=1))
    assert exact is not None and exact.status == "optimal" and exact.nodes > 1
    assert stalled is not None and stalled.status == "stalled" and stalled.x is not None
    assert stalled.nodes < exact.nodes
    x = np.round(stalled.x)
    assert np.all(a @ x <= cap + 1e-9)
    assert float(c @ x) == pytest.approx(float(c @ np.round(exact.x)))
    assert stalled.dual_bound <= float(c @ np.round(exact.x)) + 1e-6


def test_solve_mip_starts_from_a_given_solution() -> None:
    """A start that is already optimal: the solve proves it and returns an answer as good."""
    c, a, cap = _knapsack(30, 4, seed=2)
    lower, upper = np.zeros(30), np.ones(30)
    exact = solve_mip(c, a, cap, lower, upper, deadline=time.monotonic() + 60, rel_gap=1e-9)
    assert exact is not None and exact.x is not None
    again = solve_mip(c, a, cap, lower, upper, deadline=time.monotonic() + 60, rel_gap=1e-9,
                      start=np.round(exact.x))
    assert again is not None and again.status == "optimal" and again.x is not None
    assert float(c @ np.round(again.x)) == pytest.approx(float(c @ np.round(exact.x)))


def test_solve_mip_without_time_left_does_not_start() -> None:
    c, a, cap = _knapsack(5, 2, seed=0)
    assert solve_mip(c, a, cap, np.zeros(5), np.ones(5), deadline=time.monotonic(),
                     rel_gap=1e-6) is None


def test_while_solving_runs_the_job_once_while_the_solver_runs() -> None:
    from circinus.select.highs import run_until, while_solving

    events: list[str] = []

    def solver() -> str:
        time.sleep(0.3)
        events.append("solved")
        return "x"

    with while_solving(lambda: events.append("job")):
        assert run_until(solver, time.monotonic() + 5) == "x"
        assert events == ["job", "solved"]  # done while the solver slept
        assert run_until(solver, time.monotonic() + 5) == "x"
    assert events == ["job", "solved", "solved"]  # not again at the end


def test_while_solving_without_a_solve_runs_the_job_at_the_end() -> None:
    from circinus.select.highs import while_solving

    ran: list[int] = []
    with while_solving(lambda: ran.append(1)), while_solving(lambda: ran.append(2)):
        assert ran == []
    assert ran == [2, 1]  # each block's own job as it ends


def test_while_solving_runs_the_job_when_the_block_fails_but_not_on_interrupt() -> None:
    from circinus.select.highs import run_until, while_solving

    ran: list[int] = []
    with pytest.raises(ValueError), while_solving(lambda: ran.append(1)):
        raise ValueError("deadline")
    assert ran == [1]
    with pytest.raises(KeyboardInterrupt), while_solving(lambda: ran.append(2)):
        raise KeyboardInterrupt
    assert ran == [1]
    # and nothing is left waiting for the next solve
    assert run_until(lambda: 3, time.monotonic() + 5) == 3
    assert ran == [1]
