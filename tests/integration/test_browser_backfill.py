"""A real backfill watched and steered in the browser: progress advances without reload, Pause
stops it, Resume finishes it, Roll back restores every row — through real Celery workers."""

from __future__ import annotations

import re
import time

import psycopg
import pytest

from planner.models import BackfillRun, Phase
from planner.services import runs
from tests.e2e.test_browser import CHROMIUM, browser, page_as, screenshot  # noqa: F401 - fixtures
from tests.integration.conftest import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]
ROWS = 60_000
SPEC = {
    "table": "items",
    "set": "counter = counter + 1",
    "capture_before_images": True,
    "batch": {"initial": 100, "min": 100, "max": 100, "target_ms": 10},
}
# Every batch takes at least this long on any server, so the run is still going when Pause is clicked
# (on a fast PostgreSQL 15 the 600 batches once finished in 4 s, before the click).
BATCH_FLOOR_S = 0.02


@pytest.fixture
def slow_items(target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, counter integer NOT NULL DEFAULT 0)")
        conn.execute(f"INSERT INTO items (id) SELECT g FROM generate_series(1, {ROWS}) g")
        conn.execute("VACUUM ANALYZE items")
        conn.execute(
            "CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$BEGIN PERFORM pg_sleep({BATCH_FLOOR_S}); RETURN NULL; END$$"
        )
        conn.execute("CREATE TRIGGER slow_down AFTER UPDATE ON items FOR EACH STATEMENT EXECUTE FUNCTION slow_down()")
    return target_dsn


def changed_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM items WHERE counter = 1").fetchone()[0]


def shown_rows(page) -> int:
    text = page.get_by_test_id("rows-done").inner_text()
    return int(re.match(r"[\d,]+", text).group(0).replace(",", ""))


def test_oncall_pauses_resumes_and_rolls_back_a_live_backfill(
    workers,
    slow_items,
    plan,
    make_user,
    live_server,
    page_as,  # noqa: F811
):
    plan.phases.update(status=Phase.Status.SUCCEEDED)
    phase = Phase.objects.create(plan=plan, position=2, kind="backfill", name="bump", backfill_spec=SPEC)
    workers.start()
    run = runs.create_and_start(make_user("release manager"), phase)

    page = page_as("on-call engineer")
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    first = wait_for(lambda: shown_rows(page), timeout=60, what="first progress on screen")
    wait_for(lambda: shown_rows(page) > first, timeout=30, what="progress advancing without reload")
    screenshot(page, "live-backfill")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("#run-status .status-paused", timeout=30_000)
    paused_at = shown_rows(page)
    time.sleep(3)
    page.reload()
    assert shown_rows(page) == paused_at == changed_rows(slow_items) < ROWS  # stopped, and the page is true

    page.get_by_role("button", name="Resume").click()
    page.wait_for_selector("#run-status .status-succeeded", timeout=120_000)
    assert changed_rows(slow_items) == ROWS

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back").click()
    page.wait_for_selector("#run-status .status-rolled_back", timeout=120_000)
    assert changed_rows(slow_items) == 0
    assert BackfillRun.objects.get(pk=run.pk).status == BackfillRun.Status.ROLLED_BACK
