"""`circinus bench scale`: the command end to end on tiny worlds, and its target checks."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circinus.bench import scale
from circinus.bench.scale import (
    COMMAND_QUERIES,
    TARGET_QUERIES,
    ScaleRecord,
    run_scale_bench,
    targets,
    with_best_bound,
)
from circinus.cli.main import app

MEASURED = ("admitted", "candidates", "predicted_goodput", "simulated_goodput",
            "prediction_error", "cost_per_hour", "status", "bound", "gap", "gap_vs_best_bound",
            "search_seconds", "selection_seconds", "plan_seconds", "replan_seconds",
            "replan_decision_seconds", "replan_max_seconds", "replan_admitted",
            "online_start_seconds", "simulation_seconds", "load_average",
            "abandoned_solves_plan", "abandoned_solves_replan")


@pytest.mark.slow
def test_cli_writes_every_field(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    result = CliRunner().invoke(app, ["bench", "scale", "--sizes", "30", "--duration", "5",
                                      "--arrivals", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "circinus bench scale" in result.output and "targets" in result.output
    data = json.loads(out.read_text())
    assert data["benchmark"] == "scale" and data["complete"] is True
    assert len(data["load_average_start"]) == 3 and data["duration_s"] == 5
    records = data["records"]
    assert [(r["queries"], r["method"]) for r in records] == [
        (30, "circinus"), (30, "exact"), (30, "fcfs")]
    for r in records:
        assert set(r) == {f.name for f in fields(ScaleRecord)}
        assert all(r[name] is not None for name in MEASURED), r
        assert r["skipped"] is None and r["replan_arrivals"] == 2
        assert 0 <= r["gap"] <= 1 and r["bound"] >= r["predicted_goodput"] - 1e-9
        assert r["plan_seconds"] >= r["search_seconds"] + r["selection_seconds"] - 1e-6
        assert r["replan_decision_seconds"] <= r["replan_seconds"] <= r["replan_max_seconds"]
    ours, exact, fcfs = records
    assert ours["predicted_goodput"] == exact["predicted_goodput"]  # both optimal when small
    assert fcfs["predicted_goodput"] <= ours["predicted_goodput"]
    assert {t["name"] for t in data["targets"]} == {
        "selection", "plan + select", "one arrival re-planned", "predicted vs simulated goodput",
        "`circinus plan`, 100,000 queries"}
    assert all(t["met"] is None for t in data["targets"])  # 10,000 queries not run
    (search,) = data["search"]
    assert search["queries"] == 30 and search["same_as_serial"] is True
    assert data["parts"] == ["plan", "replan", "search"] and "PROJECTED" in result.output


@pytest.mark.slow
def test_the_command_part_runs_circinus_plan_as_a_user_does(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    result = CliRunner().invoke(app, ["bench", "scale", "--sizes", "40", "--part", "command",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "40 `circinus plan` end to end:" in result.output
    (rec,) = json.loads(out.read_text())["records"]
    assert rec["method"] == "circinus" and rec["skipped"] is None
    assert rec["admitted"] is None and rec["replan_seconds"] is None  # not asked for
    assert rec["command_cpu_seconds"] > 0 and 0 < rec["command_seconds"] < 600
    assert 50 < rec["command_peak_mb"] < 8000 and rec["load_average"] is not None
    stages = rec["command_stages"]
    assert set(stages) == {"search", "selection", "why-not", "rest"}
    assert all(v >= 0 for v in stages.values()) and stages["search"] > 0
    assert sum(stages.values()) == pytest.approx(rec["command_seconds"])
    assert 0 < rec["command_admitted"] <= 40 and 0 <= rec["command_gap"] < 1


def test_the_command_part_reads_the_plan_file_its_command_wrote(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the record takes from the plan file, exactly (another run of the same command may
    plan otherwise on a loaded machine: its selection runs against a time budget)."""
    planned = {"admitted": 31, "solver": {"gap": 0.0123}, "search_seconds": 0.5,
               "select_seconds": 1.25, "why_not_seconds": 0.75}
    calls = []

    def fake(argv: list[str], timeout_s: float) -> None:
        calls.append(argv[3])
        if argv[3] == "plan":
            Path(argv[argv.index("--json") + 1]).write_text(json.dumps(planned))

    monkeypatch.setattr(scale, "_call", fake)
    rec = scale.measure_command(40, seed=3, timeout_s=60)
    assert calls == ["gen", "plan"]
    assert (rec.command_admitted, rec.command_gap) == (31, 0.0123)
    assert rec.command_stages is not None
    assert {k: rec.command_stages[k] for k in ("search", "selection", "why-not")} == {
        "search": 0.5, "selection": 1.25, "why-not": 0.75}
    assert rec.command_stages["rest"] == max(rec.command_seconds - 2.5, 0.0)


@pytest.mark.slow
def test_same_seed_same_decisions() -> None:
    a, b = (run_scale_bench([12], ["fcfs"], seed=2, duration_s=2, arrivals=1, isolate=False)
            for _ in range(2))
    keys = ("admitted", "predicted_goodput", "simulated_goodput", "cost_per_hour", "bound")
    assert [getattr(a.records[0], k) for k in keys] == [getattr(b.records[0], k) for k in keys]
    assert a.records[0].replan_arrivals == 1


def test_cli_rejects_bad_options() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "scale", "--sizes", "30", "--method", "nope"])
    assert result.exit_code == 2 and "--method" in result.output
    result = runner.invoke(app, ["bench", "scale", "--sizes", "3", "--arrivals", "5"])
    assert result.exit_code == 2 and "--arrivals" in result.output


def _record(**given: object) -> ScaleRecord:
    base: dict[str, object] = {"queries": TARGET_QUERIES, "method": "circinus",
                               "selector": "milp"}
    return ScaleRecord(**{**base, **given})  # type: ignore[arg-type]


def test_targets_met_and_missed() -> None:
    good = _record(selection_seconds=2.0, gap=0.001, plan_seconds=25.0, replan_seconds=0.2,
                   predicted_goodput=100.0, simulated_goodput=97.0,
                   prediction_error=3 / 97)
    assert [t.met for t in targets([good])] == [True, True, True, True, None]
    bad = _record(selection_seconds=2.0, gap=0.02, plan_seconds=45.0, replan_seconds=1.5,
                  predicted_goodput=100.0, simulated_goodput=90.0, prediction_error=10 / 90)
    assert [t.met for t in targets([bad])] == [False, False, False, False, None]
    assert "+11.1%" in targets([bad])[3].measured
    other_size = _record(queries=1000, selection_seconds=1.0, gap=0.0)
    assert [t.met for t in targets([other_size])] == [None] * 5
    # the command's target, at 100,000 queries: both its time and its gap
    fast = _record(queries=COMMAND_QUERIES, command_seconds=59.0, command_gap=0.009)
    assert targets([fast])[4].met is True and targets([fast])[4].measured == "59.0 s, gap 0.90%"
    for slow in (_record(queries=COMMAND_QUERIES, command_seconds=61.0, command_gap=0.009),
                 _record(queries=COMMAND_QUERIES, command_seconds=59.0, command_gap=0.011)):
        assert targets([slow])[4].met is False


def test_gap_against_the_tightest_bound() -> None:
    rows = with_best_bound([_record(bound=100.0, predicted_goodput=99.0),
                            _record(method="fcfs", bound=120.0, predicted_goodput=90.0),
                            _record(method="exact")])
    assert [r.gap_vs_best_bound for r in rows] == [pytest.approx(0.01), pytest.approx(0.1), None]


def test_a_part_over_its_time_is_ended_and_recorded() -> None:
    report = run_scale_bench([30], ["fcfs"], duration_s=1, arrivals=1, part_timeout_s=0.2)
    (rec,) = report.records
    assert rec.skipped == "plan: did not finish in 0.2 s (ended)"
    assert rec.predicted_goodput is None and rec.replan_seconds is None
    assert report.complete and all(t.met is None for t in report.targets)


@pytest.mark.slow
def test_search_part_measures_workers_and_projects_the_rest() -> None:
    report = run_scale_bench([60], ["circinus"], parts=["search"], chunks=4, isolate=False)
    assert report.records == () and report.parts == ("search",)
    (s,) = report.search
    assert s.same_as_serial and s.queries == 60 and 1 <= s.chunks <= 4
    assert len(s.chunk_seconds) == len(s.chunk_queries) == s.chunks
    assert sum(s.chunk_queries) == 60 and s.candidates > 0
    assert s.speedup_1 == pytest.approx(s.serial_seconds / s.one_worker_seconds)
    assert s.speedup_2 == pytest.approx(s.serial_seconds / s.two_workers_seconds)
    projected = dict(s.projected_makespan)
    assert projected[1] == pytest.approx(s.one_worker_seconds)  # all chunks + the overhead
    assert projected[32] >= max(s.chunk_seconds)
    assert list(projected.values()) == sorted(projected.values(), reverse=True)
    assert s.kernel_evaluations_chunked >= s.kernel_evaluations_serial > 0
    assert s.peak_rss_mb > 0


def test_cli_rejects_bad_search_part_options() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "scale", "--sizes", "30", "--part", "nope"])
    assert result.exit_code == 2 and "--part: unknown part 'nope'" in result.output
    result = runner.invoke(app, ["bench", "scale", "--sizes", "30", "--chunks", "0"])
    assert result.exit_code == 2 and "--chunks" in result.output
    result = runner.invoke(app, ["bench", "scale", "--sizes", "1000001"])
    assert result.exit_code == 2 and "2..1000000" in result.output


@pytest.mark.slow
def test_search_part_without_gathering_compares_digests() -> None:
    from circinus.bench.scale import generated_index
    from circinus.bench.scale_search import measure_search_scaling

    index = generated_index(60, 0)
    gathered = measure_search_scaling(index, chunks=4)
    digested = measure_search_scaling(index, chunks=4, gather=False)
    assert gathered.gathered and not digested.gathered
    assert digested.same_as_serial and digested.candidates == gathered.candidates
    assert digested.chunk_queries == gathered.chunk_queries
    assert digested.kernel_evaluations_chunked == gathered.kernel_evaluations_chunked
