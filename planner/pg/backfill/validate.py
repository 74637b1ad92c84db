"""Check a spec against the target database before any row is touched, and resolve what batches need.

User expressions are parsed with pglast (PostgreSQL's own grammar) and re-emitted from the parse
tree, so a comment or a stray `;` in them can never change the statements we build around them.
Types are then checked by PostgreSQL itself: EXPLAIN of the UPDATE / SELECT in a transaction that is
rolled back (parse analysis fails on a missing column or a non-boolean WHERE; nothing is executed).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from pglast import parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream
from psycopg import sql

from planner.pg.backfill.errors import SpecError
from planner.pg.backfill.spec import BackfillSpec

INTEGER_TYPES = {20, 21, 23}  # int8, int2, int4: key ranges can be split by arithmetic


@dataclass(frozen=True)
class KeyColumn:
    name: str
    type_sql: str  # format_type() output, used to cast checkpoint text back to the column type
    type_oid: int


@dataclass(frozen=True)
class Target:
    """The spec resolved against the catalog: everything the SQL builders need."""

    oid: int
    schema: str
    name: str
    key: tuple[KeyColumn, ...]
    set_sql: str
    set_columns: tuple[str, ...]
    where_sql: str | None
    reverse_set_sql: str | None
    reverse_where_sql: str | None
    health_query_sql: str | None

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"  # for people: messages, holds, the run's table_name

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.key)


def resolve(connection: psycopg.Connection, spec: BackfillSpec) -> Target:
    """Validate `spec` on `connection` (autocommit) and return the resolved Target, or raise SpecError."""
    spec.check()
    oid, schema, name = _table(connection, spec.table)
    columns = _columns(connection, oid)
    key = _key(connection, oid, columns, spec.key, f"{schema}.{name}")
    set_sql, set_columns = _assignments(spec.set, "set", columns, key)
    reverse_set_sql = None
    if spec.reverse_set:
        reverse_set_sql, _ = _assignments(spec.reverse_set, "reverse_set", columns, key)
    where_sql = _predicate(spec.where, "where") if spec.where else None
    reverse_where_sql = _predicate(spec.reverse_where, "reverse_where") if spec.reverse_where else None
    health_sql = _health_query(spec.throttle.health_query) if spec.throttle.health_query else None
    target = Target(
        oid=oid,
        schema=schema,
        name=name,
        key=key,
        set_sql=set_sql,
        set_columns=set_columns,
        where_sql=where_sql,
        reverse_set_sql=reverse_set_sql,
        reverse_where_sql=reverse_where_sql,
        health_query_sql=health_sql,
    )
    _typecheck(connection, target, spec.batch.lock_timeout_ms)
    return target


def _table(connection, text: str) -> tuple[int, str, str]:
    try:
        row = connection.execute(
            """SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)""",
            [text],
        ).fetchone()
    except psycopg.Error as error:
        raise SpecError("table", f"{text!r} is not a valid table name: {_first_line(error)}") from None
    if row is None:
        raise SpecError("table", f"table {text!r} does not exist")
    oid, schema, name, kind = row
    if kind not in ("r", "p"):
        raise SpecError("table", f"{text!r} is not a table (relkind {kind!r})")
    return oid, schema, name


def _columns(connection, oid: int) -> dict[str, dict]:
    # to_jsonb(a) reads attgenerated where it exists (PostgreSQL 12+) without failing on 11.
    rows = connection.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atttypid,
                  coalesce(to_jsonb(a) ->> 'attgenerated', '')
           FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped""",
        [oid],
    ).fetchall()
    return {
        name: {"type": type_sql, "not_null": not_null, "type_oid": type_oid, "generated": bool(generated)}
        for name, type_sql, not_null, type_oid, generated in rows
    }


def _key(connection, oid: int, columns: dict, wanted: tuple[str, ...] | None, table: str) -> tuple[KeyColumn, ...]:
    indexes = connection.execute(
        """SELECT i.indisprimary,
                  ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                        WHERE k.ord <= i.indnkeyatts ORDER BY k.ord),
                  i.indnkeyatts, i.indexprs IS NULL AND i.indpred IS NULL
           FROM pg_index i WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid AND i.indislive
           ORDER BY NOT i.indisprimary""",
        [oid],
    ).fetchall()
    # Expression or partial indexes do not make a key: a keyset range needs plain columns.
    plain = [(primary, list(names)) for primary, names, count, ok in indexes if ok and len(names) == count]
    if wanted is None:
        primary = [names for is_primary, names in plain if is_primary]
        if not primary:
            raise SpecError("key", f"table {table} has no primary key: give a unique NOT NULL key (--key a,b)")
        names = primary[0]
    else:
        for name in wanted:
            if name not in columns:
                raise SpecError("key", f"column {name!r} does not exist in table {table}")
            if not columns[name]["not_null"]:
                raise SpecError("key", f"column {name!r} is nullable: a key must be NOT NULL")
        if len(set(wanted)) != len(wanted):
            raise SpecError("key", "names a column twice")
        matching = [names for _, names in plain if set(names) == set(wanted)]
        if not matching:
            raise SpecError("key", f"({', '.join(wanted)}) is not unique: no unique index on exactly these columns")
        names = matching[0]  # index order, so keyset ranges and ORDER BY can use the index
    for name in names:
        if not columns[name]["not_null"]:
            raise SpecError("key", f"column {name!r} is nullable: a key must be NOT NULL")
    return tuple(KeyColumn(name, columns[name]["type"], columns[name]["type_oid"]) for name in names)


def _assignments(text: str, field: str, columns: dict, key: tuple[KeyColumn, ...]) -> tuple[str, tuple[str, ...]]:
    prefix = "UPDATE t SET "
    try:
        statements = parse_sql(prefix + text)
    except ParseError as error:
        raise SpecError(field, f"does not parse: {error}") from None
    statement = statements[0].stmt if len(statements) == 1 else None
    if (
        type(statement).__name__ != "UpdateStmt"
        or statement.whereClause
        or statement.fromClause
        or statement.returningClause
        or statement.withClause
    ):
        raise SpecError(field, 'must be assignments only, like "a = expr, b = b + 1"')
    names = [target.name for target in statement.targetList]
    key_names = {column.name for column in key}
    for name in names:
        if name not in columns:
            raise SpecError(field, f"column {name!r} does not exist in the table")
        if name in key_names:
            raise SpecError(field, f"column {name!r} is part of the key: a backfill cannot change its key")
        if columns[name]["generated"]:
            raise SpecError(field, f"column {name!r} is a generated column")
    if len(set(names)) != len(names):
        raise SpecError(field, "assigns a column twice")
    deparsed = RawStream()(statement)
    assert deparsed.startswith(prefix), deparsed
    return deparsed[len(prefix) :], tuple(dict.fromkeys(names))


def _predicate(text: str, field: str) -> str:
    try:
        statements = parse_sql(f"SELECT 1 FROM t WHERE {text}")
    except ParseError as error:
        raise SpecError(field, f"does not parse: {error}") from None
    statement = statements[0].stmt if len(statements) == 1 else None
    clauses = ("sortClause", "limitCount", "limitOffset", "groupClause", "havingClause", "windowClause")
    clauses += ("lockingClause", "withClause", "distinctClause", "intoClause", "larg", "rarg")
    if type(statement).__name__ != "SelectStmt" or any(getattr(statement, name, None) for name in clauses):
        raise SpecError(field, "must be a single condition, like \"status = 'new' AND amount > 0\"")
    return RawStream()(statement.whereClause)


def _health_query(text: str) -> str:
    field = "throttle.health_query"
    try:
        statements = parse_sql(text)
    except ParseError as error:
        raise SpecError(field, f"does not parse: {error}") from None
    statement = statements[0].stmt if len(statements) == 1 else None
    if type(statement).__name__ != "SelectStmt" or statement.intoClause or statement.lockingClause:
        raise SpecError(field, "must be one SELECT returning true when the database is healthy")
    return RawStream()(statement)


def _typecheck(connection, target: Target, lock_timeout_ms: int) -> None:
    """Let PostgreSQL type-check every expression: EXPLAIN only plans, and the transaction is rolled back."""
    checks = [("set", sql.SQL("EXPLAIN UPDATE {} SET {} WHERE false").format(target.table, user_sql(target.set_sql)))]
    if target.reverse_set_sql:
        statement = sql.SQL("EXPLAIN UPDATE {} SET {} WHERE false").format(
            target.table, user_sql(target.reverse_set_sql)
        )
        checks.append(("reverse_set", statement))
    for field, predicate in (("where", target.where_sql), ("reverse_where", target.reverse_where_sql)):
        if predicate:
            statement = sql.SQL("EXPLAIN SELECT 1 FROM {} WHERE ({})").format(target.table, user_sql(predicate))
            checks.append((field, statement))
    if target.health_query_sql:
        checks.append(("throttle.health_query", sql.SQL("EXPLAIN {}").format(user_sql(target.health_query_sql))))
    for field, statement in checks:
        try:
            with connection.transaction(force_rollback=True):
                connection.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(lock_timeout_ms)}ms"])
                connection.execute("SET LOCAL statement_timeout = '10s'")
                connection.execute(statement, [])
        except psycopg.errors.LockNotAvailable:
            raise  # not the user's fault: the caller retries
        except psycopg.Error as error:
            raise SpecError(field, _first_line(error)) from None


def user_sql(text: str) -> sql.SQL:
    """A validated user expression as SQL; `%` doubled because every statement runs with parameters."""
    return sql.SQL(text.replace("%", "%%"))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
