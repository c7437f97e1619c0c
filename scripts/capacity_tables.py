"""Write the capacity tables of README.md and docs/capacity.md from the committed capacity JSON,
or check they match it.

Each table sits between ``<!-- capacity:NAME -->`` and ``<!-- /capacity:NAME -->`` and is
rendered from ``docs/capacity/<example>.json`` (written by ``scripts/capacity_examples.sh``:
``circinus capacity EXAMPLE --json ...``) by the function of that name below, so a figure in
the docs is always one a run wrote.

Usage: ``python scripts/capacity_tables.py`` rewrites both files; ``--check`` exits 1 (naming
the file) when one differs from what the JSON gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import marked_tables

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "docs" / "capacity"
FILES = {path: ("summary", "values")
         for path in (REPO / "README.md", REPO / "docs" / "capacity.md")}


RUNS = ("edge-cloud-vision", "edge-cloud-vision-catalog", "meeting-companion")
"""The answers of scripts/capacity_examples.sh, in the tables' order."""


def _runs() -> list[dict[str, Any]]:
    return [json.loads((DATA / f"{name}.json").read_text(encoding="utf-8")) for name in RUNS]


def summary(runs: list[dict[str, Any]]) -> str:
    """Per run: the asked goodput, today's, what to add, its cost and the goodput reached."""
    rows = [
        "| world | asked | goodput today | add | additions $/h | goodput | `circinus plan` "
        "on the grown world | plan $/h | solve |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        adds = ", ".join(f"+{n} {name}" for name, n in r["additions"].items()) or "nothing"
        today = r.get("goodput_today")
        replanned = r["replanned_goodput"]
        rows.append(
            f"| {r['world']} | {r['target_goodput']:.0%} | "
            f"{'–' if today is None else f'{today:.1%}'} | {adds} | "
            f"{r['cost_per_hour']:.3f} | {r['goodput']:.1%} | "
            f"{'–' if replanned is None else f'{replanned:.1%}'} | "
            f"{r['plan_cost_per_hour']:.2f} | {r['solve']['status']} |")
    return "\n".join(rows)


def values(runs: list[dict[str, Any]]) -> str:
    """Per run and device with a value: one more unit's goodput, today and with the additions."""
    rows = ["| world | device | one more unit admits today | with the additions |",
            "|---|---|---|---|"]
    for r in runs:
        for v in r["unit_values"]:
            if (v["before"] or 0) > 1e-9 or (v["after"] or 0) > 1e-9:
                rows.append(f"| {r['world']} | {v['name']} | {_value(v['before'])} | "
                            f"{_value(v['after'])} |")
    return "\n".join(rows)


def _value(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


TABLES: dict[str, Callable[[list[dict[str, Any]]], str]] = {"summary": summary,
                                                           "values": values}


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md and docs/capacity.md, or check them (``--check``)."""
    runs = _runs()
    return marked_tables.main(argv, doc=__doc__ or "", kind="capacity",
                              source="docs/capacity/*.json", files=FILES,
                              make=lambda name: TABLES[name](runs), root=REPO)


if __name__ == "__main__":
    raise SystemExit(main())
