"""Scheduling and signing off phases from the plan page, and the agenda of upcoming phases.

Windows are typed in the viewer's timezone: the form carries the browser's IANA timezone in `tz`
(filled by static/planner/localtime.js; without JavaScript it stays UTC and the form says so) and
the store keeps UTC.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db.models import F, Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from planner.models import InvalidTransition, Phase, Plan
from planner.services import gates, schedule

# Not needed by gates or the agenda; SQL texts and logs can be large.
HEAVY_FIELDS = ("up_sql", "down_sql", "execution_log", "runbook", "backfill_spec")


class BadWindow(ValueError):
    pass


def _parse(value: str, zone: ZoneInfo, label: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise BadWindow(f"{label}: {value!r} is not a date and time like 2030-01-31T22:00") from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=zone)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadWindow(f"unknown timezone {name[:60]!r}") from None


def _back(phase: Phase):
    return redirect(f"/plans/{phase.plan_id}/#phase-{phase.pk}")


def _act(request, phase: Phase, action, done: str):
    """Run a service; its refusal (a closed state, a bad value) is shown on the plan page."""
    try:
        action()
    except (InvalidTransition, ValueError) as error:
        messages.error(request, f"Phase {phase.position}: {error}")
    else:
        messages.success(request, f"Phase {phase.position} {done}.")
    return _back(phase)


@require_POST
@permission_required("planner.schedule_plan", raise_exception=True)
def phase_schedule(request, phase_id: int):
    phase = get_object_or_404(Phase, pk=phase_id)
    try:
        zone = _zone(request.POST.get("tz", "UTC"))
        not_before = _parse(request.POST.get("not_before", ""), zone, "not before")
        not_after = _parse(request.POST.get("not_after", ""), zone, "not after")
    except BadWindow as error:
        messages.error(request, f"Phase {phase.position} was not scheduled: {error}")
        return _back(phase)
    reason = request.POST.get("reason", "").strip()[:500]
    return _act(
        request,
        phase,
        lambda: schedule.set_window(request.user, phase, not_before=not_before, not_after=not_after, reason=reason),
        "scheduled" if (not_before or not_after) else "unscheduled",
    )


@require_POST
@permission_required("planner.approve_plan", raise_exception=True)
def phase_approve(request, phase_id: int):
    phase = get_object_or_404(Phase, pk=phase_id)
    reason = request.POST.get("reason", "").strip()[:500]
    return _act(request, phase, lambda: schedule.approve(request.user, phase, reason=reason), "approved")


@require_POST
@permission_required("planner.approve_plan", raise_exception=True)
def phase_withdraw_approval(request, phase_id: int):
    phase = get_object_or_404(Phase, pk=phase_id)
    return _act(request, phase, lambda: schedule.withdraw_approval(request.user, phase), "is no longer approved")


@require_POST
@permission_required("planner.approve_plan", raise_exception=True)
def phase_confirm_deploy(request, phase_id: int):
    phase = get_object_or_404(Phase, pk=phase_id)
    version = request.POST.get("version", "")
    return _act(
        request,
        phase,
        lambda: schedule.confirm_deployed(request.user, phase, version=version),
        "has its deployment confirmed",
    )


@require_POST
@permission_required("planner.schedule_plan", raise_exception=True)
def phase_check_validations(request, phase_id: int):
    phase = get_object_or_404(Phase, pk=phase_id)
    results = []
    response = _act(
        request, phase, lambda: results.extend(schedule.check_validations(request.user, phase)), "validations ran"
    )
    failed = [result["name"] for result in results if not result["ok"]]
    if failed:
        messages.warning(request, f"Failing: {', '.join(failed)}")
    return response


AGENDA_PER_PAGE = 50


@permission_required("planner.view_plan", raise_exception=True)
def agenda(request):
    """Upcoming phases across all plans: pending, with a window, oldest start first."""
    upcoming = (
        Phase.objects.filter(status=Phase.Status.PENDING, plan__status__in=schedule.ACTIVE_PLANS)
        .exclude(not_before=None, not_after=None)
        .select_related("plan__target", "plan__owner", "approved_by", "deploy_confirmed_by")
        .defer(*HEAVY_FIELDS)
        .prefetch_related(Prefetch("plan__phases", queryset=Phase.objects.defer(*HEAVY_FIELDS)))
        .order_by(F("not_before").asc(nulls_last=True), "not_after", "plan_id", "position")
    )
    page = Paginator(upcoming, AGENDA_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(phase, gates.evaluate(phase)) for phase in page]
    return render(request, "planner/agenda.html", {"rows": rows, "page": page})


def plan_phases_with_gates(plan_id: int) -> tuple[Plan, list[Phase]]:
    """A plan and its phases, each with `.gates` (stored results only), in a fixed number of queries."""
    queryset = Phase.objects.select_related(
        "approved_by", "deploy_confirmed_by", "compat_override_by"
    ).prefetch_related("backfill_runs")
    plan = get_object_or_404(
        Plan.objects.select_related("target", "owner").prefetch_related(Prefetch("phases", queryset=queryset)),
        pk=plan_id,
    )
    phases = list(plan.phases.all())
    for phase in phases:
        phase.gates = gates.evaluate(phase)
        phase.ready = all(gate.open for gate in phase.gates)
    return plan, phases
