"""Write the README's benchmark tables from the committed bench JSON, or check they match it.

Each table sits between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in README.md and
is rendered from ``docs/bench/NAME-seed0.json`` by the function of that name below, so a figure
in the README is always one a bench run wrote.

Usage: ``python scripts/bench_tables.py`` rewrites README.md; ``--check`` exits 1 (naming the
table) when README.md differs from what the JSON gives.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _pct(x: float | None, sign: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.1%}" if sign else f"{x:.1%}"


def sharing(data: dict[str, Any]) -> str:
    """Shared deployments against dedicated replicas, per world (``circinus bench sharing``)."""
    rows = [
        "| world | mode | admitted | goodput | $/h | $/admitted | GPU busy / allocated | "
        "deployments | plan s | simulated s | simulated goodput | met SLO | predicted vs "
        "simulated | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["records"]:
        per = "–" if r["cost_per_admitted"] is None else f"{r['cost_per_admitted']:.4f}"
        rows.append(
            f"| {r['world']} | {r['mode']} | {r['admitted']:,}/{r['queries']:,} | "
            f"{r['goodput']:,g} | {r['cost_per_hour']:,.2f} | {per} | "
            f"{r['gpu_units_busy']:,.1f} / {r['gpu_units_allocated']:,.1f} | "
            f"{r['deployments']:,} | {r['plan_seconds']:.1f} | {r['simulated_seconds']:g} | "
            f"{r['simulated_goodput']:,g} | {_pct(r['met_share'])} | "
            f"{_pct(r['prediction_error'], sign=True)} | {r['load_average']:.1f} |")
    return "\n".join(rows)


TABLES: dict[str, Callable[[dict[str, Any]], str]] = {"sharing": sharing}


def _between(table: str) -> Callable[[re.Match[str]], str]:
    """A replacement keeping the markers around ``table``."""
    return lambda m: m.group(1) + table + m.group(2)


def render(text: str) -> str:
    """``text`` (README.md) with every table rewritten from its JSON."""
    for name, make in TABLES.items():
        data = json.loads((REPO / "docs" / "bench" / f"{name}-seed0.json").read_text())
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(\n<!-- /bench:{name} -->)",
                             re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"README.md: no <!-- bench:{name} --> ... <!-- /bench:{name} --> "
                             "markers; add them where the table goes")
        text = pattern.sub(_between(make(data)), text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md, or check it (``--check``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print("README.md: a benchmark table differs from docs/bench/*.json; run "
                  "`python scripts/bench_tables.py`", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
