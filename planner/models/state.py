"""The one state-machine mechanism every model with a lifecycle uses."""

from __future__ import annotations


class InvalidTransition(Exception):
    """A state change that the state machine does not allow."""


class StateMachineMixin:
    """Adds `transition_to` to a model that has `status` and a TRANSITIONS table."""

    TRANSITIONS: dict[str, set[str]] = {}

    def can_transition_to(self, new_status: str) -> bool:
        return new_status in self.TRANSITIONS.get(self.status, set())

    def transition_to(self, new_status: str) -> str:
        """Set the new status (caller saves); returns the old one. Raises InvalidTransition."""
        if not self.can_transition_to(new_status):
            raise InvalidTransition(f"{type(self).__name__} {self.pk} cannot go from {self.status} to {new_status}")
        old_status, self.status = self.status, new_status
        return old_status
