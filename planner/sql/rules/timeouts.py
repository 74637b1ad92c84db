"""Session hygiene: lock_timeout / statement_timeout before DDL, idempotent statements outside transactions."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ObjectType

from planner.sql import fixes
from planner.sql.locks import Lock
from planner.sql.rules import rule


@rule(
    "require-timeout-settings",
    "warning",
    "DDL without lock_timeout / statement_timeout can queue and block the application",
)
def require_timeout_settings(ctx) -> None:
    if ctx.file.memo.get("timeouts-reported"):
        return
    if not any(mode >= Lock.SHARE_UPDATE_EXCLUSIVE for mode in ctx.effect.locks.values()):
        return
    missing = [name for name in ("lock_timeout", "statement_timeout") if name not in ctx.state.settings]
    if not missing:
        return
    ctx.file.memo["timeouts-reported"] = True
    ctx.report(
        f"no {' or '.join(missing)} is set before this statement locks {', '.join(ctx.effect.locks)}: while it waits "
        "for its lock behind a long transaction, every new query on the table queues behind it; set them first "
        "(the planner's executor does, and retries on lock timeout)",
        fix=fixes.lock_timeout_preamble,
    )


def _not_robust(node) -> str | None:
    if isinstance(node, ast.CreateStmt | ast.IndexStmt) and not node.if_not_exists:
        return "CREATE without IF NOT EXISTS"
    if isinstance(node, ast.DropStmt) and not node.missing_ok:
        return "DROP without IF EXISTS"
    if isinstance(node, ast.AlterTableStmt) and node.objtype == ObjectType.OBJECT_TABLE:
        for cmd in node.cmds or ():
            if cmd.subtype == AT.AT_AddColumn and not cmd.missing_ok:
                return "ADD COLUMN without IF NOT EXISTS"
            if cmd.subtype in (AT.AT_DropColumn, AT.AT_DropConstraint) and not cmd.missing_ok:
                return "DROP without IF EXISTS"
    return None


@rule(
    "prefer-robust-stmts",
    "warning",
    "outside a transaction, a migration that fails half-way must be re-runnable",
    kinds=("CreateStmt", "IndexStmt", "DropStmt", "AlterTableStmt"),
)
def prefer_robust_stmts(ctx) -> None:
    if ctx.in_transaction:
        return
    problem = _not_robust(ctx.node)
    if problem:
        extra = ""
        if isinstance(ctx.node, ast.IndexStmt) and ctx.node.concurrent:
            extra = "; a failed CREATE INDEX CONCURRENTLY leaves an INVALID index: drop it before retrying"
        ctx.report(f"{problem} cannot be re-run after a partial failure of this no-transaction migration{extra}")
