"""``circinus service`` refuses bad options with one line and a non-zero exit, before anything
is planned or listened on."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circinus.cli.main import app
from circinus.service import DecisionStore

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "examples" / "tiny.yaml"


def _error(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env=env)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.exit_code, lines[0]


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_token_is_refused(tmp_path: Path, free_port: int) -> None:
    code, line = _error(["service", str(TINY), "--port", str(free_port)],
                        env={"CIRCINUS_SERVICE_TOKEN": ""})
    assert code == 2 and "CIRCINUS_SERVICE_TOKEN" in line


def test_a_short_token_is_refused_and_not_shown(tmp_path: Path, free_port: int) -> None:
    token = tmp_path / "token"
    token.write_text("short-secret\n")
    code, line = _error(["service", str(TINY), "--token-file", str(token), "--port",
                         str(free_port)])
    assert code == 2 and "at least 16" in line and "short-secret" not in line
    code, line = _error(["service", str(TINY), "--token-file", str(tmp_path), "--port",
                         str(free_port)])
    assert code == 2 and "is a folder" in line


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, line = _error(["service", str(TINY), "--port", str(port)],
                            env={"CIRCINUS_SERVICE_TOKEN": "x" * 20})
    assert code == 2 and "--port" in line


def test_a_bad_store_is_refused_before_a_token_is_made(tmp_path: Path, free_port: int) -> None:
    token = tmp_path / "token"
    code, line = _error(["service", str(TINY), "--token-file", str(token), "--port",
                         str(free_port), "--store", "nosuchdialect://x"])
    assert code == 5 and "not a usable URL" in line
    assert not token.exists()


def test_a_missing_token_file_is_created_private(tmp_path: Path) -> None:
    from circinus.cli.service import _token

    token = tmp_path / "token"
    made = _token(token)
    assert token.read_text().strip() == made and len(made) >= 32
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert _token(token) == made


def test_a_store_of_another_world_is_refused(tmp_path: Path, free_port: int) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    from circinus.online import OnlinePlanner
    from circinus.online.snapshot import Changes
    from circinus.service.store import Decision
    from circinus.spec.load import load_indexed_world

    _, index = load_indexed_world(REPO / "examples" / "edge-cloud-vision.yaml")
    snap = OnlinePlanner(index.world.model_copy(update={"queries": []})).snapshot()
    store = DecisionStore(url)
    store.commit(Changes(snap.topology, (), ()), Decision("start", "x", 200),
                 world=index.world.name)
    store.close()
    code, line = _error(["service", str(TINY), "--store", url, "--port", str(free_port)],
                        env={"CIRCINUS_SERVICE_TOKEN": "x" * 20})
    assert code == 2 and "holds the state of world" in line
