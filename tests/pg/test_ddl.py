"""The safe DDL executor on a real PostgreSQL: lock queues, CONCURRENTLY, invalid indexes, give-up."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from planner.pg.connect import connect
from planner.pg.ddl import (
    DdlExecutor,
    DdlPolicy,
    LockRetriesExhausted,
    StatementFailed,
    UnsupportedStatement,
    execute_sql,
)
from planner.pg.ddl_statements import SqlSyntaxError, autocommit_reason, split_statements

LOCK_TIMEOUT_MS = 500


@pytest.fixture
def accounts(target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE accounts (id int PRIMARY KEY, email text)")
        connection.execute("INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 1000) g")
    return target_dsn


def columns(dsn: str, table: str) -> list[str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            [table],
        ).fetchall()
    return [name for (name,) in rows]


def hold_access_share(dsn: str, table: str, seconds: float) -> threading.Thread:
    """Another session reads `table` in an open transaction (ACCESS SHARE) for `seconds`, then commits."""
    ready = threading.Event()

    def blocker():
        with psycopg.connect(dsn) as connection:
            connection.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - test table name
            ready.set()
            time.sleep(seconds)
            connection.commit()

    thread = threading.Thread(target=blocker, daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread


class Reader:
    """The application: SELECTs on the table in a loop from its own session, each one timed."""

    def __init__(self, dsn: str, table: str):
        self.dsn, self.table = dsn, table
        self.latencies_ms: list[float] = []
        self.errors: list[Exception] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _loop(self):
        with psycopg.connect(self.dsn, autocommit=True, options="-c statement_timeout=10000") as connection:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    connection.execute(f"SELECT count(*) FROM {self.table}").fetchone()  # noqa: S608
                except psycopg.Error as error:
                    self.errors.append(error)
                self.latencies_ms.append((time.monotonic() - started) * 1000)
                time.sleep(0.01)


def test_it_never_blocks_readers_longer_than_the_lock_timeout(accounts):
    events = []
    blocker = hold_access_share(accounts, "accounts", seconds=2.5)
    with Reader(accounts, "accounts") as reader:
        time.sleep(0.2)
        results = execute_sql(
            accounts,
            "ALTER TABLE accounts ADD COLUMN verified_at timestamptz",
            DdlPolicy(lock_timeout_ms=LOCK_TIMEOUT_MS),
            on_event=events.append,
        )
        time.sleep(0.2)
    blocker.join(10)

    assert results[0].ok
    assert results[0].attempts > 1, "the ALTER should have waited behind the blocker"
    assert results[0].waited_ms >= LOCK_TIMEOUT_MS
    assert "verified_at" in columns(accounts, "accounts")
    assert not reader.errors
    assert len(reader.latencies_ms) > 50
    # Readers queued behind the waiting ALTER for a while (the hazard is real) …
    assert max(reader.latencies_ms) > 100
    # … but never longer than the lock timeout, because the ALTER gave up and let them through.
    assert max(reader.latencies_ms) < LOCK_TIMEOUT_MS + 100
    assert [e.kind for e in events].count("retrying") == results[0].attempts - 1


def test_it_retries_a_whole_step_as_one_transaction(accounts):
    blocker = hold_access_share(accounts, "accounts", seconds=1.2)
    results = execute_sql(
        accounts,
        "CREATE TABLE audit_trail (id int); ALTER TABLE accounts ADD COLUMN note text;",
        DdlPolicy(lock_timeout_ms=200, backoff_initial_ms=100),
    )
    blocker.join(10)
    # The CREATE TABLE was rolled back with each failed attempt, so replaying it did not collide.
    assert [r.ok for r in results] == [True, True]
    assert results[0].attempts == results[1].attempts > 1
    assert "note" in columns(accounts, "accounts")


def test_it_runs_concurrently_statements_outside_a_transaction(accounts):
    with connect(accounts) as connection:
        executor = DdlExecutor(connection)
        steps = executor.plan(
            "ALTER TABLE accounts ADD COLUMN kind text;"
            "CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);"
            "CREATE INDEX CONCURRENTLY accounts_kind ON accounts (kind);"
            "COMMENT ON TABLE accounts IS 'x'; ANALYZE accounts;"
        )
        assert [(len(s.statements), s.transactional) for s in steps] == [(1, True), (1, False), (1, False), (2, True)]
        results = executor.run(statement.text for step in steps for statement in step.statements)
    assert all(r.ok for r in results)
    assert [r.transactional for r in results] == [True, False, False, True, True]
    with psycopg.connect(accounts) as connection:
        valid = connection.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'accounts'::regclass AND c.relname <> 'accounts_pkey' ORDER BY 1"
        ).fetchall()
    assert valid == [("accounts_email", True), ("accounts_kind", True)]


def test_each_statement_can_get_its_own_transaction(accounts):
    with connect(accounts) as connection:
        steps = DdlExecutor(connection, DdlPolicy(transaction_per_statement=True)).plan(
            "CREATE TABLE a (id int); CREATE TABLE b (id int);"
        )
    assert [len(s.statements) for s in steps] == [1, 1]


def invalid_indexes(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1"
        ).fetchall()
    return [name for (name,) in rows]


def test_it_drops_the_invalid_index_of_a_failed_concurrent_build_before_retrying(accounts):
    statement = "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email)"
    with psycopg.connect(accounts, autocommit=True) as connection:
        connection.execute("UPDATE accounts SET email = 'same' WHERE id IN (1, 2)")

    with pytest.raises(StatementFailed, match=r"23505.*could not create unique index"):
        execute_sql(accounts, statement)
    assert invalid_indexes(accounts) == ["accounts_email_key"]

    with psycopg.connect(accounts, autocommit=True) as connection:
        connection.execute("UPDATE accounts SET email = 'u2' WHERE id = 2")
    events = []
    results = execute_sql(accounts, statement, on_event=events.append)

    assert results[0].ok
    dropped = [e for e in events if e.kind == "invalid_index_dropped"]
    assert [(e.detail["schema"], e.detail["index"]) for e in dropped] == [("public", "accounts_email_key")]
    assert invalid_indexes(accounts) == []


def test_it_leaves_a_valid_index_of_the_same_name_alone(accounts):
    execute_sql(accounts, "CREATE INDEX accounts_email_idx ON accounts (email)")
    events = []
    execute_sql(
        accounts,
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_idx ON accounts (email)",
        on_event=events.append,
    )
    assert "invalid_index_dropped" not in [e.kind for e in events]


def test_it_gives_up_with_a_clear_error_after_max_attempts(accounts):
    blocker = hold_access_share(accounts, "accounts", seconds=5)
    sleeps = []
    policy = DdlPolicy(lock_timeout_ms=100, max_attempts=3, backoff_initial_ms=50)
    with connect(accounts) as connection:
        executor = DdlExecutor(connection, policy, sleep=lambda s: (sleeps.append(s), time.sleep(s)))
        with pytest.raises(LockRetriesExhausted) as caught:
            executor.run("ALTER TABLE accounts ADD COLUMN never int")
    blocker.join(10)

    message = str(caught.value)
    assert "gave up after 3 attempts" in message
    assert "100 ms" in message and "ALTER TABLE accounts ADD COLUMN never int" in message
    assert caught.value.failed.attempts == 3 and caught.value.failed.sqlstate == "55P03"
    assert len(sleeps) == 2 and 0.025 <= sleeps[0] <= 0.05 and 0.05 <= sleeps[1] <= 0.1
    assert "never" not in columns(accounts, "accounts")


def test_it_gives_up_at_the_deadline(accounts):
    blocker = hold_access_share(accounts, "accounts", seconds=3)
    started = time.monotonic()
    with pytest.raises(LockRetriesExhausted):
        execute_sql(
            accounts,
            "ALTER TABLE accounts ADD COLUMN never int",
            DdlPolicy(lock_timeout_ms=100, deadline_s=0.8, backoff_initial_ms=100),
        )
    assert time.monotonic() - started < 1.5
    blocker.join(10)


def test_it_does_not_retry_errors_retrying_cannot_fix(accounts):
    with pytest.raises(StatementFailed, match=r'statement 2 failed \(42P01\).*"nope" does not exist') as caught:
        execute_sql(accounts, "CREATE TABLE ok (id int); ALTER TABLE nope ADD COLUMN x int")
    assert caught.value.failed.attempts == 1
    assert [r.index for r in caught.value.results] == [0, 1]
    with psycopg.connect(accounts) as connection:  # the step was one transaction: nothing stayed
        assert connection.execute("SELECT to_regclass('ok')").fetchone() == (None,)


def test_it_refuses_transaction_control_in_user_sql(accounts):
    with pytest.raises(UnsupportedStatement, match="transaction control"):
        execute_sql(accounts, "BEGIN; CREATE TABLE x (id int); COMMIT;")


def test_every_statement_runs_with_the_timeouts(accounts):
    seen = []
    with connect(accounts) as connection:
        executor = DdlExecutor(connection, DdlPolicy(lock_timeout_ms=321, statement_timeout_ms=4321))
        executor.run("CREATE TABLE probe (id int)")
        seen.append(connection.execute("SHOW lock_timeout").fetchone()[0])
        seen.append(connection.execute("SHOW statement_timeout").fetchone()[0])
    assert seen == ["321ms", "4321ms"]


@pytest.mark.parametrize(
    ("statement", "version", "reason"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", 150000, "CREATE INDEX CONCURRENTLY"),
        ("CREATE INDEX i ON t (a)", 150000, None),
        ("DROP INDEX CONCURRENTLY IF EXISTS i", 150000, "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i", 150000, "REINDEX CONCURRENTLY"),
        ("REINDEX TABLE t", 150000, None),
        ("VACUUM (ANALYZE) t", 150000, "VACUUM"),
        ("ANALYZE t", 150000, None),
        ("ALTER TYPE mood ADD VALUE 'meh'", 110000, "ALTER TYPE … ADD VALUE (before PostgreSQL 12)"),
        ("ALTER TYPE mood ADD VALUE 'meh'", 120000, None),
        ("ALTER TYPE mood ADD VALUE 'meh'", None, "ALTER TYPE … ADD VALUE (before PostgreSQL 12)"),
        ("ALTER TYPE mood RENAME VALUE 'a' TO 'b'", None, None),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", 150000, "ALTER TABLE … DETACH PARTITION CONCURRENTLY"),
        ("ALTER TABLE p DETACH PARTITION c", 150000, None),
        ("CREATE DATABASE d", 150000, "CREATE DATABASE"),
        ("ALTER TABLE t ADD COLUMN c int", 150000, None),
    ],
)
def test_it_knows_which_statements_cannot_run_in_a_transaction(statement, version, reason):
    (parsed,) = split_statements(statement)
    assert autocommit_reason(parsed.node, version) == reason


def test_a_syntax_error_says_where():
    with pytest.raises(SqlSyntaxError, match=r'line 2, column 3: syntax error at or near "ALTR"'):
        split_statements("SELECT 1;\n  ALTR TABLE t;")
