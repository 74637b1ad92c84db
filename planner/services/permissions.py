"""Server-side permission checks shared by every service."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied


def require(user, permission: str) -> None:
    """Raise PermissionDenied (HTTP 403 in views, exit code 2 in commands) unless `user` has it.

    `user=None` means the system itself (beat, workers acting on an already authorised plan).
    """
    if user is None:
        return
    if not user.has_perm(f"planner.{permission}"):
        raise PermissionDenied(f"{user.get_username()} lacks permission planner.{permission}")
