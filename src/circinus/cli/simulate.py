"""``circinus simulate WORLD PLAN``: serve a plan file's plans in simulation and measure them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from circinus.cli.common import check_output, guard, write_atomic
from circinus.errors import SpecError

if TYPE_CHECKING:
    from circinus.simulate import SimulationResult


def simulate(
    world: Annotated[Path, typer.Argument(help="World file the plan was made for.")],
    plan: Annotated[Path, typer.Argument(help="Plan file written by `circinus plan --json`.")],
    duration: Annotated[float, typer.Option(help="Simulated time, s.")] = 60.0,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    trace: Annotated[str, typer.Option(
        help="Arrivals: poisson (at each query's rate) or azure (the Azure LLM inference "
        "trace's inter-arrival times, scaled to each query's rate).")] = "poisson",
    link_sharing: Annotated[bool, typer.Option(
        "--link-sharing/--no-link-sharing",
        help="Share each link's capacity among concurrent transfers (processor sharing), or "
        "read it as a budget only (every transfer at its full bandwidth).")] = True,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the result (JSON) here.")
    ] = None,
    show: Annotated[int, typer.Option(
        min=0, help="Queries, deployments and devices listed per table.")] = 20,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Serve the admitted plans of PLAN on WORLD's devices and links, and measure latency,
    SLO attainment and goodput (the first 10 % of the simulated time is warm-up)."""

    def run() -> None:
        from circinus.report.simulation import render_simulation
        from circinus.simulate import ARRIVALS, SimulationSettings, load_simulation, make_arrivals
        from circinus.simulate import simulate as serve

        if not 0 < duration <= 86_400:
            raise SpecError(f"--duration: must be > 0 and <= 86400 s, got {duration:g}")
        if seed < 0:
            raise SpecError(f"--seed: must be >= 0, got {seed}")
        if trace not in ARRIVALS:
            raise SpecError(f"--trace: unknown arrival process {trace!r}; choose from "
                            f"{', '.join(ARRIVALS)}")
        if json_out is not None:
            check_output(json_out, "--json", inputs=[world, plan])
        sim = load_simulation(world, plan)
        result = serve(sim, arrivals=make_arrivals(trace),
                       settings=SimulationSettings(duration_s=duration, seed=seed,
                                                   share_links=link_sharing))
        if json_out is not None:
            write_atomic(json_out, result.model_dump_json(indent=2))
        if not quiet:
            console = Console()
            render_simulation(result, console, show=show)
            if result.deployments:
                console.print(deployments_table(result, show))
            if json_out is not None:
                console.print(f"result written to {json_out}")

    guard(run)


def deployments_table(result: SimulationResult, show: int) -> Table:
    """The busiest ``show`` deployments: each with its queries and replicas x batch, the
    requests it served, its measured (and predicted) utilisation, and the mean waits of its
    requests for a batch to fill and in the queue of batches. Narrow: one text column, four
    short numeric ones."""
    t = Table(title="Deployments, busiest first: utilisation measured (predicted), mean "
              "waits for the batch to fill and in the queue, ms")
    t.add_column("deployment", overflow="fold", min_width=10)
    for col in ("served", "util", "fill", "queue"):
        t.add_column(col, no_wrap=True, justify="right")
    ordered = sorted(result.deployments, key=lambda d: (-d.utilization, d.name))
    for d in ordered[:show]:
        shown = Text(d.name)
        shown.append(f"\n{d.queries:,} {'query' if d.queries == 1 else 'queries'}, "
                     f"{d.replicas}×{d.batch}", style="dim")
        t.add_row(shown, f"{d.requests:,}",
                  f"{d.utilization:.0%} ({d.predicted_utilization:.0%})",
                  _ms(d.mean_fill_ms), _ms(d.mean_queue_ms))
    if len(ordered) > show:
        t.caption = f"... and {len(ordered) - show} more (use --show or --json)"
    return t


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"
