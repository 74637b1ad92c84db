"""What people do to backfill runs: start, pause, resume, cancel, roll back.

Two-phase stop, as in maintenance_tasks: a person only asks (`pausing`, `cancelling`); the worker
holding the slice sees it between two batches and records the stop. A run with no worker busy on
it (paused, errored, pending) changes at once. Every change takes a row lock on the run, so two
people clicking at once end in one consistent state, and each effective change is audited once.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from planner.models import BackfillRun, BackfillSlice, InvalidTransition, Phase
from planner.services import audit, phases
from planner.services.permissions import require

S = BackfillRun.Status


def _hand_to_workers(run: BackfillRun) -> None:
    """After commit, a worker registers the run in the target and fans out one task per slice."""
    # Imported here: tasks import services, and services only need tasks to hand work over.
    from planner.tasks import launch_backfill

    transaction.on_commit(lambda: launch_backfill.delay(run.pk))


def _locked(run: BackfillRun) -> BackfillRun:
    return BackfillRun.objects.select_for_update().get(pk=run.pk)


@transaction.atomic
def create_run(actor, phase: Phase, *, spec: dict, slice_count: int = 1) -> BackfillRun:
    """Create a pending run for a backfill phase, with one store row per slice."""
    require(actor, "start_plan")
    if phase.kind != Phase.Kind.BACKFILL:
        raise ValueError(f"phase {phase} is not a backfill phase")
    if not 1 <= slice_count <= 64:
        raise ValueError("slice_count must be between 1 and 64")
    run = BackfillRun.objects.create(phase=phase, name="pending", spec=spec, slice_count=slice_count, created_by=actor)
    run.name = f"plan{phase.plan_id}-phase{phase.pk}-run{run.pk}"
    run.save(update_fields=["name"])
    BackfillSlice.objects.bulk_create(BackfillSlice(run=run, index=index) for index in range(slice_count))
    audit.record(actor, "run.created", run, slices=slice_count, table=spec.get("table"))
    return run


@transaction.atomic
def create_and_start(actor, phase: Phase, *, slice_count: int = 1) -> BackfillRun:
    """The plan page's "Start backfill": both or neither (a gate that is closed creates nothing)."""
    run = create_run(actor, phase, spec=phase.backfill_spec or {}, slice_count=slice_count)
    return start(actor, run)


@transaction.atomic
def start(actor, run: BackfillRun) -> BackfillRun:
    require(actor, "start_plan")
    run = _locked(run)
    if run.phase.status != Phase.Status.RUNNING:
        phases.mark_running(actor, run.phase)  # gates: earlier phases must have succeeded
    run.transition_to(S.ENQUEUED)
    run.started_at = run.started_at or timezone.now()
    run.save(update_fields=["status", "started_at"])
    audit.record(actor, "run.started", run)
    _hand_to_workers(run)
    return run


@transaction.atomic
def pause(actor, run: BackfillRun, reason: str = "") -> BackfillRun:
    """Ask workers to stop after their current batch; they record `paused`."""
    require(actor, "pause_run")
    run = _locked(run)
    if run.status in (S.PAUSING, S.PAUSED):
        return run  # a second click asks for what is already asked: no new audit entry
    run.transition_to(S.PAUSING)
    run.save(update_fields=["status"])
    audit.record(actor, "run.pause_requested", run, reason=reason)
    return run


@transaction.atomic
def resume(actor, run: BackfillRun, reason: str = "") -> BackfillRun:
    """Continue a paused or errored run from its checkpoints, in the direction it was going."""
    require(actor, "resume_run")
    run = _locked(run)
    if run.status in BackfillRun.ACTIVE:
        return run
    run.transition_to(S.ENQUEUED)
    run.consecutive_failures = 0
    run.last_error = ""
    run.save(update_fields=["status", "consecutive_failures", "last_error"])
    audit.record(actor, "run.resumed", run, reason=reason)
    _hand_to_workers(run)
    return run


@transaction.atomic
def cancel(actor, run: BackfillRun, reason: str = "") -> BackfillRun:
    """Stop for good. Rows already changed stay changed (roll back to undo them)."""
    require(actor, "cancel_run")
    run = _locked(run)
    if run.status in (S.CANCELLING, S.CANCELLED):
        return run
    target = S.CANCELLED if run.status in (S.PENDING, S.PAUSED, S.ERRORED) else S.CANCELLING
    run.transition_to(target)
    if target == S.CANCELLED:
        run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    audit.record(actor, "run.cancel_requested" if target == S.CANCELLING else "run.cancelled", run, reason=reason)
    if target == S.CANCELLED:
        phases.backfill_finished(run.phase, S.CANCELLED)
    return run


def can_roll_back(run: BackfillRun) -> bool:
    """Rollback restores captured before-images, or applies the user's reverse SET."""
    return bool(run.spec.get("capture_before_images") or run.spec.get("reverse_set"))


@transaction.atomic
def roll_back(actor, run: BackfillRun, reason: str = "") -> BackfillRun:
    """Undo every row the run changed, batch by batch, with the same pause/resume and throttling."""
    require(actor, "rollback_run")
    run = _locked(run)
    if run.direction == BackfillRun.Direction.ROLLBACK and run.status in BackfillRun.ACTIVE:
        return run
    if not can_roll_back(run):
        raise InvalidTransition(
            "this run captured no before-images and has no reverse expression, so it cannot be rolled back"
        )
    if run.status not in (S.SUCCEEDED, S.CANCELLED, S.PAUSED, S.ERRORED):
        raise InvalidTransition(f"pause the run before rolling it back (it is {run.get_status_display().lower()})")
    if run.status in (S.PAUSED, S.ERRORED) and run.direction == BackfillRun.Direction.FORWARD:
        # A paused forward run is first cancelled (no worker holds it), then rolled back.
        run.transition_to(S.CANCELLED)
    run.transition_to(S.ENQUEUED)
    run.direction = BackfillRun.Direction.ROLLBACK
    run.finished_at = None
    run.consecutive_failures = 0
    run.last_error = ""
    run.save(update_fields=["status", "direction", "finished_at", "consecutive_failures", "last_error"])
    audit.record(actor, "run.rollback_started", run, reason=reason)
    _hand_to_workers(run)
    return run
