"""Reading a plan file for the simulator, with one-line errors that name the field."""

from __future__ import annotations

from pathlib import Path

from circinus.errors import SpecError
from circinus.plan.file import PlanFile
from circinus.simulate.model import PLAN_FORMAT, REPLAN, SimWorld, compile_plan
from circinus.spec.load import load_indexed_world, read_document, validate_document


def read_plan_file(path: str | Path) -> PlanFile:
    """Parse and validate the plan file at ``path`` (written by ``circinus plan --json``).

    Raises:
        SpecError: ``plan.json:3:1: invalid JSON: ...`` or ``plan.json: queries[0].admitted:
            ...`` naming the first offending field.
    """
    data = read_document(path)
    got = data.get("format") if isinstance(data, dict) else type(data).__name__
    if got == "circinus-plan/1":
        raise SpecError(f"{path}: format: 'circinus-plan/1' is a plan file of per-query "
                        f"replicas; the simulator serves shared deployments "
                        f"({PLAN_FORMAT!r}); {REPLAN}")
    if got != PLAN_FORMAT:
        raise SpecError(f"{path}: format: expected a plan file ({PLAN_FORMAT!r}), got "
                        f"{got!r}; write one with `circinus plan WORLD --json PLAN`")
    return validate_document(PlanFile, data, str(path),
                             hint="a plan file is written by `circinus plan WORLD --json PLAN`")


def load_simulation(world: str | Path, plan: str | Path) -> SimWorld:
    """Read the world and the plan file and resolve the plan for the simulator.

    Raises:
        SpecError: a malformed world or plan file, or a plan that does not fit the world.
    """
    _, index = load_indexed_world(world)
    return compile_plan(index, read_plan_file(plan), origin=str(plan))
