"""``circinus capacity WORLD --goodput 0.95``: what to add to reach a goodput, at least cost."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from circinus.cli.common import check_output, guard, measured, write_atomic
from circinus.errors import InfeasibleError, SpecError

SWEEP_TIMES = 2.0
"""The figure's sweep may take this many times the --time-limit in all."""

if TYPE_CHECKING:
    from circinus.capacity.file import CapacityFile
    from circinus.capacity.sweep import Sweep


def capacity(
    world: Annotated[Path, typer.Argument(help="World file (.yaml, .yml or .json).")],
    goodput: Annotated[float, typer.Option(
        "--goodput", help="Share of the query weight to admit, in (0, 1], e.g. 0.95.")],
    resources: Annotated[str | None, typer.Option(
        help="Devices and pools that may grow: names or fnmatch patterns, comma-separated "
        "(e.g. gpu-pool,edge-*); default every device.")] = None,
    budget: Annotated[float | None, typer.Option(
        help="Most the additions may cost, $/h.")] = None,
    catalog: Annotated[Path | None, typer.Option(
        help="Catalog of new devices that may be bought (docs/capacity.md).")] = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the answer, with the plan, as JSON here.")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="Write the goodput and cost figure (PNG) here.")] = None,
    world_out: Annotated[Path | None, typer.Option(
        "--world-out", help="Write the world with the additions here (.yaml, .yml or .json), "
        "ready for `circinus plan`.")] = None,
    points: Annotated[int, typer.Option(
        min=2, max=20, help="Capacities per swept device in the figure and the JSON.")] = 6,
    time_limit: Annotated[float | None, typer.Option(
        "--time-limit", min=0.1, max=86_400,
        help="Budget of each joint selection, s (default: the world's selection budget).")
    ] = None,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify",
        help="Also plan the grown world from scratch, as `circinus plan` would.")] = True,
    store: Annotated[str | None, typer.Option(
        help="Profile store for worlds with executable operators (see `circinus profile`).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Find the cheapest units to add to WORLD's devices and pools (and new devices from
    --catalog) so that at least --goodput of the query weight is admitted, planned jointly
    with the queries; print what to add, its cost, the plan and the value of one more unit."""

    def run() -> None:
        from circinus.capacity import CapacityPlanner, growable
        from circinus.capacity.file import to_capacity_file
        from circinus.capacity.sweep import sweep, swept
        from circinus.spec.catalog import load_catalog
        from circinus.spec.load import load_indexed_world

        if not 0 < goodput <= 1:
            raise SpecError(f"--goodput: must be a share of the query weight in (0, 1], got "
                            f"{goodput:g}; e.g. --goodput 0.95")
        if budget is not None and not 0 <= budget <= 1e9:
            raise SpecError(f"--budget: must be >= 0 and <= 1000000000 $/h, got {budget:g}")
        for path, option in ((json_out, "--json"), (plot, "--plot"), (world_out, "--world-out")):
            if path is not None:
                check_output(path, option, inputs=[world, catalog])
        if plot is not None and plot.suffix.lower() != ".png":
            raise SpecError(f"--plot: the figure is a PNG; name a .png file, got {str(plot)!r}")
        if world_out is not None and world_out.suffix.lower() not in (".yaml", ".yml", ".json"):
            raise SpecError(f"--world-out: unknown suffix {world_out.suffix or '(none)'!r}; use "
                            ".yaml, .yml or .json")
        patterns = None if resources is None else [
            p.strip() for p in resources.split(",") if p.strip()]
        if patterns == []:
            raise SpecError("--resources: no device named; give names or patterns such as "
                            "gpu-pool,edge-*, or leave the option out for every device")
        w, index = load_indexed_world(world)
        cat = None if catalog is None else load_catalog(catalog)
        growables = growable(w, patterns, cat)
        index = measured(index, store, quiet=quiet)
        w = index.world
        limit = time_limit or w.planner.time_limit_s
        status = Console(stderr=True).status("planning capacity", spinner="dots")
        with status if not quiet else contextlib.nullcontext():
            result = CapacityPlanner(time_limit_s=limit, budget=budget, verify=verify).plan(
                w, goodput, growables)
            sweeps: tuple[Sweep, ...] = ()
            if json_out is not None or plot is not None:
                if not quiet:
                    status.update("sweeping capacities for the figure")
                names = swept(result.sizing, result.before, [g.name for g in growables],
                              result.problem.most_added)
                from circinus.capacity.model import CapacityModel

                sweeps = sweep(CapacityModel(result.problem), result.sizing, names,
                               points=points, deadline=time.monotonic() + SWEEP_TIMES * limit)
        out = to_capacity_file(result, budget=budget, sweeps=sweeps)
        if json_out is not None:
            write_atomic(json_out, out.model_dump_json(indent=2))
        if plot is not None:
            from circinus.report.capacity_plot import plot_capacity

            plot_capacity(out, plot)
        if world_out is not None:
            write_atomic(world_out, _world_text(result.world, world_out))
        if not quiet:
            render_capacity(out, Console())
            for path, what in ((json_out, "answer"), (plot, "figure"), (world_out, "world")):
                if path is not None:
                    Console(soft_wrap=True).print(f"{what} written to {path}", highlight=False)
        if not out.reached:
            if out.goodput >= goodput * (1 - 1e-9) and out.replanned_goodput is not None:
                raise InfeasibleError(
                    f"--goodput: the joint plan with the additions admits {out.goodput:.4g} of "
                    f"the query weight, but `circinus plan` on the grown world admits "
                    f"{out.replanned_goodput:.4g}, short of {goodput:g}, after "
                    f"{out.solve.rounds} rounds; serve the joint plan (--json: plan), raise "
                    "--time-limit, or ask for a lower --goodput")
            raise InfeasibleError(
                f"--goodput: the plan with the additions admits {out.goodput:.4g} of the query "
                f"weight, short of {goodput:g}, after {out.solve.rounds} rounds of checks; "
                "raise --time-limit, or ask for a lower --goodput")

    guard(run)


def _world_text(world: object, path: Path) -> str:
    """``world`` as the text of a world file of ``path``'s format."""
    from circinus.spec.models import World

    assert isinstance(world, World)
    data = world.model_dump(mode="json", exclude_defaults=True)
    if path.suffix.lower() == ".json":
        return json.dumps(data, indent=1)
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def render_capacity(out: CapacityFile, console: Console) -> None:
    """The answer on the terminal: a summary, the additions, the value of one more unit."""
    plan = out.plan
    adds = ", ".join(f"+{n} {name}" for name, n in out.additions.items()) or "nothing"
    reached = "reached" if out.reached else "NOT reached"
    today = "" if out.goodput_today is None else f"; {out.goodput_today:.1%} today"
    lines = [
        f"{out.world}: goodput {out.goodput:.1%} of the query weight ({reached}; asked "
        f"{out.target_goodput:.1%}{today}), {plan.admitted}/{plan.total_queries} queries "
        "admitted",
        f"add {adds}: ${out.cost_per_hour:.4f}/h"
        + ("" if out.budget_per_hour is None else f" (budget ${out.budget_per_hour:g}/h)")
        + f"; plan ${out.plan_cost_per_hour:.4f}/h",
        f"solve {out.solve.status}"
        + ("" if out.solve.status == "optimal" else f", cost bound ${out.solve.cost_bound:.4f}/h")
        + f", {out.solve.rounds} round(s); search {out.solve.search_seconds:.1f} s, selection "
        f"{out.solve.solve_seconds:.1f} s, checks {out.solve.check_seconds:.1f} s",
    ]
    if out.replanned_goodput is not None:
        lines.append(f"planned from scratch (`circinus plan` on the grown world): goodput "
                     f"{out.replanned_goodput:.1%}")
    console.print(Panel("\n".join(lines), title="circinus capacity", expand=False),
                  highlight=False)
    if out.added:
        table = Table(title="What to add")
        for col in ("device", "site", "units", "$/unit-h", "$/h"):
            table.add_column(col)
        for a in out.added:
            table.add_row(a.name + (" (new)" if a.new else ""), a.site,
                          f"{a.units_before:g} + {a.units_added}", f"{a.price_per_unit_hour:g}",
                          f"{a.cost_per_hour:.4f}")
        console.print(table)
    if out.unit_values:
        table = Table(title="One more unit admits about (LP duals, weighted queries)")
        for col in ("device", "today", "with the additions"):
            table.add_column(col)
        for v in out.unit_values:
            table.add_row(v.name, _value(v.before), _value(v.after))
        console.print(table)


def _value(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"
