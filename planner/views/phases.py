"""Editing a phase's SQL with the safety analysis refreshed as you type."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from planner.models import InvalidTransition, Phase
from planner.services import phases as phase_services
from planner.services import plans
from planner.services.analysis import analyze_phase_sql, trace_phase

MAX_SQL_CHARS = 200_000


@permission_required("planner.change_phase", raise_exception=True)
def phase_edit(request, phase_id: int):
    phase = get_object_or_404(Phase.objects.select_related("plan__target"), pk=phase_id)
    up_sql, down_sql, status = phase.up_sql, phase.down_sql, 200
    if request.method == "POST":
        up_sql = request.POST.get("up_sql", "")[:MAX_SQL_CHARS]
        down_sql = request.POST.get("down_sql", "")[:MAX_SQL_CHARS]
        try:
            plans.update_phase_sql(request.user, phase, up_sql=up_sql, down_sql=down_sql)
        except plans.InvalidPhaseSQL as error:
            messages.error(request, f"Nothing was saved. {error}")
            status = 400
        else:
            messages.success(request, "Phase SQL saved.")
            return redirect("plan-detail", plan_id=phase.plan_id)
    context = {
        "phase": phase,
        "up_sql": up_sql,
        "down_sql": down_sql,
        "analysis": analyze_phase_sql(up_sql, phase=phase),
    }
    return render(request, "planner/phase_edit.html", context, status=status)


@require_POST
@permission_required("planner.view_phase", raise_exception=True)
def analyze_preview(request, phase_id: int):
    """HTMX: the analysis partial for SQL being typed (nothing is saved)."""
    phase = get_object_or_404(Phase.objects.select_related("plan__target"), pk=phase_id)
    sql_text = request.POST.get("up_sql", "")[:MAX_SQL_CHARS]
    return render(
        request,
        "planner/partials/analysis.html",
        {"analysis": analyze_phase_sql(sql_text, phase=phase)},
    )


@require_POST
@permission_required("planner.view_phase", raise_exception=True)
def phase_trace(request, phase_id: int):
    """HTMX: run the SQL on a schema-only shadow copy of the target and show measured vs predicted.

    Synchronous (bounded by the trace's timeouts). The SQL being typed is traced only for users who
    may edit the phase; everyone else traces the saved SQL, so viewing never runs SQL of one's own.
    """
    phase = get_object_or_404(Phase.objects.select_related("plan__target"), pk=phase_id)
    sql_text = phase.up_sql
    if "up_sql" in request.POST and request.user.has_perm("planner.change_phase"):
        sql_text = request.POST["up_sql"][:MAX_SQL_CHARS]
    return render(
        request, "planner/partials/trace.html", {"phase": phase, "trace": trace_phase(request.user, phase, sql_text)}
    )


def _phase_action(request, phase_id: int, service, done: str, refused: str):
    phase = get_object_or_404(Phase, pk=phase_id)
    try:
        service(request.user, phase)
        messages.success(request, f"Phase {phase.position} {done}.")
    except InvalidTransition as error:
        messages.error(request, f"Phase {phase.position} was not {refused}: {error}")
    return redirect("plan-detail", plan_id=phase.plan_id)


@require_POST
@permission_required("planner.start_plan", raise_exception=True)
def phase_run(request, phase_id: int):
    """Run an expand/contract/custom phase's up SQL on its target (a worker does it)."""
    return _phase_action(
        request, phase_id, phase_services.request_run, "started: a worker is running its SQL", "started"
    )


@require_POST
@permission_required("planner.rollback_run", raise_exception=True)
def phase_rollback(request, phase_id: int):
    """Run a phase's down SQL (the latest phase first)."""
    return _phase_action(request, phase_id, phase_services.request_rollback, "is being rolled back", "rolled back")
