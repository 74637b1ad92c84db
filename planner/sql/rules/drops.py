"""Destructive statements: DROP TABLE / DATABASE, TRUNCATE (CASCADE)."""

from __future__ import annotations

from pglast.enums import DropBehavior, ObjectType

from planner.sql.rules import rule
from planner.sql.rules._text import blocked


@rule("ban-drop-table", "error", "dropping a table loses data and breaks code that uses it", kinds=("DropStmt",))
def ban_drop_table(ctx) -> None:
    if ctx.node.removeType != ObjectType.OBJECT_TABLE:
        return
    tables = [t for t in ctx.effect.locks]
    existing = [".".join(p.sval for p in obj) for obj in ctx.node.objects or ()]
    existing = [t for t in existing if t in ctx.effect.locks or not ctx.is_new(t)]
    if not existing:
        return
    ctx.report(
        f"DROP TABLE {', '.join(existing)} deletes the data and breaks code still using it; it also takes "
        f"ACCESS EXCLUSIVE on {', '.join(tables) or 'the table'} (and on tables linked by foreign keys)",
        tables=tables,
    )


@rule("ban-drop-database", "error", "dropping a database", kinds=("DropdbStmt",))
def ban_drop_database(ctx) -> None:
    ctx.report(f"DROP DATABASE {ctx.node.dbname} deletes every table in it; a migration should never do this")


@rule(
    "ban-truncate-cascade",
    "error",
    "TRUNCATE CASCADE empties every table that references this one",
    kinds=("TruncateStmt",),
)
def ban_truncate_cascade(ctx) -> None:
    if ctx.node.behavior == DropBehavior.DROP_CASCADE:
        ctx.report(
            "TRUNCATE ... CASCADE also empties every table with a foreign key to these tables, recursively, "
            f"and {', '.join(blocked(ctx, t) for t in ctx.effect.locks) or 'locks them all ACCESS EXCLUSIVE'}",
            tables=list(ctx.effect.locks),
        )


@rule("ban-truncate", "warning", "TRUNCATE deletes every row under ACCESS EXCLUSIVE", kinds=("TruncateStmt",))
def ban_truncate(ctx) -> None:
    if ctx.node.behavior != DropBehavior.DROP_CASCADE and ctx.effect.locks:
        ctx.report(
            f"TRUNCATE deletes every row and {'; '.join(blocked(ctx, t) for t in ctx.effect.locks)} until commit",
            tables=list(ctx.effect.locks),
        )
