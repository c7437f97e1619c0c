"""Malformed worlds fail with exit code 2 and one line that starts with the offending field's path.

Each case takes the valid tiny world (``tests/conftest.py``) and breaks one thing. Through the API
the error is a :class:`SpecError` whose message starts with ``<path>: ``; through the CLI
(``validate`` and ``plan``) the user sees that message on one stderr line, exit code 2 and no
traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from circinus.cli.main import app
from circinus.errors import SpecError
from circinus.spec import build_index, load_world, parse_world
from tinyworld import make_tiny_world

World = dict[str, Any]
RATE_ERROR = "queries[1].rate_rps: must be >= 0.000001 and <= 1000000, got -5"
Mutation = Callable[[World], object]


def _op(w: World, name: str) -> dict[str, Any]:
    return next(o for o in w["operators"] if o["name"] == name)


def _pipe(w: World) -> dict[str, Any]:
    return w["pipelines"][0]


def _rename_knob(op: dict[str, Any], old: str, new: str) -> None:
    op["knobs"] = {new if k == old else k: v for k, v in op["knobs"].items()}
    for entry in [*(p["config"] for p in op["profiles"]),
                  *(e["when"] for e in op.get("accuracy") or [])]:
        if old in entry:
            entry[new] = entry.pop(old)


def _add_stage(w: World, name: str, *edges: tuple[str, str]) -> None:
    _pipe(w)["stages"].append({"name": name, "operator": "classify"})
    _pipe(w)["edges"].extend([list(e) for e in edges])


def _sources(w: World, *names: str) -> World:
    """``w`` with more sources, each feeding a stage ``<name>-in`` (classify) into ``cls``,
    at the shop for every query."""
    for name in names:
        _pipe(w)["sources"].append({"name": name, "output_kb": 1})
        _add_stage(w, f"{name}-in", (name, f"{name}-in"), (f"{name}-in", "cls"))
        for q in w["queries"]:
            q["sources"][name] = "shop"
    return w


# (id, mutation, expected path, expected text after "path: "). Query 0 is cam-1, query 1 cam-2;
# operator 0 is detect (knob model), operator 1 classify (knob resolution: 224 | 448).
CASES: list[tuple[str, Mutation, str, str]] = [
    # -- unknown keys and wrong types (pydantic) --------------------------------------------
    ("unknown-top-level-key", lambda w: w.update(devicez=[]),
     "devicez", "unknown key; check the spelling against `circinus schema world`"),
    ("unknown-nested-key", lambda w: w["queries"][1]["slo"].update(latency=50),
     "queries[1].slo.latency", "unknown key"),
    ("unknown-key-in-profile", lambda w: _op(w, "detect")["profiles"][0].update(mean=40),
     "operators[0].profiles[0].mean", "unknown key"),
    ("string-for-number", lambda w: w["devices"][0].update(units="four"),
     "devices[0].units", "input should be a valid number, got 'four'"),
    ("mapping-for-list", lambda w: w.update(queries={"cam-1": {}}),
     "queries", "input should be a valid list"),
    ("missing-section", lambda w: w.pop("queries"), "queries", "is required"),
    ("missing-field", lambda w: w["devices"][1].pop("price_per_unit_hour"),
     "devices[1].price_per_unit_hour", "is required"),
    ("bad-identifier", lambda w: w["devices"][0].update(name="shop box"),
     "devices[0].name", "must be an identifier"),
    ("unknown-tier", lambda w: w["sites"][0].update(tier="fog"),
     "sites[0].tier", "must be one of 'edge' or 'cloud', got 'fog'"),
    ("unknown-version", lambda w: w.update(version=2), "version", "must be one of 1, got 2"),
    ("edge-with-three-ends", lambda w: _pipe(w)["edges"].append(["det", "cls", "x"]),
     "pipelines[0].edges[2]", "takes at most 2 item(s)"),
    ("output-kb-neither-number-nor-list", lambda w: _op(w, "classify").update(output_kb="big"),
     "operators[1].output_kb", "must be a number or a list of {when, value} entries, got 'big'"),
    ("output-kb-entry-wrong-type",
     lambda w: _op(w, "detect")["output_kb"][1].update(value="x"),
     "operators[0].output_kb[1].value", "input should be a valid number"),
    ("knob-value-is-a-list", lambda w: _op(w, "detect")["profiles"][0]["config"].update(
        model=["small"]),
     "operators[0].profiles[0].config.model", "must be a string, a number or a boolean"),
    ("knob-named-like-a-type",  # "float" is also a pydantic union tag; the path must keep it
     lambda w: (_rename_knob(_op(w, "classify"), "resolution", "float"),
                _op(w, "classify")["profiles"][0]["config"].update(float=[224])),
     "operators[1].profiles[0].config.float", "must be a string, a number or a boolean"),
    # -- ranges -----------------------------------------------------------------------------
    ("negative-rate", lambda w: w["queries"][1].update(rate_rps=-5),
     "queries[1].rate_rps", "must be >= 0.000001 and <= 1000000, got -5"),
    ("zero-latency", lambda w: w["queries"][1]["slo"].update(latency_ms=0),
     "queries[1].slo.latency_ms", "must be >= 0.001 and <= 10000000, got 0"),
    ("negative-latency", lambda w: w["queries"][0]["slo"].update(latency_ms=-5),
     "queries[0].slo.latency_ms", "must be >= 0.001 and <= 10000000, got -5"),
    ("percentile-100", lambda w: w["queries"][0]["slo"].update(percentile=100),
     "queries[0].slo.percentile", "must be >= 1 and <= 99.999, got 100"),
    ("utilisation-above-1", lambda w: w["planner"].update(max_utilization=1.5),
     "planner.max_utilization", "must be >= 0.01 and <= 1, got 1.5"),
    ("batch-size-1", lambda w: _op(w, "detect")["profiles"][2].update(batch_ms={1: 5}),
     "operators[0].profiles[2].batch_ms", "batch size must be >= 2 (batch 1 is mean_ms), got 1"),
    ("negative-work-scale", lambda w: w["queries"][1].update(work_scale={"cls": -2}),
     "queries[1].work_scale", "stage 'cls': multiplier must be > 0"),
    ("nan-rate", lambda w: w["queries"][1].update(rate_rps=float("nan")),
     "queries[1].rate_rps", "must be a finite number, got nan"),
    ("infinite-units", lambda w: w["devices"][1].update(units=float("inf")),
     "devices[1].units", "must be a finite number, got inf"),
    ("infinite-latency-bound", lambda w: w["queries"][0]["slo"].update(latency_ms=float("inf")),
     "queries[0].slo.latency_ms", "must be a finite number, got inf"),
    ("nan-accuracy", lambda w: _op(w, "classify").update(accuracy=float("nan")),
     "operators[1].accuracy", "must be a finite number, got nan"),
    ("infinite-work-scale", lambda w: w["queries"][1].update(work_scale={"cls": float("inf")}),
     "queries[1].work_scale.cls", "must be a finite number, got inf"),
    ("nan-batch-time", lambda w: _op(w, "detect")["profiles"][2].update(
        batch_ms={2: float("nan")}), "operators[0].profiles[2].batch_ms[2]",
     "must be a finite number, got nan"),
    ("p90-below-half-the-mean", lambda w: _op(w, "detect")["profiles"][0].update(p90_ms=4),
     "operators[0].profiles[0].p90_ms", "4.0 is below half the mean 40.0; check the units"),
    # -- unknown references -----------------------------------------------------------------
    ("unknown-site-in-device", lambda w: w["devices"][1].update(site="moon"),
     "devices[1].site", "unknown site 'moon'; known: region, shop"),
    ("unknown-hardware-in-device", lambda w: w["devices"][0].update(hardware="x86"),
     "devices[0].hardware", "unknown hardware class 'x86'; known: arm-cpu, t4"),
    ("unknown-site-in-link", lambda w: w["links"][0].update(dst="mars"),
     "links[0].dst", "unknown site 'mars'"),
    ("unknown-hardware-in-profile",
     lambda w: _op(w, "classify")["profiles"][2].update(hardware="a100"),
     "operators[1].profiles[2].hardware", "unknown hardware class 'a100'"),
    ("unknown-pipeline-in-query", lambda w: w["queries"][1].update(pipeline="audio"),
     "queries[1].pipeline", "unknown pipeline 'audio'; known: vision"),
    ("unknown-operator-in-stage", lambda w: _pipe(w)["stages"][1].update(operator="segment"),
     "pipelines[0].stages[1].operator", "unknown operator 'segment'; known: classify, detect"),
    ("unknown-site-in-query", lambda w: w["queries"][1]["sources"].update(camera="mars"),
     "queries[1].sources.camera", "unknown site 'mars'"),
    ("unknown-stage-in-work-scale", lambda w: w["queries"][1].update(work_scale={"seg": 2}),
     "queries[1].work_scale.seg", "unknown stage 'seg'; known: cls, det"),
    ("unknown-node-in-edge", lambda w: _pipe(w)["edges"][0].__setitem__(0, "mic"),
     "pipelines[0].edges[0][0]", "unknown source or stage 'mic'"),
    # -- knobs and configurations -----------------------------------------------------------
    ("unknown-knob-value-in-profile",
     lambda w: _op(w, "detect")["profiles"][1]["config"].update(model="huge"),
     "operators[0].profiles[1].config.model",
     "'huge' is not a value of knob 'model' of operator 'detect'; allowed: ['small', 'large']"),
    ("string-for-int-knob-value",
     lambda w: _op(w, "classify")["profiles"][1]["config"].update(resolution="224"),
     "operators[1].profiles[1].config.resolution", "'224' is not a value of knob 'resolution'"),
    ("bool-for-int-knob-value",  # Python has True == 1; a knob must not
     lambda w: (_op(w, "classify").update(knobs={"resolution": [1, 448]}),
                _op(w, "classify")["profiles"][0]["config"].update(resolution=True)),
     "operators[1].profiles[0].config.resolution", "True is not a value of knob 'resolution'"),
    ("unknown-knob-in-profile",
     lambda w: _op(w, "detect")["profiles"][0]["config"].update(size="xl"),
     "operators[0].profiles[0].config.size", "operator 'detect' has no knob 'size'"),
    ("missing-knob-in-profile", lambda w: _op(w, "detect")["profiles"][1].update(config={}),
     "operators[0].profiles[1].config",
     "missing knob(s) ['model'] of operator 'detect'; a profile gives every knob a value"),
    ("duplicate-profile", lambda w: _op(w, "classify")["profiles"].append(
        {"config": {"resolution": 224}, "hardware": "t4", "mean_ms": 3}),
     "operators[1].profiles[3]", "a second profile of {'resolution': 224} on 't4'; keep one"),
    ("unknown-knob-value-in-when",
     lambda w: _op(w, "detect")["output_kb"][1]["when"].update(model="huge"),
     "operators[0].output_kb[1].when.model", "'huge' is not a value of knob 'model'"),
    ("no-when-entry-matches",
     lambda w: _op(w, "detect").update(output_kb=[{"when": {"model": "small"}, "value": 1}]),
     "operators[0].output_kb", "no entry matches configuration {'model': 'large'}"),
    # -- pipeline shape ---------------------------------------------------------------------
    ("cycle", lambda w: _pipe(w)["edges"].append(["cls", "det"]),
     "pipelines[0].edges", "cycle det -> cls -> det; a pipeline must be a DAG"),
    ("self-loop", lambda w: _pipe(w)["edges"].append(["cls", "cls"]),
     "pipelines[0].edges", "cycle cls -> cls"),
    ("two-sinks", lambda w: _add_stage(w, "cls2", ("det", "cls2")),
     "pipelines[0].edges", "a pipeline needs exactly one sink"),
    ("stage-unreachable-from-source",
     lambda w: _add_stage(w, "pre", ("pre", "det"), ("pre", "cls")),
     "pipelines[0].edges", "stage 'pre' is not reachable from any source; add an edge"),
    ("stage-on-no-edge", lambda w: _add_stage(w, "lonely"),
     "pipelines[0].stages[2]", "stage 'lonely' is on no edge"),
    ("edge-into-source", lambda w: _pipe(w)["edges"].append(["det", "camera"]),
     "pipelines[0].edges[2][1]", "'camera' is a source; edges cannot enter a source"),
    ("source-feeding-nothing",
     lambda w: _pipe(w)["sources"].append({"name": "mic", "output_kb": 1}),
     "pipelines[0].sources", "source 'mic' feeds no stage"),
    ("query-sources-not-the-pipelines", lambda w: w["queries"][0].update(sources={"mic": "shop"}),
     "queries[0].sources",
     "must map exactly the sources of pipeline 'vision' ['camera'] to sites, got ['mic']"),
    # -- duplicates -------------------------------------------------------------------------
    ("duplicate-device-name", lambda w: w["devices"][1].update(name="shop-box"),
     "devices[1].name", "duplicate name 'shop-box'; names must be unique"),
    ("duplicate-query-name", lambda w: w["queries"][1].update(name="cam-1"),
     "queries[1].name", "duplicate name 'cam-1'"),
    ("duplicate-source-name",
     lambda w: _pipe(w)["sources"].append({"name": "camera", "output_kb": 1}),
     "pipelines[0].sources[1].name", "duplicate name 'camera'"),
    ("duplicate-stage-name", lambda w: _pipe(w)["stages"][1].update(name="det"),
     "pipelines[0].stages[1].name", "duplicate name 'det'"),
    ("second-link-same-direction", lambda w: w["links"].append(
        {"src": "region", "dst": "shop", "bandwidth_mbps": 5}),
     "links[1]", "a second link from 'region' to 'shop' (both_ways makes the reverse link too)"),
    # -- impossible capacities and links ----------------------------------------------------
    ("replica-units-exceed-every-device",
     lambda w: _op(w, "detect")["profiles"][2].update(units=16),
     "operators[0].profiles[2].units",
     "a replica needs 16.0 units but the largest 't4' device has 8.0; lower the units or add"),
    ("replica-memory-exceeds-every-device",
     lambda w: _op(w, "detect")["profiles"][1].update(memory_gb=64),
     "operators[0].profiles[1].memory_gb", "a replica needs 64.0 GB but the largest 'arm-cpu'"),
    ("link-to-itself", lambda w: w["links"][0].update(dst="shop"),
     "links[0]", "src and dst are both 'shop'; use the site's lan_* fields"),
    ("negative-source-price", lambda w: w["links"][0].update(source_price_per_gb=-1),
     "links[0].source_price_per_gb", "must be >= 0 and <= 1000, got -1"),
    # -- joins and sources of their own -------------------------------------------------------
    ("only-joins", lambda w: [st.pop("operator") for st in _pipe(w)["stages"]],
     "pipelines[0].stages", "no stage has an operator (a stage without one only joins its "
     "inputs); give at least one stage an `operator`"),
    ("join-in-work-scale", lambda w: (
        _pipe(w)["stages"].append({"name": "done"}), _pipe(w)["edges"].append(["cls", "done"]),
        w["queries"][1].update(work_scale={"done": 2})),
     "queries[1].work_scale.done", "unknown stage 'done'; known: cls, det"),
    ("source-rate-unknown-source",
     lambda w: _sources(w, "mic")["queries"][0].update(source_rate_rps={"radio": 5}),
     "queries[0].source_rate_rps.radio", "unknown source 'radio'; known: camera, mic"),
    ("source-rate-out-of-range",
     lambda w: _sources(w, "mic")["queries"][0].update(source_rate_rps={"mic": -1}),
     "queries[0].source_rate_rps",
     "source 'mic': rate must be >= 0.000001 and <= 1000000 req/s"),
    ("every-source-its-own-rate", lambda w: _sources(w, "mic")["queries"][0].update(
        source_rate_rps={"mic": 5, "camera": 2}),
     "queries[0].source_rate_rps", "every source of pipeline 'vision' has its own rate; leave "
     "out the source(s) whose messages make the query's requests"),
    ("two-own-rate-sources-joined", lambda w: (
        _sources(w, "mic", "imu"), _add_stage(w, "fuse", ("mic", "fuse"), ("imu", "fuse"),
                                              ("fuse", "cls")),
        w["queries"][0].update(source_rate_rps={"mic": 5, "imu": 5})),
     "queries[0].source_rate_rps", "stage 'fuse' joins sources 'imu' and 'mic', which both "
     "have their own rate"),
    ("source-size-out-of-range",
     lambda w: w["queries"][0].update(source_output_kb={"camera": 2e7}),
     "queries[0].source_output_kb",
     "source 'camera': a message size must be >= 0 and <= 10000000 KB"),
    ("source-size-unknown-source",
     lambda w: w["queries"][0].update(source_output_kb={"mic": 2}),
     "queries[0].source_output_kb.mic", "unknown source 'mic'; known: camera"),
    # -- accuracy ---------------------------------------------------------------------------
    ("accuracy-table-unknown-stage", lambda w: _pipe(w).update(accuracy={
        "rule": "table", "table": [{"config": {"seg": {}}, "accuracy": 0.9}]}),
     "pipelines[0].accuracy.table[0].config.seg", "unknown stage 'seg'; known: cls, det"),
    ("accuracy-table-unknown-knob-value", lambda w: _pipe(w).update(accuracy={
        "rule": "table", "table": [{"config": {"det": {"model": "xl"}}, "accuracy": 0.9}]}),
     "pipelines[0].accuracy.table[0].config.det.model", "'xl' is not a value of knob 'model'"),
    ("accuracy-table-empty", lambda w: _pipe(w).update(accuracy={"rule": "table"}),
     "pipelines[0].accuracy.table", "rule 'table' needs at least one row"),
    ("min-accuracy-without-accuracy-model",
     lambda w: _pipe(w).update(accuracy={"rule": "none"}),
     "queries[0].slo.min_accuracy", "pipeline 'vision' has no accuracy model"),
    ("product-rule-without-operator-accuracy", lambda w: _op(w, "classify").pop("accuracy"),
     "pipelines[0].accuracy.rule",
     "'product' composes per-operator accuracies but operator 'classify' (stage 'cls') has no"),
]
_BY_ID = {case[0]: case for case in CASES}


def _spec_error(world: World) -> SpecError:
    with pytest.raises(SpecError) as info:
        build_index(parse_world(world))
    return info.value


def _write(tmp_path: Path, world: World, name: str = "world.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(world, sort_keys=False), encoding="utf-8")
    return path


def test_tiny_world_is_valid() -> None:
    """The base of every case is valid, so each failure below comes from its one mutation."""
    index = build_index(parse_world(make_tiny_world()))
    assert set(index.pipelines["vision"].operator_of) == {"det", "cls"}


def test_cases_have_unique_ids() -> None:
    assert len(_BY_ID) == len(CASES)


@pytest.mark.parametrize(("mutate", "path", "what"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_api_error_starts_with_the_field_path(mutate: Mutation, path: str, what: str) -> None:
    world = make_tiny_world()
    mutate(world)
    message = str(_spec_error(world))
    assert message.startswith(f"{path}: "), message
    assert message[len(path) + 2:].startswith(what), message
    assert "\n" not in message
    assert "(and" not in message, f"one mutation, one error: {message}"


def test_message_matches_the_requirement_example() -> None:
    world = make_tiny_world()
    world["queries"][3:] = [dict(world["queries"][1], name="cam-3"),
                            dict(world["queries"][1], name="cam-4", slo={"latency_ms": -5})]
    assert str(_spec_error(world)) == (
        "queries[3].slo.latency_ms: must be >= 0.001 and <= 10000000, got -5")


def test_several_errors_are_counted_per_field() -> None:
    world = make_tiny_world()
    world["queries"][0]["rate_rps"] = -1
    world["queries"][1]["rate_rps"] = -2
    _op(world, "classify")["output_kb"] = "big"  # two union branches fail: still one field
    assert str(_spec_error(world)) == (
        "operators[1].output_kb: must be a number or a list of {when, value} entries, got 'big' "
        "(and 2 more)"
    )


# -- whole files ------------------------------------------------------------------------------

FILE_CASES: list[tuple[str, str, str, str]] = [
    # (id, file name, content, expected text after "<file>")
    ("invalid-yaml", "w.yaml", "name: x\nhardware: [a, b\n",
     ":3:1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    ("tab-in-yaml", "w.yaml", "name: x\n\thardware: []\n",
     ":2:1: invalid YAML: found character"),
    ("duplicate-yaml-key", "w.yml", "name: a\nhardware: []\nname: b\n",
     ":3:1: invalid YAML: duplicate key 'name'; a key may appear only once in a mapping"),
    ("invalid-json", "w.json", '{"name": "x",}',
     ":1:14: invalid JSON: Expecting property name enclosed in double quotes"),
    ("top-level-list", "w.yaml", "- hardware\n- sites\n",
     ": the top level must be a mapping with keys such as 'devices' and 'queries', got a list"),
    ("top-level-scalar", "w.json", "42", ": the top level must be a mapping"),
    ("empty-file", "w.yaml", "# nothing yet\n", ": the document is empty; a world needs"),
]


@pytest.mark.parametrize(("name", "content", "what"),
                         [pytest.param(*c[1:], id=c[0]) for c in FILE_CASES])
def test_bad_file_names_the_file(tmp_path: Path, name: str, content: str, what: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_world(path)
    message = str(info.value)
    assert message.startswith(f"{path}{what}"), message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: no such file; check the path$"):
        load_world(tmp_path / "nope.yaml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r": is a directory, not a world file"):
        load_world(tmp_path)


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(b"name: \xff\n")
    with pytest.raises(SpecError, match=r"w\.yaml: cannot be read as UTF-8 text"):
        load_world(path)


def test_json_world_reports_field_path(tmp_path: Path) -> None:
    world = make_tiny_world()
    world["queries"][1]["rate_rps"] = -5
    path = tmp_path / "w.json"
    path.write_text(json.dumps(world), encoding="utf-8")
    with pytest.raises(SpecError, match=f"^{re.escape(RATE_ERROR)}$"):
        load_world(path)


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """The duplicate-key check leaves YAML merges (``<<: *anchor``) alone."""
    text = yaml.safe_dump(make_tiny_world(), sort_keys=False)
    text = text.replace("- name: shop-box\n", "- &box\n  name: shop-box\n", 1)
    text = text.replace("- name: t4-pool\n", "- <<: *box\n  name: t4-pool\n", 1)
    path = tmp_path / "merge.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_world(path).devices[1].name == "t4-pool"


# -- the CLI ----------------------------------------------------------------------------------

CLI_CASES = ["negative-rate", "cycle", "unknown-pipeline-in-query",
             "replica-units-exceed-every-device", "unknown-nested-key", "infinite-units"]


def _one_error_line(result: Any) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return str(lines[0][len("error: "):])


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_bad_world_exits_2_with_one_line(tmp_path: Path, command: str, case: str) -> None:
    _, mutate, path, what = _BY_ID[case]
    world = make_tiny_world()
    mutate(world)
    file = _write(tmp_path, world)
    result = CliRunner().invoke(app, [command, str(file)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert _one_error_line(result).startswith(f"{path}: {what}")


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize(("name", "content"), [
    pytest.param("w.yaml", "name: x\nhardware: [a, b\n", id="invalid-yaml"),
    pytest.param("w.json", "[1, 2]", id="top-level-list"),
])
def test_cli_bad_file_exits_2_with_one_line(tmp_path: Path, command: str, name: str,
                                            content: str) -> None:
    file = tmp_path / name
    file.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, [command, str(file)])
    assert result.exit_code == 2, result.output
    assert _one_error_line(result).startswith(f"{file}:")


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_cli_missing_file_exits_2(tmp_path: Path, command: str) -> None:
    result = CliRunner().invoke(app, [command, str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2, result.output
    assert _one_error_line(result) == f"{tmp_path / 'nope.yaml'}: no such file; check the path"


def test_cli_valid_world_passes_validate(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(_write(tmp_path, make_tiny_world()))])
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout


def test_cli_debug_raises_the_spec_error(tmp_path: Path) -> None:
    world = make_tiny_world()
    world["queries"][1]["rate_rps"] = -5
    result = CliRunner().invoke(app, ["--debug", "validate", str(_write(tmp_path, world))])
    assert isinstance(result.exception, SpecError)
    assert str(result.exception) == RATE_ERROR


def test_cli_debug_prints_the_traceback(tmp_path: Path) -> None:
    """End to end, as a user runs it: ``--debug`` shows the traceback, without it one line."""
    world = make_tiny_world()
    world["queries"][1]["rate_rps"] = -5
    file = _write(tmp_path, world)
    cmd = [sys.executable, "-m", "circinus"]
    plain = subprocess.run([*cmd, "validate", str(file)], capture_output=True, text=True,
                           check=False, timeout=60)
    debug = subprocess.run([*cmd, "--debug", "validate", str(file)], capture_output=True,
                           text=True, check=False, timeout=60)
    assert plain.returncode == 2
    assert plain.stderr == f"error: {RATE_ERROR}\n"
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr
    assert f"circinus.errors.SpecError: {RATE_ERROR}" in debug.stderr


def test_cli_message_with_markup_characters(tmp_path: Path) -> None:
    """A value that looks like rich markup (``[/x]``) is printed as is, not parsed."""
    world = make_tiny_world()
    world["queries"][1]["rate_rps"] = "[/x]"
    result = CliRunner().invoke(app, ["validate", str(_write(tmp_path, world))])
    assert result.exit_code == 2, repr(result.exception)
    assert _one_error_line(result) == (
        "queries[1].rate_rps: input should be a valid number, got '[/x]'"
    )
