"""Bad configuration: one clear line naming the setting and the fix, non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_manage(tmp_path, *args, **env_overrides):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PLANNER_CREDENTIALS_KEY", "DEBUG"}
    }
    env.update(PLANNER_DATA_DIR=str(tmp_path / "data"), **env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "mysql://u:p@h/db"}, "DATABASE_URL must be a PostgreSQL URL"),
        (
            {"DATABASE_URL": "postgresql://u:p@h:notaport/db", "SECRET_KEY": "k" * 50, "PLANNER_CREDENTIALS_KEY": "x"},
            "DATABASE_URL is malformed",
        ),
        ({"DATABASE_URL": "postgresql://u:p@h:5432/db", "SECRET_KEY": "k" * 50}, "PLANNER_CREDENTIALS_KEY is not set"),
        ({"DATABASE_URL": "postgresql://u:p@h:5432/db"}, "SECRET_KEY is not set"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL must look like redis://"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"PLANNER_WEBHOOK_URL": "hooks.slack.com/x"}, "PLANNER_WEBHOOK_URL must be an http:// or https:// URL"),
    ],
)
def test_bad_settings_give_one_clear_line(tmp_path, env, expected):
    result = run_manage(tmp_path, "check", **env)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_unreachable_store_is_reported_by_up(tmp_path):
    from planner.embedded import free_port

    result = run_manage(
        tmp_path,
        "up",
        "--port",
        str(free_port()),
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/planner",
        SECRET_KEY="k" * 50,
        PLANNER_CREDENTIALS_KEY="m4VjHqv8w3N8p3o9A3YpI5mUQ8m0b6pS0m4rJ8G3hV4=",
    )
    assert result.returncode != 0
    assert "DATABASE_URL: cannot connect" in result.stderr
    assert "Traceback" not in result.stderr


def test_commands_that_need_no_store_start_no_server(tmp_path):
    result = run_manage(tmp_path, "check")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "data" / "postgres").exists()
