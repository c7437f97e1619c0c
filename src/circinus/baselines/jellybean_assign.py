"""JellyBean's multi-tier worker assignment: a pure kernel over one workflow's instance.

NOTE: re-implemented from the description of JellyBean's optimizer (Wu et al., "JellyBean:
Optimizing Multi-Tier ML Inference Serving", MLSys'23, worker assignment; the published
configuration of its VQA instance is ``WORKER_ASSIGNMENT: STRATEGY multiple-tiers,
TIER_ALLOCATION_STRATEGY greedy, MAX_NUM_ASSIGN_ORDERS 10, BEST_K_ASSIGNMENTS 10``,
``data/real/jellybean-vqa/config.yaml``). Given each stage's configuration:

* the stages are assigned in up to ``orders`` topological orders; for each order a beam of the
  ``best_k`` cheapest partial assignments (compute + communication so far) is extended one
  stage at a time, and the ``best_k`` cheapest complete assignments over all orders are kept;
* a stage goes to a tier no lower than its inputs' highest tier; for each tier ``i`` from there
  up, it may use the free workers of every tier from its inputs' up to ``i`` (one extension of
  the beam per ``i``; its tier is then the highest of its workers');
* the workers of a stage are filled greedily (JellyBean's ``greedy`` tier allocation): if some
  worker of the lowest tier available can take the whole rate alone, the one with the lowest
  price + inbound communication cost does (ties: the lower throughput); otherwise workers are
  taken in increasing cost per request served (price + inbound communication at full
  throughput, over its throughput), each at its full throughput, the last one the remainder;
  after each pick, if some worker of the lowest tier left can take the remainder alone, the
  cheapest of them (price + inbound communication of the remainder) is next;
* a worker serves one replica per request at a time (batch 1; JellyBean's workers have no
  batching knob) at ``1000 / latency`` requests/s, and the load is split as filled (the first
  workers at their full throughput), not in proportion to throughput;
* communication cost of an edge = its traffic (rate x message size) split by the senders' and
  receivers' shares, times the link price between their sites in $/GB (GB/h from KB/s); a
  transfer from a higher tier to a lower one is forbidden (infinite cost: JellyBean's
  ``allow_backward_traffic=False``).

Generalisation to worlds with pools: a *worker* is a device; it gives a stage as many replicas
of the configuration's profile as its units and memory left allow (JellyBean's worker is one
machine for one operator: on its instance every device holds one replica, so a worker serves
one stage), its throughput is that many replicas' at the utilisation bound, and its price is
that of the replicas the assigned rate needs (``ceil(rate / replica rate)`` x units x price).
Topological orders are orders of the stages (placing a source is a no-op, so orders differing
only in where a source sits are one), enumerated in the pipeline's order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from circinus.estimate.analytic import KB_PER_S_TO_GB_PER_H
from circinus.estimate.base import EPS


@dataclass(frozen=True)
class Worker:
    """A device as a worker of one stage in one configuration."""

    device: str
    site: str
    tier: int
    """0 for the edge, 1 for the cloud."""
    rate: float
    """Requests per second one replica serves at batch 1, within the utilisation bound."""
    units: float
    """Units of the device one replica takes."""
    memory_gb: float
    price: float
    """$/h of one replica."""


@dataclass(frozen=True)
class Share:
    """What one worker does for a stage."""

    device: str
    replicas: int
    rps: float
    """Requests per second assigned to it."""


@dataclass(frozen=True)
class Instance:
    """One workflow to assign: a pipeline in fixed configurations, its rate and its workers."""

    stages: tuple[str, ...]
    """Stages in the pipeline's topological order."""
    preds: Mapping[str, tuple[str, ...]]
    """Inputs of each stage (sources or stages)."""
    source_sites: Mapping[str, str]
    """Site of each source."""
    source_tiers: Mapping[str, int]
    rate: float
    """Requests per second of the workflow: what every stage serves and every edge carries,
    unless :attr:`stage_rate` or :attr:`edge_rate` says otherwise."""
    workers: Mapping[str, tuple[Worker, ...]]
    """Per stage, the devices that can run it (in the world's device order)."""
    message_kb: Mapping[tuple[str, str], float]
    """Per edge ``(input, stage)``, the message size per request, KB."""
    link_price: Mapping[tuple[str, str], float]
    """$/GB between two distinct sites joined by a link (absent: unreachable)."""
    units: Mapping[str, float]
    """Units free on each device."""
    memory_gb: Mapping[str, float | None] = field(default_factory=dict)
    """Memory free on each device (absent or ``None``: not limited)."""
    stage_rate: Mapping[str, float] = field(default_factory=dict)
    """Requests per second a stage serves where it differs from :attr:`rate` (a branch's
    share, a fan-out's objects, a source's own rate)."""
    edge_rate: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """Messages per second on an edge ``(input, stage)`` where it differs from :attr:`rate`."""

    def rate_of(self, node: str) -> float:
        """Requests per second stage (or source) ``node`` handles."""
        return self.stage_rate.get(node, self.rate)

    def edge_rate_of(self, edge: tuple[str, str]) -> float:
        """Messages per second on ``edge``."""
        return self.edge_rate.get(edge, self.rate)

    def price(self, src_site: str, dst_site: str) -> float | None:
        """$/GB from one site to another (0 within a site, ``None`` when unreachable)."""
        return 0.0 if src_site == dst_site else self.link_price.get((src_site, dst_site))


@dataclass(frozen=True)
class Assignment:
    """A complete worker assignment and its cost in JellyBean's objective."""

    cost: float
    """Compute + communication, $/h."""
    compute: float
    shares: tuple[tuple[str, tuple[Share, ...]], ...]
    """Per stage (in the instance's order), its workers."""

    @property
    def communication(self) -> float:
        """Communication cost, $/h."""
        return self.cost - self.compute


@dataclass(frozen=True)
class _State:
    cost: float
    compute: float
    tiers: tuple[tuple[str, int], ...]
    shares: tuple[tuple[str, tuple[Share, ...]], ...]
    units: tuple[tuple[str, float], ...]
    """Units taken per device so far."""
    memory: tuple[tuple[str, float], ...]


def assign(inst: Instance, *, orders: int = 10, best_k: int = 10) -> list[Assignment]:
    """The ``best_k`` cheapest assignments of ``inst`` over ``orders`` topological orders
    (see the module note); empty when no order places every stage."""
    found: list[_State] = []
    for order in topological_orders(inst.stages, inst.preds, orders):
        beam = [_State(0.0, 0.0, (), (), (), ())]
        for stage in order:
            grown = [s for state in beam for s in _extend(inst, state, stage)]
            beam = sorted(grown, key=lambda s: s.cost)[:best_k]  # stable: ties keep order
        found += beam
    found.sort(key=lambda s: s.cost)
    out = []
    for state in found[:best_k]:
        shares = dict(state.shares)
        out.append(Assignment(state.cost, state.compute,
                              tuple((stage, shares[stage]) for stage in inst.stages)))
    return out


def topological_orders(stages: Sequence[str], preds: Mapping[str, Sequence[str]],
                       limit: int) -> Iterator[tuple[str, ...]]:
    """Up to ``limit`` topological orders of ``stages`` (inputs outside ``stages`` are taken as
    given), the first the order of ``stages`` itself, then in lexicographic order of
    positions."""
    inside = set(stages)
    need = {s: {p for p in preds[s] if p in inside} for s in stages}

    def walk(done: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if len(done) == len(stages):
            yield done
            return
        placed = set(done)
        for s in stages:
            if s not in placed and need[s] <= placed:
                yield from walk((*done, s))

    yield from itertools.islice(walk(()), limit)


def _extend(inst: Instance, state: _State, stage: str) -> Iterator[_State]:
    """The states placing ``stage`` next, one per highest tier allowed (module note)."""
    tiers = dict(state.tiers)
    done = dict(state.shares)
    inputs = inst.preds[stage]
    low = max(tiers.get(p, inst.source_tiers.get(p, 0)) for p in inputs)
    top = max((w.tier for w in inst.workers[stage]), default=-1)
    used = dict(state.units)
    memory = dict(state.memory)
    senders = {p: _senders(inst, p, done) for p in inputs}
    for highest in range(low, top + 1):
        free = []
        for w in inst.workers[stage]:
            room = _room(inst, w, used, memory)
            if (low <= w.tier <= highest and room >= 1
                    and all(inst.price(site, w.site) is not None
                            for p in inputs for site, _, _ in senders[p])):
                free.append((w, room))
        picked = _fill(inst, stage, free, senders)
        if picked is None:
            continue
        compute = sum(n * w.price for w, n, _ in picked)
        comm = _inbound(inst, stage, senders, [(w.site, w.tier, rps / inst.rate_of(stage))
                                               for w, _, rps in picked])
        new_used, new_memory = dict(used), dict(memory)
        for w, n, _ in picked:
            new_used[w.device] = new_used.get(w.device, 0.0) + n * w.units
            new_memory[w.device] = new_memory.get(w.device, 0.0) + n * w.memory_gb
        yield _State(
            state.cost + compute + comm, state.compute + compute,
            (*state.tiers, (stage, max(w.tier for w, _, _ in picked))),
            (*state.shares, (stage, tuple(Share(w.device, n, rps) for w, n, rps in picked))),
            tuple(sorted(new_used.items())), tuple(sorted(new_memory.items())))


def _room(inst: Instance, w: Worker, used: Mapping[str, float],
          memory: Mapping[str, float]) -> int:
    """Replicas of ``w`` that fit in what its device has left."""
    room = math.floor((inst.units.get(w.device, 0.0) - used.get(w.device, 0.0)) / w.units + EPS)
    cap = inst.memory_gb.get(w.device)
    if cap is not None and w.memory_gb > 0:
        room = min(room, math.floor((cap - memory.get(w.device, 0.0)) / w.memory_gb + EPS))
    return max(room, 0)


Sender = tuple[str, int, float]
"""``(site, tier, share of the requests)`` of one worker of an input (or of a source)."""


def _senders(inst: Instance, node: str, done: Mapping[str, tuple[Share, ...]]
             ) -> list[Sender]:
    if node in inst.source_sites:
        return [(inst.source_sites[node], inst.source_tiers[node], 1.0)]
    tier = {w.device: (w.site, w.tier) for w in inst.workers[node]}
    return [(*tier[s.device], s.rps / inst.rate_of(node)) for s in done[node]]


def _inbound(inst: Instance, stage: str, senders: Mapping[str, list[Sender]],
             receivers: Sequence[Sender]) -> float:
    """Communication cost, $/h, of the messages into ``stage`` split over ``receivers``;
    infinite when one goes from a higher tier to a lower one."""
    cost = 0.0
    for p, sent in senders.items():
        gb_h = inst.edge_rate_of((p, stage)) * inst.message_kb[p, stage] * KB_PER_S_TO_GB_PER_H
        for site_a, tier_a, share_a in sent:
            for site_b, tier_b, share_b in receivers:
                if tier_b < tier_a:
                    return math.inf
                price = inst.price(site_a, site_b)
                assert price is not None  # unreachable workers are not offered
                cost += gb_h * share_a * share_b * price
    return cost


def _fill(inst: Instance, stage: str, free: Sequence[tuple[Worker, int]],
          senders: Mapping[str, list[Sender]]) -> list[tuple[Worker, int, float]] | None:
    """JellyBean's greedy fill of ``stage`` from the ``free`` workers (with the replicas they
    can take): ``(worker, replicas, requests/s)`` per worker used, or ``None`` when they
    cannot serve the rate (module note)."""
    need = inst.rate_of(stage)

    def cap(item: tuple[Worker, int]) -> float:
        return item[0].rate * item[1]

    def cost(item: tuple[Worker, int], rps: float) -> float:
        w = item[0]
        replicas = max(1, math.ceil(rps / w.rate - EPS))
        return replicas * w.price + _inbound(inst, stage, senders,
                                             [(w.site, w.tier, rps / need)])

    def alone(items: Sequence[tuple[Worker, int]], rps: float, strict: bool
              ) -> list[tuple[Worker, int]]:
        lowest = min(w.tier for w, _ in items)
        return [i for i in items if i[0].tier == lowest
                and (cap(i) > rps + EPS if strict else cap(i) >= rps - EPS)]

    if not free:
        return None
    whole = alone(free, need, strict=False)
    if whole:
        ranked = sorted(whole, key=lambda i: (cost(i, need), cap(i)))
    else:
        ranked = sorted(free, key=lambda i: (cost(i, cap(i)) / cap(i), cost(i, cap(i))))
    picked: list[tuple[Worker, int, float]] = []
    got = 0.0
    while got < need - EPS and ranked:
        item = ranked.pop(0)
        rps = min(cap(item), need - got)
        picked.append((item[0], max(1, math.ceil(rps / item[0].rate - EPS)), rps))
        got += rps
        left = need - got
        if left > EPS and ranked:
            whole = alone(ranked, left, strict=True)
            if whole:
                ranked = sorted(whole, key=lambda i: (cost(i, left), cap(i)))
    return picked if got >= need - EPS else None
