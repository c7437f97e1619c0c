"""The join pass: queries moved onto the shared deployments a selection opens.

NOTE: each query's candidates are its cheapest plans alone (:mod:`circinus.search`), which for
a loosely bound query run light configurations on deployments of their own; the selection can
only choose among them. Once it has chosen, the deployments it opens are known, and a query may
be cheaper on one of them: the heavier configuration other queries' floors open, for a share
of replicas paid for anyway, or a deployment of more replicas than its level needs, whose
pooled replicas wait less (Erlang's economy of scale). :func:`join_open` offers every query
such plans and moves it where the whole selection gets cheaper, or admits a query left out:

* per shared stage of the query's plan (the chosen one, else its cheapest candidate), the open
  deployments of the stage's operator on a device the query may use, and each of them at the
  other levels, with the query's floor from the fewest replicas its level needs up to the
  deployment's replicas; every combination of these (one changed stage first, then two, ...) up to
  :data:`PLANS_PER_QUERY`, at the query's accuracy bound, estimated by the search's estimator
  (the worst state of their levels, :mod:`circinus.estimate.analytic`), kept where they meet
  the SLO;
* the selection's exact ledger (:class:`~circinus.select.deployments.Ledger`) gives each
  move's change in cost in whole replicas and whether it fits every capacity; the best move of
  each query (an admission first, then the largest saving) is made if every admitted plan on
  the deployments and links it touches still meets its SLO estimated at the real state of
  the deployments as sized and at the links' utilisation (what the deployment check,
  :mod:`circinus.select.sizing`, checks), else the next best, up to :data:`TRIES`;
* rounds over every query until none moves, at most :data:`ROUNDS`, or the deadline.

The planner then runs the deployment check again over the moved selection. Only the chosen new
plans are left among the candidates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations, product

from circinus.estimate.analytic import AnalyticEstimator
from circinus.estimate.base import EPS, Estimate
from circinus.plan.records import DeploymentKey, QueryPlan, Replicas, StagePlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.search.placements import eligible_devices, levels, replica_rate
from circinus.select.base import Selection, SelectionProblem
from circinus.select.contention import utilisation
from circinus.select.deployments import DeploymentSpec, Ledger, ledger
from circinus.select.sizing import states
from circinus.spec.models import PlannerSettings, Query

PLANS_PER_QUERY = 48
"""Plans a round estimates at most per query."""
ROUNDS = 4
"""Rounds over every query at most."""
TRIES = 3
"""Moves of one query checked at the real state at most per round, best first."""
QUERIES = 2000
"""Queries a round looks at at most, in the order of :func:`_order`."""
EXTRA = 0
"""Replicas beyond the more of the fewest its level needs and the deployment's own that a
query's floor on an open deployment is offered at. With 2, seed 10 of the seeded shared tiny
worlds reaches the oracle (a low-rate query's floor at three replicas where the deployment
has one before others join it), but plans then hold floors above what their deployments'
load needs, which the nearest-SLO search (:mod:`circinus.whynot.nearest`) does not model: it
told a rejected query of a seeded world that no latency bound admits it where one does."""
GROUP_MEMBERS = 64
"""Deployments with more queries than this are not moved whole."""


@dataclass(frozen=True)
class JoinRecord:
    """What the join pass did."""

    moved: int
    """Moves made (a query admitted or moved to a cheaper plan)."""
    admitted: int
    """Of them, queries admitted that the selection left out."""
    offered: int
    """Plans estimated and offered beside the candidates."""
    rounds: int
    seconds: float
    complete: bool
    """Whether the pass reached a fixed point (no move left) before its bounds."""


def join_open(estimator: AnalyticEstimator, queries: Sequence[Query],
              problem: SelectionProblem, selection: Selection, settings: PlannerSettings, *,
              links: bool, deadline: float) -> tuple[SelectionProblem, Selection, JoinRecord]:
    """Run the join pass (module note) on ``selection`` of ``problem`` (the candidates of
    ``queries``, in order, found with ``estimator``) until ``deadline`` (a
    :func:`time.monotonic` instant). ``links``: check the admitted plans at their links'
    utilisation too. Returns the problem with the chosen new plans among the candidates, the
    selection and what was done."""
    start = time.monotonic()
    if not problem.deployments or start >= deadline:
        return problem, selection, JoinRecord(0, 0, 0, 0, 0.0, not problem.deployments)
    given = problem
    original = [len(qc.candidates) for qc in problem.candidates]
    table = problem.deployments
    book = ledger(problem, selection.chosen)
    moved = admitted = offered = rounds = 0
    complete = False
    memo: dict[tuple[object, ...], Estimate] = {}
    while rounds < ROUNDS and time.monotonic() < deadline:
        rounds += 1
        problem, targets = _targets(problem, book, levels(settings))
        _rebase(book, problem)
        made = 0
        order = _order(book)
        for q in order[:QUERIES]:
            if time.monotonic() >= deadline:
                break
            new = _offers(estimator, settings, queries[q], problem, book, q, targets, memo,
                          deadline)
            if new:
                offered += len(new)
                qc = problem.candidates[q]
                problem = _with(problem, q, replace(qc, candidates=(*qc.candidates, *new)))
                _rebase(book, problem)
            was = book.chosen.get(q)
            if _move(estimator, queries, book, q, queries[q], links=links):
                made += 1
                admitted += was is None
        else:
            if not made:
                made = _groups(estimator, queries, book, targets, links=links,
                               deadline=deadline)
            complete = not made and len(order) <= QUERIES and time.monotonic() < deadline
        moved += made
        if not made:
            break
    if not moved:  # the offers trimmed away: the problem given, with what it worked out
        return given, selection, JoinRecord(0, 0, offered, rounds, time.monotonic() - start,
                                            complete)
    chosen = [book.chosen.get(q) for q in range(len(queries))]
    cost = book.cost
    problem, chosen = _trimmed(problem, chosen, original, table)
    goodput = float(sum(problem.weights[q] for q, k in enumerate(chosen) if k is not None))
    bound = max(selection.goodput_bound, goodput)
    selection = replace(selection, chosen=tuple(chosen), goodput=goodput, cost_per_hour=cost,
                        goodput_bound=bound, gap=(bound - goodput) / bound if bound > EPS else 0.0)
    return problem, selection, JoinRecord(moved, admitted, offered, rounds,
                                          time.monotonic() - start, complete)


def _order(book: Ledger) -> list[int]:
    """The queries a round looks at, in order: those left out that have candidates and the
    admitted ones by the load of the least loaded deployment they are on, lightest first (a
    query alone on a light deployment pays most for its replicas; those without shared stages
    last), taken alternately."""
    problem = book.problem
    out = [q for q, qc in enumerate(problem.candidates)
           if q not in book.chosen and qc.candidates]
    light: list[tuple[float, int]] = []
    for q, k in book.chosen.items():
        joins = problem.candidates[q].candidates[k].estimate.deployment_load
        light.append((min((book.load.get(name, 0.0) for name, _ in joins), default=math.inf),
                      q))
    admitted = [q for _, q in sorted(light)]
    n = min(len(out), len(admitted))  # alternately: a pass its deadline cuts short has
    mixed = [q for i in range(n) for q in (out[i], admitted[i])]  # looked at both
    return mixed + out[n:] + admitted[n:]


def _with(problem: SelectionProblem, q: int, qc: QueryCandidates) -> SelectionProblem:
    """``problem`` with query ``q``'s candidates ``qc`` (more after the same ones), keeping
    what it worked out per estimate (:meth:`SelectionProblem.with_candidates`)."""
    return problem.with_candidates((*problem.candidates[:q], qc, *problem.candidates[q + 1:]))


def _rebase(book: Ledger, problem: SelectionProblem) -> None:
    """Point ``book`` at ``problem``, whose candidates extend those of its own (the same
    indices), with more deployments in its table."""
    book.problem = problem
    book.table = problem.deployments


def _offers(estimator: AnalyticEstimator, settings: PlannerSettings, query: Query,
            problem: SelectionProblem,
            book: Ledger, q: int, open_by_op: dict[str, list[str]],
            memo: dict[tuple[object, ...], Estimate], deadline: float) -> list[Candidate]:
    """The plans of query ``q`` that put its shared stages on open deployments (module note),
    none among its candidates, each meeting its SLO alone within every capacity; those
    estimated until ``deadline``."""
    qc = problem.candidates[q]
    if not qc.candidates:
        return []
    k = book.chosen.get(q)
    base = qc.candidates[0 if k is None else k].plan.stages
    index = estimator.index
    pipe = index.pipelines[query.pipeline]
    eligible = {d.name for d in eligible_devices(index, query, settings.tiers)}
    options: list[list[StagePlan]] = []
    for st in base:
        here = [st]
        if st.level is not None:
            op = index.operators[pipe.operator_of[st.stage]]
            rate = pipe.rate(query, st.stage)
            scale = query.work_scale.get(st.stage, 1.0)
            for name in open_by_op.get(op.spec.name, ()):
                key = problem.deployments[name].key
                if key.device not in eligible:
                    continue
                prof = op.profiles.get((key.config, index.devices[key.device].hardware))
                per = None if prof is None else replica_rate(prof, key.batch, scale)
                if per is None or prof is None:
                    continue
                fewest = max(1, math.ceil(rate / (per * key.level) - EPS))
                most = int(index.devices[key.device].units // prof.units) if prof.units > 0 \
                    else fewest
                now = book.replicas.get(name, 0)
                for count in range(fewest, min(most, max(fewest, now) + EXTRA) + 1):
                    option = StagePlan(st.stage, key.config, key.batch,
                                       (Replicas(key.device, count),), key.level)
                    if option != st:
                        here.append(option)
        options.append(here)
    known = {c.plan.stages for c in qc.candidates}
    top = max(problem.deployments[name].level for name in problem.deployments)
    cap = problem.capacity
    out: list[Candidate] = []
    tried = 0
    for seen, stages in enumerate(_combinations(options)):
        if tried >= PLANS_PER_QUERY or seen >= 4 * PLANS_PER_QUERY or (
                tried % 8 == 7 and time.monotonic() >= deadline):
            break
        if stages in known:
            continue
        known.add(stages)
        floor = query.slo.min_accuracy
        if floor is not None:
            acc = estimator.accuracy(query.pipeline, {s.stage: s.config for s in stages})
            if acc is None or acc < floor - EPS:
                continue
        tried += 1
        plan = QueryPlan(query.name, stages)
        key_ = estimator.estimate_key(query, plan)
        est = memo.get(key_)
        if est is None:
            est = memo[key_] = estimator.estimate(query, plan)
        if not est.meets(query.slo) or est.max_utilization > top + EPS:
            continue
        if any(v > cap[r] + EPS for r, v in est.usage().items() if r in cap):
            continue
        if any(name not in problem.deployments for name, _ in est.deployment_load):
            continue  # (only open deployments are offered; a guard for the ledger)
        out.append(Candidate(plan, est))
    return out


def _targets(problem: SelectionProblem, book: Ledger, ladder: Sequence[float]
             ) -> tuple[SelectionProblem, dict[str, list[str]]]:
    """Per operator, the deployments a shared stage of it may move to: every open one of
    ``book``, each of them at the other levels of ``ladder`` (its queries may move to one
    whole, :func:`_groups`), those added to ``problem``'s table, and the table's deployments
    of the same configuration and device at another batch size."""
    table: dict[str, DeploymentSpec] = dict(problem.deployments)
    out: dict[str, list[str]] = {}
    places = {(s.key.operator, s.key.config, s.key.device) for name, s in table.items()
              if book.replicas.get(name, 0) > 0}
    for name, n in sorted(book.replicas.items()):
        if n <= 0:
            continue
        spec = problem.deployments[name]
        for level in ladder:
            key = spec.key if abs(level - spec.key.level) <= EPS else DeploymentKey(
                spec.key.operator, spec.key.config, spec.key.device, spec.key.batch, level)
            if key.resource not in table:
                table[key.resource] = replace(spec, key=key)
            names = out.setdefault(key.operator, [])
            if key.resource not in names:
                names.append(key.resource)
    for name, spec in sorted(problem.deployments.items()):  # other batch sizes there
        key = spec.key
        if (key.operator, key.config, key.device) in places:
            names = out.setdefault(key.operator, [])
            if name not in names:
                names.append(name)
    if len(table) > len(problem.deployments):
        problem = replace(problem, deployments=table)
    return problem, out


def _combinations(options: Sequence[Sequence[StagePlan]]) -> Iterator[tuple[StagePlan, ...]]:
    """The stage plans with one stage changed from the first option of each, then two, ..."""
    base = tuple(o[0] for o in options)
    changeable = [i for i, o in enumerate(options) if len(o) > 1]
    for r in range(1, len(changeable) + 1):
        for idxs in combinations(changeable, r):
            for picks in product(*(options[i][1:] for i in idxs)):
                stages = list(base)
                for i, st in zip(idxs, picks, strict=True):
                    stages[i] = st
                yield tuple(stages)


def _move(estimator: AnalyticEstimator, queries: Sequence[Query], book: Ledger, q: int,
          query: Query, *, links: bool) -> bool:
    """Move query ``q`` to its candidate that admits it, else lowers the cost most, and that
    keeps every touched plan within its SLO at the real state; whether it moved."""
    cands = book.problem.candidates[q].candidates
    k = book.chosen.get(q)
    if not cands or (k is not None and len(cands) < 2):
        return False
    before = book.cost
    if k is not None:
        book.remove(q)
    ranked = []
    for other in range(len(cands)):
        if other != k and book.fits(q, other):
            ranked.append((book.delta(q, other)[1], other))
    ranked.sort()
    for _, other in ranked[:TRIES]:
        book.add(q, other)
        better = k is None or book.cost < before - EPS * max(1.0, abs(before))
        if better and _all_valid(estimator, queries, book, [(q, k)], links=links):
            return True
        book.remove(q)
        if not better:
            break  # the rest cost no less
    if k is not None:
        book.add(q, k)
    return False


def _groups(estimator: AnalyticEstimator, queries: Sequence[Query], book: Ledger,
            targets: dict[str, list[str]], *, links: bool, deadline: float) -> int:
    """Move every query of an open deployment, the least loaded first, to one other
    deployment of its operator (another configuration, device or level, each query at the
    floor of least marginal cost), then every query with a candidate on that one to its
    cheapest candidate; keep the first
    such set of moves that lowers the cost and leaves every plan it touches within its SLO at
    the real state. Where a single move cannot pay (the first query to leave opens a
    deployment the others would share) a whole one can. The moves made (0 if none)."""
    problem = book.problem
    ops = {name: pipe.operator_of for name, pipe in estimator.index.pipelines.items()}
    joining: dict[str, set[int]] = {}  # per deployment, the queries with a candidate on it
    for q, qc in enumerate(problem.candidates):
        for c in qc.candidates:
            for d, _ in c.estimate.deployment_load:
                joining.setdefault(d, set()).add(q)
    for name in sorted(book.members, key=lambda n: (book.load.get(n, 0.0), n)):
        members = sorted(book.members.get(name, ()))
        if not members or len(members) > GROUP_MEMBERS:
            continue
        spec = problem.deployments[name]
        for target in targets.get(spec.key.operator, ()):
            if time.monotonic() >= deadline:
                return 0
            if target == name:
                continue
            options = {q: _onto(problem, book, q, ops[queries[q].pipeline], name, target)
                       for q in members}
            if not all(options.values()):
                continue
            before = book.cost
            log: list[tuple[int, int | None]] = []
            placed = True
            for q in members:
                log.append((q, book.chosen[q]))
                book.remove(q)
            for q in members:
                fits = [(book.delta(q, k)[1], k) for k in options[q] if book.fits(q, k)]
                if not fits:
                    placed = False
                    break
                book.add(q, min(fits)[1])
            if placed:
                for q in sorted(joining.get(target, ())):
                    k = book.chosen.get(q)
                    best = _cheapest(book, q)
                    if best is not None:
                        log.append((q, k))
                        if k is not None:
                            book.remove(q)
                        book.add(q, best)
            if placed and book.cost < before - EPS * max(1.0, abs(before)) and _all_valid(
                    estimator, queries, book, log, links=links):
                return len({q for q, _ in log})
            for q, k in reversed(log):
                if q in book.chosen:
                    book.remove(q)
                if k is not None:
                    book.add(q, k)
    return 0


def _onto(problem: SelectionProblem, book: Ledger, q: int, operator_of: Mapping[str, str],
          name: str, target: str) -> list[int]:
    """The candidates of query ``q`` that are its chosen plan with the stages on deployment
    ``name`` on deployment ``target`` instead (at any floor)."""
    cands = problem.candidates[q].candidates
    stages = cands[book.chosen[q]].plan.stages
    out = []
    for k, c in enumerate(cands):
        if k == book.chosen[q] or len(c.plan.stages) != len(stages):
            continue
        if all(_swap(operator_of, a, b, name, target) for a, b in zip(stages, c.plan.stages,
                                                                   strict=True)):
            out.append(k)
    return out


def _swap(operator_of: Mapping[str, str], old: StagePlan, new: StagePlan, name: str,
          target: str) -> bool:
    """Whether stage plan ``new`` is ``old`` with its deployment ``name`` (if on it) replaced
    by ``target``."""
    if _deployment(operator_of, old) != name:
        return old == new
    return _deployment(operator_of, new) == target


def _deployment(operator_of: Mapping[str, str], st: StagePlan) -> str | None:
    """The deployment a shared stage on one device joins (``None`` otherwise)."""
    if st.level is None or len(st.placement) != 1:
        return None
    return DeploymentKey(operator_of[st.stage], st.config, st.placement[0].device, st.batch,
                         st.level).resource


def _cheapest(book: Ledger, q: int) -> int | None:
    """The candidate of query ``q`` that admits it, else that lowers the cost most (``None``
    when none does)."""
    cands = book.problem.candidates[q].candidates
    k = book.chosen.get(q)
    if not cands or (k is not None and len(cands) < 2):
        return None
    back = 0.0
    if k is not None:
        back = -book.delta(q, k, -1)[1]
        book.remove(q)
    best: tuple[float, int] | None = None
    for other in range(len(cands)):
        if other != k and book.fits(q, other):
            cost = book.delta(q, other)[1]
            if best is None or cost < best[0]:
                best = (cost, other)
    if k is not None:
        book.add(q, k)
        if best is not None and best[0] >= back - EPS * max(1.0, abs(back)):
            best = None
    return None if best is None else best[1]


def _all_valid(estimator: AnalyticEstimator, queries: Sequence[Query], book: Ledger,
               log: Sequence[tuple[int, int | None]], *, links: bool) -> bool:
    """Whether, after the moves of ``log`` (query, candidate before), every admitted plan on a
    deployment or link a moved query left or joined meets its SLO at the real state of
    ``book``."""
    problem = book.problem
    touched: set[int] = set()
    rows: set[tuple[str, str]] = set()
    for q, old in log:
        touched.add(q)
        for k in (old, book.chosen.get(q)):
            if k is None:
                continue
            rows.update(book.rows(q, k))
            for name, _ in problem.candidates[q].candidates[k].estimate.deployment_load:
                touched |= book.members.get(name, set())
    load: dict[tuple[str, str], float] = {}
    if links:
        for r in rows:
            if r[0] == "link":
                touched |= book.holders.get(r, set())
        load = {pair: rho for pair, rho in utilisation(problem.capacity, book.used).items()
                if rho > 0}
    at_links = estimator.with_link_load(load) if load else estimator
    real = at_links.with_deployments(states(book))
    seen: dict[tuple[object, ...], bool] = {}
    for member in sorted(touched):
        k = book.chosen.get(member)
        if k is None:
            continue
        plan = problem.candidates[member].candidates[k].plan
        slo = queries[member].slo
        key = (*real.estimate_key(queries[member], plan), slo.latency_ms, slo.min_accuracy,
               slo.max_cost_per_hour)
        ok = seen.get(key)
        if ok is None:
            ok = seen[key] = real.estimate(queries[member], plan).meets(slo)
        if not ok:
            return False
    return True


def _trimmed(problem: SelectionProblem, chosen: list[int | None], original: Sequence[int],
             table: Mapping[str, DeploymentSpec]) -> tuple[SelectionProblem, list[int | None]]:
    """``problem`` with only the chosen ones of the plans the pass offered (past each query's
    ``original`` candidates), and ``chosen`` in its candidates; its deployments those of
    ``table`` (the problem's before the pass) and those the chosen new plans join."""
    cands = []
    out = list(chosen)
    kept = dict(table)
    for q, qc in enumerate(problem.candidates):
        keep = qc.candidates[:original[q]]
        k = chosen[q]
        if k is not None and k >= original[q]:
            keep = (*keep, qc.candidates[k])
            out[q] = len(keep) - 1
            for name, _ in qc.candidates[k].estimate.deployment_load:
                kept[name] = problem.deployments[name]
        cands.append(replace(qc, candidates=keep))
    return replace(problem, candidates=tuple(cands), deployments=kept), out
