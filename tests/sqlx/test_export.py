"""Turning phases into sqlx migrations and writing them without ever leaving half a directory."""

from __future__ import annotations

import datetime as dt

import pytest

from planner.sqlx import export
from planner.sqlx.export import (
    ExportError,
    NewMigration,
    PhaseSql,
    assign_versions,
    migrations_for_phases,
    split_steps,
    write_directory,
)
from planner.sqlx.files import read_directory

NOW = dt.datetime(2025, 3, 4, 5, 6, 58, tzinfo=dt.UTC)


def test_transactional_statements_stay_together_byte_for_byte():
    text = "-- add the column\nALTER TABLE t ADD c int; -- why\nUPDATE t SET c = 0 WHERE false;\n"
    chunks = split_steps(text)
    assert [(c.text, c.no_transaction) for c in chunks] == [(text, False)]


def test_each_non_transactional_statement_gets_its_own_step():
    text = (
        "ALTER TABLE t ADD c int;\n"
        "-- build it online\n"
        "CREATE INDEX CONCURRENTLY t_c ON t (c);\n"
        "CREATE INDEX CONCURRENTLY t_d ON t (d);\n"
        "COMMENT ON COLUMN t.c IS 'x';\n"
    )
    chunks = split_steps(text)
    assert [c.no_transaction for c in chunks] == [False, True, True, False]
    assert chunks[1].text == "-- build it online\nCREATE INDEX CONCURRENTLY t_c ON t (c);\n"
    assert "".join(c.text for c in chunks) == text


def test_comments_only_is_no_step():
    assert split_steps("-- nothing yet\n") == []
    assert split_steps("") == []


def test_a_phase_with_concurrent_index_becomes_two_migrations_with_downs_in_reverse():
    phase = PhaseSql(
        1,
        "Add column and index",
        "expand",
        up_sql="ALTER TABLE t ADD c int;\nCREATE INDEX CONCURRENTLY t_c ON t (c);\n",
        down_sql="DROP INDEX CONCURRENTLY IF EXISTS t_c;\nALTER TABLE t DROP COLUMN c;\n",
    )
    migrations, warnings = migrations_for_phases([phase], title="Plan")
    assert warnings == []
    assert [m.slug for m in migrations] == ["add_column_and_index_step_1", "add_column_and_index_step_2"]
    first, second = migrations
    assert "ALTER TABLE t ADD c int;" in first.up_sql and "DROP COLUMN c" in first.down_sql
    assert second.up_sql.startswith("-- no-transaction\n") and "CREATE INDEX CONCURRENTLY" in second.up_sql
    assert second.down_sql.startswith("-- no-transaction\n") and "DROP INDEX CONCURRENTLY" in second.down_sql
    assert not first.up_sql.startswith("-- no-transaction")


def test_a_longer_down_pads_the_front_with_empty_ups():
    phase = PhaseSql(
        2, "Drop", "contract", up_sql="ALTER TABLE t DROP c;", down_sql="ALTER TABLE t ADD c int;\nVACUUM t;"
    )
    migrations, _ = migrations_for_phases([phase], title="Plan")
    # Revert runs the last migration's down first: the ADD, then VACUUM.
    assert "nothing to do in this step" in migrations[0].up_sql
    assert migrations[0].down_sql.startswith("-- no-transaction\n") and "VACUUM t;" in migrations[0].down_sql
    assert "ALTER TABLE t DROP c;" in migrations[1].up_sql and "ADD c int" in migrations[1].down_sql


def test_phases_without_sql_are_reported_not_exported():
    phases = [
        PhaseSql(1, "Add", "expand", "ALTER TABLE t ADD c int;", "ALTER TABLE t DROP c;"),
        PhaseSql(2, "Backfill c", "backfill", "", ""),
    ]
    migrations, warnings = migrations_for_phases(phases, title="Plan")
    assert len(migrations) == 1
    assert warnings == [
        "phase 2 'Backfill c' (backfill) has no SQL and is not exported; run it with the planner at this point "
        "of the sequence"
    ]
    assert migrations[0].down_sql.endswith("ALTER TABLE t DROP c;\n")


def test_an_empty_down_says_so():
    migrations, _ = migrations_for_phases([PhaseSql(1, "Up only", "custom", "SELECT 1;", "")], title="P")
    assert migrations[0].down_sql.endswith("-- the phase has no down SQL\n")


def test_an_imported_no_transaction_marker_is_not_doubled():
    phase = PhaseSql(1, "i", "custom", "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);\n", "")
    up = migrations_for_phases([phase], title="P")[0][0].up_sql
    assert up.count("-- no-transaction") == 1 and up.startswith("-- no-transaction\n")


def test_a_phase_that_does_not_parse_is_named():
    with pytest.raises(ExportError, match=r"phase 3 'Broken', up SQL: line 1, column 1: syntax error"):
        migrations_for_phases([PhaseSql(3, "Broken", "custom", "ALTR TABLE t;", "")], title="P")


def test_versions_are_utc_timestamps_one_second_apart():
    assert assign_versions([], 3, now=NOW) == ["20250304050658", "20250304050659", "20250304050700"]


def test_versions_continue_after_an_existing_later_timestamp():
    assert assign_versions([20250304050658, 20300101000000], 2, now=NOW) == ["20300101000001", "20300101000002"]


def test_versions_continue_a_sequential_directory():
    assert assign_versions([1, 2], 2, now=NOW) == ["0003", "0004"]
    assert assign_versions([1], 1, now=NOW) == ["0002"]


def test_sequential_detection_wins_over_large_numbers():
    assert assign_versions([7, 9], 1, now=NOW) == ["20250304050658"]


def migrations(count: int) -> list[NewMigration]:
    return [NewMigration(f"step_{i}", f"SELECT {i};\n", f"SELECT -{i};\n") for i in range(count)]


def test_it_writes_a_new_directory(tmp_path):
    target = tmp_path / "migrations"
    paths = write_directory(target, migrations(2), now=NOW)
    assert sorted(p.name for p in target.iterdir()) == [
        "20250304050658_step_0.down.sql",
        "20250304050658_step_0.up.sql",
        "20250304050659_step_1.down.sql",
        "20250304050659_step_1.up.sql",
    ]
    assert len(paths) == 4
    assert [m.description for m in read_directory(target)] == ["step 0", "step 1"]
    assert [p.name for p in tmp_path.iterdir()] == ["migrations"]  # no staging left behind


def test_it_adds_to_an_existing_sequential_directory(tmp_path):
    (tmp_path / "0001_init.sql").write_text("SELECT 1;\n")
    (tmp_path / "0002_more.sql").write_text("SELECT 2;\n")
    write_directory(tmp_path, migrations(1), now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0001_init.sql",
        "0002_more.sql",
        "0003_step_0.down.sql",
        "0003_step_0.up.sql",
    ]


def test_it_never_overwrites_a_file_that_appears_meanwhile(tmp_path, monkeypatch):
    (tmp_path / "0001_init.sql").write_text("SELECT 1;\n")
    real_write_all = export._write_all

    def racing_write_all(folder, files):
        real_write_all(folder, files)
        (tmp_path / "0003_step_1.down.sql").write_text("-- someone else's\n")

    monkeypatch.setattr(export, "_write_all", racing_write_all)
    with pytest.raises(FileExistsError):
        write_directory(tmp_path, migrations(2), now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0001_init.sql", "0003_step_1.down.sql"]
    assert (tmp_path / "0003_step_1.down.sql").read_text() == "-- someone else's\n"


def test_a_failure_halfway_removes_what_was_moved_in(tmp_path, monkeypatch):
    (tmp_path / "20200101000000_init.sql").write_text("SELECT 1;\n")
    real_link, calls = export.os.link, []

    def failing_link(source, destination):
        calls.append(destination)
        if len(calls) == 3:
            raise OSError("disk full")
        real_link(source, destination)

    monkeypatch.setattr(export.os, "link", failing_link)
    with pytest.raises(OSError, match="disk full"):
        write_directory(tmp_path, migrations(2), now=NOW)
    assert [p.name for p in tmp_path.iterdir()] == ["20200101000000_init.sql"]


def test_a_bad_existing_directory_stops_the_export(tmp_path):
    (tmp_path / "1_a.sql").write_bytes(b"\xff")
    with pytest.raises(Exception, match="1_a.sql: not valid UTF-8"):
        write_directory(tmp_path, migrations(1), now=NOW)
    assert [p.name for p in tmp_path.iterdir()] == ["1_a.sql"]


def imported(version: int, stem: str, up: str, down: str = "", reversible: bool = True) -> PhaseSql:
    origin = {"version": version, "stem": stem, "reversible": reversible}
    return PhaseSql(position=version, name=stem, kind="custom", up_sql=up, down_sql=down, sqlx_origin=origin)


def test_imported_migrations_keep_version_name_form_and_bytes(tmp_path):
    phases = [
        imported(3, "0003_create_users", "CREATE TABLE users (id int);", "DROP TABLE users;"),
        imported(4, "0004_seed", "-- no-transaction\nINSERT INTO users VALUES (1);", reversible=False),
        PhaseSql(position=9, name="Add name", kind="expand", up_sql="ALTER TABLE users ADD name text;", down_sql=""),
    ]
    migrations, _ = migrations_for_phases(phases, title="t")
    write_directory(tmp_path, migrations, now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0003_create_users.down.sql",
        "0003_create_users.up.sql",
        "0004_seed.sql",
        "0005_add_name.down.sql",
        "0005_add_name.up.sql",
    ]
    assert (tmp_path / "0004_seed.sql").read_text() == "-- no-transaction\nINSERT INTO users VALUES (1);"
    # Again into the same directory: the imported files are there unchanged and are skipped.
    paths = write_directory(tmp_path, migrations, now=NOW)
    assert [p.name for p in paths] == ["0006_add_name.up.sql", "0006_add_name.down.sql"]


def test_an_imported_file_changed_on_disk_is_not_overwritten(tmp_path):
    (tmp_path / "0003_create_users.up.sql").write_text("-- edited by hand\n")
    (tmp_path / "0003_create_users.down.sql").write_text("DROP TABLE users;")
    migrations, _ = migrations_for_phases(
        [imported(3, "0003_create_users", "CREATE TABLE users (id int);", "DROP TABLE users;")], title="t"
    )
    with pytest.raises(FileExistsError, match="0003_create_users.up.sql: already exists"):
        write_directory(tmp_path, migrations, now=NOW)
    assert (tmp_path / "0003_create_users.up.sql").read_text() == "-- edited by hand\n"


def test_a_phase_added_before_an_imported_one_is_refused(tmp_path):
    phases = [
        PhaseSql(position=1, name="First", kind="expand", up_sql="SELECT 1;", down_sql=""),
        imported(3, "0003_create_users", "CREATE TABLE users (id int);", "DROP TABLE users;"),
    ]
    migrations, _ = migrations_for_phases(phases, title="t")
    with pytest.raises(ExportError, match="would run before version"):
        write_directory(tmp_path / "new", migrations, now=NOW)
    assert not (tmp_path / "new").exists()
