"""JellyBean-style baseline: beam search over variants, then multi-tier worker assignment.

NOTE: follows JellyBean (Wu et al., "JellyBean: Optimizing Multi-Tier ML Inference Serving",
MLSys'23) with the configuration it publishes for its VQA instance
(``data/real/jellybean-vqa/config.yaml``: beam ``BEST_K`` 10, worker assignment
``multiple-tiers`` with ``greedy`` tier allocation, 10 assignment orders, the best 10
assignments kept). Its optimizer splits the problem as its objective suggests:

1. *Variants.* A beam search over configuration vectors, stage by stage in topological order,
   keeps the :attr:`MultiTierSearch.beam_width` partial vectors with the lowest summed compute
   cost estimate among those that can still reach the accuracy bound (that are a prefix of an
   accuracy-feasible vector). A configuration's compute cost is the cheapest, over the hardware
   it can reach, of ``mean_ms x work scale x units x price`` ($/h-ms per request, proportional
   to the compute bill at a given rate: JellyBean's per-variant cost profile).
2. *Workers.* For each surviving vector, JellyBean's multi-tier worker assignment
   (:func:`~circinus.baselines.jellybean_assign.assign`: 10 topological orders, a beam of the
   10 cheapest partial assignments in compute + communication cost, greedy per-tier fill,
   no traffic from a higher tier to a lower one).
3. *Choice.* The assignment with the lowest compute + communication cost over all vectors
   (ties: the higher accuracy), as its ``main`` picks it.

Departures, and why:

* JellyBean plans one workflow on its worker pool. A bench world has many queries, each with
  its own sources, rate and SLO: :class:`MultiTierSearch` (``jellybean``) plans them one at a
  time in arrival order, each as a workflow on the workers the earlier ones left
  (:class:`~circinus.baselines.online.ArrivalOrderSearch`); :class:`MultiTierAloneSearch`
  (``jellybean-alone``, the bench's ``jellybean+select``) plans each alone and hands every
  admissible plan to Circinus's global selector.
* Latency is not part of JellyBean's objective. Its plans are taken in its order of cost and
  the first that meets the query's SLO (latency included, by Circinus's estimator) and fits is
  the query's plan: as generous as JellyBean can be made without changing its objective.
* A plan is written in Circinus's records: each worker's replicas, batch 1, dedicated to the
  query (JellyBean's workers serve one operator of one workflow). Circinus's estimator splits a
  stage's load over its devices in proportion to their throughput where JellyBean fills the
  first workers at full throughput, so the bench's cost of a JellyBean plan (estimated) can
  differ from JellyBean's own figure (:attr:`JellyBeanPlan.assignment`), which the
  reproduction test checks on its instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from circinus.baselines.jellybean_assign import Assignment, Instance, Worker, assign
from circinus.baselines.online import ArrivalOrderSearch, Room
from circinus.estimate.base import EPS
from circinus.plan.records import QueryPlan, Replicas, StagePlan
from circinus.search.placements import eligible_devices, replica_rate
from circinus.search.shortlist import Evaluated, admissible
from circinus.search.vectors import Vector
from circinus.spec.models import Device, Query

_TIERS = {"edge": 0, "cloud": 1}


@dataclass(frozen=True)
class JellyBeanPlan:
    """One plan of JellyBean's optimizer for a query, in its own terms."""

    vector: Vector
    accuracy: float | None
    assignment: Assignment
    """Workers per stage with the load each serves, and the cost in JellyBean's model."""


class MultiTierSearch(ArrivalOrderSearch):
    """Variant beam search + multi-tier worker assignment, in arrival order (module note)."""

    beam_width: ClassVar[int] = 10
    """Partial configuration vectors kept after each stage (``BEAM_SEARCH.BEST_K``)."""
    orders: ClassVar[int] = 10
    """Topological orders tried (``MAX_NUM_ASSIGN_ORDERS``)."""
    best_assignments: ClassVar[int] = 10
    """Assignments kept per order and in all (``BEST_K_ASSIGNMENTS``)."""

    def plans(self, query: Query, room: Room | None = None) -> list[JellyBeanPlan]:
        """JellyBean's plans of ``query`` on what ``room`` leaves (the empty world without),
        best first: lowest compute + communication cost, then highest accuracy."""
        index = self.estimator.index
        devices = eligible_devices(index, query, self.settings.tiers)
        feasible, _ = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        pipe = index.pipelines[query.pipeline]
        found = []
        for vector in self._beam(query, devices, feasible):
            configs = dict(zip(pipe.order, vector, strict=True))
            accuracy = self.estimator.accuracy(query.pipeline, configs)
            inst = self._instance(query, vector, devices, room)
            found += [JellyBeanPlan(vector, accuracy, a)
                      for a in assign(inst, orders=self.orders, best_k=self.best_assignments)]
        found.sort(key=lambda p: (p.assignment.cost, -(p.accuracy or 0.0)))
        return found

    def _plan(self, position: int, query: Query, room: Room | None
              ) -> tuple[list[Evaluated], str, str]:
        index = self.estimator.index
        tried: list[Evaluated] = []
        seen: set[QueryPlan] = set()
        found = self.plans(query, room)
        for jb in found:
            plan = self.query_plan(query, jb)
            if plan in seen:
                continue
            seen.add(plan)
            est = self.estimator.estimate(query, plan)
            tried.append((plan, est))
            if room is not None and room.fits(est) and admissible(
                    query, est, index=index, settings=self.settings):
                break  # JellyBean's choice: the rest need not be estimated
        return tried, f"among the {len(found)} assignments of its beam", (
            "placement: the multi-tier assignment finds workers for no variant in its beam")

    def query_plan(self, query: Query, jb: JellyBeanPlan) -> QueryPlan:
        """``jb`` in Circinus's records: per stage its workers' replicas at batch 1."""
        pipe = self.estimator.index.pipelines[query.pipeline]
        shares = dict(jb.assignment.shares)
        return QueryPlan(query.name, tuple(
            StagePlan(stage, config, 1,
                      tuple(sorted(Replicas(s.device, s.replicas) for s in shares[stage])))
            for stage, config in zip(pipe.order, jb.vector, strict=True)))

    def _instance(self, query: Query, vector: Vector, devices: Sequence[Device],
                  room: Room | None) -> Instance:
        """The workflow of ``query`` in configurations ``vector`` on what ``room`` leaves."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        configs = dict(zip(pipe.order, vector, strict=True))
        workers = {}
        for stage, config in configs.items():
            op = index.operators[pipe.operator_of[stage]]
            scale = query.work_scale.get(stage, 1.0)
            mine = []
            for d in devices:
                prof = op.profiles.get((config, d.hardware))
                rate = None if prof is None else replica_rate(prof, 1, scale)
                if prof is not None and rate is not None and prof.units <= d.units + EPS:
                    mine.append(Worker(d.name, d.site, _TIERS[index.sites[d.site].tier],
                                       rate * self.settings.max_utilization, prof.units,
                                       prof.memory_gb, prof.units * d.price_per_unit_hour))
            workers[stage] = tuple(mine)
        used = {} if room is None else room.used
        return Instance(
            stages=tuple(pipe.order),
            preds={s: tuple(pipe.preds[s]) for s in pipe.order},
            source_sites=dict(query.sources),
            source_tiers={s: _TIERS[index.sites[site].tier] for s, site in query.sources.items()},
            rate=query.rate_rps,
            workers=workers,
            message_kb={(p, s): self.estimator.message_kb(query.pipeline, p, configs)
                        for s in pipe.order for p in pipe.preds[s]},
            link_price={pair: link.price_per_gb for pair, link in index.links.items()},
            units={d.name: d.units - used.get(("device", d.name), 0.0) for d in devices},
            memory_gb={d.name: None if d.memory_gb is None
                       else d.memory_gb - used.get(("memory", d.name), 0.0) for d in devices},
        )

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


class MultiTierAloneSearch(MultiTierSearch):
    """JellyBean's optimizer with every query alone on the empty world, its admissible plans
    handed to a global selector (``jellybean+select``; see module note)."""

    online: ClassVar[bool] = False
    selector: ClassVar[str] = "milp"
