import datetime

import pytest
from django.core import mail

from core.models import Notification
from routing.models import Assignment, Method
from routing.tasks import assignment_notify_task, rep_open_leads_sweep_task
from tests.leads.factories import LeadFactory
from tests.routing.factories import RepProfileFactory, TeamFactory, rule_with_action

pytestmark = pytest.mark.django_db


def test_intake_enqueues_the_owner_notification_after_commit(key_client, django_capture_on_commit_callbacks):
    # given
    team = TeamFactory()
    rep = RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    # when: the on-commit callbacks run (enrichment and notification are sent to the broker)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        key_client.post("/api/v1/leads/", {"email": "n@x.example"}, format="json")
    assignment = Assignment.objects.get()
    assignment_notify_task(assignment_id=assignment.pk)  # what the worker runs
    # then
    assert len(callbacks) == 2
    assert Notification.objects.get().recipient == rep.user
    assert mail.outbox[0].subject.startswith("[LeadOps] New lead assigned to you")


def test_notify_task_is_idempotent():
    rep = RepProfileFactory()
    assignment = Assignment.objects.create(
        lead=LeadFactory(owner=rep.user),
        rep=rep,
        method=Method.CLAIM,
        reason="x",
        created_at=datetime.datetime.now(datetime.UTC),
    )
    assignment_notify_task(assignment_id=assignment.pk)
    assignment_notify_task(assignment_id=assignment.pk)
    assert Notification.objects.count() == 1


def test_sweep_task_returns_how_many_reps_changed():
    RepProfileFactory(open_leads=3)
    assert rep_open_leads_sweep_task() == 1
