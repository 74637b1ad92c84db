"""Move a table's primary key to other columns (users keyed by `id` → PRIMARY KEY (tenant_id, id)).

`ALTER TABLE … ADD PRIMARY KEY (…)` builds its index under ACCESS EXCLUSIVE, and makes nullable
columns NOT NULL with a scan under that lock too (measured: an ADD PRIMARY KEY USING INDEX on a
nullable column seq-scans the table). Instead, phase by phase:

expand    CREATE UNIQUE INDEX CONCURRENTLY on the new key (duplicates fail it before anything else
          changes; NULLs do not), then on the old key; foreign keys to the old key confirmed
          validated (a rollback re-validates them here);
contract  per nullable new-key column: CHECK (c IS NOT NULL) NOT VALID → VALIDATE → SET NOT NULL
          (add_column.not_null_phases; SET NOT NULL then skips its scan);
          the swap, one short catalog-only transaction: drop the foreign keys to the old key,
          DROP CONSTRAINT <old pkey>, ADD CONSTRAINT <pkey> PRIMARY KEY USING INDEX <new index>, and
          re-create the foreign keys NOT VALID; then VALIDATE them (SHARE UPDATE EXCLUSIVE);
          with keep_old_unique false, finally DROP INDEX CONCURRENTLY the old key's index.

Why the old key stays unique through a unique *index*, not a UNIQUE constraint: PostgreSQL enforces
both the same way, foreign keys and ON CONFLICT (id) use either, but a constraint's index is dropped
with the constraint. A plain index is what lets the swap's rollback turn it straight back into the
primary key (ADD CONSTRAINT <old pkey> PRIMARY KEY USING INDEX, catalog-only): nothing is rebuilt
under a lock, and the foreign keys, which depend on that index, stay as they are.

Foreign keys are re-created, not re-pointed ahead of time: a foreign key depends on one unique
index of the referenced table (pg_constraint.conindid), so DROP CONSTRAINT <pkey> fails while one
depends on it, and PostgreSQL picks the primary key's index for a new foreign key as long as it
exists (measured). So the swap drops them and adds them back NOT VALID after the primary key is
gone, when the old key's unique index is the only one left to depend on; every existing row was
proven by the dropped foreign key in the same transaction, and a later phase validates them again.
Foreign keys from partitioned tables are refused, as are partitioned tables themselves
(CREATE INDEX CONCURRENTLY does not work on them), and a primary key with INCLUDE, WITH,
a tablespace or DEFERRABLE (a rollback through a plain unique index would not bring those back).
Serial and identity columns keep their sequence: only the constraint moves.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from planner.recipes.add_column import not_null_phases
from planner.recipes.add_index import index_phase, index_statement
from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.keys import ForeignKey, add_not_valid, primary_key_extras, referencing
from planner.recipes.lookup import TableRef, find_column, find_table, require_new_relation
from planner.recipes.runbook import (
    DDL_SECONDS,
    SCAN_ROWS_PER_SECOND,
    constraint_state,
    estimate,
    index_valid,
    runbook,
    validation,
)
from planner.recipes.sqltext import as_text, derived_name, ident, literal, no_transaction, render, script
from planner.sql.catalog import Constraint

# Core types without a default btree operator class (no equality a unique index can use); the
# server's own answer (TargetSchema.unique_key_error) covers domains and extension types.
NO_BTREE_TYPES = ("json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle")

PARAMS = (
    Param("table", "Table", "identifier", help="Table whose primary key moves, e.g. users."),
    Param(
        "columns",
        "New key columns",
        "identifiers",
        help="Comma-separated existing columns in key order, e.g. tenant_id, id. They may be nullable today.",
    ),
    Param(
        "keep_old_unique",
        "Keep the old key unique",
        "bool",
        required=False,
        default=True,
        help="The old key columns keep a unique index, so lookups and foreign keys by them keep working.",
    ),
    Param("name", "Primary key name", "identifier", required=False, help="Default: the current primary key's name."),
)


@dataclass(frozen=True)
class KeyChange:
    """What the recipe's parameters name in the schema, and the names it derives."""

    ref: TableRef
    old: Constraint  # the current primary key
    columns: tuple[str, ...]  # the new key
    name: str  # the new primary key's name
    new_index: str  # built concurrently, attached as the primary key by the swap
    old_index: str  # the old key's unique index; the primary key again if the swap is rolled back
    nullable: tuple[str, ...]  # new-key columns that get NOT NULL first
    foreign_keys: tuple[ForeignKey, ...]


def _resolve(schema, params: dict) -> KeyChange:
    ref = find_table(schema, params["table"])
    if ref.table.kind == "p":
        raise RecipeError(
            "table", f"{ref.key!r} is partitioned: CREATE INDEX CONCURRENTLY does not work on partitioned tables"
        )
    columns = tuple(find_column(ref, name, "columns").name for name in params["columns"])
    primary = [c for c in ref.table.constraints.values() if c.kind == "p"]
    if not primary:
        raise RecipeError("table", f"table {ref.key!r} has no primary key: this recipe moves an existing one")
    old = primary[0]
    if tuple(old.columns) == columns:
        raise RecipeError("columns", f"({', '.join(columns)}) already is the primary key of {ref.key!r}")
    nullable = tuple(name for name in columns if not ref.table.columns[name].not_null)
    return KeyChange(
        ref=ref,
        old=old,
        columns=columns,
        name=params["name"] or old.name,
        new_index=derived_name(ref.name, *columns, suffix="key"),
        old_index=derived_name(ref.name, *old.columns, suffix="key"),
        nullable=nullable,
        foreign_keys=tuple(referencing(schema, ref, tuple(old.columns))),
    )


def validate(schema, params: dict) -> None:
    change = _resolve(schema, params)
    ref = change.ref
    for name in change.columns:
        base = ref.table.columns[name].type.removesuffix("[]")
        if base in NO_BTREE_TYPES:
            raise RecipeError(
                "columns", f"{ref.key}.{name} is {ref.table.columns[name].type}: it has no btree equality for a key"
            )
    extras = primary_key_extras(schema, ref, change.old)
    if extras:  # a rollback brings the old key back through a plain unique index, without them
        raise RecipeError(
            "table",
            f"primary key {change.old.name} of {ref.key!r} has {', '.join(extras)}, which a rollback of this "
            "recipe would not bring back",
        )
    checker = getattr(schema, "unique_key_error", None)  # the server's answer; None when offline
    problem = checker(ref.schema, ref.name, change.columns, ref.table.rows) if checker else None
    if problem:
        raise RecipeError("columns", f"({', '.join(change.columns)}) cannot be the primary key: {problem}")
    for index in (change.new_index, change.old_index):
        require_new_relation(schema, ref.schema, index, "columns")
    if change.name != change.old.name:
        require_new_relation(schema, ref.schema, change.name, "name")
        if change.name in ref.table.constraints:
            raise RecipeError("name", f"table {ref.key!r} already has a constraint named {change.name!r}")
    for column in change.nullable:
        check = derived_name(ref.name, column, suffix="not_null")
        if check in ref.table.constraints:
            raise RecipeError("columns", f"table {ref.key!r} already has a constraint named {check!r}")
    if change.foreign_keys and not params["keep_old_unique"]:
        raise RecipeError(
            "keep_old_unique",
            f"foreign keys {', '.join(fk.name for fk in change.foreign_keys)} reference "
            f"{ref.key}({', '.join(change.old.columns)}): keep the old key unique (they are moved onto its unique "
            "index), or drop them first",
        )


def _key_columns_query(ref: TableRef) -> str:
    """The primary key's columns in key order, comma-separated ('' without one)."""
    return render(
        "SELECT coalesce((SELECT string_agg(a.attname, ', ' ORDER BY k.o) FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(n, o) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n "
        "WHERE i.indrelid = to_regclass({t}) AND i.indisprimary), '')",
        t=literal(ref.regclass),
    )


def _columns(names) -> sql.Composable:
    return sql.SQL(", ").join(ident(name) for name in names)


def _duplicates(ref: TableRef, columns) -> str:
    return render(
        "SELECT count(*) FROM (SELECT 1 FROM {t} WHERE {nn} GROUP BY {c} HAVING count(*) > 1) AS d",
        t=ref.ident,
        c=_columns(columns),
        nn=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(ident(c)) for c in columns),
    )


def _nulls(ref: TableRef, columns) -> str:
    return render(
        "SELECT count(*) FROM {t} WHERE {any_null}",
        t=ref.ident,
        any_null=sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(ident(c)) for c in columns),
    )


def _validate_statements(fks) -> list[str]:
    return [render("ALTER TABLE {t} VALIDATE CONSTRAINT {k}", t=fk.ident, k=ident(fk.name)) for fk in fks]


def _fk_states(fks, expected: str) -> list[dict]:
    return [validation(f"{fk.name} is {expected}", constraint_state(fk.regclass, fk.name), expected) for fk in fks]


def build(schema, params: dict) -> PlanDraft:
    change = _resolve(schema, params)
    ref = change.ref
    new_text, old_text = ", ".join(change.columns), ", ".join(change.old.columns)
    new_index = _index_phase(change, change.columns, change.new_index, "the new primary key")
    new_index.runbook["testing"].insert(
        0, f"Before starting, this returns 0 (duplicates fail the build): {_duplicates(ref, change.columns)}"
    )
    # The new key's index comes first: duplicates fail it before any constraint is added. NULLs do
    # not (they are distinct in a unique index), so it can be built while the columns are filled.
    phases = [
        new_index,
        _index_phase(
            change,
            change.old.columns,
            change.old_index,
            "the old key's uniqueness after the swap, and the primary key again if the swap is rolled back",
        ),
    ]
    validated = [fk for fk in change.foreign_keys if fk.validated]
    if validated:
        phases.append(_confirm_phase(change, validated))
    for column in change.nullable:
        group = not_null_phases(ref, column)
        group[0].validations.append(validation(f"no row has {column} NULL", _nulls(ref, (column,)), 0))
        phases += group
    phases.append(_swap_phase(change))
    if validated:
        phases.append(_validate_phase(change, validated))
    if not params["keep_old_unique"]:
        phases.append(_drop_old_index_phase(change))
    title = f"Change the primary key of {ref.key} from ({old_text}) to ({new_text})"
    return PlanDraft(
        title=title,
        description=f"{title}: unique indexes built concurrently, NOT NULL through validated checks, the key "
        "swapped in one short catalog-only transaction.",
        phases=phases,
    )


def _index_phase(change: KeyChange, columns, name: str, purpose: str) -> PhaseDraft:
    statement = index_statement(change.ref, {"columns": columns}, name, unique=True)
    phase = index_phase(change.ref, name, statement, what="unique index")
    phase.runbook["notes"].append(f"It is for {purpose}.")
    return phase


def _confirm_phase(change: KeyChange, fks) -> PhaseDraft:
    names = ", ".join(fk.name for fk in fks)
    statements = script(*_validate_statements(fks))
    return PhaseDraft(
        kind="expand",
        name=f"Confirm foreign keys to {change.ref.key} are validated",
        up_sql=statements,
        down_sql=statements,
        validations=_fk_states(fks, "validated"),
        runbook=runbook(
            rollback=f"Run the down SQL: it validates {names} again (the swap's rollback leaves them NOT VALID "
            "if their validation phase had not run yet); reads and writes continue during the scan.",
            testing=[f"{names} show as validated in pg_constraint."],
            seconds=DDL_SECONDS,
            notes=["Already validated: PostgreSQL does nothing beyond a brief SHARE UPDATE EXCLUSIVE lock."],
        ),
    )


def _swap_phase(change: KeyChange) -> PhaseDraft:
    ref = change.ref
    parts = {
        "t": ref.ident,
        "old": ident(change.old.name),
        "new": ident(change.name),
        "new_index": ident(change.new_index),
        "old_index": ident(change.old_index),
    }
    drops = [render("ALTER TABLE {t} DROP CONSTRAINT {k}", t=fk.ident, k=ident(fk.name)) for fk in change.foreign_keys]
    adds = [add_not_valid(fk, ref) for fk in change.foreign_keys]
    fk_names = ", ".join(fk.name for fk in change.foreign_keys)
    new_text, old_text = ", ".join(change.columns), ", ".join(change.old.columns)
    validations = [
        validation(f"the primary key is ({new_text})", _key_columns_query(ref), new_text),
        validation(
            f"{change.old_index} keeps ({old_text}) unique", index_valid(_in_schema(ref, change.old_index)), True
        ),
    ]
    validations += [
        validation(f"{fk.name} is re-created", constraint_state(fk.regclass, fk.name), "not valid")
        for fk in change.foreign_keys
    ]
    notes = [
        "One short transaction of catalog-only statements under ACCESS EXCLUSIVE, once granted: both indexes "
        "are already built and the new key's columns are already NOT NULL, so nothing is scanned.",
        "Logical replication with REPLICA IDENTITY DEFAULT identifies rows by the primary key: subscribers need "
        "the same key.",
    ]
    if change.foreign_keys:
        notes.append(
            f"{fk_names}: dropped and re-added NOT VALID in the same transaction (still checked for every write); "
            "their referencing tables are locked ACCESS EXCLUSIVE for that moment too. They now depend on "
            f"{change.old_index}."
        )
    return PhaseDraft(
        kind="contract",
        name=f"Swap the primary key to ({new_text})",
        up_sql=script(
            *drops,
            render(
                "ALTER TABLE {t} DROP CONSTRAINT {old}, ADD CONSTRAINT {new} PRIMARY KEY USING INDEX {new_index}",
                **parts,
            ),
            *adds,
        ),
        down_sql=script(
            render(
                "ALTER TABLE {t} DROP CONSTRAINT {new}, ADD CONSTRAINT {old} PRIMARY KEY USING INDEX {old_index}",
                **parts,
            ),
        ),
        validations=validations,
        runbook=runbook(
            rollback=f"Run the down SQL: one catalog-only transaction drops the new primary key (its index goes "
            f"with it) and makes {change.old_index} the primary key {change.old.name} on ({old_text}) again; "
            "foreign keys stay attached to that index. Re-running this phase afterwards needs the new key's "
            "index phase again.",
            testing=[
                f"\\d {ref.key} shows PRIMARY KEY ({new_text}) and the unique index {change.old_index} ({old_text}).",
                f"The application still inserts, updates and reads rows by ({old_text}).",
            ],
            seconds=DDL_SECONDS,
            notes=notes,
        ),
    )


def _validate_phase(change: KeyChange, fks) -> PhaseDraft:
    rows = sum(fk.rows for fk in fks)
    return PhaseDraft(
        kind="contract",
        name=f"Validate foreign keys to {change.ref.key}",
        up_sql=script(*_validate_statements(fks)),
        down_sql="-- nothing to undo: the foreign keys stay validated through the swap's down SQL\n",
        validations=_fk_states(fks, "validated"),
        runbook=runbook(
            rollback="Nothing to undo: the swap's down SQL keeps the foreign keys as they are.",
            testing=["Reads and writes of both tables continue during the check (SHARE UPDATE EXCLUSIVE)."],
            seconds=estimate(rows, SCAN_ROWS_PER_SECOND),
            rows=rows,
        ),
    )


def _drop_old_index_phase(change: KeyChange) -> PhaseDraft:
    ref = change.ref
    old_text = ", ".join(change.old.columns)
    regclass = _in_schema(ref, change.old_index)
    build_again = index_statement(ref, {"columns": change.old.columns}, change.old_index, unique=True)
    return PhaseDraft(
        kind="contract",
        name=f"Drop the unique index {change.old_index} on ({old_text})",
        up_sql=no_transaction(render("DROP INDEX CONCURRENTLY IF EXISTS {i}", i=ident(ref.schema, change.old_index))),
        down_sql=no_transaction(build_again),
        validations=[validation(f"{change.old_index} is gone", index_valid(regclass), False)],
        runbook=runbook(
            rollback=f"Run the down SQL: it builds {change.old_index} again concurrently (the swap's rollback makes "
            f"it the primary key); it fails if rows written since share a value of ({old_text}) — resolve them "
            "first.",
            testing=[f"Nothing looks rows up by ({old_text}) alone any more, or such lookups are still fast enough."],
            seconds=DDL_SECONDS,
            gate=f"Deploy the application version that no longer relies on ({old_text}) being unique on its own.",
            notes=["DROP INDEX CONCURRENTLY takes only SHARE UPDATE EXCLUSIVE; it waits for older transactions."],
        ),
    )


def _in_schema(ref: TableRef, name: str) -> str:
    return as_text(ident(ref.schema, name))


RECIPE = Recipe(
    name="change_primary_key",
    title="Change a table's primary key",
    description="NOT NULL on the new key through validated checks, unique indexes built concurrently, then the "
    "primary key swapped in one short catalog-only transaction (foreign keys re-created NOT VALID and "
    "validated after); the old key stays unique unless asked otherwise.",
    params=PARAMS,
    validate=validate,
    build=build,
)
