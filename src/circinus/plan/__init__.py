"""Plan records: what the planner decides for each query (immutable)."""

from circinus.plan.records import Placement, QueryPlan, Replicas, StagePlan

__all__ = ["Placement", "QueryPlan", "Replicas", "StagePlan"]
