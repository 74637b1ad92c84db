"""Runbook pieces shared by recipes: duration estimates from row counts, gates, validation queries.

Throughputs are deliberately conservative defaults for a busy server; the analyzer's own
estimates (from table bytes) are shown beside them on the plan page.
"""

from __future__ import annotations

from planner.recipes.sqltext import literal, render

BACKFILL_ROWS_PER_SECOND = 20_000  # small adaptive batches with throttling between them
INDEX_ROWS_PER_SECOND = 200_000  # CREATE INDEX CONCURRENTLY scans the table twice
SCAN_ROWS_PER_SECOND = 1_000_000  # VALIDATE CONSTRAINT, a counting query
DDL_SECONDS = 1  # a catalog-only change, once its lock is granted


def estimate(rows: int, rows_per_second: float) -> int:
    return max(DDL_SECONDS, round(rows / rows_per_second))


def duration_text(seconds: int, rows: int | None = None) -> str:
    if seconds < 60:
        text = f"about {seconds} s"
    elif seconds < 3600:
        text = f"about {round(seconds / 60)} min"
    else:
        text = f"about {seconds / 3600:.1f} h"
    return f"{text} ({rows:,} rows estimated)" if rows is not None else text


def runbook(*, rollback: str, testing: list[str], seconds: int, rows: int | None = None, gate: str = "", notes=()):
    """One phase's runbook: what to do before it (gate), how long, how to undo it, how to test it."""
    book = {
        "rollback": rollback,
        "testing": list(testing),
        "estimated_seconds": seconds,
        "estimated_duration": duration_text(seconds, rows),
        "notes": list(notes),
    }
    if gate:
        book["gate"] = gate
    return book


def validation(name: str, query: str, expected) -> dict:
    """A gate query: its first column of its only row must equal `expected` (JSON value)."""
    return {"name": name, "sql": query, "expected": expected}


def column_exists(table_regclass: str, column: str, expected: int = 1) -> str:
    return render(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass({t}) AND attname = {c} AND NOT attisdropped",
        t=literal(table_regclass),
        c=literal(column),
    )


def column_not_null(table_regclass: str, column: str) -> str:
    """pg_attribute.attnotnull of the column: true once SET NOT NULL has run."""
    return render(
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass({t}) AND attname = {c}",
        t=literal(table_regclass),
        c=literal(column),
    )


def index_valid(index_regclass: str) -> str:
    return render(
        "SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass({i})), false)",
        i=literal(index_regclass),
    )


def constraint_state(table_regclass: str, name: str) -> str:
    """'validated', 'not valid' or 'missing'."""
    return render(
        "SELECT coalesce((SELECT CASE WHEN convalidated THEN 'validated' ELSE 'not valid' END FROM pg_constraint "
        "WHERE conrelid = to_regclass({t}) AND conname = {n}), 'missing')",
        t=literal(table_regclass),
        n=literal(name),
    )


NOTHING_TO_UNDO = "-- nothing to undo here: the previous phase's down SQL removes what this phase changed\n"
