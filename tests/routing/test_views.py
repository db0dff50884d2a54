import pytest
from django.test import Client
from django.utils import timezone

from core.models import Notification
from routing.models import Method, QueueEntry, RoutingRule
from tests.leads.factories import LeadFactory
from tests.routing.factories import QueueFactory, RepProfileFactory, TeamFactory, rule_with_action

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_queue_page_lists_claimable_leads_and_htmx_claim_returns_the_partial(django_assert_max_num_queries):
    # given
    rep = RepProfileFactory()
    queue = QueueFactory()
    leads = LeadFactory.create_batch(20)
    now = timezone.now()
    QueueEntry.objects.bulk_create([QueueEntry(lead=lead, queue=queue, enqueued_at=now, due_at=now) for lead in leads])
    client = logged_in(rep.user)
    # when
    with django_assert_max_num_queries(12):
        page = client.get("/routing/queue/")
    claimed = client.post(f"/routing/queue/{leads[0].pk}/claim/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="queue-table")
    again = client.post(f"/routing/queue/{leads[0].pk}/claim/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="queue-table")
    # then
    assert page.status_code == 200 and page.content.count(b'claim">Claim<') == 20
    assert claimed.status_code == 200 and "lead-claimed" in claimed.headers["HX-Trigger"]
    assert b'id="queue-table"' in claimed.content and b"<html" not in claimed.content
    assert again.status_code == 200 and b"Someone else claimed this lead first." in again.content


def test_claim_without_htmx_redirects(rep_user):
    rep = RepProfileFactory(user=rep_user)
    lead = LeadFactory()
    now = timezone.now()
    QueueEntry.objects.create(lead=lead, queue=QueueFactory(), enqueued_at=now, due_at=now)
    response = logged_in(rep.user).post(f"/routing/queue/{lead.pk}/claim/")
    assert response.status_code == 302 and response.url == "/routing/queue/"


def test_users_without_a_rep_profile_cannot_see_a_queue(ops_user):
    assert logged_in(ops_user).get("/routing/queue/").status_code == 403


def test_rule_editor_creates_a_rule_and_reps_may_not(ops_user, rep_user):
    # given
    team = TeamFactory()
    queue = QueueFactory()
    data = {
        "name": "DACH enterprise",
        "position": "5",
        "is_active": "on",
        "match": "all",
        "conditions": '[{"field": "country", "op": "in", "value": ["DE", "AT"]}]',
        "queue": queue.pk,
        "split_percent": "20",
        "a_method": Method.ROUND_ROBIN,
        "a_team": team.pk,
        "a_skills": '{"languages": ["de"]}',
        "b_method": Method.LOAD_BALANCED,
        "b_team": team.pk,
    }
    # when
    response = logged_in(ops_user).post("/routing/rules/new/", data)
    refused = logged_in(rep_user).get("/routing/rules/")
    # then
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = RoutingRule.objects.get(name="DACH enterprise")
    assert rule.split_percent == 20 and {a.arm for a in rule.actions.all()} == {"A", "B"}
    assert rule.actions.get(arm="A").required_skills == {"languages": ["de"]}
    assert refused.status_code == 403
    page = logged_in(ops_user).get("/routing/rules/")
    assert b"DACH enterprise" in page.content and b"Fallback" in page.content
    assert logged_in(ops_user).get(f"/routing/rules/{rule.pk}/").status_code == 200


def test_rule_editor_shows_bad_conditions(ops_user):
    data = {"name": "x", "match": "all", "conditions": "[{", "queue": QueueFactory().pk, "split_percent": "0"}
    data["a_method"] = Method.ROUND_ROBIN
    response = logged_in(ops_user).post("/routing/rules/new/", data)
    assert response.status_code == 200 and b"Not valid JSON" in response.content


def test_dry_run_page_renders_the_decision_partial(ops_user):
    team = TeamFactory()
    rep = RepProfileFactory(team=team)
    rule_with_action(method=Method.LOAD_BALANCED, team=team)
    response = logged_in(ops_user).post(
        "/routing/dry-run/",
        {"country": "DE", "channel": "web_form", "score": "10"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="dry-run-result",
    )
    assert response.status_code == 200
    assert str(rep).encode() in response.content and b'id="dry-run-result"' in response.content


def test_rep_sets_availability_and_sees_notifications():
    rep = RepProfileFactory()
    Notification.objects.create(recipient=rep.user, title="New lead: Ada")
    client = logged_in(rep.user)
    page = client.get("/routing/me/")
    assert b"New lead: Ada" in page.content and b'id="unread-badge"' in page.content
    response = client.post(
        "/routing/me/",
        {"work_start": "08:00", "work_end": "16:00", "timezone": "Europe/Berlin", "out_of_office_from": "2030-01-01"},
    )
    assert response.status_code == 302
    rep.refresh_from_db()
    assert not rep.is_available and rep.timezone == "Europe/Berlin"
    client.post("/routing/me/notifications/read/")
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_manager_reassign_page_and_lead_why_partial(manager_user):
    team = TeamFactory(manager=manager_user)
    old, new = RepProfileFactory(team=team), RepProfileFactory(team=team)
    lead = LeadFactory(owner=old.user)
    client = logged_in(manager_user)
    assert client.get("/routing/reassign/").status_code == 200
    response = client.post("/routing/reassign/", {"one-lead_id": lead.pk, "one-to_rep": new.pk, "one-reason": "cover"})
    assert response.status_code == 302
    why = client.get(f"/routing/leads/{lead.pk}/why/")
    assert b"Why this owner" in why.content and b"cover" in why.content
