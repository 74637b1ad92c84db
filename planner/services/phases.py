"""Running a phase's SQL on its target with the safe DDL executor, and undoing it.

A person asks (`request_run`, `request_rollback`); a worker executes (`execute`) with short lock
timeouts and retries, so a phase waiting behind a long transaction never blocks the application.
Backfill phases run as backfill runs (planner/services/runs.py) and report back here.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from planner.models import InvalidTransition, Phase, Plan
from planner.pg.connect import scrub
from planner.pg.ddl import DdlError, DdlEvent, execute_sql
from planner.services import audit, gates
from planner.services.permissions import require

P = Phase.Status


def gate_failures(phase: Phase, actor=None) -> list[str]:
    """Why this phase may not start yet; empty when every gate is open.

    The gates themselves (earlier phases, window, validations run live on the target, approval,
    application deployed) are defined once, in planner/services/gates.py.
    """
    return gates.failures(phase, actor=actor, live=True)


def _plan_moves_to(plan: Plan, new_status: str, actor, **details) -> None:
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    if locked.status != new_status and locked.can_transition_to(new_status):
        old = locked.transition_to(new_status)
        locked.save(update_fields=["status", "updated_at"])
        audit.record(actor, f"plan.{new_status}", locked, previous=old, **details)


@transaction.atomic
def mark_running(actor, phase: Phase) -> Phase:
    """Gate checks and the state change shared by SQL phases and backfill phases."""
    locked = Phase.objects.select_for_update().select_related("plan").get(pk=phase.pk)
    reasons = gate_failures(locked, actor)
    if reasons:
        raise InvalidTransition("cannot start yet: " + "; ".join(reasons))
    locked.transition_to(P.RUNNING)
    locked.started_at, locked.finished_at, locked.last_error = timezone.now(), None, ""
    fields = ["status", "started_at", "finished_at", "last_error", "updated_at"]
    if actor is not None and not gates.approval_is_valid(locked):
        # the approval gate was open because the release manager starting it may approve it
        locked.approved_by, locked.approved_at = actor, locked.started_at
        fields += ["approved_by", "approved_at"]
    locked.save(update_fields=fields)
    _plan_moves_to(locked.plan, Plan.Status.RUNNING, actor)
    audit.record(actor, "phase.started", locked)
    return locked


def request_run(actor, phase: Phase) -> Phase:
    """Start an expand/contract/custom phase: a worker runs its up SQL."""
    require(actor, "start_plan")
    if phase.kind == Phase.Kind.BACKFILL:
        raise InvalidTransition("backfill phases run as backfill runs: start one from the plan page")
    if not phase.up_sql.strip():
        raise InvalidTransition("this phase has no up SQL to run")
    phase = mark_running(actor, phase)
    from planner.tasks import execute_phase

    transaction.on_commit(lambda: execute_phase.delay(phase.pk, "up"))
    return phase


@transaction.atomic
def request_rollback(actor, phase: Phase) -> Phase:
    """Undo a succeeded or failed phase with its down SQL (the latest phase first)."""
    require(actor, "rollback_run")
    locked = Phase.objects.select_for_update().select_related("plan").get(pk=phase.pk)
    if locked.kind == Phase.Kind.BACKFILL:
        raise InvalidTransition("roll back a backfill from its run page")
    if not locked.down_sql.strip():
        raise InvalidTransition("this phase has no down SQL")
    later = locked.plan.phases.filter(position__gt=locked.position, status__in=[P.RUNNING, P.SUCCEEDED, P.FAILED])
    if later.exists():
        raise InvalidTransition("roll back the later phases first (down SQL runs in reverse order)")
    if locked.status not in (P.SUCCEEDED, P.FAILED):
        raise InvalidTransition(f"only a succeeded or failed phase can be rolled back (it is {locked.status})")
    audit.record(actor, "phase.rollback_requested", locked)
    from planner.tasks import execute_phase

    transaction.on_commit(lambda: execute_phase.delay(locked.pk, "down"))
    return locked


def execute(phase_id: int, direction: str) -> Phase:
    """Worker side: run the phase's up or down SQL on the target; record the outcome per statement."""
    phase = Phase.objects.select_related("plan__target").get(pk=phase_id)
    if (direction == "up" and phase.status != P.RUNNING) or (direction == "down" and phase.status == P.ROLLED_BACK):
        return phase  # a redelivered task for a phase already finished: nothing to do
    conninfo = phase.plan.target.conninfo()
    events: list[dict] = []

    def on_event(event: DdlEvent) -> None:
        if event.kind in ("retrying", "invalid_index_dropped"):
            events.append({"event": event.kind, "statement": event.result.index, **event.detail})

    text = phase.up_sql if direction == "up" else phase.down_sql
    try:
        results = execute_sql(conninfo, text, on_event=on_event)
        error = ""
    except DdlError as failure:
        results, error = failure.results, scrub(str(failure), conninfo)
    except Exception as failure:  # noqa: BLE001 - unreachable target, bad credentials: shown on the page
        results, error = [], scrub(str(failure).strip().splitlines()[0] if str(failure).strip() else "error", conninfo)
    log = [
        {
            "statement": result.sql[:500],
            "attempts": result.attempts,
            "waited_ms": round(result.waited_ms),
            "duration_ms": round(result.duration_ms),
            "error": result.error and scrub(result.error, conninfo),
        }
        for result in results
    ] + events
    return _record(phase, direction, error, log)


@transaction.atomic
def _record(phase: Phase, direction: str, error: str, log: list[dict]) -> Phase:
    locked = Phase.objects.select_for_update().select_related("plan").get(pk=phase.pk)
    if direction == "up":
        locked.transition_to(P.FAILED if error else P.SUCCEEDED)
    elif not error:
        locked.transition_to(P.ROLLED_BACK)
    locked.last_error = error[:2000]
    locked.execution_log = log
    locked.finished_at = timezone.now()
    locked.save(update_fields=["status", "last_error", "execution_log", "finished_at", "updated_at"])
    if error:
        audit.record(None, f"phase.{direction}_failed", locked, error=error[:300])
    else:
        audit.record(None, "phase.rolled_back" if direction == "down" else "phase.succeeded", locked)
    finish_plan_if_done(locked.plan, failed=bool(error) and direction == "up")
    return locked


def finish_plan_if_done(plan: Plan, *, failed: bool = False) -> None:
    if failed:
        _plan_moves_to(plan, Plan.Status.FAILED, None)
    elif not plan.phases.exclude(status=P.SUCCEEDED).exists():
        _plan_moves_to(plan, Plan.Status.SUCCEEDED, None)


@transaction.atomic
def backfill_finished(phase: Phase, run_status: str) -> None:
    """A backfill run of this phase ended: succeeded → phase succeeded; cancelled → failed (retry
    with a new run); rolled back → the phase is rolled back."""
    from planner.models import BackfillRun

    R = BackfillRun.Status
    new_status = {R.SUCCEEDED: P.SUCCEEDED, R.CANCELLED: P.FAILED, R.ROLLED_BACK: P.ROLLED_BACK}.get(run_status)
    locked = Phase.objects.select_for_update().select_related("plan").get(pk=phase.pk)
    if new_status is None or locked.status == new_status or not locked.can_transition_to(new_status):
        return
    locked.transition_to(new_status)
    locked.finished_at = timezone.now()
    locked.save(update_fields=["status", "finished_at", "updated_at"])
    audit.record(None, f"phase.{new_status}", locked, run_status=run_status)
    finish_plan_if_done(locked.plan)
