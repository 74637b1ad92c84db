"""Target credentials: encrypted at rest, usable for connecting, never shown."""

import pytest
from django.urls import reverse

from planner.models import AuditEvent, TargetDatabase
from planner.services.targets import check_connection

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Pa55word-do-not-show"


@pytest.fixture
def secret_target(db):
    target = TargetDatabase(name="prod", host="127.0.0.1", port=1, dbname="app", username="app")
    target.set_password(SECRET)
    target.save()
    return target


def test_the_password_is_stored_encrypted(secret_target):
    stored = TargetDatabase.objects.values_list("password_encrypted", flat=True).get(pk=secret_target.pk)
    assert SECRET not in stored
    assert f"password={SECRET}" in secret_target.conninfo()


def test_the_password_appears_in_no_representation(secret_target):
    for text in (str(secret_target), repr(secret_target), secret_target.display_dsn):
        assert SECRET not in text


def test_the_admin_never_shows_the_password(admin_client, secret_target):
    for url in (
        reverse("admin:planner_targetdatabase_change", args=[secret_target.pk]),
        reverse("admin:planner_targetdatabase_changelist"),
    ):
        body = admin_client.get(url).content.decode()
        assert SECRET not in body
        assert secret_target.password_encrypted not in body


def test_the_admin_sets_a_password_write_only_and_audits_without_it(admin_client):
    response = admin_client.post(
        reverse("admin:planner_targetdatabase_add"),
        {
            "name": "staging",
            "host": "db",
            "port": "5432",
            "dbname": "app",
            "username": "app",
            "sslmode": "prefer",
            "new_password": SECRET,
            "password_env_var": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    target = TargetDatabase.objects.get(name="staging")
    assert f"password={SECRET}" in target.conninfo()
    event = AuditEvent.objects.get(action="targetdatabase.created.admin")
    assert SECRET not in str(event.details)


def test_a_password_from_an_environment_variable(monkeypatch, db):
    target = TargetDatabase.objects.create(name="env", host="h", dbname="d", username="u", password_env_var="APP_DB_PW")
    monkeypatch.setenv("APP_DB_PW", SECRET)
    assert f"password={SECRET}" in target.conninfo()
    monkeypatch.delenv("APP_DB_PW")
    from planner.credentials import CredentialsError

    with pytest.raises(CredentialsError, match="APP_DB_PW is not set"):
        target.conninfo()


def test_checking_a_reachable_target_records_its_version(demo_target):
    check_connection(demo_target)
    demo_target.refresh_from_db()
    assert demo_target.last_check_error == ""
    assert demo_target.server_version.split(".")[0] in {"11", "12", "13", "14", "15", "16", "17", "18"}
    assert AuditEvent.objects.filter(action="target.checked", details__ok=True).exists()


def test_a_failed_check_records_an_error_without_the_password(secret_target):
    check_connection(secret_target)
    secret_target.refresh_from_db()
    assert secret_target.last_check_error
    assert SECRET not in secret_target.last_check_error
