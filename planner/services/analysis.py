"""Safety analysis of a phase's SQL for pages and services (the analyzer itself is planner/sql/)."""

from __future__ import annotations

import time

import psycopg

from planner.credentials import CredentialsError
from planner.models import Phase, TargetDatabase

DEFAULT_PG_VERSION = 16
CATALOG_TTL_SECONDS = 30.0
_catalogs: dict[int, tuple[float, object]] = {}  # per process: target id → (expires, Catalog)


def target_catalog(target: TargetDatabase | None):
    """The target's live schema as the analyzer's Catalog (sizes make tiny-table findings milder),
    cached briefly because the editor re-analyses on every pause in typing. An empty Catalog when
    the target cannot be read: the analysis then assumes every table exists and is large."""
    from planner.sql.catalog import Catalog

    if target is None or target.pk is None:
        return Catalog()
    cached = _catalogs.get(target.pk)
    if cached and cached[0] > time.monotonic():
        return cached[1].copy()
    from planner.pg.introspect import introspect

    try:
        catalog = introspect(target.conninfo(connect_timeout=3)).catalog
    except (psycopg.Error, CredentialsError, OSError):
        return Catalog()
    _catalogs[target.pk] = (time.monotonic() + CATALOG_TTL_SECONDS, catalog)
    return catalog.copy()


def catalog_before(phase: Phase):
    """The schema as this phase will find it: the target's, with every earlier phase's up SQL applied."""
    from planner.recipes.checks import advance_catalog

    catalog = target_catalog(phase.plan.target)
    for earlier in phase.plan.phases.filter(position__lt=phase.position).order_by("position"):
        if earlier.up_sql.strip():
            advance_catalog(catalog, earlier.up_sql)
    return catalog


def pg_version_of(target: TargetDatabase | None) -> int:
    """The target's major version when a connection check has recorded it, else a modern default."""
    if target and target.server_version:
        try:
            return int(target.server_version.split(".")[0].split()[0])
        except ValueError:
            pass
    return DEFAULT_PG_VERSION


def analyze_phase_sql(
    sql_text: str, *, target: TargetDatabase | None = None, phase: Phase | None = None, path: str = "phase.sql"
) -> dict:
    """The analyzer's JSON-contract report for one file, plus a summary for templates.

    Given the phase, the SQL is judged against the schema the earlier phases leave behind (a SET NOT
    NULL is safe after a phase validated CHECK (col IS NOT NULL)); given only a target, against it.
    """
    from planner.sql.analysis import analyze_text
    from planner.sql.catalog import Catalog

    if phase is not None:
        target = phase.plan.target
        catalog = catalog_before(phase)
    else:
        catalog = target_catalog(target) if target is not None else Catalog()
    pg_version = catalog.pg_version or pg_version_of(target)
    report = analyze_text(sql_text, path=path, pg_version=pg_version, catalog=catalog).to_dict()
    findings = [finding for statement in report["statements"] for finding in statement["findings"]]
    report["summary"] = {
        "errors": sum(f["severity"] == "error" for f in findings),
        "warnings": sum(f["severity"] == "warning" for f in findings),
        "blocking": sum(bool(statement["blocking"]) for statement in report["statements"]),
        "syntax_errors": [f for f in findings if f["rule"] == "syntax-error"],
    }
    return report
