"""A world's sites as Ray nodes on this machine, and the deployment of a Serve config on Ray.

:class:`LocalCluster` starts one Ray node per site that has devices (the first cloud site's is
the head, else the first site's), one after another; each offers the custom resource of every
device of its site (:func:`~circinus.runtime.build.device_resource`) with the device's units.
All nodes share this machine's cores: a replica reserves no CPU here (``cpus_per_unit`` 0), the
device resources alone place it. :meth:`LocalCluster.shutdown` stops only what it started.

Importing this module needs Ray (the ``ray`` extra).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray import serve
from ray._private import ray_constants
from ray.cluster_utils import Cluster

from circinus.errors import CircinusError
from circinus.runtime.build import device_resource
from circinus.runtime.config import ServeConfig
from circinus.runtime.machine import Started, descendants, stop
from circinus.spec.index import WorldIndex

_NODE_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_worker_niceness": "0"}
"""Set while the local cluster runs (see :meth:`LocalCluster.start`)."""
_ENABLED = ray_constants.ENABLE_RAY_CLUSTER
LOOPBACK = "127.0.0.1"
"""Every node of the local cluster listens on the loopback only."""
SITE_RESOURCE = "circinus-site-{}"
"""Custom resource naming the site a node stands for (one unit per node)."""


class DeployError(CircinusError):
    """The Serve config could not be deployed, or its applications did not become healthy."""

    exit_code = 5


@dataclass(frozen=True)
class NodeSpec:
    """One Ray node to start: the site it stands for and the resources it offers."""

    site: str
    resources: dict[str, float]


def node_specs(index: WorldIndex) -> list[NodeSpec]:
    """The nodes of ``index``'s sites with devices, head first (see module)."""
    sites: dict[str, dict[str, float]] = {}
    for dev in index.world.devices:
        res = sites.setdefault(dev.site, {SITE_RESOURCE.format(dev.site): 1.0})
        res[device_resource(dev.name)] = dev.units
    order = sorted(sites, key=lambda s: (index.sites[s].tier != "cloud",
                                         [x.name for x in index.world.sites].index(s)))
    return [NodeSpec(site=s, resources=sites[s]) for s in order]


class LocalCluster:
    """Ray nodes for a world's sites on this machine (see module), or other nodes.

    Args:
        index: the world whose sites the nodes stand for.
        head_cpus: CPUs the head node offers Ray tasks (the Serve controller needs none).
        dashboard_port: start Ray's dashboard on this port of the loopback (``serve deploy``
            talks to it; costs memory); ``None``: no dashboard.
        nodes: the nodes to start instead of ``index``'s, head first (e.g. for Ray tasks
            alone, :mod:`circinus.parallel.ray`).
        node_cpus: CPUs each node but the head offers Ray tasks.
    """

    def __init__(self, index: WorldIndex | None = None, *, head_cpus: int = 1,
                 dashboard_port: int | None = None, nodes: list[NodeSpec] | None = None,
                 node_cpus: int = 0) -> None:
        if nodes is None:
            assert index is not None, "give the world or the nodes"
            nodes = node_specs(index)
        assert nodes, "a cluster needs a head node"
        self.nodes = nodes
        self._head_cpus = head_cpus
        self._node_cpus = node_cpus
        self._dashboard_port = dashboard_port
        self._cluster: Cluster | None = None
        self._saved_env: dict[str, str | None] = {}
        self.node_sites: dict[str, str] = {}
        """Ray node id -> site, once started."""
        self.left_behind: list[int] = []
        """Pids of the cluster's processes the last :meth:`shutdown` had to kill."""

    @property
    def address(self) -> str:
        """The GCS address of the head (after :meth:`start`)."""
        assert self._cluster is not None, "start the cluster first"
        port = str(self._cluster.address).rpartition(":")[2]
        return f"{LOOPBACK}:{port}"

    @property
    def dashboard_url(self) -> str | None:
        """Address of the dashboard (what ``serve deploy -a`` takes), when started with one."""
        if self._dashboard_port is None:
            return None
        return f"http://{LOOPBACK}:{self._dashboard_port}"

    @property
    def session_dir(self) -> str:
        """The Ray session folder of the nodes (every process of the cluster names it)."""
        assert self._cluster is not None, "start the cluster first"
        return str(self._cluster.head_node.get_session_dir_path())

    def start(self) -> None:
        """Start the head, then each other node, and connect this process to the cluster."""
        # NOTE: Ray resolves 127.0.0.1 to the machine's outward address unless it is told the
        # cluster is on one machine; its switch for that is a variable (read by the nodes it
        # starts) and the constant it sets (read by this process). And Ray starts its workers
        # (the replicas) at niceness 15: on a machine shared with other work they would get a
        # small fraction of the cores, which no serving machine does; they run at 0 here, as
        # the other processes do. Both are put back by shutdown().
        self._saved_env = {k: os.environ.get(k) for k in _NODE_ENV}
        os.environ.update(_NODE_ENV)
        ray_constants.ENABLE_RAY_CLUSTER = False
        head, *rest = self.nodes
        head_args: dict[str, Any] = {"num_cpus": self._head_cpus, "resources": head.resources,
                                     "node_ip_address": LOOPBACK,
                                     "include_dashboard": self._dashboard_port is not None}
        if self._dashboard_port is not None:
            head_args.update(dashboard_host=LOOPBACK, dashboard_port=self._dashboard_port)
        self._cluster = Cluster(initialize_head=True, head_node_args=head_args)
        try:
            for node in rest:
                self._cluster.add_node(num_cpus=self._node_cpus, resources=node.resources,
                                       node_ip_address=LOOPBACK)
                self._cluster.wait_for_nodes()
            ray.init(address=self.address, log_to_driver=False,
                     _node_ip_address=LOOPBACK)
            for n in ray.nodes():
                for spec in self.nodes:
                    if n["Alive"] and SITE_RESOURCE.format(spec.site) in n["Resources"]:
                        self.node_sites[n["NodeID"]] = spec.site
        except BaseException:
            self.shutdown()
            raise

    def shutdown(self) -> None:
        """Stop Serve, disconnect, and stop the nodes this object started, then whatever of
        theirs is left after a grace period (:func:`~circinus.runtime.machine.stop`; nothing
        else)."""
        started = self.processes()
        try:
            if ray.is_initialized():
                try:
                    serve.shutdown()
                finally:
                    ray.shutdown()
        finally:
            if self._cluster is not None:
                self._cluster.shutdown()
                self._cluster = None
            self.left_behind = stop(started)
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._saved_env = {}
            ray_constants.ENABLE_RAY_CLUSTER = _ENABLED

    def processes(self) -> list[Started]:
        """The cluster's processes now: those its nodes were started as (each node's raylet,
        the head's GCS ...) and every process below them (workers, replicas, agents)."""
        if self._cluster is None:
            return []
        return descendants([info.process.pid for node in self._cluster.list_all_nodes()
                            for infos in node.all_processes.values() for info in infos
                            if info.process is not None])


def deploy(config: ServeConfig, *, timeout_s: float = 300.0) -> None:
    """Deploy ``config`` on the connected cluster (as ``serve deploy`` would) and wait until
    every application is RUNNING and every deployment HEALTHY.

    Raises:
        DeployError: an application failed to deploy or was not healthy in ``timeout_s``.
    """
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    serve.start(proxy_location=config.proxy_location)
    _get_global_client().deploy_apps(ServeDeploySchema.model_validate(config.to_document()))
    wait_healthy([a.name for a in config.applications], timeout_s=timeout_s)


def wait_healthy(apps: list[str], *, timeout_s: float) -> None:
    """Wait until ``apps`` run with every deployment HEALTHY.

    Raises:
        DeployError: one failed (with Ray's message) or ``timeout_s`` passed.
    """
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        status = serve.status()
        pending = []
        for name in apps:
            app = status.applications.get(name)
            if app is None:
                pending.append(f"{name}: not yet deploying")
                continue
            if app.status == "DEPLOY_FAILED":
                raise DeployError(f"application {name!r} failed to deploy: "
                                  f"{' '.join(app.message.split())[:400]}")
            bad = [f"{d}: {s.status}" for d, s in app.deployments.items()
                   if s.status != "HEALTHY"]
            if app.status != "RUNNING" or bad:
                pending.append(f"{name}: {app.status} ({', '.join(bad[:3])})")
        if not pending:
            return
        last = "; ".join(pending)
        time.sleep(0.5)
    raise DeployError(f"applications not healthy after {timeout_s:g} s: {last}; check the "
                      "cluster's resources (`ray status`) and the replicas' logs")


def replica_nodes() -> dict[tuple[str, str], list[str]]:
    """``(app, deployment) -> [node id of each running replica]``, from Serve's metadata."""
    from ray.serve.context import _get_global_client

    details: Any = _get_global_client().get_serve_details()
    out: dict[tuple[str, str], list[str]] = {}
    for app_name, app in details.get("applications", {}).items():
        for dep_name, dep in app.get("deployments", {}).items():
            out[app_name, dep_name] = [r["node_id"] for r in dep.get("replicas", [])
                                       if r.get("state") == "RUNNING"]
    return out
