"""`manage.py check-queries`: bad input is one line and exit code 2; bad files are named and skipped."""

from __future__ import annotations

import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from planner.services import compat

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


def test_an_unknown_plan_is_exit_code_2(db):
    with pytest.raises(CommandError, match="--plan: no plan with id 999999") as error:
        call_command("check-queries", "--plan", "999999")
    assert error.value.returncode == 2


def test_a_missing_sqlx_dir_is_exit_code_2(plan, tmp_path):
    with pytest.raises(CommandError, match="--sqlx-dir: .*not a directory") as error:
        call_command("check-queries", "--plan", str(plan.pk), "--sqlx-dir", str(tmp_path / "nope"))
    assert error.value.returncode == 2


def test_a_malformed_file_is_named_and_skipped_and_the_rest_checked(driver_for, sample_dir, tmp_path):
    driver = driver_for("rename_column", {"table": "users", "column": "name", "new_name": "full_name"})
    directory = tmp_path / ".sqlx"
    shutil.copytree(sample_dir("app-v1"), directory)
    (directory / "query-broken.json").write_text('{"db_name": "PostgreSQL", "query": "SELECT 1"')
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "check-queries", "--plan", str(driver.plan.pk), "--sqlx-dir", str(directory), stdout=out, stderr=err
        )
    assert exit_info.value.code == 1
    assert "skipped query-broken.json: not JSON" in err.getvalue()
    assert "(deployed, 5 queries)" in out.getvalue()  # the five good files were all checked


def test_planned_versions_do_not_fail_the_command(driver_for, sample_dir):
    driver = driver_for("rename_column", {"table": "users", "column": "name", "new_name": "full_name"})
    out = StringIO()
    call_command(
        "check-queries",
        "--plan",
        str(driver.plan.pk),
        "--sqlx-dir",
        str(sample_dir("app-v2")),
        "--app-status",
        "planned",
        stdout=out,
    )
    assert "app-v2 (planned, 5 queries)" in out.getvalue()
    assert "No query of a deployed version breaks" in out.getvalue()
    assert not driver.plan.compat_reports.exists()  # a directory given on the command line is not stored


def test_without_queries_it_says_so_with_exit_code_2(plan):
    with pytest.raises(CommandError, match="no queries recorded") as error:
        call_command("check-queries", "--plan", str(plan.pk))
    assert error.value.returncode == 2


def test_the_command_is_reachable_as_a_user_types_it():
    done = subprocess.run(
        [sys.executable, "manage.py", "check-queries", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "--sqlx-dir" in done.stdout


def test_a_stored_check_is_recorded(driver_for, demo_target, sample_dir):
    driver = driver_for("rename_column", {"table": "users", "column": "name", "new_name": "full_name"})
    version = compat.add_version(driver.manager, demo_target, "app-v2", "deployed")
    compat.import_sqlx_directory(driver.manager, version, sample_dir("app-v2"))
    out = StringIO()
    # app-v2's queries break only before the plan, which no phase still to run causes: exit 0.
    call_command("check-queries", "--plan", str(driver.plan.pk), stdout=out)
    assert "app-v2 breaks before the plan" in out.getvalue()
    assert driver.plan.compat_reports.count() == 1
