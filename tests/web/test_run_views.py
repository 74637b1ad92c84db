"""Run page and controls: buttons per role, results shown at once, polling stops when finished."""

import pytest
from django.urls import reverse

from planner.models import AuditEvent, BackfillRun

pytestmark = pytest.mark.django_db
S = BackfillRun.Status


def set_status(run, status):
    BackfillRun.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()


def test_the_run_page_shows_progress(client, make_user, backfill_run):
    BackfillRun.objects.filter(pk=backfill_run.pk).update(
        status=S.RUNNING, rows_done=1500, rows_total_estimate=6000, rows_per_second=750.4, eta_seconds=6
    )
    client.force_login(make_user("viewer"))
    body = client.get(reverse("run-detail", args=[backfill_run.pk])).content.decode()
    assert "1,500 of about 6,000 rows" in body
    assert "750 rows/s" in body
    assert 'hx-trigger="every 2s"' in body


@pytest.mark.parametrize(
    ("role", "buttons"),
    [("viewer", set()), ("release manager", set()), ("on-call engineer", {"Pause", "Cancel"})],
)
def test_controls_are_shown_only_to_roles_that_may_use_them(client, make_user, backfill_run, role, buttons):
    set_status(backfill_run, S.RUNNING)
    client.force_login(make_user(role))
    body = client.get(reverse("run-detail", args=[backfill_run.pk])).content.decode()
    shown = {label for label in ("Pause", "Resume", "Cancel", "Roll back") if f">{label}</button>" in body}
    assert shown == buttons


def test_a_paused_run_offers_resume_and_roll_back(client, make_user, backfill_run):
    set_status(backfill_run, S.PAUSED)
    client.force_login(make_user("on-call engineer"))
    body = client.get(reverse("run-detail", args=[backfill_run.pk])).content.decode()
    assert ">Resume</button>" in body and ">Roll back</button>" in body and ">Pause</button>" not in body


def test_pause_over_htmx_returns_the_new_state_at_once(client, make_user, backfill_run):
    set_status(backfill_run, S.RUNNING)
    client.force_login(make_user("on-call engineer"))
    response = client.post(reverse("run-action", args=[backfill_run.pk, "pause"]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Pausing" in response.content.decode()
    backfill_run.refresh_from_db()
    assert backfill_run.status == S.PAUSING


def test_a_double_click_on_pause_is_one_change(client, make_user, backfill_run):
    set_status(backfill_run, S.RUNNING)
    client.force_login(make_user("on-call engineer"))
    for _ in range(2):
        client.post(reverse("run-action", args=[backfill_run.pk, "pause"]))
    assert AuditEvent.objects.filter(action="run.pause_requested").count() == 1


def test_an_invalid_action_for_the_state_says_why_with_409(client, make_user, backfill_run):
    set_status(backfill_run, S.RUNNING)
    client.force_login(make_user("on-call engineer"))
    response = client.post(reverse("run-action", args=[backfill_run.pk, "rollback"]), headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "pause the run before rolling it back" in response.content.decode()


def test_polling_stops_when_the_run_has_finished(client, make_user, backfill_run):
    set_status(backfill_run, S.SUCCEEDED)
    client.force_login(make_user("viewer"))
    response = client.get(
        reverse("run-detail", args=[backfill_run.pk]), headers={"HX-Request": "true", "HX-Target": "run-status"}
    )
    assert response.status_code == 286
    assert "Succeeded" in response.content.decode()
    assert "hx-trigger" not in response.content.decode()


def test_an_unknown_action_is_404(client, make_user, backfill_run):
    client.force_login(make_user("on-call engineer"))
    assert client.post(reverse("run-action", args=[backfill_run.pk, "explode"])).status_code == 404


def test_the_run_page_draws_batch_charts_and_holds(client, make_user, backfill_run):
    from datetime import timedelta

    from django.utils import timezone

    from planner.models import BackfillBatch, BackfillHold

    now = timezone.now()
    for index, ms in enumerate([50.0, 100.0, 80.0]):
        BackfillBatch.objects.create(
            run=backfill_run,
            slice_index=0,
            direction="forward",
            finished_at=now + timedelta(seconds=index),
            rows=100,
            duration_ms=ms,
            batch_size=100,
        )
    BackfillHold.objects.create(run=backfill_run, reason="replica lag 12 s > 5 s", started_at=now)
    client.force_login(make_user("viewer"))
    body = client.get(reverse("run-detail", args=[backfill_run.pk])).content.decode()
    assert body.count("<polyline") == 2
    assert "max 100 ms" in body and "last 80 ms" in body
    assert "replica lag 12 s &gt; 5 s" in body
