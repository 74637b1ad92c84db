"""Splitting SQL into statements and telling which ones cannot run inside a transaction block.

Pure pglast, no connection: the executor (planner/pg/ddl.py) and the sqlx exporter (planner/sqlx/)
both need it. It is small on purpose; once planner/sql/source.py settles, the splitting can move
there and this module keep only `autocommit_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast
from pglast.parser import ParseError, parse_sql


class SqlSyntaxError(ValueError):
    """The SQL does not parse; the message is PostgreSQL's with a line and column."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Statement:
    """One statement of a text: its own text (no trailing `;`), where it is, and its parse tree."""

    text: str
    start: int  # character offset of the statement in the text it came from
    end: int  # character offset just past the statement, before its `;`
    node: ast.Node

    @property
    def kind(self) -> str:
        return type(self.node).__name__


def split_statements(sql: str) -> list[Statement]:
    """The statements of `sql`, in order, exactly as PostgreSQL would split them (dollar quotes…)."""
    try:
        raw_statements = parse_sql(sql)
    except ParseError as error:
        message, offset = error.args[0], error.args[1] if len(error.args) > 1 else 0
        line, column = _line_column(sql, offset)
        raise SqlSyntaxError(message, line, column) from None
    statements = []
    for raw in raw_statements:
        # pglast gives character offsets; a length of 0 means "to the end of the text".
        start = raw.stmt_location
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        text = sql[start:end]
        stripped = text.lstrip()
        start += len(text) - len(stripped)
        text = stripped.rstrip()
        statements.append(Statement(text=text, start=start, end=start + len(text), node=raw.stmt))
    return statements


def autocommit_reason(node: ast.Node, server_version_num: int | None = None) -> str | None:
    """Why this statement must run outside a transaction block, or None if it can run inside one.

    `server_version_num` (e.g. 150004) matters for ALTER TYPE … ADD VALUE, which PostgreSQL 12 made
    transactional; None means "unknown", answered conservatively.
    """
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt):
        if any(getattr(param, "defname", None) == "concurrently" for param in node.params or ()):
            return "REINDEX CONCURRENTLY"
        if _enum_name(node.kind) in {"REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_DATABASE"}:
            return "REINDEX SYSTEM/DATABASE"
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    if isinstance(node, ast.AlterEnumStmt) and node.newVal is not None and node.oldVal is None:
        if server_version_num is None or server_version_num < 120000:
            return "ALTER TYPE … ADD VALUE (before PostgreSQL 12)"
    if isinstance(node, ast.AlterTableStmt):
        for command in node.cmds or ():
            definition = getattr(command, "def_", None)
            if isinstance(definition, ast.PartitionCmd) and definition.concurrent:
                return "ALTER TABLE … DETACH PARTITION CONCURRENTLY"
    if isinstance(node, ast.ClusterStmt) and node.relation is None:
        return "CLUSTER without a table"
    simple = {
        ast.CreatedbStmt: "CREATE DATABASE",
        ast.DropdbStmt: "DROP DATABASE",
        ast.CreateTableSpaceStmt: "CREATE TABLESPACE",
        ast.DropTableSpaceStmt: "DROP TABLESPACE",
        ast.AlterSystemStmt: "ALTER SYSTEM",
        ast.CreateSubscriptionStmt: "CREATE SUBSCRIPTION",
        ast.DropSubscriptionStmt: "DROP SUBSCRIPTION",
    }
    for node_type, reason in simple.items():
        if isinstance(node, node_type):
            return reason
    return None


def is_transaction_control(node: ast.Node) -> bool:
    """BEGIN/COMMIT/ROLLBACK/SAVEPOINT…: the planner owns transactions, users' SQL may not."""
    return isinstance(node, ast.TransactionStmt)


def chunk_bounds(sql: str, statements: list[Statement]) -> list[tuple[int, int]]:
    """Cut `sql` into one piece per statement, losing nothing: pieces concatenate back to `sql`.

    A piece ends after its statement's `;` and the rest of that line when it holds only a comment,
    so a comment above a statement travels with it and a trailing `-- why` stays on its line.
    """
    cuts = [0]
    for statement in statements[:-1]:
        position = statement.end
        semicolon = sql.find(";", position)
        position = semicolon + 1 if semicolon != -1 else position
        newline = sql.find("\n", position)
        rest_of_line = sql[position : newline if newline != -1 else len(sql)].strip()
        if not rest_of_line or rest_of_line.startswith("--"):
            position = newline + 1 if newline != -1 else len(sql)
        cuts.append(position)
    cuts.append(len(sql))
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _enum_name(value) -> str:
    return getattr(value, "name", str(value))


def _line_column(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
