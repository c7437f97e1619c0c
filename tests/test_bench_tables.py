"""The tables of README.md, docs/serving.md, docs/capacity.md and docs/report.md are the
committed bench, serve, capacity and report JSON, rendered by scripts/bench_tables.py,
scripts/serve_tables.py, scripts/capacity_tables.py and scripts/report_tables.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["bench_tables", "serve_tables", "capacity_tables",
                                    "report_tables"])
def test_tables_match_their_json(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # their shared marked_tables module
    spec = importlib.util.spec_from_file_location(script, ROOT / "scripts" / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0
