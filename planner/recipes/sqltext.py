"""Building recipe SQL: identifiers quoted by psycopg.sql, user expressions re-emitted by pglast.

Nothing the user typed reaches a statement as raw text: names become `sql.Identifier`s, and
expressions, conditions and type names are parsed with PostgreSQL's own grammar, checked to be only
that (no second statement, no FROM), and deparsed from the parse tree.
"""

from __future__ import annotations

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream
from psycopg import sql

from planner.recipes.base import RecipeError

NO_TRANSACTION = "-- no-transaction\n"


def ident(*parts: str) -> sql.Identifier:
    return sql.Identifier(*parts)


def render(template: str, **parts) -> str:
    """`template` with `{name}` holes filled by Composables (Identifier, Literal, SQL), as text."""
    return sql.SQL(template).format(**parts).as_string(None)


def literal(value) -> sql.Literal:
    return sql.Literal(value)


def script(*statements: str) -> str:
    """Statements as one phase text: one per line, each ending with `;`."""
    return "".join(f"{statement.rstrip().rstrip(';')};\n" for statement in statements if statement)


def no_transaction(statement: str) -> str:
    """A phase of one statement that cannot run in a transaction (CONCURRENTLY), marked as such."""
    return NO_TRANSACTION + script(statement)


def _select_target(text: str, field: str, prefix: str = "SELECT ") -> ast.Node:
    try:
        statements = parse_sql(prefix + text)
    except ParseError as error:
        raise RecipeError(field, f"does not parse: {error}") from None
    statement = statements[0].stmt if len(statements) == 1 else None
    clauses = ("fromClause", "whereClause", "sortClause", "limitCount", "groupClause", "withClause", "intoClause")
    if (
        not isinstance(statement, ast.SelectStmt)
        or len(statement.targetList or ()) != 1
        or statement.targetList[0].name
        or any(getattr(statement, name, None) for name in clauses)
    ):
        raise RecipeError(field, "must be a single expression")
    return statement.targetList[0].val


def expression(text: str, field: str) -> sql.SQL:
    """A user's scalar expression (a default, a computed value), re-emitted by pglast."""
    return sql.SQL(RawStream()(_select_target(text, field)))


def predicate(text: str, field: str) -> sql.SQL:
    """A user's condition (a partial index's WHERE), re-emitted by pglast."""
    try:
        statements = parse_sql(f"SELECT 1 FROM t WHERE {text}")
    except ParseError as error:
        raise RecipeError(field, f"does not parse: {error}") from None
    statement = statements[0].stmt if len(statements) == 1 else None
    clauses = ("sortClause", "limitCount", "groupClause", "havingClause", "withClause", "intoClause", "larg")
    if not isinstance(statement, ast.SelectStmt) or any(getattr(statement, name, None) for name in clauses):
        raise RecipeError(field, 'must be a single condition, like "deleted_at IS NULL"')
    return sql.SQL(RawStream()(statement.whereClause))


def type_name(text: str, field: str) -> sql.SQL:
    """A user's type name (`bigint`, `numeric(10,2)`, `text[]`), re-emitted by pglast."""
    node = _select_target(f"NULL::{text}", field)
    if not isinstance(node, ast.TypeCast) or not isinstance(node.arg, ast.A_Const):
        raise RecipeError(field, f"{text!r} is not a type name")
    return sql.SQL(RawStream()(node.typeName))


def is_volatile_expression(rendered: str) -> bool:
    """Whether a (deparsed) expression must be evaluated per row, so ADD COLUMN … DEFAULT would rewrite."""
    from planner.sql.exprs import is_volatile

    return is_volatile(parse_sql(f"SELECT {rendered}")[0].stmt.targetList[0].val)


def as_text(composable: sql.Composable) -> str:
    return composable.as_string(None)


def derived_name(*parts: str, suffix: str) -> str:
    """An object name like PostgreSQL's own (`users_email_idx`), cut to 63 bytes as PostgreSQL would."""
    base = "_".join(part for part in parts if part)
    room = 63 - len(suffix) - 1
    return f"{base[:room]}_{suffix}"
