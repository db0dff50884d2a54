"""The SLA board: scoping, live partial, compliance figures and a flat query count."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from core.navigation import nav_items_for
from core.roles import Role
from routing.models import ClockStatus, ResponseClock
from tests.conftest import is_postgres
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory
from tests.routing.factories import RepProfileFactory, TeamFactory

pytestmark = pytest.mark.django_db


def make_clock(
    *, rep, started_ago: dt.timedelta, touched_after: dt.timedelta | None = None, sla=dt.timedelta(minutes=5)
):
    started = timezone.now() - started_ago
    due = started + sla
    clock = ResponseClock(
        lead=LeadFactory(owner=rep.user, assigned_at=started),
        rep=rep,
        team=rep.team,
        started_at=started,
        warn_at=started + sla * 0.8,
        due_at=due,
        escalate_at=due + sla,
        next_action_at=started + sla * 0.8,
    )
    if touched_after is not None:
        clock.status = ClockStatus.TOUCHED
        clock.first_touch_at = started + touched_after
        clock.time_to_first_touch = touched_after
        clock.next_action_at = None
        if touched_after > sla:
            clock.breached_at = due
    clock.save()
    return clock


@pytest.fixture
def board_team(manager_user):
    team = TeamFactory(manager=manager_user, name="Closers")
    return team, RepProfileFactory(team=team, user__first_name="Ann", user__last_name="Lee")


def test_board_lists_breached_and_approaching_clocks_of_the_managers_teams(client, manager_user, board_team):
    # given
    _team, rep = board_team
    late = make_clock(rep=rep, started_ago=dt.timedelta(minutes=7))
    soon = make_clock(rep=rep, started_ago=dt.timedelta(minutes=1))
    other_team_clock = make_clock(rep=RepProfileFactory(team=TeamFactory()), started_ago=dt.timedelta(minutes=7))
    client.force_login(manager_user)
    # when
    response = client.get(reverse("sla:board"))
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="sla-clock-{late.pk}"' in html and f'id="sla-clock-{soon.pk}"' in html
    assert f'id="sla-clock-{other_team_clock.pk}"' not in html
    assert response.context["breached"] == [late] and response.context["approaching"] == [soon]
    assert 'data-sla-due="' in html and "countdown.js" in html


def test_compliance_share_and_median_per_rep_and_team(client, manager_user, board_team):
    # given: touched after 1, 2 and 9 minutes (a 5-minute SLA): 2 of 3 within, median 2 minutes
    _team, rep = board_team
    for minutes in (1, 2, 9):
        make_clock(rep=rep, started_ago=dt.timedelta(minutes=30), touched_after=dt.timedelta(minutes=minutes))
    client.force_login(manager_user)
    # when
    response = client.get(reverse("sla:board"))
    # then
    _label, today = response.context["compliance"][0]
    (rep_row,) = today["reps"]
    (team_row,) = today["teams"]
    assert (rep_row.name, rep_row.decided, rep_row.within) == ("Ann Lee", 3, 2)
    assert (team_row.name, team_row.decided, team_row.within) == ("Closers", 3, 2)
    if is_postgres():  # the median is a PostgreSQL aggregate; other databases show "—"
        assert rep_row.median == dt.timedelta(minutes=2)
    assert "67 %" in response.content.decode()


def test_htmx_refresh_returns_only_the_board_partial(client, manager_user, board_team):
    client.force_login(manager_user)
    response = client.get(reverse("sla:board"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="sla-board")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="sla-board"') and "<html" not in html


def test_reps_may_not_see_the_board(client, rep_user):
    client.force_login(rep_user)
    assert client.get(reverse("sla:board")).status_code == 403


def test_board_is_in_the_navigation_of_managers_not_reps(manager_user, rep_user):
    assert "SLA board" in [item.label for item in nav_items_for(user=manager_user)]
    assert "SLA board" not in [item.label for item in nav_items_for(user=rep_user)]


def test_board_query_count_does_not_grow_with_clocks(client, manager_user, board_team, django_assert_max_num_queries):
    # given
    team, rep = board_team
    reps = [rep, *[RepProfileFactory(team=team) for _ in range(4)]]
    for i in range(30):
        make_clock(rep=reps[i % 5], started_ago=dt.timedelta(minutes=i % 9))
        make_clock(rep=reps[i % 5], started_ago=dt.timedelta(minutes=20), touched_after=dt.timedelta(minutes=i % 7))
    admin = UserFactory(with_role=Role.ADMIN)
    client.force_login(admin)
    # when / then: session, user, permissions and roles (5), two lists, two compliance reads per
    # period (4), the unread badge: 12 whatever the number of clocks
    with django_assert_max_num_queries(12):
        response = client.get(reverse("sla:board"))
    assert response.status_code == 200
    assert len(response.context["approaching"]) + len(response.context["breached"]) == 30


def test_a_rep_sees_their_countdowns_on_their_lead_list(client, board_team):
    # given
    _team, rep = board_team
    clocks = [make_clock(rep=rep, started_ago=dt.timedelta(minutes=m)) for m in (1, 2, 7)]
    client.force_login(rep.user)
    # when
    response = client.get(reverse("leads:lead_list"))
    # then
    html = response.content.decode()
    assert html.count('class="sla-countdown') == 3 and html.count("sla-late") >= 1
    for clock in clocks:
        assert f'data-sla-due="{clock.due_at.isoformat()}' in html or clock.due_at.strftime("%Y-%m-%dT%H:%M:%S") in html
