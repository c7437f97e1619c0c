"""``circinus report WORLD``: PNG figures of a plan, its simulation and a load sweep."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from circinus.cli.common import check_output, guard, measured, write_atomic
from circinus.errors import SpecError

if TYPE_CHECKING:
    from circinus.plan.file import PlanFile
    from circinus.report.sweep import LoadSweep
    from circinus.simulate import SimulationResult
    from circinus.spec.index import WorldIndex

DEFAULT_METHODS = "circinus,jellybean,infaas,cloud-only,edge-only"
"""The load sweep's default methods: vulcan (60 optimiser trials per query) alone takes
three times as long as these together; add it with --methods."""
DEFAULT_LOADS = "0.5,1,1.5,2,3"

FIGURES = {
    "frontiers.png": "Latency–cost frontiers",
    "goodput-vs-load.png": "Goodput and cost under load, per planning method",
    "latency-cdf.png": "Latency distributions: predicted against simulated",
    "utilisation.png": "Resource use: allocated, predicted busy and simulated busy",
}
"""Every figure the command writes, with its heading in the index."""
OUTPUTS = ("index.md", "plan.json", "simulation.json", "report.json", *FIGURES)
"""Every file the command writes into its folder."""


def report(
    world: Annotated[Path, typer.Argument(help="World file (.yaml, .yml or .json).")],
    plan: Annotated[Path | None, typer.Option(
        help="Plan file written by `circinus plan --json` (default: plan the world first).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder the figures go to.")] = Path(
        "report"),
    duration: Annotated[float, typer.Option(
        help="Simulated time, s (long enough that a 1 req/s query has a tail to compare).")
    ] = 300.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulation and the searches.")] = 0,
    methods: Annotated[str, typer.Option(
        help="Planning methods of the load sweep, comma-separated (see `circinus bench "
        "search`).")] = DEFAULT_METHODS,
    loads: Annotated[str, typer.Option(
        help="Load factors of the sweep (each query's rate multiplied), comma-separated.")
    ] = DEFAULT_LOADS,
    panels: Annotated[int, typer.Option(
        help="Query groups in the frontier figure and queries in the latency figure.")] = 4,
    jobs: Annotated[int | None, typer.Option(
        help="Processes planning the load sweep (default: one per CPU).")] = None,
    store: Annotated[str | None, typer.Option(
        help="Profile store for worlds with executable operators (see `circinus profile`).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Plan WORLD (or read --plan), simulate it, and write PNG figures with an index to --out.

    The figures: latency-cost frontiers of a few query groups, goodput under load per planning
    method, predicted against simulated latency, and device and link use."""

    def run() -> None:
        options = _Options.check(duration=duration, seed=seed, methods=methods, loads=loads,
                                 panels=panels, jobs=jobs, out=out)
        check_output(out, "--out", inputs=[world, plan], folder=OUTPUTS)
        written = publish(out, lambda staging: write_report(
            world, plan, replace(options, out=staging), store=store, quiet=quiet))
        if not quiet:
            console = Console(soft_wrap=True)
            console.print(f"report written to {out}/:", highlight=False)
            for path in written:
                console.print(f"  {path}", highlight=False)

    guard(run, interrupted=f"interrupted; nothing was written to {out}/")


def publish(out: Path, write: Callable[[Path], list[Path]]) -> list[Path]:
    """Run ``write`` on an empty staging folder beside ``out``, then move what it wrote into
    ``out``; returns the files' paths in ``out``.

    NOTE: a report is whole or absent: an error or Ctrl-C while writing leaves ``out`` as it
    was (the staging folder is removed), never a folder of some figures and no index.
    """
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial",
                                    dir=out.absolute().parent))
    try:
        written = write(staging)
        out.mkdir(exist_ok=True)
        final = []
        for path in written:
            os.replace(path, out / path.name)
            final.append(out / path.name)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class _Options:
    """The command's options, checked."""

    duration: float
    seed: int
    methods: tuple[str, ...]
    loads: tuple[float, ...]
    panels: int
    jobs: int
    out: Path

    @classmethod
    def check(cls, *, duration: float, seed: int, methods: str, loads: str, panels: int,
              jobs: int | None, out: Path) -> _Options:
        from circinus.bench.methods import METHODS

        if not 0 < duration <= 86_400:
            raise SpecError(f"--duration: must be > 0 and <= 86400 s, got {duration:g}")
        if seed < 0:
            raise SpecError(f"--seed: must be >= 0, got {seed}")
        if panels < 1:
            raise SpecError(f"--panels: must be >= 1, got {panels}")
        if jobs is not None and jobs < 1:
            raise SpecError(f"--jobs: must be >= 1, got {jobs}")
        names = _items(methods, "--methods")
        bad = [m for m in names if m not in METHODS]
        if bad:
            raise SpecError(f"--methods: unknown method {bad[0]!r}; choose from "
                            f"{', '.join(METHODS)}")
        factors = []
        for item in _items(loads, "--loads"):
            try:
                value = float(item)
            except ValueError:
                raise SpecError(f"--loads: expected numbers such as 0.5,1,2, got {item!r}"
                                ) from None
            if not 0 < value <= 1000:
                raise SpecError(f"--loads: a load factor must be > 0 and <= 1000, got {item}")
            factors.append(value)
        return cls(duration=duration, seed=seed, methods=tuple(dict.fromkeys(names)),
                   loads=tuple(sorted(set(factors))), panels=panels,
                   jobs=jobs or os.cpu_count() or 1, out=out)


def _items(text: str, option: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise SpecError(f"{option}: give at least one value, comma-separated")
    return items


def write_report(world: Path, plan: Path | None, options: _Options, *, store: str | None,
                 quiet: bool) -> list[Path]:
    """Everything ``circinus report`` does; returns the files written, index first."""
    from circinus.parallel import AutoExecutor
    from circinus.plan.file import to_plan_file
    from circinus.planner import Planner
    from circinus.report import gather, plots
    from circinus.report.data import report_data
    from circinus.report.sweep import load_sweep
    from circinus.runtime.machine import load_average
    from circinus.simulate import (
        SimulationSettings,
        compile_plan,
        make_arrivals,
        read_plan_file,
        simulate_run,
    )
    from circinus.spec.load import load_indexed_world

    err = Console(stderr=True, soft_wrap=True)
    began = time.monotonic()
    load_start = load_average()
    steps: dict[str, float] = {}

    def say(message: str) -> None:
        if not quiet:
            err.print(f"[{time.monotonic() - began:6.1f} s] {message}", highlight=False,
                      markup=False)

    _, index = load_indexed_world(world)
    if plan is not None:
        planfile = read_plan_file(plan)
        index = measured(index, store, quiet=quiet)
        sim = compile_plan(index, planfile, origin=str(plan))  # checks the plan fits the world
    else:
        index = measured(index, store, quiet=quiet)
        say(f"planning {index.world.name} ({len(index.world.queries)} queries)")
        t = time.monotonic()
        # As `circinus plan` runs it: the search on a worker per core where that helps, the
        # why-not on every core (the same plan; the sweep after it has processes of its own).
        planner = Planner(settings=index.world.planner, executor=AutoExecutor(),
                          workers=os.cpu_count() or 1)
        planfile = to_plan_file(index, planner.plan(index))
        steps["plan"] = time.monotonic() - t
        sim = compile_plan(index, planfile)
    written: list[Path] = []
    if plan is None:
        write_atomic(options.out / "plan.json", planfile.model_dump_json(indent=2))
        written.append(options.out / "plan.json")
    say(f"simulating {options.duration:g} s")
    t = time.monotonic()
    run = simulate_run(sim, arrivals=make_arrivals("poisson"), settings=SimulationSettings(
        duration_s=options.duration, seed=options.seed))
    steps["simulate"] = time.monotonic() - t
    write_atomic(options.out / "simulation.json", run.result.model_dump_json(indent=2))
    written.append(options.out / "simulation.json")
    figure = {name: options.out / name for name in FIGURES}
    say("searching the frontier groups")
    t = time.monotonic()
    plots.plot_frontiers(gather.frontier_panels(index, planfile, count=options.panels,
                                                seed=options.seed), figure["frontiers.png"])
    panels = gather.latency_panels(index, planfile, run, count=options.panels)
    plots.plot_latency_cdfs(panels, figure["latency-cdf.png"])
    devices = gather.device_use(index, planfile, run.result)
    links = gather.link_use(planfile, run.result)
    plots.plot_utilisation(devices, links, figure["utilisation.png"])
    steps["figures"] = time.monotonic() - t
    say(f"load sweep: {len(options.methods)} methods × {len(options.loads)} loads, "
        f"{options.jobs} process(es)")
    t = time.monotonic()
    sweep = load_sweep(index.world, methods=options.methods, loads=options.loads,
                       jobs=options.jobs, progress=say)
    for method, why in sweep.skipped:
        say(f"skipped {method}: {why}")
    plots.plot_goodput_vs_load(list(sweep.points), figure["goodput-vs-load.png"])
    steps["sweep"] = time.monotonic() - t
    written += figure.values()
    data = report_data(planfile, planned=plan is None, sim=run.result,
                       panels=[p.query for p in panels], sweep=sweep.points,
                       skipped=sweep.skipped, devices=devices, links=links, steps=steps,
                       total_s=time.monotonic() - began, jobs=options.jobs,
                       load_start=load_start)
    write_atomic(options.out / "report.json", data.model_dump_json(indent=1))
    written.append(options.out / "report.json")
    index_md = options.out / "index.md"
    write_atomic(index_md, _index(world, plan, options, planfile, run.result, sweep,
                                  time.monotonic() - began, shares=_shares(index, planfile)))
    say("done")
    return [index_md, *written]


def _shares(index: WorldIndex, planfile: PlanFile) -> list[str]:
    """A markdown table of the deployments whose replicas could take another share (their
    profiles list `shares`): the share chosen against those offered; empty when none could."""
    rows = []
    for d in planfile.deployments:
        op = index.operators[d.operator]
        if not op.has_shares:
            continue
        hw = index.devices[d.device].hardware
        own = op.key_of(d.config)
        offered = sorted(p.units for (k, h), p in op.profiles.items()
                         if h == hw and k[:-1] == own[:-1])
        rows.append(f"| `{d.name}` | {', '.join(map(str, d.config.values())) or '-'} | "
                    f"{d.units_per_replica:g} | {', '.join(f'{u:g}' for u in offered)} | "
                    f"{d.replicas} | {d.utilization:.0%} |")
    if not rows:
        return []
    return ["", "## Replica shares", "",
            "Deployments whose profiles offer several units per replica (`shares`, "
            "docs/world-format.md): the share the planner chose and the ones offered.", "",
            "| deployment | config | units per replica | offered | replicas | util |",
            "|---|---|---|---|---|---|", *rows]


def _index(world: Path, plan: Path | None, options: _Options, planfile: PlanFile,
           sim: SimulationResult, sweep: LoadSweep, seconds: float, *,
           shares: Sequence[str] = ()) -> str:
    """The report's index: what each file is, with the figures inline."""
    source = f"the plan file `{plan}`" if plan is not None else "`plan.json` (planned here)"
    captions = {
        "frontiers.png": "Per group of interchangeable queries (same pipeline, sources, rate "
        "and SLO): every plan of its plan space meeting the accuracy bound as latency at the "
        "SLO percentile against cost, the Pareto frontier, the candidates the search keeps, "
        "the SLO bound and the plans the global selection chose.",
        "goodput-vs-load.png": f"Every query's rate scaled by {_join(options.loads)}× and the "
        f"world planned by {', '.join(_ran(sweep, options))}: predicted goodput "
        "(left) and cost (right) per method."
        + "".join(f" {m} skipped ({why})." for m, why in sweep.skipped),
        "latency-cdf.png": "For a few admitted queries (first the one whose simulated latency "
        "at the SLO percentile exceeds the prediction most): the planner's latency "
        "distribution (a gamma with the predicted mean and variance) against the simulated "
        "requests.",
        "utilisation.png": "Per device, the units the plan allocates and the busy units "
        "predicted by the planner and measured by the simulator, as shares of the capacity; "
        "per link with a capacity, planned and simulated traffic.",
    }
    lines = [
        f"# Report: {planfile.world}",
        "",
        f"World `{world}`, {source}: {planfile.admitted} of {planfile.total_queries} queries "
        f"admitted, goodput {planfile.goodput:g} predicted, {sim.goodput:g} simulated over "
        f"{sim.duration_s:g} s (seed {sim.seed}, Poisson arrivals), "
        f"${planfile.total_cost_per_hour:,.2f}/h. Written in {seconds:.0f} s.",
        "",
        "| file | what it is |",
        "|---|---|",
    ]
    if plan is None:
        lines.append("| `plan.json` | the plan (`circinus plan --json`) |")
    lines.append("| `simulation.json` | the simulation's result (`circinus simulate --json`) |")
    lines.append("| `report.json` | the figures' numbers, the plan's and the simulation's totals "
                 "and the time each step took |")
    lines += [f"| `{name}` | {title} |" for name, title in FIGURES.items()]
    lines += list(shares)
    for name, title in FIGURES.items():
        lines += ["", f"## {title}", "", captions[name], "", f"![{title}]({name})"]
    return "\n".join(lines)


def _ran(sweep: LoadSweep, options: _Options) -> list[str]:
    skipped = {m for m, _ in sweep.skipped}
    return [m for m in options.methods if m not in skipped]


def _join(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:g}" for v in values)
