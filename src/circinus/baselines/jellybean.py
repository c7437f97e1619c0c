"""JellyBean-style baseline: beam search over variants, then greedy tier-by-tier placement.

NOTE: JellyBean (Wu et al., "JellyBean: Optimizing Multi-Tier ML Inference Serving", MLSys'23)
splits the problem the way its objective suggests: first choose model variants, then workers.

1. *Variants.* A beam search over configuration vectors, stage by stage in topological order,
   keeps the :attr:`BeamGreedySearch.beam_width` partial vectors with the lowest summed compute
   cost estimate among those that can still reach the accuracy bound (that are a prefix of an
   accuracy-feasible vector). A configuration's compute cost is the cheapest, over the
   hardware it can reach, of ``mean_ms x work scale x units x price``: $/h-ms per request,
   proportional to the compute bill at a given rate.
2. *Workers.* For each surviving vector, stages in topological order go tier by tier: a stage
   goes to the tier of its inputs or a later one (edge before cloud), in the first tier that has
   room for it, on the device with the lowest cost per unit of throughput (``price x units /
   replica rate``) that is reachable from its inputs and has room left by the query's earlier
   stages, with the fewest replicas that keep utilisation under the bound. When one device
   cannot take the whole rate and ``max_devices_per_operator`` allows, the stage spills over to
   the next device of the tier (JellyBean's workers are single machines). Replicas serve batch 1:
   JellyBean's worker model has no batching knob.

The search sees one query, not what earlier queries took, so it also runs the greedy from the
cloud tier on (the edge taken as full): the plan JellyBean would make once the edge is taken,
which first-come-first-served admission falls back to. Latency is not part of JellyBean's
objective: the complete plans (up to two per vector) are estimated once each and those missing
any SLO are dropped afterwards. Pair it with the ``fcfs`` selector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from circinus.baselines.space import PerQuerySearch
from circinus.estimate.base import EPS
from circinus.plan.records import Placement, QueryPlan, Replicas, StagePlan
from circinus.search.base import QueryCandidates
from circinus.search.placements import eligible_devices, replica_rate
from circinus.search.shortlist import Evaluated, shortlist
from circinus.search.vectors import Vector
from circinus.spec.index import ConfigKey
from circinus.spec.models import Device, Query

_TIERS = ("edge", "cloud")


class BeamGreedySearch(PerQuerySearch):
    """Beam search over variants, greedy tier-by-tier placement (see module note)."""

    beam_width: ClassVar[int] = 10
    """Partial configuration vectors kept after each stage."""
    selector: ClassVar[str] = "fcfs"
    """Registry key of the selector this baseline is meant to run with."""

    def _search_one(self, position: int, query: Query) -> QueryCandidates:
        index = self.estimator.index
        devices = eligible_devices(index, query, self.settings.tiers)
        feasible, best_accuracy = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        found: list[Evaluated] = []
        seen: set[QueryPlan] = set()
        for vector in self._beam(query, devices, feasible):
            for start in range(len(_TIERS)):
                plan = self._assign(query, vector, devices, start)
                if plan is not None and plan not in seen:
                    seen.add(plan)
                    found.append((plan, self.estimator.estimate(query, plan)))
        return shortlist(query, found, index=index, settings=self.settings,
                         best_accuracy=best_accuracy, evaluations=len(found),
                         scope=f"among the {len(found)} plans of its beam",
                         unplaced="placement: the greedy assignment finds no room for every "
                                  "stage of any variant in the beam")

    def _beam(self, query: Query, devices: Sequence[Device],
              feasible: Sequence[Vector]) -> list[Vector]:
        """The surviving complete vectors, cheapest compute cost estimate first."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        prefixes = {v[:n] for v in feasible for n in range(len(v) + 1)}
        beam: list[tuple[float, Vector]] = [(0.0, ())]
        for stage in pipe.order:
            op = index.operators[pipe.operator_of[stage]]
            scale = query.work_scale.get(stage, 1.0)
            costs = {}
            for config in op.configs:
                per_request = [op.profiles[config, d.hardware].mean_ms * scale
                               * op.profiles[config, d.hardware].units * d.price_per_unit_hour
                               for d in devices if (config, d.hardware) in op.profiles]
                if per_request:
                    costs[config] = min(per_request)
            grown = [(cost + costs[c], (*vector, c)) for cost, vector in beam for c in costs
                     if (*vector, c) in prefixes]
            # Stable sort: ties keep beam order, then the operator's configuration order.
            beam = sorted(grown, key=lambda item: item[0])[:self.beam_width]
        return [vector for _, vector in beam]

    def _assign(self, query: Query, vector: Vector, devices: Sequence[Device],
                start: int) -> QueryPlan | None:
        """Greedy tier-by-tier placement of ``vector`` from tier number ``start`` on (earlier
        tiers taken as full); ``None`` when some stage has no room."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        used: dict[str, float] = {}
        memory: dict[str, float] = {}
        where: dict[str, tuple[int, set[str]]] = {  # node -> (tier rank, sites)
            src: (_TIERS.index(index.sites[site].tier), {site})
            for src, site in query.sources.items()
        }
        stages = []
        for stage, config in zip(pipe.order, vector, strict=True):
            inputs = [where[p] for p in pipe.preds[stage]]
            lowest = max(start, *(rank for rank, _ in inputs))
            sites: set[str] = set()
            for _, at in inputs:
                sites |= at
            usable = [d for d in devices if _TIERS.index(index.sites[d.site].tier) >= lowest
                      and all(index.reachable(s, d.site) for s in sites)]
            placement = self._fill(query, stage, config, usable, used, memory)
            if placement is None:
                return None
            stages.append(StagePlan(stage, config, 1, placement))
            placed = [index.devices[r.device] for r in placement]
            where[stage] = (_TIERS.index(index.sites[placed[0].site].tier),
                            {d.site for d in placed})
        return QueryPlan(query.name, tuple(stages))

    def _fill(self, query: Query, stage: str, config: ConfigKey, devices: Sequence[Device],
              used: dict[str, float], memory: dict[str, float]) -> Placement | None:
        """Place one stage in the first tier with room (see module note); updates ``used``
        and ``memory`` with what it takes."""
        index = self.estimator.index
        op = index.operators[index.pipelines[query.pipeline].operator_of[stage]]
        scale = query.work_scale.get(stage, 1.0)
        need = query.rate_rps / self.settings.max_utilization
        for tier in _TIERS:
            ranked = []
            for d in devices:
                prof = op.profiles.get((config, d.hardware))
                rate = None if prof is None else replica_rate(prof, 1, scale)
                if index.sites[d.site].tier == tier and prof is not None and rate is not None:
                    room = math.floor((d.units - used.get(d.name, 0.0)) / prof.units + EPS)
                    if d.memory_gb is not None and prof.memory_gb > 0:
                        room = min(room, math.floor(
                            (d.memory_gb - memory.get(d.name, 0.0)) / prof.memory_gb + EPS))
                    ranked.append((d.price_per_unit_hour * prof.units / rate, d.name, rate,
                                   room, prof.units, prof.memory_gb))
            groups = self._spill(sorted(ranked), need)
            if groups is not None:
                for name, count, units, gb in groups:
                    used[name] = used.get(name, 0.0) + count * units
                    memory[name] = memory.get(name, 0.0) + count * gb
                return tuple(sorted(Replicas(name, count) for name, count, _, _ in groups))
        return None

    def _spill(self, ranked: Sequence[tuple[float, str, float, int, float, float]],
               need: float) -> list[tuple[str, int, float, float]] | None:
        """Replica groups ``(device, count, units, memory)`` serving ``need`` requests/s, from
        the devices ``ranked`` (cheapest throughput first); ``None`` when they cannot."""
        left = need
        groups: list[tuple[str, int, float, float]] = []
        for _, name, rate, room, units, gb in ranked:
            if room < 1:
                continue
            fewest = max(1, math.ceil(left / rate - EPS))
            if fewest <= room:
                groups.append((name, fewest, units, gb))
                return groups
            if len(groups) + 1 < self.settings.max_devices_per_operator:
                groups.append((name, room, units, gb))
                left -= room * rate
        return None
