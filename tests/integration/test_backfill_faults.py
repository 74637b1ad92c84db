"""Fault tests with real processes and servers: after recovery every row is exactly +1 and the
progress shown equals the database."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from planner.embedded import EmbeddedPostgres, EmbeddedRedis
from planner.models import BackfillRun, Phase, TargetDatabase
from planner.services import runs
from tests.integration.conftest import ITEMS_ROWS, counters, revive_until, wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]
S = BackfillRun.Status
SPEC = {"table": "items", "set": "counter = counter + 1", "batch": {"initial": 200, "max": 400, "target_ms": 20}}


@pytest.fixture(autouse=True)
def fast_revival(settings):
    settings.PLANNER_BACKFILL_STALE_SECONDS = 3


def make_run(make_user, plan, slices=1):
    plan.phases.update(status=Phase.Status.SUCCEEDED)
    phase = Phase.objects.create(plan=plan, position=9, kind="backfill", name="bump", backfill_spec=SPEC)
    manager = make_user("release manager")
    run = runs.create_run(manager, phase, spec=SPEC, slice_count=slices)
    runs.start(manager, run)
    return run


def progressed(run, rows: int):
    return lambda: BackfillRun.objects.get(pk=run.pk).rows_done >= rows


@pytest.mark.parametrize("crash_at_batch", [1, 7])
def test_a_kill_between_commit_and_mirror_loses_nothing(workers, items_table, plan, make_user, crash_at_batch):
    crashing = workers.start_crashing(crash_at_batch)
    run = make_run(make_user, plan)
    crashing.wait(timeout=60)  # it killed itself after committing a batch the store never heard of
    run.refresh_from_db()
    assert run.rows_done < counters(items_table).get(1, 0), "the mirror lags the target, never leads"
    workers.start()
    run = revive_until(run, S.SUCCEEDED)
    assert counters(items_table) == {1: ITEMS_ROWS}
    assert run.rows_done == ITEMS_ROWS


def test_a_redis_restart_mid_run(workers, items_table, plan, make_user, settings):
    from pathlib import Path

    redis_server = EmbeddedRedis(Path(settings.DATA_ROOT))
    if redis_server.running_pid() is None or not settings.BROKER_URL.endswith(f":{redis_server.port()}/0"):
        pytest.skip("the broker is not the embedded Redis this test can restart")
    workers.start()
    run = make_run(make_user, plan, slices=2)
    wait_for(progressed(run, 2000), what="some progress")
    redis_server.stop()
    redis_server.start()  # same port, same append-only data
    run = revive_until(run, S.SUCCEEDED)
    assert counters(items_table) == {1: ITEMS_ROWS}
    assert run.rows_done == ITEMS_ROWS


@pytest.fixture
def restartable_target(tmp_path):
    """A target on its own embedded PostgreSQL, so the test can restart it under a running backfill."""
    server = EmbeddedPostgres(tmp_path / "target-server")
    server.start()
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, counter integer NOT NULL, note text);"
            f"INSERT INTO items SELECT g, g % 7, 'n' || g FROM generate_series(1, {ITEMS_ROWS}) g;"
        )
    yield server
    server.stop()


def test_a_target_postgresql_restart_mid_run(workers, restartable_target, plan, make_user):
    params = conninfo_to_dict(restartable_target.url())
    plan.target = TargetDatabase.objects.create(
        name=f"restartable-{uuid.uuid4().hex[:6]}",
        host=params["host"],
        port=int(params["port"]),
        dbname=params["dbname"],
        username=params["user"],
        sslmode="disable",
    )
    plan.save()
    workers.start()
    run = make_run(make_user, plan)
    wait_for(progressed(run, 2000), what="some progress")
    restartable_target.stop()  # fast shutdown: the worker's connection is cut mid-batch
    restartable_target.start()
    run = revive_until(run, S.SUCCEEDED)
    assert counters(restartable_target.url()) == {1: ITEMS_ROWS}
    assert run.rows_done == ITEMS_ROWS
