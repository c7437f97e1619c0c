"""Random-search baseline: uniformly random complete plans per query, the admissible kept.

NOTE: the floor every smarter search must beat (Bergstra and Bengio, "Random Search for
Hyper-Parameter Optimization", JMLR 2012, is the classic case for taking it seriously). Per
query, :attr:`RandomSearch.samples` complete plans are drawn with ``random.Random(settings.seed
+ the query's position)``: each stage independently picks one of its (configuration, placement
option) pairs of :func:`~circinus.baselines.space.plan_space` uniformly, which makes the
complete plan uniform over the plan space. Each draw is estimated once; the admissible plans,
cheapest first, are the candidates. It keeps several candidates per query, so it pairs with the
``milp`` selector: the comparison then isolates the search.
"""

from __future__ import annotations

import random
from typing import ClassVar

from circinus.baselines.space import PerQuerySearch, Pick, plan_spaces
from circinus.search.base import QueryCandidates
from circinus.search.placements import eligible_devices
from circinus.search.shortlist import Evaluated, shortlist
from circinus.spec.models import Query


class RandomSearch(PerQuerySearch):
    """Uniformly random plans per query (see module note)."""

    samples: ClassVar[int] = 60
    """Plans drawn (and estimated) per query."""

    def _search_one(self, position: int, query: Query) -> QueryCandidates:
        index = self.estimator.index
        spaces = [s for s in plan_spaces(index, self.settings, query,
                                         eligible_devices(index, query, self.settings.tiers))
                  if not s.empty]
        _, best_accuracy = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        pairs: list[list[list[Pick]]] = [[[(c, o) for c, opts in choices for o in opts]
                                          for choices in space.choices] for space in spaces]
        sizes = [space.size() for space in spaces]
        rng = random.Random(self.settings.seed + position)
        drawn: list[Evaluated] = []
        for _ in range(self.samples if spaces else 0):
            # A space in proportion to its plans (one without a fan-out): uniform over all.
            k = rng.choices(range(len(spaces)), weights=sizes)[0] if len(spaces) > 1 else 0
            plan = spaces[k].plan(query, [rng.choice(p) for p in pairs[k]])
            drawn.append((plan, self.estimator.estimate(query, plan)))
        return shortlist(query, drawn, index=index, settings=self.settings,
                         best_accuracy=best_accuracy, evaluations=len(drawn),
                         scope=f"among the {len(drawn)} plans drawn")
