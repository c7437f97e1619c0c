"""The profiler's clock: how long a stage call took on its own core, stalls left out.

NOTE: a stage's service time is profiled as if the stage had its device to itself (a hardware
class such as "one core of the machine that profiles"). On a machine that also runs other work,
the wall time of a call includes the time its thread was ready to run but waited for a core;
on a loaded 2-core machine that is 20–40 ms stalls in calls of 20 ms, which widen every
confidence interval and send the profiler measuring again and again. Linux keeps, per thread,
the time spent runnable but waiting on a run queue (the second field of
``/proc/thread-self/schedstat``, in ns; see the kernel's Documentation/scheduler/sched-stats).
:class:`StallFreeClock` takes it off the wall time, so that what is left is the time the call
ran or waited on something other than a core (I/O, a lock, a sleep) — the time it would take
on a core of its own. Where the file is missing (not Linux, or a kernel without scheduler
statistics) it is the wall clock.

Only the calling thread's waits are seen: an operator that spreads work over threads of its own
is corrected for the stalls of the thread that calls it alone.
"""

from __future__ import annotations

import time
from pathlib import Path

_SCHEDSTAT = Path("/proc/thread-self/schedstat")


def _run_queue_ns() -> int | None:
    """This thread's time spent waiting on a run queue so far, ns (None: not available)."""
    try:
        fields = _SCHEDSTAT.read_text().split()
        return int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


class StallFreeClock:
    """Times calls in ms, less the time their thread waited for a core (see module).

    Example:
        >>> clock = StallFreeClock()
        >>> start = clock.start()
        >>> elapsed_ms = clock.stop(start)   # >= 0
    """

    def __init__(self) -> None:
        self.corrects = _run_queue_ns() is not None
        """Whether stalls are left out (False: plain wall time)."""

    def start(self) -> tuple[float, int]:
        """A mark to pass to :meth:`stop`."""
        waited = _run_queue_ns() if self.corrects else None
        return time.perf_counter(), waited or 0

    def stop(self, mark: tuple[float, int]) -> float:
        """Milliseconds since ``mark`` without the run-queue waits of this thread (≥ 0)."""
        wall = time.perf_counter() - mark[0]
        if not self.corrects:
            return wall * 1000.0
        waited = _run_queue_ns()
        stalled = 0.0 if waited is None else max(0, waited - mark[1]) * 1e-9
        return max(0.0, wall - stalled) * 1000.0
