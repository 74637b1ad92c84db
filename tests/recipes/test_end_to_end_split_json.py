"""split_json_column on a real target: applied while the old application version (the JSON column) and
then the new one (the new table) run, validated, rolled back phase by phase and compared with before.

The workloads rewrite existing rows with the values they already have (so the triggers fire on every
kind of write and the data can still be compared with the start) and freely change the rows they insert,
which are deleted before the rollback, as in test_end_to_end_changes.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.recipes.conftest import OLD_APP, Workload, insert_order, read_orders, read_user, update_user
from tests.recipes.test_end_to_end_changes import by_name, delete_new_rows, execute

pytestmark = pytest.mark.django_db

# Each user's document as the setup writes it (NULL for every fifth); no `%`: statements take parameters.
ORIGINAL = (
    "CASE WHEN mod(id, 5) = 0 THEN NULL ELSE jsonb_build_object('theme', (ARRAY['dark', 'light', 'solar'])"
    "[mod(id, 3) + 1], 'newsletter', mod(id, 2) = 0, 'tags', jsonb_build_array('a', id), 'n', id * 1.5) END"
)
PARAMS = {"table": "users", "column": "metadata", "new_table": "user_metadata"}


@pytest.fixture
def metadata(shop):
    """users.metadata (jsonb, nullable) filled for four users in five."""
    execute(shop, "ALTER TABLE users ADD COLUMN metadata jsonb")
    execute(shop, f"UPDATE users SET metadata = {ORIGINAL}")  # noqa: S608 - a fixed expression
    return shop


# -- the old application version: it reads and writes users.metadata ---------------------------------


def insert_user_meta(connection, rng):
    document = None if rng.random() < 0.3 else psycopg.types.json.Jsonb({"theme": "new", "r": rng.random()})
    connection.execute(
        "INSERT INTO users (email, name, metadata) VALUES (%s, %s, %s)",
        [f"old-{uuid.uuid4().hex}@example.com", "new", document],
    )


def rewrite_meta(connection, rng):
    connection.execute(f"UPDATE users SET metadata = {ORIGINAL} WHERE id = %s", [rng.randint(1, 1000)])  # noqa: S608


def toggle_meta(connection, rng):
    """Set / clear the document of a row this version inserted (a NULL deletes the new table's row)."""
    connection.execute(
        "UPDATE users SET metadata = CASE WHEN metadata IS NULL THEN %s ELSE NULL END "
        "WHERE id = (SELECT max(id) FROM users WHERE email LIKE 'old-%%')",
        [psycopg.types.json.Jsonb({"toggled": rng.randint(1, 9)})],
    )


def read_meta(connection, rng):
    connection.execute("SELECT id, metadata FROM users WHERE id = %s", [rng.randint(1, 2000)]).fetchall()


OLD_APP_META = (*OLD_APP, insert_user_meta, rewrite_meta, toggle_meta, read_meta)


# -- the new application version: it reads and writes user_metadata ----------------------------------


def insert_user_new(connection, rng):
    with connection.transaction():
        (user,) = connection.execute(
            "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING id", [f"new-{uuid.uuid4().hex}@x.org", "n"]
        ).fetchone()
        if rng.random() < 0.7:
            connection.execute(
                "INSERT INTO user_metadata (id, metadata) VALUES (%s, %s)",
                [user, psycopg.types.json.Jsonb({"theme": "fresh"})],
            )


def rewrite_meta_new(connection, rng):
    user = rng.randint(1001, 2000)
    connection.execute(f"UPDATE user_metadata SET metadata = {ORIGINAL} WHERE id = %s", [user])  # noqa: S608


def toggle_meta_new(connection, rng):
    """Delete the document of a row this version inserted, or give it one (an upsert)."""
    (user,) = connection.execute("SELECT max(id) FROM users WHERE email LIKE 'new-%'").fetchone()
    if user is None:
        return
    deleted = connection.execute("DELETE FROM user_metadata WHERE id = %s", [user]).rowcount
    if not deleted:
        connection.execute(
            "INSERT INTO user_metadata (id, metadata) VALUES (%s, %s) "
            "ON CONFLICT (id) DO UPDATE SET metadata = EXCLUDED.metadata",
            [user, psycopg.types.json.Jsonb({"toggled": rng.randint(1, 9)})],
        )


def read_meta_new(connection, rng):
    connection.execute(
        "SELECT u.id, u.name, m.metadata FROM users u LEFT JOIN user_metadata m ON m.id = u.id WHERE u.id = %s",
        [rng.randint(1, 2000)],
    ).fetchall()


NEW_APP_META = (
    insert_user_new,
    rewrite_meta_new,
    toggle_meta_new,
    read_meta_new,
    read_user,
    update_user,
    insert_order,
    read_orders,
)


def user_triggers(dsn: str) -> list:
    return execute(
        dsn,
        "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgrelid IN (SELECT oid FROM pg_class WHERE relname IN ('users', 'user_metadata')) ORDER BY 1, 2",
    )


def leftovers(dsn: str) -> list:
    """Anything the plan created that a full rollback must remove."""
    return execute(
        dsn,
        "SELECT 'table', relname FROM pg_class WHERE relname LIKE 'user\\_metadata%' "
        "UNION ALL SELECT 'function', proname FROM pg_proc WHERE proname LIKE '%\\_sync'",
    )


def test_split_jsonb_column_into_a_table_and_back(driver_for, metadata):
    shop = metadata
    driver = driver_for("split_json_column", PARAMS)
    phases = driver.phases()
    assert [p.kind for p in phases] == ["expand", "backfill", "contract"]
    assert [p.needs_deploy for p in phases] == [False, False, True]
    before = by_name(shop)
    documents = execute(shop, "SELECT count(*) FROM users WHERE metadata IS NOT NULL")[0][0]

    with Workload(shop, OLD_APP_META):
        for phase in phases[:2]:
            driver.run(phase)
    # Between the phases: every document, old or just written, is in the new table, nothing else is.
    assert execute(shop, "SELECT count(*) FROM users WHERE metadata IS NOT NULL") == execute(
        shop, "SELECT count(*) FROM user_metadata"
    )
    with Workload(shop, NEW_APP_META):
        driver.run(phases[2])

    assert ("users", "metadata") not in {(c[0], c[1]) for c in by_name(shop)["columns"]}
    assert user_triggers(shop) == []
    moved = execute(
        shop,
        f"SELECT count(*), count(*) FILTER (WHERE metadata <> {ORIGINAL}) FROM user_metadata "  # noqa: S608
        "WHERE id <= 1000",
    )
    assert moved == [(execute(shop, "SELECT count(*) FROM generate_series(1, 1000) id WHERE mod(id, 5) <> 0")[0][0], 0)]
    assert execute(shop, "SELECT count(*) FROM user_metadata WHERE id <= 2000")[0][0] == documents

    # What the new version writes after the switch survives the rollback, in the column.
    execute(shop, """UPDATE user_metadata SET metadata = '{"theme": "changed"}' WHERE id = 7""")
    execute(shop, "DELETE FROM user_metadata WHERE id = 8")
    execute(shop, """INSERT INTO user_metadata (id, metadata) VALUES (10, '[1, "two"]')""")
    delete_new_rows(shop)
    driver.roll_back_all()
    assert execute(shop, "SELECT id, metadata FROM users WHERE id IN (7, 8, 10) ORDER BY id") == [
        (7, {"theme": "changed"}),
        (8, None),
        (10, [1, "two"]),
    ]
    assert leftovers(shop) == [] and user_triggers(shop) == []
    execute(shop, f"UPDATE users SET metadata = {ORIGINAL} WHERE id IN (7, 8, 10)")  # noqa: S608
    assert by_name(shop) == before


def test_both_versions_at_once_stay_in_step(driver_for, metadata):
    """A rolling deploy: the old version writes the column, the new one the table, at the same time.
    They write different users: the same row written by both at the same moment may deadlock (runbook)."""
    shop = metadata
    driver = driver_for("split_json_column", PARAMS)
    phases = driver.phases()
    before = by_name(shop)
    with Workload(shop, OLD_APP_META):
        for phase in phases[:2]:
            driver.run(phase)
    with Workload(shop, OLD_APP_META), Workload(shop, NEW_APP_META):
        for _ in range(3):
            execute(shop, "SELECT pg_sleep(0.2)")
    for check in phases[1].validations:  # nothing differs between the column and the table
        assert execute(shop, check["sql"]) == [(check["expected"],)]
    assert execute(shop, "SELECT count(*) FROM users WHERE email LIKE 'new-%'")[0][0] > 0
    delete_new_rows(shop)
    driver.roll_back(phases[1])
    driver.roll_back(phases[0])
    assert leftovers(shop) == []
    assert by_name(shop) == before


def test_rolled_back_before_the_backfill(driver_for, metadata):
    shop = metadata
    driver = driver_for("split_json_column", PARAMS)
    before = by_name(shop)
    with Workload(shop, OLD_APP_META):
        driver.run(driver.phases()[0])
    delete_new_rows(shop)
    driver.roll_back(driver.phases()[0])
    assert leftovers(shop) == []
    assert by_name(shop) == before


def test_rollback_refuses_to_drop_documents_the_column_lacks(driver_for, metadata):
    """A row inserted after the backfill, whose column came back empty with the contract's rollback,
    stops the expand phase's down SQL instead of being dropped with the table."""
    shop = metadata
    driver = driver_for("split_json_column", PARAMS)
    phases = driver.phases()
    for phase in phases:
        driver.run(phase)
    (user,) = execute(shop, "INSERT INTO users (email) VALUES ('late@example.com') RETURNING id")[0]
    execute(shop, """INSERT INTO user_metadata (id, metadata) VALUES (%s, '{"late": true}')""", [user])
    for phase in reversed(phases[1:]):
        driver.roll_back(phase)
    from planner.services import phases as service

    service.request_rollback(driver.oncall, phases[0])
    service.execute(phases[0].pk, "down")
    phases[0].refresh_from_db()
    assert phases[0].status != "rolled_back"
    assert "differs from their document in user_metadata" in phases[0].last_error
    assert execute(shop, "SELECT metadata FROM user_metadata WHERE id = %s", [user]) == [({"late": True},)]


def test_not_null_json_column_round_trips_exactly(driver_for, shop):
    """A json (not jsonb) NOT NULL column: the expand lets the new version insert without it, the text
    of every document (spacing, key order, duplicate keys) survives, and NOT NULL comes back."""
    execute(shop, "ALTER TABLE orders ADD COLUMN details json")
    execute(shop, """UPDATE orders SET details = ('{"b" : ' || id || ',  "a": "x", "a": "y"}')::json""")
    execute(shop, "ALTER TABLE orders ALTER COLUMN details SET NOT NULL")
    driver = driver_for(
        "split_json_column", {"table": "orders", "column": "details", "new_table": "order_details", "new_column": "doc"}
    )

    def insert_order_details(connection, rng):
        connection.execute("INSERT INTO orders (user_id, details) VALUES (%s, %s)", [rng.randint(1, 2000), '{"k":  1}'])

    def insert_order_new(connection, rng):
        with connection.transaction():
            (order,) = connection.execute("INSERT INTO orders (user_id) VALUES (1) RETURNING id").fetchone()
            connection.execute("INSERT INTO order_details (id, doc) VALUES (%s, %s)", [order, '{"new": 1}'])

    def read_doc(connection, rng):
        connection.execute("SELECT doc::text FROM order_details WHERE id = %s", [rng.randint(1, 3000)]).fetchall()

    texts = "SELECT id, details::text FROM orders ORDER BY id"
    before, before_texts = by_name(shop), execute(shop, texts)
    phases = driver.phases()
    with Workload(shop, (insert_order_details, read_orders)):
        for phase in phases[:2]:
            driver.run(phase)
    with Workload(shop, (insert_order_new, read_doc, read_orders)):
        driver.run(phases[2])
    assert execute(shop, "SELECT doc::text FROM order_details WHERE id = 5") == [('{"b" : 5,  "a": "x", "a": "y"}',)]
    delete_new_rows(shop)
    driver.roll_back_all()
    assert execute(shop, texts) == before_texts
    assert by_name(shop) == before  # NOT NULL included


def test_the_new_table_gets_the_parents_privileges_and_the_triggers_need_none(driver_for, metadata):
    shop = metadata
    role = f"app_{uuid.uuid4().hex[:8]}"
    execute(shop, f'CREATE ROLE "{role}"')
    try:
        execute(shop, f'GRANT SELECT, UPDATE ON users TO "{role}"')
        driver = driver_for("split_json_column", PARAMS)
        driver.run(driver.phases()[0])
        privileges = execute(
            shop,
            "SELECT p, has_table_privilege(%s, 'user_metadata', p) FROM unnest(ARRAY['SELECT', 'UPDATE', 'INSERT']) p",
            [role],
        )
        assert privileges == [("SELECT", True), ("UPDATE", True), ("INSERT", False)]
        # The old version's role cannot insert into user_metadata, yet its write of the column is copied.
        with psycopg.connect(shop, autocommit=True) as connection:
            connection.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
            connection.execute("""UPDATE users SET metadata = '{"as": "app"}' WHERE id = 5""")
        assert execute(shop, "SELECT metadata FROM user_metadata WHERE id = 5") == [({"as": "app"},)]
    finally:
        execute(shop, f'DROP OWNED BY "{role}"')
        execute(shop, f'DROP ROLE "{role}"')


def test_composite_key_and_quoted_names(driver_for, shop):
    """A two-column primary key (one named like a PL/pgSQL variable) and names that need quoting."""
    execute(
        shop,
        'CREATE TABLE "Part Info" ("Org" int, found text, "The Doc" jsonb, note text, PRIMARY KEY ("Org", found))',
    )
    execute(
        shop,
        """INSERT INTO "Part Info" SELECT mod(g, 7), 'k' || g, CASE WHEN mod(g, 4) > 0 THEN jsonb_build_object('g', g)
           END, 'n' FROM generate_series(1, 500) g""",
    )
    driver = driver_for(
        "split_json_column",
        {"table": '"Part Info"', "column": "The Doc", "new_table": '"Part Docs"', "new_column": "d"},
    )
    rows = 'SELECT to_jsonb(p) FROM "Part Info" p ORDER BY "Org", found'
    before = execute(shop, rows)

    def write_doc(connection, rng):
        connection.execute(
            """UPDATE "Part Info" SET "The Doc" = jsonb_build_object('g', 0 + substr(found, 2)::int) WHERE found = %s
               AND "The Doc" IS NOT NULL""",
            [f"k{rng.randint(1, 500)}"],
        )

    def write_new(connection, rng):
        connection.execute(
            """UPDATE "Part Docs" SET d = jsonb_build_object('g', 0 + substr(found, 2)::int) WHERE found = %s""",
            [f"k{rng.randint(1, 500)}"],
        )

    phases = driver.phases()
    with Workload(shop, (write_doc,)):
        for phase in phases[:2]:
            driver.run(phase)
    assert execute(shop, 'SELECT count(*) FROM "Part Docs"') == [(375,)]
    with Workload(shop, (write_new,)):
        driver.run(phases[2])
    execute(shop, """UPDATE "Part Docs" SET d = '{"moved": 1}' WHERE "Org" = 1 AND found = 'k1'""")
    driver.roll_back_all()
    assert execute(shop, """SELECT "The Doc" FROM "Part Info" WHERE found = 'k1'""") == [({"moved": 1},)]
    execute(shop, """UPDATE "Part Info" SET "The Doc" = '{"g": 1}' WHERE found = 'k1'""")
    assert execute(shop, rows) == before
    assert execute(shop, """SELECT to_regclass('"Part Docs"')""") == [(None,)]
