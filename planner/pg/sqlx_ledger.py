"""The `_sqlx_migrations` ledger of a target: status, apply and revert, recorded exactly as sqlx-cli 0.8.

Same table DDL, same advisory lock, same rows (version, description, success = TRUE, SHA-384
checksum, execution_time in nanoseconds, first -1 then updated), same rules (a dirty row or an
applied version missing from the directory stops everything; a changed file stops `apply`), so
`sqlx migrate info/run/revert` and the planner can take turns on one database. The difference is
how statements run: through the safe DDL executor, with lock_timeout and retries.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from planner.pg.ddl import DdlError, DdlEvent, DdlExecutor, DdlPolicy, Step, UnsupportedStatement
from planner.pg.ddl_statements import SqlSyntaxError, autocommit_reason, split_statements
from planner.sqlx.files import Migration, MigrationFile

TABLE = "_sqlx_migrations"
# Verbatim from sqlx-postgres/src/migrate.rs (ensure_migrations_table).
LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);
"""
APPLIED, PENDING, MODIFIED, MISSING_FILE, DIRTY = "applied", "pending", "modified", "missing file", "dirty"
LOCK_WAIT_S = 30.0


class LedgerError(Exception):
    """The ledger and the directory disagree, or a migration cannot be run as written."""


@dataclass(frozen=True)
class LedgerRow:
    version: int
    description: str
    installed_on: object
    success: bool
    checksum: bytes
    execution_time: int  # nanoseconds


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    description: str
    state: str  # APPLIED, PENDING, MODIFIED, MISSING_FILE or DIRTY
    migration: Migration | None
    row: LedgerRow | None

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "description": self.description,
            "state": self.state,
            "file": self.migration.up.path.name if self.migration else None,
            "installed_on": self.row.installed_on.isoformat() if self.row else None,
            "execution_time_ns": self.row.execution_time if self.row else None,
            "checksum": self.row.checksum.hex() if self.row else None,
            "file_checksum": self.migration.up.checksum.hex() if self.migration else None,
        }


@dataclass(frozen=True)
class Outcome:
    """One migration applied or reverted."""

    version: int
    description: str
    direction: str  # "apply" or "revert"
    elapsed_ns: int


def lock_id(database_name: str) -> int:
    """sqlx's advisory lock key: 0x3d32ad9e * CRC-32 (ISO-HDLC) of the database name."""
    return 0x3D32AD9E * zlib.crc32(database_name.encode("utf-8"))


def read_ledger(connection: psycopg.Connection) -> dict[int, LedgerRow]:
    """The rows of `_sqlx_migrations`, or {} when sqlx never ran here (nothing is created)."""
    exists = connection.execute("SELECT to_regclass(%s)", [TABLE]).fetchone()[0]
    if exists is None:
        return {}
    rows = connection.execute(
        "SELECT version, description, installed_on, success, checksum, execution_time "
        "FROM _sqlx_migrations ORDER BY version"
    ).fetchall()
    return {row[0]: LedgerRow(row[0], row[1], row[2], row[3], bytes(row[4]), row[5]) for row in rows}


def status(connection: psycopg.Connection, migrations: list[Migration]) -> list[MigrationStatus]:
    """Every version of the directory and of the ledger, with its state; read-only."""
    rows = read_ledger(connection)
    by_version = {m.version: m for m in migrations}
    result = []
    for version in sorted(set(rows) | set(by_version)):
        migration, row = by_version.get(version), rows.get(version)
        if row is None:
            state = PENDING
        elif not row.success:
            state = DIRTY
        elif migration is None:
            state = MISSING_FILE
        elif row.checksum != migration.up.checksum:
            state = MODIFIED
        else:
            state = APPLIED
        description = migration.description if migration else row.description
        result.append(MigrationStatus(version, description, state, migration, row))
    return result


def apply(
    connection: psycopg.Connection,
    migrations: list[Migration],
    *,
    policy: DdlPolicy | None = None,
    target_version: int | None = None,
    on_event: Callable[[DdlEvent], None] | None = None,
) -> list[Outcome]:
    """Apply pending migrations in version order (up to `target_version`), as `sqlx migrate run`."""
    if target_version is not None and target_version not in {m.version for m in migrations}:
        raise LedgerError(f"target version {target_version} is not in the directory")
    executor = DdlExecutor(connection, policy, on_event=on_event)
    with _migration_lock(connection):
        connection.execute(LEDGER_DDL)
        rows = _checked_rows(connection, migrations)
        for migration in migrations:
            row = rows.get(migration.version)
            if row is not None and row.checksum != migration.up.checksum:
                raise LedgerError(
                    f"{migration.up.path.name}: modified after it was applied (checksum differs from "
                    f"_sqlx_migrations); restore the file or write a new migration"
                )
        latest = max(rows, default=0)
        if target_version is not None and target_version < latest:
            raise LedgerError(f"target version {target_version} is older than the latest applied, {latest}")
        pending = [
            m for m in migrations if m.version not in rows and (target_version is None or m.version <= target_version)
        ]
        plans = [(m, _steps(m.up, executor)) for m in pending]  # every file checked before any runs
        # A fresh executor per file, so statement numbers in errors count from the file's start.
        return [_run(DdlExecutor(connection, policy, on_event=on_event), m, m.up, steps, "apply") for m, steps in plans]


def revert(
    connection: psycopg.Connection,
    migrations: list[Migration],
    *,
    policy: DdlPolicy | None = None,
    target_version: int | None = None,
    on_event: Callable[[DdlEvent], None] | None = None,
) -> list[Outcome]:
    """Run down files of applied migrations, newest first, as `sqlx migrate revert`.

    Without `target_version` only the newest one; with it, every one above it (0: all). Like sqlx,
    applied migrations without a down file are left alone.
    """
    if target_version not in (None, 0) and target_version not in {m.version for m in migrations}:
        raise LedgerError(f"target version {target_version} is not in the directory")
    executor = DdlExecutor(connection, policy, on_event=on_event)
    with _migration_lock(connection):
        connection.execute(LEDGER_DDL)
        rows = _checked_rows(connection, migrations)
        latest = max(rows, default=0)
        if target_version is not None and target_version > latest:
            raise LedgerError(f"target version {target_version} is newer than the latest applied, {latest}")
        chosen = [m for m in reversed(migrations) if m.down is not None and m.version in rows]
        chosen = chosen[:1] if target_version is None else [m for m in chosen if m.version > target_version]
        plans = [(m, _steps(m.down, executor)) for m in chosen]
        # A fresh executor per file, so statement numbers in errors count from the file's start.
        return [
            _run(DdlExecutor(connection, policy, on_event=on_event), m, m.down, steps, "revert") for m, steps in plans
        ]


def _checked_rows(connection: psycopg.Connection, migrations: list[Migration]) -> dict[int, LedgerRow]:
    rows = read_ledger(connection)
    dirty = [v for v, row in rows.items() if not row.success]
    if dirty:
        raise LedgerError(
            f"migration {dirty[0]} is partially applied (success = false in _sqlx_migrations); "
            "repair the database by hand, then delete that row"
        )
    known = {m.version for m in migrations}
    missing = [v for v in rows if v not in known]
    if missing:
        raise LedgerError(f"migration {missing[0]} was applied but is missing from the directory")
    return rows


def _steps(migration_file: MigrationFile, executor: DdlExecutor) -> list[Step]:
    """How a file runs: one transaction (with its ledger row), or statement by statement."""
    try:
        statements = split_statements(migration_file.sql)
    except SqlSyntaxError as error:
        raise LedgerError(f"{migration_file.path.name}: {error}") from None
    if migration_file.no_transaction:
        try:
            return executor.plan(statements)
        except UnsupportedStatement as error:
            raise LedgerError(f"{migration_file.path.name}: {error}") from None
    for number, statement in enumerate(statements, start=1):
        reason = autocommit_reason(statement.node, executor.server_version_num)
        if reason:
            raise LedgerError(
                f"{migration_file.path.name}: statement {number} ({reason}) cannot run inside a transaction; "
                f"make `-- no-transaction` the first line of the file and keep that statement alone in it"
            )
    try:
        executor.plan(statements)  # rejects BEGIN/COMMIT
    except UnsupportedStatement as error:
        raise LedgerError(f"{migration_file.path.name}: {error}") from None
    return [Step(statements=statements, transactional=True)]


def _run(executor: DdlExecutor, migration: Migration, migration_file: MigrationFile, steps, direction) -> Outcome:
    connection = executor.connection
    if direction == "apply":
        record = (
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) "
            "VALUES (%s, %s, TRUE, %s, -1)",
            (migration.version, migration.description, migration_file.checksum),
        )
    else:
        record = ("DELETE FROM _sqlx_migrations WHERE version = %s", (migration.version,))
    started = time.monotonic_ns()
    try:
        _execute(executor, migration_file, steps, record)
    except DdlError as error:  # name the file: the executor only knows statement numbers
        raise type(error)(f"{migration_file.path.name}: {error}", error.failed, error.results) from error
    elapsed = time.monotonic_ns() - started
    if direction == "apply":
        # As sqlx: the duration is known only after the commit, so it is written afterwards.
        connection.execute(
            "UPDATE _sqlx_migrations SET execution_time = %s WHERE version = %s", (elapsed, migration.version)
        )
    return Outcome(migration.version, migration.description, direction, elapsed)


def _execute(executor: DdlExecutor, migration_file: MigrationFile, steps: list[Step], record) -> None:
    connection = executor.connection
    if not any(step.statements for step in steps):  # a file of comments only: just the record
        with connection.transaction():
            connection.execute(*record)
    elif migration_file.no_transaction:
        for step in steps:
            executor.run_step(step)
        connection.execute(*record)
    else:
        # The ledger row commits with the migration, or neither does (sqlx issue #1966).
        executor.run_step(steps[0], before_commit=lambda c: c.execute(*record))


@contextmanager
def _migration_lock(connection: psycopg.Connection):
    """The advisory lock sqlx takes, so the planner and sqlx (or the app's migrate!) never overlap."""
    key = lock_id(connection.info.dbname)
    deadline = time.monotonic() + LOCK_WAIT_S
    while not connection.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
        if time.monotonic() > deadline:
            raise LedgerError(f"another migration run holds the sqlx migration lock (advisory lock {key})")
        time.sleep(0.2)
    try:
        yield
    finally:
        if not connection.closed:
            connection.execute("SELECT pg_advisory_unlock(%s)", [key])
