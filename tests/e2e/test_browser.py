"""Browser tests: Debian's Chromium driven by Playwright (never a downloaded browser).

Screenshots of the pages land in artifacts/screenshots/ for review and for README.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from planner.models import BackfillRun

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]


@pytest.fixture
def browser():
    # Function-scoped and set up after the database fixtures: while Playwright's event loop runs,
    # Django's connection-local state (and pytest-django's serialized rollback) is not the main thread's.
    # The ORM calls in these tests happen beside that loop, not in it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()
        # ORM calls made while Playwright's loop ran used connections of that context; close them
        # here, still inside it, or they outlive the test and block dropping the test database.
        from django.db import connections

        connections.close_all()


@pytest.fixture
def page_as(live_server, make_user, browser):
    pages = []

    def login(role: str, width: int = 1200):
        user = make_user(role)
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        pages.append(context)
        return page

    yield login
    for context in pages:
        context.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_progress_advances_without_reload_and_oncall_pauses(live_server, backfill_run, page_as):
    BackfillRun.objects.filter(pk=backfill_run.pk).update(status="running", rows_done=100, rows_total_estimate=1000)
    page = page_as("on-call engineer")
    page.goto(f"{live_server.url}/runs/{backfill_run.pk}/")
    rows = page.get_by_test_id("rows-done")
    assert "100 of about 1,000 rows" in rows.inner_text()

    BackfillRun.objects.filter(pk=backfill_run.pk).update(rows_done=600, rows_per_second=250, eta_seconds=2)
    page.wait_for_function(
        "document.querySelector('[data-testid=rows-done]').innerText.includes('600')", timeout=10_000
    )
    screenshot(page, "run-page")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("text=Pausing", timeout=10_000)
    backfill_run.refresh_from_db()
    assert backfill_run.status == "pausing"


def test_a_viewer_sees_no_controls(live_server, backfill_run, page_as):
    BackfillRun.objects.filter(pk=backfill_run.pk).update(status="running")
    page = page_as("viewer")
    page.goto(f"{live_server.url}/runs/{backfill_run.pk}/")
    assert page.get_by_role("button", name="Pause").count() == 0
    assert page.get_by_role("button", name="Cancel").count() == 0


def test_the_plan_list_works_on_a_phone(live_server, plan, page_as):
    page = page_as("release manager", width=390)
    page.goto(f"{live_server.url}/")
    assert page.get_by_role("link", name=plan.title).is_visible()
    screenshot(page, "plan-list-phone")
    page.get_by_role("link", name=plan.title).click()
    page.wait_for_selector("text=Up SQL")
    screenshot(page, "plan-page-phone")


@pytest.fixture
def shop_target(demo_target, target_dsn):
    import psycopg

    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)")
        conn.execute("INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 100) g")
    return demo_target


def test_a_plan_from_a_recipe_is_scheduled_and_a_second_manager_approves_it(
    live_server, shop_target, make_user, browser
):
    from datetime import UTC, datetime

    from planner.models import AuditEvent, Plan

    def login(user):
        # Paris time in the browser: the window is typed and shown in the viewer's timezone
        context = browser.new_context(viewport={"width": 1200, "height": 900}, timezone_id="Europe/Paris")
        page = context.new_page()
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    author, second = make_user("release manager"), make_user("release manager")
    page = login(author)
    page.goto(f"{live_server.url}/plans/new/?recipe=add_index")
    page.select_option("#id_target", str(shop_target.pk))
    page.fill("#id_table", "users")
    page.fill("#id_columns", "email")
    page.get_by_role("button", name="Create plan").click()
    page.wait_for_selector("text=Schedule and gates")
    plan = Plan.objects.get(owner=author)
    phase = plan.phases.order_by("position").first()

    form = page.locator(f"#phase-{phase.pk} form.schedule-form")
    assert form.locator("[data-tz-name]").inner_text() == "Europe/Paris"
    form.locator("input[name=not_before]").fill("2099-01-31T22:00")
    form.get_by_role("button", name="Save window").click()
    page.wait_for_selector("text=scheduled.")
    phase.refresh_from_db()
    assert phase.not_before == datetime(2099, 1, 31, 21, 0, tzinfo=UTC)
    assert "22:00" in page.get_by_test_id("window-1").inner_text()  # shown back in Paris time

    Plan.objects.filter(pk=plan.pk).update(high_risk=True)  # marked high-risk: the author may not approve
    page.reload()
    assert page.get_by_role("button", name="Approve phase 1").count() == 0

    other = login(second)
    other.goto(f"{live_server.url}/plans/{plan.pk}/")
    assert (
        "needs approval by a release manager other than the plan's author"
        in other.get_by_test_id("gates-1").inner_text()
    )
    other.get_by_role("button", name="Approve phase 1").click()
    other.wait_for_selector(f"text=by {second.username}")
    screenshot(other, "plan-approved")
    phase.refresh_from_db()
    assert phase.approved_by == second
    assert AuditEvent.objects.filter(action="phase.approved", actor=second).count() == 1
    other.context.close()
    page.context.close()


def test_the_agenda_page(live_server, plan, page_as):
    from datetime import timedelta

    from django.utils import timezone

    from planner.models import Phase

    Phase.objects.filter(plan=plan).update(not_before=timezone.now() + timedelta(hours=2))
    page = page_as("viewer")
    page.goto(f"{live_server.url}/agenda/")
    assert page.get_by_role("link", name=plan.title).is_visible()
    screenshot(page, "agenda")
