"""What routing adds to the leads pages through leads.hooks (routing/pages.py): lead page panels,
the lead list's filters and countdowns, the bulk reassign, and the Owner panel's own view."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from leads.hooks import lead_bulk_action_get, lead_list_extensions, lead_panels
from leads.models import Lead, Stage
from routing.models import ResponseClock
from tests.conftest import client_for as api_client_for
from tests.leads.factories import LeadFactory
from tests.routing.factories import RepProfileFactory, TeamFactory

pytestmark = pytest.mark.django_db

HTMX_HEADER = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "lead-header"}
HTMX_REASSIGN = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "reassign-form"}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def running_clock(*, lead, rep) -> ResponseClock:
    now = timezone.now()
    return ResponseClock.objects.create(
        lead=lead,
        rep=rep,
        started_at=now,
        warn_at=now + timedelta(minutes=4),
        due_at=now + timedelta(minutes=5),
        escalate_at=now + timedelta(minutes=10),
    )


def test_routing_registers_its_panels_list_extension_and_bulk_action():
    assert [p.name for p in lead_panels("side")][:2] == ["routing.reassign", "routing.assignment_why"]
    assert [p.name for p in lead_panels("facts")] == ["routing.sla_clock"]
    assert "routing" in [e.name for e in lead_list_extensions()]
    assert lead_bulk_action_get("reassign").permission == "leads.reassign_lead"


def test_owner_panel_is_on_the_lead_page_of_a_manager_and_not_of_the_rep(manager_user):
    # given
    team = TeamFactory(manager=manager_user)
    rep = RepProfileFactory(team=team)
    lead = LeadFactory(owner=rep.user, stage=Stage.WORKING)
    url = reverse("leads:lead_detail", args=[lead.pk])

    # when
    manager_page = logged_in(manager_user).get(url).content.decode()
    rep_page = logged_in(rep.user).get(url).content.decode()

    # then: the manager gets the Owner panel (posting to routing's view), and both "why this owner"
    assert 'id="reassign-form"' in manager_page
    assert f'action="{reverse("routing-leads:lead_reassign", args=[lead.pk])}"' in manager_page
    assert f'action="/leads/{lead.pk}/reassign/"' in manager_page  # the URL did not move
    assert 'id="reassign-form"' not in rep_page and "Reassign to" not in rep_page
    assert 'id="assignment-why"' in manager_page and 'id="assignment-why"' in rep_page
    # the side panels keep their place: after the stage form, before the details
    assert manager_page.index('id="stage-form"') < manager_page.index('id="reassign-form"')
    assert manager_page.index('id="reassign-form"') < manager_page.index('id="assignment-why"')
    assert manager_page.index('id="assignment-why"') < manager_page.index('id="lead-fields"')


def test_a_rep_cannot_post_to_the_owner_panel_even_without_the_page(manager_user):
    rep = RepProfileFactory(team=TeamFactory(manager=manager_user))
    lead = LeadFactory(owner=rep.user, stage=Stage.WORKING)
    url = reverse("routing-leads:lead_reassign", args=[lead.pk])
    assert logged_in(rep.user).post(url, {"reason": "mine"}, **HTMX_REASSIGN).status_code == 403
    assert logged_in(RepProfileFactory().user).post(url, {"reason": "x"}).status_code == 404  # not theirs to see


def test_the_first_touch_countdown_is_in_the_header_and_its_htmx_refresh():
    # given
    rep = RepProfileFactory()
    lead = LeadFactory(owner=rep.user)
    running_clock(lead=lead, rep=rep)
    client = logged_in(rep.user)

    # when
    page = client.get(f"/leads/{lead.pk}/").content.decode()
    header = client.get(f"/leads/{lead.pk}/", **HTMX_HEADER).content.decode()

    # then: the countdown's script comes with the page, once; the header partial keeps the countdown
    assert page.count("countdown.js") == 1
    assert "First touch due" in header and "data-sla-due" in header and "countdown.js" not in header
    header_facts = page[page.index('id="lead-header"') : page.index("</dl>")]
    assert "First touch due" in header_facts


def test_owner_panel_without_htmx_redirects_to_the_lead_page_with_a_message(manager_user):
    # given
    team = TeamFactory(manager=manager_user)
    old, new = RepProfileFactory(team=team), RepProfileFactory(team=team)
    lead = LeadFactory(owner=old.user, stage=Stage.WORKING)
    url = reverse("routing-leads:lead_reassign", args=[lead.pk])
    client = logged_in(manager_user)

    # when
    missing_reason = client.post(url, {"to_rep": new.pk, "reason": ""})
    done = client.post(url, {"to_rep": new.pk, "reason": "Speaks German"})

    # then: POST/redirect/GET both ways, the outcome in a message
    page_url = reverse("leads:lead_detail", args=[lead.pk])
    assert missing_reason.status_code == 302 and missing_reason.url == page_url
    assert done.status_code == 302 and done.url == page_url
    texts = [str(m) for m in get_messages(done.wsgi_request)]
    assert "Reason: This field is required." in texts and "Lead reassigned." in texts
    lead.refresh_from_db()
    assert lead.owner == new.user


def test_htmx_reassign_answers_the_panel_with_the_new_owner(manager_user):
    team = TeamFactory(manager=manager_user)
    old, new = RepProfileFactory(team=team), RepProfileFactory(team=team, user__first_name="Nina")
    lead = LeadFactory(owner=old.user, stage=Stage.WORKING)
    response = logged_in(manager_user).post(
        reverse("routing-leads:lead_reassign", args=[lead.pk]), {"to_rep": new.pk, "reason": "cover"}, **HTMX_REASSIGN
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="reassign-form"') and "<html" not in html
    assert "Reassigned to Nina" in html and response["HX-Trigger"] == '{"lead-reassigned": {}}'


def test_bulk_reassign_is_offered_to_managers_only_and_needs_a_reason(manager_user, rep_user):
    # given
    RepProfileFactory(user=rep_user)
    mine = LeadFactory(owner=rep_user, stage=Stage.WORKING)
    LeadFactory.create_batch(2, stage=Stage.NEW)

    # when
    manager_list = logged_in(manager_user).get(reverse("leads:lead_list")).content.decode()
    rep_list = logged_in(rep_user).get(reverse("leads:lead_list")).content.decode()
    refused = logged_in(rep_user).post(
        reverse("leads:lead_bulk"), {"action": "reassign", "reason": "x", "lead_ids": [mine.pk]}
    )
    no_reason = logged_in(manager_user).post(
        reverse("leads:lead_bulk"),
        {"action": "reassign", "reason": " ", "lead_ids": [mine.pk]},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="lead-table",
    )

    # then
    assert '<option value="reassign">Reassign</option>' in manager_list
    assert 'class="for-stage for-reassign"' in manager_list  # the shared reason input
    assert '<option value="reassign">' not in rep_list and 'name="to_rep"' not in rep_list
    assert refused.status_code == 403
    assert "Give a reason for the reassignment." in no_reason.content.decode()
    assert Lead.objects.get(pk=mine.pk).owner == rep_user


def test_the_team_and_sla_filters_are_routings_and_reps_get_countdowns(ops_user):
    # given
    team = TeamFactory(name="Nordics")
    rep = RepProfileFactory(team=team)
    lead = LeadFactory(owner=rep.user)
    running_clock(lead=lead, rep=rep)

    # when
    ops_page = logged_in(ops_user).get(reverse("leads:lead_list")).content.decode()
    rep_page = logged_in(rep.user).get(reverse("leads:lead_list")).content.decode()
    rep_table = logged_in(rep.user).get(reverse("leads:lead_list"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="lead-table")

    # then: the filters for everyone who sees all leads (teams) and everyone (SLA); countdowns for reps
    assert 'name="team"' in ops_page and "Nordics" in ops_page and 'name="sla_breached"' in ops_page
    assert 'name="team"' not in rep_page and 'name="sla_breached"' in rep_page
    assert "countdown.js" not in ops_page and 'class="sla-countdown' not in ops_page
    assert rep_page.count("countdown.js") == 1 and rep_page.count('class="sla-countdown') == 1
    assert rep_table.content.decode().count('class="sla-countdown') == 1


def test_more_filters_opens_for_a_routing_filter_and_a_bad_value_is_shown(ops_user):
    client = logged_in(ops_user)
    assert '<details class="filters-more" open>' in client.get("/leads/", {"sla_breached": "true"}).content.decode()
    bad = client.get("/leads/", {"team": "north"}).content.decode()
    assert "team: Enter a number." in bad


def test_api_filters_by_breached_sla_and_refuses_a_bad_team(ops_user):
    # given
    rep = RepProfileFactory()
    breached, on_time = LeadFactory(owner=rep.user), LeadFactory(owner=rep.user)
    clock = running_clock(lead=breached, rep=rep)
    ResponseClock.objects.filter(pk=clock.pk).update(breached_at=timezone.now())
    client = api_client_for(ops_user)

    # when
    yes = client.get("/api/v1/leads/", {"sla_breached": "true"})
    no = client.get("/api/v1/leads/", {"sla_breached": "false"})
    bad = client.get("/api/v1/leads/", {"team": "north"})

    # then
    assert {row["id"] for row in yes.json()["results"]} == {breached.pk}
    assert on_time.pk in {row["id"] for row in no.json()["results"]}
    assert breached.pk not in {row["id"] for row in no.json()["results"]}
    assert bad.status_code == 400 and "team" in bad.json()


def test_api_schema_documents_the_routing_filters(ops_user):
    schema = api_client_for(ops_user).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    names = {p["name"] for p in schema["paths"]["/api/v1/leads/"]["get"]["parameters"]}
    assert {"team", "sla_breached", "stage", "q"} <= names
