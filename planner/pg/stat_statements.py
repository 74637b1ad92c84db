"""Reading the application's most frequent statements from a target's pg_stat_statements.

The extension must be in `shared_preload_libraries` and created in the target database
(`CREATE EXTENSION pg_stat_statements`); the planner never creates it. Statements are normalised
by PostgreSQL (constants become $1, $2 …), so they prepare as they are. Only the target
database's statements are read, most called first; which of them are the application's is
decided by `planner.sql.queries`.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from planner.pg.connect import connect, scrub


class StatStatementsUnavailable(RuntimeError):
    """The extension is missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class Statement:
    queryid: int
    sql: str
    calls: int


def top_statements(conninfo: str, limit: int = 50) -> list[Statement]:
    """Up to `limit` statements of the target's database, most called first (read-only)."""
    try:
        with connect(conninfo, lock_timeout_ms=1000, statement_timeout_ms=15_000) as connection:
            schema = connection.execute(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname = 'pg_stat_statements'"
            ).fetchone()
            if schema is None:
                database = connection.info.dbname
                raise StatStatementsUnavailable(
                    f"pg_stat_statements is not installed in database {database}: add it to "
                    "shared_preload_libraries, restart, and run CREATE EXTENSION pg_stat_statements there"
                )
            view = sql.Identifier(schema[0], "pg_stat_statements")
            rows = connection.execute(
                sql.SQL(
                    "SELECT queryid, query, calls FROM {} WHERE dbid = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()) AND queryid IS NOT NULL "
                    "ORDER BY calls DESC, queryid LIMIT %s"
                ).format(view),
                [limit],
            ).fetchall()
    except psycopg.Error as error:
        raise StatStatementsUnavailable(
            f"cannot read pg_stat_statements: {scrub(str(error).strip(), conninfo).splitlines()[0]}"
        ) from None
    return [Statement(queryid=int(queryid), sql=query, calls=int(calls)) for queryid, query, calls in rows]
