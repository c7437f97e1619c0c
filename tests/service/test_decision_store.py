"""The decision store: what is committed is loaded back whole (same records, same order, the
running candidates' estimates as committed); a failed commit stores nothing; a decision's
idempotency key is answered with its stored response; foreign pickles and another world's
store are refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from sqlalchemy import text

from circinus.online import OnlinePlanner, changed
from circinus.online.snapshot import Changes
from circinus.service.store import Decision, DecisionStore, StoreError, digest
from circinus.spec.load import load_indexed_world

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny.yaml"


def _planner() -> OnlinePlanner:
    _, index = load_indexed_world(TINY)
    return OnlinePlanner(index, why_not=False)


def _start(store: DecisionStore, online: OnlinePlanner) -> None:
    snap = online.snapshot()
    store.commit(Changes(snap.topology, tuple(snap.records()), ()),
                 Decision("start", "tiny", 200), world="tiny")


def _same(online: OnlinePlanner, store: DecisionStore) -> None:
    saved = store.load()
    assert saved is not None
    again = OnlinePlanner.restore(saved.topology, list(saved.records), why_not=False)
    assert again.queries == online.queries and again.admitted == online.admitted
    assert {n: again.plan_of(n) for n in again.admitted} == {
        n: online.plan_of(n) for n in online.admitted}
    assert again.capacity() == online.capacity()


def test_commits_are_loaded_back(store_url: str) -> None:
    store = DecisionStore(store_url)
    assert store.load() is None and store.world_name() is None
    online = _planner()
    _start(store, online)
    assert store.world_name() == "tiny"
    _same(online, store)
    for event in ("arrive", "resize", "depart"):
        before = online.snapshot()
        if event == "arrive":
            online.arrive({"name": "cam-3", "pipeline": "vision", "sources": {"camera": "shop"},
                           "rate_rps": 8, "slo": {"latency_ms": 300}})
        elif event == "resize":
            online.set_capacity(device="shop-box", units=2)
        else:
            online.depart("cam-1")
        store.commit(changed(before, online.snapshot()), Decision(event, "x", 200))
        _same(online, store)
    assert [d[0] for d in store.decisions()] == ["start", "arrive", "resize", "depart"]
    saved = store.load()
    assert saved is not None and saved.decisions == 4
    assert saved.topology.devices[0].units == 2
    store.close()


def test_a_failed_commit_stores_nothing(store_url: str) -> None:
    store = DecisionStore(store_url)
    online = _planner()
    _start(store, online)
    store.commit(Changes(None, (), ()), Decision("rebalance", "", 200, {"a": 1}, "key-1", "d1"))
    before = online.snapshot()
    online.arrive({"name": "cam-3", "pipeline": "vision", "sources": {"camera": "shop"},
                   "rate_rps": 8})
    with pytest.raises(StoreError, match="refused"):  # the key is taken: the whole commit fails
        store.commit(changed(before, online.snapshot()),
                     Decision("arrive", "cam-3", 201, {}, "key-1", "d2"))
    saved = store.load()
    assert saved is not None
    assert [r.query.name for r in saved.records] == ["cam-1", "cam-2"]
    assert len(store.decisions()) == 2
    store.close()


def test_an_idempotency_key_replays_its_answer(store_url: str) -> None:
    store = DecisionStore(store_url)
    request = digest("POST", "/v1/rebalance", b"{}")
    assert store.replay("k", request) is None
    store.commit(Changes(None, (), ()), Decision("rebalance", "", 200, {"accepted": False},
                                                 "k", request))
    replay = store.replay("k", request)
    assert replay is not None and replay.same_request
    assert (replay.status, replay.response) == (200, {"accepted": False})
    other = store.replay("k", digest("POST", "/v1/rebalance", b'{"keep_admitted": false}'))
    assert other is not None and not other.same_request
    store.close()


def test_a_foreign_pickle_is_refused(tmp_path: Path) -> None:
    store = DecisionStore(str(tmp_path / "s.db"))
    _start(store, _planner())
    with store._engine.begin() as conn:
        conn.execute(text("UPDATE service_queries SET candidates = :b WHERE name = 'cam-1'"),
                     {"b": pickle.dumps(Path("/"))})
    with pytest.raises(StoreError, match="refusing to load pathlib"):
        store.load()


def test_a_bad_url_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a usable URL"):
        DecisionStore("nosuchdialect://x")
    with pytest.raises(StoreError, match="cannot open"):
        DecisionStore(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
