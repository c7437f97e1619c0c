"""Write the tables of docs/report.md from the committed report.json, or check they match it.

Each table sits between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` and is rendered
from ``docs/report/report.json`` (written with the figures beside it by ``circinus report
examples/edge-cloud-vision.yaml --out docs/report``) by the function of that name below, so a
figure in the text is always one the run that drew the pictures wrote.

Usage: ``python scripts/report_tables.py`` rewrites docs/report.md; ``--check`` exits 1 when it
differs from what the JSON gives.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import marked_tables

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "docs" / "report" / "report.json"
FILES = {REPO / "docs" / "report.md": ("summary", "sweep", "latency", "use", "timing")}


def _data() -> dict[str, Any]:
    return json.loads(DATA.read_text(encoding="utf-8"))


def summary(d: dict[str, Any]) -> str:
    """The plan and its simulation in one row."""
    plan, sim = d["plan"], d["simulation"]
    rejected = ", ".join(f"{n} {kind}" for kind, n in sorted(plan["rejected"].items(),
                                                             key=lambda kv: -kv[1])) or "none"
    return "\n".join([
        "| world | admitted | $/h | deployments | rejected (reason) | simulated | met SLO "
        "| requests |",
        "|---|---|---|---|---|---|---|---|",
        f"| {d['world']} | {plan['admitted']} of {plan['total_queries']} | "
        f"{plan['cost_per_hour']:.2f} | {plan['deployments']} | {rejected} | "
        f"{sim['duration_s']:g} s, seed {sim['seed']} | {sim['met']} of {sim['admitted']} | "
        f"{sim['requests']:,} |",
    ])


def sweep(d: dict[str, Any]) -> str:
    """Per method, admitted queries and cost at each load factor, and its mean planning time."""
    points = d["sweep"]
    loads = sorted({p["load"] for p in points})
    methods = list(dict.fromkeys(p["method"] for p in points))
    at = {(p["method"], p["load"]): p for p in points}
    rows = ["| method | " + " | ".join(f"{x:g}×" for x in loads) + " | mean planning s |",
            "|---|" + "---|" * len(loads) + "---|"]
    for m in methods:
        cells = []
        for x in loads:
            p = at.get((m, x))
            cells.append("–" if p is None else f"{p['admitted']} (${p['cost_per_hour']:.2f}/h)")
        mine = [p["seconds"] for p in points if p["method"] == m]
        rows.append(f"| {m} | " + " | ".join(cells) + f" | {sum(mine) / len(mine):.1f} |")
    rows += [f"| {m} | skipped: {why} |" + " |" * len(loads) for m, why in d["skipped"].items()]
    return "\n".join(rows)


def _error(row: dict[str, Any]) -> float | None:
    pred, got = row["predicted_ms"], row["simulated_ms"]
    if pred is None or pred <= 0 or got is None:
        return None
    return (got - pred) / pred


def latency(d: dict[str, Any]) -> str:
    """Predicted against simulated latency at the SLO percentile: over every simulated query,
    then the queries drawn in latency-cdf.png."""
    rows = d["simulation"]["queries"]
    errors = [(e, r) for r in rows if (e := _error(r)) is not None]
    unbounded = sum(r["simulated_ms"] is None for r in rows)
    out = ["| queries compared | median \\|error\\| | within 10 % | simulated above predicted "
           "| largest miss | never completed |", "|---|---|---|---|---|---|"]
    if errors:
        mags = [abs(e) for e, _ in errors]
        worst, row = max(errors, key=lambda er: er[0])
        out.append(
            f"| {len(errors)} | {statistics.median(mags):.1%} | "
            f"{sum(m <= 0.10 for m in mags)} | {sum(e > 0 for e, _ in errors)} | "
            f"{row['query']} ({row['pipeline']}, p{row['percentile']:g}): "
            f"{row['predicted_ms']:.1f} ms predicted, {row['simulated_ms']:.1f} simulated "
            f"({worst:+.1%}) | {unbounded} |")
    out += ["", "| drawn query | pipeline | req/s | percentile | predicted ms | simulated ms | "
            "SLO ms | requests | met |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["panel"]:
            slo = "–" if r["slo_latency_ms"] is None else f"{r['slo_latency_ms']:g}"
            pred = "–" if r["predicted_ms"] is None else f"{r['predicted_ms']:.1f}"
            got = "never" if r["simulated_ms"] is None else f"{r['simulated_ms']:.1f}"
            out.append(f"| {r['query']} | {r['pipeline']} | {r['rate_rps']:g} | "
                       f"p{r['percentile']:g} | {pred} | {got} | {slo} | {r['requests']:,} | "
                       f"{'yes' if r['slo_met'] else 'no'} |")
    return "\n".join(out)


def _share(v: float | None, cap: float) -> str:
    return "–" if v is None or cap <= 0 else f"{v / cap:.0%}"


def use(d: dict[str, Any]) -> str:
    """Per device its units allocated, predicted busy and simulated busy; per link its traffic
    planned and simulated; as shares of the capacity."""
    out = ["| device | tier | units | allocated | predicted busy | simulated busy |",
           "|---|---|---|---|---|---|"]
    for dev in d["devices"]:
        cap = dev["capacity_units"]
        out.append(f"| {dev['name']} | {dev['tier']} | {cap:g} | "
                   f"{_share(dev['allocated_units'], cap)} | "
                   f"{_share(dev['predicted_busy_units'], cap)} | "
                   f"{_share(dev['simulated_busy_units'], cap)} |")
    if d["links"]:
        out += ["", "| link | Mbit/s | planned | simulated |", "|---|---|---|---|"]
        for ln in d["links"]:
            cap = ln["capacity_mbps"]
            out.append(f"| {ln['name']} | {cap:g} | {_share(ln['planned_mbps'], cap)} | "
                       f"{_share(ln['simulated_mbps'], cap)} |")
    return "\n".join(out)


def timing(d: dict[str, Any]) -> str:
    """The command's time per step and the sweep's planning time per method."""
    t = d["timing"]
    steps = ", ".join(f"{name} {s:.1f} s" if s < 10 else f"{name} {s:.0f} s"
                      for name, s in t["steps_s"].items())
    methods = ", ".join(f"{m} {s:.0f} s" for m, s in sorted(t["sweep_planning_s"].items(),
                                                            key=lambda kv: -kv[1]))
    start, end = t["load_average"]
    return "\n".join([
        "| total | steps | sweep planning, summed over its runs | sweep processes | CPUs | "
        "load average (start, end) |",
        "|---|---|---|---|---|---|",
        f"| {t['total_s'] / 60:.1f} min | {steps} | {methods} | {t['jobs']} | {t['cpus']} | "
        f"{start:.1f}, {end:.1f} |",
    ])


TABLES: dict[str, Callable[[dict[str, Any]], str]] = {
    "summary": summary, "sweep": sweep, "latency": latency, "use": use, "timing": timing}


def main(argv: list[str] | None = None) -> int:
    data = _data()
    return marked_tables.main(argv, doc=__doc__ or "", kind="report",
                              source=str(DATA.relative_to(REPO)), files=FILES,
                              make=lambda name: TABLES[name](data), root=REPO)


if __name__ == "__main__":
    raise SystemExit(main())
