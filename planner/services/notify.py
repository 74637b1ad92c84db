"""Webhook notifications (Slack-compatible `{"text": ...}`) when a phase starts, succeeds, fails, is
put on hold or misses its window.

They follow the audit log: `audit.record` hands each event here, and the ones worth telling people
about are sent by a Celery task after the transaction commits (never in the request, retried on
network errors and 5xx). The text names the plan, the phase and the target by name only: no DSN, no
SQL, no error message (those can carry data), so nothing secret leaves the planner. The URL itself
is a secret (Slack's contain a token) and is never logged.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from django.conf import settings
from django.db import transaction

from planner.config import ConfigError, parse_webhook_url

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10

# audit action → what the message says happened
EVENTS = {
    "phase.started": "started",
    "phase.succeeded": "succeeded",
    "phase.up_failed": "failed",
    "phase.failed": "failed",
    "phase.window_missed": "missed its window and was not started",
    "run.on_hold": "was put on hold",
}


class TemporaryWebhookError(OSError):
    """The receiver could not take it now (network error, 429, 5xx): the task retries later."""


def webhook_url() -> str:
    """PLANNER_WEBHOOK_URL from settings (checked at start); empty when notifications are off."""
    return parse_webhook_url(getattr(settings, "PLANNER_WEBHOOK_URL", "") or "")


def message(action: str, obj, **details) -> str | None:
    """The text for an audit event, or None when this event is not notified."""
    what = EVENTS.get(action)
    if what is None:
        return None
    phase = getattr(obj, "phase", obj)  # a backfill run reports as its phase
    plan = phase.plan
    text = f"Plan “{plan.title}”: phase {phase.position} ({phase.name}) on {plan.target.name} {what}"
    if action == "run.on_hold" and details.get("reason"):
        text += f": {details['reason']}"
    return text + "."


def audit_event(action: str, obj, **details) -> None:
    """Called for every audit event; queues a webhook after commit when one is configured."""
    if action not in EVENTS:
        return
    try:
        url = webhook_url()
    except ConfigError as error:
        log.error("notification not sent: %s", error)
        return
    if not url:
        return
    text = message(action, obj, **details)
    from planner.tasks import send_webhook

    transaction.on_commit(lambda: send_webhook.delay(text))


def post(text: str) -> int:
    """POST `{"text": text}` to the webhook; returns the HTTP status. Raises TemporaryWebhookError
    when trying again later may help; a 4xx is logged and dropped (retrying will not fix it)."""
    url = webhook_url()
    if not url:
        return 0
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(  # noqa: S310 - webhook_url() allows http and https only
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "migration-planner"}
    )
    try:
        # the scheme was checked in webhook_url(): http or https only
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        if error.code == 429 or error.code >= 500:
            raise TemporaryWebhookError(f"webhook answered {error.code}") from None
        log.error("webhook refused the notification with HTTP %s; not retried", error.code)
        return error.code
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise TemporaryWebhookError(f"webhook unreachable: {type(reason).__name__}") from None
