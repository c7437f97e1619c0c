"""Emulated network: messages between sites delayed as the world's links would delay them.

NOTE: on one machine every site's Ray node shares the loopback, so a message from one site to
another is *emulated*: the ingress that forwards it waits ``rtt / 2 + size / bandwidth`` before
handing it on. On a link with a ``capacity_mbps`` the wire time is processor sharing: the
messages in flight split the capacity equally, each never faster than ``bandwidth_mbps`` (the
simulator's and the estimator's model of a shared link); without one every message sees the
full bandwidth. Messages between two devices of one site take the site's LAN time, and nothing
on the same device. The state of a shared link lives in the ingress of one pipeline: messages
of two pipelines on the same link do not slow each other (docs/serving.md).

:class:`SharedLink` is the pure kernel (the clock is passed in); :class:`Network` is the asyncio
shell the ingress awaits. Neither needs Ray.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable

from circinus.runtime.config import LanEmulation, LinkEmulation

MBIT_PER_KB = 8.192e-3
"""1 KB (1,024 bytes) = 8,192 bits = 8.192e-3 Mbit."""
DONE_S = 1e-6
"""A message whose remaining wire time is under this is delivered (timer granularity)."""


class SharedLink:
    """Processor sharing of one link among the messages in flight.

    Each of ``n`` messages in flight is sent at ``min(bandwidth, capacity / n)`` Mbit/s.

    Example: capacity 10 Mbit/s, bandwidth 10; a 1 Mbit message alone takes 0.1 s; two sent
    together take 0.2 s each.
    """

    def __init__(self, *, bandwidth_mbps: float, capacity_mbps: float) -> None:
        if not (bandwidth_mbps > 0 and capacity_mbps > 0):
            raise ValueError(f"bandwidth and capacity must be > 0 Mbit/s, got "
                             f"{bandwidth_mbps!r} and {capacity_mbps!r}")
        self.bandwidth_mbps = bandwidth_mbps
        self.capacity_mbps = capacity_mbps
        self._left: dict[int, float] = {}  # message id -> Mbit still to send
        self._clock = 0.0
        self._next_id = 0

    @property
    def in_flight(self) -> int:
        """Messages being sent."""
        return len(self._left)

    def rate(self) -> float:
        """Mbit/s each message in flight is sent at now."""
        return min(self.bandwidth_mbps, self.capacity_mbps / max(1, len(self._left)))

    def add(self, now: float, mbit: float) -> int:
        """Start sending ``mbit`` at time ``now`` (s); returns the message's id. Messages
        finished by ``now`` must be collected with :meth:`advance` first."""
        self.advance(now)
        self._next_id += 1
        self._left[self._next_id] = max(mbit, 0.0)
        return self._next_id

    def advance(self, now: float) -> list[int]:
        """Move the clock to ``now``; the ids of the messages delivered meanwhile, in order."""
        done: list[int] = []
        dt = max(0.0, now - self._clock)
        self._clock = max(self._clock, now)
        while self._left:
            rate = self.rate()
            first = min(self._left.values())
            step = first / rate
            if step > dt + DONE_S:
                for k in self._left:
                    self._left[k] -= rate * dt
                break
            dt = max(0.0, dt - step)
            for k in list(self._left):
                self._left[k] -= first
                if self._left[k] <= rate * DONE_S:
                    done.append(k)
                    del self._left[k]
        return done

    def next_delivery(self) -> float | None:
        """When the next message will be delivered if none is added (s), or ``None``."""
        if not self._left:
            return None
        return self._clock + min(self._left.values()) / self.rate()


class _AsyncLink:
    """A :class:`SharedLink` on the running event loop: :meth:`send` returns on delivery."""

    def __init__(self, link: SharedLink) -> None:
        self._link = link
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._timer: asyncio.TimerHandle | None = None

    async def send(self, mbit: float) -> None:
        loop = asyncio.get_running_loop()
        self._deliver(self._link.advance(loop.time()))
        fut: asyncio.Future[None] = loop.create_future()
        self._waiting[self._link.add(loop.time(), mbit)] = fut
        self._arm(loop)
        await fut

    def _deliver(self, ids: Iterable[int]) -> None:
        for k in ids:
            fut = self._waiting.pop(k)
            if not fut.done():
                fut.set_result(None)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self._link.next_delivery()
        if when is not None:
            self._timer = loop.call_at(when, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._deliver(self._link.advance(loop.time()))
        self._arm(loop)


def message_seconds(kb: float, bandwidth_mbps: float | None, rtt_ms: float) -> float:
    """Time of one message alone: ``rtt / 2 + size / bandwidth`` (no bandwidth: rtt / 2).

    Example: 31 KB over 20 Mbit/s with a 30 ms RTT: 0.015 + 0.254 / 20 = 0.0277 s.
    """
    wire = 0.0 if bandwidth_mbps is None else kb * MBIT_PER_KB / bandwidth_mbps
    return rtt_ms / 2000.0 + wire


class Network:
    """The emulated links and LANs of a world (see module); ``emulate=False`` delays nothing.

    Raises:
        KeyError: from :meth:`delay_of` / :meth:`send`, for two sites with no link.
    """

    def __init__(self, links: Iterable[LinkEmulation], lans: Iterable[LanEmulation], *,
                 emulate: bool = True) -> None:
        self.emulate = emulate
        self._links = {(ln.src, ln.dst): ln for ln in links}
        self._lans = {lan.site: lan for lan in lans}
        self._shared = {pair: _AsyncLink(SharedLink(bandwidth_mbps=ln.bandwidth_mbps,
                                                    capacity_mbps=ln.capacity_mbps))
                        for pair, ln in self._links.items() if ln.capacity_mbps is not None}

    def delay_of(self, kb: float, src: tuple[str, str | None], dst: tuple[str, str]) -> float:
        """Seconds one message of ``kb`` takes alone from ``(site, device)`` to another
        (``device`` ``None``: a pipeline source at that site)."""
        if not self.emulate or src[1] == dst[1]:
            return 0.0
        if src[0] == dst[0]:
            lan = self._lans.get(src[0])
            return 0.0 if lan is None else message_seconds(kb, lan.bandwidth_mbps, lan.rtt_ms)
        ln = self._links[src[0], dst[0]]
        solo = min(ln.bandwidth_mbps, ln.capacity_mbps or math.inf)
        return message_seconds(kb, solo, ln.rtt_ms)

    async def send(self, kb: float, src: tuple[str, str | None], dst: tuple[str, str]) -> None:
        """Wait as long as the message takes, shared links' other messages included."""
        pair = (src[0], dst[0])
        shared = self._shared.get(pair)
        if not self.emulate or src[1] == dst[1] or shared is None:
            delay = self.delay_of(kb, src, dst)
            if delay > 0:
                await asyncio.sleep(delay)
            return
        await asyncio.sleep(self._links[pair].rtt_ms / 2000.0)
        await shared.send(kb * MBIT_PER_KB)
