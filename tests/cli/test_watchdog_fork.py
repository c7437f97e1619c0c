"""A worker process's signals are not its parent's Ctrl-C: the SIGTERM a pool ends its workers
with left the parent's interrupt watchdog to end it with 130 (a report, after its load sweep)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import multiprocessing, time
    from circinus.cli.common import arm_interrupt_watchdog

    def square(x):
        return x * x

    if __name__ == "__main__":
        arm_interrupt_watchdog(grace_s=0.2)
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as pool:  # leaving the block terminates the worker with SIGTERM
            assert pool.map(square, [3]) == [9]
        time.sleep(1.0)  # past the watchdog's grace
        print("done")
""")


def test_a_pool_ending_its_workers_does_not_interrupt_the_parent() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"
    assert "interrupted" not in run.stderr
