"""Backfill engine fixtures: small real tables in the fresh target database of `target_dsn`."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture
def items(target_dsn):
    """A table `items` of 3,000 rows (id 1..3000, counter 0); autovacuum off so dead-tuple counts are ours."""
    make_items(target_dsn, 3_000)
    return target_dsn


def make_items(dsn: str, rows: int, *, name: str = "items") -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            f"""CREATE TABLE {name} (
                    id bigint PRIMARY KEY,
                    counter integer NOT NULL DEFAULT 0,
                    kind text NOT NULL,
                    note text,
                    amount numeric(10, 2),
                    seen_at timestamptz
                ) WITH (autovacuum_enabled = false)"""
        )
        connection.execute(
            f"""INSERT INTO {name} (id, kind, note, amount, seen_at)
                SELECT g, CASE WHEN g %% 3 = 0 THEN 'gift' ELSE 'plain' END,
                       CASE WHEN g %% 7 = 0 THEN NULL ELSE 'n' || g END,
                       g / 100.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
                FROM generate_series(1, %s) g""",
            [rows],
        )
        connection.execute(f"ANALYZE {name}")


def counter_histogram(dsn: str, table: str = "items") -> dict[int, int]:
    """{counter value: rows}: exactly-once means {1: n} after one run (or {0: n} after a rollback)."""
    with psycopg.connect(dsn) as connection:
        return dict(connection.execute(f"SELECT counter, count(*) FROM {table} GROUP BY 1 ORDER BY 1").fetchall())
