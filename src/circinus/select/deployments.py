"""Shared deployments in the selection: whole replicas per deployment, sized for every query on it.

NOTE: a shared stage of a candidate puts a *load* (busy replicas) on each deployment it joins
(:class:`~circinus.plan.records.DeploymentKey`); a deployment of level ``l`` carrying load ``L``
needs ``R = ceil(L / l)`` replicas (:func:`replicas`), and at least the *floor* of each of its
queries (the replicas its latency estimate assumes, ``Estimate.deployment_floor``), each taking
its units and memory on the device and costing its units' price. Whole replicas make a
deployment's use of its device, and its cost, a step function of the queries on it, so a
selection's use is not the sum of its candidates' use. Each candidate carries its *share*,
``load / l`` replicas' worth (what the search and the relaxed selectors count: a valid
relaxation, since ``sum_q L_q / l <= R``), and :class:`Ledger` counts the real thing: per
deployment its load and replicas, per capacity row what the dedicated parts of the chosen
candidates use plus every deployment's replicas.

:func:`settle` makes any selection exact: while a row is over capacity in whole replicas, its
deployments are emptied (:func:`_consolidate`) or their last, partly loaded replicas unloaded
(:func:`_trim`) where the queries on them fit elsewhere, and otherwise the admitted query on it
whose removal frees the most of the row per unit of weight leaves; then
the queries left out are admitted best fit first (:func:`fill`): those that fit in the
headroom rounding up left on a deployment first, for nothing, then the one needing the least
new capacity.
On a selection that already fits it only adds queries. Used after every selector that works on
the relaxation (:mod:`circinus.select.lp`, :mod:`circinus.select.fcfs`); the MILP models whole
replicas itself (:mod:`circinus.select.shared_milp`).

Example: two queries each with load 0.3 on deployments of level 0.8 on a 1-unit box with one
unit per replica: relaxed, 0.375 + 0.375 = 0.75 units fit; on the same deployment they need
``ceil(0.6 / 0.8) = 1`` replica and fit, on two different ones 2 replicas and one must go.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from circinus.estimate.analytic import batch_service_ms
from circinus.estimate.base import EPS, Estimate
from circinus.plan.records import DeploymentKey, QueryPlan
from circinus.spec.index import WorldIndex

if TYPE_CHECKING:
    from circinus.select.base import Resource, Selection, SelectionProblem

LOAD_TOLERANCE = 1e-9
"""A deployment's load over its level within this of a whole number needs no extra replica."""


@dataclass(frozen=True)
class DeploymentSpec:
    """What one replica of a deployment takes and costs."""

    key: DeploymentKey
    units: float
    """Units of its device one replica takes."""
    memory_gb: float
    """Memory one replica takes, GB (weights are loaded once per replica)."""
    price_per_hour: float
    """Price of one replica for an hour, $ (its units x the device's unit price)."""
    batch_s: float
    """Service time of one batch at the profile's work (multiplier 1), s."""

    @property
    def level(self) -> float:
        """The utilisation the deployment is sized for."""
        return self.key.level


def replicas(load: float, level: float) -> int:
    """Fewest replicas that carry ``load`` busy replicas at no more than ``level`` utilisation
    (0 without load). Example: load 1.7 at level 0.8 needs 3 (1.7 / 0.8 = 2.125)."""
    if load <= EPS:
        return 0
    return max(1, math.ceil(load / level - LOAD_TOLERANCE))


def deployment_table(index: WorldIndex, plans: Sequence[QueryPlan],
                     pipelines: Sequence[str]) -> dict[str, DeploymentSpec]:
    """Every deployment the shared stages of ``plans`` (of queries on ``pipelines``) join, by
    resource name."""
    out: dict[str, DeploymentSpec] = {}
    for plan, pipeline in zip(plans, pipelines, strict=True):
        pipe = index.pipelines[pipeline]
        for st in plan.stages:
            if st.level is None:
                continue
            op = index.operators[pipe.operator_of[st.stage]]
            for rep in st.placement:
                key = DeploymentKey(op.spec.name, st.config, rep.device, st.batch, st.level)
                name = key.resource
                if name in out:
                    continue
                dev = index.devices[rep.device]
                prof = op.profiles[st.config, dev.hardware]
                ms = batch_service_ms(prof, st.batch)
                assert ms is not None, (name, st.batch)
                out[name] = DeploymentSpec(key, prof.units, prof.memory_gb,
                                           prof.units * dev.price_per_unit_hour, ms / 1000.0)
    return out


def own_use(estimate: Estimate, table: Mapping[str, DeploymentSpec]
            ) -> tuple[dict[tuple[str, str], float], float]:
    """What a plan uses and costs besides its shares of shared deployments: its dedicated
    replicas, links and network cost (the replicas' worth it holds of each deployment,
    :attr:`~circinus.estimate.base.Estimate.deployment_held`, taken out)."""
    use = estimate.usage()
    cost = estimate.cost_per_hour
    for name, held in estimate.deployment_held:
        spec = table[name]
        dev = spec.key.device
        use["device", dev] = use.get(("device", dev), 0.0) - held * spec.units
        if ("memory", dev) in use:
            use["memory", dev] -= held * spec.memory_gb
        cost -= held * spec.price_per_hour
        del use["deployment", name]
        use.pop(("deployment-floor", name), None)
    use = {r: v for r, v in use.items() if v > EPS}
    return use, max(cost, 0.0)


class Ledger:
    """Exact use and cost of a set of chosen candidates of a problem (see the module note).

    Mutable; :meth:`add` and :meth:`remove` keep it exact, :meth:`delta` looks ahead.
    """

    def __init__(self, problem: SelectionProblem) -> None:
        self.problem = problem
        self.table = problem.deployments
        self.used: dict[Resource, float] = {}
        self.load: dict[str, float] = {}
        self.replicas: dict[str, int] = {}
        self.rate: dict[str, float] = {}
        self.work: dict[str, float] = {}
        """Per deployment: sum of rate x multiplier of its requests."""
        self.work_sq: dict[str, float] = {}
        """Per deployment: sum of rate x multiplier^2."""
        self.burst: dict[str, float] = {}
        """Per deployment: sum of the fan-out bursts' excess dispersion (``Estimate.
        deployment_burst``)."""
        self.floors: dict[str, dict[int, int]] = {}
        """Per deployment: floor -> how many chosen candidates on it need that many replicas."""
        self.own_cost = 0.0
        self.chosen: dict[int, int] = {}
        self.holders: dict[Resource, set[int]] = {}
        """Per capacity row, the chosen queries holding part of it."""
        self.members: dict[str, set[int]] = {}
        """Per shared deployment, the chosen queries on it."""
        self._on_device: tuple[Mapping[str, DeploymentSpec], dict[str, list[str]]] | None = None
        """The table's deployments by device, with the table they are of."""

    def on(self, problem: SelectionProblem) -> Ledger:
        """A copy of this ledger for ``problem``, whose first queries are those of this
        ledger's problem with the same candidates (more may follow, and more deployments):
        what adding one of them would change, read off without building the ledger again or
        touching this one."""
        out = Ledger(problem)
        out.used, out.load, out.replicas = dict(self.used), dict(self.load), dict(self.replicas)
        out.rate, out.work, out.work_sq = dict(self.rate), dict(self.work), dict(self.work_sq)
        out.burst = dict(self.burst)
        out.floors = {name: dict(f) for name, f in self.floors.items()}
        out.own_cost = self.own_cost
        out.chosen = dict(self.chosen)
        out.holders = {r: set(qs) for r, qs in self.holders.items()}
        out.members = {name: set(qs) for name, qs in self.members.items()}
        return out

    def on_device(self, device: str) -> list[str]:
        """The shared deployments with chosen queries on ``device`` (of those the table has
        there, in its order: the repair asks this per row over capacity, of thousands)."""
        if self._on_device is None or self._on_device[0] is not self.table:
            by_device: dict[str, list[str]] = {}
            for name, spec in self.table.items():
                by_device.setdefault(spec.key.device, []).append(name)
            self._on_device = (self.table, by_device)
        return [name for name in self._on_device[1].get(device, ()) if name in self.members]

    def own(self, q: int, k: int) -> tuple[dict[Resource, float], float]:
        """:func:`own_use` of candidate ``k`` of query ``q`` (memoised by the problem)."""
        return self.problem.own(q, k)

    def delta(self, q: int, k: int, sign: int = 1) -> tuple[dict[Resource, float], float]:
        """The change in use of every row and in cost if candidate ``k`` of query ``q`` is
        added (``sign=1``) or removed (``-1``)."""
        rows, cost = self.own(q, k)
        # (the most called method of the fits and repairs: a plain copy where it can be)
        change = dict(rows) if sign == 1 else {r: sign * v for r, v in rows.items()}
        cost *= sign
        est = self.problem.candidates[q].candidates[k].estimate
        floors = est.deployment_floor
        floor = dict(floors) if floors else None
        for name, load in est.deployment_load:
            spec = self.table[name]
            now = self.replicas.get(name, 0)
            steps = self._size(name, self.load.get(name, 0.0) + sign * load,
                               floor.get(name, 1) if floor else 1, sign) - now
            if steps:
                dev = spec.key.device
                change["device", dev] = change.get(("device", dev), 0.0) + steps * spec.units
                if spec.memory_gb > 0:
                    change["memory", dev] = (change.get(("memory", dev), 0.0)
                                             + steps * spec.memory_gb)
                cost += steps * spec.price_per_hour
        return change, cost

    def _size(self, name: str, load: float, floor: int, sign: int) -> int:
        """Replicas of deployment ``name`` at ``load`` once a member with ``floor`` joins
        (``sign=1``) or leaves (``-1``)."""
        base = replicas(max(load, 0.0), self.table[name].level)
        if base == 0:
            return 0
        floors = self.floors.get(name, {})
        if floor <= base and (not floors or max(floors) <= base):
            return base  # no member's floor above what the load needs (the common case)
        top = max((f for f, n in floors.items()
                   if n > (1 if sign < 0 and f == floor else 0)), default=0)
        if sign > 0:
            top = max(top, floor)
        return max(base, top)

    def share(self, q: int, k: int, row: Resource) -> float:
        """What candidate ``k`` of query ``q`` holds of ``row``: its dedicated use plus its
        share of the replicas of its deployments there (``load / level`` each)."""
        est = self.problem.candidates[q].candidates[k].estimate
        held = self.own(q, k)[0].get(row, 0.0)
        kind, where = row
        if kind in ("device", "memory"):
            for name, load in est.deployment_load:
                spec = self.table[name]
                if spec.key.device == where:
                    held += load / spec.level * (spec.units if kind == "device"
                                                 else spec.memory_gb)
        return held

    def fits(self, q: int, k: int) -> bool:
        """Whether candidate ``k`` of query ``q`` can be added within every capacity."""
        return self.within(self.delta(q, k)[0])

    def within(self, change: Mapping[Resource, float]) -> bool:
        """Whether the change in use ``change`` (:meth:`delta`'s) keeps every capacity."""
        cap, used = self.problem.capacity, self.used
        for r, v in change.items():  # (a plain loop: asked of every option the fits weigh)
            if v > 0 and (limit := cap.get(r)) is not None and not (
                    used.get(r, 0.0) + v <= limit * (1 + 0.5 * EPS) + 0.5 * EPS):
                return False
        return True

    def add(self, q: int, k: int) -> None:
        """Choose candidate ``k`` for query ``q`` (which must have none)."""
        assert q not in self.chosen, q
        self._apply(q, k, 1)
        self.chosen[q] = k

    def remove(self, q: int) -> None:
        """Release query ``q``'s candidate."""
        self._apply(q, self.chosen.pop(q), -1)

    def rows(self, q: int, k: int) -> tuple[Resource, ...]:
        """The capacity rows candidate ``k`` of query ``q`` holds part of: its own use and the
        device (and memory) rows of the deployments it joins."""
        return _tally(self.problem, q, k)[2]

    def _apply(self, q: int, k: int, sign: int) -> None:
        change, _ = self.delta(q, k, sign)
        for r, v in change.items():
            self.used[r] = self.used.get(r, 0.0) + v
        _, cost, held, bursts, joins = _tally(self.problem, q, k)
        for r in held:
            if sign > 0:
                self.holders.setdefault(r, set()).add(q)
            else:
                self.holders[r].discard(q)
        for name, extra in bursts:
            self.burst[name] = max(self.burst.get(name, 0.0) + sign * extra, 0.0)
        for name, load, f, rate, work, work_sq in joins:
            if sign > 0:
                self.members.setdefault(name, set()).add(q)
            elif (members := self.members.get(name)) is not None:  # a name may repeat
                members.discard(q)
                if not members:
                    del self.members[name]
            left = self.load.get(name, 0.0) + sign * load
            self.replicas[name] = self._size(name, left, f, sign)
            self.load[name] = left if left > EPS else 0.0
            floors = self.floors.setdefault(name, {})
            floors[f] = floors.get(f, 0) + sign
            if floors[f] <= 0:
                del floors[f]
            self.rate[name] = max(self.rate.get(name, 0.0) + sign * rate, 0.0)
            self.work[name] = max(self.work.get(name, 0.0) + sign * work, 0.0)
            self.work_sq[name] = max(self.work_sq.get(name, 0.0) + sign * work_sq, 0.0)
        self.own_cost += sign * cost

    @property
    def cost(self) -> float:
        """Cost of the chosen candidates with whole replicas, $/h."""
        shared = sum(n * self.table[name].price_per_hour for name, n in self.replicas.items())
        return max(self.own_cost, 0.0) + shared

    def over(self) -> list[Resource]:
        """Capacity rows used beyond their capacity, most overfull first."""
        cap = self.problem.capacity
        rows = [(v / cap[r] - 1.0 if cap[r] > 0 else math.inf, r) for r, v in self.used.items()
                if r in cap and self.is_over(r)]
        return [r for _, r in sorted(rows, reverse=True)]

    def is_over(self, row: Resource) -> bool:
        """Whether capacity row ``row`` is used beyond its capacity (within :data:`EPS`)."""
        return self.used.get(row, 0.0) > self.problem.capacity[row] * (1 + EPS) + EPS


def ledger(problem: SelectionProblem, chosen: Sequence[int | None]) -> Ledger:
    """The :class:`Ledger` of ``chosen`` (a candidate index or ``None`` per query).

    Built in one pass: the sums of :meth:`Ledger.add` over the chosen candidates, each
    deployment sized once at the end (what adding them one by one gives, since a deployment's
    replicas depend only on its load and its members' floors), so that a ledger of 80,000
    admitted queries does not cost 80,000 looks ahead. What a candidate adds depends on its
    estimate alone (:func:`_tally`), and alike queries share their candidates' estimates: the
    chosen candidates are gathered by estimate and each estimate's sums are added once, times
    its queries: at 100,000 generated queries the 89,379 admitted after the first fit share
    15,501 estimates, and the ledger takes 0.38 s of CPU against 1.05 s query by query, with
    the same replicas, members and floors. The sums differ from one-by-one additions in their
    last bits at most (7e-12 units there)."""
    out = Ledger(problem)
    table = problem.deployments
    used, load, rate, work, work_sq = out.used, out.load, out.rate, out.work, out.work_sq
    holders, members, floors, burst = out.holders, out.members, out.floors, out.burst
    own_cost = 0.0
    cands = problem.candidates
    by_estimate: dict[int, tuple[int, int, list[int]]] = {}  # id -> (query, index, queries)
    for q, k in enumerate(chosen):
        if k is None:
            continue
        out.chosen[q] = k
        key = id(cands[q].candidates[k].estimate)
        hit = by_estimate.get(key)
        if hit is None:
            by_estimate[key] = (q, k, [q])
        else:
            hit[2].append(q)
    for q, k, queries in by_estimate.values():
        m = len(queries)
        own, cost, held, bursts, joins = _tally(problem, q, k)
        for r, v in own:
            used[r] = used.get(r, 0.0) + v * m
        own_cost += cost * m
        for r in held:
            holders.setdefault(r, set()).update(queries)
        for name, extra in bursts:
            burst[name] = burst.get(name, 0.0) + extra * m
        for name, amount, f, r_q, done, done_sq in joins:
            members.setdefault(name, set()).update(queries)
            load[name] = load.get(name, 0.0) + amount * m
            on = floors.setdefault(name, {})
            on[f] = on.get(f, 0) + m
            rate[name] = rate.get(name, 0.0) + r_q * m
            work[name] = work.get(name, 0.0) + done * m
            work_sq[name] = work_sq.get(name, 0.0) + done_sq * m
    out.own_cost = own_cost
    for name, total in load.items():
        if total <= EPS:
            load[name] = 0.0
        spec = table[name]
        n = replicas(max(total, 0.0), spec.level)
        n = max(n, max(out.floors[name])) if n else 0
        out.replicas[name] = n
        if n:
            dev = spec.key.device
            used["device", dev] = used.get(("device", dev), 0.0) + n * spec.units
            if spec.memory_gb > 0:
                used["memory", dev] = used.get(("memory", dev), 0.0) + n * spec.memory_gb
    return out


_Tally = tuple[tuple[tuple[tuple[str, str], float], ...], float, tuple[tuple[str, str], ...],
               tuple[tuple[str, float], ...],
               tuple[tuple[str, float, int, float, float, float], ...]]
"""What :func:`_tally` works out (rows are ``(kind, name)`` as :data:`~circinus.select.base.
Resource`)."""


def _tally(problem: SelectionProblem, q: int, k: int) -> _Tally:
    """What choosing candidate ``k`` of query ``q`` adds to a ledger, worked out once per
    distinct estimate: its own use (row, amount) and cost, the capacity rows it holds part of
    (:meth:`Ledger.rows`), its deployments' bursts, and per deployment it joins its load,
    floor, rate, work (rate x multiplier: load = rate x multiplier x batch time / batch, so
    rate x multiplier = load x batch / time) and work squared (rate x multiplier^2)."""
    def make(est: Estimate) -> _Tally:
        own, cost = problem.own(q, k)
        held = set(own)
        rates = dict(est.deployment_rate)
        floor = dict(est.deployment_floor)
        joins = []
        for name, amount in est.deployment_load:
            spec = problem.deployments[name]
            dev = spec.key.device
            held.update({("device", dev), ("memory", dev)})
            done = amount * spec.key.batch / spec.batch_s
            r_q = rates.get(name, 0.0)
            joins.append((name, amount, floor.get(name, 1), r_q, done,
                          done * (done / r_q if r_q > 0 else 1.0)))
        return (tuple(own.items()), cost,
                tuple(sorted(r for r in held if r in problem.capacity)),
                tuple(est.deployment_burst), tuple(joins))

    return problem.per_estimate(q, k, "tally", make)


def work_out(problem: SelectionProblem) -> None:
    """Work out what every distinct estimate of ``problem``'s candidates adds to a ledger
    (:func:`_tally`, and the own use it reads), ahead of the ledgers that will ask for it:
    for a caller with a core to spare meanwhile (the planner, while HiGHS solves the goodput
    LP: at 100,000 generated queries the fits to whole replicas after it looked up ~1 s of
    these for the first time)."""
    seen: set[int] = set()
    for q, qc in enumerate(problem.candidates):
        for k, cand in enumerate(qc.candidates):
            if id(cand.estimate) not in seen:
                seen.add(id(cand.estimate))
                _tally(problem, q, k)


def improve(problem: SelectionProblem, selection: Selection, *, deadline: float) -> Selection:
    """``selection`` at a lower exact cost, the same queries admitted, by local moves until none
    helps or ``deadline`` (a :func:`time.monotonic` instant) passes:

    * *emptying*: the queries on a deployment, the least loaded first, all move to other
      candidates (each to the one of least marginal cost that fits) if that lowers the cost:
      a replica kept for a few light queries is often not worth keeping (several levels or
      batch sizes of one configuration on one box, each with a replica at 10 % load);
    * *moving*: an admitted query moves to the candidate that lowers the cost most.
    """
    if not problem.deployments:
        return selection
    book = ledger(problem, selection.chosen)
    _improve(book, deadline)
    chosen = tuple(book.chosen.get(q) for q in range(len(problem.candidates)))
    if chosen == selection.chosen:
        return selection
    return replace(selection, chosen=chosen, cost_per_hour=book.cost)


def _improve(book: Ledger, deadline: float) -> None:
    """The moves of :func:`improve` on ``book`` until none helps or ``deadline`` passes."""
    moved = True
    while moved and time.monotonic() < deadline:
        moved = _empty(book, deadline) | _move(book, deadline)


def _empty(book: Ledger, deadline: float) -> bool:
    """The emptying moves of :func:`improve`; whether any was made."""
    made = False
    for name in sorted(book.members, key=lambda n: (book.load.get(n, 0.0), n)):
        if time.monotonic() >= deadline:
            break
        # as cheap with fewer deployments is better too: fewer for the engine to run
        made |= _empty_one(book, name, lambda: (book.cost, len(book.members)), relative=True)
    return made


CONSOLIDATE_UP_TO = 4
"""Replicas of the largest deployment :func:`_consolidate` tries to empty."""


def _consolidate(book: Ledger, row: Resource, deadline: float) -> None:
    """Free whole replicas on ``row`` (a device or its memory, over capacity) by emptying
    its deployments, the least loaded first: every query on one moves to the candidate of
    least marginal cost that fits elsewhere (another deployment with headroom, on this device
    or another, or another device), and the moves stand if the row's use falls. The
    relaxation spreads queries over many deployments of one device, each then rounded up to
    whole replicas (a generated world of 1,000 queries: 13 to 16 deployments per edge box, a
    few at 5-20 % of one replica); emptying some admits queries that removing would lose.
    Only deployments of at most :data:`CONSOLIDATE_UP_TO` replicas are tried: at 100,000
    generated queries 19 of 2,470 tries succeeded, 18 of them at three replicas or fewer, and
    the tries took most of the repair's time (each moves every query on the deployment and
    back); :func:`_trim` takes back a larger deployment's last replica instead."""
    on_row = [name for name in book.on_device(row[1])
              if book.replicas.get(name, 0) <= CONSOLIDATE_UP_TO]
    for name in sorted(on_row, key=lambda n: (book.load.get(n, 0.0), n)):
        if time.monotonic() >= deadline or not book.is_over(row):
            break
        _empty_one(book, name, lambda: (book.used.get(row, 0.0),))


TRIM_MEMBERS = 64
"""Queries of a deployment :func:`_trim` tries to move, at most."""


def _trim(book: Ledger, row: Resource, deadline: float) -> None:
    """Free whole replicas on ``row`` (a device or its memory, over capacity) by unloading the
    last replica of its deployments, the least loaded last replica first: queries on it move,
    the heaviest first, each to the cheapest of its other candidates that fits and adds
    nothing to the row (a deployment there with room in its replicas, or another device),
    until the deployment needs a replica less; the moves stand if the row's use fell, else
    they are undone. Where :func:`_consolidate` cannot empty a deployment, its rounding up
    (about half a replica per deployment: a generated box of 100,000 queries carries about
    20 deployments) can often still be taken back without leaving any query out."""
    def last(name: str) -> float:
        """Load on the deployment's last replica, in replicas (1: full; 0: held by a floor)."""
        spec = book.table[name]
        return book.load.get(name, 0.0) / spec.level - (book.replicas.get(name, 0) - 1)

    on_row = [name for name in book.on_device(row[1])
              if book.replicas.get(name, 0) > 0 and last(name) > 0]
    for name in sorted(on_row, key=lambda n: (last(n), n)):
        if time.monotonic() >= deadline or not book.is_over(row):
            break
        members = book.members.get(name)
        if not members:
            continue
        before, reps = book.used.get(row, 0.0), book.replicas[name]
        loads = _loads_on(book, members, name)
        moved: dict[int, int] = {}  # query -> its candidate before
        stuck: set[tuple[object, ...]] = set()  # classes of alike queries with nowhere to go
        for q in sorted(members, key=lambda m: (-loads[m], m))[:TRIM_MEMBERS]:
            if book.replicas.get(name, 0) < reps:
                break
            k = book.chosen[q]
            key = _alike(book.problem, q)
            if key in stuck:
                continue
            book.remove(q)
            options = []
            for other, cand in enumerate(book.problem.candidates[q].candidates):
                if other == k or any(d == name for d, _ in cand.estimate.deployment_load):
                    continue
                change, cost = book.delta(q, other)
                if change.get(row, 0.0) <= EPS and book.within(change):
                    options.append((cost, other))
            if not options:
                book.add(q, k)
                stuck.add(key)
                continue
            book.add(q, min(options)[1])
            moved[q] = k
        if book.replicas.get(name, 0) < reps and book.used.get(row, 0.0) < before - EPS:
            continue
        for q, k in moved.items():
            book.remove(q)
            book.add(q, k)


def _loads_on(book: Ledger, queries: Iterable[int], name: str) -> dict[int, float]:
    """The load each of the chosen ``queries`` puts on deployment ``name``, worked out once
    per estimate (alike queries share theirs)."""
    cands = book.problem.candidates
    chosen = book.chosen
    per: dict[int, float] = {}
    out = {}
    for q in queries:
        est = cands[q].candidates[chosen[q]].estimate
        load = per.get(id(est))
        if load is None:
            load = per[id(est)] = sum(v for d, v in est.deployment_load if d == name)
        out[q] = load
    return out


def _empty_one(book: Ledger, name: str, measure: Callable[[], tuple[float, ...]], *,
               relative: bool = False) -> bool:
    """Move every query on deployment ``name`` to the candidate of least marginal cost that
    fits and avoids it; keep the moves if all found one and ``measure()`` fell: its first
    figure by more than :data:`EPS` (relatively with ``relative``), or not at all and the next
    ones fell. Else undo them. Whether they were kept."""
    queries = sorted(book.members.get(name, ()))
    if not queries:
        return False
    before = measure()
    old = {q: book.chosen[q] for q in queries}
    for q in queries:
        book.remove(q)
    new: dict[int, int] = {}
    for q in queries:
        options = [(cost, k) for k, cand in enumerate(book.problem.candidates[q].candidates)
                   if all(d != name for d, _ in cand.estimate.deployment_load)
                   for change, cost in (book.delta(q, k),) if book.within(change)]
        if not options:
            break
        new[q] = min(options)[1]
        book.add(q, new[q])
    after = measure()
    tol = EPS * (max(1.0, abs(before[0])) if relative else 1.0)
    if len(new) == len(queries) and (after[0] < before[0] - tol or (
            after[0] <= before[0] + tol and after[1:] < before[1:])):
        return True
    for q in new:
        book.remove(q)
    for q, k in old.items():
        book.add(q, k)
    return False


def _move(book: Ledger, deadline: float) -> bool:
    """The single moves of :func:`improve`; whether any was made."""
    made = False
    for q in sorted(book.chosen):
        if time.monotonic() >= deadline:
            break
        k = book.chosen[q]
        n = len(book.problem.candidates[q].candidates)
        if n < 2:
            continue
        back = -book.delta(q, k, -1)[1]
        book.remove(q)
        best = (back - 1e-9 * max(1.0, abs(back)), k)  # others must be strictly cheaper
        for other in range(n):
            if other != k:
                change, cost = book.delta(q, other)
                if book.within(change):
                    best = min(best, (cost, other))
        book.add(q, best[1])
        made |= best[1] != k
    return made


def fill(book: Ledger, *, deadline: float = math.inf) -> None:
    """Admit queries left out while any fits, best fit first: in rounds, every query with a
    candidate that fits in the replicas already there (no new unit) is admitted with the
    cheapest such, heaviest first; then the one query whose candidate takes the least new
    capacity per unit of weight (units over the device's capacity, summed), which opens
    replicas that the next round's queries may fit into. A packing that joins deployments
    before it opens new ones is what whole replicas reward (the relaxation spreads queries over
    many deployments, each then rounded up).

    Alike queries (the same weight and estimates: a site's queries of one group) fit alike and
    score alike, so each class is looked at once per round: the first of them in query order,
    which wins their ties, for the best; all of them for the free ones. A class is scored again
    only when a query admitted since touched one of its candidates' rows (a candidate's fit and
    new capacity depend on those rows' use and on the deployments there alone): a round that
    admits one query looks again at the few classes that share its rows, not at every class
    (at 20,000 generated queries the repair after the link check admitted ~2,000 queries one
    round at a time)."""
    problem = book.problem
    weights = problem.weights
    cap = problem.capacity
    classes: dict[tuple[object, ...], list[int]] = {}
    for q in range(len(problem.candidates)):
        if q not in book.chosen and problem.candidates[q].candidates:
            classes.setdefault(_alike(problem, q), []).append(q)
    rows_of: dict[tuple[object, ...], frozenset[Resource]] = {}
    # per class: its best (score) among candidates needing new capacity, its free candidates
    scored: dict[tuple[object, ...], tuple[tuple[float, float, int, int] | None,
                                           list[tuple[float, int]]]] = {}
    dirty: set[Resource] | None = None  # rows touched since the last round; None: all
    while classes and time.monotonic() < deadline:
        for key, members in classes.items():
            q = members[0]
            if dirty is not None and key in scored and rows_of[key].isdisjoint(dirty):
                continue
            if key not in rows_of:
                rows_of[key] = frozenset(r for k in range(len(problem.candidates[q].candidates))
                                         for r in book.rows(q, k))
            best_here: tuple[float, float, int, int] | None = None
            free_here: list[tuple[float, int]] = []
            for k in range(len(problem.candidates[q].candidates)):
                change, cost = book.delta(q, k)
                if not book.within(change):
                    continue
                new = sum(v / cap[r] for r, v in change.items()
                          if v > EPS and r in cap and r[0] != "link" and cap[r] > 0)
                if new <= EPS:
                    free_here.append((cost, k))
                else:
                    score = (new / weights[q], cost, q, k)
                    if best_here is None or score < best_here:
                        best_here = score
            scored[key] = (best_here, free_here)
        dirty = set()
        free = [(cost, m, k) for key, members in classes.items()
                for cost, k in scored[key][1] for m in members]
        if free:
            taken = set()
            for _, q, k in sorted(free, key=lambda f: (-weights[f[1]], f[0], f[1])):
                if q not in taken and book.fits(q, k):
                    book.add(q, k)
                    taken.add(q)
                    dirty.update(book.rows(q, k))
            _leave(classes, taken)
            continue
        best = min((b for key in classes if (b := scored[key][0]) is not None), default=None)
        if best is None:
            break
        book.add(best[2], best[3])
        dirty.update(book.rows(best[2], best[3]))
        _leave(classes, {best[2]})


def _alike(problem: SelectionProblem, q: int) -> tuple[object, ...]:
    """The class of query ``q`` among queries alike (the same weight and candidates'
    estimates: they fit and score alike)."""
    return (problem.weights[q], *(id(c.estimate) for c in problem.candidates[q].candidates))


def _leave(classes: dict[tuple[object, ...], list[int]], taken: set[int]) -> None:
    """``classes`` without the queries ``taken`` (and the classes left empty)."""
    for key in [key for key, members in classes.items() if not taken.isdisjoint(members)]:
        members = [q for q in classes[key] if q not in taken]
        if members:
            classes[key] = members
        else:
            del classes[key]


def settle(problem: SelectionProblem, selection: Selection, *,
           deadline: float = math.inf, improve_by: float | None = None) -> Selection:
    r"""``selection`` made to fit in whole replicas, then filled (see the module note) and
    improved (:func:`improve`) until ``deadline`` (``improve_by`` for the moves to cheaper
    candidates, when earlier); its cost is the exact one. Without shared deployments it is
    returned as it is."""
    if not problem.deployments:
        return selection
    return repair(problem, selection, deadline=deadline, improve_by=improve_by)


def repair(problem: SelectionProblem, selection: Selection, *,
           deadline: float = math.inf, improve_by: float | None = None,
           complete: bool = False) -> Selection:
    r"""``selection`` made to fit ``problem`` locally: while a row is over capacity (in whole
    replicas where candidates join shared deployments), the admitted query on it whose removal
    frees the most of the row per unit of weight leaves; then the queries left out are
    admitted best fit first (:func:`fill`) and the admitted ones moved to cheaper candidates
    (:func:`improve`) until ``deadline`` (``improve_by`` for the moves, when earlier). With
    ``complete`` only the moves stop at the deadline: the selection is made to fit and filled
    to the end (each of the fill's rounds admits a query or ends it), so what it admits does
    not depend on the machine's load.

    What :func:`settle` does, for any problem: the link check calls it after it drops
    candidates or lowers a link's capacity, in place of a new selection, which at 20,000
    generated queries cost an LP over every query per round for the few thousand whose plans
    changed. The bound stays: the checks only remove, so the first selection's bound holds."""
    book = ledger(problem, selection.chosen)
    weights = problem.weights
    until = math.inf if complete else deadline
    while rows := book.over():
        row = rows[0]
        if row[0] in ("device", "memory"):
            _consolidate(book, row, until)
            if not book.is_over(row):
                continue
            _trim(book, row, until)
            if not book.is_over(row):
                continue
        # Whole replicas freed per weight; where no single query frees one, the share of the
        # row's replicas it holds (leaving, it brings a replica nearer to being freed). Ranked
        # once per row, then removed in that order until the row fits. Both depend on the
        # chosen candidate's estimate alone while the ledger stands: worked out once per
        # estimate (alike queries share theirs; a row holds thousands of queries).
        ranked = []
        cands = problem.candidates
        known: dict[int, tuple[float, float]] = {}  # by estimate (the problem holds each)
        for q in book.holders.get(row, ()):
            k = book.chosen[q]
            est = cands[q].candidates[k].estimate
            hit = known.get(id(est))
            if hit is None:
                hit = known[id(est)] = (book.delta(q, k, -1)[0].get(row, 0.0),
                                        book.share(q, k, row))
            freed, held = hit
            if held > EPS or freed < -EPS:
                ranked.append((-freed / weights[q], held / weights[q], -q))
        assert ranked, f"row {row} over capacity with nothing on it"
        for *_, neg_q in sorted(ranked, reverse=True):
            book.remove(-int(neg_q))
            if not book.is_over(row):
                break
    fill(book, deadline=until)
    goodput = float(sum(weights[q] for q in book.chosen))
    changed = tuple(book.chosen.get(q) for q in range(len(problem.candidates))) != (
        selection.chosen)
    # on the same ledger; it keeps the goodput
    _improve(book, deadline if improve_by is None else min(deadline, improve_by))
    chosen = tuple(book.chosen.get(q) for q in range(len(problem.candidates)))
    problem.keep(book)  # what the checks after it ask of this selection
    bound = max(selection.goodput_bound, goodput)
    return replace(selection, chosen=chosen, goodput=goodput, cost_per_hour=book.cost,
                   goodput_bound=bound, gap=(bound - goodput) / bound if bound > EPS else 0.0,
                   status=selection.status if not changed or selection.status != "optimal"
                   else "rounded")
