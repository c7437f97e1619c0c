"""The oracle's plan space, its size limit, and Circinus's search against it on seeded worlds."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import circinus
from circinus.cli.main import app
from circinus.errors import TooLargeError
from circinus.estimate import AnalyticEstimator
from circinus.search.oracle import OracleSearch, _Space
from circinus.spec import build_index, parse_world
from tinyworld import make_tiny_world, random_tiny_world

ROOT = Path(__file__).resolve().parents[2]


def _space(data: dict[str, object], q: int = 0) -> _Space:
    world = parse_world(data)
    index = build_index(world)
    return _Space(AnalyticEstimator(index=index), world.planner, world.queries[q])


@pytest.mark.parametrize("sharing", ["dedicated", "shared", "mixed"])
@pytest.mark.parametrize("spread", [1, 2])
def test_counted_size_is_what_is_enumerated(sharing: str, spread: int) -> None:
    data = make_tiny_world()
    data["planner"].update(sharing=sharing, max_devices_per_operator=spread)
    space = _space(data)
    plans = list(space.plans())
    assert len(set(plans)) == len(plans)
    # Shared options whose load exceeds their level, and splits that leave a device idle, are
    # left out of the enumeration only.
    assert len(plans) <= space.size
    if sharing == "dedicated" and spread == 1:
        assert len(plans) == space.size


def test_space_splits_placements_over_two_sites() -> None:
    data = make_tiny_world()
    data["planner"].update(sharing="dedicated", max_devices_per_operator=2)
    data["queries"][0]["rate_rps"] = 30.0  # more than the box alone serves
    stated = [st.placement for plan in _space(data).plans() for st in plan
              if st.placement[0].share is not None]
    assert stated
    for placement in stated:
        assert {r.device for r in placement} == {"shop-box", "t4-pool"}
        assert sum(r.share or 0.0 for r in placement) == pytest.approx(1.0)


def test_space_holds_non_minimal_sets_and_every_replica_count() -> None:
    data = make_tiny_world()
    data["planner"].update(sharing="dedicated", max_devices_per_operator=2)
    placements = {(st.stage, st.placement) for plan in _space(data).plans() for st in plan}
    dets = {p for s, p in placements if s == "det"}
    # 5 req/s fit one replica on the box; the box with the pool is not minimal but offered,
    # and so is every count the box holds (4 units of 1-unit replicas).
    assert any({r.device for r in p} == {"shop-box", "t4-pool"} for p in dets)
    assert {r.count for p in dets for r in p if r.device == "shop-box" and len(p) == 1} == {
        1, 2, 3, 4}


def test_refuses_a_world_past_its_limit() -> None:
    world = circinus.load_world(ROOT / "examples" / "jellybean-vqa.yaml")
    index = build_index(world)
    search = OracleSearch(estimator=AnalyticEstimator(index=index), settings=world.planner)
    with pytest.raises(TooLargeError, match=r"oracle: query 'vqa' has [\d,]+ plans, more than "
                                            r"the oracle's limit of 100,000"):
        search.search(world.queries)


def test_cli_refuses_it_in_one_line() -> None:
    result = CliRunner().invoke(app, ["plan", str(ROOT / "examples" / "jellybean-vqa.yaml"),
                                      "--search", "oracle", "--selector", "exact"])
    assert result.exit_code == TooLargeError.exit_code
    assert "oracle: query 'vqa' has" in result.output
    assert "Traceback" not in result.output


def _both(data: dict[str, object], candidates: int | None = None
          ) -> tuple[circinus.PlanResult, circinus.PlanResult]:
    world = parse_world(data)
    # The bench's budget: the exact selection over every plan must not stop at a loaded
    # machine's wall clock (its CPU time is about a second).
    oracle = circinus.Planner(search="oracle", selector="exact", settings=world.planner.model_copy(
        update={"time_limit_s": 600.0})).plan(world)
    settings = world.planner if candidates is None else world.planner.model_copy(
        update={"candidates_per_query": candidates})
    ours = circinus.Planner(search="circinus", settings=settings).plan(world)
    return oracle, ours


FAST = [(0, False, 1), (1, False, 2), (2, True, 1)]
WIDE = [(seed, dag, spread) for seed in range(3, 12) for dag in (False, True)
        for spread in ((1, 2) if not dag else (1,))]


def _equal(seed: int, dag: bool, spread: int) -> None:
    data = random_tiny_world(seed, dag=dag, queries=3 if dag else 4, spread=spread)
    oracle, ours = _both(data)
    assert oracle.selection.status == "optimal"
    assert ours.goodput == oracle.goodput
    if ours.cost_per_hour != pytest.approx(oracle.cost_per_hour, rel=1e-9):
        # Eight candidates per query can miss the one another query's choice makes best
        # (seed 11, a DAG: 0.04 % dearer); the search's plans hold it, as sixteen show.
        assert ours.cost_per_hour <= oracle.cost_per_hour * 1.001
        _, wider = _both(data, candidates=16)
        assert wider.goodput == oracle.goodput
        assert wider.cost_per_hour == pytest.approx(oracle.cost_per_hour, rel=1e-9)


@pytest.mark.parametrize(("seed", "dag", "spread"), FAST)
def test_circinus_equals_the_oracle_with_dedicated_replicas(seed: int, dag: bool,
                                                            spread: int) -> None:
    _equal(seed, dag, spread)


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "dag", "spread"), WIDE)
def test_circinus_equals_the_oracle_on_more_worlds(seed: int, dag: bool, spread: int) -> None:
    # Two-source DAGs with links priced both ways included (every random tiny world has them).
    _equal(seed, dag, spread)


def test_circinus_equals_the_oracle_on_the_tiny_world_with_shared_deployments() -> None:
    # Shared deployments (the default). The optimum puts both cameras' stages on the shop's
    # box, detection on one deployment of two replicas sized for 80 % utilisation: two
    # replicas at 80 % wait less than one (Erlang's economy of scale), which cam-2's p99 needs,
    # and cam-1 joins them for nothing. Offered only the fewest replicas of each level, the
    # search sent the classifiers to a GPU ($0.389/h against $0.040/h).
    oracle, ours = _both(make_tiny_world())
    assert oracle.selection.status == "optimal"
    assert ours.admitted == oracle.admitted == 2
    assert ours.cost_per_hour == pytest.approx(oracle.cost_per_hour, rel=1e-9)
    assert ours.cost_per_hour == pytest.approx(0.04)
    assert {r.device for o in ours.outcomes if o.plan is not None
            for st in o.plan.stages for r in st.placement} == {"shop-box"}


def _equal_shared(seed: int, candidates: int | None = None) -> None:
    oracle, ours = _both(random_tiny_world(seed, queries=4, sharing="shared"), candidates)
    assert oracle.selection.status == "optimal"
    assert ours.goodput == oracle.goodput
    assert ours.cost_per_hour == pytest.approx(oracle.cost_per_hour, rel=1e-9)


def test_circinus_equals_the_oracle_with_shared_deployments() -> None:
    _equal_shared(2)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 4])
def test_circinus_equals_the_oracle_on_more_worlds_with_shared_deployments(seed: int) -> None:
    _equal_shared(seed)


def test_circinus_equals_the_oracle_where_queries_join_what_others_open() -> None:
    # The cheapest plans of a loosely bound query run light configurations; the optimum has
    # three queries join the heavier classifier deployment a fourth opens. The selection over
    # eight candidates each ended 16.2 % above the oracle; the join pass after it
    # (circinus.select.join) moves the three.
    _equal_shared(7)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 5, 11])
def test_circinus_equals_the_oracle_on_more_worlds_where_queries_join(seed: int) -> None:
    # Without the join pass 11.0 % (seed 3), 12.9 % (5) and 33.8 % (11) above the oracle.
    # (Seed 10 stays 75 % above: its optimum has a low-rate query's floor at three replicas at
    # 80 %, more than the deployment has before the others join it; circinus.select.join.EXTRA.)
    _equal_shared(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 5])
def test_the_search_holds_the_optimum_where_eight_candidates_miss_it(seed: int) -> None:
    # Sixteen candidates per query hold the optimum the join pass reaches from eight.
    _equal_shared(seed, candidates=16)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_oracle_bounds_circinus_with_shared_deployments(seed: int) -> None:
    oracle, ours = _both(random_tiny_world(seed, queries=4, sharing="shared"))
    assert oracle.selection.status == "optimal"
    assert oracle.goodput >= ours.goodput
    if oracle.goodput == ours.goodput:
        assert oracle.cost_per_hour <= ours.cost_per_hour * (1 + 1e-9)
