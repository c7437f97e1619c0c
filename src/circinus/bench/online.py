"""Online planning benchmark: how long one arrival takes when thousands of queries are admitted.

NOTE: every query of the world but the last ``held_out`` starts an
:class:`~circinus.online.OnlinePlanner` (planned as the batch planner does); the held-out
queries then arrive one at a time; then ``departures`` admitted queries drawn with the seed leave
(timed too), and ``extra`` copies of present queries drawn with the seed arrive (new names, same
pipeline, sources, rate and SLO; they compete for the same devices, and some fit into what the
departures freed or after a repair).
Each arrival's wall time is recorded in two parts: the *decision* (validation, search of the
newcomer, admission in whole replicas of the shared deployments it joins, the check of every
admitted query on those deployments and on the shared links it crosses, local repair) and, for a
query that must wait, the *explanation* (its nearest admissible SLO). The world's
``planner.sharing`` decides whether stages join shared deployments (the default) or get replicas
of their own; ``--sharing`` overrides it.

A long-running Python process with millions of live objects pays for the cyclic garbage
collector's full collections (about a second each at 10,000 queries, every few dozen
arrivals). A serving process avoids them by moving what exists after start-up out of the
collector's reach (``gc.freeze()``); ``freeze_gc`` does the same here after the start, and the
report says whether it did.

Run it with ``circinus bench online --queries 10000`` (a generated world, see ``circinus
gen``) or ``--world FILE``.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Literal

from circinus.online import OnlinePlanner
from circinus.spec.index import WorldIndex
from circinus.spec.models import PlannerSettings, Query

SharingMode = Literal["shared", "dedicated", "mixed"]
"""The planner's ``sharing`` settings (:class:`~circinus.spec.models.PlannerSettings`)."""


@dataclass(frozen=True)
class ArrivalTime:
    """One timed arrival."""

    query: str
    admitted: bool
    moved: int
    decision_seconds: float
    explain_seconds: float


@dataclass(frozen=True)
class OnlineReport:
    """What the benchmark measured on one world."""

    world: str
    queries: int
    start_seconds: float
    start_admitted: int
    gc_frozen: bool
    arrivals: tuple[ArrivalTime, ...]
    departure_seconds: tuple[float, ...] = ()
    sharing: str = "shared"
    """The planner's ``sharing`` setting the world was planned with."""
    start_deployments: int = 0
    """Shared deployments (with at least one query) after the start."""
    start_cost_per_hour: float = 0.0
    """Cost of the plans admitted at the start, shared deployments in whole replicas, $/h."""

    def summary(self) -> dict[str, float]:
        """Median, 90th percentile and maximum of the decision and of the whole arrival, s."""
        decision = sorted(a.decision_seconds for a in self.arrivals)
        total = sorted(a.decision_seconds + a.explain_seconds for a in self.arrivals)
        out: dict[str, float] = {}
        for name, xs in (("decision", decision), ("total", total)):
            out[f"{name}_median_s"] = statistics.median(xs)
            out[f"{name}_p90_s"] = xs[int(0.9 * (len(xs) - 1))]
            out[f"{name}_max_s"] = xs[-1]
        return out

    def to_json(self) -> dict[str, object]:
        """Plain data for ``--json``."""
        return {"benchmark": "online", **asdict(self), "summary": self.summary()}


def run_online_bench(name: str, index: WorldIndex, *, held_out: int = 1, extra: int = 20,
                     departures: int = 0, seed: int = 0, freeze_gc: bool = True,
                     selector: str = "milp", sharing: SharingMode | None = None,
                     time_limit_s: float | None = None) -> OnlineReport:
    """Start with all but ``held_out`` queries of ``index`` (selected by ``selector``), then
    time the arrivals (see module note); ``sharing`` and ``time_limit_s`` (the selection's
    budget at the start) override the world's settings."""
    queries = index.world.queries
    if not 1 <= held_out < len(queries):
        raise ValueError(f"held_out must be in 1..{len(queries) - 1}, got {held_out}")
    changes: dict[str, object] = {}
    if sharing is not None:
        changes["sharing"] = sharing
    if time_limit_s is not None:
        changes["time_limit_s"] = time_limit_s
    settings = PlannerSettings.model_validate({**index.world.planner.model_dump(), **changes})
    start = index.world.model_copy(update={"queries": queries[:-held_out]})
    t0 = time.monotonic()
    online = OnlinePlanner(start, selector=selector, settings=settings)
    start_seconds = time.monotonic() - t0
    start_admitted = len(online.admitted)
    start_deployments, start_cost = len(online.deployments()), online.cost_per_hour
    if freeze_gc:
        gc.collect()
        gc.freeze()
    rng = random.Random(seed)
    extras = [rng.choice(queries[:-held_out]).model_copy(update={"name": f"bench-extra-{i}"})
              for i in range(extra)]
    times: list[ArrivalTime] = []
    gone: list[float] = []
    try:
        for query in queries[-held_out:]:
            times.append(_arrive(online, query))
        for name in rng.sample(sorted(online.admitted), min(departures, len(online.admitted))):
            gone.append(online.depart(name).seconds)
        for query in extras:
            times.append(_arrive(online, query))
    finally:
        if freeze_gc:
            gc.unfreeze()
    return OnlineReport(name, len(queries), start_seconds, start_admitted, freeze_gc,
                        tuple(times), tuple(gone), settings.sharing, start_deployments,
                        start_cost)


def _arrive(online: OnlinePlanner, query: Query) -> ArrivalTime:
    a = online.arrive(query)
    return ArrivalTime(a.query, a.admitted, len(a.moved), a.seconds, a.why_not_seconds)
