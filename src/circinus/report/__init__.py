"""Rendering plan results: the JSON plan file and the terminal summary."""

from circinus.report.planfile import PlanFile, to_plan_file

__all__ = ["PlanFile", "to_plan_file"]
