"""The machine's processes: what a local cluster started, and stopping every one of them."""

from __future__ import annotations

import subprocess
import sys
import time

from circinus.runtime.machine import alive, cpu_times, descendants, stop, tree_rss_gb


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_descendants_follow_the_tree_below_the_roots() -> None:
    # a child that starts a grandchild, both sleeping
    parent = _python("import subprocess, sys, time; "
                     "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
                     "time.sleep(30)")
    try:
        deadline = time.monotonic() + 10
        while len(found := descendants([parent.pid])) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(found) == 2 and found[0][0] == parent.pid
        assert all(alive(p) for p in found)
        assert tree_rss_gb(parent.pid) > 0
    finally:
        killed = stop(found, grace_s=0.0)
        parent.wait()
    assert sorted(killed) == sorted(pid for pid, _ in found)
    assert not [p for p in found if alive(p)]


def test_stop_waits_for_what_ends_and_kills_only_what_is_left() -> None:
    quick = _python("import time; time.sleep(0.3)")
    slow = _python("import time; time.sleep(30)")
    procs = descendants([quick.pid, slow.pid])
    try:
        killed = stop(procs, grace_s=3.0)
    finally:
        quick.wait()
        slow.wait()
    assert killed == [slow.pid]


def test_a_pid_given_to_another_process_is_not_the_same_process() -> None:
    child = _python("pass")
    (started,) = descendants([child.pid])
    child.wait()
    assert not alive(started)
    assert not alive((started[0], "0"))  # another start time: another process


def test_cpu_times_count_stolen_time_within_busy_time() -> None:
    t = cpu_times()
    assert 0 <= t.steal <= t.busy <= t.total
    assert cpu_times().total >= t.total
