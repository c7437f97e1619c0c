"""The online planner as a service: one writer, every decision committed before it is answered.

NOTE: the planner is not thread-safe and its decisions must be ordered, so every request that
reads or changes it runs on one thread (the *writer*), in arrival order. In front of it is a
bounded queue: a request finding ``max_pending`` requests ahead of it is refused at once
(:class:`Busy`, HTTP 429 with ``Retry-After``), and so is every request before the state is
ready or while it is being rebuilt (:class:`NotReady`, HTTP 503).

A decision (:meth:`PlannerService.decide`) is all or nothing. It snapshots the planner, runs
the event, and commits what changed between the two snapshots together with the decision's log
row in one transaction (:mod:`circinus.service.store`); only then is it answered. If the event
fails with the state changed (an unforeseen error), or the commit fails, the planner is rebuilt
from the store, which holds the state of the last committed decision; until that succeeds the
service is not ready. On start the state is rebuilt from the store
(:meth:`~circinus.online.OnlinePlanner.restore`), or, for an empty store, planned from the world
and committed as the first decision.

A request with an ``Idempotency-Key`` that was already decided gets the answer committed with
that decision, without a second decision (the same key on another request is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from circinus.errors import CircinusError, SpecError
from circinus.online import OnlinePlanner, changed
from circinus.online.snapshot import Changes
from circinus.service.metrics import ServiceMetrics
from circinus.service.store import Decision, DecisionStore, StoreError
from circinus.spec.index import WorldIndex

log = logging.getLogger("circinus.service")

T = TypeVar("T")


class ServiceSettings(BaseModel):
    """Limits and options of the service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_pending: int = Field(default=64, ge=1, le=100_000, description="Requests that may wait "
                             "for the planner; beyond them a request is refused with 429.")
    max_body_bytes: int = Field(default=1 << 20, ge=1 << 10, le=1 << 26,
                                description="Largest request body, bytes (413 beyond).")
    max_moves: int = Field(default=4, ge=0, le=64, description="Admitted queries an arrival's "
                           "repair may move.")
    why_not: bool = Field(default=True, description="Give a waiting arrival its nearest "
                          "admissible SLO.")


class NotReady(Exception):
    """The state is not ready (starting, or being rebuilt after a failed commit)."""

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Busy(Exception):
    """The queue in front of the planner is full."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the planner's queue is full")
        self.retry_after = retry_after


class Conflict(CircinusError):
    """The request conflicts with the state (e.g. a query of that name is present)."""


class KeyReused(CircinusError):
    """An idempotency key already used by another request."""


@dataclass(frozen=True)
class Answer:
    """A decision's answer: HTTP status and body."""

    status: int
    body: dict[str, Any]
    replayed: bool = False
    """Whether it is the stored answer of an earlier request with the same idempotency key."""


class PlannerService:
    """The online planner behind one writer thread and a decision store (module note).

    Args:
        world: the world planned on an empty store (a store holding another world's state is
            refused, :class:`~circinus.service.store.StoreError`); or only its name, when the
            store holds its state.
        store: the decision store.
        settings: limits and options.
        fingerprint: the world file's :func:`~circinus.service.store.fingerprint`, kept with
            the state so that a restart with the same file need not read it.
    """

    def __init__(self, world: WorldIndex | str, store: DecisionStore, *,
                 settings: ServiceSettings | None = None, fingerprint: str | None = None) -> None:
        self.world, self.store, self.fingerprint = world, store, fingerprint
        self.settings = settings or ServiceSettings()
        self.metrics = ServiceMetrics()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="circinus-writer")
        self._planner: OnlinePlanner | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._mean_s = 0.05
        """Running mean of a request's time on the writer, s (for ``Retry-After``)."""
        self.status = "starting"
        self.detail: str | None = "the state is being planned or restored"
        self.started = time.monotonic()
        self._retry_at = 0.0
        """When a service left unavailable may next try to rebuild its state (monotonic s)."""
        self.restored: int | None = None
        """Queries restored from the store at start (``None``: planned from the world)."""
        self.abandoned = False
        """Closed while still starting: the writer thread is left running (see :meth:`close`)."""

    # -- life cycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Rebuild the state from the store, or plan the world on an empty store (blocking;
        the service is ready when it returns). Raises :class:`StoreError` or a
        :class:`~circinus.errors.SpecError` of the stored state."""
        try:
            self._planner = self._load()
        except BaseException as exc:
            self.status, self.detail = "unavailable", _one_line(exc)
            raise
        if self.restored is None:
            gc.collect()  # the planning's garbage
        # What exists now lives as long as the service: keep it out of the cyclic collector's
        # full collections (about a second each at 10,000 queries; see circinus.bench.online).
        gc.freeze()
        self.metrics.observe(self._planner)
        self.metrics.ready_seconds.set(time.monotonic() - self.started)
        self.status, self.detail = "ok", None

    def start_in_background(self) -> Future[None]:
        """:meth:`open` on the writer; requests are refused with :class:`NotReady` until it is
        done."""
        return self._executor.submit(self.open)

    def _load(self) -> OnlinePlanner:
        stored, _ = self.store.identity()
        world = self.world
        name = world if isinstance(world, str) else world.world.name
        if stored is not None and stored != name:
            raise StoreError(f"store {self.store.display_url!r} holds the state of world "
                             f"{stored!r}, not {name!r}; use another --store")
        with _collector_paused():
            saved = self.store.load()
        s = self.settings
        if saved is None:
            if isinstance(world, str):
                raise StoreError(f"store {self.store.display_url!r} holds no state; give the "
                                 "world to plan")
            planner = OnlinePlanner(world, max_moves=s.max_moves, why_not=s.why_not)
            snap = planner.snapshot()
            self.store.commit(Changes(snap.topology, tuple(snap.records()), ()),
                              Decision("start", name, 200), world=name,
                              fingerprint=self.fingerprint)
            return planner
        self.restored = len(saved.records)
        with _collector_paused():
            return OnlinePlanner.restore(saved.topology, saved.records, max_moves=s.max_moves,
                                         why_not=s.why_not)

    def close(self) -> None:
        """Stop the writer (after the request it serves) and release the store. While the
        state is still being planned or restored at start-up the writer is left to the
        process's exit instead (:attr:`abandoned`): nothing has been acknowledged, and the
        start-up's commit is one transaction, so ending there is as safe as a kill."""
        if self.status == "starting":
            self.abandoned = True
            self._executor.shutdown(wait=False, cancel_futures=True)
            return
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    # -- requests ----------------------------------------------------------------------------

    async def run(self, job: Callable[[OnlinePlanner], T]) -> T:
        """Run ``job`` on the writer, after the requests ahead of it; raises :class:`NotReady`
        or :class:`Busy` at once instead of queueing when it cannot be served."""
        if self.status != "ok":
            self.metrics.refused.labels("503").inc()
            if self.status == "unavailable" and time.monotonic() > self._retry_at:
                self._retry_at = time.monotonic() + 5.0  # one rebuild at a time
                self._executor.submit(self._recover)
            raise NotReady(self.detail or "not ready")
        with self._lock:
            if self._pending >= self.settings.max_pending:
                self.metrics.refused.labels("429").inc()
                raise Busy(max(1, math.ceil(self._pending * self._mean_s)))
            self._pending += 1
            self.metrics.queue.set(self._pending)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._serve, job)
        finally:
            with self._lock:
                self._pending -= 1
                self.metrics.queue.set(self._pending)

    def _serve(self, job: Callable[[OnlinePlanner], T]) -> T:
        t0 = time.monotonic()
        try:
            planner = self._planner
            if planner is None or self.status != "ok":
                if not self._recover():
                    raise NotReady(self.detail or "not ready")
                planner = self._planner
                assert planner is not None
            return job(planner)
        finally:
            self._mean_s = 0.9 * self._mean_s + 0.1 * (time.monotonic() - t0)

    def decide(self, planner: OnlinePlanner, kind: str, subject: str,
               act: Callable[[OnlinePlanner], tuple[int, BaseModel]], *,
               key: str | None = None, request: str | None = None) -> Answer:
        """Make one decision on the writer (module note): ``act`` changes the planner and
        returns the answer's status and body; ``key`` and ``request``: the request's
        idempotency key and :func:`~circinus.service.store.digest`.

        Raises what ``act`` raises for a bad request (the state then unchanged), KeyReused,
        StoreError (the state is rebuilt from the store) or NotReady.
        """
        if key is not None:
            assert request is not None
            earlier = self.store.replay(key, request)
            if earlier is not None:
                if not earlier.same_request:
                    raise KeyReused(f"Idempotency-Key {key!r} was used by another request; "
                                    "use a new key for a new request")
                return Answer(earlier.status, earlier.response or {}, replayed=True)
        t0 = time.perf_counter()
        before = planner.snapshot()
        try:
            status, body = act(planner)
        except CircinusError:
            if not changed(before, planner.snapshot()).empty:
                self._fail("a refused request changed the state")
            raise
        except Exception:
            self._fail("a decision failed")
            raise
        answer = body.model_dump(mode="json")
        try:
            self.store.commit(changed(before, planner.snapshot()), Decision(
                kind, subject, status, answer if key is not None else None, key, request))
        except StoreError:
            self._fail("a commit failed")
            raise
        seconds = time.perf_counter() - t0
        self.metrics.decisions.labels(kind).inc()
        if kind == "arrive":
            if answer.get("admitted"):
                self.metrics.admissions.inc()
            else:
                why = answer.get("why_not") or {}
                self.metrics.rejections.labels(why.get("binding") or "unknown").inc()
        self.metrics.latency.labels(kind).observe(seconds)
        self.metrics.observe(planner)
        return Answer(status, answer)

    # -- recovery ----------------------------------------------------------------------------

    def _fail(self, what: str) -> None:
        """The planner may hold what the store does not: rebuild it from the store."""
        log.error("%s; rebuilding the state from the store", what, exc_info=True)
        self._planner = None
        self.status, self.detail = "unavailable", f"{what}; rebuilding the state from the store"
        self._recover()

    def _recover(self) -> bool:
        """Rebuild the planner from the store (on the writer); whether it is ready."""
        try:
            with _collector_paused():
                saved = self.store.load()
                if saved is None:
                    raise StoreError("the store is empty")
                s = self.settings
                self._planner = OnlinePlanner.restore(saved.topology, saved.records,
                                                      max_moves=s.max_moves, why_not=s.why_not)
        except (StoreError, SpecError) as exc:
            self.status, self.detail = "unavailable", f"rebuilding from the store: {exc}"
            log.error("cannot rebuild the state from the store: %s", exc)
            return False
        self.metrics.observe(self._planner)
        self.status, self.detail = "ok", None
        return True


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the state is rebuilt.

    NOTE: a restore creates hundreds of thousands of live objects (the candidates of every
    query) and next to no cyclic garbage; the collector, triggered by the allocations, would
    walk the growing heap again and again: at 10,000 queries 12.1 s of CPU with it, 2.8 s
    without (measured side by side on one store).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
