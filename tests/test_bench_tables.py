"""The README's benchmark tables are the committed bench JSON, rendered by
scripts/bench_tables.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_tables_match_the_bench_json() -> None:
    spec = importlib.util.spec_from_file_location("bench_tables", ROOT / "scripts" /
                                                  "bench_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0
