"""Stores for the service's tests: a SQLite file, and (marked integration) a fresh database on
the test PostgreSQL server (:mod:`pg_stores`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_stores import fresh_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh decision store of either kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
    else:
        yield from fresh_postgres()
