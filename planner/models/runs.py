"""Backfill runs: the state machine on-call engineers drive, and the progress mirrored from targets.

The truth of a run's progress (checkpoints, fencing generations, before-images) lives in the target
database's bookkeeping schema, committed with each batch. These rows mirror it for pages and may
lag, never lead.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from planner.models.plans import Phase
from planner.models.state import StateMachineMixin


class BackfillRun(StateMachineMixin, models.Model):
    class Status(models.TextChoices):
        # waiting
        PENDING = "pending", "Pending"  # created, not yet handed to workers
        ENQUEUED = "enqueued", "Enqueued"  # slice tasks sent; no batch done yet in this stint
        # active
        RUNNING = "running", "Running"  # workers are applying batches
        ON_HOLD = "on_hold", "On hold"  # a health signal holds work back; resumes by itself
        ROLLING_BACK = "rolling_back", "Rolling back"  # workers are restoring before-images
        # stopping: asked by a person, done by the worker between two batches
        PAUSING = "pausing", "Pausing"
        CANCELLING = "cancelling", "Cancelling"
        # stopped, can continue
        PAUSED = "paused", "Paused"
        ERRORED = "errored", "Errored"  # too many consecutive failures; resumable
        # finished
        SUCCEEDED = "succeeded", "Succeeded"
        CANCELLED = "cancelled", "Cancelled"
        ROLLED_BACK = "rolled_back", "Rolled back"

    class Direction(models.TextChoices):
        FORWARD = "forward", "Forward"
        ROLLBACK = "rollback", "Rollback"

    S = Status
    TRANSITIONS = {
        S.PENDING: {S.ENQUEUED, S.CANCELLED},
        S.ENQUEUED: {S.RUNNING, S.ROLLING_BACK, S.ON_HOLD, S.PAUSING, S.CANCELLING, S.ERRORED, S.SUCCEEDED},
        S.RUNNING: {S.ON_HOLD, S.PAUSING, S.CANCELLING, S.ERRORED, S.SUCCEEDED},
        S.ROLLING_BACK: {S.ON_HOLD, S.PAUSING, S.CANCELLING, S.ERRORED, S.ROLLED_BACK},
        # a hold ends when the signal clears; the run goes back to work in its direction
        S.ON_HOLD: {S.RUNNING, S.ROLLING_BACK, S.PAUSING, S.CANCELLING, S.ERRORED, S.SUCCEEDED, S.ROLLED_BACK},
        # the last batch may finish the run while a pause is being requested
        S.PAUSING: {S.PAUSED, S.CANCELLING, S.ERRORED, S.SUCCEEDED, S.ROLLED_BACK},
        S.CANCELLING: {S.CANCELLED, S.ERRORED},
        S.PAUSED: {S.ENQUEUED, S.CANCELLED},  # resume; cancel needs no worker
        S.ERRORED: {S.ENQUEUED, S.CANCELLED},  # resume after fixing the cause
        S.SUCCEEDED: {S.ENQUEUED},  # roll back (direction becomes rollback)
        S.CANCELLED: {S.ENQUEUED},  # roll back what was done before the cancel
        S.ROLLED_BACK: set(),
    }
    ACTIVE = {S.ENQUEUED, S.RUNNING, S.ON_HOLD, S.ROLLING_BACK}
    STOPPING = {S.PAUSING, S.CANCELLING}
    FINISHED = {S.SUCCEEDED, S.CANCELLED, S.ROLLED_BACK}

    phase = models.ForeignKey(Phase, on_delete=models.PROTECT, related_name="backfill_runs")
    name = models.CharField(max_length=100, unique=True, help_text="Run name in the target's bookkeeping schema.")
    spec = models.JSONField(help_text="Table, key, SET, WHERE, batch and throttle options given to the engine.")
    slice_count = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.FORWARD)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # progress mirror (written by workers after each batch)
    rows_done = models.BigIntegerField(default=0)
    rows_total_estimate = models.BigIntegerField(null=True, blank=True)
    batches_done = models.PositiveIntegerField(default=0)
    batch_size = models.PositiveIntegerField(null=True, blank=True)
    last_batch_ms = models.FloatField(null=True, blank=True)
    rows_per_second = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    held_seconds = models.FloatField(default=0, help_text="Time spent on hold, excluded from the rate.")
    hold_reason = models.CharField(max_length=300, blank=True)
    hold_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    consecutive_failures = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    health = models.JSONField(default=dict, blank=True, help_text="Latest health signals read by a worker.")
    health_read_at = models.DateTimeField(null=True, blank=True)
    table_bytes_before = models.BigIntegerField(null=True, blank=True)
    table_bytes_after = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"backfill {self.name}"

    @property
    def plan(self):
        return self.phase.plan

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE or self.status in self.STOPPING

    @property
    def progress_fraction(self) -> float | None:
        if not self.rows_total_estimate:
            return None
        return min(1.0, self.rows_done / self.rows_total_estimate)


class BackfillSlice(models.Model):
    """One key range of a run, worked by one Celery task at a time (claimed by a lease)."""

    run = models.ForeignKey(BackfillRun, on_delete=models.CASCADE, related_name="slices")
    index = models.PositiveSmallIntegerField()
    done = models.BooleanField(default=False)
    rows_done = models.BigIntegerField(default=0)
    last_key = models.JSONField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="backfill_slice_unique_index")]

    def __str__(self) -> str:
        return f"{self.run.name} slice {self.index}"


class BackfillBatch(models.Model):
    """The per-batch log kept for charts: key range, rows, duration."""

    run = models.ForeignKey(BackfillRun, on_delete=models.CASCADE, related_name="batches")
    slice_index = models.PositiveSmallIntegerField()
    direction = models.CharField(max_length=10, choices=BackfillRun.Direction.choices)
    finished_at = models.DateTimeField(db_index=True)
    first_key = models.JSONField(null=True)
    last_key = models.JSONField(null=True)
    rows = models.PositiveIntegerField()
    duration_ms = models.FloatField()
    batch_size = models.PositiveIntegerField()

    class Meta:
        ordering = ["run", "finished_at"]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.slice_index}: {self.rows} rows in {self.duration_ms:.0f} ms"


class BackfillHold(models.Model):
    """A period during which a health signal held a run back."""

    run = models.ForeignKey(BackfillRun, on_delete=models.CASCADE, related_name="holds")
    reason = models.CharField(max_length=300)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "started_at"]

    def __str__(self) -> str:
        return f"hold of {self.run_id}: {self.reason}"
