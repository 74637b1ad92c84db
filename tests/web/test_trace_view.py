"""The phase page's "Trace on a shadow copy" button: measured locks next to predicted ones."""

from __future__ import annotations

import psycopg
import pytest
from django.urls import reverse

from planner.models import AuditEvent
from planner.pg.shadow import SHADOW_PREFIX


@pytest.fixture
def phase(plan, target_dsn):
    with psycopg.connect(target_dsn, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE users (id bigint PRIMARY KEY, n integer, email text);"
            "INSERT INTO users SELECT g, g, 'e' || g FROM generate_series(1, 100) g; ANALYZE users;"
        )
    return plan.phases.get(position=1)


def post_trace(client, user, phase, **data):
    client.force_login(user)
    return client.post(reverse("phase-trace", args=[phase.id]), data)


def test_the_edit_page_has_the_button(client, make_user, phase):
    client.force_login(make_user("release manager"))
    page = client.get(reverse("phase-edit", args=[phase.id])).content.decode()
    assert "Trace on a shadow copy" in page and reverse("phase-trace", args=[phase.id]) in page


def test_trace_shows_measured_locks_of_the_sql_being_typed(client, make_user, phase, pg_server_url):
    sql = "CREATE INDEX users_email ON users (email);\nALTER TABLE users ALTER COLUMN n TYPE bigint;"
    response = post_trace(client, make_user("release manager"), phase, up_sql=sql)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="trace"' in html and "measured" in html
    index, retype = response.context["trace"]["statements"]
    assert index["measured"]["locks"] == {"users": "SHARE"} and index["measured"]["scans"] == ["users"]
    assert retype["measured"]["locks"] == {"users": "ACCESS EXCLUSIVE"}
    assert retype["measured"]["rewrites"] == ["users"]
    assert index["differences"] == [] and retype["differences"] == []
    assert "<code>users</code> ACCESS EXCLUSIVE" in html
    assert AuditEvent.objects.filter(action="phase.traced", object_id=str(phase.id)).count() == 1
    with psycopg.connect(pg_server_url) as connection:
        left = connection.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s", [SHADOW_PREFIX + "%"])
        assert left.fetchone() == (0,)


def test_viewers_trace_the_saved_sql_only(client, make_user, phase):
    response = post_trace(client, make_user("viewer"), phase, up_sql="CREATE INDEX ON users (email);")
    assert response.status_code == 200
    (statement,) = response.context["trace"]["statements"]
    assert statement["kind"] == "AlterTableStmt"  # the saved ADD COLUMN, not the posted CREATE INDEX
    assert statement["measured"]["locks"] == {"users": "ACCESS EXCLUSIVE"}


def test_statements_outside_a_transaction_are_not_traced(client, make_user, phase):
    sql = "CREATE INDEX CONCURRENTLY users_n ON users (n);"
    response = post_trace(client, make_user("release manager"), phase, up_sql=sql)
    assert "not traced (cannot run in a transaction)" in response.content.decode()


def test_unreachable_target_is_shown_without_the_password(client, make_user, phase):
    target = phase.plan.target
    target.port = 1
    target.set_password("hunter2-secret")
    target.save()
    response = post_trace(client, make_user("release manager"), phase, up_sql="SELECT 1;")
    html = response.content.decode()
    assert response.status_code == 200 and "The trace could not run" in html
    assert "hunter2-secret" not in html


def test_needs_permission_and_post(client, make_user, phase):
    assert post_trace(client, make_user(None), phase).status_code == 403
    assert client.get(reverse("phase-trace", args=[phase.id])).status_code == 405
