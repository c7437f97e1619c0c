"""The online planner's state and the steps every event is made of.

NOTE: the state is every present query with its candidate set (an :class:`Entry`), the
candidate each admitted query runs, the exact :class:`~circinus.online.ledger.Ledger` of what
they use and the :class:`~circinus.online.guard.SloGuard` of their SLOs. Its steps keep two
invariants: no capacity is exceeded (in whole replicas per shared deployment), and every
admitted query runs one of its own candidates and meets its SLO at the current state.

* :meth:`OnlineState.admit_first` admits a query with its candidate of least *marginal* cost
  (what the ledger's cost grows by: its own costs, plus the replicas its load adds to its
  deployments) that fits, if the SLO check at the state it brings holds; else the next one.
* :meth:`OnlineState.admit_repaired` first moves up to ``max_moves`` admitted queries to other
  candidates of theirs (:mod:`~circinus.online.repair`, which weighs their shares of
  deployments); it stands only if the whole ledger then fits, the query is admitted and the
  SLO check of everything it changed holds, and is undone otherwise.
* :meth:`OnlineState.enforce` drops the admitted plans that miss their SLO after a change
  that may have hurt them (a departure from their deployments, a capacity change).
* :meth:`OnlineState.refill`, :meth:`OnlineState.relieve`, :meth:`OnlineState.drop_device`:
  waiting queries tried after room is freed, and the fit restored after a capacity change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from circinus.estimate.analytic import AnalyticEstimator
from circinus.estimate.base import EPS, Estimate
from circinus.online.guard import SloGuard, shared_links
from circinus.online.ledger import Ledger, Resource
from circinus.online.repair import Mover, Option, repair
from circinus.plan.records import QueryPlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.select.base import Selection, SelectionProblem
from circinus.select.deployments import DeploymentSpec, deployment_table
from circinus.select.sizing import excess
from circinus.spec.index import WorldIndex
from circinus.spec.models import Query

Select = Callable[[SelectionProblem], Selection]
"""A global selection over a problem (within the planner's time budget)."""


@dataclass(frozen=True)
class Entry:
    """A present query: its spec, candidates, and each candidate's use and repair option."""

    query: Query
    found: QueryCandidates
    options: tuple[Option, ...]

    @staticmethod
    def of(query: Query, found: QueryCandidates) -> Entry:
        """The entry of ``query`` with the candidates ``found``."""
        return Entry(query, found, tuple(
            Option(k, c.estimate.usage(), c.estimate.cost_per_hour)
            for k, c in enumerate(found.candidates)))


class OnlineState:
    """The state of an online planner and its steps (see the module note).

    Args:
        index: the world's devices and links (no queries needed).
        link_check: check admissions at the shared links' utilisation (the settings').
        max_moves: admitted queries one admission's repair may move.

    ``entries``, ``chosen``, ``ledger`` and ``guard`` are read by the planner; they change only
    through the steps. After a capacity change the planner calls :meth:`rebuild`.
    """

    def __init__(self, index: WorldIndex, estimator: AnalyticEstimator, *, link_check: bool,
                 max_moves: int) -> None:
        self.entries: dict[str, Entry] = {}
        """Every present query, in arrival order."""
        self.chosen: dict[str, int] = {}
        """Admitted query -> the index of the candidate it runs."""
        self.ledger = Ledger(index.capacities)
        self.guard = SloGuard(link_check=link_check)
        self.max_moves = max_moves
        self._mover_memo: dict[str, tuple[int, Mover]] = {}
        self._blocked: dict[str, frozenset[Resource]] = {}
        """Waiting query -> what kept its every candidate from fitting at its last try."""
        self.rebuild(index, estimator)

    def rebuild(self, index: WorldIndex, estimator: AnalyticEstimator) -> None:
        """Take ``index``'s capacities, and estimate with ``estimator`` (of ``index``), from
        now on."""
        self.index, self.estimator = index, estimator
        self.ledger.capacity = dict(index.capacities)
        self._blocked.clear()

    # -- admission ---------------------------------------------------------------------------

    def admit_first(self, entry: Entry) -> int | None:
        """Admit ``entry`` with its candidate of least marginal cost that fits what is left and
        passes the SLO check at the state it brings (:mod:`~circinus.online.guard`), trying
        the next one while the check fails; the candidate's index, or ``None`` (then the query
        waits)."""
        name = entry.query.name
        if entry.options:
            self.guard.forget(name)  # blamed only by its latest try
        ranked, blocked = self.fitting(name, entry)
        for k in ranked:
            self.admit(name, k)
            usage = entry.options[k].usage
            if self.holds(name, usage, self.ledger.deployments(name)):
                return k
            self.release(name)
            blocked.update(usage)  # it may pass once the state of any of these changes
        self._blocked[name] = frozenset(blocked)
        return None

    def fitting(self, name: str, entry: Entry) -> tuple[list[int], set[Resource]]:
        """``entry``'s candidates that fit what is left in whole replicas, least marginal cost
        first (ties: the search's order, which is by cost); and what blocks the others: the
        capacities they would overflow and the deployments they join (with more room there,
        they may need fewer new replicas)."""
        ranked = []
        blocked: set[Resource] = set()
        for opt in entry.options:
            marginal, over = self.ledger.trial(name, opt.index)
            if over:
                blocked.update(over)
                blocked.update(r for r in opt.usage if r[0] == "deployment")
            else:
                ranked.append((marginal, opt.index))
        return [k for _, k in sorted(ranked)], blocked

    def note_waiting(self) -> None:
        """Remember what blocks every waiting query none of whose candidates fits (as
        :meth:`admit_first` does), so that :meth:`refill` tries it only once that changes."""
        for name, entry in self.entries.items():
            if name not in self.chosen and entry.options:
                ranked, blocked = self.fitting(name, entry)
                if not ranked:
                    self._blocked[name] = frozenset(blocked)

    def admit_repaired(self, entry: Entry) -> tuple[int, tuple[str, ...]] | None:
        """Admit ``entry`` after a local repair, if one makes room in whole replicas and passes
        the SLO check: its candidate's index and the moved queries; else ``None`` with nothing
        changed."""
        fixed = self.repair_for(entry)
        if fixed is None:
            return None
        k, moves = fixed
        name = entry.query.name
        undo = [(n, self.chosen[n]) for n, _ in moves]
        touched = {d for n, _ in moves for d in self.ledger.deployments(n)}
        moved = self.apply(moves)
        if not self.ledger.over() and self.ledger.marginal(name, k) is not None:
            self.admit(name, k)
            usage = dict(entry.options[k].usage)
            for n, j in moves:
                usage.update(self.entries[n].options[j].usage)
                touched.update(self.ledger.deployments(n))
            touched.update(self.ledger.deployments(name))
            if self.holds(name, usage, touched):
                return k, moved
            self.release(name)
        self.apply(undo)
        return None

    def admit(self, name: str, k: int) -> None:
        """Admit ``name`` with its candidate ``k`` (no check)."""
        self.ledger.add(name, k)
        self.chosen[name] = k
        self.guard.forget(name)
        self._blocked.pop(name, None)

    def release(self, name: str) -> None:
        """Take the admitted ``name``'s plan off (it waits)."""
        del self.chosen[name]
        self.ledger.remove(name)

    def apply(self, moves: Sequence[tuple[str, int]]) -> tuple[str, ...]:
        """Move each admitted query of ``moves`` to its candidate (no check); the names."""
        for name, k in moves:
            self.release(name)
            self.admit(name, k)
        return tuple(name for name, _ in moves)

    def repair_for(self, entry: Entry) -> tuple[int, list[tuple[str, int]]] | None:
        """A candidate of ``entry`` and the moves that make room for it, or ``None``. The
        repair kernel weighs a move by the candidates' own use and shares of deployments (exact
        for dedicated replicas); the caller checks the result in whole replicas."""
        name = entry.query.name
        cap, used = self.ledger.capacity, self.ledger.used
        for opt in entry.options:
            need = {r: v for r, v in self.ledger.delta(name, opt.index)[0].items() if v > 0}
            if any(v > cap[r] + EPS for r, v in need.items() if r in cap):
                continue  # larger than the resource itself (after a cut)
            short = [r for r, v in need.items()
                     if r in cap and used.get(r, 0.0) + v > cap[r] + EPS]
            moves = repair(need, cap, used, self.movers(short), max_moves=self.max_moves)
            if moves:
                return opt.index, moves
        return None

    def movers(self, resources: Iterable[Resource]) -> list[Mover]:
        """The admitted holders of ``resources`` that have other candidates (memoised per
        query and current candidate: a mover's moves change only when it moves)."""
        names = dict.fromkeys(n for r in resources for n in self.ledger.holders(r))
        out = []
        for name in names:
            k = self.chosen[name]
            memo = self._mover_memo.get(name)
            if memo is None or memo[0] != k:
                memo = self._mover_memo[name] = (k, Mover.of(name, self.entries[name].options, k))
            if memo[1].moves:
                out.append(memo[1])
        return out

    def refill(self, freed: set[Resource] | None, relieved: set[Resource] | None = None
               ) -> tuple[str, ...]:
        """Admit waiting queries that now fit, heaviest first (ties: arrival order); with
        ``freed`` (what a departure held), only those with a candidate using one of those
        resources, and with ``relieved`` (the capacities now less used and the deployments
        with more room), of those tried before only those that one of these blocked then
        (:meth:`admit_first`; for the others nothing changed)."""
        waiting = [e for n, e in self.entries.items() if n not in self.chosen and e.options]
        if freed is not None:
            waiting = [e for e in waiting if any(r in freed for o in e.options for r in o.usage)]
        if relieved is not None:
            blocked = self._blocked
            waiting = [e for e in waiting
                       if not blocked.get(e.query.name, relieved).isdisjoint(relieved)]
        waiting.sort(key=lambda e: -e.query.weight)
        return tuple(e.query.name for e in waiting if self.admit_first(e) is not None)

    # -- the SLO check -----------------------------------------------------------------------

    def holds(self, name: str, usage: Mapping[Resource, float],
              deployments: Iterable[str]) -> bool:
        """The SLO check of an admission of ``name`` just booked (and of the moves made for it),
        which changed ``deployments`` and the shared links of ``usage``: whether every admitted
        plan on them still meets its SLO at the new state (if so, their estimates become the
        ones at that state); if not, ``name`` is blamed."""
        changed = set(deployments)
        names = self.guard.affected(self.ledger, usage, changed)
        if not names:
            return True
        names = {name: None, **names} if name in names else names  # the likeliest to miss
        loaded = self.guard.at(self.estimator, self.ledger)
        fresh = self.guard.recheck(loaded, names, self.running, to_first_miss=True)
        miss = {n: est for n, est in fresh.items() if not est.meets(self.entries[n].query.slo)}
        if not miss:
            for n, est in fresh.items():
                self.set_estimate(n, est)
            return True
        on = [d for m in miss if not self.slowed(m, miss[m], loaded)
              for d in self.ledger.deployments(m) if d in changed]
        if on or not shared_links(self.ledger, usage):
            self.guard.blame_deployment(name, on[0] if on else sorted(changed)[0])
        else:
            self.guard.blame(name, self.ledger, usage)
        return False

    def slowed(self, name: str, estimate: Estimate, loaded: AnalyticEstimator) -> bool:
        """Whether admitted ``name``, estimated at ``loaded`` as ``estimate``, misses its
        latency bound and crosses a slowed link (so its links are to blame)."""
        return "latency" in estimate.violations(self.entries[name].query.slo) and any(
            loaded.slowdown(*pair) > 1.0 for pair, _ in estimate.link_mbps)

    def enforce(self, deployments: Iterable[str], links: Iterable[Resource]
                ) -> list[tuple[str, int]]:
        """Drop the admitted plans on ``deployments`` (whose state changed) and on the shared
        ``links`` that miss their SLO at the current state; the others get their estimates at
        it. Plans on no shared deployment are dropped at once (that only lowers link loads);
        of the others the one missing by most goes first and its co-tenants are checked again
        (its leaving changes their deployments). Returns the dropped queries and the candidates
        they ran, in order."""
        changed = set(deployments)
        names = self.guard.affected(self.ledger, links, changed)
        dropped: list[tuple[str, int]] = []
        while names:
            loaded = self.guard.at(self.estimator, self.ledger)
            fresh = self.guard.recheck(loaded, names, self.running)
            miss = {n: est for n, est in fresh.items()
                    if not est.meets(self.entries[n].query.slo)}
            for n, est in fresh.items():
                if n not in miss:
                    self.set_estimate(n, est)
            if not miss:
                break
            out = [n for n in miss if not self.ledger.deployments(n)] or [max(
                miss, key=lambda n: excess(miss[n], self.entries[n].query.slo))]
            left: set[str] = set()
            for n in out:
                deps = self.ledger.deployments(n)
                usage = self.entries[n].options[self.chosen[n]].usage
                if deps and not (self.slowed(n, miss[n], loaded)
                                 and shared_links(self.ledger, usage)):
                    self.guard.blame_deployment(n, next((d for d in deps if d in changed),
                                                        deps[0]))
                else:
                    self.guard.blame(n, self.ledger, usage)
                left.update(deps)
                dropped.append((n, self.chosen[n]))
                self.release(n)
            changed |= left
            names = dict.fromkeys(n for n in miss if n in self.chosen)
            names.update(self.guard.affected(self.ledger, (), left))
        return dropped

    # -- capacity changes --------------------------------------------------------------------

    def drop_device(self, device: str) -> tuple[list[str], list[str]]:
        """Drop every candidate using ``device``; returns the admitted queries that ran on it
        (released) and the queries left without candidates."""
        res = ("device", device)
        displaced, emptied = [], []
        for name, entry in list(self.entries.items()):
            keep = [o.index for o in entry.options if res not in o.usage]
            if len(keep) == len(entry.options):
                continue
            k = self.chosen.get(name)
            if k is not None:
                self.release(name)
            found = entry.found
            reason = found.reason or f"placement: its every plan used the removed device {device}"
            self.enter([(entry.query, QueryCandidates(
                found.query, tuple(found.candidates[j] for j in keep),
                None if keep else reason, found.evaluations))], table={})
            if k is not None and k in keep:
                self.admit(name, keep.index(k))
            elif k is not None:
                displaced.append(name)
            if not keep:
                emptied.append(name)
        self.ledger.prune(device)
        return displaced, emptied

    def relieve(self, select: Select) -> None:
        """Bring every resource back within its capacity after a cut: move holders of the
        resources over it to other candidates (the repair rule, unbounded); failing that,
        release them all and admit the choice of ``select`` among them alone (which may leave
        some waiting)."""
        over = self.ledger.over()
        if not over:
            return
        movers = self.movers(over)
        moves = repair({}, self.ledger.capacity, self.ledger.used, movers,
                       max_moves=max(self.max_moves, len(movers)))
        if moves is not None:
            undo = [(n, self.chosen[n]) for n, _ in moves]
            self.apply(moves)
            if not self.ledger.over():
                return
            self.apply(undo)  # the moves' shares of deployments did not add up to replicas
        names = list(dict.fromkeys(n for r in over for n in self.ledger.holders(r)))
        for n in names:
            self.release(n)
        used = self.ledger.used
        left = {r: max(0.0, c - used.get(r, 0.0)) for r, c in self.ledger.capacity.items()}
        # The selector weighs shares of deployments, not whole replicas: its picks are admitted
        # where they fit exactly, the others wait.
        problem = SelectionProblem(tuple(self.entries[n].found for n in names),
                                   tuple(self.entries[n].query.weight for n in names), left)
        sel = select(problem)
        assert sel.fits(problem), "selector returned a selection over capacity"
        for n, k in zip(names, sel.chosen, strict=True):
            if k is not None and self.ledger.marginal(n, k) is not None:
                self.admit(n, k)

    # -- entries -----------------------------------------------------------------------------

    def enter(self, found: Sequence[tuple[Query, QueryCandidates]],
              table: Mapping[str, DeploymentSpec] | None = None) -> None:
        """Make ``found`` (queries not admitted, with their candidates) the present entries;
        ``table``: their candidates' shared deployments, if known."""
        if table is None:
            plans = [c.plan for _, qc in found for c in qc.candidates]
            pipes = [q.pipeline for q, qc in found for _ in qc.candidates]
            table = deployment_table(self.index, plans, pipes)
        self.ledger.grow(table)
        for query, qc in found:
            self.entries[query.name] = Entry.of(query, qc)
            self._mover_memo.pop(query.name, None)
            self._blocked.pop(query.name, None)
        self.ledger.enter(qc for _, qc in found)

    def forget(self, name: str) -> tuple[str, ...]:
        """Remove the present query ``name``, releasing its plan; returns the shared
        deployments it was on."""
        left: tuple[str, ...] = ()
        if name in self.chosen:
            left = self.ledger.deployments(name)
            self.release(name)
        self.ledger.leave(name)
        del self.entries[name]
        self._mover_memo.pop(name, None)
        self._blocked.pop(name, None)
        self.guard.forget(name)
        return left

    def running(self, name: str) -> tuple[Query, Candidate]:
        """The admitted ``name``'s spec and the candidate it runs."""
        entry = self.entries[name]
        return entry.query, entry.found.candidates[self.chosen[name]]

    def set_estimate(self, name: str, estimate: Estimate) -> None:
        """Record ``estimate`` for the plan admitted ``name`` runs (same plan and use)."""
        entry, k = self.entries[name], self.chosen[name]
        cands = list(entry.found.candidates)
        cands[k] = Candidate(cands[k].plan, estimate)
        self.entries[name] = replace(entry, found=replace(entry.found, candidates=tuple(cands)))

    def goodput(self, names: Iterable[str]) -> float:
        """Weight of the queries ``names``."""
        return sum(self.entries[n].query.weight for n in names)

    def plans(self) -> dict[str, QueryPlan]:
        """The plan of every admitted query."""
        return {n: self.entries[n].found.candidates[k].plan for n, k in self.chosen.items()}

    def diff(self, before: Mapping[str, QueryPlan]
             ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """(moved, admitted, evicted) since ``before`` (plans of the then admitted queries)."""
        now = self.plans()
        moved = tuple(n for n in self.entries if n in now and n in before and now[n] != before[n])
        admitted = tuple(n for n in self.entries if n in now and n not in before)
        evicted = tuple(n for n in self.entries if n in before and n not in now)
        return moved, admitted, evicted
