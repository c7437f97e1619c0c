"""One contract suite for every profile store backend: SQLite (always) and PostgreSQL.

PostgreSQL runs for real: ``scripts/test.sh`` (hence ``.ci/run``) starts a throwaway server
with ``scripts/postgres.sh`` and passes its URL in ``CIRCINUS_TEST_POSTGRES_URL``. Without it the
PostgreSQL cases are skipped, except under CI, where a missing server is a failure.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from circinus.profile import Sample, SqlProfileStore, StoreError

PG_URL = os.environ.get("CIRCINUS_TEST_POSTGRES_URL")


def _backends() -> list[object]:
    pg = pytest.param("postgresql", marks=pytest.mark.integration)
    return ["sqlite", pg]


@pytest.fixture(params=_backends())
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'profiles.db'}"
        return
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PostgreSQL contract tests: CIRCINUS_TEST_POSTGRES_URL "
                        "is not set (scripts/test.sh starts the server)")
        pytest.skip("no PostgreSQL: run scripts/test.sh, or set CIRCINUS_TEST_POSTGRES_URL")
    store = SqlProfileStore(PG_URL)
    with store._engine.begin() as conn:  # a clean table per test
        conn.execute(text("TRUNCATE samples"))
    store.close()
    yield PG_URL


def _key() -> str:
    return f"latency/test/{uuid.uuid4().hex}"


def test_add_then_read_back_in_sample_order(url: str) -> None:
    store = SqlProfileStore(url)
    key = _key()
    assert store.add([Sample(key, 2, 12.5), Sample(key, 0, 10.0), Sample(key, 1, 11.0)]) == 3
    assert store.samples(key) == [Sample(key, 0, 10.0), Sample(key, 1, 11.0),
                                  Sample(key, 2, 12.5)]
    assert store.samples("absent") == []


def test_a_sample_is_stored_once_and_the_first_value_wins(url: str) -> None:
    store = SqlProfileStore(url)
    key = _key()
    assert store.add([Sample(key, 0, 1.0)]) == 1
    assert store.add([Sample(key, 0, 99.0), Sample(key, 1, 2.0)]) == 1
    assert [s.value for s in store.samples(key)] == [1.0, 2.0]


def test_counts_by_prefix(url: str) -> None:
    store = SqlProfileStore(url)
    a, b = _key(), "accuracy/test/" + uuid.uuid4().hex
    store.add([Sample(a, i, float(i)) for i in range(5)] + [Sample(b, 0, 1.0)])
    assert store.counts(a) == {a: 5}
    assert store.counts("accuracy/test/")[b] == 1


def test_survives_reopening(url: str) -> None:
    key = _key()
    SqlProfileStore(url).add([Sample(key, i, i * 0.5) for i in range(10)])
    assert len(SqlProfileStore(url).samples(key)) == 10


def _writer(url: str, key: str, start: int, stop: int) -> None:
    store = SqlProfileStore(url)
    for i in range(start, stop, 5):  # small transactions, interleaving with the other writer
        store.add([Sample(key, j, float(j)) for j in range(i, min(i + 5, stop))])


def test_concurrent_processes_lose_and_duplicate_nothing(url: str) -> None:
    key = _key()
    ctx = multiprocessing.get_context("spawn")
    # Two writers over overlapping ranges: 0-299 and 150-449.
    procs = [ctx.Process(target=_writer, args=(url, key, 0, 300)),
             ctx.Process(target=_writer, args=(url, key, 150, 450))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    ids = [s.sample_id for s in SqlProfileStore(url).samples(key)]
    assert ids == list(range(450))


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open"):
        SqlProfileStore("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_a_plain_path_means_sqlite(tmp_path: Path) -> None:
    store = SqlProfileStore(str(tmp_path / "p.db"))
    assert store.url.startswith("sqlite:///")
    assert store.add([Sample("k", 0, 1.0)]) == 1


def test_memory_store_keeps_the_contract() -> None:
    from circinus.profile import MemoryProfileStore

    store = MemoryProfileStore()
    assert store.add([Sample("a", 2, 1.0), Sample("a", 0, 3.0), Sample("b", 0, 5.0)]) == 3
    assert store.add([Sample("a", 2, 9.0), Sample("a", 1, 2.0)]) == 1  # first value wins
    assert [(s.sample_id, s.value) for s in store.samples("a")] == [(0, 3.0), (1, 2.0),
                                                                   (2, 1.0)]
    assert store.counts("a") == {"a": 3} and store.samples("missing") == []
