"""Questions about SQL expressions in the parse tree: volatility, column references, walking.

Volatility decides whether ADD COLUMN ... DEFAULT rewrites the table (11+): PostgreSQL stores a
non-volatile default once in the catalog, but evaluates a volatile one for every existing row.
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.enums import NullTestType

# Built-in functions that are volatile (evaluated per row): a default using them rewrites the table.
VOLATILE_FUNCTIONS = {
    "clock_timestamp",
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "nextval",
    "timeofday",
    "setseed",
    "txid_current",
    "pg_current_xact_id",
    "currval",
    "lastval",
}
# Functions known to be immutable or stable: safe in a default. Unknown functions are treated as
# volatile, because a user-defined function is volatile unless declared otherwise.
STABLE_FUNCTIONS = {
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_timestamp",
    "localtimestamp",
    "current_date",
    "lower",
    "upper",
    "btrim",
    "trim",
    "concat",
    "concat_ws",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "length",
    "abs",
    "round",
    "make_date",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "to_timestamp",
    "to_date",
    "to_char",
    "to_json",
    "to_jsonb",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "array_fill",
    "date_trunc",
    "md5",
    "current_setting",
    "current_user",
    "session_user",
    "inet_client_addr",
    "timezone",
}


def walk(node) -> Iterator[object]:
    """Every AST node under `node` (itself included), depth first."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, tuple | list):
            stack.extend(reversed(current))
            continue
        if not isinstance(current, ast.Node):
            continue
        yield current
        for name in current:
            value = getattr(current, name, None)
            if isinstance(value, ast.Node | tuple | list):
                stack.append(value)


def func_name(call: ast.FuncCall) -> str:
    names = [n.sval for n in call.funcname or () if isinstance(n, ast.String)]
    return names[-1].lower() if names else ""


def is_volatile(expr) -> bool:
    """True when evaluating `expr` may give a different value per row (so per-row evaluation is needed)."""
    for node in walk(expr):
        if isinstance(node, ast.FuncCall):
            name = func_name(node)
            if name in VOLATILE_FUNCTIONS or name not in STABLE_FUNCTIONS:
                return True
        elif isinstance(node, ast.SubLink | ast.ColumnRef):
            return True
    return False


def column_refs(expr) -> list[str]:
    """Names of the columns an expression refers to (last part of each reference)."""
    names = []
    for node in walk(expr):
        if isinstance(node, ast.ColumnRef):
            parts = [f.sval for f in node.fields or () if isinstance(f, ast.String)]
            if parts:
                names.append(parts[-1])
    return names


def not_null_column(expr) -> str | None:
    """The column of a `col IS NOT NULL` check (the form that lets SET NOT NULL skip its scan)."""
    if (
        isinstance(expr, ast.NullTest)
        and expr.nulltesttype == NullTestType.IS_NOT_NULL
        and isinstance(expr.arg, ast.ColumnRef)
    ):
        refs = column_refs(expr.arg)
        return refs[0] if refs else None
    return None
