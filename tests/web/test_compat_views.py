"""Query compatibility in the dashboard: the versions page and its forms, the plan page's matrix,
"Check queries now", and the override of a phase's queries gate (real PostgreSQL throughout)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from planner.models import ApplicationVersion, AppQuery, AuditEvent, Phase
from planner.services import compat
from tests.recipes.conftest import driver_for, shop  # noqa: F401 - the rename plan runs on the recipes' shop

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).parents[1] / "compat" / "samples"


def post(client, url: str, data: dict | None = None):
    """POST and follow the redirect as a browser does: (where it landed, the messages shown there)."""
    response = client.post(url, data or {}, follow=True)
    assert response.status_code == 200, response.content[:300]
    ((landed, status),) = response.redirect_chain
    assert status == 302
    return landed, [str(message) for message in response.context["messages"]]


def sample_files(version: str) -> list[SimpleUploadedFile]:
    directory = SAMPLES / version / ".sqlx"
    return [SimpleUploadedFile(path.name, path.read_bytes()) for path in sorted(directory.glob("query-*.json"))]


def cell(page: str, version: str, boundary: str) -> str:
    """The text of one matrix cell of the plan page."""
    found = re.search(
        rf'<td class="compat-cell[^"]*" data-version="{re.escape(version)}" data-boundary="{boundary}">(.*?)</td>',
        page,
        re.S,
    )
    assert found, f"no cell {version} × {boundary}"
    return found.group(1)


@pytest.fixture
def manager(client, make_user):
    user = make_user("release manager")
    client.force_login(user)
    return user


@pytest.fixture
def version(demo_target, make_user):
    return compat.add_version(make_user("release manager"), demo_target, "app-v1", "deployed")


@pytest.fixture
def rename(driver_for):  # noqa: F811 - the fixture imported above
    """A rename-column plan (expand, backfill, contract) and app-v1 (deployed) / app-v2 (planned)."""
    driver = driver_for("rename_column", {"table": "users", "column": "name", "new_name": "full_name"})
    for name, status in (("app-v1", "deployed"), ("app-v2", "planned")):
        version = compat.add_version(driver.manager, driver.plan.target, name, status)
        compat.import_sqlx_directory(driver.manager, version, SAMPLES / name / ".sqlx")
    return driver


# -- the versions page -------------------------------------------------------------------------------


def test_a_viewer_sees_versions_and_queries_but_no_forms(client, make_user, version):
    compat.add_pasted(
        make_user("release manager"), version, "SELECT id, email FROM users WHERE id = $1 AND note = '<b>x</b>'"
    )
    client.force_login(make_user("viewer"))
    response = client.get(reverse("target-versions", args=[version.target_id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "app-v1" in page and "deployed (running)" in page and "1 from pasted" in page
    assert "pasted, line 1" in page and "SELECT id, email FROM users" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    for form_text in ("Add version", "Change status", 'name="files"', 'name="queries"', "Most called", "Remove"):
        assert form_text not in page


def test_the_plan_page_links_the_versions_page(client, make_user, plan):
    client.force_login(make_user("viewer"))
    page = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert reverse("target-versions", args=[plan.target_id]) in page
    assert "No application queries are recorded" in page and "Check queries now" not in page
    listing = client.get(reverse("plan-list")).content.decode()
    assert reverse("target-versions", args=[plan.target_id]) in listing


def test_a_release_manager_adds_a_version_and_changes_its_status(client, manager, demo_target):
    url = reverse("target-versions", args=[demo_target.pk])
    assert "Add version" in client.get(url).content.decode()
    landed, messages = post(
        client, reverse("version-add", args=[demo_target.pk]), {"name": "app-v2", "status": "planned"}
    )
    added = ApplicationVersion.objects.get(target=demo_target, name="app-v2")
    assert landed == f"{url}#version-{added.pk}"
    assert added.status == "planned" and messages == ["Version app-v2 added (planned (not running yet))."]

    _, messages = post(client, reverse("version-add", args=[demo_target.pk]), {"name": "app-v2", "status": "deployed"})
    assert messages == [f"No version added: name: target {demo_target.name} already has a version named 'app-v2'"]
    assert ApplicationVersion.objects.filter(target=demo_target).count() == 1

    status_url = reverse("version-status", args=[added.pk])
    _, messages = post(client, status_url, {"status": "deployed", "reason": "rolled out at 10:00"})
    assert messages == ["app-v2 is now deployed (running)."]
    added.refresh_from_db()
    assert added.status == "deployed"
    assert AuditEvent.objects.filter(action="version.deployed", details__reason="rolled out at 10:00").exists()
    _, messages = post(client, status_url, {"status": "gone"})
    assert "must be one of planned, deployed, retired" in messages[0]


def test_uploading_both_sample_directories(client, manager, demo_target):
    for name in ("app-v1", "app-v2"):
        version = compat.add_version(manager, demo_target, name, "deployed")
        _, messages = post(client, reverse("version-upload-sqlx", args=[version.pk]), {"files": sample_files(name)})
        assert messages == [f"{name}, sqlx offline files: 5 added, 0 unchanged, 0 removed."]
        assert version.queries.filter(source=AppQuery.Source.SQLX).count() == 5
    page = client.get(reverse("target-versions", args=[demo_target.pk])).content.decode()
    assert page.count("5 from sqlx offline data") == 2 and page.count(">Remove</button>") == 10


def test_a_malformed_file_is_named_and_the_good_ones_are_imported(client, manager, version):
    files = sample_files("app-v1")[:3] + [SimpleUploadedFile("query-broken.json", b'{"db_name": "PostgreSQL",')]
    _, messages = post(client, reverse("version-upload-sqlx", args=[version.pk]), {"files": files})
    assert messages[0] == "app-v1, sqlx offline files: 3 added, 0 unchanged, 0 removed; 1 skipped."
    assert len(messages) == 2 and messages[1].startswith("Skipped query-broken.json: not JSON")
    assert version.queries.count() == 3


def test_an_oversized_upload_is_refused_whole(client, manager, version, monkeypatch):
    from planner.views import compat as views

    monkeypatch.setattr(views, "MAX_FILE_BYTES", 400)
    url = reverse("version-upload-sqlx", args=[version.pk])
    _, messages = post(client, url, {"files": sample_files("app-v1")})
    assert len(messages) == 1 and messages[0].startswith("app-v1: nothing imported: query-")
    assert "over 0 KB (sqlx offline files are a few KB each)" in messages[0]
    assert version.queries.count() == 0
    _, messages = post(client, url)
    assert "choose your .sqlx directory" in messages[0]


def test_pasted_queries_are_added_and_a_bad_one_is_named_by_line(client, manager, version):
    text = "SELECT id, email FROM users WHERE id = $1;\n\nSELEC name FROM users;\nUPDATE users SET name = $1;"
    url = reverse("version-paste", args=[version.pk])
    _, messages = post(client, url, {"queries": text})
    assert messages[0] == "app-v1, pasted queries: 2 added, 0 unchanged, 0 removed; 1 skipped."
    assert messages[1].startswith("Skipped pasted, line 3: does not parse")
    assert sorted(version.queries.values_list("origin", flat=True)) == ["pasted, line 1", "pasted, line 4"]
    _, messages = post(client, url, {"queries": "  "})
    assert "paste at least one query" in messages[0]


def test_pg_stat_statements_missing_is_a_message_not_an_error_page(client, manager, version):
    url = reverse("version-import-stat-statements", args=[version.pk])
    _, messages = post(client, url, {"limit": "20"})
    assert len(messages) == 1 and f"nothing imported from {version.target.name}" in messages[0]
    assert "pg_stat_statements is not installed" in messages[0]
    assert AuditEvent.objects.filter(action="version.queries_import_failed").exists()
    assert "whole number" in post(client, url, {"limit": "lots"})[1][0]
    assert "between 1 and 1000" in post(client, url, {"limit": "5000"})[1][0]


def test_removing_a_query(client, manager, version):
    compat.add_pasted(manager, version, "SELECT 1 FROM users;")
    query = version.queries.get()
    _, messages = post(client, reverse("query-delete", args=[query.pk]))
    assert messages == ["app-v1: removed pasted, line 1."] and not version.queries.exists()


# -- the plan page -----------------------------------------------------------------------------------


def test_check_queries_now_shows_the_contract_breaking_app_v1(client, rename):
    plan = rename.plan
    client.force_login(rename.oncall)
    url = reverse("plan-detail", args=[plan.pk])
    page = client.get(url).content.decode()
    assert "Query compatibility" in page and "Not checked yet." in page and "Check queries now" in page

    landed, messages = post(client, reverse("plan-check-queries", args=[plan.pk]))
    assert landed == f"{url}#query-compatibility"
    assert messages == ["Queries checked: 6 break somewhere in the plan; see the matrix."]

    page = client.get(url).content.decode()
    expand, backfill, contract = rename.phases()
    assert f"by {rename.oncall.username}" in page and "stale" not in page
    assert "✓" in cell(page, "app-v1", "before") and "✓" in cell(page, "app-v1", f"phase-{expand.pk}")
    broken = cell(page, "app-v1", f"phase-{contract.pk}")
    assert "✗</span> 3 breaking" in broken and "<details>" in broken
    assert "column &quot;name&quot; does not exist" in broken and "query-" in broken and "SELECT" in broken
    assert "✗</span> 3 breaking" in cell(page, "app-v2", "before")
    assert "✓" in cell(page, "app-v2", f"phase-{contract.pk}")
    # The contract's gate names app-v1; an on-call engineer cannot override it.
    assert "app-v1 (deployed) break after this phase" in page and "Override the queries gate" not in page

    Phase.objects.filter(pk=expand.pk).update(up_sql=expand.up_sql + "\nSELECT 1;")
    page = client.get(url).content.decode()
    assert "stale: phases or queries changed since this check" in page


def test_a_failed_check_shows_its_error(client, make_user, plan, version):
    compat.add_pasted(make_user("release manager"), version, "SELECT id FROM users;")
    plan.target.port = 1  # nothing listens there: no shadow copy can be made
    plan.target.save()
    client.force_login(make_user("on-call engineer"))
    _, messages = post(client, reverse("plan-check-queries", args=[plan.pk]))
    assert messages[0].startswith("Queries were not checked: could not make a shadow copy")
    page = client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert "The check could not run: could not make a shadow copy" in page


def test_override_needs_a_reason_and_can_be_withdrawn(client, rename):
    client.force_login(rename.manager)
    compat.check_plan(rename.manager, rename.plan)
    contract = rename.phases()[2]
    url = reverse("plan-detail", args=[rename.plan.pk])
    assert "Override the queries gate" in client.get(url).content.decode()

    override_url = reverse("phase-override-compat", args=[contract.pk])
    landed, messages = post(client, override_url, {"reason": "   "})
    assert landed == f"{url}#phase-{contract.pk}"
    assert messages == ["Phase 3 not overridden: reason: say why the phase may break a deployed version's queries"]
    assert Phase.objects.get(pk=contract.pk).compat_override_reason == ""

    _, messages = post(client, override_url, {"reason": "v1's job reading name is off"})
    assert messages == ["Phase 3: the queries gate is overridden."]
    contract.refresh_from_db()
    assert contract.compat_override_reason == "v1's job reading name is off" and contract.compat_override_by
    page = client.get(url).content.decode()
    assert f"overridden by {rename.manager.username}: v1&#x27;s job reading name is off" in page
    assert "Withdraw the queries override" in page

    _, messages = post(client, reverse("phase-withdraw-compat-override", args=[contract.pk]))
    assert messages == ["Phase 3: the queries gate override is withdrawn."]
    assert Phase.objects.get(pk=contract.pk).compat_override_reason == ""


def test_a_viewer_is_refused_every_compatibility_action(client, make_user, plan, version):
    compat.add_pasted(make_user("release manager"), version, "SELECT id FROM users;")
    query, phase = version.queries.get(), plan.phases.get()
    client.force_login(make_user("viewer"))
    before = (AuditEvent.objects.count(), ApplicationVersion.objects.count(), AppQuery.objects.count())
    posts = [
        (reverse("version-add", args=[version.target_id]), {"name": "app-v2"}),
        (reverse("version-status", args=[version.pk]), {"status": "retired"}),
        (reverse("version-upload-sqlx", args=[version.pk]), {"files": sample_files("app-v2")}),
        (reverse("version-paste", args=[version.pk]), {"queries": "SELECT 2 FROM users;"}),
        (reverse("version-import-stat-statements", args=[version.pk]), {"limit": "5"}),
        (reverse("query-delete", args=[query.pk]), {}),
        (reverse("plan-check-queries", args=[plan.pk]), {}),
        (reverse("phase-override-compat", args=[phase.pk]), {"reason": "because"}),
        (reverse("phase-withdraw-compat-override", args=[phase.pk]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert (AuditEvent.objects.count(), ApplicationVersion.objects.count(), AppQuery.objects.count()) == before
    version.refresh_from_db()
    assert version.status == "deployed" and not plan.compat_reports.exists()
    assert Phase.objects.get(pk=phase.pk).compat_override_reason == ""
    assert client.get(reverse("version-add", args=[version.target_id])).status_code == 405


def test_the_plan_page_reads_the_compatibility_state_once(client, make_user, rename, monkeypatch):
    compat.check_plan(rename.manager, rename.plan)
    calls = []
    real = compat.plan_queries
    monkeypatch.setattr(compat, "plan_queries", lambda plan: calls.append(plan.pk) or real(plan))
    client.force_login(make_user("viewer"))
    page = client.get(reverse("plan-detail", args=[rename.plan.pk])).content.decode()
    assert "✗</span> 3 breaking" in page and "Override the queries gate" not in page
    assert calls == [rename.plan.pk]  # every phase's gate and the matrix share one state
