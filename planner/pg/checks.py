"""Validation queries (phase gates) run on a target: read-only, with a statement_timeout, one row.

A check passes when the first column of its only row equals the expected JSON value. Numbers are
compared as numbers (count(*) is a bigint, expected may be 0), booleans as booleans.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal

import psycopg

from planner.pg.connect import connect, scrub

CHECK_STATEMENT_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    value: object  # JSON-safe: what the query returned, or None
    expected: object
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _json_value(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def matches(value, expected) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value is expected
    return value == expected


def run_checks(
    conninfo: str, checks: list[dict], *, statement_timeout_ms: int = CHECK_STATEMENT_TIMEOUT_MS
) -> list[CheckResult]:
    """Run each check in its own read-only transaction; an unreachable target fails them all."""
    results = []
    try:
        connection = connect(conninfo, autocommit=True, statement_timeout_ms=statement_timeout_ms)
    except psycopg.Error as error:
        message = scrub(str(error).strip().splitlines()[0] if str(error).strip() else "cannot connect", conninfo)
        return [CheckResult(check["name"], False, None, check.get("expected"), message) for check in checks]
    with connection:
        for check in checks:
            expected = check.get("expected")
            try:
                with connection.transaction():
                    connection.execute("SET TRANSACTION READ ONLY")
                    rows = connection.execute(check["sql"]).fetchall()
            except psycopg.Error as error:
                message = scrub(str(error).strip().splitlines()[0], conninfo)
                results.append(CheckResult(check["name"], False, None, expected, message))
                continue
            if len(rows) != 1 or not rows[0]:
                results.append(CheckResult(check["name"], False, None, expected, f"returned {len(rows)} rows, not 1"))
                continue
            value = _json_value(rows[0][0])
            results.append(CheckResult(check["name"], matches(value, expected), value, expected))
    return results
