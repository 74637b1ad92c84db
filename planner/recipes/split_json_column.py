"""Split a JSON column into a new table: create it, keep both in step by triggers, backfill, switch, drop.

expand    (a NOT NULL column first loses NOT NULL: the next version inserts rows without it) CREATE TABLE
          <new_table>: the parent's primary key as its own, a foreign key to the parent (ON DELETE /
          ON UPDATE CASCADE), the document NOT NULL; the parent's table privileges; and two AFTER row
          triggers keeping the column and the new table in step both ways — a write of the column
          upserts (set to NULL: deletes) the new table's row, a write of the new table sets (deleted:
          clears) the column — so the old and the new application version can run side by side;
backfill  a no-op `SET column = column` over rows whose document is not in the new table yet: the
          parent's trigger copies each one. Its rollback is a reverse SET copying the new table's
          documents back into the column, for rows that have one and differ;
contract  once only the version that reads and writes the new table runs: drop both triggers and the
          column.

The document moves whole, with its type (json or jsonb), into one column of the new table, and a row
exists there exactly when the document is not NULL. The triggers therefore copy values without casting
them — no write of the running version can fail on a value of an unexpected type — and a rollback
rebuilds the column exactly. Splitting keys into typed columns is a later plan on the new table
(add_column with a backfill from the document), once only the new version writes it.

Rolling back past the contract brings the column back empty and the triggers back (the new version,
still running, is mirrored into the column again); the backfill's rollback refills the rows it walked,
and the expand phase's down SQL refuses, before dropping anything, while a row of the new table still
differs from its column (rows inserted after the backfill: its message says how to copy them).

Why the triggers cannot loop: each writes the other table only where the value there differs, so a
write bounces once and stops. Both run as their owner (SECURITY DEFINER, pinned search_path), because
the old version's role may have no privileges on the new table. While both versions write the same row
at the same moment they lock the two tables in opposite orders, so one may get a deadlock error.

Refused: columns with a default (the next version's inserts would create the new table's row from it
and its own INSERT would then conflict: drop the default first), columns other objects use (indexes,
views, constraints), tables without a primary key, partitioned tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.lookup import TableRef, find_table_column, require_new_relation, split_name
from planner.recipes.runbook import (
    BACKFILL_ROWS_PER_SECOND,
    DDL_SECONDS,
    SCAN_ROWS_PER_SECOND,
    column_exists,
    column_not_null,
    estimate,
    runbook,
    validation,
)
from planner.recipes.sqltext import derived_name, ident, literal, render, script, type_name
from planner.recipes.sync import (
    SyncTrigger,
    dollar_quoted,
    named_trigger,
    refuse_if,
    require_plain_column,
    reverse_backfill_note,
    sync_trigger,
)
from planner.sql.catalog import Table, qualify

JSON_TYPES = ("json", "jsonb")

PARAMS = (
    Param("table", "Table", "identifier", help="Table of the JSON column, e.g. users."),
    Param("column", "JSON column", "identifier", help="A json or jsonb column, e.g. metadata."),
    Param("new_table", "New table", "identifier", help="Table to create for the documents, e.g. user_metadata."),
    Param(
        "new_column",
        "Column in the new table",
        "identifier",
        required=False,
        help="Name of the document's column in the new table. Default: the JSON column's name.",
    ),
)


@dataclass(frozen=True)
class Split:
    """Everything the phases are built from, resolved (and checked) against the schema."""

    ref: TableRef  # the parent
    column: str
    type: str  # json or jsonb
    not_null: bool
    child: TableRef  # the new table (not in the schema yet)
    doc: str  # the document's column in the new table
    keys: tuple[str, ...]  # the parent's primary key, also the new table's
    parent_trigger: SyncTrigger
    child_trigger: SyncTrigger
    pkey: str
    fkey: str
    check: str  # NOT VALID check a rollback restores NOT NULL through

    @property
    def parts(self) -> dict:
        return {
            "t": self.ref.ident,
            "c": ident(self.column),
            "n": self.child.ident,
            "d": ident(self.doc),
            "type": sql.SQL(self.type),
            "k": ident(self.check),
        }

    def join(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        """`left.k1 = right.k1 AND …` over the key columns (`left`/`right`: a table or NEW / OLD)."""
        return sql.SQL(" AND ").join(
            sql.SQL("{}.{} = {}.{}").format(left, ident(key), right, ident(key)) for key in self.keys
        )


def _resolve(schema, params: dict) -> Split:
    ref, column = find_table_column(schema, params)
    if column.type not in JSON_TYPES:
        raise RecipeError("column", f"{ref.key}.{column.name} is {column.type}, not json or jsonb")
    if ref.table.kind == "p" or ref.table.partitions:
        raise RecipeError("table", f"{ref.key} is partitioned; this recipe does not handle partitioned tables")
    primary = [c for c in ref.table.constraints.values() if c.kind == "p"]
    if not primary:
        raise RecipeError("table", f"{ref.key} has no primary key: the new table's rows need one to refer to")
    keys = primary[0].columns
    if column.name in keys:
        raise RecipeError("column", f"{ref.key}.{column.name} is part of the primary key")
    default = schema.defaults.get((ref.key, column.name))
    if default:
        raise RecipeError(
            "column",
            f"{ref.key}.{column.name} has a default ({default}): rows the next version inserts would get a row in "
            "the new table from it, and its own INSERT there would then conflict; deploy a version that writes "
            "the value itself, drop the default, then run this recipe",
        )
    require_plain_column(schema, ref, column.name, "column")
    child_schema, child_name = split_name(params["new_table"], "new_table")
    require_new_relation(schema, child_schema, child_name, "new_table")
    child = TableRef(
        qualify(child_schema, child_name), child_schema, child_name, Table(qualify(child_schema, child_name))
    )
    doc = params["new_column"] or column.name
    if doc in keys:
        raise RecipeError("new_column", f"{doc!r} is a primary key column, which the new table has too")
    if len(doc.encode()) > 63:
        raise RecipeError("new_column", f"{doc!r} is longer than PostgreSQL's 63-byte limit for names")
    pkey = derived_name(child_name, suffix="pkey")
    require_new_relation(schema, child_schema, pkey, "new_table")  # the primary key's index is a relation
    child_trigger = named_trigger(schema, child, derived_name(child_name, doc, suffix="sync"), "new_table")
    check = derived_name(ref.name, column.name, suffix="was_not_null")
    if column.not_null and check in ref.table.constraints:
        raise RecipeError("column", f"table {ref.key!r} already has a constraint named {check!r}")
    return Split(
        ref=ref,
        column=column.name,
        type=column.type,
        not_null=column.not_null,
        child=child,
        doc=doc,
        keys=tuple(keys),
        parent_trigger=sync_trigger(schema, ref, column.name, "column"),
        child_trigger=child_trigger,
        pkey=pkey,
        fkey=derived_name(child_name, *keys, suffix="fkey"),
        check=check,
    )


def validate(schema, params: dict) -> None:
    _resolve(schema, params)


# -- SQL pieces ----------------------------------------------------------------------------------------


def create_table(s: Split) -> str:
    """The new table: the key's columns with the parent's types, the document NOT NULL, PK and FK.

    A plain (validated) foreign key is fine here: the table is new and empty, so nothing is scanned;
    it takes SHARE ROW EXCLUSIVE on the parent for the moment of the CREATE."""
    keys = sql.SQL(", ").join(ident(key) for key in s.keys)
    columns = [
        sql.SQL("{} {} NOT NULL").format(ident(key), type_name(s.ref.table.columns[key].type, "table"))
        for key in s.keys
    ]
    columns.append(sql.SQL("{} {} NOT NULL").format(ident(s.doc), sql.SQL(s.type)))
    columns.append(sql.SQL("CONSTRAINT {} PRIMARY KEY ({})").format(ident(s.pkey), keys))
    columns.append(
        sql.SQL("CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE CASCADE ON UPDATE CASCADE").format(
            ident(s.fkey), keys, s.ref.ident, keys
        )
    )
    return render("CREATE TABLE {n} ({cols})", n=s.child.ident, cols=sql.SQL(", ").join(columns))


def copy_privileges(s: Split) -> str:
    """GRANT on the new table what roles other than the owner have on the parent (SELECT … DELETE), so
    the next version reads and writes it with the privileges it has on the parent. Role names are only
    known on the server: quote_ident() quotes them there."""
    body = render(
        "DECLARE\n  granted record;\nBEGIN\n"
        "  FOR granted IN SELECT DISTINCT a.privilege_type, a.grantee FROM pg_class c, aclexplode(c.relacl) a\n"
        "    WHERE c.oid = to_regclass({t}) AND a.grantee <> c.relowner\n"
        "      AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')\n"
        "  LOOP\n"
        "    EXECUTE format('GRANT %s ON TABLE %s TO %s', granted.privilege_type, to_regclass({n}),\n"
        "      CASE WHEN granted.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(granted.grantee)) END);\n"
        "  END LOOP;\nEND\n",
        t=literal(s.ref.regclass),
        n=literal(s.child.regclass),
    )
    return "DO " + dollar_quoted(body, "grants")


def parent_body(s: Split) -> sql.Composable:
    """A write of the column: upsert its document into the new table, or delete the row there once the
    column is set to NULL. Only where the new table's value differs, so the bounce back stops."""
    keys = sql.SQL(", ").join(ident(key) for key in s.keys)
    new_keys = sql.SQL(", ").join(sql.SQL("NEW.{}").format(ident(key)) for key in s.keys)
    return sql.SQL(
        "  IF NEW.{c} IS NOT NULL THEN\n"
        "    INSERT INTO {n} ({keys}, {d}) VALUES ({new_keys}, NEW.{c})\n"
        "      ON CONFLICT ON CONSTRAINT {pkey} DO UPDATE SET {d} = EXCLUDED.{d}\n"
        "      WHERE {n}.{d}::text IS DISTINCT FROM EXCLUDED.{d}::text;\n"
        "  ELSIF TG_OP = 'UPDATE' AND OLD.{c} IS NOT NULL THEN\n"
        "    DELETE FROM {n} WHERE {match};\n"
        "  END IF;\n"
    ).format(
        keys=keys,
        new_keys=new_keys,
        pkey=ident(s.pkey),
        match=s.join(s.child.ident, sql.SQL("NEW")),  # NEW: an ON UPDATE CASCADE moved the key already
        **s.parts,
    )


def child_body(s: Split) -> sql.Composable:
    """A write of the new table: set the parent's column to the document, or clear it when the row is
    deleted (a parent's own delete cascades here and finds nothing left to clear)."""
    return sql.SQL(
        "  IF TG_OP = 'DELETE' THEN\n"
        "    UPDATE {t} SET {c} = NULL WHERE {old_match} AND {t}.{c} IS NOT NULL;\n"
        "  ELSE\n"
        "    UPDATE {t} SET {c} = NEW.{d} WHERE {new_match} AND {t}.{c}::text IS DISTINCT FROM NEW.{d}::text;\n"
        "  END IF;\n"
    ).format(
        old_match=s.join(s.ref.ident, sql.SQL("OLD")),
        new_match=s.join(s.ref.ident, sql.SQL("NEW")),
        **s.parts,
    )


def triggers(s: Split) -> list[str]:
    parent_events = sql.SQL("INSERT OR UPDATE OF {}").format(ident(s.column))
    child_events = sql.SQL("INSERT OR UPDATE OF {} OR DELETE").format(ident(s.doc))
    return [
        *s.parent_trigger.create_after(parent_events, parent_body(s)),
        *s.child_trigger.create_after(child_events, child_body(s)),
    ]


def drop_triggers(s: Split, *, if_exists: bool) -> list[str]:
    return [*s.parent_trigger.drop(if_exists=if_exists), *s.child_trigger.drop(if_exists=if_exists)]


def table_exists(s: Split) -> str:
    return render("SELECT count(*) FROM pg_class WHERE oid = to_regclass({n})", n=literal(s.child.regclass))


def differ_query(s: Split) -> str:
    """Rows whose column and new-table document differ (a missing row counts as NULL)."""
    return render(
        "SELECT count(*) FROM {t} LEFT JOIN {n} ON {match} WHERE {t}.{c}::text IS DISTINCT FROM {n}.{d}::text",
        match=s.join(s.child.ident, s.ref.ident),
        **s.parts,
    )


def backfill_spec(s: Split) -> dict:
    """Forward: a no-op write of the column where the new table lacks the document (the trigger copies
    it). Reverse: the new table's document back into the column, only where there is one and it
    differs — rows without one keep their column (NULL after a rollback of the contract)."""
    match = s.join(s.child.ident, s.ref.ident)
    parts = {**s.parts, "match": match}
    return {
        "table": s.ref.regclass,
        "set": render("{c} = {c}", **parts),
        "where": render(
            "{t}.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {n} WHERE {match} AND {n}.{d}::text = {t}.{c}::text)",
            **parts,
        ),
        "reverse_set": render("{c} = (SELECT {n}.{d} FROM {n} WHERE {match})", **parts),
        "reverse_where": render(
            "EXISTS (SELECT 1 FROM {n} WHERE {match} AND {n}.{d}::text IS DISTINCT FROM {t}.{c}::text)", **parts
        ),
        "capture_before_images": False,
    }


# -- phases --------------------------------------------------------------------------------------------


def _expand(s: Split, spec: dict) -> PhaseDraft:
    parts = s.parts
    name, column, new = s.ref.key, s.column, s.child.key
    copy_rest = (
        f"manage.py backfill --table {spec['table']} --set '{spec['reverse_set']}' --where '{spec['reverse_where']}'"
    )
    guards = [
        refuse_if(
            s.ref,
            spec["reverse_where"],
            f"{name}: rows whose {column} differs from their document in {new}; copy them first ({copy_rest})",
        )
    ]
    restore_not_null = []
    if s.not_null:
        guards.append(
            refuse_if(
                s.ref,
                render("{c} IS NULL", **parts),
                f"{name}: rows with {column} NULL (written by the version that omits it); fill them with a "
                "backfill before NOT NULL can come back",
            )
        )
        restore_not_null = [
            render("ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID", **parts),
            render("ALTER TABLE {t} VALIDATE CONSTRAINT {k}", **parts),
            render("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL", **parts),
            render("ALTER TABLE {t} DROP CONSTRAINT {k}", **parts),
        ]
    drop_table = (
        "-- planner-ignore ban-drop-table: created by this plan's expand phase; the check above proved every "
        "document it holds is in the column\n" + render("DROP TABLE IF EXISTS {n}", **parts)
    )
    validations = [
        validation(f"table {new} exists", table_exists(s), 1),
        validation(f"trigger {s.parent_trigger.name} exists", s.parent_trigger.exists_query(), 1),
        validation(f"trigger {s.child_trigger.name} exists", s.child_trigger.exists_query(), 1),
    ]
    if s.not_null:
        validations.append(validation(f"{column} is nullable", column_not_null(s.ref.regclass, column), False))
    return PhaseDraft(
        kind="expand",
        name=f"Create {new}, kept in step with {name}.{column} by triggers",
        up_sql=script(
            s.not_null and render("ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL", **parts),
            create_table(s),
            copy_privileges(s),
            *triggers(s),
        ),
        down_sql=script(
            *guards,
            *restore_not_null,
            *s.parent_trigger.drop(),
            drop_table,
            *s.child_trigger.drop()[1:],  # the trigger went with the table; its function did not
        ),
        validations=validations,
        runbook=runbook(
            rollback=f"Run the down SQL: it drops the triggers and {new}. It first checks that every document in "
            f"{new} is also in {column} (after a rollback of the contract, roll back the backfill first) and stops "
            "with an error if one is not, so nothing written to the new table is lost"
            + (
                f"; then it restores NOT NULL on {column} through a check validated in the same transaction, "
                f"which holds ACCESS EXCLUSIVE during the scan (about {estimate(s.ref.rows, SCAN_ROWS_PER_SECOND)} "
                "s), refusing first if a row has it NULL."
                if s.not_null
                else "."
            ),
            testing=[
                f"The running version still reads and writes {column}; each write shows up in {new} "
                f"(set to NULL: the row there is deleted).",
                f"An INSERT, UPDATE or DELETE in {new} is mirrored into {column}.",
                f"Roles with privileges on {name} have the same on {new} (\\dp {new}).",
            ],
            seconds=DDL_SECONDS,
            notes=[
                "One short transaction, catalog-only: the new table is empty, so its foreign key scans nothing; "
                f"the parent is locked ({'ACCESS' if s.not_null else 'SHARE ROW'} EXCLUSIVE) for milliseconds "
                "once granted, and no write between the statements escapes the triggers.",
                "Each trigger writes the other table only where the value differs, so a write bounces once and stops.",
                "While both versions write the same row at the same moment, one may get a deadlock error "
                "(the two tables are locked in opposite orders); PostgreSQL aborts one and the other goes on.",
                f"TRUNCATE {name} now needs CASCADE (the new table refers to it).",
            ],
        ),
    )


def _backfill(s: Split, spec: dict) -> PhaseDraft:
    differ = differ_query(s)
    return PhaseDraft(
        kind="backfill",
        name=f"Copy every {s.column} document into {s.child.key}",
        backfill_spec=spec,
        down_sql=reverse_backfill_note(spec),
        validations=[validation(f"every row's {s.column} is in {s.child.key}", differ, 0)],
        runbook=runbook(
            rollback=f"Roll back the run: it copies the documents of {s.child.key} back into {s.column} in batches "
            "over the rows it walked, where they differ (a no-op unless the contract was rolled back first).",
            testing=[f"{differ} returns 0 once it is done (the triggers keep new writes equal)."],
            seconds=estimate(s.ref.rows, BACKFILL_ROWS_PER_SECOND),
            rows=s.ref.rows,
            notes=[
                f"Each batch rewrites {s.column} with its own value so the trigger copies it: other triggers on "
                f"{s.ref.key} (an updated_at, an audit log) fire too.",
                "No before-images: the reverse SET is exact because the new table holds the same documents.",
            ],
        ),
    )


def _contract(s: Split) -> PhaseDraft:
    parts = s.parts
    name, column, new = s.ref.key, s.column, s.child.key
    return PhaseDraft(
        kind="contract",
        name=f"Switch to {new}: drop the triggers and {name}.{column}",
        up_sql=script(*drop_triggers(s, if_exists=False), render("ALTER TABLE {t} DROP COLUMN {c}", **parts)),
        down_sql=script(render("ALTER TABLE {t} ADD COLUMN {c} {type}", **parts), *triggers(s)),
        validations=[
            validation(f"column {column} is gone", column_exists(s.ref.regclass, column), 0),
            validation(f"trigger {s.parent_trigger.name} is gone", s.parent_trigger.exists_query(), 0),
            validation(f"trigger {s.child_trigger.name} is gone", s.child_trigger.exists_query(), 0),
            validation(f"table {new} exists", table_exists(s), 1),
        ],
        runbook=runbook(
            rollback=f"Run the down SQL while the new version still runs: {column} comes back empty and nullable, "
            f"and the triggers mirror every write of {new} into it again; then roll back the backfill (it copies "
            f"{new}'s documents into {column}) before deploying the previous version, and the expand phase last.",
            testing=[
                f"The new version reads and writes {new} only; nothing mentions {name}.{column}.",
                f"\\d {name} shows no {column} and no {s.parent_trigger.name} trigger; \\d {new} no "
                f"{s.child_trigger.name}.",
            ],
            seconds=DDL_SECONDS,
            gate=f"Deploy the application version that reads and writes the documents in {new} (creating, "
            f"updating and deleting its rows; {name}.{column} unused); no instance of the previous version is "
            "still running, including workers, cron jobs and replicas' readers.",
            notes=[
                "One short transaction, catalog-only: DROP COLUMN marks the column dropped without a rewrite.",
                f"Documents written to {new} from now on survive a rollback: {column} is refilled from them.",
                "Prepared `SELECT *` statements on the table fail with 'cached plan must not change result type' "
                "once the column is dropped, until their connection is replaced: list columns explicitly, or "
                "recycle the application's connection pools after this phase.",
            ],
        ),
    )


def build(schema, params: dict) -> PlanDraft:
    s = _resolve(schema, params)
    spec = backfill_spec(s)
    title = f"Split {s.ref.key}.{s.column} into table {s.child.key}"
    return PlanDraft(
        title=title,
        description=f"{title}: create it, keep both in step by triggers, backfill, switch the application, then "
        "drop the triggers and the column.",
        phases=[_expand(s, spec), _backfill(s, spec), _contract(s)],
    )


RECIPE = Recipe(
    name="split_json_column",
    title="Split a JSON column into a new table",
    description="Create a table keyed like the parent for the column's documents, keep both in step with "
    "triggers, backfill it, switch the application to it, then drop the triggers and the column; every step "
    "has its down SQL.",
    params=PARAMS,
    validate=validate,
    build=build,
)
