"""Reading sqlx migration directories: names, descriptions, checksums, pairing, bad input."""

from __future__ import annotations

import hashlib

import pytest

from planner.sqlx.files import (
    DOWN,
    SIMPLE,
    UP,
    SqlxDirectoryError,
    parse_name,
    read_directory,
    uses_sequential_versions,
)


def write(folder, name, content: str | bytes = "SELECT 1;\n"):
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("20240501120000_add_users.up.sql", (20240501120000, "add users", UP)),
        ("20240501120000_add_users.down.sql", (20240501120000, "add users", DOWN)),
        ("0001_init.sql", (1, "init", SIMPLE)),
        ("7_with__double.sql", (7, "with  double", SIMPLE)),
        ("3_dots.in.name.sql", (3, "dots.in.name", SIMPLE)),
        ("README.md", None),
        ("notes.txt", None),
    ],
)
def test_it_parses_names_like_sqlx(name, expected):
    assert parse_name(name) == expected


@pytest.mark.parametrize(
    "name",
    ["init.sql", "v1_init.sql", "-1_init.sql", "1_.sql", "1_.up.sql", "99999999999999999999_big.sql", "_x.sql"],
)
def test_it_rejects_bad_names(name):
    with pytest.raises(SqlxDirectoryError, match="bad migration file name") as caught:
        parse_name(name)
    assert str(caught.value).startswith(name)


def test_it_reads_a_reversible_directory(tmp_path):
    write(tmp_path, "20240101000000_create_users.up.sql", "CREATE TABLE users (id int);\n")
    write(tmp_path, "20240101000000_create_users.down.sql", "DROP TABLE users;\n")
    write(tmp_path, "20240102000000_index.up.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON users (id);\n")
    write(tmp_path, "20240102000000_index.down.sql", "DROP INDEX i;\n")
    write(tmp_path, "README.md", "not a migration")
    write(tmp_path, ".hidden.sql", "ignored")
    (tmp_path / "sub").mkdir()

    migrations = read_directory(tmp_path)

    assert [(m.version, m.description, m.reversible) for m in migrations] == [
        (20240101000000, "create users", True),
        (20240102000000, "index", True),
    ]
    index = migrations[1]
    assert index.up.no_transaction and not index.down.no_transaction
    assert index.up.checksum == hashlib.sha384(index.up.path.read_bytes()).digest()


def test_no_transaction_must_be_at_byte_zero(tmp_path):
    write(tmp_path, "1_a.sql", " -- no-transaction\nVACUUM;\n")
    write(tmp_path, "2_b.sql", "\ufeff-- no-transaction\nVACUUM;\n")
    assert [m.up.no_transaction for m in read_directory(tmp_path)] == [False, False]


def test_the_checksum_is_of_the_bytes_as_they_are(tmp_path):
    content = "CREATE TABLE t (id int);\r\n-- é\r\n"
    write(tmp_path, "1_crlf.sql", content)
    assert read_directory(tmp_path)[0].up.checksum == hashlib.sha384(content.encode()).digest()


def test_it_orders_by_numeric_version(tmp_path):
    for name in ("10_c.sql", "9_b.sql", "0001_a.sql"):
        write(tmp_path, name)
    assert [m.version for m in read_directory(tmp_path)] == [1, 9, 10]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["1_a.sql", "1_b.sql"], "duplicate version 1: 1_a.sql, 1_b.sql"),
        (["1_a.sql", "01_a.up.sql", "01_a.down.sql"], "duplicate version 1"),
        (["5_a.up.sql", "5_a.down.sql", "5_b.up.sql", "5_b.down.sql"], "duplicate version 5"),
        (["2_a.up.sql"], r"up migration without its down file \(2_a.down.sql\)"),
        (["2_a.down.sql"], r"down migration without its up file \(2_a.up.sql\)"),
        (["2_a.up.sql", "2_b.down.sql"], "different descriptions"),
        (["2_ok.sql", "oops.sql"], "oops.sql: bad migration file name"),
    ],
)
def test_it_names_the_file_of_every_problem(tmp_path, names, message):
    for name in names:
        write(tmp_path, name)
    with pytest.raises(SqlxDirectoryError, match=message):
        read_directory(tmp_path)


def test_it_rejects_a_file_that_is_not_utf8(tmp_path):
    write(tmp_path, "1_ok.sql")
    write(tmp_path, "2_latin1.sql", "SELECT 'caf\xe9';\nSELECT 2;\n".encode("latin-1"))
    with pytest.raises(SqlxDirectoryError, match=r"2_latin1.sql: not valid UTF-8 \(byte 11, line 1\)"):
        read_directory(tmp_path)


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(SqlxDirectoryError, match="not a directory"):
        read_directory(tmp_path / "nope")


@pytest.mark.parametrize(
    ("versions", "sequential"),
    [
        ([], False),
        ([1], True),
        ([0], True),
        ([2], False),
        ([1, 2, 3], True),
        ([5, 6], True),
        ([1, 3], False),
        ([20240101000000, 20240101000001], True),  # sqlx's rule, literally
        ([20240101000000, 20240102000000], False),
    ],
)
def test_it_detects_sequential_versions_like_sqlx(versions, sequential):
    assert uses_sequential_versions(versions) is sequential
