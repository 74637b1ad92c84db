"""Run page and run controls. The page polls its own status partial until the run finishes."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from planner.models import BackfillRun, InvalidTransition, Phase
from planner.presenters import batch_charts, health_signals, run_progress
from planner.services import runs

ACTIONS = {
    "pause": (runs.pause, "pause_run"),
    "resume": (runs.resume, "resume_run"),
    "cancel": (runs.cancel, "cancel_run"),
    "rollback": (runs.roll_back, "rollback_run"),
}


def _run_context(request, run: BackfillRun) -> dict:
    """The buttons shown are those the user may press and the run's state allows."""
    allowed = {name: request.user.has_perm(f"planner.{perm}") for name, (_, perm) in ACTIONS.items()}
    S = BackfillRun.Status
    show = {
        "pause": allowed["pause"] and run.status in BackfillRun.ACTIVE,
        "resume": allowed["resume"] and run.status in (S.PAUSED, S.ERRORED),
        "cancel": allowed["cancel"] and run.status not in {*BackfillRun.FINISHED, S.CANCELLING},
        "rollback": allowed["rollback"]
        and runs.can_roll_back(run)
        and run.status in (S.SUCCEEDED, S.CANCELLED, S.PAUSED, S.ERRORED),
    }
    return {
        "run": run,
        "progress": run_progress(run),
        "show": show,
        "charts": batch_charts(run),
        "signals": health_signals(run),
        "holds": run.holds.order_by("-started_at")[:10],
    }


@permission_required("planner.view_plan", raise_exception=True)
def run_detail(request, run_id: int):
    run = get_object_or_404(BackfillRun.objects.select_related("phase__plan__target"), pk=run_id)
    context = _run_context(request, run)
    if request.htmx and request.htmx.target == "run-status":
        response = render(request, "planner/run_detail.html#run-status", context)
        if not run.is_active:
            # status 286 tells htmx to stop polling; the partial still replaces the old one
            stop = HttpResponseStopPolling()
            stop.content = response.content
            return stop
        return response
    return render(request, "planner/run_detail.html", context)


@require_POST
def run_action(request, run_id: int, action: str):
    if action not in ACTIONS:
        return HttpResponse(status=404)
    service, permission = ACTIONS[action]
    if not request.user.has_perm(f"planner.{permission}"):
        raise PermissionDenied
    run = get_object_or_404(BackfillRun, pk=run_id)
    status = 200
    try:
        run = service(request.user, run, reason=request.POST.get("reason", "").strip()[:500])
        messages.success(request, f"{action.capitalize()}: the run is now {run.get_status_display().lower()}.")
    except InvalidTransition as error:
        messages.error(request, str(error))
        status = 409
    if request.htmx:
        run.refresh_from_db()
        return render(request, "planner/run_detail.html#run-status", _run_context(request, run), status=status)
    return redirect("run-detail", run_id=run.pk)


@require_POST
@permission_required("planner.start_plan", raise_exception=True)
def start_backfill(request, phase_id: int):
    phase = get_object_or_404(Phase, pk=phase_id, kind=Phase.Kind.BACKFILL)
    try:
        slice_count = int(request.POST.get("slices", "1"))
    except ValueError:
        slice_count = 0
    if not 1 <= slice_count <= 64:
        messages.error(request, "Slices must be a whole number from 1 to 64.")
        return redirect("plan-detail", plan_id=phase.plan_id)
    try:
        run = runs.create_and_start(request.user, phase, slice_count=slice_count)
    except InvalidTransition as error:
        messages.error(request, f"The backfill was not started: {error}")
        return redirect("plan-detail", plan_id=phase.plan_id)
    return redirect("run-detail", run_id=run.pk)
