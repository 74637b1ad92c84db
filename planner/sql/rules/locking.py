"""Lock-duration rules: anything that blocks for a time that grows with the table, and lock hygiene."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ObjectType

from planner.sql.locks import Lock
from planner.sql.model import names
from planner.sql.rules import rule
from planner.sql.rules._text import blocked, duration


@rule(
    "full-table-dml",
    "error",
    "UPDATE/DELETE without WHERE changes every row in one transaction",
    kinds=("UpdateStmt", "DeleteStmt"),
    size_sensitive=True,
)
def full_table_dml(ctx) -> None:
    for table in ctx.effect.full_table_dml:
        verb = "UPDATE" if isinstance(ctx.node, ast.UpdateStmt) else "DELETE"
        ctx.report(
            f"{verb} without WHERE row-locks every row of {table} until commit, blocking concurrent "
            "UPDATE/DELETE of any row for a time that grows with the table, and bloats it; backfill in "
            "small batches (planner backfill) instead",
            tables=[table],
        )


@rule(
    "ban-vacuum-full",
    "error",
    "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE",
    kinds=("VacuumStmt",),
    size_sensitive=True,
)
def ban_vacuum_full(ctx) -> None:
    for table in ctx.effect.rewrites:
        ctx.report(
            f"VACUUM FULL {blocked(ctx, table)} {duration(ctx, table)}; use pg_repack or pg_squeeze online",
            tables=[table],
        )


@rule(
    "ban-cluster",
    "error",
    "CLUSTER rewrites the table under ACCESS EXCLUSIVE",
    kinds=("ClusterStmt",),
    size_sensitive=True,
)
def ban_cluster(ctx) -> None:
    for table in ctx.effect.rewrites:
        ctx.report(f"CLUSTER {blocked(ctx, table)} {duration(ctx, table)}; use pg_repack online", tables=[table])


@rule(
    "require-concurrent-refresh",
    "warning",
    "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads of the view",
    kinds=("RefreshMatViewStmt",),
    size_sensitive=True,
)
def require_concurrent_refresh(ctx) -> None:
    if not ctx.node.concurrent:
        for table in ctx.effect.locks:
            ctx.report(
                f"REFRESH MATERIALIZED VIEW {blocked(ctx, table)} while the query runs; use CONCURRENTLY "
                "(needs a unique index on the view)",
                tables=[table],
            )


@rule(
    "attach-partition-scan",
    "warning",
    "ATTACH PARTITION scans the partition under ACCESS EXCLUSIVE",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def attach_partition_scan(ctx) -> None:
    for reason in ctx.effect.reasons:
        if reason.kind == "partition-scan":
            ctx.report(
                f"ATTACH PARTITION {blocked(ctx, reason.table)} {duration(ctx, reason.table)} to check the "
                "partition bound; first add a CHECK constraint matching the bound NOT VALID and VALIDATE it, "
                "then the attach skips the scan",
                tables=[reason.table],
            )


@rule(
    "require-concurrent-detach",
    "warning",
    "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent (14+ has CONCURRENTLY)",
    kinds=("AlterTableStmt",),
)
def require_concurrent_detach(ctx) -> None:
    if ctx.pg_version < 14:
        return
    for cmd in ctx.node.cmds or ():
        if cmd.subtype == AT.AT_DetachPartition and not cmd.def_.concurrent:
            _key, written = names(ctx.node.relation)
            if written in ctx.effect.locks:
                ctx.report(
                    f"DETACH PARTITION {blocked(ctx, written)}; DETACH PARTITION ... CONCURRENTLY (14+, in its "
                    "own no-transaction migration) takes only SHARE UPDATE EXCLUSIVE",
                    tables=[written],
                )


@rule(
    "multiple-alter-table",
    "warning",
    "several ALTER TABLE statements on one table: each one queues for the lock again",
    kinds=("AlterTableStmt",),
)
def multiple_alter_table(ctx) -> None:
    if ctx.node.objtype != ObjectType.OBJECT_TABLE:
        return
    key, written = names(ctx.node.relation)
    if written not in ctx.effect.locks:
        return
    seen = ctx.file.memo.setdefault("altered", {})
    if key in seen:
        ctx.report(
            f"{written} was already altered on line {seen[key]}; combine the sub-commands into one ALTER TABLE "
            "so the table is locked (and rewritten or scanned) once",
        )
    else:
        seen[key] = ctx.statement.line


@rule(
    "holding-access-exclusive",
    "warning",
    "slow work runs while an earlier statement of the transaction holds ACCESS EXCLUSIVE",
    size_sensitive=True,
)
def holding_access_exclusive(ctx) -> None:
    held = ctx.file.memo.setdefault("access-exclusive", {})
    if isinstance(ctx.node, ast.TransactionStmt):
        held.clear()
        return
    if not ctx.in_transaction:
        held.clear()
    heavy = set(ctx.effect.scans) | set(ctx.effect.rewrites) | set(ctx.effect.full_table_dml)
    others = dict(held)  # taken by earlier statements of this transaction, released only at commit
    if heavy and others:
        names_ = ", ".join(f"{t} (line {line})" for t, line in others.items())
        ctx.report(
            f"ACCESS EXCLUSIVE on {names_} is still held while this statement scans or rewrites "
            f"{', '.join(sorted(heavy))}: every query on those tables waits for it too; move slow work to its own "
            "migration or before the lock",
            tables=list(others),
        )
    if ctx.in_transaction:
        for table, mode in ctx.effect.locks.items():
            if mode == Lock.ACCESS_EXCLUSIVE:
                held.setdefault(table, ctx.statement.line)


@rule("enum-value-change", "info", "changing an enum type's values", kinds=("AlterEnumStmt",))
def enum_value_change(ctx) -> None:
    node = ctx.node
    if node.oldVal:
        ctx.report(
            f"renaming enum value {node.oldVal!r} breaks running code that still writes the old label",
            severity="warning",
        )
    elif ctx.pg_version >= 12 and ctx.in_transaction:
        ctx.report(
            f"ADD VALUE {node.newVal!r} takes no table lock, but the new value cannot be used before this "
            "transaction commits; use it only in a later migration"
        )


@rule(
    "blocking-statement",
    "error",
    "any other statement that holds SHARE or stronger while it scans or rewrites a table",
    size_sensitive=True,
)
def blocking_statement(ctx) -> None:
    """The safety net: whatever the specific rules did not explain, the lock model still reports."""
    if not ctx.statement.blocking:
        return
    explained = {t for f in ctx.found if f.severity == "error" for t in f.tables}
    for table, mode in ctx.effect.locks.items():
        if mode < Lock.SHARE or table in explained:
            continue
        if table in ctx.effect.rewrites or table in ctx.effect.scans:
            ctx.report(f"{ctx.statement.kind} {blocked(ctx, table)} {duration(ctx, table)}", tables=[table])
