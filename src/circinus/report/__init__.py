"""Rendering plan results: the terminal summary, the simulation summary and the figures.

The plan file itself (``PlanFile``, ``to_plan_file``) is in :mod:`circinus.plan.file`.
"""
