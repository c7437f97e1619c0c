"""Fresh PostgreSQL databases for the service's tests, on the server ``scripts/postgres.sh``
starts (its URL in ``CIRCINUS_TEST_POSTGRES_URL``); each caller gets a database of its own,
dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("CIRCINUS_TEST_POSTGRES_URL")


def postgres_or_skip() -> str:
    """The server's URL, or skip (fail on CI, which must run these)."""
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PostgreSQL tests: CIRCINUS_TEST_POSTGRES_URL is not set "
                        "(scripts/test.sh starts the server)")
        pytest.skip("no PostgreSQL: run scripts/test.sh, or set CIRCINUS_TEST_POSTGRES_URL")
    return PG_URL


def fresh_postgres() -> Iterator[str]:
    """A new database on the test server (dropped when done)."""
    base = make_url(postgres_or_skip())
    name = f"circinus_service_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
