"""Sync triggers shared by recipes that keep two columns equal while two application versions run.

One BEFORE INSERT OR UPDATE row trigger that only assigns to NEW: it never issues a statement of
its own, so it cannot fire itself or another copy of itself, and needs no recursion guard (no
`pg_trigger_depth()` check that would also skip rows written by other triggers or by cascades).
The function body is PL/pgSQL with every identifier quoted by psycopg.sql; the dollar-quote tag is
chosen so that no quoted name can end the body early.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from planner.recipes.base import RecipeError
from planner.recipes.lookup import TableRef
from planner.recipes.sqltext import as_text, derived_name, expression, ident, literal, render
from planner.sql.catalog import qualify


@dataclass(frozen=True)
class SyncTrigger:
    """The function and trigger keeping columns of `ref` in step; names derived from table and column."""

    ref: TableRef
    name: str  # both the function's (in the table's schema) and the trigger's

    @property
    def function(self) -> sql.Identifier:
        return ident(self.ref.schema, self.name)

    @property
    def trigger(self) -> sql.Identifier:
        return ident(self.name)

    def create(self, body: sql.Composable) -> list[str]:
        """CREATE FUNCTION … and CREATE TRIGGER … BEFORE INSERT OR UPDATE … FOR EACH ROW (PostgreSQL 11+)."""
        function = render(
            "CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS ", f=self.function
        ) + dollar_quoted(f"BEGIN\n{as_text(body)}  RETURN NEW;\nEND\n", "sync")
        trigger = render(
            "CREATE TRIGGER {g} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {f}()",
            g=self.trigger,
            t=self.ref.ident,
            f=self.function,
        )
        return [function, trigger]

    def create_after(self, events: sql.Composable, body: sql.Composable) -> list[str]:
        """CREATE FUNCTION … and CREATE TRIGGER … AFTER `events` … FOR EACH ROW, for a body that writes
        another table (an AFTER row trigger's result is ignored, so it returns NULL)."""
        return self.create_definer("AFTER", events, body)

    def create_definer(self, timing: str, events: sql.Composable, body: sql.Composable) -> list[str]:
        """CREATE FUNCTION … and CREATE TRIGGER … `timing` (BEFORE or AFTER) `events` … FOR EACH ROW.

        SECURITY DEFINER with a pinned search_path: the body writes on the application's behalf to a
        table the application's role may have no privileges on (one the plan creates), and that write
        must not fail the application's statement. `use_column` lets a column named like a PL/pgSQL
        variable (`found`, `tg_op`) still be read as the column. A BEFORE trigger returns NEW (the
        row goes on as the body left it), an AFTER trigger NULL (its result is ignored).
        """
        result = {"BEFORE": "NEW", "AFTER": "NULL"}[timing]
        function = render(
            "CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
            "SET search_path = pg_catalog, pg_temp AS ",
            f=self.function,
        ) + dollar_quoted(f"#variable_conflict use_column\nBEGIN\n{as_text(body)}  RETURN {result};\nEND\n", "sync")
        trigger = render(
            "CREATE TRIGGER {g} {w} {e} ON {t} FOR EACH ROW EXECUTE FUNCTION {f}()",
            g=self.trigger,
            w=sql.SQL(timing),
            e=events,
            t=self.ref.ident,
            f=self.function,
        )
        return [function, trigger]

    def drop(self, *, if_exists: bool = True) -> list[str]:
        exists = sql.SQL(" IF EXISTS" if if_exists else "")
        return [
            render("DROP TRIGGER{e} {g} ON {t}", e=exists, g=self.trigger, t=self.ref.ident),
            render("DROP FUNCTION{e} {f}()", e=exists, f=self.function),
        ]

    def exists_query(self) -> str:
        """1 when the trigger is on the table, else 0 (a validation)."""
        return render(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass({t}) AND tgname = {g} AND NOT tgisinternal",
            t=literal(self.ref.regclass),
            g=literal(self.name),
        )


def dollar_quoted(body: str, tag: str = "body") -> str:
    """`body` between dollar quotes whose tag does not occur in it (a quoted name may contain `$x$`)."""
    while f"${tag}$" in body:
        tag += "_"
    return f"${tag}$\n{body}${tag}$"


def refuse_if(ref: TableRef, condition: str, message: str) -> str:
    """A DO block that raises `message` if any row of `ref` matches `condition` (rendered SQL).

    Down SQL puts it before anything it drops, so a rollback that would lose data stops instead.
    """
    query = render("SELECT 1 FROM {t} WHERE ", t=ref.ident) + condition
    text = as_text(literal(message))
    return "DO " + dollar_quoted(
        f"BEGIN\n  IF EXISTS ({query}) THEN\n    RAISE EXCEPTION '%', {text};\n  END IF;\nEND\n"
    )


def reverse_backfill_note(spec: dict) -> str:
    """A backfill phase's down text: what its run does when rolled back (comments; nothing to execute)."""
    return (
        "-- rolled back by the backfill run itself, in batches with checkpoints:\n"
        f"--   UPDATE {spec['table']} SET {spec['reverse_set']} WHERE {spec['reverse_where']}\n"
    )


def sync_trigger(schema, ref: TableRef, column: str, field: str) -> SyncTrigger:
    """The sync trigger for `column` of `ref`, refused (naming `field`) if its names are taken."""
    return named_trigger(schema, ref, derived_name(ref.name, column, suffix="sync"), field)


def named_trigger(schema, ref: TableRef, name: str, field: str) -> SyncTrigger:
    """A trigger `name` on `ref` with a function of that name, refused (naming `field`) if either is taken."""
    if name in schema.triggers.get(ref.key, set()):
        raise RecipeError(field, f"table {ref.key!r} already has a trigger named {name!r}")
    # introspect lists functions as "schema.name" even in public, unlike qualify()'s table keys.
    if f"{ref.schema}.{name}" in getattr(schema, "functions", set()):
        raise RecipeError(field, f"a function named {qualify(ref.schema, name)!r} already exists")
    return SyncTrigger(ref, name)


def row(column: str) -> tuple[sql.Composable, sql.Composable]:
    """(NEW.column, OLD.column) with the column quoted."""
    return sql.SQL("NEW.{}").format(ident(column)), sql.SQL("OLD.{}").format(ident(column))


def require_reproducible_default(schema, ref: TableRef, column: str) -> str | None:
    """The column's default, if a copy of the column can carry it: a sequence's nextval() cannot
    (two columns would share the sequence, and the copy's drop would take it away)."""
    default = schema.defaults.get((ref.key, column))
    if default and "nextval(" in default:
        raise RecipeError("column", f"{ref.key}.{column} takes its values from a sequence ({default})")
    if default:
        expression(default, "column")
    return default


def require_plain_column(schema, ref: TableRef, column: str, field: str, *, allow=()) -> None:
    """Refuse identity/generated columns and columns other objects depend on (indexes, constraints,
    views, triggers, owned sequences): copying the column would not carry them, dropping it would
    drop or be refused by them. `allow` lists descriptions a recipe handles itself."""
    kind = getattr(schema, "column_kinds", {}).get((ref.key, column))
    if kind:
        raise RecipeError(field, f"{ref.key}.{column} is an {kind} column; this recipe does not handle those")
    dependents = [d for d in getattr(schema, "column_dependents", {}).get((ref.key, column), []) if d not in allow]
    if dependents:
        raise RecipeError(
            field,
            f"{ref.key}.{column} is used by {', '.join(dependents)}; move or drop "
            + ("it" if len(dependents) == 1 else "them")
            + " first (another plan), then run this recipe",
        )
    for other in schema.catalog.tables.values():
        for constraint in other.constraints.values():
            if constraint.kind == "f" and constraint.ref_table == ref.key and column in constraint.ref_columns:
                raise RecipeError(field, f"{ref.key}.{column} is referenced by foreign key {constraint.name}")
    for constraint in ref.table.constraints.values():
        if column in constraint.columns and constraint.kind != "n":
            raise RecipeError(field, f"{ref.key}.{column} is part of constraint {constraint.name}")
    for key, index in schema.catalog.indexes.items():
        if index.table == ref.key and column in index.columns:
            raise RecipeError(field, f"{ref.key}.{column} is indexed by {key}")
