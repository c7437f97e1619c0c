"""The service's HTTP API in process (FastAPI's test client): every route but /healthz asks for
the token; bad bodies are 422 naming the field, too large ones 413, conflicts 409, unknown names
404, all as one-line problems; an idempotency key replays its answer; a new service on the same
store has the same state; the committed OpenAPI document is the app's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from circinus.service import DecisionStore, PlannerService, ServiceSettings, create_app
from circinus.spec.load import load_indexed_world

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "tiny.yaml"
OPENAPI = ROOT / "docs" / "openapi.json"
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _query(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "pipeline": "vision", "sources": {"camera": "shop"}, "rate_rps": 5,
            "slo": {"latency_ms": 400}, **fields}


def _service(url: str, **settings: Any) -> PlannerService:
    _, index = load_indexed_world(TINY)
    return PlannerService(index, DecisionStore(url), settings=ServiceSettings(**settings))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(_service(f"sqlite:///{tmp_path / 's.db'}")) as c:
        yield c


def _client(service: PlannerService) -> TestClient:
    client = TestClient(create_app(service, TOKEN), raise_server_exceptions=False)
    client.__enter__()
    deadline = time.monotonic() + 60
    while service.status == "starting" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.status == "ok", service.detail
    return client


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "field"} and "\n" not in body["error"]
    assert "Traceback" not in body["error"] and "/work/" not in body["error"]
    return dict(body)


def test_every_route_but_healthz_needs_the_token(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    app = client.app
    routes = [(m, r.path.replace("{name:path}", "cam-1")) for r in app.routes  # type: ignore[attr-defined]
              for m in getattr(r, "methods", ()) if m in ("GET", "POST", "PUT", "DELETE")]
    assert len(routes) >= 12
    for method, path in routes:
        if path == "/healthz":
            continue
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": TOKEN}):
            r = client.request(method, path, headers=headers, json={})
            body = _problem(r, 401)
            assert r.headers["WWW-Authenticate"] == "Bearer"
            assert TOKEN not in body["error"]


def test_arrive_read_depart(client: TestClient) -> None:
    r = client.post("/v1/queries", json=_query("cam-3"), headers=AUTH)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["admitted"] and body["plan"] and body["predicted"]["latency_ms"] <= 400
    assert client.get("/v1/queries/cam-3", headers=AUTH).json()["plan"] == body["plan"]
    names = client.get("/v1/queries", headers=AUTH).json()
    assert [q["name"] for q in names["queries"]] == ["cam-1", "cam-2", "cam-3"]
    tight = client.post("/v1/queries", json=_query("cam-4", slo={"latency_ms": 20}),
                        headers=AUTH).json()
    assert not tight["admitted"] and tight["reason"].startswith("latency")
    assert tight["why_not"]["binding"] == "latency"
    assert client.delete("/v1/queries/cam-3", headers=AUTH).json()["was_admitted"]
    _problem(client.delete("/v1/queries/cam-3", headers=AUTH), 404)
    _problem(client.get("/v1/queries/cam-3", headers=AUTH), 404)
    plan = client.get("/v1/plan", headers=AUTH).json()
    assert plan["format"].startswith("circinus-plan") and plan["admitted"] == 2
    metrics = client.get("/metrics", headers=AUTH).text
    assert 'circinus_decisions_total{kind="arrive"} 2.0' in metrics
    assert 'circinus_rejections_total{reason="latency"} 1.0' in metrics
    assert 'circinus_utilisation{kind="device",name="shop-box"}' in metrics


def test_bad_requests_name_the_field(client: TestClient) -> None:
    body = _problem(client.post("/v1/queries", json=_query("x", slo={"latency_ms": -1}),
                                headers=AUTH), 422)
    assert body["field"] == "body.slo.latency_ms"
    body = _problem(client.post("/v1/queries", json=_query("x", colour="red"), headers=AUTH),
                    422)
    assert body["field"] == "body.colour"
    body = _problem(client.post("/v1/queries", json=_query("x", pipeline="nope"), headers=AUTH),
                    422)
    assert body["field"] == "body.pipeline" and "unknown pipeline" in body["error"]
    _problem(client.post("/v1/queries", content=b"{not json", headers={
        **AUTH, "Content-Type": "application/json"}), 422)
    _problem(client.post("/v1/queries", json=_query("cam-1"), headers=AUTH), 409)
    _problem(client.put("/v1/devices/nowhere", json={"units": 2}, headers=AUTH), 404)
    _problem(client.put("/v1/devices/shop-box", json={"units": 0}, headers=AUTH), 422)
    _problem(client.put("/v1/devices/shop-box", json={}, headers=AUTH), 422)
    _problem(client.put("/v1/links", json={"src": "shop", "dst": "moon", "capacity_mbps": 5},
                        headers=AUTH), 404)
    _problem(client.get("/v1/plan?format=svg", headers=AUTH), 422)
    big = {**_query("big"), "pad": "x" * (2 << 20)}
    _problem(client.post("/v1/queries", json=big, headers=AUTH), 413)
    # None of these changed the state.
    assert client.get("/v1/queries", headers=AUTH).json()["admitted"] == 2


def test_devices_and_links_change_and_rebalance(client: TestClient) -> None:
    r = client.put("/v1/devices/shop-box", json={"units": 2}, headers=AUTH)
    assert r.status_code == 200 and r.json()["change"] == "device shop-box: 4 -> 2 units"
    new = {"name": "box-2", "site": "shop", "hardware": "arm-cpu", "units": 4,
           "price_per_unit_hour": 0.01}
    assert client.post("/v1/devices", json=new, headers=AUTH).status_code == 201
    _problem(client.post("/v1/devices", json=new, headers=AUTH), 409)
    devices = {d["name"]: d for d in client.get("/v1/devices", headers=AUTH).json()}
    assert devices["shop-box"]["units"] == 2 and "box-2" in devices
    assert client.delete("/v1/devices/box-2", headers=AUTH).status_code == 200
    r = client.put("/v1/links", json={"src": "shop", "dst": "region", "capacity_mbps": 80},
                   headers=AUTH)
    assert r.status_code == 200 and "shop->region" in r.json()["change"]
    r = client.post("/v1/rebalance", json={"keep_admitted": True}, headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] in ("optimal", "time_limit", "greedy")


def test_an_idempotency_key_replays_the_first_answer(client: TestClient) -> None:
    headers = {**AUTH, "Idempotency-Key": "arrival-7"}
    first = client.post("/v1/queries", json=_query("cam-7"), headers=headers)
    again = client.post("/v1/queries", json=_query("cam-7"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    _problem(client.post("/v1/queries", json=_query("cam-8"), headers=headers), 422)
    names = [q["name"] for q in client.get("/v1/queries", headers=AUTH).json()["queries"]]
    assert names.count("cam-7") == 1 and "cam-8" not in names


def test_a_restart_restores_the_same_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with _client(_service(url)) as c:
        c.post("/v1/queries", json=_query("cam-3", rate_rps=12), headers=AUTH)
        c.put("/v1/devices/t4-pool", json={"units": 4}, headers=AUTH)
        c.delete("/v1/queries/cam-1", headers=AUTH)
        before = c.get("/v1/plan", headers=AUTH).json()
    service = _service(url)
    with _client(service) as c:
        after = c.get("/v1/plan", headers=AUTH).json()
    assert service.restored == 2
    for key in ("search_seconds", "select_seconds", "why_not_seconds", "evaluations"):
        before.pop(key), after.pop(key)
    assert after == before


def test_a_store_of_another_world_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with _client(_service(url)):
        pass
    data, _ = load_indexed_world(TINY)
    _, other = load_indexed_world(ROOT / "examples" / "edge-cloud-vision.yaml")
    service = PlannerService(other, DecisionStore(url))
    with pytest.raises(Exception, match="holds the state of world 'tiny'"):
        service.open()
    assert service.status == "unavailable"
    assert data.name == "tiny"


def test_a_full_queue_is_refused_with_retry_after(tmp_path: Path) -> None:
    service = _service(f"sqlite:///{tmp_path / 's.db'}", max_pending=1)
    with _client(service) as c:
        gate = threading.Event()
        service._executor.submit(gate.wait)  # the writer is busy
        results: list[int] = []
        first = threading.Thread(target=lambda: results.append(
            c.get("/v1/queries", headers=AUTH).status_code))
        first.start()
        deadline = time.monotonic() + 10
        while service._pending < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = c.get("/v1/queries", headers=AUTH)
        gate.set()
        first.join()
        body = _problem(r, 429)
        assert int(r.headers["Retry-After"]) >= 1 and "queue" in body["error"]
        assert results == [200]


def test_not_ready_is_503_with_retry_after(tmp_path: Path) -> None:
    service = _service(f"sqlite:///{tmp_path / 's.db'}")
    client = TestClient(create_app(service, TOKEN, open_on_start=False))
    r = client.get("/v1/queries", headers=AUTH)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert client.get("/readyz", headers=AUTH).status_code == 503
    assert client.get("/healthz").status_code == 200


def test_the_committed_openapi_document_is_the_apps(client: TestClient) -> None:
    served = client.get("/openapi.json", headers=AUTH).json()
    committed = json.loads(OPENAPI.read_text(encoding="utf-8"))
    assert served == committed, "docs/openapi.json is stale: run python scripts/openapi.py"


def test_a_restart_by_name_needs_no_world(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with _client(_service(url)) as c:
        before = c.get("/v1/queries", headers=AUTH).json()
    service = PlannerService("tiny", DecisionStore(url))
    with _client(service) as c:
        assert c.get("/v1/queries", headers=AUTH).json() == before
    empty = PlannerService("tiny", DecisionStore(f"sqlite:///{tmp_path / 'empty.db'}"))
    with pytest.raises(Exception, match="holds no state"):
        empty.open()
