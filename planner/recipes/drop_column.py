"""Drop a column safely: stop using it, prove nothing does, then drop it.

expand    only for a NOT NULL column without a default: DROP NOT NULL, so the application version
          that no longer writes the column can insert (catalog-only);
contract  (canary, optional) rename it to `<column>_deprecated` once that version is deployed: a
          forgotten reader fails loudly while the values are still there and one rename restores them;
contract  drop it. Catalog-only; the values are gone, so the down SQL re-creates the column empty and
          nullable (with its default) — restore values from a backup if they are ever needed again.

Columns other objects use (indexes, constraints, views, foreign keys) are refused: DROP COLUMN would
drop them silently or fail; drop those first.
"""

from __future__ import annotations

from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.lookup import find_table_column, require_new_column
from planner.recipes.runbook import (
    DDL_SECONDS,
    SCAN_ROWS_PER_SECOND,
    column_exists,
    column_not_null,
    estimate,
    runbook,
    validation,
)
from planner.recipes.sqltext import derived_name, expression, ident, render, script, type_name
from planner.recipes.sync import refuse_if, require_plain_column, require_reproducible_default

PARAMS = (
    Param("table", "Table", "identifier", help="Table of the column, e.g. users."),
    Param("column", "Column", "identifier", help="The column to drop."),
    Param(
        "canary",
        "Rename to <column>_deprecated first",
        "bool",
        required=False,
        default=True,
        help="A reversible rename before the drop: anything still using the column fails while its data is kept.",
    ),
)


def validate(schema, params: dict) -> None:
    ref, column = find_table_column(schema, params)
    require_plain_column(schema, ref, column.name, "column")
    require_reproducible_default(schema, ref, column.name)
    type_name(column.type, "column")
    if params["canary"]:
        require_new_column(ref, derived_name(column.name, suffix="deprecated"), "column")
    if len(ref.table.columns) == 1:
        raise RecipeError("column", f"{column.name} is the only column of {ref.key}: drop the table instead")


def build(schema, params: dict) -> PlanDraft:
    ref, column = find_table_column(schema, params)
    name = column.name
    retired = derived_name(name, suffix="deprecated") if params["canary"] else name
    default_text = schema.defaults.get((ref.key, name))
    default = expression(default_text, "column") if default_text else None
    check = derived_name(ref.name, name, suffix="was_not_null")
    parts = {
        "t": ref.ident,
        "c": ident(name),
        "r": ident(retired),
        "type": type_name(column.type, "column"),
        "d": default,
        "k": ident(check),
    }
    gate = (
        f"Deploy the application version that neither reads nor writes {name} (for ORMs: the column is removed "
        "from the model or ignored, so no SELECT * or INSERT lists it); no instance of the previous version is "
        "still running."
    )
    phases = []
    if column.not_null and default is None:
        phases.append(_nullable_phase(ref, name, parts, check))
    if params["canary"]:
        phases.append(
            PhaseDraft(
                kind="contract",
                name=f"Canary: rename {name} to {retired}",
                up_sql=script(render("ALTER TABLE {t} RENAME COLUMN {c} TO {r}", **parts)),
                down_sql=script(render("ALTER TABLE {t} RENAME COLUMN {r} TO {c}", **parts)),
                validations=[
                    validation(f"column {name} is gone", column_exists(ref.regclass, name), 0),
                    validation(f"column {retired} exists", column_exists(ref.regclass, retired), 1),
                ],
                runbook=runbook(
                    rollback=f"Run the down SQL: one catalog-only rename gives {name} back with every value.",
                    testing=[
                        f"Application logs and pg_stat_statements show no error mentioning {name} "
                        "(column does not exist) for a full business cycle (a day, a weekly job).",
                    ],
                    seconds=DDL_SECONDS,
                    gate=gate,
                    notes=["Catalog-only under ACCESS EXCLUSIVE for milliseconds once granted."],
                ),
            )
        )
    phases.append(
        PhaseDraft(
            kind="contract",
            name=f"Drop column {retired}",
            up_sql=script(render("ALTER TABLE {t} DROP COLUMN {r}", **parts)),
            down_sql=script(
                render("ALTER TABLE {t} ADD COLUMN {r} {type}", **parts),
                default is not None and render("ALTER TABLE {t} ALTER COLUMN {r} SET DEFAULT {d}", **parts),
            ),
            validations=[validation(f"column {retired} is gone", column_exists(ref.regclass, retired), 0)],
            runbook=runbook(
                rollback=f"Run the down SQL: {retired} comes back nullable and empty (NULL in every existing row; "
                f"new rows get its default). Its values are not restored: take a backup before this phase "
                f"(pg_dump --table {ref.regclass}) and copy them back with a backfill if they are needed.",
                testing=[f"\\d {ref.key} no longer lists {retired}; the application's tests pass against it."],
                seconds=DDL_SECONDS,
                gate=(
                    "The canary ran a full business cycle with no error about the column, and a backup of the "
                    "values exists if they might ever be needed."
                    if params["canary"]
                    else gate
                ),
                notes=[
                    "Catalog-only: the column is marked dropped; its space is reclaimed as rows are rewritten.",
                    "Prepared `SELECT *` statements on the table fail with 'cached plan must not change result type' "
                    "once the column is dropped, until their connection is replaced: list columns explicitly, or "
                    "recycle the application's connection pools after this phase.",
                ],
            ),
        )
    )
    title = f"Drop column {ref.key}.{name}"
    return PlanDraft(
        title=title,
        description=f"{title}: stop using it, "
        + ("rename it as a canary, " if params["canary"] else "")
        + "then drop it; the values cannot be restored by a rollback.",
        phases=phases,
        high_risk=True,
    )


def _nullable_phase(ref, name: str, parts: dict, check: str) -> PhaseDraft:
    nulls = render("{c} IS NULL", **parts)
    return PhaseDraft(
        kind="expand",
        name=f"Let inserts omit {name} (DROP NOT NULL)",
        up_sql=script(render("ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL", **parts)),
        down_sql=script(
            refuse_if(
                ref,
                nulls,
                f"{ref.key}: rows with {name} NULL (written by the version that omits it); fill them with a "
                f"backfill before NOT NULL can come back",
            ),
            render("ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID", **parts),
            render("ALTER TABLE {t} VALIDATE CONSTRAINT {k}", **parts),
            render("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL", **parts),
            render("ALTER TABLE {t} DROP CONSTRAINT {k}", **parts),
        ),
        validations=[validation(f"{name} is nullable", column_not_null(ref.regclass, name), False)],
        runbook=runbook(
            rollback=f"Run the down SQL: it first checks (without locking) that no row has {name} NULL and stops "
            "if one does; then it restores NOT NULL through a check validated in the same transaction, which "
            f"holds ACCESS EXCLUSIVE during the scan (about {estimate(ref.rows, SCAN_ROWS_PER_SECOND)} s).",
            testing=[f"The running version still writes {name}; an INSERT without {name} now succeeds."],
            seconds=DDL_SECONDS,
            notes=[f"Catalog-only. {check} exists only during a rollback."],
        ),
    )


RECIPE = Recipe(
    name="drop_column",
    title="Drop a column",
    description="Stop using it (DROP NOT NULL first if inserts must omit it), rename it as a canary, then drop "
    "it; the down SQL re-creates it empty.",
    params=PARAMS,
    validate=validate,
    build=build,
)
