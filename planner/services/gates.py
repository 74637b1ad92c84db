"""A phase's gates, evaluated in one place for the plan page, the agenda, manual starts and beat.

Gates, in order:
  earlier      every earlier phase succeeded (and the plan is not cancelled or rolled back)
  window       now is inside the phase's window (not_before / not_after), when it has one
  validations  the previous phase's validation queries return their expected values on the target
  approval     a release manager approved the phase; on a high-risk plan, not the plan's author
  deploy       a release manager confirmed the application version is deployed (phases that need it)
  queries      no query of a deployed application version breaks on the schema the phase leaves, or a
               release manager overrode that with a reason (only once the target has queries recorded;
               see services/compat.py)

Pages use the stored results (`live=False`: no query on the target); starting a phase runs the
validations live. A release manager who may approve and starts a phase by hand approves it by doing
so; beat (actor None) needs an explicit approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from planner.models import Phase, Plan
from planner.services import compat

P = Phase.Status


@dataclass(frozen=True)
class Gate:
    key: str
    label: str
    open: bool | None  # None: not known yet (validations never checked, or waiting on an earlier gate)
    detail: str

    @property
    def state(self) -> str:
        return {True: "open", False: "closed", None: "unknown"}[self.open]


def may_approve(user, plan: Plan) -> bool:
    """Release managers approve; on a high-risk plan the author needs a second release manager."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if not user.has_perm("planner.approve_plan"):
        return False
    return not (plan.high_risk and plan.owner_id == user.pk)


def approval_is_valid(phase: Phase) -> bool:
    """An approval stops counting if the plan became high-risk and the approver is its author."""
    if phase.approved_by_id is None:
        return False
    return not (phase.plan.high_risk and phase.approved_by_id == phase.plan.owner_id)


def previous_phase(phase: Phase) -> Phase | None:
    earlier = [other for other in phase.plan.phases.all() if other.position < phase.position]
    return max(earlier, key=lambda other: other.position) if earlier else None


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def evaluate(phase: Phase, *, actor=None, live: bool = False, now: datetime | None = None) -> list[Gate]:
    """Every gate of `phase`. With `live`, the previous phase's validations run on the target now and
    their results are stored on it (the caller's transaction decides whether that is kept)."""
    now = now or timezone.now()
    plan = phase.plan
    gates = []

    # `phase.plan.phases.all()` uses a prefetch when the caller made one (agenda, plan page).
    blocking = [other for other in plan.phases.all() if other.position < phase.position and other.status != P.SUCCEEDED]
    reasons = [f"phase {other.position} ({other.name}) has not succeeded" for other in blocking]
    if plan.status in (Plan.Status.CANCELLED, Plan.Status.ROLLED_BACK):
        reasons.append(f"the plan is {plan.get_status_display().lower()}")
    gates.append(Gate("earlier", "Earlier phases succeeded", not reasons, "; ".join(reasons) or "yes"))

    if phase.not_before or phase.not_after:
        if phase.not_before and now < phase.not_before:
            gates.append(Gate("window", "Window", False, f"the window opens at {_time(phase.not_before)}"))
        elif phase.not_after and now > phase.not_after:
            gates.append(Gate("window", "Window", False, f"the window closed at {_time(phase.not_after)}"))
        else:
            gates.append(Gate("window", "Window", True, "open now"))

    gates.append(_validation_gate(phase, earlier_open=not blocking, live=live))

    if approval_is_valid(phase):
        who = phase.approved_by.get_username() if phase.approved_by else "?"
        gates.append(Gate("approval", "Approved", True, f"by {who}"))
    elif may_approve(actor, plan):
        gates.append(Gate("approval", "Approved", True, f"by {actor.get_username()}, who starts it"))
    else:
        needed = "a release manager other than the plan's author" if plan.high_risk else "a release manager"
        gates.append(Gate("approval", "Approved", False, f"needs approval by {needed}"))

    if phase.needs_deploy:
        if phase.deploy_confirmed_at:
            version = f" {phase.deployed_version}" if phase.deployed_version else ""
            who = phase.deploy_confirmed_by.get_username() if phase.deploy_confirmed_by else "?"
            gates.append(Gate("deploy", "Application deployed", True, f"version{version} confirmed by {who}"))
        else:
            gates.append(
                Gate("deploy", "Application deployed", False, "a release manager must confirm the deployed version")
            )
    queries = compat.gate(phase)
    if queries is not None:
        gates.append(queries)
    return gates


def _validation_gate(phase: Phase, *, earlier_open: bool, live: bool) -> Gate:
    previous = previous_phase(phase)
    if previous is None or not previous.validations:
        return Gate("validations", "Validations pass", True, "none to run")
    if not earlier_open:
        return Gate("validations", "Validations pass", None, f"run once phase {previous.position} has succeeded")
    if live:
        run_validations(previous)
    passed = previous.validations_passed
    if passed is None:
        return Gate("validations", "Validations pass", None, f"phase {previous.position}'s not checked yet")
    failed = [result for result in previous.validation_results if not result.get("ok")]
    if not failed:
        return Gate("validations", "Validations pass", True, f"{len(previous.validations)} passed")
    first = failed[0]
    why = first.get("error") or f"returned {first.get('value')!r}, expected {first.get('expected')!r}"
    return Gate("validations", "Validations pass", False, f"{first['name']}: {why}")


def run_validations(phase: Phase) -> list[dict]:
    """Run `phase`'s validations on its target now; store the results and the time on it."""
    from planner.pg.checks import run_checks

    results = [result.as_dict() for result in run_checks(phase.plan.target.conninfo(), phase.validations)]
    phase.validation_results, phase.validated_at = results, timezone.now()
    Phase.objects.filter(pk=phase.pk).update(validation_results=results, validated_at=phase.validated_at)
    return results


def failures(phase: Phase, *, actor=None, live: bool = True, now: datetime | None = None) -> list[str]:
    """Why `phase` may not start now; empty when every gate is open (unknown counts as closed)."""
    return [gate.detail for gate in evaluate(phase, actor=actor, live=live, now=now) if gate.open is not True]
