"""Stop rules: when an estimate is precise enough to decide, profiling it stops.

NOTE: profiling only has to be as precise as the decision it feeds (Circinus, arXiv
2504.16397, §precision-aware profiling). A candidate is decided as soon as the confidence
interval of a measured quantity lies entirely on one side of its SLO bound (it surely meets or
surely misses), or lies entirely beyond the incumbent's interval (it is surely worse than a plan
already found). Rules are small, pure classes in the manner of optuna's pruners; combine them
with :class:`AnyStopRule`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from circinus.profile.stats import Interval

Verdict = Literal["meets", "misses", "dominated", "undecided"]


@dataclass(frozen=True)
class Target:
    """What a measured quantity is compared with: a bound and which side is good."""

    bound: float
    lower_is_better: bool
    """True for latency and cost, False for accuracy."""


@dataclass(frozen=True)
class Decision:
    """A stop rule's answer for one candidate."""

    stop: bool
    verdict: Verdict


UNDECIDED = Decision(False, "undecided")


class BaseStopRule(ABC):
    """Decides from an interval whether profiling a candidate may stop. Pure, no state."""

    @abstractmethod
    def decide(self, interval: Interval, target: Target,
               incumbent: Interval | None = None) -> Decision:
        """``interval`` of the candidate's quantity; ``incumbent`` that of the best candidate
        decided so far on the same quantity (``None`` if there is none)."""


class CIStopRule(BaseStopRule):
    """Stop when the interval lies entirely on one side of the bound.

    Example (latency, bound 100 ms): [80, 95] meets, [101, 130] misses, [90, 110] goes on.
    """

    def decide(self, interval: Interval, target: Target,
               incumbent: Interval | None = None) -> Decision:
        good_side = interval.high <= target.bound if target.lower_is_better else (
            interval.low >= target.bound)
        bad_side = interval.low > target.bound if target.lower_is_better else (
            interval.high < target.bound)
        if good_side:
            return Decision(True, "meets")
        if bad_side:
            return Decision(True, "misses")
        return UNDECIDED


class DominatedStopRule(BaseStopRule):
    """Stop when the candidate is surely worse than the incumbent: its whole interval lies
    beyond the incumbent's (above it for lower-is-better quantities)."""

    def decide(self, interval: Interval, target: Target,
               incumbent: Interval | None = None) -> Decision:
        if incumbent is None:
            return UNDECIDED
        worse = interval.low > incumbent.high if target.lower_is_better else (
            interval.high < incumbent.low)
        return Decision(True, "dominated") if worse else UNDECIDED


class AnyStopRule(BaseStopRule):
    """Stop as soon as one of ``rules`` stops (the first that does gives the verdict)."""

    def __init__(self, rules: Sequence[BaseStopRule]) -> None:
        self.rules = tuple(rules)

    def decide(self, interval: Interval, target: Target,
               incumbent: Interval | None = None) -> Decision:
        for rule in self.rules:
            decision = rule.decide(interval, target, incumbent)
            if decision.stop:
                return decision
        return UNDECIDED
