"""The backfill engine: batched, exactly-once, throttled, resumable UPDATEs on a target database.

No Django here (see DESIGN.md's layers): the Celery tasks and the CLI both drive BackfillRunner.
"""

from planner.pg.backfill.bookkeeping import SCHEMA, drop_schema, forget_run
from planner.pg.backfill.errors import BackfillError, LeaseLost, RunNotFound, SpecError
from planner.pg.backfill.progress import BatchProgress, StepOutcome, eta_seconds
from planner.pg.backfill.runner import BackfillRunner, RunInfo, RunStatus
from planner.pg.backfill.spec import BackfillSpec, BatchLimits, RetryPolicy, ThrottleLimits
from planner.pg.backfill.throttle import Hold

__all__ = [
    "SCHEMA",
    "BackfillError",
    "BackfillRunner",
    "BackfillSpec",
    "BatchLimits",
    "BatchProgress",
    "Hold",
    "LeaseLost",
    "RetryPolicy",
    "RunInfo",
    "RunNotFound",
    "RunStatus",
    "SpecError",
    "StepOutcome",
    "ThrottleLimits",
    "drop_schema",
    "eta_seconds",
    "forget_run",
]
