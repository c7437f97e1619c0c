"""`circinus simulate` end to end, and its one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from circinus.cli.main import app
from circinus.simulate import SimulationResult

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "tiny.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("plan") / "plan.json"
    result = runner.invoke(app, ["plan", str(TINY), "--json", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def _write(tmp_path: Path, data: Any, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_simulate_tiny_end_to_end(tiny_plan: dict[str, Any], tmp_path: Path) -> None:
    plan = _write(tmp_path, tiny_plan)
    out = tmp_path / "sim.json"
    result = runner.invoke(app, ["simulate", str(TINY), str(plan), "--json", str(out),
                                 "--duration", "120", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "circinus simulate" in result.output and "cam-2" in result.output
    sim = SimulationResult.model_validate_json(out.read_text())
    assert not (tmp_path / "sim.json.tmp").exists()
    assert sim.world == "tiny" and sim.admitted == 2 and sim.predicted_goodput == 3
    assert sim.goodput == 3 and sim.met == 2  # tiny's SLOs are loose: both are met
    assert sim.duration_s == 120 and sim.warmup_s == pytest.approx(12)
    for q in sim.queries:
        assert q.completed == q.requests > 0
        assert q.latency.p50_ms is not None and q.latency.at_slo_ms is not None
        assert q.predicted_latency_ms is not None
        assert q.latency.at_slo_ms == pytest.approx(q.predicted_latency_ms, rel=0.25)
    assert {d.name for d in sim.devices} == {"shop-box", "t4-pool"}


def test_simulate_azure_trace_quiet(tiny_plan: dict[str, Any], tmp_path: Path) -> None:
    plan = _write(tmp_path, tiny_plan)
    out = tmp_path / "sim.json"
    result = runner.invoke(app, ["simulate", str(TINY), str(plan), "--trace", "azure", "-q",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    sim = SimulationResult.model_validate_json(out.read_text())
    assert sim.trace == "azure" and sim.requests > 0


def _broken(plan: dict[str, Any], what: str) -> Any:
    data = json.loads(json.dumps(plan))
    if what == "world":
        data["world"] = "other-world"
    elif what == "device":
        data["queries"][0]["operators"][0]["placement"][0]["device"] = "ghost-box"
    elif what == "field":
        del data["queries"][1]["admitted"]
    elif what == "format":
        data["format"] = "something/2"
    elif what == "json":
        return '{"format": "circinus-plan/1", '
    return data


@pytest.mark.parametrize(("what", "message"), [
    ("world", "world: the plan is for world 'other-world', not 'tiny'"),
    ("device", "queries[0].operators[0].placement[0].device: unknown device 'ghost-box'"),
    ("field", "queries[1].admitted"),
    ("format", "format: expected a plan file"),
    ("json", "invalid JSON"),
])
def test_bad_plan_is_one_line(tiny_plan: dict[str, Any], tmp_path: Path, what: str,
                              message: str) -> None:
    plan = _write(tmp_path, _broken(tiny_plan, what))
    result = runner.invoke(app, ["simulate", str(TINY), str(plan)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0] and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--trace", "weibull"], "--trace: unknown arrival process 'weibull'"),
    (["--duration", "0"], "--duration: must be > 0"),
    (["--seed", "-1"], "--seed: must be >= 0"),
    (["--json", "/no/such/folder/x.json"], "--json: folder"),
])
def test_bad_options(tiny_plan: dict[str, Any], tmp_path: Path, args: list[str],
                     message: str) -> None:
    plan = _write(tmp_path, tiny_plan)
    result = runner.invoke(app, ["simulate", str(TINY), str(plan), *args])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output


def test_missing_files(tiny_plan: dict[str, Any], tmp_path: Path) -> None:
    missing_plan = runner.invoke(app, ["simulate", str(TINY), str(tmp_path / "nope.json")])
    assert missing_plan.exit_code == 2 and "no such file" in missing_plan.output
    plan = _write(tmp_path, tiny_plan)
    missing_world = runner.invoke(app, ["simulate", str(tmp_path / "w.yaml"), str(plan)])
    assert missing_world.exit_code == 2 and "no such file" in missing_world.output


@pytest.mark.slow
def test_agrees_with_the_planner_where_the_models_agree(tmp_path: Path) -> None:
    # With link capacities read as budgets only (the planner's reading), every admitted plan
    # of edge-cloud-vision meets its SLO over an hour; sharing the uplinks' capacity makes the
    # p99 alerts behind the thinnest uplinks miss (docs/simulation.md).
    world = ROOT / "examples" / "edge-cloud-vision.yaml"
    plan, out = tmp_path / "plan.json", tmp_path / "sim.json"
    assert runner.invoke(app, ["plan", str(world), "--json", str(plan), "-q"]).exit_code == 0
    for sharing, check in (("--no-link-sharing", lambda s: s.goodput == s.predicted_goodput),
                           ("--link-sharing", lambda s: s.goodput < s.predicted_goodput)):
        result = runner.invoke(app, ["simulate", str(world), str(plan), "--duration", "3600",
                                     sharing, "-q", "--json", str(out)])
        assert result.exit_code == 0, result.output
        assert check(SimulationResult.model_validate_json(out.read_text()))
