"""Celery tasks: thin wrappers that load objects and call services. Idempotent, acks_late.

A backfill run is worked by short tasks: `launch_backfill` registers it in the target and fans out
one `work_backfill_slice` per slice; each works a bounded stint and re-enqueues itself, so pause
and cancel take effect within one batch, restarts lose nothing and runs share workers fairly.
`reconcile_backfills` (beat) revives slices whose worker died.
"""

from __future__ import annotations

from celery import shared_task

from planner.models import TargetDatabase
from planner.services import backfill_worker, notify, phases, schedule, targets


@shared_task(acks_late=True)
def check_target(target_id: int) -> dict:
    """Check a target's connection; safe to run twice (it only records the latest result)."""
    target = TargetDatabase.objects.get(pk=target_id)
    targets.check_connection(target)
    return {"target": target.name, "server_version": target.server_version, "error": target.last_check_error}


@shared_task(acks_late=True)
def launch_backfill(run_id: int) -> list[int]:
    slices = backfill_worker.launch(run_id)
    for slice_no in slices:
        work_backfill_slice.delay(run_id, slice_no)
    return slices


@shared_task(acks_late=True)
def work_backfill_slice(run_id: int, slice_no: int) -> float | None:
    countdown = backfill_worker.work_on_slice(run_id, slice_no)
    if countdown is not None:
        work_backfill_slice.apply_async((run_id, slice_no), countdown=countdown)
    return countdown


@shared_task(acks_late=True)
def reconcile_backfills() -> int:
    stalled = backfill_worker.stalled_work()
    for run_id in stalled.launches:
        launch_backfill.delay(run_id)
    for run_id, slice_no in stalled.slices:
        work_backfill_slice.delay(run_id, slice_no)
    return len(stalled.launches) + len(stalled.slices)


@shared_task(acks_late=True)
def execute_phase(phase_id: int, direction: str) -> str:
    """Run a phase's up or down SQL; a redelivered task for a finished phase does nothing."""
    return phases.execute(phase_id, direction).status


@shared_task(
    acks_late=True,
    autoretry_for=(notify.TemporaryWebhookError,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def send_webhook(text: str) -> int:
    """Deliver one notification; network errors and 5xx are retried with backoff for about an hour."""
    return notify.post(text)


@shared_task(acks_late=True)
def start_due_phases() -> dict:
    """Beat: start phases whose window is open and whose gates are satisfied; report missed windows."""
    return schedule.start_due_phases().as_dict()
