"""`circinus plan` end to end on the bundled examples; the plan file matches its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from circinus.cli.main import app, json_schema

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _plan(example: str, tmp_path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(ROOT / "examples" / example), "--json", str(out),
                                 *args])
    assert result.exit_code == 0, result.output
    assert "queries admitted" in result.output
    data = json.loads(out.read_text())
    jsonschema.validate(data, json_schema("plan"))
    return data  # type: ignore[no-any-return]


def _check_consistent(data: dict) -> None:  # type: ignore[type-arg]
    admitted = [q for q in data["queries"] if q["admitted"]]
    assert data["admitted"] == len(admitted)
    assert data["goodput"] == pytest.approx(sum(q["weight"] for q in admitted))
    assert data["total_cost_per_hour"] == pytest.approx(
        sum(q["predicted"]["cost_per_hour"] for q in admitted))
    for q in data["queries"]:
        if q["admitted"]:
            slo, p = q["slo"], q["predicted"]
            assert q["operators"] and q["reason"] is None
            if slo["latency_ms"] is not None:
                assert p["latency_ms"] <= slo["latency_ms"] + 1e-6
            if slo["min_accuracy"] is not None:
                assert p["accuracy"] >= slo["min_accuracy"] - 1e-9
            if slo["max_cost_per_hour"] is not None:
                assert p["cost_per_hour"] <= slo["max_cost_per_hour"] + 1e-9
        else:
            assert q["reason"] and not q["operators"] and q["predicted"] is None
    for d in data["resources"]["devices"]:
        assert d["used_units"] <= d["capacity_units"] + 1e-9
    for link in data["resources"]["links"]:
        if link["capacity_mbps"] is not None:
            assert link["used_mbps"] <= link["capacity_mbps"] * (1 + 1e-9)


def test_plan_jellybean(tmp_path: Path) -> None:
    data = _plan("jellybean-vqa.yaml", tmp_path)
    _check_consistent(data)
    assert data["admitted"] == 1 and data["solver"]["status"] == "optimal"


@pytest.mark.slow
@pytest.mark.parametrize("example", ["edge-cloud-vision.yaml", "meeting-companion.yaml"])
def test_plan_examples(example: str, tmp_path: Path) -> None:
    # The plan file's consistency, whatever the selection found: 5 s of its 30 s budget.
    data = _plan(example, tmp_path, "--time-limit", "5")
    _check_consistent(data)
    assert 0 < data["admitted"] <= data["total_queries"]


def test_schema_commands_print_json() -> None:
    for which in ("world", "plan"):
        result = runner.invoke(app, ["schema", which])
        assert result.exit_code == 0
        assert json.loads(result.output)["type"] == "object"
    bad = runner.invoke(app, ["schema", "nope"])
    assert bad.exit_code == 2


def test_validate_summarises(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(ROOT / "examples" / "jellybean-vqa.yaml")])
    assert result.exit_code == 0
    assert "valid" in result.output and "9 devices" in result.output


@pytest.mark.parametrize(("search", "selector"), [("exhaustive", "milp"), ("vulcan", "fcfs"),
                                                  ("infaas", "fcfs")])
def test_plan_with_another_search(search: str, selector: str, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(ROOT / "examples" / "tiny.yaml"), "--search", search,
                                 "--selector", selector, "--json", str(out), "-q"])
    assert result.exit_code == 0, result.output
    _check_consistent(json.loads(out.read_text()))


def test_plan_rejects_unknown_search() -> None:
    result = runner.invoke(app, ["plan", str(ROOT / "examples" / "tiny.yaml"), "--search", "x"])
    assert result.exit_code == 2
    assert "--search" in result.output


def test_the_plan_file_is_the_model_s_pretty_json(tmp_path: Path) -> None:
    """What `--json` writes is the plan file model's ``model_dump_json(indent=2)`` and a
    newline, byte for byte (it is serialised straight to bytes)."""
    from circinus.plan.file import PlanFile, plan_file_json

    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(ROOT / "examples" / "jellybean-vqa.yaml"), "-q",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    written = out.read_bytes()
    model = PlanFile.model_validate_json(written)
    assert written == model.model_dump_json(indent=2).encode() + b"\n"
    assert plan_file_json(model) == written[:-1]


def test_a_plan_file_of_many_queries_is_compact(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Above PRETTY_UP_TO queries the same model is written without indentation."""
    from circinus.plan import file
    from circinus.plan.file import PlanFile

    out = tmp_path / "plan.json"
    world = str(ROOT / "examples" / "jellybean-vqa.yaml")
    assert runner.invoke(app, ["plan", world, "-q", "--json", str(out)]).exit_code == 0
    pretty = PlanFile.model_validate_json(out.read_bytes())
    monkeypatch.setattr(file, "PRETTY_UP_TO", len(pretty.queries) - 1)
    assert runner.invoke(app, ["plan", world, "-q", "--json", str(out)]).exit_code == 0
    written = out.read_bytes()
    assert written == PlanFile.model_validate_json(written).model_dump_json().encode() + b"\n"
    assert b"\n" not in written[:-1]


def test_a_compact_plan_file_in_pieces_is_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Written a few queries and deployments at a time, the bytes are the same."""
    from circinus.plan import file
    from circinus.planner import Planner
    from circinus.spec import build_index
    from circinus.spec.load import load_world

    world = load_world(ROOT / "examples" / "meeting-companion.yaml")
    index = build_index(world)
    plan = file.to_plan_file(index, Planner().plan(index))
    monkeypatch.setattr(file, "PRETTY_UP_TO", len(plan.queries) - 1)
    monkeypatch.setattr(file, "PIECE_ITEMS", 7)
    pieces = list(file.plan_file_pieces(plan))
    assert len(plan.queries) > 20 and len(plan.deployments) > 7 and len(pieces) > 6
    assert b"".join(pieces) == file.plan_file_json(plan)
    assert b"".join(pieces) == plan.model_dump_json().encode()


@pytest.mark.parametrize("example", ["fusion-join", "camera-objects", "tiny", "gen"])
def test_the_queries_in_pieces_are_what_their_list_serialiser_writes(
        example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Joins, sources with rates of their own, fan-outs, rejections with their why-not:
    the queries written field by field are the bytes of the plan file's own serialiser."""
    from circinus.gen import GenSpec, generate
    from circinus.plan import file
    from circinus.planner import Planner
    from circinus.spec import build_index, parse_world
    from circinus.spec.load import load_world

    world = (parse_world(generate(GenSpec(queries=400, edge_sites=4, seed=7)))
             if example == "gen" else load_world(ROOT / "examples" / f"{example}.yaml"))
    index = build_index(world)
    plan = file.to_plan_file(index, Planner(why_not=True).plan(index))
    if example == "gen":
        assert any(q.why_not is not None for q in plan.queries), "no rejection to write"
    monkeypatch.setattr(file, "PRETTY_UP_TO", 0)
    monkeypatch.setattr(file, "PIECE_ITEMS", 2)
    assert b"".join(file.plan_file_pieces(plan)) == plan.model_dump_json().encode()


def test_a_file_written_in_pieces_is_whole_or_not_there(tmp_path: Path) -> None:
    from collections.abc import Iterator

    from circinus.cli.common import write_atomic

    out = tmp_path / "out.bin"
    write_atomic(out, iter([b"a" * 100_000, b"b", b"c" * 3]))
    assert out.read_bytes() == b"a" * 100_000 + b"bccc\n"

    def failing() -> Iterator[bytes]:
        yield b"x" * 1000
        yield b"y"
        raise RuntimeError("while making a piece")

    with pytest.raises(RuntimeError):
        write_atomic(out, failing())
    assert out.read_bytes() == b"a" * 100_000 + b"bccc\n"  # the old file stays
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary file left
