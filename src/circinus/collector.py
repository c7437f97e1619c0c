"""Keeping Python's cyclic garbage collector out of the planner's way."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused(*, freeze: bool = False) -> Iterator[None]:
    """Keep the cyclic garbage collector from running for the duration.

    The search and the selection allocate millions of small objects (plans, estimates,
    candidates) that live until the plan is made; each allocation counts towards the
    collector's next pass, and every pass walks the survivors again. At 10,000 generated
    queries the collector was half the search's time (19.2 s of CPU against 9.2 s with it
    paused), and in a selection a full collection stalls the process 0.3-0.9 s (20,000 random
    queries, 100,000 candidates), which no deadline check can interrupt. The planner makes few
    reference cycles, so what it leaves is freed by reference counting all the same.

    With ``freeze`` every object alive at the end is frozen (:func:`gc.freeze`: moved out of
    the collector's reach for good) before the collector is enabled again: the collection owed
    for the millions of objects made inside would otherwise stall the first allocation after
    it (10,000 queries: 1.5 s of passes that found 76 objects of cyclic garbage). A cycle among
    frozen objects is never collected, so this is for a run that plans once (``circinus
    plan``), not for a long-lived planner deciding arrival after arrival. Nested uses leave the
    collector as the outermost one sets it.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if freeze:
                gc.freeze()
            gc.enable()
