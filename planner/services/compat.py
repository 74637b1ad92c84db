"""Query compatibility: application versions and their queries, the check of a plan, and its gate.

Queries come from sqlx offline data (`.sqlx/query-*.json`), the target's pg_stat_statements, or
are pasted; each belongs to an application version of the target. `check_plan` runs every query
against the schema before the plan and after each phase (`planner/pg/compat.py`) and stores a
report. `gate` closes a phase while a query of a deployed version breaks on the schema it leaves,
unless a release manager overrode it with a reason. Every change is checked and audited.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from planner.models import ApplicationVersion, AppQuery, CompatibilityReport, Phase, Plan, TargetDatabase
from planner.pg import compat
from planner.pg.shadow import ShadowError
from planner.services import audit
from planner.services.permissions import require
from planner.sql.queries import QueryProblem, kind_of, reads_application_tables, split_pasted
from planner.sqlx import offline

V = ApplicationVersion.Status
SHOWN_SQL_CHARS = 300
CHECK_TIMEOUT_SECONDS = 60  # for the schema copy (pg_dump, restore); a web request passes less


class CompatError(ValueError):
    """Bad input for a compatibility action; the message names the field or file."""


@dataclass
class ImportSummary:
    added: int = 0
    unchanged: int = 0
    removed: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (origin, why it was skipped)

    def as_text(self) -> str:
        text = f"{self.added} added, {self.unchanged} unchanged, {self.removed} removed"
        return text + (f"; {len(self.problems)} skipped" if self.problems else "")


# -- versions ----------------------------------------------------------------------------------------


def add_version(actor, target: TargetDatabase, name: str, status: str = V.DEPLOYED) -> ApplicationVersion:
    require(actor, "manage_versions")
    name = name.strip()
    if not name or len(name) > 100:
        raise CompatError("name: give the version's name (1–100 characters), e.g. app-v1")
    if status not in V.values:
        raise CompatError(f"status: must be one of {', '.join(V.values)}")
    if ApplicationVersion.objects.filter(target=target, name=name).exists():
        raise CompatError(f"name: target {target.name} already has a version named {name!r}")
    with transaction.atomic():
        version = ApplicationVersion.objects.create(target=target, name=name, status=status)
        audit.record(actor, "version.added", version, target=target.name, status=status)
    return version


def set_version_status(actor, version: ApplicationVersion, status: str, *, reason: str = "") -> ApplicationVersion:
    """Mark a version planned, deployed or retired (a retired version no longer gates phases)."""
    require(actor, "manage_versions")
    if status not in V.values:
        raise CompatError(f"status: must be one of {', '.join(V.values)}")
    with transaction.atomic():
        locked = ApplicationVersion.objects.select_for_update().get(pk=version.pk)
        previous = locked.status
        if previous == status:
            return locked
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
        audit.record(actor, f"version.{status}", locked, previous=previous, reason=reason[:500])
    return locked


# -- queries -----------------------------------------------------------------------------------------


def _replace(version: ApplicationVersion, source: str, wanted: dict[str, dict]) -> ImportSummary:
    """Make `version`'s queries of `source` exactly `wanted` ({hash: fields}); one transaction."""
    summary = ImportSummary()
    existing = {q.query_hash: q for q in version.queries.filter(source=source)}
    others = set(version.queries.exclude(source=source).values_list("query_hash", flat=True))
    stale = [q.pk for digest, q in existing.items() if digest not in wanted]
    summary.removed = len(stale)
    AppQuery.objects.filter(pk__in=stale).delete()
    for digest, fields in wanted.items():
        if digest in existing:
            current = existing[digest]
            if current.describe != fields.get("describe") or current.origin != fields["origin"]:
                current.describe, current.origin = fields.get("describe"), fields["origin"]
                current.save(update_fields=["describe", "origin"])
            summary.unchanged += 1
        elif digest in others:
            summary.unchanged += 1  # the same text from another source is checked once
        else:
            AppQuery.objects.create(version=version, source=source, query_hash=digest, **fields)
            summary.added += 1
    return summary


def checkable(data: offline.OfflineData) -> tuple[list[offline.OfflineQuery], list[tuple[str, str]]]:
    """The queries of offline data PostgreSQL can check, and (file, why) for every file skipped."""
    queries, problems = [], [(p.origin, p.message) for p in data.problems]
    for query in data.queries:
        try:
            kind_of(query.sql)
        except QueryProblem as error:
            problems.append((query.origin, f"the query {error}"))
        else:
            queries.append(query)
    return queries, problems


def import_sqlx_files(actor, version: ApplicationVersion, files: list[tuple[str, bytes]]) -> ImportSummary:
    """The version's sqlx queries become those of `files` (named contents of a `.sqlx` directory).

    A file that is not valid offline data, or whose query PostgreSQL cannot parse, is skipped and
    named in the summary; the others are imported."""
    require(actor, "manage_versions")
    data = offline.read_files(files)
    queries, problems = checkable(data)
    wanted = {q.query_hash: {"origin": q.origin, "sql": q.sql, "describe": q.describe()} for q in queries}
    if not wanted and not problems:
        raise CompatError("files: no query-*.json file found; upload the files of your .sqlx directory")
    with transaction.atomic():
        summary = _replace(version, AppQuery.Source.SQLX, wanted)
        summary.problems = problems
        audit.record(
            actor, "version.queries_imported", version, source="sqlx", summary=summary.as_text(), skipped=problems
        )
    return summary


def import_sqlx_directory(actor, version: ApplicationVersion, directory: Path | str) -> ImportSummary:
    try:
        data = [(p.name, p.read_bytes()) for p in Path(directory).iterdir() if p.is_file()]
    except OSError as error:
        raise CompatError(f"{directory}: cannot read the directory ({error.strerror})") from None
    return import_sqlx_files(actor, version, data)


def import_stat_statements(actor, version: ApplicationVersion, limit: int = 50) -> ImportSummary:
    """The version's pg_stat_statements queries become the target's `limit` most called ones."""
    from planner.pg.stat_statements import StatStatementsUnavailable, top_statements

    require(actor, "manage_versions")
    if not 1 <= limit <= 1000:
        raise CompatError("limit: between 1 and 1000 statements")
    try:
        statements = top_statements(version.target.conninfo(), limit)
    except StatStatementsUnavailable as error:
        # The attempt read the target, so it leaves a trace too; the caller shows the message.
        audit.record(actor, "version.queries_import_failed", version, source="pg_stat_statements", error=str(error))
        raise
    wanted, problems = {}, []
    for statement in statements:
        origin = f"queryid {statement.queryid} ({statement.calls} calls)"
        if not reads_application_tables(statement.sql):
            continue
        try:
            kind_of(statement.sql)
        except QueryProblem:
            continue  # SET, BEGIN, DDL …: not the application's queries
        wanted[offline.query_hash(statement.sql)] = {"origin": origin, "sql": statement.sql, "describe": None}
    with transaction.atomic():
        summary = _replace(version, AppQuery.Source.PG_STAT_STATEMENTS, wanted)
        summary.problems = problems
        audit.record(actor, "version.queries_imported", version, source="pg_stat_statements", summary=summary.as_text())
    return summary


def add_pasted(actor, version: ApplicationVersion, text: str) -> ImportSummary:
    """Add the queries of a pasted text (one or more statements); the others are named by line."""
    require(actor, "manage_versions")
    if not text.strip():
        raise CompatError("queries: paste at least one query")
    summary = ImportSummary()
    with transaction.atomic():
        known = set(version.queries.values_list("query_hash", flat=True))
        for pasted in split_pasted(text):
            origin = f"pasted, line {pasted.line}"
            if pasted.problem:
                summary.problems.append((origin, pasted.problem))
                continue
            digest = offline.query_hash(pasted.sql)
            if digest in known:
                summary.unchanged += 1
                continue
            AppQuery.objects.create(
                version=version, source=AppQuery.Source.PASTED, origin=origin, sql=pasted.sql, query_hash=digest
            )
            known.add(digest)
            summary.added += 1
        audit.record(actor, "version.queries_added", version, summary=summary.as_text(), skipped=summary.problems)
    return summary


def delete_query(actor, query: AppQuery) -> None:
    require(actor, "manage_versions")
    with transaction.atomic():
        audit.record(actor, "version.query_removed", query.version, origin=query.origin)
        query.delete()


# -- the check ---------------------------------------------------------------------------------------


def plan_queries(plan: Plan) -> list[AppQuery]:
    return list(
        AppQuery.objects.filter(version__target_id=plan.target_id)
        .select_related("version")
        .order_by("version__created_at", "version_id", "origin", "pk")
    )


def fingerprint(phases: list[Phase], queries: list[AppQuery]) -> str:
    """Changes when a phase's SQL or the set of queries changes (not when a phase runs)."""
    material = {
        "phases": [[p.pk, p.position, p.kind, p.up_sql, p.down_sql] for p in phases],
        "queries": sorted([q.pk, q.query_hash, q.version_id] for q in queries),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def steps_of(phases: list[Phase]) -> list[compat.Step]:
    return [
        compat.Step(
            key=f"phase-{p.pk}",
            position=p.position,
            name=p.name,
            kind=p.kind,
            up_sql=p.up_sql if p.kind != Phase.Kind.BACKFILL else "",
            down_sql=p.down_sql if p.kind != Phase.Kind.BACKFILL else "",
            done=p.status == Phase.Status.SUCCEEDED,
        )
        for p in phases
    ]


@dataclass
class ExtraQueries:
    """Queries checked without being stored (`check-queries --sqlx-dir`): a version name and status."""

    version_name: str
    status: str
    queries: list[offline.OfflineQuery]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, why it was skipped)


def run_check(plan: Plan, *, extra: ExtraQueries | None = None, timeout: float = CHECK_TIMEOUT_SECONDS) -> dict:
    """Check the plan's queries (and `extra`) on a shadow copy; the result as plain data, not stored."""
    phases = list(plan.phases.order_by("position"))
    stored = plan_queries(plan)
    described = {}
    for query in stored:
        described[str(query.pk)] = {
            "version": query.version_id,
            "version_name": query.version.name,
            "origin": query.origin,
            "sql": query.sql[:SHOWN_SQL_CHARS],
        }
    to_check = [compat.Query(str(q.pk), q.sql, q.describe) for q in stored]
    if extra is not None:
        replaced = {str(q.pk) for q in stored if q.version.name == extra.version_name}
        to_check = [q for q in to_check if q.key not in replaced]
        described = {key: value for key, value in described.items() if key not in replaced}
        for query in extra.queries:
            key = f"file:{query.origin}"
            to_check.append(compat.Query(key, query.sql, query.describe()))
            described[key] = {
                "version": None,
                "version_name": extra.version_name,
                "origin": query.origin,
                "sql": query.sql[:SHOWN_SQL_CHARS],
            }
    result = {"fingerprint": fingerprint(phases, stored), "queries": described, "boundaries": [], "results": {}}
    if not to_check:
        result["error"] = "no queries recorded for this target's application versions"
        return result
    try:
        checked = compat.check_plan(plan.target.conninfo(), steps_of(phases), to_check, timeout=timeout)
    except ShadowError as error:
        result["error"] = f"could not make a shadow copy of the target: {error}"
        return result
    result.update(checked, error="")
    return result


def check_plan(actor, plan: Plan, *, timeout: float = CHECK_TIMEOUT_SECONDS) -> CompatibilityReport:
    """Check every recorded query against every phase boundary and store the report; audited."""
    require(actor, "add_compatibilityreport")
    outcome = run_check(plan, timeout=timeout)
    with transaction.atomic():
        report = CompatibilityReport.objects.create(
            plan=plan,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            fingerprint=outcome["fingerprint"],
            boundaries=outcome["boundaries"],
            queries=outcome["queries"],
            results=outcome["results"],
            error=outcome.get("error", ""),
        )
        broken = broken_count(report)
        audit.record(actor, "plan.queries_checked", plan, report=report.pk, broken=broken, error=report.error)
    return report


def broken_count(report: CompatibilityReport) -> int:
    """Breaking (query, boundary) pairs of a report, whatever the versions' status."""
    return sum(len(cell["broken"]) for row in matrix_of(report_data(report)) for cell in row["cells"])


def report_data(report: CompatibilityReport) -> dict:
    return {
        "fingerprint": report.fingerprint,
        "boundaries": report.boundaries,
        "queries": report.queries,
        "results": report.results,
        "error": report.error,
    }


# -- reading a report --------------------------------------------------------------------------------


def matrix_of(data: dict, versions: list[ApplicationVersion] | None = None) -> list[dict]:
    """Rows per application version, one cell per boundary: state and the queries that break."""
    statuses = {v.name: v.status for v in versions or []}
    by_version: dict[str, list[str]] = {}
    for key, info in data["queries"].items():
        by_version.setdefault(info["version_name"], []).append(key)
    rows = []
    for name, keys in by_version.items():
        cells = []
        for boundary in data["boundaries"]:
            results = data["results"].get(boundary["key"])
            if results is None:
                cells.append({"boundary": boundary, "state": "error", "broken": [], "warnings": [], "ok": 0})
                continue
            broken, warnings, ok = [], [], 0
            for key in keys:
                outcome = results.get(key)
                if outcome is None:
                    continue
                entry = {"origin": data["queries"][key]["origin"], "sql": data["queries"][key]["sql"]}
                if outcome["state"] == "broken":
                    broken.append({**entry, "reasons": outcome["reasons"]})
                else:
                    ok += 1
                    if outcome["warnings"]:
                        warnings.append({**entry, "reasons": outcome["warnings"]})
            state = "broken" if broken else "warning" if warnings else "ok"
            cells.append({"boundary": boundary, "state": state, "broken": broken, "warnings": warnings, "ok": ok})
        rows.append({"version": name, "status": statuses.get(name, ""), "queries": len(keys), "cells": cells})
    return rows


@dataclass
class PlanCompatibility:
    """What the plan page and the gate need: the latest report, whether it is current, the matrix."""

    report: CompatibilityReport | None
    current: bool
    versions: list[ApplicationVersion]
    query_count: int
    matrix: list[dict]

    @property
    def applies(self) -> bool:
        """The gate only exists once the target has queries recorded."""
        return self.query_count > 0


def state_of(plan: Plan) -> PlanCompatibility:
    """Cached on the plan object for one request (the gate asks for every phase)."""
    cached = getattr(plan, "_compat_state", None)
    if cached is not None:
        return cached
    versions = list(ApplicationVersion.objects.filter(target_id=plan.target_id))
    queries = plan_queries(plan)
    report = plan.compat_reports.first()
    current = report is not None and report.fingerprint == fingerprint(list(plan.phases.order_by("position")), queries)
    matrix = matrix_of(report_data(report), versions) if report else []
    state = PlanCompatibility(report, current, versions, len(queries), matrix)
    plan._compat_state = state
    return state


def breaking_at(state: PlanCompatibility, phase: Phase) -> list[tuple[str, dict]]:
    """(version name, broken query) for deployed versions whose queries break after `phase`."""
    deployed = {v.name for v in state.versions if v.gates_phases}
    found = []
    for row in state.matrix:
        if row["version"] not in deployed:
            continue
        for cell in row["cells"]:
            if cell["boundary"]["key"] == f"phase-{phase.pk}":
                found += [(row["version"], query) for query in cell["broken"]]
    return found


def gate(phase: Phase):
    """The "queries" gate of `phase`, or None when it does not apply (no queries, a backfill)."""
    from planner.services.gates import Gate

    if phase.kind == Phase.Kind.BACKFILL or not phase.up_sql.strip():
        return None
    state = state_of(phase.plan)
    if not state.applies:
        return None
    label = "Queries of deployed versions work"
    if phase.compat_override_reason:
        who = phase.compat_override_by.get_username() if phase.compat_override_by else "?"
        return Gate("queries", label, True, f"overridden by {who}: {phase.compat_override_reason}")
    if state.report is None:
        return Gate("queries", label, False, "not checked yet: Check queries on the plan page")
    if not state.current:
        return Gate("queries", label, False, "phases or queries changed since the last check: check again")
    if state.report.error:
        return Gate("queries", label, False, f"the last check failed: {state.report.error}")
    boundary = next((b for b in state.report.boundaries if b["key"] == f"phase-{phase.pk}"), None)
    if boundary is None or boundary.get("error"):
        return Gate("queries", label, False, (boundary or {}).get("error") or "this phase was not checked")
    broken = breaking_at(state, phase)
    if broken:
        version, first = broken[0]
        names = sorted({name for name, _ in broken})
        return Gate(
            "queries",
            label,
            False,
            f"{len(broken)} quer{'y' if len(broken) == 1 else 'ies'} of {', '.join(names)} (deployed) break after "
            f"this phase, e.g. {first['origin']}: {first['reasons'][0]}; retire the version or override with a reason",
        )
    deployed = [v.name for v in state.versions if v.gates_phases]
    return Gate("queries", label, True, f"every query of {', '.join(deployed) or 'no deployed version'} works")


def override(actor, phase: Phase, reason: str) -> Phase:
    """Let `phase` start although deployed queries break on it; a release manager's recorded call."""
    require(actor, "approve_plan")
    reason = reason.strip()
    if not reason:
        raise CompatError("reason: say why the phase may break a deployed version's queries")
    with transaction.atomic():
        locked = Phase.objects.select_for_update().get(pk=phase.pk)
        locked.compat_override_reason = reason[:1000]
        locked.compat_override_by, locked.compat_override_at = actor, timezone.now()
        locked.save(update_fields=["compat_override_reason", "compat_override_by", "compat_override_at", "updated_at"])
        broken = [f"{name}: {query['origin']}" for name, query in breaking_at(state_of(phase.plan), phase)]
        audit.record(actor, "phase.compatibility_overridden", locked, reason=reason[:1000], breaking=broken[:50])
    return locked


def withdraw_override(actor, phase: Phase) -> Phase:
    require(actor, "approve_plan")
    with transaction.atomic():
        locked = Phase.objects.select_for_update().get(pk=phase.pk)
        if not locked.compat_override_reason:
            return locked
        locked.compat_override_reason, locked.compat_override_by, locked.compat_override_at = "", None, None
        locked.save(update_fields=["compat_override_reason", "compat_override_by", "compat_override_at", "updated_at"])
        audit.record(actor, "phase.compatibility_override_withdrawn", locked)
    return locked
