"""Write the service's OpenAPI document to docs/openapi.json (tests/service/test_app.py checks
that the committed document is the app's)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from circinus.service import DecisionStore, PlannerService, create_app
from circinus.spec.load import load_indexed_world

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    _, index = load_indexed_world(ROOT / "examples" / "tiny.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        service = PlannerService(index, DecisionStore(f"sqlite:///{tmp}/s.db"))
        document = create_app(service, "x" * 32, open_on_start=False).openapi()
        service.close()
    out = ROOT / "docs" / "openapi.json"
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
