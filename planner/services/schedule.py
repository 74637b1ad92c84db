"""Scheduling phases, signing off their gates, and beat's start of phases whose window opened.

Release managers give a phase a window (UTC in the store), approve it and confirm the application
version is deployed; each is audited. `start_due_phases` is one step of beat's loop: it starts what
is due and reports what missed its window, and returns what it did so tests call it directly.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from planner.models import InvalidTransition, Phase, Plan
from planner.services import audit, gates, phases
from planner.services.permissions import require

log = logging.getLogger(__name__)
P = Phase.Status
SCHEDULABLE = (P.PENDING, P.FAILED, P.ROLLED_BACK)
ACTIVE_PLANS = (Plan.Status.DRAFT, Plan.Status.SCHEDULED, Plan.Status.RUNNING)


def _locked(phase: Phase) -> Phase:
    return Phase.objects.select_for_update().select_related("plan").get(pk=phase.pk)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@transaction.atomic
def set_window(actor, phase: Phase, *, not_before: datetime | None, not_after: datetime | None, reason: str = ""):
    """Give a phase its window (either end may be open); a draft plan becomes scheduled."""
    require(actor, "schedule_plan")
    if not_before and not_after and not_after <= not_before:
        raise ValueError("the window must end after it starts")
    if not_after and not_after <= timezone.now():
        raise ValueError("the window's end is already past")
    locked = _locked(phase)
    if locked.status not in SCHEDULABLE:
        raise InvalidTransition(f"a {locked.get_status_display().lower()} phase cannot be rescheduled")
    if locked.plan.status not in ACTIVE_PLANS:
        raise InvalidTransition(f"the plan is {locked.plan.get_status_display().lower()}")
    if (locked.not_before, locked.not_after) == (not_before, not_after):
        return locked
    previous = {"not_before": _iso(locked.not_before), "not_after": _iso(locked.not_after)}
    locked.not_before, locked.not_after, locked.window_missed_at = not_before, not_after, None
    locked.save(update_fields=["not_before", "not_after", "window_missed_at", "updated_at"])
    audit.record(
        actor,
        "phase.scheduled" if (not_before or not_after) else "phase.unscheduled",
        locked,
        not_before=_iso(not_before),
        not_after=_iso(not_after),
        previous=previous,
        reason=reason,
    )
    plan = locked.plan
    has_window = plan.phases.filter(status__in=SCHEDULABLE).exclude(not_before=None, not_after=None).exists()
    if has_window and plan.status == Plan.Status.DRAFT:
        phases._plan_moves_to(plan, Plan.Status.SCHEDULED, actor)
    elif not has_window and plan.status == Plan.Status.SCHEDULED:
        phases._plan_moves_to(plan, Plan.Status.DRAFT, actor)
    return locked


@transaction.atomic
def approve(actor, phase: Phase, reason: str = "") -> Phase:
    """A release manager signs off a phase; on a high-risk plan it must not be the plan's author."""
    require(actor, "approve_plan")
    locked = _locked(phase)
    if not gates.may_approve(actor, locked.plan):
        raise InvalidTransition("a high-risk plan needs approval by a release manager other than its author")
    if locked.status not in SCHEDULABLE:
        raise InvalidTransition(f"a {locked.get_status_display().lower()} phase needs no approval")
    if gates.approval_is_valid(locked) and locked.approved_by_id == actor.pk:
        return locked  # a second click: nothing new, no second audit entry
    locked.approved_by, locked.approved_at = actor, timezone.now()
    locked.save(update_fields=["approved_by", "approved_at", "updated_at"])
    audit.record(actor, "phase.approved", locked, high_risk=locked.plan.high_risk, reason=reason)
    return locked


@transaction.atomic
def withdraw_approval(actor, phase: Phase, reason: str = "") -> Phase:
    require(actor, "approve_plan")
    locked = _locked(phase)
    if locked.approved_by_id is None or locked.status not in SCHEDULABLE:
        return locked
    locked.approved_by, locked.approved_at = None, None
    locked.save(update_fields=["approved_by", "approved_at", "updated_at"])
    audit.record(actor, "phase.approval_withdrawn", locked, reason=reason)
    return locked


@transaction.atomic
def confirm_deployed(actor, phase: Phase, *, version: str) -> Phase:
    """A release manager confirms the application version this phase waits for is deployed."""
    require(actor, "approve_plan")
    version = version.strip()[:100]
    if not version:
        raise ValueError("name the application version that is deployed")
    locked = _locked(phase)
    if not locked.needs_deploy:
        raise InvalidTransition("this phase does not wait for a deployment")
    if locked.status not in SCHEDULABLE:
        raise InvalidTransition(f"a {locked.get_status_display().lower()} phase needs no confirmation")
    if locked.deploy_confirmed_at and locked.deployed_version == version:
        return locked
    locked.deploy_confirmed_by, locked.deploy_confirmed_at, locked.deployed_version = actor, timezone.now(), version
    locked.save(update_fields=["deploy_confirmed_by", "deploy_confirmed_at", "deployed_version", "updated_at"])
    audit.record(actor, "phase.deploy_confirmed", locked, version=version)
    return locked


def check_validations(actor, phase: Phase) -> list[dict]:
    """Run a phase's validation queries on the target now (read-only) and store the results."""
    require(actor, "schedule_plan")
    phase = Phase.objects.select_related("plan__target").get(pk=phase.pk)
    if not phase.validations:
        return []
    results = gates.run_validations(phase)
    audit.record(actor, "phase.validated", phase, passed=all(result["ok"] for result in results))
    return results


def needs_deploy(runbook: dict) -> bool:
    """Recipes write the gate before a phase into its runbook; "Deploy the application …" is one a
    release manager confirms (other gates, such as a validation result, are checked by queries)."""
    return "deploy the application" in str((runbook or {}).get("gate", "")).lower()


@dataclass
class BeatStep:
    started: list[int] = field(default_factory=list)  # phase ids
    waiting: dict[int, list[str]] = field(default_factory=dict)  # phase id → closed gates
    missed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # phase id → why starting it failed

    def as_dict(self) -> dict:
        return asdict(self)


def start_due_phases(now: datetime | None = None) -> BeatStep:
    """Start each pending phase whose window is open and whose gates pass, as the system actor;
    report (audit, plan page, webhook) each pending phase whose window closed before it started."""
    now = now or timezone.now()
    step = BeatStep()
    missed = Phase.objects.filter(
        status=P.PENDING, not_after__lt=now, window_missed_at=None, plan__status__in=ACTIVE_PLANS
    )
    for phase in missed:
        if _report_missed(phase, now):
            step.missed.append(phase.pk)

    due = (
        Phase.objects.filter(status=P.PENDING, not_before__lte=now, plan__status__in=ACTIVE_PLANS)
        .exclude(not_after__lt=now)
        .select_related("plan__target")
        .order_by("not_before", "plan_id", "position")
    )
    for phase in due:
        # cheap gates first, without touching the target: most due phases wait on an earlier phase
        closed = [gate for gate in gates.evaluate(phase, live=False, now=now) if gate.open is not True]
        if any(gate.key != "validations" for gate in closed):
            step.waiting[phase.pk] = [gate.detail for gate in closed]
            continue
        try:
            _start(phase)
        except InvalidTransition as error:
            step.waiting[phase.pk] = [str(error)]
        except Exception as error:  # noqa: BLE001 - one phase's trouble must not stop beat for the others
            log.exception("beat could not start phase %s", phase.pk)
            step.failed[phase.pk] = type(error).__name__
        else:
            step.started.append(phase.pk)
    return step


def _start(phase: Phase) -> None:
    """The system actor starts it; mark_running re-checks every gate (validations live) under a lock."""
    from planner.services import runs

    with transaction.atomic():
        if phase.kind == Phase.Kind.BACKFILL:
            if not phase.backfill_spec:
                raise InvalidTransition("this backfill phase has no backfill spec")
            runs.create_and_start(None, phase, slice_count=int(phase.backfill_spec.get("slices", 1) or 1))
        else:
            phases.request_run(None, phase)


@transaction.atomic
def _report_missed(phase: Phase, now: datetime) -> bool:
    locked = _locked(phase)
    if locked.status != P.PENDING or locked.window_missed_at is not None:
        return False  # started or reported meanwhile
    locked.window_missed_at = now
    locked.save(update_fields=["window_missed_at", "updated_at"])
    audit.record(None, "phase.window_missed", locked, not_after=_iso(locked.not_after))
    return True
