"""Property tests of the command line: any option value ends in exit 0 or one error line.

Every case runs in process (typer's test runner) with a value drawn for one option, 100 cases a
run; the campaign (``circinus bench fuzz --cli-cases``) runs the installed command the same way,
as many times as asked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from circinus.cli.common import MAX_ERROR_CHARS
from circinus.cli.main import app

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny.yaml"

VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "-1", "0", "5e-324", "9" * 400, "",
                     "\x1b[31m", "--debug", "-q"]),
    st.floats().map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)

OPTIONS = [
    ("plan", "--time-limit"), ("plan", "--search"), ("plan", "--selector"), ("plan", "--show"),
    ("plan", "--store"), ("simulate", "--duration"), ("simulate", "--seed"),
    ("simulate", "--trace"), ("simulate", "--show"), ("gen", "-n"), ("gen", "--seed"),
    ("gen", "--edge-boxes"), ("gen", "--slo-tightness"), ("gen", "--mix"), ("schema", None),
    ("report", "--loads"), ("report", "--methods"), ("report", "--panels"), ("report", "--jobs"),
]


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    assert CliRunner().invoke(app, ["plan", str(TINY), "-q", "--json", str(path)]).exit_code == 0
    return path


def _args(command: str, option: str | None, value: str, plan: Path, out: Path) -> list[str]:
    if command == "schema":
        return ["schema", value]
    base = {
        "plan": ["plan", str(TINY), "-q", "--no-why-not"],
        "simulate": ["simulate", str(TINY), str(plan), "-q", "--duration", "2"],
        "gen": ["gen", "-n", "3", "-o", str(out / "g.yaml")],
        # A report that is refused before any work, whatever the value: an unknown method.
        "report": ["report", str(TINY), "--out", str(out / "r"), "--methods", "nope"],
    }[command]
    assert option is not None
    return [*base, option, value]


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(OPTIONS), value=VALUES)
def test_any_option_value_ends_cleanly(plan_file: Path, tmp_path: Path,
                                       which: tuple[str, str | None], value: str) -> None:
    command, option = which
    result = CliRunner().invoke(app, _args(command, option, value, plan_file, tmp_path))
    assert result.exit_code in (0, 1, 2, 3, 4, 5), (result.exit_code, result.output)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code != 0:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "\x1b" not in result.stderr and len(lines[0]) <= MAX_ERROR_CHARS + 7
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.partial"))
