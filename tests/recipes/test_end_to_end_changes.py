"""Recipes that move data between columns: applied while the old, then the new, application version
runs, validated, then rolled back phase by phase and compared with the database before.

Dropping and re-adding a column moves it to the end of the table, so data is compared by column
name (the schema comparison of `snapshot` is by name already).
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.recipes.conftest import OLD_APP, Workload, insert_order, read_orders, snapshot

pytestmark = pytest.mark.django_db


def by_name(dsn: str) -> dict:
    """`snapshot` with each row as a {column: value} dict, so column positions do not matter."""
    state = snapshot(dsn)
    with psycopg.connect(dsn) as connection:
        for table in ("users", "orders"):
            cursor = connection.execute(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608 - fixed names
            names = [column.name for column in cursor.description]
            state[table] = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    return state


def apply_all(driver, dsn: str, new_app, deploy_at: int) -> None:
    """Phases before position `deploy_at` under the old application, the rest under the new one."""
    phases = driver.phases()
    with Workload(dsn, OLD_APP):
        for phase in phases[: deploy_at - 1]:
            driver.run(phase)
    with Workload(dsn, new_app):
        for phase in phases[deploy_at - 1 :]:
            driver.run(phase)


def execute(dsn: str, statement: str, params=None) -> list:
    with psycopg.connect(dsn, autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def delete_new_rows(dsn: str) -> None:
    execute(dsn, "DELETE FROM orders WHERE id > 3000")
    execute(dsn, "DELETE FROM users WHERE id > 2000")
    execute(dsn, "UPDATE users SET name = 'User ' || id WHERE name IS DISTINCT FROM 'User ' || id")


# -- rename column -----------------------------------------------------------------------------------


def insert_user_new(connection, rng):
    connection.execute(
        "INSERT INTO users (email_address, name) VALUES (%s, %s)", [f"{uuid.uuid4().hex}@example.com", "new"]
    )


def update_email_new(connection, rng):
    user = rng.randint(1, 2000)
    connection.execute("UPDATE users SET email_address = email_address WHERE id = %s", [user])


def read_user_new(connection, rng):
    connection.execute("SELECT id, email_address, name FROM users WHERE id = %s", [rng.randint(1, 2000)]).fetchall()


NEW_APP_RENAMED = (insert_user_new, update_email_new, read_user_new, insert_order, read_orders)


def test_rename_column_not_null(driver_for, shop):
    driver = driver_for("rename_column", {"table": "users", "column": "email", "new_name": "email_address"})
    kinds = [p.kind for p in driver.phases()]
    assert kinds == ["expand", "backfill", "contract", "contract", "contract", "contract"]
    before = by_name(shop)
    apply_all(driver, shop, NEW_APP_RENAMED, deploy_at=3)

    after = snapshot(shop)
    columns = {(c[0], c[1]): c for c in after["columns"]}
    assert ("users", "email") not in columns
    assert columns[("users", "email_address")][2:4] == ("text", True)
    assert not execute(shop, "SELECT tgname FROM pg_trigger WHERE tgrelid = 'users'::regclass AND NOT tgisinternal")
    moved = execute(
        shop, "SELECT count(*) FROM users WHERE id <= 2000 AND email_address <> 'user' || id || '@example.com'"
    )
    assert moved == [(0,)], "every original row kept its value under the new name"

    # A value the new version writes after the switch survives the rollback, in the old column.
    execute(shop, "UPDATE users SET email_address = 'changed@example.com' WHERE id = 7")
    delete_new_rows(shop)
    driver.roll_back_all()
    assert execute(shop, "SELECT email FROM users WHERE id = 7") == [("changed@example.com",)]
    execute(shop, "UPDATE users SET email = 'user7@example.com' WHERE id = 7")
    assert by_name(shop) == before


def test_rename_nullable_column_with_default_and_only_old_app(driver_for, shop):
    execute(shop, "ALTER TABLE orders ALTER COLUMN note SET DEFAULT 'none'")
    driver = driver_for("rename_column", {"table": "orders", "column": "note", "new_name": "memo"})
    assert [p.kind for p in driver.phases()] == ["expand", "backfill", "contract"]

    def insert_order_new(connection, rng):
        if rng.random() < 0.5:
            connection.execute("INSERT INTO orders (user_id, memo) VALUES (%s, %s)", [rng.randint(1, 2000), "m"])
        else:
            connection.execute("INSERT INTO orders (user_id) VALUES (%s)", [rng.randint(1, 2000)])

    def read_memo(connection, rng):
        connection.execute("SELECT memo FROM orders WHERE user_id = %s", [rng.randint(1, 2000)]).fetchall()

    before = by_name(shop)
    apply_all(driver, shop, (insert_order_new, read_memo), deploy_at=3)
    assert execute(shop, "SELECT count(*) FROM orders WHERE id > 3000 AND memo IS NULL") == [(0,)]
    defaults = {c[1]: c[4] for c in snapshot(shop)["columns"] if c[0] == "orders"}
    assert defaults["memo"] == "'none'::text" and "note" not in defaults
    delete_new_rows(shop)
    driver.roll_back_all()
    assert by_name(shop) == before


def test_rename_rollback_refuses_to_lose_values_written_to_the_new_column(driver_for, shop):
    """Rows the backfill never walked (inserted after it) and still empty in the old column stop the
    expand phase's down SQL instead of being dropped with the new column."""
    driver = driver_for("rename_column", {"table": "orders", "column": "note", "new_name": "memo"})
    phases = driver.phases()
    for phase in phases:
        driver.run(phase)
    execute(shop, "INSERT INTO orders (user_id, memo) VALUES (1, 'after the switch')")
    for phase in reversed(phases[1:]):
        driver.roll_back(phase)
    from planner.services import phases as service

    service.request_rollback(driver.oncall, phases[0])
    service.execute(phases[0].pk, "down")
    phases[0].refresh_from_db()
    assert phases[0].status != "rolled_back"
    assert "differs from memo" in phases[0].last_error
    assert execute(shop, "SELECT memo FROM orders WHERE id > 3000") == [("after the switch",)]


def test_rename_rolled_back_before_the_backfill(driver_for, shop):
    driver = driver_for("rename_column", {"table": "users", "column": "email", "new_name": "email_address"})
    before = by_name(shop)
    with Workload(shop, OLD_APP):
        driver.run(driver.phases()[0])
    delete_new_rows(shop)
    driver.roll_back(driver.phases()[0])
    assert by_name(shop) == before


# -- change column type ------------------------------------------------------------------------------


# Statements returning qty are not prepared: a prepared one fails after the swap until its connection
# is replaced (see test_the_swap_breaks_prepared_statements_until_reconnect); the runbook says to
# recycle the pools, which a workload with one connection per thread cannot do mid-phase.
def update_qty(connection, rng):
    connection.execute("UPDATE orders SET qty = %s WHERE id = %s", [rng.randint(1, 9), rng.randint(1, 3000)])


def insert_order_qty(connection, rng):
    connection.execute("INSERT INTO orders (user_id, qty) VALUES (%s, %s)", [rng.randint(1, 2000), rng.randint(1, 9)])


def read_qty(connection, rng):
    connection.execute("SELECT qty FROM orders WHERE user_id = %s", [rng.randint(1, 2000)], prepare=False).fetchall()


def test_the_swap_breaks_prepared_statements_until_reconnect(driver_for, shop):
    """Why the swap's runbook says to recycle connection pools: PostgreSQL refuses a cached plan
    whose result type changed, on every run, until the statement is prepared again."""
    execute(shop, "ALTER TABLE orders ADD COLUMN qty integer")
    driver = driver_for("change_column_type", {"table": "orders", "column": "qty", "type": "bigint"})
    with psycopg.connect(shop, autocommit=True) as app:
        for _ in range(6):  # psycopg prepares a statement on its 5th run
            app.execute("SELECT qty FROM orders WHERE id = %s", [1]).fetchall()
        for phase in driver.phases()[:3]:  # expand, backfill, swap
            driver.run(phase)
        for _ in range(2):
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="cached plan must not change result type"):
                app.execute("SELECT qty FROM orders WHERE id = %s", [1])
    with psycopg.connect(shop, autocommit=True) as fresh:
        assert fresh.execute("SELECT pg_typeof(qty)::text FROM orders WHERE id = 1").fetchone() == ("bigint",)


def test_change_int_to_bigint_not_null_with_default(driver_for, shop):
    execute(shop, "ALTER TABLE orders ADD COLUMN qty integer NOT NULL DEFAULT 1")
    execute(shop, "UPDATE orders SET qty = id % 7 + 1")
    driver = driver_for("change_column_type", {"table": "orders", "column": "qty", "type": "bigint"})
    phases = driver.phases()
    assert [p.kind for p in phases] == [
        "expand",
        "backfill",
        "contract",
        "contract",
        "contract",
        "contract",
        "contract",
    ]
    before = by_name(shop)
    old_app = (*OLD_APP, update_qty, insert_order_qty)
    with Workload(shop, old_app):
        for phase in phases[:5]:
            driver.run(phase)
    with Workload(shop, (insert_order, insert_order_qty, update_qty, read_qty)):  # works with int and bigint
        for phase in phases[5:]:
            driver.run(phase)

    columns = {(c[0], c[1]): c for c in snapshot(shop)["columns"]}
    assert columns[("orders", "qty")][2:] == ("bigint", True, "1")
    assert ("orders", "qty_old") not in columns and ("orders", "qty_new") not in columns
    execute(shop, "INSERT INTO orders (user_id, qty) VALUES (1, 3000000000)")  # past int4: the point of it
    execute(shop, "UPDATE orders SET qty = 42 WHERE id = 5")  # written after the swap: must survive rollback
    execute(shop, "UPDATE orders SET qty = id % 7 + 1 WHERE id <> 5")
    delete_new_rows(shop)
    driver.roll_back_all()
    assert execute(shop, "SELECT qty FROM orders WHERE id = 5") == [(42,)]
    execute(shop, "UPDATE orders SET qty = 5 % 7 + 1 WHERE id = 5")
    assert by_name(shop) == before


def test_change_nullable_text_to_varchar(driver_for, shop):
    driver = driver_for("change_column_type", {"table": "users", "column": "name", "type": "varchar(200)"})
    assert [p.kind for p in driver.phases()] == ["expand", "backfill", "contract", "contract"]
    before = by_name(shop)
    apply_all(driver, shop, OLD_APP, deploy_at=3)
    columns = {(c[0], c[1]): c for c in snapshot(shop)["columns"]}
    assert columns[("users", "name")][2:4] == ("character varying(200)", False)
    delete_new_rows(shop)
    driver.roll_back_all()
    assert by_name(shop) == before


# -- drop column / drop table ------------------------------------------------------------------------


@pytest.fixture
def second_manager(make_user):
    """High-risk plans (drops) are approved by a release manager who is not their author."""
    return make_user("release manager")


def test_drop_nullable_column_with_canary(driver_for, shop, second_manager):
    driver = driver_for("drop_column", {"table": "users", "column": "bio"})
    assert driver.plan.high_risk
    driver.manager = second_manager
    assert [p.kind for p in driver.phases()] == ["contract", "contract"]
    before = by_name(shop)
    apply_all(driver, shop, OLD_APP, deploy_at=1)  # the application never used bio
    assert not execute(shop, "SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname ~ 'bio'")
    delete_new_rows(shop)
    driver.roll_back_all()
    # The column is back, nullable and empty: values of a dropped column come back only from a backup.
    for row in before["users"]:
        row["bio"] = None
    assert by_name(shop) == before


def test_drop_not_null_column_the_new_version_stops_writing(driver_for, shop, second_manager):
    driver = driver_for("drop_column", {"table": "users", "column": "email"})
    driver.manager = second_manager
    phases = driver.phases()
    assert [p.kind for p in phases] == ["expand", "contract", "contract"]

    def insert_user_without_email(connection, rng):
        connection.execute("INSERT INTO users (name) VALUES (%s)", ["new"])

    def read_user_without_email(connection, rng):
        connection.execute("SELECT id, name FROM users WHERE id = %s", [rng.randint(1, 2000)]).fetchall()

    before = by_name(shop)
    new_app = (insert_user_without_email, read_user_without_email, insert_order, read_orders)
    with Workload(shop, OLD_APP):
        driver.run(phases[0])  # DROP NOT NULL while the old version still writes email
    with Workload(shop, new_app):
        driver.run(phases[1])  # the canary
    # Undo the canary and DROP NOT NULL: everything comes back, values included, once the rows the
    # new version wrote without an email are gone (the down SQL refuses while they exist).
    driver.roll_back(phases[1])
    from planner.services import phases as service

    service.request_rollback(driver.oncall, phases[0])
    service.execute(phases[0].pk, "down")
    phases[0].refresh_from_db()
    assert "rows with email NULL" in phases[0].last_error
    delete_new_rows(shop)
    driver.roll_back(phases[0])
    assert by_name(shop) == before


def test_drop_table_with_canary(driver_for, shop, second_manager):
    execute(
        shop,
        "CREATE TABLE legacy_events (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        "kind text NOT NULL DEFAULT 'x', at timestamptz DEFAULT now(), payload jsonb)",
    )
    execute(shop, "INSERT INTO legacy_events (kind, payload) SELECT 'k' || g, '{}' FROM generate_series(1, 50) g")
    driver = driver_for("drop_table", {"table": "legacy_events"})
    driver.manager = second_manager
    assert [p.kind for p in driver.phases()] == ["contract", "contract"]
    shape = """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
                      a.attidentity
                 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = 'legacy_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY a.attnum"""
    constraints = (
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'legacy_events'::regclass ORDER BY 1"
    )
    before_shape, before_constraints = execute(shop, shape), execute(shop, constraints)
    assert ("legacy_events_pkey", "PRIMARY KEY (id)") in before_constraints
    before = by_name(shop)
    apply_all(driver, shop, OLD_APP, deploy_at=1)
    assert execute(shop, "SELECT to_regclass('legacy_events'), to_regclass('legacy_events_deprecated')") == [
        (None, None)
    ]
    delete_new_rows(shop)
    driver.roll_back_all()
    assert execute(shop, shape) == before_shape
    assert execute(shop, constraints) == before_constraints  # names too (NOT NULL ones on PostgreSQL 18)
    assert execute(shop, "SELECT count(*) FROM legacy_events") == [(0,)]  # rows only from a backup
    assert by_name(shop) == before
