"""From a plan file to the Ray Serve config: one Serve deployment per planned deployment.

NOTE: every pipeline with an admitted query becomes one Serve application, named after the
pipeline, whose ingress (``ingress-<pipeline>``) follows the pipeline's DAG for each request and
sends each stage to a deployment of the query's route, drawn with the route's shares. A planned
deployment belongs to the application of the first pipeline routed to it; an ingress reaches
deployments of other applications by name. Each replica asks for ``units_per_replica`` of the
custom resource of its device (:func:`device_resource`), which only the Ray node of that device's
site offers: that pins it to its planned place and keeps the device's replicas within its
capacity, as the plan counted them. A plan that needs more units (or memory) than a device has
would wait in DEPLOYING for ever; it is refused here instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from circinus.errors import SpecError
from circinus.plan.file import DeploymentOut, PlanFile
from circinus.runtime.config import (
    INGRESS_PREFIX,
    ActorOptions,
    ApplicationConfig,
    BatchPolicy,
    DeploymentConfig,
    IngressUserConfig,
    LanEmulation,
    LinkEmulation,
    OperatorUserConfig,
    QueryRoute,
    ServeConfig,
    StageRoute,
    Target,
)
from circinus.simulate.model import REPLAN, compile_plan
from circinus.spec.index import WorldIndex

APP_BUILDER = "circinus.runtime.app:build"
"""``import_path`` of every application (needs the ``ray`` extra where the cluster runs)."""
CAPACITY_EPS = 1e-9
"""Units (and GB) a device may be over its capacity by rounding."""
MIN_RESOURCE = 1e-3
"""Smallest custom-resource request: a replica of zero units still asks this much of its
device's resource, so that it is still pinned there."""
PROBE = "circinus.runtime.probe:identity"
"""Implementation of every operator in the calibration probe."""
INGRESS_ONGOING = 10_000
"""Requests an ingress holds at once (it only waits on the stages)."""


@dataclass(frozen=True)
class DeploySettings:
    """Choices the plan leaves to the deployment.

    Attributes:
        cpus_per_unit: CPUs a replica reserves per capacity unit (0: placement and capacity by
            the device resources alone, as on the emulated cluster where every site shares one
            machine's cores).
        gpus_per_unit: GPUs a replica reserves per unit, on devices of GPU hardware.
        emulate_links: delay messages between sites as the world's links would (off on a real
            cluster, whose network is real).
        seed: seed of the ingresses' route draws.
        probe: run every operator as :func:`circinus.runtime.probe.identity` (the calibration
            probe: the engine's overhead alone) and emulate no link.
    """

    cpus_per_unit: float = 0.0
    gpus_per_unit: float = 0.0
    emulate_links: bool = True
    seed: int = 0
    probe: bool = False


def device_resource(device: str) -> str:
    """The custom resource that pins replicas to ``device`` (offered by its site's node)."""
    return f"circinus-device-{device}"


def serve_name(name: str) -> str:
    """A plan name as a Serve deployment or application name: runs of characters other than
    letters, digits, ``-`` and ``_`` become ``-`` (e.g. ``cam-1/det@box`` -> ``cam-1-det-box``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "d"


def batch_timeout_s(dep: DeploymentOut) -> float:
    """Longest wait for a batch: the plan's, else twice the mean time the deployment's planned
    rate takes to bring ``b - 1`` more requests (0 for batches of one).

    Example: batch 4 at 100 req/s waits at most 2 x 3 / 100 = 0.06 s.
    """
    b = dep.batch.max_batch_size
    if dep.batch.timeout_ms is not None:
        return dep.batch.timeout_ms / 1000.0
    if b == 1 or dep.rate_rps <= 0:
        return 0.0
    return 2.0 * (b - 1) / dep.rate_rps


def check_capacity(index: WorldIndex, plan: PlanFile, *, origin: str) -> None:
    """Refuse a plan whose deployments need more units or memory than a device has.

    Raises:
        SpecError: e.g. ``plan.json: deployments: device 'box-1' has 4 units, the plan's
            replicas there take 5 (...)``.
    """
    units: dict[str, float] = {}
    memory: dict[str, float] = {}
    names: dict[str, list[str]] = {}
    for dep in plan.deployments:
        units[dep.device] = units.get(dep.device, 0.0) + dep.replicas * dep.units_per_replica
        memory[dep.device] = memory.get(dep.device, 0.0) + (
            dep.replicas * dep.memory_gb_per_replica)
        names.setdefault(dep.device, []).append(dep.name)
    for device, used in sorted(units.items()):
        dev = index.devices[device]
        listed = ", ".join(names[device][:4]) + (", ..." if len(names[device]) > 4 else "")
        if used > dev.units + CAPACITY_EPS:
            raise SpecError(f"{origin}: deployments: device {device!r} has {dev.units:g} units, "
                            f"the plan's replicas there take {used:g} ({listed}); Ray would "
                            f"leave them DEPLOYING for ever; {REPLAN}")
        if dev.memory_gb is not None and memory[device] > dev.memory_gb + CAPACITY_EPS:
            raise SpecError(f"{origin}: deployments: device {device!r} has {dev.memory_gb:g} GB, "
                            f"the plan's replicas there take {memory[device]:g} GB ({listed}); "
                            f"{REPLAN}")


def check_flow(index: WorldIndex, plan: PlanFile, *, origin: str) -> None:
    """Refuse a plan whose admitted queries fan out or take branches: the ingress follows
    every edge of the DAG once per request.

    Raises:
        SpecError: e.g. ``plan.json: queries[0]: pipeline 'cameras' fans out at stage 'det';
            the Ray Serve runtime serves every stage once per request, ...``.
    """
    for i, q in enumerate(plan.queries):
        pipe = index.pipelines.get(q.pipeline)
        if not q.admitted or pipe is None or pipe.plain:
            continue
        feature = (f"fans out at stage {pipe.fanout_stage!r}" if pipe.fanout_stage else
                   f"takes branches at {', '.join(repr(s) for s in pipe.branch_at)}")
        raise SpecError(f"{origin}: queries[{i}]: pipeline {q.pipeline!r} {feature}; the Ray "
                        "Serve runtime serves every stage once per request, so fan-out and "
                        "branches are not deployed: check the plan with `circinus simulate`")


def build_config(index: WorldIndex, plan: PlanFile, *, settings: DeploySettings | None = None,
                 origin: str = "plan") -> ServeConfig:
    """The Serve config running ``plan`` on the world of ``index``.

    Raises:
        SpecError: the plan does not fit the world (as :func:`circinus.simulate.compile_plan`
            checks it), fans out or takes branches (:func:`check_flow`), exceeds a device's
            capacity, or names an operator without an ``implementation`` to run.
    """
    settings = settings or DeploySettings()
    compile_plan(index, plan, origin=origin)
    check_flow(index, plan, origin=origin)
    check_capacity(index, plan, origin=origin)
    if not any(q.admitted for q in plan.queries):
        raise SpecError(f"{origin}: queries: no query is admitted, so there is nothing to "
                        "deploy; relax the SLOs or add capacity, then plan again")
    for i, q in enumerate(plan.queries):
        if q.admitted and q.source_rate_rps:
            raise SpecError(f"{origin}: queries[{i}].source_rate_rps: query {q.name!r} gives "
                            "sources rates of their own, which the Ray Serve ingress does not "
                            "serve (it takes one message of every source per request); "
                            "simulate the plan (`circinus simulate`) or leave source_rate_rps "
                            "out")
    names = _names(plan)
    deps = {d.name: d for d in plan.deployments}
    owner: dict[str, str] = {}
    pipelines: list[str] = []
    for q in plan.queries:
        if not q.admitted:
            continue
        if q.pipeline not in pipelines:
            pipelines.append(q.pipeline)
        for r in q.route:
            for step in r.deployments:
                owner.setdefault(step.deployment, q.pipeline)
    apps = []
    for pipeline in pipelines:
        app = serve_name(pipeline)
        owned = [deps[n] for n in deps if owner.get(n) == pipeline]
        ingress = IngressUserConfig(
            pipeline=pipeline,
            queries=[_route(index, q.name, plan, names, owner) for q in plan.queries
                     if q.admitted and q.pipeline == pipeline],
            links=[LinkEmulation(src=s, dst=d, bandwidth_mbps=ln.bandwidth_mbps,
                                 rtt_ms=ln.rtt_ms, capacity_mbps=ln.capacity_mbps)
                   for (s, d), ln in sorted(index.links.items())],
            lans=[LanEmulation(site=s.name, bandwidth_mbps=s.lan_bandwidth_mbps,
                               rtt_ms=s.lan_rtt_ms) for s in index.world.sites],
            emulate=settings.emulate_links and not settings.probe, seed=settings.seed)
        ingress_name = INGRESS_PREFIX + app
        configs = [DeploymentConfig(
            name=ingress_name, num_replicas=1, max_ongoing_requests=INGRESS_ONGOING,
            user_config=ingress.model_dump(mode="json"),
            ray_actor_options=ActorOptions(num_cpus=0.0))]
        configs += [_deployment(index, d, names[d.name], settings) for d in owned]
        apps.append(ApplicationConfig(
            name=app, import_path=APP_BUILDER,
            args={"pipeline": pipeline, "ingress": ingress_name,
                  "deployments": [names[d.name] for d in owned]},
            deployments=configs))
    return ServeConfig(applications=apps)


def _names(plan: PlanFile) -> dict[str, str]:
    """Plan deployment name -> unique Serve deployment name."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for dep in plan.deployments:
        base = serve_name(dep.name)
        name, k = base, 1
        while name in taken or name.startswith(INGRESS_PREFIX):
            k += 1
            name = f"{base}-{k}"
        taken.add(name)
        out[dep.name] = name
    return out


def _deployment(index: WorldIndex, dep: DeploymentOut, name: str,
                settings: DeploySettings) -> DeploymentConfig:
    op = index.operators[dep.operator]
    if op.spec.implementation is None and not settings.probe:
        raise SpecError(f"operators: operator {dep.operator!r} has no implementation, so its "
                        "deployments cannot run; give it `implementation: package.module:"
                        "factory` or simulate the plan instead (`circinus simulate`)")
    dev = index.devices[dep.device]
    gpu = any(h.name == dev.hardware and h.kind == "gpu" for h in index.world.hardware)
    batch = dep.batch.max_batch_size
    user = OperatorUserConfig(
        deployment=dep.name, operator=dep.operator,
        implementation=PROBE if settings.probe else op.spec.implementation or PROBE,
        config=dict(dep.config),
        batch=BatchPolicy(max_batch_size=batch, timeout_s=batch_timeout_s(dep)))
    return DeploymentConfig(
        name=name, num_replicas=dep.replicas, max_ongoing_requests=2 * batch,
        user_config=user.model_dump(mode="json"),
        ray_actor_options=ActorOptions(
            num_cpus=0.0 if gpu else settings.cpus_per_unit * dep.units_per_replica,
            num_gpus=settings.gpus_per_unit * dep.units_per_replica if gpu else 0.0,
            resources={device_resource(dep.device): max(dep.units_per_replica, MIN_RESOURCE)}))


def _route(index: WorldIndex, query: str, plan: PlanFile, names: dict[str, str],
           owner: dict[str, str]) -> QueryRoute:
    out = next(q for q in plan.queries if q.name == query)
    spec = next(q for q in index.world.queries if q.name == query)
    pipe = index.pipelines[out.pipeline]
    by_stage = {r.stage: r for r in out.route}
    deps = {d.name: d for d in plan.deployments}
    stages = []
    for s in pipe.order:
        targets = []
        for step in by_stage[s].deployments:
            dep = deps[step.deployment]
            op = index.operators[dep.operator]
            targets.append(Target(
                deployment=names[dep.name], app=serve_name(owner[dep.name]), share=step.share,
                site=dep.site, device=dep.device,
                output_kb=op.output_kb[op.key_of(dep.config)]))
        stages.append(StageRoute(stage=s, inputs=list(pipe.preds[s]), targets=targets))
    return QueryRoute(query=query, sources=dict(spec.sources),
                      source_kb={s: pipe.source_message_kb(spec, s) for s in pipe.source_kb},
                      stages=stages, ends=list(pipe.sink_inputs))
