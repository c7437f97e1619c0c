"""INFaaS-style baseline: per query, the cheapest variant meeting the SLO, one tier at a time.

NOTE: follows INFaaS (Romero et al., "INFaaS: Automated Model-less Inference Serving", ATC'21):
for each query it picks the cheapest model variant (and hardware, and batch size) whose profiled
latency meets the query's latency bound and whose accuracy meets its accuracy bound (its variant
selection), with no view of the other queries and no notion of splitting a pipeline across
tiers; variants run as shared, autoscaled deployments (its autoscaler adds replicas of a variant
as the load of every query routed to it grows). Here, per query, each tier is considered on its
own: the edge tier is the devices at the query's source sites, the cloud tier every cloud device
it reaches (both within ``settings.tiers``). A stage runs on one device of the tier, at any
profiled batch size, with the fewest replicas that keep utilisation under the bound; where the
world shares deployments (``planner.sharing``), it joins the shared deployment of its variant at
one of the utilisation levels (its autoscaler's target), whose replicas the selection sizes for
the aggregate load (the autoscaled variant). For an accuracy-feasible configuration vector,
placements are tried in increasing order of compute cost (a best-first walk over the per-stage
options) and the first admissible one is the vector's choice on that tier: the cheapest in
compute, and within one tier the network cost barely depends on the placement. Options that miss
the latency bound alone (their stage's mean sojourn above it, at SLO percentiles of 64 and
above, :data:`PRUNE_PERCENTILE`: the exhaustive search's exact prune) or overfill a device alone
are never part of an admissible plan and are left out, and so are vectors one of whose paths is
slower than the bound on its fastest options (only stages every request waits for once count
there: a stage a branch may skip, one after a fan-out or one fed by a source of its own rate
bounds nothing alone). Each stage is sized at its own rate, the query's times its visits per
request (:mod:`circinus.baselines.space`). The walk has no try cap: it ends at the first
admissible plan, when the options are exhausted, or when its cost bound reaches the
``candidates_per_query``-th cheapest choice already found (no later plan can be among the
choices). Vectors are taken in increasing order of their cheapest compute cost, and a tier stops
once no further vector can be among its ``candidates_per_query`` cheapest choices. The
candidates are the choices of both tiers, cheapest first (then
:func:`~circinus.search.shortlist.shortlist`'s dominance rule), so that first-come-first-served
admission falls back to the next variant or tier when the first does not fit. Pair it with the
``fcfs`` selector.

Departure: INFaaS selects per request and scales reactively; here the choice is made once per
query (a long-lived stream) and the replicas are sized for its planned rate.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import ClassVar

from circinus.baselines.space import PerQuerySearch, PlanSpace, plan_spaces
from circinus.estimate.base import EPS
from circinus.search.base import QueryCandidates
from circinus.search.placements import eligible_devices
from circinus.search.shortlist import Evaluated, admissible, no_candidate_reason, shortlist
from circinus.search.vectors import Vector
from circinus.spec.index import ConfigKey
from circinus.spec.models import Device, Query

PRUNE_PERCENTILE = 64.0
"""SLO percentiles at or above which a mean above the bound puts the percentile above it too
(gamma quantiles at or above 64 % are >= the mean): the latency prune is exact for them."""


class CheapestVariantSearch(PerQuerySearch):
    """Cheapest single-tier plan per configuration vector and tier (see module note)."""

    selector: ClassVar[str] = "fcfs"
    """Registry key of the selector this baseline is meant to run with."""

    def _tier_devices(self, query: Query) -> list[list[Device]]:
        """The devices of each tier the query may use alone (see module note)."""
        index = self.estimator.index
        origins = set(query.sources.values())
        out = []
        for tier in ("edge", "cloud"):
            if tier in self.settings.tiers:
                devices = [d for d in eligible_devices(index, query, (tier,))
                           if tier == "cloud" or d.site in origins]
                if devices:
                    out.append(devices)
        return out

    def _search_one(self, position: int, query: Query) -> QueryCandidates:
        index = self.estimator.index
        vectors, best_accuracy = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        chosen: list[Evaluated] = []
        tried: list[Evaluated] = []
        self._cut = False
        for devices in self._tier_devices(query):
            # (One space per configuration of a fan-out stage, each holding its vectors.)
            for space in plan_spaces(index, self.settings, query, devices, single_device=True,
                                     fewest_replicas=True):
                chosen += self._walk_tier(query, space, vectors, tried)
        scope = "single-tier plans, one device per stage"
        unplaced = (f"placement: no single device of one tier can serve every stage at "
                    f"{query.rate_rps:g} req/s")
        found = shortlist(query, chosen, index=index, settings=self.settings,
                          best_accuracy=best_accuracy, evaluations=len(tried), scope=scope,
                          unplaced=unplaced)
        if found.candidates:
            return found
        if not tried and self._cut and vectors and query.slo.latency_ms is not None:
            reason = (f"latency: every plan at the required accuracy has a mean latency above "
                      f"{query.slo.latency_ms:g} ms ({scope})")
        else:
            reason = no_candidate_reason(query, [e for _, e in tried], best_accuracy, scope,
                                         unplaced=unplaced)
        return QueryCandidates(query.name, (), reason, len(tried))

    def _walk_tier(self, query: Query, space: PlanSpace, vectors: Sequence[Vector],
                   tried: list[Evaluated]) -> list[Evaluated]:
        """The choices of one tier: vectors in increasing order of their cheapest compute cost,
        each with its first admissible plan, until no further vector can be among the
        ``candidates_per_query`` cheapest choices."""
        index = self.estimator.index
        slo = query.slo
        prune_ms = (slo.latency_ms if slo.latency_ms is not None
                    and slo.percentile >= PRUNE_PERCENTILE else math.inf)
        costs: dict[tuple[int, ConfigKey], list[tuple[float, int]]] = {}
        fastest: dict[tuple[int, ConfigKey], float] = {}
        pipe = index.pipelines[query.pipeline]
        # Only stages every request waits for, once each, bound its latency from below.
        prunable = space.certain - pipe.unwaited(query)
        for i, (stage, choices) in enumerate(zip(space.stages, space.choices, strict=True)):
            for config, options in choices:
                kept = []
                for k, o in enumerate(options):
                    st = self.estimator.stage(space.rated(query, i), stage, config, o.batch,
                                              o.placement, o.level)
                    if (stage in prunable and st.mean_s * 1e3 > prune_ms + EPS) or any(
                            u > index.devices[d].units + EPS for d, u in st.units):
                        self._cut = True  # misses the bound, or overfills a device, alone
                        continue
                    kept.append((st.cost_per_hour, k))
                    fastest[i, config] = min(fastest.get((i, config), math.inf), st.mean_s)
                if kept:
                    costs[i, config] = sorted(kept)
        position = {stage: i for i, stage in enumerate(space.stages)}

        def too_slow(v: Vector) -> bool:
            """Some path's stages take longer on their fastest options than the bound (the
            end-to-end mean is at least every path's; module note of the exhaustive search)."""
            slowest = max((sum(fastest[position[s], v[position[s]]] for s in path[1:])
                           for path in pipe.paths if prunable.issuperset(path[1:])),
                          default=0.0)
            if slowest * 1e3 > prune_ms + EPS:
                self._cut = True
                return True
            return False

        ranked = sorted(
            (sum(costs[i, c][0][0] for i, c in enumerate(v)), n, v)
            for n, v in enumerate(vectors)
            if all((i, c) in costs for i, c in enumerate(v)) and not too_slow(v)
        )
        limit = self.settings.candidates_per_query
        found: list[Evaluated] = []
        for floor, _, vector in ranked:
            if len(found) >= limit and floor >= found[limit - 1][1].cost_per_hour - EPS:
                break  # network cost is >= 0: this and every later vector cost at least floor
            ceiling = (found[limit - 1][1].cost_per_hour if len(found) >= limit
                       else float("inf"))
            best = self._cheapest(query, space, vector,
                                  [costs[i, c] for i, c in enumerate(vector)], tried, ceiling)
            if best is not None:
                found.append(best)
                found.sort(key=lambda item: item[1].cost_per_hour)
        return found

    def _cheapest(self, query: Query, space: PlanSpace, vector: Vector,
                  costs: Sequence[Sequence[tuple[float, int]]], tried: list[Evaluated],
                  ceiling: float = float("inf")) -> Evaluated | None:
        """The first admissible plan of ``vector`` in a best-first walk over its stages'
        options in increasing compute cost (``costs``: per stage ``(cost, option number)``,
        cheapest first; ties: smaller batches first), or ``None`` once the options are
        exhausted or their compute cost reaches ``ceiling`` (network cost is >= 0, so such a
        plan costs at least that); every plan estimated is appended to ``tried``."""
        index = self.estimator.index
        start = (0,) * len(costs)
        heap = [(sum(c[0][0] for c in costs), start)]
        seen = {start}
        while heap:
            bound, at = heapq.heappop(heap)
            if bound >= ceiling - EPS:
                break
            picks = [(config, space.options(s, config)[c[i][1]])
                     for s, (config, c, i) in enumerate(zip(vector, costs, at, strict=True))]
            plan = space.plan(query, picks)
            est = self.estimator.estimate(query, plan)
            tried.append((plan, est))
            if admissible(query, est, index=index, settings=self.settings):
                return plan, est
            for s in range(len(at)):
                nxt = (*at[:s], at[s] + 1, *at[s + 1:])
                if nxt[s] < len(costs[s]) and nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (bound + costs[s][nxt[s]][0] - costs[s][at[s]][0], nxt))
        return None
