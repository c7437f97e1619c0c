"""The profile store under faults: processes racing to create it, URLs that cannot work."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from circinus.profile import Sample, SqlProfileStore, StoreError
from circinus.profile.store import _samples


def test_losing_the_race_to_create_a_fresh_store_is_not_an_error(tmp_path: Path) -> None:
    """Another process creates the table between this one's check and its CREATE (what two
    processes opening one fresh store do): the loser's CREATE fails, and the store must open
    all the same."""
    path = tmp_path / "fresh.db"

    def other_process_wins(*_: Any, **__: Any) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS samples (id INTEGER PRIMARY KEY, key "
                         "VARCHAR(512) NOT NULL, sample_id INTEGER NOT NULL, value FLOAT NOT "
                         "NULL, recorded_at FLOAT NOT NULL, CONSTRAINT one_value_per_sample "
                         "UNIQUE (key, sample_id))")

    event.listen(_samples, "before_create", other_process_wins)
    try:
        store = SqlProfileStore(f"sqlite:///{path}")
    finally:
        event.remove(_samples, "before_create", other_process_wins)
    assert store.add([Sample("k", 0, 1.0)]) == 1
    assert store.samples("k") == [Sample("k", 0, 1.0)]


def _open_and_add(url: str, start: Any, worker: int) -> None:
    start.wait()
    SqlProfileStore(url).add([Sample("k", worker, float(worker))])


@pytest.mark.slow
def test_processes_opening_one_fresh_store_at_once_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'race-{attempt}.db'}"
        start = ctx.Event()
        procs = [ctx.Process(target=_open_and_add, args=(url, start, i)) for i in range(4)]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(timeout=120)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        assert [s.sample_id for s in SqlProfileStore(url).samples("k")] == [0, 1, 2, 3]


@pytest.mark.parametrize(("url", "says"), [
    ("mysql://user@host/db", "not a usable URL"),  # its driver is not installed
    ("postgresql://[::1", "not a usable URL"),  # malformed
    ("nosuchdb://x", "not a usable URL"),
    ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot open"),
])
def test_a_url_that_cannot_work_is_a_store_error(url: str, says: str) -> None:
    with pytest.raises(StoreError, match=says):
        SqlProfileStore(url)


def test_messages_never_show_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        SqlProfileStore("postgresql+psycopg://nobody:s3cret@127.0.0.1:1/none")
    assert "s3cret" not in str(caught.value) and "nobody:***@" in str(caught.value)
