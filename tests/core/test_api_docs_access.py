"""The OpenAPI schema and Swagger UI are for signed-in users unless DJANGO_API_DOCS_PUBLIC opens them."""

import pytest
from rest_framework.authtoken.models import Token

from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_schema_and_docs_need_a_signed_in_user(api_client, client):
    # when: nobody is signed in
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    docs = client.get("/api/docs/")
    docs_script = client.get("/api/docs/?script=")

    # then: no schema, and the docs send to the sign-in page
    assert schema.status_code in (401, 403)
    assert "paths" not in schema.content.decode()
    assert docs.status_code == 302 and docs["Location"].startswith("/login/?next=/api/docs/")
    assert docs_script.status_code == 302


def test_signed_in_users_get_the_schema_and_docs(rep_user, client):
    # given: a rep, by session and by token
    token = Token.objects.create(user=rep_user)
    client.force_login(rep_user)

    # when
    schema = client_for(rep_user).get("/api/schema/", HTTP_ACCEPT="application/json")
    by_token = client_for(None).get(
        "/api/schema/", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    docs = client.get("/api/docs/")

    # then: the docs page loads its script as a file (nothing inline for the CSP)
    assert schema.status_code == 200 and "/api/v1/leads/" in schema.json()["paths"]
    assert by_token.status_code == 200
    html = docs.content.decode()
    assert docs.status_code == 200 and "swagger-ui" in html
    assert '<script src="/api/docs/?script="' in html or "?script=" in html
    assert "<script>" not in html


def test_a_setting_opens_them_to_everyone(api_client, client, settings):
    settings.LEADOPS_API_DOCS_PUBLIC = True
    assert api_client.get("/api/schema/", HTTP_ACCEPT="application/json").status_code == 200
    assert client.get("/api/docs/").status_code == 200
