"""The repair kernel on its own: the documented example, and on random small instances every
repair it returns closes every deficit without overfilling anything (checked by replaying the
moves), within its move budget."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from circinus.online import Mover, Option, repair

BOX, POOL, LINK = ("device", "box"), ("device", "pool"), ("link", "shop->cloud")


def test_the_documented_example() -> None:
    capacity = {BOX: 4.0, POOL: 8.0}
    q1 = [Option(0, {BOX: 2.0}, 0.1), Option(1, {POOL: 1.0}, 0.5)]
    q2 = [Option(0, {BOX: 2.0}, 0.1)]
    used = {BOX: 4.0}
    movers = [Mover.of("q1", q1, 0), Mover.of("q2", q2, 0)]
    assert repair({BOX: 2.0}, capacity, used, movers, max_moves=4) == [("q1", 1)]
    assert repair({BOX: 1.0, POOL: 8.0}, capacity, used, movers, max_moves=4) is None
    assert repair({POOL: 2.0}, capacity, used, movers, max_moves=4) == []


def test_cheaper_move_wins_a_tie() -> None:
    capacity = {BOX: 2.0, POOL: 8.0}
    a = [Option(0, {BOX: 1.0}, 0.1), Option(1, {POOL: 1.0}, 0.9)]
    b = [Option(0, {BOX: 1.0}, 0.1), Option(1, {POOL: 1.0}, 0.4)]
    movers = [Mover.of("a", a, 0), Mover.of("b", b, 0)]
    assert repair({BOX: 1.0}, capacity, {BOX: 2.0}, movers, max_moves=1) == [("b", 1)]


_USE = st.dictionaries(st.sampled_from([BOX, POOL, LINK]),
                       st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=1)
_QUERY = st.tuples(st.lists(st.tuples(_USE, st.sampled_from([0.1, 0.5, 1.0])), min_size=1,
                            max_size=3), st.integers(0, 2))


@given(st.lists(_QUERY, max_size=6), _USE, st.integers(1, 3))
def test_a_repair_closes_every_deficit_without_overfilling(
        queries: list[tuple[list[tuple[dict[tuple[str, str], float], float]], int]],
        need: dict[tuple[str, str], float], max_moves: int) -> None:
    capacity = {BOX: 4.0, POOL: 6.0, LINK: 5.0}
    used: dict[tuple[str, str], float] = {}
    movers, chosen, options = [], {}, {}
    for i, (cands, pick) in enumerate(queries):
        opts = [Option(k, use, cost) for k, (use, cost) in enumerate(cands)]
        k = pick % len(opts)
        if any(used.get(r, 0.0) + v > capacity[r] for r, v in opts[k].usage.items()):
            continue  # admitted queries fit
        for r, v in opts[k].usage.items():
            used[r] = used.get(r, 0.0) + v
        chosen[f"q{i}"], options[f"q{i}"] = k, opts
        movers.append(Mover.of(f"q{i}", opts, k))
    moves = repair(need, capacity, used, movers, max_moves=max_moves)
    if moves is None:
        return
    assert len(moves) <= max_moves and len({n for n, _ in moves}) == len(moves)
    after = dict(used)
    for name, k in moves:
        for r, v in options[name][chosen[name]].usage.items():
            after[r] -= v
        for r, v in options[name][k].usage.items():
            after[r] = after.get(r, 0.0) + v
    for r, v in need.items():
        after[r] = after.get(r, 0.0) + v
    assert all(after.get(r, 0.0) <= cap + 1e-9 for r, cap in capacity.items())
