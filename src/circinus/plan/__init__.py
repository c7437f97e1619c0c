"""Plan records: what the planner decides for each query (immutable).

:mod:`circinus.plan.file` holds the documented plan file (``PlanFile``, ``to_plan_file``) and
:mod:`circinus.plan.units` the capacity a placement occupies; neither is imported here, and
nothing in this package imports :mod:`circinus.planner`.
"""

from circinus.plan.records import Placement, QueryPlan, Replicas, StagePlan

__all__ = ["Placement", "QueryPlan", "Replicas", "StagePlan"]
