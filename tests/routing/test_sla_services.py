"""Response SLAs: clocks on assignment and first touch, policies, and the escalation ladder."""

import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.models import Notification
from core.roles import Role
from leads.models import ActivityKind
from leads.services import activity_log
from routing.models import (
    Assignment,
    ClockStatus,
    Method,
    ResponseClock,
    SlaAlert,
    SlaAlertKind,
    SlaEscalation,
    SlaPolicy,
)
from routing.services import lead_reassign, lead_route
from routing.services.sla import sla_alert_emails_send, sla_steps_run, sla_sweep
from tests.conftest import requires_postgres
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory
from tests.routing.factories import RepProfileFactory, TeamFactory, rule_with_action

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    team = TeamFactory(manager=UserFactory(with_role=Role.SALES_MANAGER, email="boss@x.example"))
    RepProfileFactory(team=team, user__email="ann@x.example")
    RepProfileFactory(team=team, user__email="bob@x.example")
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    return team


def route(**lead_fields):
    lead = LeadFactory(**lead_fields)
    with transaction.atomic():
        assignment = lead_route(lead=lead)
    return lead, assignment


def later(**delta) -> dt.datetime:
    return timezone.now() + dt.timedelta(**delta)


def test_assignment_starts_a_five_minute_clock_for_the_owner(team):
    # when
    lead, assignment = route()
    # then
    clock = ResponseClock.objects.get(lead=lead)
    assert clock.status == ClockStatus.OPEN and clock.rep_id == assignment.rep_id and clock.team_id == team.pk
    assert clock.due_at - clock.started_at == dt.timedelta(minutes=5)
    assert clock.warn_at - clock.started_at == dt.timedelta(minutes=4)
    assert clock.next_action_at == clock.warn_at


def test_intake_through_the_api_starts_the_clock(team, key_client):
    response = key_client.post("/api/v1/leads/", {"email": "api@x.example"}, format="json")
    assert response.status_code == 201
    assert ResponseClock.objects.filter(lead_id=response.json()["id"], status=ClockStatus.OPEN).exists()


def test_a_policy_edit_reaches_the_next_intake_despite_the_cached_policies(team, key_client, settings):
    # given: policies cached for an hour in this process, a lead routed under the 5-minute default
    settings.LEADOPS_ROUTING_RULES_RECHECK_SECONDS = 3600
    key_client.post("/api/v1/leads/", {"email": "before@x.example"}, format="json")
    # when: an admin adds a 2-minute default (saved in this process)
    SlaPolicy.objects.create(name="Two minutes", is_default=True, first_touch_seconds=120)
    lead_id = key_client.post("/api/v1/leads/", {"email": "after@x.example"}, format="json").json()["id"]
    # then
    clock = ResponseClock.objects.get(lead_id=lead_id)
    assert clock.due_at - clock.started_at == dt.timedelta(minutes=2)


def test_first_touch_stops_the_clock_and_keeps_time_to_first_touch(team):
    # given
    lead, _ = route()
    clock = ResponseClock.objects.get(lead=lead)
    # when: a note is no touch, a call is
    activity_log(lead_id=lead.pk, kind=ActivityKind.NOTE, actor=None)
    activity_log(
        lead_id=lead.pk, kind=ActivityKind.CALL, actor=None, occurred_at=clock.started_at + dt.timedelta(seconds=90)
    )
    activity_log(lead_id=lead.pk, kind=ActivityKind.EMAIL_SENT, actor=None)
    # then
    clock.refresh_from_db()
    assert clock.status == ClockStatus.TOUCHED and clock.next_action_at is None
    assert clock.time_to_first_touch == dt.timedelta(seconds=90)
    assert sla_steps_run(now=later(hours=1)).found == 0


def test_reassignment_closes_the_clock_and_starts_a_fresh_one_for_the_new_owner(team, manager_user):
    # given
    lead, assignment = route()
    other = team.reps.exclude(pk=assignment.rep_id).get()
    # when
    lead_reassign(lead_id=lead.pk, actor=manager_user, reason="holiday", to_rep=other)
    # then
    old, new = ResponseClock.objects.filter(lead=lead).order_by("id")
    assert old.status == ClockStatus.CLOSED and old.closed_at is not None and old.next_action_at is None
    assert new.status == ClockStatus.OPEN and new.rep == other and new.started_at >= old.started_at


def test_policy_chosen_by_segment_score_or_rule_else_the_default(team):
    # given
    SlaPolicy.objects.create(name="default", is_default=True, first_touch_seconds=600)
    SlaPolicy.objects.create(name="enterprise", position=1, company_sizes=["1000+"], first_touch_seconds=60)
    SlaPolicy.objects.create(name="hot", position=2, min_score=80, first_touch_seconds=120)
    SlaPolicy.objects.create(name="DACH", position=3, countries=["DE", "AT"], first_touch_seconds=180)
    # when
    cases = {"enterprise": {"company_size": "1000+", "score": 90}, "hot": {"score": 85}, "DACH": {"country": "at"}}
    chosen = {}
    for name, fields in [*cases.items(), ("default", {})]:
        lead, _ = route(**fields)
        chosen[name] = ResponseClock.objects.select_related("policy").get(lead=lead).policy.name
    # then
    assert chosen == {"enterprise": "enterprise", "hot": "hot", "DACH": "DACH", "default": "default"}


def test_ladder_warns_then_breaches_then_reassigns_each_step_once(team, django_capture_on_commit_callbacks):
    # given
    lead, assignment = route()
    first_rep = assignment.rep
    mail.outbox.clear()
    # when: 4 minutes in
    warned = sla_sweep(now=later(minutes=4, seconds=1))
    again = sla_sweep(now=later(minutes=4, seconds=2))
    # then: the rep is warned once
    assert (warned.warned, warned.breached, again.found) == (1, 0, 0)
    assert Notification.objects.filter(recipient=first_rep.user, title__startswith="Respond now").count() == 1
    assert [m.to for m in mail.outbox] == [
        ["ann@x.example"] if first_rep.user.email == "ann@x.example" else ["bob@x.example"]
    ]
    # when: due
    breached = sla_sweep(now=later(minutes=5, seconds=1))
    # then: breach recorded, manager told in the app and by email
    clock = ResponseClock.objects.get(lead=lead)
    assert breached.breached == 1 and clock.breached_at is not None and clock.status == ClockStatus.OPEN
    assert Notification.objects.filter(recipient=team.manager, title__startswith="SLA breached").count() == 1
    assert mail.outbox[-1].to == ["boss@x.example"]
    # when: 5 more minutes
    with django_capture_on_commit_callbacks(execute=False):
        escalated = sla_sweep(now=later(minutes=10, seconds=1))
    # then: reassigned to the other rep, a fresh clock for them, the old one closed
    lead.refresh_from_db()
    assert escalated.escalated == 1 and escalated.reassigned == 1
    assert lead.owner_id != first_rep.user_id and lead.owner_id is not None
    old, new = ResponseClock.objects.filter(lead=lead).order_by("id")
    assert old.status == ClockStatus.CLOSED and old.escalated_at is not None
    assert new.status == ClockStatus.OPEN and new.rep.user_id == lead.owner_id
    assert SlaAlert.objects.filter(clock=old).count() == 3 and not SlaAlert.objects.filter(email_sent_at=None).exists()
    assert Assignment.objects.filter(lead=lead).count() == 2


def test_a_sweep_after_an_outage_catches_up_on_every_step(team):
    # given: nobody swept for an hour
    route()
    # when
    result = sla_sweep(now=later(hours=1))
    # then
    assert (result.warned, result.breached, result.escalated, result.reassigned) == (1, 1, 1, 1)
    kinds = set(SlaAlert.objects.values_list("kind", flat=True))
    assert kinds == {SlaAlertKind.WARNING, SlaAlertKind.BREACH, SlaAlertKind.ESCALATION}


def test_notify_only_policy_never_reassigns(team):
    SlaPolicy.objects.create(name="default", is_default=True, escalation=SlaEscalation.NOTIFY)
    lead, assignment = route()
    result = sla_sweep(now=later(hours=1))
    lead.refresh_from_db()
    assert result.escalated == 1 and result.reassigned == 0 and lead.owner_id == assignment.rep.user_id
    assert ResponseClock.objects.get(lead=lead).next_action_at is None


def test_an_escalation_interrupted_by_a_dead_worker_is_retried_after_the_lease(team, monkeypatch):
    # given: the sweep recorded the escalation, then the worker died before reassigning
    lead, assignment = route()
    monkeypatch.setattr("routing.services.sla.sla_clock_escalate", lambda clock_id: None)
    sla_sweep(now=later(hours=1))
    monkeypatch.undo()
    clock = ResponseClock.objects.get(lead=lead)
    assert clock.status == ClockStatus.ESCALATING
    # when: a sweep inside the lease does nothing; one after it reassigns
    assert sla_sweep(now=later(hours=1, seconds=30)).reassigned == 0
    result = sla_sweep(now=later(hours=1, minutes=3))
    # then
    lead.refresh_from_db()
    assert result.reassigned == 1 and lead.owner_id != assignment.rep.user_id
    assert SlaAlert.objects.filter(kind=SlaAlertKind.ESCALATION).count() == 1


def test_unsent_emails_are_sent_by_a_later_sweep(team, monkeypatch):
    # given: the mail server is down during the breach
    route()

    def broken(**kwargs):
        raise ConnectionError("smtp down")

    monkeypatch.setattr("routing.services.sla.send_mail", broken)
    sla_sweep(now=later(minutes=5, seconds=1))
    assert SlaAlert.objects.filter(email_sent_at=None).count() == 2  # warning and breach
    monkeypatch.undo()
    mail.outbox.clear()
    # when: the lease is over
    SlaAlert.objects.update(email_claimed_at=timezone.now() - dt.timedelta(minutes=5))
    sent = sla_alert_emails_send()
    # then
    assert sent == 2 and len(mail.outbox) == 2


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_run_every_step_exactly_once():
    # given: 60 clocks past their escalation time
    team = TeamFactory(manager=UserFactory(with_role=Role.SALES_MANAGER, email="boss@x.example"))
    for _ in range(3):
        RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    leads = [route()[0] for _ in range(60)]
    hour = dt.timedelta(hours=1)
    ResponseClock.objects.update(
        started_at=F("started_at") - hour,
        warn_at=F("warn_at") - hour,
        due_at=F("due_at") - hour,
        escalate_at=F("escalate_at") - hour,
        next_action_at=F("next_action_at") - hour,
    )
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweep():
        try:
            barrier.wait()
            results.append(sla_sweep(batch_size=20))
            while results[-1].found:
                results.append(sla_sweep(batch_size=20))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert not errors
    assert sum(r.warned for r in results) == 60
    assert sum(r.breached for r in results) == 60
    assert sum(r.escalated for r in results) == 60
    assert sum(r.reassigned for r in results) == 60
    assert SlaAlert.objects.filter(kind=SlaAlertKind.BREACH).count() == 60
    assert Notification.objects.filter(recipient=team.manager).count() == 120  # breach + escalation
    old_clocks = ResponseClock.objects.filter(lead__in=leads, escalated_at__isnull=False)
    assert old_clocks.count() == 60 and set(old_clocks.values_list("status", flat=True)) == {ClockStatus.CLOSED}
    assert ResponseClock.objects.filter(lead__in=leads, status=ClockStatus.OPEN).count() == 60


def test_a_lead_closed_without_a_touch_is_not_escalated(team):
    # given
    lead, _ = route()
    lead.stage = "disqualified"
    lead.save(update_fields=["stage"])
    # when
    result = sla_sweep(now=later(hours=1))
    # then
    assert (result.found, result.warned, result.breached) == (1, 0, 0)
    assert ResponseClock.objects.get(lead=lead).status == ClockStatus.CLOSED
