"""The audit log page, filterable by plan, user and action."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.shortcuts import render

from planner.models import AuditEvent, Plan


@permission_required("planner.view_auditevent", raise_exception=True)
def audit_log(request):
    events = AuditEvent.objects.select_related("plan")
    filters = {key: request.GET.get(key, "").strip() for key in ("plan", "user", "action")}
    if filters["plan"].isdigit():
        events = events.filter(plan_id=int(filters["plan"]))
    if filters["user"]:
        events = events.filter(actor_name=filters["user"])
    if filters["action"]:
        events = events.filter(action__startswith=filters["action"])
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "plans": Plan.objects.only("id", "title").order_by("title"),
        "actions": AuditEvent.objects.values_list("action", flat=True).distinct().order_by("action"),
        "users": AuditEvent.objects.values_list("actor_name", flat=True).distinct().order_by("actor_name"),
    }
    template = "planner/audit_log.html#audit-rows" if request.htmx else "planner/audit_log.html"
    return render(request, template, context)
