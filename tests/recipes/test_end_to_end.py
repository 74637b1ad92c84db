"""Each recipe applied for real while the old, then the new, application version runs; then rolled back."""

from __future__ import annotations

import uuid

import pytest

from tests.recipes.conftest import OLD_APP, Workload, insert_order, read_user, snapshot

pytestmark = pytest.mark.django_db


def apply_then_roll_back(driver, dsn: str, new_app=OLD_APP, deploy_after=None) -> dict:
    """Apply every phase under the old app (the new one from `deploy_after` phase kind on); roll back."""
    before = snapshot(dsn)
    phases = driver.phases()
    split = next((i for i, p in enumerate(phases) if p.kind == deploy_after), len(phases))
    with Workload(dsn, OLD_APP):
        for phase in phases[:split]:
            driver.run(phase)
    with Workload(dsn, new_app):
        for phase in phases[split:]:
            driver.run(phase)
    after = snapshot(dsn)
    return {"before": before, "after": after}


def restore_and_compare(driver, dsn: str, before: dict) -> None:
    """Roll every phase back (down SQL in reverse) with no workload writing, and compare with `before`."""
    driver.roll_back_all()
    assert snapshot(dsn) == before


def test_add_column_with_backfill_and_not_null(driver_for, shop):
    driver = driver_for(
        "add_column",
        {
            "table": "users",
            "column": "email_verified",
            "type": "boolean",
            "default": "false",
            "backfill": "verified_at IS NOT NULL",
            "not_null": True,
        },
    )
    assert [p.kind for p in driver.phases()] == ["expand", "backfill", "contract", "contract", "contract"]

    def insert_verified_user(connection, rng):
        connection.execute(
            "INSERT INTO users (email, email_verified) VALUES (%s, %s)", [f"{uuid.uuid4().hex}@x", rng.random() < 0.5]
        )

    def read_verified(connection, rng):
        connection.execute("SELECT email_verified FROM users WHERE id = %s", [rng.randint(1, 2000)]).fetchall()

    before = snapshot(shop)
    states = apply_then_roll_back(
        driver, shop, new_app=(insert_verified_user, read_verified, read_user, insert_order), deploy_after="contract"
    )
    with __import__("psycopg").connect(shop) as connection:
        wrong = connection.execute(
            "SELECT count(*) FROM users WHERE id <= 2000 AND email_verified IS DISTINCT FROM (verified_at IS NOT NULL)"
        ).fetchone()[0]
    assert wrong == 0, "every original row got the computed value, not the default"
    assert any(c[1] == "email_verified" and c[3] for c in states["after"]["columns"])
    _delete_new_rows(shop)
    restore_and_compare(driver, shop, before)


def test_add_column_with_constant_default_needs_no_backfill(driver_for, shop):
    driver = driver_for("add_column", {"table": "orders", "column": "currency", "type": "text", "default": "'EUR'"})
    assert [p.kind for p in driver.phases()] == ["expand"]
    before = snapshot(shop)
    apply_then_roll_back(driver, shop)
    _delete_new_rows(shop)
    restore_and_compare(driver, shop, before)


@pytest.mark.parametrize(
    "params",
    [
        {"table": "orders", "columns": "user_id, amount"},
        {"table": "orders", "columns": "user_id", "where": "amount > 10", "include": "note"},
        {"table": "users", "columns": "name, bio", "method": "fulltext"},
    ],
    ids=["btree", "partial-covering", "fulltext"],
)
def test_add_index(driver_for, shop, params):
    driver = driver_for("add_index", params)
    before = snapshot(shop)
    states = apply_then_roll_back(driver, shop)
    assert len(states["after"]["indexes"]) == len(before["indexes"]) + 1
    _delete_new_rows(shop)
    restore_and_compare(driver, shop, before)


def test_add_foreign_key(driver_for, shop):
    driver = driver_for("add_foreign_key", {"table": "orders", "columns": "user_id", "ref_table": "users"})
    assert [p.kind for p in driver.phases()] == ["expand", "expand", "contract"]
    before = snapshot(shop)
    states = apply_then_roll_back(driver, shop)
    assert ("orders", "orders_user_id_fkey", "FOREIGN KEY (user_id) REFERENCES users(id)", True) in states["after"][
        "constraints"
    ]
    _delete_new_rows(shop)
    restore_and_compare(driver, shop, before)


def test_add_unique(driver_for, shop):
    driver = driver_for("add_unique", {"table": "users", "columns": "email"})
    before = snapshot(shop)
    states = apply_then_roll_back(driver, shop)
    assert ("users", "users_email_key", "UNIQUE (email)", True) in states["after"]["constraints"]
    _delete_new_rows(shop)
    restore_and_compare(driver, shop, before)


def _delete_new_rows(dsn: str) -> None:
    """Rows the workload added are not part of 'as before'; updates to `name` are reset too."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("DELETE FROM orders WHERE id > 3000")
        connection.execute("DELETE FROM users WHERE id > 2000")
        connection.execute("UPDATE users SET name = 'User ' || id WHERE name IS DISTINCT FROM 'User ' || id")
