"""`manage.py analyze`: exit codes 0/1/2, output formats, stdin, and no database at all."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

REPO = Path(__file__).resolve().parents[2]


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("analyze", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def sql_file(tmp_path):
    def write(text, name="m.sql"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def test_clean_files_exit_0(sql_file):
    code, out, _ = run_command(sql_file("set lock_timeout = '1s'; set statement_timeout = '1min';\nselect 1;"))
    assert code == 0
    assert "0 error(s)" in out


def test_warnings_alone_exit_0(sql_file):
    code, _, _ = run_command(sql_file("alter table t drop column c;"))
    assert code == 0


def test_error_findings_exit_1(sql_file):
    path = sql_file("create index on users (email);")
    code, out, _ = run_command(path)
    assert code == 1
    assert f"{path}:1:1: error require-concurrent-index-creation:" in out


def test_unparseable_sql_exits_2_with_the_position(sql_file):
    path = sql_file("select 1;\nselect from where;")
    code, out, err = run_command(path)
    assert code == 2
    assert f"{path}:2:13: error syntax-error:" in out
    assert err.strip() == f"analyze: {path}:2:13: SQL does not parse"


def test_unreadable_files_exit_2(tmp_path):
    code, _, err = run_command(str(tmp_path / "missing.sql"))
    assert code == 2
    assert "cannot read" in err and "missing.sql" in err


def test_json_format(sql_file):
    code, out, _ = run_command("--format", "json", sql_file("create index on users (email);"))
    assert code == 1
    assert json.loads(out)["files"][0]["statements"][0]["locks"] == {"users": "SHARE"}


def test_pg_version_is_passed_on(sql_file):
    _, out, _ = run_command(
        "--format", "json", "--pg-version", "11", sql_file("alter table t alter column c set not null;")
    )
    finding = json.loads(out)["files"][0]["statements"][0]["findings"][0]
    assert finding["rule"] == "adding-not-nullable-field" and finding["fix"] is None


def test_config_file_is_used(sql_file, tmp_path):
    config = tmp_path / "planner-analyze.toml"
    config.write_text('disable = ["require-concurrent-index-creation", "require-timeout-settings"]\n')
    code, _, _ = run_command("--config", str(config), sql_file("create index on users (email);"))
    assert code == 0


def test_bad_config_exits_2(sql_file, tmp_path):
    config = tmp_path / "planner-analyze.toml"
    config.write_text('disable = ["nope"]\n')
    with pytest.raises(CommandError) as error:
        run_command("--config", str(config), sql_file("select 1;"))
    assert error.value.returncode == 2


def test_trace_needs_a_target(sql_file):
    with pytest.raises(CommandError, match="--trace needs --target") as error:
        run_command("--trace", sql_file("select 1;"))
    assert error.value.returncode == 2


def _manage(*args, stdin=""):
    env = dict(os.environ)
    # An unreachable store: the command must not connect to any database, nor start one.
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/nothing"
    env.setdefault("SECRET_KEY", "analyze-test-only-" + "x" * 50)
    env.setdefault("PLANNER_CREDENTIALS_KEY", "m4VjHqv8w3N8p3o9A3YpI5mUQ8m0b6pS0m4rJ8G3hV4=")
    return subprocess.run(
        [sys.executable, "manage.py", "analyze", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_the_real_command_reads_stdin_and_needs_no_database():
    result = _manage("-", stdin="create index on users (email);")
    assert result.returncode == 1, result.stderr
    assert "<stdin>:1:1: error require-concurrent-index-creation" in result.stdout


def test_the_real_command_exits_2_without_a_traceback():
    result = _manage("-", stdin="selec 1;")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == "analyze: <stdin>:1:1: SQL does not parse"
