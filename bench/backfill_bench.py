"""Backfill benchmark: our engine vs one big UPDATE vs a per-row loop, while an application writes.

    .venv/bin/python bench/backfill_bench.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
                                            [--rows 1000000] [--app-rate 100] [--loop-rows N]

In one run, on a scratch database it creates (and drops): each contender backfills its own fresh
copy of a `users`-like table (`email_lower = lower(email), counter = counter + 1`; email_lower
starts as a mixed-case copy, so rows keep their width and growth measures dead space) while another
connection updates random single rows ~100 times a second and records how long each write took.
Printed: throughput and ratios (goals: ours >= 0.8x the single UPDATE, >= 2x the loop), app-write
latency p50/p99/max during each (goals during ours: p99 <= 50 ms, max <= 500 ms), table growth
(goal <= 1.3x) and the speed-up with 2 and 4 parallel slices.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.pg.backfill import BackfillRunner, BackfillSpec  # noqa: E402

SET = "email_lower = lower(email), counter = counter + 1"
DATABASE = "bf_bench"


class AppWriter:
    """Updates one random row `rate` times a second on its own connection; records each latency (ms)."""

    def __init__(self, dsn: str, table: str, rows: int, rate: float):
        self.dsn, self.table, self.rows, self.interval = dsn, table, rows, 1 / rate
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        statement = sql.SQL("UPDATE {} SET app_writes = app_writes + 1 WHERE id = %s").format(
            sql.Identifier(self.table)
        )
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            next_at = time.perf_counter()
            while not self._stop.is_set():
                started = time.perf_counter()
                connection.execute(statement, [random.randint(1, self.rows)])
                self.latencies.append((time.perf_counter() - started) * 1000)
                next_at += self.interval
                time.sleep(max(0.0, next_at - time.perf_counter()))

    def summary(self) -> str:
        values = sorted(self.latencies)
        if not values:
            return "no writes"
        p = lambda q: values[min(len(values) - 1, int(q / 100 * len(values)))]  # noqa: E731
        return f"{len(values)} writes, p50 {p(50):.1f} ms, p99 {p(99):.1f} ms, max {values[-1]:.1f} ms"

    def p99_max(self) -> tuple[float, float]:
        values = sorted(self.latencies) or [0.0]
        return values[min(len(values) - 1, int(0.99 * len(values)))], values[-1]


def load(dsn: str, table: str, rows: int) -> None:
    ident = sql.Identifier(table)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        connection.execute(
            sql.SQL(
                """CREATE TABLE {} (id bigint PRIMARY KEY, email text NOT NULL, email_lower text,
                   counter integer NOT NULL DEFAULT 0, app_writes integer NOT NULL DEFAULT 0,
                   created_at timestamptz NOT NULL DEFAULT now())"""
            ).format(ident)
        )
        connection.execute(
            sql.SQL(
                "INSERT INTO {} (id, email, email_lower) SELECT g, e, e FROM generate_series(1, %s) g,"
                " LATERAL (SELECT 'User' || g || '@Example.COM' AS e) AS x"
            ).format(ident),
            [rows],
        )
        connection.execute(sql.SQL("VACUUM (ANALYZE) {}").format(ident))
        connection.execute("CHECKPOINT")


def size(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as connection:
        return connection.execute("SELECT pg_table_size(%s)", [table]).fetchone()[0]


def check(dsn: str, table: str, rows: int) -> None:
    with psycopg.connect(dsn) as connection:
        bad = connection.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE counter <> 1 OR email_lower IS DISTINCT FROM lower(email)").format(
                sql.Identifier(table)
            )
        ).fetchone()[0]
    if bad:
        raise SystemExit(f"{table}: {bad} of {rows} rows not backfilled exactly once")


def run_single(dsn: str, table: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("UPDATE {} SET " + SET).format(sql.Identifier(table)))


def run_loop(dsn: str, table: str, rows: int) -> None:
    """What people write by hand: one UPDATE per row, a COMMIT every 1,000 rows."""
    statement = sql.SQL("UPDATE {} SET " + SET + " WHERE id = %s").format(sql.Identifier(table))
    with psycopg.connect(dsn) as connection:
        for key in range(1, rows + 1):
            connection.execute(statement, [key])
            if key % 1000 == 0:
                connection.commit()
        connection.commit()


def run_ours(dsn: str, table: str, slices: int) -> tuple[float, list[float]]:
    """Returns (seconds until the last batch committed, batch durations); the final VACUUM comes after."""
    runner = BackfillRunner(dsn, BackfillSpec(table=table, set=SET), f"bench-{table}")
    runner.prepare(slices=slices)
    durations, started, last = [], time.perf_counter(), [0.0]

    def on_batch(progress):
        durations.append(progress.ms)
        last[0] = time.perf_counter()

    holds = []
    runner.run_foreground(on_batch=on_batch, on_hold=lambda s, h: holds.append(h.reason))
    if holds:
        print(f"    holds: {len(holds)} ({'; '.join(sorted(set(holds))[:3])})")
    return last[0] - started, durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--app-rate", type=float, default=100.0)
    parser.add_argument("--loop-rows", type=int, help="run the per-row loop on fewer rows and extrapolate")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        version = admin.execute("SHOW server_version").fetchone()[0]
    dsn = make_conninfo(args.server, dbname=DATABASE)
    rows = args.rows
    print(f"PostgreSQL {version}, {rows:,} rows, app writes at {args.app_rate:g}/s, SET {SET}")
    results = {}
    try:
        contenders = [("single UPDATE", "t_single"), ("per-row loop", "t_loop"), ("ours, 1 slice", "t_ours1")]
        contenders += [("ours, 2 slices", "t_ours2"), ("ours, 4 slices", "t_ours4")]
        for label, table in contenders:
            load(dsn, table, rows)
            before = size(dsn, table)
            loop_rows = min(rows, args.loop_rows or rows) if table == "t_loop" else rows
            with AppWriter(dsn, table, rows, args.app_rate) as app:
                started = time.perf_counter()
                extra = ""
                if table == "t_single":
                    run_single(dsn, table)
                    seconds = time.perf_counter() - started
                elif table == "t_loop":
                    run_loop(dsn, table, loop_rows)
                    seconds = (time.perf_counter() - started) * rows / loop_rows
                else:
                    seconds, batches = run_ours(dsn, table, int(table[-1]))
                    batches.sort()
                    p99 = batches[min(len(batches) - 1, int(0.99 * len(batches)))]
                    total = time.perf_counter() - started
                    extra = f"; {len(batches)} batches, p99 {p99:.0f} ms, max {batches[-1]:.0f} ms"
                    extra += f"; then final VACUUM (ANALYZE) {total - seconds:.1f} s"
            if loop_rows == rows:
                check(dsn, table, rows)
            growth = size(dsn, table) / before
            results[table] = (seconds, app.p99_max(), growth)
            print(
                f"{label:16} {seconds:7.1f} s {rows / seconds:10,.0f} rows/s  growth {growth:.2f}x"
                f"  app: {app.summary()}{extra}"
                + (f"  (loop timed on {loop_rows:,} rows, extrapolated)" if loop_rows != rows else "")
            )
    finally:
        if not args.keep:
            with psycopg.connect(args.server, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))

    ours, single, loop = results["t_ours1"][0], results["t_single"][0], results["t_loop"][0]
    p99, worst = results["t_ours1"][1]
    print()
    print(f"ours vs single UPDATE: {single / ours:.2f}x throughput (goal >= 0.8)")
    print(f"ours vs per-row loop:  {loop / ours:.2f}x throughput (goal >= 2)")
    print(f"app writes during ours: p99 {p99:.1f} ms (goal <= 50), max {worst:.1f} ms (goal <= 500)")
    print(
        f"table growth with ours: {results['t_ours1'][2]:.2f}x"
        f" (goal <= 1.3; single UPDATE {results['t_single'][2]:.2f}x)"
    )
    print(
        f"parallel slices speed-up: 2 -> {ours / results['t_ours2'][0]:.2f}x, 4 -> {ours / results['t_ours4'][0]:.2f}x"
    )


if __name__ == "__main__":
    main()
