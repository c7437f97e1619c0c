"""A plan served for real: a two-node Ray cluster on this machine (a node per site), the config
accepted by ``serve deploy``, requests answered with the labels' classes, every replica on its
planned node, a knob-only re-plan applied in place, ``circinus serve``'s run on a running
cluster, and a teardown that leaves no process behind.

Slow (a minute or two on 2 cores): the cluster is started once for the module.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from digitsworld import digits_world, planned, write_world

from circinus.plan.file import PlanFile
from circinus.runtime.build import DeploySettings, build_config
from circinus.runtime.config import ServeConfig
from circinus.spec.index import WorldIndex

pytest.importorskip("ray.serve")

from ray import serve

from circinus.executable.digits import dataset
from circinus.runtime.cluster import (
    LocalCluster,
    deploy,
    replica_nodes,
    wait_healthy,
)
from circinus.runtime.load import LoadSettings
from circinus.runtime.machine import alive
from circinus.runtime.probe import observed_of, overhead_of
from circinus.runtime.results import Comparison
from circinus.runtime.session import check_placement, serve_plan
from circinus.simulate import PoissonArrivals

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmd:
                found.append(int(entry.name))
    return found


class Served:
    def __init__(self, tmp: Path) -> None:
        self.world = write_world(tmp, digits_world())
        index, plan = planned(self.world)
        self.index: WorldIndex = index
        self.plan: PlanFile = plan
        self.tmp = tmp
        self.cluster = LocalCluster(index, dashboard_port=_free_port())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("served"))
    s.cluster.start()
    session = s.cluster.session_dir
    try:
        yield s
    finally:
        started = s.cluster.processes()
        s.cluster.shutdown()
    deadline = time.monotonic() + 30
    while _processes_naming(session) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_naming(session) == [], "the cluster left processes behind"
    # agents rename themselves and name no session: every process of the cluster is gone
    assert len(started) > 5 and not [p for p in started if alive(p)]


def test_nodes_stand_for_the_sites(served: Served) -> None:
    assert sorted(served.cluster.node_sites.values()) == ["depot", "region"]
    assert served.cluster.nodes[0].site == "region"  # the cloud site is the head


def test_serve_deploy_accepts_the_config_and_requests_are_answered(served: Served) -> None:
    out = served.tmp / "serve.yaml"
    plan_path = served.tmp / "plan.json"
    plan_path.write_text(served.plan.model_dump_json())
    cli = Path(sys.executable).parent
    done = subprocess.run([str(cli / "circinus"), "deploy", str(served.world), str(plan_path),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    url = served.cluster.dashboard_url
    assert url is not None
    done = subprocess.run([str(cli / "serve"), "deploy", str(out), "-a", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    config = ServeConfig.model_validate(yaml.safe_load(out.read_text()))
    wait_healthy([a.name for a in config.applications], timeout_s=240)

    placement = check_placement(config, served.index)
    assert placement.replicas == sum(d.replicas for d in served.plan.deployments)
    assert placement.misplaced == []
    sites = {served.cluster.node_sites[n] for nodes in replica_nodes().values() for n in nodes}
    assert {"depot", "region"} <= sites

    data = dataset()
    handle = serve.get_app_handle("digits")
    answers = [handle.remote("sorter-a", data.inputs[i]) for i in range(40)]
    right = sum(a.result(timeout_s=60) == data.labels[i] for i, a in enumerate(answers))
    assert right >= 32  # logistic regression at full resolution reads about 0.9 of them
    with pytest.raises(Exception, match="not admitted"):
        handle.remote("nobody", data.inputs[0]).result(timeout_s=60)


def test_knob_only_replan_is_applied_in_place(served: Served) -> None:
    config = build_config(served.index, served.plan)
    deploy(config, timeout_s=240)  # the same state: nothing restarts
    before = _replica_ids()
    app = config.applications[0]
    dep = app.deployments[1]
    user = json.loads(json.dumps(dep.user_config))
    user["batch"] = {"max_batch_size": 2, "timeout_s": 0.01}
    changed = dep.model_copy(update={"user_config": user})
    new = config.model_copy(update={"applications": [app.model_copy(update={
        "deployments": [app.deployments[0], changed, *app.deployments[2:]]})]})
    deploy(new, timeout_s=240)
    assert _replica_ids() == before  # reconfigured, not replaced
    data = dataset()
    handle = serve.get_app_handle("digits")
    assert handle.remote("sorter-b", data.inputs[0]).result(timeout_s=60) == data.labels[0]


def _replica_ids() -> dict[str, list[str]]:
    from ray.serve.context import _get_global_client

    details = _get_global_client().get_serve_details()
    return {name: sorted(r["replica_id"] for r in dep["replicas"])
            for name, dep in details["applications"]["digits"]["deployments"].items()}


def test_serving_on_a_running_cluster_measures_and_removes_its_applications(
        served: Served) -> None:
    # twice, each run deploying afresh with the next seed
    result, records = serve_plan(
        served.index, served.plan, arrivals=PoissonArrivals(),
        load_settings=LoadSettings(duration_s=6.0, warmup_s=1.5, seed=1),
        compare=Comparison(simulated_ms={}, simulated_goodput=None, profiled={},
                           accuracy_alpha=0.05),
        address=served.cluster.address, runs=2)
    assert not result.emulated_links
    assert result.admitted == 2
    assert result.requests > 20 and result.completed == result.requests
    assert [r.seed for r in result.runs] == [1, 2]
    assert sum(r.requests for r in result.runs) == result.requests
    assert all(r.requests > 5 for r in result.runs)
    assert result.placement.misplaced == []
    assert result.placement.replicas == 2 * result.runs[0].placement.replicas > 0
    assert len(records) >= result.requests
    for q in result.queries:
        assert q.accuracy is not None and q.accuracy.value > 0.6
        assert q.latency.p50_ms is not None and q.latency.p50_ms < 2_000
    assert "digits" not in serve.status().applications


def test_the_calibration_probe_measures_the_engine_alone(served: Served) -> None:
    result, records = serve_plan(
        served.index, served.plan, arrivals=PoissonArrivals(),
        load_settings=LoadSettings(duration_s=6.0, warmup_s=1.0, seed=2),
        compare=Comparison(simulated_ms={}, simulated_goodput=None, profiled={},
                           accuracy_alpha=0.05),
        address=served.cluster.address, deploy_settings=DeploySettings(probe=True),
        check_answers=False)
    assert result.completed == result.requests > 10
    admitted = [q for q in served.plan.queries if q.admitted and q.predicted is not None]
    runtime = overhead_of(
        observed_of([r for r in records if r.due_s >= 1.0],
                    {q.name: q.predicted.percentile for q in admitted if q.predicted}),
        {q.name: len(q.route) for q in admitted})
    assert 0.0 < runtime.hop_mean_ms < 1_000
    assert runtime.samples == result.requests
