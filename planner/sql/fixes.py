"""Safe rewrites of risky statements, as SQL split into the migrations they need.

Fixes are built from pglast parse trees and printed by pglast's deparser, and the checks that
go with them by sqlglot, so every identifier is quoted by a library, never by string formatting.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ConstrType, DropBehavior, NullTestType, ObjectType, SortByDir, SortByNulls, VariableSetKind
from pglast.stream import RawStream

MAX_IDENTIFIER = 63


def sql(node) -> str:
    return RawStream()(node)


def clone(node):
    """A deep copy of a parse tree node (fixes change copies, never the analysed tree)."""
    return type(node)(node())


@contextmanager
def changed(node, **attributes):
    """The node with some attributes changed for the time of a deparse, then restored.

    Much cheaper than a deep copy; safe because deparsing never keeps or mutates the tree.
    """
    saved = {name: getattr(node, name) for name in attributes}
    try:
        for name, value in attributes.items():
            setattr(node, name, value)
        yield node
    finally:
        for name, value in saved.items():
            setattr(node, name, value)


def identifier(*parts: str) -> str:
    """Name for a generated object, truncated like PostgreSQL truncates identifiers."""
    return "_".join(p for p in parts if p)[:MAX_IDENTIFIER]


def migrations(*steps: tuple[str, list[str], bool]) -> str:
    """Render steps (title, statements, needs no-transaction) as consecutive migration files."""
    out = []
    total = len(steps)
    for number, (title, statements, no_transaction) in enumerate(steps, start=1):
        header = f"-- migration {number} of {total}: {title}"
        lines = [header]
        if no_transaction:
            lines.append("-- no-transaction")
        lines.extend(s.rstrip(";") + ";" for s in statements)
        out.append("\n".join(lines))
    return "\n\n".join(out)


def alter_table(rv: ast.RangeVar, *cmds: ast.AlterTableCmd) -> ast.AlterTableStmt:
    return ast.AlterTableStmt(relation=rv, cmds=cmds, objtype=ObjectType.OBJECT_TABLE)


def subcommand(subtype, **kwargs) -> ast.AlterTableCmd:
    return ast.AlterTableCmd(subtype=subtype, behavior=DropBehavior.DROP_RESTRICT, **kwargs)


def validate_constraint(rv: ast.RangeVar, name: str) -> str:
    return sql(alter_table(rv, subcommand(AT.AT_ValidateConstraint, name=name)))


def add_constraint_not_valid(rv: ast.RangeVar, constraint: ast.Constraint, name: str) -> str:
    with changed(constraint, conname=name, skip_validation=True, initially_valid=False, is_enforced=True) as con:
        return sql(alter_table(rv, subcommand(AT.AT_AddConstraint, def_=con)))


def not_null_check(rv: ast.RangeVar, column: str, name: str) -> str:
    con = ast.Constraint(
        contype=ConstrType.CONSTR_CHECK,
        conname=name,
        raw_expr=ast.NullTest(
            arg=ast.ColumnRef(fields=(ast.String(sval=column),)), nulltesttype=NullTestType.IS_NOT_NULL
        ),
        skip_validation=True,
        initially_valid=False,
        is_enforced=True,
    )
    return sql(alter_table(rv, subcommand(AT.AT_AddConstraint, def_=con)))


def set_not_null(rv: ast.RangeVar, column: str) -> str:
    return sql(alter_table(rv, subcommand(AT.AT_SetNotNull, name=column)))


def drop_constraint(rv: ast.RangeVar, name: str) -> str:
    return sql(alter_table(rv, subcommand(AT.AT_DropConstraint, name=name)))


def null_count_query(rv: ast.RangeVar, column: str) -> str:
    """The check to run before SET NOT NULL: how many rows still hold NULL."""
    import sqlglot  # imported on first use: it adds ~45 ms to the start of every `analyze` run

    table = sqlglot.exp.table_(rv.relname, db=rv.schemaname, quoted=True)
    condition = sqlglot.exp.column(column, quoted=True).is_(sqlglot.exp.null())
    return sqlglot.exp.select("count(*)").from_(table).where(condition).sql("postgres")


def set_not_null_steps(rv: ast.RangeVar, column: str) -> str:
    table = rv.relname
    check = identifier(table, column, "not_null")
    return (
        migrations(
            ("add the check without scanning", [not_null_check(rv, column, check)], False),
            ("validate it (SHARE UPDATE EXCLUSIVE: reads and writes go on)", [validate_constraint(rv, check)], False),
            (
                "SET NOT NULL uses the valid check and skips its scan (PostgreSQL 12+)",
                [set_not_null(rv, column), drop_constraint(rv, check)],
                False,
            ),
        )
        + f"\n-- before step 1, this must return 0: {null_count_query(rv, column)}"
    )


def concurrent_index(node: ast.IndexStmt) -> str:
    with changed(node, concurrent=True) as index:
        return migrations(("build the index without blocking writes", [sql(index)], True))


def concurrent_drop_index(node: ast.DropStmt) -> str:
    with changed(node, concurrent=True) as drop:
        return migrations(("drop the index without blocking reads and writes", [sql(drop)], True))


def unique_via_index(rv: ast.RangeVar, constraint: ast.Constraint, name: str) -> str:
    columns = [k.sval for k in constraint.keys or () if isinstance(k, ast.String)]
    index = ast.IndexStmt(
        idxname=name,
        relation=clone(rv),
        accessMethod="btree",
        indexParams=tuple(
            ast.IndexElem(name=c, ordering=SortByDir.SORTBY_DEFAULT, nulls_ordering=SortByNulls.SORTBY_NULLS_DEFAULT)
            for c in columns
        ),
        unique=True,
        concurrent=True,
    )
    con = ast.Constraint(contype=constraint.contype, conname=name, indexname=name, is_enforced=True)
    return migrations(
        ("build the unique index concurrently", [sql(index)], True),
        (
            "attach it as the constraint (brief ACCESS EXCLUSIVE, no scan)",
            [sql(alter_table(rv, subcommand(AT.AT_AddConstraint, def_=con)))],
            False,
        ),
    )


@lru_cache(maxsize=1)
def lock_timeout_preamble() -> str:
    statements = [
        sql(
            ast.VariableSetStmt(
                kind=VariableSetKind.VAR_SET_VALUE, name=name, args=(ast.A_Const(val=ast.String(sval=value)),)
            )
        )
        for name, value in (("lock_timeout", "2s"), ("statement_timeout", "60s"))
    ]
    return "\n".join(s + ";" for s in statements)
