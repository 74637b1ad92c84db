"""Syntax the target PostgreSQL version does not have yet: the migration would fail there."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ConstrType

from planner.sql.exprs import walk
from planner.sql.rules import rule


def _features(node) -> list[tuple[int, str]]:
    """(first version that has it, what) for each version-dependent feature the statement uses."""
    found = []
    if isinstance(node, ast.ReindexStmt) and any(d.defname == "concurrently" for d in node.params or ()):
        found.append((12, "REINDEX CONCURRENTLY"))
    if isinstance(node, ast.MergeStmt):
        found.append((15, "MERGE"))
    if isinstance(node, ast.CreateTrigStmt) and node.replace:
        found.append((14, "CREATE OR REPLACE TRIGGER"))
    if isinstance(node, ast.IndexStmt) and node.nulls_not_distinct:
        found.append((15, "NULLS NOT DISTINCT"))
    if isinstance(node, ast.AlterTableStmt):
        for cmd in node.cmds or ():
            if cmd.subtype == AT.AT_DetachPartition and getattr(cmd.def_, "concurrent", False):
                found.append((14, "DETACH PARTITION ... CONCURRENTLY"))
            elif cmd.subtype == AT.AT_SetAccessMethod:
                found.append((15, "SET ACCESS METHOD"))
    for item in walk(node) if isinstance(node, ast.CreateStmt | ast.AlterTableStmt) else ():
        if isinstance(item, ast.Constraint):
            if item.contype == ConstrType.CONSTR_GENERATED:
                found.append((12, "generated columns"))
                if item.generated_kind == "v":
                    found.append((18, "virtual generated columns (GENERATED ALWAYS AS (...) without STORED)"))
            elif item.contype == ConstrType.CONSTR_NOTNULL and item.keys:
                found.append((18, "named NOT NULL constraints (ADD CONSTRAINT ... NOT NULL col)"))
            elif item.contype == ConstrType.CONSTR_UNIQUE and item.nulls_not_distinct:
                found.append((15, "NULLS NOT DISTINCT"))
    return found


@rule("unsupported-by-version", "error", "syntax the target PostgreSQL version does not support")
def unsupported_by_version(ctx) -> None:
    for since, what in _features(ctx.node):
        if ctx.pg_version < since:
            ctx.report(
                f"{what} needs PostgreSQL {since} or later; on {ctx.pg_version} this statement fails "
                "(check --pg-version, or rewrite it for the older server)"
            )
