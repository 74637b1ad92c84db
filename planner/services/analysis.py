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
    from planner.pg.calibrate import calibrate
    from planner.pg.introspect import introspect

    try:
        conninfo = target.conninfo(connect_timeout=3)
        catalog = introspect(conninfo).catalog
    except (psycopg.Error, CredentialsError, OSError):
        # Remembered too: an unreachable target would otherwise cost every page its connect timeout.
        catalog = Catalog()
        _catalogs[target.pk] = (time.monotonic() + CATALOG_TTL_SECONDS, catalog)
        return catalog.copy()
    calibrate(conninfo).apply(catalog)  # measured once per target and process; defaults if it fails
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


class TargetUnavailable(Exception):
    """A target that is not configured, or cannot be read or traced now (message without password)."""


def find_target(name: str) -> TargetDatabase:
    try:
        return TargetDatabase.objects.get(name=name)
    except TargetDatabase.DoesNotExist:
        known = ", ".join(TargetDatabase.objects.values_list("name", flat=True)) or "none"
        raise TargetUnavailable(f"unknown target {name!r} (configured targets: {known})") from None


def _conninfo(target: TargetDatabase, **overrides) -> str:
    try:
        return target.conninfo(**overrides)
    except CredentialsError as error:
        raise TargetUnavailable(f"target {target.name}: {error}") from None


def live_catalog(target: TargetDatabase):
    """(Catalog, Throughput) read from the target now: its schema with row and size estimates, and
    throughput calibrated on its server (planner/pg/calibrate.py). Raises TargetUnavailable."""
    from planner.pg.calibrate import calibrate
    from planner.pg.connect import scrub
    from planner.pg.introspect import introspect

    conninfo = _conninfo(target)
    try:
        catalog = introspect(conninfo).catalog
    except psycopg.Error as error:
        message = scrub(str(error).strip(), conninfo)
        raise TargetUnavailable(f"target {target.name} ({target.display_dsn}) cannot be read: {message}") from None
    throughput = calibrate(conninfo)
    throughput.apply(catalog)
    return catalog, throughput


def trace_sql(target: TargetDatabase, sql_text: str, *, setup_sql: str = "", timeout_seconds: float = 30) -> list[dict]:
    """Measured locks, rewrites and scans per statement, from a run on a schema-only shadow copy of
    the target (never the target itself): [{"line", "locks", "rewrites", "scans", "traced", …}]."""
    from planner.pg.connect import scrub
    from planner.pg.shadow import ShadowError
    from planner.pg.trace import trace

    conninfo = _conninfo(target)
    try:
        traced = trace(conninfo, sql_text, setup_sql=setup_sql, timeout_seconds=timeout_seconds)
    except (ShadowError, psycopg.Error) as error:
        message = scrub(str(error).strip(), conninfo)
        raise TargetUnavailable(f"target {target.name}: cannot trace on a shadow copy: {message}") from None
    return [{"line": statement.line, **statement.to_dict()} for statement in traced]


TRACE_TIMEOUT_SECONDS = 15  # the page waits for the trace: dump, restore and each statement


def trace_phase(actor, phase: Phase, sql_text: str) -> dict:
    """Predicted (analysis) and measured (trace on a shadow copy) side by side, for the phase page.

    Earlier phases that have not run on the target yet are applied in the shadow first, unmeasured,
    as the analysis assumes them. The trace is audited: it creates and drops a database on the
    target's server. Returns the analysis report with `measured` and `differences` per statement,
    and `trace_error` when the trace could not run."""
    from planner.services import audit
    from planner.sql.measured import differences

    report = analyze_phase_sql(sql_text, phase=phase)
    target = phase.plan.target
    if target is None:
        report["trace_error"] = "This plan has no target database to copy."
        return report
    earlier = phase.plan.phases.filter(position__lt=phase.position).exclude(status=Phase.Status.SUCCEEDED)
    setup_sql = "\n".join(p.up_sql.rstrip().rstrip(";") + ";" for p in earlier.order_by("position") if p.up_sql.strip())
    try:
        traced = trace_sql(target, sql_text, setup_sql=setup_sql, timeout_seconds=TRACE_TIMEOUT_SECONDS)
    except TargetUnavailable as error:
        report["trace_error"] = str(error)
        audit.record(actor, "phase.traced", phase, ok=False)
        return report
    by_line = {entry["line"]: entry for entry in traced}
    for statement in report["statements"]:
        entry = by_line.get(statement["line"])
        statement["measured"] = {k: v for k, v in entry.items() if k != "line"} if entry else None
        statement["differences"] = differences(_Predicted(statement)) if entry else []
    audit.record(actor, "phase.traced", phase, ok=True, statements=len(traced))
    return report


class _Predicted:
    """A report dict seen as the StatementReport that planner.sql.measured.differences reads."""

    def __init__(self, statement: dict):
        self.locks, self.rewrites, self.scans = statement["locks"], statement["rewrites"], statement["scans"]
        self.measured = statement["measured"]
