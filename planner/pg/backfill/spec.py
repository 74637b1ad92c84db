"""What a backfill is asked to do, as plain data (JSON round-trip for the planner's store and Celery).

Only shape and range checks live here; everything that needs the target database (does the table
exist, does the SET parse and type-check) is in validate.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from planner.pg.backfill.errors import SpecError


@dataclass(frozen=True)
class BatchLimits:
    """Adaptive batch sizing: rows per batch move between min and max toward target_ms per batch.

    100 ms is the default target because an application write that hits a row of the current batch
    waits for the rest of that batch: short batches keep that wait small (bench/backfill_bench.py
    shows p99 app-write latency well under 50 ms at this target) while the fixed cost per batch
    (a few round trips) stays around 1-2 % of the batch.
    """

    initial: int = 1_000
    min: int = 10
    max: int = 50_000
    target_ms: float = 100.0
    lock_timeout_ms: int = 200
    statement_timeout_ms: int = 5_000
    adaptive: bool = True  # False: stay at `initial` (a fixed --batch-size), except to split on timeouts

    def check(self) -> None:
        if self.min < 1:
            raise SpecError("batch_size", f"minimum {self.min} must be at least 1")
        if self.max < self.min:
            raise SpecError("batch_size", f"maximum {self.max} is below minimum {self.min}")
        if not self.min <= self.initial <= self.max:
            raise SpecError("batch_size", f"{self.initial} is outside the bounds {self.min}..{self.max}")
        if self.target_ms <= 0:
            raise SpecError("target_batch_ms", f"{self.target_ms} must be positive")
        if self.lock_timeout_ms < 1:
            raise SpecError("lock_timeout_ms", f"{self.lock_timeout_ms} must be at least 1")
        if self.statement_timeout_ms < 1:
            raise SpecError("statement_timeout_ms", f"{self.statement_timeout_ms} must be at least 1")


@dataclass(frozen=True)
class ThrottleLimits:
    """Health signals checked between batches; each is on by default, `None` switches one off."""

    replica_lag_s: float | None = 5.0
    archive_backlog_files: int | None = 50
    autovacuum_running: bool = True
    long_transaction_s: float | None = 300.0
    lock_waiters: int | None = 2  # sessions that waited on our last batch's row locks
    # n_dead_tup / (n_live_tup + n_dead_tup); 0.1 keeps growth near 1.2x with vacuum_between (bench)
    dead_tuple_ratio: float | None = 0.1
    dead_tuple_min: int = 10_000  # below this many dead tuples the ratio is noise
    health_query: str | None = None  # must return true in its first column
    check_every_s: float = 1.0
    hold_s: float = 5.0  # how long a hold lasts before signals are read again

    def check(self) -> None:
        if self.check_every_s < 0 or self.hold_s < 0:
            raise SpecError("throttle", "check_every_s and hold_s must not be negative")
        if self.dead_tuple_ratio is not None and not 0 < self.dead_tuple_ratio < 1:
            raise SpecError("throttle.dead_tuple_ratio", f"{self.dead_tuple_ratio} must be between 0 and 1")


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures (lock timeout, deadlock, serialization, lost connection) retry with backoff."""

    max_consecutive_failures: int = 8
    backoff_base_s: float = 0.2
    backoff_max_s: float = 30.0


@dataclass(frozen=True)
class BackfillSpec:
    """One backfill: `UPDATE table SET set WHERE where`, done in key order, batch by batch."""

    table: str
    set: str
    where: str | None = None
    key: tuple[str, ...] | None = None  # None: the primary key
    capture_before_images: bool = False
    reverse_set: str | None = None  # rollback without before-images
    reverse_where: str | None = None
    batch: BatchLimits = field(default_factory=BatchLimits)
    throttle: ThrottleLimits = field(default_factory=ThrottleLimits)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    vacuum_between: bool = True  # VACUUM the table when dead tuples pile up, instead of only holding
    vacuum_after: bool = True  # VACUUM (ANALYZE) once every slice is done

    def check(self) -> None:
        """Shape checks that need no database."""
        if not self.table or not self.table.strip():
            raise SpecError("table", "is empty")
        if not self.set or not self.set.strip():
            raise SpecError("set", "is empty")
        if self.key is not None and (not self.key or any(not part.strip() for part in self.key)):
            raise SpecError("key", "is empty")
        self.batch.check()
        self.throttle.check()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["key"] = list(self.key) if self.key else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> BackfillSpec:
        """Inverse of to_dict; unknown keys are an error so a typo never silently drops a limit."""
        data = dict(data)
        nested = {"batch": BatchLimits, "throttle": ThrottleLimits, "retry": RetryPolicy}
        for name, kind in nested.items():
            if isinstance(data.get(name), dict):
                data[name] = _build(kind, data[name], name)
        if data.get("key") is not None:
            key = data["key"]
            data["key"] = tuple(part.strip() for part in (key.split(",") if isinstance(key, str) else key))
        return _build(cls, data, "spec")

    def identity(self) -> dict:
        """What must not change between a run and its resumption (limits may)."""
        return {
            "table": self.table,
            "set": self.set,
            "where": self.where,
            "key": list(self.key) if self.key else None,
            "capture_before_images": self.capture_before_images,
        }


def _build(kind, data: dict, where: str):
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(where, f"unknown option(s) {', '.join(unknown)}")
    return kind(**data)
