"""Add a unique constraint: build the unique index concurrently, then attach it (ADD CONSTRAINT … USING INDEX)."""

from __future__ import annotations

from psycopg import sql

from planner.recipes.add_index import index_phase, index_statement
from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.lookup import find_column, find_table, require_new_relation, unique_on
from planner.recipes.runbook import DDL_SECONDS, constraint_state, runbook, validation
from planner.recipes.sqltext import derived_name, ident, render, script

PARAMS = (
    Param("table", "Table", "identifier"),
    Param("columns", "Columns", "identifiers", help="Comma-separated; together they must be unique."),
    Param("name", "Constraint name", "identifier", required=False, help="Default: <table>_<columns>_key."),
)


def _name(ref, params: dict) -> str:
    return params["name"] or derived_name(ref.name, *params["columns"], suffix="key")


def validate(schema, params: dict) -> None:
    ref = find_table(schema, params["table"])
    for name in params["columns"]:
        find_column(ref, name, "columns")
    existing = unique_on(schema, ref, params["columns"])
    if existing:
        raise RecipeError("columns", f"({', '.join(params['columns'])}) is already unique through {existing!r}")
    require_new_relation(schema, ref.schema, _name(ref, params), "name")


def build(schema, params: dict) -> PlanDraft:
    ref = find_table(schema, params["table"])
    name = _name(ref, params)
    columns = sql.SQL(", ").join(ident(c) for c in params["columns"])
    duplicates = render(
        "SELECT count(*) FROM (SELECT 1 FROM {t} WHERE ({nn}) GROUP BY {c} HAVING count(*) > 1) AS d",
        t=ref.ident,
        c=columns,
        nn=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(ident(c)) for c in params["columns"]),
    )
    build_phase = index_phase(ref, name, index_statement(ref, params, name, unique=True), what="unique index")
    build_phase.runbook["testing"].insert(
        0, f"Before starting, this returns 0 (duplicates fail the build): {duplicates}"
    )
    parts = {"t": ref.ident, "k": ident(name)}
    attach = PhaseDraft(
        kind="contract",
        name=f"Attach {name} as a unique constraint",
        up_sql=script(render("ALTER TABLE {t} ADD CONSTRAINT {k} UNIQUE USING INDEX {k}", **parts)),
        down_sql=script(render("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {k}", **parts)),
        validations=[validation(f"{name} is a constraint", constraint_state(ref.regclass, name), "validated")],
        runbook=runbook(
            rollback="Run the down SQL: dropping the constraint drops its index too (the previous phase's down "
            "SQL then has nothing left to drop; re-running this phase needs the index phase again).",
            testing=["Inserting a duplicate fails with a unique violation naming the constraint."],
            seconds=DDL_SECONDS,
            notes=["Catalog-only: the index is already built and valid."],
        ),
    )
    title = f"Add unique constraint {name} on {ref.key} ({', '.join(params['columns'])})"
    return PlanDraft(title=title, description=title + ", without blocking writes.", phases=[build_phase, attach])


RECIPE = Recipe(
    name="add_unique",
    title="Add a unique constraint",
    description="CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … UNIQUE USING INDEX.",
    params=PARAMS,
    validate=validate,
    build=build,
)
