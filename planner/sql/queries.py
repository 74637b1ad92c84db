"""Application queries as the compatibility check reads them: split, parsed, and sorted out.

Only statements the application sends and PostgreSQL can prepare are checked (SELECT, INSERT,
UPDATE, DELETE, MERGE, VALUES, and WITH … of those). Anything else a user pastes or
pg_stat_statements lists (SET, BEGIN, DDL, COPY) is skipped with the reason. Statements that read
only the system catalogs, or the bookkeeping of the planner and of sqlx, are not the
application's and are left out of what pg_stat_statements offers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pglast import parse_sql
from pglast.parser import ParseError
from pglast.visitors import Visitor

from planner.sql.source import split

CHECKED_KINDS = {
    "SelectStmt": "SELECT",
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
}
NOT_APPLICATION_SCHEMAS = {"pg_catalog", "information_schema", "planner_bookkeeping", "pg_toast"}
NOT_APPLICATION_TABLES = {"_sqlx_migrations", "pg_stat_statements"}


class QueryProblem(ValueError):
    """The text is not a query that can be checked; the message says why."""


@dataclass(frozen=True)
class PastedQuery:
    sql: str
    line: int
    problem: str | None  # None: a query to check


def kind_of(sql: str) -> str:
    """'SELECT', 'INSERT' … for one statement; QueryProblem when it does not parse, is not one
    statement, or is not a query PostgreSQL can prepare."""
    try:
        statements = parse_sql(sql)
    except ParseError as error:
        raise QueryProblem(f"does not parse: {error.args[0]}") from None
    if len(statements) != 1:
        raise QueryProblem(f"holds {len(statements)} statements; check them one at a time")
    node = statements[0].stmt
    kind = CHECKED_KINDS.get(type(node).__name__)
    if kind is None:
        raise QueryProblem(f"is a {type(node).__name__.removesuffix('Stmt')} statement, not a query to check")
    return kind


class _Relations(Visitor):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str | None, str]] = []
        self.ctes: set[str] = set()

    def visit_CommonTableExpr(self, ancestors, node):
        self.ctes.add(node.ctename)

    def visit_RangeVar(self, ancestors, node):
        self.found.append((node.schemaname, node.relname))


def reads_application_tables(sql: str) -> bool:
    """False for a query of the catalogs or of bookkeeping tables (pg_stat_statements lists them too)."""
    try:
        tree = parse_sql(sql)
    except ParseError:
        return True  # reported as a problem later, not hidden here
    visitor = _Relations()
    visitor(tree)
    relations = [(schema, name) for schema, name in visitor.found if schema or name not in visitor.ctes]
    if not relations:
        return False  # SELECT 1, SELECT now(): nothing a schema change can break
    return all(
        (schema or "").lower() not in NOT_APPLICATION_SCHEMAS
        and name not in NOT_APPLICATION_TABLES
        and not (schema is None and name.startswith("pg_"))
        for schema, name in relations
    )


def split_pasted(text: str) -> list[PastedQuery]:
    """Statements of a pasted text, each with its line and, if it cannot be checked, why."""
    pasted = []
    for chunk in split(text):
        statement = chunk.text.strip().rstrip(";").strip()
        if not statement:
            continue
        if chunk.error:
            pasted.append(PastedQuery(statement, chunk.line, f"does not parse: {chunk.error}"))
            continue
        try:
            kind_of(statement)
        except QueryProblem as error:
            pasted.append(PastedQuery(statement, chunk.line, str(error)))
        else:
            pasted.append(PastedQuery(statement, chunk.line, None))
    return pasted


_MISSING_COLUMN = re.compile(r'^column (?:"(?P<quoted>[^"]+)"|(?P<qualified>\S+)) does not exist')


class _Aliases(Visitor):
    """Names a query gives its tables: alias (or table name) → the table as written."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, str] = {}

    def visit_RangeVar(self, ancestors, node):
        written = f"{node.schemaname}.{node.relname}" if node.schemaname else node.relname
        self.tables[node.alias.aliasname if node.alias else node.relname] = written


def missing_column_table(sql: str, message: str) -> str:
    """PostgreSQL's "column … does not exist" with the table it was looked for in, when the query
    tells: `column "name" does not exist` → `… (in users)`. Other messages are returned as they are."""
    match = _MISSING_COLUMN.match(message)
    if match is None or " of relation " in message:
        return message
    try:
        tree = parse_sql(sql)
    except ParseError:
        return message
    visitor = _Aliases()
    visitor(tree)
    if match["qualified"] and "." in match["qualified"]:
        table = visitor.tables.get(match["qualified"].rsplit(".", 1)[0])
    else:
        tables = set(visitor.tables.values())
        table = tables.pop() if len(tables) == 1 else None
    if table is None:
        return message
    return f"{message[: match.end()]} (in {table}){message[match.end() :]}"
