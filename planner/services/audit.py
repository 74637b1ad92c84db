"""Writing the audit log: one helper so every entry has the same shape."""

from __future__ import annotations

from django.db import models

from planner.models import AuditEvent, Phase, Plan
from planner.services import notify


def _plan_of(obj: models.Model) -> Plan | None:
    if isinstance(obj, Plan):
        return obj
    if isinstance(obj, Phase):
        return obj.plan
    return getattr(obj, "plan", None) if isinstance(getattr(obj, "plan", None), Plan) else None


def record(actor, action: str, obj: models.Model, **details) -> AuditEvent:
    """Append an audit event. `actor` is a user, or None for the system (beat, workers)."""
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    notify.audit_event(action, obj, **details)  # a webhook after commit, for the events people follow
    return AuditEvent.objects.create(
        actor=actor if authenticated else None,
        actor_name=actor.get_username() if authenticated else "system",
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        plan=_plan_of(obj),
        details=details,
    )
