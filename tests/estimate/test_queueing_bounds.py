"""Erlang's B formula stays exact and quick however many servers a link's capacity holds."""

from __future__ import annotations

import random
import time

from circinus.estimate.queueing import erlang_b, shared_link_slowdown


def _recursion(servers: int, offered: float) -> float:
    """The textbook recursion B_k = a B_{k-1} / (k + a B_{k-1}), one step per server."""
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b


def test_erlang_b_equals_the_full_recursion() -> None:
    rng = random.Random(0)
    for _ in range(200):
        servers = rng.randint(1, 20_000)
        offered = rng.uniform(0.0, 1.5) * servers
        exact = _recursion(servers, offered)
        # Equal to 12 digits, or both below 1e-300 (the fast path stops there: it is 0).
        assert abs(erlang_b(servers, offered) - exact) <= 1e-12 * exact + 1e-300


def test_a_million_servers_take_milliseconds() -> None:
    start = time.perf_counter()
    for rho in (0.5, 0.9, 0.999):
        assert 0.0 <= erlang_b(1_000_000, rho * 1_000_000) < 1.0
        assert 1.0 <= shared_link_slowdown(rho, 1_000_000.0) < 2.0
    assert time.perf_counter() - start < 0.5
