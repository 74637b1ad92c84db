"""Query compatibility pages and actions: a target's application versions and their queries, the
"Check queries now" button of the plan page, and the override of a phase's "queries" gate.

Views stay thin: they read the form, call `planner.services.compat` (which checks permissions
again and audits), and report the outcome with messages before redirecting back. Uploaded sqlx
files are read in memory, so their number and size are capped here, before anything is read.
"""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from planner.models import ApplicationVersion, AppQuery, Phase, Plan, TargetDatabase
from planner.pg.stat_statements import StatStatementsUnavailable
from planner.services import compat

MAX_FILE_BYTES = 1024 * 1024  # a sqlx offline file is a few KB
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # the whole upload, read in memory
MAX_PASTED_CHARS = 200_000
SHOWN_PROBLEMS = 100  # skipped files/lines listed one message each; the audit log keeps them all
SHOWN_SQL_CHARS = 160
DEFAULT_STATEMENTS = 50  # pg_stat_statements' most called
# The check runs in the request: its schema copy gives up before gunicorn's 30 s worker timeout, so a
# slow copy ends as a stored, explained failure instead of a dropped connection.
WEB_CHECK_TIMEOUT_SECONDS = 12  # each of pg_dump and the restore


# -- the versions page -------------------------------------------------------------------------------


@permission_required("planner.view_applicationversion", raise_exception=True)
def target_versions(request, target_id: int):
    """A target's application versions, their queries, and (for release managers) the forms."""
    target = get_object_or_404(TargetDatabase, pk=target_id)
    listed_queries = AppQuery.objects.only("id", "version_id", "source", "origin", "sql")
    versions = list(
        ApplicationVersion.objects.filter(target=target).prefetch_related(Prefetch("queries", queryset=listed_queries))
    )
    source_labels = dict(AppQuery.Source.choices)
    for version in versions:
        version.listed_queries = list(version.queries.all())
        counts = Counter(query.source for query in version.listed_queries)
        version.counts_by_source = [
            (source_labels[source], counts[source]) for source in source_labels if counts[source]
        ]
        for query in version.listed_queries:
            query.first_line = next((line.strip() for line in query.sql.splitlines() if line.strip()), "")
    plans = Plan.objects.filter(target=target).only("id", "title", "status").order_by("-created_at", "-id")[:20]
    return render(
        request,
        "planner/target_versions.html",
        {
            "target": target,
            "versions": versions,
            "plans": plans,
            "statuses": ApplicationVersion.Status.choices,
            "can_manage": request.user.has_perm("planner.manage_versions"),
            "shown_sql_chars": SHOWN_SQL_CHARS,
            "max_file_kb": MAX_FILE_BYTES // 1024,
            "max_upload_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
        },
    )


def _to_versions(target_id: int, version: ApplicationVersion | None = None):
    anchor = f"#version-{version.pk}" if version is not None else ""
    return redirect(reverse("target-versions", args=[target_id]) + anchor)


def _import(request, version: ApplicationVersion, what: str, run, nothing: str = "nothing imported"):
    """Run one import of queries; its refusal or its summary becomes messages on the versions page."""
    try:
        summary = run()
    except compat.CompatError as error:
        messages.error(request, f"{version.name}: {nothing}: {error}")
    except StatStatementsUnavailable as error:
        messages.error(request, f"{version.name}: {nothing} from {version.target.name}: {error}")
    else:
        _report_import(request, version, what, summary)
    return _to_versions(version.target_id, version)


def _report_import(request, version: ApplicationVersion, what: str, summary: compat.ImportSummary) -> None:
    """The summary as one message, then every skipped file or line with its reason."""
    level = messages.warning if summary.problems else messages.success
    level(request, f"{version.name}, {what}: {summary.as_text()}.")
    for origin, why in summary.problems[:SHOWN_PROBLEMS]:
        messages.warning(request, f"Skipped {origin}: {why}")
    hidden = len(summary.problems) - SHOWN_PROBLEMS
    if hidden > 0:
        messages.warning(request, f"… and {hidden} more skipped (the audit log lists them all).")


@require_POST
@permission_required("planner.manage_versions", raise_exception=True)
def version_add(request, target_id: int):
    target = get_object_or_404(TargetDatabase, pk=target_id)
    name = request.POST.get("name", "")
    status = request.POST.get("status", ApplicationVersion.Status.DEPLOYED)
    try:
        version = compat.add_version(request.user, target, name, status)
    except compat.CompatError as error:
        messages.error(request, f"No version added: {error}")
        return _to_versions(target.pk)
    messages.success(request, f"Version {version.name} added ({version.get_status_display()}).")
    return _to_versions(target.pk, version)


@require_POST
@permission_required("planner.manage_versions", raise_exception=True)
def version_status(request, version_id: int):
    version = get_object_or_404(ApplicationVersion, pk=version_id)
    reason = request.POST.get("reason", "").strip()[:500]
    try:
        changed = compat.set_version_status(request.user, version, request.POST.get("status", ""), reason=reason)
    except compat.CompatError as error:
        messages.error(request, f"{version.name} unchanged: {error}")
    else:
        messages.success(request, f"{changed.name} is now {changed.get_status_display()}.")
    return _to_versions(version.target_id, version)


@require_POST
@permission_required("planner.manage_versions", raise_exception=True)
def version_upload_sqlx(request, version_id: int):
    version = get_object_or_404(ApplicationVersion, pk=version_id)
    uploads = request.FILES.getlist("files")
    if not uploads:
        messages.error(request, f"{version.name}: choose your .sqlx directory, or its query-*.json files.")
        return _to_versions(version.target_id, version)
    too_big = [upload.name for upload in uploads if upload.size > MAX_FILE_BYTES]
    total = sum(upload.size for upload in uploads)
    if too_big or total > MAX_UPLOAD_BYTES:
        why = (
            f"{', '.join(too_big[:5])} {'is' if len(too_big) == 1 else 'are'} over {MAX_FILE_BYTES // 1024} KB "
            "(sqlx offline files are a few KB each)"
            if too_big
            else f"the files add up to {total / 1024 / 1024:.1f} MB, over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
        )
        messages.error(request, f"{version.name}: nothing imported: {why}.")
        return _to_versions(version.target_id, version)
    files = [(upload.name, upload.read()) for upload in uploads]
    return _import(
        request, version, "sqlx offline files", lambda: compat.import_sqlx_files(request.user, version, files)
    )


@require_POST
@permission_required("planner.manage_versions", raise_exception=True)
def version_paste(request, version_id: int):
    version = get_object_or_404(ApplicationVersion, pk=version_id)
    text = request.POST.get("queries", "")
    if len(text) > MAX_PASTED_CHARS:
        messages.error(request, f"{version.name}: nothing added: paste at most {MAX_PASTED_CHARS:,} characters.")
        return _to_versions(version.target_id, version)
    return _import(
        request, version, "pasted queries", lambda: compat.add_pasted(request.user, version, text), "nothing added"
    )


@require_POST
@permission_required("planner.manage_versions", raise_exception=True)
def version_import_stat_statements(request, version_id: int):
    version = get_object_or_404(ApplicationVersion.objects.select_related("target"), pk=version_id)
    try:
        limit = int(request.POST.get("limit") or DEFAULT_STATEMENTS)
    except ValueError:
        messages.error(request, f"{version.name}: nothing imported: limit: give a whole number of statements")
        return _to_versions(version.target_id, version)
    return _import(
        request, version, "pg_stat_statements", lambda: compat.import_stat_statements(request.user, version, limit)
    )


@require_POST
@permission_required("planner.manage_versions", raise_exception=True)
def query_delete(request, query_id: int):
    query = get_object_or_404(AppQuery.objects.select_related("version"), pk=query_id)
    version = query.version
    compat.delete_query(request.user, query)
    messages.success(request, f"{version.name}: removed {query.origin}.")
    return _to_versions(version.target_id, version)


# -- the plan page -----------------------------------------------------------------------------------


@require_POST
@permission_required("planner.add_compatibilityreport", raise_exception=True)
def plan_check_queries(request, plan_id: int):
    """Runs the check now, in the request: it builds a schema-only shadow copy of the target."""
    plan = get_object_or_404(Plan.objects.select_related("target"), pk=plan_id)
    report = compat.check_plan(request.user, plan, timeout=WEB_CHECK_TIMEOUT_SECONDS)
    if report.error:
        messages.error(request, f"Queries were not checked: {report.error}")
    else:
        broken = compat.broken_count(report)
        if broken:
            messages.warning(request, f"Queries checked: {broken} break somewhere in the plan; see the matrix.")
        else:
            messages.success(request, "Queries checked: every query works before the plan and after each phase.")
    return redirect(reverse("plan-detail", args=[plan.pk]) + "#query-compatibility")


def _to_phase(phase: Phase):
    return redirect(reverse("plan-detail", args=[phase.plan_id]) + f"#phase-{phase.pk}")


@require_POST
@permission_required("planner.approve_plan", raise_exception=True)
def phase_override_compat(request, phase_id: int):
    phase = get_object_or_404(Phase.objects.select_related("plan"), pk=phase_id)
    try:
        compat.override(request.user, phase, request.POST.get("reason", ""))
    except compat.CompatError as error:
        messages.error(request, f"Phase {phase.position} not overridden: {error}")
    else:
        messages.success(request, f"Phase {phase.position}: the queries gate is overridden.")
    return _to_phase(phase)


@require_POST
@permission_required("planner.approve_plan", raise_exception=True)
def phase_withdraw_compat_override(request, phase_id: int):
    phase = get_object_or_404(Phase.objects.select_related("plan"), pk=phase_id)
    try:
        compat.withdraw_override(request.user, phase)
    except compat.CompatError as error:
        messages.error(request, f"Phase {phase.position}: {error}")
    else:
        messages.success(request, f"Phase {phase.position}: the queries gate override is withdrawn.")
    return _to_phase(phase)
