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

* JellyBean plans one workflow, whose input streams share its workers. A bench world has many
  queries: those with the same pipeline, sources, accuracy floor and work form one workflow
  (their rates summed; a query or operator asking for dedicated replicas is a workflow of its
  own), and :class:`MultiTierSearch` (``jellybean``) plans the workflows in the order their
  first query arrives, each on the workers the earlier ones left
  (:class:`~circinus.baselines.online.Room`); :class:`MultiTierAloneSearch`
  (``jellybean-alone``, the bench's ``jellybean+select``) plans each workflow on the empty world
  and hands every admissible plan of its queries to Circinus's global selector.
* A plan is written in Circinus's records: per stage the workflow's workers at batch 1, as
  shared deployments holding the query's part of each worker's replicas (JellyBean's workers
  serve every stream of the workflow), at the busiest utilisation level at which the query is
  admissible (JellyBean has no notion of levels), or as the workers' own replicas where the
  stage is dedicated. Circinus's estimator splits a stage's load over its devices in proportion
  to their throughput where JellyBean fills the first workers at full throughput, so the
  bench's cost of a JellyBean plan (estimated) can differ from JellyBean's own figure
  (:attr:`JellyBeanPlan.assignment`), which the reproduction test checks on its instance.
* Latency is not part of JellyBean's objective. Its plans are taken in its order of cost and
  the first under which every query of the workflow meets its SLO (latency included, by
  Circinus's estimator) and fits is the workflow's plan; when none is, the one admitting most
  of them (its queries taken in arrival order while they fit): as generous as JellyBean can be
  made without changing its objective.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from circinus.baselines.jellybean_assign import Assignment, Instance, Worker, assign
from circinus.baselines.online import ArrivalOrderSearch, Room
from circinus.estimate.base import EPS
from circinus.estimate.flow import at_rate, flow_of, stage_rates
from circinus.plan.records import QueryPlan, Replicas, StagePlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.search.placements import eligible_devices, is_shared, levels, replica_rate
from circinus.search.shortlist import Evaluated, admissible
from circinus.search.vectors import Vector
from circinus.spec.models import Device, Query

_TIERS = {"edge": 0, "cloud": 1}
_UNPLACED = "placement: the multi-tier assignment finds workers for no variant in its beam"


def _placed(room: Room, members: Sequence[Query], plans: Sequence[Evaluated],
            ok: Sequence[bool]) -> list[Evaluated]:
    """The plans of the admissible members (``ok``) that fit what ``room`` leaves, taken in
    arrival order, each on what the ones before it left."""
    trial = room.copy()
    out = []
    for member, (plan, est), good in zip(members, plans, ok, strict=True):
        if good and trial.fits(member, plan, est):
            trial.take(member, plan, est)
            out.append((plan, est))
    return out


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

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        room = Room(self.estimator.index) if self.online else None
        groups: dict[tuple[object, ...], list[int]] = {}
        for q, query in enumerate(queries):
            groups.setdefault(self._workflow(query), []).append(q)
        out: dict[int, QueryCandidates] = {}
        for members in groups.values():  # in order of their first query's arrival
            out.update(self._plan_workflow([queries[q] for q in members], members, room))
        return [out[q] for q in range(len(queries))]

    def _workflow(self, query: Query) -> tuple[object, ...]:
        """The workflow ``query`` belongs to: its pipeline, sources, accuracy floor and work,
        when every stage may share deployments; else its own."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        if not all(is_shared(self.settings, query, index.operators[pipe.operator_of[s]].spec)
                   for s in pipe.order):
            return ("alone", query.name)
        return (query.pipeline, tuple(sorted(query.sources.items())), query.slo.min_accuracy,
                tuple(sorted(query.work_scale.items())),
                tuple(sorted(query.source_rate_rps.items())),
                tuple(sorted(query.source_output_kb.items())))

    def _plan_workflow(self, members: Sequence[Query], positions: Sequence[int],
                       room: Room | None) -> dict[int, QueryCandidates]:
        """Plan one workflow (its members' rates summed) and give each member its plan
        (online: the first of JellyBean's plans under which every member is admissible and
        fits, else the one admitting most) or its admissible plans (offline)."""
        index = self.estimator.index
        total = sum(m.rate_rps for m in members)
        n = len(members)  # (they share their sources' own rates: one workflow carries them all)
        rep = members[0].model_copy(update={
            "rate_rps": total,
            "source_rate_rps": {s: n * r for s, r in members[0].source_rate_rps.items()}})
        found = self.plans(rep, room)
        scope = f"among the {len(found)} assignments of its workflow's beam"
        per: list[list[Evaluated]] = [[] for _ in members]
        best: tuple[int, int] | None = None  # (admitted members, -rank)
        chosen: list[Evaluated] | None = None
        for rank, jb in enumerate(found):
            ests = []
            for m, member in enumerate(members):
                for level in levels(self.settings):  # the busiest at which it is admissible
                    plan = self.query_plan(member, jb, rep, level)
                    est = self.estimator.estimate(member, plan)
                    per[m].append((plan, est))
                    if admissible(member, est, index=index, settings=self.settings):
                        break
                ests.append(per[m][-1])
            if room is None:
                continue
            ok = [admissible(member, est, index=index, settings=self.settings)
                  for member, (_, est) in zip(members, ests, strict=True)]
            placed = _placed(room, members, ests, ok)
            score = (len(placed), -rank)
            if best is None or score > best:
                best, chosen = score, placed
            if len(placed) == len(members):
                break  # JellyBean's choice: the rest need not be estimated
        placeable_alone = room is not None and not found and bool(self.plans(rep, None))
        out = {}
        for m, (member, q) in enumerate(zip(members, positions, strict=True)):
            # The workflow's work, billed to its first member (the sum over queries is all).
            evaluations = sum(len(p) for p in per) if m == 0 else 0
            if room is not None and not found and placeable_alone:
                qc = QueryCandidates(member.name, (), (
                    "capacity: the multi-tier assignment finds no workers left for its "
                    "workflow once the queries before it are placed"), 0)
            elif room is None or not found:
                qc = self._offline(member, per[m], scope, _UNPLACED)
            else:
                mine = [e for e in (chosen or []) if e[0].query == member.name]
                if mine:
                    room.take(member, *mine[0])
                    qc = QueryCandidates(member.name, (Candidate(*mine[0]),), None, 0)
                else:
                    qc = self._offline(member, per[m], scope, _UNPLACED)
                    if qc.candidates:  # some plan met its SLO, not the one its workflow got
                        qc = QueryCandidates(member.name, (), (
                            f"capacity: its workflow's plan ({scope}) leaves it out; none of "
                            "the plans meeting its SLO fits what the queries before it left"), 0)
            out[q] = QueryCandidates(qc.query, qc.candidates, qc.reason, evaluations)
        return out

    def _plan(self, position: int, query: Query, room: Room | None
              ) -> tuple[list[Evaluated], str, str]:
        found = self.plans(query, room)
        tried = [(plan, self.estimator.estimate(query, plan))
                 for plan in dict.fromkeys(self.query_plan(query, jb, query, level)
                                           for jb in found
                                           for level in levels(self.settings))]
        return tried, f"among the {len(found)} assignments of its beam", _UNPLACED

    def query_plan(self, query: Query, jb: JellyBeanPlan, workflow: Query,
                   level: float) -> QueryPlan:
        """``jb`` (planned for ``workflow``, the query standing for the workflow's summed
        rates) in Circinus's records for one of its queries: per stage its workers at batch 1,
        as shared deployments at utilisation ``level`` holding the query's part of each
        worker's replicas (its part of the stage's rate; at least one), or as the workers'
        replicas when the stage is dedicated."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        shares = dict(jb.assignment.shares)
        configs = dict(zip(pipe.order, jb.vector, strict=True))
        mine = stage_rates(pipe, index.operators, query, configs)
        whole = stage_rates(pipe, index.operators, workflow, configs)
        stages = []
        for stage, config in configs.items():
            shared = is_shared(self.settings, query,
                               index.operators[pipe.operator_of[stage]].spec)
            part = mine[stage] / whole[stage]
            placement = tuple(sorted(
                Replicas(s.device, max(1, math.ceil(s.replicas * part - EPS)) if shared
                         else s.replicas) for s in shares[stage]))
            stages.append(StagePlan(stage, config, 1, placement, level if shared else None))
        return QueryPlan(query.name, tuple(stages))

    def _instance(self, query: Query, vector: Vector, devices: Sequence[Device],
                  room: Room | None) -> Instance:
        """The workflow of ``query`` in configurations ``vector`` on what ``room`` leaves."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        configs = dict(zip(pipe.order, vector, strict=True))
        flow = flow_of(pipe, index.operators, configs)
        stage_rate = stage_rates(pipe, index.operators, query, configs)
        edge_rate = {(p, s): pipe.rate(at_rate(query, flow.edge[p, s]), p)
                     for s in pipe.order for p in pipe.preds[s]}
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
        # Free workers as JellyBean sees them: the headroom of shared deployments counts as
        # free (its worker assignment cannot join a deployment); the room checks the result.
        used = {} if room is None else room.shares
        return Instance(
            stages=tuple(pipe.order),
            preds={s: tuple(pipe.preds[s]) for s in pipe.order},
            source_sites=dict(query.sources),
            source_tiers={s: _TIERS[index.sites[site].tier] for s, site in query.sources.items()},
            rate=query.rate_rps,
            workers=workers,
            message_kb={(p, s): self.estimator.message_kb(query.pipeline, p, configs,
                                                          query=query)
                        for s in pipe.order for p in pipe.preds[s]},
            link_price={pair: link.price_per_gb for pair, link in index.links.items()},
            units={d.name: d.units - used.get(("device", d.name), 0.0) for d in devices},
            memory_gb={d.name: None if d.memory_gb is None
                       else d.memory_gb - used.get(("memory", d.name), 0.0) for d in devices},
            stage_rate={s: r for s, r in stage_rate.items() if r != query.rate_rps},
            edge_rate={e: r for e, r in edge_rate.items() if r != query.rate_rps},
        )

    def _beam(self, query: Query, devices: Sequence[Device],
              feasible: Sequence[Vector]) -> list[Vector]:
        """The surviving complete vectors, cheapest compute cost estimate first."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        prefixes = {v[:n] for v in feasible for n in range(len(v) + 1)}
        beam: list[tuple[float, Vector]] = [(0.0, ())]
        fan = pipe.fanout_stage
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

            def visits(vector: Vector, stage: str = stage) -> float:
                """The stage's requests per request of the query, for a prefix ``vector``
                (its rate as the estimator gives it: branches, objects, a source's rate)."""
                k = 1.0
                if fan is not None and stage in pipe.scope:
                    k = index.operators[pipe.operator_of[fan]].fanout[
                        vector[pipe.order.index(fan)]][0]
                return pipe.rate(at_rate(query, pipe.visits(k)[0][stage]), stage) / (
                    query.rate_rps)

            grown = [(cost + costs[c] * visits(vector), (*vector, c)) for cost, vector in beam
                     for c in costs if (*vector, c) in prefixes]
            # Stable sort: ties keep beam order, then the operator's configuration order.
            beam = sorted(grown, key=lambda item: item[0])[:self.beam_width]
        return [vector for _, vector in beam]


class MultiTierAloneSearch(MultiTierSearch):
    """JellyBean's optimizer with every query alone on the empty world, its admissible plans
    handed to a global selector (``jellybean+select``; see module note)."""

    online: ClassVar[bool] = False
    selector: ClassVar[str] = "milp"
