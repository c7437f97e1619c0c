"""The serving tables of README.md and docs/serving.md are the committed serve JSON, rendered by
scripts/serve_tables.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_serving_tables_match_the_serve_json() -> None:
    spec = importlib.util.spec_from_file_location("serve_tables", ROOT / "scripts" /
                                                  "serve_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0
