"""`circinus bench search` on a tiny world: every record has the documented fields."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from circinus.bench.search import run_search_bench
from circinus.cli.main import app
from circinus.spec import load_indexed_world

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "tiny.yaml"


def test_records_ratios_and_gap() -> None:
    _, index = load_indexed_world(TINY)
    report = run_search_bench([("tiny", index)], ["circinus", "oracle", "random", "infaas"],
                              seed=3, single_query_sample=2)
    by_method = {r.method: r for r in report.records}
    assert set(by_method) == {"circinus", "oracle", "random", "infaas"}
    for r in report.records:
        assert r.goodput is not None and r.plan_seconds is not None and r.evaluations is not None
        assert r.gap_vs_oracle is not None and r.gap_vs_oracle >= -1e-9
    assert by_method["oracle"].gap_vs_oracle == 0.0
    assert {x.baseline for x in report.ratios} == {"oracle", "random", "infaas"}
    (single,) = report.single_query
    assert single.sampled == 2 and single.median_plan_space > 0
    json.dumps(report.to_json())  # serialisable


def test_method_over_its_query_cap_is_skipped() -> None:
    from circinus.bench.methods import Method
    from circinus.bench.search import run_method

    _, index = load_indexed_world(TINY)
    rec = run_method("tiny", index, Method("x", "circinus", "milp", max_queries=1), seed=0)
    assert rec.skipped and rec.goodput is None


def test_cli_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "search", "--world", str(TINY), "--gen", "0",
                                      "--method", "circinus", "--method", "oracle",
                                      "--single-query-sample", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "circinus bench search" in result.output
    data = json.loads(out.read_text())
    fields = {"goodput", "cost_per_hour", "plan_seconds", "evaluations", "gap_vs_oracle"}
    for record in data["records"]:
        assert fields <= set(record)
    assert data["ratios"][0]["baseline"] == "oracle"


def test_cli_rejects_unknown_method() -> None:
    result = CliRunner().invoke(app, ["bench", "search", "--world", str(TINY), "--gen", "0",
                                      "--method", "nope"])
    assert result.exit_code == 2
    assert "--method" in result.output


def test_tables_fit_80_columns_without_cutting_a_name() -> None:
    import io

    from rich.console import Console

    from circinus.cli.bench import _render

    _, index = load_indexed_world(TINY)
    methods = ["circinus", "oracle", "vulcan+select", "jellybean+select", "nexus"]
    report = run_search_bench([("edge-cloud-vision-x", index)], methods, seed=0,
                              single_query_sample=1)
    out = io.StringIO()
    _render(report, Console(file=out, width=80))
    text = out.getvalue()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    assert "…" not in text
    for method in methods:
        assert f" {method} " in text


def test_no_examples_and_no_generated_world_is_an_error() -> None:
    result = CliRunner().invoke(app, ["bench", "search", "--no-examples", "--gen", "0"])
    assert result.exit_code == 2
    assert "--no-examples: with --gen 0 and no --world there is no world" in result.output
