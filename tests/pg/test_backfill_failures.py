"""Timeouts split batches; lock waits, lost connections retry; repeated failures error; all resumable."""

from __future__ import annotations

import threading

import psycopg

from planner.pg.backfill import BackfillRunner, BackfillSpec, BatchLimits, RetryPolicy
from tests.pg.conftest import counter_histogram

QUICK_RETRY = RetryPolicy(max_consecutive_failures=50, backoff_base_s=0.02, backoff_max_s=0.1)


def _hold_row_lock(dsn: str, key: int, seconds: float) -> threading.Event:
    """Lock one row FOR UPDATE from another session for `seconds`; returns an event set once locked."""
    locked = threading.Event()

    def hold():
        with psycopg.connect(dsn) as connection:
            connection.execute("SELECT 1 FROM items WHERE id = %s FOR UPDATE", [key])
            locked.set()
            threading.Event().wait(seconds)

    threading.Thread(target=hold, daemon=True).start()
    locked.wait(10)
    return locked


def test_a_batch_hitting_statement_timeout_is_split_and_retried_smaller(items):
    # 2 ms per row among the first 300: a 200-row batch needs 400 ms, far over the 150 ms allowed.
    spec = BackfillSpec(
        table="items",
        set="counter = counter + 1 + CASE WHEN id <= 300 THEN length(pg_sleep(0.002)::text) ELSE 0 END",
        batch=BatchLimits(initial=200, min=5, max=200, statement_timeout_ms=150, target_ms=50),
        retry=QUICK_RETRY,
    )
    runner = BackfillRunner(items, spec, "split")
    runner.prepare()
    outcome = runner.work_slice(0)
    assert outcome.status == "done" and outcome.splits >= 1
    assert counter_histogram(items) == {1: 3000}


def test_a_lock_timeout_is_retried_until_the_lock_is_gone(items):
    _hold_row_lock(items, 150, 0.8)
    spec = BackfillSpec(
        table="items",
        set="counter = counter + 1",
        batch=BatchLimits(initial=100, lock_timeout_ms=50),
        retry=QUICK_RETRY,
    )
    runner = BackfillRunner(items, spec, "locked")
    runner.prepare()
    outcome = runner.work_slice(0)
    assert outcome.status == "done" and outcome.retries >= 1
    assert counter_histogram(items) == {1: 3000}


def test_repeated_failures_error_the_slice_and_it_resumes_later(items):
    release = threading.Event()
    locked = threading.Event()

    def hold():
        with psycopg.connect(items) as connection:
            connection.execute("SELECT 1 FROM items WHERE id = 1500 FOR UPDATE")
            locked.set()
            release.wait(20)

    threading.Thread(target=hold, daemon=True).start()
    locked.wait(10)
    spec = BackfillSpec(
        table="items",
        set="counter = counter + 1",
        batch=BatchLimits(initial=100, lock_timeout_ms=30, adaptive=False),
        retry=RetryPolicy(max_consecutive_failures=3, backoff_base_s=0.01, backoff_max_s=0.02),
    )
    runner = BackfillRunner(items, spec, "errored")
    runner.prepare()
    outcome = runner.work_slice(0)
    assert outcome.status == "errored" and outcome.retries == 3
    assert "3 consecutive failures" in outcome.error and "lock timeout" in outcome.error
    slice_ = runner.status().slices[0]
    assert slice_.consecutive_failures == 3 and "lock timeout" in slice_.last_error
    assert counter_histogram(items) == {0: 1600, 1: 1400}

    release.set()
    assert runner.work_slice(0).status == "done"
    assert counter_histogram(items) == {1: 3000}
    assert runner.status().slices[0].last_error is None


def test_a_permanent_error_errors_at_once_without_retrying(items):
    spec = BackfillSpec(
        table="items",
        set="counter = counter + 1 + 0 * (1 / (id - 1550))",
        batch=BatchLimits(initial=100, adaptive=False),
    )
    runner = BackfillRunner(items, spec, "div0")
    runner.prepare()
    outcome = runner.work_slice(0)
    assert outcome.status == "errored" and outcome.retries == 0
    assert "division by zero" in outcome.error
    assert counter_histogram(items) == {0: 1500, 1: 1500}  # the failed batch (1501-1600) left nothing


def test_a_lost_connection_is_retried_without_losing_or_repeating_rows(items):
    spec = BackfillSpec(
        table="items", set="counter = counter + 1", batch=BatchLimits(initial=100, adaptive=False), retry=QUICK_RETRY
    )
    runner = BackfillRunner(items, spec, "terminated")
    runner.prepare()
    killed = []

    def terminate_worker(progress):
        if progress.last_key in (["500"], ["1500"]):
            with psycopg.connect(items, autocommit=True) as connection:
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                    ["planner-backfill:terminated"],
                )
            killed.append(progress.last_key)

    outcome = runner.work_slice(0, on_batch=terminate_worker)
    assert outcome.status == "done" and outcome.retries == 2 and len(killed) == 2
    assert counter_histogram(items) == {1: 3000}
