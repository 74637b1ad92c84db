"""Reading sqlx's offline query data: the `.sqlx/query-<sha256>.json` files `cargo sqlx prepare` writes.

Each file holds one query the application compiles against, as the database described it then:

    {"db_name": "PostgreSQL", "query": "SELECT id, email FROM users WHERE id = $1",
     "describe": {"columns": [{"ordinal": 0, "name": "id", "type_info": "Int8"}, …],
                  "parameters": {"Left": ["Int8"]}, "nullable": [false, true]},
     "hash": "<sha256 hex of the query text>"}

`type_info` is sqlx's `PgType` serialised by serde: a variant name (`Int8`, `Timestamptz`,
`TextArray`), or an object for user types (`{"Custom": {"name": "mood", "kind": …}}`,
`{"DeclareWithName": "mood"}`). `pg_type_name` turns either into PostgreSQL's `pg_type.typname`.

A file that cannot be read is reported by name and skipped; the others are still read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

FILE_PREFIX, FILE_SUFFIX = "query-", ".json"


@dataclass(frozen=True)
class ResultColumn:
    ordinal: int
    name: str
    type_name: str  # PostgreSQL's typname, e.g. "int8", "_text", "mood"
    nullable: bool | None  # sqlx's verdict: None when it could not tell


@dataclass(frozen=True)
class OfflineQuery:
    """One query of the application, with what sqlx recorded about it."""

    origin: str  # the file name, for reports
    sql: str
    query_hash: str
    columns: tuple[ResultColumn, ...]
    parameters: tuple[str, ...]  # typnames

    def describe(self) -> dict:
        """The recorded shape as plain data (stored with the query, compared on each schema)."""
        return {
            "columns": [
                {"name": c.name, "type": c.type_name, "nullable": c.nullable} for c in sorted(self.columns, key=_ord)
            ],
            "parameters": list(self.parameters),
        }


def _ord(column: ResultColumn) -> int:
    return column.ordinal


@dataclass(frozen=True)
class FileProblem:
    origin: str
    message: str


@dataclass
class OfflineData:
    queries: list[OfflineQuery] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)


class BadQueryFile(ValueError):
    """One file is not sqlx offline data; the message says what is wrong with it."""


def pg_type_name(type_info) -> str:
    """sqlx's serialised PgType → PostgreSQL's typname (`Int8` → int8, `TextArray` → _text)."""
    if isinstance(type_info, str):
        if not type_info:
            raise BadQueryFile("an empty type_info")
        if type_info.endswith("Array") and type_info != "Array":
            return "_" + type_info[: -len("Array")].lower()
        return type_info.lower()
    if isinstance(type_info, dict) and len(type_info) == 1:
        ((kind, value),) = type_info.items()
        if kind == "Custom" and isinstance(value, dict) and isinstance(value.get("name"), str):
            return value["name"]
        if kind == "DeclareWithName" and isinstance(value, str):
            return value
        if kind == "DeclareWithOid":
            return f"oid {value}"
    raise BadQueryFile(f"type_info {json.dumps(type_info)[:80]} is not a sqlx PostgreSQL type")


def sqlx_type_name(typname: str) -> str:
    """PostgreSQL's typname in sqlx's spelling, for messages a Rust developer recognises."""
    array = typname.startswith("_")
    base = typname[1:] if array else typname
    known = {"timestamptz": "Timestamptz", "int4range": "Int4Range", "int8range": "Int8Range", "numrange": "NumRange"}
    known |= {"tsrange": "TsRange", "tstzrange": "TstzRange", "daterange": "DateRange", "jsonpath": "JsonPath"}
    spelled = known.get(base, base[:1].upper() + base[1:])
    return spelled + ("Array" if array else "")


def query_hash(sql: str) -> str:
    """What sqlx names the file after: SHA-256 of the query text, in hex."""
    return hashlib.sha256(sql.encode()).hexdigest()


def parse_file(name: str, data: bytes) -> OfflineQuery:
    """One offline file's bytes → the query, or BadQueryFile saying why not."""
    if not (name.startswith(FILE_PREFIX) and name.endswith(FILE_SUFFIX)):
        raise BadQueryFile(f"not a sqlx offline file name (expected {FILE_PREFIX}<sha256>{FILE_SUFFIX})")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadQueryFile("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise BadQueryFile(f"not JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    if not isinstance(document, dict):
        raise BadQueryFile("not a JSON object")
    db_name = document.get("db_name")
    if db_name != "PostgreSQL":
        raise BadQueryFile(f"db_name is {db_name!r}; only PostgreSQL queries can be checked")
    sql = document.get("query")
    if not isinstance(sql, str) or not sql.strip():
        raise BadQueryFile("no query text")
    describe = document.get("describe")
    if not isinstance(describe, dict):
        raise BadQueryFile("no describe object")
    digest = query_hash(sql)
    recorded = document.get("hash")
    if recorded is not None and recorded != digest:
        raise BadQueryFile("its hash does not match its query text (edited by hand? run cargo sqlx prepare)")
    columns = _columns(describe)
    parameters = describe.get("parameters", {"Left": []})
    if not isinstance(parameters, dict) or not isinstance(parameters.get("Left", []), list):
        raise BadQueryFile('describe.parameters is not {"Left": [types]}')
    return OfflineQuery(
        origin=name,
        sql=sql,
        query_hash=digest,
        columns=columns,
        parameters=tuple(pg_type_name(t) for t in parameters.get("Left", [])),
    )


def _columns(describe: dict) -> tuple[ResultColumn, ...]:
    columns, nullable = describe.get("columns"), describe.get("nullable")
    if not isinstance(columns, list) or not isinstance(nullable, list):
        raise BadQueryFile("describe needs a columns list and a nullable list")
    if len(columns) != len(nullable):
        raise BadQueryFile(f"describe has {len(columns)} columns but {len(nullable)} nullable flags")
    result = []
    for position, (column, flag) in enumerate(zip(columns, nullable, strict=True)):
        if not isinstance(column, dict) or not isinstance(column.get("name"), str) or "type_info" not in column:
            raise BadQueryFile(f"describe.columns[{position}] needs a name and a type_info")
        if flag is not None and not isinstance(flag, bool):
            raise BadQueryFile(f"describe.nullable[{position}] must be true, false or null")
        ordinal = column.get("ordinal", position)
        if not isinstance(ordinal, int):
            raise BadQueryFile(f"describe.columns[{position}].ordinal is not a number")
        result.append(ResultColumn(ordinal, column["name"], pg_type_name(column["type_info"]), flag))
    return tuple(result)


def read_files(files: list[tuple[str, bytes]]) -> OfflineData:
    """Named file contents (an upload, a directory) → queries and per-file problems."""
    data = OfflineData()
    for name, content in sorted(files):
        try:
            data.queries.append(parse_file(name, content))
        except BadQueryFile as error:
            data.problems.append(FileProblem(name, str(error)))
    return data


def read_directory(directory: Path | str) -> OfflineData:
    """Every `query-*.json` of a `.sqlx` directory; other files are ignored, like sqlx does."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory (expected a .sqlx directory of query-*.json files)")
    files = [
        (path.name, path.read_bytes())
        for path in directory.iterdir()
        if path.is_file() and path.name.startswith(FILE_PREFIX) and path.name.endswith(FILE_SUFFIX)
    ]
    return read_files(files)
