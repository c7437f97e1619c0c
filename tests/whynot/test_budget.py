"""The why-not search of a plan is bounded by its time budget (``planner.why_not_time_s``)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from circinus.planner import Planner
from circinus.spec.load import parse_world

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
def test_extreme_variability_does_not_stall_the_why_not_search() -> None:
    """With cv = 100 no plan meets a latency bound, and each rejected query's nearest SLO takes
    about a second of search: past the budget the rest are reported without one."""
    data = yaml.safe_load((EXAMPLES / "edge-cloud-vision.yaml").read_text())
    data["queries"] = data["queries"][:30]
    for op in data["operators"]:
        for prof in op.get("profiles", []):
            prof["cv"] = 100
            prof.pop("p90_ms", None)
    data.setdefault("planner", {})["why_not_time_s"] = 1.0
    result = Planner(why_not=True).plan(parse_world(data))
    rejected = [o for o in result.outcomes if not o.admitted]
    assert len(rejected) == 30
    assert result.why_not_seconds < 10.0
    assert any(o.why_not is not None and o.why_not.relaxations is None for o in rejected)
    assert all(o.reason for o in rejected)  # every rejection still says why


@pytest.mark.slow
def test_forked_workers_give_the_serial_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rejected classes of one plan searched in this process alone and dealt over it and
    a fork: the same answer for every rejected query."""
    import circinus.planner as planner

    real = planner.until_on_forks
    seen = []

    def both(items: Any, work: Any, deadline: float, *, workers: int = 1) -> Any:
        one = real(items, work, math.inf, workers=1)
        two = real(items, work, math.inf, workers=2)
        seen.append((len(items), one, two))
        return two

    monkeypatch.setattr(planner, "until_on_forks", both)
    data = yaml.safe_load((EXAMPLES / "edge-cloud-vision.yaml").read_text())
    data["queries"] = data["queries"][:120]
    for q in data["queries"]:
        q["rate_rps"] *= 3  # many rejected, in several classes
    data.setdefault("planner", {})["time_limit_s"] = 3.0  # the selection is not the point
    Planner(why_not=True).plan(parse_world(data))
    ((classes, one, two),) = seen
    assert classes > 3 and len(one) > 10
    assert one == two


def test_until_on_forks_deals_items_round_robin_and_keeps_their_answers() -> None:
    from circinus.forks import until_on_forks

    items = [[i, i + 100] for i in range(7)]
    got = until_on_forks(items, lambda item: {k: (k * 2, os.getpid()) for k in item},
                         math.inf, workers=3)
    assert {k: v for k, (v, _) in got.items()} == {k: 2 * k for item in items for k in item}
    pids = [got[i][1] for i in range(7)]
    assert pids[0] == pids[3] == pids[6] == os.getpid()  # this process: items 0, 3, 6
    assert len({pids[1], pids[2], os.getpid()}) == 3  # one fork each for 1, 4 and 2, 5
    assert pids[1] == pids[4] and pids[2] == pids[5]
    assert until_on_forks(items, lambda item: {item[0]: 1}, 0.0, workers=2) == {}  # past it


def test_a_failing_fork_loses_only_its_own_answers(capfd: pytest.CaptureFixture[str]) -> None:
    from circinus.forks import until_on_forks

    parent = os.getpid()

    def work(item: list[int]) -> dict[int, int]:
        if os.getpid() != parent:
            raise RuntimeError("boom")
        return {k: k for k in item}

    got = until_on_forks([[0], [1], [2], [3]], work, math.inf, workers=2)
    assert got == {0: 0, 2: 2}  # this process's items; the fork's are not done
    assert "Traceback" not in capfd.readouterr().err


def test_a_fork_that_hangs_is_stopped_after_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from circinus import forks

    monkeypatch.setattr(forks, "FORK_GRACE_S", 0.5)
    parent = os.getpid()

    def work(item: list[int]) -> dict[int, int]:
        if os.getpid() != parent:
            time.sleep(3600)  # a copy stuck on a lock
        return {k: k for k in item}

    start = time.monotonic()
    got = forks.until_on_forks([[0], [1], [2]], work, time.monotonic() + 0.2, workers=2)
    assert got == {0: 0, 2: 2} and time.monotonic() - start < 30


def test_an_item_starts_only_if_the_mean_so_far_still_ends_before_the_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from circinus import forks

    clock = [0.0]
    monkeypatch.setattr(forks.time, "monotonic", lambda: clock[0])

    def work(item: list[int]) -> dict[int, int]:
        clock[0] += 0.2
        return {k: k for k in item}

    # at 0.4 s two items are done, in 0.2 s each: the third would end at 0.6 s, past 0.5 s
    assert forks.until_on_forks([[0], [1], [2], [3]], work, 0.5, workers=1) == {0: 0, 1: 1}
    clock[0] = 0.0
    assert forks.until_on_forks([[0], [1], [2], [3]], work, 0.65, workers=1) == {
        0: 0, 1: 1, 2: 2}
