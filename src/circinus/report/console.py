"""A readable summary of a plan for the terminal (rich)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from circinus.plan.file import PlanFile, QueryOut


def _ms(x: float | None) -> str:
    return "∞" if x is None or not math.isfinite(x) else f"{x:,.1f}"


def _stages(q: QueryOut) -> str:
    """``stage[config]@device×replicas`` per stage, ``*`` marking a shared deployment, and the
    sub-requests per request of a stage that branches or a fan-out make other than one
    (``cls[...]@gpu×1 (6.3/req)``)."""
    visits = {r.stage: r.visits for r in q.route}
    parts = []
    for op in q.operators:
        config = ",".join(str(v) for v in op.configuration.values()) or "-"
        mark = "*" if op.sharing == "shared" else ""
        where = "+".join(f"{p.device}×{p.replicas}{mark}" for p in op.placement)
        batch = f" b{op.allocation.batch}" if op.allocation.batch > 1 else ""
        seen = visits.get(op.stage, 1.0)
        per = "" if abs(seen - 1.0) < 1e-9 else f" ({seen:.3g}/req)"
        parts.append(f"{op.stage}[{config}]@{where}{batch}{per}")
    parts += [f"{j.stage}[join {'+'.join(j.inputs)}]" for j in q.joins]
    return " → ".join(parts)


def _deployment_line(plan: PlanFile) -> str:
    """E.g. ``deployments: 12 shared (31 replicas, 2.4 queries each), 3 dedicated``."""
    shared = [d for d in plan.deployments if d.sharing == "shared"]
    dedicated = len(plan.deployments) - len(shared)
    if not plan.deployments:
        return ""
    parts = []
    if shared:
        reps = sum(d.replicas for d in shared)
        per = sum(len(d.queries) for d in shared) / len(shared)
        parts.append(f"{len(shared)} shared ({reps:,} replicas, {per:.1f} queries each)")
    if dedicated:
        parts.append(f"{dedicated} dedicated")
    return "\ndeployments: " + ", ".join(parts)


def render_plan(plan: PlanFile, console: Console, *, show: int = 20) -> None:
    """Print totals, up to ``show`` admitted and rejected queries, and resource use."""
    head = Text.assemble(
        (f"{plan.world}: ", "bold"),
        (f"{plan.admitted}/{plan.total_queries} queries admitted", "bold green"),
        f"  goodput {plan.goodput:g} (bound {plan.solver.goodput_bound:g}, "
        f"gap {plan.solver.gap:.2%}, {plan.solver.status})",
        f"  {plan.goodput_rps:,.1f} req/s  ",
        (f"${plan.total_cost_per_hour:,.4f}/h", "bold"),
        f"\nsearch {plan.search_seconds:.2f} s ({plan.evaluations:,} plans estimated), "
        f"selection {plan.select_seconds:.2f} s",
        _deployment_line(plan),
        _link_line(plan),
    )
    console.print(Panel(head, title="circinus plan", expand=False))

    admitted = [q for q in plan.queries if q.admitted]
    if admitted:
        t = Table(title=f"Admitted queries ({len(admitted)})", show_lines=False)
        for col in ("query", "plan (stage[config]@device×replicas)", "p-lat ms", "SLO ms",
                    "accuracy", "$/h"):
            t.add_column(Text(col), overflow="fold")
        for q in admitted[:show]:
            p = q.predicted
            assert p is not None
            t.add_row(q.name, Text(_stages(q)), f"p{p.percentile:g} {_ms(p.latency_ms)}",
                      _ms(q.slo.latency_ms) if q.slo.latency_ms else "-",
                      "-" if p.accuracy is None else f"{p.accuracy:.4g}",
                      f"{p.cost_per_hour:.4f}")
        notes = []
        if any(op.sharing == "shared" for q in admitted for op in q.operators):
            notes.append("* a shared deployment: its replicas serve every query routed to it")
        if len(admitted) > show:
            notes.append(f"... and {len(admitted) - show} more (use --show or --json)")
        t.caption = "\n".join(notes) or None
        console.print(t)
        console.print(_deployments_table(plan, show))

    rejected = [q for q in plan.queries if not q.admitted]
    if rejected:
        t = Table(title=f"Rejected queries ({len(rejected)})")
        t.add_column("query")
        t.add_column("reason", overflow="fold")
        nearest = any(q.why_not is not None and q.why_not.nearest_slo is not None
                      for q in rejected)
        if nearest:
            t.add_column("nearest admissible SLO (one objective relaxed)", overflow="fold")
        for q in rejected[:show]:
            extra = [Text(_nearest(q))] if nearest else []
            t.add_row(q.name, Text(q.reason or ""), *extra)
        notes = []
        if len(rejected) > show:
            notes.append(f"... and {len(rejected) - show} more")
        if plan.why_not_skipped:
            notes.append(f"nearest SLO searched for {len(rejected) - plan.why_not_skipped:,} of "
                         f"{len(rejected):,} (planner.why_not_time_s spent; '-' for the others)")
        t.caption = "\n".join(notes) or None
        console.print(t)
    console.print(Group(*_resource_tables(plan, show)))


def _deployments_table(plan: PlanFile, show: int) -> Table:
    """The deployments, dearest first: what a serving engine runs."""
    t = Table(title=f"Deployments ({len(plan.deployments)})")
    for col in ("deployment", "config", "replicas × units", "batch", "queries", "req/s",
                "util", "$/h"):
        t.add_column(col, overflow="fold")
    ranked = sorted(plan.deployments, key=lambda d: (-d.cost_per_hour, d.name))
    for d in ranked[:show]:
        config = ",".join(str(v) for v in d.config.values()) or "-"
        t.add_row(d.name, config, f"{d.replicas} × {d.units_per_replica:g}",
                  f"{d.batch.max_batch_size}",
                  f"{len(d.queries)}" if d.sharing == "shared" else "1 (own)",
                  f"{d.rate_rps:,.1f}", f"{d.utilization:.0%}", f"{d.cost_per_hour:.4f}")
    if len(ranked) > show:
        t.caption = f"... and {len(ranked) - show} more (use --show or --json)"
    return t


def _link_line(plan: PlanFile) -> str:
    """What the link check did, e.g. ``link check: 2 repair(s), 36 candidate(s) dropped,
    pole-a → cloud-eu kept under 39%``."""
    check = plan.link_check
    if check is None or not (check.rounds or check.dropped_candidates or check.unadmitted):
        return ""
    parts = [f"{check.rounds} repair(s)", f"{check.dropped_candidates} candidate(s) dropped"]
    if check.unadmitted:
        parts.append(f"{check.unadmitted} admitted dropped")
    parts += [f"{c.src} → {c.dst} kept under {c.utilization:.0%}" for c in check.ceilings]
    return "\nlink check: " + ", ".join(parts)


_RELAXED = {"latency_ms": ("latency ≤ ", " ms"), "min_accuracy": ("accuracy ≥ ", ""),
            "max_cost_per_hour": ("cost ≤ $", "/h")}


def _nearest(q: QueryOut) -> str:
    """The nearest admissible bounds of a rejected query, e.g. ``latency ≤ 64.86 ms or
    accuracy ≥ 0.833``."""
    why = q.why_not
    if why is None or why.nearest_slo is None:
        return "-"
    if not why.nearest_slo:
        return "none: its SLO sets no objective to relax"
    parts = []
    for r in why.nearest_slo:
        if r.nearest is not None:
            before, after = _RELAXED[r.objective]
            same = " (as is)" if r.nearest == r.current else ""
            parts.append(f"{before}{r.nearest:.6g}{after}{same}")
    return " or ".join(parts) or "none: no single relaxation admits it at this load"


def _resource_tables(plan: PlanFile, show: int) -> list[Table]:
    """Devices and links; past ``show`` rows of either, the busiest ``show`` of them."""
    devs = Table(title="Devices and pools")
    valued = any(d.goodput_per_unit for d in plan.resources.devices)
    for col in ("device", "site", "tier", "used / units", "util") + (
            ("+1 unit ≈",) if valued else ()):
        devs.add_column(col)
    devices = _busiest(plan.resources.devices, lambda d: d.utilization, show)
    for d in devices:
        style = "bold red" if d.utilization > 0.999 else ("yellow" if d.utilization > 0.8 else "")
        value = () if not valued else (
            "-" if not d.goodput_per_unit else f"+{d.goodput_per_unit:.2f}",)
        devs.add_row(d.name, d.site, d.tier, f"{d.used_units:g} / {d.capacity_units:g}",
                     Text(f"{d.utilization:.0%}", style=style), *value)
    devs.caption = _more(len(plan.resources.devices), len(devices))
    if valued:
        note = ("+1 unit ≈: more weighted queries one more unit would admit (LP duals; "
                "circinus capacity)")
        devs.caption = note if devs.caption is None else f"{devs.caption}; {note}"
    links = Table(title="Links")
    for col in ("link", "traffic Mbit/s", "capacity", "util"):
        links.add_column(col)
    shown = _busiest(plan.resources.links, lambda ln: ln.utilization or 0.0, show)
    for ln in shown:
        links.add_row(f"{ln.src} → {ln.dst}", f"{ln.used_mbps:,.2f}",
                      "∞" if ln.capacity_mbps is None else f"{ln.capacity_mbps:g}",
                      "-" if ln.utilization is None else f"{ln.utilization:.0%}")
    links.caption = _more(len(plan.resources.links), len(shown))
    return [devs, links] if plan.resources.links else [devs]


_R = TypeVar("_R")


def _busiest(rows: Sequence[_R], utilization: Callable[[_R], float], show: int) -> list[_R]:
    """``rows`` as they are if there are at most ``show``, else the ``show`` busiest, busiest
    first."""
    if len(rows) <= show:
        return list(rows)
    return sorted(rows, key=lambda r: -utilization(r))[:show]


def _more(total: int, shown: int) -> str | None:
    return None if shown >= total else (
        f"the {shown} busiest of {total:,} (use --show or --json)")
