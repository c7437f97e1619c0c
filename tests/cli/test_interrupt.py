"""Ctrl-C: every command ends within 2 s, with one line that says so and exit code 130.

Each case starts the real command in a process of its own, lets it get busy (a marker on
stderr, or a delay past start-up), sends SIGINT as a terminal's Ctrl-C does, and times the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _sigint_default() -> None:
    """In the child before it runs: Ctrl-C's default disposition, whatever the test runner had
    (a shell starts background jobs with SIGINT ignored, and a program keeps it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _children(pid: int) -> set[int]:
    """Every descendant process of ``pid`` (read from /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def interrupt(args: list[str], *, cwd: Path, busy: str | None = None, after: float = 4.0,
              env: dict[str, str] | None = None,
              sig: int = signal.SIGINT) -> tuple[int, float, str, set[int]]:
    """Run ``circinus ARGS``, send ``sig`` (Ctrl-C's SIGINT) once it is busy (``busy`` seen on
    stderr, or ``after`` seconds), and return (exit code, seconds from the signal to exit,
    stderr, the child processes it had)."""
    proc = subprocess.Popen([sys.executable, "-m", "circinus", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, preexec_fn=_sigint_default)
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    seen = b""
    if busy is not None:
        os.set_blocking(fd, False)
        deadline = time.monotonic() + 120
        while busy.encode() not in seen and time.monotonic() < deadline and proc.poll() is None:
            try:
                seen += os.read(fd, 65536)
            except BlockingIOError:
                time.sleep(0.05)
        assert busy.encode() in seen, f"never busy: {seen[-500:]!r}"
        os.set_blocking(fd, True)
        time.sleep(0.5)
    else:
        time.sleep(after)
    assert proc.poll() is None, f"ended before the interrupt: {proc.returncode}"
    kids = _children(proc.pid)
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    took = time.monotonic() - sent
    while chunk := os.read(fd, 65536):
        seen += chunk
    return proc.returncode, took, seen.decode(errors="replace"), kids


def _plan_quickly(world: Path, plan: Path) -> None:
    """``circinus plan WORLD --time-limit 2 --json PLAN``; should it outlive 300 s, every
    thread's stack (Python's fault handler, on SIGABRT) is in the failure."""
    proc = subprocess.Popen([sys.executable, "-m", "circinus", "plan", str(world), "-q",
                             "--time-limit", "2", "--json", str(plan)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate()
        pytest.fail(f"circinus plan hung for 300 s; its threads:\n{err[-6000:]}")
    assert proc.returncode == 0, err[-2000:]


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


@pytest.fixture(scope="module")
def big_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.yaml"
    subprocess.run([sys.executable, "-m", "circinus", "gen", "-n", "8000", "-o", str(path)],
                   check=True, capture_output=True, timeout=300)
    return path


def _check(code: int, took: float, stderr: str, kids: set[int], *, expect: int = 130) -> None:
    assert code == expect, stderr[-2000:]
    assert took <= 2.0, f"took {took:.1f} s"
    assert _last_line(stderr).startswith("error: interrupted"), stderr[-2000:]
    assert "Traceback" not in stderr
    time.sleep(0.5)
    assert not [k for k in kids if _alive(k)], "worker processes outlived the command"


def test_plan(big_world: Path, tmp_path: Path) -> None:
    _check(*interrupt(["plan", str(big_world), "--json", str(tmp_path / "p.json")],
                      cwd=tmp_path, after=6.0))
    assert not list(tmp_path.iterdir()), "a partial plan file was left"


def test_validate_of_a_large_world(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    subprocess.run([sys.executable, "-m", "circinus", "gen", "-n", "40000", "-o", str(path)],
                   check=True, capture_output=True, timeout=300)
    # Reading 40,000 queries takes about 4 s of CPU: the interrupt comes half way.
    _check(*interrupt(["validate", str(path)], cwd=tmp_path, after=2.0))


def test_gen(tmp_path: Path) -> None:
    _check(*interrupt(["gen", "-n", "60000", "-o", str(tmp_path / "w.yaml")], cwd=tmp_path,
                      after=4.0))
    assert not list(tmp_path.iterdir()), "a partial world file was left"


def test_simulate(tmp_path: Path) -> None:
    # Two simulated hours of 240 queries: about a minute of work (one day of tiny.yaml's two
    # queries took under 4 s, ending before the interrupt on a fast machine).
    world = EXAMPLES / "edge-cloud-vision.yaml"
    plan = tmp_path / "plan.json"
    _plan_quickly(world, plan)
    _check(*interrupt(["simulate", str(world), str(plan), "--duration", "7200"], cwd=tmp_path,
                      after=4.0))


def test_profile(tmp_path: Path) -> None:
    code, took, stderr, kids = interrupt(
        ["profile", str(EXAMPLES / "digits-edge-cloud.yaml"), "--store",
         str(tmp_path / "p.db"), "-q"], cwd=tmp_path, after=6.0)
    _check(code, took, stderr, kids)
    assert "a rerun resumes" in _last_line(stderr)


def test_report_cancels_its_workers_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "report"
    plan = tmp_path.parent / f"{tmp_path.name}-plan.json"  # planned quickly, outside the folder
    _plan_quickly(EXAMPLES / "edge-cloud-vision.yaml", plan)
    code, took, stderr, kids = interrupt(
        ["report", str(EXAMPLES / "edge-cloud-vision.yaml"), "--plan", str(plan), "--out",
         str(out), "--jobs", "2", "--methods", "circinus,vulcan", "--loads", "0.5,1,2,3"],
        cwd=tmp_path, busy="load sweep")
    assert kids, "the sweep should have had worker processes"
    _check(code, took, stderr, kids)
    assert not out.exists() or not list(out.iterdir()), list(out.iterdir())
    assert [p.name for p in tmp_path.iterdir()] in ([], ["report"]), "staging folder left"
    shutil.rmtree(out, ignore_errors=True)


def test_while_the_interface_is_still_loading(tmp_path: Path) -> None:
    """Ctrl-C in the first second, while typer, rich and numpy are being imported."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "circinus", "validate",
                             str(EXAMPLES / "tiny.yaml")], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_sigint_default)
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    os.set_blocking(fd, False)
    seen = b""
    deadline = time.monotonic() + 60
    while b" typer\n" not in seen and time.monotonic() < deadline and proc.poll() is None:
        try:
            seen += os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.002)
    loading = b"circinus.cli.main\n" not in seen
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    took = time.monotonic() - sent
    os.set_blocking(fd, True)
    while chunk := os.read(fd, 65536):
        seen += chunk
    assert loading, "the interface had loaded before the interrupt"
    stderr = "\n".join(line for line in seen.decode(errors="replace").splitlines()
                       if not line.startswith("import time:"))
    _check(proc.returncode, took, stderr, set())


def test_bench_scale_ends_its_part_process_on_sigterm(tmp_path: Path) -> None:
    """``kill`` (SIGTERM) ends a command as Ctrl-C does, its worker processes with it."""
    code, took, stderr, kids = interrupt(
        ["bench", "scale", "--sizes", "3000", "--method", "circinus"], cwd=tmp_path,
        after=6.0, sig=signal.SIGTERM)
    assert kids, "the part should have had a process of its own"
    _check(code, took, stderr, kids, expect=143)


def test_bench_service_ends_its_service_on_sigterm(tmp_path: Path) -> None:
    """The service the bench started does not outlive the bench."""
    code, took, stderr, kids = interrupt(
        ["bench", "service", "--world", str(EXAMPLES / "tiny.yaml"), "--operations", "100000",
         "--concurrency", "4"], cwd=tmp_path, after=12.0, sig=signal.SIGTERM)
    assert kids, "the service should have had a process of its own"
    _check(code, took, stderr, kids, expect=143)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_service_while_it_plans_its_world(big_world: Path, tmp_path: Path, sig: int) -> None:
    """Stopped while the writer still plans the world at start-up, the service ends at once
    instead of when the planning returns."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, took, stderr, _ = interrupt(
        ["service", str(big_world), "--store", f"sqlite:///{tmp_path / 's.db'}", "--port",
         str(port)], cwd=tmp_path, busy="says when it is ready", sig=sig,
        env={"CIRCINUS_SERVICE_TOKEN": "interrupt-test-token-0123"})
    assert code == 128 + sig, stderr[-2000:]
    assert took <= 2.0, f"took {took:.1f} s"
    assert "Traceback" not in stderr, stderr[-2000:]
    assert _last_line(stderr).startswith("error: interrupted"), stderr[-2000:]
