import itertools
from collections import defaultdict
from datetime import timedelta
from io import StringIO

import phonenumbers
import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import F
from django.test import Client
from django.utils import timezone

from core.roles import Role
from demo.services import DEMO_PASSWORD, DEMO_USERS, PATHS, demo_data_seed
from leads.models import CLOSED_STAGES, Activity, ActivityKind, IntakeSubmission, Lead, Stage, StageChange
from leads.normalization import email_normalize
from leads.services import ALLOWED_TRANSITIONS
from routing.models import (
    Assignment,
    ClockStatus,
    QueueEntry,
    RepProfile,
    ResponseClock,
    RoutingRule,
    SlaEscalation,
    SlaPolicy,
    Team,
)
from routing.services import rep_open_leads_sweep

pytestmark = pytest.mark.django_db

User = get_user_model()


def seed(leads: int) -> str:
    out = StringIO()
    call_command("seed_demo", leads=leads, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    models = [*apps.get_app_config("leads").get_models(), *apps.get_app_config("routing").get_models(), User]
    return {model._meta.label: model.objects.count() for model in models}


def test_creates_the_demo_users_with_their_roles():
    # given / when
    seed(20)
    # then
    users = {user.username: user for user in User.objects.prefetch_related("groups")}
    assert set(users) >= {"admin", "ops", "manager", *(f"rep{n}" for n in range(1, 9))}
    assert users["admin"].is_superuser and users["admin"].is_staff
    assert not users["manager"].is_staff
    for spec in DEMO_USERS:
        user = users[spec.username]
        assert spec.role.value in {group.name for group in user.groups.all()}
        assert user.get_full_name() == f"{spec.first_name} {spec.last_name}"
    assert Team.objects.count() == 2
    assert all(team.manager == users["manager"] for team in Team.objects.all())
    assert RepProfile.objects.filter(team__isnull=False).count() == 8
    assert set(RepProfile.objects.values_list("user__username", flat=True)) == {f"rep{n}" for n in range(1, 9)}


def test_demo_logins_can_sign_in():
    # given
    seed(5)
    for spec in DEMO_USERS:
        # when
        signed_in = Client().login(username=spec.username, password=DEMO_PASSWORD)
        # then
        assert signed_in, spec.username
    admin_client = Client()
    admin_client.login(username="admin", password=DEMO_PASSWORD)
    assert admin_client.get("/admin/").status_code == 200


def test_creates_realistic_leads_spread_over_90_days():
    # given / when
    seed(60)
    # then
    leads = list(Lead.objects.all())
    assert len(leads) == 60
    now = timezone.now()
    for lead in leads:
        assert lead.email_normalized == email_normalize(lead.email)
        assert lead.first_name and lead.last_name
        assert now - timedelta(days=90) <= lead.created_at <= now
        if lead.phone_e164:
            assert phonenumbers.is_valid_number(phonenumbers.parse(lead.phone_e164))
            assert phonenumbers.format_number(phonenumbers.parse(lead.phone), phonenumbers.PhoneNumberFormat.E164) == (
                lead.phone_e164
            )
    assert sum(1 for lead in leads if lead.phone_e164) > 30
    assert sum(1 for lead in leads if lead.owner_id) > 50
    assert len({lead.stage for lead in leads}) >= 6
    assert len({lead.source_id for lead in leads}) >= 6
    assert len({lead.campaign_id for lead in leads}) >= 6
    assert len({lead.score for lead in leads}) >= 15
    assert Activity.objects.filter(kind=ActivityKind.FORM_SUBMITTED).count() >= 45
    assert {ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.NOTE, ActivityKind.MEETING} <= set(
        Activity.objects.values_list("kind", flat=True)
    )


def test_second_run_creates_nothing_new():
    # given
    seed(20)
    before = row_counts()
    # when
    output = seed(20)
    # then
    assert row_counts() == before
    assert "nothing new" in output


def test_a_larger_run_adds_only_the_missing_leads():
    # given
    seed(10)
    first_leads = dict(Lead.objects.values_list("email_normalized", "pk"))
    # when
    seed(15)
    # then
    assert Lead.objects.count() == 15
    assert {email: pk for email, pk in Lead.objects.values_list("email_normalized", "pk") if email in first_leads} == (
        first_leads
    )


def test_stage_changes_tell_the_story_of_every_lead():
    # given / when
    seed(60)
    # then: "" -> new at capture, then only allowed moves in time order, ending at the lead's stage
    history = defaultdict(list)
    for change in StageChange.objects.order_by("changed_at", "id"):
        history[change.lead_id].append(change)
    stage_activities = defaultdict(int)
    for lead_id in Activity.objects.filter(kind=ActivityKind.STAGE_CHANGED).values_list("lead_id", flat=True):
        stage_activities[lead_id] += 1
    for lead in Lead.objects.all():
        changes = history[lead.pk]
        assert (changes[0].from_stage, changes[0].to_stage) == ("", Stage.NEW)
        assert changes[0].changed_at == lead.created_at
        for previous, change in itertools.pairwise(changes):
            assert change.from_stage == previous.to_stage
            assert change.to_stage in ALLOWED_TRANSITIONS[change.from_stage]
            assert change.changed_at >= previous.changed_at
        assert changes[-1].to_stage == lead.stage
        assert changes[-1].changed_at == lead.stage_changed_at
        assert stage_activities[lead.pk] == len(changes) - 1
    assert len({lead.stage for lead in Lead.objects.all()}) >= 7


def test_every_demo_path_is_an_allowed_lifecycle():
    # given / when / then
    for _, moves in PATHS:
        stage = Stage.NEW
        for to_stage in moves:
            assert to_stage in ALLOWED_TRANSITIONS[stage], (stage, to_stage)
            stage = to_stage


def test_every_row_is_what_the_services_write():
    # given / when
    seed(60)
    # then: each lead came in through capture (its intake log entry, then its touches), each
    # assignment has its timeline entry and, for a rep, the clock it started
    leads = {lead.pk: lead for lead in Lead.objects.all()}
    first_submission = {}
    for submission in IntakeSubmission.objects.order_by("pk"):
        first_submission.setdefault(submission.lead_id, submission)
    assert set(first_submission) == set(leads)
    assert all(s.outcome == "created" for s in first_submission.values())
    assert IntakeSubmission.objects.filter(outcome="merged").exists()  # returning people
    assigned = {a.payload["assignment"]: a for a in Activity.objects.filter(kind=ActivityKind.ASSIGNED).order_by("pk")}
    assignments = list(Assignment.objects.all())
    assert len(assignments) == len(leads) == len(assigned)
    for assignment in assignments:
        lead = leads[assignment.lead_id]
        assert assigned[assignment.pk].occurred_at == assignment.created_at
        if assignment.rep_id is None:
            assert lead.owner_id is None and assignment.queue_id is not None
            continue
        assert lead.assigned_at == assignment.created_at and lead.created_at < lead.assigned_at
        clock = ResponseClock.objects.get(assignment=assignment)
        assert clock.started_at == assignment.created_at
        assert clock.first_touch_at == lead.first_contacted_at


def test_rep_counters_equal_a_recount_after_seeding():
    # given / when
    seed(60)
    # then
    for rep in RepProfile.objects.select_related("user"):
        open_leads = Lead.objects.filter(owner=rep.user).exclude(stage__in=CLOSED_STAGES)
        assert rep.open_leads == open_leads.count()
        assert rep.open_leads <= rep.capacity
    assert rep_open_leads_sweep() == 0  # the recount changes nothing
    assert sum(RepProfile.objects.values_list("open_leads", flat=True)) > 0


def test_demo_users_keep_their_role_groups_after_roles_exist_already():
    # given: groups exist (post_migrate), a demo user was created before
    seed(0)
    rep = User.objects.get(username="rep1")
    rep.groups.clear()
    # when
    seed(0)
    # then
    assert list(rep.groups.values_list("name", flat=True)) == [Role.SALES_REP.value]


def test_demo_owners_have_a_routing_explanation_and_the_sla_board_has_something_to_show():
    # given / when
    demo_data_seed(lead_count=60)
    # then
    now = timezone.now()
    owned = Lead.objects.filter(owner__isnull=False)
    assert Assignment.objects.filter(lead__in=owned).values("lead").distinct().count() == owned.count()
    assert QueueEntry.objects.filter(lead__owner__isnull=True, claimed_at__isnull=True).exists()
    assert RoutingRule.objects.filter(is_fallback=False).count() == 2
    # every owned lead has its response clock; some answered within the SLA, some late; some
    # new leads are still waiting for their first touch, within the SLA or past it
    assert ResponseClock.objects.count() == owned.count()
    touched = ResponseClock.objects.filter(status=ClockStatus.TOUCHED)
    assert touched.filter(first_touch_at__lte=F("due_at")).exists()
    assert touched.filter(first_touch_at__gt=F("due_at")).exists()
    running = ResponseClock.objects.filter(status=ClockStatus.OPEN, lead__stage=Stage.NEW)
    assert running.filter(due_at__gt=now).exists()
    assert running.filter(due_at__lte=now).exists()


def test_response_clocks_follow_the_active_sla_policy():
    # given: a 30-minute policy (the built-in one is 5 minutes)
    policy = SlaPolicy.objects.create(
        name="Inbound: 30 minutes",
        is_default=True,
        first_touch_seconds=1800,
        warn_percent=50,
        escalate_after_seconds=600,
        escalation=SlaEscalation.NOTIFY,
    )
    # when
    demo_data_seed(lead_count=60)
    # then
    clocks = list(ResponseClock.objects.select_related("assignment"))
    assert len(clocks) == Lead.objects.filter(owner__isnull=False).count() > 50
    for clock in clocks:
        assert clock.policy_id == policy.pk
        assert clock.escalation == SlaEscalation.NOTIFY
        assert clock.started_at == clock.assignment.created_at
        assert clock.due_at - clock.started_at == timedelta(minutes=30)
        assert clock.warn_at - clock.started_at == timedelta(minutes=15)
        assert clock.escalate_at - clock.due_at == timedelta(minutes=10)
    # a lead that arrived 3 minutes ago is still within its 30 minutes
    assert ResponseClock.objects.filter(
        status=ClockStatus.OPEN, due_at__gt=timezone.now() + timedelta(minutes=20)
    ).exists()
