"""Query compatibility in a real browser, walked as a new release manager would (issue #7).

A rename-column plan (users.name → full_name, made by the recipe service on the recipes' shop
database) and the committed sqlx offline samples: app-v1 reads users.name, app-v2 users.full_name.
Everything after the setup goes through the pages: add both versions, upload their `.sqlx`
directories with the directory picker, check the queries, read the matrix and the contract's
queries gate, then deploy app-v2 and retire app-v1 until the gate opens.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.test_browser import CHROMIUM, browser, page_as, screenshot  # noqa: F401 - shared fixtures
from tests.recipes.conftest import driver_for, shop  # noqa: F401 - the rename plan runs on the recipes' shop

SAMPLES = Path(__file__).parents[1] / "compat" / "samples"
SLOW = 30_000  # ms: "Check queries now" builds a schema-only shadow copy of the target in the request

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]


def test_a_release_manager_checks_a_rename_against_two_app_versions(
    live_server,
    driver_for,  # noqa: F811 - the fixture imported above
    page_as,  # noqa: F811
):
    from playwright.sync_api import expect

    # Setup: the plan comes from the recipe service on a real target, like the recipe tests' driver.
    plan = driver_for("rename_column", {"table": "users", "column": "name", "new_name": "full_name"}).plan
    plan_url = f"{live_server.url}/plans/{plan.pk}/"
    versions_url = f"{live_server.url}/targets/{plan.target_id}/versions/"
    page = page_as("release manager")  # logs in through the login page

    # 1. The plan page says nothing is recorded yet and links the target's versions page.
    page.goto(plan_url)
    expect(page.get_by_test_id("compat-hint")).to_contain_text("No application queries are recorded")
    page.get_by_role("link", name="application versions and queries").click()
    page.wait_for_url(versions_url)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Application versions of {plan.target.name}")
    expect(page.get_by_text("No application versions yet.")).to_be_visible()

    # 2. Add app-v1 (deployed) and app-v2 (planned), then upload each one's .sqlx directory.
    def section(name: str):
        return page.locator("section.version").filter(has=page.get_by_test_id(f"counts-{name}"))

    for name, status, shown in (("app-v1", "deployed", "deployed (running)"), ("app-v2", "planned", "planned")):
        add = page.get_by_test_id("add-version")
        add.get_by_label("Version name").fill(name)
        add.get_by_label("Status").select_option(status)
        add.get_by_role("button", name="Add version").click()
        expect(page.locator("ul.messages")).to_have_text(re.compile(rf"Version {name} added \({re.escape(shown)}"))
        expect(page.get_by_test_id(f"counts-{name}")).to_have_text("No queries yet.")

    for name in ("app-v1", "app-v2"):
        directory = SAMPLES / name / ".sqlx"
        box = section(name)
        box.locator("input[type=file][webkitdirectory]").set_input_files(directory)
        box.get_by_role("button", name="Upload").click()
        expect(page.locator("ul.messages")).to_have_text(
            f"{name}, sqlx offline files: 5 added, 0 unchanged, 0 removed."
        )
        expect(page.get_by_test_id(f"counts-{name}")).to_have_text("5 from sqlx offline data")
        for path in directory.glob("query-*.json"):
            expect(section(name).locator("code", has_text=path.name)).to_be_visible()
    expect(section("app-v1").locator("table.queries")).to_contain_text("name")
    expect(section("app-v2").locator("table.queries")).to_contain_text("full_name")

    # 3. Back on the plan page (through the versions page's link), check the queries now.
    page.get_by_role("link", name=plan.title).click()
    page.wait_for_url(plan_url)
    matrix_box = page.locator("section#query-compatibility")
    expect(matrix_box).to_contain_text("10 queries of 2 application versions")
    expect(matrix_box).to_contain_text("Not checked yet.")
    queries_gate = page.get_by_test_id("gates-3").locator("li.gate", has_text="Queries of deployed versions work")
    expect(queries_gate).to_have_class(re.compile(r"\bgate-closed\b"))
    expect(queries_gate).to_contain_text("not checked yet")

    page.get_by_role("button", name="Check queries now").click()
    page.wait_for_url(f"{plan_url}#query-compatibility", timeout=SLOW)
    expect(page.locator("ul.messages")).to_have_text(
        "Queries checked: 6 break somewhere in the plan; see the matrix.", timeout=SLOW
    )
    matrix = matrix_box.locator("table.compat-matrix")
    expect(matrix.locator("thead th")).to_have_text(
        ["Application version", "before the plan", "phase 1 (expand)", "phase 2 (backfill)", "phase 3 (contract)"]
    )
    v1_cells = matrix.locator('td.compat-cell[data-version="app-v1"]')
    expect(v1_cells).to_have_count(4)
    for before_contract in range(3):
        expect(v1_cells.nth(before_contract)).to_have_class(re.compile(r"\bcompat-ok\b"))
        expect(v1_cells.nth(before_contract)).to_contain_text("✓ ok")
    contract_cell = v1_cells.nth(3)
    expect(contract_cell).to_have_class(re.compile(r"\bcompat-broken\b"))
    expect(contract_cell).to_contain_text("✗ 3 breaking")
    reason = contract_cell.locator("li.error", has_text='column "name" does not exist').first
    expect(reason).to_be_hidden()  # folded until the cell is opened
    contract_cell.locator("summary").click()
    expect(reason).to_be_visible()
    expect(contract_cell.locator("pre").first).to_contain_text("name")
    v2_cells = matrix.locator('td.compat-cell[data-version="app-v2"]')
    expect(v2_cells.nth(0)).to_contain_text("✗ 3 breaking")  # app-v2 needs full_name: not before the plan
    expect(v2_cells.nth(3)).to_contain_text("✓ ok")
    screenshot(page, "query-compatibility")

    # 4. The contract's queries gate is closed by app-v1 (deployed) …
    expect(queries_gate).to_have_class(re.compile(r"\bgate-closed\b"))
    expect(queries_gate).to_contain_text("app-v1 (deployed) break after this phase")
    expect(queries_gate).to_contain_text('column "name"')
    expect(
        page.get_by_test_id("gates-1").locator("li.gate", has_text="Queries of deployed versions work")
    ).to_have_class(re.compile(r"\bgate-open\b"))
    expect(page.get_by_test_id("gates-2").locator("li.gate", has_text="Queries of deployed")).to_have_count(0)

    # … until app-v2 is deployed and app-v1 retired on the versions page.
    page.get_by_role("link", name="versions and queries", exact=True).click()
    page.wait_for_url(versions_url)
    for name, status, reason_text, shown in (
        ("app-v2", "deployed", "", "deployed (running)"),
        ("app-v1", "retired", "last v1 pod gone", "retired (no instance left)"),
    ):
        form = section(name).locator("form.version-form")
        form.get_by_label("Status").select_option(status)
        form.get_by_label("Reason (optional)").fill(reason_text)
        form.get_by_role("button", name="Change status").click()
        expect(page.locator("ul.messages")).to_have_text(f"{name} is now {shown}.")
        expect(section(name).locator("h2 .version-status")).to_have_text(shown)

    page.get_by_role("link", name=plan.title).click()
    page.wait_for_url(plan_url)
    expect(page.get_by_test_id("compat-report")).not_to_contain_text("stale")
    expect(queries_gate).to_have_class(re.compile(r"\bgate-open\b"))
    expect(queries_gate).to_contain_text("every query of app-v2 works")
    expect(page.get_by_role("button", name="Override the queries gate")).to_have_count(0)

    from planner.models import AuditEvent

    assert AuditEvent.objects.filter(action="version.retired", details__reason="last v1 pod gone").exists()
