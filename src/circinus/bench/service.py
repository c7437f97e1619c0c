"""Service benchmark: a bounded loopback load on ``circinus service``, a crash, and a restart.

NOTE: the driver is a pool of asyncio workers (``concurrency``) sharing ``operations``
requests to a service on 127.0.0.1: each is an arrival (``POST /v1/queries``, a copy of a query
of the world under a fresh name, with an ``Idempotency-Key``) or, with probability
``depart_fraction`` once the driver's own queries are present, a departure of one of them
(``DELETE /v1/queries/{name}``). Every request is logged with its answer: *acknowledged* (a 2xx
answer), *refused* (4xx: 429 when the queue is full) or *lost* (no answer: the connection broke).
Reported: throughput (acknowledged decisions per second), the client's latency per decision
(queueing included) and the planner's own decision time (``decision_ms`` of the answers), as
p50 and p99, and the count of server errors (5xx).

With ``kill_after``, the service gets SIGKILL once that many decisions are acknowledged
(requests in flight are lost), is started again on the same store and port, and the load goes
on against it to the end; the benchmark measures the time to ready (the load waits for it, and
that pause is not counted in the throughput) and checks the store's decision log against the
client's log (:func:`check_against_log`): every acknowledged decision is in the log and in the
state, and every lost one is either whole (in the log and in the state) or absent from both.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class Request:
    """One request of the load and what came of it."""

    op: str
    """``arrive`` or ``depart``."""
    query: str
    status: int | None
    """HTTP status, ``None`` when no answer came (connection broken)."""
    seconds: float
    """Client-side latency, s."""
    decision_ms: float | None = None
    """The planner's own time for the decision (from the answer), ms."""
    admitted: bool | None = None
    body: dict[str, Any] | None = None
    """The arrival's body (sent with the query's name as ``Idempotency-Key``)."""

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Load:
    """The client's log of one load run."""

    requests: list[Request] = field(default_factory=list)
    seconds: float = 0.0
    paused: float = 0.0
    """Seconds the load waited for a restarted service (left out of the throughput)."""

    def summary(self) -> dict[str, Any]:
        acked = [r for r in self.requests if r.acknowledged]
        lat = sorted(r.seconds for r in acked)
        dec = sorted(r.decision_ms for r in acked if r.decision_ms is not None)
        by_status: dict[str, int] = {}
        for r in self.requests:
            key = "lost" if r.status is None else str(r.status)
            by_status[key] = by_status.get(key, 0) + 1
        return {
            "requests": len(self.requests), "acknowledged": len(acked),
            "arrivals": sum(r.op == "arrive" for r in acked),
            "admitted": sum(bool(r.admitted) for r in acked),
            "departures": sum(r.op == "depart" for r in acked),
            "by_status": by_status,
            "server_errors": sum(1 for r in self.requests if r.status is not None
                                 and r.status >= 500 and r.status != 503),
            "seconds": self.seconds, "paused_seconds": self.paused,
            "throughput_per_s": (len(acked) / (self.seconds - self.paused)
                                 if self.seconds > self.paused else 0.0),
            "client_p50_ms": _pct(lat, 50) * 1000, "client_p99_ms": _pct(lat, 99) * 1000,
            "decision_p50_ms": _pct(dec, 50), "decision_p99_ms": _pct(dec, 99),
        }


def _pct(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1])


async def drive(url: str, token: str, pool: Sequence[dict[str, Any]], *, operations: int,
                concurrency: int, depart_fraction: float = 0.5, seed: int = 0,
                prefix: str = "load", kill_after: int | None = None,
                kill: Any = None, timeout_s: float = 120.0, load: Load | None = None) -> Load:
    """Send ``operations`` arrivals and departures with ``concurrency`` workers (module note);
    ``kill``: called once ``kill_after`` decisions are acknowledged; it returns when the service
    answers again (the load, paused meanwhile, then goes on; what was in flight is lost)."""
    rng = random.Random(seed)
    load = Load() if load is None else load
    present: list[str] = []
    counter = iter(range(operations))
    killed = asyncio.Event()
    acknowledged = 0
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal acknowledged
        for i in counter:
            body: dict[str, Any] | None = None
            if present and rng.random() < depart_fraction:
                name = present.pop(rng.randrange(len(present)))
                op, call = "depart", client.delete(f"/v1/queries/{name}")
            else:
                name = f"{prefix}-{i}"
                body = {**rng.choice(pool), "name": name}
                op, call = "arrive", client.post("/v1/queries", json=body,
                                                 headers={"Idempotency-Key": name})
            t0 = time.monotonic()
            try:
                r = await call
            except httpx.HTTPError:
                load.requests.append(Request(op, name, None, time.monotonic() - t0, body=body))
                continue
            seconds = time.monotonic() - t0
            data = r.json() if r.headers.get("content-type", "").startswith(
                "application/json") else {}
            load.requests.append(Request(op, name, r.status_code, seconds,
                                         data.get("decision_ms"), data.get("admitted"), body))
            acknowledged += 200 <= r.status_code < 300
            if op == "arrive" and r.status_code == 201:
                present.append(name)
            elif op == "depart" and r.status_code not in (200, 404):
                present.append(name)  # refused (429): still present, may be tried again
            if kill_after is not None and not killed.is_set() and acknowledged >= kill_after:
                killed.set()
                # blocks the event loop on purpose: no request is sent while the service is
                # down, and those in flight fail (lost) once the loop runs again
                t_kill = time.monotonic()
                kill()
                load.paused += time.monotonic() - t_kill

    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout_s,
                                 limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    load.seconds = time.monotonic() - t0
    return load


def check_against_log(load: Load, decisions: Sequence[tuple[str, str, int, str | None]],
                      present: set[str]) -> list[str]:
    """What contradicts durability: an acknowledged decision missing from the store's log or
    from the state, or a lost one half applied (in the log but not the state, or the reverse).
    ``decisions``: the store's ``(kind, subject, status, key)`` rows; ``present``: the queries
    of the state after the restart. Empty when all is well."""
    logged = {(k, s) for k, s, _, _ in decisions}
    problems = []
    for r in load.requests:
        if r.op == "arrive" and r.status == 201 and ("arrive", r.query) not in logged:
            problems.append(f"acknowledged arrival of {r.query} is not in the log")
        if r.op == "depart" and r.status == 200 and ("depart", r.query) not in logged:
            problems.append(f"acknowledged departure of {r.query} is not in the log")
    names = {r.query for r in load.requests if r.op == "arrive"}
    for name in names:
        arrived, departed = ("arrive", name) in logged, ("depart", name) in logged
        logged_present = arrived and not departed
        if logged_present != (name in present):
            problems.append(f"{name}: the log says {'present' if logged_present else 'absent'}, "
                            f"the state says {'present' if name in present else 'absent'}")
    return problems


# -- the benchmark: a service process, load, crash, restart -----------------------------------


class ServiceProcess:
    """``circinus service`` in a process of its own on 127.0.0.1."""

    def __init__(self, world: Path, store: str, token: str, log: Path,
                 extra: Sequence[str] = (), port: int | None = None) -> None:
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        env = {**os.environ, "CIRCINUS_SERVICE_TOKEN": token}
        self.started = time.monotonic()
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "circinus", "service", str(world), "--store",
                 store, "--port", str(self.port), *extra],
                stdout=out, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds from the start of the process until ``/readyz`` answers 200."""
        deadline = self.started + timeout_s
        headers = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", headers=headers, timeout=5).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the service was not ready within {timeout_s} s")

    def cpu_seconds(self) -> float | None:
        """CPU time the process has used so far (user + system), s; ``None`` off Linux."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def queries(self) -> dict[str, Any]:
        """``GET /v1/queries``: the admitted and waiting counts and every present query."""
        r = httpx.get(f"{self.url}/v1/queries", timeout=60,
                      headers={"Authorization": f"Bearer {self.token}"})
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def present(self) -> set[str]:
        return {q["name"] for q in self.queries()["queries"]}

    def kill(self) -> None:
        """SIGKILL, at once."""
        self.proc.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        """End the process whatever it is doing (the bench interrupted): SIGTERM, then
        SIGKILL after 1 s (the store is durable by design; the bench's own is thrown away)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_service_bench(world: Path, store: str, workdir: Path, *, operations: int,
                      concurrency: int, seed: int = 0, kill: bool = True,
                      ready_timeout_s: float = 1800.0) -> dict[str, Any]:
    """Start a service on ``world`` with ``store`` (empty), load it (killing it half way when
    ``kill``), restart it, check the log, then measure a restart at rest: the report as JSON
    data."""
    import yaml

    data = yaml.safe_load(world.read_text(encoding="utf-8"))
    pool = [{k: v for k, v in q.items() if k != "name"} for q in data["queries"]]
    token = f"bench-{random.Random(seed).getrandbits(96):024x}"
    log = workdir / "service.log"
    started: list[ServiceProcess] = []
    try:
        return _run(world, store, token, log, pool, data.get("name"), started,
                    operations=operations, concurrency=concurrency, seed=seed, kill=kill,
                    ready_timeout_s=ready_timeout_s)
    finally:
        # interrupted (Ctrl-C, SIGTERM) or failed: no service outlives the bench
        for process in started:
            process.close()


def _run(world: Path, store: str, token: str, log: Path, pool: list[dict[str, Any]],
         name: str | None, started: list[ServiceProcess], *, operations: int,
         concurrency: int, seed: int, kill: bool, ready_timeout_s: float) -> dict[str, Any]:
    from circinus.service.store import DecisionStore

    def service(port: int | None = None) -> ServiceProcess:
        started.append(ServiceProcess(world, store, token, log, port=port))
        return started[-1]

    first = service()
    report: dict[str, Any] = {"benchmark": "service", "world": name,
                              "queries": len(pool), "operations": operations,
                              "concurrency": concurrency, "seed": seed,
                              "cpus": os.cpu_count(), "load_average": list(os.getloadavg())}
    report["start_seconds"] = first.wait_ready(ready_timeout_s)
    report["start_cpu_seconds"] = first.cpu_seconds()
    report["admitted_at_start"] = first.queries()["admitted"]
    cpu: list[float | None] = [report["start_cpu_seconds"]]
    running = [first]
    acked_before_kill: list[int] = []

    def crash() -> None:
        cpu.append(first.cpu_seconds())
        acked_before_kill.append(sum(r.acknowledged for r in load.requests))
        first.kill()
        first.proc.wait(timeout=60)
        running.append(service(first.port))
        report["restart_after_kill_seconds"] = running[-1].wait_ready(ready_timeout_s)
        report["restart_after_kill_cpu_seconds"] = running[-1].cpu_seconds()

    load = Load()
    load = asyncio.run(drive(first.url, token, pool, operations=operations,
                             concurrency=concurrency, seed=seed, load=load,
                             kill_after=operations // 2 if kill else None, kill=crash))
    if kill and not acked_before_kill:
        crash()  # too few acknowledged to reach half way: the kill comes at the end
    if not kill:
        cpu.append(first.cpu_seconds())
        report["restart_after_kill_seconds"] = report["restart_after_kill_cpu_seconds"] = None
    report["load"] = load.summary()
    before, after = cpu[0], cpu[-1]
    if before is not None and after is not None and len(cpu) == 2:
        # The first process's own CPU time per acknowledged decision (until the kill): what
        # the writer needs on an idle core, whatever the machine's other load.
        acked = acked_before_kill[0] if acked_before_kill else report["load"]["acknowledged"]
        report["load"]["server_cpu_ms_per_decision"] = 1000 * (after - before) / max(acked, 1)
    second = running[-1]
    state = second.queries()
    present = {q["name"] for q in state["queries"]}
    report["admitted_after_load"] = state["admitted"]
    db = DecisionStore(store)
    problems = check_against_log(load, db.decisions(), present)
    db.close()
    report["present_after_restart"] = len(present)
    report["durability_problems"] = problems
    second.stop()
    third = service()
    report["restart_seconds"] = third.wait_ready(ready_timeout_s)
    report["restart_cpu_seconds"] = third.cpu_seconds()
    third.stop()
    return report


