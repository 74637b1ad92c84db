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
