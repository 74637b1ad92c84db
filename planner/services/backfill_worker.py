"""The worker side of a backfill run: bounded stints of work, mirrored into the store.

Celery tasks (planner/tasks.py) call these functions and re-enqueue as told. The engine
(planner/pg/backfill) commits each batch with its checkpoint in the target database; this module
only mirrors progress into the store (after each batch, so the mirror may lag, never lead) and
moves the run through its state machine as the engine reports what happened.

Every function is safe to call twice for the same slice (Celery may redeliver): the engine's
lease makes a second worker see `busy`, and its fencing stops a stale one with LeaseLost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from planner.models import BackfillBatch, BackfillHold, BackfillRun, BackfillSlice
from planner.pg.backfill.errors import BackfillError, LeaseLost
from planner.pg.backfill.progress import BatchProgress, StepOutcome
from planner.pg.backfill.runner import BackfillRunner
from planner.pg.connect import scrub
from planner.services import audit, phases

logger = logging.getLogger(__name__)
S = BackfillRun.Status


def stint_seconds() -> float:
    """How long one task works before handing the slice back to the queue (fairness, prompt stops)."""
    return float(getattr(settings, "PLANNER_BACKFILL_STINT_SECONDS", 20))


def stale_after() -> timedelta:
    """A run whose last heartbeat is older than this has lost its worker and is revived."""
    return timedelta(seconds=float(getattr(settings, "PLANNER_BACKFILL_STALE_SECONDS", 90)))


def runner_for(run: BackfillRun) -> BackfillRunner:
    lease = getattr(settings, "PLANNER_BACKFILL_LEASE_SECONDS", None)
    return BackfillRunner(run.phase.plan.target.conninfo(), run.spec, run.name, lease_seconds=lease)


FINISHED_PHASE_STATES = {S.SUCCEEDED, S.CANCELLED, S.ROLLED_BACK}


def _system_transition(run_id: int, new_status: str, *, only_from=None, **fields) -> BackfillRun | None:
    """Move a run as the system (workers, beat); None if it is no longer in a state that allows it."""
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        if only_from is not None and run.status not in only_from:
            return None
        if run.status == new_status:
            changed = [name for name, value in fields.items() if getattr(run, name) != value]
            for name, value in fields.items():
                setattr(run, name, value)
            if changed:
                run.save(update_fields=changed)
            return run
        if not run.can_transition_to(new_status):
            return None
        old = run.transition_to(new_status)
        for name, value in fields.items():
            setattr(run, name, value)
        run.save(update_fields=["status", *fields])
        details = {"previous": old}
        if fields.get("last_error"):
            details["error"] = fields["last_error"]
        if fields.get("hold_reason"):
            details["reason"] = fields["hold_reason"]
        audit.record(None, f"run.{new_status}", run, **details)
        if new_status in FINISHED_PHASE_STATES:
            phases.backfill_finished(run.phase, new_status)
        return run


def launch(run_id: int) -> list[int]:
    """Register (or resume, or turn around) the run in the target; return the slices to work.

    Validation happens here, before any row is touched: a bad spec errors the run with the message.
    """
    run = BackfillRun.objects.select_related("phase__plan__target").get(pk=run_id)
    if run.status != S.ENQUEUED:
        return []
    runner = runner_for(run)
    try:
        if run.direction == BackfillRun.Direction.ROLLBACK:
            status = runner.status()
            info = runner.start_rollback() if status.direction != "rollback" else runner.prepare()
        else:
            info = runner.prepare(slices=run.slice_count)
    except Exception as error:  # noqa: BLE001 - any failure is shown on the run page, password removed
        message = scrub(str(error) if isinstance(error, BackfillError) else _one_line(error), runner.dsn)
        _system_transition(run_id, S.ERRORED, last_error=message[:2000])
        return []
    fields = {"rows_total_estimate": info.rows_estimate}
    if run.direction == BackfillRun.Direction.FORWARD:
        fields["table_bytes_before"] = info.table_bytes_before
    BackfillRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now(), **fields)
    _sync_slices(run, runner)
    _record_health(run, runner)
    return list(run.slices.filter(done=False).values_list("index", flat=True))


def _sync_slices(run: BackfillRun, runner: BackfillRunner) -> None:
    """Make the store's slice rows mirror the target's (after a turn-around, counts restart)."""
    status = runner.status()
    for row in status.slices:
        BackfillSlice.objects.update_or_create(
            run=run,
            index=row.slice_no,
            defaults={"done": row.done, "rows_done": row.rows_done},
        )
    BackfillRun.objects.filter(pk=run.pk).update(
        rows_done=status.rows_done, rows_total_estimate=status.rows_estimate or None
    )


def _should_stop(run_id: int):
    def check() -> bool:
        return not BackfillRun.objects.filter(pk=run_id, status__in=BackfillRun.ACTIVE).exists()

    return check


def _mirror(run: BackfillRun):
    """The on_batch callback: progress rows in the store, right after the target's COMMIT."""

    def on_batch(progress: BatchProgress) -> None:
        now = timezone.now()
        BackfillSlice.objects.filter(run=run, index=progress.slice_no).update(
            rows_done=progress.slice_rows_done, last_key=progress.last_key, heartbeat_at=now, done=progress.slice_done
        )
        BackfillBatch.objects.create(
            run=run,
            slice_index=progress.slice_no,
            direction=progress.direction,
            finished_at=now,
            first_key=progress.first_key,
            last_key=progress.last_key,
            rows=progress.rows,
            duration_ms=progress.ms,
            batch_size=progress.batch_size,
        )
        rows_done = run.slices.aggregate(total=Sum("rows_done"))["total"] or 0
        current = BackfillRun.objects.only("started_at", "held_seconds", "rows_total_estimate").get(pk=run.pk)
        active_seconds = max(1e-3, (now - (current.started_at or now)).total_seconds() - current.held_seconds)
        rate = rows_done / active_seconds if run.direction == BackfillRun.Direction.FORWARD else progress.rows_per_s
        total = current.rows_total_estimate
        eta = max(0.0, (total - rows_done) / rate) if total and rate > 0 else None
        BackfillRun.objects.filter(pk=run.pk).update(
            rows_done=rows_done,
            batches_done=F("batches_done") + 1,
            batch_size=progress.batch_size,
            last_batch_ms=progress.ms,
            rows_per_second=rate,
            eta_seconds=eta,
            heartbeat_at=now,
            consecutive_failures=0,
        )

    return on_batch


def work_on_slice(run_id: int, slice_no: int) -> float | None:
    """One stint on one slice. Returns a countdown in seconds to re-enqueue after, or None to stop."""
    run = BackfillRun.objects.select_related("phase__plan__target").get(pk=run_id)
    if run.status in BackfillRun.STOPPING:
        complete_stop(run_id)
        return None
    if run.status not in BackfillRun.ACTIVE:
        return None
    working = S.ROLLING_BACK if run.direction == BackfillRun.Direction.ROLLBACK else S.RUNNING
    if run.status == S.ON_HOLD:
        _end_hold(run)
    if _system_transition(run_id, working, only_from={S.ENQUEUED, S.ON_HOLD, working}, hold_reason="") is None:
        return None
    runner = runner_for(run)
    try:
        outcome = runner.work_slice(
            slice_no, deadline_seconds=stint_seconds(), should_stop=_should_stop(run_id), on_batch=_mirror(run)
        )
    except LeaseLost:
        logger.info("run %s slice %s: another worker took the slice over; this one stops", run.name, slice_no)
        return None
    except Exception as error:  # noqa: BLE001 - e.g. the target is unreachable: retry, then error out
        return _failed_stint(run, scrub(_one_line(error), runner.dsn))
    return _after_stint(run, runner, outcome)


def _record_health(run: BackfillRun, runner: BackfillRunner) -> None:
    """The signals' current values for the run page; a failure to read them never stops the run."""
    try:
        health = runner.health()
    except Exception as error:  # noqa: BLE001 - monitoring is best effort
        logger.info("run %s: health signals not read: %s", run.name, _one_line(error))
        return
    BackfillRun.objects.filter(pk=run.pk).update(health=health, health_read_at=timezone.now())


def _after_stint(run: BackfillRun, runner: BackfillRunner, outcome: StepOutcome) -> float | None:
    BackfillRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    if outcome.status in ("time_up", "held", "stopped"):
        _record_health(run, runner)
    if outcome.status == "busy":
        return None
    if outcome.status == "time_up":
        return 0
    if outcome.status == "stopped":
        complete_stop(run.pk)
        return None
    if outcome.status == "held":
        hold = outcome.hold
        now = timezone.now()
        updated = _system_transition(
            run.pk, S.ON_HOLD, only_from=BackfillRun.ACTIVE, hold_reason=str(hold.reason)[:300], hold_until=hold.until
        )
        if updated is not None and not BackfillHold.objects.filter(run=run, ended_at__isnull=True).exists():
            BackfillHold.objects.create(run=run, reason=str(hold.reason)[:300], started_at=now)
        return max(0.5, hold.seconds_left)
    if outcome.status == "errored":
        _system_transition(run.pk, S.ERRORED, last_error=(outcome.error or "unknown error")[:2000])
        return None
    if outcome.status == "done":
        BackfillSlice.objects.filter(run=run, index=outcome.slice_no).update(done=True)
        if not run.slices.filter(done=False).exists():
            _finish(run, runner)
        return None
    logger.warning("run %s: unexpected outcome %s", run.name, outcome.status)
    return None


def _finish(run: BackfillRun, runner: BackfillRunner) -> None:
    status = runner.finish()
    if not status.done:
        return
    final = S.ROLLED_BACK if run.direction == BackfillRun.Direction.ROLLBACK else S.SUCCEEDED
    _system_transition(
        run.pk,
        final,
        finished_at=timezone.now(),
        eta_seconds=0,
        rows_done=status.rows_done,
        table_bytes_after=status.table_bytes_after,
    )


def _failed_stint(run: BackfillRun, message: str) -> float | None:
    """A stint that could not even start (target down, …): back off, and error out after a few."""
    with transaction.atomic():
        locked = BackfillRun.objects.select_for_update().get(pk=run.pk)
        locked.consecutive_failures += 1
        locked.last_error = message[:2000]
        locked.save(update_fields=["consecutive_failures", "last_error"])
        failures = locked.consecutive_failures
    limit = int(run.spec.get("retry", {}).get("max_consecutive_failures", 8))
    if failures >= limit:
        _system_transition(run.pk, S.ERRORED, last_error=f"{failures} consecutive failures, last: {message}"[:2000])
        return None
    return min(60.0, 0.5 * 2**failures)


def _end_hold(run: BackfillRun) -> None:
    now = timezone.now()
    for hold in BackfillHold.objects.filter(run=run, ended_at__isnull=True):
        hold.ended_at = now
        hold.save(update_fields=["ended_at"])
        BackfillRun.objects.filter(pk=run.pk).update(
            held_seconds=F("held_seconds") + (now - hold.started_at).total_seconds()
        )


def complete_stop(run_id: int) -> None:
    """A worker saw a pause or cancel request between batches: record that the run has stopped."""
    run = BackfillRun.objects.get(pk=run_id)
    _end_hold(run)
    if run.status == S.PAUSING:
        _system_transition(run_id, S.PAUSED, only_from={S.PAUSING})
    elif run.status == S.CANCELLING:
        _system_transition(run_id, S.CANCELLED, only_from={S.CANCELLING}, finished_at=timezone.now())


@dataclass
class StalledWork:
    launches: list[int] = field(default_factory=list)  # runs never registered in the target: launch again
    slices: list[tuple[int, int]] = field(default_factory=list)  # (run, slice) whose worker went quiet


def stalled_work() -> StalledWork:
    """What to hand to workers again because its worker died or its hold expired.

    Also completes pause/cancel requests whose workers died before seeing them. Handing work out
    twice is harmless: a second launch resumes, a second slice task finds the slice busy.
    """
    now = timezone.now()
    stale = now - stale_after()
    found = StalledWork()
    for run in BackfillRun.objects.filter(status__in=[*BackfillRun.ACTIVE, *BackfillRun.STOPPING]):
        quiet = (run.heartbeat_at or run.started_at or now) < stale
        if run.status in BackfillRun.STOPPING:
            if quiet:
                complete_stop(run.pk)
            continue
        if not quiet:
            continue
        if run.status == S.ENQUEUED and run.heartbeat_at is None:
            found.launches.append(run.pk)
        else:
            found.slices.extend(
                (run.pk, index) for index in run.slices.filter(done=False).values_list("index", flat=True)
            )
    return found


def _one_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:500]
