"""Every row changed exactly once with a non-idempotent SET, whatever stops the work in between."""

from __future__ import annotations

import threading

import psycopg
import pytest

from planner.pg.backfill import BackfillRunner, BackfillSpec, BatchLimits, LeaseLost
from tests.pg.conftest import counter_histogram, make_items

SMALL = BatchLimits(initial=100, min=10, max=100)


def _spec(**overrides) -> BackfillSpec:
    return BackfillSpec(**{"table": "items", "set": "counter = counter + 1", "batch": SMALL, **overrides})


def test_it_updates_every_row_once_in_batches(items):
    seen = []
    runner = BackfillRunner(items, _spec(), "once")
    info = runner.prepare()
    assert (info.resumed, info.slices, info.rows_estimate) == (False, 1, 3000)
    outcome = runner.work_slice(0, on_batch=seen.append)
    assert outcome.status == "done" and outcome.rows == 3000
    assert counter_histogram(items) == {1: 3000}
    # keyset order, contiguous ranges, totals read in the batch's own transaction
    assert [p.first_key for p in seen[:2]] == [["1"], ["101"]]
    assert seen[-1].slice_done and seen[-1].slice_rows_done == 3000 and seen[-1].eta_seconds == 0
    assert runner.finish().finished


def test_it_resumes_after_a_stop_without_repeating_a_row(items):
    runner = BackfillRunner(items, _spec(), "stop")
    runner.prepare()
    batches = []
    outcome = runner.work_slice(0, should_stop=lambda: len(batches) >= 7, on_batch=batches.append)
    assert (outcome.status, outcome.rows) == ("stopped", 700)
    assert counter_histogram(items) == {0: 2300, 1: 700}

    again = BackfillRunner(items, _spec(), "stop")
    assert again.prepare().resumed
    assert again.work_slice(0).status == "done"
    assert counter_histogram(items) == {1: 3000}
    assert again.work_slice(0).status == "done"  # nothing left: a repeated task is harmless
    assert counter_histogram(items) == {1: 3000}


def test_it_stops_at_the_deadline_and_goes_on_later(items):
    runner = BackfillRunner(items, _spec(), "deadline")
    runner.prepare()
    assert runner.work_slice(0, deadline_seconds=0).status == "time_up"
    assert counter_histogram(items) == {0: 3000}
    assert runner.work_slice(0).status == "done"
    assert counter_histogram(items) == {1: 3000}


def test_a_stale_worker_is_fenced_before_it_writes(items):
    runner = BackfillRunner(items, _spec(), "fence")
    runner.prepare()
    stale_batches = []

    def take_over(progress):
        stale_batches.append(progress)
        if len(stale_batches) == 3:
            # Another worker claims the slice (e.g. the stale one's lease looked expired).
            taker = threading.Thread(target=lambda: runner.work_slice(0, owner="new", force=True))
            taker.start()
            taker.join()

    with pytest.raises(LeaseLost):
        runner.work_slice(0, owner="old", on_batch=take_over)
    assert len(stale_batches) == 3  # the old worker's 4th batch never happened
    assert counter_histogram(items) == {1: 3000}


def test_a_live_lease_makes_other_workers_busy(items):
    runner = BackfillRunner(items, _spec(), "lease")
    runner.prepare()
    outcomes = []

    def second_worker(progress):
        if not outcomes:
            outcomes.append(runner.work_slice(0, owner="second"))

    runner.work_slice(0, owner="first", on_batch=second_worker)
    assert outcomes[0].status == "busy"
    assert counter_histogram(items) == {1: 3000}


def test_it_walks_composite_keys(target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE lines (order_id int NOT NULL, line text NOT NULL, counter int NOT NULL DEFAULT 0,"
            " PRIMARY KEY (order_id, line))"
        )
        connection.execute(
            "INSERT INTO lines (order_id, line) SELECT o, l FROM generate_series(1, 300) o,"
            " unnest(ARRAY['a', 'b b', 'C', 'é', '10']) l"
        )
    runner = BackfillRunner(target_dsn, _spec(table="lines", batch=BatchLimits(initial=7, min=7, max=7)), "lines")
    runner.prepare(slices=3)
    runner.run_foreground()
    assert counter_histogram(target_dsn, "lines") == {1: 1500}


def test_it_changes_only_rows_matching_where(items):
    runner = BackfillRunner(items, _spec(where="kind = 'gift' AND note IS NOT NULL"), "where")
    info = runner.prepare()
    assert 0 < info.rows_estimate < 3000  # refined by the WHERE
    outcome = runner.work_slice(0)
    assert outcome.rows == 858  # 1000 multiples of 3, minus 142 of 21
    assert counter_histogram(items) == {0: 3000 - 858, 1: 858}


@pytest.mark.parametrize("key_type", ["bigint", "text", "uuid"])
def test_parallel_slices_cover_every_row_once(target_dsn, key_type):
    with psycopg.connect(target_dsn, autocommit=True) as connection:
        key = {"bigint": "g", "text": "'k' || g", "uuid": "md5(g::text)::uuid"}[key_type]
        connection.execute(f"CREATE TABLE s (id {key_type} PRIMARY KEY, counter int NOT NULL DEFAULT 0)")
        connection.execute(f"INSERT INTO s (id) SELECT {key} FROM generate_series(1, 4000) g")
        if key_type == "text":
            connection.execute("ANALYZE s")  # histogram bounds; uuid falls back to percentiles
    runner = BackfillRunner(target_dsn, _spec(table="s", batch=BatchLimits(initial=150)), "parallel")
    info = runner.prepare(slices=4)
    assert info.slices == 4
    outcomes = runner.run_foreground()
    # A slice may be held on the way (autovacuum on the fresh table is a health signal); its last
    # stint must end done.
    last = {outcome.slice_no: outcome.status for outcome in outcomes}
    assert last == {0: "done", 1: "done", 2: "done", 3: "done"}
    assert counter_histogram(target_dsn, "s") == {1: 4000}
    assert all(slice_.rows_done > 500 for slice_ in runner.status().slices)  # roughly balanced


def test_rows_inserted_ahead_of_the_checkpoint_are_processed_and_behind_it_are_not(items):
    # During expand the application writes new rows correctly itself; the backfill covers the rest.
    runner = BackfillRunner(items, _spec(), "inserts")
    runner.prepare()

    def insert_around(progress):
        if progress.last_key == ["100"]:
            with psycopg.connect(items, autocommit=True) as connection:
                connection.execute("INSERT INTO items (id, kind) VALUES (3001, 'ahead'), (0, 'behind')")

    runner.work_slice(0, on_batch=insert_around)
    with psycopg.connect(items) as connection:
        rows = dict(connection.execute("SELECT kind, counter FROM items WHERE id IN (0, 3001)").fetchall())
    assert rows == {"ahead": 1, "behind": 0}


def test_batch_size_adapts_toward_the_target(items):
    make_items(items, 20_000, name="big")
    spec = _spec(table="big", batch=BatchLimits(initial=50, min=10, max=20_000, target_ms=1000))
    runner = BackfillRunner(items, spec, "adapt")
    runner.prepare()
    sizes = []
    runner.work_slice(0, on_batch=lambda p: sizes.append(p.batch_size))
    assert sizes[0] == 50 and max(sizes) >= 400  # fast batches grow toward the 1 s target
