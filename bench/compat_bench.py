"""Query-compatibility check: what checking every query at every phase boundary costs.

    .venv/bin/python bench/compat_bench.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                           [--tables 40] [--queries 200] [--phases 6] [--repeat 5]

Needs no planner store: it talks to a PostgreSQL server directly (default: the embedded one of
`.planner/`, started if needed). Creates a scratch target database with `--tables` tables, writes
`--queries` application queries against them and a plan of `--phases` phases (each renames a column
the queries use), then times in one run:

  baseline  what sqlx does at compile time: a schema-only copy, every query prepared once on it;
  ours      the same copy rewound and walked phase by phase, every query prepared at every
            boundary (`planner.pg.compat.check_plan`).

Prints both, the ratio, and the cost per query per boundary. The scratch database is dropped.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from planner.pg import compat  # noqa: E402
from planner.pg.shadow import shadow_database  # noqa: E402


def embedded_server():
    """The embedded server of `.planner/` and whether this run starts it (then it stops it too)."""
    from planner.embedded import EmbeddedPostgres, default_data_root

    server = EmbeddedPostgres(default_data_root())
    return server, server.running_pid() is None


def make_target(server: str, tables: int) -> str:
    name = f"compat_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = make_conninfo(server, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as connection:
        for table in range(tables):
            connection.execute(
                sql.SQL(
                    "CREATE TABLE {} (id bigint PRIMARY KEY, owner_id bigint NOT NULL, title text, "
                    "body text, created_at timestamptz NOT NULL DEFAULT now(), score int)"
                ).format(sql.Identifier(f"t{table}"))
            )
            connection.execute(sql.SQL("CREATE INDEX ON {} (owner_id)").format(sql.Identifier(f"t{table}")))
    return dsn


def queries_for(tables: int, count: int) -> list[compat.Query]:
    shapes = [
        "SELECT id, title, created_at FROM t{n} WHERE owner_id = $1 ORDER BY created_at DESC LIMIT 20",
        "INSERT INTO t{n} (id, owner_id, title, body) VALUES ($1, $2, $3, $4) RETURNING id, created_at",
        "UPDATE t{n} SET title = $1, score = score + 1 WHERE id = $2",
        "SELECT a.id, b.title FROM t{n} a JOIN t{m} b ON b.owner_id = a.owner_id WHERE a.id = $1",
        "DELETE FROM t{n} WHERE id = $1 AND owner_id = $2",
    ]
    result = []
    for index in range(count):
        text = shapes[index % len(shapes)].format(n=index % tables, m=(index + 1) % tables)
        result.append(compat.Query(str(index), text + f" -- q{index}"))
    return result


def steps_for(phases: int) -> list[compat.Step]:
    steps = []
    for position in range(1, phases + 1):
        table = sql.Identifier(f"t{position - 1}").as_string(None)
        steps.append(
            compat.Step(
                key=f"phase-{position}",
                position=position,
                name=f"rename {table}.title",
                kind="contract",
                up_sql=f"ALTER TABLE {table} RENAME COLUMN title TO headline;",
                down_sql=f"ALTER TABLE {table} RENAME COLUMN headline TO title;",
            )
        )
    return steps


def baseline(dsn: str, queries: list[compat.Query]) -> float:
    started = time.perf_counter()
    with shadow_database(dsn) as shadow, psycopg.connect(shadow, autocommit=True) as connection:
        compat.check_queries(connection, queries)
    return time.perf_counter() - started


def ours(dsn: str, queries: list[compat.Query], steps: list[compat.Step]) -> tuple[float, dict]:
    started = time.perf_counter()
    result = compat.check_plan(dsn, steps, queries)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a superuser URL of the server to use (default: the embedded one)")
    parser.add_argument("--tables", type=int, default=40)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--phases", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the best is reported")
    args = parser.parse_args()
    embedded, started_here = (None, False) if args.dsn else embedded_server()
    server = args.dsn or embedded.start()
    dsn = make_target(server, args.tables)
    try:
        queries, steps = queries_for(args.tables, args.queries), steps_for(min(args.phases, args.tables))
        base = min(baseline(dsn, queries) for _ in range(args.repeat))
        timings = [ours(dsn, queries, steps) for _ in range(args.repeat)]
        best, result = min(timings, key=lambda pair: pair[0])
        boundaries = len(result["boundaries"])
        broken = sum(1 for outcome in result["results"].get(steps[-1].key, {}).values() if outcome["state"] == "broken")
        with psycopg.connect(dsn) as connection:
            version = connection.execute("SHOW server_version").fetchone()[0]
        print(f"PostgreSQL {version}; {args.tables} tables, {len(queries)} queries, {len(steps)} phases")
        print(f"baseline (copy + prepare each query once):     {base:6.2f} s")
        print(f"ours (copy + rewind + {boundaries} boundaries × queries): {best:6.2f} s  = {best / base:.2f}× baseline")
        per_check = (best - base) / max(1, (boundaries - 1) * len(queries)) * 1000
        print(f"each extra query × boundary: {per_check:.2f} ms; breaking after the last phase: {broken} queries")
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(conninfo_to_dict(dsn)["dbname"])
                )
            )
        if started_here:
            embedded.stop()


if __name__ == "__main__":
    main()
