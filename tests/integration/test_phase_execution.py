"""Running phases' SQL on a real target with the safe executor: gates, failures, rollback, lock waits."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection

from planner.models import AuditEvent, InvalidTransition, Phase, Plan
from planner.services import phases

pytestmark = pytest.mark.django_db


@pytest.fixture
def users_table(target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text)")
        conn.execute("INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 100) g")
    return target_dsn


@pytest.fixture
def expand(plan):
    phase = plan.phases.get()
    phase.down_sql = "ALTER TABLE users DROP COLUMN v;"
    phase.save()
    return phase


def columns(dsn):
    with psycopg.connect(dsn) as conn:
        return {
            row[0]
            for row in conn.execute(
                "SELECT attname FROM pg_attribute"
                " WHERE attrelid = 'users'::regclass AND attnum > 0 AND NOT attisdropped"
            )
        }


def test_a_phase_runs_its_sql_and_the_plan_follows(make_user, users_table, expand):
    manager = make_user("release manager")
    phases.request_run(manager, expand)
    expand.refresh_from_db()
    assert expand.status == "running" and expand.plan.status == "running"
    phases.execute(expand.pk, "up")
    expand.refresh_from_db()
    assert expand.status == "succeeded", expand.last_error
    assert "v" in columns(users_table)
    assert expand.execution_log[0]["attempts"] == 1
    expand.plan.refresh_from_db()
    assert expand.plan.status == Plan.Status.SUCCEEDED  # it was the only phase
    assert AuditEvent.objects.filter(action="phase.succeeded").count() == 1


def test_a_later_phase_waits_for_the_earlier_ones(make_user, users_table, expand):
    contract = Phase.objects.create(plan=expand.plan, position=2, kind="contract", name="c", up_sql="SELECT 1;")
    with pytest.raises(InvalidTransition, match="phase 1 .* has not succeeded"):
        phases.request_run(make_user("release manager"), contract)
    contract.refresh_from_db()
    assert contract.status == "pending"


def test_a_failing_statement_fails_the_phase_and_the_plan(make_user, users_table, expand):
    expand.up_sql = "ALTER TABLE users ADD COLUMN ok boolean; ALTER TABLE missing ADD COLUMN v int;"
    expand.save()
    phases.request_run(make_user("release manager"), expand)
    phases.execute(expand.pk, "up")
    expand.refresh_from_db()
    assert expand.status == "failed"
    assert 'relation "missing" does not exist' in expand.last_error
    assert "ok" not in columns(users_table), "the step's transaction was rolled back whole"
    expand.plan.refresh_from_db()
    assert expand.plan.status == "failed"


def test_roll_back_runs_the_down_sql(make_user, users_table, expand):
    phases.request_run(make_user("release manager"), expand)
    phases.execute(expand.pk, "up")
    phases.request_rollback(make_user("on-call engineer"), expand)
    phases.execute(expand.pk, "down")
    expand.refresh_from_db()
    assert expand.status == "rolled_back"
    assert "v" not in columns(users_table)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the worker thread has its own connection
def test_a_phase_behind_a_long_transaction_retries_and_succeeds_after_it(make_user, users_table, expand):
    blocker = psycopg.connect(users_table)
    blocker.execute("SELECT count(*) FROM users")  # holds ACCESS SHARE until it commits
    phases.request_run(make_user("release manager"), expand)

    def work():
        try:
            phases.execute(expand.pk, "up")
        finally:
            connection.close()  # this thread's own store connection; left open it blocks DROP DATABASE

    worker = threading.Thread(target=work)
    worker.start()
    with psycopg.connect(users_table, autocommit=True) as observer:
        deadline = time.monotonic() + 20
        while not observer.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'users'::regclass"
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "the phase never queued for its lock"
            time.sleep(0.02)
    time.sleep(0.8)  # longer than the 500 ms lock_timeout: at least one attempt gave up and retried
    blocker.commit()
    blocker.close()
    worker.join(timeout=60)
    expand.refresh_from_db()
    assert expand.status == "succeeded", expand.last_error
    assert expand.execution_log[0]["attempts"] > 1
    assert expand.execution_log[0]["waited_ms"] >= 500
