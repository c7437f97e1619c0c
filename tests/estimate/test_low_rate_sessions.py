"""Low-rate sessions with long, variable LLM requests (the meeting-companion example): the
estimator's percentile against a simulation long enough to measure it.

An hour of a session at 0.015 req/s is about 50 requests, whose empirical p95 scatters by a
fifth around the true one (the order statistic's standard error, see
:mod:`circinus.bench.fidelity`): two seeds of one hour disagree with each other by more than
the bench's 10 % tolerance, while a day of simulated time (1,000+ requests per session) agrees
with the prediction for every admitted session (measured: 73 of 73 within 10 %, worst -6.4 %;
an hour gave 58 of 73, worst -28.8 %)."""

from __future__ import annotations

from pathlib import Path

import pytest

from circinus.bench.fidelity import TOLERANCE, simulated_duration
from circinus.plan.file import to_plan_file
from circinus.planner import Planner
from circinus.simulate import PoissonArrivals, SimulationSettings, compile_plan, simulate
from circinus.spec import build_index, load_world

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
def test_meeting_sessions_are_predicted_within_tolerance_of_a_long_simulation() -> None:
    index = build_index(load_world(EXAMPLES / "meeting-companion.yaml"))
    result = Planner(settings=index.world.planner.model_copy(update={"seed": 0})).plan(index)
    compiled = compile_plan(index, to_plan_file(index, result))
    duration = simulated_duration(index, result, 3600.0)
    assert duration > 12 * 3600.0  # its slowest sessions need most of a day (20 h)
    sim = simulate(compiled, arrivals=PoissonArrivals(),
                   settings=SimulationSettings(duration_s=duration, seed=0))
    errors = {q.name: (q.predicted_latency_ms - q.latency.at_slo_ms) / q.latency.at_slo_ms
              for q in sim.queries
              if q.predicted_latency_ms is not None and q.latency.at_slo_ms is not None}
    assert len(errors) == len(sim.queries) > 50
    within = sum(abs(e) <= TOLERANCE for e in errors.values())
    assert within >= 0.95 * len(errors), sorted(errors.items(), key=lambda kv: -abs(kv[1]))[:5]
    assert all(q.slo_met for q in sim.queries)
