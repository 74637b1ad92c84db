"""Every page requires login; roles see what their permissions allow."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url_name", ["plan-list", "admin:index"])
def test_it_redirects_anonymous_users_to_login(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_it_redirects_anonymous_users_from_a_plan_page(client, plan):
    response = client.get(reverse("plan-detail", args=[plan.id]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("role", ["viewer", "release manager", "on-call engineer"])
def test_each_role_sees_the_plan_list_and_plan(client, make_user, plan, role):
    client.force_login(make_user(role))
    assert plan.title in client.get(reverse("plan-list")).content.decode()
    page = client.get(reverse("plan-detail", args=[plan.id])).content.decode()
    assert "ALTER TABLE users ADD COLUMN v boolean;" in re.sub(r"<[^>]+>", "", page)  # SQL is highlighted


def test_a_user_without_a_role_is_forbidden(client, make_user, plan):
    client.force_login(make_user(None))
    assert client.get(reverse("plan-list")).status_code == 403
    assert client.get(reverse("plan-detail", args=[plan.id])).status_code == 403


def test_login_with_a_password_works(client, make_user):
    user = make_user("viewer", username="vera")
    response = client.post(reverse("login"), {"username": "vera", "password": "pw-for-tests-1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("plan-list")
    assert client.get(reverse("plan-list")).context["user"] == user


def test_the_list_filters_by_search_and_status(client, make_user, plan):
    client.force_login(make_user("viewer"))
    assert plan.title in client.get(reverse("plan-list"), {"q": "email"}).content.decode()
    assert plan.title not in client.get(reverse("plan-list"), {"q": "nothing-like-it"}).content.decode()
    assert plan.title not in client.get(reverse("plan-list"), {"status": "running"}).content.decode()


def test_an_htmx_search_renders_only_the_rows(client, make_user, plan):
    client.force_login(make_user("viewer"))
    response = client.get(reverse("plan-list"), {"q": "email"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert plan.title in body
    assert "<html" not in body


def test_logout_needs_a_post(client, make_user):
    client.force_login(make_user("viewer"))
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
