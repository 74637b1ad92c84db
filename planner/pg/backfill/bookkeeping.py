"""The bookkeeping schema in the target database: runs, slice checkpoints with fencing, holds.

It lives next to the customer's data because a batch's checkpoint must commit in the same
transaction as the batch (exactly-once). Created on first use under an advisory lock (two workers
starting at once must not race on CREATE), removed entirely by `drop_schema`.

A slice's `generation` is its fencing token: claiming bumps it, and every batch re-reads the slice
row FOR UPDATE with the generation it claimed. A worker that was claimed away (it stalled, its
lease expired, the CLI took over) finds no row and stops with LeaseLost before writing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from planner.pg.backfill.errors import LeaseLost, RunNotFound

SCHEMA = "planner_bookkeeping"
_LOCK_KEY = 0x706C616E  # pg_advisory_xact_lock key serialising bookkeeping DDL ("plan")

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
COMMENT ON SCHEMA {schema} IS
    'Checkpoints of the migration planner''s backfills; remove with: manage.py backfill --drop-bookkeeping';
CREATE TABLE IF NOT EXISTS {schema}.backfill_runs (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    table_name text NOT NULL,
    key_columns text[] NOT NULL,
    identity jsonb NOT NULL,
    spec jsonb NOT NULL,
    capture boolean NOT NULL,
    direction text NOT NULL DEFAULT 'forward' CHECK (direction IN ('forward', 'rollback')),
    table_bytes_before bigint,
    table_bytes_after bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    rolled_back_at timestamptz
);
CREATE TABLE IF NOT EXISTS {schema}.backfill_slices (
    run_id bigint NOT NULL REFERENCES {schema}.backfill_runs ON DELETE CASCADE,
    direction text NOT NULL,
    slice_no integer NOT NULL,
    lo text,              -- first key column, exclusive; NULL: unbounded
    hi text,              -- first key column, inclusive; NULL: unbounded
    stop_key text[],      -- rollback by reverse SET: where the forward run stopped
    last_key text[],      -- the checkpoint: every key <= last_key in this slice is done
    rows_estimate bigint,
    rows_done bigint NOT NULL DEFAULT 0,
    batches bigint NOT NULL DEFAULT 0,
    batch_size integer,
    done boolean NOT NULL DEFAULT false,
    generation bigint NOT NULL DEFAULT 0,
    owner text,
    lease_until timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, direction, slice_no)
);
CREATE TABLE IF NOT EXISTS {schema}.backfill_holds (
    id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES {schema}.backfill_runs ON DELETE CASCADE,
    direction text NOT NULL,
    slice_no integer NOT NULL,
    signal text NOT NULL,
    reason text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    until timestamptz NOT NULL
);
"""


def schema() -> sql.Identifier:
    return sql.Identifier(SCHEMA)


def table(name: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, name)


def before_image_table(run_id: int) -> sql.Identifier:
    """Per-run typed copy of (key, changed columns) as they were before the batch changed them."""
    return sql.Identifier(SCHEMA, f"backfill_{int(run_id)}_before")


@dataclass
class RunRow:
    id: int
    name: str
    table_name: str
    key_columns: list[str]
    identity: dict
    spec: dict
    capture: bool
    direction: str
    table_bytes_before: int | None
    table_bytes_after: int | None
    created_at: datetime
    finished_at: datetime | None
    rolled_back_at: datetime | None


@dataclass
class SliceRow:
    run_id: int
    direction: str
    slice_no: int
    lo: str | None
    hi: str | None
    stop_key: list[str] | None
    last_key: list[str] | None
    rows_estimate: int | None
    rows_done: int
    batches: int
    batch_size: int | None
    done: bool
    generation: int
    owner: str | None
    lease_until: datetime | None
    consecutive_failures: int
    last_error: str | None
    updated_at: datetime


def ensure_schema(connection: psycopg.Connection) -> None:
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        exists = connection.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{SCHEMA}.backfill_holds"]).fetchone()[0]
        if not exists:
            connection.execute(sql.SQL(_DDL).format(schema=schema()))


def drop_schema(connection: psycopg.Connection) -> bool:
    """Remove every trace of the planner's backfills from the target. Returns whether it existed."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        existed = connection.execute("SELECT to_regnamespace(%s) IS NOT NULL", [SCHEMA]).fetchone()[0]
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema()))
    return existed


def schema_exists(connection: psycopg.Connection) -> bool:
    return connection.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{SCHEMA}.backfill_runs"]).fetchone()[0]


def find_run(connection: psycopg.Connection, name: str) -> RunRow | None:
    if not schema_exists(connection):
        return None
    with connection.cursor(row_factory=class_row(RunRow)) as cursor:
        return cursor.execute(
            sql.SQL("SELECT * FROM {} WHERE name = %s").format(table("backfill_runs")), [name]
        ).fetchone()


def get_run(connection: psycopg.Connection, name: str) -> RunRow:
    run = find_run(connection, name)
    if run is None:
        raise RunNotFound(f"no backfill run named {name!r} in this database")
    return run


def insert_run(connection, *, name, table_name, key_columns, identity, spec, capture, table_bytes) -> RunRow | None:
    """Insert a run (inside the caller's transaction); None if the name is already taken."""
    with connection.cursor(row_factory=class_row(RunRow)) as cursor:
        return cursor.execute(
            sql.SQL(
                """INSERT INTO {} (name, table_name, key_columns, identity, spec, capture, table_bytes_before)
                   VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING *"""
            ).format(table("backfill_runs")),
            [name, table_name, key_columns, Jsonb(identity), Jsonb(spec)] + [capture, table_bytes],
        ).fetchone()


def insert_slices(connection, run_id: int, direction: str, slices: list[dict]) -> None:
    """slices: dicts with lo, hi, rows_estimate and optionally stop_key, done."""
    with connection.cursor() as cursor:
        cursor.executemany(
            sql.SQL(
                """INSERT INTO {} (run_id, direction, slice_no, lo, hi, rows_estimate, stop_key, done)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"""
            ).format(table("backfill_slices")),
            [
                (
                    run_id,
                    direction,
                    number,
                    s["lo"],
                    s["hi"],
                    s.get("rows_estimate"),
                    s.get("stop_key"),
                    s.get("done", False),
                )
                for number, s in enumerate(slices)
            ],
        )


def list_slices(connection, run_id: int, direction: str) -> list[SliceRow]:
    with connection.cursor(row_factory=class_row(SliceRow)) as cursor:
        return cursor.execute(
            sql.SQL("SELECT * FROM {} WHERE run_id = %s AND direction = %s ORDER BY slice_no").format(
                table("backfill_slices")
            ),
            [run_id, direction],
        ).fetchall()


def claim(
    connection, run_id: int, direction: str, slice_no: int, owner: str, lease_s: float, force: bool
) -> int | None:
    """Take the slice: bump its generation (fencing every earlier holder). None if someone holds a live lease."""
    with connection.transaction():
        row = connection.execute(
            sql.SQL(
                """UPDATE {} SET generation = generation + 1, owner = %s,
                          lease_until = clock_timestamp() + make_interval(secs => %s), updated_at = now()
                   WHERE run_id = %s AND direction = %s AND slice_no = %s
                     AND (%s OR lease_until IS NULL OR lease_until < clock_timestamp() OR owner = %s)
                   RETURNING generation"""
            ).format(table("backfill_slices")),
            [owner, lease_s, run_id, direction, slice_no, force, owner],
        ).fetchone()
    return row[0] if row else None


def release(connection, run_id: int, direction: str, slice_no: int, generation: int) -> None:
    """Let the next task claim at once (a killed worker's lease simply expires instead)."""
    with connection.transaction():
        connection.execute(
            sql.SQL(
                """UPDATE {} SET lease_until = NULL
                   WHERE run_id = %s AND direction = %s AND slice_no = %s AND generation = %s"""
            ).format(table("backfill_slices")),
            [run_id, direction, slice_no, generation],
        )


def fence(connection, run_id: int, direction: str, slice_no: int, generation: int) -> SliceRow:
    """Inside the batch transaction: lock our slice row if we still own it; the checkpoint comes from here."""
    with connection.cursor(row_factory=class_row(SliceRow)) as cursor:
        row = cursor.execute(
            sql.SQL(
                "SELECT * FROM {} WHERE run_id = %s AND direction = %s AND slice_no = %s AND generation = %s FOR UPDATE"
            ).format(table("backfill_slices")),
            [run_id, direction, slice_no, generation],
        ).fetchone()
    if row is None:
        raise LeaseLost(
            f"slice {slice_no} ({direction}) was claimed by another worker: generation {generation} is stale"
        )
    return row


def checkpoint(connection, run_id, direction, slice_no, generation, *, last_key, rows, done, batch_size, lease_s):
    """Inside the batch transaction: advance the checkpoint; commits with the batch or not at all."""
    connection.execute(
        sql.SQL(
            """UPDATE {} SET last_key = coalesce(%s, last_key), rows_done = rows_done + %s, batches = batches + 1,
                      done = %s, batch_size = %s, consecutive_failures = 0, last_error = NULL,
                      lease_until = clock_timestamp() + make_interval(secs => %s), updated_at = now()
               WHERE run_id = %s AND direction = %s AND slice_no = %s AND generation = %s"""
        ).format(table("backfill_slices")),
        [last_key, rows, done, batch_size, lease_s, run_id, direction, slice_no, generation],
    )


def record_failure(connection, run_id, direction, slice_no, generation, message: str, count: int) -> None:
    with connection.transaction():
        connection.execute(
            sql.SQL(
                """UPDATE {} SET consecutive_failures = %s, last_error = %s, updated_at = now()
                   WHERE run_id = %s AND direction = %s AND slice_no = %s AND generation = %s"""
            ).format(table("backfill_slices")),
            [count, message, run_id, direction, slice_no, generation],
        )


def record_hold(connection, run_id, direction, slice_no, signal: str, reason: str, until: datetime) -> None:
    with connection.transaction():
        connection.execute(
            sql.SQL(
                "INSERT INTO {} (run_id, direction, slice_no, signal, reason, until) VALUES (%s, %s, %s, %s, %s, %s)"
            ).format(table("backfill_holds")),
            [run_id, direction, slice_no, signal, reason, until],
        )


def list_holds(connection, run_id: int) -> list[tuple]:
    return connection.execute(
        sql.SQL(
            "SELECT slice_no, direction, signal, reason, started_at, until FROM {} WHERE run_id = %s ORDER BY id"
        ).format(table("backfill_holds")),
        [run_id],
    ).fetchall()


def forget_run(connection, name: str) -> bool:
    """Delete one run's bookkeeping (and its before-images). Returns whether it existed."""
    run = find_run(connection, name)
    if run is None:
        return False
    with connection.transaction():
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(before_image_table(run.id)))
        connection.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(table("backfill_runs")), [run.id])
    return True
