"""Replica shares in the world format: each share a configuration of its own, its times derived
as documented, and one-line errors for shares that make no sense."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from circinus.cli.main import app
from circinus.errors import SpecError
from circinus.estimate.analytic import service_cv
from circinus.spec import build_index, parse_world
from circinus.spec.index import OperatorIndex
from tinyworld import make_tiny_world

World = dict[str, Any]


def _t4(w: World, model: str = "small") -> dict[str, Any]:
    """The tiny world's detect profile of ``model`` on the T4s (1 unit, batch 4 listed)."""
    detect = next(o for o in w["operators"] if o["name"] == "detect")
    return next(p for p in detect["profiles"]
                if p["hardware"] == "t4" and p["config"]["model"] == model)


def _detect(w: World) -> OperatorIndex:
    return build_index(parse_world(w)).operators["detect"]


def test_without_shares_the_keys_are_the_knobs() -> None:
    op = _detect(make_tiny_world())
    assert not op.has_shares
    assert op.configs == (("small",), ("large",))
    assert op.key_of({"model": "small"}, hardware="t4", units=0.5) == ("small",)


def test_every_share_is_a_configuration_with_derived_times() -> None:
    w = make_tiny_world()
    _t4(w)["shares"] = [{"units": 0.5}, {"units": 0.25, "mean_ms": 11, "batch_ms": {4: 40}}]
    _t4(w)["memory_gb"] = 2
    op = _detect(w)
    assert op.has_shares
    # Own allocation first, then the shares in increasing order; large has none.
    assert op.configs == (("small", 1.0), ("small", 0.25), ("small", 0.5), ("large", 1.0))
    own, half, quarter = (op.profiles[("small", r), "t4"] for r in (1.0, 0.5, 0.25))
    # {units: 0.5}: every time x 1 / 0.5.
    assert (half.units, half.mean_ms, half.batch_ms) == (0.5, 10.0, {4: 24.0})
    # {units: 0.25, mean_ms: 11, batch_ms: {4: 40}}: as given.
    assert (quarter.units, quarter.mean_ms, quarter.batch_ms) == (0.25, 11.0, {4: 40.0})
    for derived in (half, quarter):
        assert derived.memory_gb == own.memory_gb == 2
        assert service_cv(derived) == pytest.approx(service_cv(own))
        assert derived.shares == []
    # The CPU profile of small is at its own allocation only.
    assert ("small", 0.5) not in {k for k, hw in op.profiles if hw == "arm-cpu"}
    assert op.profiles[("small", 1.0), "arm-cpu"].units == 1
    # Accuracy and message size do not depend on the share; the knobs hide it.
    assert op.accuracy["small", 0.5] == op.accuracy["small", 1.0] == 0.85
    assert op.output_kb["small", 0.25] == 2
    assert op.config_dict(("small", 0.5)) == {"model": "small"}
    assert op.share_of(("small", 0.5)) == 0.5 and op.is_own(("small", 1.0))
    # key_of finds the share from a replica's units (as the plan file states them).
    assert op.key_of({"model": "small"}, hardware="t4", units=0.25) == ("small", 0.25)
    assert op.key_of({"model": "small"}) == ("small", 1.0)


def test_a_share_with_mean_ms_scales_the_batches_it_leaves_out() -> None:
    w = make_tiny_world()
    _t4(w)["shares"] = [{"units": 0.5, "mean_ms": 6.5}]  # 1.3 x the whole T4's 5 ms
    half = _detect(w).profiles[("small", 0.5), "t4"]
    assert half.batch_ms == {4: pytest.approx(12 * 1.3)}


def test_a_larger_measured_share_is_allowed() -> None:
    w = make_tiny_world()
    _t4(w)["shares"] = [{"units": 2, "mean_ms": 3, "batch_ms": {4: 7}}]
    two = _detect(w).profiles[("small", 2.0), "t4"]
    assert (two.units, two.mean_ms, two.batch_ms) == (2.0, 3.0, {4: 7.0})


def test_ratios_match_across_hardware_classes() -> None:
    """0.1 of a 0.3-unit profile and 0.3 of a 0.9-unit one are one share (a third)."""
    w = make_tiny_world()
    small_cpu = next(p for p in w["operators"][0]["profiles"]
                     if p["hardware"] == "arm-cpu" and p["config"]["model"] == "small")
    small_cpu.update(units=0.9, shares=[{"units": 0.3}])
    _t4(w).update(units=0.3, shares=[{"units": 0.1}])
    op = _detect(w)
    third = [k for k in op.configs if k[0] == "small" and k[1] != 1.0]
    assert len(third) == 1
    assert {hw for k, hw in op.profiles if k == third[0]} == {"arm-cpu", "t4"}


SHARE_ERRORS: list[tuple[str, list[dict[str, Any]], str]] = [
    ("own-units", [{"units": 1}],
     "operators[0].profiles[2].shares[0].units: 1 is the profile's own units; list each other "
     "share once"),
    ("twice", [{"units": 0.5}, {"units": 0.5}],
     "operators[0].profiles[2].shares[1].units: 0.5 is listed twice"),
    ("batch-without-mean", [{"units": 0.5, "batch_ms": {4: 30}}],
     "operators[0].profiles[2].shares[0].batch_ms: give the share's mean_ms (batch 1) too"),
    ("unknown-batch", [{"units": 0.5, "mean_ms": 9, "batch_ms": {8: 30}}],
     "operators[0].profiles[2].shares[0].batch_ms: batch 8 is not in the profile's batch_ms "
     "([4])"),
    ("larger-unmeasured", [{"units": 2}],
     "operators[0].profiles[2].shares[0].mean_ms: a share larger than the profile's 1 units "
     "needs its measured mean_ms"),
    ("bigger-than-device", [{"units": 16, "mean_ms": 1}],
     "operators[0].profiles[2].shares[0].units: a replica needs 16"),
]


@pytest.mark.parametrize(("shares", "message"), [c[1:] for c in SHARE_ERRORS],
                         ids=[c[0] for c in SHARE_ERRORS])
def test_bad_shares_fail_with_their_path(shares: list[dict[str, Any]], message: str) -> None:
    w = make_tiny_world()
    _t4(w)["shares"] = shares
    with pytest.raises(SpecError) as info:
        build_index(parse_world(w))
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_a_derived_time_past_the_limit_is_refused() -> None:
    w = make_tiny_world()
    _t4(w).update(mean_ms=9_000_000, batch_ms={})
    _t4(w)["shares"] = [{"units": 0.5}]
    with pytest.raises(SpecError, match=r"shares\[0\]\.units: at 0\.5 units batch 1 would take "
                                         r"1\.8e\+07 ms, outside 0\.0001\.\.1e\+07 ms"):
        build_index(parse_world(w))


@pytest.mark.parametrize(("share", "field", "text"), [
    ({"units": 0}, "units", "must be >= 0.001 and <= 1000000, got 0"),
    ({"units": 0.5, "mean_ms": -1}, "mean_ms", "must be >= 0.0001 and <= 10000000, got -1"),
    ({"units": 0.5, "mean_ms": 2, "batch_ms": {4: 0}}, "batch_ms",
     "batch 4: service time must be >= 0.0001"),
    ({"units": "half"}, "units", ""),
])
def test_share_fields_have_ranges(tmp_path: Path, share: dict[str, Any], field: str,
                                  text: str) -> None:
    w = make_tiny_world()
    _t4(w)["shares"] = [share]
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(w, sort_keys=False), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith(f"error: operators[0].profiles[2].shares[0].{field}: "), line
    assert text in line and "Traceback" not in line and len(line.splitlines()) == 1


def test_at_most_sixteen_shares() -> None:
    w = make_tiny_world()
    _t4(w)["shares"] = [{"units": 0.01 * (k + 1)} for k in range(17)]
    with pytest.raises(SpecError, match=r"operators\[0\]\.profiles\[2\]\.shares: "):
        build_index(parse_world(w))
