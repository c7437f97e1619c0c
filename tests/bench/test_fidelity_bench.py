"""``circinus bench fidelity`` on a short run: the records, their shares and the JSON."""

from __future__ import annotations

import functools
import json

import pytest

from circinus.bench.fidelity import (
    MAX_DURATION_S,
    TAIL_REQUESTS,
    TOLERANCE,
    run_fidelity_bench,
    simulated_duration,
)
from circinus.bench.fidelity_worlds import KINDS, fidelity_world
from circinus.planner import Planner
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex


def _index(kind: str, seed: int) -> WorldIndex:
    return build_index(parse_world(fidelity_world(kind, seed), origin=kind))


def test_the_worlds_are_seeded_and_valid() -> None:
    for kind in KINDS:
        assert fidelity_world(kind, 3) == fidelity_world(kind, 3)
        assert fidelity_world(kind, 3) != fidelity_world(kind, 4)
        assert _index(kind, 3).world.queries
    with pytest.raises(ValueError, match="unknown fidelity world"):
        fidelity_world("ring", 0)


def test_a_short_run_records_every_admitted_query() -> None:
    report = run_fidelity_bench([("uplink-0", functools.partial(_index, "uplink", 0))],
                                seed=0, duration_s=30.0, rejected=1, tail_requests=0)
    (r,) = report.records
    assert r.simulated_seconds == 30.0  # (no tail asked for: the duration given)
    assert r.admitted == len(r.per_query) > 0
    assert r.met == sum(q.met for q in r.per_query)
    assert r.within == sum(q.error is not None and abs(q.error) <= TOLERANCE
                           for q in r.per_query)
    for q in r.per_query:
        assert q.requests > 0
        assert q.simulated_ms is not None and q.error == pytest.approx(
            (q.predicted_ms - q.simulated_ms) / q.simulated_ms)
    assert r.checked == min(1, r.rejected_on_latency) == len(r.rejected)
    data = json.loads(json.dumps(report.to_json()))
    assert data["benchmark"] == "fidelity" and data["records"][0]["admitted"] == r.admitted
    assert data["records"][0]["met_share"] == r.met_share


def test_low_rate_queries_are_simulated_until_their_tail_has_enough_requests() -> None:
    index = _index("shares", 0)
    result = Planner(settings=index.world.planner).plan(index)
    admitted = {o.name for o in result.outcomes if o.admitted}
    assert admitted
    queries = [q for q in index.world.queries if q.name in admitted]
    need = max(TAIL_REQUESTS / (1 - q.slo.percentile / 100) / (0.9 * q.rate_rps)
               for q in queries)
    assert simulated_duration(index, result, 60.0) == pytest.approx(max(60.0, need))
    assert simulated_duration(index, result, 10 * need) == 10 * need  # never shorter
    slow = index.world.model_copy(update={"queries": [
        q.model_copy(update={"rate_rps": 1e-4}) for q in index.world.queries]})
    assert simulated_duration(build_index(slow), result, 60.0) == MAX_DURATION_S
