"""The compact form of a chunk's candidates: what is unpacked equals what was packed."""

from __future__ import annotations

import pickle

import pytest

from circinus.estimate import AnalyticEstimator
from circinus.gen import GenSpec, generate
from circinus.parallel.packed import pack, unpack
from circinus.plan.records import QueryPlan
from circinus.planner import SEARCHES
from circinus.search.base import Candidate, QueryCandidates
from circinus.spec import build_index, parse_world


@pytest.mark.parametrize(("key", "seed"), [("circinus", 3), ("exhaustive", 4), ("random", 5)])
def test_unpacked_candidates_equal_the_packed_ones(key: str, seed: int) -> None:
    index = build_index(parse_world(generate(GenSpec(queries=60, edge_sites=5, seed=seed))))
    found = SEARCHES[key](estimator=AnalyticEstimator(index=index),
                          settings=index.world.planner).search(index.world.queries)
    assert any(qc.candidates for qc in found) and any(len(qc.candidates) > 1 for qc in found)
    back = unpack(pickle.loads(pickle.dumps(pack(found))))
    assert back == found
    # Numbers keep their types (a plan file writes 1 and 1.0 differently).
    for a, b in zip(found, back, strict=True):
        for ca, cb in zip(a.candidates, b.candidates, strict=True):
            assert repr(ca) == repr(cb)


def test_what_queries_shared_is_packed_once_and_shared_again() -> None:
    index = build_index(parse_world(generate(GenSpec(queries=80, edge_sites=2, seed=1))))
    found = SEARCHES["circinus"](estimator=AnalyticEstimator(index=index),
                                 settings=index.world.planner).search(index.world.queries)
    packed = pack(found)
    distinct = {id(c.estimate) for qc in found for c in qc.candidates}
    assert len(packed) == len(found) and len(packed.estimates) == len(distinct)
    assert len(packed.estimates) < sum(len(qc.candidates) for qc in found)
    back = unpack(packed)
    assert len({id(c.estimate) for qc in back for c in qc.candidates}) == len(distinct)


def test_a_plan_named_after_another_query_keeps_its_name() -> None:
    index = build_index(parse_world(generate(GenSpec(queries=10, seed=2))))
    found = SEARCHES["circinus"](estimator=AnalyticEstimator(index=index),
                                 settings=index.world.planner).search(index.world.queries)
    q = next(i for i, qc in enumerate(found) if qc.candidates)
    first = found[q].candidates[0]
    odd = Candidate(QueryPlan("elsewhere", first.plan.stages), first.estimate)
    found[q] = QueryCandidates(found[q].query, (odd, *found[q].candidates[1:]),
                               found[q].reason, found[q].evaluations)
    assert unpack(pack(found)) == found
    assert pack([]).queries == () and unpack(pack([])) == []


def test_the_tables_travel_as_one_marshal_blob_else_pickled() -> None:
    from fractions import Fraction

    from circinus.parallel.packed import PackedCandidates

    index = build_index(parse_world(generate(GenSpec(queries=30, seed=6))))
    packed = pack(SEARCHES["circinus"](estimator=AnalyticEstimator(index=index),
                                       settings=index.world.planner).search(index.world.queries))
    _, (blob,) = packed.__reduce__()
    assert isinstance(blob, bytes) and pickle.loads(pickle.dumps(packed)) == packed
    odd = PackedCandidates(((Fraction(1, 3), 1, 1.0, True),), (), (("q", None, 0, ()),), ())
    back = pickle.loads(pickle.dumps(odd))  # (marshal does not write a Fraction)
    assert back == odd and repr(back) == repr(odd)
