"""The Ray Serve config built from a plan: strict, complete, pinned, and refused when a device
is over capacity."""

from __future__ import annotations

from pathlib import Path

import pytest

from circinus.errors import SpecError
from circinus.plan.file import PlanFile
from circinus.runtime.build import (
    DeploySettings,
    batch_timeout_s,
    build_config,
    check_capacity,
    device_resource,
    serve_name,
)
from circinus.runtime.config import (
    INGRESS_PREFIX,
    IngressUserConfig,
    OperatorUserConfig,
    check_with_ray,
    read_serve_config,
)
from circinus.spec.index import WorldIndex

Planned = tuple[Path, WorldIndex, PlanFile]


def test_one_deployment_per_planned_deployment_pinned_to_its_device(digits_plan: Planned) -> None:
    _, index, plan = digits_plan
    config = build_config(index, plan)
    (app,) = config.applications
    assert app.name == "digits"
    operators = [d for d in app.deployments if not d.name.startswith(INGRESS_PREFIX)]
    assert len(operators) == len(plan.deployments)
    by_plan = {d.name: d for d in plan.deployments}
    for dep in operators:
        user = OperatorUserConfig.model_validate(dep.user_config)
        planned = by_plan[user.deployment]
        assert dep.num_replicas == planned.replicas
        assert dep.ray_actor_options.resources == {
            device_resource(planned.device): planned.units_per_replica}
        assert dep.ray_actor_options.num_cpus == 0.0
        assert user.config == planned.config
        assert user.batch.max_batch_size == planned.batch.max_batch_size
        assert user.implementation == index.operators[planned.operator].spec.implementation
    assert sorted(app.args["deployments"]) == sorted(d.name for d in operators)


def test_ingress_routes_every_admitted_query_along_its_dag(digits_plan: Planned) -> None:
    _, index, plan = digits_plan
    (app,) = build_config(index, plan).applications
    ingress = IngressUserConfig.model_validate(app.deployments[0].user_config)
    assert app.deployments[0].name == INGRESS_PREFIX + "digits"
    assert {q.query for q in ingress.queries} == {q.name for q in plan.queries if q.admitted}
    for q in ingress.queries:
        assert [s.stage for s in q.stages] == ["pre", "cls", "post"]
        assert [s.inputs for s in q.stages] == [["camera"], ["pre"], ["cls"]]
        assert q.sources == {"camera": "depot"}
        route = next(p for p in plan.queries if p.name == q.query).route
        assert [[t.share for t in s.targets] for s in q.stages] == [
            [d.share for d in r.deployments] for r in route]
    assert {(ln.src, ln.dst) for ln in ingress.links} == {("depot", "region"), ("region", "depot")}
    assert ingress.emulate


def test_cpus_per_unit_and_real_network(digits_plan: Planned) -> None:
    _, index, plan = digits_plan
    config = build_config(index, plan, settings=DeploySettings(cpus_per_unit=1.0,
                                                               emulate_links=False))
    (app,) = config.applications
    assert all(d.ray_actor_options.num_cpus == 1.0 for d in app.deployments[1:])
    assert not IngressUserConfig.model_validate(app.deployments[0].user_config).emulate


def test_probe_replaces_every_implementation(digits_plan: Planned) -> None:
    _, index, plan = digits_plan
    (app,) = build_config(index, plan, settings=DeploySettings(probe=True)).applications
    impls = {OperatorUserConfig.model_validate(d.user_config).implementation
             for d in app.deployments[1:]}
    assert impls == {"circinus.runtime.probe:identity"}
    assert not IngressUserConfig.model_validate(app.deployments[0].user_config).emulate


def test_over_capacity_is_refused_naming_the_device(digits_plan: Planned) -> None:
    _, index, plan = digits_plan
    dep = plan.deployments[0]
    bigger = dep.model_copy(update={"replicas": 40})
    over = plan.model_copy(update={"deployments": [bigger, *plan.deployments[1:]]})
    with pytest.raises(SpecError, match=rf"device '{dep.device}' has .* units, the plan's "
                       r"replicas there take .*DEPLOYING"):
        check_capacity(index, over, origin="plan.json")


def test_a_plan_with_nothing_admitted_is_refused(digits_plan: Planned) -> None:
    _, index, plan = digits_plan
    none = plan.model_copy(update={"deployments": [], "queries": [
        q.model_copy(update={"admitted": False, "route": [], "operators": [],
                             "predicted": None}) for q in plan.queries]})
    with pytest.raises(SpecError, match="no query is admitted"):
        build_config(index, none)


def test_misspelled_key_is_refused_not_dropped(digits_plan: Planned) -> None:
    _, index, plan = digits_plan
    doc = build_config(index, plan).to_document()
    assert read_serve_config(doc, origin="serve.yaml").to_document() == doc
    doc["applications"][0]["deployments"][1]["num_replica"] = 3
    with pytest.raises(SpecError, match=r"serve.yaml: applications\[0\].deployments\[1\]"
                       r".num_replica: unknown key; check the spelling; write the file with"):
        read_serve_config(doc, origin="serve.yaml")


def test_rays_own_schema_accepts_the_config(digits_plan: Planned) -> None:
    pytest.importorskip("ray.serve")
    _, index, plan = digits_plan
    assert check_with_ray(build_config(index, plan)) is True


def test_serve_names() -> None:
    assert serve_name("cam-1/det@box-1") == "cam-1-det-box-1"
    assert serve_name("classify@cloud cores") == "classify-cloud-cores"


def test_batch_timeout_from_the_planned_rate(digits_plan: Planned) -> None:
    _, _, plan = digits_plan
    dep = plan.deployments[0]
    assert batch_timeout_s(dep) == 0.0  # batches of one never wait
    four = dep.model_copy(update={"batch": dep.batch.model_copy(update={"max_batch_size": 4}),
                                  "rate_rps": 100.0})
    assert batch_timeout_s(four) == pytest.approx(0.06)
    given = four.model_copy(update={"batch": four.batch.model_copy(update={"timeout_ms": 5.0})})
    assert batch_timeout_s(given) == pytest.approx(0.005)
