"""change_primary_key on a real target: accounts keyed by `id uuid` move to PRIMARY KEY (tenant_id, id)
while an application keeps inserting, updating and reading by id (and upserting ON CONFLICT (id)),
then everything is rolled back and compared with the database before.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from planner.pg.introspect import introspect
from planner.pg.trace import trace
from planner.recipes import get
from planner.recipes.checks import analyze_draft
from tests.recipes.conftest import Workload

pytestmark = pytest.mark.django_db

ACCOUNTS_SQL = """
CREATE TABLE accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id bigint,
    email text NOT NULL,
    logins integer NOT NULL DEFAULT 0
);
INSERT INTO accounts (tenant_id, email) SELECT g % 20 + 1, 'a' || g || '@example.com' FROM generate_series(1, 3000) g;
CREATE TABLE sessions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts ON DELETE CASCADE ON UPDATE CASCADE,
    note text
);
CREATE INDEX sessions_account_id_idx ON sessions (account_id);
INSERT INTO sessions (account_id, note) SELECT id, email FROM accounts ORDER BY email LIMIT 1000;
ANALYZE accounts;
ANALYZE sessions;
"""

TABLES = ("accounts", "sessions")


def execute(dsn: str, statement, params=None) -> list:
    with psycopg.connect(dsn, autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def snapshot(dsn: str, tables=TABLES) -> dict:
    """Columns, constraints (with the index each depends on), indexes and data of `tables`."""
    names = list(tables)
    return {
        "columns": execute(
            dsn,
            """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                      pg_get_expr(d.adbin, d.adrelid)
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE c.relname = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2""",
            [names],
        ),
        "constraints": execute(
            dsn,
            """SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid), convalidated,
                      conindid::regclass::text
                 FROM pg_constraint WHERE conrelid = ANY(SELECT oid FROM pg_class WHERE relname = ANY(%s))
                ORDER BY 1, 2""",
            [names],
        ),
        "indexes": execute(
            dsn,
            """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisprimary, indisvalid
                 FROM pg_index WHERE indrelid = ANY(SELECT oid FROM pg_class WHERE relname = ANY(%s)) ORDER BY 1""",
            [names],
        ),
        "data": {
            table: execute(dsn, psycopg.sql.SQL("SELECT * FROM {} ORDER BY 1").format(psycopg.sql.Identifier(table)))
            for table in names
        },
    }


def primary_key(dsn: str, table: str) -> tuple:
    rows = execute(
        dsn,
        """SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(n, o)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
            WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.o""",
        [table],
    )
    return tuple(row[0] for row in rows)


@pytest.fixture
def accounts(shop) -> list:
    """Accounts (3,000, tenant_id filled but nullable) and sessions referencing them; their ids."""
    execute(shop, ACCOUNTS_SQL)
    return [row[0] for row in execute(shop, "SELECT id FROM accounts ORDER BY id")]


def app(ids: list):
    """The application: it always writes tenant_id, and finds accounts by id alone."""

    def insert_account(connection, rng):
        connection.execute(
            "INSERT INTO accounts (tenant_id, email) VALUES (%s, %s)", [rng.randint(1, 20), f"{uuid.uuid4().hex}@x"]
        )

    def update_account(connection, rng):
        connection.execute("UPDATE accounts SET logins = logins + 1 WHERE id = %s", [rng.choice(ids)])

    def upsert_account(connection, rng):  # needs a unique index on (id) at every moment
        connection.execute(
            "INSERT INTO accounts (id, tenant_id, email) VALUES (%s, 1, 'x') "
            "ON CONFLICT (id) DO UPDATE SET logins = accounts.logins + 1",
            [rng.choice(ids)],
        )

    def read_account(connection, rng):
        connection.execute("SELECT tenant_id, email FROM accounts WHERE id = %s", [rng.choice(ids)]).fetchall()

    def insert_session(connection, rng):
        connection.execute("INSERT INTO sessions (account_id, note) VALUES (%s, 'w')", [rng.choice(ids)])

    def read_sessions(connection, rng):
        connection.execute(
            "SELECT s.id, a.email FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE a.id = %s",
            [rng.choice(ids)],
        ).fetchall()

    return (insert_account, update_account, upsert_account, read_account, insert_session, read_sessions)


def forget_new_rows(dsn: str, ids: list) -> None:
    execute(dsn, "DELETE FROM sessions WHERE id > 1000")
    execute(dsn, "DELETE FROM accounts WHERE NOT (id = ANY(%s))", [ids])
    execute(dsn, "UPDATE accounts SET logins = 0 WHERE logins <> 0")


def test_uuid_key_to_tenant_and_id_with_a_referencing_table(driver_for, shop, accounts):
    driver = driver_for("change_primary_key", {"table": "accounts", "columns": "tenant_id, id"})
    names = [p.name for p in driver.phases()]
    assert names == [
        "Build unique index accounts_tenant_id_id_key concurrently",
        "Build unique index accounts_id_key concurrently",
        "Confirm foreign keys to accounts are validated",
        "Check tenant_id IS NOT NULL for new rows (NOT VALID)",
        "Validate accounts_tenant_id_not_null",
        "Set tenant_id NOT NULL",
        "Swap the primary key to (tenant_id, id)",
        "Validate foreign keys to accounts",
    ]
    before = snapshot(shop)
    with Workload(shop, app(accounts)) as workload:
        for phase in driver.phases():
            driver.run(phase)  # and checks the phase's validations
    assert workload.done > 0

    assert primary_key(shop, "accounts") == ("tenant_id", "id")
    state = snapshot(shop)
    constraints = {row[1]: row for row in state["constraints"]}
    assert constraints["accounts_pkey"][3] == "PRIMARY KEY (tenant_id, id)"
    assert "accounts_id_key" not in constraints, "the old key stays unique through an index, not a constraint"
    assert constraints["sessions_account_id_fkey"][3:] == (
        "FOREIGN KEY (account_id) REFERENCES accounts(id) ON UPDATE CASCADE ON DELETE CASCADE",
        True,
        "accounts_id_key",
    )
    indexes = {row[0]: row for row in state["indexes"]}
    assert indexes["accounts_id_key"][1:] == (
        "CREATE UNIQUE INDEX accounts_id_key ON public.accounts USING btree (id)",
        False,
        True,
    )
    assert "accounts_tenant_id_id_key" not in indexes  # it became accounts_pkey
    with pytest.raises(psycopg.errors.UniqueViolation, match="accounts_id_key"):
        execute(shop, "INSERT INTO accounts (id, tenant_id, email) VALUES (%s, 99, 'dup')", [accounts[0]])
    with pytest.raises(psycopg.errors.NotNullViolation):
        execute(shop, "INSERT INTO accounts (email) VALUES ('no tenant')")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        execute(shop, "INSERT INTO sessions (account_id) VALUES (gen_random_uuid())")

    with Workload(shop, app(accounts)):
        driver.roll_back_all()
    forget_new_rows(shop, accounts)
    assert snapshot(shop) == before


def test_new_key_of_nullable_column_without_keeping_the_old_one_unique(driver_for, shop):
    execute(
        shop,
        """CREATE TABLE members (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id bigint NOT NULL,
                                 user_number bigint, name text);
           INSERT INTO members (tenant_id, user_number, name)
           SELECT g % 7, g, 'm' || g FROM generate_series(1, 2000) g;""",
    )
    numbers = iter(range(10_000, 1_000_000))
    lock = threading.Lock()

    def insert_member(connection, rng):
        with lock:
            number = next(numbers)
        connection.execute(
            "INSERT INTO members (tenant_id, user_number, name) VALUES (%s, %s, 'n')", [rng.randint(0, 6), number]
        )

    def read_member(connection, rng):
        connection.execute(
            "SELECT id, name FROM members WHERE tenant_id = %s AND user_number = %s",
            [rng.randint(0, 6), rng.randint(1, 2000)],
        ).fetchall()

    driver = driver_for(
        "change_primary_key",
        {"table": "members", "columns": "tenant_id, user_number", "keep_old_unique": "false", "name": "members_key"},
    )
    assert [p.kind for p in driver.phases()] == ["expand", "expand"] + ["contract"] * 5
    assert driver.phases()[-1].name == "Drop the unique index members_id_key on (id)"
    before = snapshot(shop, ["members"])
    with Workload(shop, (insert_member, read_member)):
        for phase in driver.phases():
            driver.run(phase)
    constraints = {row[1]: row[3] for row in snapshot(shop, ["members"])["constraints"] if row[2] != "n"}
    assert constraints == {"members_key": "PRIMARY KEY (tenant_id, user_number)"}
    assert not execute(shop, "SELECT 1 FROM pg_class WHERE relname IN ('members_id_key', 'members_pkey')")
    with Workload(shop, (insert_member, read_member)):
        driver.roll_back_all()
    execute(shop, "DELETE FROM members WHERE user_number >= 10000")
    assert snapshot(shop, ["members"]) == before


def test_the_swap_is_catalog_only_and_locks_as_predicted(driver_for, shop, accounts):
    """Measured on a schema copy (planner/pg/trace): the swap takes ACCESS EXCLUSIVE on the table and
    on the referencing table, and scans nothing, because the new key is already NOT NULL and indexed."""
    driver = driver_for("change_primary_key", {"table": "accounts", "columns": "tenant_id, id"})
    phases = driver.phases()
    swap = next(p for p in phases if p.name.startswith("Swap"))
    for phase in phases[: phases.index(swap)]:
        driver.run(phase)
    traced = trace(shop, swap.up_sql)
    assert [t.error for t in traced] == [None, None, None]
    drop_fk, swap_key, add_fk = traced
    assert drop_fk.locks == {"sessions": "ACCESS EXCLUSIVE", "accounts": "ACCESS EXCLUSIVE"}
    assert swap_key.locks == {} and "ACCESS EXCLUSIVE" in swap_key.held["accounts"]
    assert [t.scans for t in traced] == [[], [], []]
    assert [t.rewrites for t in traced] == [[], [], []]

    driver.run(swap)
    (down,) = trace(shop, swap.down_sql)
    assert down.error is None and down.locks == {"accounts": "ACCESS EXCLUSIVE"}
    assert down.scans == [] and down.rewrites == []


def test_reads_wait_at_most_a_lock_timeout_while_the_swap_waits_for_its_lock(driver_for, shop, accounts):
    """A long transaction holds the table: the swap gives up its lock request after lock_timeout and
    retries, so reads queued behind it never wait longer than lock_timeout + 100 ms."""
    driver = driver_for("change_primary_key", {"table": "accounts", "columns": "tenant_id, id"})
    phases = driver.phases()
    swap = next(p for p in phases if p.name.startswith("Swap"))
    for phase in phases[: phases.index(swap)]:
        driver.run(phase)
    latencies: list[float] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(shop, autocommit=True) as connection:
            while not stop.is_set():
                started = time.monotonic()
                connection.execute("SELECT email FROM accounts WHERE id = %s", [accounts[7]]).fetchall()
                latencies.append(time.monotonic() - started)
                time.sleep(0.01)

    reader = threading.Thread(target=read, daemon=True)
    with psycopg.connect(shop) as blocker:
        blocker.execute("SELECT count(*) FROM accounts").fetchall()  # holds ACCESS SHARE until rollback
        reader.start()
        threading.Timer(2.5, blocker.rollback).start()
        started = time.monotonic()
        driver.run(swap)
        assert time.monotonic() - started > 2, "the swap waited for the long transaction"
    stop.set()
    reader.join(timeout=10)
    assert len(latencies) > 20
    assert max(latencies) < 0.6, max(latencies)  # lock_timeout (500 ms) + 100 ms, as for every phase
    assert primary_key(shop, "accounts") == ("tenant_id", "id")


def test_the_analyzer_finds_no_error_on_a_big_copy_of_the_live_schema(shop, accounts):
    schema = introspect(shop)
    for table in schema.catalog.tables.values():
        table.rows, table.bytes, table.index_bytes = 50_000_000, 20 * 2**30, 5 * 2**30
    for params in (
        {"table": "accounts", "columns": "tenant_id, id"},
        {"table": "accounts", "columns": "tenant_id, email", "name": "accounts_tenant_email_pkey"},
        {"table": "sessions", "columns": "account_id, id", "keep_old_unique": False},
    ):
        draft = get("change_primary_key").draft(schema, params)
        found = analyze_draft(draft.phases, schema.catalog)
        assert [str(f) for f in found if f.finding.severity == "error"] == [], params
        for phase in draft.phases:
            for text in (phase.up_sql, phase.down_sql):
                if "CONCURRENTLY" in text:
                    assert text.startswith("-- no-transaction\n") and text.count(";") == 1, text


def test_rolled_back_right_after_the_swap_the_foreign_keys_are_validated_again(driver_for, shop, accounts):
    """The swap leaves the re-created foreign keys NOT VALID; rolled back before their validation
    phase ran, the confirm phase's down SQL validates them, so the schema is exactly as before."""
    driver = driver_for("change_primary_key", {"table": "accounts", "columns": "tenant_id, id"})
    phases = driver.phases()
    swap = next(p for p in phases if p.name.startswith("Swap"))
    ran = phases[: phases.index(swap) + 1]
    before = snapshot(shop)
    with Workload(shop, app(accounts)):
        for phase in ran:
            driver.run(phase)
        assert execute(shop, "SELECT convalidated FROM pg_constraint WHERE conname = 'sessions_account_id_fkey'") == [
            (False,)
        ]
        for phase in reversed(ran):
            driver.roll_back(phase)
    forget_new_rows(shop, accounts)
    assert snapshot(shop) == before
