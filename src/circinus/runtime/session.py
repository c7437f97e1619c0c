"""Serving runs: cluster, deploy, check placement, load, measure, tear down; once or several
times, each run reported and the queries over all of them.

:func:`serve_plan` is what ``circinus serve`` and ``circinus calibrate`` run. Without an address
it starts the world's sites as Ray nodes on this machine (:class:`LocalCluster`), with emulated
links; with one it connects to that cluster and emulates nothing. Either way it stops only what
it started: the local cluster, or on a cluster of the user's the applications it deployed.

Importing this module needs Ray (the ``ray`` extra).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Any

import ray
from ray import serve

from circinus.executable.base import Dataset, ImplementationError, load
from circinus.plan.file import PlanFile
from circinus.runtime.build import DeploySettings, build_config, device_resource, serve_name
from circinus.runtime.cluster import LocalCluster, deploy, replica_nodes
from circinus.runtime.config import INGRESS_PREFIX, ServeConfig
from circinus.runtime.load import Arrival, LoadSettings, drive, schedule
from circinus.runtime.machine import cpu_times, load_average, tree_rss_gb
from circinus.runtime.results import (
    Comparison,
    MachineOut,
    Record,
    ReplicaCheckOut,
    RunRecords,
    ServeResult,
    serve_result,
)
from circinus.simulate.arrivals import BaseArrivals
from circinus.spec.index import WorldIndex


def datasets(index: WorldIndex, plan: PlanFile) -> dict[str, Dataset]:
    """The dataset of every pipeline with an admitted query (its inputs and labels).

    Raises:
        ImplementationError: a pipeline has no dataset, or it cannot be loaded.
    """
    out: dict[str, Dataset] = {}
    for q in plan.queries:
        if not q.admitted or q.pipeline in out:
            continue
        pos = [p.name for p in index.world.pipelines].index(q.pipeline)
        spec = index.pipelines[q.pipeline].spec
        if spec.dataset is None:
            raise ImplementationError(f"pipelines[{pos}].dataset: pipeline {q.pipeline!r} has "
                                      "no dataset to send requests from")
        data = load(spec.dataset, field_name=f"pipelines[{pos}].dataset")()
        if not isinstance(data, Dataset):
            raise ImplementationError(f"pipelines[{pos}].dataset: {spec.dataset!r} returned "
                                      f"{type(data).__name__}, not a circinus Dataset")
        out[q.pipeline] = data
    return out


def check_placement(config: ServeConfig, index: WorldIndex) -> ReplicaCheckOut:
    """Every running replica against its planned device: the node it runs on must offer that
    device's resource (read from Ray's replica metadata and node table)."""
    offers = {n["NodeID"]: set(n["Resources"]) for n in ray.nodes() if n["Alive"]}
    site_of = {n["NodeID"]: _site(n["Resources"]) for n in ray.nodes() if n["Alive"]}
    placed = replica_nodes()
    count, misplaced = 0, []
    for app in config.applications:
        for dep in app.deployments:
            if dep.name.startswith(INGRESS_PREFIX):
                continue
            device = dep.user_config["deployment"]
            wanted = next(iter(dep.ray_actor_options.resources))
            planned = index.devices[_device_of(wanted, index)].site
            for node in placed.get((app.name, dep.name), []):
                count += 1
                if wanted not in offers.get(node, set()):
                    misplaced.append(f"{device}: {site_of.get(node, node)} ({planned})")
    return ReplicaCheckOut(replicas=count, misplaced=misplaced)


def _site(resources: Mapping[str, Any]) -> str:
    names = [r.removeprefix("circinus-site-") for r in resources if r.startswith("circinus-site-")]
    return names[0] if names else "?"


def _device_of(resource: str, index: WorldIndex) -> str:
    return next(d for d in index.devices if device_resource(d) == resource)


def serve_plan(index: WorldIndex, plan: PlanFile, *, arrivals: BaseArrivals,
               load_settings: LoadSettings, compare: Comparison, address: str | None = None,
               deploy_settings: DeploySettings | None = None,
               inputs: Mapping[str, Dataset] | None = None, check_answers: bool = True,
               runs: int = 1, origin: str = "plan") -> tuple[ServeResult, list[Record]]:
    """Serve ``plan`` and measure it (see module) ``runs`` times; also every record of every
    run, warm-up included.

    Run ``i`` deploys afresh (a new local cluster when there is no address) with seed
    ``load_settings.seed + i`` for its arrivals, inputs and route draws. Each run is reported
    on its own (``runs``), and each query over every run's measured requests together.

    NOTE: whole runs of one plan differ by more than their requests' sampling error: a run's
    every query can measure above its prediction and the next run's every query below (the
    processes' start, where the scheduler puts them, what else the machine does). A percentile
    read off several runs' requests together is what the plan delivers across such starts;
    one run's says as much about that run.

    ``deploy_settings`` overrides the deployment's (its seed is each run's); e.g.
    ``DeploySettings(probe=True)`` with ``check_answers=False`` is what ``circinus calibrate``
    serves: a probe whose answers are its inputs, left unchecked (counted wrong).
    """
    if runs < 1:
        raise ValueError(f"runs: must be >= 1, got {runs}")
    data = dict(inputs) if inputs is not None else datasets(index, plan)
    base = deploy_settings or DeploySettings(emulate_links=address is None)
    settings = [dataclasses.replace(load_settings, seed=load_settings.seed + i)
                for i in range(runs)]
    # every run's config before the first cluster starts: a plan that cannot be deployed is
    # refused before anything runs
    configs = [build_config(index, plan, origin=origin,
                            settings=dataclasses.replace(base, seed=s.seed))
               for s in settings]
    done = [_serve_once(index, plan, config, s, arrivals=arrivals, data=data, address=address,
                        check_answers=check_answers)
            for config, s in zip(configs, settings, strict=True)]
    result = serve_result(index, plan, done, arrivals=arrivals.name,
                          duration_s=load_settings.duration_s, warmup_s=load_settings.warmup_s,
                          compare=compare, address=address)
    return result, [r for run in done for r in run.records]


def _serve_once(index: WorldIndex, plan: PlanFile, config: ServeConfig,
                load_settings: LoadSettings, *, arrivals: BaseArrivals,
                data: Mapping[str, Dataset], address: str | None, check_answers: bool
                ) -> RunRecords:
    """One run: start (or connect), deploy, check placement, load, tear down."""
    cluster = LocalCluster(index) if address is None else None
    started = time.monotonic()
    connected = False
    if cluster is not None:
        cluster.start()
    elif not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
        connected = True
    try:
        deploy(config)
        startup = time.monotonic() - started
        placement = check_placement(config, index)
        todo = schedule(plan, arrivals, load_settings,
                        {p: len(d.inputs) for p, d in data.items()})
        handles = {p: serve.get_app_handle(serve_name(p)) for p in data}
        sources = {p: list(index.pipelines[p].source_kb) for p in data}

        def send(a: Arrival) -> Any:
            x = data[a.pipeline].inputs[a.input_id]
            payload = x if len(sources[a.pipeline]) == 1 else {s: x for s in sources[a.pipeline]}
            return handles[a.pipeline].remote(a.query, payload)

        def correct(a: Arrival, answer: Any) -> bool:
            if not check_answers:
                return False
            d = data[a.pipeline]
            return bool(d.correct(answer, d.labels[a.input_id]))

        load_before = load_average()
        before = cpu_times()
        records, dropped = asyncio.run(drive(send, todo, correct, load_settings))
        after = cpu_times()
        span = max(after.total - before.total, 1.0)
        machine = MachineOut(cores=_cores(), load_before=load_before, load_after=load_average(),
                             cpu_busy=(after.busy - before.busy) / span,
                             cpu_steal=(after.steal - before.steal) / span,
                             ray_memory_gb=tree_rss_gb())
    finally:
        if cluster is not None:
            cluster.shutdown()
        else:
            for app in config.applications:
                serve.delete(app.name)
            if connected:
                ray.shutdown()
    return RunRecords(load_settings.seed, records, dropped, startup, placement, machine)


def _cores() -> int:
    return os.cpu_count() or 1
