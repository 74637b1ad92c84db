"""Dynamic lock trace: run a migration on a schema-only shadow copy and read what PostgreSQL did.

    trace(conninfo, sql_text) -> [TracedStatement(line, locks, rewrites, scans, error), ...]

The statements run in ONE transaction in a shadow database (planner/pg/shadow.py), never in the
target; the transaction is rolled back and the shadow dropped at the end. Each statement runs in
its own savepoint (a failing one is reported and rolled back, the rest still run). After each:
  * locks: pg_locks of this backend, locktype 'relation', for relations that existed before the
    file ran (tables, partitioned tables, views, materialized views, by OID), read first so that
    our own reads add nothing. Locks are held to the end of the transaction, so a mode an earlier
    statement already took on a table shows up only once: `locks` holds the modes this statement
    added (strongest per table) and `held` the modes earlier statements already held on them.
  * rewrites: pg_class.relfilenode changed (TRUNCATE swaps the file too but copies nothing, so a
    TRUNCATE is neither a rewrite nor a scan).
  * scans: pg_stat_xact_user_tables.seq_scan grew (the shadow is empty, so tuple counts say
    nothing; the scan counter counts a DDL's verification and index-build scans too). Where the
    real table is large the planner may choose an index for a query it scans on the empty shadow,
    so scans of DML statements are an upper bound.
Statements PostgreSQL refuses inside a transaction block (CONCURRENTLY, VACUUM, …) and transaction
control statements are reported as not traced. No Django here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import errors

from planner.pg.connect import connect, scrub
from planner.pg.shadow import shadow_database
from planner.sql.catalog import qualify
from planner.sql.locks import Lock
from planner.sql.source import split

NOT_IN_TRANSACTION = "not traced (cannot run in a transaction)"
TRANSACTION_CONTROL = "not traced (transaction control)"
NOT_PARSED = "not traced (does not parse)"


@dataclass
class TracedStatement:
    line: int
    locks: dict[str, str] = field(default_factory=dict)  # table → strongest mode this statement added
    rewrites: list[str] = field(default_factory=list)
    scans: list[str] = field(default_factory=list)
    error: str | None = None  # PostgreSQL's error, or why the statement was not traced
    held: dict[str, list[str]] = field(default_factory=dict)  # table → modes earlier statements held
    traced: bool = True

    def to_dict(self) -> dict:
        """The `measured` entry of the analyzer's JSON (see planner.sql.measured)."""
        result = {"locks": dict(self.locks), "rewrites": list(self.rewrites), "scans": list(self.scans)}
        result["traced"] = self.traced
        if self.held:
            result["held"] = {table: list(modes) for table, modes in self.held.items()}
        if self.error:
            result["error"] = self.error
        return result


def strongest(modes) -> str:
    return max(modes, key=Lock.from_label)


_RELATIONS = """
SELECT c.oid::bigint, n.nspname, c.relname, c.relfilenode::bigint
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg\\_%%'
"""
_LOCKS = """
SELECT relation::bigint, mode FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'relation'
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_SCANS = "SELECT relid::bigint, coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables"
_FILES = "SELECT oid::bigint, relfilenode::bigint FROM pg_class WHERE oid = ANY(%s)"


def _modes(rows, names: dict[int, str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for oid, mode in rows:
        lock = Lock.from_pg_locks(mode)
        if oid in names and lock is not None:
            found.setdefault(names[oid], []).append(lock.label)
    return found


def _setup(connection: psycopg.Connection, setup_sql: str) -> None:
    """Run statements that come before the file (earlier phases), unmeasured; failures are skipped."""
    for chunk in split(setup_sql):
        if chunk.node is None or type(chunk.node).__name__ == "TransactionStmt":
            continue
        connection.execute("SAVEPOINT planner_setup")
        try:
            connection.execute(chunk.text.encode())  # on the shadow database only
        except psycopg.Error:
            connection.execute("ROLLBACK TO SAVEPOINT planner_setup")
        else:
            connection.execute("RELEASE SAVEPOINT planner_setup")


def trace_on(connection: psycopg.Connection, sql_text: str, setup_sql: str = "") -> list[TracedStatement]:
    """Trace the file on `connection` (a shadow database!) in one transaction, then roll it back.

    `setup_sql` runs first in the same transaction, unmeasured (e.g. earlier phases of a plan not
    yet applied to the target); what it creates counts as pre-existing."""
    results: list[TracedStatement] = []
    connection.execute("BEGIN")
    try:
        connection.execute("SET LOCAL lock_timeout = '5s'")
        _setup(connection, setup_sql)
        names: dict[int, str] = {}
        filenodes: dict[int, int] = {}
        for oid, nspname, relname, filenode in connection.execute(_RELATIONS):
            names[oid] = qualify(nspname, relname)
            filenodes[oid] = filenode
        for chunk in split(sql_text):
            result = TracedStatement(chunk.line)
            results.append(result)
            if chunk.node is None:
                result.traced, result.error = False, NOT_PARSED
                continue
            if type(chunk.node).__name__ == "TransactionStmt":
                result.traced, result.error = False, TRANSACTION_CONTROL
                continue
            _trace_one(connection, chunk, result, names, filenodes)
    finally:
        connection.execute("ROLLBACK")
    return results


def _trace_one(connection, chunk, result: TracedStatement, names, filenodes) -> None:
    held_before = _modes(connection.execute(_LOCKS).fetchall(), names)
    scans_before = dict(connection.execute(_SCANS).fetchall())
    files_before = dict(connection.execute(_FILES, [list(filenodes)]).fetchall())
    connection.execute("SAVEPOINT planner_trace")
    try:
        connection.execute(chunk.text.encode())  # the user's statement, on the shadow database only
    except errors.ActiveSqlTransaction:
        connection.execute("ROLLBACK TO SAVEPOINT planner_trace")
        result.traced, result.error = False, NOT_IN_TRANSACTION
        return
    except psycopg.Error as error:
        connection.execute("ROLLBACK TO SAVEPOINT planner_trace")
        result.error = (error.diag.message_primary or str(error)).strip()
        return
    held_after = _modes(connection.execute(_LOCKS).fetchall(), names)
    scans_after = dict(connection.execute(_SCANS).fetchall())
    files_after = dict(connection.execute(_FILES, [list(filenodes)]).fetchall())
    connection.execute("RELEASE SAVEPOINT planner_trace")
    for table, modes in sorted(held_after.items()):
        added = [mode for mode in modes if mode not in held_before.get(table, [])]
        if added:
            result.locks[table] = strongest(added)
        if table in held_before:
            result.held[table] = sorted(set(held_before[table]), key=Lock.from_label)
    # TRUNCATE swaps in a new, empty file and bumps the scan counter, but reads and copies nothing.
    truncate = type(chunk.node).__name__ == "TruncateStmt"
    for oid, table in sorted(names.items(), key=lambda item: item[1]):
        if truncate:
            break
        if oid in files_before and oid in files_after and files_after[oid] != files_before[oid]:
            result.rewrites.append(table)
        if scans_after.get(oid, 0) > scans_before.get(oid, 0):
            result.scans.append(table)


def trace(conninfo: str, sql_text: str, *, setup_sql: str = "", timeout_seconds: float = 30) -> list[TracedStatement]:
    """Trace `sql_text` on a fresh schema-only shadow copy of the target (dropped afterwards).

    `timeout_seconds` bounds the dump, the restore and each statement (statement_timeout)."""
    with shadow_database(conninfo, timeout=timeout_seconds) as shadow:
        try:
            timeout_ms = int(timeout_seconds * 1000)
            with connect(shadow, lock_timeout_ms=5000, statement_timeout_ms=timeout_ms) as connection:
                return trace_on(connection, sql_text, setup_sql)
        except psycopg.Error as error:
            from planner.pg.shadow import ShadowError

            raise ShadowError(f"trace failed: {scrub(str(error).strip(), conninfo)}") from None
