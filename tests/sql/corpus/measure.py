"""Measure, on a real PostgreSQL, what each corpus statement locks, rewrites and scans.

    python -m tests.sql.corpus.measure --dsn postgresql://postgres@127.0.0.1:5432/postgres --label 15
    python -m tests.sql.corpus.measure --embedded --label 18      # starts a throwaway embedded server

For every case of `cases.py` a fresh database is created, the case's setup runs and is committed,
`ANALYZE` gives the planner real statistics, then the statement is measured and the database dropped.
The result is merged into `measured.json` under the given label (one label per PostgreSQL major).

Method, statements that can run in a transaction (all but a few):
  BEGIN; read pg_stat_xact_user_tables (baseline); run the statement; read pg_locks for this
  backend (first, so that our own reads add no locks); read pg_stat_xact_user_tables again,
  pg_class.relfilenode and pg_relation_size; ROLLBACK.
  * locks: locktype = 'relation' rows of this backend's pid, kept only for relations that existed
    after the setup (tables, partitioned tables, views, materialized views, by OID, named as they
    were created). Indexes, sequences, TOAST and catalog relations are left out. The strongest mode
    per relation is kept and spelled as in the PostgreSQL docs.
  * rewrites: the relation's relfilenode changed AND the new file is not empty. TRUNCATE also swaps
    in a new relfilenode, but an empty one: nothing was copied, so it is not a rewrite.
  * scans: the transaction-local seq_tup_read grew by at least the number of rows the table had
    (a full sequential read; DDL's internal scans - table rewrite, NOT NULL/CHECK verification,
    index builds - count there too). The baseline is read inside the same transaction because
    pg_stat_xact_* also shows earlier transactions' counts that were not yet flushed (PG 15+).
    Only relations with storage (tables, materialized views) can be scanned or rewritten; a
    partitioned parent's partitions appear under their own names.
  * blocking: a lock of SHARE or stronger on a relation that is scanned or rewritten, or an
    UPDATE/DELETE whose n_tup_upd / n_tup_del delta reaches the table's row count.

Method, statements PostgreSQL refuses in a transaction block (CONCURRENTLY forms, VACUUM):
  the statement runs in autocommit on one connection while a second connection samples pg_locks
  for that backend's pid in a tight loop (granted and awaited modes both count: an awaited mode is
  one the statement takes as soon as it is granted). To make sure the statement is caught while it
  holds its locks, a third connection holds a lock on every pre-existing table when it starts and
  releases it once the statement waits (or after a second). This runs three times, each on a
  fresh database, the holder taking ROW EXCLUSIVE (the CONCURRENTLY forms then sit in their
  wait-for-writers phase holding their table lock), SHARE UPDATE EXCLUSIVE (catches a SHARE UPDATE
  EXCLUSIVE request made after a weaker look-up lock, as VACUUM does) and ACCESS EXCLUSIVE (every
  statement then shows the first mode it requests on each table). The union of the passes is kept.
  Scans, rewrites and row counts come from pg_stat_user_tables deltas (after
  pg_stat_force_next_flush()) and committed relfilenodes. Cross-check: run through this sampled
  method, transactional cases (CREATE INDEX, ADD FOREIGN KEY, SET NOT NULL, VALIDATE, UPDATE,
  ALTER TYPE, TRUNCATE, ATTACH PARTITION) give exactly their in-transaction results.

TimeZone is UTC for every session (timestamp <-> timestamptz changes are measured at UTC).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.sql.corpus.cases import CASES, Case

MEASURED_PATH = Path(__file__).resolve().parent / "measured.json"

MODE_NAMES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}
MODE_ORDER = list(MODE_NAMES.values())  # weakest first
BLOCKING_FROM = MODE_ORDER.index("SHARE")

STAT_COLUMNS = "seq_scan, seq_tup_read, n_tup_ins, n_tup_upd, n_tup_del"


def strongest(modes) -> str:
    return max(modes, key=MODE_ORDER.index)


class Relation:
    def __init__(self, oid: int, name: str, kind: str, filenode: int, rows: int | None):
        self.oid, self.name, self.kind, self.filenode, self.rows = oid, name, kind, filenode, rows

    @property
    def has_storage(self) -> bool:
        return self.kind in ("r", "m")


def _connect(dsn: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, options="-c TimeZone=UTC -c stats_fetch_consistency=none", **kwargs)


def _existing_relations(conn) -> dict[int, Relation]:
    rows = conn.execute(
        """
        SELECT c.oid::bigint, c.relname, c.relkind::text, c.relfilenode::bigint
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        """
    ).fetchall()
    relations = {}
    for oid, name, kind, filenode in rows:
        count = None
        if kind in ("r", "m"):
            count = conn.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(name))).fetchone()[0]
        relations[oid] = Relation(oid, name, kind, filenode, count)
    return relations


def _stats(conn, view: str) -> dict[int, tuple[int, ...]]:
    query = f"SELECT relid::bigint, {STAT_COLUMNS} FROM {view}"  # view: one of two fixed names
    return {row[0]: tuple(v or 0 for v in row[1:]) for row in conn.execute(query)}


def _filenodes(conn, oids) -> dict[int, tuple[int, int]]:
    """oid → (relfilenode, size in bytes) for relations that still exist (pg_relation_size locks: read last)."""
    rows = conn.execute(
        "SELECT oid::bigint, relfilenode::bigint, pg_relation_size(oid) FROM pg_class WHERE oid = ANY(%s)",
        [list(oids)],
    ).fetchall()
    return {oid: (filenode, size) for oid, filenode, size in rows}


def _summarise(relations, lock_rows, before, after, files) -> dict:
    """Turn raw observations into the corpus record {locks, rewrites, scans, blocking, detail}."""
    modes: dict[str, list[str]] = {}
    for oid, mode in lock_rows:
        if oid in relations and mode in MODE_NAMES:
            modes.setdefault(relations[oid].name, []).append(MODE_NAMES[mode])
    locks = {name: strongest(found) for name, found in sorted(modes.items())}
    rewrites, scans, detail, blocking = [], [], {}, False
    for oid, rel in sorted(relations.items(), key=lambda item: item[1].name):
        if not rel.has_storage:
            continue
        zero = (0, 0, 0, 0, 0)
        delta = [a - b for a, b in zip(after.get(oid, zero), before.get(oid, zero), strict=True)]
        _seq_scan, seq_tup_read, _ins, upd, dele = delta
        filenode, size = files.get(oid, (rel.filenode, None))
        rewritten = filenode != rel.filenode and bool(size)
        scanned = rel.rows > 0 and seq_tup_read >= rel.rows
        touched_all = rel.rows > 0 and (upd >= rel.rows or dele >= rel.rows)
        if rewritten:
            rewrites.append(rel.name)
        if scanned:
            scans.append(rel.name)
        mode = locks.get(rel.name)
        if mode and MODE_ORDER.index(mode) >= BLOCKING_FROM and (rewritten or scanned):
            blocking = True
        if touched_all:
            blocking = True
        if any(delta) or filenode != rel.filenode:
            detail[rel.name] = {
                "rows": rel.rows,
                "seq_tup_read": seq_tup_read,
                "n_tup_upd": upd,
                "n_tup_del": dele,
                "new_relfilenode": filenode != rel.filenode,
            }
    return {"locks": locks, "rewrites": rewrites, "scans": scans, "blocking": blocking, "detail": detail}


class Server:
    """Creates and drops one scratch database per measurement."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.counter = 0

    def major(self) -> int:
        with _connect(self.dsn) as conn:
            return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000

    def version(self) -> str:
        with _connect(self.dsn) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def fresh_database(self, case: Case) -> tuple[str, str]:
        self.counter += 1
        name = f"corpus_{os.getpid()}_{self.counter}"
        with _connect(self.dsn) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_conninfo(self.dsn, dbname=name)
        with _connect(url) as conn:
            conn.execute(case.setup)
            conn.execute("ANALYZE")
        return name, url

    def drop(self, name: str) -> None:
        with _connect(self.dsn) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def measure_in_transaction(server: Server, case: Case) -> dict:
    name, url = server.fresh_database(case)
    try:
        with _connect(url) as conn:
            relations = _existing_relations(conn)
            conn.execute("BEGIN")
            conn.execute("SET LOCAL lock_timeout = '10s'")
            before = _stats(conn, "pg_stat_xact_user_tables")
            conn.execute(case.statement)
            lock_rows = conn.execute(
                """
                SELECT relation::bigint, mode FROM pg_locks
                WHERE pid = pg_backend_pid() AND locktype = 'relation'
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """
            ).fetchall()
            after = _stats(conn, "pg_stat_xact_user_tables")
            files = _filenodes(conn, relations)
            conn.execute("ROLLBACK")
        record = _summarise(relations, lock_rows, before, after, files)
        record["method"] = "transaction"
        return record
    finally:
        server.drop(name)


def _flushed_stats(conn) -> dict[int, tuple[int, ...]]:
    # The flush happens when the backend goes idle after this call, before it answers.
    conn.execute("SELECT pg_stat_force_next_flush()")
    return _stats(conn, "pg_stat_user_tables")


def _sampled_pass(server: Server, case: Case, holder_mode: str) -> dict:
    name, url = server.fresh_database(case)
    try:
        with _connect(url) as runner, _connect(url) as sampler, _connect(url) as holder:
            relations = _existing_relations(runner)
            before = _flushed_stats(runner)
            runner_pid = runner.info.backend_pid
            tables = [rel.name for rel in relations.values() if rel.kind in ("r", "p")]
            holder.execute("BEGIN")
            holder.execute(
                sql.SQL("LOCK TABLE {} IN {} MODE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables), sql.SQL(holder_mode)
                )
            )
            failure: list[BaseException] = []

            def run() -> None:
                try:
                    runner.execute("SET lock_timeout = '20s'")
                    runner.execute(case.statement)
                except BaseException as error:  # noqa: BLE001 - reported by the main thread
                    failure.append(error)

            thread = threading.Thread(target=run)
            started = time.monotonic()
            thread.start()
            seen: set[tuple[int, str]] = set()
            released = False
            while thread.is_alive():
                for oid, mode, waiting in sampler.execute(
                    """
                    SELECT l.relation::bigint, l.mode, a.wait_event_type = 'Lock'
                    FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE l.pid = %s AND l.locktype = 'relation'
                    """,
                    [runner_pid],
                ).fetchall():
                    seen.add((oid, mode))
                    if waiting and not released and time.monotonic() - started > 0.2:
                        holder.execute("ROLLBACK")
                        released = True
                if not released and time.monotonic() - started > 1.0:
                    holder.execute("ROLLBACK")
                    released = True
            thread.join()
            if not released:
                holder.execute("ROLLBACK")
            if failure:
                raise failure[0]
            after = _flushed_stats(runner)
            files = _filenodes(runner, relations)
        return _summarise(relations, sorted(seen), before, after, files)
    finally:
        server.drop(name)


# Each pass catches, as an awaited lock, the first request that conflicts with the holder's mode:
# ROW EXCLUSIVE stops SHARE and stronger (and the CONCURRENTLY forms' wait for writers), SHARE UPDATE
# EXCLUSIVE stops SHARE UPDATE EXCLUSIVE and stronger, ACCESS EXCLUSIVE stops every request.
HOLDER_MODES = ("ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "ACCESS EXCLUSIVE")


def measure_sampled(server: Server, case: Case) -> dict:
    passes = [_sampled_pass(server, case, mode) for mode in HOLDER_MODES]
    locks: dict[str, str] = {}
    for result in passes:
        for table, mode in result["locks"].items():
            locks[table] = strongest([mode, locks.get(table, mode)])
    merged = {
        "locks": dict(sorted(locks.items())),
        "rewrites": sorted(set().union(*(p["rewrites"] for p in passes))),
        "scans": sorted(set().union(*(p["scans"] for p in passes))),
        "blocking": any(p["blocking"] for p in passes),
        "detail": passes[0]["detail"],
        "method": "sampled",
    }
    # Blocking must also hold for the merged view (a lock seen in one pass, a scan in the other).
    for table, mode in locks.items():
        if MODE_ORDER.index(mode) >= BLOCKING_FROM and (table in merged["scans"] or table in merged["rewrites"]):
            merged["blocking"] = True
    return merged


def measure_case(server: Server, case: Case) -> dict:
    if case.no_transaction:
        record = measure_sampled(server, case)
    else:
        record = measure_in_transaction(server, case)
    record["fingerprint"] = case.fingerprint
    return record


def _embedded_server() -> tuple[object, str]:
    from planner.embedded import EmbeddedPostgres

    root = Path(tempfile.mkdtemp(prefix="corpus-pg-"))
    server = EmbeddedPostgres(root)
    return server, server.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--dsn", help="superuser URL of the server to measure on")
    target.add_argument("--embedded", action="store_true", help="start a throwaway embedded PostgreSQL")
    parser.add_argument("--label", required=True, help="PostgreSQL major version label, e.g. 15 or 18")
    parser.add_argument("--out", type=Path, default=MEASURED_PATH)
    parser.add_argument("--only", help="comma-separated case ids (default: all)")
    args = parser.parse_args(argv)

    embedded = None
    dsn = args.dsn
    if args.embedded:
        embedded, dsn = _embedded_server()
    try:
        server = Server(dsn)
        major = server.major()
        if str(major) != args.label:
            print(f"server is PostgreSQL {major}, label is {args.label}", file=sys.stderr)
            return 2
        data = json.loads(args.out.read_text()) if args.out.exists() else {}
        data.setdefault("servers", {})[args.label] = server.version()
        cases = data.setdefault("cases", {})
        wanted = set(args.only.split(",")) if args.only else None
        started = time.monotonic()
        for case in CASES:
            if wanted and case.id not in wanted:
                continue
            entry = cases.setdefault(case.id, {})
            if not case.runs_on(major):
                entry.pop(args.label, None)
                continue
            entry[args.label] = measure_case(server, case)
            summary = {key: entry[args.label][key] for key in ("locks", "rewrites", "scans", "blocking")}
            print(f"{case.id:55} {json.dumps(summary)}")
        known = {case.id for case in CASES}
        data["cases"] = {cid: cases[cid] for cid in sorted(cases) if cid in known and cases[cid]}
        args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"measured on PostgreSQL {major} in {time.monotonic() - started:.1f}s → {args.out}")
        return 0
    finally:
        if embedded is not None:
            embedded.destroy()


if __name__ == "__main__":
    sys.exit(main())
