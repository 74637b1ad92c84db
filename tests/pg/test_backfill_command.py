"""`manage.py backfill` as scripts use it: real processes, kill -9 mid-run, resume, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.pg.conftest import counter_histogram, make_items

MANAGE = str(Path(__file__).resolve().parents[2] / "manage.py")
# 0.3 ms per row keeps a 100-row batch busy for ~30 ms: slow enough to kill mid-run.
SLOW_SET = "counter = counter + 1, note = 'done ' || id || length(pg_sleep(0.0003)::text)"


def _command(dsn: str, *args: str) -> list[str]:
    return [sys.executable, MANAGE, "backfill", "--dsn", dsn, *args]


def _rows_done(dsn: str, name: str) -> int:
    with psycopg.connect(dsn) as connection:
        if connection.execute("SELECT to_regclass('planner_bookkeeping.backfill_slices')").fetchone()[0] is None:
            return 0
        return connection.execute(
            """SELECT coalesce(sum(s.rows_done), 0) FROM planner_bookkeeping.backfill_slices s
               JOIN planner_bookkeeping.backfill_runs r ON r.id = s.run_id WHERE r.name = %s""",
            [name],
        ).fetchone()[0]


def _kill_after(dsn: str, args: list[str], name: str, rows: int) -> None:
    process = subprocess.Popen(_command(dsn, *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _rows_done(dsn, name) < rows:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_changes_every_row_exactly_once(target_dsn):
    make_items(target_dsn, 5_000)
    args = ["--name", "k9", "--table", "items", "--set", SLOW_SET, "--batch-size", "100", "--slices", "2"]
    _kill_after(target_dsn, args, "k9", 1_000)
    _kill_after(target_dsn, args, "k9", 3_000)
    partial = counter_histogram(target_dsn)
    assert set(partial) == {0, 1} and partial[1] >= 3_000

    finished = subprocess.run(_command(target_dsn, *args, "--json"), capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout.strip().splitlines()[-1])
    assert summary["resumed"] is True and summary["done"] is True
    assert summary["rows_done_total"] == 5_000 and summary["rows"] == 5_000 - partial[1]
    assert set(summary) >= {"rows", "batches", "seconds", "rows_per_s", "max_batch_ms", "p99_batch_ms", "resumed"}
    assert counter_histogram(target_dsn) == {1: 5_000}
    with psycopg.connect(target_dsn) as connection:
        wrong = connection.execute("SELECT count(*) FROM items WHERE note <> 'done ' || id || '0'").fetchone()[0]
    assert wrong == 0


def test_roll_back_by_name_then_drop_the_bookkeeping(items):
    forward = ["--name", "cli-rb", "--table", "items", "--set", "counter = counter + 1", "--capture-before-images"]
    assert subprocess.run(_command(items, *forward), capture_output=True, timeout=60).returncode == 0
    assert counter_histogram(items) == {1: 3000}
    back = subprocess.run(_command(items, "--name", "cli-rb", "--rollback", "--json"), capture_output=True, text=True)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout.splitlines()[-1])["direction"] == "rollback"
    assert counter_histogram(items) == {0: 3000}
    dropped = subprocess.run(_command(items, "--drop-bookkeeping"), capture_output=True, text=True)
    assert dropped.returncode == 0 and "dropped" in dropped.stdout
    with psycopg.connect(items) as connection:
        assert connection.execute("SELECT to_regnamespace('planner_bookkeeping')").fetchone()[0] is None


BAD_INPUT = {
    "unknown table": (["--table", "nope", "--set", "counter = 1"], "table 'nope' does not exist"),
    "unknown set column": (["--table", "items", "--set", "nope = 1"], "column 'nope' does not exist"),
    "set names a missing column": (["--table", "items", "--set", "counter = nope"], 'column "nope" does not exist'),
    "set does not parse": (["--table", "items", "--set", "counter = = 1"], "set: does not parse"),
    "where not boolean": (["--table", "items", "--set", "counter = 1", "--where", "id + 1"], "must be type boolean"),
    "key not unique": (["--table", "items", "--set", "counter = 1", "--key", "kind"], "is not unique"),
    "key nullable": (["--table", "items", "--set", "counter = 1", "--key", "note"], "is nullable"),
    "key unknown": (["--table", "items", "--set", "counter = 1", "--key", "id,nope"], "'nope' does not exist"),
    "no set for a new run": (["--table", "items"], "--table and --set are required"),
    "rollback unknown run": (["--rollback"], "--table and --set are required"),
    "two batch options": (
        ["--table", "items", "--set", "counter = 1", "--batch-size", "5", "--target-batch-ms", "9"],
        "not allowed",
    ),
    "bad batch size": (["--table", "items", "--set", "counter = 1", "--batch-size", "0"], "batch_size"),
    "unreachable database": (
        ["--table", "items", "--set", "counter = 1", "--dsn", "host=127.0.0.1 port=1"],
        "cannot reach",
    ),
}


def test_bad_input_is_one_line_on_stderr_and_exit_code_2(items):
    processes = {
        case: subprocess.Popen(
            _command(items, "--name", "bad", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for case, (args, _) in BAD_INPUT.items()
    }
    for case, process in processes.items():
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 2, (case, stderr)
        assert len(stderr.strip().splitlines()) == 1, (case, stderr)
        assert BAD_INPUT[case][1] in stderr, (case, stderr)
    assert counter_histogram(items) == {0: 3000}
