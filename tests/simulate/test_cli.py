"""`circinus simulate` end to end, and its one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from circinus.cli.main import app
from circinus.simulate import SimulationResult
from tinyworld import make_tiny_world

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
    planned = {d["name"]: d for d in tiny_plan["deployments"]}
    assert [d.name for d in sim.deployments] == list(planned)
    for d in sim.deployments:  # both queries on each of tiny's shared deployments
        assert d.sharing == "shared" and d.queries == 2 and d.requests > 0
        assert d.replicas == planned[d.name]["replicas"]
        assert d.utilization == pytest.approx(planned[d.name]["utilization"], rel=0.15)
        assert d.name in result.output
    assert "Deployments, busiest first" in result.output
    devices = {d.name: d for d in sim.devices}
    assert devices["shop-box"].allocated_units == sum(
        d["replicas"] * d["units_per_replica"] for d in tiny_plan["deployments"]
        if d["device"] == "shop-box")


def test_simulate_a_dedicated_plan(tmp_path: Path) -> None:
    # The planner's dedicated mode: every query on deployments of its own, one query each.
    world = make_tiny_world()
    world["planner"]["sharing"] = "dedicated"
    path, plan, out = tmp_path / "w.json", tmp_path / "plan.json", tmp_path / "sim.json"
    path.write_text(json.dumps(world))
    result = runner.invoke(app, ["plan", str(path), "--json", str(plan), "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["simulate", str(path), str(plan), "-q", "--json", str(out)])
    assert result.exit_code == 0, result.output
    sim = SimulationResult.model_validate_json(out.read_text())
    assert sim.admitted == 2 and sim.met == 2
    assert len(sim.deployments) == 4
    assert all(d.sharing == "dedicated" and d.queries == 1 for d in sim.deployments)


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
    deps = {d["name"]: d for d in data["deployments"]}
    route = data["queries"][0]["route"]
    if what == "world":
        data["world"] = "other-world"
    elif what == "device":
        data["deployments"][0]["device"] = "ghost-box"
    elif what == "profile":
        (name,) = [n for n in deps if n.startswith("classify@")]
        deps[name].update(device="shop-box", site="shop", tier="edge",
                          config={"resolution": 448})
    elif what == "deployment":
        route[0]["deployments"][0]["deployment"] = "ghost@shop-box"
    elif what == "shares":
        route[0]["deployments"][0]["share"] = 0.5
    elif what == "route":
        del route[1]
    elif what == "field":
        del data["queries"][1]["admitted"]
    elif what == "old":
        data["format"] = "circinus-plan/1"
    elif what == "format":
        data["format"] = "something/2"
    elif what == "json":
        return '{"format": "circinus-plan/2", '
    return data


@pytest.mark.parametrize(("what", "message"), [
    ("world", "world: the plan is for world 'other-world', not 'tiny'"),
    ("device", "deployments[0].device: unknown device 'ghost-box'"),
    ("profile", "operator 'classify' {'resolution': 448} has no profile on 'arm-cpu'"),
    ("deployment", "queries[0].route[0].deployments[0].deployment: unknown deployment "
                   "'ghost@shop-box'"),
    ("shares", "queries[0].route[0].deployments: shares sum to 0.5, not 1"),
    ("route", "queries[0].route: must route each stage of pipeline 'vision' once (det, cls); "
              "missing ['cls']"),
    ("field", "queries[1].admitted"),
    ("old", "format: 'circinus-plan/1' is a plan file of per-query replicas"),
    ("format", "format: expected a plan file ('circinus-plan/2')"),
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
    if what not in ("field", "format", "json"):
        assert "circinus plan WORLD --json PLAN" in lines[0]


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
    # Every admitted plan of edge-cloud-vision meets its SLO over an hour, with link
    # capacities read as budgets only (the planner's reading) and with the uplinks shared (the
    # planner's link check kept them loose enough), on shared deployments (docs/simulation.md).
    world = ROOT / "examples" / "edge-cloud-vision.yaml"
    plan, out = tmp_path / "plan.json", tmp_path / "sim.json"
    assert runner.invoke(app, ["plan", str(world), "--json", str(plan), "-q", "--time-limit",
                               "8"]).exit_code == 0
    for sharing in ("--no-link-sharing", "--link-sharing"):
        result = runner.invoke(app, ["simulate", str(world), str(plan), "--duration", "3600",
                                     sharing, "-q", "--json", str(out)])
        assert result.exit_code == 0, result.output
        sim = SimulationResult.model_validate_json(out.read_text())
        assert sim.goodput == sim.predicted_goodput and sim.converged
        assert any(d.queries > 1 for d in sim.deployments)
