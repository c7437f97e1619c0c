"""The load ``circinus serve`` drives: each admitted query's arrivals sent to its pipeline's
ingress, every request timed from the moment it was due.

NOTE: the schedule is drawn before the run (:func:`schedule`): per admitted query, arrival
times from the arrival process at the query's rate (seeded per query, as the simulator seeds
them) and, per arrival, an input of the pipeline's dataset (a seeded permutation, cycled). A
request's latency runs from its due time, so a driver that falls behind shows as latency, not
as a lighter load. At most ``max_in_flight`` requests wait at once; one due beyond that is not
sent and counted as dropped (a bound on what a saturated plan can pile up). A request not
answered within ``timeout_s`` counts as never answered.

:func:`schedule` is plain Python; :func:`drive` needs Ray handles. What the machine did meanwhile
is read by :mod:`circinus.runtime.machine`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from circinus.plan.file import PlanFile
from circinus.runtime.results import Record
from circinus.simulate.arrivals import BaseArrivals


@dataclass(frozen=True)
class LoadSettings:
    """How long and how hard to load (see module)."""

    duration_s: float = 120.0
    warmup_s: float = 15.0
    seed: int = 0
    max_in_flight: int = 2_000
    timeout_s: float = 30.0
    rate_scale: float = 1.0
    """Every query's rate is multiplied by this (calibration probes below the plan's load)."""


@dataclass(frozen=True)
class Arrival:
    """One request to send."""

    due_s: float
    query: str
    pipeline: str
    input_id: int


def schedule(plan: PlanFile, arrivals: BaseArrivals, settings: LoadSettings,
             inputs: Mapping[str, int]) -> list[Arrival]:
    """Every request of the run in due order (see module); ``inputs``: pipeline -> dataset
    size."""
    out: list[Arrival] = []
    for position, q in enumerate(plan.queries):
        if not q.admitted:
            continue
        rng = np.random.default_rng([settings.seed, position])
        times = arrivals.times(rate=q.rate_rps * settings.rate_scale,
                               until=settings.duration_s, extra=0, rng=rng)
        order = rng.permutation(inputs[q.pipeline])
        out.extend(Arrival(float(t), q.name, q.pipeline, int(order[i % len(order)]))
                   for i, t in enumerate(times))
    out.sort(key=lambda a: (a.due_s, a.query))
    return out


async def drive(send: Callable[[Arrival], Any], plan_arrivals: Sequence[Arrival],
                correct: Callable[[Arrival, Any], bool],
                settings: LoadSettings) -> tuple[list[Record], int]:
    """Send every arrival when due through ``send`` (returns an awaitable of the answer);
    the records of all of them (warm-up included) and how many were dropped."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    records: list[Record] = []
    pending: set[asyncio.Task[None]] = set()
    dropped = 0

    async def one(a: Arrival) -> None:
        due = start + a.due_s
        try:
            answer = await asyncio.wait_for(send(a), timeout=settings.timeout_s)
        except TimeoutError:
            records.append(Record(a.query, a.due_s, float("inf"), False))
            return
        records.append(Record(a.query, a.due_s, loop.time() - due, correct(a, answer)))

    for a in plan_arrivals:
        wait = start + a.due_s - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if len(pending) >= settings.max_in_flight:
            dropped += 1
            records.append(Record(a.query, a.due_s, float("inf"), False))
            continue
        task = asyncio.ensure_future(one(a))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    return records, dropped
