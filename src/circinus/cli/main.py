"""The ``circinus`` command.

Errors a user can cause (a malformed world, an unknown option value) print one line to stderr
and exit with the code of their :mod:`circinus.errors` class (2 for a bad world); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import json
import os
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
    from collections.abc import Iterator, Sequence

    from circinus.gen import GenSpec
    from circinus.parallel import BaseSearchExecutor, ChunkRecord

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
    executor: Annotated[str, typer.Option(
        help="Where the per-group search runs: auto (worker processes, one per core, for "
        "200 queries or more on 2 cores or more; else this process), serial (this process), "
        "processes (worker processes here) or ray (Ray tasks on --address, else on a local "
        "cluster started and stopped by the command); the plan is the same.")] = "auto",
    workers: Annotated[int | None, typer.Option(
        help="Chunks searched at once (processes, ray; default: the cores here, or the "
        "cluster's CPUs).")] = None,
    chunks: Annotated[int | None, typer.Option(
        help="Chunks the query groups are dealt into (default: 4 per worker).")] = None,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster for --executor ray: host:port, ray://host:port or auto (default: "
        "$RAY_ADDRESS, else a local cluster).")] = None,
) -> None:
    """Plan every query of WORLD and print the admitted plans, rejections and resource use."""

    def run() -> None:
        from circinus.collector import paused
        from circinus.plan.file import plan_file_pieces, to_plan_file
        from circinus.planner import Planner
        from circinus.report.console import render_plan
        from circinus.spec.load import load_indexed_world

        if json_out is not None:
            check_output(json_out, "--json", inputs=[world])
        where = search_executor(executor, workers=workers, chunks=chunks, address=address,
                                search=search)
        # NOTE: this process plans once, so what it reads and what it writes are kept out of
        # the collector's reach as the plan is (Planner's freeze): at 100,000 generated
        # queries its passes over the world being read took 1.5 of 10.4 s of CPU, and over
        # the plan file being built half of it (9.8 -> 4.7 s).
        with paused(freeze=True):
            w, index = load_indexed_world(world, workers=os.cpu_count() or 1)
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
                         why_not=why_not, freeze=True, executor=where,
                         workers=os.cpu_count() or 1).plan(index)
        if quiet and json_out is None:
            return  # nothing to print or write
        with paused(freeze=True):
            planfile = to_plan_file(index, result)
            if json_out is not None:
                write_atomic(json_out, plan_file_pieces(planfile))
        if not quiet:
            render_plan(planfile, Console(), show=show)
            if executor not in ("serial", "auto") or chunks is not None:
                Console(soft_wrap=True).print(chunks_line(result.search_chunks,
                                                          result.search_seconds, executor),
                                              highlight=False)
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

        w, index = load_indexed_world(world, workers=os.cpu_count() or 1)
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
    queries: Annotated[int, typer.Option("--queries", "-n",
                                         help="Number of queries (1-1000000).")],
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
        from circinus.gen import generate, generate_parts, make_spec

        check_output(out, "--out")
        fmt = _world_format(out)
        options: dict[str, Any] = {
            "queries": queries, "edge_sites": edge_sites, "edge_boxes": edge_boxes,
            "cloud_gpus": cloud_gpus, "slo_tightness": slo_tightness, "seed": seed}
        if mix is not None:
            options["mix"] = _parse_mix(mix)
        spec = make_spec(options, names=_GEN_OPTIONS)
        if fmt == "json":
            head = generate(spec)
            write_atomic(out, json.dumps(head, indent=1))
        else:
            head, stream = generate_parts(spec)
            write_atomic(out, _yaml_pieces(spec, head, stream))
        devices = {d["name"]: d for d in head["devices"]}
        Console(soft_wrap=True).print(
            f"{out}: {spec.queries} queries, {len(head['sites']) - 1} edge sites, "
            f"{devices['cloud/gpu-pool']['units']} cloud GPUs, seed {spec.seed}", highlight=False)

    guard(run)


def search_executor(kind: str, *, workers: int | None, chunks: int | None,
                    address: str | None, search: str) -> BaseSearchExecutor:
    """The executor of the search options (``--address`` defaults to ``$RAY_ADDRESS`` for
    ``--executor ray`` alone); a one-line error for a bad combination."""
    from circinus.parallel import make_executor
    from circinus.planner import SEARCHES

    if kind == "ray" and address is None:
        address = os.environ.get("RAY_ADDRESS") or None
    where = make_executor(kind, workers=workers, chunks=chunks, address=address)
    if kind == "ray" and address is not None:
        from circinus.parallel.ray import check_address

        check_address(address)  # before the world is read: unreachable is a quick answer
    if (kind not in ("serial", "auto") or chunks is not None) and search in SEARCHES and (
            not getattr(SEARCHES[search], "splittable", False)):
        splittable = sorted(k for k, s in SEARCHES.items() if getattr(s, "splittable", False))
        raise SpecError(f"--executor {kind}: search {search!r} decides its queries one after "
                        f"another and cannot be split into chunks; use --search "
                        f"{' or '.join(splittable)}, or --executor serial without --chunks")
    return where


def chunks_line(chunks: Sequence[ChunkRecord], seconds: float, kind: str) -> str:
    """One line on how the search ran: chunks, workers, the largest chunk and the CPU time."""
    if not chunks:
        return f"search ({kind}): no queries"
    workers = len({c.worker for c in chunks})
    return (f"search ({kind}): {len(chunks)} chunk(s) on {workers} worker(s) in {seconds:.1f} "
            f"s; largest chunk {max(c.seconds for c in chunks):.2f} s, CPU "
            f"{sum(c.cpu_seconds for c in chunks):.1f} s in all")


GEN_BATCH = 10_000
"""Queries written at a time by ``circinus gen`` (YAML): the file is the one dump of the whole
world would write, without ever holding every query (:func:`circinus.gen.generate_parts`)."""


def _yaml_pieces(spec: GenSpec, head: dict[str, Any], queries: Iterator[dict[str, Any]]
                 ) -> Iterator[str]:
    """The YAML world file in pieces: header, the world before its queries, the queries
    :data:`GEN_BATCH` at a time, then ``planner`` (a block list under a key is written
    unindented, so each batch dumped alone reads as part of ``queries``)."""
    import itertools

    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # C dumper: 10x faster

    def dump(data: Any) -> str:
        return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=None,
                         width=100, allow_unicode=False)

    planner = {"planner": head["planner"]}
    yield _gen_header(spec) + dump({k: v for k, v in head.items() if k != "planner"})
    yield "queries:\n"
    while batch := list(itertools.islice(queries, GEN_BATCH)):
        yield dump(batch)
    yield dump(planner).rstrip("\n")


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
