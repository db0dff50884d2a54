import pytest
from django.utils import timezone

from core.roles import Role
from routing.models import Assignment, Method, QueueEntry
from tests.conftest import client_for
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory
from tests.routing.factories import QueueFactory, RepProfileFactory, TeamFactory, rule_with_action

pytestmark = pytest.mark.django_db


def queued_lead(*, queue=None, score=0):
    lead = LeadFactory(score=score)
    now = timezone.now()
    QueueEntry.objects.create(lead=lead, queue=queue or QueueFactory(), score=score, enqueued_at=now, due_at=now)
    return lead


def test_claim_returns_200_with_the_lead_when_this_rep_got_it():
    # given
    rep = RepProfileFactory()
    lead = queued_lead()
    # when
    response = client_for(rep.user).post(f"/api/v1/queue/{lead.pk}/claim/")
    # then
    assert response.status_code == 200, response.content
    assert response.json()["owner"]["id"] == rep.user_id
    rep.refresh_from_db()
    assert rep.open_leads == 1
    assert Assignment.objects.get(lead=lead).method == Method.CLAIM


def test_claim_returns_409_when_someone_else_was_first():
    # given
    first, second = RepProfileFactory(), RepProfileFactory()
    lead = queued_lead()
    client_for(first.user).post(f"/api/v1/queue/{lead.pk}/claim/")
    # when
    response = client_for(second.user).post(f"/api/v1/queue/{lead.pk}/claim/")
    # then
    assert response.status_code == 409
    assert response.json()["code"] == "already_claimed"


def test_claim_returns_403_over_capacity_and_for_another_teams_queue():
    # given
    full = RepProfileFactory(capacity=1, open_leads=1)
    outsider = RepProfileFactory()
    lead = queued_lead(queue=QueueFactory(team=TeamFactory()))
    other = queued_lead()
    # when
    over = client_for(full.user).post(f"/api/v1/queue/{other.pk}/claim/")
    not_eligible = client_for(outsider.user).post(f"/api/v1/queue/{lead.pk}/claim/")
    no_rep = client_for(UserFactory(with_role=Role.SALES_REP)).post(f"/api/v1/queue/{other.pk}/claim/")
    # then
    assert (over.status_code, over.json()["code"]) == (403, "rep_at_capacity")
    assert (not_eligible.status_code, not_eligible.json()["code"]) == (403, "not_eligible")
    assert no_rep.status_code == 403
    assert not QueueEntry.objects.filter(claimed_at__isnull=False).exists()


def test_claim_of_a_lead_not_in_any_queue_is_404_and_anonymous_is_refused(api_client):
    rep = RepProfileFactory()
    assert client_for(rep.user).post(f"/api/v1/queue/{LeadFactory().pk}/claim/").status_code == 404
    assert api_client.post(f"/api/v1/queue/{LeadFactory().pk}/claim/").status_code in (401, 403)


def test_queue_list_is_ordered_by_priority_with_a_pinned_query_count(django_assert_max_num_queries):
    # given
    rep = RepProfileFactory()
    queue = QueueFactory()
    for score in (10, 90, 50) * 10:
        queued_lead(queue=queue, score=score)
    client = client_for(rep.user)
    # when
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/queue/")
    # then
    scores = [row["lead"]["score"] for row in response.json()]
    assert scores == sorted(scores, reverse=True) and len(scores) == 30


def test_claim_next_takes_the_best_lead_then_204_when_empty():
    rep = RepProfileFactory()
    queue = QueueFactory()
    queued_lead(queue=queue, score=5)
    best = queued_lead(queue=queue, score=95)
    client = client_for(rep.user)
    assert client.post("/api/v1/queue/next/claim/").json()["id"] == best.pk
    assert client.post("/api/v1/queue/next/claim/").status_code == 200
    assert client.post("/api/v1/queue/next/claim/").status_code == 204


def test_dry_run_api_explains_and_assigns_nothing(ops_user, rep_user):
    # given
    team = TeamFactory()
    rep = RepProfileFactory(team=team)
    rule_with_action(
        method=Method.ROUND_ROBIN, team=team, conditions=[{"field": "country", "op": "equals", "value": "FR"}]
    )
    payload = {"email": "x@y.example", "country": "fr", "custom_fields": {"language": "fr"}}
    # when
    response = client_for(ops_user).post("/api/v1/routing/dry-run/", payload, format="json")
    refused = client_for(rep_user).post("/api/v1/routing/dry-run/", payload, format="json")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["owner_id"] == rep.user_id and body["method"] == "round_robin"
    assert body["candidates"][0]["chosen"] is True
    assert refused.status_code == 403
    assert not Assignment.objects.exists()


def test_dry_run_of_an_existing_lead_uses_the_fallback_queue(ops_user):
    lead = LeadFactory(country="BR")
    body = client_for(ops_user).post("/api/v1/routing/dry-run/", {"lead_id": lead.pk}, format="json").json()
    assert body["owner_id"] is None and body["queue"] == "Unassigned"


def test_manager_reassigns_through_the_api_and_reps_cannot(manager_user, rep_user):
    # given
    team = TeamFactory(manager=manager_user)
    old, new = RepProfileFactory(team=team), RepProfileFactory(team=team)
    lead = LeadFactory(owner=old.user)
    # when
    refused = client_for(rep_user).post(
        f"/api/v1/routing/leads/{lead.pk}/reassign/", {"to_rep": new.pk, "reason": "x"}, format="json"
    )
    response = client_for(manager_user).post(
        f"/api/v1/routing/leads/{lead.pk}/reassign/", {"to_rep": new.pk, "reason": "territory change"}, format="json"
    )
    bulk = client_for(manager_user).post(
        f"/api/v1/routing/reps/{new.pk}/reassign-leads/", {"to_rep": old.pk, "reason": "leaving"}, format="json"
    )
    # then
    assert refused.status_code == 403
    assert response.status_code == 200, response.content
    assert response.json()["owner_id"] == new.user_id and response.json()["method"] == "reassign"
    assert bulk.json() == {"moved": 1, "failed": {}}
    history = client_for(manager_user).get(f"/api/v1/routing/leads/{lead.pk}/assignments/").json()
    assert [a["reason"] for a in history] == ["leaving", "territory change"]


def test_the_api_refuses_an_inactive_rep_or_another_managers_rep_as_new_owner(manager_user):
    # given
    team = TeamFactory(manager=manager_user)
    owner = RepProfileFactory(team=team)
    inactive = RepProfileFactory(team=team, is_active=False)
    elsewhere = RepProfileFactory(team=TeamFactory())
    lead = LeadFactory(owner=owner.user)
    # when
    responses = [
        client_for(manager_user).post(
            f"/api/v1/routing/leads/{lead.pk}/reassign/", {"to_rep": rep.pk, "reason": "x"}, format="json"
        )
        for rep in (inactive, elsewhere)
    ]
    # then
    for response in responses:
        assert response.status_code == 404 and "to_rep" in response.json(), response.content
    lead.refresh_from_db()
    assert lead.owner_id == owner.user_id
