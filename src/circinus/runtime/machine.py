"""The machine a serving run measures on: its cores' busy time, its load, and the processes a
local cluster started (their memory, and stopping every one of them).

Read from ``/proc`` (Linux), as Ray itself runs only there and on macOS.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuTimes:
    """Jiffies of all cores since boot, from ``/proc/stat``."""

    busy: float
    """Not idle: user, system, interrupts and stolen time."""
    total: float
    steal: float
    """Stolen: a virtual machine's cores running another guest of the host."""


def cpu_times() -> CpuTimes:
    """All cores' times since boot (``/proc/stat``'s first line)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [float(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    total = sum(values[:8])
    return CpuTimes(busy=total - idle, total=total, steal=values[7] if len(values) > 7 else 0.0)


def load_average() -> float:
    """The 1-minute load average (0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without it
        return 0.0


def _table() -> tuple[dict[int, list[int]], dict[int, int]]:
    """Every process's children and resident memory (KB), from ``/proc``."""
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
    return children, rss


def _below(root: int, children: dict[int, list[int]]) -> list[int]:
    """``root`` and every process below it."""
    out, todo, seen = [], [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_rss_gb(root: int | None = None) -> float:
    """Resident memory of process ``root`` (default: this one) and all its descendants, GB."""
    children, rss = _table()
    return sum(rss.get(pid, 0) for pid in _below(os.getpid() if root is None else root,
                                                  children)) / 1024**2


KILL_WAIT_S = 5.0
"""How long :func:`stop` waits for the processes it killed to be gone."""

Started = tuple[int, str]
"""A process as ``(pid, start time)``: a pid the kernel gave to another process since is not
the same process."""


def descendants(roots: list[int]) -> list[Started]:
    """The processes ``roots`` and every process below them, now."""
    children, _ = _table()
    out = []
    for pid in dict.fromkeys(p for root in roots for p in _below(root, children)):
        if (began := _start_time(pid)) is not None:
            out.append((pid, began))
    return out


def stop(processes: list[Started], *, grace_s: float = 10.0) -> list[int]:
    """Wait up to ``grace_s`` for ``processes`` to end, then kill those left (SIGKILL); the
    pids that had to be killed.

    NOTE: stopping a local Ray cluster's nodes normally ends their workers and agents too, but
    agents can outlive a node stopped while serving was interrupted, re-parented and renamed
    (``ray::DashboardAgent``), naming no session. The cluster records its nodes' processes and
    everything below them before it stops them, and ends what is left of those, and nothing
    else.
    """
    left = _waited([p for p in processes if alive(p)], grace_s, step_s=0.2)
    for pid, _ in left:
        with contextlib.suppress(OSError):  # ended meanwhile
            os.kill(pid, signal.SIGKILL)
    _waited(left, KILL_WAIT_S, step_s=0.05)  # a killed process takes a moment to go
    return [pid for pid, _ in left]


def _waited(processes: list[Started], seconds: float, *, step_s: float) -> list[Started]:
    """Those of ``processes`` still running after up to ``seconds`` of waiting for them."""
    until = time.monotonic() + seconds
    while processes and time.monotonic() < until:
        time.sleep(step_s)
        processes = [p for p in processes if alive(p)]
    return processes


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (the state first), or ``None``
    when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    fields = _stat(pid)
    return None if fields is None else fields[19]


def alive(process: Started) -> bool:
    """The same process still runs (a zombie does not)."""
    pid, began = process
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and fields[19] == began
