"""Add a foreign key: its supporting index concurrently, the constraint NOT VALID, then VALIDATE.

NOT VALID takes its locks only for a moment and checks new writes from then on; VALIDATE checks
the existing rows under SHARE UPDATE EXCLUSIVE (reads and writes continue), once a gate query has
shown there are no orphans.
"""

from __future__ import annotations

from psycopg import sql

from planner.recipes.add_index import index_phase
from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.lookup import find_column, find_table, unique_on
from planner.recipes.runbook import (
    DDL_SECONDS,
    NOTHING_TO_UNDO,
    SCAN_ROWS_PER_SECOND,
    constraint_state,
    estimate,
    runbook,
    validation,
)
from planner.recipes.sqltext import derived_name, ident, render, script

ON_DELETE = {"no action": "NO ACTION", "restrict": "RESTRICT", "cascade": "CASCADE", "set null": "SET NULL"}

PARAMS = (
    Param("table", "Table", "identifier", help="The referencing table, e.g. orders."),
    Param("columns", "Columns", "identifiers", help="Its referencing columns, e.g. user_id."),
    Param("ref_table", "Referenced table", "identifier", help="e.g. users."),
    Param(
        "ref_columns",
        "Referenced columns",
        "identifiers",
        required=False,
        help="Default: the referenced table's primary key.",
    ),
    Param("name", "Constraint name", "identifier", required=False, help="Default: <table>_<columns>_fkey."),
    Param("on_delete", "On delete", "choice", required=False, default="no action", choices=tuple(ON_DELETE)),
    Param(
        "index",
        "Index the referencing columns",
        "bool",
        required=False,
        default=True,
        help="Deletes on the referenced table then find referencing rows by index.",
    ),
)


def _resolve(schema, params: dict):
    ref = find_table(schema, params["table"])
    target = find_table(schema, params["ref_table"], "ref_table")
    columns = [find_column(ref, name, "columns") for name in params["columns"]]
    ref_names = params["ref_columns"]
    if not ref_names:
        primary = [c for c in target.table.constraints.values() if c.kind == "p"]
        if not primary:
            raise RecipeError("ref_columns", f"table {target.key!r} has no primary key: name the referenced columns")
        ref_names = primary[0].columns
    ref_columns = [find_column(target, name, "ref_columns") for name in ref_names]
    return ref, target, columns, ref_columns


def _name(ref, params: dict) -> str:
    return params["name"] or derived_name(ref.name, *params["columns"], suffix="fkey")


def validate(schema, params: dict) -> None:
    ref, target, columns, ref_columns = _resolve(schema, params)
    if len(columns) != len(ref_columns):
        raise RecipeError("ref_columns", f"{len(ref_columns)} referenced columns for {len(columns)} columns")
    names = tuple(c.name for c in ref_columns)
    if unique_on(schema, target, names) is None:
        raise RecipeError(
            "ref_columns",
            f"{target.key}({', '.join(names)}) has no unique index or primary key: a foreign key needs one "
            "(add a unique constraint first)",
        )
    for column, referenced in zip(columns, ref_columns, strict=True):
        problem = schema.cast_error(column.type, referenced.type) if column.type != referenced.type else None
        if problem:
            raise RecipeError(
                "columns",
                f"{column.name} ({column.type}) cannot reference {referenced.name} ({referenced.type}): {problem}",
            )
    if _name(ref, params) in ref.table.constraints:
        raise RecipeError("name", f"table {ref.key!r} already has a constraint named {_name(ref, params)!r}")
    if params["on_delete"] == "set null" and any(c.not_null for c in columns):
        raise RecipeError("on_delete", "SET NULL needs nullable columns")


def _indexed(schema, ref, columns: tuple[str, ...]) -> bool:
    return any(
        index.table == ref.key and index.columns[: len(columns)] == columns for index in schema.catalog.indexes.values()
    )


def build(schema, params: dict) -> PlanDraft:
    ref, target, columns, ref_columns = _resolve(schema, params)
    names = tuple(c.name for c in columns)
    fk = _name(ref, params)
    phases = []
    if params["index"] and not _indexed(schema, ref, names):
        index = derived_name(ref.name, *names, suffix="idx")
        statement = render(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {i} ON {t} ({c})",
            i=ident(index),
            t=ref.ident,
            c=sql.SQL(", ").join(ident(n) for n in names),
        )
        phases.append(index_phase(ref, index, statement, what="index"))
    parts = {
        "t": ref.ident,
        "k": ident(fk),
        "c": sql.SQL(", ").join(ident(n) for n in names),
        "r": target.ident,
        "rc": sql.SQL(", ").join(ident(c.name) for c in ref_columns),
        "od": sql.SQL(ON_DELETE[params["on_delete"]]),
    }
    orphans = _orphans(ref, target, names, [c.name for c in ref_columns])
    phases.append(
        PhaseDraft(
            kind="expand",
            name=f"Add foreign key {fk} (NOT VALID)",
            up_sql=script(
                render(
                    "ALTER TABLE {t} ADD CONSTRAINT {k} FOREIGN KEY ({c}) REFERENCES {r} ({rc}) "
                    "ON DELETE {od} NOT VALID",
                    **parts,
                )
            ),
            down_sql=script(render("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {k}", **parts)),
            validations=[
                validation(f"{fk} exists", constraint_state(ref.regclass, fk), "not valid"),
                validation("no orphan rows", orphans, 0),
            ],
            runbook=runbook(
                rollback="Run the down SQL: it drops the constraint.",
                testing=[
                    "New rows pointing at a missing parent are rejected.",
                    "Find orphans left by older writes with the 'no orphan rows' query; fix them before validating.",
                ],
                seconds=DDL_SECONDS,
            ),
        )
    )
    phases.append(
        PhaseDraft(
            kind="contract",
            name=f"Validate {fk}",
            up_sql=script(render("ALTER TABLE {t} VALIDATE CONSTRAINT {k}", **parts)),
            down_sql=NOTHING_TO_UNDO,
            validations=[validation(f"{fk} validated", constraint_state(ref.regclass, fk), "validated")],
            runbook=runbook(
                rollback="Nothing to undo: the previous phase's down SQL drops the constraint.",
                testing=["Reads and writes of both tables continue during the check."],
                seconds=estimate(ref.rows, SCAN_ROWS_PER_SECOND),
                rows=ref.rows,
                gate="The 'no orphan rows' query of the previous phase returns 0.",
            ),
        )
    )
    title = f"Add foreign key {ref.key}({', '.join(names)}) → {target.key}"
    return PlanDraft(title=title, description=title + ", validated without blocking writes.", phases=phases)


def _orphans(ref, target, names, ref_names) -> str:
    match = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(ident(r), ident(n)) for n, r in zip(names, ref_names, strict=True)
    )
    present = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(ident(n)) for n in names)
    return render(
        "SELECT count(*) FROM {t} AS c WHERE {present} AND NOT EXISTS (SELECT 1 FROM {r} AS p WHERE {match})",
        t=ref.ident,
        r=target.ident,
        present=present,
        match=match,
    )


RECIPE = Recipe(
    name="add_foreign_key",
    title="Add a foreign key",
    description="Supporting index CONCURRENTLY, the constraint NOT VALID, then VALIDATE once no orphan is left.",
    params=PARAMS,
    validate=validate,
    build=build,
)
