"""The planner as a durable, authenticated HTTP service (``circinus service``).

Usage::

    from circinus.service import DecisionStore, PlannerService, create_app
    service = PlannerService(index, DecisionStore("sqlite:///service.db"))
    app = create_app(service, token)           # FastAPI; run it with uvicorn

Needs the ``service`` extra (FastAPI, uvicorn, prometheus-client).
"""

from circinus.service.app import create_app
from circinus.service.core import PlannerService, ServiceSettings
from circinus.service.store import DecisionStore, StoreError

__all__ = ["DecisionStore", "PlannerService", "ServiceSettings", "StoreError", "create_app"]
