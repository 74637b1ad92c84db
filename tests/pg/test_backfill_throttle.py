"""Health signals hold the backfill back with a readable reason, recorded in the bookkeeping."""

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest

from planner.pg.backfill import BackfillRunner, BackfillSpec, BatchLimits, ThrottleLimits
from tests.pg.conftest import counter_histogram


def _runner(dsn, name, vacuum_between=False, **throttle) -> BackfillRunner:
    spec = BackfillSpec(
        table="items",
        set="counter = counter + 1",
        batch=BatchLimits(initial=100),
        throttle=ThrottleLimits(check_every_s=0, hold_s=1, **throttle),
        vacuum_between=vacuum_between,
    )
    runner = BackfillRunner(dsn, spec, name)
    runner.prepare()
    return runner


def _make_dead_tuples(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("UPDATE items SET note = note")
        connection.execute("SELECT pg_stat_force_next_flush()")
        connection.execute("SELECT 1")  # the flush happens at the end of a transaction


def test_dead_tuples_piling_up_hold_the_backfill(items):
    _make_dead_tuples(items)
    runner = _runner(items, "dead", dead_tuple_ratio=0.2, dead_tuple_min=100)
    outcome = runner.work_slice(0)
    assert outcome.status == "held" and outcome.hold.signal == "dead_tuples"
    assert re.fullmatch(r"dead tuples \d+% of public.items > 20% \(3000 dead\)", outcome.hold.reason)
    assert 0.5 < outcome.hold.seconds_left <= 1
    assert "on hold until" in str(outcome.hold)
    assert runner.status().holds[0][2:4] == ("dead_tuples", outcome.hold.reason)
    assert counter_histogram(items) == {0: 3000}


def test_dead_tuples_are_vacuumed_away_when_allowed(items):
    _make_dead_tuples(items)
    runner = _runner(items, "vacuum", vacuum_between=True, dead_tuple_ratio=0.2, dead_tuple_min=100)
    outcome = runner.work_slice(0)
    assert outcome.status == "done" and outcome.vacuums >= 1
    assert counter_histogram(items) == {1: 3000}


def test_a_long_running_transaction_holds_the_backfill(items):
    with psycopg.connect(items) as other:
        other.execute("SELECT 1")  # opens the transaction
        time.sleep(1.1)
        outcome = _runner(items, "long", long_transaction_s=1).work_slice(0)
    assert outcome.status == "held" and outcome.hold.signal == "long_transaction"
    assert "a transaction has been open for 1 s > 1 s" in outcome.hold.reason
    assert counter_histogram(items) == {0: 3000}


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELECT count(*) < 10 FROM items", "health query returned False, not true"),
        ("SELECT (SELECT count(*) FROM items) / 0 = 1", "health query failed: division by zero"),
        ("SELECT NULL::boolean", "health query returned None, not true"),
    ],
)
def test_a_custom_health_query_must_return_true(items, query, reason):
    outcome = _runner(items, "custom", health_query=query).work_slice(0)
    assert outcome.status == "held" and outcome.hold.signal == "health_query"
    assert outcome.hold.reason == reason


def test_a_true_health_query_lets_it_run(items):
    outcome = _runner(items, "healthy", health_query="SELECT count(*) >= 10 FROM items").work_slice(0)
    assert outcome.status == "done"


def test_sessions_waiting_on_our_batch_hold_the_next_one(items):
    spec = BackfillSpec(
        table="items",
        # 5 ms per row among the first 100 keeps the first batch's row locks for ~0.5 s
        set="counter = counter + 1 + CASE WHEN id <= 100 THEN length(pg_sleep(0.005)::text) ELSE 0 END",
        batch=BatchLimits(initial=100, statement_timeout_ms=10_000),
        throttle=ThrottleLimits(check_every_s=0, hold_s=1, lock_waiters=2),
    )
    runner = BackfillRunner(items, spec, "waiters")
    runner.prepare()

    def app_write(key):
        time.sleep(0.15)
        with psycopg.connect(items, autocommit=True) as connection:
            connection.execute("UPDATE items SET note = 'app' WHERE id = %s", [key])

    writers = [threading.Thread(target=app_write, args=(key,)) for key in (1, 2, 3)]
    for writer in writers:
        writer.start()
    outcome = runner.work_slice(0)
    for writer in writers:
        writer.join()
    assert outcome.status == "held" and outcome.batches == 1
    assert outcome.hold.reason == "3 sessions waited for our last batch's row locks > 2"
    # The app's writes waited, then applied on top of ours.
    with psycopg.connect(items) as connection:
        assert connection.execute("SELECT count(*) FROM items WHERE note = 'app' AND counter = 1").fetchone()[0] == 3


def test_foreground_runs_sleep_through_holds_and_finish(items):
    flag = {"healthy": False}
    with psycopg.connect(items, autocommit=True) as connection:
        connection.execute("CREATE TABLE health (ok boolean)")
        connection.execute("INSERT INTO health VALUES (false)")
    runner = _runner(items, "through", health_query="SELECT ok FROM health")
    holds = []

    def heal(slice_no, hold):
        holds.append(hold)
        with psycopg.connect(items, autocommit=True) as connection:
            connection.execute("UPDATE health SET ok = true")
        flag["healthy"] = True

    outcomes = runner.run_foreground(on_hold=heal)
    assert [o.status for o in outcomes] == ["held", "done"] and flag["healthy"]
    assert counter_histogram(items) == {1: 3000}


def test_the_health_snapshot_reads_dead_tuples_and_lock_waiters(items):
    import threading
    import time

    import psycopg

    from planner.pg.backfill.runner import BackfillRunner

    runner = BackfillRunner(items, {"table": "items", "set": "counter = counter + 1"}, "health")
    assert runner.health()["lock_waiters"] == 0  # also resolves the table before it gets locked below
    with psycopg.connect(items, autocommit=True) as connection:
        connection.execute("UPDATE items SET note = 'x' WHERE id <= 1500")  # half the rows leave a dead version
    holder = psycopg.connect(items)
    holder.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
    waiter = threading.Thread(
        target=lambda: psycopg.connect(items, autocommit=True).execute("SELECT 1 FROM items LIMIT 1")
    )
    waiter.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            health = runner.health()
            if health["lock_waiters"] >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        holder.rollback()
        holder.close()
        waiter.join(timeout=10)
    assert health["lock_waiters"] >= 1
    assert health["replicas"] == 0
    assert health["dead_tuples"] >= 1500 and 0.1 < health["dead_tuple_ratio"] < 0.7
