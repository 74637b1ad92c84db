"""Rename a column without breaking either application version: a new column kept in sync both ways.

expand    add the new column (nullable, no default) and one BEFORE INSERT OR UPDATE trigger that
          copies whichever column a statement wrote into the other (see `sync_body`);
backfill  copy old → new in batches; its rollback copies new → old (a reverse SET, not
          before-images, so a rollback after the contract restores the values written since);
contract  NOT NULL on the new column (CHECK NOT VALID → VALIDATE → SET NOT NULL) when the old one
          had it; then, once only the new application version runs, the default moves over and the
          trigger and the old column are dropped.

Rolling back past the contract brings the old column back empty with a NOT VALID check; the
trigger fills it on every write, the backfill's rollback fills the rows it walked, and the expand
phase's down SQL refuses (loudly, before dropping anything) while a row's columns still differ.

Columns other objects use (indexes, constraints, views, foreign keys, triggers) and serial, identity
or generated columns are refused with what uses them: those must move to the new column first.
"""

from __future__ import annotations

from psycopg import sql

from planner.recipes.add_column import not_null_phases
from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.lookup import find_table_column, require_new_column
from planner.recipes.runbook import (
    BACKFILL_ROWS_PER_SECOND,
    DDL_SECONDS,
    SCAN_ROWS_PER_SECOND,
    column_exists,
    estimate,
    runbook,
    validation,
)
from planner.recipes.sqltext import as_text, derived_name, expression, ident, render, script, type_name
from planner.recipes.sync import (
    SyncTrigger,
    refuse_if,
    require_plain_column,
    require_reproducible_default,
    reverse_backfill_note,
    row,
    sync_trigger,
)

PARAMS = (
    Param("table", "Table", "identifier", help="Table of the column, e.g. users."),
    Param("column", "Column", "identifier", help="The column's current name."),
    Param("new_name", "New name", "identifier", help="The name the application will use."),
)


def validate(schema, params: dict) -> None:
    ref, column = find_table_column(schema, params)
    require_new_column(ref, params["new_name"], "new_name")
    require_plain_column(schema, ref, column.name, "column")
    require_reproducible_default(schema, ref, column.name)
    type_name(column.type, "column")
    sync_trigger(schema, ref, column.name, "column")
    check = derived_name(ref.name, column.name, suffix="was_not_null")
    if column.not_null and check in ref.table.constraints:
        raise RecipeError("column", f"table {ref.key!r} already has a constraint named {check!r}")


def sync_body(old: str, new: str) -> sql.Composable:
    """Both ways: a write to one column is copied to the other; on INSERT the new column wins if set.

    A row neither statement wrote keeps its values, except that a NULL side is filled from the
    other (a row the backfill has not reached yet, or, after a rollback of the contract, a row whose
    old column came back empty), so a NOT VALID check on either column never fails an update.
    If one statement writes both columns differently, the old column's value wins.
    """
    (n_old, o_old), (n_new, o_new) = row(old), row(new)
    return sql.SQL(
        "  IF TG_OP = 'INSERT' THEN\n"
        "    IF {n_new} IS NULL THEN {n_new} := {n_old}; ELSE {n_old} := {n_new}; END IF;\n"
        "  ELSIF {n_new} IS DISTINCT FROM {o_new} AND {n_old} IS NOT DISTINCT FROM {o_old} THEN\n"
        "    {n_old} := {n_new};\n"
        "  ELSIF {n_old} IS DISTINCT FROM {o_old} THEN\n"
        "    {n_new} := {n_old};\n"
        "  ELSIF {n_new} IS NULL THEN\n"
        "    {n_new} := {n_old};\n"
        "  ELSIF {n_old} IS NULL THEN\n"
        "    {n_old} := {n_new};\n"
        "  END IF;\n"
    ).format(n_old=n_old, o_old=o_old, n_new=n_new, o_new=o_new)


def build(schema, params: dict) -> PlanDraft:
    ref, column = find_table_column(schema, params)
    old, new = column.name, params["new_name"]
    trigger = sync_trigger(schema, ref, old, "column")
    type_sql = type_name(column.type, "column")
    default_text = schema.defaults.get((ref.key, old))
    default = expression(default_text, "column") if default_text else None
    check = derived_name(ref.name, old, suffix="was_not_null")
    parts = {"t": ref.ident, "o": ident(old), "n": ident(new), "type": type_sql, "d": default, "k": ident(check)}
    old_check = render("ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({o} IS NOT NULL) NOT VALID", **parts)
    body = sync_body(old, new)
    differ = render("SELECT count(*) FROM {t} WHERE {o} IS DISTINCT FROM {n}", **parts)
    copy_rest = f"manage.py backfill --table {ref.regclass} --set '{as_text(ident(old))} = {as_text(ident(new))}'"
    # Only rows whose new column holds a value (NULL there: never written, nothing to lose).
    unsaved = render("{n} IS NOT NULL AND {o} IS DISTINCT FROM {n}", **parts)
    guard = refuse_if(
        ref,
        unsaved,
        f"{ref.key}: rows where {old} differs from {new}; copy them first ({copy_rest} --where '{unsaved}')",
    )
    restore_not_null = [
        render("ALTER TABLE {t} VALIDATE CONSTRAINT {k}", **parts),
        render("ALTER TABLE {t} ALTER COLUMN {o} SET NOT NULL", **parts),
        render("ALTER TABLE {t} DROP CONSTRAINT {k}", **parts),
    ]
    spec = {
        "table": ref.regclass,
        "set": render("{n} = {o}", **parts),
        "where": render("{n} IS DISTINCT FROM {o}", **parts),
        "reverse_set": render("{o} = {n}", **parts),
        "reverse_where": render("{o} IS DISTINCT FROM {n}", **parts),
        "capture_before_images": False,
    }
    phases = [
        PhaseDraft(
            kind="expand",
            name=f"Add column {new}, kept in sync with {old} by a trigger",
            up_sql=script(
                render("ALTER TABLE {t} ADD COLUMN {n} {type}", **parts),
                *trigger.create(body),
                column.not_null and old_check,
            ),
            down_sql=script(
                guard,
                *(restore_not_null if column.not_null else ()),
                *trigger.drop(),
                render("ALTER TABLE {t} DROP COLUMN IF EXISTS {n}", **parts),
            ),
            validations=[
                validation(f"column {new} exists", column_exists(ref.regclass, new), 1),
                validation(f"trigger {trigger.name} exists", trigger.exists_query(), 1),
            ],
            runbook=runbook(
                rollback=f"Run the down SQL: it drops the trigger and {new}. It first checks that no row's {old} "
                f"differs from {new} (after a rollback of the contract, roll back the backfill first) and stops "
                "with an error if one does, so no value written to the new column is lost.",
                testing=[
                    f"The running application version still inserts and updates {old}; {new} follows it.",
                    f"An UPDATE of {new} alone is copied to {old}; an INSERT giving only {new} fills {old}.",
                ],
                seconds=DDL_SECONDS,
                notes=[
                    "One short transaction: ADD COLUMN and CREATE TRIGGER are catalog-only (ACCESS EXCLUSIVE "
                    "for milliseconds once granted); no write between them escapes the trigger.",
                    "The trigger only assigns to NEW, so it cannot recurse.",
                ]
                + (
                    [f"{check} (NOT VALID) is a placeholder a rollback of the contract relies on."]
                    if column.not_null
                    else []
                ),
            ),
        ),
        PhaseDraft(
            kind="backfill",
            name=f"Copy {old} into {new}",
            backfill_spec=spec,
            down_sql=reverse_backfill_note(spec),
            validations=[validation(f"every row has {new} = {old}", differ, 0)],
            runbook=runbook(
                rollback=f"Roll back the run: it copies {new} back into {old} in batches over the rows it walked "
                "(a no-op unless the contract was rolled back first).",
                testing=[f"{differ} returns 0 once it is done (the trigger keeps new rows equal)."],
                seconds=estimate(ref.rows, BACKFILL_ROWS_PER_SECOND),
                rows=ref.rows,
                notes=["No before-images: the reverse SET is exact because both columns hold the same value."],
            ),
        ),
    ]
    if column.not_null:
        phases += not_null_phases(
            ref,
            new,
            gate=f"The backfill succeeded: every row has {new} = {old}.",
            testing=f"Inserts of the old application version still succeed: the trigger fills {new} from {old}.",
        )
    phases.append(_switch_phase(ref, column, new, trigger, body, parts, old_check, default))
    title = f"Rename column {ref.key}.{old} to {new}"
    return PlanDraft(
        title=title, description=f"{title} through a synced copy, without breaking either version.", phases=phases
    )


def _switch_phase(ref, column, new: str, trigger: SyncTrigger, body, parts, old_check: str, default) -> PhaseDraft:
    old = column.name
    return PhaseDraft(
        kind="contract",
        name=f"Switch to {new}: drop the trigger and column {old}",
        up_sql=script(
            *trigger.drop(if_exists=False),
            default is not None and render("ALTER TABLE {t} ALTER COLUMN {n} SET DEFAULT {d}", **parts),
            render("ALTER TABLE {t} DROP COLUMN {o}", **parts),
        ),
        down_sql=script(
            render("ALTER TABLE {t} ADD COLUMN {o} {type}", **parts),
            default is not None and render("ALTER TABLE {t} ALTER COLUMN {n} DROP DEFAULT", **parts),
            default is not None and render("ALTER TABLE {t} ALTER COLUMN {o} SET DEFAULT {d}", **parts),
            *trigger.create(body),
            column.not_null and old_check,
        ),
        validations=[
            validation(f"column {old} is gone", column_exists(ref.regclass, old), 0),
            validation(f"trigger {trigger.name} is gone", trigger.exists_query(), 0),
            validation(f"column {new} exists", column_exists(ref.regclass, new), 1),
        ],
        runbook=runbook(
            rollback=f"Run the down SQL: {old} comes back empty (nullable, with a NOT VALID check if it was NOT "
            f"NULL) and the trigger fills it on every write; then roll back the earlier phases in reverse — the "
            f"backfill's rollback copies {new} into {old}, the expand phase's down SQL restores NOT NULL.",
            testing=[
                f"The new application version reads and writes {new} only; nothing mentions {old}.",
                f"\\d {ref.key} shows {new} with {old}'s type, NOT NULL and default, and no {trigger.name} trigger.",
            ],
            seconds=DDL_SECONDS,
            gate=f"Deploy the application version that reads and writes only {new}; no instance of the previous "
            f"version (which uses {old}) is still running, including workers, cron jobs and replicas' readers.",
            notes=[
                "One short transaction, catalog-only: DROP COLUMN marks the column dropped without a rewrite.",
                f"Estimated scan for a rollback: {estimate(ref.rows, SCAN_ROWS_PER_SECOND)} s (VALIDATE).",
                f"Values written to {new} from now on survive a rollback: {old} is refilled from them.",
                "Prepared `SELECT *` statements on the table fail with 'cached plan must not change result type' "
                "once the column is dropped, until their connection is replaced: list columns explicitly, or "
                "recycle the application's connection pools after this phase.",
            ],
        ),
    )


RECIPE = Recipe(
    name="rename_column",
    title="Rename a column",
    description="Add the new column with a two-way sync trigger, backfill it, switch the application, then "
    "drop the old column and the trigger; every step has its down SQL.",
    params=PARAMS,
    validate=validate,
    build=build,
)
