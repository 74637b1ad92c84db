"""BackfillRunner: the stepping API Celery tasks call, and a foreground driver for the CLI and benchmarks.

    runner = BackfillRunner(dsn, spec, "plan3-phase7-run12")
    info = runner.prepare(slices=4)              # validate, create bookkeeping + slices (idempotent)
    outcome = runner.work_slice(0, deadline_seconds=30, should_stop=..., on_batch=...)
    # outcome.status: done | stopped | held | time_up | errored | busy  (LeaseLost is raised)
    runner.finish()                              # once every slice is done: VACUUM (ANALYZE), sizes

Every batch commits its data change and its checkpoint together in the target database, after
re-reading the slice row FOR UPDATE with the generation this worker claimed; so a killed worker
loses nothing, a resumed one repeats nothing, and a stale one stops (LeaseLost) instead of writing.
"""

from __future__ import annotations

import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from planner.pg.backfill import bookkeeping, maintenance, rollback, throttle
from planner.pg.backfill.batches import WAITERS_SQL, BatchSizer, BatchSql, Bounds
from planner.pg.backfill.errors import LeaseLost, SpecError
from planner.pg.backfill.progress import BatchProgress, StepOutcome, eta_seconds
from planner.pg.backfill.slicing import plan_slices
from planner.pg.backfill.spec import BackfillSpec
from planner.pg.backfill.validate import Target, resolve
from planner.pg.connect import connect

# Errors worth retrying: the next attempt may well succeed (the lock is gone, the server is back).
# Lock timeouts, deadlocks and serialization failures are OperationalError subclasses in psycopg,
# as are lost connections and server shutdowns. Anything else (a CHECK violation, division by
# zero in the SET) fails the same way every time: the slice errors at once.
TRANSIENT = (psycopg.OperationalError, psycopg.errors.TransactionRollback)


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    name: str
    table: str
    key: tuple[str, ...]
    resumed: bool  # the run existed before this prepare()
    direction: str
    slices: int
    rows_estimate: int
    table_bytes_before: int | None


@dataclass(frozen=True)
class RunStatus:
    name: str
    direction: str
    slices: list[bookkeeping.SliceRow]
    rows_done: int
    rows_estimate: int
    done: bool  # every slice of the current direction is done
    finished: bool  # forward done and finish() recorded it
    rolled_back: bool
    table_bytes_before: int | None
    table_bytes_after: int | None
    holds: list[tuple] = field(default_factory=list)


@dataclass
class _Batch:
    rows: int
    scanned: int
    ms: float
    limit: int
    first_key: list[str] | None
    last_key: list[str] | None
    done: bool
    waiters: int
    slice_rows_done: int
    slice_rows_estimate: int | None


class BackfillRunner:
    """One named run of one spec against one target database. Safe to build anywhere, any number of times."""

    def __init__(self, dsn: str, spec: BackfillSpec | dict, run_name: str, *, lease_seconds: float | None = None):
        self.dsn = dsn
        self.spec = spec if isinstance(spec, BackfillSpec) else BackfillSpec.from_dict(spec)
        self.run_name = run_name
        self.lease_seconds = lease_seconds or max(60.0, 3 * self.spec.batch.statement_timeout_ms / 1000)
        self._target: Target | None = None

    # -- connections -------------------------------------------------------------------------------

    def connect(self) -> psycopg.Connection:
        """An autocommit connection named after the run (throttle signals recognise our own sessions)."""
        conninfo = make_conninfo(self.dsn, application_name=f"{throttle.APP_PREFIX}:{self.run_name}"[:63])
        connection = connect(
            conninfo,
            autocommit=True,
            lock_timeout_ms=self.spec.batch.lock_timeout_ms,
            statement_timeout_ms=max(self.spec.batch.statement_timeout_ms, 10_000),
        )
        # Plan every batch with its real key values: a generic plan of `key > $1 AND key <= $2`
        # cannot know the range is small and could scan the whole table.
        connection.prepare_threshold = None
        return connection

    def target(self, connection: psycopg.Connection) -> Target:
        if self._target is None:
            self._target = resolve(connection, self.spec)
        return self._target

    def _identity(self, target: Target) -> dict:
        return {
            "table": target.display,
            "key": list(target.key_names),
            "set": target.set_sql,
            "where": target.where_sql,
            "capture": self.spec.capture_before_images,
        }

    # -- run lifecycle -------------------------------------------------------------------------------

    def prepare(self, slices: int = 1) -> RunInfo:
        """Validate (SpecError before any row is touched) and register the run; resume it if it exists."""
        if not 1 <= slices <= 256:
            raise SpecError("slices", f"{slices} must be between 1 and 256")
        with self.connect() as connection:
            target = self.target(connection)
            bookkeeping.ensure_schema(connection)
            run = bookkeeping.find_run(connection, self.run_name)
            resumed = run is not None
            if run is None:
                plans = plan_slices(connection, target, slices)
                size = maintenance.table_bytes(connection, target)
                with connection.transaction():
                    run = bookkeeping.insert_run(
                        connection,
                        name=self.run_name,
                        table_name=target.display,
                        key_columns=list(target.key_names),
                        identity=self._identity(target),
                        spec=self.spec.to_dict(),
                        capture=self.spec.capture_before_images,
                        table_bytes=size,
                    )
                    if run is not None:
                        bookkeeping.insert_slices(connection, run.id, "forward", plans)
                        if self.spec.capture_before_images:
                            rollback.create_image_table(connection, run.id, target)
                if run is None:  # another worker registered it between our look and our insert
                    run, resumed = bookkeeping.get_run(connection, self.run_name), True
            if run.identity != self._identity(target):
                raise SpecError(
                    "name",
                    f"run {self.run_name!r} already exists in this database for a different backfill"
                    f" ({_difference(run.identity, self._identity(target))}); choose another name",
                )
            if self.spec.to_dict() != run.spec:  # limits may change between stints; keep the latest
                connection.execute(
                    sql.SQL("UPDATE {} SET spec = %s WHERE id = %s").format(bookkeeping.table("backfill_runs")),
                    [Jsonb(self.spec.to_dict()), run.id],
                )
            rows = bookkeeping.list_slices(connection, run.id, run.direction)
            return RunInfo(
                run_id=run.id,
                name=run.name,
                table=target.display,
                key=target.key_names,
                resumed=resumed,
                direction=run.direction,
                slices=len(rows),
                rows_estimate=sum(row.rows_estimate or 0 for row in rows),
                table_bytes_before=run.table_bytes_before,
            )

    def start_rollback(self) -> RunInfo:
        """Turn the run around (fencing forward workers); then work_slice() restores, slice by slice."""
        with self.connect() as connection:
            target = self.target(connection)
            run = bookkeeping.get_run(connection, self.run_name)
            rollback.start(connection, run, target)
        return self.prepare()

    def status(self) -> RunStatus:
        with self.connect() as connection:
            run = bookkeeping.get_run(connection, self.run_name)
            rows = bookkeeping.list_slices(connection, run.id, run.direction)
            return RunStatus(
                name=run.name,
                direction=run.direction,
                slices=rows,
                rows_done=sum(row.rows_done for row in rows),
                rows_estimate=sum(max(row.rows_estimate or 0, row.rows_done) for row in rows),
                done=all(row.done for row in rows),
                finished=run.finished_at is not None,
                rolled_back=run.rolled_back_at is not None,
                table_bytes_before=run.table_bytes_before,
                table_bytes_after=run.table_bytes_after,
                holds=bookkeeping.list_holds(connection, run.id),
            )

    def health(self) -> dict:
        """Current values of the health signals on the run's table (for the run page)."""
        with self.connect() as connection:
            return throttle.snapshot(connection, self.target(connection))

    def finish(self) -> RunStatus:
        """Once every slice of the direction is done: record it, VACUUM (ANALYZE) if asked, measure growth.

        Idempotent, and only the first caller vacuums (the finished_at update claims the job).
        """
        status = self.status()
        if not status.done:
            return status
        runs = bookkeeping.table("backfill_runs")
        column = sql.Identifier("finished_at" if status.direction == "forward" else "rolled_back_at")
        with self.connect() as connection:
            claimed = connection.execute(
                sql.SQL("UPDATE {0} SET {1} = now() WHERE name = %s AND {1} IS NULL RETURNING id").format(runs, column),
                [self.run_name],
            ).fetchone()
            if claimed:
                target = self.target(connection)
                if self.spec.vacuum_after:
                    maintenance.vacuum(connection, target, analyze=True)
                connection.execute(
                    sql.SQL("UPDATE {} SET table_bytes_after = %s WHERE id = %s").format(runs),
                    [maintenance.table_bytes(connection, target), claimed[0]],
                )
        return self.status()

    # -- the stepping API ----------------------------------------------------------------------------

    def work_slice(
        self,
        slice_no: int,
        *,
        deadline_seconds: float = 60.0,
        should_stop: Callable[[], bool] | None = None,
        on_batch: Callable[[BatchProgress], None] | None = None,
        owner: str | None = None,
        force: bool = False,
    ) -> StepOutcome:
        """Work one slice for at most `deadline_seconds`, in the run's current direction.

        Claims the slice (bumping its generation; `force` takes it even from a live lease), runs
        batches until the slice is done, `should_stop()` is true, a health signal holds, the
        deadline passes or failures pile up, then releases the lease. Raises LeaseLost if another
        worker claims the slice meanwhile.
        """
        started = time.monotonic()
        should_stop = should_stop or (lambda: False)
        owner = owner or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        connection = self.connect()
        try:
            target = self.target(connection)
            run = bookkeeping.get_run(connection, self.run_name)
            direction = run.direction
            generation = bookkeeping.claim(connection, run.id, direction, slice_no, owner, self.lease_seconds, force)
            if generation is None:
                return StepOutcome("busy", slice_no, direction)
            stint = _Stint(self, target, run, direction, slice_no, generation, started, deadline_seconds)
            try:
                connection = stint.loop(connection, should_stop, on_batch)
            finally:
                stint.outcome.seconds = time.monotonic() - started
                if not connection.closed and not connection.broken:
                    bookkeeping.release(connection, run.id, direction, slice_no, generation)
            return stint.outcome
        finally:
            connection.close()

    def run_foreground(
        self,
        *,
        should_stop: Callable[[], bool] | None = None,
        on_batch: Callable[[BatchProgress], None] | None = None,
        on_hold: Callable[[int, throttle.Hold], None] | None = None,
    ) -> list[StepOutcome]:
        """Work every slice of the prepared run at once (a thread each), sleeping through holds.

        For the CLI and benchmarks. Takes the slices over (force), as a person running it means to.
        Returns every stint's outcome; finish() is called when all slices are done.
        """
        should_stop = should_stop or (lambda: False)
        outcomes: list[StepOutcome] = []
        lock = threading.Lock()
        slices = self.status().slices

        def drive(slice_no: int) -> None:
            owner = f"cli:{socket.gethostname()}:{os.getpid()}:{slice_no}"
            while True:
                outcome = self.work_slice(
                    slice_no, deadline_seconds=600, should_stop=should_stop, on_batch=on_batch, owner=owner, force=True
                )
                with lock:
                    outcomes.append(outcome)
                if outcome.status == "held":
                    if on_hold:
                        on_hold(slice_no, outcome.hold)
                    end = time.monotonic() + outcome.hold.seconds_left
                    while time.monotonic() < end and not should_stop():
                        time.sleep(min(0.2, max(0.0, end - time.monotonic())))
                    continue
                if outcome.status in ("time_up", "busy"):
                    continue
                return

        threads = [threading.Thread(target=drive, args=(row.slice_no,), daemon=True) for row in slices if not row.done]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.status().done:
            self.finish()
        return outcomes


class _Stint:
    """One work_slice call: the batch loop with its sizer, retries, throttle checks and counters."""

    def __init__(self, runner: BackfillRunner, target: Target, run, direction, slice_no, generation, started, deadline):
        self.runner, self.spec, self.target, self.run = runner, runner.spec, target, run
        self.direction, self.slice_no, self.generation = direction, slice_no, generation
        self.started, self.deadline = started, deadline
        self.builder = BatchSql(target, mode=rollback.mode(direction, run.capture), run_id=run.id)
        self.outcome = StepOutcome("time_up", slice_no, direction)
        self.held_s = 0.0
        self.dead_since_vacuum, self.live_rows, self.slice_count = 0, None, 1

    def loop(self, connection, should_stop, on_batch) -> psycopg.Connection:
        """Returns the connection it ends with (it may have reconnected)."""
        spec, outcome = self.spec, self.outcome
        current = bookkeeping.list_slices(connection, self.run.id, self.direction)[self.slice_no]
        sizer = BatchSizer(spec.batch, start=current.batch_size)
        failures, waiters, last_check = 0, 0, -math.inf
        done = current.done
        while True:
            outcome.batch_size = sizer.size
            if done:
                outcome.status = "done"
                return connection
            if should_stop():
                outcome.status = "stopped"
                return connection
            if time.monotonic() - self.started >= self.deadline:
                outcome.status = "time_up"
                return connection
            if time.monotonic() - last_check >= spec.throttle.check_every_s:
                last_check = time.monotonic()
                hold = self._throttle(connection, waiters)
                if hold:
                    bookkeeping.record_hold(
                        connection, self.run.id, self.direction, self.slice_no, hold.signal, hold.reason, hold.until
                    )
                    outcome.status, outcome.hold = "held", hold
                    return connection
            try:
                batch = self._batch(connection, sizer.size)
            except LeaseLost:
                raise
            except psycopg.errors.QueryCanceled as error:
                # statement_timeout: the batch was too big for the time allowed; split it and retry.
                if sizer.split():
                    outcome.splits += 1
                    continue
                failures += 1
                connection = self._failed(connection, error, failures)
            except TRANSIENT as error:
                failures += 1
                connection = self._failed(connection, error, failures)
            except psycopg.Error as error:
                outcome.status, outcome.error = "errored", _message(error, self.runner.dsn)
                self._record_failure(connection, outcome.error, failures + 1)
                return connection
            else:
                failures, waiters, done = 0, batch.waiters, batch.done
                sizer.observe(batch.scanned, batch.ms)
                outcome.rows += batch.rows
                outcome.batches += 1
                outcome.batch_ms.append(batch.ms)
                self._vacuum_own_dead_tuples(connection, batch.rows)
                if on_batch:
                    on_batch(self._progress(batch))
                continue
            if failures >= spec.retry.max_consecutive_failures:
                outcome.status = "errored"
                outcome.error = f"{failures} consecutive failures, last: {outcome.error}"
                return connection
            self._backoff(failures, should_stop)

    def _failed(self, connection, error, failures) -> psycopg.Connection:
        self.outcome.retries += 1
        self.outcome.error = _message(error, self.runner.dsn)
        if connection.closed or connection.broken:
            try:
                connection.close()
                connection = self.runner.connect()
            except psycopg.OperationalError as reconnect_error:
                self.outcome.error = _message(reconnect_error, self.runner.dsn)
                return connection  # still broken: the next attempt reconnects again
        self._record_failure(connection, self.outcome.error, failures)
        return connection

    def _record_failure(self, connection, message, count) -> None:
        try:
            bookkeeping.record_failure(
                connection, self.run.id, self.direction, self.slice_no, self.generation, message, count
            )
        except psycopg.Error:
            pass  # best effort: the failure is in the outcome anyway

    def _backoff(self, failures: int, should_stop) -> None:
        # Full jitter: workers that failed together (one lock, one restart) do not retry together.
        retry = self.spec.retry
        delay = random.uniform(0, min(retry.backoff_max_s, retry.backoff_base_s * 2 ** (failures - 1)))
        end = time.monotonic() + delay
        while time.monotonic() < end and not should_stop():
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def _vacuum_own_dead_tuples(self, connection, rows: int) -> None:
        """Every row we change leaves a dead tuple; the statistics report them up to a second late,
        which at full speed is a quarter of a table. So count our own, and vacuum on our share."""
        ratio = self.spec.throttle.dead_tuple_ratio
        if not self.spec.vacuum_between or ratio is None:
            return
        if self.live_rows is None:
            statement = sql.SQL(
                """SELECT greatest(c.reltuples, s.n_live_tup, 1)::bigint,
                          (SELECT count(*) FROM {} WHERE run_id = %s AND direction = %s)
                   FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = %s"""
            ).format(bookkeeping.table("backfill_slices"))
            row = connection.execute(statement, [self.run.id, self.direction, self.target.oid]).fetchone()
            self.live_rows, self.slice_count = row
        self.dead_since_vacuum += rows
        if self.dead_since_vacuum > max(self.spec.throttle.dead_tuple_min, ratio * self.live_rows / self.slice_count):
            if maintenance.vacuum(connection, self.target, light=True):
                self.outcome.vacuums += 1
            self.dead_since_vacuum = 0

    def _throttle(self, connection, waiters: int) -> throttle.Hold | None:
        limits = self.spec.throttle
        failing = throttle.check(connection, self.target, limits, lock_waiters=waiters)
        if self.spec.vacuum_between and any(signal == "dead_tuples" for signal, _ in failing):
            # Vacuum ourselves rather than wait for autovacuum: freed space is reused by the next
            # batches, which is what keeps the table from growing; hold only if it did not help.
            # No hold for dead tuples then: our vacuum (or another slice's, already at work) did
            # what can be done; what it could not remove is held by someone else's snapshot, and
            # the long-transaction signal speaks for that. The next check vacuums again if needed.
            failing = [(s, r) for s, r in failing if s != "dead_tuples"]
            if maintenance.vacuum(connection, self.target, light=True):
                self.outcome.vacuums += 1
        if not failing:
            return None
        signal, reason = failing[0]
        return throttle.hold(signal, reason, limits)

    def _batch(self, connection, limit: int) -> _Batch:
        """One transaction: fence, span, [capture], apply, checkpoint. Raises LeaseLost if fenced."""
        batch_limits = self.spec.batch
        started = time.perf_counter()
        waiters = 0
        with connection.transaction():
            connection.execute(
                "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                [f"{batch_limits.lock_timeout_ms}ms", f"{batch_limits.statement_timeout_ms}ms"],
            )
            row = bookkeeping.fence(connection, self.run.id, self.direction, self.slice_no, self.generation)
            if row.done:
                return _Batch(0, 0, 0.0, limit, None, None, True, 0, row.rows_done, row.rows_estimate)
            bounds = Bounds(after=row.last_key, through=row.stop_key, lo=row.lo, hi=row.hi)
            count, last_key, first_key = connection.execute(*self.builder.span(bounds, limit)).fetchone()
            rows = 0
            if not count:
                last_key = first_key = None  # (the one-column span returns [NULL] for an empty range)
            else:
                batch = Bounds(after=row.last_key, through=last_key, lo=row.lo, hi=row.hi)
                if self.builder.mode == "forward_capture":
                    connection.execute(*self.builder.capture(batch))
                rows = connection.execute(*self.builder.apply(batch)).rowcount
                if self.spec.throttle.lock_waiters is not None:
                    waiters = connection.execute(WAITERS_SQL).fetchone()[0]
            done = count < limit
            bookkeeping.checkpoint(
                connection,
                self.run.id,
                self.direction,
                self.slice_no,
                self.generation,
                last_key=last_key,
                rows=rows,
                done=done,
                batch_size=limit,
                lease_s=self.runner.lease_seconds,
            )
        ms = (time.perf_counter() - started) * 1000
        return _Batch(
            rows, count, ms, limit, first_key, last_key, done, waiters, row.rows_done + rows, row.rows_estimate
        )

    def _progress(self, batch: _Batch) -> BatchProgress:
        active = max(1e-6, time.monotonic() - self.started - self.held_s)
        rate = self.outcome.rows / active
        return BatchProgress(
            run_name=self.run.name,
            direction=self.direction,
            slice_no=self.slice_no,
            first_key=batch.first_key,
            last_key=batch.last_key,
            rows=batch.rows,
            scanned=batch.scanned,
            ms=batch.ms,
            batch_size=batch.limit,
            slice_rows_done=batch.slice_rows_done,
            slice_rows_estimate=batch.slice_rows_estimate,
            slice_done=batch.done,
            lock_waiters=batch.waiters,
            rows_per_s=rate,
            eta_seconds=0.0 if batch.done else eta_seconds(batch.slice_rows_done, batch.slice_rows_estimate, rate),
        )


def _message(error: Exception, dsn: str) -> str:
    from planner.pg.connect import scrub

    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return scrub(f"{type(error).__name__}: {text}", dsn)


def _difference(stored: dict, given: dict) -> str:
    changed = [name for name in sorted(set(stored) | set(given)) if stored.get(name) != given.get(name)]
    return ", ".join(f"{name} differs" for name in changed)


def stored_spec(dsn: str, name: str) -> BackfillSpec | None:
    """The spec a run was last prepared with (to resume or roll back by name alone); None if unknown."""
    with connect(dsn) as connection:
        run = bookkeeping.find_run(connection, name)
    return BackfillSpec.from_dict(run.spec) if run else None
