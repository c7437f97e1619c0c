"""The ``circinus`` command.

Errors a user can cause (a malformed world, an unknown option value) print one line to stderr
and exit with the code of their :mod:`circinus.errors` class (2 for a bad world); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.text import Text

from circinus.errors import CircinusError, SpecError

app = typer.Typer(
    name="circinus",
    help="SLO-aware query planner for compound AI serving across edge and cloud.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def _guard(fn: Callable[[], Any]) -> Any:
    """Run ``fn``, turning Circinus errors into one line on stderr and an exit code."""
    try:
        return fn()
    except CircinusError as exc:
        if _state["debug"]:
            raise
        _error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:
        if _state["debug"]:
            raise
        _error(str(exc))
        raise typer.Exit(1) from None


def _error(message: str) -> None:
    """One line on stderr; the message is plain text, never rich markup."""
    line = Text.assemble(("error: ", "bold red"), " ".join(message.split()))
    Console(stderr=True, soft_wrap=True).print(line, highlight=False)


@app.command()
def plan(
    world: Annotated[Path, typer.Argument(help="World file (.yaml, .yml or .json).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the plan file (JSON) here.")
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option("--time-limit", min=0.1, help="Selection time budget, s (default: world)."),
    ] = None,
    show: Annotated[int, typer.Option(min=0, help="Queries listed per table.")] = 20,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Plan every query of WORLD and print the admitted plans, rejections and resource use."""

    def run() -> None:
        from circinus.planner import Planner
        from circinus.report.console import render_plan
        from circinus.report.planfile import to_plan_file
        from circinus.spec.load import load_indexed_world

        w, index = load_indexed_world(world)
        settings = w.planner if time_limit is None else w.planner.model_copy(
            update={"time_limit_s": time_limit})
        result = Planner(settings=settings).plan(index)
        planfile = to_plan_file(index, result)
        if json_out is not None:
            _write_atomic(json_out, planfile.model_dump_json(indent=2))
        if not quiet:
            render_plan(planfile, Console(), show=show)
            if json_out is not None:
                Console().print(f"plan written to {json_out}")

    _guard(run)


@app.command()
def validate(
    world: Annotated[Path, typer.Argument(help="World file to check.")],
) -> None:
    """Check WORLD and print a one-line summary (exit 2 with the offending field if invalid)."""

    def run() -> None:
        from circinus.spec.load import load_indexed_world

        w, index = load_indexed_world(world)
        configs = sum(len(o.configs) for o in index.operators.values())
        Console(soft_wrap=True).print(
            f"{world}: valid — {len(w.sites)} sites, {len(w.devices)} devices, "
            f"{len(w.links)} links, {len(w.operators)} operators ({configs} configurations), "
            f"{len(w.pipelines)} pipelines, {len(w.queries)} queries"
        )

    _guard(run)


@app.command()
def schema(
    which: Annotated[
        str, typer.Argument(help="'world' (the input format) or 'plan' (the --json output).")
    ] = "world",
) -> None:
    """Print the JSON Schema of the world format or of the plan file."""

    def run() -> None:
        print(json.dumps(json_schema(which), indent=2))  # type: ignore[arg-type]

    _guard(run)


def json_schema(which: Literal["world", "plan"]) -> dict[str, Any]:
    """The JSON Schema of the world format (``world``) or the plan file (``plan``)."""
    if which == "world":
        from circinus.spec.models import World

        return World.model_json_schema()
    if which == "plan":
        from circinus.report.planfile import PlanFile

        return PlanFile.model_json_schema()
    raise SpecError(f"schema: unknown schema {which!r}; use 'world' or 'plan'")


def _register_bench() -> None:
    from circinus.cli.bench import bench_app

    app.add_typer(bench_app, name="bench")


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)


_register_bench()


def main() -> None:
    """Entry point for ``python -m circinus``."""
    app(prog_name="circinus")


if __name__ == "__main__":
    main()
