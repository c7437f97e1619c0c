"""The command line under bad input and faults: one line on stderr, never a traceback, never a
changed input or a stray file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from circinus.cli.common import MAX_ERROR_CHARS, hoist_debug
from circinus.cli.main import app

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "examples" / "tiny.yaml"


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0][len("error: "):]


def test_plan_json_onto_its_own_world_is_refused(tmp_path: Path) -> None:
    world = tmp_path / "w.yaml"
    world.write_text(TINY.read_text())
    code, _, err = _invoke("plan", str(world), "-q", "--json", str(world))
    assert code == 2
    assert "would overwrite the input" in _one_line(err)
    assert world.read_text() == TINY.read_text()


def test_plan_json_into_a_folder_leaves_no_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = _invoke("plan", str(TINY), "-q", "--json", str(folder))
    assert code == 2 and "is a folder" in _one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert not list(folder.iterdir())


def test_plan_json_writes_a_readable_file_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    code, _, _ = _invoke("plan", str(TINY), "-q", "--json", str(out))
    assert code == 0
    assert json.loads(out.read_text())["world"] == "tiny"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]
    assert out.stat().st_mode & 0o044, "the plan file should be as readable as any other file"


def test_report_out_holding_the_plan_it_reads_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert _invoke("plan", str(TINY), "-q", "--json", str(plan))[0] == 0
    code, _, err = _invoke("report", str(TINY), "--plan", str(plan), "--out", str(tmp_path))
    assert code == 2 and "would overwrite the input" in _one_line(err)


@pytest.mark.parametrize("args", [
    ["plan", str(TINY), "--time-limit", "abc"],
    ["plan", str(TINY), "--time-limit", "0"],
    ["plan", str(TINY), "--no-such-option"],
    ["plan"],
    ["simulate", str(TINY)],
    ["gen", "-n", "x", "-o", "w.yaml"],
    ["no-such-command"],
])
def test_usage_errors_are_one_line(args: list[str]) -> None:
    code, out, err = _invoke(*args)
    assert code == 2
    message = _one_line(err)
    assert "--help" in message, message
    assert "╭" not in err and "Traceback" not in err and not out


@pytest.mark.parametrize(("url", "says"), [
    ("mysql://user@host/db", "not a usable URL"),
    ("postgresql://[::1", "not a usable URL"),
])
def test_bad_store_urls_are_one_line(url: str, says: str) -> None:
    code, _, err = _invoke("profile", str(REPO / "examples" / "digits-edge-cloud.yaml"),
                           "--store", url, "-q")
    assert code == 5
    assert says in _one_line(err)


def test_terminal_escapes_in_a_world_are_refused_and_never_echoed(tmp_path: Path) -> None:
    world = yaml.safe_load(TINY.read_text())
    world["operators"][0]["knobs"]["\x1b[2J\x1b[31mmodel"] = ["a"]
    path = tmp_path / "w.json"
    path.write_text(json.dumps(world))
    code, _, err = _invoke("validate", str(path))
    assert code == 2
    line = _one_line(err)
    assert "\x1b" not in err
    assert "\\x1b[2J" in line and "control character" in line


def test_an_error_line_is_never_huge(tmp_path: Path) -> None:
    world = yaml.safe_load(TINY.read_text())
    world["operators"][0]["knobs"]["model"] = [f"m{i}" for i in range(20_000)]
    world["operators"][0]["profiles"][0]["config"]["model"] = "absent"
    path = tmp_path / "w.json"
    path.write_text(json.dumps(world))
    code, _, err = _invoke("validate", str(path))
    assert code == 2
    assert len(_one_line(err)) <= MAX_ERROR_CHARS


def test_a_file_name_too_long_is_a_spec_error() -> None:
    code, _, err = _invoke("validate", "w" * 5000 + ".yaml")
    assert code == 2
    assert len(_one_line(err)) < 400


def test_simulate_refuses_a_plan_beyond_the_devices(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert _invoke("plan", str(TINY), "-q", "--json", str(plan))[0] == 0
    data = json.loads(plan.read_text())
    data["deployments"][0]["replicas"] = 10**9
    plan.write_text(json.dumps(data))
    code, _, err = _invoke("simulate", str(TINY), str(plan), "-q")
    assert code == 2
    assert "units allocated on device" in _one_line(err)


def test_debug_is_accepted_after_the_subcommand() -> None:
    assert hoist_debug(["plan", "w.yaml", "--debug"]) == ["--debug", "plan", "w.yaml"]
    assert hoist_debug(["plan", "--", "--debug"]) == ["plan", "--", "--debug"]
    result = CliRunner().invoke(app, ["validate", "absent.yaml", "--debug"])
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "SpecError"  # raised, not turned into a line


@pytest.mark.integration
def test_plan_into_a_closed_pipe_exits_quietly() -> None:
    # A long table (240 queries) on a short selection budget: the pipe is what is tested.
    world = f"{REPO / 'examples' / 'edge-cloud-vision.yaml'} --time-limit 2"
    pipe = subprocess.run(f"{sys.executable} -m circinus plan {world} | head -1",
                          shell=True, capture_output=True, text=True, timeout=300,
                          executable="/bin/bash",
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "80"})
    status = subprocess.run(
        f"set -o pipefail; {sys.executable} -m circinus plan {world} | head -1",
        shell=True, capture_output=True, text=True, timeout=300, executable="/bin/bash")
    assert pipe.stdout.strip(), pipe.stderr
    assert pipe.stderr == "" and status.stderr == "", status.stderr
    assert status.returncode == 0
