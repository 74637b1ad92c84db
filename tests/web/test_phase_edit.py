"""Editing a phase's SQL: analysis beside it, refreshed as you type; invalid SQL saves nothing."""

import pytest
from django.urls import reverse

from planner.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def phase(plan):
    return plan.phases.get()


def test_the_edit_page_shows_the_analysis(client, make_user, phase):
    client.force_login(make_user("release manager"))
    body = client.get(reverse("phase-edit", args=[phase.pk])).content.decode()
    assert "ACCESS EXCLUSIVE" in body
    assert 'hx-trigger="input changed delay:400ms"' in body


def test_the_preview_analyses_what_is_typed(client, make_user, phase):
    client.force_login(make_user("release manager"))
    response = client.post(
        reverse("analyze-preview", args=[phase.pk]),
        {"up_sql": "CREATE INDEX i ON users (email);"},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "require-concurrent-index-creation" in body
    assert "CREATE INDEX CONCURRENTLY" in body
    assert "<html" not in body


def test_the_preview_shows_the_parser_message(client, make_user, phase):
    client.force_login(make_user("release manager"))
    body = client.post(reverse("analyze-preview", args=[phase.pk]), {"up_sql": "ALTER TABEL x;"}).content.decode()
    assert "Does not parse" in body
    assert "syntax error at or near" in body


def test_saving_valid_sql_is_audited(client, make_user, phase):
    client.force_login(make_user("release manager"))
    response = client.post(
        reverse("phase-edit", args=[phase.pk]),
        {"up_sql": "ALTER TABLE users ADD COLUMN w boolean;", "down_sql": "ALTER TABLE users DROP COLUMN w;"},
    )
    assert response.status_code == 302
    phase.refresh_from_db()
    assert phase.up_sql == "ALTER TABLE users ADD COLUMN w boolean;"
    assert AuditEvent.objects.get(action="phase.sql_changed").details == {"fields": ["up_sql", "down_sql"]}


def test_invalid_sql_saves_nothing_and_says_why(client, make_user, phase):
    before = phase.up_sql
    client.force_login(make_user("release manager"))
    response = client.post(reverse("phase-edit", args=[phase.pk]), {"up_sql": "ALTER TABEL x;", "down_sql": ""})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was saved" in body and "syntax error" in body
    assert "ALTER TABEL x;" in body  # what was typed is kept in the form
    phase.refresh_from_db()
    assert phase.up_sql == before
    assert not AuditEvent.objects.filter(action="phase.sql_changed").exists()


@pytest.mark.parametrize("role", ["viewer", "on-call engineer"])
def test_only_release_managers_edit(client, make_user, phase, role):
    client.force_login(make_user(role))
    assert client.get(reverse("phase-edit", args=[phase.pk])).status_code == 403
    assert client.post(reverse("phase-edit", args=[phase.pk]), {"up_sql": "SELECT 1;"}).status_code == 403


def test_a_phase_is_judged_after_the_earlier_phases(client, make_user, plan, target_dsn):
    """SET NOT NULL is safe after an earlier phase validated CHECK (col IS NOT NULL) on the live table."""
    import psycopg

    from planner.models import Phase

    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text)")
        conn.execute("INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 20000) g")
        conn.execute("ANALYZE users")
    first = plan.phases.get()
    first.up_sql = (
        "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE users VALIDATE CONSTRAINT email_nn;"
    )
    first.save()
    second = Phase.objects.create(plan=plan, position=2, kind="contract", name="not null", up_sql="")
    client.force_login(make_user("release manager"))
    sql = "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"
    after = client.post(reverse("analyze-preview", args=[second.pk]), {"up_sql": sql}).content.decode()
    alone = client.post(reverse("analyze-preview", args=[first.pk]), {"up_sql": sql}).content.decode()
    assert "scans" not in after.split("<tbody>")[1].split("</tbody>")[0]
    assert "scans" in alone.split("<tbody>")[1].split("</tbody>")[0]
