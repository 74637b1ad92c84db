"""Opening connections to target databases: always with timeouts, never leaking the password."""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import conninfo_to_dict

DEFAULT_LOCK_TIMEOUT_MS = 500
DEFAULT_STATEMENT_TIMEOUT_MS = 60_000


def connect(
    conninfo: str,
    *,
    autocommit: bool = True,
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> psycopg.Connection:
    """A connection whose every statement has a lock_timeout and a statement_timeout."""
    options = f"-c lock_timeout={int(lock_timeout_ms)} -c statement_timeout={int(statement_timeout_ms)}"
    return psycopg.connect(conninfo, autocommit=autocommit, options=options)


def scrub(message: str, conninfo: str) -> str:
    """Remove the password of `conninfo` from an error message before it is shown or stored."""
    try:
        password = conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        message = message.replace(str(password), "***")
    return re.sub(r"(password=)\S+", r"\1***", message)


def server_version(connection: psycopg.Connection) -> str:
    return connection.execute("SHOW server_version").fetchone()[0]
