"""Online planning: queries arrive and leave, capacities change, admitted plans are kept.

Usage::

    from circinus.online import OnlinePlanner
    online = OnlinePlanner(world)              # plans the world's queries as the batch planner
    arrival = online.arrive(query)             # search the newcomer alone, admit it if it fits
    online.deployments()                       # shared deployments -> replicas, as sized now
    online.depart("cam-7")                     # its capacity goes to waiting queries
    online.set_capacity(device="edge-box", units=4)
    online.rebalance()                         # full re-selection, admitted queries kept
    result = online.result()                   # a PlanResult, as Planner.plan gives
    snap = online.snapshot()                   # the state as records; rebuilt without search:
    again = OnlinePlanner.restore(snap.topology, snap.records())
"""

from circinus.online.guard import SloGuard
from circinus.online.ledger import Ledger
from circinus.online.planner import OnlinePlanner
from circinus.online.records import Arrival, CapacityChange, Departure, Rebalance
from circinus.online.repair import Move, Mover, Option, repair
from circinus.online.snapshot import Changes, QueryRecord, Snapshot, changed

__all__ = [
    "Arrival",
    "CapacityChange",
    "Changes",
    "Departure",
    "Ledger",
    "Move",
    "Mover",
    "OnlinePlanner",
    "Option",
    "QueryRecord",
    "Rebalance",
    "SloGuard",
    "Snapshot",
    "changed",
    "repair",
]
