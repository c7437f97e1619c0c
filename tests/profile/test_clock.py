"""The profiler's clock leaves out the time a call waited for a core."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from circinus.profile.clock import StallFreeClock


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _work(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def _timed(clock: StallFreeClock, n: int) -> tuple[float, float]:
    """(stall-free ms, wall ms) of one fixed piece of work."""
    t0 = time.perf_counter()
    mark = clock.start()
    _work(n)
    return clock.stop(mark), (time.perf_counter() - t0) * 1000.0


@pytest.mark.skipif(not StallFreeClock().corrects or not hasattr(os, "sched_setaffinity"),
                    reason="needs Linux scheduler statistics and CPU affinity")
def test_a_call_sharing_its_core_is_timed_as_if_alone() -> None:
    clock = StallFreeClock()
    core = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    n = 400_000
    os.sched_setaffinity(0, {core})
    try:
        alone = min(_timed(clock, n)[0] for _ in range(5))
        # three processes spinning on the same core: the call gets about a quarter of it
        ctx = multiprocessing.get_context("fork")
        rivals = [ctx.Process(target=_spin, args=(3.0,), daemon=True) for _ in range(3)]
        for p in rivals:
            p.start()
        time.sleep(0.2)
        shared = [_timed(clock, n) for _ in range(5)]
        for p in rivals:
            p.terminate()
            p.join()
    finally:
        os.sched_setaffinity(0, before)
    corrected = sorted(s for s, _ in shared)[2]
    wall = sorted(w for _, w in shared)[2]
    assert wall > 2.0 * alone  # the stalls are real
    assert corrected < 1.5 * alone  # and left out


def test_the_clock_never_goes_backwards() -> None:
    clock = StallFreeClock()
    mark = clock.start()
    assert clock.stop(mark) >= 0.0
    time.sleep(0.01)
    assert clock.stop(mark) >= 9.0
