"""Migrate from soft deletes (a `deleted_at` timestamp or an `is_deleted` flag) to an event table.

expand    create `<table>_events` (id, the table's key, kind 'deleted' | 'restored' | 'purged',
          occurred_at, snapshot) indexed on (key, id DESC); a view `<table>_active` of the rows not
          soft-deleted; AFTER row triggers keeping the column and the events in step both ways while
          either application version runs (the invariant below), and a BEFORE INSERT trigger on the
          events that orders each key's events by its row's lock (concurrency, below);
backfill  history: a no-op `SET column = column` over soft-deleted rows with no event yet, which the
          table's trigger turns into their 'deleted' event (occurred_at = deleted_at; now() for a
          flag, whose time is unknown). Its rollback changes nothing: those events are true history,
          and the expand phase's down SQL drops them with the table;
contract  once only the version that writes events runs: the view reads the latest event instead of
          the column, the three sync triggers go and the column is dropped. Its down SQL brings the
          column back filled from the latest event of each key in the same transaction, so the
          previous version, deployed again, never sees a soft-deleted row as active.

The invariant: a row is soft-deleted (column set, or true) exactly when the latest event of its key
(highest id) is 'deleted', and then a timestamp column equals that event's occurred_at. A write of
the column appends the event that makes it so (nothing when it holds already: an ORM saving every
column costs an index lookup on deleted rows, none on active ones); an inserted event updates the
column to match, an UPDATE the first trigger then finds consistent, so nothing recurses.

Concurrency: "latest" is the highest id, so ids must be drawn in the order writers of a key act, and
each must act on what the previous one left. Every writer of a key holds its row's lock (FOR NO KEY
UPDATE, what an UPDATE of the column takes) from before it draws an id or reads the key's events
until it commits: the old version's UPDATE locks the row before its trigger runs; an inserted event
locks it in the BEFORE INSERT trigger, which only then draws the event's id from the identity's
sequence (replacing the value the default drew before the lock). So one key's ids follow the order
its writers took the lock, which is their commit order, and while a writer holds the lock no other
transaction holds an uncommitted event of that key. Each statement of the trigger functions takes
its snapshot (READ COMMITTED) after the lock is held, so it sees every earlier writer's events and
row: the event trigger sets the column to what its event, now the latest, says; the table's trigger
compares the written column with the latest event and appends one where they differ. Without the
lock, an id drawn before a concurrent writer's could commit after it, and an event whose UPDATE
found nothing to change (its snapshot predating a concurrent uncommitted soft delete) took no lock
at all, leaving the column and the latest event apart. Under REPEATABLE READ a writer whose
snapshot predates a change of the row fails with a serialization error instead. An event for a key
with no row (purged, or not yet committed) locks nothing and sets nothing.

Hard deletes append a 'purged' event carrying the row as jsonb; that trigger stays after
the switch, so purging soft-deleted rows later loses nothing. This plan never deletes a row: an
archive step (deleting soft-deleted rows) could not be undone by down SQL, so it is left to the
application, whose deletes the purge trigger records.

A boolean column comes back from a rollback as false (not NULL) for active rows. Columns used by
indexes, views or constraints (a partial index `WHERE deleted_at IS NULL`) are refused: dropping the
column would drop them; move them to the events first.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.lookup import TableRef, find_table_column, require_new_relation, split_name
from planner.recipes.runbook import (
    BACKFILL_ROWS_PER_SECOND,
    DDL_SECONDS,
    column_exists,
    estimate,
    runbook,
    validation,
)
from planner.recipes.sqltext import derived_name, expression, ident, literal, render, script, type_name
from planner.recipes.sync import SyncTrigger, named_trigger, refuse_if, require_plain_column
from planner.sql.catalog import Table, qualify
from planner.sql.typeinfo import TypeRef

PARAMS = (
    Param("table", "Table", "identifier", help="The table with soft deletes, e.g. users."),
    Param(
        "column",
        "Soft-delete column",
        "identifier",
        help="deleted_at (a timestamp, NULL while the row is active) or is_deleted (a boolean).",
    ),
    Param(
        "events_table",
        "Events table",
        "identifier",
        required=False,
        help="The new event table. Empty: <table>_events, in the table's schema.",
    ),
    Param(
        "view",
        "Active-rows view",
        "identifier",
        required=False,
        help="A view of the rows not deleted, for the application to read. Empty: <table>_active.",
    ),
)

KINDS = ("deleted", "restored", "purged")
EVENT_COLUMNS = ("id", "kind", "occurred_at", "snapshot")  # besides the table's key columns
EV = ident("ev")  # the events table's alias in correlated subqueries


def ev(column: str) -> sql.Composable:
    """ev.<column> of the events table."""
    return sql.SQL("{}.{}").format(EV, ident(column))


@dataclass(frozen=True)
class Shape:
    """What the plan is made of: the table, its column and key, and the names of everything new."""

    ref: TableRef
    column: str
    flag: bool  # a boolean column (else a timestamp)
    default: str | None
    not_null: bool
    type_sql: sql.Composable
    key: tuple[str, ...]  # the table's primary key
    event_key: tuple[str, ...]  # the same columns in the events table
    events: TableRef
    index: str
    view: sql.Identifier
    view_key: str  # for people: `users_active`, `sales.orders_active`
    view_regclass: str
    on_change: SyncTrigger  # the table: a write of the column appends its event
    on_purge: SyncTrigger  # the table: a hard delete appends 'purged' with the row
    on_event: SyncTrigger  # the events table: an inserted event sets the column
    on_lock: SyncTrigger  # the events table, BEFORE INSERT: lock the row, then draw the event's id

    def outer(self, name: str) -> sql.Identifier:
        """A column of the table, qualified so a subquery over the events table still reaches it."""
        return ident(self.ref.schema, self.ref.name, name)

    def match(self, prefix: str | None) -> sql.Composable:
        """ev.<event key> = NEW.<key> (prefix "NEW"/"OLD") or = the outer table's key (None)."""
        pairs = [
            sql.SQL("{} = {}").format(
                ev(event), sql.SQL(f"{prefix}.{{}}").format(ident(key)) if prefix else self.outer(key)
            )
            for key, event in zip(self.key, self.event_key, strict=True)
        ]
        return sql.SQL(" AND ").join(pairs)

    def latest(self, what: sql.Composable, prefix: str | None) -> sql.Composable:
        """A scalar of the key's latest event (NULL without one); `what` reads it through `ev(…)`."""
        return sql.SQL("(SELECT {what} FROM {e} AS {ev} WHERE {m} ORDER BY {id} DESC LIMIT 1)").format(
            what=what, e=self.events.ident, ev=EV, m=self.match(prefix), id=ev("id")
        )

    def deleted(self, value: sql.Composable) -> sql.Composable:
        """Whether a value of the column means "soft-deleted"."""
        return sql.SQL("{} IS TRUE" if self.flag else "{} IS NOT NULL").format(value)


def _soft_delete_column(schema, params: dict):
    """The table and its soft-delete column, and whether that is a boolean flag (else a timestamp)."""
    ref, column = find_table_column(schema, params)
    kind = TypeRef.parse(column.type)
    if kind.array or kind.name not in ("timestamp", "timestamptz", "bool"):
        raise RecipeError(
            "column",
            f"{ref.key}.{column.name} is {column.type}; a soft-delete column is a timestamp or timestamptz "
            "(NULL while the row is active) or a boolean",
        )
    flag = kind.name == "bool"
    if column.not_null and not flag:
        raise RecipeError("column", f"{ref.key}.{column.name} is NOT NULL, so it cannot mark active rows with NULL")
    require_plain_column(schema, ref, column.name, "column")
    default = schema.defaults.get((ref.key, column.name))
    if default:
        expression(default, "column")
    return ref, column, flag, default


def _key(ref: TableRef, column: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The primary key's columns, and their names in the events table (`users_id` for users.id)."""
    primary = [c for c in ref.table.constraints.values() if c.kind == "p"]
    if not primary:
        raise RecipeError("table", f"{ref.key} has no primary key: each event must name the row it is about")
    key = primary[0].columns
    if column in key:
        raise RecipeError("column", f"{ref.key}.{column} is part of the primary key")
    for name in key:
        type_name(ref.table.columns[name].type, "table")
    event_key = tuple(derived_name(ref.name, suffix=name) for name in key)
    if len(set(event_key) | set(EVENT_COLUMNS)) != len(event_key) + len(EVENT_COLUMNS):
        raise RecipeError("table", f"the events table's columns {', '.join(event_key)} clash with {EVENT_COLUMNS}")
    return key, event_key


def _new_name(schema, params: dict, field: str, ref: TableRef, suffix: str) -> tuple[str, str]:
    """(schema, name) the parameter gives, or `<table>_<suffix>` beside the table; refused if taken."""
    namespace, name = ref.schema, derived_name(ref.name, suffix=suffix)
    if params[field]:
        namespace, name = split_name(params[field], field)
    require_new_relation(schema, namespace, name, field)
    return namespace, name


def _shape(schema, params: dict) -> Shape:
    ref, column, flag, default = _soft_delete_column(schema, params)
    key, event_key = _key(ref, column.name)
    namespace, name = _new_name(schema, params, "events_table", ref, "events")
    # The events table does not exist yet: a TableRef with an empty Table gives its names and quoting.
    events = TableRef(qualify(namespace, name), namespace, name, Table(qualify(namespace, name)))
    index = derived_name(name, *event_key, suffix="idx")
    require_new_relation(schema, namespace, index, "events_table")
    view_schema, view_name = _new_name(schema, params, "view", ref, "active")
    if qualify(view_schema, view_name) == events.key:
        raise RecipeError("view", "must differ from the events table")
    triggers = (
        named_trigger(schema, ref, derived_name(ref.name, column.name, suffix="events"), "table"),
        named_trigger(schema, ref, derived_name(ref.name, "purge", suffix="events"), "table"),
        named_trigger(schema, events, derived_name(name, column.name, suffix="sync"), "events_table"),
        named_trigger(schema, events, derived_name(name, column.name, suffix="lock"), "events_table"),
    )
    if len({t.function.as_string(None) for t in triggers}) < len(triggers):
        raise RecipeError("column", f"the trigger names derived from {column.name!r} collide; rename it first")
    view = ident(view_schema, view_name)
    return Shape(
        ref=ref,
        column=column.name,
        flag=flag,
        default=default,
        not_null=column.not_null,
        type_sql=type_name(column.type, "column"),
        key=key,
        event_key=event_key,
        events=events,
        index=index,
        view=view,
        view_key=qualify(view_schema, view_name),
        view_regclass=view.as_string(None),
        on_change=triggers[0],
        on_purge=triggers[1],
        on_event=triggers[2],
        on_lock=triggers[3],
    )


def validate(schema, params: dict) -> None:
    _shape(schema, params)


# -- SQL pieces ------------------------------------------------------------------------------------


def _create_events(s: Shape) -> list[str]:
    key_columns = [
        sql.SQL("{} {} NOT NULL").format(ident(event), type_name(s.ref.table.columns[key].type, "table"))
        for key, event in zip(s.key, s.event_key, strict=True)
    ]
    # occurred_at has the column's own type, so a timestamp goes to the events and back unchanged.
    occurred = sql.SQL("timestamptz") if s.flag else s.type_sql
    table = render(
        "CREATE TABLE {e} ({id} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {keys}, "
        "{kind} text NOT NULL CHECK ({kind} IN ({kinds})), {at} {occurred} NOT NULL DEFAULT now(), {snap} jsonb)",
        e=s.events.ident,
        id=ident("id"),
        keys=sql.SQL(", ").join(key_columns),
        kind=ident("kind"),
        kinds=sql.SQL(", ").join(literal(k) for k in KINDS),
        at=ident("occurred_at"),
        occurred=occurred,
        snap=ident("snapshot"),
    )
    # The latest event of a key is one index probe; DESC also serves DISTINCT ON (key) … id DESC.
    index = render(
        "CREATE INDEX {i} ON {e} ({keys}, {id} DESC)",
        i=ident(s.index),
        e=s.events.ident,
        keys=sql.SQL(", ").join(ident(k) for k in s.event_key),
        id=ident("id"),
    )
    return [table, index]


def _insert_event(s: Shape, row: str, kind: str, occurred: sql.Composable | None, snapshot: bool = False):
    """INSERT INTO events (key…, kind[, occurred_at][, snapshot]) SELECT row.key…, kind[, …]."""
    columns = [ident(k) for k in s.event_key] + [ident("kind")]
    values = [sql.SQL(f"{row}.{{}}").format(ident(k)) for k in s.key] + [literal(kind)]
    if occurred is not None:
        columns.append(ident("occurred_at"))
        values.append(occurred)
    if snapshot:
        columns.append(ident("snapshot"))
        values.append(sql.SQL(f"to_jsonb({row})"))
    return sql.SQL("INSERT INTO {e} ({c}) SELECT {v}").format(
        e=s.events.ident, c=sql.SQL(", ").join(columns), v=sql.SQL(", ").join(values)
    )


def _on_change_body(s: Shape) -> sql.Composable:
    """AFTER INSERT OR UPDATE OF the column: append the event the row's new state needs, if any."""
    new, old = sql.SQL("NEW.{}").format(ident(s.column)), sql.SQL("OLD.{}").format(ident(s.column))
    is_deleted = sql.SQL("{} = 'deleted'").format(ev("kind"))
    # A timestamp's latest 'deleted' event must also carry the same time (a second soft delete moves it).
    same = is_deleted if s.flag else sql.SQL("{} AND {} = {}").format(is_deleted, ev("occurred_at"), new)
    return sql.SQL(
        "  IF NOT ({new_deleted}) AND (TG_OP = 'INSERT' OR NOT ({old_deleted})) THEN\n"
        "    RETURN NULL;  -- active before and after: nothing to record, no lookup\n"
        "  END IF;\n"
        "  IF {new_deleted} THEN\n"
        "    {deleted} WHERE {is_same} IS NOT TRUE;\n"
        "  ELSE\n"
        "    {restored} WHERE {was_deleted} IS TRUE;\n"
        "  END IF;\n"
    ).format(
        new_deleted=s.deleted(new),
        old_deleted=s.deleted(old),
        deleted=_insert_event(s, "NEW", "deleted", None if s.flag else new),
        is_same=s.latest(same, "NEW"),
        restored=_insert_event(s, "NEW", "restored", None),
        was_deleted=s.latest(is_deleted, "NEW"),
    )


def _key_of_new_event(s: Shape) -> sql.Composable:
    """The table's key = the inserted event's key (NEW is the event)."""
    return sql.SQL(" AND ").join(
        sql.SQL("{} = NEW.{}").format(ident(k), ident(e)) for k, e in zip(s.key, s.event_key, strict=True)
    )


def _on_lock_body(s: Shape) -> sql.Composable:
    """BEFORE INSERT on the events: wait for the key's row lock, then draw the event's id (see Concurrency)."""
    return sql.SQL(
        "  PERFORM 1 FROM {t} WHERE {where} FOR NO KEY UPDATE;  -- after the row's earlier writers commit\n"
        "  NEW.{id} := nextval(pg_get_serial_sequence({events}, {id_name}));  -- so id order = lock order\n"
    ).format(
        t=s.ref.ident,
        where=_key_of_new_event(s),
        id=ident("id"),
        events=literal(s.events.regclass),
        id_name=literal("id"),
    )


def _on_event_body(s: Shape) -> sql.Composable:
    """AFTER INSERT on the events: set the column to what the event says (a 'purged' row is gone)."""
    c = ident(s.column)
    at = sql.SQL("true") if s.flag else sql.SQL("NEW.{}").format(ident("occurred_at"))
    where = _key_of_new_event(s)
    return sql.SQL(
        "  IF NEW.{kind} = 'deleted' THEN\n"
        "    UPDATE {t} SET {c} = {at} WHERE {where} AND {c} IS DISTINCT FROM {at};\n"
        "  ELSIF NEW.{kind} = 'restored' THEN\n"
        "    UPDATE {t} SET {c} = {active} WHERE {where} AND {is_deleted};\n"
        "  END IF;\n"
    ).format(
        kind=ident("kind"),
        t=s.ref.ident,
        c=c,
        at=at,
        where=where,
        active=sql.SQL("false" if s.flag else "NULL"),
        is_deleted=s.deleted(c),
    )


def _on_purge_body(s: Shape) -> sql.Composable:
    return sql.SQL("  {};\n").format(_insert_event(s, "OLD", "purged", None, snapshot=True))


def _view(s: Shape, *, replace: bool, by_events: bool) -> str:
    """The active rows: every column but the soft-delete one, filtered by the column or the events."""
    columns = sql.SQL(", ").join(ident(name) for name in s.ref.table.columns if name != s.column)
    if by_events:
        active = sql.SQL("{} IS DISTINCT FROM 'deleted'").format(s.latest(ev("kind"), None))
    else:
        active = sql.SQL("NOT ({})").format(s.deleted(ident(s.column)))
    return render(
        "CREATE {r}VIEW {v} AS SELECT {cols} FROM {t} WHERE {active}",
        r=sql.SQL("OR REPLACE " if replace else ""),
        v=s.view,
        cols=columns,
        t=s.ref.ident,
        active=active,
    )


def _mismatches(s: Shape) -> str:
    """Rows whose column disagrees with their latest event (0 once history is backfilled)."""
    c = ident(s.column)
    if s.flag:
        implied = sql.SQL("coalesce({}, false)").format(s.latest(sql.SQL("{} = 'deleted'").format(ev("kind")), None))
        state = sql.SQL("({} IS TRUE)").format(c)
    else:
        implied = s.latest(sql.SQL("CASE WHEN {} = 'deleted' THEN {} END").format(ev("kind"), ev("occurred_at")), None)
        state = c
    return render(
        "SELECT count(*) FROM {t} WHERE {state} IS DISTINCT FROM {implied}", t=s.ref.ident, state=state, implied=implied
    )


def _restore_column(s: Shape) -> list[str]:
    """The column again, with its default, filled from the latest event of every key."""
    parts = {"t": s.ref.ident, "c": ident(s.column), "type": s.type_sql}
    if s.flag:
        # false for every active row at once (a constant default is catalog-only), true below.
        not_null = sql.SQL(" NOT NULL" if s.not_null else "")
        statements = [render("ALTER TABLE {t} ADD COLUMN {c} {type}{nn} DEFAULT false", nn=not_null, **parts)]
        if s.default is None:
            statements.append(render("ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT", **parts))
        elif s.default.strip().lower() != "false":
            statements.append(
                render("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d}", d=expression(s.default, "column"), **parts)
            )
    else:
        statements = [render("ALTER TABLE {t} ADD COLUMN {c} {type}", **parts)]
        if s.default is not None:
            statements.append(
                render("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d}", d=expression(s.default, "column"), **parts)
            )
    return statements


def _fill_column(s: Shape) -> str:
    """Set the column of the rows whose latest event is 'deleted' (only those rows are written)."""
    keys = sql.SQL(", ").join(ident(k) for k in s.event_key)
    latest = ident("latest")
    join = sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}").format(latest, ident(e), s.outer(k)) for k, e in zip(s.key, s.event_key, strict=True)
    )
    return render(
        "UPDATE {t} SET {c} = {value} FROM (SELECT DISTINCT ON ({keys}) {keys}, {kind}, {at} FROM {e} "
        "ORDER BY {keys}, {id} DESC) AS {latest} WHERE {join} AND {latest}.{kind} = 'deleted'",
        t=s.ref.ident,
        c=ident(s.column),
        value=sql.SQL("true") if s.flag else sql.SQL("{}.{}").format(latest, ident("occurred_at")),
        keys=keys,
        kind=ident("kind"),
        at=ident("occurred_at"),
        e=s.events.ident,
        id=ident("id"),
        latest=latest,
        join=join,
    )


def _relation_exists(regclass: str) -> str:
    return render("SELECT count(*) FROM pg_class WHERE oid = to_regclass({r})", r=literal(regclass))


# -- the plan --------------------------------------------------------------------------------------


def build(schema, params: dict) -> PlanDraft:
    s = _shape(schema, params)
    phases = [_expand(s), _backfill(s), _contract(s)]
    title = f"Move soft deletes of {s.ref.key}.{s.column} to {s.events.key}"
    return PlanDraft(
        title=title,
        description=f"{title}: an event table kept in step with {s.column} by triggers, its history backfilled, "
        f"then {s.column} dropped once the application writes events; the rollback refills {s.column} from them.",
        phases=phases,
    )


def _create_lock(s: Shape) -> list[str]:
    """The events table's BEFORE INSERT trigger: SECURITY DEFINER like the AFTER triggers (the running
    version may have no privilege on the sequence)."""
    return s.on_lock.create_definer("BEFORE", sql.SQL("INSERT"), _on_lock_body(s))


def _triggers(s: Shape) -> tuple[list[str], list[str], list[str], list[str]]:
    """CREATE statements of the four triggers (change, purge, event, lock), each with its function."""
    change = s.on_change.create_after(sql.SQL("INSERT OR UPDATE OF {}").format(ident(s.column)), _on_change_body(s))
    purge = s.on_purge.create_after(sql.SQL("DELETE"), _on_purge_body(s))
    event = s.on_event.create_after(sql.SQL("INSERT"), _on_event_body(s))
    return change, purge, event, _create_lock(s)


def _expand(s: Shape) -> PhaseDraft:
    change, purge, event, lock = _triggers(s)
    events, view, column, table = s.events.key, s.view_key, s.column, s.ref.key
    guard = refuse_if(
        s.events,
        render("{k} = 'purged'", k=ident("kind")),
        f"{events} holds 'purged' events, the only copy of rows deleted since the expand phase: copy them "
        f"elsewhere (or DELETE FROM {events} WHERE kind = 'purged' if they are not needed) before it is dropped",
    )
    return PhaseDraft(
        kind="expand",
        name=f"Create {events} and the view {view}, kept in step with {column} by triggers",
        up_sql=script(*_create_events(s), *lock, *event, *change, *purge, _view(s, replace=False, by_events=False)),
        down_sql=script(
            guard,
            render("DROP VIEW IF EXISTS {v}", v=s.view),
            *s.on_change.drop(),
            *s.on_purge.drop(),
            *s.on_event.drop(),
            *s.on_lock.drop(),
            DROP_EVENTS + render("DROP TABLE IF EXISTS {e}", e=s.events.ident),
        ),
        validations=[
            validation(f"table {events} exists", _relation_exists(s.events.regclass), 1),
            validation(f"view {view} exists", _relation_exists(s.view_regclass), 1),
            validation(f"trigger {s.on_change.name} exists", s.on_change.exists_query(), 1),
            validation(f"trigger {s.on_purge.name} exists", s.on_purge.exists_query(), 1),
            validation(f"trigger {s.on_event.name} exists", s.on_event.exists_query(), 1),
            validation(f"trigger {s.on_lock.name} exists", s.on_lock.exists_query(), 1),
        ],
        runbook=runbook(
            rollback=f"Run the down SQL: it drops the view, the triggers and {events}. Soft deletes written as "
            f"events are already in {column} (the trigger copies them), so only their history goes. It first "
            f"refuses while {events} holds 'purged' events, the only copy of hard-deleted rows.",
            testing=[
                f"The running version's soft delete (UPDATE {table} SET {column} = …) appends a 'deleted' event; "
                "clearing it appends 'restored'; saving a row without changing it appends nothing.",
                f"INSERT INTO {events} (key, kind) VALUES (…, 'deleted') sets {column}; a 'restored' event clears it.",
                f"SELECT … FROM {view} returns what the running version reads as active rows.",
                "DELETE of a row appends a 'purged' event with the row in snapshot.",
            ],
            seconds=DDL_SECONDS,
            notes=[
                f"One short transaction: CREATE TRIGGER holds SHARE ROW EXCLUSIVE on {table} (writes wait) for "
                "milliseconds once granted; the other objects are new.",
                "The trigger functions are SECURITY DEFINER (owner: the role running this plan), so the running "
                f"version needs no privilege on {events}; the next version does: GRANT SELECT, INSERT ON {events} "
                f"and SELECT ON {view} to its role if it is not the owner.",
                f"Each event inserted locks its row of {table} (FOR NO KEY UPDATE, as an UPDATE of {column} "
                "does) until commit and only then takes its id, so writers of one row queue behind each other "
                "(foreign-key checks, which take KEY SHARE, do not wait); the identity's own value is discarded.",
                "TRUNCATE fires no row trigger: it records nothing.",
                f"{view} lists the table's columns of today (a view does not follow ALTER TABLE ADD COLUMN).",
            ],
        ),
    )


def _backfill(s: Shape) -> PhaseDraft:
    c = ident(s.column)
    spec = {
        "table": s.ref.regclass,
        "set": render("{c} = {c}", c=c),
        "where": render(
            "{deleted} AND NOT EXISTS (SELECT 1 FROM {e} AS {ev} WHERE {m})",
            deleted=s.deleted(c),
            e=s.events.ident,
            ev=EV,
            m=s.match(None),
        ),
        # Nothing to undo (see BACKFILL_DOWN): the rollback walks the rows and changes none.
        "reverse_set": render("{c} = {c}", c=c),
        "reverse_where": "false",
        "capture_before_images": False,
    }
    mismatches = _mismatches(s)
    when = "now() (when a flag was set is unknown)" if s.flag else s.column
    return PhaseDraft(
        kind="backfill",
        name="Record a 'deleted' event for every row soft-deleted before the expand phase",
        backfill_spec=spec,
        down_sql=BACKFILL_DOWN,
        validations=[validation(f"every row's {s.column} agrees with its latest event", mismatches, 0)],
        runbook=runbook(
            rollback="Roll back the run: it changes nothing. The events it recorded are true history and "
            f"harmless; the expand phase's down SQL drops them with {s.events.key}.",
            testing=[f"{mismatches} returns 0 once it is done (the triggers keep every other row in step)."],
            seconds=estimate(s.ref.rows, BACKFILL_ROWS_PER_SECOND),
            rows=s.ref.rows,
            notes=[
                f"SET {s.column} = {s.column} changes no value: the table's trigger sees the write and appends the "
                f"row's 'deleted' event with occurred_at = {when}. Rows soft-deleted since the expand phase "
                "already have theirs, and a rerun skips rows that have one.",
                "Each batch writes a new version of the soft-deleted rows it walks (dead tuples, vacuumed "
                "between batches), none of the active ones.",
            ],
        ),
    )


def _contract(s: Shape) -> PhaseDraft:
    change, _purge, event, lock = _triggers(s)
    events, view, column, table = s.events.key, s.view_key, s.column, s.ref.key
    return PhaseDraft(
        kind="contract",
        name=f"Switch to {events}: {view} reads the events, drop the sync triggers and {column}",
        # The events table first: the next version's inserts there update the table through the trigger.
        up_sql=script(
            *s.on_event.drop(if_exists=False),
            *s.on_lock.drop(if_exists=False),
            *s.on_change.drop(if_exists=False),
            _view(s, replace=True, by_events=True),
            render("ALTER TABLE {t} DROP COLUMN {c}", t=s.ref.ident, c=ident(column)),
        ),
        # The table first (ACCESS EXCLUSIVE: no delete can then wait on the events lock we take next);
        # the event trigger before the fill, so an event inserted meanwhile waits and then sets the column.
        down_sql=script(
            *_restore_column(s),
            *lock,
            *event,
            _fill_column(s),
            _view(s, replace=True, by_events=False),
            *change,
        ),
        validations=[
            validation(f"column {column} is gone", column_exists(s.ref.regclass, column), 0),
            validation(f"trigger {s.on_change.name} is gone", s.on_change.exists_query(), 0),
            validation(f"trigger {s.on_event.name} is gone", s.on_event.exists_query(), 0),
            validation(f"trigger {s.on_lock.name} is gone", s.on_lock.exists_query(), 0),
            validation(f"trigger {s.on_purge.name} stays", s.on_purge.exists_query(), 1),
            validation(f"view {view} exists", _relation_exists(s.view_regclass), 1),
        ],
        runbook=runbook(
            rollback=f"Run the down SQL: {column} comes back filled from the latest event of every key in the "
            f"same transaction, {view} reads it again and the sync triggers return, so soft deletes and "
            "restores written as events since the switch survive and the previous version can be deployed "
            "again at once. "
            + ("Active rows get false (not NULL). " if s.flag else "")
            + f"It holds ACCESS EXCLUSIVE on {table} while it writes the soft-deleted rows.",
            testing=[
                f"\\d {table} no longer lists {column}; {view} hides exactly the rows whose latest event is 'deleted'.",
                f"The new version's INSERT INTO {events} … 'deleted' / 'restored' changes what {view} returns.",
            ],
            seconds=DDL_SECONDS,
            gate=f"The backfill succeeded (every row agrees with its latest event). Deploy the application "
            f"version that records soft deletes and restores as rows of {events} (kind 'deleted' or 'restored'), "
            f"reads active rows from {view} (or the latest event per key) and neither reads nor writes {column}; "
            "no instance of the previous version is still running, including workers and cron jobs.",
            notes=[
                "One short transaction, catalog-only: DROP COLUMN marks the column dropped without a rewrite.",
                f"The rollback writes one row per soft-deleted row (at most {s.ref.rows:,}; about "
                f"{estimate(s.ref.rows, BACKFILL_ROWS_PER_SECOND)} s if every row were) while reads of {table} wait.",
                "Prepared `SELECT *` statements on the table fail with 'cached plan must not change result type' "
                "once the column is dropped, until their connection is replaced: list columns explicitly, or "
                "recycle the application's connection pools after this phase.",
                "The purge trigger stays: hard deletes keep their 'purged' event with the row in snapshot.",
            ],
        ),
    )


DROP_EVENTS = (
    "-- planner-ignore ban-drop-table: the expand phase created this table, and the check above keeps the "
    "rows only it holds\n"
)
BACKFILL_DOWN = (
    "-- nothing to undo: the run's rollback walks the rows and changes none; the 'deleted' events it\n"
    "-- recorded are true history, dropped with the events table by the expand phase's down SQL\n"
)

RECIPE = Recipe(
    name="soft_delete_to_events",
    title="Migrate from soft delete to event sourcing",
    description="Soft-delete column → event table: create the events and a view of active rows, keep them in "
    "step with the column by triggers, backfill the history, switch the application, then drop the column; "
    "the rollback refills it from the events.",
    params=PARAMS,
    validate=validate,
    build=build,
)
