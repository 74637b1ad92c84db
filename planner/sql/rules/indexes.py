"""Index rules: build and drop indexes concurrently, and never inside a transaction block."""

from __future__ import annotations

from functools import partial

from pglast import ast
from pglast.enums import ObjectType

from planner.sql import fixes
from planner.sql.model import names
from planner.sql.rules import rule
from planner.sql.rules._text import blocked, duration


@rule(
    "require-concurrent-index-creation",
    "error",
    "CREATE INDEX without CONCURRENTLY blocks writes for the whole build",
    kinds=("IndexStmt",),
    size_sensitive=True,
)
def require_concurrent_index_creation(ctx) -> None:
    node = ctx.node
    if node.concurrent:
        return
    key, written = names(node.relation)
    if ctx.is_new(key) or written not in ctx.effect.locks:
        return
    ctx.report(
        f"CREATE INDEX {blocked(ctx, written)} {duration(ctx, written)}; build it with CONCURRENTLY instead",
        fix=partial(fixes.concurrent_index, node),
        tables=[written],
    )


@rule(
    "require-concurrent-index-deletion",
    "warning",
    "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table",
    kinds=("DropStmt",),
)
def require_concurrent_index_deletion(ctx) -> None:
    node = ctx.node
    if node.removeType != ObjectType.OBJECT_INDEX or node.concurrent:
        return
    tables = list(ctx.effect.locks)
    target = f" {blocked(ctx, tables[0])}" if tables else " takes ACCESS EXCLUSIVE on its table, blocking all access"
    ctx.report(
        f"DROP INDEX{target} and waits behind every running query on the table; use DROP INDEX CONCURRENTLY",
        fix=partial(fixes.concurrent_drop_index, node) if len(node.objects or ()) == 1 else None,
        tables=tables,
    )


@rule(
    "ban-concurrent-index-creation-in-transaction",
    "error",
    "CONCURRENTLY cannot run inside a transaction block",
    kinds=("IndexStmt", "DropStmt", "ReindexStmt", "AlterTableStmt"),
)
def ban_concurrent_in_transaction(ctx) -> None:
    if not ctx.effect.no_transaction or not ctx.in_transaction:
        return
    where = (
        "inside BEGIN ... COMMIT"
        if ctx.state.in_transaction_block
        else "in a migration that runs in a transaction (no `-- no-transaction` first line)"
    )
    ctx.report(
        f"{ctx.statement.kind} with CONCURRENTLY fails {where}: PostgreSQL refuses to run it in a transaction block. "
        "Put it in its own migration whose first line is `-- no-transaction`",
    )


@rule(
    "transaction-nesting",
    "error",
    "a statement that cannot run in a transaction block is in a transactional migration",
    kinds=("VacuumStmt", "CreatedbStmt", "DropdbStmt", "AlterSystemStmt", "AlterEnumStmt", "CreateTableSpaceStmt"),
)
def transaction_nesting(ctx) -> None:
    if ctx.effect.no_transaction and ctx.in_transaction:
        ctx.report(
            f"{ctx.statement.kind} cannot run inside a transaction block on PostgreSQL {ctx.pg_version}; "
            "move it to a migration whose first line is `-- no-transaction`"
        )


def _concurrent_reindex(node) -> str:
    with fixes.changed(node, params=(*(node.params or ()), ast.DefElem(defname="concurrently"))) as reindex:
        return fixes.migrations(("rebuild without blocking", [fixes.sql(reindex)], True))


@rule(
    "require-concurrent-reindex",
    "error",
    "REINDEX without CONCURRENTLY blocks writes, and reads that use the index",
    kinds=("ReindexStmt",),
    size_sensitive=True,
)
def require_concurrent_reindex(ctx) -> None:
    if ctx.effect.no_transaction:
        return
    for table in ctx.effect.locks:
        fix = partial(_concurrent_reindex, ctx.node) if ctx.pg_version >= 12 else None
        ctx.report(
            f"REINDEX {blocked(ctx, table)} {duration(ctx, table)}; use REINDEX CONCURRENTLY (12+)",
            fix=fix,
            tables=[table],
        )
