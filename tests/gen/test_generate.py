"""`circinus gen`: deterministic, valid worlds of the asked size, rates from the Azure trace."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import circinus.gen.data as gen_data
from circinus import Planner
from circinus.cli.main import app
from circinus.errors import SpecError
from circinus.gen import GenSpec, QueryMix, generate, generate_parts, make_spec
from circinus.gen.data import read_azure_trace
from circinus.gen.rates import RATE_GRID, TraceRates, snap
from circinus.gen.world import CLASSES, RATE_RANGES, class_counts, default_cloud_gpus
from circinus.spec import build_index, load_world, parse_world

runner = CliRunner()


def _class_of(query: dict[str, Any]) -> str:
    return str(query["name"].rsplit("-", 1)[1])


def test_same_spec_gives_identical_world() -> None:
    spec = GenSpec(queries=300, seed=11)
    first, second = generate(spec), generate(GenSpec(queries=300, seed=11))
    assert first == second
    assert json.dumps(first) == json.dumps(second)  # same key order too


def test_different_seed_gives_different_world() -> None:
    a, b = generate(GenSpec(queries=300, seed=1)), generate(GenSpec(queries=300, seed=2))
    assert a["queries"] != b["queries"]
    assert a["operators"] == b["operators"]  # the real data does not depend on the seed


@pytest.mark.parametrize("n", [100, 1000])
def test_world_is_valid(n: int) -> None:
    world = parse_world(generate(GenSpec(queries=n)), origin=f"gen-{n}")
    index = build_index(world)
    assert len(world.queries) == n
    assert len({q.name for q in world.queries}) == n
    assert {p.name for p in world.pipelines} == {"vision-hd", "vision-sd", "vqa"}
    assert len(index.operators["classify"].configs) == 14


def test_counts_match_the_spec() -> None:
    spec = GenSpec(queries=250, edge_sites=7, edge_boxes=2, cloud_gpus=33,
                   mix=QueryMix(alert=0.1, monitor=0.2, analytics=0.3, vqa=0.4))
    world = generate(spec)
    edge = [s["name"] for s in world["sites"] if s["tier"] == "edge"]
    assert len(edge) == 7
    boxes = [d for d in world["devices"] if d["hardware"] == "i7-12700h"]
    assert sorted({d["site"] for d in boxes}) == sorted(edge) and len(boxes) == 14
    pool = [d for d in world["devices"] if d["hardware"] == "rtx4090"]
    assert [d["units"] for d in pool] == [33]
    classes = [_class_of(q) for q in world["queries"]]
    assert {c: classes.count(c) for c in CLASSES} == {
        "alert": 25, "monitor": 50, "analytics": 75, "vqa": 100}
    per_site = [sum(q["name"].split("-", 1)[1].startswith(s + "-") for q in world["queries"])
                for s in edge]
    assert max(per_site) - min(per_site) <= 1  # dealt round-robin


def test_capacity_grows_with_queries_by_default() -> None:
    small, large = generate(GenSpec(queries=100)), generate(GenSpec(queries=1000))

    def total(world: dict[str, Any], hw: str) -> float:
        return sum(d["units"] for d in world["devices"] if d["hardware"] == hw)

    assert len(large["sites"]) > len(small["sites"])
    assert 8 <= total(large, "i7-12700h") / total(small, "i7-12700h") <= 12
    # The pool is a whole number of GPUs, at least one: 100 queries get 1, 1,000 get 5.
    assert total(large, "rtx4090") == default_cloud_gpus(1000) == 5
    assert default_cloud_gpus(10_000) / default_cloud_gpus(1000) == 10


def test_class_counts_apportion_exactly() -> None:
    mix = QueryMix(alert=0.2, monitor=0.35, analytics=0.15, vqa=0.3)
    assert class_counts(mix, 10) == [("alert", 2), ("monitor", 4), ("analytics", 1), ("vqa", 3)]
    for n in (1, 7, 99, 1000):
        assert sum(c for _, c in class_counts(mix, n)) == n


def test_rates_come_from_the_trace_and_sit_on_the_grid() -> None:
    world = generate(GenSpec(queries=1000, seed=5))
    for q in world["queries"]:
        low, high = RATE_RANGES[CLASSES[_class_of(q)].pipeline]
        assert q["rate_rps"] in RATE_GRID and low <= q["rate_rps"] <= high
    assert len({q["rate_rps"] for q in world["queries"]}) >= 5


def test_trace_rescaling_follows_the_documented_example() -> None:
    trace = TraceRates.from_trace(read_azure_trace("conv"))
    # 10-s windows of the conversation trace: 1st and 99th percentile of their rates.
    assert trace.low == pytest.approx(2.15, abs=0.01)
    assert trace.high == pytest.approx(8.8, abs=0.01)
    assert trace.rescale(5.3, 1.0, 20.0) == pytest.approx(6.8, abs=0.05)
    assert trace.rescale(trace.low, 1.0, 20.0) == pytest.approx(1.0)
    assert trace.rescale(100.0, 1.0, 20.0) == pytest.approx(20.0)
    assert snap(6.8, 1.0, 20.0) == 8.0 and snap(6.0, 1.0, 20.0) == 5.0
    assert snap(19.0, 1.0, 5.0) == 5.0


def test_slo_tightness_scales_latency_bounds_only() -> None:
    base = generate(GenSpec(queries=200, seed=3))
    tight = generate(GenSpec(queries=200, seed=3, slo_tightness=0.5))
    for a, b in zip(base["queries"], tight["queries"], strict=True):
        assert b["slo"]["latency_ms"] == pytest.approx(a["slo"]["latency_ms"] * 0.5, abs=1e-3)
        assert {**b["slo"], "latency_ms": 0} == {**a["slo"], "latency_ms": 0}


def test_vqa_uses_jellybean_workers_as_the_two_classes() -> None:
    ops = {op["name"]: op for op in generate(GenSpec(queries=10))["operators"]}
    speech = {(p["config"]["model"], p["hardware"]): p["mean_ms"]
              for p in ops["SpeechRecognition"]["profiles"]}
    # execution_profile.csv: cpu-5 and gpu-1 rows of wav2vec2-base-960h.
    assert speech["wav2vec2-base-960h", "i7-12700h"] == pytest.approx(57.933, abs=1e-3)
    assert speech["wav2vec2-base-960h", "rtx4090"] == pytest.approx(14.733, abs=1e-3)


@pytest.mark.parametrize(("options", "message"), [
    ({"queries": 0}, "queries: must be >= 1, got 0"),
    ({"queries": 1_000_001}, "queries: must be <= 1000000, got 1000001"),
    ({"queries": 10, "slo_tightness": 0}, "slo_tightness: must be >= 0.05, got 0"),
    ({"queries": 10, "edge_sites": 0}, "edge_sites: must be >= 1, got 0"),
    ({"queries": 10, "mix": {"alert": 0.5, "monitor": 0.1, "analytics": 0.1, "vqa": 0.1}},
     "mix: fractions must sum to 1, got 0.8"),
    ({"queries": 10, "colour": "red"}, "colour: unknown key"),
])
def test_bad_spec_is_a_one_line_spec_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as info:
        make_spec(options)
    assert str(info.value).startswith(message)
    with pytest.raises(ValidationError):
        GenSpec.model_validate(options)


def test_missing_data_is_a_spec_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(gen_data, "__file__", str(tmp_path / "src" / "circinus" / "gen" / "x.py"))
    with pytest.raises(SpecError, match="real data folder not found"):
        generate(GenSpec(queries=5))


@pytest.mark.parametrize("name", ["world.yaml", "world.json"])
def test_cli_writes_a_valid_world(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    result = runner.invoke(app, ["gen", "--queries", "120", "--edge-sites", "3", "--seed", "4",
                                 "--mix", "monitor=0.5,vqa=0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{out}: 120 queries, 3 edge sites, 1 cloud GPUs, seed 4"]
    world = load_world(out)
    assert len(world.queries) == 120 and not (tmp_path / f"{name}.tmp").exists()
    spec = GenSpec(queries=120, edge_sites=3, seed=4,
                   mix=QueryMix(alert=0, monitor=0.5, analytics=0, vqa=0.5))
    assert world == parse_world(generate(spec))


@pytest.mark.parametrize(("args", "message"), [
    (["--queries", "0"], "--queries: must be >= 1, got 0"),
    (["--queries", "10", "--slo-tightness", "-1"], "--slo-tightness: must be >= 0.05, got -1"),
    (["--queries", "10", "--cloud-gpus", "0"], "--cloud-gpus: must be >= 1, got 0"),
    (["--queries", "10", "--mix", "alert=2"], "--mix alert: must be <= 1, got 2"),
    (["--queries", "10", "--mix", "alert=0.5"], "--mix: fractions must sum to 1, got 0.5"),
    (["--queries", "10", "--mix", "cats=1"], "--mix: expected class=fraction"),
    (["--queries", "10", "--mix", "vqa=lots"], "--mix: vqa: fraction must be a number"),
])
def test_cli_rejects_bad_options_with_exit_2(tmp_path: Path, args: list[str],
                                             message: str) -> None:
    out = tmp_path / "w.yaml"
    result = runner.invoke(app, ["gen", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.stderr
    assert not out.exists()


@pytest.mark.parametrize(("name", "message"), [
    ("w.txt", "--out: unknown suffix '.txt'"),
    ("missing/w.yaml", "--out: folder"),
])
def test_cli_rejects_a_bad_out_path(tmp_path: Path, name: str, message: str) -> None:
    result = runner.invoke(app, ["gen", "--queries", "5", "--out", str(tmp_path / name)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_default_world_has_contention_but_not_starvation() -> None:
    result = Planner().plan(parse_world(generate(GenSpec(queries=100))))
    assert 0.5 <= result.admitted / 100 <= 0.85
    assert all(math.isfinite(o.estimate.latency_ms) for o in result.outcomes if o.estimate)


def test_cli_writes_yaml_in_batches_as_one_dump_would(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from circinus.cli import main as cli_main

    monkeypatch.setattr(cli_main, "GEN_BATCH", 7)  # 30 queries: 5 batches, the last short
    out = tmp_path / "w.yaml"
    result = runner.invoke(app, ["gen", "-n", "30", "--seed", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = GenSpec(queries=30, seed=5)
    whole = cli_main._gen_header(spec) + yaml.dump(
        generate(spec), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
        default_flow_style=None, width=100, allow_unicode=False)
    assert out.read_text() == whole


def test_parts_are_the_world_in_pieces() -> None:
    spec = GenSpec(queries=25, seed=9)
    head, queries = generate_parts(spec)
    world = generate(spec)
    assert list(queries) == world["queries"]
    assert {k: v for k, v in world.items() if k != "queries"} == head
    assert list(world)[-2:] == ["queries", "planner"]
