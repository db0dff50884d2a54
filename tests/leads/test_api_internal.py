"""The API for signed-in users: list, retrieve, stage changes, activities, and who sees what."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from leads.models import ActivityKind, Stage
from tests.conftest import client_for
from tests.leads.factories import ActivityFactory, CampaignFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db


def ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


def test_rep_lists_only_their_own_leads(rep_user, other_rep_user):
    # given
    mine = LeadFactory(owner=rep_user)
    LeadFactory(owner=other_rep_user)
    LeadFactory()
    # when
    response = client_for(rep_user).get("/api/v1/leads/")
    # then
    assert response.status_code == 200
    assert ids(response) == {mine.pk}


def test_rep_cannot_read_another_reps_lead(rep_user, other_rep_user):
    # given
    theirs = LeadFactory(owner=other_rep_user)
    # when
    response = client_for(rep_user).get(f"/api/v1/leads/{theirs.pk}/")
    # then: indistinguishable from a lead that does not exist
    assert response.status_code == 404


def test_rep_cannot_change_or_log_on_another_reps_lead(rep_user, other_rep_user):
    # given
    theirs = LeadFactory(owner=other_rep_user)
    client = client_for(rep_user)
    # when
    stage = client.post(f"/api/v1/leads/{theirs.pk}/stage/", {"to_stage": "working"}, format="json")
    note = client.post(f"/api/v1/leads/{theirs.pk}/activities/", {"kind": "note", "note": "hi"}, format="json")
    # then
    assert stage.status_code == 404 and note.status_code == 404
    theirs.refresh_from_db()
    assert theirs.stage == Stage.NEW and theirs.activities.count() == 0


def test_manager_sees_every_lead(manager_user, rep_user):
    # given
    leads = {LeadFactory(owner=rep_user).pk, LeadFactory().pk}
    # when / then
    assert ids(client_for(manager_user).get("/api/v1/leads/")) == leads


def test_api_key_cannot_read_leads(key_client):
    LeadFactory()
    assert key_client.get("/api/v1/leads/").status_code in (401, 403)


def test_token_auth_works_for_internal_users(ops_user):
    # given
    token = Token.objects.create(user=ops_user)
    lead = LeadFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    # when / then
    assert client.get(f"/api/v1/leads/{lead.pk}/").json()["id"] == lead.pk


def test_anonymous_gets_401():
    assert APIClient().get("/api/v1/leads/").status_code == 401


def test_list_filters(ops_user):
    # given
    source, campaign = SourceFactory(name="Webinars"), CampaignFactory()
    now = timezone.now()
    match = LeadFactory(stage=Stage.MQL, source=source, campaign=campaign, score=80)
    LeadFactory(stage=Stage.MQL, source=source, campaign=campaign, score=10)  # score too low
    LeadFactory(stage=Stage.NEW, source=source, campaign=campaign, score=90)  # wrong stage
    LeadFactory(stage=Stage.MQL, score=90)  # other source
    old = LeadFactory(stage=Stage.MQL, source=source, campaign=campaign, score=95)
    type(old).objects.filter(pk=old.pk).update(created_at=now - timedelta(days=40))
    client = client_for(ops_user)
    # when
    response = client.get(
        "/api/v1/leads/",
        {
            "stage": "mql",
            "source": source.pk,
            "campaign": campaign.pk,
            "score_min": 50,
            "created_after": (now - timedelta(days=7)).isoformat(),
        },
    )
    # then
    assert response.status_code == 200, response.content
    assert ids(response) == {match.pk}


def test_list_filter_by_owner_and_search(ops_user, rep_user):
    # given
    target = LeadFactory(owner=rep_user, company_name="Initech", first_name="Peter")
    LeadFactory(owner=rep_user, company_name="Globex")
    client = client_for(ops_user)
    # when / then
    assert ids(client.get("/api/v1/leads/", {"owner": rep_user.pk, "q": "initech"})) == {target.pk}
    assert ids(client.get("/api/v1/leads/", {"q": "peter"})) == {target.pk}


def test_invalid_filter_is_a_400_with_the_field(ops_user):
    response = client_for(ops_user).get("/api/v1/leads/", {"stage": "hot", "created_after": "yesterday"})
    assert response.status_code == 400
    assert {"stage", "created_after"} <= set(response.json())


def test_list_query_count_does_not_grow_with_rows(ops_user, django_assert_max_num_queries):
    # given
    client = client_for(ops_user)
    LeadFactory.create_batch(5, assigned=True)
    with django_assert_max_num_queries(8) as small:
        client.get("/api/v1/leads/?page_size=100")
    LeadFactory.create_batch(60, assigned=True)
    # when / then
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get("/api/v1/leads/?page_size=100")
    assert len(response.json()["results"]) == 65


def test_list_is_paginated_with_a_cursor(ops_user):
    # given
    LeadFactory.create_batch(7)
    client = client_for(ops_user)
    # when
    first = client.get("/api/v1/leads/?page_size=5").json()
    second = client.get(first["next"]).json()
    # then
    assert len(first["results"]) == 5 and len(second["results"]) == 2
    assert not ({r["id"] for r in first["results"]} & {r["id"] for r in second["results"]})


def test_stage_change_with_reason_is_recorded(rep_user):
    # given
    lead = LeadFactory(owner=rep_user)
    # when
    response = client_for(rep_user).post(
        f"/api/v1/leads/{lead.pk}/stage/", {"to_stage": "working", "reason": "called back"}, format="json"
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["stage"] == "working"
    change = lead.stage_changes.get()
    assert (change.from_stage, change.to_stage, change.reason, change.changed_by) == (
        "new",
        "working",
        "called back",
        rep_user,
    )
    assert lead.activities.filter(kind=ActivityKind.STAGE_CHANGED).exists()


def test_senseless_transition_is_refused(rep_user):
    # given
    lead = LeadFactory(owner=rep_user, stage=Stage.NEW)
    # when
    response = client_for(rep_user).post(f"/api/v1/leads/{lead.pk}/stage/", {"to_stage": "won"}, format="json")
    # then
    assert response.status_code == 400
    assert "to_stage" in response.json()
    lead.refresh_from_db()
    assert lead.stage == Stage.NEW and not lead.stage_changes.exists()


def test_unknown_stage_is_a_400(rep_user):
    lead = LeadFactory(owner=rep_user)
    response = client_for(rep_user).post(f"/api/v1/leads/{lead.pk}/stage/", {"to_stage": "hot"}, format="json")
    assert response.status_code == 400 and "to_stage" in response.json()


def test_logging_a_call_is_the_first_touch_and_starts_working_the_lead(rep_user):
    # given
    lead = LeadFactory(owner=rep_user, stage=Stage.NEW)
    # when
    response = client_for(rep_user).post(
        f"/api/v1/leads/{lead.pk}/activities/", {"kind": "call", "note": "Left voicemail"}, format="json"
    )
    # then
    assert response.status_code == 201, response.content
    lead.refresh_from_db()
    assert lead.first_contacted_at is not None
    assert lead.stage == Stage.WORKING
    assert response.json()["payload"] == {"note": "Left voicemail"}


def test_a_note_is_not_a_touch(rep_user):
    lead = LeadFactory(owner=rep_user)
    client_for(rep_user).post(f"/api/v1/leads/{lead.pk}/activities/", {"kind": "note", "note": "x"}, format="json")
    lead.refresh_from_db()
    assert lead.first_contacted_at is None and lead.stage == Stage.NEW


def test_system_activity_kinds_cannot_be_logged_by_hand(rep_user):
    lead = LeadFactory(owner=rep_user)
    response = client_for(rep_user).post(f"/api/v1/leads/{lead.pk}/activities/", {"kind": "merged"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()


def test_timeline_lists_activities_newest_first(rep_user):
    # given
    lead = LeadFactory(owner=rep_user)
    old = ActivityFactory(lead=lead, occurred_at=timezone.now() - timedelta(hours=2))
    new = ActivityFactory(lead=lead)
    # when
    response = client_for(rep_user).get(f"/api/v1/leads/{lead.pk}/activities/")
    # then
    assert [a["id"] for a in response.json()] == [new.pk, old.pk]


def test_openapi_schema_documents_every_endpoint(ops_user):
    # when: signed in (the schema is not public: tests/core/test_api_docs_access.py)
    response = client_for(ops_user).get("/api/schema/", HTTP_ACCEPT="application/json")
    # then
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {
        "/api/v1/leads/",
        "/api/v1/leads/{lead_id}/",
        "/api/v1/leads/{lead_id}/stage/",
        "/api/v1/leads/{lead_id}/activities/",
    } <= set(paths)
    assert {"get", "post"} <= set(paths["/api/v1/leads/"])


def test_api_docs_page_uses_local_assets(client, ops_user):
    client.force_login(ops_user)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "cdn." not in html and "unpkg" not in html


def test_list_filter_by_team(ops_user):
    # given
    from routing.models import RepProfile, Team

    team = Team.objects.create(name="EMEA")
    in_team = LeadFactory(assigned=True)
    RepProfile.objects.create(user=in_team.owner, team=team)
    LeadFactory(assigned=True)
    # when / then
    assert ids(client_for(ops_user).get("/api/v1/leads/", {"team": team.pk})) == {in_team.pk}


def test_search_by_email_prefix_ignores_case(ops_user):
    target = LeadFactory(email="Grace.Hopper@Navy.example", email_normalized="grace.hopper@navy.example")
    LeadFactory(email="grace@other.example", email_normalized="grace@other.example")
    assert ids(client_for(ops_user).get("/api/v1/leads/", {"q": "GRACE.HOPPER@"})) == {target.pk}


def test_owner_is_shown_with_name_on_every_request_not_only_the_first(ops_user):
    # given: serializer fields are reused between requests, which must not drop computed fields
    from tests.core.factories import UserFactory

    owner = UserFactory(first_name="Ada", last_name="Lovelace")
    lead = LeadFactory(owner=owner)
    client = client_for(ops_user)
    # when
    bodies = [client.get(f"/api/v1/leads/{lead.pk}/").json() for _ in range(3)]
    # then
    assert [body["owner"] for body in bodies] == [{"id": owner.pk, "name": "Ada Lovelace", "email": owner.email}] * 3
