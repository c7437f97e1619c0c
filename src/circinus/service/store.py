"""The service's decision store: the online planner's state, durable, one transaction per decision.

NOTE: the store holds what a restart needs to rebuild the same state without searching
(:mod:`circinus.online.snapshot`): the topology (devices and links as changed), every present
query in arrival order with its candidates, the index of the one it runs and that one's estimate
at the current state, and a log of the decisions. :meth:`DecisionStore.commit` writes one
decision's changes and its log row in one transaction, so a decision is stored whole or not at
all; the service acknowledges a decision only after its commit returns. SQLite (the default)
runs in WAL mode with ``synchronous=FULL``: a committed decision survives a crash of the process
and of the machine. PostgreSQL is used by URL.

The candidates of a query are stored as a pickle read back by an unpickler that accepts only
Circinus's own record classes and plain containers (a store written by anything else cannot run
code on load). A query's candidates are written when they change; an admitted query's estimate,
which changes whenever a co-tenant arrives or leaves, is a row field of its own, small.

Each row of the log may carry the ``Idempotency-Key`` of the request that made the decision and
the response sent, so that the same request retried after a lost answer (or after a crash)
gets the answer of the decision that was committed instead of a second decision.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from circinus.errors import CircinusError
from circinus.estimate.base import Estimate
from circinus.online.snapshot import Changes, QueryRecord
from circinus.search.base import Candidate, QueryCandidates
from circinus.spec.models import Query, World
from circinus.sql import create_tables, first_line, hide_password, make_engine, sqlalchemy_url

FORMAT = 1
"""Version of the store's layout; a store of another version is refused."""

_metadata = MetaData()
_meta = Table(
    "service_meta", _metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
_queries = Table(
    "service_queries", _metadata,
    Column("name", String(256), primary_key=True),
    Column("position", Integer, nullable=False, index=True),
    Column("spec", Text, nullable=False),
    Column("candidates", LargeBinary, nullable=False),
    Column("chosen", Integer, nullable=True),
    Column("estimate", LargeBinary, nullable=True),
)
_decisions = Table(
    "service_decisions", _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("status", Integer, nullable=False),
    Column("idempotency_key", String(256), nullable=True, unique=True),
    Column("digest", String(64), nullable=True),
    Column("response", Text, nullable=True),
    Column("decided_at", Float, nullable=False),
)


class StoreError(CircinusError):
    """The decision store cannot be opened, read or written, or holds another world's state."""

    exit_code = 5


@dataclass(frozen=True)
class Decision:
    """One decision's log row."""

    kind: str
    """``arrive``, ``depart``, ``resize``, ``add-device``, ``remove-device``, ``link``,
    ``rebalance`` or ``start``."""
    subject: str
    """The query, device or link it is about (``""`` for a rebalance)."""
    status: int
    """The HTTP status of its answer."""
    response: dict[str, Any] | None = None
    """The answer's body, kept when the request had an idempotency key."""
    idempotency_key: str | None = None
    digest: str | None = None
    """:func:`digest` of the request that made it."""


@dataclass(frozen=True)
class Saved:
    """The state a store holds."""

    topology: World
    records: tuple[QueryRecord, ...]
    """Every present query, in arrival order."""
    decisions: int
    """Decisions committed so far."""


@dataclass(frozen=True)
class Replay:
    """The answer to an earlier request with the same idempotency key."""

    same_request: bool
    """Whether the earlier request was this one (same method, path and body)."""
    status: int
    response: dict[str, Any] | None


def fingerprint(data: bytes) -> str:
    """A fingerprint of a world file's bytes."""
    return hashlib.sha256(data).hexdigest()


def digest(method: str, path: str, body: bytes) -> str:
    """A fingerprint of a request, to tell a retry from another request reusing a key."""
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class DecisionStore:
    """The decision store on SQLAlchemy (module note).

    Args:
        url: a SQLAlchemy URL (``sqlite:///service.db``, ``postgresql+psycopg://user@host/db``)
            or a file path (SQLite).

    One writer at a time: the service commits from one thread. Raises :class:`StoreError` when
    the store cannot be opened.
    """

    def __init__(self, url: str) -> None:
        self.url = sqlalchemy_url(url)
        self.display_url = hide_password(self.url)
        """The URL without its password, for messages."""
        try:
            self._engine = make_engine(self.url, synchronous="FULL")
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise StoreError(f"--store {self.display_url!r}: not a usable URL "
                             f"({first_line(exc)}); use sqlite:///file.db, "
                             "postgresql+psycopg://user@host/db or a file path") from None
        try:
            create_tables(self._engine, _metadata)
        except SQLAlchemyError as exc:
            raise StoreError(f"--store {self.display_url!r}: cannot open ({first_line(exc)}); "
                             "check the URL and that the server is running") from None
        self._position = 0

    # -- reading -----------------------------------------------------------------------------

    def load(self) -> Saved | None:
        """The state stored, or ``None`` for an empty store."""
        try:
            with self._engine.connect() as conn:
                meta = {k: v for k, v in conn.execute(select(_meta.c.key, _meta.c.value))}
                if "topology" not in meta:
                    return None
                if meta.get("format") != str(FORMAT):
                    raise StoreError(f"store {self.display_url!r} has layout version "
                                     f"{meta.get('format')}, this Circinus writes {FORMAT}; use "
                                     "a new store")
                rows = conn.execute(select(
                    _queries.c.spec, _queries.c.candidates, _queries.c.chosen,
                    _queries.c.estimate, _queries.c.position).order_by(_queries.c.position)).all()
                decisions = conn.execute(select(func.count()).select_from(_decisions)).scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.display_url!r}: cannot read ({first_line(exc)})"
                             ) from None
        topology = World.model_validate_json(meta["topology"])
        records = tuple(_record(spec, blob, chosen, est) for spec, blob, chosen, est, _ in rows)
        self._position = max((int(r[4]) for r in rows), default=0)
        return Saved(topology, records, int(decisions or 0))

    def world_name(self) -> str | None:
        """The name of the world whose state the store holds (``None``: empty store)."""
        return self.identity()[0]

    def identity(self) -> tuple[str | None, str | None]:
        """The name of the world whose state the store holds and the :func:`fingerprint` of
        the file it was first planned from (``None`` when unknown or the store is empty)."""
        query = select(_meta.c.key, _meta.c.value).where(_meta.c.key.in_(("world", "file")))
        try:
            with self._engine.connect() as conn:
                meta = {k: v for k, v in conn.execute(query)}
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.display_url!r}: cannot read ({first_line(exc)})"
                             ) from None
        return meta.get("world"), meta.get("file")

    def replay(self, key: str, request: str) -> Replay | None:
        """The decision made under idempotency ``key``, if any; ``request`` is the
        :func:`digest` of the request now."""
        query = select(_decisions.c.digest, _decisions.c.status, _decisions.c.response).where(
            _decisions.c.idempotency_key == key)
        try:
            with self._engine.connect() as conn:
                row = conn.execute(query).first()
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.display_url!r}: cannot read ({first_line(exc)})"
                             ) from None
        if row is None:
            return None
        body = None if row[2] is None else json.loads(row[2])
        return Replay(row[0] == request, int(row[1]), body)

    def decisions(self) -> list[tuple[str, str, int, str | None]]:
        """Every decision's ``(kind, subject, status, idempotency key)``, in order."""
        query = select(_decisions.c.kind, _decisions.c.subject, _decisions.c.status,
                       _decisions.c.idempotency_key).order_by(_decisions.c.id)
        with self._engine.connect() as conn:
            return [(k, s, int(st), key) for k, s, st, key in conn.execute(query)]

    # -- writing -----------------------------------------------------------------------------

    def commit(self, changes: Changes, decision: Decision, *, world: str | None = None,
               fingerprint: str | None = None) -> None:
        """Write ``changes`` and the log row of ``decision`` in one transaction (``world``: the
        world's name, and ``fingerprint`` its file's, on the first commit). Returns once it is
        durable.

        Raises:
            StoreError: the commit failed; nothing of it is stored.
        """
        position = self._position
        rows = []
        for rec in changes.upserted:
            position += 1
            rows.append(_row(rec, position))
        try:
            with self._engine.begin() as conn:
                if world is not None:
                    conn.execute(delete(_meta))
                    conn.execute(insert(_meta), [
                        {"key": "world", "value": world}, {"key": "format", "value": str(FORMAT)},
                        *([{"key": "file", "value": fingerprint}] if fingerprint else [])])
                if changes.topology is not None:
                    conn.execute(delete(_meta).where(_meta.c.key == "topology"))
                    conn.execute(insert(_meta).values(
                        key="topology", value=changes.topology.model_dump_json()))
                if changes.departed:
                    conn.execute(delete(_queries).where(_queries.c.name.in_(changes.departed)))
                if rows:
                    self._upsert(conn, rows)
                conn.execute(insert(_decisions).values(
                    kind=decision.kind, subject=decision.subject[:256], status=decision.status,
                    idempotency_key=decision.idempotency_key, digest=decision.digest,
                    response=None if decision.response is None else json.dumps(decision.response),
                    decided_at=time.time()))
        except IntegrityError as exc:
            raise StoreError(f"store {self.display_url!r}: write refused ({first_line(exc)})"
                             ) from None
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.display_url!r}: write failed ({first_line(exc)})"
                             ) from None
        self._position = position

    def _upsert(self, conn: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new queries, update present ones (keeping their arrival position)."""
        names = [r["name"] for r in rows]
        present = {n for (n,) in conn.execute(select(_queries.c.name).where(
            _queries.c.name.in_(names)))}
        new = [r for r in rows if r["name"] not in present]
        if new:
            conn.execute(insert(_queries), new)
        for r in rows:
            if r["name"] in present:
                fields = {k: v for k, v in r.items() if k not in ("name", "position")}
                conn.execute(update(_queries).where(_queries.c.name == r["name"]).values(fields))

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()


def _row(rec: QueryRecord, position: int) -> dict[str, Any]:
    """The stored row of ``rec``: its candidates with the running one's estimate apart."""
    found, estimate = rec.found, None
    if rec.chosen is not None:
        estimate = pickle.dumps(found.candidates[rec.chosen].estimate, protocol=5)
    return {"name": rec.query.name, "position": position,
            "spec": rec.query.model_dump_json(exclude_unset=True),
            "candidates": pickle.dumps(found, protocol=5), "chosen": rec.chosen,
            "estimate": estimate}


def _record(spec: str, blob: bytes, chosen: int | None, estimate: bytes | None) -> QueryRecord:
    query = Query.model_validate_json(spec)
    found = _loads(blob)
    if not isinstance(found, QueryCandidates):
        raise StoreError(f"store: query {query.name!r}: candidates of an unknown form")
    if chosen is not None and estimate is not None and 0 <= chosen < len(found.candidates):
        est = _loads(estimate)
        if not isinstance(est, Estimate):
            raise StoreError(f"store: query {query.name!r}: an estimate of an unknown form")
        cands = list(found.candidates)
        cands[chosen] = Candidate(cands[chosen].plan, est)
        found = QueryCandidates(found.query, tuple(cands), found.reason, found.evaluations)
    return QueryRecord(query, found, chosen)


_RECORD_MODULES = frozenset({"circinus.search.base", "circinus.estimate.base",
                             "circinus.plan.records"})
"""Where the record classes of candidates live (frozen dataclasses of plain values)."""


class _RecordUnpickler(pickle.Unpickler):
    """Accepts the record classes of candidates only (module note)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in _RECORD_MODULES and not name.startswith("_"):
            cls = super().find_class(module, name)
            if isinstance(cls, type) and dataclasses.is_dataclass(cls):
                return cls
        raise StoreError(f"store: refusing to load {module}.{name}; the store was not written "
                         "by Circinus")


def _loads(blob: bytes) -> Any:
    try:
        return _RecordUnpickler(io.BytesIO(blob)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise StoreError(f"store: a record cannot be read ({first_line(exc)})") from None
