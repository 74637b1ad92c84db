"""Webhook notifications, delivered to a real HTTP server on 127.0.0.1 started by the test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from planner.celery import app as celery_app
from planner.config import ConfigError
from planner.models import Phase
from planner.services import notify, phases

pytestmark = pytest.mark.django_db


class Receiver:
    """A local Slack-like endpoint: records each JSON body; answers with `status`."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(
                    {"json": json.loads(self.rfile.read(length)), "type": self.headers["Content-Type"]}
                )
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    with Receiver() as server:
        settings.PLANNER_WEBHOOK_URL = server.url
        yield server


@pytest.fixture
def eager_tasks():
    """Tasks queued on commit run in this process (still a real HTTP request to the receiver)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_started_phase_is_posted_as_slack_json(
    receiver, eager_tasks, make_user, plan, django_capture_on_commit_callbacks
):
    plan.target.set_password("hunter2-target-secret")
    plan.target.save()
    with django_capture_on_commit_callbacks(execute=True):
        phases.mark_running(make_user("release manager"), plan.phases.get())
    assert receiver.bodies == [
        {
            "json": {"text": f"Plan “{plan.title}”: phase 1 (Add column) on {plan.target.name} started."},
            "type": "application/json",
        }
    ]
    sent = json.dumps(receiver.bodies)
    assert "hunter2" not in sent and plan.target.host not in sent and "ALTER TABLE" not in sent


def test_success_and_failure_are_posted(receiver, eager_tasks, plan, django_capture_on_commit_callbacks):
    phase = plan.phases.get()
    Phase.objects.filter(pk=phase.pk).update(status="running")
    with django_capture_on_commit_callbacks(execute=True):
        phases._record(phase, "up", "relation users does not exist: password=abc", [])
    text = receiver.bodies[-1]["json"]["text"]
    assert text.endswith("failed.") and "password" not in text and "users does not exist" not in text


def test_a_hold_is_posted_with_its_reason(receiver, eager_tasks, backfill_run, django_capture_on_commit_callbacks):
    from planner.services import backfill_worker

    backfill_run.status = "running"
    backfill_run.save()
    with django_capture_on_commit_callbacks(execute=True):
        backfill_worker._system_transition(
            backfill_run.pk, "on_hold", hold_reason="dead tuples 27% of public.items > 15%"
        )
    assert receiver.bodies[-1]["json"]["text"].endswith("was put on hold: dead tuples 27% of public.items > 15%.")


def test_nothing_is_queued_without_a_url(settings, plan, make_user, django_capture_on_commit_callbacks):
    settings.PLANNER_WEBHOOK_URL = ""
    with django_capture_on_commit_callbacks() as callbacks:
        phases.mark_running(make_user("release manager"), plan.phases.get())
    assert callbacks == []


def test_a_server_error_is_retried_later_and_a_client_error_dropped(receiver):
    receiver.status = 503
    with pytest.raises(notify.TemporaryWebhookError, match="503"):
        notify.post("hello")
    receiver.status = 400
    assert notify.post("hello") == 400
    receiver.status = 200
    assert notify.post("hello") == 200
    assert len(receiver.bodies) == 3


def test_an_unreachable_receiver_is_retried_and_the_url_not_shown(settings):
    settings.PLANNER_WEBHOOK_URL = "http://127.0.0.1:9/hooks/secret-token"
    with pytest.raises(notify.TemporaryWebhookError) as raised:
        notify.post("hello")
    assert "secret-token" not in str(raised.value)


def test_the_task_retries_on_temporary_errors():
    from planner.tasks import send_webhook

    assert notify.TemporaryWebhookError in send_webhook.autoretry_for
    assert send_webhook.max_retries >= 5


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y", "not a url"])
def test_only_http_urls_are_accepted(settings, url):
    settings.PLANNER_WEBHOOK_URL = url
    with pytest.raises(ConfigError, match="PLANNER_WEBHOOK_URL"):
        notify.webhook_url()
