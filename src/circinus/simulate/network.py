"""Transfers between devices: LAN and link arithmetic, and links shared by processor sharing.

NOTE: one message takes ``size / bandwidth + rtt / 2``: on the same device nothing, inside a site
the site's ``lan_*`` figures (LAN traffic is unlimited, so transfers there never slow each
other), between sites the link's. A link with ``capacity_mbps`` is shared by all the transfers
in flight on it, of every query, by *processor sharing*: with ``n`` transfers in flight each
gets ``min(bandwidth_mbps, capacity_mbps / n)``. That is how concurrent TCP flows share a
bottleneck (each also limited by its own path's ``bandwidth_mbps``), and it keeps a lone message
at the time the world format states; a FIFO pipe would instead make a small message wait behind
a large one. The half round trip is added after the message has left the wire. A link without
``capacity_mbps`` is unlimited: every transfer sees its full bandwidth.

The shared-link kernel tracks one "virtual time" (service attained by any flow in flight, in
Mbit): a flow that enters at virtual time ``V`` leaves when the virtual time reaches ``V + size``.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

MBIT_PER_KB = 8.192e-3
"""One KB (1,024 bytes) is 8,192 bits = 8.192e-3 Mbit."""


def message_seconds(size_kb: float, bandwidth_mbps: float | None, rtt_ms: float) -> float:
    """Time of one message alone on its path: ``size / bandwidth + rtt / 2``, seconds.

    ``bandwidth_mbps=None`` means no wire time (a site without ``lan_bandwidth_mbps``). Example:
    125 KB over 8.192 Mbit/s with a 20 ms round trip take 0.125 + 0.010 = 0.135 s.
    """
    wire = 0.0 if bandwidth_mbps is None else size_kb * MBIT_PER_KB / bandwidth_mbps
    return wire + rtt_ms / 2000.0


def max_in_flight(start: np.ndarray, finish: np.ndarray) -> int:
    """The largest number of intervals ``[start, finish)`` that overlap at one instant."""
    if len(start) == 0:
        return 0
    times = np.concatenate([start, finish])
    delta = np.concatenate([np.ones(len(start)), -np.ones(len(finish))])
    order = np.lexsort((delta, times))  # at a tie, a departure before an arrival
    return int(np.max(np.cumsum(delta[order])))


def shared_link_finish(start: np.ndarray, mbit: np.ndarray, *, bandwidth_mbps: float,
                       capacity_mbps: float) -> np.ndarray:
    """When each transfer leaves the wire of a processor-shared link, seconds.

    Transfer ``i`` enters at ``start[i]`` with ``mbit[i]`` megabits; with ``n`` in flight each
    is sent at ``min(bandwidth_mbps, capacity_mbps / n)`` Mbit/s. Example: two 1-Mbit transfers
    entering together a link of 1 Mbit/s capacity both leave at 2 s; alone, one leaves at 1 s.
    When the nominal transfers never overlap more than the capacity allows, nobody slows down
    and the nominal times are returned without the event loop.
    """
    m = len(start)
    solo = min(bandwidth_mbps, capacity_mbps)
    nominal = start + mbit / solo
    if m == 0 or max_in_flight(start, nominal) * bandwidth_mbps <= capacity_mbps:
        return nominal
    order = np.argsort(start, kind="stable")
    ts = start[order].tolist()
    xs = mbit[order].tolist()
    out = [0.0] * m
    flights: list[tuple[float, int]] = []  # (virtual time at which the flow is done, its slot)
    v = t = 0.0
    i = 0
    push, pop = heapq.heappush, heapq.heappop
    while i < m or flights:
        n = len(flights)
        rate = capacity_mbps / n if n else 0.0
        if rate > bandwidth_mbps:
            rate = bandwidth_mbps
        t_done = t + max(flights[0][0] - v, 0.0) / rate if n else math.inf
        if i < m and ts[i] <= t_done:
            v += rate * (ts[i] - t)
            t = ts[i]
            push(flights, (v + xs[i], i))
            i += 1
        else:
            v, k = pop(flights)
            t = t_done
            out[k] = t
    finish = np.empty(m)
    finish[order] = out
    return finish
