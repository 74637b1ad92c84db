"""Change a column's type (int → bigint, any type PostgreSQL casts both ways) without a table rewrite.

`ALTER COLUMN … TYPE` rewrites the table (and its indexes) under ACCESS EXCLUSIVE for as long as
that takes. Instead:

expand    a shadow column of the new type and a trigger copying every write of the column into it;
backfill  fill the shadow column in batches; its rollback casts the shadow back into the column
          (a reverse SET, so values written after the swap are restored by a rollback);
contract  NOT NULL on the shadow (CHECK NOT VALID → VALIDATE → SET NOT NULL) if the column had it;
          the swap, in one short catalog-only transaction: drop the trigger, rename the column to
          `<column>_old` (made nullable: nothing writes it any more) and the shadow to the column's
          name, move the default; finally drop `<column>_old`.

Key columns (primary key, unique, indexed, referenced) are refused: their index must be rebuilt
CONCURRENTLY on the shadow column and swapped in with the names (`ADD CONSTRAINT … PRIMARY KEY
USING INDEX`), and referencing foreign keys re-created — not written yet; moving a primary key to
other columns is change_primary_key's job. Serial/identity columns are refused too (the sequence is
owned by the old column).
"""

from __future__ import annotations

from psycopg import sql

from planner.recipes.add_column import not_null_phases
from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.lookup import find_table_column, require_new_column
from planner.recipes.runbook import (
    BACKFILL_ROWS_PER_SECOND,
    DDL_SECONDS,
    column_exists,
    estimate,
    runbook,
    validation,
)
from planner.recipes.sqltext import as_text, derived_name, expression, ident, literal, render, script, type_name
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
    Param("table", "Table", "identifier", help="Table of the column, e.g. orders."),
    Param("column", "Column", "identifier", help="The column whose type changes."),
    Param("type", "New type", "type", help="e.g. bigint, numeric(14,2), text, timestamptz."),
)


def _names(column: str) -> tuple[str, str]:
    """(shadow column, old column after the swap)."""
    return derived_name(column, suffix="new"), derived_name(column, suffix="old")


def validate(schema, params: dict) -> None:
    ref, column = find_table_column(schema, params)
    new_type = as_text(type_name(params["type"], "type"))
    old_type = as_text(type_name(column.type, "column"))
    if new_type == old_type or new_type == column.type:
        raise RecipeError("type", f"{ref.key}.{column.name} already is {column.type}")
    for constraint in ref.table.constraints.values():
        if constraint.kind == "p" and column.name in constraint.columns:
            raise RecipeError(
                "column",
                f"{ref.key}.{column.name} is part of primary key {constraint.name}, and this recipe does not "
                "change key columns. To key the table by other columns (e.g. (tenant_id, id) instead of a uuid), "
                "use the change_primary_key recipe; for a key of another type, add a column of that type "
                "(add_column), fill it, then move the primary key onto it with change_primary_key",
            )
    require_plain_column(schema, ref, column.name, "column")
    require_reproducible_default(schema, ref, column.name)
    problem = schema.cast_error(old_type, new_type)
    if problem:
        raise RecipeError("type", f"{column.type} cannot become {new_type}: {problem}")
    problem = schema.cast_error(new_type, old_type)
    if problem:
        raise RecipeError("type", f"{new_type} cannot be cast back to {column.type}, which a rollback needs: {problem}")
    for name in _names(column.name):
        require_new_column(ref, name, "column")
    sync_trigger(schema, ref, column.name, "column")
    check = derived_name(ref.name, column.name, suffix="was_not_null")
    if column.not_null and check in ref.table.constraints:
        raise RecipeError("column", f"table {ref.key!r} already has a constraint named {check!r}")


def sync_body(column: str, shadow: str, new_type, old_type) -> sql.Composable:
    """Every write of the column is cast into the shadow. After a rollback of the swap, a row whose
    column came back empty is filled from the shadow when it is next written (its NOT VALID check
    would otherwise refuse the write)."""
    (n_col, o_col), (n_shadow, _) = row(column), row(shadow)
    return sql.SQL(
        "  IF TG_OP = 'INSERT' OR {n_col} IS DISTINCT FROM {o_col} THEN\n"
        "    {n_shadow} := CAST({n_col} AS {new});\n"
        "  ELSIF {n_col} IS NULL AND {n_shadow} IS NOT NULL THEN\n"
        "    {n_col} := CAST({n_shadow} AS {old});\n"
        "  END IF;\n"
    ).format(n_col=n_col, o_col=o_col, n_shadow=n_shadow, new=new_type, old=old_type)


def _has_type(ref, column: str, type_sql) -> str:
    """1 when `column` has the base type of `type_sql` (typmods aside)."""
    return render(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass({t}) AND attname = {c} "
        "AND NOT attisdropped AND atttypid = to_regtype({ty})",
        t=literal(ref.regclass),
        c=literal(column),
        ty=literal(as_text(type_sql)),
    )


def build(schema, params: dict) -> PlanDraft:
    ref, column = find_table_column(schema, params)
    name = column.name
    shadow, retired = _names(name)
    trigger = sync_trigger(schema, ref, name, "column")
    new_type, old_type = type_name(params["type"], "type"), type_name(column.type, "column")
    default_text = schema.defaults.get((ref.key, name))
    default = expression(default_text, "column") if default_text else None
    check = derived_name(ref.name, name, suffix="was_not_null")
    parts = {
        "t": ref.ident,
        "c": ident(name),
        "s": ident(shadow),
        "r": ident(retired),
        "new": new_type,
        "old": old_type,
        "d": default,
        "k": ident(check),
    }
    body = sync_body(name, shadow, new_type, old_type)
    add_check = render("ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID", **parts)
    cast_differs = render("{s} IS DISTINCT FROM CAST({c} AS {new})", **parts)
    unsaved = render("{s} IS NOT NULL AND {c} IS DISTINCT FROM CAST({s} AS {old})", **parts)
    copy_rest = (
        f"manage.py backfill --table {ref.regclass} --set '{render('{c} = CAST({s} AS {old})', **parts)}' "
        f"--where '{unsaved}'"
    )
    new_text, old_text = as_text(new_type), column.type
    spec = {
        "table": ref.regclass,
        "set": render("{s} = CAST({c} AS {new})", **parts),
        "where": cast_differs,
        "reverse_set": render("{c} = CAST({s} AS {old})", **parts),
        "reverse_where": unsaved,
        "capture_before_images": False,
    }
    phases = [
        PhaseDraft(
            kind="expand",
            name=f"Add shadow column {shadow} {new_text}, filled by a trigger",
            up_sql=script(
                render("ALTER TABLE {t} ADD COLUMN {s} {new}", **parts),
                *trigger.create(body),
                column.not_null and add_check,
            ),
            down_sql=script(
                refuse_if(
                    ref, unsaved, f"{ref.key}: rows where {name} differs from {shadow}; copy them first ({copy_rest})"
                ),
                column.not_null and render("ALTER TABLE {t} VALIDATE CONSTRAINT {k}", **parts),
                column.not_null and render("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL", **parts),
                column.not_null and render("ALTER TABLE {t} DROP CONSTRAINT {k}", **parts),
                *trigger.drop(),
                render("ALTER TABLE {t} DROP COLUMN IF EXISTS {s}", **parts),
            ),
            validations=[
                validation(f"column {shadow} exists", column_exists(ref.regclass, shadow), 1),
                validation(f"trigger {trigger.name} exists", trigger.exists_query(), 1),
            ],
            runbook=runbook(
                rollback=f"Run the down SQL: it drops the trigger and {shadow}. It first checks that every value "
                f"in {shadow} is also in {name} and stops with an error if not (after a rollback of the swap, roll "
                "back the backfill first), so nothing written since the swap is lost.",
                testing=[
                    f"The running application version still inserts and updates {name}; {shadow} follows it.",
                    f"A write whose value does not fit {new_text} fails now, not at the swap: check error logs.",
                ],
                seconds=DDL_SECONDS,
                notes=[
                    "One short transaction: ADD COLUMN and CREATE TRIGGER are catalog-only.",
                    "The trigger only assigns to NEW, so it cannot recurse.",
                ],
            ),
        ),
        PhaseDraft(
            kind="backfill",
            name=f"Fill {shadow} from {name}",
            backfill_spec=spec,
            down_sql=reverse_backfill_note(spec),
            validations=[
                validation(
                    f"every row has {shadow} = {name}",
                    render("SELECT count(*) FROM {t} WHERE ", **parts) + cast_differs,
                    0,
                )
            ],
            runbook=runbook(
                rollback=f"Roll back the run: it casts {shadow} back into {name} in batches over the rows it walked "
                "(a no-op unless the swap was rolled back first; a value that does not fit the old type stops it).",
                testing=["The validation query returns 0 once it is done (the trigger keeps new writes equal)."],
                seconds=estimate(ref.rows, BACKFILL_ROWS_PER_SECOND),
                rows=ref.rows,
            ),
        ),
    ]
    if column.not_null:
        phases += not_null_phases(
            ref,
            shadow,
            gate=f"The backfill succeeded: every row has {shadow} = {name}.",
            testing=f"Inserts of the running application still succeed: the trigger fills {shadow} from {name}.",
        )
    phases.append(_swap_phase(ref, column, shadow, retired, trigger, body, parts, add_check, default, new_text))
    phases.append(_drop_phase(ref, column, retired, parts))
    title = f"Change {ref.key}.{name} from {old_text} to {new_text}"
    return PlanDraft(
        title=title, description=f"{title} through a shadow column, without a table rewrite.", phases=phases
    )


def _swap_phase(ref, column, shadow, retired, trigger: SyncTrigger, body, parts, add_check, default, new_text):
    name = column.name
    return PhaseDraft(
        kind="contract",
        name=f"Swap: {shadow} becomes {name}, {name} becomes {retired}",
        up_sql=script(
            *trigger.drop(if_exists=False),
            default is not None and render("ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT", **parts),
            column.not_null and render("ALTER TABLE {t} DROP CONSTRAINT {k}", **parts),
            column.not_null and render("ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL", **parts),
            render("ALTER TABLE {t} RENAME COLUMN {c} TO {r}", **parts),
            render("ALTER TABLE {t} RENAME COLUMN {s} TO {c}", **parts),
            default is not None and render("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d}", **parts),
        ),
        down_sql=script(
            default is not None and render("ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT", **parts),
            render("ALTER TABLE {t} RENAME COLUMN {c} TO {s}", **parts),
            render("ALTER TABLE {t} RENAME COLUMN {r} TO {c}", **parts),
            default is not None and render("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d}", **parts),
            column.not_null and add_check,
            *trigger.create(body),
        ),
        validations=[
            validation(f"{name} is {new_text}", _has_type(ref, name, parts["new"]), 1),
            validation(f"{retired} exists", column_exists(ref.regclass, retired), 1),
            validation(f"trigger {trigger.name} is gone", trigger.exists_query(), 0),
        ],
        runbook=runbook(
            rollback=f"Run the down SQL: the names go back and the trigger returns; rows written since the swap "
            f"have their value in {shadow} only — roll back the backfill to cast it back into {name} (rows it did "
            "not walk are filled on their next write; the expand phase's down SQL refuses while any is left).",
            testing=[
                f"\\d {ref.key} shows {name} as {new_text} and {retired} as {column.type} (nullable).",
                f"The application reads and writes {name} with values of {new_text}.",
                "After the pool recycle, no 'cached plan must not change result type' error in application logs.",
            ],
            seconds=DDL_SECONDS,
            gate=f"Deploy the application version that works with {name} as {new_text} (and, until this phase has "
            f"run, as {column.type}); for a strictly typed client such as sqlx, one that decodes both.",
            notes=[
                "One short transaction of catalog-only statements under ACCESS EXCLUSIVE, once granted; no rewrite.",
                f"After it, nothing writes {retired}: it only keeps the old values for a rollback.",
                f"Prepared statements that return {name} (sqlx, JDBC, psycopg after 5 runs, PgBouncer with "
                "prepared statements) fail with 'cached plan must not change result type' on every run until "
                "their connection is replaced: recycle the application's connection pools right after this "
                "phase (any type change does this, ALTER COLUMN … TYPE too).",
            ],
        ),
    )


def _drop_phase(ref, column, retired, parts) -> PhaseDraft:
    return PhaseDraft(
        kind="contract",
        name=f"Drop {retired}",
        up_sql=script(render("ALTER TABLE {t} DROP COLUMN {r}", **parts)),
        down_sql=script(render("ALTER TABLE {t} ADD COLUMN {r} {old}", **parts)),
        validations=[validation(f"{retired} is gone", column_exists(ref.regclass, retired), 0)],
        runbook=runbook(
            rollback=f"Run the down SQL: {retired} comes back empty; after the swap's down SQL, the backfill's "
            f"rollback refills {column.name} from the shadow column.",
            testing=[f"Nothing reads {retired}; \\d {ref.key} no longer lists it."],
            seconds=DDL_SECONDS,
            gate=f"The swap's validations passed and the application ran on the new type long enough that no "
            f"rollback to {column.type} is wanted.",
            notes=["DROP COLUMN is catalog-only; the space is reclaimed as rows are rewritten by later updates."],
        ),
    )


RECIPE = Recipe(
    name="change_column_type",
    title="Change a column's type",
    description="A shadow column of the new type filled by a trigger and a backfill, swapped in by renaming in "
    "one short transaction, the old column dropped last; no table rewrite.",
    params=PARAMS,
    validate=validate,
    build=build,
)
