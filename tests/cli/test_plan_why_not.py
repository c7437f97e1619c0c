"""`circinus plan` reports the nearest admissible SLO of rejected queries in the plan file (valid
against `circinus schema plan`) and on the console, on dedicated replicas and on shared
deployments; `--no-why-not` leaves it out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from typer.testing import CliRunner

from circinus.cli.main import app, json_schema
from circinus.plan.file import PlanFile

runner = CliRunner()


def _crowded(tiny: dict[str, Any]) -> dict[str, Any]:
    """The tiny world with a small cloud pool and a third, demanding camera that is rejected
    (each camera on replicas of its own: the figures are for dedicated ones)."""
    tiny["devices"][1]["units"] = 3
    tiny["planner"]["sharing"] = "dedicated"
    tiny["queries"].append({"name": "cam-3", "pipeline": "vision", "sources": {"camera": "shop"},
                            "rate_rps": 20, "slo": {"latency_ms": 60, "min_accuracy": 0.85,
                                                    "max_cost_per_hour": 2}})
    return tiny


def _crowded_shared(tiny: dict[str, Any]) -> dict[str, Any]:
    """The tiny world on shared deployments, with a smaller box and pool and a third camera at
    40 req/s for which the pool, a unit left, has no room (its plans need more there, in the
    whole replicas they would add)."""
    tiny["devices"][0]["units"] = 3
    tiny["devices"][1]["units"] = 2
    tiny["planner"]["sharing"] = "shared"
    tiny["queries"].append({"name": "cam-3", "pipeline": "vision", "sources": {"camera": "shop"},
                            "rate_rps": 40, "slo": {"latency_ms": 150, "min_accuracy": 0.85,
                                                    "max_cost_per_hour": 2}})
    return tiny


def _run(world: dict[str, Any], tmp_path: Path, *flags: str) -> tuple[str, dict[str, Any]]:
    src, out = tmp_path / "world.yaml", tmp_path / "plan.json"
    src.write_text(yaml.safe_dump(world))
    result = runner.invoke(app, ["plan", str(src), "--json", str(out), *flags],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    jsonschema.validate(data, json_schema("plan"))
    PlanFile.model_validate(data)
    return result.output, data


def test_plan_file_and_console_show_the_nearest_slo(tiny_world: dict[str, Any],
                                                    tmp_path: Path) -> None:
    output, data = _run(_crowded(tiny_world), tmp_path)
    (cam3,) = [q for q in data["queries"] if not q["admitted"]]
    why = cam3["why_not"]
    assert why["binding"] == "capacity"
    assert why["resource"] == {"kind": "device", "name": "t4-pool"}
    assert cam3["reason"].startswith("capacity: device t4-pool")
    nearest = {r["objective"]: r for r in why["nearest_slo"]}
    assert set(nearest) == {"latency_ms", "min_accuracy", "max_cost_per_hour"}
    assert nearest["latency_ms"]["current"] == 60
    assert nearest["latency_ms"]["nearest"] > 60
    assert nearest["min_accuracy"]["nearest"] < 0.85
    assert nearest["max_cost_per_hour"]["nearest"] is None  # cost is not what binds
    assert why["admissible"] is True
    assert data["why_not_seconds"] >= 0
    assert all(q["why_not"] is None for q in data["queries"] if q["admitted"])
    assert "nearest admissible SLO" in output
    assert f"latency ≤ {nearest['latency_ms']['nearest']:g} ms" in output


def test_shared_deployments_name_whole_replicas(tiny_world: dict[str, Any],
                                                tmp_path: Path) -> None:
    output, data = _run(_crowded_shared(tiny_world), tmp_path)
    assert any(d["sharing"] == "shared" for d in data["deployments"])
    (cam3,) = [q for q in data["queries"] if not q["admitted"]]
    why = cam3["why_not"]
    assert why["binding"] == "capacity"
    assert why["resource"] == {"kind": "device", "name": "t4-pool"}
    assert cam3["reason"].startswith("capacity: device t4-pool has 1 of 2 units left")
    assert cam3["reason"].endswith("in the whole replicas of the shared deployments they join")
    nearest = {r["objective"]: r for r in why["nearest_slo"]}
    assert set(nearest) == {"latency_ms", "min_accuracy", "max_cost_per_hour"}
    assert nearest["latency_ms"]["nearest"] > 150
    assert nearest["min_accuracy"]["nearest"] < 0.85
    assert nearest["max_cost_per_hour"]["nearest"] is None
    assert why["admissible"] is True
    assert "nearest admissible SLO" in output
    assert f"latency ≤ {nearest['latency_ms']['nearest']:g} ms" in output
    assert f"accuracy ≥ {nearest['min_accuracy']['nearest']:g}" in output


def test_no_why_not_leaves_the_nearest_slo_out(tiny_world: dict[str, Any],
                                               tmp_path: Path) -> None:
    output, data = _run(_crowded(tiny_world), tmp_path, "--no-why-not")
    (cam3,) = [q for q in data["queries"] if not q["admitted"]]
    assert cam3["why_not"]["binding"] == "capacity"
    assert cam3["why_not"]["nearest_slo"] is None and cam3["why_not"]["admissible"] is None
    assert "nearest admissible SLO" not in output


def test_a_plan_file_without_why_not_still_loads(tiny_world: dict[str, Any],
                                                  tmp_path: Path) -> None:
    _, data = _run(_crowded(tiny_world), tmp_path)
    for q in data["queries"]:
        del q["why_not"]
    del data["why_not_seconds"]
    jsonschema.validate(data, json_schema("plan"))
    PlanFile.model_validate(data)
