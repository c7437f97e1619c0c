"""A bounded loopback load on a real service, killed with SIGKILL half way and started again on
the same store: no server error; every acknowledged arrival and departure is in the store's log
and in the restored state; every lost one is whole or absent; an unanswered arrival retried
with its Idempotency-Key gets the committed answer, not a second decision. Against SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pg_stores import fresh_postgres

from circinus.bench.service import ServiceProcess, check_against_log, drive
from circinus.gen import generate, make_spec
from circinus.service.store import DecisionStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "load-test-token-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
    else:
        yield from fresh_postgres()


def _world(tmp: Path, queries: int) -> tuple[Path, list[dict[str, Any]]]:
    data = generate(make_spec({"queries": queries, "seed": 3}))
    # What is checked is the store and the load, not the start-up plan's optimality: a 2 s
    # selection budget instead of the 30 s the exact selection spends on a world this small.
    data["planner"]["time_limit_s"] = 2.0
    path = tmp / "world.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path, [{k: v for k, v in q.items() if k != "name"} for q in data["queries"]]


def test_a_killed_service_keeps_every_acknowledged_decision(url: str, tmp_path: Path) -> None:
    world, pool = _world(tmp_path, 40)
    log = tmp_path / "service.log"
    first = ServiceProcess(world, url, TOKEN, log)
    try:
        first.wait_ready(600)
        load = asyncio.run(drive(first.url, TOKEN, pool, operations=240, concurrency=16,
                                 seed=1, kill_after=120, kill=first.kill))
    finally:
        first.stop()
    summary = load.summary()
    assert summary["server_errors"] == 0, summary
    assert summary["acknowledged"] >= 120 and summary["admitted"] > 0, summary
    second = ServiceProcess(world, url, TOKEN, log)
    try:
        second.wait_ready(600)
        present = second.present()
        db = DecisionStore(url)
        decisions = db.decisions()
        assert check_against_log(load, decisions, present) == []
        # A lost arrival retried with its key: the committed answer if it was committed, else
        # a decision now; never two.
        lost = [r for r in load.requests if r.op == "arrive" and r.status is None]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for r in lost[:3]:
            key = r.query  # the driver's key is the query's name
            body = r.body
            committed = ("arrive", r.query) in {(k, s) for k, s, _, _ in decisions}
            answer = httpx.post(f"{second.url}/v1/queries", json=body, timeout=60,
                                headers={**auth, "Idempotency-Key": key})
            if committed:
                assert answer.headers.get("Idempotent-Replayed") == "true", answer.text
            else:
                assert answer.status_code == 201, answer.text
        after = DecisionStore(url).decisions()
        assert sum(1 for k, s, _, _ in after if k == "arrive" and s in {
            r.query for r in lost[:3]}) == len(lost[:3])
        db.close()
    finally:
        second.stop()
    assert "Traceback" not in log.read_text()


def test_the_bench_goes_on_against_the_restarted_service(tmp_path: Path) -> None:
    """``circinus bench service``: the load is killed half way, the service restarted on the
    same store and port, and the second half of the load is served by it."""
    from circinus.bench.service import run_service_bench

    world, _ = _world(tmp_path, 40)
    report = run_service_bench(world, f"sqlite:///{tmp_path / 'bench.db'}", tmp_path,
                               operations=200, concurrency=8, seed=2)
    load = report["load"]
    assert report["durability_problems"] == [] and load["server_errors"] == 0, report
    # well past the half: the restarted service answered the rest (a few in flight are lost)
    assert load["acknowledged"] >= 180, load
    assert report["restart_after_kill_seconds"] > 0 and load["paused_seconds"] > 0
    assert report["admitted_at_start"] > 0 and report["admitted_after_load"] >= 0
    assert 0 < load["paused_seconds"] < load["seconds"]
