"""Why a waiting query waits: its reason and nearest admissible SLO against the current load."""

from __future__ import annotations

import time
from dataclasses import replace

from circinus.online.state import Entry, OnlineState
from circinus.online.tools import PlanningTools
from circinus.planner import capacity_reason
from circinus.select.base import SelectionProblem
from circinus.whynot import Residual, WhyNot


def explain_waiting(tools: PlanningTools, state: OnlineState, entry: Entry, *,
                    nearest: bool) -> tuple[str, WhyNot]:
    """Reason and why-not of the waiting ``entry``, against the current load; ``nearest``:
    also search the nearest admissible SLO. A query kept out by a link is told so but gets no
    nearest SLO (that search prices plans alone on their links)."""
    t0 = time.monotonic()
    found, guard, book = entry.found, state.guard, state.ledger
    capacity, used = book.capacity, book.used
    # With shared deployments, what is left is the ledger's, in whole replicas.
    residual = Residual(capacity, used, book=book.book, index=tools.index) if (
        book.table) else Residual.additive(capacity, used)
    reason = found.reason or guard.reason(entry.query.name) or capacity_reason(
        SelectionProblem((found,), (entry.query.weight,), capacity), used, 0,
        residual=residual)
    link = guard.blocked().get(entry.query.name)
    explainer = tools.explainer
    if link:
        why = WhyNot("capacity", ("link", link), None)
    elif not residual.shared:
        why = explainer.explain(entry.query, found, reason, residual=residual, nearest=nearest)
    else:
        # The binding resource in whole replicas; the nearest SLO by the candidates' shares of
        # deployments (exact, each relaxation would copy the whole ledger: at 10,000 queries
        # seconds per waiting arrival).
        why = explainer.explain(entry.query, found, reason, residual=residual, nearest=False)
        if nearest:
            why = replace(why, relaxations=explainer.explain(
                entry.query, found, reason, capacity=capacity, used=used).relaxations)
    tools.seconds["why_not"] += time.monotonic() - t0
    return reason, why
