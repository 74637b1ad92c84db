"""Celery tasks: thin wrappers that load objects and call services. Idempotent, acks_late."""

from __future__ import annotations

from celery import shared_task

from planner.models import TargetDatabase
from planner.services import targets


@shared_task(acks_late=True)
def check_target(target_id: int) -> dict:
    """Check a target's connection; safe to run twice (it only records the latest result)."""
    target = TargetDatabase.objects.get(pk=target_id)
    targets.check_connection(target)
    return {"target": target.name, "server_version": target.server_version, "error": target.last_check_error}
