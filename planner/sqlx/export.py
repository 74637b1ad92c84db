"""Writing a plan's phases as a sqlx migrations directory: one migration per step, nothing half-written.

A phase whose SQL holds a statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY …)
is cut so that each such statement gets its own `-- no-transaction` migration: PostgreSQL runs the
several statements of one simple-query message in an implicit transaction, so sqlx could not run
two of them from one file. The down SQL is cut the same way and handed out from the last migration
backwards, so `sqlx migrate revert` runs it in its written order.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from planner.pg.ddl_statements import SqlSyntaxError, autocommit_reason, chunk_bounds, split_statements
from planner.sqlx.files import NO_TRANSACTION, SUFFIXES, read_directory, uses_sequential_versions

TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"  # sqlx migrate add's format, in UTC


class ExportError(ValueError):
    """A phase cannot be exported; the message names it."""


@dataclass(frozen=True)
class PhaseSql:
    """What the exporter needs of a phase (the Django model stays outside this package)."""

    position: int
    name: str
    kind: str
    up_sql: str
    down_sql: str
    sqlx_origin: dict | None = None  # {version, stem, reversible} of a phase imported from sqlx


@dataclass(frozen=True)
class NewMigration:
    """A migration to write: `slug` becomes the file name's description part.

    An imported migration keeps its `version` and file `stem` (and simple or reversible form), and
    its text is written byte for byte, so a target that already ran it sees the same checksum.
    """

    slug: str
    up_sql: str
    down_sql: str
    version: int | None = None
    stem: str | None = None
    reversible: bool = True

    def file_names(self, version: str) -> dict[str, str]:
        """{file name: text} for this migration under `version` (ignored when it keeps its own)."""
        stem = self.stem or f"{version}_{self.slug}"
        if not self.reversible:
            return {f"{stem}{SUFFIXES['simple']}": self.up_sql}
        return {f"{stem}{SUFFIXES['up']}": self.up_sql, f"{stem}{SUFFIXES['down']}": self.down_sql}


@dataclass(frozen=True)
class Chunk:
    text: str
    no_transaction: bool


def split_steps(sql_text: str) -> list[Chunk]:
    """The text cut into steps: runs of transactional statements, and each autocommit one alone.

    The text is kept byte for byte (comments included); the server version is unknown, so
    ALTER TYPE … ADD VALUE counts as non-transactional, which works on every version.
    """
    statements = split_statements(sql_text)
    if not statements:
        return []
    bounds = chunk_bounds(sql_text, statements)
    chunks: list[Chunk] = []
    for statement, (start, end) in zip(statements, bounds, strict=True):
        piece = sql_text[start:end]
        no_transaction = autocommit_reason(statement.node, None) is not None
        if chunks and not no_transaction and not chunks[-1].no_transaction:
            chunks[-1] = Chunk(chunks[-1].text + piece, False)
        else:
            chunks.append(Chunk(piece, no_transaction))
    return chunks


def slugify(name: str, limit: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:limit].strip("_")
    return slug or "step"


def migrations_for_phases(phases: list[PhaseSql], *, title: str) -> tuple[list[NewMigration], list[str]]:
    """(migrations, warnings): one migration per step of each phase with SQL, in plan order."""
    migrations: list[NewMigration] = []
    warnings: list[str] = []
    for phase in phases:
        if phase.sqlx_origin:
            origin = phase.sqlx_origin
            migrations.append(
                NewMigration(
                    slug=slugify(phase.name),
                    up_sql=phase.up_sql,
                    down_sql=phase.down_sql,
                    version=int(origin["version"]),
                    stem=origin["stem"],
                    reversible=bool(origin.get("reversible", True)),
                )
            )
            continue
        ups, downs = _steps_of(phase, "up"), _steps_of(phase, "down")
        if not ups and not downs:
            warnings.append(
                f"phase {phase.position} {phase.name!r} ({phase.kind}) has no SQL and is not exported; "
                "run it with the planner at this point of the sequence"
            )
            continue
        count = max(len(ups), len(downs))
        # Pad at the front: the first migrations of the phase run up steps only after padding, and
        # down steps are consumed from the last migration backwards.
        ups = [None] * (count - len(ups)) + ups
        downs_by_migration = [None] * (count - len(downs)) + list(reversed(downs))
        base = slugify(phase.name)
        for index, (up, down) in enumerate(zip(ups, downs_by_migration, strict=True), start=1):
            header = _one_line(
                f"-- {title}: phase {phase.position} {phase.name!r} ({phase.kind})"
                + (f", step {index} of {count}" if count > 1 else "")
            )
            migrations.append(
                NewMigration(
                    slug=base if count == 1 else f"{base}_step_{index}",
                    up_sql=_file_text(header, up, "-- nothing to do in this step: its phase's down SQL is longer"),
                    down_sql=_file_text(
                        header,
                        down,
                        "-- no down SQL in this step: the phase's down SQL runs from a later step"
                        if phase.down_sql.strip()
                        else "-- the phase has no down SQL",
                    ),
                )
            )
    return migrations, warnings


def _steps_of(phase: PhaseSql, direction: str) -> list[Chunk]:
    try:
        return split_steps(getattr(phase, f"{direction}_sql"))
    except SqlSyntaxError as error:
        raise ExportError(f"phase {phase.position} {phase.name!r}, {direction} SQL: {error}") from None


def _file_text(header: str, chunk: Chunk | None, empty_note: str) -> str:
    if chunk is None:
        return f"{header}\n{empty_note}\n"
    body = chunk.text.strip("\n")
    if body.startswith(NO_TRANSACTION):  # imported from sqlx: ours goes first anyway
        body = body[len(NO_TRANSACTION) :].lstrip("\n")
    text = f"{header}\n{body}\n"
    # sqlx looks for the marker at byte 0 only.
    return f"{NO_TRANSACTION}\n{text}" if chunk.no_transaction else text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def assign_versions(existing: list[int], count: int, *, now: dt.datetime | None = None) -> list[str]:
    """Version strings for `count` new migrations after `existing`, the way `sqlx migrate add` would:
    sequential (`0004`) when the directory already is, else UTC timestamps one second apart."""
    if existing and uses_sequential_versions(existing):
        start = max(existing) + 1
        return [f"{start + offset:04}" for offset in range(count)]
    moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0, tzinfo=None)
    latest = max(existing, default=0)
    if latest >= int(moment.strftime(TIMESTAMP_FORMAT)):
        try:
            moment = dt.datetime.strptime(str(latest), TIMESTAMP_FORMAT) + dt.timedelta(seconds=1)
        except ValueError:  # the directory's versions are not timestamps: just count on from them
            return [str(latest + 1 + offset) for offset in range(count)]
    return [(moment + dt.timedelta(seconds=offset)).strftime(TIMESTAMP_FORMAT) for offset in range(count)]


def write_directory(directory: Path | str, migrations: list[NewMigration], *, now: dt.datetime | None = None):
    """Write the migrations into `directory` (created if missing) and return the new paths.

    Never overwrites a file: an imported migration whose files are already there with the same bytes
    is left as it is, any other existing name is an error. Everything is written to a temporary
    directory first and then moved in, so an error leaves the directory as it was.
    """
    directory = Path(directory)
    present = {m.version: m for m in read_directory(directory)} if directory.exists() else {}
    kept = [m.version for m in migrations if m.version is not None]
    new_versions = iter(assign_versions([*present, *kept], sum(m.version is None for m in migrations), now=now))
    files: dict[str, str] = {}
    previous = None
    for migration in migrations:
        version = str(migration.version) if migration.version is not None else next(new_versions)
        if previous is not None and int(version) <= previous:
            raise ExportError(
                f"migration {version}_{migration.slug} would run before version {previous}, which comes earlier "
                "in the plan: sqlx runs migrations by version, so move phases added to an imported plan after "
                "its imported ones"
            )
        previous = int(version)
        for name, text in migration.file_names(version).items():
            path = directory / name
            if migration.version is not None and path.exists() and path.read_bytes() == text.encode():
                continue  # the imported file itself, unchanged
            if path.exists():
                raise FileExistsError(f"{path}: already exists; the export never overwrites a file")
            if migration.version is not None and migration.version in present:
                other = present[migration.version].up.path.name
                raise ExportError(f"{path}: version {version} is already in the directory as {other}")
            files[name] = text
    if not files:
        return []

    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            _write_all(staging, files)
            staging.rename(directory)  # atomic: the directory appears complete or not at all
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return [directory / name for name in files]

    staging = Path(tempfile.mkdtemp(prefix=".sqlx-export-", dir=directory))
    moved: list[Path] = []
    try:
        _write_all(staging, files)
        for name in files:
            # link() fails if the name appeared meanwhile, where rename() would overwrite it.
            os.link(staging / name, directory / name)
            moved.append(directory / name)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return moved


def _write_all(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        with open(folder / name, "x", encoding="utf-8", newline="") as handle:
            handle.write(text)
