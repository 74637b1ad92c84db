"""Throughput of a target server, measured on a temporary table: what duration estimates divide by.

One short transaction, always rolled back, on a fresh connection with timeouts: create a TEMPORARY
table of known size (~10 MB, with an index), time a full sequential scan of it (EXPLAIN ANALYZE's
own execution time, so the network does not count) and a rewrite of it (ALTER COLUMN TYPE int →
bigint: heap copied, index rebuilt; wall time minus the measured round trip). Nothing but that temp
table is read or written; user tables are never touched. Takes well under a second.

Temporary tables skip the WAL and the shared buffers, so the rewrite figure is optimistic for a
logged table on a busy server: read the estimate as "at least this long".
The result is cached per server and database for the life of the process.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict

from planner.pg.connect import connect, scrub
from planner.sql.catalog import Catalog
from planner.sql.estimate import bytes_per_second, with_throughput

SAMPLE_ROWS = 100_000  # about 10 MB of heap and 2 MB of index


@dataclass(frozen=True)
class Throughput:
    scan_bytes_per_second: float | None
    rewrite_bytes_per_second: float | None
    sample_bytes: int = 0
    seconds: float = 0.0  # wall time of the whole calibration
    error: str | None = None  # why the server could not be measured (defaults then apply)

    def apply(self, catalog: Catalog) -> Catalog:
        return with_throughput(catalog, scan=self.scan_bytes_per_second, rewrite=self.rewrite_bytes_per_second)

    def describe(self) -> str:
        if self.error:
            return f"throughput not calibrated ({self.error}); default figures used"
        mb = 1024 * 1024
        return (
            f"throughput calibrated on the server: scan {self.scan_bytes_per_second / mb:.0f} MB/s, "
            f"rewrite {self.rewrite_bytes_per_second / mb:.0f} MB/s"
        )


_cache: dict[tuple, Throughput] = {}
_lock = threading.Lock()


def _key(conninfo: str) -> tuple:
    params = conninfo_to_dict(conninfo)
    return tuple(params.get(name) for name in ("host", "hostaddr", "port", "dbname", "user"))


def calibrate(conninfo: str, *, rows: int = SAMPLE_ROWS, use_cache: bool = True) -> Throughput:
    """The server's scan and rewrite throughput (cached per target for the process).

    Never raises on a database error: the Throughput then carries the (password-free) reason and
    no figures, so estimates fall back to the Catalog's defaults.
    """
    key = _key(conninfo)
    with _lock:
        if use_cache and key in _cache:
            return _cache[key]
    try:
        result = _measure(conninfo, rows)
    except psycopg.OperationalError as error:  # not reachable now: try again next time
        return Throughput(None, None, error=scrub(str(error).strip(), conninfo))
    except psycopg.Error as error:  # e.g. no TEMP privilege, a hot standby: the same next time
        result = Throughput(None, None, error=scrub((error.diag.message_primary or str(error)).strip(), conninfo))
    with _lock:
        _cache[key] = result
    return result


def _round_trip(connection: psycopg.Connection) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        connection.execute("SELECT 1")
        best = min(best, time.perf_counter() - started)
    return best


def _measure(conninfo: str, rows: int) -> Throughput:
    started = time.perf_counter()
    with connect(conninfo, autocommit=False, lock_timeout_ms=1000, statement_timeout_ms=5000) as connection:
        try:
            connection.execute("CREATE TEMPORARY TABLE planner_calibration (id bigint, n integer, payload text)")
            connection.execute(
                "INSERT INTO planner_calibration SELECT g, g, md5(g::text) || md5((-g)::text)"
                " FROM generate_series(1, %s) g",
                [int(rows)],
            )
            connection.execute("CREATE INDEX ON planner_calibration (id)")
            heap, indexes = connection.execute(
                "SELECT pg_table_size('planner_calibration'), pg_indexes_size('planner_calibration')"
            ).fetchone()
            scan_seconds = float("inf")
            for _ in range(2):  # the first read may still be settling the hint bits
                plan = connection.execute(
                    "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT count(*) FROM planner_calibration"
                ).fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                scan_seconds = min(scan_seconds, plan[0]["Execution Time"] / 1000)
            overhead = _round_trip(connection)
            rewrite_started = time.perf_counter()
            connection.execute("ALTER TABLE planner_calibration ALTER COLUMN n TYPE bigint")
            rewrite_seconds = time.perf_counter() - rewrite_started
        finally:
            connection.rollback()
    return Throughput(
        scan_bytes_per_second=bytes_per_second(heap, scan_seconds),
        rewrite_bytes_per_second=bytes_per_second(heap + indexes, rewrite_seconds, overhead),
        sample_bytes=heap + indexes,
        seconds=round(time.perf_counter() - started, 3),
    )
