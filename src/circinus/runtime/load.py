"""The load ``circinus serve`` drives: each admitted query's arrivals sent to its pipeline's
ingress, every request timed from the moment it was due.

NOTE: the schedule is drawn before the run (:func:`schedule`): per admitted query, arrival
times from the arrival process at the query's rate (seeded per query, as the simulator seeds
them) and, per arrival, an input of the pipeline's dataset (a seeded permutation, cycled). A
request's latency runs from its due time, so a driver that falls behind shows as latency, not
as a lighter load. At most ``max_in_flight`` requests wait at once; one due beyond that is not
sent and counted as dropped (a bound on what a saturated plan can pile up). A request not
answered within ``timeout_s`` counts as never answered.

:func:`schedule` and :func:`machine_sample` are plain Python; :func:`drive` needs Ray handles.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
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


# --- the machine --------------------------------------------------------------------------------


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from ``/proc/stat``."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [float(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    total = sum(values[:8])
    return total - idle, total


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def tree_rss_gb(root: int | None = None) -> float:
    """Resident memory of process ``root`` (default: this one) and all its descendants, GB."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        ppid = int(fields.get("PPid", "0").strip() or 0)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0] or 0)
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / 1024**2
