"""The ``circinus capacity --json`` file: what to add, its cost, the plan with it, the value of
one more unit of each device, and the goodput and cost curves.

``additions``, ``cost_per_hour`` and ``goodput`` are the headline; ``plan`` is the plan file of
the grown world exactly as ``circinus plan --json`` writes it (docs/plan-format.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from circinus.capacity.planner import CapacityResult
from circinus.capacity.sweep import Sweep
from circinus.plan.file import PlanFile, to_plan_file


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdditionOut(_Out):
    """Units added to one device or pool, or a new device."""

    name: str = Field(description="Device or pool; '<offering>@<site>' for a new device.")
    new: bool = Field(description="A new device from the catalog.")
    site: str = Field(description="Site it stands at.")
    hardware: str = Field(description="Hardware class.")
    units_before: float = Field(description="Units it had (0 for a new device).")
    units_added: int = Field(description="Whole units added.")
    price_per_unit_hour: float = Field(description="Price of one unit for an hour, $.")
    cost_per_hour: float = Field(description="units_added x price_per_unit_hour, $/h.")


class UnitValueOut(_Out):
    """About how much more goodput one more unit of a device admits (LP duals)."""

    name: str = Field(description="Device or pool.")
    before: float | None = Field(
        description="Weighted queries one more unit admits at today's capacities (null: the "
        "LP was not solved).")
    after: float | None = Field(
        description="The same in the plan with the additions (null: not in that plan's LP, "
        "e.g. a catalog device not bought).")


class SweepPointOut(_Out):
    """The selection at one capacity of a swept device."""

    units: float = Field(description="Units of the swept device.")
    goodput: float | None = Field(description="Share of query weight admitted (null: no "
                                  "answer in the point's time).")
    plan_cost_per_hour: float | None = Field(description="Cost of the selected plans, $/h.")
    added_cost_per_hour: float = Field(description="Cost of all additions at this point, $/h.")


class SweepOut(_Out):
    """Goodput and cost against one device's capacity, the others at the suggested additions."""

    name: str = Field(description="Device or pool swept.")
    units_now: float = Field(description="Units it has today.")
    units_suggested: float = Field(description="Units with the suggested additions.")
    points: list[SweepPointOut]


class SolveOut(_Out):
    """How the additions were found."""

    status: Literal["optimal", "time_limit"] = Field(
        description="optimal: proven cheapest for the candidates searched; time_limit: the "
        "cheapest found within the budget.")
    cost_bound: float = Field(description="Proven lower bound on the additions' cost, $/h.")
    milp_goodput: float = Field(description="Share of query weight the joint MILP admits with "
                                "the additions (the plan's own is 'goodput').")
    rounds: int = Field(description="Times the MILP was asked (one more per shortfall of the "
                        "verifying plan).")
    search_seconds: float = Field(description="Candidate search on the world at its largest, s.")
    solve_seconds: float = Field(description="Joint MILP, s.")
    check_seconds: float = Field(description="Link and deployment checks of the joint "
                                 "selection on the grown world, s.")
    verify_seconds: float = Field(description="Planning the grown world from scratch, s.")


class CapacityFile(_Out):
    """The answer of ``circinus capacity``."""

    format: Literal["circinus-capacity/1"] = Field(
        default="circinus-capacity/1", description="Format version.")
    world: str = Field(description="World name.")
    target_goodput: float = Field(description="Asked share of query weight (--goodput).")
    goodput: float = Field(description="Share of query weight the plan with the additions "
                           "admits.")
    reached: bool = Field(description="goodput >= target_goodput.")
    replanned_goodput: float | None = Field(
        description="Share admitted when the grown world is planned from scratch by the "
        "ordinary planner, as `circinus plan` would (null: not asked, --no-verify).")
    goodput_today: float | None = Field(
        description="Share admitted by planning the world as it is (null: --no-verify).")
    budget_per_hour: float | None = Field(description="--budget, $/h (null: none).")
    additions: dict[str, int] = Field(description="Device or pool name -> whole units to add.")
    cost_per_hour: float = Field(description="Cost of the additions, $/h.")
    plan_cost_per_hour: float = Field(description="Cost of the plan with the additions, $/h.")
    added: list[AdditionOut] = Field(description="Each addition in detail.")
    unit_values: list[UnitValueOut] = Field(
        description="Per growable device, about how many more (weighted) queries one more unit "
        "admits, from the selection LP's duals (docs/capacity.md).")
    solve: SolveOut
    sweeps: list[SweepOut] = Field(default_factory=list, description="Goodput and cost "
                                   "against each swept device's capacity.")
    plan: PlanFile = Field(description="The plan of the world with the additions, as "
                           "`circinus plan --json` writes it.")


def to_capacity_file(result: CapacityResult, *, budget: float | None,
                     sweeps: tuple[Sweep, ...] = ()) -> CapacityFile:
    """The documented file of ``result`` (and its ``sweeps``)."""
    total = result.total_weight or 1.0
    added = [AdditionOut(name=g.name, new=g.new, site=g.site, hardware=g.hardware,
                         units_before=g.units, units_added=result.additions[g.name],
                         price_per_unit_hour=g.price_per_unit_hour,
                         cost_per_hour=g.price_per_unit_hour * result.additions[g.name])
             for g in result.growables if g.name in result.additions]
    before = {v.name: v.goodput_per_unit for v in result.before}
    after = {v.name: v.goodput_per_unit for v in result.after}
    values = [UnitValueOut(name=g.name, before=before.get(g.name), after=after.get(g.name))
              for g in result.growables if g.name in before or g.name in after]
    s = result.sizing
    return CapacityFile(
        world=result.plan.world, target_goodput=result.share,
        goodput=result.plan.goodput / total, reached=result.reached,
        replanned_goodput=None if result.replanned is None
        else result.replanned.goodput / total, budget_per_hour=budget,
        goodput_today=None if result.today_goodput is None else result.today_goodput / total,
        additions=dict(result.additions), cost_per_hour=result.cost_per_hour,
        plan_cost_per_hour=result.plan.cost_per_hour, added=added, unit_values=values,
        solve=SolveOut(status="optimal" if s.status == "optimal" else "time_limit",
                       cost_bound=s.cost_bound, milp_goodput=s.goodput / total,
                       rounds=result.rounds, search_seconds=result.search_seconds,
                       solve_seconds=result.solve_seconds,
                       check_seconds=result.check_seconds,
                       verify_seconds=result.verify_seconds),
        sweeps=[SweepOut(name=w.name, units_now=w.units_now, units_suggested=w.units_suggested,
                         points=[SweepPointOut(
                             units=p.units, goodput=None if p.goodput is None
                             else p.goodput / total, plan_cost_per_hour=p.plan_cost_per_hour,
                             added_cost_per_hour=p.added_cost_per_hour) for p in w.points])
                for w in sweeps],
        plan=to_plan_file(result.index, result.plan))
