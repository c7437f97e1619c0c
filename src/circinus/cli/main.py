"""The ``circinus`` command.

Errors a user can cause (a malformed world, an unknown option value) print one line to stderr
and exit with the code of their :mod:`circinus.errors` class (2 for a bad world); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console

from circinus.cli.common import (
    OneLineErrorGroup,
    check_output,
    guard,
    measured,
    set_debug,
    write_atomic,
)
from circinus.errors import SpecError

if TYPE_CHECKING:
    from circinus.gen import GenSpec

app = typer.Typer(
    name="circinus",
    help="SLO-aware query planner for compound AI serving across edge and cloud.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=OneLineErrorGroup,
)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    set_debug(debug)


@app.command()
def plan(
    world: Annotated[Path, typer.Argument(help="World file (.yaml, .yml or .json).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the plan file (JSON) here.")
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option("--time-limit", min=0.1, max=86_400,
                     help="Selection time budget, s (default: world)."),
    ] = None,
    search: Annotated[str, typer.Option(
        help="Per-query search: circinus, exhaustive, oracle (small worlds), vulcan, "
             "vulcan-alone, jellybean, jellybean-alone, infaas, nexus, random.")
    ] = "circinus",
    selector: Annotated[str, typer.Option(
        help="Global selection: milp (exact MILP; LP rounding above 3,000 candidates, "
             "partitioned above the planner's partition_above), exact (the MILP at any size), "
             "lp (LP rounding), partitioned (at any size) or fcfs (first come, first served).")
    ] = "milp",
    show: Annotated[int, typer.Option(min=0, help="Queries listed per table.")] = 20,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    why_not: Annotated[bool, typer.Option(
        "--why-not/--no-why-not",
        help="Find each rejected query's nearest admissible SLO (one objective relaxed).")
    ] = True,
    store: Annotated[str | None, typer.Option(
        help="Profile store for worlds with executable operators (see `circinus profile`); "
        "default $CIRCINUS_STORE, else ~/.cache/circinus/profiles.db.")] = None,
) -> None:
    """Plan every query of WORLD and print the admitted plans, rejections and resource use."""

    def run() -> None:
        from circinus.plan.file import to_plan_file
        from circinus.planner import Planner
        from circinus.report.console import render_plan
        from circinus.spec.load import load_indexed_world

        if json_out is not None:
            check_output(json_out, "--json", inputs=[world])
        w, index = load_indexed_world(world)
        settings = w.planner if time_limit is None else w.planner.model_copy(
            update={"time_limit_s": time_limit})
        from circinus.planner import SEARCHES, SELECTORS

        if search not in SEARCHES:
            raise SpecError(f"--search: unknown search {search!r}; choose from "
                            f"{', '.join(sorted(SEARCHES))}")
        if selector not in SELECTORS:
            raise SpecError(f"--selector: unknown selector {selector!r}; choose from "
                            f"{', '.join(sorted(SELECTORS))}")
        index = measured(index, store, quiet=quiet)
        result = Planner(search=search, selector=selector, settings=settings,
                         why_not=why_not, freeze=True).plan(index)
        planfile = to_plan_file(index, result)
        if json_out is not None:
            write_atomic(json_out, planfile.model_dump_json(indent=2))
        if not quiet:
            render_plan(planfile, Console(), show=show)
            if json_out is not None:
                Console().print(f"plan written to {json_out}")

    guard(run)


@app.command()
def validate(
    world: Annotated[Path, typer.Argument(help="World file to check.")],
) -> None:
    """Check WORLD and print a one-line summary (exit 2 with the offending field if invalid)."""

    def run() -> None:
        from circinus.spec.load import load_indexed_world

        w, index = load_indexed_world(world)
        configs = sum(o.is_own(c) for o in index.operators.values() for c in o.configs)
        shares = sum(len(o.configs) for o in index.operators.values()) - configs
        more = f", {shares} more replica shares" if shares else ""
        Console(soft_wrap=True).print(
            f"{world}: valid — {len(w.sites)} sites, {len(w.devices)} devices, "
            f"{len(w.links)} links, {len(w.operators)} operators ({configs} configurations"
            f"{more}), "
            f"{len(w.pipelines)} pipelines, {len(w.queries)} queries"
        )

    guard(run)


@app.command()
def schema(
    which: Annotated[
        str, typer.Argument(help="'world' (the input format) or 'plan' (the --json output).")
    ] = "world",
) -> None:
    """Print the JSON Schema of the world format or of the plan file."""

    def run() -> None:
        print(json.dumps(json_schema(which), indent=2))  # type: ignore[arg-type]

    guard(run)


_GEN_OPTIONS = {"queries": "--queries", "edge_sites": "--edge-sites", "edge_boxes": "--edge-boxes",
                "cloud_gpus": "--cloud-gpus", "slo_tightness": "--slo-tightness", "mix": "--mix",
                "seed": "--seed"}


@app.command()
def gen(
    queries: Annotated[int, typer.Option("--queries", "-n", help="Number of queries (1-100000).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="World file to write (.yaml, .yml or .json).")
    ],
    edge_sites: Annotated[
        int | None, typer.Option(help="Edge sites (default: grows like sqrt(queries)).")
    ] = None,
    edge_boxes: Annotated[int, typer.Option(help="Edge boxes per site (1-4).")] = 1,
    cloud_gpus: Annotated[
        int | None, typer.Option(help="GPUs in the cloud pool (default: grows with queries).")
    ] = None,
    slo_tightness: Annotated[
        float, typer.Option(help="Latency bound multiplier: < 1 tighter, > 1 looser.")
    ] = 1.0,
    mix: Annotated[
        str | None,
        typer.Option(help="Query classes as class=fraction pairs summing to 1, e.g. "
                     "alert=0.2,monitor=0.35,analytics=0.15,vqa=0.3 (classes left out get 0)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
) -> None:
    """Generate a world from the bundled real data; the same options give the same file."""

    def run() -> None:
        import yaml

        from circinus.gen import generate, make_spec

        check_output(out, "--out")
        fmt = _world_format(out)
        options: dict[str, Any] = {
            "queries": queries, "edge_sites": edge_sites, "edge_boxes": edge_boxes,
            "cloud_gpus": cloud_gpus, "slo_tightness": slo_tightness, "seed": seed}
        if mix is not None:
            options["mix"] = _parse_mix(mix)
        spec = make_spec(options, names=_GEN_OPTIONS)
        world = generate(spec)
        if fmt == "json":
            text = json.dumps(world, indent=1)
        else:
            dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # C dumper: 10x faster
            text = _gen_header(spec) + yaml.dump(
                world, Dumper=dumper, sort_keys=False, default_flow_style=None, width=100,
                allow_unicode=False).rstrip("\n")
        write_atomic(out, text)
        devices = {d["name"]: d for d in world["devices"]}
        Console(soft_wrap=True).print(
            f"{out}: {len(world['queries'])} queries, {len(world['sites']) - 1} edge sites, "
            f"{devices['cloud/gpu-pool']['units']} cloud GPUs, seed {spec.seed}", highlight=False)

    guard(run)


def _gen_header(spec: GenSpec) -> str:
    """A YAML comment with the command that regenerates the file."""
    args = [f"--queries {spec.queries}"]
    for field in ("edge_sites", "edge_boxes", "cloud_gpus", "slo_tightness", "seed"):
        value = getattr(spec, field)
        if value is not None:
            args.append(f"{_GEN_OPTIONS[field]} {value:g}")
    args.append("--mix " + ",".join(f"{name}={f:g}" for name, f in spec.mix.fractions()))
    return (f"# GENERATED by: circinus gen {' '.join(args)}\n"
            "# Regenerate rather than hand-edit; the description names the real data and its "
            "licences.\n")


def _world_format(path: Path) -> Literal["yaml", "json"]:
    """``json`` for a ``.json`` path, ``yaml`` for ``.yaml``/``.yml``; else a SpecError.

    Also refuses a path whose folder does not exist, before any work is done.
    """
    if not path.parent.is_dir():
        raise SpecError(f"--out: folder {str(path.parent)!r} does not exist; create it first")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix not in (".yaml", ".yml"):
        raise SpecError(f"--out: unknown suffix {suffix or '(none)'!r} in {str(path)!r}; "
                        "use .yaml, .yml or .json")
    return "yaml"


def _parse_mix(text: str) -> dict[str, float]:
    """``alert=0.2,vqa=0.8`` -> every class with its fraction (classes left out get 0)."""
    from circinus.gen import QueryMix

    classes = list(QueryMix.model_fields)
    out = dict.fromkeys(classes, 0.0)
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or name not in classes:
            raise SpecError(f"--mix: expected class=fraction with a class among "
                            f"{', '.join(classes)}, got {pair!r}")
        try:
            out[name] = float(value)
        except ValueError:
            raise SpecError(f"--mix: {name}: fraction must be a number, got {value!r}") from None
    return out


def json_schema(which: Literal["world", "plan"]) -> dict[str, Any]:
    """The JSON Schema of the world format (``world``) or the plan file (``plan``)."""
    if which == "world":
        from circinus.spec.models import World

        return World.model_json_schema()
    if which == "plan":
        from circinus.plan.file import PlanFile

        return PlanFile.model_json_schema()
    raise SpecError(f"schema: unknown schema {which!r}; use 'world' or 'plan'")


def _register_bench() -> None:
    from circinus.cli.bench import bench_app

    app.add_typer(bench_app, name="bench")


def _register_simulate() -> None:
    from circinus.cli.simulate import simulate

    app.command("simulate")(simulate)


def _register_report() -> None:
    from circinus.cli.report import report

    app.command("report")(report)


def _register_profile() -> None:
    from circinus.cli.profile import profile

    app.command("profile")(profile)


def _register_serve() -> None:
    from circinus.cli.serve import calibrate, deploy, serve

    app.command("deploy")(deploy)
    app.command("serve")(serve)
    app.command("calibrate")(calibrate)


def _register_service() -> None:
    from circinus.cli.service import service

    app.command("service")(service)


def _register_capacity() -> None:
    from circinus.cli.capacity import capacity

    app.command("capacity")(capacity)


_register_bench()
_register_capacity()
_register_serve()
_register_service()
_register_simulate()
_register_report()
_register_profile()


def main() -> None:
    """Entry point for ``python -m circinus``."""
    app(prog_name="circinus")


if __name__ == "__main__":
    main()
