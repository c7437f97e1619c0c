"""Ray Serve serves a sink without an operator (the ingress waits for its inputs) and refuses
sources with rates of their own with one line; checked without a cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

import circinus
from circinus.errors import SpecError
from circinus.plan.file import to_plan_file
from circinus.runtime.build import DeploySettings, build_config
from circinus.runtime.config import IngressUserConfig, QueryRoute, StageRoute, Target
from circinus.spec import build_index, parse_world

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fusion-join.yaml"


def _config(drop: tuple[str, ...] = ()) -> tuple[Any, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["queries"] = [q for q in data["queries"] if q["name"] not in drop]
    world = parse_world(data)
    index = build_index(world)
    return index, to_plan_file(index, circinus.Planner().plan(world))


def test_a_source_with_its_own_rate_is_refused_with_one_line() -> None:
    index, plan = _config()
    with pytest.raises(SpecError) as info:
        build_config(index, plan, settings=DeploySettings(probe=True), origin="plan.json")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("plan.json: queries[1].source_rate_rps: query 'kiosk-1' gives "
                              "sources rates of their own")


def test_the_ingress_route_of_a_join_sink_names_its_inputs() -> None:
    index, plan = _config(drop=("kiosk-1",))
    config = build_config(index, plan, settings=DeploySettings(probe=True))
    routes = {q.query: q for app in config.applications for q in IngressUserConfig.model_validate(
        app.deployments[0].user_config).queries}
    assert routes["lobby"].ends == ["faces", "speech"]
    assert [s.stage for s in routes["lobby"].stages] == ["faces", "speech"]
    assert routes["kiosk-2"].ends == []
    assert routes["kiosk-2"].source_kb == {"camera": 300, "mic": 16}


class _Echo:
    """A deployment handle answering ``(name, input)``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def remote(self, arg: Any) -> Any:
        async def run() -> Any:
            return self.name, arg
        return run()


def test_the_ingress_answers_a_join_sinks_inputs() -> None:
    pytest.importorskip("ray")
    from circinus.runtime.app import Ingress

    def target(name: str) -> Target:
        return Target(deployment=name, app="watch", share=1.0, site="shop", device="box",
                      output_kb=1.0)

    route = QueryRoute(query="q", sources={"camera": "shop", "mic": "shop"},
                       source_kb={"camera": 1.0, "mic": 1.0},
                       stages=[StageRoute(stage="faces", inputs=["camera"],
                                          targets=[target("f")]),
                               StageRoute(stage="speech", inputs=["mic"],
                                          targets=[target("s")])],
                       ends=["faces", "speech"])
    ingress = Ingress.func_or_class(owned={"f": _Echo("f"), "s": _Echo("s")})
    ingress.reconfigure(IngressUserConfig(pipeline="watch", queries=[route],
                                          emulate=False).model_dump(mode="json"))
    out = asyncio.run(ingress("q", {"camera": "frame", "mic": "chunk"}))
    assert out == (("f", "frame"), ("s", "chunk"))
