"""What the SQL stores share: engines on a URL (SQLite in WAL mode by default, PostgreSQL by
URL), creating tables when several processes open one fresh store at once, URLs fit for
messages.

Used by the profile store (:mod:`circinus.profile.store`) and the service's decision store
(:mod:`circinus.service.store`).
"""

from __future__ import annotations

import time
from typing import Literal

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError


def sqlalchemy_url(url: str) -> str:
    """``url`` itself if it has a scheme, else a SQLite file at that path."""
    return url if "://" in url else f"sqlite:///{url}"


def make_engine(url: str, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> Engine:
    """An engine on ``url``. SQLite runs in WAL mode (readers do not block the writer) and
    waits up to 30 s for a lock; ``synchronous``: ``NORMAL`` survives a crash of the process,
    ``FULL`` also a crash of the machine (every commit reaches the disk). PostgreSQL
    connections are checked before use.

    Raises what SQLAlchemy raises for a malformed URL (``ArgumentError``, ``ValueError``) or a
    driver that is not installed (``ImportError``).
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: object, _: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """Create ``metadata``'s tables unless they exist.

    NOTE: two processes opening one fresh store race: both see no table, one creates it and
    the other's CREATE fails ("table ... already exists" in SQLite, a duplicate type in
    PostgreSQL). The loser tries again, and its check then finds the table.
    """
    for attempt in range(5):
        try:
            metadata.create_all(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            text = str(exc).lower()
            racing = "already exists" in text or "duplicate" in text or "locked" in text
            if not racing or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def hide_password(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (messages may be shared)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return url.split("@")[-1] if "@" in url else url


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (driver messages run over many lines)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
