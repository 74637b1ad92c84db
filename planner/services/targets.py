"""Checking that a target database can be reached, and recording what it is."""

from __future__ import annotations

import psycopg
from django.utils import timezone

from planner import credentials
from planner.models import TargetDatabase
from planner.pg.connect import connect, scrub, server_version
from planner.services import audit


def check_connection(target: TargetDatabase, actor=None) -> TargetDatabase:
    """Connect to the target, store its server version or the (password-free) error, and audit it."""
    try:
        conninfo = target.conninfo()
        with connect(conninfo, statement_timeout_ms=5000) as connection:
            target.server_version = server_version(connection)
            target.last_check_error = ""
    except credentials.CredentialsError as error:
        target.last_check_error = str(error)
    except psycopg.Error as error:
        target.last_check_error = scrub(str(error).strip(), conninfo)[:1000]
    target.last_checked_at = timezone.now()
    target.save(update_fields=["server_version", "last_check_error", "last_checked_at"])
    audit.record(actor, "target.checked", target, ok=not target.last_check_error)
    return target
