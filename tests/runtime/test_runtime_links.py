"""Emulated links: processor sharing on a link with a capacity, solo times elsewhere."""

from __future__ import annotations

import asyncio
import time

import pytest

from circinus.runtime.config import LanEmulation, LinkEmulation
from circinus.runtime.links import MBIT_PER_KB, Network, SharedLink, message_seconds


def test_a_message_alone_takes_size_over_bandwidth() -> None:
    link = SharedLink(bandwidth_mbps=10.0, capacity_mbps=10.0)
    link.add(0.0, 1.0)
    assert link.next_delivery() == pytest.approx(0.1)
    assert link.advance(0.05) == []
    assert link.advance(0.1) == [1]
    assert link.in_flight == 0


def test_two_messages_together_share_the_capacity() -> None:
    link = SharedLink(bandwidth_mbps=10.0, capacity_mbps=10.0)
    a = link.add(0.0, 1.0)
    b = link.add(0.0, 1.0)
    assert link.next_delivery() == pytest.approx(0.2)
    assert link.advance(0.2) == [a, b]


def test_a_late_message_slows_the_first_only_while_both_are_in_flight() -> None:
    # 1 Mbit at 10 Mbit/s alone for 0.05 s (0.5 Mbit sent), then both at 5 Mbit/s: the first
    # needs 0.1 s more (done at 0.15); the second has sent 0.5 Mbit by then and finishes alone
    # at 10 Mbit/s 0.05 s later (0.2).
    link = SharedLink(bandwidth_mbps=10.0, capacity_mbps=10.0)
    a = link.add(0.0, 1.0)
    b = link.add(0.05, 1.0)
    assert link.next_delivery() == pytest.approx(0.15)
    assert link.advance(0.15) == [a]
    assert link.next_delivery() == pytest.approx(0.2)
    assert link.advance(0.3) == [b]


def test_advance_past_several_deliveries_applies_each_rate_in_turn() -> None:
    link = SharedLink(bandwidth_mbps=10.0, capacity_mbps=10.0)
    a = link.add(0.0, 0.5)
    b = link.add(0.0, 1.0)
    # both at 5 Mbit/s: a done at 0.1 (b has 0.5 left), then b alone at 10: done at 0.15
    assert link.advance(1.0) == [a, b]


def test_bandwidth_caps_a_message_below_the_capacity() -> None:
    link = SharedLink(bandwidth_mbps=2.0, capacity_mbps=10.0)
    link.add(0.0, 1.0)
    link.add(0.0, 1.0)
    assert link.rate() == 2.0
    assert link.next_delivery() == pytest.approx(0.5)


def test_message_seconds() -> None:
    assert message_seconds(31.0, 20.0, 30.0) == pytest.approx(0.015 + 31 * MBIT_PER_KB / 20)
    assert message_seconds(31.0, None, 0.4) == pytest.approx(0.0002)


def _network(emulate: bool = True) -> Network:
    return Network([LinkEmulation(src="a", dst="b", bandwidth_mbps=8.192, rtt_ms=40.0),
                    LinkEmulation(src="b", dst="a", bandwidth_mbps=8.192, rtt_ms=40.0,
                                  capacity_mbps=8.192)],
                   [LanEmulation(site="a", rtt_ms=10.0)], emulate=emulate)


def test_network_delays() -> None:
    net = _network()
    assert net.delay_of(100.0, ("a", None), ("b", "x")) == pytest.approx(0.02 + 0.1)
    assert net.delay_of(100.0, ("a", "x"), ("a", "y")) == pytest.approx(0.005)
    assert net.delay_of(100.0, ("a", "x"), ("a", "x")) == 0.0
    assert _network(emulate=False).delay_of(100.0, ("a", None), ("b", "x")) == 0.0
    with pytest.raises(KeyError):
        net.delay_of(1.0, ("a", None), ("c", "x"))


def test_network_waits_and_shares_a_link_with_capacity() -> None:
    net = _network()

    async def run() -> tuple[float, float]:
        start = time.monotonic()
        await net.send(100.0, ("a", None), ("b", "x"))  # 20 ms + 100 ms, alone
        alone = time.monotonic() - start
        start = time.monotonic()
        await asyncio.gather(net.send(50.0, ("b", "x"), ("a", "y")),
                             net.send(50.0, ("b", "z"), ("a", "y")))  # 20 ms + 2 x 50 ms
        return alone, time.monotonic() - start

    alone, shared = asyncio.run(run())
    assert 0.115 <= alone < 0.3
    assert 0.115 <= shared < 0.3
