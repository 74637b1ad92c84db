"""Column rules: adding, changing, renaming and dropping columns and their NOT NULL."""

from __future__ import annotations

from functools import partial

from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ConstrType, ObjectType

from planner.sql import fixes
from planner.sql.model import names
from planner.sql.rules import rule
from planner.sql.rules._text import blocked, duration


def _cmds(ctx, subtype):
    if ctx.node.objtype != ObjectType.OBJECT_TABLE:
        return []
    return [c for c in ctx.node.cmds or () if c.subtype == subtype]


def _table(ctx) -> tuple[str, str]:
    return names(ctx.node.relation)


@rule(
    "adding-not-nullable-field",
    "error",
    "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def adding_not_nullable_field(ctx) -> None:
    key, written = _table(ctx)
    for cmd in _cmds(ctx, AT.AT_SetNotNull):
        if not any(r.kind == "not-null-scan" and r.column == cmd.name for r in ctx.effect.reasons):
            continue
        if ctx.pg_version >= 12:
            advice = "add a CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL skips the scan"
            fix = partial(fixes.set_not_null_steps, ctx.node.relation, cmd.name)
        else:
            advice = "PostgreSQL 11 always scans; prefer a validated CHECK (col IS NOT NULL) constraint instead"
            fix = None
        ctx.report(
            f"SET NOT NULL on {written}.{cmd.name} {blocked(ctx, written)} {duration(ctx, written)}; {advice}",
            fix=fix,
            tables=[written],
        )


def _constraint_types(coldef: ast.ColumnDef) -> set:
    return {c.contype for c in coldef.constraints or ()}


@rule(
    "adding-required-field",
    "error",
    "ADD COLUMN ... NOT NULL without a default fails on a table that has rows",
    kinds=("AlterTableStmt",),
)
def adding_required_field(ctx) -> None:
    key, written = _table(ctx)
    if ctx.is_new(key):
        return
    for cmd in _cmds(ctx, AT.AT_AddColumn):
        kinds = _constraint_types(cmd.def_)
        not_null = cmd.def_.is_not_null or ConstrType.CONSTR_NOTNULL in kinds or ConstrType.CONSTR_PRIMARY in kinds
        filled = {ConstrType.CONSTR_DEFAULT, ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED} & kinds
        if not_null and not filled:
            ctx.report(
                f"adding NOT NULL column {cmd.def_.colname} without a default fails on {written} as soon as "
                "it has a row; add it with a constant DEFAULT (no rewrite on 11+) or nullable, backfill, "
                "then SET NOT NULL through a validated CHECK",
                tables=[written],
            )


@rule(
    "adding-field-with-default",
    "error",
    "ADD COLUMN whose value must be computed per row rewrites the table",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def adding_field_with_default(ctx) -> None:
    key, written = _table(ctx)
    for cmd in _cmds(ctx, AT.AT_AddColumn):
        reason = next(
            (r for r in ctx.effect.reasons if r.kind == "column-rewrite" and r.column == cmd.def_.colname), None
        )
        if reason is None:
            continue
        ctx.report(
            f"adding {cmd.def_.colname} rewrites {written} because {reason.detail}: it {blocked(ctx, written)} "
            f"{duration(ctx, written)}; add the column without it, then set the default and backfill in batches",
            fix=partial(_default_fix, ctx.node.relation, cmd.def_),
            tables=[written],
        )


def _default_fix(rv, coldef: ast.ColumnDef) -> str | None:
    default = next((c for c in coldef.constraints or () if c.contype == ConstrType.CONSTR_DEFAULT), None)
    if default is None:
        return None
    column = fixes.clone(coldef)
    dropped = (ConstrType.CONSTR_DEFAULT, ConstrType.CONSTR_NOTNULL)
    column.constraints = tuple(c for c in column.constraints or () if c.contype not in dropped) or None
    column.is_not_null = False
    add = fixes.alter_table(rv, fixes.subcommand(AT.AT_AddColumn, def_=column))
    set_default = fixes.alter_table(
        rv, fixes.subcommand(AT.AT_ColumnDefault, name=coldef.colname, def_=fixes.clone(default.raw_expr))
    )
    return fixes.migrations(
        ("add the column (no rewrite), new rows get the default", [fixes.sql(add), fixes.sql(set_default)], False),
        ("backfill existing rows in batches (planner backfill), then add NOT NULL if needed", [], False),
    )


@rule(
    "changing-column-type",
    "error",
    "ALTER COLUMN TYPE that is not binary-coercible rewrites the table",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def changing_column_type(ctx) -> None:
    key, written = _table(ctx)
    for cmd in _cmds(ctx, AT.AT_AlterColumnType):
        reason = next((r for r in ctx.effect.reasons if r.kind == "type-rewrite" and r.column == cmd.name), None)
        if reason is None:
            continue
        ctx.report(
            f"changing {written}.{cmd.name} ({reason.detail}) rewrites the table: it {blocked(ctx, written)} "
            f"{duration(ctx, written)}; add a new column, backfill it in batches, and switch over (expand/contract)",
            tables=[written],
        )


@rule("renaming-column", "warning", "renaming a column breaks the running application", kinds=("RenameStmt",))
def renaming_column(ctx) -> None:
    if ctx.node.renameType == ObjectType.OBJECT_COLUMN and ctx.node.relation is not None:
        key, written = names(ctx.node.relation)
        if not ctx.is_new(key):
            ctx.report(
                f"renaming {written}.{ctx.node.subname} to {ctx.node.newname} breaks application code still using "
                "the old name; add the new column, dual-write, then drop the old one",
                tables=[written],
            )


@rule("renaming-table", "warning", "renaming a table breaks the running application", kinds=("RenameStmt",))
def renaming_table(ctx) -> None:
    if ctx.node.renameType == ObjectType.OBJECT_TABLE and ctx.node.relation is not None:
        key, written = names(ctx.node.relation)
        if not ctx.is_new(key):
            ctx.report(
                f"renaming {written} to {ctx.node.newname} breaks application code still using the old name; "
                "rename, then create a view with the old name until every client has moved",
                tables=[written],
            )


@rule("ban-drop-column", "warning", "dropping a column breaks code that still reads it", kinds=("AlterTableStmt",))
def ban_drop_column(ctx) -> None:
    key, written = _table(ctx)
    if ctx.is_new(key):
        return
    for cmd in _cmds(ctx, AT.AT_DropColumn):
        ctx.report(
            f"dropping {written}.{cmd.name} breaks running code that still selects or writes it "
            "(including ORMs that list every column); stop using it in a release first",
            tables=[written],
        )


@rule("ban-drop-not-null", "warning", "dropping NOT NULL lets old code's assumptions break", kinds=("AlterTableStmt",))
def ban_drop_not_null(ctx) -> None:
    key, written = _table(ctx)
    if ctx.is_new(key):
        return
    for cmd in _cmds(ctx, AT.AT_DropNotNull):
        ctx.report(
            f"dropping NOT NULL on {written}.{cmd.name} is not backwards compatible: code that assumes a value "
            "will meet NULLs written by the new release",
            tables=[written],
        )
