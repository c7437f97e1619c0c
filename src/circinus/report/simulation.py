"""A readable summary of a simulation for the terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from circinus.simulate.results import QuerySimOut, SimulationResult


def _ms(x: float | None) -> str:
    return "∞" if x is None else f"{x:,.1f}"


def render_simulation(result: SimulationResult, console: Console, *, show: int = 20) -> None:
    """Print totals, up to ``show`` queries (those that missed their SLO first) and the busiest
    devices and links."""
    sharing = ("links not shared" if not result.share_links else f"{result.link_rounds} link "
               "rounds" + ("" if result.converged else " (not converged)"))
    head = Text.assemble(
        (f"{result.world}: ", "bold"),
        (f"{result.met}/{result.admitted} admitted queries met their SLO",
         "bold green" if result.met == result.admitted else "bold yellow"),
        f"  goodput {result.goodput:g} measured, {result.predicted_goodput:g} predicted",
        f"\n{result.duration_s:g} s simulated ({result.warmup_s:g} s warm-up), "
        f"{result.trace} arrivals, seed {result.seed}, "
        f"{result.completed:,}/{result.requests:,} measured requests completed, {sharing}, "
        f"{result.wall_seconds:.2f} s",
    )
    console.print(Panel(head, title="circinus simulate", expand=False))
    if result.queries:
        console.print(_queries(result.queries, show))
    devs = Table(title="Devices and pools (busy units over the allocated ones)")
    for col in ("device", "allocated / units", "busy", "util"):
        devs.add_column(col)
    used = [d for d in result.devices if d.allocated_units > 0]
    for d in sorted(used, key=lambda d: -(d.utilization or 0.0))[:show]:
        devs.add_row(d.name, f"{d.allocated_units:g} / {d.capacity_units:g}",
                     f"{d.busy_units:,.2f}", f"{d.utilization or 0.0:.0%}")
    if len(used) > show:
        devs.caption = f"... and {len(used) - show} more (use --show or --json)"
    console.print(devs)
    busy_links = [ln for ln in result.links if ln.transfers]
    if busy_links:
        links = Table(title="Links")
        for col in ("link", "traffic Mbit/s", "capacity", "util", "ms alone", "ms shared"):
            links.add_column(col)
        for ln in sorted(busy_links, key=lambda ln: -ln.traffic_mbps)[:show]:
            links.add_row(f"{ln.src} → {ln.dst}", f"{ln.traffic_mbps:,.2f}",
                          "∞" if ln.capacity_mbps is None else f"{ln.capacity_mbps:g}",
                          "-" if ln.utilization is None else f"{ln.utilization:.0%}",
                          _ms(ln.mean_alone_ms), _ms(ln.mean_transfer_ms))
        console.print(links)


def _queries(queries: list[QuerySimOut], show: int) -> Table:
    missed = [q for q in queries if not q.slo_met]
    t = Table(title=f"Admitted queries ({len(queries) - len(missed)} met, {len(missed)} missed): "
              "measured latency at the SLO percentile and predicted (pred.), ms")
    t.add_column("query", overflow="fold")
    for col in ("requests", "p50", "at SLO", "pred.", "SLO", "util", ""):
        t.add_column(col, no_wrap=True)
    ordered = missed + [q for q in queries if q.slo_met]
    for q in ordered[:show]:
        lost = q.requests - q.completed
        bound = "-" if q.slo_latency_ms is None else f"≤{q.slo_latency_ms:,.0f}"
        t.add_row(q.name, f"{q.requests:,}" + (f" ({lost:,} lost)" if lost else ""),
                  _ms(q.latency.p50_ms), _ms(q.latency.at_slo_ms), _ms(q.predicted_latency_ms),
                  f"p{q.percentile:g} {bound}", f"{q.max_utilization:.0%}",
                  Text("met", style="green") if q.slo_met else Text("missed", style="bold red"))
    if len(queries) > show:
        t.caption = f"... and {len(queries) - show} more (use --show or --json)"
    return t
