"""Baseline planners behind the :class:`~circinus.search.base.BaseSearch` interface.

Each reproduces the search of a published planner (or a plain reference) on the same world,
estimator and plan records as Circinus, so that every comparison is one run with fixed seeds:

* :class:`BayesOptSearch` (``vulcan``): per-query Bayesian optimisation, Vulcan NSDI'24;
* :class:`BeamGreedySearch` (``jellybean``): variant beam search + greedy tier-by-tier
  placement, JellyBean MLSys'23;
* :class:`CheapestVariantSearch` (``infaas``): cheapest single-tier variant, INFaaS ATC'21;
* :class:`RandomSearch` (``random``): uniformly random plans.

Each class names the selector it is meant to run with in its ``selector`` attribute.
"""

from circinus.baselines.infaas import CheapestVariantSearch
from circinus.baselines.jellybean import BeamGreedySearch
from circinus.baselines.random_search import RandomSearch
from circinus.baselines.vulcan import BayesOptSearch

__all__ = ["BayesOptSearch", "BeamGreedySearch", "CheapestVariantSearch", "RandomSearch"]
