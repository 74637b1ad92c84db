"""Reading sqlx offline query data (`.sqlx/query-<sha256>.json`) and naming every bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.sqlx import offline
from planner.sqlx.offline import BadQueryFile, parse_file, pg_type_name, query_hash, read_directory, read_files

SAMPLES = Path(__file__).resolve().parents[1] / "compat" / "samples"


def document(sql: str = "SELECT id FROM users WHERE id = $1", **changes) -> dict:
    doc = {
        "db_name": "PostgreSQL",
        "query": sql,
        "describe": {
            "columns": [{"ordinal": 0, "name": "id", "type_info": "Int8"}],
            "parameters": {"Left": ["Int8"]},
            "nullable": [False],
        },
        "hash": query_hash(sql),
    }
    doc.update(changes)
    return doc


def named(doc: dict) -> tuple[str, bytes]:
    return f"query-{query_hash(doc['query'])}.json", json.dumps(doc).encode()


def test_the_committed_samples_are_sqlx_files_named_by_their_hash():
    for version in ("app-v1", "app-v2"):
        data = read_directory(SAMPLES / version / ".sqlx")
        assert not data.problems and len(data.queries) == 5
        for query in data.queries:
            assert query.origin == f"query-{query.query_hash}.json"
    first = next(q for q in read_directory(SAMPLES / "app-v1" / ".sqlx").queries if q.sql.startswith("SELECT id, "))
    assert first.describe() == {
        "columns": [
            {"name": "id", "type": "int8", "nullable": False},
            {"name": "email", "type": "text", "nullable": False},
            {"name": "name", "type": "text", "nullable": True},
        ],
        "parameters": ["int8"],
    }


@pytest.mark.parametrize(
    ("type_info", "typname"),
    [
        ("Int8", "int8"),
        ("Timestamptz", "timestamptz"),
        ("TextArray", "_text"),
        ("Int4RangeArray", "_int4range"),
        ("Jsonb", "jsonb"),
        ({"Custom": {"name": "mood", "kind": {"Enum": ["happy", "sad"]}}}, "mood"),
        ({"DeclareWithName": "mood"}, "mood"),
    ],
)
def test_sqlx_type_names_become_postgres_type_names(type_info, typname):
    assert pg_type_name(type_info) == typname


def test_messages_use_sqlx_spelling():
    assert offline.sqlx_type_name("_text") == "TextArray" and offline.sqlx_type_name("timestamptz") == "Timestamptz"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("query-x.json", b"{not json", "not JSON"),
        ("query-x.json", b"\xff\xfe", "not UTF-8"),
        ("query-x.json", b"[]", "not a JSON object"),
        ("query-x.json", json.dumps(document(db_name="MySQL")).encode(), "db_name is 'MySQL'"),
        ("query-x.json", json.dumps(document(describe=None)).encode(), "no describe"),
        ("query-x.json", json.dumps(document(hash="00")).encode(), "hash does not match"),
        ("query-x.json", json.dumps(document(query="")).encode(), "no query text"),
        (
            "query-x.json",
            json.dumps(
                document(describe={"columns": [{"name": "id"}], "parameters": {"Left": []}, "nullable": [True]})
            ).encode(),
            "needs a name and a type_info",
        ),
        (
            "query-x.json",
            json.dumps(
                document(
                    describe={
                        "columns": [{"name": "id", "type_info": "Int8"}],
                        "parameters": {"Left": []},
                        "nullable": [],
                    }
                )
            ).encode(),
            "1 columns but 0 nullable flags",
        ),
        ("notes.json", json.dumps(document()).encode(), "not a sqlx offline file name"),
    ],
)
def test_a_bad_file_says_what_is_wrong(name, content, message):
    with pytest.raises(BadQueryFile, match=message):
        parse_file(name, content)


def test_bad_files_are_named_and_skipped_and_the_rest_are_read():
    good = named(document())
    data = read_files([good, ("query-broken.json", b"{"), named(document("SELECT 2", hash="bad"))])
    assert [q.origin for q in data.queries] == [good[0]]
    assert sorted(p.origin for p in data.problems) == sorted(["query-broken.json", named(document("SELECT 2"))[0]])


def test_other_files_of_the_directory_are_ignored(tmp_path):
    (tmp_path / "README.md").write_text("hi")
    name, content = named(document())
    (tmp_path / name).write_bytes(content)
    assert [q.origin for q in read_directory(tmp_path).queries] == [name]
    with pytest.raises(FileNotFoundError, match="not a directory"):
        read_directory(tmp_path / "missing")
