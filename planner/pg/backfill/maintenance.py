"""Table size and VACUUM, for growth reports and for keeping dead tuples from piling up mid-run."""

from __future__ import annotations

import psycopg
from psycopg import sql

from planner.pg.backfill.validate import Target


def table_bytes(connection, target: Target) -> int:
    """Heap + TOAST + maps (not indexes): what an UPDATE-everything doubles and VACUUM lets us reuse."""
    return connection.execute("SELECT pg_table_size(%s)", [target.oid]).fetchone()[0]


def vacuum(connection, target: Target, *, analyze: bool = False, light: bool = False) -> bool:
    """VACUUM the table outside any transaction; False if another vacuum is at work on it (we never queue).

    `light` (between batches): only free heap space for the next batches to reuse. It skips index
    cleanup (the dead tuples' 4-byte line pointers stay until the final VACUUM) and the truncation
    at the end, which would take an ACCESS EXCLUSIVE lock, however briefly, in front of the app.
    """
    busy = connection.execute("SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = %s", [target.oid])
    if busy.fetchone()[0]:
        return False
    options = [sql.SQL("ANALYZE")] if analyze else []
    if connection.info.server_version >= 120000:
        options.append(sql.SQL("SKIP_LOCKED"))
        if light:
            options += [sql.SQL("INDEX_CLEANUP OFF"), sql.SQL("TRUNCATE OFF")]
    statement = sql.SQL("VACUUM {}{}").format(
        sql.SQL("({}) ").format(sql.SQL(", ").join(options)) if options else sql.SQL(""), target.table
    )
    # A vacuum of a big table may run for minutes; it takes only SHARE UPDATE EXCLUSIVE, so no
    # application statement waits on it. Session-level settings: VACUUM cannot run in a transaction.
    connection.execute("SET statement_timeout = 0")
    try:
        connection.execute(statement)
        return True
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        connection.execute("RESET statement_timeout")
