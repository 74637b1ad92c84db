"""Reading and validating a sqlx migrations directory, exactly as sqlx-cli 0.8 names and hashes files.

sqlx splits a file name at its first `_`: the left part is the version (an i64), the right part,
without `.up.sql`/`.down.sql`/`.sql` and with `_` turned into spaces, is the description. The
checksum is SHA-384 of the file's bytes; `-- no-transaction` as the very first bytes opts the file
out of the migration transaction. sqlx silently skips some malformed names; we reject every `.sql`
file we cannot read as a migration, because a skipped migration is a surprise in production.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

NO_TRANSACTION = "-- no-transaction"
SIMPLE, UP, DOWN = "simple", "up", "down"
SUFFIXES = {UP: ".up.sql", DOWN: ".down.sql", SIMPLE: ".sql"}
MAX_VERSION = 2**63 - 1  # versions are BIGINT in _sqlx_migrations

_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<rest>.*\.sql)$")
NAME_HELP = "expected <VERSION>_<description>.sql, .up.sql or .down.sql, e.g. 20240501120000_add_users.up.sql"


class SqlxDirectoryError(ValueError):
    """A migrations directory or one of its files is not valid; `path` names the culprit."""

    def __init__(self, path: Path | str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = Path(path)
        self.message = message


@dataclass(frozen=True)
class MigrationFile:
    """One file: what sqlx would make of it."""

    path: Path
    version: int
    description: str
    kind: str  # SIMPLE, UP or DOWN
    sql: str
    checksum: bytes  # SHA-384 of the bytes, as stored in _sqlx_migrations.checksum

    @property
    def no_transaction(self) -> bool:
        return self.sql.startswith(NO_TRANSACTION)


@dataclass(frozen=True)
class Migration:
    """A version: its up (or simple) file and, for a reversible migration, its down file."""

    version: int
    description: str
    up: MigrationFile
    down: MigrationFile | None = None

    @property
    def reversible(self) -> bool:
        return self.down is not None


def parse_name(name: str) -> tuple[int, str, str] | None:
    """(version, description, kind) for a migration file name; None for a file that is not SQL.

    Raises SqlxDirectoryError for a `.sql` file whose name sqlx could not (or would silently not)
    read as a migration.
    """
    if not name.endswith(".sql"):
        return None
    match = _NAME.match(name)
    if match is None:
        raise SqlxDirectoryError(name, f"bad migration file name: {NAME_HELP}")
    version = int(match["version"])
    if version > MAX_VERSION:
        raise SqlxDirectoryError(name, f"bad migration file name: version {version} does not fit in a BIGINT")
    rest = match["rest"]
    kind = UP if rest.endswith(SUFFIXES[UP]) else DOWN if rest.endswith(SUFFIXES[DOWN]) else SIMPLE
    description = rest[: -len(SUFFIXES[kind])].replace("_", " ")
    if not description.strip():
        raise SqlxDirectoryError(name, f"bad migration file name: the description is empty; {NAME_HELP}")
    return version, description, kind


def checksum(data: bytes) -> bytes:
    return hashlib.sha384(data).digest()


def read_file(path: Path) -> MigrationFile | None:
    """One file of the directory, or None if it is not a migration (README.md, .gitkeep …)."""
    parsed = parse_name(path.name)
    if parsed is None:
        return None
    version, description, kind = parsed
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SqlxDirectoryError(
            path, f"not valid UTF-8 (byte {error.start}, line {line}); sqlx reads migrations as UTF-8 text"
        ) from None
    return MigrationFile(path, version, description, kind, text, checksum(data))


def read_directory(directory: Path | str) -> list[Migration]:
    """Every migration of `directory`, by version; raises SqlxDirectoryError on the first problem."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SqlxDirectoryError(directory, "not a directory")
    by_version: dict[int, list[MigrationFile]] = {}
    # Hidden files and sub-directories are not migrations (sqlx skips directories too); sorted so
    # the first error reported is always the same one.
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        migration_file = read_file(path)
        if migration_file is not None:
            by_version.setdefault(migration_file.version, []).append(migration_file)
    return [_pair(version, files) for version, files in sorted(by_version.items())]


def _pair(version: int, files: list[MigrationFile]) -> Migration:
    kinds = {f.kind: f for f in files}
    names = ", ".join(f.path.name for f in files)
    if len(kinds) != len(files) or (SIMPLE in kinds and len(files) > 1):
        raise SqlxDirectoryError(files[-1].path, f"duplicate version {version}: {names}")
    if SIMPLE in kinds:
        simple = kinds[SIMPLE]
        return Migration(version, simple.description, simple)
    up, down = kinds.get(UP), kinds.get(DOWN)
    if up is None:
        raise SqlxDirectoryError(down.path, f"down migration without its up file ({_sibling(down, UP)})")
    if down is None:
        raise SqlxDirectoryError(up.path, f"up migration without its down file ({_sibling(up, DOWN)})")
    if up.description != down.description:
        raise SqlxDirectoryError(down.path, f"version {version} has different descriptions: {names}")
    return Migration(version, up.description, up, down)


def _sibling(migration_file: MigrationFile, kind: str) -> str:
    name = migration_file.path.name
    return name[: -len(SUFFIXES[migration_file.kind])] + SUFFIXES[kind]


def uses_sequential_versions(versions: list[int]) -> bool:
    """sqlx's rule: the last two versions differ by exactly 1, or the only one is 0 or 1."""
    ordered = sorted(set(versions))
    if len(ordered) >= 2:
        return ordered[-1] - ordered[-2] == 1
    return ordered in ([0], [1])
