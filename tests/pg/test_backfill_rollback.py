"""Rollback restores every touched row exactly (before-images) or applies a given reverse SET."""

from __future__ import annotations

import psycopg
import pytest

from planner.pg.backfill import BackfillRunner, BackfillSpec, BatchLimits, LeaseLost, SpecError
from tests.pg.conftest import counter_histogram

SMALL = BatchLimits(initial=100, min=10, max=100)


def _snapshot(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as connection:
        return connection.execute("SELECT * FROM items ORDER BY id").fetchall()


def test_before_images_restore_every_touched_row_exactly(items):
    before = _snapshot(items)
    spec = BackfillSpec(
        table="items",
        set="counter = counter + 1, note = upper(note) || '!', amount = amount * 3, seen_at = NULL",
        where="kind = 'gift'",
        capture_before_images=True,
        batch=SMALL,
    )
    runner = BackfillRunner(items, spec, "images")
    runner.prepare(slices=2)
    stopped = []
    outcome = runner.work_slice(0, owner="old", should_stop=lambda: len(stopped) >= 4, on_batch=stopped.append)
    assert outcome.status == "stopped"
    runner.work_slice(1)
    assert _snapshot(items) != before

    runner.start_rollback()
    with pytest.raises(LeaseLost):  # a forward worker coming back finds itself fenced
        _forward_batch(items, spec)
    steps = []
    halfway = runner.work_slice(0, should_stop=lambda: len(steps) >= 1, on_batch=steps.append)
    assert halfway.status == "stopped" and steps[0].direction == "rollback"
    runner.run_foreground()
    assert _snapshot(items) == before
    status = runner.status()
    assert status.direction == "rollback" and status.done and status.rolled_back


def _forward_batch(dsn, spec):
    """A forward worker holding the generation it had before the rollback started."""
    from planner.pg.backfill import bookkeeping
    from planner.pg.backfill.runner import _Stint

    runner = BackfillRunner(dsn, spec, "images")
    with runner.connect() as connection:
        target = runner.target(connection)
        run = bookkeeping.get_run(connection, "images")
        generation = bookkeeping.list_slices(connection, run.id, "forward")[0].generation - 1
        run.direction = "forward"
        stint = _Stint(runner, target, run, "forward", 0, generation, 0, 60)
        stint._batch(connection, 10)


def test_reverse_set_rolls_back_only_what_was_done(items):
    spec = BackfillSpec(table="items", set="counter = counter + 1", reverse_set="counter = counter - 1", batch=SMALL)
    runner = BackfillRunner(items, spec, "reverse")
    runner.prepare(slices=3)
    for slice_no in range(3):
        batches = []
        runner.work_slice(slice_no, should_stop=lambda b=batches: len(b) >= 3, on_batch=batches.append)
    assert counter_histogram(items) == {0: 2100, 1: 900}
    runner.start_rollback()
    runner.run_foreground()
    assert counter_histogram(items) == {0: 3000}
    assert runner.status().rolled_back


def test_rollback_needs_before_images_or_a_reverse_set(items):
    runner = BackfillRunner(items, BackfillSpec(table="items", set="counter = 1", batch=SMALL), "no-way-back")
    runner.prepare()
    runner.work_slice(0)
    with pytest.raises(SpecError) as caught:
        runner.start_rollback()
    assert caught.value.field == "rollback" and "reverse SET" in str(caught.value)
    assert counter_histogram(items) == {1: 3000}


def test_rolling_back_twice_is_harmless(items):
    spec = BackfillSpec(table="items", set="counter = counter + 5", capture_before_images=True, batch=SMALL)
    runner = BackfillRunner(items, spec, "twice")
    runner.prepare()
    runner.work_slice(0)
    runner.start_rollback()
    runner.start_rollback()
    runner.run_foreground()
    runner.run_foreground()
    assert counter_histogram(items) == {0: 3000}
