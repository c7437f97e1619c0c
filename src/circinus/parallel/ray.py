"""Chunks as Ray tasks: on a running cluster, or on a local one the executor starts.

With an ``address`` (``host:port`` of a cluster's head, ``ray://host:port`` for Ray Client, or
``auto``) the executor connects to that cluster, unless this process is connected to one
already, which it then uses; every node must have Circinus installed (the tasks import it).
Without one it starts a local cluster of one node offering ``workers`` CPUs
(:class:`~circinus.runtime.cluster.LocalCluster`: on the loopback, no dashboard) and stops
it after the search. Either way only what the executor started is stopped.

The job (the world and the batch's queries) is put in the object store once and fetched
once per Ray worker process, which keeps the last job it fetched; each chunk is a task of one
CPU carrying its queries' positions, spread over the nodes (Ray's ``SPREAD`` strategy), whose
candidates come back packed (:mod:`~circinus.parallel.packed`). A failed task ends the search
with a :class:`~circinus.parallel.base.ClusterError` (tasks are not retried: a chunk that
failed once, e.g. for want of Circinus on a node, fails again).

Importing this module needs Ray (the ``ray`` extra).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import ray
from ray.exceptions import RayError

from circinus.parallel.base import (
    BaseSearchExecutor,
    Chunk,
    ChunkResult,
    ClusterError,
    Progress,
    SearchJob,
    run_chunk,
)

CONNECT_TIMEOUT_S = 5.0
"""How long the head's port may take to accept a connection before the address is called
unreachable."""
_ADDRESS = re.compile(r"^(?:ray://)?(?P<host>\[[^\]]+\]|[^:/\s]+):(?P<port>\d{1,5})$")


def check_address(address: str) -> None:
    """Raise :class:`ClusterError` unless ``address`` is ``auto`` or a ``[ray://]host:port``
    whose port accepts a connection within :data:`CONNECT_TIMEOUT_S` (Ray's own connection
    attempt would wait much longer before saying so)."""
    if address == "auto":
        return
    m = _ADDRESS.match(address)
    if m is None or not 0 < int(m["port"]) < 65536:
        raise ClusterError(f"--address: expected host:port (or ray://host:port, or auto), got "
                           f"{address!r}")
    host = m["host"].strip("[]")
    try:
        with socket.create_connection((host, int(m["port"])), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterError(
            f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one (`ray start --head`), check the address, or leave --address and "
            "RAY_ADDRESS unset to start a local one") from None


_last_job: dict[str, SearchJob] = {}
"""The job a Ray worker process fetched last, by its object id (at most one is kept)."""


def _ray_chunk(job_ref: list[Any], chunk: Chunk) -> ChunkResult:
    # The reference comes in a list, so that Ray does not fetch and rebuild the job (the whole
    # batch's queries) for every task; this process fetches it once.
    key = job_ref[0].hex()
    job = _last_job.get(key)
    if job is None:
        job = ray.get(job_ref[0])
        _last_job.clear()
        _last_job[key] = job
    res = run_chunk(job, chunk)
    node = ray.get_runtime_context().get_node_id()
    return replace(res, record=replace(res.record, worker=f"node {node[:8]} "
                                                          f"{res.record.worker}"))


class RayExecutor(BaseSearchExecutor):
    """Chunks as Ray tasks (see module); registry key ``ray``.

    Args:
        address: the cluster to use; ``None``: start a local one of ``workers`` CPUs.
        workers: with an address, the chunks to deal per :data:`~circinus.parallel.base.
            CHUNKS_PER_WORKER` are counted from the cluster's CPUs unless this is given.
    """

    kind = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None,
                 chunks: int | None = None) -> None:
        super().__init__(workers=workers, chunks=chunks)
        self.address = address

    @contextmanager
    def session(self) -> Iterator[int]:
        if ray.is_initialized():  # the caller's connection: use it, leave it
            yield self.workers or _cluster_cpus()
            return
        if self.address is None:
            from circinus.runtime.cluster import LocalCluster, NodeSpec

            cpus = self.workers or os.cpu_count() or 1
            cluster = LocalCluster(nodes=[NodeSpec("planner", {})], head_cpus=cpus)
            cluster.start()
            try:
                yield cpus
            finally:
                cluster.shutdown()
            return
        check_address(self.address)
        try:
            ray.init(address=self.address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"--address {self.address}: cannot connect to a Ray cluster "
                               f"there: {_last_line(exc)}") from None
        try:
            yield self.workers or _cluster_cpus()
        finally:
            ray.shutdown()

    def run_chunks(self, job: SearchJob, chunks: Sequence[Chunk],
                   progress: Progress) -> list[ChunkResult]:
        if not chunks:
            return []
        remote: Any = ray.remote(_ray_chunk).options(num_cpus=1, max_retries=0,
                                                     scheduling_strategy="SPREAD")
        job_ref = ray.put(job)
        pending = [remote.remote([job_ref], chunk) for chunk in chunks]
        out: list[ChunkResult] = []
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                out.append(ray.get(done[0]))
                progress(f"chunk {len(out)}/{len(chunks)} searched")
        except RayError as exc:
            raise ClusterError(f"a search chunk failed on the Ray cluster: {_last_line(exc)}"
                               ) from None
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
        return out


def _cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _last_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__
