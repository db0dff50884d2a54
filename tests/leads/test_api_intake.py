"""POST /api/v1/leads/: what an external form or system sees."""

import json

import pytest
from rest_framework.test import APIClient

from leads.models import Activity, ActivityKind, Campaign, IntakeOutcome, IntakeSubmission, Lead, Stage, StageChange
from tests.conftest import client_for
from tests.core.factories import UserFactory
from tests.leads.factories import ApiKeyFactory, CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/leads/"


def a_person(**overrides) -> dict:
    return {
        "email": "Ada.Lovelace@Analytical.example",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company_name": "Analytical Engines",
        "phone": "+44 20 7946 0958",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring-launch",
        "landing_page": "https://leadops.example/pricing",
        "marketing_consent": True,
        **overrides,
    }


def test_new_person_creates_a_lead_with_owner_and_stage_in_the_response(key_client, api_key):
    # when
    response = key_client.post(URL, a_person(), format="json")
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {"id", "stage", "owner", "source", "campaign", "created"}
    assert body["stage"] == "new"
    assert body["created"] is True
    assert body["source"] == api_key.source.name
    assert body["phone"] == "+442079460958"
    lead = Lead.objects.get(pk=body["id"])
    assert lead.email == "Ada.Lovelace@Analytical.example"  # kept as given
    assert lead.email_normalized == "ada.lovelace@analytical.example"
    assert lead.campaign.utm_campaign == "spring-launch"
    assert lead.marketing_consent is True and lead.consent_at is not None
    assert lead.first_touch["utm_source"] == "google"
    assert lead.activities.filter(kind=ActivityKind.FORM_SUBMITTED).count() == 1
    assert list(lead.stage_changes.values_list("from_stage", "to_stage")) == [("", Stage.NEW)]


def test_form_encoded_body_is_accepted_with_tags_and_custom_fields(key_client):
    # when
    response = key_client.post(
        URL,
        "email=grace%40navy.example&first_name=Grace&tags=webinar,vip&custom.fleet_size=12&submit=Send",
        content_type="application/x-www-form-urlencoded",
    )
    # then
    assert response.status_code == 201, response.content
    lead = Lead.objects.get(pk=response.json()["id"])
    assert sorted(lead.tags.values_list("name", flat=True)) == ["vip", "webinar"]
    assert lead.custom_fields == {"fleet_size": "12"}


def test_same_person_again_returns_200_with_the_same_lead_and_updates_last_touch(key_client):
    # given
    first = key_client.post(URL, a_person(), format="json").json()
    # when: same address in another spelling, from another campaign
    again = key_client.post(
        URL,
        {"email": " ADA.LOVELACE@analytical.EXAMPLE ", "utm_campaign": "autumn-webinar", "title": "Countess"},
        format="json",
    )
    # then
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first["id"]
    assert again.json()["created"] is False
    lead = Lead.objects.get()
    assert lead.first_touch["utm_campaign"] == "spring-launch"
    assert lead.last_touch["utm_campaign"] == "autumn-webinar"
    assert lead.last_campaign.utm_campaign == "autumn-webinar"
    assert lead.campaign.utm_campaign == "spring-launch"
    assert lead.title == "Countess"  # a blank field filled by the later submission
    assert lead.activities.filter(kind=ActivityKind.FORM_SUBMITTED).count() == 2
    assert IntakeSubmission.objects.filter(lead=lead).count() == 2


def test_a_returning_persons_response_shows_the_lead_as_stored(key_client):
    # given: a lead with an owner, a first-touch source and campaign, and custom fields
    rep = UserFactory(first_name="Rita", last_name="Rep")
    first = key_client.post(URL, a_person(custom_fields={"fleet": 12}), format="json").json()
    Lead.objects.filter(pk=first["id"]).update(owner=rep)
    # when: the person comes back with more custom fields
    again = key_client.post(
        URL, {"email": "ada.lovelace@analytical.example", "custom_fields": {"seats": "40"}}, format="json"
    )
    # then: the answer is the stored lead, the same as the internal API shows it
    body = again.json()
    assert again.status_code == 200
    assert body["owner"] == {"id": rep.pk, "name": "Rita Rep", "email": rep.email}
    assert (body["source"], body["campaign"]) == (first["source"], first["campaign"])
    assert body["custom_fields"] == {"fleet": 12, "seats": "40"}
    assert body["created_at"] == first["created_at"]
    stored = client_for(UserFactory(is_superuser=True)).get(f"{URL}{first['id']}/").json()
    assert {k: v for k, v in body.items() if k != "created"} == stored


def test_a_person_whose_lead_was_deleted_gets_a_new_lead(key_client):
    # given: this process has seen the person (so it looks for their lead first), then the lead is gone
    first = key_client.post(URL, a_person(), format="json").json()
    Lead.objects.filter(pk=first["id"]).delete()
    # when
    again = key_client.post(URL, a_person(), format="json")
    # then
    assert again.status_code == 201, again.content
    assert again.json()["id"] != first["id"] and Lead.objects.count() == 1


def test_gmail_dots_and_plus_tags_are_the_same_person(key_client):
    # given
    first = key_client.post(URL, {"email": "john.smith@gmail.com"}, format="json").json()
    # when
    again = key_client.post(URL, {"email": "JohnSmith+newsletter@googlemail.com"}, format="json")
    # then
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]


def test_same_phone_in_another_format_matches_the_existing_lead(key_client):
    # given
    first = key_client.post(URL, {"phone": "+1 (415) 555-2671", "first_name": "Sam"}, format="json").json()
    # when
    again = key_client.post(URL, {"phone": "4155552671", "country": "US", "email": "sam@corp.example"}, format="json")
    # then
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first["id"]
    lead = Lead.objects.get()
    assert lead.email_normalized == "sam@corp.example"  # the missing contact detail is added


def test_idempotency_key_replays_the_first_response_and_changes_nothing(key_client):
    # given
    first = key_client.post(URL, a_person(), format="json", HTTP_IDEMPOTENCY_KEY="form-123")
    activities_after_first = Activity.objects.count()
    # when
    retry = key_client.post(URL, a_person(), format="json", HTTP_IDEMPOTENCY_KEY="form-123")
    # then
    assert first.status_code == 201
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert IntakeSubmission.objects.count() == 1
    assert Activity.objects.count() == activities_after_first


def test_idempotency_key_reused_for_another_body_is_refused(key_client):
    # given
    key_client.post(URL, a_person(), format="json", HTTP_IDEMPOTENCY_KEY="form-9")
    # when
    response = key_client.post(URL, a_person(email="other@x.example"), format="json", HTTP_IDEMPOTENCY_KEY="form-9")
    # then
    assert response.status_code == 422
    assert "idempotency_key" in response.json()
    assert Lead.objects.count() == 1


def test_idempotency_keys_of_different_api_keys_do_not_collide(key_client):
    # given
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory().raw_key}")
    key_client.post(URL, a_person(), format="json", HTTP_IDEMPOTENCY_KEY="same")
    # when
    response = other.post(URL, a_person(email="bob@b.example", phone=""), format="json", HTTP_IDEMPOTENCY_KEY="same")
    # then
    assert response.status_code == 201
    assert Lead.objects.count() == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b.example", "phone": "call me maybe"}, "phone"),
        ({"email": "a@b.example", "phone": "+1 555"}, "phone"),
        ({"phone": "020 7946 0958"}, "phone"),  # no country code and no country
        ({"email": "a@b.example", "first_name": "x" * 101}, "first_name"),
        ({"email": "a@b.example", "stage": "hot"}, "stage"),
        ({"email": "a@b.example", "channel": "carrier-pigeon"}, "channel"),
        ({"email": "a@b.example", "country": "XX"}, "country"),
        ({"email": "a@b.example", "tags": "vip"}, "tags"),
        ({"email": "a@b.example", "tags": ["x" * 61]}, "tags"),
        ({"email": "a@b.example", "custom_fields": ["a"]}, "custom_fields"),
        ({"email": "a@b.example", "custom_fields": {"nested": {"a": 1}}}, "custom_fields"),
        ({"email": "a@b.example", "custom_fields": {f"f{i}": i for i in range(51)}}, "custom_fields"),
        ({"email": "a@b.example", "first_name": {"a": 1}}, "first_name"),
        ({"email": "a@b.example", "marketing_consent": "maybe"}, "marketing_consent"),
        ({"email": ["a@b.example"]}, "email"),
        ({"first_name": "No contact"}, "email"),
        ({}, "email"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(key_client, payload, field):
    # given
    existing = LeadFactory()
    # when
    response = key_client.post(URL, payload, format="json")
    # then
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert list(Lead.objects.all()) == [existing]
    assert IntakeSubmission.objects.count() == 0


@pytest.mark.parametrize(
    ("escaped_value", "message"),
    [
        ("Acme \\u0000 GmbH", "Null characters are not allowed."),
        ("Acme \\ud800", "Surrogate characters are not allowed: U+D800."),
    ],
)
def test_characters_postgresql_cannot_store_are_a_400_not_a_500(key_client, escaped_value, message):
    # when: JSON escapes smuggle a NUL or a lone surrogate into a text field
    body = '{"email": "a@b.example", "company_name": "' + escaped_value + '"}'
    response = key_client.post(URL, body, content_type="application/json")
    # then
    assert response.status_code == 400, response.content
    assert response.json() == {"company_name": [message]}
    assert not Lead.objects.exists()


def test_text_outside_the_basic_plane_is_stored_as_sent(key_client):
    response = key_client.post(URL, {"email": "a@b.example", "company_name": "Zürich 🚀 GmbH"}, format="json")
    assert response.status_code == 201, response.content
    assert Lead.objects.get().company_name == "Zürich 🚀 GmbH"


def test_malformed_json_is_a_400(key_client):
    response = key_client.post(URL, '{"email": "a@b.example",', content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_json_that_is_not_an_object_is_a_400(key_client):
    response = key_client.post(URL, json.dumps(["a@b.example"]), content_type="application/json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_unsupported_media_type_is_a_415_not_a_500(key_client):
    response = key_client.post(URL, "<lead/>", content_type="application/xml")
    assert response.status_code == 415


def test_oversized_body_is_refused_without_a_500(key_client, settings):
    # given
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    # when
    response = key_client.post(URL, {"email": "a@b.example", "message": "x" * 20_000}, format="json")
    # then
    assert response.status_code in (400, 413)
    assert Lead.objects.count() == 0


def test_lead_supplied_markup_is_stored_as_text_and_returned_as_json(key_client):
    # when
    response = key_client.post(
        URL, {"email": "x@evil.example", "first_name": "<script>alert(1)</script>"}, format="json"
    )
    # then
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    assert response.json()["first_name"] == "<script>alert(1)</script>"


def test_missing_key_is_401_with_the_scheme_to_use(api_client):
    response = api_client.post(URL, a_person(), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"


def test_unknown_key_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Api-Key lo_deadbeef_" + "0" * 48)
    response = api_client.post(URL, a_person(), format="json")
    assert response.status_code == 401


def test_revoked_key_is_401(api_client):
    # given
    key = ApiKeyFactory(revoked=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}")
    # when
    response = api_client.post(URL, a_person(), format="json")
    # then
    assert response.status_code == 401
    assert Lead.objects.count() == 0


def test_over_the_per_key_rate_limit_is_429_with_retry_after(key_client, settings):
    # given
    settings.LEADOPS_INTAKE_RATE_PER_KEY = 3
    for n in range(3):
        assert key_client.post(URL, {"email": f"p{n}@x.example"}, format="json").status_code == 201
    # when
    response = key_client.post(URL, {"email": "late@x.example"}, format="json")
    # then
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert not Lead.objects.filter(email_normalized="late@x.example").exists()


def test_over_the_per_ip_rate_limit_is_429_even_with_fresh_keys(settings):
    # given
    settings.LEADOPS_INTAKE_RATE_PER_IP = 2
    clients = []
    for _ in range(3):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory().raw_key}")
        clients.append(client)
    # when
    statuses = [c.post(URL, {"email": f"c{i}@x.example"}, format="json").status_code for i, c in enumerate(clients)]
    # then
    assert statuses == [201, 201, 429]


def test_every_accepted_submission_keeps_its_raw_payload(key_client, api_key):
    # given
    payload = a_person(unknown_field="kept too")
    # when
    lead_id = key_client.post(URL, payload, format="json").json()["id"]
    # then
    submission = IntakeSubmission.objects.get()
    assert submission.payload == payload
    assert submission.lead_id == lead_id
    assert submission.api_key == api_key
    assert submission.outcome == IntakeOutcome.CREATED
    assert submission.remote_addr == "127.0.0.1"


def test_internal_user_with_permission_can_capture_naming_a_source(ops_user):
    # when
    response = client_for(ops_user).post(URL, {"email": "walkin@x.example", "source": "Trade show"}, format="json")
    # then
    assert response.status_code == 201
    assert Lead.objects.get().source.name == "Trade show"
    assert IntakeSubmission.objects.get().submitted_by == ops_user


def test_rep_cannot_capture_leads_through_the_api(rep_user):
    response = client_for(rep_user).post(URL, {"email": "x@x.example"}, format="json")
    assert response.status_code == 403


def test_campaign_given_by_name_is_used(key_client):
    # given
    campaign = CampaignFactory(name="Q4 Webinar")
    # when
    lead_id = key_client.post(URL, {"email": "a@b.example", "campaign": "Q4 Webinar"}, format="json").json()["id"]
    # then
    assert Lead.objects.get(pk=lead_id).campaign == campaign


def test_intake_may_set_the_initial_stage(key_client):
    lead_id = key_client.post(URL, {"email": "mql@x.example", "stage": "mql"}, format="json").json()["id"]
    assert Lead.objects.get(pk=lead_id).stage == Stage.MQL
    assert StageChange.objects.get(lead_id=lead_id).to_stage == Stage.MQL


@pytest.mark.django_db(transaction=True)
def test_a_campaign_deleted_while_cached_does_not_fail_intake(key_client):
    # given: the campaign is in this process's lookup cache, then an admin deletes it
    # (foreign keys are checked at commit, so this test really commits)
    key_client.post(URL, {"email": "a@x.example", "utm_campaign": "gone-soon"}, format="json")
    Campaign.objects.filter(utm_campaign="gone-soon").delete()
    # when
    response = key_client.post(URL, {"email": "b@x.example", "utm_campaign": "gone-soon"}, format="json")
    # then: the lead is stored, attributed to a fresh campaign of that name
    assert response.status_code == 201, response.content
    assert Lead.objects.get(pk=response.json()["id"]).campaign.utm_campaign == "gone-soon"


def test_retry_after_the_lead_was_deleted_still_gets_the_first_response(key_client):
    # given: the first response was stored; an admin deleted the lead afterwards
    first = key_client.post(URL, a_person(), format="json", HTTP_IDEMPOTENCY_KEY="gone-1")
    Lead.objects.filter(pk=first.json()["id"]).delete()
    # when
    retry = key_client.post(URL, a_person(), format="json", HTTP_IDEMPOTENCY_KEY="gone-1")
    # then: the same answer, and nothing recreated
    assert (retry.status_code, retry.json()) == (201, first.json())
    assert Lead.objects.count() == 0
