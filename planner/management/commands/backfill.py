"""`manage.py backfill`: run a batched, exactly-once backfill in the foreground, for scripts and benchmarks.

Thin: builds a BackfillSpec from the arguments and drives planner.pg.backfill's runner. It needs
only the target database: no system checks, no ORM, so no planner store or embedded server starts.
Running it again with the same --name resumes where the last run stopped (also after kill -9).
Bad input: one line on stderr, exit code 2. A run that errors or is interrupted: exit code 1.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
import time

import psycopg
from django.core.management.base import BaseCommand, CommandError

from planner.pg.backfill import (
    BackfillError,
    BackfillRunner,
    BackfillSpec,
    BatchLimits,
    RunNotFound,
    SpecError,
    ThrottleLimits,
    drop_schema,
)
from planner.pg.backfill.runner import stored_spec
from planner.pg.connect import connect, scrub


class Command(BaseCommand):
    help = "Backfill a column in batches: exactly once per row, resumable by --name, throttled on database health."
    requires_system_checks = []
    requires_migrations_checks = False

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def one_line_error(message):  # argparse prints the whole usage; scripts want one line
            sys.stderr.write(f"error: {message} (see --help)\n")
            sys.exit(2)

        parser.error = one_line_error
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--dsn", required=True, help="target database (libpq URL or key=value string)")
        parser.add_argument("--name", help="run name; the same name resumes the same run")
        parser.add_argument("--table", help="table to backfill, optionally schema-qualified")
        parser.add_argument("--set", dest="set_", metavar="SET", help='assignments, e.g. "a = lower(b), n = n + 1"')
        parser.add_argument("--where", help="only rows matching this condition")
        parser.add_argument("--key", help="unique NOT NULL key columns, comma-separated (default: primary key)")
        size = parser.add_mutually_exclusive_group()
        size.add_argument("--batch-size", type=int, help="fixed rows per batch (halved on statement timeouts)")
        size.add_argument("--target-batch-ms", type=float, help="adaptive batches aiming at this duration (100)")
        parser.add_argument("--min-batch-size", type=int, default=BatchLimits.min)
        parser.add_argument("--max-batch-size", type=int, default=BatchLimits.max)
        parser.add_argument("--lock-timeout-ms", type=int, default=BatchLimits.lock_timeout_ms)
        parser.add_argument("--statement-timeout-ms", type=int, default=BatchLimits.statement_timeout_ms)
        parser.add_argument("--slices", type=int, default=1, help="parallel key-range slices (threads)")
        parser.add_argument("--capture-before-images", action="store_true", help="save changed columns for rollback")
        parser.add_argument("--rollback", action="store_true", help="roll the named run back")
        parser.add_argument("--reverse-set", help="assignments undoing --set, for rollback without before-images")
        parser.add_argument("--reverse-where", help="condition for --reverse-set")
        parser.add_argument("--health-query", help="SELECT that must return true for batches to go on")
        parser.add_argument("--no-throttle", action="store_true", help="ignore database health signals")
        parser.add_argument(
            "--no-vacuum", action="store_true", help="never VACUUM the table (between batches or after)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
        parser.add_argument(
            "--drop-bookkeeping", action="store_true", help="remove the planner_bookkeeping schema and exit"
        )

    def handle(self, *args, **options):
        dsn = options["dsn"]
        try:
            if options["drop_bookkeeping"]:
                with connect(dsn) as connection:
                    existed = drop_schema(connection)
                self.stdout.write("bookkeeping schema dropped" if existed else "no bookkeeping schema to drop")
                return
            if not options["name"]:
                raise CommandError("--name is required", returncode=2)
            runner = BackfillRunner(dsn, self._spec(options), options["name"])
            info = runner.prepare(slices=options["slices"])
            if options["rollback"]:
                info = runner.start_rollback()
        except (SpecError, RunNotFound) as error:
            raise CommandError(str(error), returncode=2) from None
        except psycopg.OperationalError as error:
            raise CommandError(f"cannot reach the target database: {_line(error, dsn)}", returncode=2) from None
        self._run(runner, info, options)

    def _spec(self, options) -> BackfillSpec:
        """From the arguments; a resumed run may omit --table/--set (its stored spec is used)."""
        stored = None
        if not options["table"] or not options["set_"]:
            stored = stored_spec(options["dsn"], options["name"])
            if stored is None:
                raise CommandError("--table and --set are required for a new run", returncode=2)
        fixed = options["batch_size"]
        batch = BatchLimits(
            initial=BatchLimits.initial if fixed is None else fixed,
            min=options["min_batch_size"] if fixed is None else min(options["min_batch_size"], max(fixed, 1)),
            max=options["max_batch_size"] if fixed is None else fixed,
            target_ms=BatchLimits.target_ms if options["target_batch_ms"] is None else options["target_batch_ms"],
            adaptive=fixed is None,
            lock_timeout_ms=options["lock_timeout_ms"],
            statement_timeout_ms=options["statement_timeout_ms"],
        )
        if fixed is None and not batch.min <= batch.initial <= batch.max:
            batch = dataclasses.replace(batch, initial=max(batch.min, min(batch.initial, batch.max)))
        throttle = ThrottleLimits(health_query=options["health_query"])
        if options["no_throttle"]:
            throttle = ThrottleLimits(
                replica_lag_s=None,
                archive_backlog_files=None,
                autovacuum_running=False,
                long_transaction_s=None,
                lock_waiters=None,
                dead_tuple_ratio=None,
                health_query=options["health_query"],
            )
        key = tuple(part.strip() for part in options["key"].split(",")) if options["key"] else None
        return BackfillSpec(
            table=options["table"] or stored.table,
            set=options["set_"] or stored.set,
            where=options["where"] if options["table"] else stored.where,
            key=key if options["table"] else stored.key,
            capture_before_images=options["capture_before_images"] or bool(stored and stored.capture_before_images),
            reverse_set=options["reverse_set"] or (stored.reverse_set if stored else None),
            reverse_where=options["reverse_where"] or (stored.reverse_where if stored else None),
            batch=batch,
            throttle=throttle,
            vacuum_between=not options["no_vacuum"],
            vacuum_after=not options["no_vacuum"],
        )

    def _run(self, runner: BackfillRunner, info, options) -> None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        durations: list[float] = []
        rows = [0]
        last_report = [time.monotonic()]
        lock = threading.Lock()

        def on_batch(progress):
            with lock:
                durations.append(progress.ms)
                rows[0] += progress.rows
                if not options["json"] and time.monotonic() - last_report[0] > 2:
                    last_report[0] = time.monotonic()
                    self.stderr.write(
                        f"{rows[0]:,} rows, batch of {progress.batch_size:,} in {progress.ms:.0f} ms"
                        f" (slice {progress.slice_no}, up to key {','.join(progress.last_key or [])})"
                    )

        def on_hold(slice_no, hold):
            self.stderr.write(f"slice {slice_no} {hold}")

        started = time.monotonic()
        try:
            outcomes = runner.run_foreground(should_stop=stop.is_set, on_batch=on_batch, on_hold=on_hold)
        except BackfillError as error:
            raise CommandError(str(error), returncode=1) from None
        seconds = time.monotonic() - started
        status = runner.status()
        summary = {
            "rows": rows[0],
            "batches": len(durations),
            "seconds": round(seconds, 3),
            "rows_per_s": round(rows[0] / seconds, 1) if seconds else 0.0,
            "max_batch_ms": round(max(durations), 1) if durations else 0.0,
            "p99_batch_ms": round(_percentile(durations, 99), 1) if durations else 0.0,
            "resumed": info.resumed,
            "direction": status.direction,
            "slices": len(status.slices),
            "done": status.done,
            "rows_done_total": status.rows_done,
            "holds": sum(1 for outcome in outcomes if outcome.status == "held"),
            "table_bytes_before": status.table_bytes_before,
            "table_bytes_after": status.table_bytes_after,
        }
        errors = [outcome.error for outcome in outcomes if outcome.status == "errored"]
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                f"backfill {runner.run_name} ({status.direction}): {summary['rows']:,} rows"
                f" in {summary['batches']} batches, {seconds:.1f} s ({summary['rows_per_s']:,.0f} rows/s),"
                f" max batch {summary['max_batch_ms']:.0f} ms"
                + (", resumed" if info.resumed else "")
                + ("" if status.done else ", not finished")
            )
        if errors:
            raise CommandError(f"errored: {errors[0]}; fix the cause and run again with --name to resume", returncode=1)
        if not status.done:
            raise CommandError("stopped; run again with the same --name to resume", returncode=1)


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(percent / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _line(error: Exception, dsn: str) -> str:
    text = str(error).strip().splitlines()
    return scrub(text[0] if text else type(error).__name__, dsn)
