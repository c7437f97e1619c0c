"""The profile store: every measured sample, durable, never paid for twice.

NOTE: a *sample* is one measurement of one estimate on one input: the latency of a stage
configuration on a hardware class for input ``i``, or whether the pipeline's output for input
``i`` was correct. Samples are keyed by ``(key, sample_id)`` where ``key`` names the estimate
(e.g. ``latency/vision/classify/model=resnet18/i7-12700h/b1``) and ``sample_id`` the input, and
that pair is unique in the table: writing a sample twice (two profiling processes racing, or a
rerun after a crash) keeps the first and reports it as already present, so concurrent writers
never duplicate and a crashed run loses only what it had not committed. Each ``add`` is one
transaction. SQLite (the default, a file) runs in WAL mode so readers do not block the writer;
PostgreSQL is used by URL.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from circinus.errors import CircinusError
from circinus.sql import create_tables, first_line, hide_password, make_engine, sqlalchemy_url

_metadata = MetaData()
_samples = Table(
    "samples",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(512), nullable=False),
    Column("sample_id", Integer, nullable=False),
    Column("value", Float, nullable=False),
    Column("recorded_at", Float, nullable=False),
    UniqueConstraint("key", "sample_id", name="one_value_per_sample"),
)


class StoreError(CircinusError):
    """The profile store cannot be opened or written (bad URL, unreachable server, disk full)."""

    exit_code = 5


@dataclass(frozen=True)
class Sample:
    """One measurement: ``value`` of estimate ``key`` on input ``sample_id``."""

    key: str
    sample_id: int
    value: float


class BaseProfileStore(ABC):
    """Durable storage of profiling samples.

    Contract: ``add`` is atomic (all of a call's samples are stored or none) and idempotent per
    ``(key, sample_id)`` (the first value written wins; later ones are ignored and not
    counted); ``samples`` returns what earlier ``add`` calls committed, in ``sample_id`` order,
    from this or any other process. Safe to use from several processes at once.
    """

    @abstractmethod
    def add(self, samples: Iterable[Sample]) -> int:
        """Store ``samples`` in one transaction; returns how many were new."""

    @abstractmethod
    def samples(self, key: str) -> list[Sample]:
        """All samples of ``key``, by ``sample_id``."""

    @abstractmethod
    def counts(self, prefix: str = "") -> Mapping[str, int]:
        """Number of samples per key, for keys starting with ``prefix``."""


class SqlProfileStore(BaseProfileStore):
    """A profile store on SQLAlchemy: a SQLite file by default, PostgreSQL by URL.

    Args:
        url: a SQLAlchemy URL, e.g. ``sqlite:///profiles.db`` or
            ``postgresql+psycopg://user@host/db``; a plain path means a SQLite file.
    """

    def __init__(self, url: str) -> None:
        self.url = sqlalchemy_url(url)
        shown = hide_password(self.url)
        try:
            self._engine = make_engine(self.url)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            # A malformed URL (ValueError), a dialect whose driver is not installed
            # (ImportError) or one SQLAlchemy does not know (an ArgumentError).
            raise StoreError(f"profile store {shown!r}: not a usable URL ({first_line(exc)}); "
                             "use sqlite:///file.db, postgresql+psycopg://user@host/db or a "
                             "file path") from exc
        try:
            create_tables(self._engine, _metadata)
        except SQLAlchemyError as exc:
            raise StoreError(f"profile store {shown!r}: cannot open ({first_line(exc)}); "
                             "check the URL and that the server is running") from exc
        self.display_url = shown
        """The URL without its password, for messages."""

    def add(self, samples: Iterable[Sample]) -> int:
        rows = [{"key": s.key, "sample_id": s.sample_id, "value": s.value,
                 "recorded_at": time.time()} for s in samples]
        if not rows:
            return 0
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(_samples).on_conflict_do_nothing(
            index_elements=["key", "sample_id"]).returning(_samples.c.id)
        deadline = time.monotonic() + 120.0
        attempt = 0
        while True:
            try:
                with self._engine.begin() as conn:
                    # RETURNING yields only the rows actually inserted (driver rowcounts
                    # disagree on executemany), so this counts the new samples exactly.
                    return len(conn.execute(stmt, rows).all())
            except OperationalError as exc:  # SQLite "database is locked" under contention
                # A busy machine can hold the lock for seconds: retry for up to two minutes.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(f"profile store {self.display_url!r}: write failed "
                                     f"({first_line(exc)})") from exc
                attempt += 1
                time.sleep(min(0.05 * attempt, 1.0))

    def samples(self, key: str) -> list[Sample]:
        query = (select(_samples.c.key, _samples.c.sample_id, _samples.c.value)
                 .where(_samples.c.key == key).order_by(_samples.c.sample_id))
        with self._engine.connect() as conn:
            return [Sample(k, int(i), float(v)) for k, i, v in conn.execute(query)]

    def counts(self, prefix: str = "") -> Mapping[str, int]:
        query = (select(_samples.c.key, func.count())
                 .where(_samples.c.key.startswith(prefix, autoescape=True))
                 .group_by(_samples.c.key))
        with self._engine.connect() as conn:
            return {k: int(n) for k, n in conn.execute(query)}

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()


class MemoryProfileStore(BaseProfileStore):
    """The store's contract in memory, for one process: nothing survives it.

    For benchmarks that draw millions of stand-in samples, where what is measured is the
    profiler's policy and not the disk; anything that runs real operators should use
    :class:`SqlProfileStore`.
    """

    def __init__(self) -> None:
        self._samples: dict[str, dict[int, float]] = {}

    def add(self, samples: Iterable[Sample]) -> int:
        batch = list(samples)
        new = 0
        for s in batch:
            values = self._samples.setdefault(s.key, {})
            if s.sample_id not in values:
                values[s.sample_id] = s.value
                new += 1
        return new

    def samples(self, key: str) -> list[Sample]:
        values = self._samples.get(key, {})
        return [Sample(key, i, values[i]) for i in sorted(values)]

    def counts(self, prefix: str = "") -> Mapping[str, int]:
        return {k: len(v) for k, v in self._samples.items() if k.startswith(prefix) and v}


def default_store_url() -> str:
    """``$CIRCINUS_STORE`` if set, else a SQLite file ``profiles.db`` in the cache directory
    (``$CIRCINUS_CACHE`` or ``~/.cache/circinus``), created on first use."""
    url = os.environ.get("CIRCINUS_STORE")
    if url:
        return url
    folder = Path(os.environ.get("CIRCINUS_CACHE", Path.home() / ".cache" / "circinus"))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'profiles.db'}"
