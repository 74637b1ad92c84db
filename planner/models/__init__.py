"""The planner's store: targets, plans and phases, backfill runs, application versions, the audit log.

Each model with a lifecycle declares its states and allowed transitions once, in its module;
services (planner/services/) are the only code that moves them, through `transition_to()`.
"""

from planner.models.audit import AuditEvent
from planner.models.compat import ApplicationVersion, AppQuery, CompatibilityReport
from planner.models.plans import Phase, Plan, TargetDatabase
from planner.models.runs import BackfillBatch, BackfillHold, BackfillRun, BackfillSlice
from planner.models.state import InvalidTransition, StateMachineMixin

__all__ = [
    "AppQuery",
    "ApplicationVersion",
    "AuditEvent",
    "CompatibilityReport",
    "BackfillBatch",
    "BackfillHold",
    "BackfillRun",
    "BackfillSlice",
    "InvalidTransition",
    "Phase",
    "Plan",
    "StateMachineMixin",
    "TargetDatabase",
]
