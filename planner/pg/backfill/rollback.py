"""Turning a run around: fence the forward workers, then undo slice by slice with the same batches.

With before-images, the rollback walks the run's image table in key order and writes the saved
columns back (exact, whatever the SET did). Without them, it re-walks the forward range, up to
where each forward slice stopped, with the user's reverse SET (and reverse WHERE, if given).
"""

from __future__ import annotations

from psycopg import sql

from planner.pg.backfill import bookkeeping
from planner.pg.backfill.errors import SpecError
from planner.pg.backfill.validate import Target


def mode(direction: str, capture: bool) -> str:
    """Which BatchSql mode does the work in this direction."""
    if direction == "forward":
        return "forward_capture" if capture else "forward"
    return "rollback_images" if capture else "rollback_reverse"


def create_image_table(connection, run_id: int, target: Target) -> None:
    """Typed copy of (key, changed columns), so a restore is exact for every type."""
    images = bookkeeping.before_image_table(run_id)
    columns = [sql.Identifier(name) for name in (*target.key_names, *target.set_columns)]
    connection.execute(
        sql.SQL("CREATE TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
            images, sql.SQL(", ").join(columns), target.table
        )
    )
    # The primary key also guards exactly-once: a row saved twice would fail the batch, not pass.
    connection.execute(
        sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
            images, sql.SQL(", ").join(sql.Identifier(name) for name in target.key_names)
        )
    )


def start(connection, run: bookkeeping.RunRow, target: Target) -> bool:
    """Switch the run to rollback (idempotent). Returns False if it already was rolling back."""
    if run.direction == "rollback":
        return False
    if not run.capture and not target.reverse_set_sql:
        raise SpecError(
            "rollback", "this run did not capture before-images: give a reverse SET (--reverse-set) to roll it back"
        )
    slices = bookkeeping.table("backfill_slices")
    with connection.transaction():
        # Wait (bounded) for an in-flight forward batch: its slice row lock is held until it commits.
        connection.execute("SET LOCAL lock_timeout = '30s'")
        locked = connection.execute(
            sql.SQL("SELECT direction FROM {} WHERE id = %s FOR UPDATE").format(bookkeeping.table("backfill_runs")),
            [run.id],
        ).fetchone()
        if locked[0] == "rollback":
            return False
        # Fence every forward worker: their next batch finds a newer generation and stops.
        forward = connection.execute(
            sql.SQL(
                """UPDATE {} SET generation = generation + 1, lease_until = NULL, owner = NULL
                   WHERE run_id = %s AND direction = 'forward' RETURNING slice_no, lo, hi, last_key, rows_done"""
            ).format(slices),
            [run.id],
        ).fetchall()
        plans = [
            {"lo": lo, "hi": hi, "stop_key": last_key, "rows_estimate": rows_done, "done": last_key is None}
            for _, lo, hi, last_key, rows_done in sorted(forward)
        ]
        bookkeeping.insert_slices(connection, run.id, "rollback", plans)
        connection.execute(
            sql.SQL("UPDATE {} SET direction = 'rollback' WHERE id = %s").format(bookkeeping.table("backfill_runs")),
            [run.id],
        )
    return True
