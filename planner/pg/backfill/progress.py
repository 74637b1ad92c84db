"""What a caller sees after each batch and after each stint of work (plain dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.pg.backfill.throttle import Hold


@dataclass(frozen=True)
class BatchProgress:
    """One committed batch, handed to `on_batch` right after COMMIT (so the mirror may lag, never lead)."""

    run_name: str
    direction: str  # "forward" | "rollback"
    slice_no: int
    first_key: list[str] | None  # key range of the batch, as text
    last_key: list[str] | None
    rows: int  # rows changed
    scanned: int  # keys in the range (rows the WHERE filtered out included)
    ms: float
    batch_size: int  # the limit this batch used
    slice_rows_done: int  # committed totals of this slice, read in the batch's transaction
    slice_rows_estimate: int | None
    slice_done: bool
    lock_waiters: int  # sessions that were waiting on this batch's row locks just before COMMIT
    rows_per_s: float  # this stint's rate, time on hold excluded
    eta_seconds: float | None


@dataclass
class StepOutcome:
    """Why `work_slice` returned. status: done | stopped | held | time_up | errored | busy.

    - done: the slice has no rows left (in this direction);
    - stopped: `should_stop()` said so between two batches;
    - held: a health signal holds work back until `hold.until` (re-enqueue with that countdown);
    - time_up: the deadline passed; re-enqueue at once;
    - errored: N consecutive failures or a permanent error; `error` says which; resumable;
    - busy: another worker holds a live lease on this slice.
    """

    status: str
    slice_no: int
    direction: str
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    hold: Hold | None = None
    error: str | None = None
    retries: int = 0
    splits: int = 0
    vacuums: int = 0
    batch_size: int | None = None
    batch_ms: list[float] = field(default_factory=list)


def eta_seconds(rows_done: int, rows_total: int | None, rows_per_s: float) -> float | None:
    """Seconds left at the current rate (time on hold is excluded from the rate by callers)."""
    if not rows_total or rows_per_s <= 0:
        return None
    return max(0, rows_total - rows_done) / rows_per_s
