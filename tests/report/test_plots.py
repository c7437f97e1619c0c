"""The report's figures on the tiny world, their data, and `circinus report` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from circinus.cli.main import app
from circinus.estimate.queueing import quantile
from circinus.plan.file import PlanFile, to_plan_file
from circinus.planner import Planner
from circinus.report import gather, plots
from circinus.report.data import ReportData
from circinus.report.sweep import load_sweep, scaled
from circinus.simulate import (
    SimulationRun,
    SimulationSettings,
    compile_plan,
    make_arrivals,
    simulate,
    simulate_run,
)
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex
from tinyworld import make_tiny_world

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "tiny.yaml"
PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


@pytest.fixture(scope="module")
def planned() -> tuple[WorldIndex, PlanFile, SimulationRun]:
    world = make_tiny_world()
    world["devices"][0]["units"] = 2  # the shop's box holds one camera's plan: one uses the link
    index = build_index(parse_world(world))
    planfile = to_plan_file(index, Planner().plan(index))
    run = simulate_run(compile_plan(index, planfile), arrivals=make_arrivals("poisson"),
                       settings=SimulationSettings(duration_s=30, seed=1))
    return index, planfile, run


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 5_000 and path.read_bytes()[:8] == PNG


def test_frontiers_png(planned: tuple[WorldIndex, PlanFile, SimulationRun],
                       tmp_path: Path) -> None:
    index, planfile, _ = planned
    panels = gather.frontier_panels(index, planfile, count=4)
    assert len(panels) == 2  # tiny's two cameras differ in rate and SLO: two groups
    for panel in panels:
        assert len(panel.candidates) >= 1 and len(panel.chosen) == 1
        assert panel.admitted == panel.members == 1
        # Every candidate meets the SLO bound; the frontier reaches at least as low.
        assert panel.slo_latency_ms is not None
        assert np.all(panel.candidates[:, 1] <= panel.slo_latency_ms + 1e-9)
        front = plots.pareto_front(panel.space)
        assert front[:, 1].min() <= panel.candidates[:, 1].min() + 1e-9
    out = plots.plot_frontiers(panels, tmp_path / "f.png")
    assert _is_png(out) and not (tmp_path / "f.png.tmp").exists()


def test_pareto_front() -> None:
    points = np.array([[1.0, 50.0], [2.0, 40.0], [2.0, 60.0], [3.0, 45.0], [0.5, 80.0]])
    assert plots.pareto_front(points).tolist() == [[0.5, 80.0], [1.0, 50.0], [2.0, 40.0]]
    assert plots.pareto_front(np.empty((0, 2))).shape == (0, 2)


def test_latency_png_and_prediction_matches_the_planner(
        planned: tuple[WorldIndex, PlanFile, SimulationRun], tmp_path: Path) -> None:
    index, planfile, run = planned
    panels = gather.latency_panels(index, planfile, run, count=4)
    assert {p.query for p in panels} == {"cam-1", "cam-2"}
    predicted = {q.name: q.predicted for q in planfile.queries}
    for panel in panels:
        pred = predicted[panel.query]
        assert pred is not None and pred.latency_ms is not None
        # The moments reproduce the planner's percentile exactly (the same estimate).
        mean, var, third = panel.moments
        assert quantile(mean, var, panel.percentile / 100, third) == pytest.approx(
            pred.latency_ms, rel=1e-9)
        assert plots.predicted_quantile(panel.moments, panel.percentile / 100) == pytest.approx(
            pred.latency_ms, rel=1e-9)
        assert len(panel.simulated_ms) > 100
    assert _is_png(plots.plot_latency_cdfs(panels, tmp_path / "l.png"))


def test_predicted_cdf_of_an_exponential() -> None:
    x = np.array([0.0, 10.0, 30.0])
    for third in (math.nan, 2000.0):  # the gamma of two moments, or with the exponential's
        assert plots.predicted_cdf((10.0, 100.0, third), x) == pytest.approx(
            1 - np.exp(-x / 10))
        assert plots.predicted_quantile((10.0, 100.0, third), 0.99) == pytest.approx(
            10 * math.log(100), rel=1e-6)
    assert plots.predicted_cdf((10.0, 0.0, 0.0), x) == pytest.approx([0.0, 1.0, 1.0])
    # 5 plus an exponential of mean 5: the shifted gamma starts at 5.
    assert plots.predicted_cdf((10.0, 25.0, 250.0), x) == pytest.approx(
        [0.0, 1 - math.exp(-1), 1 - math.exp(-5)])


def test_simulate_run_keeps_the_latencies_behind_the_result(
        planned: tuple[WorldIndex, PlanFile, SimulationRun]) -> None:
    index, planfile, run = planned
    again = simulate(compile_plan(index, planfile), arrivals=make_arrivals("poisson"),
                     settings=SimulationSettings(duration_s=30, seed=1))
    assert again.model_dump(exclude={"wall_seconds"}) == run.result.model_dump(
        exclude={"wall_seconds"})
    for q, lat in zip(run.result.queries, run.latencies_ms, strict=True):
        assert len(lat) == q.requests
        assert plots.empirical_quantile(lat, 0.5) == pytest.approx(q.latency.p50_ms)


def test_utilisation_png(planned: tuple[WorldIndex, PlanFile, SimulationRun],
                         tmp_path: Path) -> None:
    index, planfile, run = planned
    devices = gather.device_use(index, planfile, run.result)
    assert [d.name for d in devices] == ["shop-box", "t4-pool"]
    for d in devices:
        assert d.allocated_units <= d.capacity_units
        assert d.predicted_busy_units is not None and d.simulated_busy_units is not None
        assert d.predicted_busy_units <= d.allocated_units + 1e-9
        if d.predicted_busy_units > 0.1:  # loaded enough to measure within 15 %
            assert d.simulated_busy_units == pytest.approx(d.predicted_busy_units, rel=0.15)
    links = gather.link_use(planfile, run.result)
    assert [ln.name for ln in links] == ["shop → region"]
    assert _is_png(plots.plot_utilisation(devices, links, tmp_path / "u.png"))
    assert _is_png(plots.plot_utilisation(devices, [], tmp_path / "u2.png"))


def test_goodput_png_and_sweep(tmp_path: Path) -> None:
    world = parse_world(make_tiny_world())
    assert [q.rate_rps for q in scaled(world, 2).queries] == [10, 40]
    sweep = load_sweep(world, methods=["circinus", "infaas"], loads=[0.5, 2])
    assert [(p.method, p.load) for p in sweep.points] == [
        ("circinus", 0.5), ("circinus", 2), ("infaas", 0.5), ("infaas", 2)]
    assert all(p.total_weight == 3 and p.queries == 2 for p in sweep.points)
    assert all(0 <= p.goodput <= 3 for p in sweep.points)
    assert _is_png(plots.plot_goodput_vs_load(sweep.points, tmp_path / "g.png"))


def test_empty_inputs_still_draw(tmp_path: Path) -> None:
    assert _is_png(plots.plot_frontiers([], tmp_path / "a.png"))
    assert _is_png(plots.plot_latency_cdfs([], tmp_path / "b.png"))
    assert _is_png(plots.plot_goodput_vs_load([], tmp_path / "c.png"))
    assert _is_png(plots.plot_utilisation([], [], tmp_path / "d.png"))


def test_report_cli_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    result = runner.invoke(app, ["report", str(TINY), "--out", str(out), "--duration", "20",
                                 "--methods", "circinus,cloud-only", "--loads", "1,2",
                                 "--jobs", "1"])
    assert result.exit_code == 0, result.output
    for name in ("frontiers.png", "goodput-vs-load.png", "latency-cdf.png", "utilisation.png"):
        assert _is_png(out / name), name
        assert name in (out / "index.md").read_text()
    assert (out / "plan.json").is_file() and (out / "simulation.json").is_file()
    assert str(out / "index.md") in result.stdout
    data = ReportData.model_validate_json((out / "report.json").read_text())
    plan = PlanFile.model_validate_json((out / "plan.json").read_text())
    sim = json.loads((out / "simulation.json").read_text())
    assert (data.plan.source, data.plan.admitted, data.plan.cost_per_hour) == (
        "planned", plan.admitted, plan.total_cost_per_hour)
    assert sum(data.plan.rejected.values()) == plan.total_queries - plan.admitted
    assert (data.simulation.met, data.simulation.requests) == (sim["met"], sim["requests"])
    assert [row.query for row in data.simulation.queries] == [q["name"] for q in sim["queries"]]
    assert [row.simulated_ms for row in data.simulation.queries] == [
        q["latency"]["at_slo_ms"] for q in sim["queries"]]
    assert any(row.panel for row in data.simulation.queries)
    assert [(p.method, p.load) for p in data.sweep] == [
        ("circinus", 1), ("circinus", 2), ("cloud-only", 1), ("cloud-only", 2)]
    assert data.timing.sweep_planning_s["circinus"] == pytest.approx(
        sum(p.seconds for p in data.sweep if p.method == "circinus"))
    assert set(data.timing.steps_s) == {"plan", "simulate", "figures", "sweep"}
    assert [d.name for d in data.devices] == [d.name for d in plan.resources.devices]


@pytest.mark.slow
def test_report_cli_with_a_plan_file(tmp_path: Path,
                                     planned: tuple[WorldIndex, PlanFile, SimulationRun]) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(planned[1].model_dump_json())
    out = tmp_path / "rep"
    result = runner.invoke(app, ["report", str(TINY), "--plan", str(plan), "--out", str(out),
                                 "--duration", "10", "--methods", "infaas", "--loads", "0.5,1",
                                 "--jobs", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == ""  # -q prints nothing
    assert not (out / "plan.json").exists()  # the given plan is used as is
    assert all(_is_png(out / name) for name in ("frontiers.png", "utilisation.png"))
    assert "the plan file" in (out / "index.md").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--methods", "circinus,magic"], "--methods: unknown method 'magic'"),
    (["--loads", "1,fast"], "--loads: expected numbers"),
    (["--loads", "0"], "--loads: a load factor must be > 0"),
    (["--loads", " , "], "--loads: give at least one value"),
    (["--duration", "0"], "--duration: must be > 0"),
    (["--panels", "0"], "--panels: must be >= 1"),
])
def test_report_bad_options(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(TINY), "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_report_bad_plan_and_world(tmp_path: Path) -> None:
    bad: dict[str, Any] = {"format": "circinus-plan/1", "world": "tiny"}
    plan = tmp_path / "plan.json"
    plan.write_text(str(bad).replace("'", '"'))
    result = runner.invoke(app, ["report", str(TINY), "--plan", str(plan), "--out",
                                 str(tmp_path / "r")])
    assert result.exit_code == 2 and "plan.json" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["report", str(tmp_path / "none.yaml")])
    assert result.exit_code != 0 and "none.yaml" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_plan_space_sample_keeps_the_frontier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gather, "SPACE_POINTS", 10)
    rng = np.random.default_rng(0)
    points = rng.uniform(1, 100, size=(500, 2))
    sample = gather._sample(points, np.random.default_rng(1))
    assert len(sample) <= 10 + len(plots.pareto_front(points))
    assert plots.pareto_front(sample).tolist() == plots.pareto_front(points).tolist()
