"""Database-health signals read between batches; a failing one becomes a Hold, never a sleep here.

Each signal is one small query returning a readable reason ("replica lag 12 s > 5 s") or None.
Signals the server will not show us (no privilege, not a primary, too old) are skipped, not fatal:
a throttle must never be the reason a backfill cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from planner.pg.backfill.spec import ThrottleLimits
from planner.pg.backfill.validate import Target, user_sql

APP_PREFIX = "planner-backfill"


@dataclass(frozen=True)
class Hold:
    """Work on this slice should wait until `until` because of `reason` (from signal `signal`)."""

    signal: str
    reason: str
    until: datetime

    @property
    def seconds_left(self) -> float:
        return max(0.0, (self.until - datetime.now(UTC)).total_seconds())

    def __str__(self) -> str:
        return f"on hold until {self.until:%H:%M:%S} UTC because {self.reason}"


def check(connection, target: Target, limits: ThrottleLimits, *, lock_waiters: int = 0) -> list[tuple[str, str]]:
    """Every failing signal as (signal, reason), cheapest first; [] when the database is healthy."""
    failing = []
    for signal, probe in (
        ("lock_waits", lambda: _lock_waits(lock_waiters, limits.lock_waiters)),
        ("dead_tuples", lambda: dead_tuples(connection, target, limits)),
        ("autovacuum", lambda: _autovacuum(connection, target, limits.autovacuum_running)),
        ("long_transaction", lambda: _long_transaction(connection, limits.long_transaction_s)),
        ("replica_lag", lambda: _replica_lag(connection, limits.replica_lag_s)),
        ("archive_backlog", lambda: _archive_backlog(connection, limits.archive_backlog_files)),
        ("health_query", lambda: _health_query(connection, target.health_query_sql)),
    ):
        reason = probe()
        if reason:
            failing.append((signal, reason))
    return failing


def hold(signal: str, reason: str, limits: ThrottleLimits) -> Hold:
    return Hold(signal, reason, datetime.now(UTC) + timedelta(seconds=limits.hold_s))


def _optional(connection, statement, params=()):
    """Run a monitoring query; None when the server does not let us see it."""
    try:
        with connection.transaction():
            return connection.execute(statement, params).fetchall()
    except (
        psycopg.errors.InsufficientPrivilege,
        psycopg.errors.UndefinedFunction,
        psycopg.errors.ObjectNotInPrerequisiteState,
    ):
        return None
    except psycopg.errors.FeatureNotSupported:
        return None


def _lock_waits(waiters: int, limit: int | None) -> str | None:
    if limit is not None and waiters > limit:
        return f"{waiters} sessions waited for our last batch's row locks > {limit}"
    return None


def dead_tuples(connection, target: Target, limits: ThrottleLimits) -> str | None:
    if limits.dead_tuple_ratio is None:
        return None
    row = connection.execute(
        "SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables WHERE relid = %s", [target.oid]
    ).fetchone()
    if not row:
        return None
    dead, live = row
    ratio = dead / max(1, dead + live)
    if dead >= limits.dead_tuple_min and ratio > limits.dead_tuple_ratio:
        return f"dead tuples {ratio:.0%} of {target.display} > {limits.dead_tuple_ratio:.0%} ({dead} dead)"
    return None


def _autovacuum(connection, target: Target, enabled: bool) -> str | None:
    if not enabled:
        return None
    rows = _optional(
        connection,
        """SELECT p.phase FROM pg_stat_progress_vacuum p JOIN pg_stat_activity a USING (pid)
           WHERE p.relid = %s AND a.backend_type = 'autovacuum worker'""",
        [target.oid],
    )
    if rows:
        return f"autovacuum running on {target.display} ({rows[0][0]})"
    return None


def _long_transaction(connection, limit_s: float | None) -> str | None:
    if limit_s is None:
        return None
    # Only this database: since PostgreSQL 14 other databases do not hold back our table's vacuum.
    row = connection.execute(
        """SELECT pid, extract(epoch FROM clock_timestamp() - xact_start)::float8, state FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
             AND xact_start < clock_timestamp() - make_interval(secs => %s)
             AND application_name NOT LIKE %s
           ORDER BY xact_start LIMIT 1""",
        [limit_s, APP_PREFIX + "%"],
    ).fetchone()
    if row:
        pid, age, state = row
        return f"a transaction has been open for {age:.0f} s > {limit_s:g} s (pid {pid}, {state})"
    return None


def _replica_lag(connection, limit_s: float | None) -> str | None:
    if limit_s is None:
        return None
    rows = _optional(
        connection,
        """SELECT application_name, extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication
           WHERE replay_lag IS NOT NULL ORDER BY replay_lag DESC LIMIT 1""",
    )
    if rows and rows[0][1] > limit_s:
        name, lag = rows[0]
        return f"replica lag {lag:.0f} s > {limit_s:g} s ({name or 'unnamed replica'})"
    return None


def _archive_backlog(connection, limit_files: int | None) -> str | None:
    if limit_files is None:
        return None
    if connection.execute("SELECT current_setting('archive_mode')").fetchone()[0] == "off":
        return None
    rows = _optional(connection, "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%%.ready'")
    if rows is None:
        # Without pg_monitor: segments between the last archived one and the current one.
        rows = _optional(
            connection,
            """SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 9, 16))::bit(64)::bigint
                    - ('x' || substr(last_archived_wal, 9, 16))::bit(64)::bigint
               FROM pg_stat_archiver WHERE last_archived_wal ~ '^[0-9A-F]{24}$'""",
        )
    if rows and rows[0][0] is not None and rows[0][0] > limit_files:
        return f"WAL archive backlog {rows[0][0]} files > {limit_files}"
    return None


def _health_query(connection, query: str | None) -> str | None:
    if not query:
        return None
    try:
        with connection.transaction(force_rollback=True):
            connection.execute("SET TRANSACTION READ ONLY")
            connection.execute("SET LOCAL statement_timeout = '5s'")
            row = connection.execute(user_sql(query), []).fetchone()
    except psycopg.Error as error:
        return f"health query failed: {str(error).strip().splitlines()[0]}"
    value = row[0] if row else None
    if value is not True:
        return f"health query returned {value!r}, not true"
    return None


def snapshot(connection, target: Target) -> dict:
    """The health signals' current values, for the run page (None where the server hides them)."""
    lag = _optional(
        connection,
        "SELECT count(*), max(extract(epoch FROM replay_lag))::float8 FROM pg_stat_replication",
    )
    dead, live = connection.execute(
        "SELECT coalesce(n_dead_tup, 0), coalesce(n_live_tup, 0) FROM pg_stat_user_tables WHERE relid = %s",
        [target.oid],
    ).fetchone() or (0, 0)
    waiters = connection.execute(
        "SELECT count(*) FROM pg_locks WHERE relation = %s AND NOT granted", [target.oid]
    ).fetchone()[0]
    oldest = connection.execute(
        """SELECT max(extract(epoch FROM clock_timestamp() - xact_start))::float8 FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
             AND application_name NOT LIKE %s""",
        [APP_PREFIX + "%"],
    ).fetchone()[0]
    return {
        "replicas": lag[0][0] if lag else None,
        "replica_lag_s": lag[0][1] if lag else None,
        "dead_tuples": dead,
        "dead_tuple_ratio": dead / max(1, dead + live),
        "lock_waiters": waiters,
        "oldest_transaction_s": oldest,
    }
