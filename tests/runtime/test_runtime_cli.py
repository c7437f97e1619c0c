"""`circinus deploy` end to end, and the one-line errors of deploy, serve and calibrate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from circinus.cli.main import app
from circinus.plan.file import PlanFile
from circinus.runtime.build import build_config
from circinus.runtime.config import read_serve_config
from circinus.runtime.probe import calls_by_query
from circinus.simulate import read_plan_file
from circinus.spec.index import WorldIndex

runner = CliRunner()
Planned = tuple[Path, WorldIndex, PlanFile]


def _plan_file(tmp_path: Path, plan: PlanFile) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json())
    return path


def test_deploy_writes_the_config(digits_plan: Planned, tmp_path: Path) -> None:
    world, index, plan = digits_plan
    out = tmp_path / "serve.yaml"
    result = runner.invoke(app, ["deploy", str(world), str(_plan_file(tmp_path, plan)),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 application(s), 4 deployments" in result.output
    doc = yaml.safe_load(out.read_text())
    assert read_serve_config(doc, origin="serve.yaml") == build_config(index, plan)


def test_deploy_refuses_a_plan_over_capacity(digits_plan: Planned, tmp_path: Path) -> None:
    world, _, plan = digits_plan
    data = json.loads(plan.model_dump_json())
    data["deployments"][0]["replicas"] = 9
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = runner.invoke(app, ["deploy", str(world), str(bad), "--out",
                                 str(tmp_path / "s.yaml")])
    assert result.exit_code == 2
    assert "device 'box', which has 2" in result.output  # the plan file's own check
    assert "Traceback" not in result.output
    assert not (tmp_path / "s.yaml").exists()


def test_deploy_refuses_a_plan_of_another_world(digits_plan: Planned, tmp_path: Path) -> None:
    world, _, plan = digits_plan
    other = plan.model_copy(update={"world": "elsewhere"})
    result = runner.invoke(app, ["deploy", str(world), str(_plan_file(tmp_path, other)),
                                 "--out", str(tmp_path / "s.yaml")])
    assert result.exit_code == 2
    assert "the plan is for world 'elsewhere'" in result.output


def test_deploy_needs_an_existing_folder(digits_plan: Planned, tmp_path: Path) -> None:
    world, _, plan = digits_plan
    result = runner.invoke(app, ["deploy", str(world), str(_plan_file(tmp_path, plan)),
                                 "--out", str(tmp_path / "no" / "s.yaml")])
    assert result.exit_code == 2
    assert "--out: folder" in result.output


@pytest.mark.parametrize("command", ["serve", "calibrate"])
def test_serving_without_ray_names_the_extra(digits_plan: Planned, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             command: str) -> None:
    world, _, plan = digits_plan
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.serve", None)
    result = runner.invoke(app, [command, str(world), str(_plan_file(tmp_path, plan))])
    assert result.exit_code == 6
    assert "pip install 'circinus[ray]'" in result.output
    assert "Traceback" not in result.output


def test_serve_checks_its_options_before_starting_anything(digits_plan: Planned,
                                                           tmp_path: Path) -> None:
    pytest.importorskip("ray.serve")
    world, _, plan = digits_plan
    planned = str(_plan_file(tmp_path, plan))
    result = runner.invoke(app, ["serve", str(world), planned, "--duration", "0"])
    assert result.exit_code == 2 and "--duration: must be > 0" in result.output
    result = runner.invoke(app, ["serve", str(world), planned, "--warmup", "200"])
    assert result.exit_code == 2 and "--warmup: must be >= 0 and < --duration" in result.output
    result = runner.invoke(app, ["serve", str(world), planned, "--trace", "bursty"])
    assert result.exit_code == 2 and "--trace: unknown arrival process" in result.output
    for runs in ("0", "21"):
        result = runner.invoke(app, ["serve", str(world), planned, "--runs", runs])
        assert result.exit_code == 2 and "--runs: must be from 1 to 20" in result.output


SERVING = Path(__file__).resolve().parents[2] / "docs" / "serving"


def test_calibrate_from_a_served_run_gives_the_committed_figures(tmp_path: Path) -> None:
    # docs/serving: the world as the probe left it, the plan made with it and what serving
    # that plan measured; calibrated from that run, re-planned and served again (the refit
    # run); the served calibration committed came from both runs, each of its own plan.
    name = "digits-edge-cloud-serve"
    world = tmp_path / "world.yaml"
    world.write_text((SERVING / f"{name}-probe.yaml").read_text())
    plan, run = SERVING / f"{name}-plan-probe.json", SERVING / f"{name}-probe.json"
    committed = yaml.safe_load((SERVING / f"{name}-served.yaml").read_text())["runtime"]
    refit = json.loads((SERVING / f"{name}-refit.json").read_text())["runtime"]
    once = runner.invoke(app, ["calibrate", str(world), str(plan), "--from", str(run)])
    assert once.exit_code == 0, once.output
    fitted = yaml.safe_load(once.output)["runtime"]
    # what the refit run was served with
    assert (fitted["hop_mean_ms"], fitted["hop_sd_ms"]) == (refit["hop_mean_ms"],
                                                             refit["hop_sd_ms"])
    # two runs pooled: the same run twice has the same weighted median, twice the samples
    twice = runner.invoke(app, ["calibrate", str(world), str(plan), "--from", str(run),
                                "--from", str(run)])
    assert twice.exit_code == 0, twice.output
    pooled = yaml.safe_load(twice.output)["runtime"]
    assert pooled["hop_mean_ms"] == fitted["hop_mean_ms"]
    assert pooled["samples"] == 2 * fitted["samples"]
    # every stage of that plan runs on the edge boxes: the edge figure is the world-wide one,
    # the cloud keeps the world-wide one
    edge = fitted["tiers"]["edge"]
    assert (edge["hop_mean_ms"], edge["hop_sd_ms"]) == (fitted["hop_mean_ms"],
                                                        fitted["hop_sd_ms"])
    assert "cloud" not in fitted["tiers"]
    assert "# cloud: no run calls a replica there" in once.output
    # written, then both served runs together: the committed served figures
    assert runner.invoke(app, ["calibrate", str(world), str(plan), "--from", str(run),
                               "--write"]).exit_code == 0
    both = runner.invoke(app, [
        "calibrate", str(world), str(SERVING / f"{name}-plan-refit.json"),
        "--from", str(SERVING / f"{name}-refit.json"), "--from", f"{run}={plan}"])
    assert both.exit_code == 0, both.output
    served = yaml.safe_load(both.output)["runtime"]
    assert (served["hop_mean_ms"], served["hop_sd_ms"], served["samples"]) == (
        committed["hop_mean_ms"], committed["hop_sd_ms"], committed["samples"])


def test_calibrate_tells_the_tiers_apart_only_from_runs_that_call_them_otherwise(
        tmp_path: Path) -> None:
    # the OCR probe plan's queries of one site call two edge stages and one cloud stage each:
    # served alone they give one world-wide figure and no figure per tier; with the queries
    # that call the tiers otherwise, one per tier (the refit run was served with those); with
    # the refit run of the re-planned plan, the committed served calibration
    name = "ocr-branches-serve"
    world = tmp_path / "world.yaml"
    world.write_text((SERVING / f"{name}-probe.yaml").read_text())
    plan, run = SERVING / f"{name}-plan-probe.json", SERVING / f"{name}-probe.json"
    calls = calls_by_query(read_plan_file(plan))
    mixed = [q for q, c in calls.items() if len(c) == 2]
    alike = [q for q in mixed if calls[q] == calls[mixed[0]]]
    assert alike and len(alike) < len(calls)  # what this test is about
    data = json.loads(run.read_text())
    data["queries"] = [q for q in data["queries"] if q["name"] in alike]
    (part := tmp_path / "part.json").write_text(json.dumps(data))
    out = runner.invoke(app, ["calibrate", str(world), str(plan), "--from", str(part)])
    assert out.exit_code == 0, out.output
    assert "tiers" not in yaml.safe_load(out.output)["runtime"]
    assert "call the tiers in the same proportions" in out.output
    refit = json.loads((SERVING / f"{name}-refit.json").read_text())["runtime"]
    out = runner.invoke(app, ["calibrate", str(world), str(plan), "--from", str(run),
                              "--write"])
    assert out.exit_code == 0, out.output
    fitted = yaml.safe_load(world.read_text())["runtime"]
    figures = ("hop_mean_ms", "hop_sd_ms")
    assert [fitted[k] for k in figures] == [refit[k] for k in figures]
    assert {t: [f[k] for k in figures] for t, f in fitted["tiers"].items()} == {
        t: [f[k] for k in figures] for t, f in refit["tiers"].items() if f is not None}
    assert set(fitted["tiers"]) == {"edge", "cloud"}
    both = runner.invoke(app, [
        "calibrate", str(world), str(SERVING / f"{name}-plan-refit.json"),
        "--from", str(SERVING / f"{name}-refit.json"), "--from", f"{run}={plan}"])
    assert both.exit_code == 0, both.output
    committed = yaml.safe_load((SERVING / f"{name}-served.yaml").read_text())["runtime"]
    assert yaml.safe_load(both.output)["runtime"]["tiers"] == committed["tiers"]


def test_calibrate_refuses_a_run_of_another_plan(tmp_path: Path) -> None:
    name = "digits-edge-cloud-serve"
    world = tmp_path / "world.yaml"
    world.write_text((SERVING / f"{name}-probe.yaml").read_text())
    # the probe run served plan-probe, whose predictions are not those of plan-served
    result = runner.invoke(app, ["calibrate", str(world),
                                 str(SERVING / f"{name}-plan-served.json"),
                                 "--from", str(SERVING / f"{name}-probe.json")])
    assert result.exit_code == 2, result.output
    assert "not the plan it served" in result.output and "=PLAN.json" in result.output
    # named with the plan it served, it is accepted
    result = runner.invoke(app, ["calibrate", str(world),
                                 str(SERVING / f"{name}-plan-served.json"), "--from",
                                 f"{SERVING / f'{name}-probe.json'}="
                                 f"{SERVING / f'{name}-plan-probe.json'}"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def test_calibrate_refuses_a_run_served_with_other_runtime_figures(tmp_path: Path) -> None:
    # a run file that records only the world-wide figure it was served with (as before
    # figures per tier) cannot be fitted on its own figures: against a world whose figures
    # are others it is refused
    name = "digits-edge-cloud-serve"
    world = tmp_path / "world.yaml"
    doc = yaml.safe_load((SERVING / f"{name}-served.yaml").read_text())  # re-calibrated
    doc["runtime"].pop("tiers")
    doc["runtime"]["hop_mean_ms"] = 9.5
    world.write_text(yaml.safe_dump(doc))
    old = json.loads((SERVING / f"{name}-probe.json").read_text())
    old.pop("runtime")
    run = tmp_path / "old-run.json"
    run.write_text(json.dumps(old))
    result = runner.invoke(app, ["calibrate", str(world), str(SERVING / f"{name}-plan-probe.json"),
                                 "--from", str(run)])
    assert result.exit_code == 2, result.output
    assert (f"served with a per-call overhead of {old['hop_overhead_ms']:.1f} ms but the world's "
            "runtime section says 9.5 ms") in result.output
    assert "Traceback" not in result.output
