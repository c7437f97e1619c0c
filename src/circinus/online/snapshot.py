"""The online planner's state as records a restart can rebuild it from.

NOTE: a :class:`Snapshot` holds the topology (the world's devices, links and pipelines as
changed, no queries) and every present query with its candidates and the one it runs, the
admitted ones' estimates as they are at the current state. That is all the state needs to be
the same after a restart: the ledger and the deployments' sizes follow from the admitted
candidates (:meth:`circinus.online.OnlinePlanner.restore`). A snapshot is cheap (shallow
copies of immutable records), so a caller can take one before and after every event and keep
only what changed (:func:`changed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from circinus.online.state import Entry
from circinus.search.base import QueryCandidates
from circinus.spec.models import Query, World


@dataclass(frozen=True)
class QueryRecord:
    """One present query: its spec, its candidates and the index of the one it runs (``None``
    while it waits)."""

    query: Query
    found: QueryCandidates
    chosen: int | None


@dataclass(frozen=True)
class Snapshot:
    """The planner's state at one moment (see module note); read-only."""

    topology: World
    """The world without queries: devices and links as changed so far."""
    entries: Mapping[str, Entry]
    """Every present query, in arrival order."""
    chosen: Mapping[str, int]
    """Admitted query -> index of the candidate it runs."""

    def record(self, name: str) -> QueryRecord:
        """The record of the present query ``name``."""
        entry = self.entries[name]
        return QueryRecord(entry.query, entry.found, self.chosen.get(name))

    def records(self) -> list[QueryRecord]:
        """Every present query's record, in arrival order."""
        return [self.record(n) for n in self.entries]


@dataclass(frozen=True)
class Changes:
    """What an event changed between two snapshots."""

    topology: World | None
    """The new topology, ``None`` if unchanged."""
    upserted: tuple[QueryRecord, ...]
    """Queries that arrived or whose candidates, plan or estimate changed (in arrival order)."""
    departed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return self.topology is None and not self.upserted and not self.departed


def changed(before: Snapshot, after: Snapshot) -> Changes:
    """What changed from ``before`` to ``after`` (records are compared by identity: the
    planner replaces a record whenever it changes it)."""
    upserted = [after.record(n) for n, e in after.entries.items()
                if before.entries.get(n) is not e or before.chosen.get(n) != after.chosen.get(n)]
    departed = tuple(n for n in before.entries if n not in after.entries)
    topology = None if after.topology is before.topology else after.topology
    return Changes(topology, tuple(upserted), departed)
