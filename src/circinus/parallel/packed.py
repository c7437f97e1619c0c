"""A chunk's candidates in a compact form for the way back: tables of plain values.

NOTE: a chunk's search answers many queries with the same plans and estimates (the members of
a group share their representative's, renamed to their sites), so its candidates hold a few
thousand distinct estimates and stage lists under hundreds of thousands of candidates. Pickled
as they are, every candidate travels as two objects (the candidate and its plan) and is built
again by the unpickler field by field, as a dictionary of its state; at 100,000 generated
queries (800,000 candidates) shipping them out of the workers and back in cost more than the
search itself on 2 workers (docs/scale.md). :func:`pack` writes instead:

* each distinct estimate once, as the tuple of its field values;
* each distinct stage list once, as tuples of plain values (a stage's configuration, batch,
  level and its replica groups);
* per query its name, reason and billed evaluations, and per candidate two integers: the
  positions of its stage list and of its estimate in those tables.

:func:`unpack` builds every distinct estimate and stage list once (and every distinct stage:
equal stages of different lists are one object) and each candidate from them, so the queries
that shared an estimate in the worker share one again; the result equals
what was packed (``unpack(pack(found)) == found``, checked by ``tests/parallel``). A plan
named after another query than its own (no search makes one) is carried by name.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Sequence
from dataclasses import dataclass, fields

from circinus.estimate.base import Estimate
from circinus.plan.records import QueryPlan, Replicas, StagePlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.spec.index import ConfigKey

_ESTIMATE_FIELDS = tuple(f.name for f in fields(Estimate))
"""Estimate's fields in order (its constructor's positional arguments)."""

PlainStage = tuple[str, ConfigKey, int, tuple[tuple[str, int, float | None], ...],
                   float | None]
"""A :class:`StagePlan` as plain values: stage, configuration, batch, replica groups
``(device, count, share)`` and level."""


@dataclass(frozen=True)
class PackedCandidates:
    """Candidates of a chunk's queries as tables of plain values (module note)."""

    estimates: tuple[tuple[object, ...], ...]
    """Each distinct estimate's field values, in :class:`Estimate`'s field order."""
    stages: tuple[tuple[PlainStage, ...], ...]
    """Each distinct stage list (a plan's stages)."""
    queries: tuple[tuple[str, str | None, int, tuple[int, ...]], ...]
    """Per query ``(name, reason, evaluations, refs)``; ``refs`` holds per candidate the
    position of its stage list, then of its estimate."""
    renamed: tuple[tuple[int, int, str], ...] = ()
    """``(query, candidate, plan's query)`` for every plan not named after its query."""

    def __len__(self) -> int:
        return len(self.queries)

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as one :mod:`marshal` blob of its tables, where every value is a plain one
        (every search's are): the way back from a worker pickles a chunk's tables, and
        marshal writes them in half the time (a chunk of 20,000 generated queries' tables,
        38 MB: 0.43 s against 0.80 s; read back in 0.22 s against 0.20). The blob is read
        back by the same Python (a worker forked from this process, or a cluster's, which
        runs this version); a table marshal cannot write is pickled as it is."""
        tables = (self.estimates, self.stages, self.queries, self.renamed)
        try:
            return (_unmarshal, (marshal.dumps(tables),))  # type: ignore[arg-type]
        except ValueError:  # (a value of a type marshal does not write)
            return (PackedCandidates, tables)


def _unmarshal(blob: bytes) -> PackedCandidates:
    """The :class:`PackedCandidates` of a blob :meth:`PackedCandidates.__reduce__` wrote."""
    return PackedCandidates(*marshal.loads(blob))


def pack(found: Sequence[QueryCandidates]) -> PackedCandidates:
    """``found`` in the compact form (module note)."""
    # ``found`` holds every estimate and stage tuple for the span: their ids stay theirs.
    estimates: dict[int, int] = {}  # id of an estimate -> its position
    est_rows: list[tuple[object, ...]] = []
    stage_lists: dict[int, int] = {}  # id of a stage tuple -> its position
    stage_rows: list[tuple[PlainStage, ...]] = []
    queries = []
    renamed = []
    for q, qc in enumerate(found):
        refs: list[int] = []
        for c, cand in enumerate(qc.candidates):
            stages, est = cand.plan.stages, cand.estimate
            s = stage_lists.get(id(stages))
            if s is None:
                s = stage_lists[id(stages)] = len(stage_rows)
                stage_rows.append(tuple(_plain_stage(st) for st in stages))
            e = estimates.get(id(est))
            if e is None:
                e = estimates[id(est)] = len(est_rows)
                est_rows.append(tuple(getattr(est, f) for f in _ESTIMATE_FIELDS))
            refs += (s, e)
            if cand.plan.query != qc.query:
                renamed.append((q, c, cand.plan.query))
        queries.append((qc.query, qc.reason, qc.evaluations, tuple(refs)))
    return PackedCandidates(tuple(est_rows), tuple(stage_rows), tuple(queries), tuple(renamed))


def digest(packed: PackedCandidates) -> str:
    """A SHA-256 of the candidates ``packed`` holds, by value: two chunks with the same digest
    found the same candidates (queries, reasons, evaluations, and per candidate its plan and
    estimate, in order), however their objects were shared when packed."""
    # repr, not pickle: the repr of plain values depends on the values alone (floats to the
    # last bit, 1 and 1.0 apart), where pickle writes an object seen before as a reference.
    # Each distinct row is hashed once; a candidate adds its two rows' hashes.
    est = [hashlib.sha256(repr(row).encode()).digest() for row in packed.estimates]
    stages = [hashlib.sha256(repr(row).encode()).digest() for row in packed.stages]
    renamed = {(q, c): name for q, c, name in packed.renamed}
    h = hashlib.sha256()
    for q, (name, reason, evaluations, refs) in enumerate(packed.queries):
        h.update(repr((name, reason, evaluations, len(refs) // 2)).encode())
        for k in range(0, len(refs), 2):
            h.update(stages[refs[k]] + est[refs[k + 1]])
            if renamed:
                h.update(repr(renamed.get((q, k // 2))).encode())
    return h.hexdigest()


def unpack(packed: PackedCandidates) -> list[QueryCandidates]:
    """The candidates :func:`pack` packed, equal to them (module note)."""
    estimates = [Estimate(*row) for row in packed.estimates]  # type: ignore[arg-type]
    # Equal stages of different lists become one object: a chunk's lists repeat a few
    # thousand stages over and over (a group's shared stage in every member's plans). At
    # 100,000 generated queries this took the unpacking of the 8 chunks from 1.9 to 1.2 s of
    # this process's CPU while the workers search, the search from 12.3 to 11.7 s on 2
    # workers (three alternating runs each).
    made: dict[PlainStage, StagePlan] = {}
    stage_lists = [tuple([made.get(st) or made.setdefault(st, _stage(st)) for st in row])
                   for row in packed.stages]
    renamed = {(q, c): name for q, c, name in packed.renamed}
    out = []
    for q, (name, reason, evaluations, refs) in enumerate(packed.queries):
        cands = tuple(
            Candidate(QueryPlan(renamed.get((q, k // 2), name) if renamed else name,
                                stage_lists[refs[k]]), estimates[refs[k + 1]])
            for k in range(0, len(refs), 2))
        out.append(QueryCandidates(name, cands, reason, evaluations))
    return out


def _plain_stage(s: StagePlan) -> PlainStage:
    return (s.stage, s.config, s.batch, tuple((r.device, r.count, r.share) for r in s.placement),
            s.level)


def _stage(row: PlainStage) -> StagePlan:
    stage, config, batch, placement, level = row
    return StagePlan(stage, config, batch, tuple(Replicas(*r) for r in placement), level)
