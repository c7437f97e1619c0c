"""The online benchmark times every held-out and extra arrival and summarises them; a generated
world is planned with shared deployments."""

from __future__ import annotations

import gc

from typer.testing import CliRunner

from circinus.bench.online import run_online_bench
from circinus.cli.main import app
from circinus.gen import GenSpec, generate
from circinus.spec import build_index, parse_world


def test_online_bench_times_every_arrival() -> None:
    index = build_index(parse_world(generate(GenSpec(queries=60, seed=1))))
    report = run_online_bench("gen-60", index, held_out=2, extra=3, departures=4, seed=1,
                              time_limit_s=2.0)
    assert [a.query for a in report.arrivals][:2] == [q.name for q in index.world.queries[-2:]]
    assert len(report.arrivals) == 5 and report.queries == 60 and report.gc_frozen
    assert report.sharing == "shared" and report.start_deployments > 0
    assert report.start_cost_per_hour > 0
    assert len(report.departure_seconds) == 4
    assert all(a.decision_seconds > 0 and a.explain_seconds >= 0 for a in report.arrivals)
    assert all(a.explain_seconds == 0 for a in report.arrivals if a.admitted)
    summary = report.summary()
    assert summary["decision_median_s"] <= summary["decision_max_s"]
    assert summary["total_p90_s"] >= summary["decision_p90_s"] - 1e-12
    assert not gc.get_freeze_count()  # the collector is given back as it was
    assert report.to_json()["benchmark"] == "online"


def test_online_bench_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "online.json"
    result = CliRunner().invoke(app, ["bench", "online", "--queries", "40", "--extra", "2",
                                      "--time-limit", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "decision median" in result.output and out.exists()
    bad = CliRunner().invoke(app, ["bench", "online", "--queries", "40", "--held-out", "40"])
    assert bad.exit_code != 0 and "--held-out: must be in 1..39" in bad.output
