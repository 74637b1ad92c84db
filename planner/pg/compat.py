"""Will the application's queries still work? Each phase boundary of a plan, rebuilt on a shadow copy.

`check_plan(conninfo, steps, queries)` makes a schema-only shadow copy of the target
(`pg/shadow.py`), rewinds it to the schema before the plan (down SQL of the phases that already ran,
in reverse), then applies the phases' up SQL one at a time. Before the first phase and after each
one, every query is prepared on the shadow (the protocol's Parse + Describe: nothing executes, the
copy holds no rows anyway) and, when sqlx recorded what the query returns, the result columns are
compared with that: name, type, and nullability where it comes straight from a table column.

A query breaks when it does not prepare, or when its result columns no longer match what the
application decodes (another column count, name or type; a column sqlx saw as NOT NULL that can
now be NULL). A parameter whose inferred type changed is a warning: PostgreSQL casts the value the
application sends. The shadow is dropped whatever happens; the target is only read (by pg_dump).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import pq

from planner.pg.connect import scrub
from planner.pg.ddl_statements import SqlSyntaxError, split_statements
from planner.pg.shadow import shadow_database
from planner.sql.queries import missing_column_table

STATEMENT_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Step:
    """A phase as the check needs it; `done` when it already ran on the target."""

    key: str
    position: int
    name: str
    kind: str
    up_sql: str
    down_sql: str
    done: bool = False

    @property
    def label(self) -> str:
        return f"phase {self.position} ({self.kind})"


@dataclass(frozen=True)
class Query:
    key: str
    sql: str
    describe: dict | None = None  # {"columns": [{name, type, nullable}], "parameters": [types]}


@dataclass(frozen=True)
class Shape:
    """What PostgreSQL says a prepared query returns and takes."""

    columns: tuple[tuple[str, str, bool | None], ...]  # (name, typname, nullable or None if unknown)
    parameters: tuple[str, ...]


class PrepareFailed(Exception):
    """PostgreSQL refused to prepare the query; the message is its own."""


def describe(connection: psycopg.Connection, sql: str) -> Shape:
    """Parse and describe `sql` as an unnamed prepared statement on `connection` (autocommit)."""
    pgconn = connection.pgconn
    prepared = pgconn.prepare(b"", sql.encode())
    if prepared.status != pq.ExecStatus.COMMAND_OK:
        raise PrepareFailed(_message(prepared))
    described = pgconn.describe_prepared(b"")
    if described.status != pq.ExecStatus.COMMAND_OK:
        raise PrepareFailed(_message(described))
    fields = [
        (described.fname(i).decode(), described.ftype(i), described.ftable(i), described.ftablecol(i))
        for i in range(described.nfields)
    ]
    parameter_oids = [described.param_type(i) for i in range(described.nparams)]
    names = _type_names(connection, {oid for _, oid, _, _ in fields} | set(parameter_oids))
    not_null = _not_null(connection, {(table, column) for _, _, table, column in fields if table})
    columns = tuple(
        (name, names.get(oid, f"oid {oid}"), (not not_null[(table, column)]) if (table, column) in not_null else None)
        for name, oid, table, column in fields
    )
    return Shape(columns=columns, parameters=tuple(names.get(oid, f"oid {oid}") for oid in parameter_oids))


def _message(result) -> str:
    primary = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
    text = primary.decode(errors="replace") if primary else result.error_message.decode(errors="replace").strip()
    hint = result.error_field(pq.DiagnosticField.MESSAGE_HINT)
    return text + (f" ({hint.decode(errors='replace')})" if hint else "")


def _type_names(connection: psycopg.Connection, oids: set[int]) -> dict[int, str]:
    if not oids:
        return {}
    rows = connection.execute("SELECT oid::int8, typname FROM pg_type WHERE oid = ANY(%s::oid[])", [sorted(oids)])
    return dict(rows.fetchall())


def _not_null(connection: psycopg.Connection, columns: set[tuple[int, int]]) -> dict[tuple[int, int], bool]:
    if not columns:
        return {}
    tables = sorted({table for table, _ in columns})
    rows = connection.execute(
        "SELECT attrelid::int8, attnum::int4, attnotnull FROM pg_attribute WHERE attrelid = ANY(%s::oid[]) "
        "AND attnum > 0",
        [tables],
    )
    return {(table, column): flag for table, column, flag in rows if (table, column) in columns}


def compare(expected: dict | None, shape: Shape) -> tuple[list[str], list[str]]:
    """(reasons it breaks, warnings) of a query that prepared, against what the application expects."""
    if not expected:
        return [], []
    reasons: list[str] = []
    wanted = expected.get("columns", [])
    if len(wanted) != len(shape.columns):
        reasons.append(f"returns {len(shape.columns)} columns; the application expects {len(wanted)}")
    for position, (column, (name, typname, nullable)) in enumerate(zip(wanted, shape.columns, strict=False), 1):
        label = f"column {position} ({column['name']})"
        if name != column["name"]:
            reasons.append(f"{label} is now named {name}")
        if typname != column["type"]:
            reasons.append(f"{label} is now of type {typname}; the application decodes {column['type']}")
        if column.get("nullable") is False and nullable is True:
            reasons.append(f"{label} can now be NULL; the application decodes it as NOT NULL")
    warnings = [
        f"parameter ${position} is now inferred as {now}, was {before}"
        for position, (before, now) in enumerate(zip(expected.get("parameters", []), shape.parameters, strict=False), 1)
        if before != now
    ]
    return reasons, warnings


def check_queries(connection: psycopg.Connection, queries: Iterable[Query]) -> dict[str, dict]:
    """{query key: {"state": ok|broken|warning, "reasons": [...], "warnings": [...]}} on this schema."""
    results = {}
    for query in queries:
        try:
            shape = describe(connection, query.sql)
        except PrepareFailed as error:
            reason = missing_column_table(query.sql, str(error))
            results[query.key] = {"state": "broken", "reasons": [reason], "warnings": []}
            continue
        reasons, warnings = compare(query.describe, shape)
        state = "broken" if reasons else "warning" if warnings else "ok"
        results[query.key] = {"state": state, "reasons": reasons, "warnings": warnings}
    return results


class ApplyFailed(Exception):
    pass


def apply_sql(connection: psycopg.Connection, text: str) -> None:
    """Run a phase's SQL statement by statement (autocommit: CONCURRENTLY works on the empty copy)."""
    try:
        statements = split_statements(text)
    except SqlSyntaxError as error:
        raise ApplyFailed(str(error)) from None
    for statement in statements:
        try:
            connection.execute(statement.text)
        except psycopg.Error as error:
            raise ApplyFailed(f"{statement.text[:80]}: {str(error).strip().splitlines()[0]}") from None


def check_plan(conninfo: str, steps: list[Step], queries: list[Query], *, timeout: float = 60) -> dict:
    """Check every query before the plan and after each step, on a shadow copy of the target.

    Returns {"boundaries": [{key, label, position, kind, name, error}], "results": {boundary key:
    {query key: result}}}. A boundary whose schema could not be built carries `error` and no results.
    """
    boundaries = [{"key": "before", "label": "before the plan", "position": 0, "kind": "", "name": "", "error": None}]
    boundaries += [
        {"key": s.key, "label": s.label, "position": s.position, "kind": s.kind, "name": s.name, "error": None}
        for s in steps
    ]
    results: dict[str, dict] = {}
    with shadow_database(conninfo, timeout) as shadow:
        with psycopg.connect(shadow, autocommit=True, options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}") as conn:
            broken_at = None
            for step in reversed([s for s in steps if s.done]):
                try:
                    apply_sql(conn, step.down_sql)
                except ApplyFailed as error:
                    broken_at = f"cannot rebuild the schema before {step.label} from its down SQL: {error}"
                    break
            if broken_at is None:
                results["before"] = check_queries(conn, queries)
            for previous, boundary, step in zip(boundaries, boundaries[1:], steps, strict=False):
                if broken_at is None and step.up_sql.strip():
                    try:
                        apply_sql(conn, step.up_sql)
                    except ApplyFailed as error:
                        broken_at = f"{step.label} does not apply on a copy of the target's schema: {error}"
                if broken_at is not None:
                    boundary["error"] = scrub(broken_at, conninfo)
                    continue
                unchanged = results.get(previous["key"]) if not step.up_sql.strip() else None
                results[step.key] = unchanged or check_queries(conn, queries)
            if broken_at is not None:
                boundaries[0]["error"] = None if "before" in results else scrub(broken_at, conninfo)
    return {"boundaries": boundaries, "results": results}
