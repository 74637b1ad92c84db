"""Plans list and plan page."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.db.models import Q
from django.shortcuts import get_object_or_404, render

from planner.models import Plan


@permission_required("planner.view_plan", raise_exception=True)
def plan_list(request):
    plans = Plan.objects.select_related("target", "owner").prefetch_related("phases")
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    if query:
        plans = plans.filter(Q(title__icontains=query) | Q(description__icontains=query))
    if status in Plan.Status.values:
        plans = plans.filter(status=status)
    context = {"plans": plans[:200], "query": query, "status": status, "statuses": Plan.Status.choices}
    template = "planner/plan_list.html#plan-rows" if request.htmx else "planner/plan_list.html"
    return render(request, template, context)


@permission_required("planner.view_plan", raise_exception=True)
def plan_detail(request, plan_id: int):
    plan = get_object_or_404(Plan.objects.select_related("target", "owner"), pk=plan_id)
    phases = plan.phases.prefetch_related("backfill_runs")
    return render(
        request,
        "planner/plan_detail.html",
        {
            "plan": plan,
            "phases": phases,
            "events": plan.audit_events.all()[:20],
            "can_start": request.user.has_perm("planner.start_plan"),
            "can_edit": request.user.has_perm("planner.change_phase"),
            "can_roll_back": request.user.has_perm("planner.rollback_run"),
        },
    )
