"""Plans list and plan page."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.shortcuts import render

from planner.models import Phase, Plan
from planner.services import compat, gates
from planner.services.analysis import analyze_phase_sql
from planner.views.schedule import plan_phases_with_gates

PLANS_PER_PAGE = 50  # a page a person reads; keeps the list well under 100 ms with thousands of plans


@permission_required("planner.view_plan", raise_exception=True)
def plan_list(request):
    # The next phase of every row comes from one prefetch of the open phases (no query per row).
    open_phases = (
        Phase.objects.exclude(status__in=Phase.FINISHED)
        .only("id", "plan_id", "position", "name", "status", "not_before")
        .order_by("position")
    )
    plans = Plan.objects.select_related("target", "owner").prefetch_related(
        Prefetch("phases", queryset=open_phases, to_attr="open_phases")
    )
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    if query:
        plans = plans.filter(Q(title__icontains=query) | Q(description__icontains=query))
    if status in Plan.Status.values:
        plans = plans.filter(status=status)
    page = Paginator(plans.order_by("-created_at", "-id"), PLANS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "query": query, "status": status, "statuses": Plan.Status.choices}
    template = "planner/plan_list.html#plan-results" if request.htmx else "planner/plan_list.html"
    return render(request, template, context)


@permission_required("planner.view_plan", raise_exception=True)
def plan_detail(request, plan_id: int):
    plan, phases = plan_phases_with_gates(plan_id)
    compat_state = compat.state_of(plan)  # once per request: the gates above already cached it on `plan`
    for phase in phases:
        phase.queries_gate = next((gate for gate in phase.gates if gate.key == "queries"), None)
        # Judged against the schema the earlier phases leave (the target's is read once, cached).
        phase.analysis = analyze_phase_sql(phase.up_sql, phase=phase) if phase.up_sql.strip() else None
    user = request.user
    return render(
        request,
        "planner/plan_detail.html",
        {
            "plan": plan,
            "phases": phases,
            "events": plan.audit_events.all()[:20],
            "can_start": user.has_perm("planner.start_plan"),
            "can_edit": user.has_perm("planner.change_phase"),
            "can_roll_back": user.has_perm("planner.rollback_run"),
            "can_schedule": user.has_perm("planner.schedule_plan"),
            "can_approve": gates.may_approve(user, plan),
            "is_approver_role": user.has_perm("planner.approve_plan"),
            "compat": compat_state,
            "can_check_queries": user.has_perm("planner.add_compatibilityreport"),
        },
    )
