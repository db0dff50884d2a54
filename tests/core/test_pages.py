import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.core.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_health_check(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_pages_need_a_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_sign_in_and_out(client):
    # given
    UserFactory(username="ann")
    # when
    response = client.post("/login/", {"username": "ann", "password": "pw"})
    # then
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/logout/")
    assert client.get("/").status_code == 302


def test_wrong_password_shows_the_form_again(client):
    UserFactory(username="ann")
    response = client.post("/login/", {"username": "ann", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_only_the_current_page_is_highlighted_in_the_navigation(client):
    # given
    from core.roles import Role

    client.force_login(UserFactory(with_role=Role.SALES_MANAGER))
    # when
    response = client.get("/routing/team/")
    # then
    active = [item.label for item in response.context["nav_items"] if item.active]
    assert active == ["Team"]


def test_htmx_partials_skip_the_top_bar_queries(client):
    # given: the lead table refreshed by htmx has no top bar, so no roles/notification queries
    from core.roles import Role

    user = UserFactory(with_role=Role.MARKETING_OPS)
    client.force_login(user)
    client.get("/leads/")
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "lead-table"}
    with CaptureQueriesContext(connection) as partial:
        client.get("/leads/", **headers)
    with CaptureQueriesContext(connection) as full:
        client.get("/leads/")
    # then
    partial_sql = " ".join(q["sql"] for q in partial.captured_queries)
    assert "core_notification" not in partial_sql
    assert "core_notification" in " ".join(q["sql"] for q in full.captured_queries)
