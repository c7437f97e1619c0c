"""What the admitted queries leave of every capacity, and whether one more plan fits into it.

NOTE: with dedicated replicas, use adds up plan by plan: a plan fits iff, on every capacity
row, what the admitted plans use plus what it uses is within the capacity. With shared
deployments it does not: a candidate's device units and memory count its *share* of each
deployment it joins (``load / level`` replicas' worth), but a deployment grows by whole
replicas (:mod:`circinus.select.deployments`). A plan joining a deployment that has headroom
takes no extra units; one that needs one more replica there, or a new deployment, takes whole
replicas' units and memory. Then a plan fits iff adding it to the selection's exact
:class:`~circinus.select.deployments.Ledger` fits.

Example: a deployment of level 0.8 carrying load 1.0 has 2 replicas (headroom 0.6 busy
replicas). A plan putting 0.5 on it takes nothing more of its device, although its share says
0.625 replicas' worth; a plan putting 0.7 on it takes a third replica's units and memory.

A :class:`Residual` answers both ways (:meth:`Residual.additive`, :meth:`Residual.of`), so the
why-not code has one notion of "fits". Plans from outside the selection (a rejected query's
relaxed candidates, the plans of a plan space) may join deployments that no candidate of the
selection joins; their :class:`~circinus.select.deployments.DeploymentSpec` is built on demand
from the plans (:meth:`Residual.learn`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from circinus.estimate.analytic import DeploymentState
from circinus.estimate.base import EPS
from circinus.plan.records import DeploymentKey, QueryPlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.select.base import Resource, SelectionProblem
from circinus.select.deployments import DeploymentSpec, Ledger, deployment_table, ledger
from circinus.select.sizing import states
from circinus.spec.index import WorldIndex


@dataclass(frozen=True)
class Trial:
    """One plan added to what the admitted queries leave."""

    lacking: tuple[Resource, ...]
    """The capacity rows it would overflow, sorted; empty when it fits."""
    states: Mapping[str, DeploymentState]
    """When it fits: each shared deployment it joins, in the state it would be in with the
    plan on it (what its latency and cost then are). Empty when it joins none or does not fit."""

    @property
    def fits(self) -> bool:
        """Whether the plan fits."""
        return not self.lacking


class Residual:
    """What the admitted queries of a selection leave (see the module note).

    Build it with :meth:`additive` (use adds up: dedicated replicas) or :meth:`of` (a
    selection's exact ledger). ``capacity`` and ``used`` (exact, in whole replicas) are
    read-only for callers. It learns the specs of the deployments plans join (:meth:`learn`)
    and is not thread-safe.
    """

    def __init__(self, capacity: Mapping[Resource, float], used: Mapping[Resource, float], *,
                 book: Ledger | None = None, index: WorldIndex | None = None) -> None:
        assert book is None or index is not None, "a ledger needs the world to learn specs"
        self.capacity = dict(capacity)
        self.used = dict(used)
        self._book = book
        self._index = index
        self._table: dict[str, DeploymentSpec] = {} if book is None else dict(book.table)
        self._members: dict[int, int] = {} if book is None else {
            id(qc.candidates): q for q, qc in enumerate(book.problem.candidates)}
        self._lacking: dict[tuple[int, ...], list[tuple[Resource, ...]]] = {}
        """Rows the problem's own candidates overflow, by their estimates' identities."""
        self._headroom: dict[str, float] = {}
        self._spare: dict[tuple[str, str], list[tuple[DeploymentKey, float]]] = {}
        if book is not None:
            for name, n in book.replicas.items():
                spec = self._table[name]
                spare = n * spec.level - book.load.get(name, 0.0)  # load it can still take
                if n and spare > EPS:
                    dev = spec.key.device
                    self._headroom[dev] = (self._headroom.get(dev, 0.0)
                                           + spare / spec.level * spec.units)
                    self._spare.setdefault((spec.key.operator, dev), []).append(
                        (spec.key, spare))

    @classmethod
    def additive(cls, capacity: Mapping[Resource, float],
                 used: Mapping[Resource, float]) -> Residual:
        """What plans using ``used`` of ``capacity`` leave, use adding up plan by plan."""
        return cls(capacity, used)

    @classmethod
    def of(cls, problem: SelectionProblem, chosen: Sequence[int | None],
           index: WorldIndex) -> Residual:
        """What the candidates ``chosen`` (one index or ``None`` per query) of ``problem``
        leave of its capacities: exact, in whole replicas per shared deployment, when its
        candidates join any (``index`` is the world they are planned in); else additive."""
        if not problem.deployments:
            return cls.additive(problem.capacity, problem.use(chosen))
        book = ledger(problem, chosen)
        return cls(problem.capacity, book.used, book=book, index=index)

    @property
    def shared(self) -> bool:
        """Whether plans are added to a ledger of shared deployments (else use adds up)."""
        return self._book is not None

    def left(self, res: Resource) -> float:
        """What is left of ``res`` (infinite when it has no capacity)."""
        cap = self.capacity.get(res)
        return float("inf") if cap is None else cap - self.used.get(res, 0.0)

    def fits_usage(self, usage: Mapping[Resource, float]) -> bool:
        """Whether a plan using ``usage`` fits, use adding up (only for an additive residual:
        with shared deployments a usage alone does not say what a plan takes)."""
        assert not self.shared, "a usage alone does not say what a shared plan takes"
        cap, used = self.capacity, self.used
        return all(used.get(r, 0.0) + v <= cap[r] + EPS for r, v in usage.items() if r in cap)

    # -- shared deployments ------------------------------------------------------------------

    def headroom(self, device: str) -> float:
        """Units of ``device`` that loaded deployments on it hold beyond their load at their
        level (``replicas - load / level`` replicas' worth each): what plans may take of it
        by their shares without adding a replica. 0 for an additive residual."""
        return self._headroom.get(device, 0.0)

    def spare(self, operator: str, device: str) -> list[tuple[DeploymentKey, float]]:
        """The deployments of ``operator`` on ``device`` that have headroom, each with the load
        (busy replicas) it can still take without a replica more."""
        return self._spare.get((operator, device), [])

    def knows(self, name: str) -> bool:
        """Whether the spec of deployment ``name`` is known (:meth:`spec`)."""
        return name in self._table

    def spec(self, name: str) -> DeploymentSpec:
        """The spec of deployment ``name`` (the selection's, or one learnt)."""
        return self._table[name]

    def sized(self, name: str) -> tuple[float, int]:
        """Load and replicas of deployment ``name`` now (``(0.0, 0)`` when none)."""
        if self._book is None:
            return 0.0, 0
        return self._book.load.get(name, 0.0), self._book.replicas.get(name, 0)

    def learn(self, pipeline: str, plans: Iterable[QueryPlan]) -> None:
        """Build the specs of the deployments ``plans`` (of queries on ``pipeline``) join
        that are not known yet."""
        if self._index is None:
            return
        fresh = [p for p in plans if any(st.level is not None for st in p.stages)]
        if fresh:
            table = deployment_table(self._index, fresh, [pipeline] * len(fresh))
            for name, spec in table.items():
                self._table.setdefault(name, spec)

    # -- trying plans ------------------------------------------------------------------------

    def lacking(self, candidates: Sequence[Candidate], pipeline: str | None = None
                ) -> list[tuple[Resource, ...]]:
        """Per candidate, the capacity rows it would overflow. ``pipeline`` (of the
        candidates' query) is needed only for candidates that are not the selection problem's
        own, to learn the deployments they join."""
        book = self._book
        if book is None:
            return [self._over(c.estimate.usage()) for c in candidates]
        q = self._members.get(id(candidates))
        if q is not None and book.problem.candidates[q].candidates is candidates:
            # What a rejected query's candidate would add depends on its estimate alone (the
            # ledger is not changed here): the rejected queries of a site and group share it.
            key = tuple(id(c.estimate) for c in candidates)
            hit = self._lacking.get(key)
            if hit is None:
                hit = self._lacking[key] = [_overflow(book, q, k)
                                            for k in range(len(candidates))]
            return list(hit)
        assert pipeline is not None, "candidates from outside the problem need their pipeline"
        return [t.lacking for t in self.trials(candidates, pipeline)]

    def trials(self, candidates: Sequence[Candidate], pipeline: str) -> list[Trial]:
        """Each candidate (of a query on ``pipeline``) added alone to what the admitted
        queries leave.

        With shared deployments the candidates are added to a copy of the selection's ledger
        (:meth:`Ledger.on <circinus.select.deployments.Ledger.on>`, the candidates appended
        as one more query) and the states of their
        deployments read off it (:func:`~circinus.select.sizing.states`)."""
        book = self._book
        if book is None:
            return [Trial(self._over(c.estimate.usage()), {}) for c in candidates]
        self.learn(pipeline, (c.plan for c in candidates))
        base = book.problem
        n = len(base.candidates)
        mine = QueryCandidates("", tuple(candidates), None, 0)
        probe = book.on(SelectionProblem((*base.candidates, mine), (*base.weights, 1.0),
                                         base.capacity, self._table))
        lacking = [_overflow(probe, n, k) for k in range(len(candidates))]
        out = []
        for k, (cand, rows) in enumerate(zip(candidates, lacking, strict=True)):
            joined = {name for name, _ in cand.estimate.deployment_load}
            now: dict[str, DeploymentState] = {}
            if joined and not rows:
                probe.add(n, k)
                now = {name: s for name, s in states(probe).items() if name in joined}
                probe.remove(n)
            out.append(Trial(rows, now))
        return out

    def _over(self, usage: Mapping[Resource, float]) -> tuple[Resource, ...]:
        """Rows a plan using ``usage`` overflows, use adding up."""
        cap, used = self.capacity, self.used
        return tuple(sorted(r for r, v in usage.items()
                            if r in cap and used.get(r, 0.0) + v > cap[r] + EPS))


def _overflow(book: Ledger, q: int, k: int) -> tuple[Resource, ...]:
    """Rows candidate ``k`` of query ``q`` would overflow if added to ``book`` (the rows
    :meth:`Ledger.fits` finds over)."""
    change, _ = book.delta(q, k)
    cap = book.problem.capacity
    return tuple(sorted(r for r, v in change.items() if v > 0 and r in cap and book.used.get(
        r, 0.0) + v > cap[r] * (1 + 0.5 * EPS) + 0.5 * EPS))
