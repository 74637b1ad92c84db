"""Constraint rules: validate separately (NOT VALID), build unique indexes concurrently, index FKs."""

from __future__ import annotations

from functools import partial

from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ConstrType, ObjectType

from planner.sql import fixes
from planner.sql.findings import Finding
from planner.sql.model import names
from planner.sql.rules import rule
from planner.sql.rules._text import blocked, duration


def _added(ctx):
    """(constraint) for each ADD CONSTRAINT of an existing table in this ALTER TABLE."""
    if ctx.node.objtype != ObjectType.OBJECT_TABLE:
        return []
    key, _written = names(ctx.node.relation)
    if ctx.is_new(key):
        return []
    return [
        c.def_ for c in ctx.node.cmds or () if c.subtype == AT.AT_AddConstraint and isinstance(c.def_, ast.Constraint)
    ]


def _name(con: ast.Constraint, table: str, suffix: str) -> str:
    if con.conname:
        return con.conname
    columns = [k.sval for k in (con.fk_attrs or con.keys or ()) if isinstance(k, ast.String)]
    return fixes.identifier(table, *columns[:1], suffix)


def _two_step(rv: ast.RangeVar, con: ast.Constraint, suffix: str) -> str:
    name = _name(con, rv.relname, suffix)
    return fixes.migrations(
        (
            "add the constraint without checking existing rows (brief lock)",
            [fixes.add_constraint_not_valid(rv, con, name)],
            False,
        ),
        (
            "validate it in a later migration (SHARE UPDATE EXCLUSIVE: reads and writes go on)",
            [fixes.validate_constraint(rv, name)],
            False,
        ),
    )


@rule(
    "adding-foreign-key-constraint",
    "error",
    "ADD FOREIGN KEY validates every row while blocking writes on both tables",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def adding_foreign_key_constraint(ctx) -> None:
    _key, written = names(ctx.node.relation)
    for con in _added(ctx):
        if con.contype != ConstrType.CONSTR_FOREIGN or con.skip_validation:
            continue
        ref = names(con.pktable)[1]
        tables = [t for t in (written, ref) if t in ctx.effect.locks]
        where = " and ".join(blocked(ctx, t).replace("holds ", "") for t in tables)
        ctx.report(
            f"adding a validated foreign key holds {where} {duration(ctx, written)}; "
            "add it NOT VALID, then VALIDATE CONSTRAINT in the next migration",
            fix=partial(_two_step, ctx.node.relation, con, "fkey"),
            tables=tables,
        )


@rule(
    "adding-foreign-key-column-with-default",
    "error",
    "ADD COLUMN ... DEFAULT ... REFERENCES validates every row under ACCESS EXCLUSIVE",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def adding_foreign_key_column_with_default(ctx) -> None:
    for reason in ctx.effect.reasons:
        if reason.kind == "fk-validation" and reason.column:
            ctx.report(
                f"adding {reason.column} with a default and a foreign key checks every existing row against "
                f"{reason.detail}: it {blocked(ctx, reason.table)} {duration(ctx, reason.table)}; add the column "
                "without the foreign key, then ADD CONSTRAINT ... NOT VALID and VALIDATE it in the next migration",
                tables=[reason.table],
            )


@rule(
    "constraint-missing-not-valid",
    "error",
    "ADD CHECK scans the whole table under ACCESS EXCLUSIVE",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def constraint_missing_not_valid(ctx) -> None:
    _key, written = names(ctx.node.relation)
    for con in _added(ctx):
        if con.contype not in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_NOTNULL) or con.skip_validation:
            continue
        ctx.report(
            f"adding a validated CHECK constraint {blocked(ctx, written)} {duration(ctx, written)}; "
            "add it NOT VALID, then VALIDATE CONSTRAINT in the next migration",
            fix=partial(_two_step, ctx.node.relation, con, "check") if con.contype == ConstrType.CONSTR_CHECK else None,
            tables=[written],
        )


@rule(
    "disallowed-unique-constraint",
    "error",
    "ADD UNIQUE / PRIMARY KEY builds its index under ACCESS EXCLUSIVE",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def disallowed_unique_constraint(ctx) -> None:
    _key, written = names(ctx.node.relation)
    for con in _added(ctx):
        if con.contype not in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY) or con.indexname:
            continue
        suffix = "pkey" if con.contype == ConstrType.CONSTR_PRIMARY else "key"
        name = con.conname or (
            fixes.identifier(ctx.node.relation.relname, "pkey")
            if suffix == "pkey"
            else _name(con, ctx.node.relation.relname, "key")
        )
        ctx.report(
            f"adding a {'primary key' if suffix == 'pkey' else 'unique constraint'} builds its index while it "
            f"{blocked(ctx, written)} {duration(ctx, written)}; build a unique index CONCURRENTLY, then "
            "ADD CONSTRAINT ... USING INDEX",
            fix=partial(fixes.unique_via_index, ctx.node.relation, con, name),
            tables=[written],
        )


@rule(
    "adding-exclusion-constraint",
    "error",
    "an exclusion constraint is built under ACCESS EXCLUSIVE and cannot be added concurrently",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def adding_exclusion_constraint(ctx) -> None:
    _key, written = names(ctx.node.relation)
    for con in _added(ctx):
        if con.contype == ConstrType.CONSTR_EXCLUSION:
            ctx.report(
                f"adding an exclusion constraint {blocked(ctx, written)} {duration(ctx, written)}; PostgreSQL has "
                "no concurrent or NOT VALID form: schedule it in a maintenance window or enforce it differently",
                tables=[written],
            )


@rule(
    "ban-alter-domain-with-add-constraint",
    "error",
    "ALTER DOMAIN ... ADD CONSTRAINT checks every column of the domain under SHARE",
    kinds=("AlterDomainStmt",),
    size_sensitive=True,
)
def ban_alter_domain_with_add_constraint(ctx) -> None:
    node = ctx.node
    if node.subtype not in ("C", "O") or (node.subtype == "C" and node.def_.skip_validation):
        return
    tables = [r.table for r in ctx.effect.reasons if r.kind == "domain-check"]
    where = "; ".join(f"{blocked(ctx, t)} {duration(ctx, t)}" for t in tables)
    ctx.report(
        "adding a validated domain constraint checks every column of that type in every table"
        + (f": it {where}" if where else ", holding SHARE on each (writes wait) while it scans")
        + "; add CHECK constraints NOT VALID to the tables instead, or ADD CONSTRAINT ... NOT VALID on the domain",
        tables=tables,
    )


@rule(
    "validate-in-same-transaction",
    "warning",
    "VALIDATE in the transaction that added the constraint keeps the ADD's strong lock during the scan",
    kinds=("AlterTableStmt",),
    size_sensitive=True,
)
def validate_in_same_transaction(ctx) -> None:
    key, written = names(ctx.node.relation)
    if not ctx.in_transaction or ctx.is_new(key):
        return
    added_not_valid = ctx.file.memo.setdefault("not-valid", set())
    for cmd in ctx.node.cmds or ():
        if cmd.subtype == AT.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint) and cmd.def_.skip_validation:
            added_not_valid.add((key, cmd.def_.conname))
        elif cmd.subtype == AT.AT_ValidateConstraint and (key, cmd.name) in added_not_valid:
            ctx.report(
                f"{cmd.name} is validated in the same transaction that added it, so the ACCESS EXCLUSIVE / "
                f"SHARE ROW EXCLUSIVE lock of the ADD on {written} is still held during the validation scan; "
                "validate in the next migration",
                tables=[written],
            )


@rule(
    "fk-without-index",
    "warning",
    "a foreign key without an index on its columns makes deletes and updates of the referenced table scan",
    kinds=("AlterTableStmt", "CreateStmt"),
)
def fk_without_index(ctx) -> None:
    """Recorded here, decided at the end of the file (the index may come later in it)."""
    pending = ctx.file.memo.setdefault("fk-without-index", [])
    if isinstance(ctx.node, ast.CreateStmt):
        key, written = names(ctx.node.relation)
        elements = ctx.node.tableElts or ()
        cons = [e for e in elements if isinstance(e, ast.Constraint)]
        for column in (e for e in elements if isinstance(e, ast.ColumnDef)):
            for con in column.constraints or ():
                if con.contype == ConstrType.CONSTR_FOREIGN:
                    pending.append((ctx.statement, key, written, (column.colname,), con))
    else:
        key, written = names(ctx.node.relation)
        cons = [c.def_ for c in ctx.node.cmds or () if isinstance(c.def_, ast.Constraint)]
        for cmd in ctx.node.cmds or ():
            if cmd.subtype == AT.AT_AddColumn:
                for con in cmd.def_.constraints or ():
                    if con.contype == ConstrType.CONSTR_FOREIGN:
                        pending.append((ctx.statement, key, written, (cmd.def_.colname,), con))
    for con in cons:
        if con.contype == ConstrType.CONSTR_FOREIGN:
            columns = tuple(k.sval for k in con.fk_attrs or () if isinstance(k, ast.String))
            pending.append((ctx.statement, key, written, columns, con))


def finish_fk_without_index(context, catalog) -> list:
    """Findings for foreign keys still without a covering index once the whole file has run."""
    found = []
    for statement, key, written, columns, con in context.memo.get("fk-without-index", []):
        covered = any(index.columns[: len(columns)] == columns for index in catalog.indexes_of(key))
        if covered or not columns:
            continue
        ref = names(con.pktable)[1]
        found.append(
            (
                statement,
                Finding(
                    "fk-without-index",
                    "warning",
                    f"no index on {written} ({', '.join(columns)}): every DELETE or key UPDATE on {ref} scans "
                    f"{written} under a row lock, and ON DELETE CASCADE gets slow; add an index concurrently",
                    tables=(written,),
                ),
            )
        )
    return found
