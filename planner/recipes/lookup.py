"""Finding what a recipe's parameters name in the target's schema, with errors that name the field."""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.parser import ParseError
from psycopg import sql

from planner.recipes.base import RecipeError
from planner.sql.catalog import Column, Table, qualify


@dataclass(frozen=True)
class TableRef:
    """A table the schema has: its catalog key, its schema and name, and what the catalog knows."""

    key: str
    schema: str
    name: str
    table: Table

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def regclass(self) -> str:
        """The quoted name as text, for `to_regclass(…)` and backfill specs."""
        return self.ident.as_string(None)

    @property
    def rows(self) -> int:
        return max(self.table.rows or 0, 0)


def split_name(text: str, field: str) -> tuple[str, str]:
    """`users`, `sales.orders`, `"Mixed Case"` → (schema, name), by PostgreSQL's own rules."""
    try:
        statements = parse_sql(f"SELECT 1 FROM {text}")
    except ParseError:
        raise RecipeError(field, f"{text!r} is not a table name") from None
    statement = statements[0].stmt if len(statements) == 1 else None
    relation = (statement.fromClause or [None])[0] if isinstance(statement, ast.SelectStmt) else None
    if (
        not isinstance(relation, ast.RangeVar)
        or len(statement.fromClause) != 1
        or relation.alias
        or relation.catalogname
        or statement.whereClause
    ):
        raise RecipeError(field, f"{text!r} is not a table name")
    return relation.schemaname or "public", relation.relname


def find_table(schema, text: str, field: str = "table") -> TableRef:
    """The table `text` names, or RecipeError("table", "… does not exist")."""
    namespace, name = split_name(text, field)
    key = qualify(namespace, name)
    table = schema.catalog.table(key)
    if table is None or table.kind not in ("r", "p"):
        raise RecipeError(field, f"table {key!r} does not exist" if table is None else f"{key!r} is not a table")
    return TableRef(key, namespace, name, table)


def find_column(ref: TableRef, name: str, field: str) -> Column:
    column = ref.table.columns.get(name)
    if column is None:
        raise RecipeError(field, f"column {name!r} does not exist in table {ref.key!r}")
    return column


def find_table_column(schema, params: dict) -> tuple[TableRef, Column]:
    """The table and column named by a recipe's `table` and `column` parameters."""
    ref = find_table(schema, params["table"])
    return ref, find_column(ref, params["column"], "column")


def require_new_column(ref: TableRef, name: str, field: str) -> None:
    if name in ref.table.columns:
        raise RecipeError(field, f"column {name!r} already exists in table {ref.key!r}")
    if len(name.encode()) > 63:
        raise RecipeError(field, f"{name!r} is longer than PostgreSQL's 63-byte limit for names")


def require_new_relation(schema, namespace: str, name: str, field: str) -> None:
    """Index and constraint names share the namespace of relations (indexes) or the table (constraints)."""
    key = qualify(namespace, name)
    if key in schema.catalog.indexes or key in schema.catalog.tables:
        raise RecipeError(field, f"a relation named {key!r} already exists")
    if len(name.encode()) > 63:
        raise RecipeError(field, f"{name!r} is longer than PostgreSQL's 63-byte limit for names")


def unique_on(schema, ref: TableRef, columns: tuple[str, ...]) -> str | None:
    """Name of a valid, non-partial unique index or key on exactly `columns` (any order), or None."""
    for key, index in schema.catalog.indexes.items():
        info = schema.index_info.get(key)
        if index.table != ref.key or not index.unique or (info and (not info.valid or info.partial)):
            continue
        if set(index.columns) == set(columns) and len(index.columns) == len(columns):
            return index.name
    return None
