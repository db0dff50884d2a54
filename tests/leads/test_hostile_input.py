"""Hostile input on the public intake, the activities API, the lead list and privacy requests
(issue 13, items 4 and 7): each is a 4xx naming what is wrong, never a 500, and stores nothing.
PostgreSQL's JSONB refuses \\u0000, lone surrogates and non-finite numbers that SQLite accepts:
these tests mean something only on PostgreSQL (scripts/test.sh uses it when reachable)."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from leads.intake_schema import InternalIntakeInputSerializer
from leads.models import Activity, Campaign, IntakeSubmission, Lead, PrivacyRequest
from tests.conftest import client_for
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/leads/"


def post_raw(client, body: str, url: str = URL):
    return client.post(url, body, content_type="application/json")


def a_person(**overrides) -> dict:
    return {"email": "ada@analytical.example", "first_name": "Ada", **overrides}


# --- validation limits are the columns' ----------------------------------------------------------


def test_utm_campaign_longer_than_the_campaign_columns_is_a_400(key_client):
    # given
    limit = min(Campaign._meta.get_field("utm_campaign").max_length, Campaign._meta.get_field("name").max_length)
    # when
    too_long = key_client.post(URL, a_person(utm_campaign="c" * (limit + 1)), format="json")
    fits = key_client.post(URL, a_person(utm_campaign="c" * limit), format="json")
    # then
    assert too_long.status_code == 400, too_long.content
    assert "utm_campaign" in too_long.json()
    assert fits.status_code == 201, fits.content
    assert Lead.objects.get().campaign.utm_campaign == "c" * limit


def test_every_text_limit_of_the_intake_is_at_most_its_column():
    # given
    serializer = InternalIntakeInputSerializer()
    columns = {f.name: f for f in Lead._meta.get_fields() if getattr(f, "max_length", None)}
    campaign = Campaign._meta
    # then
    for name, field in serializer.fields.items():
        if name in columns:
            assert getattr(field, "max_length", None) in (None, columns[name].max_length), name
    assert serializer.fields["campaign"].max_length == campaign.get_field("name").max_length
    assert serializer.fields["utm_campaign"].max_length <= campaign.get_field("utm_campaign").max_length


# --- JSON that PostgreSQL cannot store ------------------------------------------------------------


@pytest.mark.parametrize(
    "custom_fields",
    [
        '{"fleet": "a\\u0000b"}',
        '{"fl\\u0000eet": "ab"}',
        '{"fleet": "a\\ud800b"}',
        '{"fleet": 1e999}',
        '{"fleet": -1e999}',
    ],
    ids=["nul-value", "nul-key", "lone-surrogate", "infinity", "minus-infinity"],
)
def test_custom_fields_postgresql_cannot_store_are_a_400_naming_the_field(key_client, custom_fields):
    # when
    response = post_raw(key_client, f'{{"email": "ada@analytical.example", "custom_fields": {custom_fields}}}')
    # then
    assert response.status_code == 400, response.content
    assert "custom_fields" in response.json()
    assert not Lead.objects.exists() and not IntakeSubmission.objects.exists()


@pytest.mark.parametrize(
    "extra",
    ['"a\\u0000b"', '"a\\udfffb"', "1e999", '{"deep": ["x\\u0000", {"\\u0000": -1e999}]}'],
    ids=["nul", "lone-surrogate", "infinity", "nested"],
)
def test_unknown_fields_are_ignored_and_the_intake_log_keeps_a_safe_form(key_client, extra):
    # when
    response = post_raw(key_client, f'{{"email": "ada@analytical.example", "referrer_note": {extra}}}')
    # then
    assert response.status_code == 201, response.content
    stored = IntakeSubmission.objects.get().payload
    assert stored["email"] == "ada@analytical.example"
    text = json.dumps(stored, allow_nan=False)  # no inf / nan left
    assert "\\u0000" not in text and "\\ud8" not in text and "\\udf" not in text


def test_form_post_with_a_nul_in_an_unknown_field_is_logged_safely(key_client):
    # when
    response = key_client.post(
        URL, "email=ada%40analytical.example&submit=Se%00nd", content_type="application/x-www-form-urlencoded"
    )
    # then
    assert response.status_code == 201, response.content
    assert IntakeSubmission.objects.get().payload["submit"] == "Se\ufffdnd"


@pytest.mark.parametrize("depth", [100, 5_000, 100_000])
def test_deeply_nested_json_is_a_400_not_a_recursion_error(key_client, depth):
    # when
    response = post_raw(key_client, '{"email": "ada@analytical.example", "x": ' + "[" * depth + "]" * depth + "}")
    # then
    assert response.status_code == 400, response.content[:500]
    assert "nested" in response.content.decode()
    assert not Lead.objects.exists()


def test_valid_nesting_in_an_unknown_field_is_accepted(key_client):
    # when
    response = post_raw(key_client, '{"email": "ada@analytical.example", "x": ' + "[" * 20 + "]" * 20 + "}")
    # then
    assert response.status_code == 201, response.content


# --- the activities API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        '{"subject": "a\\u0000b"}',
        '{"a\\u0000": 1}',
        '{"subject": "\\ud83d"}',
        '{"duration": 1e999}',
        '{"list": [[[{"x": "\\u0000"}]]]}',
        '{"x": ' + "[" * 5_000 + "]" * 5_000 + "}",
    ],
    ids=["nul-value", "nul-key", "lone-surrogate", "infinity", "nested-nul", "too-deep"],
)
def test_activity_payload_postgresql_cannot_store_is_a_400(rep_user, payload):
    # given
    lead = LeadFactory(owner=rep_user)
    url = f"/api/v1/leads/{lead.pk}/activities/"
    # when
    response = post_raw(client_for(rep_user), f'{{"kind": "call", "payload": {payload}}}', url=url)
    # then
    assert response.status_code == 400, response.content[:500]
    assert "payload" in response.json() or "nested" in response.content.decode()
    assert not Activity.objects.filter(lead=lead, kind="call").exists()


def test_activity_payload_that_postgresql_can_store_is_kept(rep_user):
    # given
    lead = LeadFactory(owner=rep_user)
    # when
    response = client_for(rep_user).post(
        f"/api/v1/leads/{lead.pk}/activities/",
        {"kind": "call", "payload": {"subject": "Ünïcode ✓ 😀", "minutes": 1.5, "tags": [{"a": None}]}},
        format="json",
    )
    # then
    assert response.status_code == 201, response.content
    assert Activity.objects.get(lead=lead, kind="call").payload["subject"] == "Ünïcode ✓ 😀"


# --- item 7: other 500s ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["ops", "admin"])
def test_options_on_the_lead_list_describes_the_capture(who, ops_user):
    # given
    user = ops_user if who == "ops" else UserFactory(is_superuser=True, is_staff=True)
    # when
    response = client_for(user).options(URL)
    # then
    assert response.status_code == 200, response.content
    assert "email" in response.json()["actions"]["POST"]


@pytest.mark.parametrize("page", ["99999999999999999999", "9223372036854775807", "-5", "x"])
def test_lead_list_page_out_of_range_is_not_a_500(ops_user, page):
    # given
    LeadFactory()
    client = Client()
    client.force_login(ops_user)
    # when
    response = client.get(f"{reverse('leads:lead_list')}?page={page}")
    # then
    assert response.status_code == 200


@pytest.fixture
def privacy_user(db):
    user = UserFactory(with_role="Marketing ops")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="leads", codename__in=["export_lead_data", "erase_lead"])
    )
    return user


@pytest.mark.parametrize("action", ["export", "erase"])
@pytest.mark.parametrize("reference", ["T-\x007", "T" * 65])
def test_privacy_reference_postgresql_cannot_store_is_a_400(privacy_user, action, reference):
    # given
    lead = LeadFactory(email="ada@analytical.example")
    client = Client()
    client.force_login(privacy_user)
    # when
    response = client.post(
        reverse(f"leads-privacy:{action}", args=[lead.pk]), {"reference": reference, "confirm": "ERASE"}
    )
    # then
    assert response.status_code == 400, response.content[:500]
    assert b"reference" in response.content.lower()
    assert not PrivacyRequest.objects.exists()
    assert Lead.objects.get(pk=lead.pk).email == "ada@analytical.example"
