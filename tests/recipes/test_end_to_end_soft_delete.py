"""soft_delete_to_events on a real target: applied while the old application (soft deletes by UPDATE),
then the new one (writes events, reads the view) runs, validated, rolled back, compared with before.

The workloads soft-delete and restore only rows they inserted (id > 2000), so the rows present
before the plan change only where a test says so and are put back before the comparison.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.recipes.conftest import OLD_APP, Workload, insert_order, read_orders, update_user
from tests.recipes.test_end_to_end_changes import by_name, delete_new_rows, execute

pytestmark = pytest.mark.django_db

PARAMS = {"table": "users", "column": "deleted_at"}
ORIGINALLY_DELETED = "id % 10 = 0"  # 200 of the 2,000 rows, each with its own deleted_at


def soft_deletes(dsn: str) -> None:
    execute(dsn, "ALTER TABLE users ADD COLUMN deleted_at timestamptz")
    execute(
        dsn,
        f"UPDATE users SET deleted_at = timestamptz '2024-03-01 12:00:00.123456+00' + id * interval '1 minute' "
        f"WHERE {ORIGINALLY_DELETED}",
    )
    execute(dsn, "ANALYZE users")


# -- the old application: soft deletes in the column -------------------------------------------------


def soft_delete_old(connection, rng):
    connection.execute(
        "UPDATE users SET deleted_at = now() WHERE id = "
        "(SELECT id FROM users WHERE id > 2000 AND deleted_at IS NULL ORDER BY random() LIMIT 1)"
    )


def restore_old(connection, rng):
    connection.execute(
        "UPDATE users SET deleted_at = NULL WHERE id = "
        "(SELECT id FROM users WHERE id > 2000 AND deleted_at IS NOT NULL ORDER BY random() LIMIT 1)"
    )


def save_every_column_old(connection, rng):
    """An ORM's save(): every column written back unchanged, the soft-delete column included."""
    connection.execute("UPDATE users SET name = name, deleted_at = deleted_at WHERE id = %s", [rng.randint(1, 2000)])


def read_active_old(connection, rng):
    connection.execute(
        "SELECT id, email, name FROM users WHERE deleted_at IS NULL AND id = %s", [rng.randint(1, 2000)]
    ).fetchall()


OLD_SOFT_DELETE_APP = (*OLD_APP, soft_delete_old, restore_old, save_every_column_old, read_active_old)


# -- the new application: events and the view ---------------------------------------------------------


def insert_user_new(connection, rng):
    connection.execute("INSERT INTO users (email, name) VALUES (%s, %s)", [f"{uuid.uuid4().hex}@example.com", "new"])


def delete_by_event(connection, rng):
    connection.execute(
        "INSERT INTO users_events (users_id, kind) "
        "SELECT id, 'deleted' FROM users_active WHERE id > 2000 ORDER BY random() LIMIT 1"
    )


def restore_by_event(connection, rng):
    connection.execute(
        "INSERT INTO users_events (users_id, kind) SELECT u.id, 'restored' FROM users u WHERE u.id > 2000 "
        "AND NOT EXISTS (SELECT 1 FROM users_active a WHERE a.id = u.id) ORDER BY random() LIMIT 1"
    )


def read_active_new(connection, rng):
    connection.execute("SELECT id, email, name FROM users_active WHERE id = %s", [rng.randint(1, 2000)]).fetchall()


def read_history(connection, rng):
    connection.execute(
        "SELECT kind, occurred_at FROM users_events WHERE users_id = %s ORDER BY id", [rng.randint(1, 2000)]
    ).fetchall()


NEW_EVENTS_APP = (
    insert_user_new,
    update_user,
    delete_by_event,
    restore_by_event,
    read_active_new,
    read_history,
    insert_order,
    read_orders,
)


def leftovers(dsn: str) -> list:
    """What the plan creates, if any of it is still there."""
    return execute(
        dsn,
        "SELECT 'relation ' || relname FROM pg_class WHERE relname IN ('users_events', 'users_active') "
        "UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proname LIKE 'users%events%' "
        "UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = 'users'::regclass AND NOT tgisinternal",
    )


def test_soft_delete_to_events_under_both_versions_and_back(driver_for, shop):
    soft_deletes(shop)
    driver = driver_for("soft_delete_to_events", PARAMS)
    phases = driver.phases()
    assert [p.kind for p in phases] == ["expand", "backfill", "contract"]
    assert phases[2].needs_deploy
    before = by_name(shop)
    original = dict(execute(shop, f"SELECT id, deleted_at FROM users WHERE {ORIGINALLY_DELETED}"))

    with Workload(shop, OLD_SOFT_DELETE_APP):
        driver.run(phases[0])
        driver.run(phases[1])  # validated: every row agrees with its latest event
    history = dict(
        execute(shop, "SELECT users_id, occurred_at FROM users_events WHERE users_id <= 2000 AND kind = 'deleted'")
    )
    assert history == original, "one 'deleted' event per soft-deleted row, at its deleted_at"
    assert execute(shop, "SELECT count(*) FROM users_events WHERE users_id <= 2000") == [(200,)]
    with Workload(shop, NEW_EVENTS_APP):
        driver.run(phases[2])

    assert not execute(shop, "SELECT 1 FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'deleted_at'")
    assert execute(shop, "SELECT count(*) FROM users_active WHERE id <= 2000") == [(1800,)]
    assert execute(shop, "SELECT tgname FROM pg_trigger WHERE tgrelid = 'users'::regclass AND NOT tgisinternal") == [
        ("users_purge_events",)
    ]
    # What the new version writes after the switch survives the rollback, in the column.
    execute(
        shop, "INSERT INTO users_events (users_id, kind, occurred_at) VALUES (7, 'deleted', '2025-01-02 03:04:05+00')"
    )
    execute(shop, "INSERT INTO users_events (users_id, kind) VALUES (10, 'restored')")
    assert execute(shop, "SELECT count(*) FROM users_active WHERE id IN (7, 10)") == [(1,)]

    with Workload(shop, NEW_EVENTS_APP):  # the new version keeps working while the column comes back
        driver.roll_back(phases[2])
    assert execute(shop, "SELECT id, deleted_at::text FROM users WHERE id IN (7, 10) ORDER BY id") == [
        (7, "2025-01-02 03:04:05+00"),
        (10, None),
    ]
    mismatches = phases[1].validations[0]["sql"]
    assert execute(shop, mismatches) == [(0,)], "the column agrees with the events again, new rows included"
    with Workload(shop, OLD_SOFT_DELETE_APP):  # …and the previous version can be deployed again at once
        driver.roll_back(phases[1])
        assert execute(shop, "SELECT count(*) FROM users_events WHERE users_id <= 2000 AND kind = 'deleted'") == [
            (201,)
        ]
        driver.roll_back(phases[0])

    assert leftovers(shop) == []
    execute(shop, "UPDATE users SET deleted_at = NULL WHERE id = 7")
    execute(shop, "UPDATE users SET deleted_at = %s WHERE id = 10", [original[10]])
    delete_new_rows(shop)
    assert by_name(shop) == before


def test_boolean_flag_not_null_with_default(driver_for, shop):
    execute(shop, "ALTER TABLE users ADD COLUMN is_deleted boolean NOT NULL DEFAULT false")
    execute(shop, "UPDATE users SET is_deleted = true WHERE id % 7 = 0")
    params = {"table": "users", "column": "is_deleted", "events_table": "user_history", "view": "live_users"}
    driver = driver_for("soft_delete_to_events", params)
    before = by_name(shop)
    deleted = execute(shop, "SELECT count(*) FROM users WHERE is_deleted")
    for phase in driver.phases():
        driver.run(phase)
    assert execute(shop, "SELECT count(*) FROM user_history WHERE kind = 'deleted'") == deleted
    assert execute(shop, "SELECT count(*) FROM live_users") == [(2000 - deleted[0][0],)]
    execute(shop, "INSERT INTO user_history (users_id, kind) VALUES (14, 'restored'), (15, 'deleted')")

    driver.roll_back(driver.phases()[2])
    assert execute(shop, "SELECT id, is_deleted FROM users WHERE id IN (14, 15, 16) ORDER BY id") == [
        (14, False),
        (15, True),
        (16, False),
    ]
    execute(shop, "UPDATE users SET is_deleted = (id % 7 = 0) WHERE id IN (14, 15)")  # the trigger records it
    assert execute(shop, "SELECT kind FROM user_history WHERE users_id = 15 ORDER BY id") == [
        ("deleted",),
        ("restored",),
    ]
    driver.roll_back(driver.phases()[1])
    driver.roll_back(driver.phases()[0])
    assert execute(shop, "SELECT to_regclass('user_history'), to_regclass('live_users')") == [(None, None)]
    assert by_name(shop) == before  # NOT NULL and DEFAULT false included (snapshot compares the columns)


def test_hard_deletes_keep_the_row_and_block_dropping_the_events(driver_for, shop):
    soft_deletes(shop)
    driver = driver_for("soft_delete_to_events", PARAMS)
    phases = driver.phases()
    for phase in phases:
        driver.run(phase)
    row = execute(shop, "SELECT to_jsonb(u) FROM users u WHERE id = 30")[0][0]
    execute(shop, "DELETE FROM users WHERE id = 30")  # purging a soft-deleted row after the switch
    assert execute(shop, "SELECT kind, snapshot FROM users_events WHERE users_id = 30 ORDER BY id") == [
        ("deleted", None),
        ("purged", row),
    ]
    driver.roll_back(phases[2])
    driver.roll_back(phases[1])
    from planner.services import phases as service

    service.request_rollback(driver.oncall, phases[0])
    service.execute(phases[0].pk, "down")
    phases[0].refresh_from_db()
    assert phases[0].status != "rolled_back"
    assert "'purged' events" in phases[0].last_error
    assert execute(shop, "SELECT count(*) FROM users_events") != [(0,)], "nothing was dropped"
    execute(shop, "DELETE FROM users_events WHERE kind = 'purged'")  # the runbook's way out, once copied
    driver.roll_back(phases[0])
    assert leftovers(shop) == []


def test_concurrent_writers_of_one_row_leave_column_and_events_in_step(driver_for, shop):
    """Old and new version flipping the same few rows at once: every writer of a key holds its row lock
    before its event takes an id, so the latest event and the column agree in every committed state.

    The check also runs while they write: a writer commits the column and its event together, and one
    key's writers commit in lock order, so any snapshot holds a consistent prefix of each key's writes.
    """
    soft_deletes(shop)
    driver = driver_for("soft_delete_to_events", PARAMS)
    phases = driver.phases()
    driver.run(phases[0])
    driver.run(phases[1])
    mismatches = phases[1].validations[0]["sql"]
    keys = (1, 2, 3)  # few rows, many writers: most writes wait on another writer of the same row

    def flip_old(connection, rng):
        connection.execute(
            "UPDATE users SET deleted_at = CASE WHEN deleted_at IS NULL THEN now() END WHERE id = %s",
            [rng.choice(keys)],
        )

    def save_old(connection, rng):  # the column written back unchanged: the trigger's repair path
        connection.execute("UPDATE users SET name = name, deleted_at = deleted_at WHERE id = %s", [rng.choice(keys)])

    def flip_new(connection, rng):
        kind = rng.choice(["deleted", "restored"])
        connection.execute("INSERT INTO users_events (users_id, kind) VALUES (%s, %s)", [rng.choice(keys), kind])

    seen = []
    with Workload(shop, (flip_old, flip_old, save_old, flip_new, flip_new, flip_new), threads=8) as workload:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            seen.append(execute(shop, mismatches)[0][0])
            time.sleep(0.05)
    assert workload.done > 500, "too little traffic to exercise the race"
    assert seen.count(0) == len(seen), f"mismatched rows seen mid-run: {seen}"
    assert execute(shop, mismatches) == [(0,)]
    assert execute(shop, "SELECT count(DISTINCT kind) FROM users_events WHERE users_id <= 3") == [(2,)]


def test_rolled_back_before_the_backfill(driver_for, shop):
    soft_deletes(shop)
    driver = driver_for("soft_delete_to_events", PARAMS)
    before = by_name(shop)
    with Workload(shop, OLD_SOFT_DELETE_APP):
        driver.run(driver.phases()[0])
        driver.roll_back(driver.phases()[0])
    assert leftovers(shop) == []
    delete_new_rows(shop)
    assert by_name(shop) == before


def test_every_statement_round_trips_through_psycopg_identifiers(driver_for, shop):
    """Names that need quoting: a mixed-case schema, table and column."""
    execute(
        shop,
        'CREATE SCHEMA "Sales"; CREATE TABLE "Sales"."Soft Rows" ("Key A" int, "Key B" text, "Gone At" timestamp, '
        'PRIMARY KEY ("Key A", "Key B"))',
    )
    execute(
        shop,
        """INSERT INTO "Sales"."Soft Rows" SELECT g, 'k' || g, CASE WHEN g % 3 = 0 THEN timestamp '2024-05-05'
           + g * interval '1 hour' END FROM generate_series(1, 300) g""",
    )
    rows = 'SELECT * FROM "Sales"."Soft Rows" ORDER BY 1, 2'
    before = execute(shop, rows)
    driver = driver_for("soft_delete_to_events", {"table": '"Sales"."Soft Rows"', "column": "Gone At"})
    for phase in driver.phases():
        driver.run(phase)
    assert execute(shop, 'SELECT count(*) FROM "Sales"."Soft Rows_active"') == [(200,)]
    assert execute(shop, 'SELECT count(*) FROM "Sales"."Soft Rows_events" WHERE kind = \'deleted\'') == [(100,)]
    driver.roll_back_all()
    assert execute(shop, rows) == before
    assert execute(shop, """SELECT to_regclass('"Sales"."Soft Rows_events"')""") == [(None,)]
