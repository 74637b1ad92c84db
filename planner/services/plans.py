"""Creating plans and their phases, and moving a plan through its states."""

from __future__ import annotations

from django.db import transaction

from planner.models import Phase, Plan, TargetDatabase
from planner.services import audit
from planner.services.permissions import require
from planner.services.schedule import needs_deploy


@transaction.atomic
def create_plan(
    actor, *, title: str, target: TargetDatabase, description: str = "", high_risk: bool = False, phases=()
) -> Plan:
    """Create a draft plan with phases given as dicts (kind, name, up_sql, down_sql, backfill_spec)."""
    require(actor, "add_plan")
    plan = Plan.objects.create(
        title=title,
        description=description,
        target=target,
        owner=actor,
        high_risk=high_risk,
    )
    for position, phase in enumerate(phases, start=1):
        phase = {"needs_deploy": needs_deploy(phase.get("runbook") or {}), **phase}
        Phase.objects.create(plan=plan, position=position, **phase)
    audit.record(actor, "plan.created", plan, phases=len(phases), target=target.name)
    return plan


@transaction.atomic
def change_plan_status(actor, plan: Plan, new_status: str, *, permission: str, reason: str = "") -> Plan:
    """Move a plan to `new_status` if the state machine allows it; locked so racing clicks serialise."""
    require(actor, permission)
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    old_status = locked.transition_to(new_status)
    locked.save(update_fields=["status", "updated_at"])
    audit.record(actor, f"plan.{new_status}", locked, previous=old_status, reason=reason)
    return locked


class InvalidPhaseSQL(ValueError):
    """The SQL does not parse; the message is PostgreSQL's parser message with its position."""


@transaction.atomic
def update_phase_sql(actor, phase: Phase, *, up_sql: str, down_sql: str) -> Phase:
    """Save new up/down SQL after checking that PostgreSQL's parser accepts both; audited."""
    from planner.services.analysis import analyze_phase_sql

    require(actor, "change_phase")
    for label, text in (("up SQL", up_sql), ("down SQL", down_sql)):
        errors = analyze_phase_sql(text, phase=phase)["summary"]["syntax_errors"]
        if errors:
            raise InvalidPhaseSQL(f"{label}: {errors[0]['message']}")
    locked = Phase.objects.select_for_update().get(pk=phase.pk)
    changed = [name for name, value in (("up_sql", up_sql), ("down_sql", down_sql)) if getattr(locked, name) != value]
    if not changed:
        return locked
    locked.up_sql, locked.down_sql = up_sql, down_sql
    withdrawn = {}
    # An approval, and an override of the queries gate, were given to the SQL as it was.
    if locked.approved_by_id is not None:
        locked.approved_by, locked.approved_at = None, None
        withdrawn["approval_withdrawn"] = ["approved_by", "approved_at"]
    if locked.compat_override_reason:
        locked.compat_override_reason, locked.compat_override_by, locked.compat_override_at = "", None, None
        withdrawn["compat_override_withdrawn"] = ["compat_override_reason", "compat_override_by", "compat_override_at"]
    locked.save(update_fields=[*changed, *(f for fields in withdrawn.values() for f in fields), "updated_at"])
    audit.record(actor, "phase.sql_changed", locked, fields=changed, **dict.fromkeys(withdrawn, True))
    return locked
