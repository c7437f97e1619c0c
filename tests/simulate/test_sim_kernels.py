"""The simulator's pure kernels against brute force and hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from circinus.simulate import PoissonArrivals, TraceArrivals, make_arrivals
from circinus.simulate.network import max_in_flight, message_seconds, shared_link_finish
from circinus.simulate.queues import batch_ready, busy_seconds, fifo_starts, serve_batches
from circinus.simulate.service import draw_service, profile_cv
from circinus.spec.models import LatencyProfile


def _fifo_brute(ready: list[float], service: list[float], servers: int) -> list[float]:
    free = [0.0] * servers
    out = []
    for a, s in zip(ready, service, strict=True):
        k = min(range(servers), key=lambda i: free[i])
        start = max(a, free[k])
        free[k] = start + s
        out.append(start)
    return out


@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 3)), min_size=1, max_size=40),
       st.integers(1, 4))
def test_fifo_matches_brute_force(jobs: list[tuple[float, float]], servers: int) -> None:
    ready = np.sort(np.array([j[0] for j in jobs]))
    service = np.array([j[1] for j in jobs])
    got = fifo_starts(ready, service, servers)
    assert got == pytest.approx(_fifo_brute(ready.tolist(), service.tolist(), servers), abs=1e-9)


def test_fifo_examples() -> None:
    ready, service = np.array([0.0, 0.0, 5.0]), np.array([2.0, 2.0, 2.0])
    assert fifo_starts(ready, service, 1).tolist() == [0.0, 2.0, 5.0]
    assert fifo_starts(ready, service, 2).tolist() == [0.0, 0.0, 5.0]
    never = fifo_starts(np.array([1.0, np.inf]), np.array([1.0, 1.0]), 1)
    assert never[0] == 1.0 and np.isinf(never[1])
    assert len(fifo_starts(np.empty(0), np.empty(0), 3)) == 0


def test_batches_by_index() -> None:
    assert batch_ready(np.array([1.0, 2, 3, 4, 5]), 2).tolist() == [2.0, 4.0]
    assert batch_ready(np.array([1.0, 2, 3]), 1).tolist() == [1.0, 2.0, 3.0]
    assert len(batch_ready(np.array([1.0, 2, 3]), 4)) == 0


def test_serve_batches_example() -> None:
    # The docstring's example: batches (1, 2) with work 1 and 3, then (3, 4) with work 1 and 1.
    got = serve_batches(np.array([3.0, 1, 2, 4]), np.array([1.0, 1, 3, 1]), batch=2,
                        replicas=1, mean_s=1.0, noise=np.ones(2))
    assert got.done.tolist() == [5.0, 4.0, 4.0, 5.0]
    assert got.batch_of.tolist() == [1, 0, 0, 1]
    assert got.ready.tolist() == [2.0, 4.0] and got.start.tolist() == [2.0, 4.0]
    left = serve_batches(np.array([1.0, 2, 3]), np.ones(3), batch=2, replicas=1, mean_s=1.0,
                         noise=np.ones(1))
    assert left.done.tolist() == [3.0, 3.0, np.inf] and left.batch_of.tolist() == [0, 0, -1]


@given(st.lists(st.tuples(st.floats(0, 10), st.sampled_from([0.5, 1.0, 3.0])), min_size=1,
                max_size=40),
       st.integers(1, 4), st.integers(1, 3))
def test_serve_batches_matches_brute_force(requests: list[tuple[float, float]], batch: int,
                                           servers: int) -> None:
    ready = np.array([r[0] for r in requests])
    work = np.array([r[1] for r in requests])
    noise = np.linspace(0.5, 1.5, max(len(requests) // batch, 1))
    got = serve_batches(ready, work, batch=batch, replicas=servers, mean_s=0.7, noise=noise)
    fifo = sorted(range(len(requests)), key=lambda i: (ready[i], i))
    groups = [fifo[k: k + batch] for k in range(0, len(fifo) - batch + 1, batch)]
    at = [max(ready[i] for i in g) for g in groups]
    service = [0.7 * sum(work[i] for i in g) / batch * noise[k] for k, g in enumerate(groups)]
    starts = _fifo_brute(at, service, servers)
    want = [np.inf] * len(requests)
    for g, start, s in zip(groups, starts, service, strict=True):
        for i in g:
            want[i] = start + s
    assert got.done.tolist() == pytest.approx(want, abs=1e-9)


def test_busy_seconds_clips_to_window() -> None:
    start, finish = np.array([0.0, 4.0, 9.0, np.inf]), np.array([2.0, 6.0, 12.0, np.inf])
    assert busy_seconds(start, finish, 1.0, 10.0) == pytest.approx(1 + 2 + 1)


def test_message_seconds_units() -> None:
    assert message_seconds(125, 8.192, 20) == pytest.approx(0.135)  # 1 Mbit at 8.192 Mbit/s
    assert message_seconds(125, None, 0.5) == pytest.approx(0.00025)


def _ps_brute(start: list[float], mbit: list[float], bw: float, cap: float) -> list[float]:
    """Processor sharing stepped event by event on remaining sizes."""
    left = {}
    done = [0.0] * len(start)
    t, i = 0.0, 0
    order = sorted(range(len(start)), key=lambda k: start[k])
    while i < len(order) or left:
        rate = min(bw, cap / len(left)) if left else 0.0
        t_next = start[order[i]] if i < len(order) else np.inf
        t_fin = t + min(left.values()) / rate if left else np.inf
        step = min(t_next, t_fin) - t
        for k in left:
            left[k] -= rate * step
        t += step
        for k in [k for k, v in left.items() if v <= 1e-12]:
            done[k] = t
            del left[k]
        if i < len(order) and start[order[i]] <= t:
            left[order[i]] = mbit[order[i]]
            i += 1
    return done


def test_shared_link_examples() -> None:
    both = shared_link_finish(np.array([0.0, 0.0]), np.array([1.0, 1.0]), bandwidth_mbps=1,
                              capacity_mbps=1)
    assert both.tolist() == pytest.approx([2.0, 2.0])
    staggered = shared_link_finish(np.array([0.0, 0.5]), np.array([1.0, 1.0]),
                                   bandwidth_mbps=1, capacity_mbps=1)
    assert staggered.tolist() == pytest.approx([1.5, 2.0])
    roomy = shared_link_finish(np.array([0.0, 0.0]), np.array([1.0, 1.0]), bandwidth_mbps=1,
                               capacity_mbps=2)
    assert roomy.tolist() == pytest.approx([1.0, 1.0])  # each still limited to its bandwidth
    assert max_in_flight(np.array([0.0, 1.0]), np.array([1.0, 2.0])) == 1  # back to back


@given(st.lists(st.tuples(st.floats(0, 5), st.floats(0.01, 2)), min_size=1, max_size=30),
       st.sampled_from([(1.0, 1.0), (1.0, 2.5), (2.0, 3.0)]))
def test_shared_link_matches_brute_force(flows: list[tuple[float, float]],
                                         link: tuple[float, float]) -> None:
    start = np.array([f[0] for f in flows])
    mbit = np.array([f[1] for f in flows])
    got = shared_link_finish(start, mbit, bandwidth_mbps=link[0], capacity_mbps=link[1])
    want = _ps_brute(start.tolist(), mbit.tolist(), *link)
    assert got == pytest.approx(want, abs=1e-7)


def test_profile_cv_from_p90() -> None:
    assert profile_cv(LatencyProfile(hardware="h", mean_ms=40, p90_ms=48)) == pytest.approx(
        8 / (1.2815515655446004 * 40))
    assert profile_cv(LatencyProfile(hardware="h", mean_ms=40, cv=0.3)) == 0.3


def test_gamma_service_moments() -> None:
    x = draw_service(np.random.default_rng(1), 200_000, 0.02, 0.5)
    assert x.mean() == pytest.approx(0.02, rel=0.01)
    assert x.std() / x.mean() == pytest.approx(0.5, rel=0.02)
    assert np.all(draw_service(np.random.default_rng(1), 5, 0.02, 0.0) == 0.02)


def test_poisson_arrivals_rate_and_extra() -> None:
    t = PoissonArrivals().times(rate=20, until=1000, extra=7, rng=np.random.default_rng(0))
    inside = int(np.searchsorted(t, 1000))
    assert len(t) == inside + 7 and np.all(np.diff(t) >= 0)
    assert inside / 1000 == pytest.approx(20, rel=0.03)
    gaps = np.diff(t)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)


def test_azure_trace_scaled_to_rate_at_seeded_offsets() -> None:
    trace = make_arrivals("azure")
    assert isinstance(trace, TraceArrivals) and trace.name == "azure"
    a = trace.times(rate=5, until=4000, extra=3, rng=np.random.default_rng(1))
    b = trace.times(rate=5, until=4000, extra=3, rng=np.random.default_rng(2))
    assert int(np.searchsorted(a, 4000)) / 4000 == pytest.approx(5, rel=0.15)
    assert not np.array_equal(a[:50], b[:50])  # another stretch of the trace
    again = trace.times(rate=5, until=4000, extra=3, rng=np.random.default_rng(1))
    assert np.array_equal(a, again)
    gaps = trace.unit_gaps
    assert gaps.mean() == pytest.approx(1.0) and gaps.std() > 1.0  # burstier than Poisson


def test_unknown_arrivals() -> None:
    with pytest.raises(ValueError, match="poisson, azure"):
        make_arrivals("uniform")
