"""Add a column: nullable first (with its default), backfill existing rows, then NOT NULL without a long lock.

NOT NULL goes CHECK (c IS NOT NULL) NOT VALID → VALIDATE → SET NOT NULL (which then skips its scan)
→ drop the check, each step in its own phase so no ACCESS EXCLUSIVE lock is held during a scan.
"""

from __future__ import annotations

from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.lookup import find_table, require_new_column
from planner.recipes.runbook import (
    BACKFILL_ROWS_PER_SECOND,
    DDL_SECONDS,
    NOTHING_TO_UNDO,
    SCAN_ROWS_PER_SECOND,
    column_exists,
    column_not_null,
    constraint_state,
    estimate,
    runbook,
    validation,
)
from planner.recipes.sqltext import (
    as_text,
    derived_name,
    expression,
    ident,
    is_volatile_expression,
    render,
    script,
    type_name,
)

PARAMS = (
    Param("table", "Table", "identifier", help="Table to add the column to, e.g. users or billing.invoices."),
    Param("column", "Column", "identifier", help="Name of the new column."),
    Param("type", "Type", "type", help="PostgreSQL type, e.g. boolean, text, timestamptz, numeric(10,2)."),
    Param("default", "Default", "expression", required=False, help="Default for new rows, e.g. false or now()."),
    Param(
        "backfill",
        "Value for existing rows",
        "expression",
        required=False,
        help="Expression over the row's other columns, e.g. verified_at IS NOT NULL. Empty: the default.",
    ),
    Param("not_null", "NOT NULL", "bool", required=False, default=False, help="Make the column NOT NULL at the end."),
)


def validate(schema, params: dict) -> None:
    ref = find_table(schema, params["table"])
    require_new_column(ref, params["column"], "column")
    rendered = as_text(type_name(params["type"], "type"))
    problem = schema.cast_error(rendered, rendered)
    if problem:
        raise RecipeError("type", problem)
    if params["default"]:
        expression(params["default"], "default")
    if params["backfill"]:
        expression(params["backfill"], "backfill")
    if params["not_null"] and not params["default"]:
        raise RecipeError(
            "default",
            "is required with NOT NULL: the running application version inserts rows without this column",
        )


def build(schema, params: dict) -> PlanDraft:
    ref = find_table(schema, params["table"])
    column = params["column"]
    col = ident(column)
    type_sql = type_name(params["type"], "type")
    default = expression(params["default"], "default") if params["default"] else None
    fill = expression(params["backfill"], "backfill") if params["backfill"] else default
    # A constant default fills existing rows in the catalog at once (PostgreSQL 11+): no backfill needed.
    instant = default is not None and params["backfill"] is None and not is_volatile_expression(as_text(default))
    parts = {"t": ref.ident, "c": col, "type": type_sql, "d": default}
    if instant:
        up = script(render("ALTER TABLE {t} ADD COLUMN {c} {type} DEFAULT {d}", **parts))
    else:
        up = script(
            render("ALTER TABLE {t} ADD COLUMN {c} {type}", **parts),
            default is not None and render("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d}", **parts),
        )
    phases = [
        PhaseDraft(
            kind="expand",
            name=f"Add column {column} (nullable)",
            up_sql=up,
            down_sql=script(render("ALTER TABLE {t} DROP COLUMN IF EXISTS {c}", **parts)),
            validations=[validation(f"column {column} exists", column_exists(ref.regclass, column), 1)],
            runbook=runbook(
                rollback="Run the down SQL: it drops the column (and any value written to it).",
                testing=[
                    "The running application version still inserts, updates and reads rows of the table.",
                    f"New rows get {as_text(default)} in {column}." if default else f"{column} is NULL in new rows.",
                ],
                seconds=DDL_SECONDS,
                notes=["A catalog-only change: ACCESS EXCLUSIVE for milliseconds once granted, no rewrite."],
            ),
        )
    ]
    if fill is not None and not instant:
        where = render("{c} IS NULL", c=col)
        seconds = estimate(ref.rows, BACKFILL_ROWS_PER_SECOND)
        phases.append(
            PhaseDraft(
                kind="backfill",
                name=f"Backfill {column}",
                backfill_spec={
                    "table": ref.regclass,
                    "set": render("{c} = {v}", c=col, v=fill),
                    "where": where,
                    "capture_before_images": True,
                },
                validations=[validation(f"no row without {column}", _nulls(ref, col), 0)] if params["not_null"] else [],
                runbook=runbook(
                    rollback="Roll back the run: before-images put NULL back in exactly the rows it filled; rolling "
                    "back the expand phase then drops the column.",
                    testing=[f"SELECT count(*) … WHERE {as_text(col)} IS NULL returns 0 once it is done."],
                    seconds=seconds,
                    rows=ref.rows,
                    notes=["Batches in key order; new rows already get the default, so none are missed."],
                ),
            )
        )
    if params["not_null"]:
        phases += not_null_phases(ref, column)
    title = f"Add column {column} to {ref.key}"
    return PlanDraft(title=title, description=f"{title} ({as_text(type_sql)}).", phases=phases)


def _nulls(ref, col) -> str:
    return render("SELECT count(*) FROM {t} WHERE {c} IS NULL", t=ref.ident, c=col)


def not_null_phases(ref, column: str, *, gate: str | None = None, testing: str | None = None) -> list[PhaseDraft]:
    """CHECK NOT VALID → VALIDATE → SET NOT NULL (and drop the check), one phase each.

    `gate` and `testing` replace the first phase's gate and test for recipes where a trigger, not
    the application, fills the column.
    """
    check = derived_name(ref.name, column, suffix="not_null")
    parts = {"t": ref.ident, "c": ident(column), "k": ident(check)}
    add_check = render("ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID", **parts)
    if gate is None:
        gate = f"Deploy the application version that always writes {column} (or relies on its default)."
    if testing is None:
        testing = f"An INSERT with {column} = NULL now fails with a check violation."
    scan = estimate(ref.rows, SCAN_ROWS_PER_SECOND)
    return [
        PhaseDraft(
            kind="contract",
            name=f"Check {column} IS NOT NULL for new rows (NOT VALID)",
            up_sql=script(add_check),
            down_sql=script(render("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {k}", **parts)),
            validations=[validation(f"{check} exists", constraint_state(ref.regclass, check), "not valid")],
            runbook=runbook(
                rollback="Run the down SQL: it drops the check.",
                testing=[testing],
                seconds=DDL_SECONDS,
                gate=gate,
            ),
        ),
        PhaseDraft(
            kind="contract",
            name=f"Validate {check}",
            up_sql=script(render("ALTER TABLE {t} VALIDATE CONSTRAINT {k}", **parts)),
            down_sql=NOTHING_TO_UNDO,
            validations=[validation(f"{check} validated", constraint_state(ref.regclass, check), "validated")],
            runbook=runbook(
                rollback="Nothing to undo: the previous phase's down SQL drops the check.",
                testing=["Reads and writes continue during the scan (SHARE UPDATE EXCLUSIVE only)."],
                seconds=scan,
                rows=ref.rows,
            ),
        ),
        PhaseDraft(
            kind="contract",
            name=f"Set {column} NOT NULL",
            up_sql=script(
                render("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL", **parts),
                render("ALTER TABLE {t} DROP CONSTRAINT {k}", **parts),
            ),
            down_sql=script(
                add_check,
                render("ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL", **parts),
            ),
            validations=[validation(f"{column} is NOT NULL", column_not_null(ref.regclass, column), True)],
            runbook=runbook(
                rollback="Run the down SQL: NOT NULL goes, the check comes back NOT VALID (the earlier phases' "
                "down SQL removes it).",
                testing=[f"\\d {ref.key} shows {column} NOT NULL and no {check} check."],
                seconds=DDL_SECONDS,
                notes=["SET NOT NULL skips its scan because the validated check proves no NULL exists."],
            ),
        ),
    ]


RECIPE = Recipe(
    name="add_column",
    title="Add a column",
    description="Add a column nullable with its default, backfill existing rows, then optionally make it "
    "NOT NULL through a validated check, without holding a long lock.",
    params=PARAMS,
    validate=validate,
    build=build,
)
