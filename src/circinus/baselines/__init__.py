"""Baseline planners behind the :class:`~circinus.search.base.BaseSearch` interface.

Each reproduces the search of a published planner (or a plain reference) on the same world,
estimator and plan records as Circinus, so that every comparison is one run with fixed seeds;
each module's note cites what it follows and where it departs:

* :class:`OnlineBayesOptSearch` (``vulcan``): per-query Bayesian optimisation against the
  capacity left, Vulcan NSDI'24; :class:`BayesOptSearch` (``vulcan-alone``) the same search
  per query alone, for a global selector;
* :class:`MultiTierSearch` (``jellybean``): variant beam search + multi-tier worker assignment,
  JellyBean MLSys'23; :class:`MultiTierAloneSearch` (``jellybean-alone``) per query alone;
* :class:`CheapestVariantSearch` (``infaas``): cheapest single-tier variant on shared
  autoscaled deployments, INFaaS ATC'21;
* :class:`NexusSearch` (``nexus``): latency split + batch-aware packing of sessions on shared
  cloud deployments, Nexus SOSP'19;
* :class:`RandomSearch` (``random``): uniformly random plans.

Each class names the selector it is meant to run with in its ``selector`` attribute.
"""

from circinus.baselines.infaas import CheapestVariantSearch
from circinus.baselines.jellybean import MultiTierAloneSearch, MultiTierSearch
from circinus.baselines.nexus import NexusSearch
from circinus.baselines.random_search import RandomSearch
from circinus.baselines.vulcan import BayesOptSearch, OnlineBayesOptSearch

__all__ = ["BayesOptSearch", "CheapestVariantSearch", "MultiTierAloneSearch", "MultiTierSearch",
           "NexusSearch", "OnlineBayesOptSearch", "RandomSearch"]
