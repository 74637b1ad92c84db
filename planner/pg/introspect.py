"""Reading a live target's schema into a `planner.sql.catalog.Catalog`, plus what recipes ask of it.

One short read-only transaction of catalog queries (with the usual timeouts): tables, columns,
constraints, indexes, row and size estimates, the server version and time zone. `TargetSchema`
adds the few questions only the server can answer, such as "can this type be cast to that one",
asked lazily on a fresh connection so a schema snapshot never holds a connection open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from pglast import parse_sql
from pglast.parser import ParseError
from psycopg import sql

from planner.pg.connect import connect
from planner.sql.catalog import Catalog, Column, Constraint, Index, Table, qualify
from planner.sql.exprs import not_null_column

# The planner's own bookkeeping (backfill checkpoints, sqlx ledger) is not the application's schema.
SKIPPED_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence = 'u',
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END,
       CASE WHEN c.relkind IN ('r', 'p', 'm') THEN pg_table_size(c.oid) END,
       CASE WHEN c.relkind IN ('r', 'p', 'm') THEN pg_indexes_size(c.oid) END
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm')
   AND n.nspname <> ALL (%(skipped)s) AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
"""

_PARTITIONS = """
SELECT i.inhparent, c.oid, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = ANY(%(oids)s)
"""

_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum
"""

_CONSTRAINTS = """
SELECT c.conrelid, c.conname, c.contype, c.convalidated, c.confrelid, c.confdeltype,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o),
       CASE WHEN c.contype = 'c' THEN pg_get_expr(c.conbin, c.conrelid) END
  FROM pg_constraint c
 WHERE c.conrelid = ANY(%(oids)s)
"""

_INDEXES = """
SELECT i.indrelid, ic.relname, i.indisunique, i.indisvalid, i.indisprimary, i.indpred IS NOT NULL,
       ARRAY(SELECT coalesce(a.attname, '') FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n AND k.n > 0
             WHERE k.o <= i.indnkeyatts ORDER BY k.o),
       n.nspname
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
 WHERE i.indrelid = ANY(%(oids)s)
"""

# What depends on a column (and so would be dropped with it, or stop DROP COLUMN): indexes,
# constraints, views, triggers, owned sequences (serial, identity). The column's own default is not.
_COLUMN_DEPENDENTS = """
SELECT d.refobjid, a.attname, pg_describe_object(d.classid, d.objid, d.objsubid)
  FROM pg_depend d
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY(%(oids)s) AND d.refobjsubid > 0
   AND d.deptype IN ('n', 'a', 'i')
   AND NOT (d.classid = 'pg_attrdef'::regclass
            AND EXISTS (SELECT 1 FROM pg_attrdef ad WHERE ad.oid = d.objid
                        AND ad.adrelid = d.refobjid AND ad.adnum = d.refobjsubid))
   AND NOT (d.classid = 'pg_class'::regclass AND d.objid = d.refobjid)
   AND NOT (d.classid = 'pg_constraint'::regclass
            AND EXISTS (SELECT 1 FROM pg_constraint c WHERE c.oid = d.objid AND c.contype = 'n'))
 ORDER BY 1, 2, 3
"""

_COLUMN_KINDS = """
SELECT a.attrelid, a.attname,
       CASE WHEN coalesce(to_jsonb(a) ->> 'attidentity', '') <> '' THEN 'identity'
            WHEN coalesce(to_jsonb(a) ->> 'attgenerated', '') <> '' THEN 'generated' END
  FROM pg_attribute a
 WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
   AND (coalesce(to_jsonb(a) ->> 'attidentity', '') <> '' OR coalesce(to_jsonb(a) ->> 'attgenerated', '') <> '')
"""

_FUNCTIONS = """
SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname <> ALL (%(skipped)s)
"""

# Primary and foreign keys as PostgreSQL prints them, so a recipe can re-create a foreign key exactly
# (ON UPDATE, MATCH, DEFERRABLE …, which the Catalog's Constraint leaves out).
_KEY_DEFINITIONS = """
SELECT c.conrelid, n.nspname, r.relname, c.conname, pg_get_constraintdef(c.oid)
  FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
 WHERE c.conrelid = ANY(%(oids)s) AND c.contype IN ('p', 'f')
"""

_TRIGGERS = """
SELECT t.tgrelid, t.tgname FROM pg_trigger t WHERE t.tgrelid = ANY(%(oids)s) AND NOT t.tgisinternal
"""


@dataclass
class IndexInfo:
    """What the Catalog's Index leaves out and recipes need: validity, partiality, primary key."""

    valid: bool = True
    partial: bool = False
    primary: bool = False


@dataclass(frozen=True)
class KeyDefinition:
    """A primary or foreign key: its table's schema and name (unquoted) and pg_get_constraintdef()."""

    schema: str
    table: str
    definition: str


@dataclass
class TargetSchema:
    """A snapshot of a target's schema: the analyzer's Catalog plus recipe-only details.

    `cast_checker(old_type, new_type)` answers whether PostgreSQL can cast one type to the other
    (None: cannot ask, e.g. offline); types are given already deparsed by a library.
    """

    catalog: Catalog
    defaults: dict[tuple[str, str], str] = field(default_factory=dict)  # (table key, column) -> expression
    index_info: dict[str, IndexInfo] = field(default_factory=dict)  # index key -> details
    triggers: dict[str, set[str]] = field(default_factory=dict)  # table key -> trigger names
    # (table key, column) -> what depends on it, as PostgreSQL describes it ("index users_email_idx")
    column_dependents: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # (table key, column) -> "identity" or "generated" (absent: an ordinary column)
    column_kinds: dict[tuple[str, str], str] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)  # "schema.name" of the application's functions
    cast_checker: Callable[[str, str], str | None] | None = None
    # (table key, constraint name) -> its definition, for primary and foreign keys
    key_definitions: dict[tuple[str, str], KeyDefinition] = field(default_factory=dict)
    # unique_key_checker(schema, table, columns, rows) -> why they cannot be a unique key, or None
    unique_key_checker: Callable[[str, str, tuple[str, ...], int | None], str | None] | None = None

    def cast_error(self, old_type: str, new_type: str) -> str | None:
        """Why `old_type` cannot be cast to `new_type` (PostgreSQL's message), or None if it can."""
        return self.cast_checker(old_type, new_type) if self.cast_checker else None

    def unique_key_error(self, schema: str, table: str, columns: tuple[str, ...], rows: int | None) -> str | None:
        """Why `columns` cannot be a unique key of the table (PostgreSQL's words), or None if not known."""
        return self.unique_key_checker(schema, table, columns, rows) if self.unique_key_checker else None


def load_catalog(connection: psycopg.Connection) -> TargetSchema:
    """Read the schema through `connection` in one read-only transaction (rolled back)."""
    with connection.transaction(force_rollback=True):
        connection.execute("SET TRANSACTION READ ONLY")
        return _read(connection)


def introspect(conninfo: str) -> TargetSchema:
    """Open a short connection to the target, read its schema, and allow cast questions later."""
    with connect(conninfo, statement_timeout_ms=30_000) as connection:
        schema = load_catalog(connection)
    schema.cast_checker = lambda old, new: cast_error(conninfo, old, new)
    schema.unique_key_checker = lambda namespace, table, columns, rows: unique_key_error(
        conninfo, namespace, table, columns, rows
    )
    return schema


def cast_error(conninfo: str, old_type: str, new_type: str) -> str | None:
    """PostgreSQL's own answer to `NULL::old::new`: None when the cast exists, else its message.

    The type names are checked to be type names only (pglast) before they reach the server.
    """
    for text in (old_type, new_type):
        _check_type_name(text)
    statement = sql.SQL("SELECT NULL::{}::{}").format(sql.SQL(old_type), sql.SQL(new_type))
    with connect(conninfo, statement_timeout_ms=5_000) as connection:
        try:
            connection.execute(statement)
        except psycopg.Error as error:
            return (error.diag.message_primary or str(error)).strip()
    return None


# Scanning for duplicates at draft time is for tables that take seconds to group; bigger ones are
# left to the plan's gate query and to the unique index build itself.
DUPLICATE_SCAN_MAX_ROWS = 1_000_000


def unique_key_error(conninfo: str, schema: str, table: str, columns: tuple[str, ...], rows: int | None) -> str | None:
    """Why `columns` of `schema.table` cannot hold a unique index, or None (can, or could not tell).

    The types are tried on an empty temporary copy of the columns in a rolled-back transaction (a
    json column has no btree equality: PostgreSQL names the missing operator class). Duplicates are
    counted, without showing values, only on tables small enough to group within a short timeout.
    """
    relation = sql.Identifier(schema, table)
    keys = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    with connect(conninfo, statement_timeout_ms=5_000) as connection:
        try:
            with connection.transaction(force_rollback=True):
                connection.execute(
                    sql.SQL(
                        "CREATE TEMPORARY TABLE planner_key_probe ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
                    ).format(keys, relation)
                )
                connection.execute(sql.SQL("CREATE UNIQUE INDEX ON planner_key_probe ({})").format(keys))
        except psycopg.errors.UndefinedObject as error:  # no default btree operator class
            return (error.diag.message_primary or str(error)).strip()
        except psycopg.Error:
            return None  # e.g. no TEMPORARY privilege: the index build will tell
        if rows is not None and rows > DUPLICATE_SCAN_MAX_ROWS:
            return None
        present = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in columns)
        query = sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} GROUP BY {} HAVING count(*) > 1) AS duplicates"
        ).format(relation, present, keys)
        try:
            duplicated = connection.execute(query).fetchone()[0]
        except psycopg.errors.QueryCanceled:
            return None
    if duplicated == 1:
        return f"one value of ({', '.join(columns)}) occurs more than once"
    if duplicated:
        return f"{duplicated} values of ({', '.join(columns)}) occur more than once"
    return None


def _check_type_name(text: str) -> None:
    try:
        statements = parse_sql(f"SELECT NULL::{text}")
    except ParseError as error:
        raise ValueError(f"{text!r} is not a type name: {error}") from None
    statement = statements[0].stmt if len(statements) == 1 else None
    targets = getattr(statement, "targetList", None) or ()
    if (
        len(targets) != 1
        or type(targets[0].val).__name__ != "TypeCast"
        or any(getattr(statement, name, None) for name in ("fromClause", "whereClause", "withClause"))
    ):
        raise ValueError(f"{text!r} is not a type name")


def _read(connection: psycopg.Connection) -> TargetSchema:
    version = connection.info.server_version // 10000
    timezone = connection.execute("SHOW TimeZone").fetchone()[0]
    catalog = Catalog(pg_version=version, timezone=timezone)
    schema = TargetSchema(catalog=catalog)
    keys: dict[int, str] = {}
    for oid, nspname, relname, kind, unlogged, rows, size, index_size in connection.execute(
        _TABLES, {"skipped": list(SKIPPED_SCHEMAS)}
    ):
        keys[oid] = qualify(nspname, relname)
        catalog.tables[keys[oid]] = Table(
            name=keys[oid], kind=kind, unlogged=unlogged, rows=rows, bytes=size, index_bytes=index_size
        )
    oids = list(keys)
    for parent, child, is_default in connection.execute(_PARTITIONS, {"oids": oids}):
        if parent not in keys or child not in keys:
            continue
        table = catalog.tables[keys[parent]]
        table.partitions.append(keys[child])
        if is_default:
            table.default_partition = keys[child]
    for relid, name, type_sql, not_null, default in connection.execute(_COLUMNS, {"oids": oids}):
        catalog.tables[keys[relid]].columns[name] = Column(name, type_sql, not_null)
        if default is not None:
            schema.defaults[(keys[relid], name)] = default
    for relid, name, kind, validated, ref_oid, on_delete, columns, ref_columns, check in connection.execute(
        _CONSTRAINTS, {"oids": oids}
    ):
        catalog.tables[keys[relid]].constraints[name] = Constraint(
            name=name,
            kind=kind,
            columns=tuple(columns),
            validated=validated,
            ref_table=keys.get(ref_oid) if ref_oid else None,
            ref_columns=tuple(ref_columns),
            not_null_column=_not_null_column(check) if check else None,
            on_delete=on_delete,
        )
    for relid, name, unique, valid, primary, partial, columns, nspname in connection.execute(_INDEXES, {"oids": oids}):
        key = qualify(nspname, name)
        catalog.indexes[key] = Index(name=name, table=keys[relid], columns=tuple(columns), unique=unique)
        schema.index_info[key] = IndexInfo(valid=valid, partial=partial, primary=primary)
    for relid, name in connection.execute(_TRIGGERS, {"oids": oids}):
        schema.triggers.setdefault(keys[relid], set()).add(name)
    for relid, column, description in connection.execute(_COLUMN_DEPENDENTS, {"oids": oids}):
        schema.column_dependents.setdefault((keys[relid], column), []).append(description)
    for relid, column, kind in connection.execute(_COLUMN_KINDS, {"oids": oids}):
        schema.column_kinds[(keys[relid], column)] = kind
    for (name,) in connection.execute(_FUNCTIONS, {"skipped": list(SKIPPED_SCHEMAS)}):
        schema.functions.add(name)
    for relid, nspname, relname, name, definition in connection.execute(_KEY_DEFINITIONS, {"oids": oids}):
        schema.key_definitions[(keys[relid], name)] = KeyDefinition(nspname, relname, definition)
    return schema


def _not_null_column(check_sql: str) -> str | None:
    try:
        statement = parse_sql(f"SELECT 1 WHERE {check_sql}")[0].stmt
    except (ParseError, IndexError):
        return None
    return not_null_column(statement.whereClause)
