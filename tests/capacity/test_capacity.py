"""Capacity planning against a brute force over capacities, and verified by planning the grown
world; the bad inputs of `circinus capacity` and its catalog."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from circinus.capacity import CapacityPlanner, growable, grown
from circinus.capacity.sweep import grid
from circinus.cli.main import app
from circinus.errors import InfeasibleError, SpecError
from circinus.planner import Planner
from circinus.spec.catalog import parse_catalog
from circinus.spec.load import parse_world
from circinus.spec.models import Device, World
from tinyworld import make_tiny_world

runner = CliRunner()
SIX = [5, 10, 15, 20, 25, 30]
"""Six cameras at the shop: four fit today."""


def cameras(rates: list[float], *, shop: float = 2, t4: float = 1, sharing: str = "shared",
            latency_ms: float = 300) -> World:
    """The tiny world with too little capacity for one camera per rate at the shop."""
    data: dict[str, Any] = make_tiny_world()
    data["devices"][0]["units"] = shop
    data["devices"][1]["units"] = t4
    data["planner"]["sharing"] = sharing
    data["planner"]["time_limit_s"] = 300  # the solvers finish long before, even on a busy machine
    data["queries"] = [
        {"name": f"cam-{i}", "pipeline": "vision", "sources": {"camera": "shop"},
         "rate_rps": r, "slo": {"latency_ms": latency_ms, "percentile": 95,
                                "min_accuracy": 0.8}} for i, r in enumerate(rates)]
    return parse_world(data)


def brute_force(world: World, share: float, most: dict[str, int]) -> float | None:
    """The least cost of whole units added (up to ``most`` per device; each brings the memory
    of one the device has) with which the ordinary planner admits ``share`` of the query
    weight; ``None`` if none does."""
    names = list(most)
    target = share * sum(q.weight for q in world.queries)
    price = {d.name: d.price_per_unit_hour for d in world.devices}
    best = None
    for added in itertools.product(*(range(most[n] + 1) for n in names)):
        cost = sum(price[n] * a for n, a in zip(names, added, strict=True))
        if best is not None and cost >= best - 1e-12:
            continue
        more = dict(zip(names, added, strict=True))
        devices = [_grow(d, more.get(d.name, 0)) for d in world.devices]
        if Planner().plan(world.model_copy(update={"devices": devices})).goodput >= (
                target - 1e-9):
            best = cost
    return best


def _grow(device: Device, units: int) -> Device:
    """``device`` with ``units`` more units, each bringing the memory of one it has."""
    memory = device.memory_gb and device.memory_gb * (device.units + units) / device.units
    return device.model_copy(update={"units": device.units + units, "memory_gb": memory})


def _check(world: World, share: float, most: dict[str, int]) -> None:
    result = CapacityPlanner().plan(world, share, growable(world, None, None))
    expected = brute_force(world, share, most)
    assert expected is not None
    assert result.reached
    assert result.cost_per_hour == pytest.approx(expected, abs=1e-9), result.additions
    # Re-planning the world with the suggested capacities reaches the goodput.
    units = {g.name: g.units + result.additions.get(g.name, 0) for g in result.growables}
    again = Planner().plan(grown(world, result.growables, units))
    assert again.goodput >= share * len(world.queries) - 1e-9
    assert result.plan.goodput >= share * len(world.queries) - 1e-9


def test_matches_brute_force_shared() -> None:
    _check(cameras(SIX), 1.0, {"shop-box": 6, "t4-pool": 2})


@pytest.mark.slow
@pytest.mark.parametrize(("rates", "sharing", "share"), [
    ([5, 10, 15, 20, 25, 30, 35, 40], "shared", 1.0),
    ([5, 10, 15, 20, 25, 30, 35, 40], "shared", 0.8),
    ([5, 10, 15, 20, 25, 30], "dedicated", 1.0),
    ([20, 20, 20, 20], "dedicated", 0.75),
])
def test_matches_brute_force(rates: list[float], sharing: str, share: float) -> None:
    _check(cameras(rates, sharing=sharing), share, {"shop-box": 14, "t4-pool": 2})


def test_nothing_to_add_when_it_fits() -> None:
    world = cameras([5], shop=4, t4=2)
    result = CapacityPlanner().plan(world, 1.0, growable(world, None, None))
    assert result.additions == {} and result.cost_per_hour == 0 and result.reached


def test_budget_too_small_says_what_it_reaches() -> None:
    world = cameras(SIX)
    with pytest.raises(InfeasibleError, match=r"--budget: .*most reachable is 0\.\d+"):
        CapacityPlanner(budget=0.0).plan(world, 1.0, growable(world, None, None))


def test_unreachable_goodput_says_the_best() -> None:
    world = cameras([5, 10, 15, 20])
    slo = world.queries[3].slo.model_copy(update={"min_accuracy": 0.99})  # above any plan's
    world = world.model_copy(update={"queries": [
        *world.queries[:3], world.queries[3].model_copy(update={"slo": slo})]})
    with pytest.raises(InfeasibleError, match=r"--goodput: 1 is out of reach.*0\.75"):
        CapacityPlanner().plan(world, 1.0, growable(world, None, None))


def test_only_the_named_resources_grow() -> None:
    world = cameras(SIX)
    result = CapacityPlanner().plan(world, 0.8, growable(world, ["t4-*"], None))
    assert set(result.additions) <= {"t4-pool"} and result.reached


def test_catalog_device_bought_when_cheaper() -> None:
    world = cameras(SIX)
    catalog = parse_catalog({"offerings": [
        {"name": "box", "hardware": "arm-cpu", "sites": ["sh*"], "price_per_unit_hour": 0.001,
         "memory_gb_per_unit": 2, "max_units": 8}]})
    gs = growable(world, ["t4-pool"], catalog)
    assert [g.name for g in gs] == ["t4-pool", "box@shop"]
    result = CapacityPlanner().plan(world, 1.0, gs)
    assert result.reached and set(result.additions) == {"box@shop"}
    assert any(d.name == "box@shop" for d in result.world.devices)


def test_unit_values_of_a_binding_device() -> None:
    world = cameras([5, 10, 15, 20, 25, 30], sharing="dedicated")
    plan = Planner().plan(world)
    values = dict(plan.selection.unit_values)
    assert values[("device", "shop-box")] > 0  # the full edge box is what keeps queries out
    from circinus.plan.file import to_plan_file
    from circinus.spec.validate import build_index

    devices = {d.name: d for d in to_plan_file(build_index(world), plan).resources.devices}
    assert devices["shop-box"].goodput_per_unit is not None
    assert devices["shop-box"].goodput_per_unit >= values[("device", "shop-box")] - 1e-12


@pytest.mark.parametrize(("patterns", "catalog", "message"), [
    (["gpu-*"], None, "--resources: 'gpu-*' matches no device"),
    (None, {"offerings": [{"name": "x", "hardware": "h100", "price_per_unit_hour": 1,
                           "max_units": 2}]}, "offerings[0].hardware: 'h100' is not a hardware"),
    (None, {"offerings": [{"name": "x", "hardware": "t4", "sites": ["moon"],
                           "price_per_unit_hour": 1, "max_units": 2}]},
     "offerings[0].sites: 'moon' matches no site"),
])
def test_bad_growables(patterns: list[str] | None, catalog: dict[str, Any] | None,
                       message: str) -> None:
    world = cameras([5])
    with pytest.raises(SpecError) as err:
        growable(world, patterns, None if catalog is None else parse_catalog(catalog))
    assert message in str(err.value)


@pytest.mark.parametrize(("data", "message"), [
    ({"offerings": [{"name": "x", "hardware": "t4", "price_per_unit_hour": 1,
                     "max_units": 0}]}, "offerings[0].max_units: must be >= 1 and <= 100000"),
    ({"offerings": [{"name": "x", "hardware": "t4", "price_per_unit_hour": -1,
                     "max_units": 1}]}, "offerings[0].price_per_unit_hour: must be >= 0"),
    ({"offerings": []}, "offerings"),
    ({"offerings": [{"name": "x", "hardware": "t4", "price_per_unit_hour": 1,
                     "max_units": 1, "colour": "red"}]}, "offerings[0].colour"),
    ([], "the top level must be a mapping"),
])
def test_bad_catalog(data: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_catalog(data)


def test_grid_holds_today_and_the_suggestion() -> None:
    assert grid(3, 100, 5) == [0, 2, 3, 4, 6]
    assert grid(0, 0, 6) == [0]
    assert grid(7, 8, 3)[0] == 0 and 7 in grid(7, 8, 3) and max(grid(7, 8, 3)) <= 8


def _write(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(world.model_dump(mode="json"), sort_keys=False))
    return path


def test_cli_answer_plot_and_grown_world(tmp_path: Path) -> None:
    src = _write(cameras(SIX), tmp_path)
    out, png, grown_world = tmp_path / "cap.json", tmp_path / "cap.png", tmp_path / "g.yaml"
    res = runner.invoke(app, ["capacity", str(src), "--goodput", "1", "--json", str(out),
                              "--plot", str(png), "--world-out", str(grown_world),
                              "--points", "3"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["goodput"] == 1.0 and data["reached"]
    assert data["cost_per_hour"] == pytest.approx(sum(
        a["cost_per_hour"] for a in data["added"]))
    assert data["additions"] == {a["name"]: a["units_added"] for a in data["added"]}
    assert data["plan"]["goodput"] == 6 and data["sweeps"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = runner.invoke(app, ["plan", str(grown_world), "--json", str(tmp_path / "p.json")])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "p.json").read_text())["admitted"] == 6


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--goodput", "1.5"], 2, "--goodput: must be a share of the query weight in (0, 1]"),
    (["--goodput", "1", "--resources", "nope*"], 2, "--resources: 'nope*' matches no device"),
    (["--goodput", "1", "--budget", "0"], 3, "--budget: goodput 1 is out of reach"),
    (["--goodput", "1", "--plot", "x.svg"], 2, "--plot: the figure is a PNG"),
    (["--goodput", "1", "--catalog", "missing.yaml"], 2, "missing.yaml: no such file"),
])
def test_cli_bad_input(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    src = _write(cameras(SIX), tmp_path)
    res = runner.invoke(app, ["capacity", str(src), *args])
    assert res.exit_code == code, res.output
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_bundled_catalog_fits_its_world() -> None:
    from circinus.spec.catalog import load_catalog
    from circinus.spec.load import load_world

    root = Path(__file__).resolve().parents[2] / "examples"
    world = load_world(root / "edge-cloud-vision.yaml")
    new = [g for g in growable(world, [], load_catalog(root / "edge-cloud-vision-catalog.yaml"))
           if g.new]
    assert len(new) == 6 and all(g.units == 0 for g in new)


def test_swept_devices_grow_first_and_can_grow() -> None:
    from circinus.capacity.marginal import UnitValue
    from circinus.capacity.model import Sizing
    from circinus.capacity.sweep import swept

    sizing = Sizing({"b": 2}, (), 1.0, 0.2, 1.0, "optimal", 0.2)
    values = [UnitValue("c", 0.5), UnitValue("d", 0.0), UnitValue("a", 0.9)]
    assert swept(sizing, values, ["a", "b", "c", "d"]) == ["b", "a", "c", "d"]
    assert swept(sizing, values, ["a", "b", "c", "d"], [0, 3, 1, 1]) == ["b", "c", "d"]
