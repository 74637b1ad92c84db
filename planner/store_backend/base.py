"""The embedded-store backend: Django's PostgreSQL backend plus "start the server if needed"."""

from __future__ import annotations

import atexit
import threading

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base as postgresql

from planner.embedded import EmbeddedPostgres, SharedUse

_start_lock = threading.Lock()
_started_port: int | None = None


def ensure_embedded_store(database_name: str) -> int:
    """Start the embedded server (once per process) and create the store database; return the port."""
    global _started_port
    with _start_lock:
        if _started_port is not None:
            return _started_port
        server = EmbeddedPostgres(settings.DATA_ROOT)
        if server.running_pid() is None or SharedUse(server, "postgres").users_file.exists():
            # Started here, or shared with other processes that registered: stop with the last of us.
            shared = SharedUse(server, "postgres")
            shared.acquire()
            atexit.register(shared.release)
        with psycopg.connect(server.url(), autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database_name]).fetchone()
            if not exists:
                from psycopg import sql

                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database_name)))
        _started_port = server.port()
        return _started_port


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def get_connection_params(self):
        port = ensure_embedded_store(settings.DATABASES["default"]["NAME"])
        self.settings_dict["PORT"] = str(port)
        return super().get_connection_params()
