"""The lead list and the lead page: filters, htmx partials, permissions, escaping, query counts, export."""

import csv
import io
import re

import pytest
from django.test import Client
from django.urls import reverse

from leads.exports import csv_safe
from leads.models import Activity, ActivityKind, Lead, Stage
from tests.leads.factories import CampaignFactory, LeadFactory, SourceFactory, TagFactory

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
HTMX_TABLE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "lead-table"}


def htmx(target: str) -> dict[str, str]:
    return {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": target}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def list_url(**params) -> str:
    from urllib.parse import urlencode

    return f"{reverse('leads:lead_list')}?{urlencode(params, doseq=True)}" if params else reverse("leads:lead_list")


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- lead list ---------------------------------------------------------------------------------


def test_list_filters_by_stage_source_score_and_search(ops_user):
    # given
    web = SourceFactory(name="Web")
    wanted = LeadFactory(first_name="Ada", last_name="Lovelace", stage=Stage.MQL, source=web, score=80)
    LeadFactory(first_name="Ada", last_name="Other", stage=Stage.NEW, source=web, score=80)
    LeadFactory(first_name="Alan", last_name="Turing", stage=Stage.MQL, score=80)
    LeadFactory(first_name="Ada", last_name="Low", stage=Stage.MQL, source=web, score=10)
    client = client_for(ops_user)

    # when
    response = client.get(list_url(stage="mql", source=web.pk, score_min=50, q="ada"))

    # then
    assert response.status_code == 200
    assert [lead.pk for lead in response.context["page"].leads] == [wanted.pk]
    assert response.context["count_label"] == "1 lead"


def test_list_filters_by_campaign_channel_and_created_range(ops_user):
    # given
    campaign = CampaignFactory()
    wanted = LeadFactory(campaign=campaign, channel="event")
    LeadFactory(campaign=campaign, channel="email")
    old = LeadFactory(campaign=campaign, channel="event")
    Lead.objects.filter(pk=old.pk).update(created_at="2020-01-05T12:00:00Z")
    today = wanted.created_at.date().isoformat()

    # when
    response = client_for(ops_user).get(
        list_url(campaign=campaign.pk, channel="event", created_from=today, created_to=today)
    )

    # then
    assert [lead.pk for lead in response.context["page"].leads] == [wanted.pk]


def test_list_sorts_by_a_column_and_pages_with_next_and_previous(ops_user):
    # given
    for score in (5, 50, 95):
        LeadFactory(score=score)
    client = client_for(ops_user)

    # when
    first = client.get(list_url(sort="-score", per_page=25))
    ascending = client.get(list_url(sort="score"))

    # then
    assert [lead.score for lead in first.context["page"].leads] == [95, 50, 5]
    assert [lead.score for lead in ascending.context["page"].leads] == [5, 50, 95]
    assert first.context["page"].has_next is False


def test_list_pagination_knows_there_is_a_next_page_without_counting(ops_user):
    # given
    LeadFactory.create_batch(30)

    # when
    response = client_for(ops_user).get(list_url(per_page=25, page=2))

    # then
    page = response.context["page"]
    assert (page.start, page.end, page.has_next, page.has_previous) == (26, 30, False, True)


def test_list_htmx_filter_returns_only_the_table_partial(ops_user):
    # given
    LeadFactory(first_name="Grace", stage=Stage.SQL)
    LeadFactory(first_name="Linus", stage=Stage.NEW)

    # when
    response = client_for(ops_user).get(list_url(stage="sql"), **HTMX_TABLE)

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="lead-table"')
    assert "<html" not in body and 'id="lead-filters"' not in body
    assert "Grace" in body and "Linus" not in body
    assert 'id="lead-count"' in body and 'hx-trigger="load"' in body  # the count arrives separately


def test_list_count_partial_is_capped(ops_user, settings, monkeypatch):
    # given
    monkeypatch.setattr("leads.views.COUNT_CAP", 3)
    LeadFactory.create_batch(5)

    # when
    response = client_for(ops_user).get(list_url(), **htmx("lead-count"))

    # then
    assert response.content.decode().strip() == '<span id="lead-count">3+ leads</span>'


def test_rep_sees_only_their_own_leads_even_when_filtering_by_another_owner(rep_user, other_rep_user):
    # given
    mine = LeadFactory(owner=rep_user, first_name="Mine")
    LeadFactory(owner=other_rep_user, first_name="Theirs")

    # when
    response = client_for(rep_user).get(list_url(owner=other_rep_user.pk))
    unfiltered = client_for(rep_user).get(list_url())

    # then
    assert list(response.context["page"].leads) == []
    assert [lead.pk for lead in unfiltered.context["page"].leads] == [mine.pk]
    assert "Theirs" not in unfiltered.content.decode()


def test_list_shows_empty_states(ops_user):
    # when
    nothing = client_for(ops_user).get(list_url())
    no_match = client_for(ops_user).get(list_url(q="nobody"))

    # then
    assert "No leads yet" in nothing.content.decode()
    assert "No leads match these filters" in no_match.content.decode()


def test_list_requires_sign_in(client):
    response = client.get(list_url())
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("per_page", [50, 200])
def test_list_query_count_does_not_grow_with_page_size(ops_user, django_assert_max_num_queries, per_page):
    # given: 200 leads, each with its own owner, source, campaign and tags
    tags = TagFactory.create_batch(3)
    for lead in LeadFactory.create_batch(200, assigned=True, campaign=CampaignFactory()):
        lead.tags.add(*tags)
    client = client_for(ops_user)
    client.get(list_url())  # warm the session

    # when / then: session, user, groups, rows, tags, capped count, filter choices (sources,
    # campaigns, owners, teams), reps: the same at 50 and 200 rows
    with django_assert_max_num_queries(13):
        response = client.get(list_url(per_page=per_page))
    assert len(response.context["page"].leads) == per_page
    with django_assert_max_num_queries(10):
        client.get(list_url(per_page=per_page), **HTMX_TABLE)


# --- escaping ----------------------------------------------------------------------------------


def test_lead_supplied_text_renders_as_text_in_the_list_and_the_lead_page(ops_user):
    # given
    lead = LeadFactory(first_name=XSS, company_name=XSS, custom_fields={"note": XSS})
    Activity.objects.create(
        lead=lead, kind=ActivityKind.FORM_SUBMITTED, occurred_at=lead.created_at, payload={"message": XSS}
    )
    client = client_for(ops_user)

    # when
    pages = [
        client.get(list_url()),
        client.get(list_url(), **HTMX_TABLE),
        client.get(reverse("leads:lead_detail", args=[lead.pk])),
        client.get(reverse("leads:lead_detail", args=[lead.pk]), **htmx("lead-timeline")),
    ]

    # then
    for response in pages:
        body = response.content.decode()
        assert XSS not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


# --- export ------------------------------------------------------------------------------------


def test_csv_safe_prefixes_formula_cells():
    for value in ("=1+1", "+1+1", "-1+1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_safe(value) == "'" + value
    assert csv_safe("Ada") == "Ada"
    assert csv_safe("-1") == "-1"  # a number (or a phone number) computes nothing
    assert csv_safe(-5) == -5


def test_export_streams_the_current_filter_with_formula_cells_escaped(ops_user):
    # given
    LeadFactory(first_name='=HYPERLINK("http://evil")', last_name="@cmd", company_name="+Acme", stage=Stage.MQL)
    LeadFactory(first_name="Filtered", stage=Stage.NEW)

    # when
    response = client_for(ops_user).get(f"{reverse('leads:lead_export')}?stage=mql")

    # then
    assert response.status_code == 200
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    header, *rows = csv_rows(response)
    assert header[:5] == ["id", "created_at", "first_name", "last_name", "email"]
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["first_name"] == '\'=HYPERLINK("http://evil")'
    assert row["last_name"] == "'@cmd"
    assert row["company"] == "'+Acme"
    assert row["stage"] == "MQL"


def test_export_needs_the_export_permission_and_is_scoped(rep_user, manager_user, other_rep_user):
    # given
    LeadFactory(owner=other_rep_user)

    # when
    rep_response = client_for(rep_user).get(reverse("leads:lead_export"))
    manager_response = client_for(manager_user).get(reverse("leads:lead_export"))

    # then
    assert rep_response.status_code == 403
    assert len(csv_rows(manager_response)) == 2


# --- bulk actions ------------------------------------------------------------------------------


def test_bulk_stage_change_through_htmx_rerenders_the_table_with_a_summary(ops_user):
    # given
    movable = LeadFactory(stage=Stage.NEW)
    final = LeadFactory(stage=Stage.WON)
    url = f"{reverse('leads:lead_bulk')}?stage=new&stage=mql"

    # when
    response = client_for(ops_user).post(
        url, {"action": "stage", "to_stage": "mql", "lead_ids": [movable.pk, final.pk]}, **HTMX_TABLE
    )

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="lead-table"')
    assert "1 lead updated." in body and "1 not changed: A lead cannot move from Won to MQL" in body
    movable.refresh_from_db()
    assert movable.stage == Stage.MQL
    assert movable.stage_changes.filter(to_stage=Stage.MQL).exists()


def test_bulk_add_tag_and_the_rep_limits(ops_user, rep_user, other_rep_user):
    # given
    mine = LeadFactory(owner=rep_user, stage=Stage.NEW)
    theirs = LeadFactory(owner=other_rep_user, stage=Stage.NEW)

    # when: ops tags both; the rep may not tag, and a stage change skips the lead they cannot see
    tagged = client_for(ops_user).post(
        reverse("leads:lead_bulk"), {"action": "tag", "tag": "vip", "lead_ids": [mine.pk, theirs.pk]}
    )
    rep_tag = client_for(rep_user).post(
        reverse("leads:lead_bulk"), {"action": "tag", "tag": "x", "lead_ids": [mine.pk]}
    )
    client_for(rep_user).post(
        reverse("leads:lead_bulk"), {"action": "stage", "to_stage": "working", "lead_ids": [mine.pk, theirs.pk]}
    )

    # then
    assert tagged.status_code == 302
    assert set(Lead.objects.filter(tags__name="vip").values_list("pk", flat=True)) == {mine.pk, theirs.pk}
    assert rep_tag.status_code == 403
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.stage, theirs.stage) == (Stage.WORKING, Stage.NEW)


# --- lead page ---------------------------------------------------------------------------------


def test_lead_page_shows_header_and_timeline(rep_user):
    # given
    lead = LeadFactory(owner=rep_user, first_name="Ada", last_name="Lovelace", score=77)
    Activity.objects.create(
        lead=lead,
        kind=ActivityKind.CALL,
        occurred_at=lead.created_at,
        actor=rep_user,
        payload={"note": "Left a voicemail"},
    )

    # when
    response = client_for(rep_user).get(reverse("leads:lead_detail", args=[lead.pk]))

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "Ada Lovelace" in body and "Left a voicemail" in body and ">77<" in body


def test_rep_gets_404_for_another_reps_lead_in_pages_partials_and_actions(rep_user, other_rep_user):
    # given
    theirs = LeadFactory(owner=other_rep_user, stage=Stage.NEW)
    client = client_for(rep_user)

    # when
    responses = [
        client.get(reverse("leads:lead_detail", args=[theirs.pk])),
        client.get(reverse("leads:lead_detail", args=[theirs.pk]), **htmx("lead-timeline")),
        client.post(reverse("leads:lead_activity_log", args=[theirs.pk]), {"kind": "call"}, **htmx("activity-form")),
        client.post(reverse("leads:lead_stage_update", args=[theirs.pk]), {"to_stage": "working"}),
    ]

    # then
    assert [response.status_code for response in responses] == [404, 404, 404, 404]
    assert not theirs.activities.exists()
    assert "Page not found" in responses[0].content.decode()


def test_log_a_call_through_htmx_returns_a_fresh_form_and_tells_the_page(rep_user):
    # given
    lead = LeadFactory(owner=rep_user, stage=Stage.NEW)

    # when
    response = client_for(rep_user).post(
        reverse("leads:lead_activity_log", args=[lead.pk]),
        {"kind": "call", "note": "Spoke to Ada, demo next week"},
        **htmx("activity-form"),
    )

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="activity-form"')
    assert "Call logged" in body and "Spoke to Ada" not in body
    assert response["HX-Trigger"] == '{"activity-logged": {}}'
    activity = lead.activities.get(kind=ActivityKind.CALL)
    assert activity.payload == {"note": "Spoke to Ada, demo next week"} and activity.actor == rep_user
    lead.refresh_from_db()
    assert lead.stage == Stage.WORKING and lead.first_contacted_at is not None


def test_log_activity_without_htmx_redirects(rep_user):
    lead = LeadFactory(owner=rep_user)
    response = client_for(rep_user).post(reverse("leads:lead_activity_log", args=[lead.pk]), {"kind": "meeting"})
    assert response.status_code == 302 and response.url == reverse("leads:lead_detail", args=[lead.pk])


def test_a_note_needs_text(rep_user):
    lead = LeadFactory(owner=rep_user)
    response = client_for(rep_user).post(
        reverse("leads:lead_activity_log", args=[lead.pk]), {"kind": "note", "note": " "}, **htmx("activity-form")
    )
    assert response.status_code == 200 and "Write the note." in response.content.decode()
    assert not lead.activities.exists()


def test_invalid_stage_change_through_htmx_shows_the_domain_error_with_200(rep_user):
    # given
    lead = LeadFactory(owner=rep_user, stage=Stage.NEW)

    # when
    response = client_for(rep_user).post(
        reverse("leads:lead_stage_update", args=[lead.pk]), {"to_stage": "won", "reason": "?"}, **htmx("stage-form")
    )

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="stage-form"')
    assert "A lead cannot move from New to Won" in body
    assert "HX-Trigger" not in response
    lead.refresh_from_db()
    assert lead.stage == Stage.NEW


def test_valid_stage_change_through_htmx_records_the_reason(rep_user):
    # given
    lead = LeadFactory(owner=rep_user, stage=Stage.NEW)

    # when
    response = client_for(rep_user).post(
        reverse("leads:lead_stage_update", args=[lead.pk]),
        {"to_stage": "mql", "reason": "Asked for pricing"},
        **htmx("stage-form"),
    )

    # then
    assert response.status_code == 200 and "Moved to MQL." in response.content.decode()
    assert response["HX-Trigger"] == '{"lead-stage-changed": {}}'
    assert lead.stage_changes.get(to_stage=Stage.MQL).reason == "Asked for pricing"


def test_stage_change_needs_the_permission(ops_user, django_user_model):
    # given: a user without any role
    nobody = django_user_model.objects.create_user("viewer", password="x")
    nobody.user_permissions.add(*_perms("view_lead", "view_all_leads"))
    lead = LeadFactory()

    # when
    response = client_for(nobody).post(reverse("leads:lead_stage_update", args=[lead.pk]), {"to_stage": "working"})

    # then
    assert response.status_code == 403


def _perms(*codenames: str):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="leads", codename__in=codenames)


def test_edit_fields_through_htmx(ops_user):
    # given
    lead = LeadFactory(first_name="Ada", email="ada@old.example")
    url = reverse("leads:lead_edit", args=[lead.pk])
    client = client_for(ops_user)

    # when
    form = client.get(url, **htmx("lead-fields"))
    data = {name: getattr(lead, name) for name in ("first_name", "last_name", "title", "company_name")}
    response = client.post(url, {**data, "first_name": "Augusta", "email": "Ada@New.example"}, **htmx("lead-fields"))

    # then
    assert 'name="first_name"' in form.content.decode()
    assert response.status_code == 200 and "Saved." in response.content.decode()
    assert response["HX-Trigger"] == '{"lead-updated": {}}'
    lead.refresh_from_db()
    assert (lead.first_name, lead.email, lead.email_normalized) == ("Augusta", "Ada@New.example", "ada@new.example")


def test_edit_refuses_an_email_of_another_lead_in_the_form(ops_user):
    # given
    LeadFactory(email="taken@example.com")
    lead = LeadFactory(email="mine@example.com")

    # when
    response = client_for(ops_user).post(
        reverse("leads:lead_edit", args=[lead.pk]), {"email": "TAKEN@example.com"}, **htmx("lead-fields")
    )

    # then
    assert response.status_code == 200
    assert "Another lead already has this email or phone" in response.content.decode()
    lead.refresh_from_db()
    assert lead.email == "mine@example.com"


def test_edit_needs_change_lead(rep_user):
    lead = LeadFactory(owner=rep_user)
    response = client_for(rep_user).post(reverse("leads:lead_edit", args=[lead.pk]), {"first_name": "X"})
    assert response.status_code == 403


def test_navigation_shows_the_pages_of_each_role(ops_user, rep_user):
    ops_page = client_for(ops_user).get(reverse("home")).content.decode()
    rep_page = client_for(rep_user).get(reverse("home")).content.decode()
    assert f'href="{reverse("leads:lead_list")}"' in ops_page and ">Leads</a>" in ops_page
    assert ">My leads</a>" in rep_page and ">Admin</a>" not in rep_page


def test_manager_reassigns_a_lead_from_its_page_and_a_rep_may_not(manager_user):
    from tests.routing.factories import RepProfileFactory, TeamFactory

    # given
    team = TeamFactory(manager=manager_user)
    old, new = RepProfileFactory(team=team), RepProfileFactory(team=team)
    lead = LeadFactory(owner=old.user, stage=Stage.WORKING)
    url = reverse("routing-leads:lead_reassign", args=[lead.pk])

    # when
    refused = client_for(old.user).post(url, {"to_rep": new.pk, "reason": "mine now"})
    no_reason = client_for(manager_user).post(url, {"to_rep": new.pk, "reason": ""}, **htmx("reassign-form"))
    response = client_for(manager_user).post(
        url, {"to_rep": new.pk, "reason": "Speaks German"}, **htmx("reassign-form")
    )

    # then
    assert refused.status_code == 403
    assert no_reason.status_code == 200 and "This field is required." in no_reason.content.decode()
    assert response.status_code == 200 and response["HX-Trigger"] == '{"lead-reassigned": {}}'
    lead.refresh_from_db()
    assert lead.owner == new.user
    assert lead.activities.filter(kind=ActivityKind.ASSIGNED, payload__reason="Speaks German").exists()


def test_bulk_reassign_to_a_rep(manager_user):
    from tests.routing.factories import RepProfileFactory, TeamFactory

    # given
    new = RepProfileFactory(team=TeamFactory(manager=manager_user))
    leads = LeadFactory.create_batch(2, stage=Stage.NEW)

    # when
    response = client_for(manager_user).post(
        reverse("leads:lead_bulk"),
        {"action": "reassign", "to_rep": new.pk, "reason": "Territory change", "lead_ids": [lead.pk for lead in leads]},
        **HTMX_TABLE,
    )

    # then
    assert "2 leads updated." in response.content.decode()
    assert Lead.objects.filter(owner=new.user).count() == 2


def test_a_manager_hands_leads_only_to_active_reps_of_their_own_teams(manager_user):
    from tests.routing.factories import RepProfileFactory, TeamFactory

    # given: the manager's team (one active, one inactive rep) and another manager's team
    mine = RepProfileFactory(team=TeamFactory(manager=manager_user))
    gone = RepProfileFactory(team=mine.team, is_active=False)
    theirs = RepProfileFactory(team=TeamFactory(name="Elsewhere"))
    leads = LeadFactory.create_batch(2, owner=mine.user, stage=Stage.WORKING)
    manager = client_for(manager_user)

    # when
    page = manager.get(reverse("leads:lead_detail", args=[leads[0].pk])).content.decode()
    listing = manager.get(reverse("leads:lead_list")).content.decode()
    single = manager.post(
        reverse("routing-leads:lead_reassign", args=[leads[0].pk]),
        {"to_rep": theirs.pk, "reason": "try"},
        **htmx("reassign-form"),
    )
    bulk = manager.post(
        reverse("leads:lead_bulk"),
        {"action": "reassign", "to_rep": gone.pk, "reason": "try", "lead_ids": [lead.pk for lead in leads]},
        **HTMX_TABLE,
    )

    # then: only the active rep of their own team is offered, and the others are refused
    for html in (page, listing):
        offered = re.search(r'<select name="to_rep".*?</select>', html, re.DOTALL).group(0)
        assert re.findall(r'<option value="(\d+)"', offered) == [str(mine.pk)]
    assert "Select a valid choice" in single.content.decode()
    assert "Choose an active rep you may assign leads to." in bulk.content.decode()
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("owner", flat=True)) == {
        mine.user_id
    }


def test_list_filters_by_team_and_breached_sla(client, ops_user):
    # given
    from datetime import timedelta

    from django.utils import timezone

    from routing.models import ResponseClock, Team
    from tests.routing.factories import RepProfileFactory

    team = Team.objects.create(name="Nordics")
    rep = RepProfileFactory(team=team)
    breached = LeadFactory(owner=rep.user, first_name="Breached")
    LeadFactory(owner=rep.user, first_name="OnTime")
    other_team = LeadFactory(assigned=True, first_name="Elsewhere")
    now = timezone.now()
    ResponseClock.objects.create(
        lead=breached,
        rep=rep,
        started_at=now - timedelta(minutes=10),
        warn_at=now - timedelta(minutes=6),
        due_at=now - timedelta(minutes=5),
        escalate_at=now,
        breached_at=now - timedelta(minutes=5),
    )
    client.force_login(ops_user)
    # when
    by_team = client.get("/leads/", {"team": team.pk}).content.decode()
    by_breach = client.get("/leads/", {"sla_breached": "true"}).content.decode()
    # then
    assert "Breached" in by_team and "OnTime" in by_team and "Elsewhere" not in by_team
    assert "Breached" in by_breach and "OnTime" not in by_breach and other_team.first_name not in by_breach
    assert "Nordics" in client.get("/leads/").content.decode()  # the team dropdown


def test_detail_header_counts_down_to_the_first_touch_when_a_clock_runs(client):
    # given
    from datetime import timedelta

    from django.utils import timezone

    from routing.models import ResponseClock
    from tests.routing.factories import RepProfileFactory

    rep = RepProfileFactory()
    lead = LeadFactory(owner=rep.user)
    client.force_login(rep.user)
    assert "First touch due" not in client.get(f"/leads/{lead.pk}/").content.decode()
    now = timezone.now()
    ResponseClock.objects.create(
        lead=lead,
        rep=rep,
        started_at=now,
        warn_at=now + timedelta(minutes=4),
        due_at=now + timedelta(minutes=5),
        escalate_at=now + timedelta(minutes=10),
    )
    # when
    html = client.get(f"/leads/{lead.pk}/").content.decode()
    # then
    assert "First touch due" in html and "data-sla-due" in html


# --- what other apps add (leads.hooks) ---------------------------------------------------------


@pytest.fixture
def exporters_panel(monkeypatch):
    """A side panel, registered as another app would, that only users who may export see."""
    from leads import hooks

    monkeypatch.setattr(hooks, "_panels", list(hooks._panels))  # unregistered after the test

    def context(request, lead):
        if not request.user.has_perm("leads.export_leads"):
            return None
        return {"title": f"Exporters' panel of {lead.first_name}", "text": request.user.username}

    hooks.lead_panel_register(
        hooks.LeadPanel(name="tests.exporters", template="components/empty_state.html", context=context)
    )


def test_a_registered_panel_is_on_the_lead_page_of_those_it_lets_see_it(exporters_panel, ops_user, rep_user):
    # given
    lead = LeadFactory(first_name="Ada", owner=rep_user)
    url = reverse("leads:lead_detail", args=[lead.pk])

    # when
    ops_page = client_for(ops_user).get(url).content.decode()
    rep_page = client_for(rep_user).get(url).content.decode()

    # then: included with its context (and the page's), in the side column; left out for the rep
    side = ops_page[ops_page.index('<aside class="detail-side">') :]
    assert "Exporters&#x27; panel of Ada" in side and ops_user.username in side
    assert "Exporters" not in rep_page


def test_lead_pages_name_no_other_apps_templates_urls_or_tags():
    # Other apps plug in through leads.hooks; leads' templates do not know them (import-linter
    # covers the Python side).
    from pathlib import Path

    from django.conf import settings

    apps = "(routing|sla|qualification|nurture|analytics)"
    reference = re.compile(
        rf"""\{{%\s*(include|extends)\s+["']{apps}/|\{{%\s*url\s+["']{apps}|\{{%\s*load\b[^%]*\b(sla_tags|routing_tags)"""
    )
    templates = list((Path(settings.BASE_DIR) / "templates" / "leads").rglob("*.html"))
    assert len(templates) >= 2
    for path in templates:
        assert not reference.search(path.read_text()), f"{path.name}: {reference.search(path.read_text()).group(0)}"
