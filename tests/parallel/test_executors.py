"""The executor interface: every executor gives each query exactly the serial candidates."""

from __future__ import annotations

import importlib.util
import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from circinus.cli.main import app
from circinus.errors import SpecError
from circinus.estimate import AnalyticEstimator
from circinus.gen import GenSpec, generate
from circinus.parallel import (
    AutoExecutor,
    ProcessExecutor,
    SerialExecutor,
    chunk_groups,
    make_executor,
    projected_makespan,
)
from circinus.parallel.base import SearchJob, run_chunk
from circinus.parallel.packed import unpack
from circinus.planner import SEARCHES, Planner
from circinus.runtime import MissingExtraError
from circinus.search.base import BaseSearch, QueryCandidates
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex

runner = CliRunner()


@pytest.fixture(scope="module")
def index() -> WorldIndex:
    """A generated world with many groups: 6 sites (some isomorphic), every query class."""
    return build_index(parse_world(generate(GenSpec(queries=90, edge_sites=6, seed=3))))


def _search(index: WorldIndex, key: str = "circinus") -> BaseSearch:
    return SEARCHES[key](estimator=AnalyticEstimator(index=index),
                         settings=index.world.planner)


@pytest.mark.parametrize("key", ["circinus", "exhaustive"])
def test_groups_partition_the_queries_in_order(index: WorldIndex, key: str) -> None:
    search = _search(index, key)
    groups = search.groups(index.world.queries)
    assert search.splittable and len(groups) > 5
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(index.world.queries)))
    assert all(g == sorted(g) for g in groups)
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)


def test_a_search_in_arrival_order_is_one_group(index: WorldIndex) -> None:
    search = _search(index, "random")
    assert not search.splittable
    assert search.groups(index.world.queries) == [list(range(len(index.world.queries)))]
    assert search.groups([]) == []


@pytest.fixture(scope="module")
def whole(index: WorldIndex) -> dict[str, tuple[QueryCandidates, ...]]:
    """Each search's candidates for all the queries at once (searched once per module)."""
    return {key: tuple(_search(index, key).search(index.world.queries))
            for key in ("circinus", "exhaustive")}


@pytest.mark.parametrize(("key", "chunks"), [
    *(("circinus", k) for k in (1, 2, 7, 1000)), ("exhaustive", 1000)])
def test_any_union_of_groups_is_searched_as_in_the_whole(
        index: WorldIndex, whole: dict[str, tuple[QueryCandidates, ...]], key: str,
        chunks: int) -> None:
    queries = index.world.queries
    run = SerialExecutor(chunks=chunks).search(_search(index, key), queries)
    assert run.found == whole[key]
    assert len(run.chunks) == min(chunks, len(_search(index, key).groups(queries)))
    assert sum(c.queries for c in run.chunks) == len(queries)
    assert sum(qc.evaluations for qc in run.found) == sum(
        qc.evaluations for qc in whole[key])


def test_worker_processes_give_the_serial_candidates(index: WorldIndex) -> None:
    queries = index.world.queries
    serial = SerialExecutor().search(_search(index), queries)
    run = ProcessExecutor(workers=2, chunks=5).search(_search(index), queries)
    assert run.found == serial.found
    assert [c.number for c in run.chunks] == list(range(5))
    assert run.executor == "processes" and run.workers == 2 and not run.shared_search
    assert all(c.seconds > 0 and c.kernel_evaluations > 0 for c in run.chunks)
    # Chunks do not share the memo: they compute at least what one search does.
    assert run.kernel_evaluations >= serial.kernel_evaluations


def _dedicated(index: WorldIndex) -> WorldIndex:
    """``index``'s world with dedicated replicas: a selection HiGHS proves in about a second
    (shared deployments' whole replicas run the MILP to its time budget on such a world, and a
    selection cut by the clock need not repeat)."""
    world = index.world
    return build_index(world.model_copy(update={
        "planner": world.planner.model_copy(update={"sharing": "dedicated"})}))


def test_the_plan_is_the_same_on_worker_processes(index: WorldIndex) -> None:
    index = _dedicated(index)
    serial = Planner().plan(index)
    chunked = Planner(executor=ProcessExecutor(workers=2, chunks=3)).plan(index)
    assert chunked.decisions() == serial.decisions()
    assert chunked.goodput == serial.goodput
    assert chunked.cost_per_hour == serial.cost_per_hour
    assert len(chunked.search_chunks) == 3 and len(serial.search_chunks) == 1
    assert chunked.kernel_evaluations >= serial.kernel_evaluations


def test_auto_searches_on_processes_only_where_they_help(
        index: WorldIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    queries = index.world.queries
    assert len(queries) < 200
    assert isinstance(AutoExecutor(cores=2).choose(_search(index), queries), SerialExecutor)
    monkeypatch.setattr("circinus.parallel.local.AUTO_PROCESSES_FROM", len(queries))
    chosen = AutoExecutor(cores=2).choose(_search(index), queries)
    assert isinstance(chosen, ProcessExecutor) and chosen.workers == 2
    assert isinstance(AutoExecutor(cores=1).choose(_search(index), queries), SerialExecutor)
    assert isinstance(AutoExecutor(cores=2).choose(_search(index, "vulcan"), queries),
                      SerialExecutor)  # decides its queries one after another
    run = AutoExecutor(cores=2).search(_search(index), queries)
    assert run.executor == "processes" and len(run.chunks) == 8
    assert run.found == SerialExecutor().search(_search(index), queries).found


def test_a_search_that_cannot_split_runs_as_one_chunk(index: WorldIndex) -> None:
    queries = index.world.queries[:20]
    whole = _search(index, "random").search(queries)
    run = SerialExecutor(chunks=4).search(_search(index, "random"), queries)
    assert run.found == tuple(whole) and len(run.chunks) == 1


def test_no_queries_no_chunks(index: WorldIndex) -> None:
    run = ProcessExecutor(workers=2).search(_search(index), [])
    assert run.found == () and run.chunks == ()


def test_the_job_ships_the_world_once_and_the_batch_beside_it(index: WorldIndex) -> None:
    batch = index.world.queries[5:9]
    job = SearchJob.of(_search(index), batch)
    assert job.index.world.queries == [] and job.index.devices == index.devices
    assert job.queries == tuple(batch)
    assert type(job.build()) is SEARCHES["circinus"]
    # A chunk is its queries' positions in the batch; the result comes back packed.
    chunk = chunk_groups(_search(index).groups(batch), 1)[0]
    res = run_chunk(job, chunk)
    assert unpack(res.found) == _search(index).search(batch)


def test_chunks_are_balanced_whole_groups_heaviest_first() -> None:
    groups = [[0, *range(4, 103)], [1], [2, 3], [103, 104, 105, 106, 107, 108, 109, 110, 111]]
    chunks = chunk_groups(groups, 2)
    assert [sorted(c.indices) == list(c.indices) for c in chunks] == [True, True]
    assert sorted(i for c in chunks for i in c.indices) == list(range(112))
    assert chunks[0].weight >= chunks[1].weight
    assert {len(c.indices) for c in chunks} == {100, 12}
    # the documented example
    sizes = [list(range(k, k + n)) for k, n in ((0, 100), (100, 10), (110, 10), (120, 10))]
    a, b = chunk_groups(sizes, 2)
    assert (a.groups, a.weight, b.groups, b.weight) == (3, 150, 1, 140)
    assert len(chunk_groups(sizes, 50)) == 4


@pytest.mark.parametrize("seed", range(5))
def test_chunking_keeps_every_query_once(seed: int) -> None:
    import random

    rng = random.Random(seed)
    ids = iter(range(10_000))
    groups = [[next(ids) for _ in range(rng.randint(1, 30))] for _ in range(rng.randint(1, 60))]
    n = sum(map(len, groups))
    for k in (1, 3, 16):
        chunks = chunk_groups(groups, k)
        assert len(chunks) <= k and sum(c.groups for c in chunks) == len(groups)
        assert sorted(itertools.chain.from_iterable(c.indices for c in chunks)) == list(range(n))


def test_projected_makespan() -> None:
    assert projected_makespan([4, 3, 2, 1], 2) == 5  # the documented example
    assert projected_makespan([4, 3, 2, 1], 1, overhead_s=0.5) == 10.5
    assert projected_makespan([4, 3, 2, 1], 64) == 4  # the largest chunk bounds it
    assert projected_makespan([], 4, overhead_s=1.0) == 1.0
    times = [0.3, 1.2, 0.7, 0.7, 2.0, 0.1, 0.9]
    spans = [projected_makespan(times, w) for w in range(1, 9)]
    assert spans == sorted(spans, reverse=True) and spans[0] == pytest.approx(sum(times))


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("threads", {}, "--executor: unknown executor 'threads'"),
    ("processes", {"workers": 0}, "--workers: must be in 1..4096, got 0"),
    ("processes", {"chunks": 0}, "--chunks: must be in 1..100000, got 0"),
    ("processes", {"address": "127.0.0.1:6379"}, "--address: only for --executor ray"),
    ("serial", {"workers": 2}, "--workers: serial runs one chunk at a time"),
    ("auto", {"workers": 2}, "--workers and --chunks: for --executor processes or ray"),
])
def test_bad_executor_options_are_one_line(kind: str, options: dict[str, object],
                                           message: str) -> None:
    with pytest.raises(SpecError) as info:
        make_executor(kind, **options)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_ray_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install 'circinus\[ray\]'"):
        make_executor("ray")


@pytest.fixture(scope="module")
def world_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("w") / "w.yaml"
    result = runner.invoke(app, ["gen", "-n", "40", "--edge-sites", "4", "--seed", "2",
                                 "--out", str(path)])
    assert result.exit_code == 0, result.output
    # Dedicated replicas: the selection is proven in about a second instead of running its
    # 30 s budget per plan (what these tests check is the search and the command line).
    data = yaml.safe_load(path.read_text())
    data["planner"]["sharing"] = "dedicated"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _searched(path: Path) -> object:
    """What the search decided, per the plan file: each query's candidates, and the plans
    estimated (the selection after it has a time budget, which a loaded machine may cut)."""
    data = json.loads(path.read_text())
    return data["evaluations"], [(q["name"], q["candidates"]) for q in data["queries"]]


def test_cli_plans_the_same_on_worker_processes(world_file: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    result = runner.invoke(app, ["plan", str(world_file), "-q", "--json", str(a)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["plan", str(world_file), "--executor", "processes",
                                 "--workers", "2", "--chunks", "3", "--show", "0", "--json",
                                 str(b)])
    assert result.exit_code == 0, result.output
    assert "search (processes): 3 chunk(s) on" in result.stdout
    assert _searched(a) == _searched(b)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--executor", "threads"], 2, "error: --executor: unknown executor 'threads'"),
    (["--executor", "processes", "--search", "vulcan"], 2,
     "error: --executor processes: search 'vulcan' decides its queries one after another"),
    (["--address", "127.0.0.1:1"], 2, "error: --address: only for --executor ray"),
    (["--executor", "processes", "--workers", "0"], 2, "error: --workers: must be in"),
])
def test_cli_rejects_bad_executor_options(world_file: Path, args: list[str], code: int,
                                          message: str) -> None:
    result = runner.invoke(app, ["plan", str(world_file), *args])
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra")
@pytest.mark.parametrize(("address", "message"), [
    ("127.0.0.1:1", "error: --address 127.0.0.1:1: no Ray cluster answers there"),
    ("not an address", "error: --address: expected host:port"),
])
def test_cli_names_an_unreachable_cluster(world_file: Path, monkeypatch: pytest.MonkeyPatch,
                                          address: str, message: str) -> None:
    monkeypatch.setenv("RAY_ADDRESS", address)  # what --address defaults to
    result = runner.invoke(app, ["plan", str(world_file), "--executor", "ray"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_ray_address_is_read_for_the_ray_executor_alone(
        world_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    result = runner.invoke(app, ["plan", str(world_file), "-q"])
    assert result.exit_code == 0, result.output


def test_without_keeping_a_run_sends_counts_and_digests_that_tell_runs_apart(
        index: WorldIndex, whole: dict[str, tuple[QueryCandidates, ...]]) -> None:
    queries = index.world.queries
    kept = SerialExecutor(chunks=5).search(_search(index), queries)
    serial = SerialExecutor(chunks=5).search(_search(index), queries, keep=False)
    pooled = ProcessExecutor(workers=2, chunks=5).search(_search(index), queries, keep=False)
    assert serial.found == pooled.found == ()
    assert serial.candidates == pooled.candidates == kept.candidates == sum(
        len(qc.candidates) for qc in whole["circinus"])
    assert len(serial.digests) == len(serial.chunks) == 5
    assert pooled.digests == serial.digests and len(set(serial.digests)) == 5
    # the digest is of the values: one estimate a hair off changes it
    from circinus.parallel.packed import digest, pack

    found = list(whole["circinus"])
    first = next(i for i, qc in enumerate(found) if qc.candidates)
    qc = found[first]
    cand = qc.candidates[0]
    est = replace(cand.estimate, latency_ms=cand.estimate.latency_ms + 1e-9)
    found[first] = replace(qc, candidates=(replace(cand, estimate=est),
                                           *qc.candidates[1:]))
    assert digest(pack(found)) != digest(pack(list(whole["circinus"])))
    # equal values in distinct objects digest alike (another process shares them otherwise)
    copied = [replace(q, candidates=tuple(replace(c, estimate=replace(c.estimate))
                                          for c in q.candidates))
              for q in whole["circinus"]]
    assert digest(pack(copied)) == digest(pack(list(whole["circinus"])))


def _dying(monkeypatch: pytest.MonkeyPatch, marker: Path | None) -> None:
    """Worker processes (forked: they inherit this patch) die on a chunk instead of answering:
    on chunk 1 once (the first to create ``marker``), or on every chunk (``marker`` None)."""
    import os

    from circinus.parallel import local

    parent, real = os.getpid(), local.run_chunk

    def run_chunk(job, chunk):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            if marker is None:
                os._exit(3)
            if chunk.number == 1:
                try:
                    marker.touch(exist_ok=False)
                except FileExistsError:
                    pass
                else:
                    os._exit(3)
        return real(job, chunk)

    monkeypatch.setattr(local, "run_chunk", run_chunk)


@pytest.mark.parametrize("every", [False, True], ids=["once", "every-chunk"])
def test_a_chunk_whose_worker_dies_is_searched_again(
        index: WorldIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, every: bool) -> None:
    """A worker that ends without answering (killed, crashed) loses no chunk: another worker
    takes it, or this process when none is left, and the candidates are the serial ones."""
    import os

    _dying(monkeypatch, None if every else tmp_path / "died")
    said: list[str] = []
    run = ProcessExecutor(workers=2, chunks=5).search(_search(index), index.world.queries,
                                                      progress=said.append)
    assert run.found == SerialExecutor().search(_search(index), index.world.queries).found
    assert sorted(c.number for c in run.chunks) == list(range(5))
    assert said == [f"chunk {n}/5 searched" for n in range(1, 6)]
    lost = [r.getMessage() for r in caplog.records if "ended (exit code 3)" in r.getMessage()]
    assert len(lost) == (2 if every else 1) and "it runs again" in lost[0]
    here = {c.worker.endswith(f"pid {os.getpid()}") for c in run.chunks}
    assert here == ({True} if every else {False})  # this process, or the surviving worker


def test_an_error_in_a_chunk_is_raised_and_the_workers_stop(
        index: WorldIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    from circinus.parallel import local

    def run_chunk(job, chunk):  # type: ignore[no-untyped-def]
        raise ValueError(f"chunk {chunk.number} is bad")

    monkeypatch.setattr(local, "run_chunk", run_chunk)
    with pytest.raises(ValueError, match="is bad"):
        ProcessExecutor(workers=2, chunks=4).search(_search(index), index.world.queries)
    assert not [p for p in multiprocessing.active_children()
                if p.name.startswith("circinus-search")]


def test_results_come_as_they_are_found_and_closing_early_stops_the_workers(
        index: WorldIndex) -> None:
    """The worker processes' results are yielded one by one (the caller unpacks each while
    the others run); a caller that stops taking them (an error of its own) stops the
    workers."""
    import multiprocessing

    from circinus.parallel.base import chunk_groups, search_groups

    search = _search(index)
    queries = index.world.queries
    chunks = chunk_groups(search_groups(search, queries), 6)
    results = ProcessExecutor(workers=2).run_chunks(SearchJob.of(search, queries), chunks,
                                                    lambda _: None)
    first = next(iter(results))
    assert first.record.number in range(len(chunks)) and first.found is not None
    assert [p for p in multiprocessing.active_children() if p.name.startswith("circinus-search")]
    results.close()  # type: ignore[attr-defined]
    assert not [p for p in multiprocessing.active_children()
                if p.name.startswith("circinus-search")]


def _square(x: int) -> int:
    return x * x


def test_pool_imap_gives_every_item_s_result_once() -> None:
    from circinus.parallel.local import pool_imap

    assert sorted(pool_imap(_square, list(range(7)), 3)) == [x * x for x in range(7)]
    assert sorted(pool_imap(_square, [5], 4)) == [25]
    assert list(pool_imap(_square, [], 2)) == []


def _forks() -> bool:
    import multiprocessing

    from circinus.forks import cores as _cores
    return "fork" in multiprocessing.get_all_start_methods() and _cores() >= 2


def test_beside_works_on_a_forked_copy_meanwhile() -> None:
    import os

    from circinus.forks import beside

    here = os.getpid()
    with beside(lambda: (os.getpid(), sum(range(1000)))) as answer:
        mine = sum(range(10))
        pid, total = answer()
    assert (mine, total) == (45, 499500)
    assert (pid != here) == _forks()


def test_beside_works_it_out_here_when_the_copy_dies(caplog: pytest.LogCaptureFixture) -> None:
    import os

    from circinus.forks import beside

    here = os.getpid()

    def work() -> int:
        if os.getpid() != here:
            os._exit(3)  # the copy dies without answering
        return 42

    with beside(work, name="circinus-test") as answer:
        assert answer() == 42
    if _forks():
        assert "circinus-test" in caplog.text and "runs here" in caplog.text


def test_beside_stops_a_copy_its_block_no_longer_waits_for() -> None:
    import multiprocessing
    import time

    from circinus.forks import beside

    if not _forks():
        pytest.skip("no fork here")

    def copies() -> list[object]:
        return [p for p in multiprocessing.active_children() if p.name == "circinus-slow"]

    with beside(lambda: time.sleep(60), name="circinus-slow"):
        assert len(copies()) == 1
    assert not copies()


def test_beside_without_fork_works_it_out_here_before_the_block() -> None:
    from circinus.forks import beside

    order: list[str] = []

    def work() -> int:
        order.append("work")
        return 7

    with beside(work, fork=False) as answer:
        order.append("block")
        assert answer() == 7
    assert order == ["work", "block"]
