"""Write the README's benchmark tables from the committed bench JSON, or check they match it.

Each table sits between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in README.md (the
service's also in docs/service.md) and is rendered from ``docs/bench/NAME-seed0.json`` by the
function of that name below, so a figure in the docs is always one a bench run wrote.

Usage: ``python scripts/bench_tables.py`` rewrites README.md; ``--check`` exits 1 (naming the
table) when README.md differs from what the JSON gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import marked_tables
from circinus.bench.scale import COMMAND_QUERIES

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


def _times(x: float | None) -> str:
    if x is None:
        return "–"
    return "∞" if x == float("inf") else f"{x:.2f}×"


COMPARED = ("circinus-dedicated", "oracle", "exhaustive", "vulcan", "vulcan+select", "jellybean",
            "jellybean+select", "infaas", "nexus", "edge-only", "cloud-only")
"""The methods of the search table's "vs" columns and of its summary, in this order."""


def search(data: dict[str, Any]) -> str:
    """Circinus against every other method, per world (``circinus bench search``): Circinus's
    goodput, cost and how its selection ended (``optimal``, ``rounded``, ``time_limit``,
    ``greedy``: its budget is wall time), the oracle's goodput where it differs, and
    Circinus's goodput over each method's."""
    by = {(r["world"], r["method"]): r for r in data["records"]}
    ratio = {(r["world"], r["baseline"]): r for r in data["ratios"]}
    worlds = list(dict.fromkeys(r["world"] for r in data["records"]))
    others = [m for m in COMPARED if any((w, m) in by for w in worlds)]
    head = ["world (queries)", "Circinus goodput", "$/h", "selection",
            *[f"vs {m}" for m in others], "Circinus plan s", "load"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in worlds:
        ours = by.get((w, "circinus"))
        if ours is None or ours["goodput"] is None:
            continue
        cells = [f"{w} ({ours['queries']:,})", f"{ours['goodput']:,g}",
                 f"{ours['cost_per_hour']:,.2f}", ours["status"] or "–"]
        for m in others:
            r, q = by.get((w, m)), ratio.get((w, m))
            if r is None or r["goodput"] is None or q is None:
                cells.append("–")
            elif r["goodput"] == 0:
                cells.append("∞ (0)")
            else:
                extra = f" ({r['goodput']:,g})" if m == "oracle" and q["goodput"] != 1 else ""
                cells.append(_times(q["goodput"]) + extra)
        load = ours.get("load_average")
        cells += [f"{ours['plan_seconds']:.2f}", "–" if load is None else f"{load:.1f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _span(values: list[float], spec: str = ".2f") -> str:
    """``lo–hi×`` of finite ratios (one figure when they agree), with ``∞`` for those where the
    other method scored zero."""
    finite = sorted(v for v in values if v != float("inf"))
    if not finite:
        return "∞×"
    lo, hi = format(finite[0], spec), format(finite[-1], spec)
    out = f"{lo}×" if lo == hi else f"{lo}–{hi}×"
    return out + (" (∞ where it scored 0)" if len(finite) < len(values) else "")


def search_summary(data: dict[str, Any]) -> str:
    """The search table in words (``circinus bench search``): Circinus against the oracle on
    every world it could enumerate, then per method the range over the worlds both ran of
    Circinus's goodput, cost per admitted query and planning time over the method's."""
    by = {(r["world"], r["method"]): r for r in data["records"]}
    worlds = list(dict.fromkeys(r["world"] for r in data["records"]))
    out: list[str] = []
    refused: list[str] = []
    for w in worlds:
        ours, oracle = by.get((w, "circinus")), by.get((w, "oracle"))
        if ours is None or oracle is None or ours["goodput"] is None:
            continue
        if oracle["goodput"] is None:
            refused.append(w)
            continue
        mine, best = f"{ours['cost_per_hour']:,.4f}", f"{oracle['cost_per_hour']:,.4f}"
        more = ("" if oracle["cost_per_hour"] <= 0 else
                f" ({ours['cost_per_hour'] / oracle['cost_per_hour'] - 1:+.2%})")
        cost = f"the same cost (${mine}/h)" if mine == best else (
            f"${mine}/h against ${best}/h{more}")
        out.append(f"* **vs oracle** on {w}: goodput {ours['goodput']:,g} against "
                   f"{oracle['goodput']:,g}, {cost}; planned in {ours['plan_seconds']:.2f} s "
                   f"against {oracle['plan_seconds']:.2f} s.")
    if refused:
        out.append("* Too large for the oracle (more plans per query or queries than it "
                   "takes): " + ", ".join(refused) + ".")
    for m in COMPARED:
        if m == "oracle":
            continue
        rows = [r for r in data["ratios"] if r["baseline"] == m and r["goodput"] is not None]
        if not rows:
            continue
        parts = [f"goodput {_span([r['goodput'] for r in rows])}"]
        per = [r["cost_per_query"] for r in rows if r["cost_per_query"] is not None]
        if per:
            parts.append(f"cost per admitted query {_span(per)}")
        times = [r["time"] for r in rows if r["time"] is not None]
        if times:
            parts.append(f"planning time {_span(times, '.3g')}")
        evals = [r["evaluations"] for r in rows if r["evaluations"] is not None]
        if evals:
            parts.append(f"plans estimated {_span(evals, '.3g')}")
        names = ", ".join(r["world"] for r in rows)
        out.append(f"* **vs {m}** ({names}): " + ", ".join(parts) + ".")
    if data["single_query"]:
        out.append("* **One query planned alone** (cold caches; median and slowest of the "
                   "sampled queries, median plan space): " + "; ".join(
                       f"{q['world']} {q['median_seconds']:.3f} s and {q['max_seconds']:.3f} s "
                       f"of {q['sampled']}, {q['median_plan_space']:,.0f} plans"
                       for q in data["single_query"]) + ".")
    return "\n".join(out)


def scale(data: dict[str, Any]) -> str:
    """Selectors at 1,000 to 50,000 generated queries (``circinus bench scale``)."""
    rows = [
        "| queries | method | admitted | predicted | simulated | $/h | search s | select s | "
        "plan s | replan s | status | gap | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["records"]:
        if r.get("skipped"):
            continue
        sim = r["simulated_goodput"]
        err = r["prediction_error"]
        simulated = "–" if sim is None else (
            f"{sim:,g}" + ("" if err is None else f" ({err:+.1%})"))
        rows.append(
            f"| {r['queries']:,} | {r['method']} | {r['admitted']:,} | "
            f"{r['predicted_goodput']:,g} | {simulated} | {r['cost_per_hour']:,.2f} | "
            f"{r['search_seconds']:.1f} | {r['selection_seconds']:.2f} | "
            f"{r['plan_seconds']:.1f} | {r['replan_seconds']:.3f} | {r['status']} | "
            f"{r['gap']:.2%} | {r['load_average']:.1f} |")
    return "\n".join(rows)


def scale_command(data: dict[str, Any]) -> str:
    """``circinus plan`` on ``circinus gen -n N`` end to end, as a user runs it (``circinus
    bench scale --part command``)."""
    # the bench checked the target itself (at 100,000 queries): its verdict, not a copy of it
    (target,) = (t for t in data["targets"] if t["name"].startswith("`circinus plan`"))
    verdict = "–" if target["met"] is None else "met" if target["met"] else "not met"
    rows = [
        f"| queries | wall s | CPU s | peak MB | admitted | gap | target ({target['goal']}) | "
        "load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["records"]:
        if r.get("command_seconds") is None:
            continue
        rows.append(
            f"| {r['queries']:,} | {r['command_seconds']:.1f} | {r['command_cpu_seconds']:.1f} | "
            f"{r['command_peak_mb']:,.0f} | {r['command_admitted']:,} | "
            f"{r['command_gap']:.2%} | {verdict if r['queries'] == COMMAND_QUERIES else '–'} | "
            f"{r['load_average']:.1f} |")
    return "\n".join(rows)


def scale_command_stages(data: dict[str, Any]) -> str:
    """Where ``circinus plan``'s wall time went (``circinus bench scale --part command``):
    search, selection and why-not as its plan file reports them, the rest (starting, reading,
    the plan file) the difference."""
    rows = ["| queries | search s | selection s | why-not s | rest s | wall s |",
            "|---|---|---|---|---|---|"]
    for r in data["records"]:
        stages = r.get("command_stages")
        if r.get("command_seconds") is None or not stages:
            continue
        rows.append(f"| {r['queries']:,} | {stages['search']:.1f} | {stages['selection']:.1f} | "
                    f"{stages['why-not']:.1f} | {stages['rest']:.1f} | "
                    f"{r['command_seconds']:.1f} |")
    return "\n".join(rows)


def scale_search(data: dict[str, Any]) -> str:
    """The search on worker processes per size (``circinus bench scale --part search``):
    measured serially and on 1 and 2 workers, PROJECTED beyond from the measured chunk
    times."""
    rows = [
        "| queries | groups | chunks (largest s) | serial s | 1 worker s (speed-up) | "
        "2 workers s (speed-up) | projected 2 / 8 / 32 workers s | same plan | peak MB "
        "(worker) | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["search"]:
        proj = {int(w): s for w, s in r["projected_makespan"]}
        rows.append(
            f"| {r['queries']:,} | {r['groups']:,} | {r['chunks']} "
            f"({max(r['chunk_seconds']):.2f}) | {r['serial_seconds']:.1f} | "
            f"{r['one_worker_seconds']:.1f} ({r['speedup_1']:.2f}×) | "
            f"{r['two_workers_seconds']:.1f} ({r['speedup_2']:.2f}×) | "
            f"{proj[2]:.1f} / {proj[8]:.1f} / {proj[32]:.1f} | "
            f"{_same(r)} | {r['peak_rss_mb']:,.0f} "
            f"({r['worker_peak_rss_mb']:,.0f}) | {r['load_average']:.1f} |")
    return "\n".join(rows)


def _same(r: dict[str, Any]) -> str:
    """Whether the workers found the serial candidates; how it was checked when they were
    not gathered (counts and digests only)."""
    same = "yes" if r["same_as_serial"] else "NO"
    return same if r.get("gathered", True) else f"{same} (digest, not gathered)"


def fidelity(data: dict[str, Any]) -> str:
    """Predicted against simulated latency per world (``circinus bench fidelity``)."""
    tol = data["tolerance"]
    rows = [
        f"| world | admitted | met SLO | predicted within ±{tol:.0%} | median error | "
        "worst error | rejected on latency that met it | simulated h | targets |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["records"]:
        rows.append(
            f"| {r['world']} | {r['admitted']}/{r['queries']} | {_pct(r['met_share'])} | "
            f"{_pct(r['within_share'])} | {_pct(r['median_error'], sign=True)} | "
            f"{_pct(r['worst_error'], sign=True)} | {r['would_have_met']}/{r['checked']} | "
            f"{r['simulated_seconds'] / 3600:.3g} | {'met' if r['targets_met'] else 'missed'} |")
    return "\n".join(rows)


def _restart(seconds: float | None) -> str:
    return "no kill" if seconds is None else f"{seconds:.1f}"


def service(data: dict[str, Any]) -> str:
    """The service under load, killed and restarted (``circinus bench service``), one row per
    world (``runs``)."""
    rows = [
        "| world | requests (acknowledged) | decisions/s | client p50 / p99 ms | decision p50 / "
        "p99 ms | server CPU ms / decision | server errors | lost acknowledged | restart after "
        "kill s | restart s (CPU s) | admitted start / end | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["runs"]:
        load = r["load"]
        rows.append(
            f"| {r['queries']:,} queries | {load['requests']:,} ({load['acknowledged']:,}) | "
            f"{load['throughput_per_s']:.1f} | {load['client_p50_ms']:,.0f} / "
            f"{load['client_p99_ms']:,.0f} | {load['decision_p50_ms']:,.1f} / "
            f"{load['decision_p99_ms']:,.1f} | {load.get('server_cpu_ms_per_decision', 0):.1f} | "
            f"{load['server_errors']} | "
            f"{len(r['durability_problems'])} | {_restart(r['restart_after_kill_seconds'])} | "
            f"{r['restart_seconds']:.1f} ({r['restart_cpu_seconds']:.1f}) | "
            f"{r['admitted_at_start']:,} / {r['admitted_after_load']:,} | "
            f"{r['load_average'][0]:.1f} |")
    return "\n".join(rows)


TABLES: dict[str, Callable[[dict[str, Any]], str]] = {
    "sharing": sharing, "search": search, "search-summary": search_summary, "scale": scale,
    "scale-search": scale_search, "scale-command": scale_command,
    "scale-command-stages": scale_command_stages, "fidelity": fidelity,
    "fidelity-before": fidelity, "service": service}
SOURCES = {"search-summary": "search", "scale-command-stages": "scale-command"}
"""Tables rendered from another table's JSON (``docs/bench/SOURCE-seed0.json``)."""
FILES: dict[Path, tuple[str, ...]] = {
    README: tuple(name for name in TABLES if name != "scale-command-stages"),
    REPO / "docs" / "service.md": ("service",),
    REPO / "docs" / "scale.md": ("scale-search", "scale-command", "scale-command-stages")}
"""The tables each file carries."""


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md and docs/service.md, or check them (``--check``)."""
    def make(name: str) -> str:
        source = SOURCES.get(name, name)
        data = json.loads((REPO / "docs" / "bench" / f"{source}-seed0.json").read_text())
        return TABLES[name](data)

    return marked_tables.main(argv, doc=__doc__ or "", kind="bench", source="docs/bench/*.json",
                              files=FILES, make=make, root=REPO)


if __name__ == "__main__":
    raise SystemExit(main())
