"""A capture is atomic: a process killed at any point between its steps leaves nothing half-done.
Each case runs a real capture in a child process on the test's PostgreSQL database and SIGKILLs
it between two writes; then every denormalised counter is checked against a recount."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from leads.models import CLOSED_STAGES, Activity, IntakeSubmission, Lead, StageChange
from leads.services import IntakeContext, LeadData, lead_capture
from routing.models import Assignment, Method, RepProfile, ResponseClock
from tests.conftest import requires_postgres
from tests.routing.factories import RepProfileFactory, TeamFactory, rule_with_action

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
KILL_POINTS = [
    "after-lead-insert",
    "after-intake-log",
    "after-rep-take",
    "after-owner-set",
    "before-response-clock",
    "before-commit",
]


def capture_killed_at(point: str, email: str) -> None:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PYTHONPATH": str(ROOT),
    }
    child = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "leads" / "capture_kill_child.py"), point, email],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stdout, child.stderr[-2000:])


def assert_counters_match_a_recount(reps: list[RepProfile]) -> None:
    for rep in reps:
        rep.refresh_from_db()
        open_leads = Lead.objects.filter(owner_id=rep.user_id).exclude(stage__in=CLOSED_STAGES).count()
        pushed = Assignment.objects.filter(rep=rep, method=Method.ROUND_ROBIN).count()
        assert (rep.open_leads, rep.routed_total, rep.assigned_today) == (open_leads, pushed, pushed), rep
    for lead in Lead.objects.all():
        assert IntakeSubmission.objects.filter(lead=lead).exists(), "a lead without its intake log"
        assert StageChange.objects.filter(lead=lead, from_stage="").count() == 1
    for assignment in Assignment.objects.filter(rep__isnull=False):
        assert ResponseClock.objects.filter(assignment=assignment).count() == 1, "an assignment without its clock"
        assert Lead.objects.get(pk=assignment.lead_id).owner_id == assignment.rep.user_id


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_capture_killed_between_steps_leaves_nothing_and_no_counter_off(point):
    # given: round-robin between two reps; one lead already routed
    team = TeamFactory()
    reps = [RepProfileFactory(team=team) for _ in range(2)]
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    lead_capture(data=LeadData(email="first@example.org"), context=IntakeContext(raw_payload={}))
    # when: a new person's capture dies between two of its writes
    capture_killed_at(point, "killed@example.org")
    # then: nothing of it is stored, and every counter equals its recount
    assert not Lead.objects.filter(email_normalized="killed@example.org").exists()
    assert IntakeSubmission.objects.count() == 1 and Assignment.objects.count() == 1
    assert_counters_match_a_recount(reps)
    # and when the client retries, it is stored once, routed to the rep whose turn it is
    retried = lead_capture(data=LeadData(email="killed@example.org"), context=IntakeContext(raw_payload={}))
    assert retried.created and retried.lead.owner_id in {rep.user_id for rep in reps}
    assert {Lead.objects.get(email_normalized=e).owner_id for e in ("first@example.org", "killed@example.org")} == {
        rep.user_id for rep in reps
    }
    assert_counters_match_a_recount(reps)


def test_a_returning_persons_capture_killed_after_its_intake_log_leaves_the_lead_as_it_was():
    # given
    team = TeamFactory()
    reps = [RepProfileFactory(team=team)]
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    lead = lead_capture(data=LeadData(email="back@example.org"), context=IntakeContext(raw_payload={})).lead
    before = Lead.objects.values("last_touch_at", "first_name").get(pk=lead.pk)
    # when: their second submission dies after writing its intake log rows
    capture_killed_at("after-intake-log", "back@example.org")
    # then: no second submission, activity or touch; the counters are untouched
    assert IntakeSubmission.objects.filter(lead=lead).count() == 1
    assert Activity.objects.filter(lead=lead, kind="form_submitted").count() == 1
    assert Lead.objects.values("last_touch_at", "first_name").get(pk=lead.pk) == before
    assert_counters_match_a_recount(reps)
