"""`manage.py analyze --target NAME [--trace]` against a real target database."""

from __future__ import annotations

import io
import json

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from planner.sql.analysis import StatementReport

SCHEMA = """
CREATE TABLE users (id bigint PRIMARY KEY, n integer, email text);
INSERT INTO users SELECT g, g, repeat('u', 40) || g FROM generate_series(1, 60000) g;
CREATE TABLE tiny (id int PRIMARY KEY, code text);
INSERT INTO tiny SELECT g, 'c' || g FROM generate_series(1, 20) g;
ANALYZE;
"""
CONTRACT_KEYS = list(StatementReport(1, 1, "", "").to_dict())


@pytest.fixture
def shop_target(demo_target, target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as connection:
        connection.execute(SCHEMA)
    return demo_target


@pytest.fixture
def sql_file(tmp_path):
    def write(text, name="m.sql"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("analyze", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def statements(out: str) -> list[dict]:
    return json.loads(out)["files"][0]["statements"]


def test_target_gives_estimates_and_downgrades_tiny_tables(shop_target, sql_file):
    path = sql_file("CREATE INDEX ON users (email);\nCREATE INDEX ON tiny (code);\n")
    code, out, err = run_command("--target", shop_target.name, "--format", "json", path)
    big, small = statements(out)
    assert [f["severity"] for f in big["findings"] if f["rule"] == "require-concurrent-index-creation"] == ["error"]
    downgraded = [f for f in small["findings"] if f["rule"] == "require-concurrent-index-creation"]
    assert downgraded[0]["severity"] == "info" and "tiny" in downgraded[0]["message"]
    assert big["estimate_seconds"] is not None and small["estimate_seconds"] is not None
    assert big["estimate_seconds"] >= small["estimate_seconds"]
    assert code == 1  # the big table's error remains
    assert "throughput calibrated on the server: scan" in err and "MB/s" in err
    assert list(big) == CONTRACT_KEYS  # no trace asked: the JSON contract is unchanged


def test_target_version_is_used_unless_pg_version_is_given(shop_target, sql_file, target_dsn):
    with psycopg.connect(target_dsn) as connection:
        major = connection.info.server_version // 10000
    path = sql_file(
        "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n"
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"
    )
    _, out_own, err = run_command("--target", shop_target.name, "--format", "json", path)
    assert f"PostgreSQL {major};" in err
    assert statements(out_own)[2]["scans"] == []  # 12+: the validated CHECK spares the scan
    _, out_11, _ = run_command("--target", shop_target.name, "--format", "json", "--pg-version", "11", path)
    assert statements(out_11)[2]["scans"] == ["users"]


def test_unknown_target_exits_2(db, sql_file):
    with pytest.raises(CommandError, match="unknown target 'nope'") as error:
        run_command("--target", "nope", sql_file("select 1;"))
    assert error.value.returncode == 2


def test_unreachable_target_exits_2_without_the_password(demo_target, sql_file):
    demo_target.port = 1
    demo_target.set_password("hunter2-secret")
    demo_target.save()
    with pytest.raises(CommandError) as error:
        run_command("--target", demo_target.name, sql_file("select 1;"))
    assert error.value.returncode == 2
    assert "cannot be read" in str(error.value) and demo_target.display_dsn in str(error.value)
    assert "hunter2-secret" not in str(error.value)


def test_trace_adds_measured_next_to_predicted(shop_target, sql_file):
    path = sql_file(
        "CREATE INDEX ON users (email);\n"
        "ALTER TABLE users ALTER COLUMN n TYPE bigint;\n"
        "ALTER TABLE tiny ADD COLUMN note text;\n"
        "CREATE INDEX CONCURRENTLY ON users (n);\n"
    )
    _, out, _ = run_command("--target", shop_target.name, "--trace", "--format", "json", path)
    index, retype, add, concurrently = statements(out)
    assert list(index)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS  # existing keys unchanged, `measured` added
    assert index["measured"]["locks"] == index["locks"] == {"users": "SHARE"}
    assert index["measured"]["scans"] == ["users"]
    assert retype["measured"]["locks"] == {"users": "ACCESS EXCLUSIVE"}
    assert retype["measured"]["rewrites"] == retype["rewrites"] == ["users"]
    assert add["measured"] | {"held": None} == {
        "locks": {"tiny": "ACCESS EXCLUSIVE"},
        "rewrites": [],
        "scans": [],
        "traced": True,
        "held": None,
    }
    assert concurrently["measured"]["traced"] is False
    assert concurrently["measured"]["error"] == "not traced (cannot run in a transaction)"


def test_trace_text_output_shows_where_measurement_differs(shop_target, sql_file):
    path = sql_file("ALTER TABLE users ADD COLUMN email text;\nALTER TABLE users ADD COLUMN nick text;\n")
    _, out, _ = run_command("--target", shop_target.name, "--trace", path)
    assert f'{path}:1:1: trace: failed on the shadow copy: column "email" of relation "users" already exists' in out
    assert f"{path}:2:1: trace:" not in out  # agrees with the prediction: no line
