"""Write the serving tables of README.md and docs/serving.md from the committed serve JSON, or
check they match it.

Each table sits between ``<!-- serve:NAME -->`` and ``<!-- /serve:NAME -->`` and is rendered
from ``docs/serving/<world>-{before,probe,served}.json`` (written by ``scripts/serve_measure.sh``:
``circinus serve --json`` before calibration, after the probe's, after the served one) by the
function of that name below, so a figure in the docs is always one a serving run wrote.

Usage: ``python scripts/serve_tables.py`` rewrites both files; ``--check`` exits 1 (naming the
file) when one differs from what the JSON gives.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "docs" / "serving"
WORLDS = ("digits-edge-cloud-serve", "ocr-branches-serve")
FILES = (REPO / "README.md", REPO / "docs" / "serving.md")
PHASES = ("before", "probe", "served")
"""Uncalibrated; calibrated with the probe; calibrated again from the served plan."""


def _runs() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for world in WORLDS:
        for phase in PHASES:
            path = DATA / f"{world}-{phase}.json"
            out.append((world, phase, json.loads(path.read_text(encoding="utf-8"))))
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:,.1f}"


def _within(q: dict[str, Any]) -> bool | None:
    """Whether the measured accuracy's interval meets the profiler's."""
    a, p = q["accuracy"], q["profiled_accuracy"]
    if a is None or p is None:
        return None
    return bool(a["low"] <= p["high"] and p["low"] <= a["high"])


def summary(runs: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Per world, before and after calibration: SLO attainment, prediction error, accuracy,
    placement and the machine."""
    rows = [
        "| world | calibration | admitted | met SLO | requests within bound | median \\|error\\| "
        "| \\|error\\| min / max | accuracy in profiler CI | replicas on planned node | "
        "hop overhead ms | cpu busy | load | cluster GB | startup s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for world, phase, r in runs:
        qs = r["queries"]
        errors = [abs(q["latency_error"]) for q in qs if q["latency_error"] is not None]
        within = [q["within_slo"] for q in qs if q["within_slo"] is not None]
        agree = [_within(q) for q in qs]
        known = [a for a in agree if a is not None]
        pl = r["placement"]
        m = r["machine"]
        hop = r["hop_overhead_ms"]
        met = r["met"] / r["admitted"] if r["admitted"] else None
        low = min(errors) if errors else None
        high = max(errors) if errors else None
        placed = pl["replicas"] - len(pl["misplaced"])
        rows.append(
            f"| {world} | {phase} | {r['admitted']}/{r['total_queries']} | "
            f"{r['met']}/{r['admitted']} ({_pct(met)}) | "
            f"{_pct(statistics.mean(within) if within else None)} | "
            f"{_pct(statistics.median(errors) if errors else None)} | "
            f"{_pct(low)} / {_pct(high)} | "
            f"{sum(known)}/{len(known)} | {placed}/{pl['replicas']} | "
            f"{'–' if hop is None else f'{hop:.1f}'} | {m['cpu_busy']:.0%} of {m['cores']} | "
            f"{m['load_before']:.1f} → {m['load_after']:.1f} | {m['ray_memory_gb']:.1f} | "
            f"{r['startup_s']:.0f} |")
    return "\n".join(rows)


def queries(runs: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Per admitted query after each calibration: latency at the SLO percentile measured,
    predicted and simulated, accuracy measured and profiled, SLO met."""
    rows = [
        "| world | calibration | query | SLO ms | measured ms | predicted ms | simulated ms | "
        "error | within bound | accuracy measured | profiler CI | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for world, phase, r in runs:
        if phase == "before":
            continue
        for q in r["queries"]:
            a, p = q["accuracy"], q["profiled_accuracy"]
            acc = "–" if a is None else f"{a['value']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"
            prof = "–" if p is None else f"[{p['low']:.3f}, {p['high']:.3f}]"
            err = q["latency_error"]
            rows.append(
                f"| {world} | {phase} | {q['name']} | {_ms(q['slo_latency_ms'])} | "
                f"{_ms(q['latency']['at_slo_ms'])} | {_ms(q['predicted_latency_ms'])} | "
                f"{_ms(q['simulated_latency_ms'])} | "
                f"{'–' if err is None else f'{err:+.1%}'} | {_pct(q['within_slo'])} | {acc} | "
                f"{prof} | {'yes' if q['slo_met'] else 'no'} |")
    return "\n".join(rows)


TABLES: dict[str, Callable[[list[tuple[str, str, dict[str, Any]]]], str]] = {
    "summary": summary, "queries": queries}


def render(text: str, runs: list[tuple[str, str, dict[str, Any]]]) -> str:
    """``text`` with every serve table it has markers for rewritten from the JSON."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- serve:{name} -->\n)(?:.*?\n)?(<!-- /serve:{name} -->)",
                             re.DOTALL)
        if pattern.search(text):
            table = make(runs)
            text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md and docs/serving.md, or check them (``--check``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    runs = _runs()
    stale = []
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        new = render(text, runs)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"{', '.join(p.name for p in stale)}: a serving table differs from "
              "docs/serving/*.json; run `python scripts/serve_tables.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
