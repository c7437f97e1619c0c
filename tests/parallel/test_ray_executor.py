"""The search as Ray tasks on a local 2-node cluster gives the serial plan.

The cluster is started here, node after node (:class:`~circinus.runtime.cluster.LocalCluster`
over ``ray.cluster_utils.Cluster``, on the loopback), and stopped with ``Cluster.shutdown()``
at the end; nothing else's Ray processes are touched.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("ray")

import ray

from circinus.gen import GenSpec, generate
from circinus.parallel import make_executor
from circinus.planner import Planner, PlanResult
from circinus.runtime.cluster import LocalCluster, NodeSpec
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def index() -> WorldIndex:
    """A generated world with dedicated replicas: its selection is proven in about a second
    (with shared deployments it would run its whole time budget in each of the four plans)."""
    world = parse_world(generate(GenSpec(queries=60, edge_sites=5, seed=1)))
    return build_index(world.model_copy(update={
        "planner": world.planner.model_copy(update={"sharing": "dedicated"})}))


@pytest.fixture(scope="module")
def serial(index: WorldIndex) -> PlanResult:
    return Planner().plan(index)


def test_without_an_address_a_local_cluster_is_started_and_stopped(
        index: WorldIndex, serial: PlanResult) -> None:
    assert not ray.is_initialized()  # runs first: no cluster of this module yet
    result = Planner(executor=make_executor("ray", workers=2, chunks=3)).plan(index)
    assert result.decisions() == serial.decisions()
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    nodes = LocalCluster(nodes=[NodeSpec("head", {}), NodeSpec("second", {})], head_cpus=1,
                         node_cpus=1)
    nodes.start()  # the head, then the second node; this process connected
    try:
        yield nodes
    finally:
        nodes.shutdown()  # Cluster.shutdown(): only the nodes started here


def test_two_nodes_plan_as_serial(cluster: LocalCluster, index: WorldIndex,
                                  serial: PlanResult) -> None:
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    result = Planner(executor=make_executor("ray", chunks=4)).plan(index)
    assert result.decisions() == serial.decisions()
    assert (result.goodput, result.cost_per_hour) == (serial.goodput, serial.cost_per_hour)
    chunks = result.search_chunks
    assert [c.number for c in chunks] == [0, 1, 2, 3]
    assert sum(c.queries for c in chunks) == len(index.world.queries)
    # SPREAD puts the chunks on both nodes
    assert len({c.worker.split()[1] for c in chunks}) == 2, [c.worker for c in chunks]
    assert ray.is_initialized()  # the caller's connection is left as it was


def test_connecting_by_address_and_leaving(cluster: LocalCluster, index: WorldIndex,
                                           serial: PlanResult) -> None:
    ray.shutdown()  # the executor connects to the address itself, and disconnects after
    try:
        result = Planner(executor=make_executor("ray", address=cluster.address, chunks=3)
                         ).plan(index)
        assert result.decisions() == serial.decisions()
        assert not ray.is_initialized()
    finally:
        if not ray.is_initialized():
            ray.init(address=cluster.address, log_to_driver=False)
